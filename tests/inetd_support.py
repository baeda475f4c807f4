"""What the real inetds read from a file, and ours in the same shape, for comparison.

openbsd-inetd and inetutils-inetd (the paths their fixtures give) print an `ADD` line per
socket with `-d`. Each runs in a network namespace of its own (in a user namespace too
when not run as root), so it binds nothing on the host, and all files are read at once
(each daemon stays up serving, so it is stopped once its output has settled).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from inetd2systemd.model import Configuration, Family

OPENBSD_ADD = re.compile(
    r"^ADD: (?P<key>\S+) proto=(?P<proto>[^,]+), wait\.max=(?P<wait>\d)\.(?P<max>\d+) "
    r"user:group=(?P<user>[^:]+):(?P<group>\S+) builtin=(?P<builtin>\S+) "
    r"server=(?P<server>\S+)$")
INETUTILS_ADD = re.compile(
    r"^(?P<file>.+):(?P<line>\d+): ADD : (?P<host>[^:]+):(?P<name>\S+) proto=(?P<proto>[^,]+), "
    r"wait=(?P<wait>\d), max=(?P<max>\d+), user=(?P<user>\S+) group=(?P<group>\S*) "
    r"builtin=(?P<builtin>\S+) server=(?P<server>\S+)$")


def _run_all(argvs: list[list[str]], settle: float = 0.4, limit: float = 5.0) -> list[str]:
    """Start every daemon at once, each in its own network namespace; return each one's
    output once no more has come for `settle` seconds (they stay up serving)."""
    if shutil.which("unshare") is None:
        pytest.skip("platform: no unshare (util-linux) for a network namespace per daemon")
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    procs = []
    for argv in argvs:
        procs.append(subprocess.Popen(["unshare", *user, "-n", *argv], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, start_new_session=True))
    for proc in procs:
        os.set_blocking(proc.stdout.fileno(), False)
    outputs = [b""] * len(procs)
    deadline = time.monotonic() + limit
    last_change = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - last_change < settle:
        time.sleep(0.05)
        for i, proc in enumerate(procs):
            try:
                chunk = proc.stdout.read()
            except (BlockingIOError, ValueError):
                chunk = None
            if chunk:
                outputs[i] += chunk
                last_change = time.monotonic()
    for i, proc in enumerate(procs):
        proc.kill()
        rest, _ = proc.communicate()
        outputs[i] += rest or b""
    return [o.decode("utf-8", "replace") for o in outputs]


def openbsd_readings(openbsd_inetd: str, paths: Iterable[Path]) -> list[list[tuple]]:
    """Per file: the services openbsd-inetd accepted, one row per socket family, with a
    plain tcp line's IPv4 and IPv6 sockets joined into one dual row as ours are."""
    paths = list(paths)
    outputs = _run_all([[openbsd_inetd, "-d", "-i", str(p)] for p in paths])
    return [_openbsd_rows(out) for out in outputs]


def _openbsd_rows(out: str) -> list[tuple]:
    rows = []
    previous = None
    for line in out.splitlines():
        m = OPENBSD_ADD.match(line)
        if not m:
            continue
        if previous and previous["proto"] in ("tcp", "udp") \
                and m["proto"] == previous["proto"] + "6" \
                and ":" not in m["key"] and m["key"] == previous["key"]:
            previous = None
            continue  # the IPv6 half of a plain tcp/udp line: one dual service for us
        previous = m
        host, _, name = m["key"].rpartition(":") if not m["key"].startswith("/") else ("", "",
                                                                                     m["key"])
        proto = m["proto"]
        base = proto[:3]
        if proto in ("tcp46", "udp46") or (proto in ("tcp", "udp") and not host):
            family = "dual"  # tcp opens v4 and v6 sockets; tcp46 one mapped socket
        elif proto.endswith("6") or ":" in host:
            family = "ipv6"
        elif proto == "unix":
            family, base = "unix", "unix"
        else:
            family = "ipv4"
        internal = m["server"] == "internal"
        rows.append((name, host or None, base, family, None if internal else m["wait"] == "1",
                     int(m["max"]), m["user"], None if m["group"] == "(default)" else m["group"],
                     m["server"]))
    return sorted(set(rows), key=repr)


def our_openbsd_rows(configuration: Configuration) -> list[tuple]:
    """Our reading in the rows `openbsd_readings` gives."""
    rows = []
    for s in configuration.services:
        server = "internal" if s.internal else "/usr/sbin/tcpd" if s.tcp_wrapped else s.server
        for listen in s.listens:
            rows.append((s.name, listen.host if listen.family is not Family.UNIX else None,
                         s.protocol, listen.family.value, None if s.internal else s.wait,
                         s.rate.count, s.user, s.group, server))
    return sorted(set(rows), key=repr)


def inetutils_readings(inetutils_inetd: str, paths: Iterable[Path]) -> list[list[tuple]]:
    """Per file: (line, name, host, protocol token, wait, max, user, group, server) of
    each service inetutils-inetd accepted (`max` 0: its default)."""
    paths = list(paths)
    outputs = _run_all([[inetutils_inetd, "-d", "--pidfile=/dev/null", str(p)]
                        for p in paths])
    readings = []
    for out in outputs:
        rows = []
        for line in out.splitlines():
            m = INETUTILS_ADD.match(line)
            if m:
                name, host = m["name"], m["host"]
                if host in ("tcpmux", "tcpmuxplus"):  # how it prints tcpmux/NAME, tcpmux/+NAME
                    name, host = "tcpmux/" + ("+" if host == "tcpmuxplus" else "") + name, "*"
                rows.append((int(m["line"]), name, host, m["proto"], m["wait"] == "1", int(m["max"]),
                             m["user"], m["group"] or None,
                             "internal" if m["server"] == "internal" else m["server"]))
        readings.append(sorted(set(rows)))
    return readings


def our_inetutils_rows(configuration: Configuration) -> list[tuple]:
    """Our reading as (line, name, host, wait, user, group, server); wait is moot for
    internal services (inetutils-inetd prints 0 for all of them)."""
    return sorted((s.source.line, s.name, "*" if not s.listens or s.listens[0].host is None
                   else s.listens[0].host, None if s.internal else s.wait, s.user, s.group,
                   "internal" if s.internal else s.server) for s in configuration.services)


def their_inetutils_rows(reading: list[tuple]) -> list[tuple]:
    """`inetutils_readings` rows in the shape of `our_inetutils_rows`."""
    return sorted((line, name, host, None if server == "internal" else wait, user, group, server)
                  for line, name, host, _, wait, _, user, group, server in reading)
