"""Logging as a generator must: syslog and the journal are not there yet at boot, so
each message is one record written to /dev/kmsg, `<LEVEL>IDENT[PID]: text`. journald
reads it back from the kernel's buffer with SYSLOG_IDENTIFIER=IDENT and the level as
PRIORITY (`journalctl -t inetd2systemd-generator`, `journalctl -k`); the kernel files
it under the user facility. Where /dev/kmsg cannot be opened (a container: systemd-nspawn
leaves it out), or with $SYSTEMD_LOG_TARGET=console, the messages go to stderr, which
systemd connects to its console.

The kernel lets each opener of /dev/kmsg write 10 records in 5 seconds and counts the
rest as "suppressed" (under the name of the interpreter): `write_all` writes the most
important first, and where there are more it says how many in the 10th.
"""

from __future__ import annotations

import os
import sys

EMERG, ALERT, CRIT, ERR, WARNING, NOTICE, INFO, DEBUG = range(8)
LEVEL_NAMES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
MAX_RECORD = 976  # the kernel's limit for one record is 1024 bytes with its prefix
BURST = 10  # records the kernel takes from one opener of /dev/kmsg per 5 seconds


def to_console(environ=os.environ) -> bool:
    """$SYSTEMD_LOG_TARGET=console (as for systemd's own generators): stderr, not kmsg."""
    return environ.get("SYSTEMD_LOG_TARGET", "").strip().lower() == "console"


def max_level(environ=os.environ, default: int = NOTICE) -> int:
    """The most verbose level to write: $SYSTEMD_LOG_LEVEL (a name or a number), as
    systemd's own generators read it."""
    value = environ.get("SYSTEMD_LOG_LEVEL", "").strip().lower()
    if value.isdigit() and int(value) < 8:
        return int(value)
    if value in LEVEL_NAMES:
        return LEVEL_NAMES.index(value)
    return default


class Log:
    def __init__(self, ident: str, level: int = NOTICE, path: str = "/dev/kmsg",
                 stream=None) -> None:
        self.ident = ident
        self.level = level
        self.pid = os.getpid()
        self.stream = stream
        self.fd = -1
        if stream is None:
            try:
                self.fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
            except OSError:
                self.stream = sys.stderr

    def __call__(self, level: int, text: str) -> None:
        if level > self.level:
            return
        text = " ".join(text.split("\n"))
        if self.fd >= 0:
            data = f"<{level}>{self.ident}[{self.pid}]: {text}".encode("utf-8", "replace")
            try:
                os.write(self.fd, data[:MAX_RECORD])
                return
            except OSError:
                # EINVAL for what the kernel will not take, or a full buffer: say it
                # where it can still be read.
                self.stream = sys.stderr
        try:
            self.stream.write(f"{self.ident}: {text}\n")
            self.stream.flush()
        except (OSError, ValueError, AttributeError):
            pass  # nowhere left to say it; the units are what matters

    def write_all(self, records: list[tuple[int, str]], more: str = "") -> None:
        """Several records in order; to /dev/kmsg at most BURST, the last of which then
        counts the rest (and adds `more`: where to read them)."""
        shown = [(level, text) for level, text in records if level <= self.level]
        if self.fd >= 0 and len(shown) > BURST:
            rest = shown[BURST - 1:]
            shown = shown[:BURST - 1] + [(min(level for level, _ in rest),
                                          f"{len(rest)} more messages not logged here{more}")]
        for level, text in shown:
            self(level, text)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
