"""`daemonize --status` and `--stop`: start-stop-daemon's commands, decided by the lock.

A pidfile written by daemonize is locked for as long as its daemon runs, so the lock,
not the PID written in the file, says whether the daemon runs: a PID may have been
recycled, the lock cannot be. And before a signal is sent, the process the file names
must hold that very file open (/proc/PID/fd): a pidfile that someone rewrote, or
replaced with one of their own that they lock themselves, cannot point the signal at
another process. The signal goes through a pidfd, so the process checked is the
process signalled, and --retry waits on the same pidfd for its exit.

Exit statuses are start-stop-daemon's (dpkg 1.21, its man page's EXIT STATUS):
  --status  0 running, 1 not running but the pidfile remains, 3 not running,
            4 cannot tell (the pidfile is unreadable, a link, or names a process that
            does not hold it);
  --stop    0 signalled (with --retry: and it exited), 1 nothing to stop (0 with
            --oknodo), 2 still running at the end of the --retry schedule, 3 any
            other error.
One difference, on purpose: start-stop-daemon believes an unlocked pidfile whose PID
is alive; here an unlocked pidfile is stale whatever PID it names, since daemonize's
daemons hold their lock for life, and --stop removes it.
"""

from __future__ import annotations

import os
import select
import signal
from dataclasses import dataclass

from ..errors import (EXIT_FAILED, EXIT_NOTHING_DONE, EXIT_OK, EXIT_STATUS_NOT_RUNNING,
                      EXIT_STATUS_STALE, EXIT_STATUS_UNKNOWN, EXIT_STILL_RUNNING)
from . import pidfile as pidfiles


@dataclass(frozen=True)
class Outcome:
    status: int  # the command's exit status
    message: str
    failed: bool = False  # an error (stderr), rather than an answer (stdout)


# One step of a --retry schedule: a signal to send, or seconds to wait (None: the
# rest of the schedule repeats forever from here, start-stop-daemon's `forever`).
Step = tuple[str, float | int | None]


def parse_signal(text: str) -> int:
    """TERM, SIGTERM, term or 15: the signal's number (ValueError when unknown)."""
    text = text.strip()
    if text.isdigit():
        number = int(text)
        if number in {int(s) for s in signal.valid_signals()}:
            return number
        raise ValueError(f"no signal numbered {text}")
    name = text.upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise ValueError(f"unknown signal {text!r}") from None


def parse_schedule(text: str, signum: int) -> tuple[Step, ...]:
    """start-stop-daemon's --retry: a timeout (SIGNAL/TIMEOUT/KILL/TIMEOUT), or a list
    of items separated by '/': -NUMBER or [-]NAME sends that signal, a number waits that
    many seconds, `forever` repeats the rest of the schedule."""
    items = text.split("/")
    if len(items) == 1:
        seconds = _seconds(items[0])
        return (("signal", signum), ("wait", seconds), ("signal", int(signal.SIGKILL)),
                ("wait", seconds))
    steps: list[Step] = []
    for item in items:
        if item == "forever":
            if any(kind == "forever" for kind, _ in steps):
                raise ValueError("'forever' appears more than once")
            steps.append(("forever", None))
        elif item.isdigit():
            steps.append(("wait", _seconds(item)))
        else:
            steps.append(("signal", parse_signal(item.lstrip("-"))))
    if len([s for s in steps if s[0] != "forever"]) < 2:
        raise ValueError(f"schedule {text!r} needs at least two items")
    return tuple(steps)


def _seconds(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number of seconds")
    return int(text)


def status(path: str) -> Outcome:
    try:
        seen = pidfiles.probe(path)
    except OSError as exc:
        return Outcome(EXIT_STATUS_UNKNOWN, f"{path}: cannot tell: {exc.strerror}", True)
    if not seen.exists:
        return Outcome(EXIT_STATUS_NOT_RUNNING, f"{path}: not running")
    if not seen.locked:
        named = f" (it names PID {seen.pid})" if seen.pid else ""
        return Outcome(EXIT_STATUS_STALE, f"{path}: not running, but the pidfile remains{named}")
    if seen.pid is None or holds(seen.pid, seen.identity) is False:
        return Outcome(EXIT_STATUS_UNKNOWN, f"{path}: locked, but {_who(seen.pid)} does not "
                       "hold it: cannot tell which process runs", True)
    return Outcome(EXIT_OK, f"{path}: running as PID {seen.pid}")


def stop(path: str, *, signum: int = signal.SIGTERM, schedule: tuple[Step, ...] | None = None,
         oknodo: bool = False) -> Outcome:
    nothing = EXIT_OK if oknodo else EXIT_NOTHING_DONE
    try:
        seen = pidfiles.probe(path)
        if not seen.exists:
            return Outcome(nothing, f"{path}: not running; nothing to stop")
        if not seen.locked:
            pidfiles.remove_stale(path)
            return Outcome(nothing, f"{path}: not running; removed the stale pidfile")
    except OSError as exc:
        return Outcome(EXIT_FAILED, f"{path}: {exc.strerror}", True)
    pid = seen.pid
    try:
        pidfd = os.pidfd_open(pid) if pid else -1
    except ProcessLookupError:
        pidfd = -1
    if pidfd < 0 or not holds(pid, seen.identity):
        if pidfd >= 0:
            os.close(pidfd)
        return Outcome(EXIT_FAILED, f"{path}: locked, but {_who(pid)} does not hold it: "
                       "refusing to signal it", True)
    try:
        if schedule is None:
            signal.pidfd_send_signal(pidfd, signum)
            return Outcome(EXIT_OK, f"{path}: sent {_name(signum)} to PID {pid}")
        if not _run_schedule(pidfd, schedule):
            return Outcome(EXIT_STILL_RUNNING, f"{path}: PID {pid} still runs at the end of "
                           "the schedule", True)
    except ProcessLookupError:
        pass  # it exited on its own meanwhile: stopped all the same
    finally:
        os.close(pidfd)
    try:
        removed = pidfiles.remove_stale(path)
    except OSError:
        removed = False
    if removed or not os.path.lexists(path):
        return Outcome(EXIT_OK, f"{path}: stopped PID {pid}")
    return Outcome(EXIT_OK, f"{path}: stopped PID {pid}; the pidfile stays locked by a "
                   "process it started")


def holds(pid: int | None, identity: tuple[int, int] | None) -> bool | None:
    """Whether process `pid` has the file `identity` (st_dev, st_ino) open; None when
    its descriptors cannot be read (another user's process, as non-root)."""
    if not pid or identity is None:
        return False
    base = f"/proc/{pid}/fd"
    try:
        names = os.listdir(base)
    except PermissionError:
        return None
    except OSError:
        return False
    for name in names:
        try:
            st = os.stat(f"{base}/{name}")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == identity:
            return True
    return False


def _run_schedule(pidfd: int, schedule: tuple[Step, ...]) -> bool:
    """Send and wait as the schedule says; True once the process has exited."""
    position, repeat_from = 0, None
    while position < len(schedule):
        kind, value = schedule[position]
        position += 1
        if kind == "forever":
            repeat_from = position
        elif kind == "signal":
            signal.pidfd_send_signal(pidfd, int(value))
        elif _exited_within(pidfd, float(value)):
            return True
        if position == len(schedule) and repeat_from is not None:
            position = repeat_from
    return False


def _exited_within(pidfd: int, seconds: float) -> bool:
    """A pidfd turns readable when its process exits (zombies included)."""
    return bool(select.select([pidfd], [], [], seconds)[0])


def _who(pid: int | None) -> str:
    return f"PID {pid}" if pid else "the PID it names"


def _name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
