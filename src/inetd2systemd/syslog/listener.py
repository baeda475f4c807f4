"""The listener: one loop over every input socket, shaped like gunicorn's arbiter.

- One `selectors` loop; signals are only queued by their handlers and a byte written to
  a self-pipe wakes the loop, which then handles them between batches (never inside a
  write, so a SIGHUP can neither lose nor split a message). Timers (the sweep of idle
  connections, a paused socket's return) run from the same loop.
- Datagram sockets (UDP, unix /dev/log style) are read in batches until empty, UDP
  many datagrams per system call (datagrams.DatagramReader); the status report reads
  the kernel's drop counter of each socket (SO_MEMINFO), so receive-buffer overflows
  are counted, never silent, even when no datagram follows them.
- Stream connections (TCP, TLS, unix stream) are non-blocking, read at most one chunk
  per turn each (one busy or stuck client cannot stall the others), and framed per
  connection (framing.StreamFramer).
- Bounded whatever the clients do: at most `max_per_source` connections from one
  source (an address, an IPv6 /64, a local uid); at `max_connections` the least active
  connection of the source holding the most makes room; a connection idle for
  `idle_timeout`, or a TLS handshake unfinished after `handshake_timeout`, is closed;
  the bytes held in partial frames, all connections together, stay within
  `memory_budget` (past it, the connection that grew is cut: what it held becomes a
  message of its own, counted). Out of descriptors, a listening socket is paused as
  serve does, with one log line per episode.
- The sinks are flushed when the input goes idle and at least every 50 ms under load:
  one write (and one fsync for synced files) per batch, never one per message, and
  nothing stays queued while the listener waits for input.
- SIGHUP: flush, then reload the rules and reopen the files (logrotate) without touching
  the listening sockets; the counters run on. SIGUSR1: report the counters.
  SIGTERM/SIGINT: stop accepting, drain what the kernel already holds, flush, exit.
"""

from __future__ import annotations

import errno
import heapq
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

from ..model import host_port
from ..socketfiles import remove_socket_file
from ..wakeup import Wakeup
from .datagrams import DatagramReader, describe_peer
from .framing import MAX_FRAME, MAX_MESSAGE, StreamFramer
from .sinks import Router

SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)  # Linux: the socket's memory and drops
SK_MEMINFO_DROPS = 8  # index of sk_drops in SO_MEMINFO's array of u32
DATAGRAM_BUFFER = 256 * 1024  # larger than most unix datagrams
DATAGRAM_BATCH = 512  # datagrams per socket per turn, so streams get their turn too
ACCEPT_BATCH = 64  # connections accepted per listening socket per turn
STREAM_CHUNK = 256 * 1024
STATUS_INTERVAL = 1.0  # STATUS= at most once a second (never per message)
FLUSH_INTERVAL = 0.05  # longest a message waits in a sink's queue under continuous load
FLUSH_BYTES = 4 * 1024 * 1024  # ... or until this much was read: queues stay small in memory
DRAIN_GRACE = 0.5  # on stop, how long connections may keep delivering what is in flight
SWEEP_INTERVAL = 1.0  # how often idle connections and slow handshakes are looked for
RESOURCE_BACKOFF = 1.0  # out of descriptors: a listening socket rests this long
LOG_INTERVAL = 60.0  # a repeated complaint (a client refused, ...) at most this often

# Defaults for the bounds (documented in docs/syslogd.md). syslog-ng accepts 10
# connections per network source and rsyslog's imtcp 200 in all; 32 per source keeps a
# site behind one NAT address working while one host cannot take the whole table.
MAX_CONNECTIONS = 1024
MAX_PER_SOURCE = 32
IDLE_TIMEOUT = 1800.0  # rsyslog's DTLS input closes a silent session after 30 minutes
HANDSHAKE_TIMEOUT = 30.0
MEMORY_BUDGET = 32 * 1024 * 1024  # bytes of partial frames held, all connections together

_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
GIVE_BACK_BYTES = 8 * 1024 * 1024  # partial frames released since the peak: time to trim


@dataclass
class Counters:
    received: dict[str, int] = field(default_factory=dict)  # per transport
    kernel_drops: int = 0  # datagrams the kernel dropped (receive buffer full)
    connections: int = 0
    truncated: int = 0  # datagrams longer than the buffer, delivered cut
    cut: int = 0  # stream frames cut short to keep within the memory budget
    refused: int = 0  # connections refused (too many from one source, or in all)
    closed: int = 0  # connections closed by us: idle, slow handshake, or room for others
    errors: int = 0  # internal errors caught by the loop
    # What the rules replaced by SIGHUP had counted: the totals run on across reloads.
    written_before: int = 0
    dropped_before: int = 0
    unselected_before: int = 0

    def total(self) -> int:
        return sum(self.received.values())


