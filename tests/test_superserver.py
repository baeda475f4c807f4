"""`inetd2systemd serve` on its own: reload, bad input, failures it must survive, limits.

Real processes throughout: the superserver runs as a user would start it (the console
command), clients are real sockets, servers are real programs. The protections' own
bookkeeping (limits.py) is also checked directly, with time driven by hand.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from superserver_support import (PYTHON, Ports, Superserver, fd_inodes, needs_root, ours_argv,
                                 socket_inode, tcp_exchange)
from support import free_port, wait_for

from inetd2systemd.model import RateLimit
from inetd2systemd.superserver import limits

# -- the bookkeeping, with a hand-driven clock ------------------------------------------------


def test_inetd_rate_trips_on_the_nth_start_in_a_minute_then_restarts_the_window():
    rate = limits.SpawnRate(RateLimit(3, 60, 600))
    assert [rate.admit(t) for t in (0, 1, 2)] == [True, True, False]
    assert not rate.closes_socket
    # a start after the window ran out opens a new one
    rate = limits.SpawnRate(RateLimit(3, 60, 600))
    assert [rate.admit(t) for t in (0, 1, 61, 62)] == [True, True, True, True]


def test_xinetd_cps_trips_on_one_more_than_allowed_per_second_and_closes():
    rate = limits.SpawnRate(RateLimit(3, 1, 30))
    assert [rate.admit(t) for t in (0, 0.1, 0.2, 0.3)] == [True, True, True, False]
    assert rate.closes_socket
    rate = limits.SpawnRate(RateLimit(3, 1, 30))
    assert all(rate.admit(t * 0.6) for t in range(20))  # under the rate: never trips


def test_occupancy_counts_instances_and_sources():
    occ = limits.Occupancy(instances=2, per_source=1)
    assert occ.refusal("10.0.0.1") is None
    occ.started("10.0.0.1")
    assert occ.refusal("10.0.0.1") == limits.PER_SOURCE_LIMIT
    assert occ.refusal("10.0.0.2") is None
    occ.started("10.0.0.2")
    assert occ.refusal("10.0.0.3") == limits.SERVICE_LIMIT
    occ.ended("10.0.0.1")
    assert occ.refusal("10.0.0.1") is None
    occ.ended("10.0.0.2")
    assert occ.running == 0 and not occ.by_source


def test_access_times_windows_including_one_across_midnight():
    windows = ((8 * 60, 17 * 60), (22 * 60, 2 * 60))
    assert not limits.outside_access_times(windows, 9 * 60)
    assert limits.outside_access_times(windows, 18 * 60)
    assert not limits.outside_access_times(windows, 23 * 60)
    assert not limits.outside_access_times(windows, 60)
    assert not limits.outside_access_times((), 0)


def test_load_gate_reads_the_load_at_most_once_a_second():
    reads = []

    def fake_loadavg():
        reads.append(1)
        return (5.0, 0.0, 0.0)

    gate = limits.LoadGate(fake_loadavg)
    assert gate.too_high(4.0, now=100.0)
    assert gate.too_high(4.0, now=100.5) and len(reads) == 1
    assert not gate.too_high(6.0, now=101.5) and len(reads) == 2


# A hung NFS server cannot be had here, so the mount table is given as text in the
# kernel's own format (proc(5)); the real table of this machine is read as well.
MOUNTINFO = """\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /proc rw,nosuid shared:12 - proc proc rw
41 22 0:40 / /usr/local rw,relatime shared:20 - nfs4 files:/export/local rw,vers=4.2
42 41 0:41 / /usr/local/bin/tools rw shared:21 - ext4 /dev/vdb rw
43 22 0:42 / /srv/my\\040share rw shared:22 - fuse.sshfs me@host: rw
44 22 0:43 / /opt rw shared:23 - tmpfs tmpfs rw
45 44 0:44 / /opt rw shared:24 - cifs //nas/opt rw
"""


@pytest.mark.parametrize("path, network", [
    ("/usr/sbin/in.tftpd", False),
    ("/usr/local/sbin/in.fingerd", True),  # under the NFS mount
    ("/usr/local/bin/tools/x", False),  # a local disk mounted inside it
    ("/usr/localx/y", False),  # a prefix of a name is not a parent
    ("/srv/my share/daemon", True),  # \\040 in mountinfo is a space
    ("/opt/svc/run", True),  # a later mount on /opt hides the tmpfs
])
def test_servers_on_network_filesystems_take_the_fork_path(path, network):
    from inetd2systemd.superserver.spawn import on_network_filesystem
    assert on_network_filesystem(path, MOUNTINFO) is network


def test_a_local_program_keeps_the_posix_spawn_path_and_a_user_switch_forks():
    from inetd2systemd.config.inetd import parse_inetd
    from inetd2systemd.superserver.spawn import Launcher
    conf = parse_inetd("127.0.0.1:7001 stream tcp nowait root /bin/cat cat\n"
                       "127.0.0.1:7002 stream tcp nowait root /bin/cat cat\n", "inetd.conf")
    local, niced = conf.services[0], replace(conf.services[1], nice=5)
    assert not Launcher(local, {}).forks  # /bin/cat is on this machine's local disk
    assert Launcher(niced, {}).forks



# -- the running superserver ----------------------------------------------------------------

CONF = """\
127.0.0.1:i2s-cat   stream tcp4 nowait.100000 root /bin/cat cat
127.0.0.1:{second}  stream tcp4 nowait.100000 root {second_server}
127.0.0.1:discard   stream tcp4 nowait.100000 root internal
127.0.0.1:i2s-crash stream tcp4 nowait root {work}/crash.sh crash
127.0.0.1:i2s-hang  stream tcp4 nowait root /bin/sleep sleep 1000
127.0.0.1:i2s-fds   stream tcp4 nowait root /bin/ls ls -1 /proc/self/fd
127.0.0.1:i2s-lfd   stream tcp4 nowait root {python} {python} {work}/lfd.py
127.0.0.1:i2s-load  stream tcp4 wait   root {python} {python} {work}/waitsrv.py
127.0.0.1:i2s-env   stream tcp4 nowait root /nonexistent/server server
127.0.0.1:i2s-rate  dgram  udp4 wait   root /nonexistent/server server
"""

# A wait-type stream server: it gets the listening socket itself, accepts until idle.
WAIT_SERVER = """\
import os, select, socket
listener = socket.socket(fileno=0)
while select.select([listener], [], [], 0.7)[0]:
    conn, _ = listener.accept()
    conn.sendall(f"{os.getpid()}\\n".encode())
    conn.close()
