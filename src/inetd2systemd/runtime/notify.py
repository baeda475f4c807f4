"""sd_notify(3) for Type=notify services: readiness, status, watchdog, fd store.

The transport is one datagram of newline-separated VAR=value to $NOTIFY_SOCKET, read
as libsystemd reads it: an absolute path or an '@abstract' name is an AF_UNIX datagram
socket; `vsock:CID:PORT` (and `vsock-dgram:`, `vsock-seqpacket:`, `vsock-stream:`) is
AF_VSOCK, which a virtual machine's manager listens on (systemd 254 and later); any
other value, the empty one included, is an error, as it is for sd_notify(). The `sdnotify` package speaks it too, but cannot do what
a service needs beyond READY=1: it reads NOTIFY_SOCKET only from the environment, encodes
latin-1 (STATUS= is UTF-8), swallows every error, and cannot pass file descriptors
(SCM_RIGHTS), so FDSTORE=1 and BARRIER=1 are impossible with it. This module therefore
speaks the protocol itself with socket.sendmsg (no dependency) and keeps sdnotify's
`notify(state)` method name, so it is a drop-in replacement.

Without NOTIFY_SOCKET every call is a no-op returning False (not started by systemd,
or NotifyAccess=none): a service runs the same under inetd or by hand. With it, a
failure to send raises OSError: a readiness message that silently went nowhere would
surface only as a start-up timeout with no clue.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Iterable

from .activation import systemd_integer

__all__ = ["Notifier", "notify"]

FDNAME_MAX = 255  # systemd's fdname_is_valid()


class Notifier:
    """One service's line to its manager.

    The address, WATCHDOG_USEC and WATCHDOG_PID are read once, at construction; with
    unset_environment=True they are then removed from os.environ, so that children
    (a daemon's workers, a shell-out) do not notify on the service's behalf.
    """

    def __init__(self, address: str | None = None, *, unset_environment: bool = False) -> None:
        env = os.environ
        self.address = env.get("NOTIFY_SOCKET") if address is None else address
        self._watchdog_usec = env.get("WATCHDOG_USEC")
        self._watchdog_pid = env.get("WATCHDOG_PID")
        if unset_environment:
            for variable in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                env.pop(variable, None)
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        """Whether a manager asked to be told (NOTIFY_SOCKET set, even if malformed:
        sending then raises, as sd_notify() fails)."""
        return self.address is not None

    # -- the protocol ---------------------------------------------------------------------
    def send(self, *states: str, fds: Iterable[int | socket.socket] = ()) -> bool:
        """Send VAR=value lines in one datagram, with fds (SCM_RIGHTS) if given.

        False when there is no NOTIFY_SOCKET; True once the datagram is sent.
        """
        if self.address is None:
            return False
        family, kind, target = destination(self.address)
        payload = "\n".join(states).encode("utf-8")
        numbers = [fd if isinstance(fd, int) else fd.fileno() for fd in fds]
        ancillary = []
        if numbers:
            import array

            ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", numbers))]
        if family == socket.AF_UNIX:
            # Unconnected: each message is addressed, so a manager that re-executed (and
            # re-created its socket) is still reached, as with libsystemd's sd_notify.
            sent = self._socket().sendmsg([payload], ancillary, 0, target)
        else:
            sent = _send_vsock(kind, target, payload, ancillary)
        if sent != len(payload):
            raise OSError(errno.EIO, f"short write to {self.address}: {sent} of "
                          f"{len(payload)} bytes")
        return True

    def notify(self, state: str) -> bool:
        """sdnotify's SystemdNotifier.notify(): one or more lines as one string."""
        return self.send(state)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        return self._sock

    # -- the messages ---------------------------------------------------------------------
    def ready(self, status: str | None = None) -> bool:
        """READY=1: start-up is complete; `systemctl start` returns, dependants start."""
        return self.send("READY=1", *_status(status))

    def status(self, text: str) -> bool:
        """STATUS=: one line shown by `systemctl status` (StatusText). Throttle it."""
        return self.send(*_status(text))

    def reloading(self, status: str | None = None) -> bool:
        """RELOADING=1 (send ready() when done). MONOTONIC_USEC= is what systemd >= 253
        requires for Type=notify-reload; older managers ignore it."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", *_status(status))

    def stopping(self, status: str | None = None) -> bool:
        """STOPPING=1: shutting down on purpose (no restart, no timeout noise)."""
        return self.send("STOPPING=1", *_status(status))

    def watchdog(self) -> bool:
        """WATCHDOG=1: still alive. Send it at least every watchdog_interval() / 2."""
        return self.send("WATCHDOG=1")

    def watchdog_interval(self) -> float | None:
        """WatchdogSec= in seconds, or None when the watchdog is off for this process.

        Per sd_watchdog_enabled(3): WATCHDOG_USEC must be a positive number, and when
        WATCHDOG_PID is set it must be this process (a child does not inherit the duty).
        Malformed values: ValueError. Ping at half this interval.
        """
        if self._watchdog_usec is None:
            return None
        if self._watchdog_pid is not None:
            if _positive(self._watchdog_pid, "WATCHDOG_PID") != os.getpid():
                return None
        return _positive(self._watchdog_usec, "WATCHDOG_USEC") / 1_000_000

    def main_pid(self, pid: int) -> bool:
        """MAINPID=: the main process is another one (needs NotifyAccess=all if sent
        from a process that is not the current main one)."""
        return self.send(f"MAINPID={int(pid)}")

    def extend_timeout(self, seconds: float) -> bool:
        """EXTEND_TIMEOUT_USEC=: still starting (or stopping), allow this much longer."""
        return self.send(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")

    def store_fds(self, fds: Iterable[int | socket.socket], name: str | None = None,
                  *, poll: bool = True) -> bool:
        """FDSTORE=1: keep these fds in the manager across a restart of this service.

        They come back on the next start through listen_fds_with_names(), named `name`
        (or "stored"). Needs FileDescriptorStoreMax= > 0 in the unit; the manager drops
        a stored socket that gets POLLHUP/POLLERR unless poll=False (FDPOLL=0).
        """
        fds = list(fds)
        if not fds:
            raise ValueError("store_fds() needs at least one fd")
        states = ["FDSTORE=1"]
        if name is not None:
            _check_fdname(name)
            states.append(f"FDNAME={name}")
        if not poll:
            states.append("FDPOLL=0")
        return self.send(*states, fds=fds)

    def remove_fds(self, name: str) -> bool:
        """FDSTOREREMOVE=1: drop the stored fds of that name from the manager."""
        _check_fdname(name)
        return self.send("FDSTOREREMOVE=1", f"FDNAME={name}")

    def barrier(self, timeout: float = 5.0) -> bool:
        """BARRIER=1 (sd_notify_barrier): wait until the manager has read every message
        sent before it. A short-lived sender calls this before exiting, or its last
        message may be attributed to no unit. False without NOTIFY_SOCKET; TimeoutError
        when the manager does not answer in time."""
        if self.address is None:
            return False
        read_end, write_end = os.pipe()
        try:
            try:
                self.send("BARRIER=1", fds=[write_end])
            finally:
                os.close(write_end)
            import select

            poller = select.poll()
            poller.register(read_end, select.POLLIN)  # POLLHUP is always reported
            if not poller.poll(int(timeout * 1000)):
                raise TimeoutError(f"no answer to BARRIER=1 from {self.address} in {timeout}s")
            return True
        finally:
            os.close(read_end)

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _status(text: str | None) -> list[str]:
    if text is None:
        return []
    # A newline would end STATUS= and start a new (bogus) variable.
    return ["STATUS=" + " ".join(text.splitlines())]


# AF_VSOCK's special context ids, by the names libsystemd accepts for them.
VSOCK_CIDS = {"hypervisor": 0, "local": 1, "host": 2}
VMADDR_CID_ANY = VMADDR_PORT_ANY = 0xFFFFFFFF
_VSOCK_TYPES = {"vsock:": 0, "vsock-dgram:": socket.SOCK_DGRAM,
                "vsock-seqpacket:": socket.SOCK_SEQPACKET, "vsock-stream:": socket.SOCK_STREAM}
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path holds 108 bytes, a path's NUL included


def destination(address: str) -> tuple[int, int, str | bytes | tuple[int, int]]:
    """(family, socket type or 0 for "datagram if it can", address) for NOTIFY_SOCKET,
    as libsystemd parses it; OSError(EINVAL) for what it refuses."""
    if address[:1] in ("/", "@"):
        name = address.encode("utf-8", "surrogateescape")
        if len(name) == 1:
            raise OSError(errno.EINVAL, f"NOTIFY_SOCKET={address!r}: an empty name")
        if len(name) > _SUN_PATH_MAX:
            code = errno.ENAMETOOLONG if name[:1] == b"/" else errno.EINVAL
            raise OSError(code, f"NOTIFY_SOCKET={address!r}: longer than a socket address")
        return socket.AF_UNIX, socket.SOCK_DGRAM, (b"\0" + name[1:] if name[:1] == b"@" else address)
    for prefix, kind in _VSOCK_TYPES.items():
        if address.startswith(prefix):
            return socket.AF_VSOCK, kind, _vsock_address(address, address[len(prefix):])
    raise OSError(errno.EINVAL, f"NOTIFY_SOCKET={address!r}: neither an absolute path, an "
                                "@abstract name nor vsock:CID:PORT")


def _vsock_address(address: str, rest: str) -> tuple[int, int]:
    cid_text, colon, port_text = rest.partition(":")
    try:
        if not colon:
            raise ValueError("no :PORT")
        port = systemd_integer(port_text, "PORT", unsigned=True, bits=32)
        if port == VMADDR_PORT_ANY:
            raise ValueError("the port is the wildcard")
        if cid_text in ("", "any", "-1"):
            raise ValueError("a notification needs a specific CID, not any")
        cid = VSOCK_CIDS.get(cid_text)
        if cid is None:
            cid = systemd_integer(cid_text, "CID", unsigned=True, bits=32)
    except ValueError as exc:
        raise OSError(errno.EINVAL, f"NOTIFY_SOCKET={address!r}: {exc}") from None
    return cid, port


def _send_vsock(kind: int, target: tuple[int, int], payload: bytes, ancillary: list) -> int:
    """One message over AF_VSOCK, as libsystemd sends it: a datagram where the host has
    AF_VSOCK datagrams (QEMU has not: then seqpacket, then stream, connected), from a
    privileged port when we may bind one (the manager trusts those), and for a
    connection, the end of the message is our shutdown() and the manager's EOF."""
    sock = None
    for candidate in ((kind,) if kind else (socket.SOCK_DGRAM, socket.SOCK_SEQPACKET,
                                             socket.SOCK_STREAM)):
        try:
            sock = socket.socket(socket.AF_VSOCK, candidate | socket.SOCK_CLOEXEC)
            break
        except OSError as exc:
            if kind or exc.errno not in _NOT_SUPPORTED:
                raise
    assert sock is not None
    with sock:
        _bind_privileged_port(sock)
        if sock.type == socket.SOCK_DGRAM:
            return sock.sendmsg([payload], ancillary, 0, target)
        sock.connect(target)
        sent = sock.sendmsg([payload], ancillary)
        if sock.type == socket.SOCK_STREAM:
            sock.sendall(payload[sent:])
            sent = len(payload)
        sock.shutdown(socket.SHUT_WR)
        if sock.recv(1):
            raise OSError(errno.EPROTO, "the manager sent data on the notify connection")
        return sent


_NOT_SUPPORTED = {errno.ENODEV, errno.EOPNOTSUPP, errno.ENOSYS, errno.EAFNOSUPPORT,
                  errno.EPFNOSUPPORT, errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT}


def _bind_privileged_port(sock: socket.socket) -> None:
    for port in range(1023, 0, -1):
        try:
            sock.bind((VMADDR_CID_ANY, port))
            return
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.EACCES):
                return  # not privileged: the manager may still take it
            if exc.errno != errno.EADDRINUSE:
                raise


