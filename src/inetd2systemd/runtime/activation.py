"""Inherited sockets, however the process was started: listen_fds() and serve().

Two protocols hand a process its sockets:

* sd_listen_fds(3): systemd (Accept=no and Accept=yes), `systemd-socket-activate`
  without `--inetd`, and the suite's superserver set LISTEN_PID/LISTEN_FDS (and maybe
  LISTEN_FDNAMES) and put the sockets on fds 3, 4, ...
* inetd: a classic inetd child, `StandardInput=socket`, `systemd-socket-activate --inetd`
  put the one socket on fd 0 (and 1, often 2). No environment variable says so.

`listen_fds()` reads the first and falls back to the second, so a handler written
against it runs unchanged in every mode. `serve()` then runs a handler function on
whatever came: an accept loop, the one connection, or a datagram receive loop.

This module is imported by per-connection handlers on every connection: it imports
only os, stat, sys, time (loaded at start-up anyway) and socket (which the handler
needs regardless); threads, selectors, signals and the notifier are imported by
serve()'s loop alone (tests/test_import_cost.py).
"""

from __future__ import annotations

import os
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterable

__all__ = ["SD_LISTEN_FDS_START", "ActivationError", "Activated", "listen_fds",
           "listen_fds_with_names", "serve"]

SD_LISTEN_FDS_START = 3
_VARIABLES = ("LISTEN_PID", "LISTEN_PIDFDID", "LISTEN_FDS", "LISTEN_FDNAMES")
# Names for the socket found on fd 0; a connected stream gets the name systemd gives
# the Accept=yes connection, so name lookups work the same in both modes.
CONNECTION_NAME = "connection"
STDIN_NAME = "stdin"

StreamHandler = Callable[[socket.socket, object], object]
DatagramHandler = Callable[[bytes, object], "bytes | None"]


class ActivationError(RuntimeError):
    """The activation environment is set but wrong (bad count, fd not a socket, ...)."""


class Activated(dict):
    """name -> [passed fds], as `dict`, plus the order they were passed in.

    Names repeat (several sockets may share one FileDescriptorName=), hence lists. A
    socket is a socket.socket; anything else (a stored file, a memfd) its fd number.
    `sockets` is every socket in fd order, `files` the fd numbers of the rest, `names`
    the names of all in order.
    """

    def __init__(self, pairs: Iterable[tuple[str, socket.socket | int]] = ()) -> None:
        super().__init__()
        self.pairs: tuple[tuple[str, socket.socket | int], ...] = tuple(pairs)
        for name, passed in self.pairs:
            self.setdefault(name, []).append(passed)

    @property
    def sockets(self) -> list[socket.socket]:
        return [passed for _, passed in self.pairs if isinstance(passed, socket.socket)]

    @property
    def files(self) -> list[int]:
        return [passed for _, passed in self.pairs if isinstance(passed, int)]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.pairs)


# fd -> the socket object that owns it. socket.socket(fileno=fd) closes fd when it is
# garbage-collected, so wrapping one fd twice (listen_fds(False) called twice) would let
# the first wrapper close the second's fd; instead the same object is handed out again.
_owned: dict[int, socket.socket] = {}


