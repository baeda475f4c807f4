"""runtime.internal_services: the inetd built-ins, their bytes, their loop, and parity with the peers.

Real sockets throughout: `inetd2systemd internal` is started by systemd-socket-activate
(the LISTEN_FDS protocol and inetd's fd 0), the embeddable InternalService is driven by a
selector loop of the test's own (as the superserver drives it), and the output is
compared with the real openbsd-inetd and xinetd built-ins in private network namespaces.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from support import free_port, wait_for
from inetd2systemd.runtime.internal_services import (InternalService, chargen_bytes, chargen_line,
                                            daytime_bytes, time_bytes)

BIN = Path(sys.executable).parent / "inetd2systemd"


# -- the pure producers ----------------------------------------------------------------------

def test_time_is_seconds_since_1900_big_endian_32_bit():
    assert time_bytes(0) == struct.pack("!I", 2208988800)
    assert time_bytes(1_000_000_000) == struct.pack("!I", 3208988800)
    assert time_bytes(2**32 - 2208988800 + 5) == struct.pack("!I", 5)  # wraps in 2036


def test_daytime_formats():
    now = time.mktime((2026, 3, 7, 9, 5, 3, 0, 0, -1))
    assert daytime_bytes(now) == time.strftime("%a %b %e %H:%M:%S %Y", time.localtime(now)).encode() + b"\r\n"
    assert daytime_bytes(now, "xinetd").startswith(b"07 MAR 2026 09:05:03 ")
    assert daytime_bytes(now, "xinetd").endswith(b"\r\n")


def test_chargen_lines_rotate_through_the_95_printable_characters():
    ring = bytes(range(32, 127))
    assert chargen_line(0) == ring[:72] + b"\r\n"
    assert chargen_line(1) == ring[1:73] + b"\r\n"
    assert chargen_line(94) == (ring * 2)[94:166] + b"\r\n"
    assert chargen_line(95) == chargen_line(0)
    stream = b"".join(chargen_line(i) for i in range(300))
    assert chargen_bytes(0, len(stream)) == stream
    assert chargen_bytes(74 * 3 + 5, 1000) == stream[74 * 3 + 5:74 * 3 + 1005]


# -- the embeddable service in a loop of the test's own ----------------------------------------

class Loop:
    """A foreign selector loop, as the superserver has: InternalService only registers."""

    def __init__(self, name: str, kind=socket.SOCK_STREAM, **kw) -> None:
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.selector = selectors.DefaultSelector()
        self.service = InternalService(name, self.sock, **kw)
        self.service.register(self.selector)
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop:
            for key, mask in self.selector.select(0.05):
                key.data(mask)

    def close(self) -> None:
        self.stop = True
        self.thread.join(5)
        self.service.unregister()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_echo_keeps_every_byte_when_the_client_reads_slowly():
    payload = os.urandom(4 * 1024 * 1024)
    with Loop("echo") as loop:
        client = socket.create_connection(("127.0.0.1", loop.port), timeout=10)
        sender = threading.Thread(target=lambda: (client.sendall(payload),
                                                  client.shutdown(socket.SHUT_WR)))
        sender.start()
        time.sleep(0.3)  # let the server's send buffer fill: it must stop reading, not drop
        got = read_all(client)
        sender.join()
        assert got == payload
        assert wait_for(lambda: loop.service.connections == 0)


def test_discard_reads_to_the_end_and_closes():
    with Loop("discard") as loop:
        client = socket.create_connection(("127.0.0.1", loop.port), timeout=5)
        client.sendall(b"x" * 500_000)
        client.shutdown(socket.SHUT_WR)
        assert read_all(client) == b""


def test_chargen_connection_ends_when_the_client_leaves():
    with Loop("chargen") as loop:
        client = socket.create_connection(("127.0.0.1", loop.port), timeout=5)
        got = b""
        while len(got) < 74 * 10:
            got += client.recv(4096)
        assert got.startswith(chargen_line(0) + chargen_line(1))
        assert loop.service.connections == 1
        client.close()
        assert wait_for(lambda: loop.service.connections == 0)


def test_max_connections_makes_extra_clients_wait_not_fail():
    with Loop("echo", max_connections=2) as loop:
        first, second = (socket.create_connection(("127.0.0.1", loop.port), timeout=5)
                         for _ in range(2))
        for c in (first, second):
            c.sendall(b"a")
            assert c.recv(1) == b"a"
        third = socket.create_connection(("127.0.0.1", loop.port), timeout=5)
        third.sendall(b"b")
        third.settimeout(0.3)
        with pytest.raises(TimeoutError):
            third.recv(1)  # queued in the backlog, not served
        first.close()
        third.settimeout(5)
        assert third.recv(1) == b"b"  # served as soon as a slot was free


def test_per_source_closes_the_connections_over_the_limit():
    with Loop("echo", per_source=1) as loop:
        first = socket.create_connection(("127.0.0.1", loop.port), timeout=5)
        first.sendall(b"1")
        assert first.recv(1) == b"1"
        second = socket.create_connection(("127.0.0.1", loop.port), timeout=5)
        try:
            assert second.recv(1) == b""
        except ConnectionResetError:
            pass
        first.sendall(b"2")
        assert first.recv(1) == b"2"


@pytest.mark.skipif(os.geteuid() != 0, reason="binding a privileged source port needs root")
def test_udp_requests_from_privileged_ports_are_ignored_against_echo_loops():
    with Loop("echo", socket.SOCK_DGRAM) as loop:
        for port, answered in ((0, True), (1024, True), (7, False), (1023, False)):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind(("127.0.0.1", port))
            u.settimeout(0.3)
            u.sendto(b"ping", ("127.0.0.1", loop.port))
            try:
                got = u.recv(100)
            except TimeoutError:
                got = None
            u.close()
            assert (got == b"ping") is answered, port


def test_udp_services_answer_each_datagram():
    with Loop("chargen", socket.SOCK_DGRAM) as chargen, Loop("time", socket.SOCK_DGRAM) as tm, \
            Loop("discard", socket.SOCK_DGRAM) as discard:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(2)
        sizes = set()
        for _ in range(10):
            u.sendto(b"", ("127.0.0.1", chargen.port))
            data = u.recv(1000)
            assert len(data) <= 512
            sizes.add(len(data))
        assert len(sizes) > 1
        u.sendto(b"x", ("127.0.0.1", tm.port))
        assert abs(struct.unpack("!I", u.recv(10))[0] - 2208988800 - time.time()) < 5
        u.sendto(b"x", ("127.0.0.1", discard.port))
        u.settimeout(0.3)
        with pytest.raises(TimeoutError):
            u.recv(10)


# -- the command, as systemd starts it ---------------------------------------------------------

def activate(systemd_socket_activate: str, *args: str, port: int,
             flags: tuple[str, ...] = ()) -> subprocess.Popen:
    proc = subprocess.Popen([systemd_socket_activate, *flags, "-l", f"127.0.0.1:{port}",
                             str(BIN), "internal", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if "-d" in flags else
                               socket.SOCK_STREAM) as s:
                if "-d" in flags:
                    return proc
                s.connect(("127.0.0.1", port))
                return proc
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("systemd-socket-activate did not listen")


def test_command_serves_inherited_sockets_in_one_process_and_exits_when_idle(
        systemd_socket_activate):
    port = free_port()
    proc = activate(systemd_socket_activate, "echo", "--idle-timeout", "1", port=port)
    try:
        for i in range(20):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                c.sendall(b"n%d" % i)
                assert c.recv(10) == b"n%d" % i
        assert proc.poll() is None  # one process served them all
        assert proc.wait(10) == 0  # then went away when idle
    finally:
        if proc.poll() is None:
            proc.kill()


def test_command_serves_one_connection_on_fd_0_inetd_style(systemd_socket_activate):
    port = free_port()
    proc = activate(systemd_socket_activate, "daytime", port=port, flags=("--inetd", "-a"))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            assert read_all(c).endswith(b"\r\n")
    finally:
        time.sleep(0.2)
        proc.kill()


def test_command_without_sockets_says_how_to_run_it():
    result = subprocess.run([str(BIN), "internal", "echo"], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=30)
    assert result.returncode == 2
    assert "no socket" in result.stderr


# -- parity with the real peers ------------------------------------------------------------------

PARITY_CLIENT = textwrap.dedent("""
    import json, socket, sys, time
    def grab(port, n):
        s = socket.create_connection(('127.0.0.1', port), timeout=5)
        if n == 5:
            s.sendall(b'hello')
        data = b''
        while len(data) < n:
            chunk = s.recv(65536)
            if not chunk: break
            data += chunk
        return data[:n].hex()
    out = {}
    for name, port, n in (('chargen', 19, 20000), ('daytime', 13, 100), ('time', 37, 4),
                          ('echo', 7, 5)):
        out[name] = (grab(port, n), grab(port + 20000, n))
    print(json.dumps(out))
