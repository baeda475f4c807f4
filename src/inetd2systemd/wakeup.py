"""The one way a selector loop of the suite is woken: a self-pipe.

gunicorn's arbiter does it this way and so do the suite's three loops (the superserver,
the syslog listener, the runtime's serve()): a signal handler must not do the loop's
work (it may run in the middle of it), so signals are only queued, by the kernel-level
`signal.set_wakeup_fd`, which writes the signal's number into the pipe; a thread that
needs the loop's attention (a finished connection) writes a zero byte. The loop watches
`read_fd` in its selector and, when it is readable, takes the queued signal numbers
with `drain()` and handles them between events, never inside one.

A full pipe drops bytes, so a loop must treat a wake-up as "look at everything that may
have changed" (e.g. reap children with WNOHANG) rather than count bytes.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable


def _queued(signum: int, frame: object) -> None:
    """The Python-level handler: nothing to do, set_wakeup_fd has queued the number."""


class Wakeup:
    """A non-blocking, close-on-exec self-pipe, and the signals that write into it."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._previous_fd: int | None = None
        self._previous_handlers: dict[int, object] = {}

    def catch(self, signums: Iterable[int]) -> None:
        """Queue these signals into the pipe (main thread only, as Python requires).
        close() puts back the handlers and the wake-up fd that were there before."""
        self._previous_fd = signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        for signum in signums:
            self._previous_handlers[signum] = signal.signal(signum, _queued)

    def wake(self) -> None:
        """Wake the loop from another thread (a zero byte: no signal has number 0)."""
        try:
            os.write(self.write_fd, b"\0")
        except OSError:
            pass  # full (the loop is already due to wake) or closed (shutting down)

    def drain(self) -> list[int]:
        """Empty the pipe; the signal numbers queued, each once, in arrival order."""
        seen: list[int] = []
        while True:
            try:
                data = os.read(self.read_fd, 512)
            except (BlockingIOError, InterruptedError):
                break
            if not data:
                break
            seen.extend(n for n in data if n and n not in seen)
            if len(data) < 512:
                break
        return seen

    def close(self) -> None:
        if self._previous_fd is not None:
            signal.set_wakeup_fd(self._previous_fd)
            self._previous_fd = None
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()
        for fd in (self.read_fd, self.write_fd):
            if fd >= 0:
                os.close(fd)
        self.read_fd = self.write_fd = -1
