"""inetd's internal services, served in-process: echo, discard, chargen, daytime, time.

RFC 862 (echo), 863 (discard), 864 (chargen), 867 (daytime) and 868 (time), over TCP
and UDP, as openbsd-inetd and xinetd answer them:

- chargen: 72-character lines of the 95 printable ASCII characters, each line starting
  one character further along the ring, CRLF-terminated (openbsd-inetd's ring starts
  at the space); over UDP one datagram of a random length from 0 to 512 per request;
- daytime: openbsd-inetd's `ctime()` form, "Fri Nov 27 12:21:45 2026\\r\\n" (style
  "inetd"), or xinetd's "27 NOV 2026 12:21:40 UTC\\r\\n" (style "xinetd");
- time: the seconds since 1900-01-01 00:00 UTC, as 32 bits in network byte order.

inetd serves these inside its own process; starting an interpreter per connection would
cost tens of milliseconds. So `inetd2systemd internal NAME` is a long-running Accept=no
service: one non-blocking selector loop, no thread or process per connection, serving
every socket systemd passed (listen_fds()) and exiting after an idle time so that the
socket unit starts it again on the next request.

The superserver embeds the same code: `InternalService(name, sock).register(selector)`
puts plain callables as the selector keys' data, so any loop that does
`for key, mask in selector.select(): key.data(mask)` drives it.
"""

from __future__ import annotations

import argparse
import errno
import random
import selectors
import socket
import struct
import sys
import time
from typing import Callable

from ..errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from ..model import INTERNAL_NAMES


# Seconds between 1900-01-01 and 1970-01-01 (RFC 868).
EPOCH_1900 = 2208988800

