"""xinetd configurations converted and run under a real systemd 252 (one container).

Debian's stock internal services, and a set of xinetd entries exercising instances,
only_from/no_access, redirect and user, are read by the xinetd reader, rendered by
units.writer.render, installed in a booted systemd, and talked to by real clients
inside the container's own network (the client binds 127.0.0.2 / 127.0.0.3 as its
source address to be let in or kept out by the BPF filter).
"""

from __future__ import annotations

import json
import textwrap
import time

import pytest

from support import DATA
from inetd2systemd.config.services import load_services
from inetd2systemd.config.xinetd import parse_xinetd, read_xinetd
from inetd2systemd.units.writer import render
from systemd_container import analyze_verify

CORPUS = DATA / "xinetd"
STOCK = CORPUS / "debian-stock"
SERVICES = load_services(CORPUS / "services")

# Entries for the behaviours a user notices; ports are private to the container.
XINETD_CONF = """
defaults
{
	instances	= 10
}

service capped
{
	type		= UNLISTED
	port		= 7101
	socket_type	= stream
	wait		= no
	user		= root
	server		= /usr/bin/cat
	instances	= 2
	bind		= 127.0.0.1
}

service guarded
{
	type		= UNLISTED
	port		= 7102
	socket_type	= stream
	wait		= no
	user		= root
	server		= /usr/bin/cat
	only_from	= 127.0.0.0/30
	no_access	= 127.0.0.3
	bind		= 127.0.0.1
}

service forward
{
	type		= UNLISTED
	port		= 7103
	socket_type	= stream
	wait		= no
	user		= nobody
	redirect	= 127.0.0.1 7200
	bind		= 127.0.0.1
}

service whoami
{
	type		= UNLISTED
	port		= 7104
	socket_type	= stream
	wait		= no
	user		= daemon
	group		= nogroup
	server		= /usr/bin/id
	server_args	= -un
	bind		= 127.0.0.1
}
"""

CLIENT = textwrap.dedent("""
    import json, socket, sys, time
    def talk(port, data=b"", source="127.0.0.1", kind="tcp", timeout=3.0, read=4096):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
        s.settimeout(timeout)
        s.bind((source, 0))
        try:
            s.connect(("127.0.0.1", port))
            if data or kind == "udp":
                s.send(data or b"?")
            out = b""
            while len(out) < read:
                chunk = s.recv(read - len(out))
                if not chunk:
                    break
                out += chunk
                if kind == "udp" or out.endswith(b"\\n") or len(out) >= read:
                    break
            return out.decode("latin-1")
        except (socket.timeout, ConnectionError) as exc:
            return type(exc).__name__
        finally:
            s.close()
""")




def inside(systemd, code: str):
    """Run client code in the container; it prints one JSON value."""
    result = systemd.python(CLIENT + textwrap.dedent(code))
    return json.loads(result.stdout)


def install(systemd, tmp_path, services, start):
    units, _ = render(services)
    out = tmp_path / "units"
    out.mkdir()
    for unit in units:
        (out / unit.name).write_text(unit.text)
    systemd.install_units(out, start=start)
    return {u.name: u.text for u in units}


@pytest.fixture(scope="module")
def stock_units(tmp_path_factory):
    config = read_xinetd(STOCK / "etc/xinetd.conf", services=SERVICES, root=str(STOCK),
                         include_disabled=True)
    units, findings = render(config.services)
    out = tmp_path_factory.mktemp("stock")
    for unit in units:
        (out / unit.name).write_text(unit.text)
    return out, units


def test_stock_units_pass_systemd_analyze_verify(stock_units):
    out, units = stock_units
    files = sorted(str(p) for p in out.iterdir())
    result = analyze_verify("--man=no", *files, timeout=120)
    assert result.returncode == 0, result.stderr
    assert {u.name for u in units} >= {"echo-stream.socket", "echo-dgram.socket",
                                       "time-dgram.service", "chargen-stream.socket"}


