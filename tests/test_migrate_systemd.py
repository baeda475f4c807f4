"""A whole-host migration under a real systemd (container), start to finish.

The container plays the legacy Debian host of contrib/xinetd-import/samples/debian-inetd:
its /etc gets the sample's inetd.conf, services, hosts.allow and hosts.deny, and the
real openbsd-inetd (Debian's binary, with tcpd and libwrap) serves them. Then, inside
the container as an administrator would:

    inetd2systemd import / -o OUT          (preflight sees inetd holding the ports)
    inetd2systemd import / -o OUT --check before --source 127.0.0.2 --source 127.0.0.3
    OUT/install.sh                         (inetd stopped, sockets started)
    ... 127.0.0.2 reaches git, 127.0.0.3 does not, exactly as hosts.allow/deny say
    inetd2systemd import / -o OUT --check after ...   (side-by-side transcripts)
    OUT/rollback.sh                        (everything back as it was)

A second test does the same for the RHEL sample with the real xinetd (libwrap built in).
"""

from __future__ import annotations

import textwrap

from legacy_hosts import host_state, run_openbsd_inetd, run_xinetd, serve_files
from support import ROOT

SAMPLES = ROOT / "contrib" / "xinetd-import" / "samples"
VENV_BIN = ROOT / ".venv" / "bin"





CLIENT = textwrap.dedent("""
    import socket, sys
    source, port = sys.argv[1], int(sys.argv[2])
    send = sys.argv[3].encode().decode("unicode_escape").encode("latin-1")
    s = socket.socket()
    s.settimeout(3)
    s.bind((source, 0))
    try:
        s.connect(("127.0.0.1", port))
    except socket.timeout:
        print("TIMEOUT"); sys.exit(0)
    except ConnectionRefusedError:
        print("REFUSED"); sys.exit(0)
    s.sendall(send)
    s.settimeout(8)  # the first byte may wait for a unit to start under a busy manager
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
            s.settimeout(1.0)
    except socket.timeout:
        pass
    except ConnectionResetError:  # tcpd refuses: 5 s of silence, then a reset
        print("RESET"); sys.exit(0)
    print("DATA " + data.decode("latin-1").encode("unicode_escape").decode())
""")
GIT_REQUEST = r"002dgit-upload-pack /proj.git\0host=localhost\0"  # escaped for argv


def client(container, source: str, port: int, send: str = "") -> str:
    return container.python(CLIENT, source, str(port), send).stdout.strip()


def copy_tree_etc(container, sample: str, names) -> None:
    for name in names:
        path = SAMPLES / sample / "etc" / name
        if path.is_dir():
            for child in sorted(path.iterdir()):
                container.write(f"/etc/{name}/{child.name}", child.read_text())
        else:
            container.write(f"/etc/{name}", path.read_text())


def run_import(container, *args: str):
    return container.run(str(VENV_BIN / "inetd2systemd"), "import", "/", "-o", "/root/out", *args,
                         check=False, timeout=180)


def rollback_and_compare(container, before: dict) -> None:
    out = container.run("/root/out/rollback.sh", check=False)
    assert out.returncode == 0, out.stderr + out.stdout
    after = host_state(container)
    assert after == before