# The chargen ring: the 95 printable ASCII characters, starting at the space as
# openbsd-inetd does; line N starts at ring[N % 95].
RING = bytes(range(0x20, 0x7F))
LINE_CHARS = 72
_CYCLE = b"".join((RING * 2)[i:i + LINE_CHARS] + b"\r\n" for i in range(len(RING)))
_CYCLE_LEN = len(_CYCLE)  # 95 lines of 74 bytes: after it the stream repeats
CHUNK = 16384  # bytes handed to one send() of a chargen stream
_STREAM = memoryview(_CYCLE * (CHUNK // _CYCLE_LEN + 2))
UDP_CHARGEN_MAX = 512  # RFC 864: a datagram of 0 to 512 characters

# Datagrams from privileged source ports are dropped: a server there (another echo or
# chargen) would answer back and the two would bounce packets forever. openbsd-inetd
# refuses them the same way (dg_badinput).
MIN_CLIENT_PORT = 1024

ACCEPT_BATCH = 64  # connections taken per readiness event, so other sockets get a turn
RECV_SIZE = 65536

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


# ------------------------------------------------------------------------------------
# Pure producers (used by the superserver too)

def daytime_bytes(now: float | None = None, style: str = "inetd") -> bytes:
    """RFC 867 daytime string in local time, as openbsd-inetd or xinetd writes it."""
    now = time.time() if now is None else now
    if style == "xinetd":
        tm = time.localtime(now)
        return (f"{tm.tm_mday:02d} {_MONTHS[tm.tm_mon - 1]} {tm.tm_year} "
                f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} "
                f"{time.strftime('%Z', tm)}\r\n").encode("ascii", "replace")
    return time.ctime(now)[:24].encode("ascii") + b"\r\n"


def time_bytes(now: float | None = None) -> bytes:
    """RFC 868: seconds since 1900 as an unsigned 32-bit big-endian number (wraps in 2036)."""
    now = time.time() if now is None else now
    return struct.pack("!I", (int(now) + EPOCH_1900) & 0xFFFFFFFF)


def chargen_line(offset: int) -> bytes:
    """Line number `offset` of the chargen stream: 72 characters and CRLF."""
    start = (offset % len(RING)) * (LINE_CHARS + 2)
    return _CYCLE[start:start + LINE_CHARS + 2]


def chargen_bytes(position: int, size: int) -> bytes:
    """`size` bytes of the endless chargen stream from byte `position` on."""
    out = bytearray()
    position %= _CYCLE_LEN
    while len(out) < size:
        take = min(size - len(out), len(_STREAM) - position)
        out += _STREAM[position:position + take]
        position = 0
    return bytes(out)


# ------------------------------------------------------------------------------------
# One connection

Callback = Callable[[int], None]
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
# Connections stay blocking at the fd level and every call says MSG_DONTWAIT: that
# saves one ioctl per connection and never blocks the loop.
_NOWAIT = socket.MSG_DONTWAIT
_GONE = (ConnectionError, TimeoutError)


class _Connection:
    """A stream connection of echo, discard or chargen, driven by selector events."""

    __slots__ = ("owner", "sock", "peer", "pending", "position", "callback", "events")

    def __init__(self, owner: "InternalService", sock: socket.socket, peer: str | None) -> None:
        self.owner = owner
        self.sock = sock
        self.peer = peer
        self.pending = b""
        self.position = 0
        self.callback: Callback = getattr(self, f"_{owner.name}")
        self.events = 0

    def watch(self, events: int) -> None:
        selector = self.owner.selector
        assert selector is not None
        if self.events == 0:
            selector.register(self.sock, events, self.callback)
        elif events != self.events:
            selector.modify(self.sock, events, self.callback)
        self.events = events

    def close(self) -> None:
        if self.events and self.owner.selector is not None:
            self.owner.selector.unregister(self.sock)
        self.events = 0
        self.sock.close()
        self.owner._closed(self)

    # echo: what comes in goes back out; reading stops while the peer does not read
    def _echo(self, mask: int) -> None:
        sock = self.sock
        try:
            if self.pending:
                sent = sock.send(self.pending, _NOWAIT)
                self.pending = self.pending[sent:]
                if not self.pending:
                    self.watch(_READ)
                return
            data = sock.recv(RECV_SIZE, _NOWAIT)
            if not data:
                self.close()
                return
            sent = sock.send(data, _NOWAIT)
            if sent < len(data):
                self.pending = data[sent:]
                self.watch(_WRITE)
        except (BlockingIOError, InterruptedError):
            pass
        except (OSError, *_GONE):
            self.close()

    def _discard(self, mask: int) -> None:
        try:
            while self.sock.recv(RECV_SIZE, _NOWAIT):
                pass
            self.close()
        except (BlockingIOError, InterruptedError):
            pass
        except (OSError, *_GONE):
            self.close()

    def _chargen(self, mask: int) -> None:
        try:
            if mask & _READ:  # input is discarded; end of input means the peer left
                while True:
                    if not self.sock.recv(RECV_SIZE, _NOWAIT):
                        self.close()
                        return
        except (BlockingIOError, InterruptedError):
            pass
        except (OSError, *_GONE):
            self.close()
            return
        if not mask & _WRITE:
            return
        try:
            sent = self.sock.send(_STREAM[self.position:self.position + CHUNK], _NOWAIT)
            self.position = (self.position + sent) % _CYCLE_LEN
        except (BlockingIOError, InterruptedError):
            pass
        except (OSError, *_GONE):
            self.close()


# ------------------------------------------------------------------------------------
# One service on one socket

class InternalService:
    """One internal service on one socket: listening stream, datagram, or an already
    accepted connection (Accept=yes, inetd's fd 0).

    `register(selector)` adds the socket with callables as data; the owner of the loop
    calls `key.data(mask)` for each event. `connections` is how many streams are open.
    """

    def __init__(self, name: str, sock: socket.socket, *, style: str = "inetd",
                 max_connections: int | None = None, per_source: int | None = None) -> None:
        if name not in INTERNAL_NAMES:
            raise ValueError(f"unknown internal service {name!r}: expected one of "
                             f"{', '.join(INTERNAL_NAMES)}")
        self.name = name
        self.sock = sock
        self.style = style
        self.max_connections = max_connections
        self.per_source = per_source
        self.selector: selectors.BaseSelector | None = None
        self.open: set[_Connection] = set()
        self.sources: dict[str, int] = {}
        self.datagram = sock.type == socket.SOCK_DGRAM
        self.listening = (not self.datagram and
                          bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)))
        self.accepting = False
        self.chargen_position = 0  # datagrams start one line further each time

    @property
    def connections(self) -> int:
        return len(self.open)

    @property
    def done(self) -> bool:
        """An accepted connection (not a listener) that has ended: nothing left to do."""
        return not self.listening and not self.datagram and not self.open

    def register(self, selector: selectors.BaseSelector) -> None:
        self.selector = selector
        self.sock.setblocking(False)
        if self.datagram:
            selector.register(self.sock, _READ, self._on_datagram)
        elif self.listening:
            self._accepting(True)
        else:
            self._start(self.sock, None)

    def unregister(self) -> None:
        """Stop serving: close every connection, leave the socket itself open (it
        belongs to systemd or to the superserver)."""
        selector, self.selector = self.selector, None
        for conn in self.open:
            if conn.events and selector is not None:
                selector.unregister(conn.sock)
            conn.events = 0
            conn.sock.close()
        self.open.clear()
        self.sources.clear()
        if selector is not None and (self.datagram or self.accepting):
            selector.unregister(self.sock)
        self.accepting = False

    # -- streams --------------------------------------------------------------------
    def _accepting(self, on: bool) -> None:
        if on == self.accepting or self.selector is None:
            return
        if on:
            self.selector.register(self.sock, _READ, self._on_accept)
        else:
            self.selector.unregister(self.sock)
        self.accepting = on

    def _on_accept(self, mask: int) -> None:
        accept = self.sock.accept
        for _ in range(ACCEPT_BATCH):
            try:
                conn, addr = accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    print(f"internal {self.name}: accept: {exc}", file=sys.stderr)
                return  # ECONNABORTED and friends: the peer is already gone
            peer = addr[0] if isinstance(addr, tuple) else None
            if self.per_source is not None and peer is not None:
                if self.sources.get(peer, 0) >= self.per_source:
                    conn.close()  # as xinetd does when per_source is reached
                    continue
            self._start(conn, peer)
            if self.max_connections is not None and len(self.open) >= self.max_connections:
                self._accepting(False)  # the rest wait in the backlog, none is dropped
                return

    def _start(self, conn: socket.socket, peer: str | None) -> None:
        name = self.name
        if name in ("daytime", "time"):
            try:
                conn.send(daytime_bytes(style=self.style) if name == "daytime" else time_bytes())
                # Closing with unread input makes the kernel send a reset, which can
                # destroy the answer before the client reads it: swallow what came.
                while conn.recv(RECV_SIZE, _NOWAIT):
                    pass
            except OSError:
                pass
            conn.close()
            return
        c = _Connection(self, conn, peer)
        self.open.add(c)
        if peer is not None and self.per_source is not None:
            self.sources[peer] = self.sources.get(peer, 0) + 1
        if name == "chargen":  # every connection starts at the ring's start, as inetd's
            c.watch(_READ | _WRITE)
            return
        # echo and discard: the first bytes have often arrived with the handshake,
        # so try them now and save one trip through the selector.
        c.callback(_READ)
        if c in self.open and c.events == 0:
            c.watch(_WRITE if c.pending else _READ)

    def _closed(self, conn: _Connection) -> None:
        self.open.discard(conn)
        if conn.peer is not None and self.per_source is not None:
            left = self.sources.get(conn.peer, 1) - 1
            if left > 0:
                self.sources[conn.peer] = left
            else:
                self.sources.pop(conn.peer, None)
        if self.listening and not self.accepting and self.selector is not None:
            self._accepting(True)

    # -- datagrams --------------------------------------------------------------------
    def _on_datagram(self, mask: int) -> None:
        sock = self.sock
        for _ in range(ACCEPT_BATCH):
            try:
                data, addr = sock.recvfrom(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. ICMP port unreachable reported for an earlier reply
            if isinstance(addr, tuple) and addr[1] < MIN_CLIENT_PORT:
                continue
            reply = self.reply(data)
            if reply is None or not addr:
                continue
            try:
                sock.sendto(reply, addr)
            except OSError:
                pass

    def reply(self, data: bytes) -> bytes | None:
        """The answer to one datagram, or None for no answer (discard)."""
        name = self.name
        if name == "echo":
            return data
        if name == "daytime":
            return daytime_bytes(style=self.style)
        if name == "time":
            return time_bytes()
        if name == "chargen":
            size = random.randint(0, UDP_CHARGEN_MAX)
            out = bytes(_STREAM[self.chargen_position:self.chargen_position + size])
            self.chargen_position = (self.chargen_position + LINE_CHARS + 2) % _CYCLE_LEN
            return out
        return None


# ------------------------------------------------------------------------------------
# The loop of `inetd2systemd internal`

def serve_until_idle(services: list[InternalService], *, idle_timeout: float | None = None) -> None:
    """Drive the services until idle: no event for `idle_timeout` seconds while no
    connection is open (None or 0: forever), or every accepted connection has ended."""
    selector = selectors.DefaultSelector()
    for service in services:
        service.register(selector)
    timeout = idle_timeout if idle_timeout else None
    select = selector.select
    # Only a service on an accepted connection (inetd's fd 0) ever finishes by itself.
    finite = any(not s.listening and not s.datagram for s in services)
    try:
        while True:
            if finite and all(s.done for s in services):
                return
            events = select(timeout)
            if not events:
                if not any(s.open for s in services):
                    return  # idle: systemd starts us again on the next request
                continue
            try:
                for key, mask in events:
                    key.data(mask)
            except Exception as exc:  # one bad connection must not end all the others
                print(f"inetd2systemd internal: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        for service in services:
            service.unregister()
        selector.close()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Serve an inetd internal service (RFC 862/863/864/867/868) on "
                          "the sockets systemd, systemd-socket-activate or inetd passed, "
                          "in-process, until idle.")
    from ..commandline import epilog
    parser.epilog = epilog(
        [("the service a socket unit runs for inetd.conf's 'echo stream tcp nowait root "
          "internal'", "ExecStart=inetd2systemd internal echo"),
         ("try it without systemd",
          "systemd-socket-activate -l 127.0.0.1:7007 inetd2systemd internal echo")],
        {EXIT_OK: "served until idle",
         EXIT_BAD_INPUT: "no socket was passed, or a bad command line",
         EXIT_FAILED: "the passed descriptors cannot be used as sockets"})
    parser.add_argument("name", choices=INTERNAL_NAMES,
                        help="the service: echo (RFC 862), discard (863), chargen (864), "
                             "daytime (867) or time (868)")
    parser.add_argument("--idle-timeout", type=float, default=60.0, metavar="SECONDS",
                        help="exit after this long without traffic and without open "
                             "connections (0: never); the socket unit restarts the "
                             "service on the next request (default: %(default)s)")
    parser.add_argument("--max-connections", type=int, default=None, metavar="N",
                        help="at most N open stream connections (xinetd instances); "
                             "more wait in the listen backlog")
    parser.add_argument("--per-source", type=int, default=None, metavar="N",
                        help="at most N open stream connections per client address")
    parser.add_argument("--style", choices=("inetd", "xinetd"), default="inetd",
                        help="daytime format: inetd's ctime() or xinetd's (default: inetd)")


def run(args: argparse.Namespace) -> int:
    from .activation import ActivationError, listen_fds

    try:
        sockets = listen_fds()
    except ActivationError as exc:
        print(f"inetd2systemd internal: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not sockets:
        print("inetd2systemd internal: no socket was passed (run it from a .socket unit, "
              "systemd-socket-activate or inetd)", file=sys.stderr)
        return EXIT_BAD_INPUT
    services = [InternalService(args.name, s, style=args.style,
                                max_connections=args.max_connections,
                                per_source=args.per_source) for s in sockets]
    serve_until_idle(services, idle_timeout=args.idle_timeout)
    return EXIT_OK