def _positive(text: str, variable: str) -> int:
    value = systemd_integer(text, variable, unsigned=True)
    if value == 0:
        raise ValueError(f"{variable}={text!r} is not a positive number")
    return value


def _check_fdname(name: str) -> None:
    # systemd rejects (and logs) the whole message for a bad name, so catch it here.
    if not name or len(name) > FDNAME_MAX or ":" in name or not name.isascii() \
            or not name.isprintable():
        raise ValueError(f"FDNAME {name!r}: 1-{FDNAME_MAX} printable ASCII characters, "
                         "no ':'")


_default: Notifier | None = None


def notify(*states: str, fds: Iterable[int | socket.socket] = (),
           unset_environment: bool = False) -> bool:
    """sd_notify(unset_environment, "\\n".join(states)): e.g. notify("READY=1", "STATUS=x").

    A no-op returning False when NOTIFY_SOCKET is not set. NOTIFY_SOCKET is read at
    each call, as sd_notify does, so a process that unset it stops notifying; with
    unset_environment it is removed after this message (children will not inherit it).
    """
    global _default
    address = os.environ.get("NOTIFY_SOCKET")
    if unset_environment:
        os.environ.pop("NOTIFY_SOCKET", None)
    if address is None:
        return False
    if _default is None or _default.address != address:
        _default = Notifier(address)
    return _default.send(*states, fds=fds)
