"""Access at accept time, end to end: `inetd2systemd serve` against the real xinetd.

The same xinetd configuration (dual-stack [::] sockets and IPv4 ones, a libwrap-checked
program, only_from/no_access lists with IPv4-mapped entries), the same hosts.allow and
hosts.deny (bound over /etc's in a private mount namespace), the same clients (IPv4
sources 127.0.0.x, which reach a dual-stack socket as ::ffff:127.0.0.x, and ::1): first
the packaged xinetd (linked with libwrap) serves them, then serve does, and every client
must get the same answer from both, and from `tcpdmatch` for the libwrap verdicts.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from access_support import XINETD, Namespaced, exchange, tcpdmatch_many, write_tables
from support import free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="xinetd needs root to start")

SOURCES = [f"127.0.0.{n}" for n in range(1, 18)] + ["::1"]

ALLOW = """\
i2s-wrapped: 127.0.0.2, [::1]
i2s-wrapped: 127.0.0.8/255.255.255.248 EXCEPT 127.0.0.9
# neither matches anything under libwrap: a leading zero, host bits under the mask
i2s-wrapped: 127.0.0.05, 127.0.0.17/28
i2s-wrapped: 127.0.0.5 : deny
i2s-wrapped: 127.0.0.4/30
"""
DENY = "ALL: 127.0.0.3\nALL: ALL\n"

SERVER = """\
import os, sys
sys.stdout.write("REMOTE_HOST=%s\\n" % os.environ.get("REMOTE_HOST"))
sys.stdout.flush()
sys.stdout.write(sys.stdin.read())
"""


def config(work: Path, ports: dict[str, int]) -> Path:
    script = work / "server.py"
    script.write_text(SERVER)

    def program(port: int, dual: bool) -> str:
        return (f"\tsocket_type = stream\n\twait = no\n\tuser = root\n\tport = {port}\n"
                f"\ttype = UNLISTED\n\tserver = {sys.executable}\n\tserver_args = {script}\n"
                f"\tlibwrap = i2s-wrapped\n" + ("\tflags = IPv6\n" if dual else "\tbind = 127.0.0.1\n"))

    def echo(port: int, dual: bool, lists: str) -> str:
        return (f"\ttype = INTERNAL UNLISTED\n\tid = echo-{port}\n\tsocket_type = stream\n"
                f"\twait = no\n\tport = {port}\n" + lists +
                ("\tflags = IPv6 NOLIBWRAP\n" if dual else "\tflags = NOLIBWRAP\n\tbind = 127.0.0.1\n"))

    text = (f"service wrapped\n{{\n{program(ports['wrapped'], True)}}}\n"
            f"service wrapped4\n{{\n{program(ports['wrapped4'], False)}}}\n"
            "service echo\n{\n" + echo(ports["lists"], True,
                                       "\tonly_from = 127.0.0.0/8 ::1\n\tno_access = ::ffff:127.0.0.7 "
                                       "::ffff:127.0.0.16/126 127.0.0.3\n") + "}\n"
            "service echo\n{\n" + echo(ports["lists4"], False,
                                       "\tonly_from = ::ffff:127.0.0.2 127.0.0.0/28\n"
                                       "\tno_access = ::ffff:127.0.0.7 127.0.0.3\n") + "}\n")
    path = work / "xinetd.conf"
    path.write_text(text)
    return path


def answers(ports: dict[str, int]) -> dict[tuple[str, str], bytes | None]:
    return {(name, source): answer(port, source)
            for name, port in ports.items() for source in SOURCES
            if ":" not in source or name in ("wrapped", "lists")}


def answer(port: int, source: str) -> bytes | None:
    """What the client reads; asked once more, with more time, when nothing came: a
    refusal comes at once and again, while a server started on a loaded machine can take
    longer than one exchange's timeout (CI once saw xinetd's Python server miss it)."""
    return exchange(port, source) or exchange(port, source, timeout=20)


def served(answer: bytes | None) -> bool:
    return answer is not None and answer.endswith(b"hello\n")


@pytest.fixture(scope="module")
def setup(tmp_path_factory, xinetd, tcpdmatch):
    work = tmp_path_factory.mktemp("access-serve")
    write_tables(work, ALLOW, DENY)
    base = free_port(4)
    ports = dict(zip(("wrapped", "wrapped4", "lists", "lists4"), range(base, base + 4)))
    return work, ports, config(work, ports)


def run(argv: list[str], work: Path, ports: dict[str, int], name: str) -> Namespaced:
    return Namespaced(argv, work / "hosts.allow", work / "hosts.deny",
                      work / f"{name}.log").start(list(ports.values()))


def serve_argv(conf: Path) -> list[str]:
    return [sys.executable, "-m", "inetd2systemd", "serve", "-c", str(conf), "--foreground"]


def test_serve_decides_as_xinetd_and_libwrap_for_every_client(setup):
    work, ports, conf = setup
    with run([XINETD, "-dontfork", "-f", str(conf), "-pidfile", str(work / "x.pid")],
             work, ports, "xinetd"):
        theirs = answers(ports)
    with run(serve_argv(conf), work, ports, "serve") as ours:
        mine = answers(ports)
        log = ours.log()
    libwrap = {source: verdict == "granted" for source, verdict in
               tcpdmatch_many(work, "i2s-wrapped", [s if ":" in s else f"::ffff:{s}"
                                                    for s in SOURCES]).items()}
    compared = 0
    for key, answer in theirs.items():
        assert served(mine[key]) == served(answer), (key, answer, mine[key], log[-3000:])
        name, source = key
        if name.startswith("wrapped"):
            assert served(answer) == libwrap[source if ":" in source else f"::ffff:{source}"], key
        compared += 1
    assert compared == 4 * 17 + 2
    # some of each, so that the comparison means something
    assert {served(a) for a in theirs.values()} == {True, False}
    # REMOTE_HOST: serve names an IPv4 client of a dual-stack socket by its IPv4 address,
    # as libwrap does and as systemd's REMOTE_ADDR does; xinetd passes the mapped form.
    assert mine[("wrapped", "127.0.0.2")].startswith(b"REMOTE_HOST=127.0.0.2\n")
    assert theirs[("wrapped", "127.0.0.2")].startswith(b"REMOTE_HOST=::ffff:127.0.0.2\n")
    assert "::ffff:" not in log  # the log names clients as the checks saw them


def test_an_edit_of_hosts_deny_applies_to_the_next_connection(setup, tmp_path):
    """libwrap opens the files at each connection: serve notices an edit as libwrap does."""
    _, ports, conf = setup
    write_tables(tmp_path, "i2s-wrapped: 127.0.0.0/255.255.255.0\n", "")
    with run(serve_argv(conf), tmp_path, {"wrapped": ports["wrapped"]}, "serve") as ours:
        assert served(exchange(ports["wrapped"], "127.0.0.4"))
        (tmp_path / "hosts.allow").write_text("i2s-wrapped: 127.0.0.4 : deny\n"
                                              "i2s-wrapped: 127.0.0.0/255.255.255.0\n")
        assert not served(exchange(ports["wrapped"], "127.0.0.4"))
        assert served(exchange(ports["wrapped"], "127.0.0.5"))
        assert ours.proc.poll() is None


def test_bad_hosts_allow_lines_cost_those_lines_and_serve_keeps_running(setup, tmp_path):
    """A leading-zero octet (once a crash at the first connection), 3,000 EXCEPTs (once a
    crash at start), a line without ':' and a bad option cost only themselves, as in
    libwrap."""
    _, ports, conf = setup
    allow = ("i2s-wrapped: 192.168.01., 127.0.0.6\n"
             "i2s-wrapped: 127.0.0.8 : frobnicate\n"
             "i2s-wrapped 127.0.0.9\n"
             "i2s-wrapped: 127.0.0.0/255.255.255.0" + " EXCEPT 127.0.0.7" * 3000 + "\n")
    write_tables(tmp_path, allow, "ALL: ALL\n")
    with run(serve_argv(conf), tmp_path, {"wrapped": ports["wrapped"]}, "serve") as ours:
        got = {s: served(exchange(ports["wrapped"], s)) for s in
               ("127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9", "127.0.0.10")}
        assert ours.proc.poll() is None, ours.log()
        log = ours.log()
    real = {s: v == "granted" for s, v in
            tcpdmatch_many(tmp_path, "i2s-wrapped", list(got)).items()}
    assert got == real, (got, real)
    # the EXCEPT chain is 51,000 bytes: past libwrap's 2048-byte line, where it stops
    assert real == {"127.0.0.6": True, "127.0.0.7": False, "127.0.0.8": False,
                    "127.0.0.9": False, "127.0.0.10": False}
    assert "hosts.allow:4:" in log and "2048" in log
    assert "hosts.allow:3:" in log and "missing ':'" in log
    assert "hosts.allow:2:" in log and "frobnicate" in log
    assert "Traceback" not in log


# -- wait-type services: the server takes the socket, and the check comes first -------------

ONE_DATAGRAM = """\
import socket
sock = socket.socket(fileno=0)
data, peer = sock.recvfrom(512)
sock.sendto(b"served " + data, peer)
"""

WAIT_SOURCES = [f"127.0.0.{n}" for n in range(1, 7)] + ["::1"]


def wait_config(work: Path, ports: dict[str, int], daemon: str) -> Path:
    script = work / "one_datagram.py"
    script.write_text(ONE_DATAGRAM)

    def entry(name: str, kind: str, port: int, extra: str) -> str:
        return (f"service {name}\n{{\n\ttype = UNLISTED\n\tsocket_type = {kind}\n\twait = yes\n"
                f"\tuser = root\n\tport = {port}\n\tserver = {sys.executable}\n"
                f"\tserver_args = {script}\n\tflags = NOLIBWRAP{extra}\n}}\n")

    path = work / f"wait-{daemon}.conf"
    path.write_text(
        entry("udp-dual", "dgram", ports["udp-dual"], " IPv6\n\tonly_from = 127.0.0.0/29 ::1\n"
              "\tno_access = ::ffff:127.0.0.3 127.0.0.5") +
        entry("udp4", "dgram", ports["udp4"], "\n\tbind = 127.0.0.1\n"
              "\tonly_from = 127.0.0.2 ::ffff:127.0.0.4") +
        # xinetd has no address for a client that a wait-type stream server accepts: its
        # only_from check fails for every connection
        entry("tcp-wait", "stream", ports["tcp-wait"], "\n\tbind = 127.0.0.1\n"
              "\tonly_from = 127.0.0.2"))
    return path


def datagram_answer(port: int, source: str, timeout: float = 1.5) -> bytes | None:
    family = socket.AF_INET6 if ":" in source else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as client:
        client.bind((source, 0))
        client.settimeout(timeout)
        client.sendto(b"hello", ("::1" if ":" in source else "127.0.0.1", port))
        try:
            return client.recv(512)
        except OSError:
            return None


def wait_answers(ports: dict[str, int]) -> dict[tuple[str, str], bool]:
    got = {}
    for source in WAIT_SOURCES:
        got["udp-dual", source] = datagram_answer(ports["udp-dual"], source) == b"served hello"
        if ":" not in source:
            got["udp4", source] = datagram_answer(ports["udp4"], source) == b"served hello"
    for source in ("127.0.0.1", "127.0.0.2"):
        got["tcp-wait", source] = exchange(ports["tcp-wait"], source, timeout=2) is not None
    return got


def test_wait_services_refuse_whom_xinetd_refuses(tmp_path, xinetd):
    """A datagram from a refused client never reaches a wait-type server (xinetd peeks at
    its sender first; serve once started the server for anyone), and a wait-type stream
    service with only_from serves nobody, as under xinetd."""
    write_tables(tmp_path, "", "")

    def answers(daemon: str) -> tuple[dict[tuple[str, str], bool], str]:
        # each daemon on ports of its own: a wait server the first one started may still
        # hold its socket, and answer, for a moment after that daemon stopped
        base = free_port(3)
        ports = dict(zip(("udp-dual", "udp4", "tcp-wait"), range(base, base + 3)))
        conf = wait_config(tmp_path, ports, daemon)
        argv = serve_argv(conf) if daemon == "serve" else [
            xinetd, "-dontfork", "-f", str(conf), "-pidfile", str(tmp_path / "x.pid")]
        ready = [ports["tcp-wait"]]  # the only stream socket: started once it accepts
        with run(argv, tmp_path, dict(zip(ready, ready)), daemon) as ran:
            return wait_answers(ports), ran.log()

    theirs, _ = answers("xinetd")
    mine, log = answers("serve")
    assert mine == theirs, (theirs, log[-3000:])
    assert theirs == {
        **{("udp-dual", s): s in ("127.0.0.1", "127.0.0.2", "127.0.0.4", "127.0.0.6", "::1")
           for s in WAIT_SOURCES},
        **{("udp4", s): s == "127.0.0.2" for s in WAIT_SOURCES if ":" not in s},
        ("tcp-wait", "127.0.0.1"): False, ("tcp-wait", "127.0.0.2"): False}


# A wait-type stream server accepts its own connections: xinetd asks libwrap about a
# client it cannot name ("unknown"), so `ALL: ALL` in hosts.deny refuses everyone unless
# hosts.allow grants that unknown client (ALL, UNKNOWN, `*`, ALL EXCEPT an address).
ACCEPT_ONE = """\
import socket
listener = socket.socket(fileno=0)
client, _ = listener.accept()
client.recv(64)
client.sendall(b"served\\n")
"""

UNKNOWN_CLIENT_RULES = {"w-all": "ALL", "w-unknown": "UNKNOWN", "w-addr": "127.0.0.1",
                        "w-except": "ALL EXCEPT 127.0.0.1", "w-known": "KNOWN",
                        "w-paranoid": "PARANOID", "w-mask": "0.0.0.0/0.0.0.0",
                        "w-local": "LOCAL", "w-glob": "*", "w-prefix": "unknown.",
                        "w-none": None}


def test_wait_stream_services_ask_libwrap_about_an_unknown_client(tmp_path, xinetd, tcpdmatch):
    """serve once skipped libwrap for a wait-type stream server and served everyone."""
    script = tmp_path / "accept_one.py"
    script.write_text(ACCEPT_ONE)
    names = list(UNKNOWN_CLIENT_RULES) + ["w-default", "control"]
    write_tables(tmp_path, "".join(f"{n}: {p}\n" for n, p in UNKNOWN_CLIENT_RULES.items() if p)
                 + f"{os.path.basename(sys.executable)}: ALL\n", "ALL: ALL\n")

    def entry(name: str, port: int) -> str:
        # w-default has no libwrap attribute: xinetd names it after its server's file
        wrap = {"control": "\tflags = NOLIBWRAP\n", "w-default": ""}.get(
            name, f"\tlibwrap = {name}\n")
        return (f"service {name}\n{{\n\ttype = UNLISTED\n\tsocket_type = stream\n\twait = yes\n"
                f"\tuser = root\n\tport = {port}\n\tbind = 127.0.0.1\n\tcps = 1000 1\n"
                f"\tserver = {sys.executable}\n\tserver_args = {script}\n{wrap}}}\n")

    def answers(daemon: str) -> tuple[dict[str, bool], str]:
        # each daemon on ports of its own: a server the first one started may still hold
        # its socket for a moment after that daemon stopped
        base = free_port(len(names))
        ports = dict(zip(names, range(base, base + len(names))))
        conf = tmp_path / f"{daemon}.conf"
        conf.write_text("".join(entry(n, ports[n]) for n in names))
        argv = serve_argv(conf) if daemon == "serve" else [
            XINETD, "-dontfork", "-f", str(conf), "-pidfile", str(tmp_path / "x.pid")]
        with run(argv, tmp_path, {"control": ports["control"]}, daemon) as ran:
            got = {n: exchange(ports[n], "127.0.0.1", timeout=3) == b"served\n" for n in names}
            return got, ran.log()

    theirs, _ = answers("xinetd")
    mine, log = answers("serve")
    assert mine == theirs, (theirs, log[-3000:])
    libwrap = {n: tcpdmatch_many(tmp_path, n, ["unknown"])["unknown"] == "granted"
               for n in UNKNOWN_CLIENT_RULES}
    assert {n: theirs[n] for n in libwrap} == libwrap
    assert theirs == {**{n: n in ("w-all", "w-unknown", "w-except", "w-glob")
                         for n in UNKNOWN_CLIENT_RULES}, "w-default": True, "control": True}
    assert "FAIL: w-addr libwrap" in log, log[-3000:]
