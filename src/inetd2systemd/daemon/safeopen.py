"""Opening files as root in directories other users may own, without being turned.

A root-run command is handed paths such as `--stdout /var/log/app/out.log` or
`--pidfile /run/app/app.pid`, whose directories may well belong to the daemon's own
user. That user may swap entries there at any moment: a symbolic link to /etc/shadow
in place of the log file, a link in place of a directory on the way, a FIFO that
blocks the open. So every path is resolved here one component at a time, from a
directory descriptor, never again by name:

- a symbolic link on the way is followed only when no untrusted user could have put
  it there (its directory is root's and writable by root alone, as
  config.trust.replaceable_reason decides); any other link is refused;
- the last component is never followed (O_NOFOLLOW), opened without blocking
  (O_NONBLOCK: a FIFO cannot hold the command) and accepted only as a regular file
  (or /dev/null);
- a file this call creates (O_CREAT|O_EXCL) may be handed to the daemon's user; an
  existing one is never chowned, and one with other hard links is refused, since it
  may be a root file linked into the user's directory.

The descriptors returned are close-on-exec; the callers decide what to hand on.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections import deque

from ..config.trust import replaceable_reason, trusted_owners

_MAX_LINKS = 40  # as the kernel's ELOOP limit
_ATTEMPTS = 20  # the entry changed under us this often in a row: give up loudly
_DIRECTORY = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FINAL = os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC


class UnsafePath(OSError):
    """A path that could only be opened by trusting someone who is not trusted."""


def open_directory(path: str) -> int:
    """An O_PATH descriptor of directory `path`, resolved without following any link
    an untrusted user could have placed. Raises OSError (UnsafePath for such a link)."""
    path = os.path.abspath(path)
    owners = trusted_owners()
    pending = deque(_parts(path))
    fd = os.open("/", _DIRECTORY)
    where = "/"
    links = 0
    try:
        while pending:
            name = pending.popleft()
            try:
                child = os.open(name, _DIRECTORY, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise OSError(exc.errno, exc.strerror, os.path.join(where, name)) from None
                entry_st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISLNK(entry_st.st_mode):
                    raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                                  os.path.join(where, name)) from None
                link = os.path.join(where, name)
                reason = replaceable_reason(where, os.fstat(fd), link, entry_st, owners)
                if reason is not None:
                    raise UnsafePath(errno.ELOOP, f"refusing to follow the symbolic link {link}: "
                                     f"{reason}", path) from None
                links += 1
                if links > _MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path) from None
                target = os.readlink(name, dir_fd=fd)
                if target.startswith("/"):
                    os.close(fd)
                    fd, where = os.open("/", _DIRECTORY), "/"
                pending.extendleft(reversed(_parts(target)))
                continue
            os.close(fd)
            fd = child
            where = os.path.normpath(os.path.join(where, name))
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_append(path: str, *, owner: tuple[int, int] | None = None, mode: int = 0o666) -> int:
    """Open `path` for appending, creating it if absent (with `mode`, through the umask).

    `owner` (uid, gid): given to the file only if this call created it. Raises OSError
    (UnsafePath for a link, a non-regular file or a file with other hard links).
    """
    path = os.path.abspath(path)
    directory, name = os.path.split(path)
    dirfd = open_directory(directory)
    try:
        fd, created = _open_or_create(dirfd, name, path, os.O_WRONLY | os.O_APPEND, mode)
    finally:
        os.close(dirfd)
    try:
        st = os.fstat(fd)
        if not created and stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            raise UnsafePath(errno.EMLINK, f"has {st.st_nlink} hard links (it may be another "
                             "file linked here); refusing it", path)
        if not stat.S_ISREG(st.st_mode) and not _is_dev_null(st):
            raise UnsafePath(errno.EINVAL, "not a regular file", path)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        if created and owner is not None:
            os.fchown(fd, *owner)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_read(path: str) -> int:
    """Open an existing regular file `path` for reading, as root may on behalf of
    network clients (an xinetd banner): links are followed, the last one included, only
    where nobody but root could have placed them. Raises OSError (UnsafePath)."""
    owners = trusted_owners()
    directory, name = os.path.split(os.path.abspath(path))
    for _ in range(_MAX_LINKS):
        if name in ("", ".", ".."):
            raise UnsafePath(errno.EISDIR, "not a regular file", path)
        dirfd = open_directory(directory)
        try:
            try:
                fd = os.open(name, os.O_RDONLY | _FINAL, dir_fd=dirfd)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise _final_error(exc, path) from None
                link = os.path.join(directory, name)
                link_st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                reason = replaceable_reason(directory, os.fstat(dirfd), link, link_st, owners)
                if reason is not None:
                    raise UnsafePath(errno.ELOOP, f"refusing to follow the symbolic link "
                                     f"{link}: {reason}", path) from None
                # Relative to the link's directory; open_directory resolves any "..".
                directory, name = os.path.split(os.path.join(directory,
                                                             os.readlink(name, dir_fd=dirfd)))
                continue
        finally:
            os.close(dirfd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UnsafePath(errno.EINVAL, "not a regular file", path)
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        except BaseException:
            os.close(fd)
            raise
        return fd
    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)


def _open_or_create(dirfd: int, name: str, path: str, access: int, mode: int) -> tuple[int, bool]:
    """(fd, created): O_CREAT|O_EXCL first, so that "created" is the kernel's word."""
    if name in ("", ".", ".."):
        raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    for _ in range(_ATTEMPTS):
        try:
            return os.open(name, access | _FINAL | os.O_CREAT | os.O_EXCL, mode, dir_fd=dirfd), True
        except FileExistsError:
            pass
        except OSError as exc:
            raise _final_error(exc, path) from None
        try:
            return os.open(name, access | _FINAL, dir_fd=dirfd), False
        except FileNotFoundError:
            continue  # removed between the two opens: create it after all
        except OSError as exc:
            raise _final_error(exc, path) from None
    raise OSError(errno.EAGAIN, "the file keeps changing under us", path)


def _final_error(exc: OSError, path: str) -> OSError:
    if exc.errno == errno.ELOOP:
        return UnsafePath(errno.ELOOP, "is a symbolic link; refusing it", path)
    if exc.errno == errno.ENXIO:  # a FIFO with no reader, or a socket
        return UnsafePath(errno.ENXIO, "not a regular file", path)
    return OSError(exc.errno, exc.strerror, path)


def _is_dev_null(st: os.stat_result) -> bool:
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == null.st_rdev


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]