def test_stock_internal_services_answer_real_clients(systemd, stock_units):
    out, units = stock_units
    sockets = tuple(u.name for u in units if u.name.endswith(".socket"))
    systemd.install_units(out, start=sockets)
    answers = inside(systemd, """
        import struct
        res = {}
        res["echo-tcp"] = talk(7, b"hello xinetd\\n")
        res["echo-udp"] = talk(7, b"datagram", kind="udp")
        res["daytime-tcp"] = talk(13)
        res["daytime-udp"] = talk(13, kind="udp")
        res["chargen-tcp"] = talk(19, read=148)
        res["chargen-udp"] = talk(19, kind="udp")
        raw = talk(37, kind="udp", read=4).encode("latin-1")
        res["time-udp"] = struct.unpack("!I", raw)[0] - 2208988800 - int(time.time()) if len(raw) == 4 else raw.decode()
        raw = talk(37, read=4).encode("latin-1")
        res["time-tcp"] = struct.unpack("!I", raw)[0] - 2208988800 - int(time.time()) if len(raw) == 4 else raw.decode()
        res["discard-tcp"] = talk(9, b"into the void\\n", timeout=0.5)
        print(json.dumps(res))
    """)
    assert answers["echo-tcp"] == "hello xinetd\n"
    assert answers["echo-udp"] == "datagram"
    year = str(time.localtime().tm_year)
    for key in ("daytime-tcp", "daytime-udp"):
        assert answers[key].endswith("\r\n") and year in answers[key], answers[key]
    ring = "".join(chr(c) for c in range(32, 127))  # RFC 864: the 95 printable characters
    lines = answers["chargen-tcp"].split("\r\n")
    full = [line for line in lines[:-1] if len(line) == 72]
    assert full and all(line in ring + ring for line in full), lines
    assert all(line in ring + ring for line in answers["chargen-udp"].split("\r\n"))
    assert abs(answers["time-udp"]) <= 2 and abs(answers["time-tcp"]) <= 2
    assert answers["discard-tcp"] in ("TimeoutError", "timeout")  # nothing comes back


@pytest.fixture(scope="module")
def behaviour_units(systemd, tmp_path_factory):
    config = parse_xinetd(XINETD_CONF, "/etc/xinetd.conf", services=SERVICES)
    out = tmp_path_factory.mktemp("behaviour")
    units = install(systemd, out, config.services,
                    start=("capped.socket", "guarded.socket", "forward.socket",
                           "whoami.socket"))
    return units


def test_instances_limits_concurrent_connections(systemd, behaviour_units):
    assert "MaxConnections=2" in behaviour_units["capped.socket"]
    result = inside(systemd, """
        held = []
        for i in range(2):
            s = socket.create_connection(("127.0.0.1", 7101), timeout=3)
            s.sendall(b"held\\n")
            assert s.recv(16) == b"held\\n"
            held.append(s)
        third = talk(7101, b"third\\n", timeout=2)
        held.pop().close()
        time.sleep(0.5)
        after = talk(7101, b"again\\n")
        print(json.dumps([third, after]))
    """)
    third, after = result
    assert third != "third\n"  # refused while two are running (closed or reset)
    assert after == "again\n"  # a slot freed: served again


def test_only_from_lets_the_allowed_source_in_and_keeps_another_out(systemd, behaviour_units):
    text = behaviour_units["guarded.socket"]
    assert "IPAddressDeny=any" in text
    result = inside(systemd, """
        print(json.dumps([talk(7102, b"knock\\n", source=src, timeout=1.5)
                          for src in ("127.0.0.2", "127.0.0.3", "127.0.0.5")]))
    """)
    assert result[0] == "knock\n"  # in only_from
    assert result[1] != "knock\n"  # in only_from and no_access: xinetd says no
    assert result[2] != "knock\n"  # not in only_from
    assert result[1] in ("TimeoutError", "timeout")  # BPF drops the SYN: a silent refusal


def test_redirect_forwards_bytes_both_ways(systemd, behaviour_units):
    upstream = textwrap.dedent("""
        import socket
        srv = socket.create_server(("127.0.0.1", 7200))
        while True:
            c, _ = srv.accept()
            data = c.recv(4096)
            c.sendall(b"upstream got: " + data)
            c.close()
    """)
    systemd.run("systemd-run", "--unit=xinetd-upstream", "/usr/bin/python3", "-c", upstream)
    systemd.wait_for(lambda: systemd.show("xinetd-upstream.service", "ActiveState") == "active")
    result = inside(systemd, """
        for _ in range(50):
            out = talk(7103, b"through the proxy\\n")
            if out.startswith("upstream"):
                break
            time.sleep(0.1)
        print(json.dumps(out))
    """)
    assert result == "upstream got: through the proxy\n"


def test_user_runs_the_server_as_that_user(systemd, behaviour_units):
    assert inside(systemd, 'print(json.dumps(talk(7104)))') == "daemon\n"
