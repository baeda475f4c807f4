"""The real access-control peers as oracles: libwrap's `tcpdmatch` and the packaged xinetd.

`tcpdmatch -d DAEMON ADDRESS` (Debian's tcpd, libwrap 7.6.q) reads hosts.allow and
hosts.deny from its working directory and prints libwrap's verdict for one client: one
process per address, many addresses per rule set, run a few at a time.

`XinetdOracle` starts /usr/sbin/xinetd once for many services (each an `echo` on its own
port, on a 127.0.0.1 socket or a dual-stack [::] socket, with its own only_from and
no_access) and connects from many 127.0.0.0/8 source addresses: xinetd accepts a refused
client and closes it at once, so a refusal reads as no echo.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hypothesis import strategies as st
from support import PEERS, free_port

from inetd2systemd.config.addresses import AddressSet

# The tests that use these oracles ask for the `tcpdmatch` or `xinetd` fixture, which
# skips them when the program is missing and marks them `peers`.
TCPDMATCH = PEERS["tcpdmatch"]
XINETD = PEERS["xinetd"]


def admitted(allow, ip: str) -> bool:
    """What systemd does with IPAddressDeny=any + IPAddressAllow=allow (None: no rule)."""
    if allow is None:
        return True
    address = ipaddress.ip_address(ip)
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped  # the BPF filter sees the IPv4 packet
    return address in AddressSet.parse(allow)


# -- libwrap ---------------------------------------------------------------------------------

def tcpdmatch(directory: Path, daemon: str, address: str) -> str:
    """libwrap's verdict: "granted", "denied" or "delegated" (twist)."""
    out = subprocess.run([TCPDMATCH, "-d", daemon, address], cwd=directory,
                         capture_output=True, text=True, timeout=30).stdout
    verdicts = [line.split()[-1] for line in out.splitlines() if line.startswith("access:")]
    assert verdicts, f"tcpdmatch said nothing for {daemon} {address}: {out!r}"
    return verdicts[-1]


def tcpdmatch_many(directory: Path, daemon: str, addresses, workers: int = 4) -> dict[str, str]:
    unique = list(dict.fromkeys(addresses))
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(unique, pool.map(lambda a: tcpdmatch(directory, daemon, a), unique)))


def write_tables(directory: Path, allow: bytes | str, deny: bytes | str) -> None:
    for name, text in (("hosts.allow", allow), ("hosts.deny", deny)):
        data = text.encode("latin-1") if isinstance(text, str) else text
        (directory / name).write_bytes(data)


# -- xinetd ------------------------------------------------------------------------------------

def echoes(port: int, source: str, dual: bool, timeout: float = 5.0) -> bool:
    """Whether an echo service answers a client bound to `source` (IPv4, or ::1). A
    refusal is asked twice: under load a slow answer must not pass for one."""
    return _echo_once(port, source, timeout) or _echo_once(port, source, timeout)


def _echo_once(port: int, source: str, timeout: float) -> bool:
    if ":" in source:
        client = socket.socket(socket.AF_INET6)
        target = ("::1", port)
    else:
        client = socket.socket(socket.AF_INET)
        target = ("127.0.0.1", port)
    with client:
        client.settimeout(timeout)
        client.bind((source, 0))
        client.connect(target)
        client.sendall(b"ping\n")
        got = b""
        try:
            while len(got) < 5:
                chunk = client.recv(16)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        return got == b"ping\n"