@dataclass
class Input:
    """One listening socket and what it carries."""

    sock: socket.socket
    transport: str  # "udp", "unix", "tcp", "tls", "unix-stream"
    owned_path: str | None = None  # a unix socket path this process created
    owned_inode: tuple[int, int] | None = None  # (st_dev, st_ino) of that socket file
    last_drops: int = 0
    reader: DatagramReader | None = None  # UDP: made when the loop starts
    starved: bool = False  # accept ran out of descriptors; reported once per episode

    def describe(self) -> str:
        name = self.sock.getsockname()
        if isinstance(name, tuple):
            name = host_port(*name[:2])
        elif isinstance(name, bytes):
            name = name.decode(errors="replace")
        return f"{self.transport} {name}"


class Connection:
    __slots__ = ("sock", "framer", "sender", "source", "transport", "handshaking",
                 "opened", "last_active")

    def __init__(self, sock: socket.socket, sender: str, source: str, transport: str,
                 max_message: int, max_frame: int, now: float) -> None:
        self.sock = sock
        self.framer = StreamFramer(max_message, max_frame)
        self.sender = sender
        self.source = source  # what the per-source limit counts
        self.transport = transport
        self.handshaking = transport == "tls"
        self.opened = self.last_active = now


def source_of(sender: str, sock: socket.socket) -> str:
    """Who a connection counts against: the IPv4 address, the IPv6 /64 (one site gets
    a /64, and a host can take any address in it), or the local user of a unix socket."""
    if sock.family == socket.AF_UNIX:
        try:
            uid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
            return f"uid {uid}"
        except OSError:
            return "local"
    if ":" in sender:
        try:
            packed = socket.inet_pton(socket.AF_INET6, sender.split("%", 1)[0])
            return socket.inet_ntop(socket.AF_INET6, packed[:8] + bytes(8)) + "/64"
        except OSError:
            pass
    return sender