def listen_fds(unset_environment: bool = True, *, stdin: bool = True) -> list[socket.socket]:
    """The sockets this process was started with, in the order they were passed.

    The environment is read exactly as libsystemd's sd_listen_fds(3) reads it:
    - LISTEN_PID absent, or not this process's pid (inherited from a parent that did
      not unset it), or LISTEN_PIDFDID present and not this process's pidfd inode, or
      LISTEN_FDS absent: nothing was passed, so fall back to fd 0 (below), else [].
    - Numbers as libsystemd's parser takes them: leading whitespace, a sign, and C's
      0x (hex) and 0 (octal) prefixes are accepted, anything after the digits is not.
      A LISTEN_PID that is not a valid pid, a LISTEN_FDS that is not a positive count,
      an fd in the range that is not open, LISTEN_FDNAMES with a different count:
      ActivationError naming the variable or the fd.
    - With unset_environment (the default) the variables are removed before returning,
      whatever the outcome, so children do not inherit them; a second call then
      returns [].
    - Every passed fd gets FD_CLOEXEC; the socket objects have the family, type and
      protocol of the real socket. Fds that are not sockets (the fd store, OpenFile=,
      a memfd) are not in this list: listen_fds_with_names() returns them.

    inetd style (no LISTEN_FDS and fd 0 is a socket; `stdin=False` turns this off): the
    socket is moved off fd 0 to a new close-on-exec fd, and fd 0 (and fd 1 when it is
    the same socket) is pointed at /dev/null (fd 1 at fd 2 when fd 2 is a log and not
    the socket), so that closing the returned socket really ends the connection and a
    stray print() or traceback never reaches the peer - just as under Accept=yes. With
    unset_environment=False fds 0 and 1 are left alone and the socket is a duplicate of
    fd 0 (the connection then ends only with shutdown() or process exit).
    """
    return listen_fds_with_names(unset_environment, stdin=stdin).sockets


def listen_fds_with_names(unset_environment: bool = True, *, stdin: bool = True) -> Activated:
    """Like listen_fds(), with names (LISTEN_FDNAMES, else "unknown" for each fd), and
    with every passed fd: a socket as a socket object, anything else (a stored file, a
    memfd, an OpenFile= file) as its fd number, which the caller then owns.

    The socket found on fd 0 is named "connection" when it is a connected stream (the
    name systemd gives the Accept=yes connection) and "stdin" otherwise.
    """
    try:
        count, names = _read_environment()
        fds = range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count)
        for fd in fds:  # all first, as sd_listen_fds does, so none leaks into a child
            _set_cloexec(fd, f"LISTEN_FDS={count}")
    finally:
        if unset_environment:
            for variable in _VARIABLES:
                os.environ.pop(variable, None)
    if count:  # every fd in the range is open: the count is a real one now
        names = ["unknown"] * count if names is None else names
        return Activated(zip(names, (_own(fd) if _is_socket(fd) else fd for fd in fds)))
    if stdin and _is_socket(0):
        sock = _take_stdin(move=unset_environment)
        return Activated([(_stdin_name(sock), sock)])
    return Activated()


def _read_environment() -> tuple[int, list[str] | None]:
    """(count, names) from the environment, with libsystemd's verdict on every value;
    names None when LISTEN_FDNAMES is absent (each fd is then "unknown": the list is
    made only once the fds are known to be open, since the count may say 2**31)."""
    try:
        return _read_variables(os.environ)
    except ValueError as exc:
        raise ActivationError(str(exc)) from None


def _read_variables(env) -> tuple[int, list[str] | None]:
    names_text = env.get("LISTEN_FDNAMES")
    pid_text = env.get("LISTEN_PID")
    if pid_text is None:
        return 0, []
    pid = systemd_integer(pid_text, "LISTEN_PID", unsigned=True)
    if not 0 < pid <= _PID_MAX:
        raise ActivationError(f"LISTEN_PID={pid_text!r} is not a valid process id")
    if pid != os.getpid():
        return 0, []  # meant for another process (a parent that did not unset it)
    pidfd_id = env.get("LISTEN_PIDFDID")
    if pidfd_id is not None:
        wanted = systemd_integer(pidfd_id, "LISTEN_PIDFDID", unsigned=True, bits=64)
        own = _own_pidfd_id()
        if own is not None and own != wanted:
            return 0, []  # the pid was reused: these fds were meant for another process
    fds_text = env.get("LISTEN_FDS")
    if fds_text is None:
        return 0, []
    count = systemd_integer(fds_text, "LISTEN_FDS", unsigned=False)
    if not 0 < count <= _INT_MAX - SD_LISTEN_FDS_START:
        raise ActivationError(f"LISTEN_FDS={fds_text!r} is not a positive count of descriptors")
    if names_text is None:
        return count, None
    names = names_text.split(":")
    if len(names) != count:
        raise ActivationError(f"LISTEN_FDNAMES={names_text!r} has {len(names)} names "
                              f"for LISTEN_FDS={count} descriptors")
    return count, names


