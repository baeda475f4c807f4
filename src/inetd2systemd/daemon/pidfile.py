"""A pidfile that tells the truth: written atomically, locked for the daemon's life.

The PID is written to a temporary file in the same directory, locked there, then put
in place with renameat2(RENAME_NOREPLACE) or link(2) (first start) or rename(2) (stale
file), so a reader never sees an empty or half-written file and there is no
truncate-before-lock window. The lock is a flock(2) on that open file description: it
lives as long as any process holds the descriptor, including across exec, which is how
a daemonized program keeps "its" pidfile locked without knowing about it.

The descriptor that carries the lock is read-only: the file is re-opened O_RDONLY
while it is still mode 0600, and the read-write descriptor that wrote it is closed. A
daemon that runs as another user and inherits the lock therefore cannot rewrite the
root-owned file that a later `kill $(cat pidfile)` would trust.

Every operation works from a descriptor of the pidfile's directory, resolved once by
safeopen.open_directory: a user who owns a directory on the way cannot redirect the
creation, the replacement or the removal to another file by swapping in a link.

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
import resource
import stat
import time
from collections.abc import Callable, Collection
from contextlib import contextmanager
from dataclasses import dataclass

from .safeopen import open_directory

_ATTEMPTS = 20  # the path changed under us this often in a row: give up loudly
# Where the program started by daemonize finds the lock: high, out of the way of fd 3
# (LISTEN_FDS, shell redirections), below select()'s FD_SETSIZE.
LOCK_FD_CEILING = 1024
_READ = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK

PID_T_MAX = 2**31 - 1  # the largest pid_t; a number past it names no process


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
    """A pidfile we hold: `fd` (read-only) carries the lock; keep it open while we run."""

    path: str
    fd: int
    pid: int

    def keep_across_exec(self, avoid: Collection[int] = ()) -> None:
        """Hand the lock to the program about to be exec'd, on a high descriptor.

        The lock belongs to the open file description, so the program holds it for
        exactly as long as it runs. It is moved off the low numbers (fd 3 is where
        LISTEN_FDS start and what shell scripts redirect) to the highest free one
        below min(RLIMIT_NOFILE, 1024), never onto one in `avoid`.
        """
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft == resource.RLIM_INFINITY:
            soft = LOCK_FD_CEILING
        target = min(soft, LOCK_FD_CEILING) - 1
        while target > self.fd and (target in avoid or _in_use(target)):
            target -= 1
        if target > self.fd:
            os.dup2(self.fd, target, inheritable=True)
            os.close(self.fd)
            self.fd = target
        else:
            os.set_inheritable(self.fd, True)

    def release(self) -> None:
        """Remove the file (only if it is still ours) and drop the lock."""
        if self.fd < 0:
            return
        directory, base = os.path.split(self.path)
        try:
            dirfd = open_directory(directory)
            try:
                if _same_file(self.fd, dirfd, base):
                    os.unlink(base, dir_fd=dirfd)
            finally:
                os.close(dirfd)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = -1


@dataclass(frozen=True)
class Probe:
    """What a pidfile says, as its lock decides: locked means its daemon runs."""

    exists: bool
    locked: bool = False
    pid: int | None = None  # the PID written in it; None when absent or garbage
    identity: tuple[int, int] | None = None  # (st_dev, st_ino): whom to look for

    @property
    def stale(self) -> bool:
        return self.exists and not self.locked


def probe(path: str) -> Probe:
    """Look at `path` without changing it. The lock is tested by taking a shared lock
    for an instant when it is free (a starter meanwhile retries, see acquire). Raises
    PidFileError when the file cannot be examined (a link, not a regular file, no
    permission)."""
    try:
        with _in_directory(path) as (dirfd, base, path):
            fd = _open_in(dirfd, base, path)
    except FileNotFoundError:
        return Probe(exists=False)
    try:
        st = os.fstat(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            locked = False
        except BlockingIOError:
            locked = True
        return Probe(True, locked, _pid_in(fd), (st.st_dev, st.st_ino))
    finally:
        os.close(fd)


def remove_stale(path: str) -> bool:
    """Remove `path` if it is stale, under its lock so that no daemon starting at the same
    moment loses its file; False when it is locked (running) or already gone."""
    try:
        with _in_directory(path) as (dirfd, base, path):
            fd = _open_in(dirfd, base, path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            else:
                if not _same_file(fd, dirfd, base):
                    return False  # replaced by a starter meanwhile: that one is not stale
                os.unlink(base, dir_fd=dirfd)
                return True
            finally:
                os.close(fd)
    except FileNotFoundError:
        return False


def read_pid(path: str) -> int | None:
    """The PID recorded in a pidfile, or None when there is none or it is garbage."""
    try:
        return probe(path).pid
    except OSError:
        return None


def holder(path: str) -> int | None:
    """The PID of the live daemon holding `path` locked (-1 if the file names none),
    else None (absent or stale). For status queries, never a substitute for `acquire`."""
    try:
        seen = probe(path)
    except OSError:
        return None
    if not seen.locked:
        return None
    return seen.pid or -1


def acquire(path: str, pid: int | None = None, *, mode: int = 0o644,
            is_ours: Callable[[int], bool] | None = None) -> PidFile:
    """Write `pid` (default: ours) to `path` atomically and hold a lock on it.

    Raises AlreadyRunning when a live process holds the file (or, for an unlocked file,
    when `is_ours(recorded_pid)` says the recorded process is one of ours), and
    PidFileError when the file cannot be written.
    """
    pid = os.getpid() if pid is None else pid
    try:
        with _in_directory(path) as (dirfd, base, path):
            return _acquire_in(dirfd, base, path, pid, mode, is_ours)
    except FileNotFoundError as exc:  # the directory
        raise PidFileError(exc.errno, f"cannot create pidfile: {exc.strerror}",
                           os.path.abspath(path)) from None


def _acquire_in(dirfd: int, base: str, path: str, pid: int, mode: int,
                is_ours: Callable[[int], bool] | None) -> PidFile:
    for attempt in range(_ATTEMPTS):
        lock_fd, tmp = _locked_temp(dirfd, base, path, pid, mode)
        try:
            try:
                _rename_noreplace(dirfd, tmp, base)  # atomic create: fails if anything is there
                return PidFile(path, lock_fd, pid)
            except FileExistsError:
                pass
            except OSError as exc:
                raise PidFileError(exc.errno, f"cannot create pidfile: {exc.strerror}", path) from None
            try:
                if _take_over(dirfd, base, path, tmp, is_ours):
                    return PidFile(path, lock_fd, pid)
            except AlreadyRunning as exc:
                # Locked, yet naming a dead PID: a competitor is taking over a stale
                # file right now (or probing it). Ask again shortly, to name the winner.
                if exc.pid and not _alive(exc.pid) and attempt < _ATTEMPTS - 1:
                    time.sleep(0.01)
                else:
                    raise
        except BaseException:
            os.close(lock_fd)
            raise
        finally:
            _unlink_quietly(dirfd, tmp)
        os.close(lock_fd)  # the file vanished or changed meanwhile: start over
    raise PidFileError(errno.EAGAIN, "pidfile keeps changing under us", path)


def _locked_temp(dirfd: int, base: str, path: str, pid: int, mode: int) -> tuple[int, str]:
    """A new file holding `pid`, locked through a read-only descriptor: (that fd, name)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NOCTTY
    for attempt in range(100):
        tmp = f".{base}.{pid}.{attempt}.tmp"
        try:
            writer = os.open(tmp, flags, 0o600, dir_fd=dirfd)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise PidFileError(exc.errno, f"cannot create pidfile: {exc.strerror}", path) from None
    else:
        raise PidFileError(errno.EEXIST, "no free temporary name", path)
    lock_fd = -1
    try:
        os.write(writer, f"{pid}\n".encode())
        # Re-opened read-only while the file is still 0600 and ours alone, so that no
        # one else can have opened, let alone locked, it yet.
        lock_fd = os.open(tmp, _READ, dir_fd=dirfd)
        if not _same_inode(os.fstat(lock_fd), os.fstat(writer)):
            raise PidFileError(errno.EAGAIN, "temporary pidfile replaced under us", path)
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.fcntl(lock_fd, fcntl.F_SETFL, fcntl.fcntl(lock_fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        os.fchmod(writer, mode)  # explicit: the umask must not decide who may read it
    except BaseException as exc:
        if lock_fd >= 0:
            os.close(lock_fd)
        _unlink_quietly(dirfd, tmp)
        if isinstance(exc, OSError) and not isinstance(exc, PidFileError):
            # Whoever owns the directory removed or replaced the file meanwhile.
            raise PidFileError(exc.errno, f"cannot create pidfile: {exc.strerror}", path) from None
        raise
    finally:
        os.close(writer)
    return lock_fd, tmp


def _take_over(dirfd: int, base: str, path: str, tmp: str,
               is_ours: Callable[[int], bool] | None) -> bool:
    """Replace an existing pidfile if it is stale; False when it changed meanwhile."""
    try:
        old = _open_in(dirfd, base, path)
    except FileNotFoundError:
        return False  # removed between our link() and open(): retry the clean path
    try:
        try:
            fcntl.flock(old, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(path, _pid_in(old)) from None
        # We hold the old file's lock, but a competitor may have replaced the path
        # already (its new file is locked by it): only the file at the path counts.
        if not _same_file(old, dirfd, base):
            return False
        recorded = _pid_in(old)
        if recorded and recorded != os.getpid() and is_ours is not None and _alive(recorded) \
                and is_ours(recorded):
            raise AlreadyRunning(path, recorded)
        try:
            # Still holding the old lock: no one slips in.
            os.rename(tmp, base, src_dir_fd=dirfd, dst_dir_fd=dirfd)
        except OSError as exc:
            raise PidFileError(exc.errno, f"cannot replace pidfile: {exc.strerror}", path) from None
        return True
    finally:
        os.close(old)


@contextmanager
def _in_directory(path: str):
    """(directory descriptor, base name, absolute path) for `path`, the directory resolved
    by safeopen; FileNotFoundError when it is missing, PidFileError when it is unsafe."""
    path = os.path.abspath(path)
    directory, base = os.path.split(path)
    try:
        dirfd = open_directory(directory)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise PidFileError(exc.errno, exc.strerror, path) from None
    try:
        yield dirfd, base, path
    finally:
        os.close(dirfd)


def _open_in(dirfd: int, base: str, path: str) -> int:
    """A read-only descriptor of the existing pidfile (a regular file, never a link);
    FileNotFoundError when there is none."""
    try:
        fd = os.open(base, _READ, dir_fd=dirfd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _open_error(exc, path) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PidFileError(errno.EINVAL, "pidfile is not a regular file, refusing", path)
    return fd


def _open_error(exc: OSError, path: str) -> PidFileError:
    if exc.errno == errno.ELOOP:
        return PidFileError(exc.errno, "pidfile is a symbolic link, refusing", path)
    return PidFileError(exc.errno, f"cannot open pidfile: {exc.strerror}", path)


def _pid_in(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).split(b"\n", 1)[0].strip()
    except OSError:
        return None
    if not (text.isascii() and text.isdigit()):
        return None
    pid = int(text)
    # A pid is a positive pid_t: anything else (a 23-digit number) is garbage, not a
    # process to signal or a number to hand to os.kill (OverflowError).
    return pid if 0 < pid <= PID_T_MAX else None


def _rename_noreplace(dirfd: int, src: str, dst: str) -> None:
    """renameat2(RENAME_NOREPLACE), else link(2): create `dst` atomically, or EEXIST.

    The rename keeps the lock holder's /proc/PID/fd link pointing at the pidfile's
    real name (with link+unlink it would read "... .tmp (deleted)", alarming in lsof).
    """
    global _renameat2
    if _renameat2 is None:
        _renameat2 = _load_renameat2()
    if _renameat2 is not False:
        if _renameat2(dirfd, os.fsencode(src), dirfd, os.fsencode(dst), 1) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL):  # EINVAL: the filesystem cannot
            raise OSError(err, os.strerror(err), dst)
    os.link(src, dst, src_dir_fd=dirfd, dst_dir_fd=dirfd, follow_symlinks=False)


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


def _same_inode(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _same_file(fd: int, dirfd: int, name: str) -> bool:
    try:
        return _same_inode(os.fstat(fd), os.stat(name, dir_fd=dirfd, follow_symlinks=False))
    except OSError:
        return False


def _in_use(fd: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unlink_quietly(dirfd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dirfd)
    except FileNotFoundError:
        pass
