"""A pidfile that tells the truth: written atomically, locked for the daemon's life.

The PID is written to a temporary file in the same directory, locked there, then put
in place with link(2) (first start) or rename(2) (stale file), so a reader never sees
an empty or half-written file and there is no truncate-before-lock window. The lock is
a flock(2) on that open file description: it lives as long as any process holds the
descriptor, including across exec, which is how a daemonized program keeps "its"
pidfile locked without knowing about it.

A pidfile whose lock is free is stale (its daemon died without cleaning up) and is
taken over; one whose lock is held belongs to a live daemon and starting is refused.
A pidfile written by some other tool that never locks is refused only when the PID it
names is alive *and* runs the same program (the caller decides that with `is_ours`):
a recycled PID now used by an unrelated process must not block a restart forever.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

_ATTEMPTS = 20  # the path changed under us this often in a row: give up loudly


class PidFileError(OSError):
    """The pidfile could not be created or replaced (permissions, missing directory)."""


class AlreadyRunning(Exception):
    """A live process holds the pidfile."""

    def __init__(self, path: str, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        who = f"PID {pid}" if pid else "another process"
        super().__init__(f"{path}: already running as {who} (pidfile is locked)")


@dataclass
class PidFile:
    """A pidfile we hold: `fd` carries the lock; keep it open for as long as we run."""

    path: str
    fd: int
    pid: int

    def keep_across_exec(self) -> None:
        # The lock belongs to the open file description: clearing close-on-exec hands
        # it to the program we exec, so the lock lives exactly as long as the daemon.
        os.set_inheritable(self.fd, True)

    def release(self) -> None:
        """Remove the file (only if it is still ours) and drop the lock."""
        if self.fd < 0:
            return
        try:
            if _same_file(self.fd, self.path):
                os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = -1


def read_pid(path: str) -> int | None:
    """The PID recorded in a pidfile, or None when there is none or it is garbage."""
    try:
        with open(path, "rb") as f:
            text = f.read(64).split(b"\n", 1)[0].strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def holder(path: str) -> int | None:
    """The PID of the live daemon holding `path` locked (-1 if the file names none),
    else None (absent or stale).

    Probing takes the lock for an instant when it is free, so it is only for status
    queries, never a substitute for `acquire`.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NOCTTY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return read_pid(path) or -1
    finally:
        os.close(fd)
    return None


def acquire(path: str, pid: int | None = None, *, mode: int = 0o644,
            is_ours: Callable[[int], bool] | None = None) -> PidFile:
    """Write `pid` (default: ours) to `path` atomically and hold a lock on it.

    Raises AlreadyRunning when a live process holds the file (or, for an unlocked file,
    when `is_ours(recorded_pid)` says the recorded process is one of ours), and
    PidFileError when the file cannot be written.
    """
    pid = os.getpid() if pid is None else pid
    path = os.path.abspath(path)
    directory, base = os.path.split(path)
    for attempt in range(_ATTEMPTS):
        tmp_fd, tmp_path = _locked_temp(directory, base, pid, mode)
        try:
            try:
                _rename_noreplace(tmp_path, path)  # atomic create: fails if anything is there
                return PidFile(path, tmp_fd, pid)
            except FileExistsError:
                pass
            except OSError as exc:
                raise PidFileError(exc.errno, f"cannot create pidfile: {exc.strerror}", path) from None
            try:
                if _take_over(path, tmp_path, is_ours):
                    return PidFile(path, tmp_fd, pid)
            except AlreadyRunning as exc:
                # Locked, yet naming a dead PID: a competitor is taking over a stale
                # file right now. Ask again shortly, to name the real winner.
                if exc.pid and not _alive(exc.pid) and attempt < _ATTEMPTS - 1:
                    time.sleep(0.01)
                else:
                    raise
        except BaseException:
            os.close(tmp_fd)
            raise
        finally:
            _unlink_quietly(tmp_path)
        os.close(tmp_fd)  # the file vanished or changed meanwhile: start over
    raise PidFileError(errno.EAGAIN, "pidfile keeps changing under us", path)


def _locked_temp(directory: str, base: str, pid: int, mode: int) -> tuple[int, str]:
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NOCTTY
    for attempt in range(100):
        tmp_path = os.path.join(directory, f".{base}.{pid}.{attempt}.tmp")
        try:
            fd = os.open(tmp_path, flags, 0o600)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise PidFileError(exc.errno, f"cannot create pidfile: {exc.strerror}",
                               os.path.join(directory, base)) from None
    else:
        raise PidFileError(errno.EEXIST, "no free temporary name", os.path.join(directory, base))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody else can know this file yet
        os.write(fd, f"{pid}\n".encode())
        os.fchmod(fd, mode)  # explicit: the umask must not decide who may read it
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp_path)
        raise
    return fd, tmp_path


def _take_over(path: str, tmp_path: str, is_ours: Callable[[int], bool] | None) -> bool:
    """Replace an existing pidfile if it is stale; False when it changed meanwhile."""
    try:
        old = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NOCTTY)
    except FileNotFoundError:
        return False  # removed between our link() and open(): retry the clean path
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PidFileError(exc.errno, "pidfile is a symbolic link, refusing", path) from None
        raise PidFileError(exc.errno, f"cannot open pidfile: {exc.strerror}", path) from None
    try:
        try:
            fcntl.flock(old, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(path, read_pid(path)) from None
        # We hold the old file's lock, but a competitor may have replaced the path
        # already (its new file is locked by it): only the file at the path counts.
        if not _same_file(old, path):
            return False
        recorded = read_pid(path)
        if recorded and recorded != os.getpid() and is_ours is not None and _alive(recorded) \
                and is_ours(recorded):
            raise AlreadyRunning(path, recorded)
        try:
            os.rename(tmp_path, path)  # still holding the old lock: no one slips in
        except OSError as exc:
            raise PidFileError(exc.errno, f"cannot replace pidfile: {exc.strerror}", path) from None
        return True
    finally:
        os.close(old)


def _rename_noreplace(src: str, dst: str) -> None:
    """renameat2(RENAME_NOREPLACE), else link(2): create `dst` atomically, or EEXIST.

    The rename keeps the lock holder's /proc/PID/fd link pointing at the pidfile's
    real name (with link+unlink it would read "... .tmp (deleted)", alarming in lsof).
    """
    global _renameat2
    if _renameat2 is None:
        _renameat2 = _load_renameat2()
    if _renameat2 is not False:
        if _renameat2(-100, os.fsencode(src), -100, os.fsencode(dst), 1) == 0:  # AT_FDCWD
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL):  # EINVAL: the filesystem cannot
            raise OSError(err, os.strerror(err), dst)
    os.link(src, dst)


def _load_renameat2():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError, ImportError):
        return False
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_renameat2 = None


def _same_file(fd: int, path: str) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