""")


@pytest.mark.skipif(not shutil.which("unshare") or os.geteuid() != 0,
                    reason="needs root and unshare: openbsd-inetd on the standard ports, in a "
                           "network namespace")
def test_same_bytes_as_openbsd_inetd_builtins(openbsd_inetd, systemd_socket_activate, tmp_path):
    """openbsd-inetd on the standard ports and ours on port + 20000, in a private network
    namespace, asked the same questions by the same client."""
    conf = tmp_path / "inetd.conf"
    conf.write_text("".join(f"{n} stream tcp nowait root internal\n"
                            for n in ("chargen", "daytime", "time", "echo")))
    (tmp_path / "client.py").write_text(PARITY_CLIENT)
    ours = " ".join(
        f"{systemd_socket_activate} -l 127.0.0.1:{port + 20000} {BIN} internal {name} "
        f"--idle-timeout 5 >/dev/null 2>&1 & pids=\"$pids $!\";"
        for name, port in (("chargen", 19), ("daytime", 13), ("time", 37), ("echo", 7)))
    script = (f"trap 'kill $pids' EXIT; ip link set lo up; "
              f"{openbsd_inetd} -d {conf} >/dev/null 2>&1 & pids=$!; "
              f"{ours} sleep 0.5; {sys.executable} {tmp_path / 'client.py'}")
    result = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True,
                            start_new_session=True,
                            text=True, timeout=60)
    assert result.stdout.strip(), result.stderr
    out = {k: tuple(bytes.fromhex(x) for x in v)
           for k, v in json.loads(result.stdout.strip().splitlines()[-1]).items()}
    assert out["chargen"][0] == out["chargen"][1]  # 20 kB, byte for byte
    assert out["echo"] == (b"hello", b"hello")
    theirs, mine = out["daytime"]
    assert len(theirs) == len(mine) == 26 and theirs[:11] == mine[:11]
    stamps = [time.mktime(time.strptime(d.decode().strip(), "%a %b %d %H:%M:%S %Y"))
              for d in out["daytime"]]
    assert abs(stamps[0] - stamps[1]) <= 2
    times = [struct.unpack("!I", t)[0] for t in out["time"]]
    assert abs(times[0] - times[1]) <= 2


def test_xinetd_daytime_style_matches_xinetd(xinetd, tmp_path):
    port = free_port()
    conf = tmp_path / "xinetd.conf"
    conf.write_text("defaults\n{\n}\nservice daytime\n{\n  type = INTERNAL UNLISTED\n"
                    "  id = daytime-stream\n  socket_type = stream\n  protocol = tcp\n"
                    f"  port = {port}\n  bind = 127.0.0.1\n  wait = no\n}}\n")
    proc = subprocess.Popen([xinetd, "-dontfork", "-f", str(conf), "-pidfile",
                             str(tmp_path / "pid")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        theirs = None
        deadline = time.monotonic() + 5
        while theirs is None and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
                    theirs = read_all(c)
            except OSError:
                time.sleep(0.05)
        mine = daytime_bytes(style="xinetd")
    finally:
        proc.terminate()
        proc.wait(5)
    assert theirs is not None
    assert len(theirs) == len(mine) and theirs[:12] == mine[:12] and theirs[-6:] == mine[-6:]