_INT_MAX = 2**31 - 1
_PID_MAX = 2**31 - 1  # pid_t
# libsystemd skips these before looking for a base prefix; C's strtol then skips all of
# isspace() (vertical tab and form feed too) before the sign.
_SYSTEMD_WHITESPACE = " \t\n\r"
_C_SPACE = " \t\n\v\f\r"
_DIGITS = "0123456789abcdef"


def systemd_integer(text: str, variable: str, *, unsigned: bool, bits: int = 64) -> int:
    """A number as libsystemd's safe_atoi (signed) or safe_atolu (unsigned) reads it:
    its own whitespace skip, its 0b/0o prefixes, then C's strtol/strtoul with base 0
    (0x hex, 0 octal), and nothing after the digits. ValueError naming the variable
    otherwise (the environment protocols all share this reading)."""
    s = text.lstrip(_SYSTEMD_WHITESPACE)
    base = 0
    if s[:2] in ("0b", "0B", "0o", "0O"):
        base, s = (2 if s[1] in "bB" else 8), s[2:]
    first = s[:1]  # libsystemd's test for a negative unsigned value looks here
    body = s.lstrip(_C_SPACE)
    negative = body[:1] == "-"
    if body[:1] in ("+", "-"):
        body = body[1:]
    if base in (0, 16) and body[:2] in ("0x", "0X") and body[2:3].lower() in tuple(_DIGITS):
        base, body = 16, body[2:]
    elif base == 0:
        base = 8 if body[:1] == "0" else 10
    digits = len(body) - len(body.lstrip(_DIGITS[:base] + _DIGITS[10:base].upper()))
    if digits == 0 or digits != len(body):
        raise ValueError(f"{variable}={text!r} is not a number")
    value = int(body, base)
    if unsigned:
        if value >= 2**bits:
            raise ValueError(f"{variable}={text!r} is out of range")
        if negative and value:
            if first == "-":
                raise ValueError(f"{variable}={text!r} is negative")
            value = 2**bits - value  # strtoul's wrap-around, which libsystemd lets by
        return value
    value = -value if negative else value
    if not -2**63 <= value < 2**63 or not -_INT_MAX - 1 <= value <= _INT_MAX:
        raise ValueError(f"{variable}={text!r} is out of range")
    return value


def _own_pidfd_id() -> int | None:
    """The inode number of a pidfd for this process (unique per process where pidfds
    live on pidfs, Linux 6.9 and later, which is where a manager sets LISTEN_PIDFDID);
    None where it cannot be had, and then, as libsystemd does, the check is skipped."""
    try:
        fd = os.pidfd_open(os.getpid())
    except (AttributeError, OSError):
        return None
    try:
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)


