"""The example handlers, unchanged, under every real way of being started.

- systemd-socket-activate, all its modes (on the host: LISTEN_FDS or fd 0, listening
  socket or connection, stream or datagram);
- a real classic inetd (openbsd-inetd) and the suite's own superserver, both reading
  examples/handlers.inetd.conf;
- a real systemd 252 (container) with the unit pairs of examples/units/, plus the
  notify protocol as systemd judges it: READY=1 gating `active`, STATUS=, the watchdog
  restarting a hung service, and the fd store keeping a socket across a restart.

Clients are real sockets (inside the container for its units, since its network is
private). Paths in the shipped files point at an installed copy
(/usr/local/share/inetd2systemd/examples, /usr/bin/python3); the tests point them at
this checkout and its virtual environment, and run as root because that Python lives
under /root.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

from support import EXAMPLES, free_port
from systemd_container import VENV

PYTHON = str(VENV / "bin" / "python") if (VENV / "bin" / "python").exists() else sys.executable
INSTALLED_EXAMPLES = "/usr/local/share/inetd2systemd/examples"
TIMEOUT = 20  # generous: a shared 2-core machine; only failures wait this long


def localize(text: str) -> str:
    """Point a shipped unit or inetd.conf at this checkout (argv[0] too: Python finds
    its virtual environment from it)."""
    text = text.replace(INSTALLED_EXAMPLES, str(EXAMPLES))
    text = re.sub(r"/usr/bin/python3\b", PYTHON, text)
    return re.sub(r"(?m)(\s)python3(\s)", rf"\g<1>{PYTHON}\g<2>", text)


# -- clients ------------------------------------------------------------------------------

def tcp_exchange(port: int, payload: bytes, host: str = "127.0.0.1") -> bytes:
    with socket.create_connection((host, port), timeout=TIMEOUT) as conn:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        return read_all(conn)


def read_all(conn: socket.socket) -> bytes:
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def udp_exchange(port: int, payload: bytes, host: str = "127.0.0.1") -> tuple[bytes, int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.sendto(payload, (host, port))
        data, _ = sock.recvfrom(65536)
        return data, sock.getsockname()[1]


def concurrent_echo(port: int) -> None:
    """A second client is answered while the first still holds its connection open."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as first:
        first.sendall(b"first\n")
        assert first.recv(100) == b"first\n"
        assert tcp_exchange(port, b"second\n") == b"second\n"
        first.sendall(b"still here\n")
        assert first.recv(100) == b"still here\n"


# -- systemd-socket-activate ------------------------------------------------------------

@pytest.fixture
def socket_activate(systemd_socket_activate):
    """socket_activate(MODE, EXAMPLE, ARGS...): a context manager running
    systemd-socket-activate -l 127.0.0.1:PORT MODE python examples/EXAMPLE ARGS."""
    return partial(_socket_activate, systemd_socket_activate)


