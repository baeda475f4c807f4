"""The listener: one loop over every input socket, shaped like gunicorn's arbiter.

- One `selectors` loop; signals are only queued by their handlers and a byte written to
  a self-pipe wakes the loop, which then handles them between batches (never inside a
  write, so a SIGHUP can neither lose nor split a message).
- Datagram sockets (UDP, unix /dev/log style) are read in batches until empty;
  SO_RXQ_OVFL makes the kernel attach its drop counter, so receive-buffer overflows
  are counted, never silent.
- Stream connections (TCP, TLS, unix stream) are non-blocking, read at most one chunk
  per turn each (one busy or stuck client cannot stall the others), and framed per
  connection (framing.StreamFramer, bounded memory).
- The sinks are flushed when the input goes idle and at least every 50 ms under load:
  one write (and one fsync for synced files) per batch, never one per message, and
  nothing stays queued while the listener waits for input.
- SIGHUP: flush, then reload the rules and reopen the files (logrotate) without touching
  the listening sockets. SIGUSR1: report the counters. SIGTERM/SIGINT: stop accepting,
  drain what the kernel already holds, flush, exit.
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
import socket
import ssl
import struct
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from .framing import MAX_FRAME, MAX_MESSAGE, StreamFramer
from .sinks import Router

SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)  # Linux; not exported by Python 3.11
MSG_TRUNC = int(socket.MSG_TRUNC)  # a plain int: IntFlag's & costs microseconds per datagram
DATAGRAM_BUFFER = 256 * 1024  # larger than any UDP payload and most unix datagrams
DATAGRAM_BATCH = 512  # datagrams per socket per turn, so streams get their turn too
STREAM_CHUNK = 256 * 1024
STATUS_INTERVAL = 1.0  # STATUS= at most once a second (never per message)
FLUSH_INTERVAL = 0.05  # longest a message waits in a sink's queue under continuous load
DRAIN_GRACE = 0.5  # on stop, how long connections may keep delivering what is in flight


@dataclass
class Counters:
    received: dict[str, int] = field(default_factory=dict)  # per transport
    kernel_drops: int = 0  # datagrams the kernel dropped (receive buffer full)
    connections: int = 0
    truncated: int = 0  # datagrams longer than the buffer, delivered cut
    errors: int = 0  # internal errors caught by the loop

    def total(self) -> int:
        return sum(self.received.values())


@dataclass
class Input:
    """One listening socket and what it carries."""

    sock: socket.socket
    transport: str  # "udp", "unix", "tcp", "tls", "unix-stream"
    owned_path: str | None = None  # a unix socket path this process created
    last_drops: int = 0


class Connection:
    __slots__ = ("sock", "framer", "sender", "transport", "handshaking")

    def __init__(self, sock: socket.socket, sender: str, transport: str, max_message: int,
                 max_frame: int) -> None:
        self.sock = sock
        self.framer = StreamFramer(max_message, max_frame)
        self.sender = sender
        self.transport = transport
        self.handshaking = transport == "tls"


def describe_peer(address: object) -> str:
    if isinstance(address, tuple):
        host = str(address[0])
        # An IPv4 client of a dual-stack socket (systemd's ListenDatagram=514) is
        # written as the IPv4 address it is.
        return host[7:] if host.startswith("::ffff:") and "." in host else host
    if isinstance(address, bytes):
        address = address.decode(errors="replace")
    return address or ""


class Listener:
    def __init__(self, inputs: list[Input], load_router: Callable[[], Router], *,
                 tls_context: ssl.SSLContext | None = None, notifier=None,
                 max_message: int = MAX_MESSAGE, max_frame: int = MAX_FRAME,
                 max_connections: int = 1024, log: Callable[[str], None] | None = None) -> None:
        self.inputs = inputs
        self.load_router = load_router
        self.router = load_router()
        self.tls_context = tls_context
        self.notifier = notifier
        self.max_message = max_message
        self.max_frame = max_frame
        self.max_connections = max_connections
        self.counters = Counters()
        self.connections: dict[int, Connection] = {}
        self.selector = selectors.DefaultSelector()
        self._signals: list[int] = []
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._buffer = bytearray(DATAGRAM_BUFFER)
        self._ancillary = socket.CMSG_SPACE(4)
        self._running = False
        self._accepting = True
        self._status_at = 0.0
        self._status_text = ""
        self.log = log or (lambda text: print(f"inetd2systemd syslogd: {text}",
                                              file=sys.stderr, flush=True))

    # -- set-up ---------------------------------------------------------------------------
    def _register_inputs(self) -> None:
        self.selector.register(self._wake_r, selectors.EVENT_READ, self._on_wake)
        for item in self.inputs:
            item.sock.setblocking(False)
            if item.sock.type == socket.SOCK_DGRAM:
                try:
                    item.sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
                except OSError:
                    pass
                self.selector.register(item.sock, selectors.EVENT_READ,
                                       lambda s, i=item: self._on_datagrams(i))
            else:
                self.selector.register(item.sock, selectors.EVENT_READ,
                                       lambda s, i=item: self._on_accept(i))

    def _install_signals(self) -> None:
        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            signal.signal(signum, self._on_signal)
        # A forwarding peer that went away must be an error on send, not a dead daemon.
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    def _on_signal(self, signum: int, frame: object) -> None:
        if len(self._signals) < 16:
            self._signals.append(signum)
        try:
            os.write(self._wake_w, b".")
        except OSError:
            pass

    def _on_wake(self, _sock: object) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> int:
        self._register_inputs()
        self._install_signals()
        self._running = True
        self._notify("ready", self.status_text())
        select = self.selector.select
        pending = False  # messages handed to the sinks since their last flush
        last_flush = time.monotonic()
        while self._running:
            # Flush when the input is idle (before blocking), or every FLUSH_INTERVAL
            # under continuous load: writes stay large while no message waits long.
            events = select(0 if pending else STATUS_INTERVAL)
            for key, _ in events:
                try:
                    key.data(key.fileobj)
                except Exception:  # a bug must cost one batch, not every later message
                    self.counters.errors += 1
                    self.log("internal error (please report):\n" + traceback.format_exc())
            now = time.monotonic()
            if events:
                pending = True
            # Idle turns flush too: a forwarding sink retries its connection then.
            if not events or (pending and now - last_flush >= FLUSH_INTERVAL):
                self.router.flush()
                pending, last_flush = False, now
            while self._signals:
                self._handle_signal(self._signals.pop(0))
            if now - self._status_at >= STATUS_INTERVAL:
                self._status_at = now
                text = self.status_text()
                if text != self._status_text:
                    self._status_text = text
                    self._notify("status", text)
        self._drain()
        return 0

    def _handle_signal(self, signum: int) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self._running = False
        elif signum == signal.SIGHUP:
            self.reload()
        elif signum == signal.SIGUSR1:
            self.log(self.status_text())
            self._notify("status", self.status_text())

    def reload(self) -> None:
        """New rules, same sockets; on a bad configuration keep the old rules running."""
        self._notify("reloading")
        self.router.flush()
        try:
            router = self.load_router()
        except Exception as exc:  # ConfigError, or a sink that cannot be set up
            self.log(f"reload failed, keeping the previous rules: {exc}")
            self.router.reopen()
        else:
            self.router.close()
            self.router = router
        self._notify("ready", self.status_text())

    def stop(self) -> None:
        self._on_signal(signal.SIGTERM, None)

    def _drain(self) -> None:
        """Deliver what the kernel and the framers already hold, then close everything."""
        self._notify("stopping")
        self._accepting = False
        deadline = time.monotonic() + DRAIN_GRACE
        for item in self.inputs:
            if item.sock.type == socket.SOCK_DGRAM:
                while self._on_datagrams(item):
                    pass
            else:
                self._on_accept(item)  # connections already queued still count
        while self.connections and time.monotonic() < deadline:
            busy = False
            for conn in list(self.connections.values()):
                busy |= self._on_readable(conn)
            if not busy:
                break
        for conn in list(self.connections.values()):
            self._close_connection(conn)
        self.router.close()
        for item in self.inputs:
            if item.owned_path:
                try:
                    os.unlink(item.owned_path)
                except OSError:
                    pass
            item.sock.close()
        self.selector.close()

    # -- input ---------------------------------------------------------------------------------
    def _deliver(self, frames: list[bytes], sender: str, transport: str) -> None:
        self.router.deliver(frames, sender, transport, time.time())
        received = self.counters.received
        received[transport] = received.get(transport, 0) + len(frames)

    def _on_datagrams(self, item: Input) -> int:
        """Read a batch; the number read (0 when the socket was empty)."""
        if item.transport == "unix":
            return self._on_local_datagrams(item)
        sock, ancillary = item.sock, self._ancillary
        view = memoryview(self._buffer)
        recv = sock.recvmsg_into
        frames: list[bytes] = []
        senders: list[str] = []
        last_address, sender = None, ""
        for _ in range(DATAGRAM_BATCH):
            try:
                size, ancdata, flags, address = recv([view], ancillary)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self.log(f"receive failed on {item.transport}: {exc.strerror}")
                break
            if ancdata:
                self._count_drops(item, ancdata)
            if flags & MSG_TRUNC:
                self.counters.truncated += 1
            frames.append(bytes(view[:size]))
            if address != last_address:
                last_address, sender = address, describe_peer(address)
            senders.append(sender)
        if frames:
            self._deliver_datagrams(frames, senders, item.transport)
        return len(frames)

    def _on_local_datagrams(self, item: Input) -> int:
        """/dev/log style: senders block instead of being dropped and their addresses say
        nothing (usually unbound), so the cheaper recv_into does."""
        view = memoryview(self._buffer)
        recv = item.sock.recv_into
        frames: list[bytes] = []
        for _ in range(DATAGRAM_BATCH):
            try:
                size = recv(view)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self.log(f"receive failed on unix: {exc.strerror}")
                break
            frames.append(bytes(view[:size]))
        if frames:
            self._deliver(frames, "", "unix")
        return len(frames)

    def _count_drops(self, item: Input, ancdata: list) -> None:
        """SO_RXQ_OVFL: the kernel's running count of datagrams it dropped on this socket
        because the receive buffer was full, attached to the next datagram read."""
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(data) >= 4:
                total = struct.unpack("I", data[:4])[0]
                if total > item.last_drops:
                    self.counters.kernel_drops += total - item.last_drops
                    item.last_drops = total

    def _deliver_datagrams(self, frames: list[bytes], senders: list[str], transport: str) -> None:
        # Most batches come from one sender; group runs so _deliver's loop stays tight.
        start = 0
        if senders[0] is senders[-1]:  # the usual case: one sender for the whole batch
            self._deliver(frames, senders[0], transport)
            return
        for i in range(1, len(frames) + 1):
            if i == len(frames) or senders[i] != senders[start]:
                self._deliver(frames[start:i], senders[start], transport)
                start = i

    def _on_accept(self, item: Input) -> None:
        for _ in range(64):
            if len(self.connections) >= self.max_connections:
                self._pause_accepting(item)
                return
            try:
                sock, address = item.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.log(f"accept failed: {exc.strerror}")
                    return
                continue
            sock.setblocking(False)
            if item.transport == "tls":
                sock = self.tls_context.wrap_socket(sock, server_side=True,
                                                    do_handshake_on_connect=False)
            conn = Connection(sock, describe_peer(address), item.transport, self.max_message,
                              self.max_frame)
            self.connections[sock.fileno()] = conn
            self.counters.connections += 1
            self.selector.register(sock, selectors.EVENT_READ,
                                   lambda s, c=conn: self._on_readable(c))
            if not self._accepting:
                return

    def _pause_accepting(self, item: Input) -> None:
        """At the connection limit new clients wait in the kernel's backlog; accepting
        resumes when a connection closes."""
        try:
            self.selector.unregister(item.sock)
        except (KeyError, ValueError):
            pass

    def _resume_accepting(self) -> None:
        for item in self.inputs:
            if item.sock.type == socket.SOCK_STREAM:
                try:
                    self.selector.get_key(item.sock)
                except (KeyError, ValueError):
                    self.selector.register(item.sock, selectors.EVENT_READ,
                                           lambda s, i=item: self._on_accept(i))

    def _on_readable(self, conn: Connection) -> bool:
        """Read one chunk; True when bytes arrived."""
        sock = conn.sock
        if conn.handshaking:
            try:
                sock.do_handshake()
                conn.handshaking = False
            except ssl.SSLWantReadError:
                return False
            except ssl.SSLWantWriteError:
                self.selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE,
                                     lambda s, c=conn: self._on_readable(c))
                return False
            except (ssl.SSLError, OSError) as exc:
                self.log(f"TLS handshake with {conn.sender} failed: {exc}")
                self._close_connection(conn, deliver=False)
                return False
            self.selector.modify(sock, selectors.EVENT_READ, lambda s, c=conn: self._on_readable(c))
        try:
            data = sock.recv(STREAM_CHUNK)
            if conn.transport == "tls":
                while sock.pending():
                    data += sock.recv(sock.pending())
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        except OSError:
            data = b""
        if not data:
            self._close_connection(conn)
            return False
        frames = conn.framer.feed(data)
        if frames:
            self._deliver(frames, conn.sender, conn.transport)
        return True

    def _close_connection(self, conn: Connection, deliver: bool = True) -> None:
        fileno = conn.sock.fileno()
        if deliver:
            rest = conn.framer.close()
            if rest:
                self._deliver(rest, conn.sender, conn.transport)
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        self.connections.pop(fileno, None)
        conn.sock.close()
        if self._accepting and len(self.connections) == self.max_connections - 1:
            self._resume_accepting()

    # -- reporting --------------------------------------------------------------------------------
    def status_text(self) -> str:
        c = self.counters
        per = ", ".join(f"{k} {v}" for k, v in sorted(c.received.items())) or "none yet"
        text = (f"received {c.total()} ({per}); written {self.router.written}; "
                f"dropped by sinks {self.router.dropped}; "
                f"dropped by the kernel {c.kernel_drops}; open connections {len(self.connections)}")
        if c.truncated:
            text += f"; truncated datagrams {c.truncated}"
        if c.errors:
            text += f"; internal errors {c.errors}"
        return text

    def _notify(self, what: str, text: str | None = None) -> None:
        if self.notifier is None:
            return
        try:
            if what == "status":
                self.notifier.status(text)
            else:
                getattr(self.notifier, what)(text)
        except OSError as exc:
            self.log(f"sd_notify failed: {exc}")
