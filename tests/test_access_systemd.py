"""Access under a real systemd with its BPF filter, against the real xinetd and libwrap.

Inside the container (its own network namespace), the packaged xinetd (linked with
libwrap) serves echo on a dozen ports: dual-stack and IPv4 sockets, only_from/no_access
in xinetd's forms (IPv4-mapped entries, ::/0, glibc's numeric forms, wildcards), and
libwrap-checked services whose hosts.allow rules use the forms libwrap reads differently
from how they look (host bits under a mask, /0, leading zeros, masks with holes, EXCEPT,
suffixes, wildcards). Clients bound to 127.0.0.1-16 try each one. Then the host is
imported and switched (install.sh), the same clients try the socket units, and no
client may get in under systemd that xinetd turned away; where the import says the
translation is exact, every verdict is the same.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from legacy_hosts import run_xinetd

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
SOURCES = [f"127.0.0.{n}" for n in range(1, 17)]

# (id, dual-stack, only_from, no_access): internal echo, xinetd's lists only
LISTS = [
    ("l-mapped-deny", True, "127.0.0.0/28", "::ffff:127.0.0.5 ::ffff:127.0.0.8/125"),
    ("l-mapped-deny4", False, "127.0.0.0/28", "::ffff:127.0.0.5 127.0.0.9"),
    ("l-mapped-only", True, "::ffff:127.0.0.2 127.0.0.{3,4}", None),
    ("l-v6-all", True, None, "::/0"),
    ("l-wildcard", True, "127.0.0.0", "127.0.0.1/31"),
    ("l-glibc", False, "127.1 0177.0.0.3", None),
]
# libwrap name -> hosts.allow lines (hosts.deny refuses everything else)
WRAPPED = {
    "w-mask": ["w-mask: 127.0.0.8/255.255.255.248 EXCEPT 127.0.0.9",
               "w-mask: 127.0.0.2, 127.0.0.05"],
    "w-nothing": ["w-nothing: 127.0.0.1/24, 127.0.0.0/0, 127.0.0.4/30"],
    "w-holes": ["w-holes: 127.0.0.3 : deny", "w-holes: 127.0.0.0/255.255.255.241"],
    "w-except": ["w-except: ALL EXCEPT 127.0.0.0/255.255.255.252"],
    "w-glob": ["w-glob: 127.0.0. EXCEPT 127.0.0.1?"],
    "w-suffix": ["w-suffix: .0.0.5, 127.0.0.6"],
}
DENY = "w-except: 127.0.0.6\nALL: ALL\n"

CLIENTS = textwrap.dedent("""
    import json, socket, sys
    from concurrent.futures import ThreadPoolExecutor
    def one(job):
        source, port = job
        s = socket.socket()
        s.settimeout(1.5)
        s.bind((source, 0))
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(b"ping\\n")
            got = b""
            while len(got) < 5:
                chunk = s.recv(16)
                if not chunk:
                    break
                got += chunk
            return got == b"ping\\n"
        except OSError:
            return False
        finally:
            s.close()
    jobs = json.loads(sys.argv[1])
    with ThreadPoolExecutor(16) as pool:
        print(json.dumps(list(pool.map(one, [tuple(j) for j in jobs]))))
