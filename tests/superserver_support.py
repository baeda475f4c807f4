"""Running a superserver (ours or a peer) the way the parity and superserver tests do:
on private ports named in a private /etc/services, and what a client sees of it.

Every daemon runs in its own mount namespace where /etc/services is a test file (bind
mount), so the internal services (echo, ...) and the named services live on free high
ports, exactly as they would on port 7 for the peers and for us alike. That needs root.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import free_port

PYTHON = sys.executable

NAMES = ("echo", "discard", "chargen", "daytime", "time", "i2s-cat", "i2s-id", "i2s-tftp",
         "i2s-rate", "i2s-env", "i2s-limit", "i2s-src", "i2s-deny", "i2s-crash", "i2s-hang",
         "i2s-new", "i2s-fds", "i2s-lfd", "i2s-load", "i2s-banner")

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: mount namespaces, user switch")


class Ports(dict):
    """service name -> port, and the /etc/services text that says so."""

    def __init__(self) -> None:
        base = free_port(len(NAMES))
        super().__init__((name, base + i) for i, name in enumerate(NAMES))

    def services_text(self) -> str:
        return "".join(f"{name}\t{port}/tcp\n{name}\t{port}/udp\n" for name, port in self.items())


def socket_inode(port: int, udp: bool = False) -> int | None:
    """The inode of the socket listening on 127.0.0.1/0.0.0.0:port (None: nobody listens)."""
    table = "/proc/net/udp" if udp else "/proc/net/tcp"
    want = f":{port:04X}"
    with open(table) as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1].endswith(want) and (udp or fields[3] == "0A"):
                return int(fields[9])
    return None


def fd_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


class Superserver:
    """One daemon (ours or a peer) in a private mount namespace; killed on stop()."""

    def __init__(self, kind: str, argv: list[str], workdir: Path, services: Path,
                 hosts_deny: Path | None = None) -> None:
        self.kind = kind
        self.hosts_deny = hosts_deny
        self.argv = argv
        self.workdir = workdir
        self.services = services
        self.log_path = workdir / f"{kind}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, listening: list[tuple[int, bool]], timeout: float = 10.0) -> "Superserver":
        """Start it once nothing listens on `listening` (port, udp) any more; return once
        it listens on all of them."""
        deadline = time.monotonic() + timeout
        while any(socket_inode(p, udp) for p, udp in listening):
            # a server the previous daemon started (in.tftpd -t 1) still holds its socket
            if time.monotonic() > deadline:
                raise AssertionError(f"ports still busy before starting {self.kind}")
            time.sleep(0.05)
        log = open(self.log_path, "ab")
        # unshare without --fork execs: the Popen pid is the daemon's pid. The test's
        # hosts.deny (if any) replaces the machine's inside that namespace only.
        env = dict(os.environ, HOSTS_DENY=str(self.hosts_deny or ""))
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mount --bind "$0" /etc/services && '
             '{ [ -z "$HOSTS_DENY" ] || mount --bind "$HOSTS_DENY" /etc/hosts.deny; } && exec "$@"',
             str(self.services), *self.argv],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir,
            start_new_session=True, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while not all(socket_inode(p, udp) for p, udp in listening):
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.kind} exited {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.kind} did not listen in time:\n{self.log()}")
            time.sleep(0.02)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        # Servers a peer left running (inetd does not stop them) die with the session.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def ours_argv(config: Path, *extra: str) -> list[str]:
    return [PYTHON, "-m", "inetd2systemd", "serve", "-c", str(config), "--foreground", *extra]


# -- what a client observes ------------------------------------------------------------------


def tcp_exchange(port: int, send: bytes = b"", read: int | None = None, timeout: float = 3.0) -> bytes | str:
    """Connect, send, half-close, read (everything, or `read` bytes); errors as words."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            if send:
                s.sendall(send)
            if read is None:
                s.shutdown(socket.SHUT_WR)
            data = b""
            while read is None or len(data) < read:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data if read is None else data[:read]
    except ConnectionRefusedError:
        return "refused"
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    except socket.timeout:
        return "timeout"
    except OSError as exc:
        if exc.errno == errno.ENOTCONN:  # reset between connect() and our shutdown()
            return "reset"
        return f"error {exc.errno}"