class XinetdOracle:
    """One real xinetd serving one echo service per (only_from, no_access, dual) case."""

    def __init__(self, cases: list[tuple[str | None, str, bool]]) -> None:
        self.cases = cases
        self.tmp = Path(tempfile.mkdtemp(prefix="i2s-xinetd-"))
        self.ports = self._free_ports()
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "XinetdOracle":
        # Free ports are only free until someone else takes one: start again on others.
        for _ in range(3):
            if self._start():
                return self
            self._stop()
            self.ports = self._free_ports()
        raise RuntimeError(f"xinetd did not serve every port: {self.log()[-2000:]}")

    def _free_ports(self) -> list[int]:
        base = free_port(len(self.cases))
        return list(range(base, base + len(self.cases)))

    def _start(self) -> bool:
        entries = []
        for (only_from, no_access, dual), port in zip(self.cases, self.ports):
            lines = ["type = INTERNAL UNLISTED", "socket_type = stream", "wait = no",
                     f"port = {port}", "cps = 10000 1", "instances = UNLIMITED",
                     "flags = NOLIBWRAP" + (" IPv6" if dual else ""),
                     "bind = ::" if dual else "bind = 127.0.0.1"]
            if only_from is not None:
                lines.append(f"only_from = {only_from}")
            if no_access:
                lines.append(f"no_access = {no_access}")
            entries.append(f"service echo\n{{\n\tid = echo-{port}\n\t" + "\n\t".join(lines) + "\n}\n")
        conf = self.tmp / "xinetd.conf"
        conf.write_text("\n".join(entries))
        self.proc = subprocess.Popen([XINETD, "-dontfork", "-f", str(conf), "-filelog",
                                      str(self.tmp / "log"), "-pidfile", str(self.tmp / "pid")],
                                     start_new_session=True, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        pending = list(self.ports)
        while pending and time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", pending[0]), timeout=5).close()
                pending.pop(0)
            except OSError:
                time.sleep(0.05)
        return not pending

    def __exit__(self, *exc) -> None:
        self._stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
            self.proc = None

    def log(self) -> str:
        try:
            return (self.tmp / "log").read_text(errors="replace")
        except OSError:
            return ""

    def verdicts(self, case: int, sources, workers: int = 4) -> dict[str, bool]:
        port, dual = self.ports[case], self.cases[case][2]
        unique = [s for s in dict.fromkeys(sources) if dual or ":" not in s]
        with ThreadPoolExecutor(workers) as pool:
            return dict(zip(unique, pool.map(lambda s: echoes(port, s, dual), unique)))


def mutated(seeds: list[str], noise: st.SearchStrategy[str], max_edits: int = 4) -> st.SearchStrategy[str]:
    """Seed texts with a few pieces of noise inserted at random places (fuzz inputs)."""
    def insert(text: str, edits: list[tuple[int, str]]) -> str:
        for position, piece in edits:
            cut = position % (len(text) + 1)
            text = text[:cut] + piece + text[cut:]
        return text
    return st.builds(insert, st.sampled_from(seeds),
                     st.lists(st.tuples(st.integers(0, 200), noise), max_size=max_edits))


# -- a daemon that sees our hosts.allow / hosts.deny -------------------------------------------

class Namespaced:
    """A daemon (serve or the real xinetd) in a private mount namespace in which the given
    files are bound over /etc/hosts.allow and /etc/hosts.deny: the machine's own stay as
    they are, and an edit of ours shows through at once (the same inode)."""

    def __init__(self, argv: list[str], allow: Path, deny: Path, log: Path) -> None:
        self.argv, self.allow, self.deny, self.log_path = argv, allow, deny, log
        self.proc: subprocess.Popen | None = None

    def start(self, ports: list[int], timeout: float = 20.0) -> "Namespaced":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 'mount --bind "$0" /etc/hosts.allow && mount --bind "$1" /etc/hosts.deny '
                 '&& shift 2 && exec "$@"', str(self.allow), str(self.deny), "x", *self.argv],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        pending = list(ports)
        while pending:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"{self.argv[0]} did not serve {pending}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", pending[0]), timeout=2).close()
                pending.pop(0)
            except OSError:
                time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> "Namespaced":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def exchange(port: int, source: str, send: bytes = b"hello\n", timeout: float = 5.0) -> bytes | None:
    """What a client bound to `source` reads back (None: refused or reset before a byte)."""
    family = socket.AF_INET6 if ":" in source else socket.AF_INET
    target = ("::1" if ":" in source else "127.0.0.1", port)
    with socket.socket(family) as client:
        client.settimeout(timeout)
        client.bind((source, 0))
        try:
            client.connect(target)
            client.sendall(send)
            client.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                chunk = client.recv(4096)
                if not chunk:
                    break
                got += chunk
        except OSError:  # refused, reset (ENOTCONN once the reset came first), timed out
            got = got if "got" in locals() else b""
        return got or None
