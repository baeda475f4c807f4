"""Where the superserver's messages go: syslog (the daemon contract) or stderr.

Detached, it logs as inetd and xinetd do: syslog(3) with ident "inetd2systemd" and
facility daemon, so existing syslog.conf rules and log watchers keep working. In the
foreground (a terminal, or a systemd unit whose journal takes stderr) one line each
on stderr, prefixed with syslog's `<N>` level so journald keeps the priority.
"""

from __future__ import annotations

import os
import sys
import syslog
from typing import TextIO

IDENT = "inetd2systemd"


class Log:
    __slots__ = ("_stream", "_syslog", "_prefix")

    def __init__(self, *, foreground: bool, stream: TextIO | None = None,
                 ident: str = IDENT) -> None:
        self._syslog = not foreground
        if stream is None:
            # Python's own stderr is line-buffered (one write(2) per line); ours is
            # flushed by the loop once per turn instead.
            stream = open(sys.stderr.fileno(), "w", buffering=1 << 16, encoding="utf-8",
                          errors="backslashreplace", closefd=False)
        self._stream = stream
        self._prefix = f"{ident}[{os.getpid()}]: "
        if self._syslog:
            syslog.openlog(ident, syslog.LOG_PID | syslog.LOG_NDELAY, syslog.LOG_DAEMON)

    def _emit(self, priority: int, message: str) -> None:
        if self._syslog:
            syslog.syslog(priority, message)
            return
        try:
            self._stream.write(f"<{priority}>{self._prefix}{message}\n")
        except (OSError, ValueError):
            pass  # a closed terminal must not take the superserver down

    def flush(self) -> None:
        """Called once per loop turn: one write(2) for all of a burst's lines, not one each."""
        if not self._syslog:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                pass

    def debug(self, message: str) -> None:
        self._emit(syslog.LOG_DEBUG, message)

    def info(self, message: str) -> None:
        self._emit(syslog.LOG_INFO, message)

    def notice(self, message: str) -> None:
        self._emit(syslog.LOG_NOTICE, message)

    def warning(self, message: str) -> None:
        self._emit(syslog.LOG_WARNING, message)

    def error(self, message: str) -> None:
        self._emit(syslog.LOG_ERR, message)