@contextmanager
def _socket_activate(program: str, mode: list[str], example: str, *args: str,
                     port: int | str | None = None):
    """A str port is a path: an AF_UNIX socket."""
    port = port or free_port()
    address = port if isinstance(port, str) else f"127.0.0.1:{port}"
    log = open(f"/tmp/socket-activate-{os.getpid()}-{abs(hash(port))}.log", "w+")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "NOTIFY_"))}
    proc = subprocess.Popen([program, "-l", address, *mode,
                             PYTHON, str(EXAMPLES / example), *args],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while "Listening on" not in Path(log.name).read_text():
            assert proc.poll() is None, Path(log.name).read_text()
            assert time.monotonic() < deadline, "systemd-socket-activate did not listen"
            time.sleep(0.02)
        yield port, proc, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the session we started: it and its children
        proc.wait()
        log.close()
        os.unlink(log.name)


STREAM_MODES = {
    "accept-no": [],  # one process, listening socket on fd 3 (LISTEN_FDS)
    "accept-yes": ["-a"],  # one process per connection, connection on fd 3
    "inetd-wait": ["--inetd"],  # listening socket on fd 0, like "stream wait"
    "inetd-nowait": ["--inetd", "-a"],  # connection on fds 0 and 1, like "stream nowait"
}
DATAGRAM_MODES = {
    "datagram": ["-d"],  # datagram socket on fd 3 (LISTEN_FDS)
    "inetd-datagram": ["-d", "--inetd"],  # datagram socket on fd 0, like "dgram wait"
}


@pytest.mark.parametrize("mode", STREAM_MODES.values(), ids=STREAM_MODES.keys())
def test_echo_stream_under_socket_activate(socket_activate, mode):
    with socket_activate(mode, "echo.py") as (port, proc, log):
        assert tcp_exchange(port, b"hello\n") == b"hello\n"
        concurrent_echo(port)
        big = os.urandom(1 << 20)  # more than any socket buffer: a real loop, no truncation
        assert tcp_exchange(port, big) == big


@pytest.mark.parametrize("mode", STREAM_MODES.values(), ids=STREAM_MODES.keys())
def test_greet_under_socket_activate(socket_activate, mode):
    with socket_activate(mode, "greet.py") as (port, proc, log):
        reply = tcp_exchange(port, "Ann\r\nBjörn\n\n".encode())
        assert reply == "Who are you?\r\nHello, Ann!\r\nHello, Björn!\r\nHello, stranger!\r\n".encode()
        assert tcp_exchange(port, b"") == b"Who are you?\r\n"  # EOF at once: a clean end


@pytest.mark.parametrize("mode", DATAGRAM_MODES.values(), ids=DATAGRAM_MODES.keys())
def test_udp_examples_under_socket_activate(socket_activate, mode):
    with socket_activate(mode, "udp_responder.py") as (port, proc, log):
        for _ in range(3):
            reply, client_port = udp_exchange(port, b"who am I?")
            assert reply == f"you are 127.0.0.1 port {client_port}\n".encode()
    with socket_activate(mode, "echo.py") as (port, proc, log):
        assert udp_exchange(port, b"\x00datagram\xff")[0] == b"\x00datagram\xff"


@pytest.mark.parametrize("mode", [[], ["--inetd"], ["-d"], ["-d", "--inetd"]],
                         ids=["accept-no", "inetd-wait", "datagram", "inetd-datagram"])
def test_long_running_modes_exit_when_idle(socket_activate, mode):
    """systemd-socket-activate execs into the handler: its exit is the handler's."""
    with socket_activate(mode, "echo.py", "0.3") as (port, proc, log):
        if "-d" in mode:
            assert udp_exchange(port, b"once")[0] == b"once"
        else:
            assert tcp_exchange(port, b"once") == b"once"
        assert proc.wait(TIMEOUT) == 0


def test_idle_time_waits_for_open_connections(socket_activate):
    with socket_activate([], "echo.py", "0.2") as (port, proc, log):
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as conn:
            conn.sendall(b"a")
            assert conn.recv(10) == b"a"
            time.sleep(0.6)  # well past the idle time, but a connection is open
            assert proc.poll() is None
            conn.sendall(b"b")
            assert conn.recv(10) == b"b"
        assert proc.wait(TIMEOUT) == 0


def test_sigterm_lets_open_connections_finish(socket_activate):
    with socket_activate([], "echo.py") as (port, proc, log):
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as conn:
            conn.sendall(b"before")
            assert conn.recv(10) == b"before"
            proc.send_signal(signal.SIGTERM)
            conn.sendall(b"after")
            assert conn.recv(10) == b"after"  # still served
        assert proc.wait(TIMEOUT) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.parametrize("mode", [["--seqpacket"], ["--seqpacket", "-a"]], ids=["listening", "accepted"])
def test_echo_over_unix_seqpacket(socket_activate, mode, tmp_path):
    path = str(tmp_path / "echo.sock")
    with socket_activate(mode, "echo.py", port=path):
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:
            conn.settimeout(TIMEOUT)
            conn.connect(path)
            for message in (b"one record", b"another"):
                conn.send(message)
                assert conn.recv(100) == message  # record boundaries kept


def test_max_connections_makes_clients_wait_not_fail(socket_activate, tmp_path):
    script = tmp_path / "one_at_a_time.py"
    script.write_text(textwrap.dedent("""
        from inetd2systemd import serve
        def echo(conn, peer):
            while data := conn.recv(100):
                conn.sendall(data)
        serve(echo, max_connections=1)
    """))
    with socket_activate([], str(script)) as (port, proc, log):
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as first:
            first.sendall(b"1")
            assert first.recv(10) == b"1"
            second = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            second.sendall(b"2")
            second.settimeout(0.5)
            with pytest.raises(TimeoutError):
                second.recv(10)  # queued in the backlog while the first is served
        second.settimeout(TIMEOUT)
        assert second.recv(10) == b"2"  # served as soon as the first one ended
        second.close()


def test_a_handler_exception_ends_only_its_connection(socket_activate):
    code = textwrap.dedent("""
        from inetd2systemd import serve
        def handler(conn, peer):
            if conn.recv(10) == b"boom":
                raise RuntimeError("handler failed")
            conn.sendall(b"fine")
        serve(handler)
    """)
    script = Path(f"/tmp/failing-handler-{os.getpid()}.py")
    script.write_text(code)
    try:
        port = free_port()
        with socket_activate([], str(script), port=port) as (_, proc, log):
            assert tcp_exchange(port, b"boom") == b""
            assert tcp_exchange(port, b"ok") == b"fine"
            assert "RuntimeError: handler failed" in Path(log.name).read_text()
    finally:
        script.unlink()


# -- classic inetd and the suite's superserver --------------------------------------------

def handlers_conf(tmp_path: Path, ports: dict[str, int] | None = None,
                  host: str = "127.0.0.1") -> tuple[Path, dict[str, int]]:
    """examples/handlers.inetd.conf as root, with 1 s idle for wait services, on other
    ports (free ones by default) bound to host (all addresses when empty)."""
    ports = ports or {"7007": free_port(), "7008": free_port(), "7009": free_port()}
    lines = []
    for line in localize((EXAMPLES / "handlers.inetd.conf").read_text()).splitlines():
        fields = line.split()
        if fields and not line.startswith("#"):
            fields[0] = f"{host}:{ports[fields[0]]}" if host else str(ports[fields[0]])
            fields[4] = "root"
            if fields[3] == "wait":
                fields[-1] = "1"
        lines.append(" ".join(fields))
    conf = tmp_path / "handlers.inetd.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf, ports


def exercise_handlers(ports: dict[str, int]) -> None:
    assert tcp_exchange(ports["7007"], b"echo me\n") == b"echo me\n"
    concurrent_echo(ports["7007"])
    assert tcp_exchange(ports["7008"], b"Ann\n") == b"Who are you?\r\nHello, Ann!\r\n"
    reply, client_port = udp_exchange(ports["7009"], b"?")
    assert reply.endswith(f"127.0.0.1 port {client_port}\n".encode())
    assert udp_exchange(ports["7007"], b"udp echo")[0] == b"udp echo"
    time.sleep(1.5)  # the wait-service handler exits after 1 s idle; the superserver re-arms
    assert udp_exchange(ports["7007"], b"again")[0] == b"again"


@contextmanager
def superserver(argv: list[str], ports: dict[str, int], log: Path):
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:  # ready once the stream ports accept
            assert proc.poll() is None, log.read_text()
            try:
                for key in ("7007", "7008"):
                    socket.create_connection(("127.0.0.1", ports[key]), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        time.sleep(0.2)  # let the probe connections' children finish
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="openbsd-inetd needs root to switch users")
def test_examples_under_real_openbsd_inetd(openbsd_inetd, tmp_path):
    conf, ports = handlers_conf(tmp_path)
    with superserver([openbsd_inetd, "-d", str(conf)], ports, tmp_path / "inetd.log"):
        exercise_handlers(ports)


def test_examples_under_the_suites_superserver(tmp_path):
    conf, ports = handlers_conf(tmp_path)
    argv = [PYTHON, "-m", "inetd2systemd", "serve", "--foreground", "-c", str(conf)]
    with superserver(argv, ports, tmp_path / "serve.log"):
        exercise_handlers(ports)


# -- a real systemd ---------------------------------------------------------------------

CLIENT = textwrap.dedent("""
    import json, socket, sys
    kind, port, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
    if kind == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(20)
        s.sendto(payload, ("127.0.0.1", port))
        print(json.dumps([s.recv(65536).decode(), s.getsockname()[1]]))
    else:
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        print(json.dumps([data.decode(), s.getsockname()[1]]))
""")


def inside(systemd, kind: str, port: int, payload: str) -> tuple[str, int]:
    result = systemd.python(CLIENT, kind, str(port), payload, check=False, timeout=60)
    assert result.returncode == 0, f"client to {kind} port {port} failed: {result.stderr}"
    return tuple(json.loads(result.stdout))


@pytest.fixture(scope="module")
def units(systemd, tmp_path_factory):
    """examples/units/ installed in the container (idle times shortened), sockets started."""
    directory = tmp_path_factory.mktemp("units")
    for path in sorted((EXAMPLES / "units").iterdir()):
        text = localize(path.read_text())
        text = text.replace("echo.py 30", "echo.py 1").replace("udp_responder.py 10", "udp_responder.py 1")
        # The test's Python lives under /root, which a DynamicUser cannot enter.
        text = text.replace("DynamicUser=yes", "DynamicUser=no")
        (directory / path.name).write_text(text)
    sockets = tuple(p.name for p in directory.iterdir() if p.suffix == ".socket")
    systemd.install_units(directory, start=sockets)
    return systemd


def test_shipped_units_pass_systemd_analyze_verify():
    units = sorted(str(p) for p in (EXAMPLES / "units").iterdir())
    result = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
    # The installed paths do not exist on this machine; everything else must be clean.
    problems = [line for line in result.stderr.splitlines()
                if line.strip() and INSTALLED_EXAMPLES not in line and "/usr/bin/python3" not in line]
    assert problems == []


def test_echo_accept_no_under_systemd(units):
    systemd = units
    assert inside(systemd, "tcp", 7007, "over tcp\n")[0] == "over tcp\n"
    assert inside(systemd, "udp", 7007, "over udp")[0] == "over udp"  # same process, 2nd fd
    # Type=notify: serve() said READY=1 with a status, after taking both sockets
    assert systemd.show("echo.service", "StatusText") == "serving 2 sockets"
    first = systemd.show("echo.service", "InvocationID")
    # idle (1 s here) -> the service exits cleanly; the socket stays and starts it again
    assert systemd.wait_for(lambda: systemd.show("echo.service", "ActiveState") == "inactive",
                            timeout=TIMEOUT)
    assert systemd.show("echo.service", "Result") == "success"
    assert systemd.show("echo.socket", "ActiveState") == "active"
    assert inside(systemd, "tcp", 7007, "woken again")[0] == "woken again"
    assert systemd.show("echo.service", "InvocationID") != first


def test_echo_accept_yes_under_systemd(units):
    systemd = units
    for n in range(3):
        assert inside(systemd, "tcp", 7017, f"connection {n}")[0] == f"connection {n}"
    assert int(systemd.show("echo-accept.socket", "NAccepted")) >= 3
    failed = systemd.systemctl("list-units", "--failed", "--plain", "--no-legend").stdout
    assert "echo-accept@" not in failed


def test_greet_inetd_style_under_systemd(units):
    systemd = units
    reply, _ = inside(systemd, "tcp", 7008, "Ann\nBob\n")
    assert reply == "Who are you?\r\nHello, Ann!\r\nHello, Bob!\r\n"


def test_udp_responder_under_systemd(units):
    systemd = units
    reply, port = inside(systemd, "udp", 7009, "?")
    assert reply == f"you are 127.0.0.1 port {port}\n"
    assert systemd.wait_for(
        lambda: systemd.show("udp-responder.service", "ActiveState") == "inactive", timeout=TIMEOUT)
    reply, port = inside(systemd, "udp", 7009, "?")  # the datagram waited in the socket
    assert reply == f"you are 127.0.0.1 port {port}\n"


# -- notify under systemd -------------------------------------------------------------------

GATED = textwrap.dedent("""
    import os, time
    from inetd2systemd import Notifier
    n = Notifier()
    n.status("waiting for the gate")
    while not os.path.exists("/run/i2s-gate"):
        time.sleep(0.05)
    n.ready("gate open: serving")
    while True:
        time.sleep(3600)
""")

WATCHDOG = textwrap.dedent("""
    import os, time
    from inetd2systemd import Notifier
    n = Notifier()
    every = n.watchdog_interval() / 2
    n.ready(f"pinging every {every}s")
    while not os.path.exists("/run/i2s-hang"):
        n.watchdog()
        time.sleep(every)
    os.unlink("/run/i2s-hang")  # so that the restarted process pings again
    n.status("hung")
    while True:
        time.sleep(3600)
""")

FDSTORE = textwrap.dedent("""
    import os, socket
    from inetd2systemd import Notifier, listen_fds_with_names
    n = Notifier()
    got = listen_fds_with_names()
    if "kept" in got:
        (listener,) = got["kept"]
        origin = "stored"
    else:
        listener = socket.create_server(("127.0.0.1", 7100))
        n.store_fds([listener], name="kept")
        origin = "new"
    inode = os.fstat(listener.fileno()).st_ino
    n.ready(f"{origin} socket inode {inode}")
    while True:
        conn, _ = listener.accept()
        conn.sendall(f"{origin} {inode}".encode())
        conn.close()
""")


def notify_unit(systemd, name: str, code: str, extra: str = "") -> None:
    systemd.write(f"/run/i2s/{name}.py", code)
    systemd.write(f"/etc/systemd/system/{name}.service", textwrap.dedent(f"""
        [Service]
        Type=notify
        ExecStart={PYTHON} /run/i2s/{name}.py
        {extra}
    """))
    systemd.systemctl("daemon-reload")


def test_notify_service_is_active_only_after_ready(systemd):
    notify_unit(systemd, "gated", GATED)
    systemd.systemctl("start", "--no-block", "gated.service")
    assert systemd.wait_for(
        lambda: systemd.show("gated.service", "StatusText") == "waiting for the gate", timeout=TIMEOUT)
    assert systemd.show("gated.service", "ActiveState") == "activating"  # running, not ready
    assert systemd.show("gated.service", "SubState") == "start"
    systemd.run("touch", "/run/i2s-gate")
    assert systemd.wait_for(lambda: systemd.show("gated.service", "ActiveState") == "active",
                            timeout=TIMEOUT)
    assert systemd.show("gated.service", "StatusText") == "gate open: serving"


def test_watchdog_restarts_a_service_that_stops_pinging(systemd):
    # WatchdogSec=2, pings every 1 s: a loaded CI machine has a second of slack
    notify_unit(systemd, "watched", WATCHDOG, "WatchdogSec=2\nRestart=on-failure\nRestartSec=0.1")
    systemd.systemctl("start", "watched.service")
    first_pid = systemd.show("watched.service", "MainPID")
    assert systemd.show("watched.service", "StatusText") == "pinging every 1.0s"
    time.sleep(4)  # twice WatchdogSec: pings keep it alive
    assert systemd.show("watched.service", "NRestarts") == "0"
    systemd.run("touch", "/run/i2s-hang")
    assert systemd.wait_for(lambda: systemd.show("watched.service", "NRestarts") == "1",
                            timeout=TIMEOUT)
    assert systemd.wait_for(lambda: systemd.show("watched.service", "ActiveState") == "active",
                            timeout=TIMEOUT)
    assert systemd.show("watched.service", "MainPID") != first_pid
    log = systemd.run("journalctl", "-u", "watched.service", "--no-pager").stdout
    assert "Watchdog timeout" in log


def test_serve_pings_the_watchdog_by_itself(units):
    systemd = units
    systemd.write("/etc/systemd/system/echo.service.d/watchdog.conf",
                  "[Service]\nWatchdogSec=2\nExecStart=\nExecStart="
                  f"{PYTHON} {EXAMPLES / 'echo.py'}\n")  # no idle exit this time
    systemd.systemctl("daemon-reload")
    try:
        assert inside(systemd, "tcp", 7007, "x")[0] == "x"
        time.sleep(4)  # twice WatchdogSec
        assert systemd.show("echo.service", "ActiveState") == "active"
        assert systemd.show("echo.service", "NRestarts") == "0"
        assert systemd.show("echo.service", "Result") == "success"
    finally:
        systemd.run("rm", "-rf", "/etc/systemd/system/echo.service.d")
        systemd.systemctl("stop", "echo.service")
        systemd.systemctl("daemon-reload")


def test_fd_store_keeps_the_listening_socket_across_a_restart(systemd):
    notify_unit(systemd, "kept", FDSTORE, "FileDescriptorStoreMax=4")
    systemd.systemctl("start", "kept.service")
    status = systemd.show("kept.service", "StatusText")
    assert status.startswith("new socket inode ")
    inode = status.rsplit(" ", 1)[1]
    systemd.systemctl("restart", "kept.service")
    assert systemd.show("kept.service", "StatusText") == f"stored socket inode {inode}"
    assert inside(systemd, "tcp", 7100, "")[0] == f"stored {inode}"


def test_handlers_inetd_conf_converted_by_the_suite_runs_under_systemd(systemd, tmp_path):
    """The inetd.conf lines, through `inetd2systemd convert`, start the same handlers
    (inetd style: StandardInput=socket, the datagram socket on fd 0 for `wait`)."""
    conf, _ = handlers_conf(tmp_path, {"7007": 7207, "7008": 7208, "7009": 7209}, host="")
    out = tmp_path / "units"
    result = subprocess.run([PYTHON, "-m", "inetd2systemd", "convert", "-o", str(out), str(conf)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    sockets = tuple(p.name for p in out.iterdir() if p.suffix == ".socket")
    systemd.install_units(out, start=sockets)
    assert inside(systemd, "tcp", 7207, "converted echo\n")[0] == "converted echo\n"
    assert inside(systemd, "udp", 7207, "converted udp echo")[0] == "converted udp echo"
    assert inside(systemd, "tcp", 7208, "Ann\n")[0] == "Who are you?\r\nHello, Ann!\r\n"
    reply, port = inside(systemd, "udp", 7209, "?")
    assert reply == f"you are 127.0.0.1 port {port}\n"


NAMES = textwrap.dedent("""
    import json
    from inetd2systemd import listen_fds_with_names, serve
    got = listen_fds_with_names()
    described = json.dumps([[name, s.family.name, s.type.name, s.getsockname()[1]]
                            for name, s in got.pairs])
    def handler(conn, peer):
        conn.sendall(described.encode())
    serve(handler, sockets=got.sockets, idle_timeout=0.5)
""")


@pytest.mark.parametrize("accept", ["no", "yes"])
def test_socket_names_from_systemd(systemd, accept):
    """FileDescriptorName= of two socket units for one service; Accept=yes: "connection"."""
    name = f"named{accept}"
    service = f"{name}@.service" if accept == "yes" else f"{name}.service"
    base = 7300 if accept == "no" else 7310
    systemd.write(f"/run/i2s/{name}.py", NAMES)
    systemd.write(f"/etc/systemd/system/{service}",
                  f"[Service]\nExecStart={PYTHON} /run/i2s/{name}.py\n")
    systemd.write(f"/etc/systemd/system/{name}.socket", textwrap.dedent(f"""
        [Socket]
        ListenStream=127.0.0.1:{base}
        ListenStream=127.0.0.1:{base + 1}
        FileDescriptorName=web
        Accept={accept}
    """))
    if accept == "no":
        systemd.write(f"/etc/systemd/system/{name}-admin.socket", textwrap.dedent(f"""
            [Socket]
            ListenStream=127.0.0.1:{base + 2}
            FileDescriptorName=admin
            Service={service}
        """))
    systemd.systemctl("daemon-reload")
    systemd.systemctl("start", f"{name}.socket", *([f"{name}-admin.socket"] if accept == "no" else []))
    described = json.loads(inside(systemd, "tcp", base + 1, "")[0])
    if accept == "yes":
        assert described == [["connection", "AF_INET", "SOCK_STREAM", base + 1]]
    else:  # the order across socket units is undefined (sd_listen_fds(3)), within one it is kept
        assert sorted(map(tuple, described)) == [
            ("admin", "AF_INET", "SOCK_STREAM", base + 2),
            ("web", "AF_INET", "SOCK_STREAM", base),
            ("web", "AF_INET", "SOCK_STREAM", base + 1),
        ]
        web = [d[3] for d in described if d[0] == "web"]
        assert web == [base, base + 1]


RELOADING = textwrap.dedent("""
    import os, signal, time
    from inetd2systemd import Notifier
    n = Notifier()
    reload_asked = False
    def on_hup(signum, frame):
        global reload_asked
        reload_asked = True
    signal.signal(signal.SIGHUP, on_hup)
    n.ready("generation 1")
    generation = 1
    while True:
        time.sleep(0.05)
        if reload_asked:
            n.reloading("reloading")
            while not os.path.exists("/run/i2s-reloaded"):
                time.sleep(0.05)
            generation += 1
            reload_asked = False
            n.ready(f"generation {generation}")
""")


def test_reloading_then_ready_is_a_reload_to_systemd(systemd):
    notify_unit(systemd, "reloader", RELOADING, "ExecReload=/bin/kill -HUP $MAINPID")
    systemd.systemctl("start", "reloader.service")
    pid = systemd.show("reloader.service", "MainPID")
    systemd.systemctl("reload", "--no-block", "reloader.service")
    assert systemd.wait_for(lambda: systemd.show("reloader.service", "StatusText") == "reloading",
                            timeout=TIMEOUT)
    # ExecReload= (kill) is long done: RELOADING=1 is what holds the state until READY=1
    assert systemd.wait_for(lambda: systemd.show("reloader.service", "ControlPID") == "0",
                            timeout=TIMEOUT)
    assert systemd.show("reloader.service", "ActiveState") == "reloading"
    systemd.run("touch", "/run/i2s-reloaded")
    assert systemd.wait_for(lambda: systemd.show("reloader.service", "ActiveState") == "active",
                            timeout=TIMEOUT)
    assert systemd.show("reloader.service", "StatusText") == "generation 2"
    assert systemd.show("reloader.service", "MainPID") == pid  # reloaded, not restarted


CHATTY = textwrap.dedent("""
    import sys
    from inetd2systemd import serve
    def handler(conn, peer):
        print("stdout line for the log", flush=True)
        conn.sendall(b"reply only")
    serve(handler)
""")


def test_inetd_style_print_goes_to_the_journal_not_the_peer(systemd):
    """StandardInput=socket (stdout follows it), StandardError=journal: once listen_fds()
    took the socket, print() lands in the journal and the peer gets only the reply."""
    systemd.write("/run/i2s/chatty.py", CHATTY)
    systemd.write("/etc/systemd/system/chatty.socket",
                  "[Socket]\nListenStream=127.0.0.1:7400\nAccept=yes\n")
    systemd.write("/etc/systemd/system/chatty@.service", textwrap.dedent(f"""
        [Service]
        ExecStart={PYTHON} /run/i2s/chatty.py
        StandardInput=socket
        StandardError=journal
        SyslogIdentifier=chatty
    """))
    systemd.systemctl("daemon-reload")
    systemd.systemctl("start", "chatty.socket")
    assert inside(systemd, "tcp", 7400, "")[0] == "reply only"
    assert systemd.wait_for(lambda: "stdout line for the log" in systemd.run(
        "journalctl", "-t", "chatty", "--no-pager", "-o", "cat").stdout, timeout=TIMEOUT)
