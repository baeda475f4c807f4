"""Unix socket files made and removed by a daemon that runs as root, in directories that
other users may be able to write.

- `bind_unix` gives the file its mode without a path: the socket's own inode is set
  (fchmod) and bind() creates the file from it through a umask, so there is no window
  in which a link swapped in at the path could make chmod change another file. bind()
  itself never follows a link at the path (it fails with EADDRINUSE).
- `clear_stale_socket` makes the path free for bind() the one way both daemons (serve
  and syslogd) do it: only in a directory no user but root (or the daemon's own user)
  can change, since elsewhere a directory swapped for a link would aim root's bind() or
  unlink() at another place; there a stale socket (nobody answers) is replaced, as
  inetd does, but a live one is never stolen from the daemon that answers on it, and a
  file that is not a socket is never touched. Only the very file examined is removed:
  names are looked up in the directory without following links, and the (device,
  inode) checked is the one unlinked.
- `remove_socket_file` removes, at exit, the file `bind_unix` made and nothing that
  took its place.
"""

from __future__ import annotations

import errno
import os
import socket
import stat

from .config.trust import untrusted_reason


def bind_unix(sock: socket.socket, path: str, mode: int = 0o666) -> tuple[int, int] | None:
    """Bind `sock` at `path` with `mode`; the (st_dev, st_ino) of the socket file made,
    or None if the name no longer points at it (someone swapped it at once)."""
    try:
        os.fchmod(sock.fileno(), mode)
    except OSError:
        pass  # the umask below gives the same mode on its own
    old = os.umask(0o777 & ~mode)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    st = _lstat(path)
    if st is not None and stat.S_ISSOCK(st.st_mode) and st.st_uid == os.geteuid():
        return st.st_dev, st.st_ino
    return None


def clear_stale_socket(path: str, kind: int) -> str | None:
    """Make `path` free for bind() of a socket of `kind` (SOCK_STREAM, SOCK_DGRAM, ...):
    nothing there, or a socket file nobody answers on (removed). Otherwise why not, as
    a message naming `path`, and nothing is touched."""
    reason = untrusted_reason(os.path.dirname(os.path.abspath(path)))
    if reason is not None:
        return f"{path}: not created: {reason}"
    st = _lstat(path)
    if st is None:
        return None
    if not stat.S_ISSOCK(st.st_mode):
        return f"{path} exists and is not a socket; not replacing it"
    probe = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        pass  # a socket file whose listener is gone
    except FileNotFoundError:
        return None  # removed meanwhile
    except OSError as exc:
        return f"{path} is a socket that cannot be probed ({exc.strerror}); not replacing it"
    else:
        return f"{path} is in use by another running program; not replacing it"
    finally:
        probe.close()
    if not _unlink_if_same(path, (st.st_dev, st.st_ino)):
        return f"{path} changed while it was examined; not replacing it"
    return None


def remove_socket_file(path: str, inode: tuple[int, int] | None) -> None:
    """Remove the socket file made at `path` (inode as bind_unix returned it), and
    nothing else: not a file or link someone put there since."""
    if inode is not None:
        _unlink_if_same(path, inode)


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _unlink_if_same(path: str, inode: tuple[int, int]) -> bool:
    """Unlink the entry `path` when it is still the socket `inode`; True when it is gone."""
    directory, name = os.path.split(path)
    try:
        dir_fd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if (st.st_dev, st.st_ino) != inode or not stat.S_ISSOCK(st.st_mode):
            return False
        os.unlink(name, dir_fd=dir_fd)
        return True
    except OSError as exc:
        return exc.errno == errno.ENOENT
    finally:
        os.close(dir_fd)