class _Throttled:
    """A complaint that may repeat (a client refused, a handshake timed out): at most one
    line per key per LOG_INTERVAL, the next one saying how many were held back."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.last: dict[str, tuple[float, int]] = {}

    def __call__(self, key: str, text: str) -> None:
        now = time.monotonic()
        at, held = self.last.get(key, (-LOG_INTERVAL, 0))
        if now - at < LOG_INTERVAL:
            self.last[key] = (at, held + 1)
            return
        if held:
            text += f" ({held} more like this in the last {LOG_INTERVAL:g}s)"
        self.log(text)
        self.last[key] = (now, 0)


class Listener:
    def __init__(self, inputs: list[Input], load_router: Callable[[], Router], *,
                 router: Router | None = None,
                 tls_context: ssl.SSLContext | None = None, notifier=None,
                 max_message: int = MAX_MESSAGE, max_frame: int = MAX_FRAME,
                 max_connections: int = MAX_CONNECTIONS, max_per_source: int = MAX_PER_SOURCE,
                 idle_timeout: float = IDLE_TIMEOUT, handshake_timeout: float = HANDSHAKE_TIMEOUT,
                 memory_budget: int = MEMORY_BUDGET,
                 log: Callable[[str], None] | None = None) -> None:
        self.inputs = inputs
        self.load_router = load_router
        self.router = router if router is not None else load_router()
        self.tls_context = tls_context
        self.notifier = notifier
        self.max_message = max_message
        self.max_frame = max_frame
        self.max_connections = max_connections
        self.max_per_source = max_per_source
        self.idle_timeout = idle_timeout
        self.handshake_timeout = handshake_timeout
        self.memory_budget = memory_budget
        self.counters = Counters()
        self.connections: dict[int, Connection] = {}
        self.per_source: dict[str, int] = {}
        self.held = 0  # bytes held in partial frames, all connections together
        self._held_peak = 0  # the most held since memory was last given back
        self.selector = selectors.DefaultSelector()
        self._signals: list[int] = []
        self._wakeup = Wakeup()
        self._buffer = bytearray(DATAGRAM_BUFFER)
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = 0
        self._now = time.monotonic()
        self._unflushed = 0  # bytes read since the sinks were last flushed
        self._running = False
        self._accepting = True
        self._status_at = 0.0
        self._status_text = ""
        self.log = log or (lambda text: print(f"inetd2systemd syslogd: {text}",
                                              file=sys.stderr, flush=True))
        self._complain = _Throttled(self.log)

    # -- set-up ---------------------------------------------------------------------------
    def _register_inputs(self) -> None:
        self.selector.register(self._wakeup.read_fd, selectors.EVENT_READ, self._on_wake)
        for item in self.inputs:
            item.sock.setblocking(False)
            if item.transport == "udp":
                item.reader = DatagramReader(item.sock)
            self._watch_input(item)

    def _watch_input(self, item: Input) -> None:
        if item.sock.type == socket.SOCK_DGRAM:
            handler = lambda mask, i=item: self._on_datagrams(i)  # noqa: E731
        else:
            handler = lambda mask, i=item: self._on_accept(i)  # noqa: E731
        try:
            self.selector.register(item.sock, selectors.EVENT_READ, handler)
        except KeyError:
            pass  # already watched

    def _install_signals(self) -> None:
        self._wakeup.catch((signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1))
        # A forwarding peer that went away must be an error on send, not a dead daemon.
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    def _on_wake(self, _mask: int) -> None:
        self._signals += (s for s in self._wakeup.drain() if s not in self._signals)

    # -- timers ---------------------------------------------------------------------------
    def _at(self, when: float, action: Callable[[], None]) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, action))

    def _run_timers(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            heapq.heappop(timers)[2]()

    def _sweep(self) -> None:
        """Close connections idle for too long and TLS handshakes that do not finish."""
        now = self._now
        for conn in list(self.connections.values()):
            if conn.handshaking and now - conn.opened >= self.handshake_timeout:
                self.counters.closed += 1
                self._complain("handshake", f"TLS handshake with {conn.sender} not finished "
                                            f"after {self.handshake_timeout:g}s; closed")
                self._close_connection(conn, deliver=False)
            elif now - conn.last_active >= self.idle_timeout:
                self.counters.closed += 1
                self._close_connection(conn)
        if self._held_peak - self.held >= GIVE_BACK_BYTES:
            give_memory_back()
            self._held_peak = self.held
        self._at(now + SWEEP_INTERVAL, self._sweep)

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> int:
        self._register_inputs()
        self._install_signals()
        self._running = True
        self._notify("ready", self.status_text())
        self._at(time.monotonic() + SWEEP_INTERVAL, self._sweep)
        select = self.selector.select
        pending = False  # messages handed to the sinks since their last flush
        last_flush = time.monotonic()
        while self._running:
            # Flush when the input is idle (before blocking), or every FLUSH_INTERVAL
            # under continuous load: writes stay large while no message waits long.
            timeout = 0 if pending else max(0.0, min(STATUS_INTERVAL,
                                                     self._timers[0][0] - self._now))
            events = select(timeout)
            now = self._now = time.monotonic()
            for key, mask in events:
                try:
                    key.data(mask)
                except Exception:  # a bug must cost one batch, not every later message
                    self.counters.errors += 1
                    self.log("internal error (please report):\n" + traceback.format_exc())
            if events:
                pending = True
            # Idle turns flush too: a forwarding sink retries its connection then.
            if not events or (pending and now - last_flush >= FLUSH_INTERVAL):
                self.router.flush()
                pending, last_flush, self._unflushed = False, now, 0
            self._run_timers(now)
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
            self.router.flush()
            text = self.status_text()
            self.log(text)
            self._notify("status", text)

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
            old, self.router = self.router, router
            old.close()
            c = self.counters
            c.written_before += old.written
            c.dropped_before += old.dropped
            c.unselected_before += old.unselected.count
        self._notify("ready", self.status_text())

    def stop(self) -> None:
        """Stop the loop as SIGTERM does (from a signal handler or another thread)."""
        self._signals.append(signal.SIGTERM)
        self._wakeup.wake()

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
                remove_socket_file(item.owned_path, item.owned_inode)
            item.sock.close()
        self.selector.close()
        self._wakeup.close()

    # -- input ---------------------------------------------------------------------------------
    def _deliver(self, frames: list[bytes], sender: str, transport: str, size: int) -> None:
        """Hand `frames` (`size` bytes read) to the rules; flush once FLUSH_BYTES were read
        since the last flush, so that big messages are not all held in the queues."""
        self.router.deliver(frames, sender, transport, time.time())
        received = self.counters.received
        received[transport] = received.get(transport, 0) + len(frames)
        self._unflushed += size
        if self._unflushed >= FLUSH_BYTES:
            self._unflushed = 0
            self.router.flush()

    def _on_datagrams(self, item: Input) -> int:
        """Read a batch; the number read (0 when the socket was empty)."""
        if item.transport == "unix":
            return self._on_local_datagrams(item)
        frames: list[bytes] = []
        senders: list[str] = []
        reader = item.reader
        try:
            total = reader.read(frames, senders, DATAGRAM_BATCH, FLUSH_BYTES)
        except OSError as exc:
            self._complain(f"receive {item.transport}",
                           f"receive failed on {item.transport}: {exc.strerror}")
            return 0
        if reader.truncated:
            self.counters.truncated += reader.truncated
            reader.truncated = 0
        if frames:
            self._deliver_datagrams(frames, senders, item.transport, total)
        return len(frames)

    def _on_local_datagrams(self, item: Input) -> int:
        """/dev/log style: senders block instead of being dropped and their addresses say
        nothing (usually unbound), so the cheaper recv_into does."""
        view = memoryview(self._buffer)
        recv = item.sock.recv_into
        frames: list[bytes] = []
        total = 0
        for _ in range(DATAGRAM_BATCH):
            try:
                size = recv(view)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._complain("receive unix", f"receive failed on unix: {exc.strerror}")
                break
            frames.append(bytes(view[:size]))
            total += size
            if total >= FLUSH_BYTES:
                break
        if frames:
            self._deliver(frames, "", "unix", total)
        return len(frames)

    def _drops_now(self, item: Input, total: int) -> None:
        if total > item.last_drops:
            self.counters.kernel_drops += total - item.last_drops
            item.last_drops = total

    def _read_kernel_drops(self) -> None:
        """The same counter read directly (SO_MEMINFO), for drops no datagram followed."""
        for item in self.inputs:
            if item.sock.type == socket.SOCK_DGRAM:
                try:
                    info = item.sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 64)
                except OSError:
                    continue
                if len(info) >= 4 * (SK_MEMINFO_DROPS + 1):
                    self._drops_now(item, struct.unpack_from("I", info, 4 * SK_MEMINFO_DROPS)[0])

    def _deliver_datagrams(self, frames: list[bytes], senders: list[str], transport: str,
                           size: int) -> None:
        # Most batches come from one sender; group runs so _deliver's loop stays tight.
        start = 0
        if senders[0] is senders[-1]:  # the usual case: one sender for the whole batch
            self._deliver(frames, senders[0], transport, size)
            return
        for i in range(1, len(frames) + 1):
            if i == len(frames) or senders[i] != senders[start]:
                self._deliver(frames[start:i], senders[start], transport, size if start == 0 else 0)
                start = i

    def _on_accept(self, item: Input) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                sock, address = item.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRORS:
                    self._rest(item, exc)
                    return
                continue  # ECONNABORTED and the like: that client only
            if item.starved:
                item.starved = False
                self.log(f"accepting again on {item.describe()}")
            sender = describe_peer(address)
            source = source_of(sender, sock)
            if not self._make_room(source, sender):
                sock.close()
                continue
            sock.setblocking(False)
            if item.transport == "tls":
                try:
                    sock = self.tls_context.wrap_socket(sock, server_side=True,
                                                        do_handshake_on_connect=False)
                except OSError:  # reset while waiting to be accepted: that client only
                    sock.close()
                    continue
            conn = Connection(sock, sender, source, item.transport, self.max_message,
                              self.max_frame, self._now)
            self.connections[sock.fileno()] = conn
            self.per_source[source] = self.per_source.get(source, 0) + 1
            self.counters.connections += 1
            self.selector.register(sock, selectors.EVENT_READ,
                                   lambda mask, c=conn: self._on_readable(c))
            if not self._accepting:
                return

    def _rest(self, item: Input, exc: OSError) -> None:
        """Out of descriptors (or memory): the socket rests for RESOURCE_BACKOFF instead
        of waking the loop for the same client again and again; reported once."""
        try:
            self.selector.unregister(item.sock)
        except (KeyError, ValueError):
            pass
        if not item.starved:
            item.starved = True
            self.log(f"accept on {item.describe()}: {exc.strerror}; pausing it for "
                     f"{RESOURCE_BACKOFF:g}s at a time until there is room")
        self._at(self._now + RESOURCE_BACKOFF, lambda: self._watch_input(item))

    def _make_room(self, source: str, sender: str) -> bool:
        """Whether a new connection from `source` may stay: under its source's limit, and,
        when the table is full, after the least active connection of the source that
        holds the most (if that is not this source) was closed to make room."""
        count = self.per_source.get(source, 0)
        if count >= self.max_per_source:
            self.counters.refused += 1
            self._complain("per-source", f"connection from {sender} refused: {source} already "
                                         f"has {count} (the limit per source)")
            return False
        if len(self.connections) < self.max_connections:
            return True
        largest, most = max(self.per_source.items(), key=lambda item: item[1])
        if most <= count + 1:
            self.counters.refused += 1
            self._complain("full", f"connection from {sender} refused: {len(self.connections)} "
                                   "connections open (the limit), none to spare")
            return False
        victim = min((c for c in self.connections.values() if c.source == largest),
                     key=lambda c: c.last_active)
        self.counters.closed += 1
        self._complain("evicted", f"{len(self.connections)} connections open (the limit): "
                                  f"closed the least active of {largest}'s {most} for {sender}")
        self._close_connection(victim)
        return True

    def _on_readable(self, conn: Connection) -> bool:
        """Read one chunk; True when bytes arrived."""
        sock = conn.sock
        conn.last_active = self._now
        if conn.handshaking:
            try:
                sock.do_handshake()
                conn.handshaking = False
            except ssl.SSLWantReadError:
                return False
            except ssl.SSLWantWriteError:
                self.selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE,
                                     lambda mask, c=conn: self._on_readable(c))
                return False
            except (ssl.SSLError, OSError) as exc:
                self._complain("handshake", f"TLS handshake with {conn.sender} failed: {exc}")
                self._close_connection(conn, deliver=False)
                return False
            self.selector.modify(sock, selectors.EVENT_READ, lambda mask, c=conn: self._on_readable(c))
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
        framer = conn.framer
        before = framer.pending
        frames = framer.feed(data)
        self.held += framer.pending - before
        if self.held > self._held_peak:
            self._held_peak = self.held
        if self.held > self.memory_budget and framer.pending:
            # Over the budget: this connection, the one that just grew, gives up what it
            # holds as a message of its own (the rest of that frame follows as another).
            before = framer.pending
            frames += framer.cut()
            self.held -= before - framer.pending
            self.counters.cut += 1
        if frames:
            self._deliver(frames, conn.sender, conn.transport, len(data))
        return True

    def _close_connection(self, conn: Connection, deliver: bool = True) -> None:
        fileno = conn.sock.fileno()
        self.held -= conn.framer.pending
        rest = conn.framer.close()
        if deliver and rest:
            self._deliver(rest, conn.sender, conn.transport, 0)
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        if self.connections.pop(fileno, None) is not None:
            left = self.per_source[conn.source] - 1
            if left:
                self.per_source[conn.source] = left
            else:
                del self.per_source[conn.source]
        conn.sock.close()

    # -- reporting --------------------------------------------------------------------------------
    def status_text(self) -> str:
        """The counters since start. Each message counts once per destination it was
        handed to: with one destination per message, received = written + dropped +
        not selected (once the queues are flushed)."""
        self._read_kernel_drops()
        c, router = self.counters, self.router
        per = ", ".join(f"{k} {v}" for k, v in sorted(c.received.items())) or "none yet"
        unselected = c.unselected_before + router.unselected.count + len(router.unselected.lines)
        text = (f"received {c.total()} ({per}); written {c.written_before + router.written}; "
                f"dropped {c.dropped_before + router.dropped}; "
                f"not selected by any rule {unselected}; "
                f"dropped by the kernel {c.kernel_drops}; open connections {len(self.connections)}")
        for count, what in ((c.truncated, "truncated datagrams"),
                            (c.cut, "frames cut to stay within the memory budget"),
                            (c.refused, "connections refused"),
                            (c.closed, "connections closed (idle, slow or to make room)"),
                            (c.errors, "internal errors")):
            if count:
                text += f"; {what} {count}"
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


_malloc_trim: list = []


def give_memory_back() -> None:
    """Return the heap's free pages to the system (glibc's malloc_trim). Partial frames
    are large, short-lived objects; once many are freed, glibc keeps the holes they left
    unless asked, and the daemon's memory would stay at its peak for good."""
    if not _malloc_trim:
        try:
            import ctypes

            _malloc_trim.append(ctypes.CDLL(None).malloc_trim)
        except (ImportError, OSError, AttributeError):  # not glibc: nothing to ask
            _malloc_trim.append(None)
    if _malloc_trim[0] is not None:
        _malloc_trim[0](0)