""")


def xinetd_conf() -> tuple[str, dict[str, int]]:
    entries, ports = [], {}
    port = 7100
    for sid, dual, only_from, no_access in LISTS:
        port += 1
        ports[sid] = port
        lines = [f"id = {sid}", "type = INTERNAL UNLISTED", "socket_type = stream",
                 "wait = no", f"port = {port}", "flags = NOLIBWRAP" + (" IPv6" if dual else ""),
                 "cps = 10000 1"]
        lines.append("bind = ::" if dual else "bind = 127.0.0.1")
        if only_from is not None:
            lines.append(f"only_from = {only_from}")
        if no_access:
            lines.append(f"no_access = {no_access}")
        entries.append("service echo\n{\n\t" + "\n\t".join(lines) + "\n}\n")
    for name in WRAPPED:
        port += 1
        ports[name] = port
        lines = [f"id = {name}", "type = INTERNAL UNLISTED", "socket_type = stream",
                 "wait = no", f"port = {port}", "flags = IPv6", "bind = ::", f"libwrap = {name}",
                 "cps = 10000 1"]
        entries.append("service echo\n{\n\t" + "\n\t".join(lines) + "\n}\n")
    return "\n".join(entries), ports


def verdicts(c, ports: dict[str, int]) -> dict[tuple[str, str], bool]:
    jobs = [(source, port) for port in ports.values() for source in SOURCES]
    out = c.python(CLIENTS, json.dumps(jobs), timeout=300).stdout
    names = {port: sid for sid, port in ports.items()}
    return {(names[port], source): ok for (source, port), ok in zip(jobs, json.loads(out))}


def test_systemd_never_admits_a_client_xinetd_and_libwrap_refused(systemd, xinetd):
    c = systemd
    conf, ports = xinetd_conf()
    c.write("/etc/xinetd.conf", conf)
    c.write("/etc/hosts.allow", "".join(line + "\n" for lines in WRAPPED.values() for line in lines))
    c.write("/etc/hosts.deny", DENY)
    c.run("rm", "-f", "/etc/inetd.conf")
    run_xinetd(c, xinetd, enable=False)
    assert c.wait_for(lambda: verdicts(c, {"w-except": ports["w-except"]})[("w-except", "127.0.0.5")],
                      timeout=20)
    theirs = verdicts(c, ports)

    out = c.run(str(VENV_BIN / "inetd2systemd"), "import", "/", "-o", "/root/out", "--force",
                "--no-port-check", check=False, timeout=180)
    assert out.returncode in (0, 1), out.stderr
    summary = json.loads(c.run("cat", "/root/out/summary.json").stdout)
    out = c.run("/root/out/install.sh", check=False, timeout=180)
    assert out.returncode == 0, out.stderr + out.stdout
    for sid in ports:
        assert c.show(f"{sid}.socket", "ActiveState") == "active", sid
    assert c.show("l-mapped-deny.socket", "IPAddressAllow")  # systemd took the rules
    ours = verdicts(c, ports)

    services = {s["id"]: s for s in summary["services"]}
    report = c.run("cat", "/root/out/report.md").stdout
    exact_ones = 0
    for (sid, source), admitted in ours.items():
        if admitted:
            assert theirs[(sid, source)], (f"systemd admits {source} to {sid}, xinetd did not",
                                           services[sid])
        exact = services[sid]["exact"] is not False and \
            "stricter" not in " ".join(f["message"] for f in services[sid]["findings"])
        if not exact:
            continue
        assert admitted == theirs[(sid, source)], (sid, source, admitted, services[sid])
        exact_ones += 1
    exact_services = {sid for sid in ports if services[sid]["exact"] is not False and "stricter"
                      not in " ".join(f["message"] for f in services[sid]["findings"])}
    assert exact_services == set(ports) - {"w-glob", "w-suffix"}, report[-3000:]
    assert exact_ones == len(exact_services) * len(SOURCES)
    # and the comparison is not trivial: each side admits some and refuses some
    assert {v for v in theirs.values()} == {True, False}
    # an IPv4-mapped no_access entry refuses the IPv4 client on a dual-stack socket...
    assert not theirs[("l-mapped-deny", "127.0.0.5")] and not ours[("l-mapped-deny", "127.0.0.5")]
    # ... and not on an IPv4 socket, where xinetd never compares it
    assert theirs[("l-mapped-deny4", "127.0.0.5")] and ours[("l-mapped-deny4", "127.0.0.5")]
    # ::/0 in no_access refuses IPv4 clients of a dual-stack socket too
    assert not any(ours[("l-v6-all", s)] or theirs[("l-v6-all", s)] for s in SOURCES)
    # what libwrap matches nothing with stays nothing: 127.0.0.1/24, 127.0.0.0/0, 127.0.0.05
    assert [s for s in SOURCES if ours[("w-nothing", s)]] == \
        ["127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"]


ID_CLIENT = textwrap.dedent("""
    import socket, sys
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    print(data.decode().strip())
""")


def test_a_numeric_user_runs_with_the_same_identity_under_systemd_as_under_xinetd(systemd, xinetd):
    """xinetd runs `user = 4` with group 4 (not the passwd entry's group); the converted
    unit says User=4 Group=4, and systemd runs it so."""
    c = systemd
    c.write("/etc/xinetd.conf", textwrap.dedent("""\
        service i2s-id
        {
        \ttype = UNLISTED
        \tsocket_type = stream
        \twait = no
        \tport = 7200
        \tflags = NOLIBWRAP
        \tserver = /usr/bin/id
        \tuser = 4
        }
        """))
    run_xinetd(c, xinetd, enable=False)
    assert c.wait_for(lambda: c.python(ID_CLIENT, "7200", check=False).returncode == 0, timeout=20)
    theirs = c.python(ID_CLIENT, "7200").stdout.strip()
    c.systemctl("stop", "xinetd.service")
    out = c.run(str(VENV_BIN / "inetd2systemd"), "convert", "/etc/xinetd.conf", "--install",
                check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    assert c.wait_for(lambda: c.python(ID_CLIENT, "7200", check=False).returncode == 0, timeout=20)
    ours = c.python(ID_CLIENT, "7200").stdout.strip()
    assert ours.split(" groups=")[0] == theirs.split(" groups=")[0] == "uid=4(sync) gid=4(adm)", \
        (ours, theirs)