"""

LISTEN_FDS_CHILD = """\
from inetd2systemd import listen_fds
socks = listen_fds()
peer = socks[0].getpeername()[0]
socks[0].sendall(f"{len(socks)} socket(s), connected to {peer}\\n".encode())
"""


def conf_text(work: Path, second: str = "i2s-id") -> str:
    server = "/usr/bin/id id" if second == "i2s-id" else "/bin/echo echo new"
    return CONF.format(second=second, second_server=server, work=work, python=PYTHON)


@pytest.fixture
def setup(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root for a private /etc/services (mount namespace)")
    ports = Ports()
    services = tmp_path / "services"
    services.write_text(ports.services_text())
    crash = tmp_path / "crash.sh"
    crash.write_text("#!/bin/sh\nkill -SEGV $$\n")  # inetd.conf has no quoting for sh -c
    crash.chmod(0o755)
    (tmp_path / "lfd.py").write_text(LISTEN_FDS_CHILD)
    (tmp_path / "waitsrv.py").write_text(WAIT_SERVER)
    conf = tmp_path / "inetd.conf"
    conf.write_text(conf_text(tmp_path))
    return tmp_path, ports, services, conf


def start(setup, *extra: str, wait_ports=("i2s-cat",)) -> Superserver:
    work, ports, services, conf = setup
    return Superserver("inetd2systemd", ours_argv(conf, *extra), work, services).start(
        [(ports[name], False) for name in wait_ports])


@needs_root
def test_reload_under_steady_connections_keeps_sockets_and_refuses_nobody(setup):
    work, ports, services, conf = setup
    daemon = start(setup, wait_ports=("i2s-cat", "i2s-id"))
    try:
        inode = socket_inode(ports["i2s-cat"])
        assert inode in fd_inodes(daemon.pid)
        results: list = []
        stop = threading.Event()

        def client() -> None:
            n = 0
            while not stop.is_set():
                payload = f"steady {n}\n".encode()
                results.append(tcp_exchange(ports["i2s-cat"], payload) == payload)
                n += 1

        threads = [threading.Thread(target=client) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.3)
            conf.write_text(conf_text(work, second="i2s-new"))  # i2s-id removed, i2s-new added
            daemon.signal(signal.SIGHUP)
            assert wait_for(lambda: socket_inode(ports["i2s-new"]) is not None)
            for _ in range(3):  # more reloads of the same file while clients keep coming
                time.sleep(0.2)
                daemon.signal(signal.SIGHUP)
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert len(results) > 50
        assert all(results), f"{results.count(False)} of {len(results)} connections failed"
        assert socket_inode(ports["i2s-cat"]) == inode and inode in fd_inodes(daemon.pid)
        assert tcp_exchange(ports["i2s-new"]) == b"new\n"
        assert tcp_exchange(ports["i2s-id"]) == "refused"
        assert "reloaded" in daemon.log()
    finally:
        daemon.stop()


@needs_root
def test_reload_with_a_bad_entry_applies_the_rest_and_keeps_running(setup):
    # One bad entry costs only itself, as in inetd: the reload goes through without it.
    work, ports, services, conf = setup
    daemon = start(setup)
    try:
        inode = socket_inode(ports["i2s-cat"])
        conf.write_text(conf_text(work) + "127.0.0.1:i2s-new stream tcp4 sometimes root /bin/cat cat\n"
                        "a..b:i2s-new stream tcp4 nowait root /bin/cat cat\n")
        daemon.signal(signal.SIGHUP)
        assert wait_for(lambda: "reloaded" in daemon.log())
        bad_line = len(conf_text(work).splitlines()) + 1
        assert f"{conf}:{bad_line}:31: error" in daemon.log()  # file:line:col of the bad field
        assert f"{conf}:{bad_line + 1}:1: error" in daemon.log()  # a host the IDNA codec refuses
        assert tcp_exchange(ports["i2s-cat"], b"still here\n") == b"still here\n"
        assert tcp_exchange(ports["i2s-id"]).startswith(b"uid=0(root)")
        assert socket_inode(ports["i2s-cat"]) == inode
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()


def test_a_bad_entry_at_start_is_reported_and_the_rest_served(tmp_path, cli):
    port = free_port()
    conf = tmp_path / "inetd.conf"
    conf.write_text(f"# fine\n127.0.0.1:7 stream tcp4 sometimes root /bin/cat cat\n"
                    f"127.0.0.1:{port} stream tcp4 nowait root /bin/cat cat\n")
    proc = subprocess.Popen([sys.executable, "-m", "inetd2systemd", "serve", "-c", str(conf),
                             "--foreground"], stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: tcp_exchange(port, b"up\n") == b"up\n")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert f"{conf}:2:25: error" in err and "openbsd-inetd skips this line" in err


def test_nothing_servable_at_start_names_file_and_line_and_starts_nothing(tmp_path, cli):
    conf = tmp_path / "inetd.conf"
    conf.write_text("# fine\n127.0.0.1:7 stream tcp4 sometimes root /bin/cat cat\n")
    result = cli("serve", "-c", str(conf), "--foreground", "--pidfile", str(tmp_path / "pid"))
    assert result.returncode == 2
    assert f"{conf}:2:" in result.stderr and "no service could be started" in result.stderr
    assert not (tmp_path / "pid").exists()


def test_missing_configuration_is_bad_input(tmp_path, cli):
    result = cli("serve", "-c", str(tmp_path / "nope.conf"), "--foreground")
    assert result.returncode == 2 and "nope.conf" in result.stderr


# A bug planted in the internal echo (the one mock here: a bug cannot be had otherwise):
# the connection that carries "boom" raises in the superserver's own loop.
PLANTED_BUG = """\
import socket, sys
from inetd2systemd.runtime import internal_services
from inetd2systemd.cli import main
echo = internal_services._Connection._echo
def planted(self, mask):
    try:
        head = self.sock.recv(16, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        head = b""
    if head.startswith(b"boom"):
        raise RuntimeError("a planted bug")
    echo(self, mask)
internal_services._Connection._echo = planted
sys.exit(main(sys.argv[1:]))
"""


def serve_with(script: str, work: Path, services: str, inetd: str) -> subprocess.Popen:
    """serve in the foreground through `script` (which plants a bug, then runs the
    command line), on these /etc/services and inetd.conf texts; stderr piped."""
    (work / "services").write_text(services)
    (work / "inetd.conf").write_text(inetd)
    return subprocess.Popen([sys.executable, "-c", script, "serve", "-c", str(work / "inetd.conf"),
                             "--services", str(work / "services"), "--foreground"],
                            stderr=subprocess.PIPE, text=True)


def test_a_bug_in_one_connection_costs_that_connection_not_the_superserver(tmp_path):
    echo, discard = free_port(), free_port()
    user = getpass.getuser()
    proc = serve_with(PLANTED_BUG, tmp_path, f"echo\t{echo}/tcp\ndiscard\t{discard}/tcp\n",
                      f"127.0.0.1:echo stream tcp4 nowait {user} internal\n"
                      f"127.0.0.1:discard stream tcp4 nowait {user} internal\n")
    try:
        assert wait_for(lambda: tcp_exchange(echo, b"up\n") == b"up\n")
        for _ in range(3):
            assert tcp_exchange(echo, b"boom\n") in (b"", "reset")  # that client is closed
        assert tcp_exchange(echo, b"still here\n") == b"still here\n"
        assert tcp_exchange(discard, b"x") == b""
        assert proc.poll() is None
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    # each distinct failure once, not once per connection (the first bytes may be read on
    # accept or at the connection's own event: two tracebacks at most)
    assert 1 <= err.count("internal error (please report)") <= 2, err
    assert "RuntimeError: a planted bug" in err


PLANTED_SENDER_BUG = """\
import sys
from inetd2systemd.superserver.arbiter import Arbiter
from inetd2systemd.cli import main
def planted(endpoint):
    print("planted bug called", file=sys.stderr, flush=True)
    raise RuntimeError("a planted bug")
Arbiter._datagram_sender = staticmethod(planted)
sys.exit(main(sys.argv[1:]))
"""


def test_a_bug_on_a_listening_socket_rests_that_socket_instead_of_spinning(tmp_path):
    """A wait service's datagram stays queued when its handling fails: watched again at
    once, it would fail in a loop at full CPU. The socket rests a second each time, and
    every other service answers meanwhile. (The bug is planted: the test says so.)"""
    udp, echo = free_port(), free_port()
    user = getpass.getuser()
    proc = serve_with(PLANTED_SENDER_BUG, tmp_path, f"i2s-wait\t{udp}/udp\necho\t{echo}/tcp\n",
                      f"127.0.0.1:i2s-wait dgram udp4 wait {user} /bin/true true\n"
                      f"127.0.0.1:echo stream tcp4 nowait {user} internal\n")
    try:
        assert wait_for(lambda: tcp_exchange(echo, b"up\n") == b"up\n")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(b"never read", ("127.0.0.1", udp))
        time.sleep(2.5)  # a spinning loop calls the planted bug thousands of times by now
        assert tcp_exchange(echo, b"still here\n") == b"still here\n"
        assert proc.poll() is None
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert 1 <= err.count("planted bug called") <= 5, err[-2000:]
    assert "i2s-wait: internal error; pausing this socket for 1s" in err
    assert err.count("internal error (please report)") == 1


@needs_root
def test_children_get_only_their_socket_and_find_it_with_listen_fds(setup):
    work, ports, services, conf = setup
    daemon = start(setup, wait_ports=("i2s-fds", "i2s-lfd"))
    try:
        # ls itself opens /proc/self/fd as 3: nothing of the superserver's leaks in
        assert tcp_exchange(ports["i2s-fds"]) == b"0\n1\n2\n3\n"
        assert tcp_exchange(ports["i2s-lfd"]) == b"1 socket(s), connected to 127.0.0.1\n"
    finally:
        daemon.stop()


@needs_root
def test_wait_stream_server_gets_the_listener_and_is_restarted_after_it_exits(setup):
    work, ports, services, conf = setup
    daemon = start(setup, wait_ports=("i2s-load",))
    try:
        first = [tcp_exchange(ports["i2s-load"]) for _ in range(3)]
        # one server took all three: the superserver stopped watching while it ran
        assert len(set(first)) == 1 and first[0].strip().isdigit(), first
        pid = int(first[0])
        assert wait_for(lambda: f"EXIT: i2s-load pid={pid}" in daemon.log())
        again = tcp_exchange(ports["i2s-load"])
        assert again.strip().isdigit() and int(again) != pid  # re-armed: a new server
        assert daemon.log().count("START: i2s-load") == 2
    finally:
        daemon.stop()


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid and stat[0] != "Z":
                found.append(int(entry))
    return found


@needs_root
def test_a_flood_is_bounded_by_instances(setup):
    work, ports, services, conf = setup
    xconf = work / "xinetd.conf"
    xconf.write_text("service i2s-hang\n{\n socket_type = stream\n wait = no\n user = root\n"
                     " bind = 127.0.0.1\n server = /bin/sleep\n server_args = 30\n"
                     " instances = 5\n cps = 1000 1\n}\n")
    daemon = Superserver("inetd2systemd", ours_argv(xconf), work, services).start(
        [(ports["i2s-hang"], False)])
    flood = []
    try:
        for _ in range(40):
            flood.append(socket.create_connection(("127.0.0.1", ports["i2s-hang"]), timeout=10))
        assert wait_for(lambda: daemon.log().count("FAIL: i2s-hang service_limit") == 35, timeout=20)
        assert wait_for(lambda: daemon.log().count("START: i2s-hang") == 5, timeout=20)
        assert len(_children_of(daemon.pid)) == 5
    finally:
        for s in flood:
            s.close()
        daemon.stop()


@needs_root
def test_a_server_that_cannot_start_is_logged_once_per_request(setup):
    work, ports, services, conf = setup
    daemon = start(setup, wait_ports=("i2s-env", "i2s-cat"))
    try:
        assert tcp_exchange(ports["i2s-env"], b"anyone?\n") in (b"", "reset")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"anyone?", ("127.0.0.1", ports["i2s-rate"]))
        assert wait_for(lambda: daemon.log().count("cannot start /nonexistent/server") == 2)
        time.sleep(0.5)  # a wait service that failed must not be retried on every turn
        assert daemon.log().count("cannot start /nonexistent/server") == 2
        assert tcp_exchange(ports["i2s-cat"], b"fine\n") == b"fine\n"
    finally:
        daemon.stop()


@needs_root
def test_xinetd_cps_closes_the_service_then_reopens_it_after_the_pause(setup):
    work, ports, services, conf = setup
    xconf = work / "xinetd.conf"
    xconf.write_text("service i2s-cat\n{\n socket_type = stream\n wait = no\n user = root\n"
                     " bind = 127.0.0.1\n server = /bin/cat\n cps = 2 1\n}\n")
    daemon = Superserver("inetd2systemd", ours_argv(xconf), work, services).start(
        [(ports["i2s-cat"], False)])
    try:
        burst = [socket.create_connection(("127.0.0.1", ports["i2s-cat"]), timeout=10) for _ in range(3)]
        assert wait_for(lambda: socket_inode(ports["i2s-cat"]) is None)  # off: closed
        assert tcp_exchange(ports["i2s-cat"], b"x\n") == "refused"
        for s in burst:
            s.close()
        assert wait_for(lambda: socket_inode(ports["i2s-cat"]) is not None, timeout=5)
        assert tcp_exchange(ports["i2s-cat"], b"back\n") == b"back\n"
        assert "service on again" in daemon.log()
    finally:
        daemon.stop()


@needs_root
def test_a_crashing_or_hanging_server_affects_only_its_own_connection(setup):
    work, ports, services, conf = setup
    daemon = start(setup, wait_ports=("i2s-cat", "i2s-crash", "i2s-hang"))
    hung = None
    try:
        assert tcp_exchange(ports["i2s-crash"], b"boom\n") in (b"", "reset")
        hung = socket.create_connection(("127.0.0.1", ports["i2s-hang"]), timeout=3)
        assert tcp_exchange(ports["i2s-cat"], b"unaffected\n") == b"unaffected\n"
        assert wait_for(lambda: "signal=SIGSEGV" in daemon.log())
        assert wait_for(lambda: "START: i2s-hang" in daemon.log())
        sleeper = [line for line in daemon.log().splitlines() if "START: i2s-hang" in line]
        pid = int(sleeper[0].split("pid=")[1].split()[0])
        assert os.path.exists(f"/proc/{pid}")
    finally:
        daemon.stop()
        if hung is not None:
            hung.close()
    # xinetd(8): stopping terminates the running servers too
    assert wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
                      open(f"/proc/{pid}/stat").read().split()[2] == "Z")


@needs_root
def test_running_out_of_descriptors_backs_off_instead_of_spinning(setup):
    work, ports, services, conf = setup
    # discard is served in-process, so every held connection costs the superserver an fd
    daemon = start(setup, wait_ports=("discard",))
    held = []
    try:
        subprocess.run(["prlimit", f"--pid={daemon.pid}", "--nofile=40:4096"], check=True)
        for _ in range(60):
            s = socket.socket()
            s.settimeout(3)
            s.connect(("127.0.0.1", ports["discard"]))  # the kernel completes it (backlog)
            held.append(s)
        assert wait_for(lambda: "Too many open files" in daemon.log())
        before = _cpu_seconds(daemon.pid)
        time.sleep(1.5)
        spent = _cpu_seconds(daemon.pid) - before
        assert spent < 0.5, f"the superserver burnt {spent:.2f}s of CPU in 1.5s"
        for s in held:
            s.close()
        held.clear()
        subprocess.run(["prlimit", f"--pid={daemon.pid}", "--nofile=1024:4096"], check=True)
        # after the back-off, service resumes
        assert wait_for(lambda: tcp_exchange(ports["i2s-cat"], b"back\n") == b"back\n")
        assert wait_for(lambda: tcp_exchange(ports["discard"], b"x" * 10) == b"", timeout=5)
    finally:
        for s in held:
            s.close()
        daemon.stop()


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@needs_root
def test_detaches_with_a_pidfile_and_stops_on_sigterm(setup):
    work, ports, services, conf = setup
    pidfile = work / "serve.pid"
    # A daemon started the classic way: the command returns once the sockets are open.
    started = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount --bind "$0" /etc/services && exec "$@"', str(services),
         PYTHON, "-m", "inetd2systemd", "serve", "-c", str(conf), "--pidfile", str(pidfile)],
        capture_output=True, text=True, timeout=30)
    assert started.returncode == 0, started.stderr
    pid = int(pidfile.read_text())
    try:
        assert os.getsid(pid) == pid or os.getsid(pid) != os.getsid(0)  # its own session
        assert tcp_exchange(ports["i2s-cat"], b"daemon\n") == b"daemon\n"
    finally:
        os.kill(pid, signal.SIGTERM)
    assert wait_for(lambda: not pidfile.exists())
    assert wait_for(lambda: socket_inode(ports["i2s-cat"]) is None)


def test_named_ports_from_a_services_file_and_a_clean_stop(tmp_path):
    port = free_port()
    (tmp_path / "services").write_text(f"i2s-mine\t{port}/tcp\n")
    conf = tmp_path / "inetd.conf"
    conf.write_text(f"127.0.0.1:i2s-mine stream tcp4 nowait.100 {getpass.getuser()} /bin/cat cat\n")
    proc = subprocess.Popen([PYTHON, "-m", "inetd2systemd", "serve", "-c", str(conf), "--services",
                             str(tmp_path / "services"), "--foreground"],
                            stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: socket_inode(port) is not None, timeout=10)
        assert tcp_exchange(port, b"named\n") == b"named\n"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "SIGINT: stopping" in err and "stopped" in err
    assert socket_inode(port) is None
