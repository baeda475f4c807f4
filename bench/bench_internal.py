"""Connections per second of the internal echo service vs xinetd's internal echo.

    .venv/bin/python bench/bench_internal.py [--seconds 3] [--clients 2] [--rounds 3]

Each client process loops: connect, send 32 bytes, read the echo, close. The peers run
in the same run, on private loopback ports with their own configuration files, and are
killed at the end:

- ours: `inetd2systemd internal echo` under `systemd-socket-activate` (the LISTEN_FDS
  protocol, Accept=no, exactly what the generated unit does, without PID 1);
- xinetd: internal echo, its rate limit (cps 50 10) lifted;
- a bare blocking Python accept loop (accept, recv, send, close): the no-fork upper
  bound for any Python server, which hangs up after one read; and the same loop reading
  until the client closes, as an echo server must (one client at a time).

Prints, for each, the median connections/s and the server's CPU time per connection
(its own and its reaped children's, from /proc: the figure that stays meaningful when
other work shares the machine), with ratios. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procstat import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PAYLOAD = b"0123456789abcdef0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(PAYLOAD)
                if s.recv(64) == PAYLOAD:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing echoes on port {port}")


def client(port: int, seconds: float, out) -> None:
    count = 0
    deadline = time.monotonic() + seconds
    address = ("127.0.0.1", port)
    while time.monotonic() < deadline:
        for _ in range(50):
            s = socket.create_connection(address)
            s.sendall(PAYLOAD)
            got = b""
            while len(got) < len(PAYLOAD):
                chunk = s.recv(64)
                if not chunk:
                    raise RuntimeError("connection closed before the echo came back")
                got += chunk
            s.close()
            count += 1
    out.put(count)


def measure(port: int, seconds: float, clients: int) -> float:
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=client, args=(port, seconds, queue))
             for _ in range(clients)]
    start = time.monotonic()
    for p in procs:
        p.start()
    total = sum(queue.get() for _ in procs)
    for p in procs:
        p.join()
    return total / (time.monotonic() - start)


def bare_loop(port: int, wait_for_close: bool = False) -> None:
    """The reference: a plain blocking accept loop echoing in-process. It answers one
    read and hangs up (about 15,000 connections/s on an idle 2-core machine), which a real echo
    must not do; with wait_for_close it reads on until the client closes, as echo must."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1024)
    while True:
        conn, _ = srv.accept()
        data = conn.recv(65536)
        while data:
            conn.sendall(data)
            data = conn.recv(65536) if wait_for_close else b""
        conn.close()


def bare_loop_until_close(port: int) -> None:
    bare_loop(port, wait_for_close=True)


class Peer:
    def __init__(self, name: str, argv: list[str] | None, port: int, func=None) -> None:
        self.name, self.argv, self.port, self.func = name, argv, port, func
        self.proc = None

    def start(self) -> None:
        if self.func:
            self.proc = multiprocessing.Process(target=self.func, args=(self.port,), daemon=True)
            self.proc.start()
        else:
            self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.func:
            self.proc.terminate()
            self.proc.join(5)
        else:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-internal-"))
    peers: list[Peer] = []

    port = free_port()
    peers.append(Peer("inetd2systemd internal echo",
                      ["systemd-socket-activate", "-l", f"127.0.0.1:{port}",
                       str(VENV_BIN / "inetd2systemd"), "internal", "echo",
                       "--idle-timeout", "0"], port))
    if shutil.which("xinetd"):
        port = free_port()
        (tmp / "xinetd.conf").write_text(
            "defaults\n{\n}\nservice echo\n{\n  type = INTERNAL UNLISTED\n"
            "  id = echo-stream\n  socket_type = stream\n  protocol = tcp\n"
            f"  port = {port}\n  bind = 127.0.0.1\n  wait = no\n  user = root\n"
            "  cps = 1000000 1\n  instances = UNLIMITED\n  per_source = UNLIMITED\n"
            "  log_on_success =\n  log_on_failure =\n}\n")
        peers.append(Peer("xinetd internal echo",
                          ["xinetd", "-dontfork", "-f", str(tmp / "xinetd.conf"),
                           "-pidfile", str(tmp / "xinetd.pid")], port))
    port = free_port()
    peers.append(Peer("bare loop, one read then close", None, port, func=bare_loop))
    port = free_port()
    peers.append(Peer("bare loop, reads until close", None, port, func=bare_loop_until_close))

    results: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}  # server CPU microseconds per connection
    try:
        for peer in list(peers):
            try:
                peer.start()
            except RuntimeError as exc:
                print(f"{peer.name}: not measured ({exc})", file=sys.stderr)
                peer.stop()
                peers.remove(peer)
        for _ in range(args.rounds):  # interleaved rounds: drift hits every peer alike
            for peer in peers:
                before = cpu_seconds(peer.proc.pid, children=True)  # xinetd forks per connection
                start = time.monotonic()
                rate = measure(peer.port, args.seconds, args.clients)
                count = rate * (time.monotonic() - start)
                results.setdefault(peer.name, []).append(rate)
                cpu.setdefault(peer.name, []).append(
                    (cpu_seconds(peer.proc.pid, children=True) - before) / max(count, 1) * 1e6)
    finally:
        for peer in peers:
            peer.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    ours = statistics.median(results[peers[0].name])
    ours_cpu = statistics.median(cpu[peers[0].name])
    print(f"TCP echo, connect/send/recv/close, {args.clients} clients, "
          f"{args.rounds} x {args.seconds:g} s, medians (server CPU per connection is the "
          "figure that holds on a busy machine):")
    for name, values in results.items():
        med = statistics.median(values)
        us = statistics.median(cpu[name])
        print(f"  {name:<34} {med:>9,.0f} conn/s  ours/this = {ours / med:5.2f}   "
              f"{us:7.1f} us CPU/conn  this/ours = {us / ours_cpu:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
