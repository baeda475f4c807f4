"""Small helpers every part of the suite uses: where things are, free ports, waiting,
the command line run as a user runs it, and a Service built by hand.

The fixtures built on these (the booted systemd, the peers) are in conftest.py; the
helpers of one area are in that area's *_support.py module.
"""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
from pathlib import Path

from inetd2systemd.model import Family, Listen, Service, SocketType, Source

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = ROOT / "tests" / "data"

# The reference programs the suite compares against: fixture name -> where
# scripts/setup.sh puts it. xinetd, openbsd-inetd and inetutils-inetd conflict as Debian
# packages, so the two inetds are unpacked privately under /opt/inetd2systemd-peers.
PEERS_DIRECTORY = Path("/opt/inetd2systemd-peers")
PEERS = {
    "xinetd": "/usr/sbin/xinetd",
    "openbsd_inetd": str(PEERS_DIRECTORY / "openbsd-inetd/usr/sbin/inetd"),
    "inetutils_inetd": str(PEERS_DIRECTORY / "inetutils-inetd/usr/sbin/inetutils-inetd"),
    "rsyslogd": "/usr/sbin/rsyslogd",
    "tcpdmatch": "/usr/sbin/tcpdmatch",
    "logger": "/usr/bin/logger",
    "systemd_socket_activate": "/usr/bin/systemd-socket-activate",
    "start_stop_daemon": "/usr/sbin/start-stop-daemon",
    "tftpd": "/usr/sbin/in.tftpd",
}


def free_port(count: int = 1) -> int:
    """The first of `count` consecutive ports that are free on 127.0.0.1 for both TCP
    and UDP (random, then probed).

    Below the kernel's ephemeral range: a port that is free now but ephemeral can become
    some client connection's local port a moment later (the tests make thousands), and a
    daemon binding it then (at a reload) fails with EADDRINUSE."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10000, max(10001, ephemeral_low - count))
        try:
            for port in range(base, base + count):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as s:
                        s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no block of {count} free ports")


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05):
    """Call predicate until it returns something true or `timeout` passes; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def run_cli(*args: str, check: bool = False, input: str | None = None, env: dict | None = None,
            cwd: str | Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `inetd2systemd ARGS` as a user would: a fresh interpreter, the console entry."""
    return subprocess.run([sys.executable, "-m", "inetd2systemd", *args], capture_output=True,
                          text=True, check=check, input=input, env=env, cwd=cwd, timeout=timeout)


def service(name: str = "finger", port: int | None = 79, *, kind: SocketType = SocketType.STREAM,
            wait: bool = False, family: Family = Family.DUAL, line: int = 1, **kw) -> Service:
    """A Service as a reader makes it from line `line` of /etc/inetd.conf: `name` on
    `port` of every address, served by /usr/bin/cat unless `server`, `internal` or
    `redirect` says otherwise; any other field by keyword."""
    if "server" not in kw and "internal" not in kw and "redirect" not in kw:
        kw.update(server="/usr/bin/cat", argv=("cat",))
    proto = "udp" if kind is SocketType.DGRAM else "tcp"
    return Service(name=name, id=kw.pop("id", name), source=Source("/etc/inetd.conf", line),
                   socket_type=kind, protocol=kw.pop("protocol", proto),
                   listens=kw.pop("listens", (Listen(family, port),)), wait=wait, **kw)