def _set_cloexec(fd: int, why: str) -> None:
    try:
        os.set_inheritable(fd, False)
    except OSError as exc:
        raise ActivationError(f"fd {fd} ({why}) is not open: {exc.strerror}") from None


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "directory"),
                       (stat.S_ISFIFO, "pipe"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "non-socket file"


def _own(fd: int) -> socket.socket:
    sock = _owned.get(fd)
    if sock is None or sock.fileno() != fd:
        sock = _owned[fd] = socket.socket(fileno=fd)
    return sock


def _is_socket(fd: int) -> bool:
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        return False


def _same_file(a: int, b: int) -> bool:
    try:
        sa, sb = os.fstat(a), os.fstat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _take_stdin(move: bool) -> socket.socket:
    fd = os.dup(0)  # Python's dup is already close-on-exec
    if move:
        on_1, on_2 = _same_file(0, 1), _same_file(0, 2)
        null = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(null, 0)
            if on_2:
                os.dup2(null, 2)
            if on_1:
                # print() goes where errors go when that is a log, else nowhere
                os.dup2(2 if not on_2 and _is_open(2) else null, 1)
        finally:
            os.close(null)
    return _own(fd)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _stdin_name(sock: socket.socket) -> str:
    if _is_connection_type(sock) and not _listening(sock):
        return CONNECTION_NAME
    return STDIN_NAME


def _listening(sock: socket.socket) -> bool:
    try:
        return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    except OSError:
        return False


def _peer(sock: socket.socket) -> object:
    try:
        return sock.getpeername()
    except OSError:
        return None


# -- serve --------------------------------------------------------------------------------

DATAGRAM_MAX = 65535
# Connection-oriented types: accept() on listeners, one handler call per connection.
_CONNECTION_TYPES = (socket.SOCK_STREAM, socket.SOCK_SEQPACKET)


def _is_connection_type(sock: socket.socket) -> bool:
    return sock.type in _CONNECTION_TYPES


def serve(handler: StreamHandler | None = None, *, datagram: DatagramHandler | None = None,
          sockets: Iterable[socket.socket] | None = None, idle_timeout: float | None = None,
          max_connections: int = 256, unset_environment: bool = True) -> None:
    """Run handler functions on the inherited sockets, in any activation mode.

    handler(conn, peer) serves one stream (or seqpacket) connection: conn is a
      connected socket.socket, peer its address (None for unnamed AF_UNIX peers).
      serve() ends the connection (shutdown for writing, then close) when it returns.
    datagram(data, peer) -> bytes | None serves one datagram: a returned value is sent
      back to peer from the socket the datagram arrived on.

    What runs, per socket (from listen_fds(), or `sockets` when given):
    - a listening socket (Accept=no, `inetd ... stream wait`, systemd-socket-activate
      without -a): an accept loop, one thread per connection, at most max_connections
      at once (more wait in the kernel's backlog, none is refused);
    - a connected socket (Accept=yes, inetd `nowait`, --inetd -a): that one connection,
      in the calling thread, then return;
    - a datagram socket (ListenDatagram=, `dgram wait`, -d): a receive loop.
    With idle_timeout (seconds), serve() returns once no connection is open and nothing
    arrived for that long; the service manager keeps listening and starts the process
    again on the next connection or datagram, which waits in the socket meanwhile.
    Under Type=notify, the loop sends READY=1 (with STATUS=) once it listens, pings the
    watchdog at half of WatchdogSec=, and sends STOPPING=1 when it returns.
    SIGTERM (when serve() runs in the main thread) stops accepting, lets open
    connections finish, and returns. Handler exceptions are printed to stderr and end
    only that connection. The sockets are closed when serve() returns, never shut
    down (the manager shares them). No socket at all: ActivationError.
    """
    socks = list(_passed_sockets(unset_environment) if sockets is None else sockets)
    if not socks:
        raise ActivationError("no sockets were passed: start this under a socket unit, "
                              "systemd-socket-activate, inetd or `inetd2systemd serve`")
    for sock in socks:
        if _is_connection_type(sock):
            if handler is None:
                raise ActivationError(f"fd {sock.fileno()} is a {sock.type.name} socket and "
                                      "no connection handler was given")
        elif datagram is None:
            raise ActivationError(f"fd {sock.fileno()} is a {sock.type.name} socket and no "
                                  "datagram= handler was given")
    if len(socks) == 1 and _is_connection_type(socks[0]) and not _listening(socks[0]):
        # Accept=yes / inetd nowait: the common per-connection case, kept lean (no threads)
        _serve_connection(handler, socks[0])
        return
    _Loop(handler, datagram, socks, idle_timeout, max(1, max_connections)).run()


def _passed_sockets(unset_environment: bool) -> list[socket.socket]:
    """The passed sockets; a passed fd that is not a socket (an fd store entry, an
    OpenFile= file) is no business of a socket loop: said once on stderr, left alone."""
    passed = listen_fds_with_names(unset_environment)
    for name, fd in passed.pairs:
        if isinstance(fd, int):
            print(f"serve: fd {fd} ({name}) is a {_kind(os.fstat(fd).st_mode)}, not a socket: "
                  "not served (listen_fds_with_names() returns it)", file=sys.stderr)
    return passed.sockets


def _serve_connection(handler: StreamHandler, conn: socket.socket) -> None:
    try:
        handler(conn, _peer(conn))
    except Exception:  # one bad connection must not take the server down
        import traceback

        traceback.print_exc()
    finally:
        try:
            # The peer may hold other references (fd 1 of an inetd child): only an
            # explicit shutdown tells it the reply is complete.
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        conn.close()


def _serve_datagram(handler: DatagramHandler, sock: socket.socket) -> bool:
    """Receive and answer one datagram; False when the socket has nothing (any more)."""
    try:
        # MSG_DONTWAIT rather than a non-blocking socket: O_NONBLOCK would be set on the
        # manager's copy too (systemd's sockets are blocking) and outlive this process.
        data, peer = sock.recvfrom(DATAGRAM_MAX, socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return False
    try:
        reply = handler(data, peer)
        if reply is not None and peer:
            sock.sendto(reply, peer)
    except Exception:
        import traceback

        traceback.print_exc()
    return True


class _Loop:
    """Accept and receive on every socket until idle, SIGTERM, or nothing is left.

    One thread (the caller's) waits on all sockets; each accepted connection gets its
    own thread so one slow client does not hold up the others. Connection ends and
    SIGTERM reach the waiting thread through the suite's self-pipe (wakeup.py), so it
    never polls. Each selector key's data is the callable that handles its event.
    """

    DATAGRAM_BURST = 64  # answered per wake-up before looking at the other sockets

    def __init__(self, handler: StreamHandler | None, datagram: DatagramHandler | None,
                 socks: list[socket.socket], idle_timeout: float | None,
                 max_connections: int) -> None:
        import selectors  # imported here: a per-connection handler never pays for them
        import threading

        from ..wakeup import Wakeup

        self.handler, self.datagram, self.idle_timeout = handler, datagram, idle_timeout
        self.max_connections = max_connections
        self.socks = socks
        self.listeners: list[socket.socket] = []
        self.selector = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.threads: set[threading.Thread] = set()
        self.wakeup = Wakeup()
        self.stopping = False
        self.accepting = True
        self.last_activity = _monotonic()
        self.notifier = _LoopNotifier()

    def run(self) -> None:
        import selectors
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self.wakeup.catch((signal.SIGTERM,))
        try:
            for sock in self.socks:
                if not _is_connection_type(sock):
                    self.selector.register(sock, selectors.EVENT_READ,
                                           lambda mask, s=sock: self._on_datagrams(s))
                elif _listening(sock):
                    self.listeners.append(sock)
                    self._watch(sock)
                else:
                    self._start(sock)
            self.selector.register(self.wakeup.read_fd, selectors.EVENT_READ, self._on_wake)
            self.notifier.ready(len(self.socks))
            while not self.stopping:
                timeout = self._timeout()
                if timeout is not None and timeout <= 0:
                    break
                if len(self.selector.get_map()) == 1 and not self._busy() and self.accepting:
                    break  # only connected sockets were passed, and they are done
                timeout = self.notifier.ping_due(timeout)
                for key, mask in self.selector.select(timeout):
                    key.data(mask)
                self._throttle()
            self.notifier.stopping()
            for thread in list(self.threads):
                thread.join()
        finally:
            self.selector.close()
            self.wakeup.close()
            for sock in self.socks:
                sock.close()  # never shutdown(): the manager shares these sockets

    def _watch(self, listener: socket.socket) -> None:
        import selectors

        self.selector.register(listener, selectors.EVENT_READ,
                               lambda mask, s=listener: self._accept(s))

    def _on_datagrams(self, sock: socket.socket) -> None:
        for _ in range(self.DATAGRAM_BURST):
            if not _serve_datagram(self.datagram, sock):
                break
        self._touch()

    def _on_wake(self, _mask: int) -> None:
        import signal

        if signal.SIGTERM in self.wakeup.drain():
            self.stopping = True

    def _timeout(self) -> float | None:
        if self.idle_timeout is None:
            return None
        if self._busy():
            return self.idle_timeout  # re-checked when a connection ends (self-pipe)
        with self.lock:
            return self.last_activity + self.idle_timeout - _monotonic()

    def _busy(self) -> bool:
        with self.lock:
            return bool(self.threads)

    def _touch(self) -> None:
        with self.lock:
            self.last_activity = _monotonic()

    def _throttle(self) -> None:
        """At max_connections stop accepting: new clients wait in the backlog."""

        with self.lock:
            full = len(self.threads) >= self.max_connections
        if full and self.accepting:
            for sock in self.listeners:
                self.selector.unregister(sock)
        elif not full and not self.accepting:
            for sock in self.listeners:
                self._watch(sock)
        self.accepting = not full

    def _accept(self, listener: socket.socket) -> None:
        try:
            # A blocking accept() after select() said readable: the listener is not made
            # non-blocking, as that flag would stick to the manager's copy.
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # the client gave up already
        self._start(conn)

    def _start(self, conn: socket.socket) -> None:
        import threading

        # Daemon threads: Ctrl-C or an unhandled error must not hang on a stuck client;
        # the graceful paths (idle, SIGTERM) join them explicitly.
        thread = threading.Thread(target=self._connection, args=(conn,), daemon=True,
                                  name=f"connection-{conn.fileno()}")
        with self.lock:
            self.threads.add(thread)
            self.last_activity = _monotonic()
        thread.start()

    def _connection(self, conn: socket.socket) -> None:
        import threading

        try:
            _serve_connection(self.handler, conn)
        finally:
            with self.lock:
                self.threads.discard(threading.current_thread())
                self.last_activity = _monotonic()
            self.wakeup.wake()

class _LoopNotifier:
    """What serve() tells a Type=notify manager: READY=1 once it listens, WATCHDOG=1
    at half of WatchdogSec= while the loop turns, STOPPING=1 when it returns.

    Best effort: a manager that cannot be reached is reported once on stderr and not
    again; serving goes on. Without NOTIFY_SOCKET all of this is skipped.
    """

    def __init__(self) -> None:
        self.notifier = None
        self.every: float | None = None
        self.next_ping = 0.0
        if "NOTIFY_SOCKET" not in os.environ:
            return
        from .notify import Notifier

        self.notifier = Notifier()
        try:
            interval = self.notifier.watchdog_interval()
        except ValueError as exc:
            print(f"serve: watchdog off: {exc}", file=sys.stderr)
            interval = None
        if interval:
            self.every = interval / 2
            self.next_ping = _monotonic() + self.every

    def ready(self, count: int) -> None:
        self._send("READY=1", f"STATUS=serving {count} socket{'s' * (count != 1)}")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def ping_due(self, timeout: float | None) -> float | None:
        """Ping if it is time; return the select timeout shortened to the next ping."""
        if self.every is None:
            return timeout
        now = _monotonic()
        if now >= self.next_ping:
            self._send("WATCHDOG=1")
            self.next_ping = now + self.every
        until_ping = self.next_ping - now
        return until_ping if timeout is None else min(timeout, until_ping)

    def _send(self, *states: str) -> None:
        if self.notifier is None:
            return
        try:
            self.notifier.send(*states)
        except (OSError, ValueError) as exc:
            print(f"serve: cannot notify {self.notifier.address}: {exc}", file=sys.stderr)
            self.notifier = None
            self.every = None


def _monotonic() -> float:
    return time.monotonic()