def test_debian_host_migration_allow_deny_equivalence_rollback(systemd, openbsd_inetd):
    c = systemd
    # -- the legacy host: openbsd-inetd with tcpd and the sample's rules --------------------
    copy_tree_etc(c, "debian-inetd", ["inetd.conf", "services", "hosts.allow", "hosts.deny",
                                      "default"])
    serve_files(c)
    run_openbsd_inetd(c, openbsd_inetd)
    assert c.wait_for(lambda: client(c, "127.0.0.2", 7, "ping\n") == "DATA ping\\n")
    # tcpd itself enforces the rules: granted from .2, refused (closed at once) from .3
    legacy_git = client(c, "127.0.0.2", 9418, GIT_REQUEST)
    assert legacy_git.startswith("DATA 0") and "HEAD\\x00" in legacy_git  # ref advertisement
    assert client(c, "127.0.0.3", 9418, GIT_REQUEST) in ("RESET", "DATA")

    # -- import, preflight, transcripts before ------------------------------------------------
    out = run_import(c)
    assert out.returncode == 1, out.stderr  # written, with warnings to read (the preflight's)
    summary = dict(w.split("=", 1) for w in out.stdout.strip().splitlines()[-1].split()[1:])
    assert summary["failed"] == "0" and int(summary["preflight_warnings"]) >= 4
    report = c.run("cat", "/root/out/report.md").stdout
    assert "port 9418/tcp is in use" in report and "inetd (pid" in report  # preflight
    assert "enforceable on this host" in report  # the container's systemd has cgroup BPF
    probes = str(SAMPLES / "debian-inetd" / "probes.json")
    sources = ["--source", "127.0.0.2", "--source", "127.0.0.3", "--probes", probes]
    out = run_import(c, "--check", "before", *sources)
    assert out.returncode == 0, out.stderr

    # -- the switch ------------------------------------------------------------------------------
    before = host_state(c)
    out = c.run("/root/out/install.sh", check=False)
    # 1: switched, but a socket was left stopped (its program is missing), and said so
    assert out.returncode == 1, out.stderr + out.stdout
    assert "finger.socket left stopped: missing /usr/sbin/in.fingerd" in out.stderr
    assert c.systemctl("is-active", "openbsd-inetd.service", check=False).stdout.strip() == "inactive"
    assert c.systemctl("is-enabled", "openbsd-inetd.service", check=False).stdout.strip() == "disabled"
    for sock in ("echo.socket", "time.socket", "git.socket", "tftp.socket"):
        assert c.show(sock, "ActiveState") == "active", sock
    assert c.show("finger.socket", "ActiveState") == "inactive"

    # -- exactly as hosts.allow / hosts.deny say ----------------------------------------------
    assert c.show("git.socket", "IPAddressAllow")  # systemd took the rules
    allowed = client(c, "127.0.0.2", 9418, GIT_REQUEST)
    assert allowed == legacy_git  # the same bytes as under inetd + tcpd
    assert client(c, "127.0.0.3", 9418, GIT_REQUEST) == "TIMEOUT"  # dropped by the BPF filter
    assert client(c, "127.0.0.1", 9418, GIT_REQUEST) == "TIMEOUT"  # not in hosts.allow either
    # echo is internal: openbsd-inetd never wrapped it, so it stays open to both
    assert client(c, "127.0.0.3", 7, "ping\n") == "DATA ping\\n"

    # -- equivalence, side by side ---------------------------------------------------------------
    out = run_import(c, "--check", "after", *sources)
    report = c.run("cat", "/root/out/report.md").stdout
    rows = {tuple(cell.strip() for cell in line.split("|")[1:3]): line.split("|")[5].strip()
            for line in report.splitlines()
            if line.startswith("| ") and line.count("|") == 6 and "verdict" not in line}
    table = report[report.index("## Equivalence check"):] + c.run(
        "journalctl", "--no-pager", "-n", "60", "-o", "short-precise").stdout
    for sid in ("echo", "git"):
        assert rows[(sid, "127.0.0.2")] == "same", table
    assert rows[("time", "127.0.0.2")].startswith("same")
    assert rows[("tftp", "127.0.0.2")] == "same", table
    # tcpd held the refused connection silently; BPF drops the SYN: nothing received either way
    assert rows[("git", "127.0.0.3")].startswith("same: nothing received"), table
    assert rows[("tftp", "127.0.0.3")] == "same", table  # no reply, before and after
    # finger's `twist` answered 127.0.0.2 before; it is not carried (the report said so)
    assert rows[("finger", "127.0.0.2")] == "DIFFERS"
    assert out.returncode == 1 and "differs=" in out.stdout
    html = c.run("cat", "/root/out/report.html").stdout
    assert "Equivalence check" in html and "<table>" in html

    # -- rollback ------------------------------------------------------------------------------------
    rollback_and_compare(c, before)
    assert c.wait_for(lambda: client(c, "127.0.0.2", 9418, GIT_REQUEST) == legacy_git)
    assert client(c, "127.0.0.3", 9418, GIT_REQUEST) in ("RESET", "DATA")  # tcpd refuses again
    c.systemctl("disable", "--now", "openbsd-inetd.service")


def test_rhel_host_migration_with_real_xinetd(systemd, xinetd):
    c = systemd
    copy_tree_etc(c, "rhel-xinetd", ["xinetd.conf", "xinetd.d", "services", "hosts.allow",
                                     "hosts.deny"])
    c.run("rm", "-f", "/etc/inetd.conf")  # this host is an xinetd host only
    # started by hand, not enabled: rollback must bring back exactly that
    run_xinetd(c, xinetd, enable=False)
    # xinetd's libwrap names the internal echo service "echo": .2 granted, .3 closed
    assert c.wait_for(lambda: client(c, "127.0.0.2", 7, "ping\n") == "DATA ping\\n", timeout=15)
    assert client(c, "127.0.0.3", 7, "ping\n") in ("RESET", "DATA")

    out = run_import(c, "--force")
    assert out.returncode == 1, out.stderr  # written, with warnings to read
    out = run_import(c, "--check", "before", "--source", "127.0.0.2")
    assert out.returncode == 0, out.stderr
    before = host_state(c)
    out = c.run("/root/out/install.sh", check=False)
    # 1: switched, but the sockets whose programs this container lacks were left stopped
    assert out.returncode == 1, out.stderr + out.stdout
    assert "left stopped (programs missing): check_mk.socket cvspserver.socket rsync.socket" \
        in out.stderr
    assert c.systemctl("is-active", "xinetd.service", check=False).stdout.strip() == "inactive"
    out = run_import(c, "--check", "after", "--source", "127.0.0.2")
    report = c.run("cat", "/root/out/report.md").stdout
    table = report[report.index("## Equivalence check"):report.index("## Switching")]
    assert out.returncode == 0 and "differs=0" in out.stdout, table
    assert "| echo-stream | 127.0.0.2 |" in table and "| daytime-stream | 127.0.0.2 |" in table
    assert client(c, "127.0.0.2", 7, "ping\n") == "DATA ping\\n"
    assert client(c, "127.0.0.3", 7, "ping\n") == "TIMEOUT"
    # daytime: 127.0.0.0/255.0.0.0 EXCEPT 127.0.0.3
    assert client(c, "127.0.0.1", 13).startswith("DATA ")
    assert client(c, "127.0.0.1", 13) != "DATA"
    assert client(c, "127.0.0.3", 13) == "TIMEOUT"
    rollback_and_compare(c, before)
    assert c.wait_for(lambda: client(c, "127.0.0.2", 7, "ping\n") == "DATA ping\\n", timeout=15)
    assert c.systemctl("is-enabled", "xinetd.service", check=False).stdout.strip() == "disabled"
    c.systemctl("stop", "xinetd.service")
