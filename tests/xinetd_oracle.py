"""The packaged xinetd as the oracle for the xinetd reader: what it says about a file.

`xinetd_reads(conf)` starts /usr/sbin/xinetd in debug mode on `conf` (it writes its
debug log to the terminal, so it runs under `script`, which gives it one), waits until it
has started its services or given up, stops it, and returns what it said: the services
it started, and each message with the line it names. The configurations given to it
may bind any port: xinetd runs in a network namespace of its own.
"""

from __future__ import annotations

import os
import re
import resource
import select
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import PEERS

XINETD = PEERS["xinetd"]


def needs_xinetd(test):
    """A test that runs the packaged xinetd: it uses the `xinetd` fixture (so it is
    marked `peers`), and root, to start it."""
    for mark in (pytest.mark.usefixtures("xinetd"),
                 pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                    reason="root and unshare: xinetd runs in a network "
                                           "namespace of its own")):
        test = mark(test)
    return test


_MESSAGE = re.compile(r"^\S+: (?P<level>[A-Z]+): \d+ \{(?P<function>\w+)\} (?P<text>.*?)"
                      r"(?: \[file=(?P<file>[^\]]*)\] \[line=(?P<line>\d+)\])?\s*$")


@dataclass
class Verdict:
    started: set[str] = field(default_factory=set)  # the ids of the services it runs
    messages: list[tuple[str, int | None, str, str | None]] = field(default_factory=list)
    exited: bool = False  # it stopped by itself (a fatal error)
    output: str = ""

    def lines(self, file: str | None = None) -> set[int]:
        """The lines it said something about (in `file`, when given)."""
        return {line for _, line, _, _ in self.messages if line is not None}

    def said(self, line: int) -> list[str]:
        return [text for _, at, text, _ in self.messages if at == line]


def xinetd_reads(conf: Path, *, debug: bool = True, timeout: float = 20,
                 open_files: int | None = None) -> Verdict:
    """Run xinetd on `conf` and report what it read. With debug=False it runs as it
    does in production (a bad defaults entry is fatal then), logging to a file.
    `open_files` sets its descriptor limit (1024 is the usual one for a service)."""
    work = conf.parent
    pidfile = work / f"{conf.name}.pid"
    if debug:
        argv = ["script", "-qfec", f"{XINETD} -d -dontfork -f {conf} -pidfile {pidfile}",
                "/dev/null"]
    else:
        log = work / f"{conf.name}.log"
        argv = [XINETD, "-dontfork", "-f", str(conf), "-pidfile", str(pidfile),
                "-filelog", str(log)]
    def limit() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    # a network namespace of its own, loopback up: the ports it binds are its alone
    argv = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=limit)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            text = output.decode(errors="replace") if debug else \
                (log.read_text(errors="replace") if log.exists() else "")
            if "Started working" in text or "xinetd will exit" in text or "Exiting" in text:
                break
            ready, _, _ = select.select([proc.stdout], [], [], 0.1)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                output += chunk
    finally:
        try:  # it says it will exit just before it does
            proc.wait(2 if "xinetd will exit" in text else 0.01)
        except subprocess.TimeoutExpired:
            pass
        exited = proc.poll() is not None
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        rest, _ = proc.communicate(timeout=10)
        output += rest or b""
    text = output.decode(errors="replace") if debug else log.read_text(errors="replace")
    return read_verdict(text, exited)


def read_verdict(text: str, exited: bool = False) -> Verdict:
    """What xinetd's log (debug or not) says it read and started."""
    verdict = Verdict(exited=exited, output=text)
    for raw in text.replace("\r", "").splitlines():
        match = _MESSAGE.match(raw) or re.match(
            r"^\S+ xinetd\[\d+\]: (?P<level>[A-Z]+): (?P<text>.*?)(?: \[file=(?P<file>[^\]]*)\]"
            r" \[line=(?P<line>\d+)\])?\s*$", raw)
        if match is None:
            continue
        line = int(match.group("line")) if match.group("line") else None
        verdict.messages.append((match.group("level"), line, match.group("text"),
                                 match.groupdict().get("function")))
        started = re.match(r"Started service: (\S+)", match.group("text"))
        if started:
            verdict.started.add(started.group(1))
    return verdict
