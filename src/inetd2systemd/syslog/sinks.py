"""Where messages go: the journal, files, FIFOs, the console, other syslog servers.

Every sink has the same small face: `emit(message)` on the hot path (it only queues),
`flush()` when the listener's loop has drained its sockets (one write, and the fsync for
synced files, per batch rather than per message), `reopen()` on SIGHUP, and `close()`.
Counters (`written`, `dropped`) are plain ints read by the listener's status report.

The `Router` turns a RuleSet into a table indexed by PRI whose entries are the bound
`emit` methods to call, so routing a message costs one list index.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import sys
import threading
import time
import traceback
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence

from ..config.trust import untrusted_reason
from ..errors import ConfigError
from .message import BOM, FRACTION_ZONE, HOST_NAME, PRI_DIGITS, YEAR, ZONE_NAME, Message, parse
from .rules import Action, RuleSet
from .tables import MONTHS

LOCAL_HOSTNAME = socket.gethostname().split(".")[0].encode()
FILE_MODE = 0o640  # logs can hold secrets: not world-readable, unlike sysklogd's 0644
MAX_QUEUED_LINES = 4096  # a sink writes at least this often, even in a long batch
WARNING_INTERVAL = 60.0  # a failing destination is reported at most once per this


# -- the traditional text format (rsyslog's RSYSLOG_TraditionalFileFormat) --------------
#
# `%TIMESTAMP% %HOSTNAME% %syslogtag%%msg:::sp-if-no-1st-sp%%msg%`: the TAG as the sender
# wrote it (RFC 3164) or APP-NAME[PROCID] without a colon (RFC 5424, NIL written `-`),
# then one space, then MSG. Control characters were escaped on receive (parse), so one
# message is always one line.

_MONTHS_BY_NUMBER = {b"%02d" % (i + 1): name for i, name in enumerate(MONTHS)}
_MONTHS_BY_NAME = {name.lower(): name for name in MONTHS}
_ISO_STAMP = re.compile(rb"\d{4}-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)")
_BSD_STAMP = re.compile(rb"(?:\d{4} )?([A-Za-z]{3}) {1,2}(\d{1,2})(?: \d{4})? (\d{1,2}):(\d\d):(\d\d)")
_now_cache = [0, b""]


def convert_timestamp(ts: bytes) -> bytes:
    """`Mmm dd hh:mm:ss` from the sender's timestamp text; b"" when it is not one. The
    sender's clock and zone are kept as written, as rsyslog does. Never raises."""
    m = _ISO_STAMP.match(ts)
    if m is not None:
        month = _MONTHS_BY_NUMBER.get(m[1])
    else:
        m = _BSD_STAMP.match(ts)
        month = None if m is None else _MONTHS_BY_NAME.get(m[1].lower())
    if month is None:
        return b""
    day, hour, minute, second = (int(g) for g in m.groups()[1:])
    if not (1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        return b""
    return b"%s %2d %02d:%02d:%02d" % (month, day, hour, minute, second)


class _StampCache(dict):
    """Timestamp text (ISO: its first 19 bytes, the rest is not written) -> its stamp,
    converted once: senders repeat the same second many times."""

    def __missing__(self, key: bytes) -> bytes:
        if len(self) > 8192:
            self.clear()
        stamp = self[key] = convert_timestamp(key)
        return stamp


_stamps = _StampCache()


def _cached_stamp(ts: bytes) -> bytes:
    return _stamps[ts[:19] if ts[4:5] == b"-" else ts]


def traditional_timestamp(message: Message) -> bytes:
    """The sender's timestamp converted, else the time the message was received."""
    stamp = _cached_stamp(message.timestamp) if message.timestamp else b""
    if stamp:
        return stamp
    second = int(message.received or time.time())
    if _now_cache[0] != second:
        _now_cache[0] = second
        _now_cache[1] = time.strftime("%b %e %H:%M:%S", time.localtime(second)).encode()
    return _now_cache[1]


def hostname_of(message: Message) -> bytes:
    if message.hostname:
        return message.hostname
    if message.transport.startswith("unix") or not message.sender:
        return LOCAL_HOSTNAME
    return message.sender.encode()


def traditional_line(message: Message) -> bytes:
    """`TIMESTAMP HOSTNAME TAG MSG\n`, byte for byte as rsyslogd writes it."""
    # One unpacking and one format per message: this runs for every line written.
    _, _, ts, host, app, procid, _, _, msg, _, syntax, _, _, _, tag = message
    stamp = _stamps.get(ts) if ts else None
    if not stamp:
        stamp = traditional_timestamp(message)
    if syntax == "rfc5424":
        host = host or b"-"
        app = app or b"-"
        tag = b"%s[%s]" % (app, procid) if procid else app
        if msg[:1] == b" ":  # sp-if-no-1st-sp: a MSG's own leading space is the separator
            msg = msg[1:]
    elif not host:
        host = hostname_of(message)
    return b"%s %s %s %s\n" % (stamp, host, tag, msg)


# -- the fast road: the common frames without a Message -----------------------------------
#
# Most senders write one shape, message after message: RFC 5424 with its header fields
# and no structured data, or the traditional `<PRI>Mmm dd hh:mm:ss HOST TAG MSG` (glibc's
# syslog(3) on the local socket: without HOST). A frame of such a shape whose PRI goes to
# line sinks only is turned into its line here, without building a Message. What costs
# is the interpreter's work per frame, so the work is done per batch where it can be:
#
# - control characters (escaped on receive: such frames go the general road) are looked
#   for in the whole batch at once, one memchr per code (most batches have none);
# - RFC 5424 is cut by one split per frame, its timestamp checked against tables;
# - the traditional format is cut by one regular expression over the whole batch, its
#   frames joined by LF, so that only the routing is left to do per frame.
#
# Only frames for which the general road (parse, then traditional_line) writes the very
# same bytes are taken here: the checks are the parsers' own rules (the expressions are
# built from their pattern texts), and tests/test_syslog_fastpath.py compares both roads
# over generated frames. Lines keep the order their messages came in.

_CONTROL_CODES = tuple(range(0x20))
_CONTROL_MARKED = bytes(0x80 if c < 0x20 else c for c in range(256))  # translate: changed?


def clean_runs(frames: Sequence[bytes]) -> Iterator[tuple[Sequence[bytes], bool]]:
    """The batch as runs of frames without control characters (True) and single frames
    with one (False), in order; the whole batch at once in the usual case."""
    joined = b"".join(frames)
    if not any(map(joined.__contains__, _CONTROL_CODES)):
        yield frames, True
        return
    run: list[bytes] = []
    for frame in frames:
        if frame.translate(_CONTROL_MARKED) == frame:
            run.append(frame)
        else:
            if run:
                yield run, True
                run = []
            yield (frame,), False
    if run:
        yield run, True


# RFC 5424: the timestamp's zone as most senders write it (`+hh:mm`), a set look-up;
# any other form is matched by the parser's own pattern.
_ZONES = frozenset(b"%c%02d:%02d" % (sign, hour, minute)
                   for sign in b"+-" for hour in range(24) for minute in range(60))
_FRACTION_ZONE = re.compile(FRACTION_ZONE)


def rfc5424_lines(frames: Iterator[bytes], routes: dict[bytes, Callable[[bytes], None]],
                  general: Callable[[bytes], None]) -> bytes | None:
    """Lines for RFC 5424 frames with all six header fields and no structured data,
    queued through `routes` (`<PRI>1` -> Router.line_routes' function). Returns
    the first frame that is not RFC 5424 (None: all taken); other RFC 5424 frames go to
    `general` in their place."""
    stamps = _stamps
    for frame in frames:
        try:
            version, ts, host, app, procid, _, sd, msg = frame.split(b" ", 7)
        except ValueError:  # fewer than eight fields
            version = sd = b""
        put = routes.get(version)
        if put is not None and sd == b"-" and host and app:
            # The stamp cache holds b"" for a date and time that is not RFC 3339's: the
            # parser's test, digit range for digit range (a field holds no space). A zone
            # in the set implies at least 25 bytes, so ts[19] exists.
            stamp = stamps[ts[:19]]
            if stamp and ((ts[-6:] in _ZONES and ts[19] == 0x2E and ts[20:-6].isdigit())
                          or _FRACTION_ZONE.fullmatch(ts, 19) is not None):
                if msg and msg[0] == 0x20:  # sp-if-no-1st-sp: MSG's own leading space separates
                    msg = msg[1:]
                if procid and procid != b"-":
                    put(b"%s %s %s[%s] %s\n" % (stamp, host, app, procid, msg))
                else:
                    put(b"%s %s %s %s\n" % (stamp, host, app, msg))
                continue
        if b">1 " not in frame[:7]:
            return frame  # not RFC 5424 (whatever it is, the caller sees to it)
        general(frame)
    return None


# The traditional format. The stamp exactly as the traditional format writes it, so that
# the frame's text is the line's.
_CANONICAL_STAMP = (rb"(?:" + b"|".join(MONTHS) + rb") (?: [1-9]|[12]\d|3[01]) "
                    rb"(?:[01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)")
# The TAG (to the first colon, kept, or space) and one space: MSG is the rest as it
# stands. Not empty: a second space after the stamp would be read as part of the header.
_TAG_MSG = rb"(?:[^: \n]+:?|:) .*\n"
# A year after the time (`Oct 11 22:14:15 2009 host`) is read as the year; from a local
# socket, a Cisco zone before a colon (`12:00:00 UTC: `) is read as part of the stamp.
# Groups: the PRI's digits (b"" for a frame of another shape), then the line itself
# (network) or its stamp and what follows the local hostname (local socket).
TRADITIONAL_NETWORK = re.compile(rb"<(\d{1,3})>(" + _CANONICAL_STAMP + rb" (?!" + YEAR + rb" )" +
                                 HOST_NAME + b" " + _TAG_MSG + rb")()|.*\n")
TRADITIONAL_LOCAL = re.compile(rb"<(\d{1,3})>(" + _CANONICAL_STAMP + rb") (?!" + YEAR + rb" |" +
                               ZONE_NAME + rb": )(" + _TAG_MSG + rb")|.*\n")


def traditional_lines(frames: Sequence[bytes], unrouted: Iterator[bytes],
                      routes: dict[bytes, Callable[[bytes], None]], general: Callable[[bytes], None],
                      local_host: bytes | None) -> None:
    """Lines for the frames in the traditional format, queued through `routes` (PRI
    digits -> Router.line_routes' function); the other frames go to `general`
    in their place. `unrouted` is an iterator over `frames`, taken one by one as they
    are routed (the caller goes on with it should anything raise). `local_host` is the
    hostname written for a local socket's frames, None for a network sender's. The
    frames hold no control character (LF above all)."""
    found = (TRADITIONAL_NETWORK if local_host is None else TRADITIONAL_LOCAL).findall(
        b"\n".join(frames) + b"\n")
    for frame, (pri, line, rest) in zip(unrouted, found):
        put = routes.get(pri)
        if put is None:
            general(frame)
        elif rest:
            put(b"%s %s %s" % (line, local_host, rest))
        else:
            put(line)


def forward_frame(message: Message) -> bytes:
    """`<PRI>TIMESTAMP HOSTNAME TAG MSG` (RFC 3164 as relays send it)."""
    return b"<%d>%s" % (message.facility * 8 + message.severity, traditional_line(message)[:-1])


# -- sinks ---------------------------------------------------------------------------------


class Trouble:
    """What a failing destination reports: the first failure at once, then at most one
    line per WARNING_INTERVAL with the count lost meanwhile, and one line when it works
    again. Sparse traffic to a full disk is then a handful of lines, not one per message."""

    __slots__ = ("what", "failing", "lost", "lost_total", "reported_at")

    def __init__(self, what: str) -> None:
        self.what = what
        self.failing = ""  # why it fails; "" while it works
        self.lost = 0  # messages lost since the last report
        self.lost_total = 0  # since it began failing
        self.reported_at = 0.0

    def failed(self, reason: str, lost: int) -> None:
        self.lost += lost
        self.lost_total += lost
        now = time.monotonic()
        if reason == self.failing and now - self.reported_at < WARNING_INTERVAL:
            return
        if reason == self.failing:
            text = f"{self.what}: {reason}; {self.lost} more messages lost " \
                   f"({self.lost_total} since it began failing)"
        else:
            text = f"{self.what}: {reason}" + (f"; {self.lost} messages lost" if self.lost else "")
        _warn(text)
        self.failing, self.lost, self.reported_at = reason, 0, now

    def recovered(self) -> None:
        if self.failing:
            _warn(f"{self.what}: working again; {self.lost_total} messages were lost "
                  "while it failed")
            self.failing, self.lost, self.lost_total = "", 0, 0


def _warn(text: str) -> None:
    print(f"inetd2systemd syslogd: {text}", file=sys.stderr, flush=True)


class Sink:
    """Base: counts, failure reports, and the no-op lifecycle steps."""

    def __init__(self, action: Action) -> None:
        self.action = action
        self.written = 0
        self.dropped = 0
        self.trouble = Trouble(self.describe())

    def emit(self, message: Message) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        pass

    def reopen(self) -> None:
        pass

    def close(self) -> None:
        self.flush()

    def lose(self, count: int, reason: str) -> None:
        """`count` messages for this destination are gone: counted, and reported."""
        self.dropped += count
        self.trouble.failed(reason, count)

    def describe(self) -> str:
        a = self.action
        target = f"{a.target}:{a.port}" if a.kind in ("udp", "tcp") else a.target
        return f"{a.kind} {target}".strip()


def _write_all(fd: int, data: bytes) -> tuple[int, OSError | None]:
    """Write all of `data`; (bytes written, None), or how far it got and the error."""
    view, done = memoryview(data), 0
    while done < len(data):
        try:
            done += os.write(fd, view[done:])
        except InterruptedError:
            continue
        except OSError as exc:
            return done, exc
    return done, None


class FileSink(Sink):
    """Append to a file; lines are queued and written once per batch. A synced file
    (no '-' in syslog.conf) is fdatasync'ed after each such write, so a message is on
    disk before the listener waits for more, at one sync per batch rather than per line.

    A write that fails part-way (a full disk) never leaves part of a line for the next
    one to be glued to: the part is taken back (ftruncate, when nothing was appended
    behind it), or else the next write first ends that line. The lines that did not go
    out are counted as dropped; the next batch tries again, so writing resumes by
    itself when there is room."""

    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOCTTY
    # Failures that are the destination's normal state (a FIFO nobody reads, a stopped
    # terminal): counted, never reported.
    quiet_errors: frozenset[int] = frozenset()
    # Failures after which the open file stays usable (room may come back).
    transient_errors = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EFBIG})

    def __init__(self, action: Action) -> None:
        super().__init__(action)
        self.lines: list[bytes] = []  # queued; the Router's fast path appends here too
        self._fd = -1
        self._unterminated = False  # a failed write left part of a line in the file
        self._open()

    def _open(self) -> OSError | None:
        """Open the destination; the error (already reported) when it cannot be."""
        try:
            self._fd = os.open(self.action.target, self._open_flags(), FILE_MODE)
            return None
        except OSError as exc:
            self._fd = -1
            self._failed(exc, "cannot open", 0)
            return exc

    def _open_flags(self) -> int:
        # As root, a link in a directory some other user can write is not followed:
        # that user could point it at any file on the host.
        if os.geteuid() == 0 and untrusted_reason(os.path.dirname(self.action.target) or "."):
            return self.flags | os.O_NOFOLLOW
        return self.flags

    def _failed(self, exc: OSError, doing: str, lost: int) -> None:
        self.dropped += lost
        if exc.errno in self.quiet_errors:
            return
        if exc.errno == errno.ELOOP and doing == "cannot open":
            reason = ("cannot open: a symbolic link in a directory other users can write; "
                      "not followed (name the file it points to in syslog.conf)")
        else:
            reason = f"{doing}: {exc.strerror}"
        self.trouble.failed(reason, lost)

    def emit(self, message: Message) -> None:
        lines = self.lines
        lines.append(traditional_line(message))
        if len(lines) >= MAX_QUEUED_LINES:
            self.flush()

    def flush(self) -> None:
        lines = self.lines
        if not lines:
            return
        if self._fd < 0:
            error = self._open()
            if error is not None:
                self._failed(error, "cannot open", len(lines))
                lines.clear()
                return
        data = b"".join(lines)
        if self._unterminated:
            data = b"\n" + data
        done, error = _write_all(self._fd, data)
        if error is not None:
            self._write_failed(done, error)
            return
        self._unterminated = False
        self.written += len(lines)
        lines.clear()
        if self.action.sync:
            try:
                os.fdatasync(self._fd)
            except OSError as exc:  # written, but perhaps not on disk
                if exc.errno not in (errno.EINVAL, errno.EROFS):  # a device: no sync
                    self._failed(exc, "cannot sync", 0)
                    return
        if self.trouble.failing:
            self.trouble.recovered()

    def _write_failed(self, done: int, error: OSError) -> None:
        """Count the lines that went out whole, take back a part of one, drop the rest."""
        lines = self.lines
        end = 1 if self._unterminated else 0
        if done >= end:
            self._unterminated = False
        whole = 0
        for line in lines:
            if end + len(line) > done:
                break
            end += len(line)
            whole += 1
        if done > end:
            self._take_back(done - end)
        self.written += whole
        lost = len(lines) - whole
        lines.clear()
        self._failed(error, "cannot write", lost)
        if error.errno not in self.transient_errors:
            self._close_fd()  # reopened on the next batch

    def _take_back(self, partial: int) -> None:
        """Remove the first `partial` bytes of a line that did not go out whole, when the
        file still ends with them; else remember to end that line before the next one."""
        try:
            end = os.lseek(self._fd, 0, os.SEEK_CUR)
            if os.fstat(self._fd).st_size == end:  # nobody appended behind it
                os.ftruncate(self._fd, end - partial)
                return
        except OSError:
            pass  # a FIFO or a device: nothing to take back
        self._unterminated = True

    def reopen(self) -> None:
        """logrotate moved the file away: write what is queued to the old one, then
        continue in a new file under the configured name."""
        self.flush()
        self._close_fd()
        self._open()

    def _close_fd(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def close(self) -> None:
        self.flush()
        self._close_fd()


class PipeSink(FileSink):
    """`|/path`: an existing FIFO; never blocks the listener (no reader = dropped, counted)."""

    flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    quiet_errors = frozenset({errno.ENXIO, errno.EAGAIN, errno.EPIPE, errno.ENOENT})

    def _open_flags(self) -> int:
        return self.flags  # O_NOFOLLOW is not needed: nothing is created or appended


class ConsoleSink(PipeSink):
    """The console or a tty: O_NOCTTY so the daemon never acquires a controlling
    terminal, O_NONBLOCK so a stopped terminal cannot stall the listener."""

    flags = os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | os.O_APPEND
    quiet_errors = frozenset({errno.EAGAIN, errno.EIO})


class Unselected:
    """Counts the messages no rule selects, through the same queue the file sinks have,
    so that the fast path needs no case of its own for them."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.count = 0

    def emit(self, message: Message) -> None:
        self.count += 1

    def flush(self) -> None:
        self.count += len(self.lines)
        self.lines.clear()


def _resolve(target: str, port: int, kind: int, flags: int = 0) -> tuple:
    """(family, type, proto, address) for a forwarding target."""
    family, kind, proto, _, address = socket.getaddrinfo(target, port, type=kind, flags=flags)[0]
    return family, kind, proto, address


class Lookup:
    """A forwarding target's address, looked up off the loop: getaddrinfo waits for the
    name server, for seconds when it does not answer, and every input would wait with
    it. An address literal is taken at once; a name is looked up by a thread of its
    own, polled by address(); a failed lookup is tried again after RETRY seconds."""

    RETRY = 5.0

    def __init__(self, target: str, port: int, kind: int) -> None:
        self.query = (target, port, kind)
        self.error = ""  # why the last lookup failed
        self._box: list | None = None  # the thread's outcome, once it has one
        self._retry_at = 0.0
        try:
            self.result: tuple | None = _resolve(*self.query, socket.AI_NUMERICHOST)
        except (OSError, UnicodeError):
            self.result = None

    def address(self) -> tuple | None:
        """(family, type, proto, sockaddr) when known; None while looking, or after a
        failure (`error` says why) until the next try."""
        if self.result is not None:
            return self.result
        box = self._box
        if box is None:
            if time.monotonic() >= self._retry_at:
                self._box = box = []
                threading.Thread(target=self._look_up, args=(box,), daemon=True,
                                 name=f"lookup {self.query[0]}").start()
            return None
        if not box:
            return None  # still looking
        self._box = None
        if isinstance(box[0], tuple):
            self.result, self.error = box[0], ""
        else:
            self.error = f"cannot forward: {box[0]}"
            self._retry_at = time.monotonic() + self.RETRY
        return self.result

    def _look_up(self, box: list) -> None:
        try:
            box.append(_resolve(*self.query))
        except (OSError, UnicodeError) as exc:  # a name that does not resolve
            box.append(exc)


class UDPForwardSink(Sink):
    """`@host[:port]`: one datagram per message. While the host's address is looked up,
    messages wait in a bounded queue; once the lookup failed they are dropped, counted,
    until it succeeds."""

    waiting_limit = 10_000

    def __init__(self, action: Action) -> None:
        super().__init__(action)
        self._lookup = Lookup(action.target, action.port, socket.SOCK_DGRAM)
        self._sock: socket.socket | None = None
        self._address = None
        self._waiting: list[bytes] = []

    def _open(self) -> bool:
        if self._sock is not None:
            return True
        address = self._lookup.address()
        if address is None:
            return False
        family, kind, proto, self._address = address
        self._sock = socket.socket(family, kind | socket.SOCK_CLOEXEC, proto)
        self._sock.setblocking(False)
        return True

    def emit(self, message: Message) -> None:
        frame = forward_frame(message)[:65000]
        if self._open():
            self._send(frame)
        elif self._lookup.error:
            self.lose(1, self._lookup.error)
        elif len(self._waiting) < self.waiting_limit:
            self._waiting.append(frame)
        else:
            self.lose(1, "too many messages waiting for the host's address")

    def _send(self, frame: bytes) -> None:
        try:
            self._sock.sendto(frame, self._address)
            self.written += 1
        except OSError as exc:
            self.lose(1, f"cannot send: {exc.strerror}")
        else:
            if self.trouble.failing:
                self.trouble.recovered()

    def flush(self) -> None:
        if not self._waiting:
            return
        if self._open():
            waiting, self._waiting = self._waiting, []
            for frame in waiting:
                self._send(frame)
        elif self._lookup.error:
            self.lose(len(self._waiting), self._lookup.error)
            self._waiting.clear()

    def close(self) -> None:
        self.flush()
        if self._waiting:
            self.lose(len(self._waiting), "closing while the host's address was looked up")
            self._waiting.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class TCPForwardSink(Sink):
    """`@@host[:port]`: a non-blocking connection with a bounded queue, so an unreachable
    or slow peer costs memory up to `limit` and then counted drops, never a stall."""

    limit = 16 * 1024 * 1024

    def __init__(self, action: Action) -> None:
        super().__init__(action)
        self._sock: socket.socket | None = None
        self._connected = False
        self._pending = bytearray()
        self._frames: deque[int] = deque()  # the length of each queued frame
        self._head_sent = 0  # bytes of the first queued frame already sent
        self._retry_at = 0.0
        self._lookup = Lookup(action.target, action.port, socket.SOCK_STREAM)

    def emit(self, message: Message) -> None:
        frame = forward_frame(message)
        if self.action.octet_counted:
            frame = b"%d %s" % (len(frame), frame)
        else:
            frame += b"\n"
        if len(self._pending) + len(frame) > self.limit:
            self.lose(1, "queue full (the peer is slow or unreachable)")
            return
        self._pending += frame
        self._frames.append(len(frame))
        if len(self._pending) > 1 << 20:
            self.flush()

    def _connect(self) -> bool:
        if self._sock is not None:
            if not self._connected:
                err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self.trouble.failed(f"cannot connect: {os.strerror(err)}", 0)
                    self._drop_connection()
                    return False
                try:
                    self._sock.getpeername()
                except OSError:
                    return False  # still connecting
                self._connected = True
            return True
        if time.monotonic() < self._retry_at:
            return False
        found = self._lookup.address()
        if found is None:
            if self._lookup.error:  # queued messages wait (bounded) for a later try
                self.trouble.failed(self._lookup.error, 0)
            return False
        family, kind, proto, address = found
        try:
            self._sock = socket.socket(family, kind | socket.SOCK_CLOEXEC, proto)
            self._sock.setblocking(False)
            self._sock.connect_ex(address)
        except OSError as exc:
            self.trouble.failed(f"cannot connect: {exc.strerror}", 0)
            self._drop_connection()
        return False

    def _drop_connection(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._connected = False
        self._retry_at = time.monotonic() + 1

    def flush(self) -> None:
        if not self._pending or not self._connect():
            return
        try:
            sent = self._sock.send(self._pending)
        except BlockingIOError:
            return
        except OSError as exc:
            self.trouble.failed(f"forwarding failed: {exc.strerror}; reconnecting", 0)
            self._drop_connection()
            return
        del self._pending[:sent]
        sent += self._head_sent
        frames = self._frames
        while frames and frames[0] <= sent:
            sent -= frames.popleft()
            self.written += 1
        self._head_sent = sent
        if self.trouble.failing:
            self.trouble.recovered()

    def close(self, wait: float = 2.0) -> None:
        """Send what is queued, for at most `wait` seconds while the peer takes it."""
        deadline = time.monotonic() + wait
        while self._pending and self._connected and time.monotonic() < deadline:
            self.flush()
            if self._pending:
                time.sleep(0.01)
        if self._frames:
            self.lose(len(self._frames), "closing with messages still queued")
            self._frames.clear()
            self._pending.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _journal_name(*parts: str) -> str:
    """A valid journal field name ([A-Z0-9_], not starting with a digit, <= 64):
    journald drops invalid names silently, so they are made valid here."""
    name = "_".join("".join(c if c.isascii() and c.isalnum() else "_" for c in p.upper())
                    for p in parts)
    if len(name) > 64:
        name = f"{name[:55]}_{zlib.crc32(name.encode()):08X}"
    return name


class JournalSink(Sink):
    """systemd-journald through the native protocol (systemd-python's sendv). sendv
    blocks while journald is busy, which is the back-pressure that keeps TCP lossless."""

    def __init__(self, action: Action) -> None:
        super().__init__(action)
        try:
            from systemd import journal  # the optional [journal] extra, only for this sink
        except ImportError:
            raise ConfigError("the journal needs systemd-python: "
                              "pip install 'inetd2systemd[journal]'") from None
        self._sendv = journal.sendv

    def emit(self, message: Message) -> None:
        try:
            self._sendv(*journal_fields(message))
            self.written += 1
        except (OSError, ValueError) as exc:  # journald gone; a value it refuses
            self.lose(1, f"journal write failed: {exc}")
        else:
            if self.trouble.failing:
                self.trouble.recovered()


def journal_fields(m: Message) -> list[bytes]:
    """The journal entry for one message: fields named as journald and systemd-netlogd
    name them, plus the sender's own hostname and address in fields of their own
    (journald will not let a client set _HOSTNAME)."""
    msg = m.msg[3:] if m.msg[:3] == BOM else m.msg
    fields = [b"MESSAGE=" + msg, b"PRIORITY=%d" % m.severity,
              b"SYSLOG_FACILITY=%d" % m.facility,
              b"SYSLOG_IDENTIFIER=" + (m.app_name or b"-")]
    if m.procid:
        fields.append(b"SYSLOG_PID=" + m.procid)
    if m.timestamp:
        fields.append(b"SYSLOG_TIMESTAMP=" + m.timestamp)
    if m.hostname:
        fields.append(b"SYSLOG_HOSTNAME=" + m.hostname)
    if m.sender:
        fields.append(b"SYSLOG_SOURCE_ADDR=" + m.sender.encode())
    if m.transport:
        fields.append(b"SYSLOG_TRANSPORT=" + m.transport.encode())
    if m.msgid:
        fields.append(b"SYSLOG_MSGID=" + m.msgid)
    if m.structured_data:
        fields.append(b"SYSLOG_STRUCTURED_DATA=" + m.structured_data)
        for sd_id, params in m.sd_elements():
            for name, value in params:
                fields.append(f"{_journal_name('SYSLOG_SD', sd_id, name)}={value}".encode())
    fields.append(b"SYSLOG_RAW=" + m.raw)
    return fields


SINK_TYPES: dict[str, Callable[[Action], Sink]] = {
    "file": FileSink, "pipe": PipeSink, "console": ConsoleSink,
    "udp": UDPForwardSink, "tcp": TCPForwardSink, "journal": JournalSink,
}


def _line_queuer(queues: list[list[bytes]]) -> Callable[[bytes], None]:
    """One call that queues a line for every sink of a PRI: for one sink (the usual case)
    its queue's own append."""
    if len(queues) == 1:
        return queues[0].append

    def queue_all(line: bytes) -> None:
        for queue in queues:
            queue.append(line)
    return queue_all


class Router:
    """The sinks of one RuleSet and the PRI-indexed table of their emit methods.

    For each PRI whose sinks all write traditional lines (files, FIFOs, the console),
    `line_routes` maps the PRI's digits as senders write them (`13`, `013`), and RFC 5424's
    first field (`<13>1`), to a function that queues a line for each of those sinks, so
    the common message can skip the Message object altogether (rfc5424_lines,
    traditional_lines); the other PRIs are not in it.
    A PRI no rule selects goes to `unselected`, which only counts.

    One message that cannot be read, formatted or written costs that message and no
    other: whatever a step raises, the message is counted as lost (`failed`, or the
    destination's `dropped`) and the rest of the batch goes on.
    """

    def __init__(self, ruleset: RuleSet, escape: bool = True, escape_tab: bool = True) -> None:
        self.ruleset = ruleset
        self.escape, self.escape_tab = escape, escape_tab
        self.sinks: dict[tuple, Sink] = {a.key(): SINK_TYPES[a.kind](a) for a in ruleset.actions()}
        self.unselected = Unselected()
        routes = [tuple(self.sinks[a.key()] for a in actions) or (self.unselected,)
                  for actions in ruleset.route_table()]
        self.table: Sequence[tuple[Callable[[Message], None], ...]] = \
            [tuple(sink.emit for sink in sinks) for sinks in routes]
        queuers = {}  # one function per set of sinks, shared by the PRIs it serves
        for sinks in routes:
            if sinks not in queuers and all(isinstance(sink, (FileSink, Unselected)) for sink in sinks):
                queuers[sinks] = _line_queuer([sink.lines for sink in sinks])
        self.line_routes: dict[bytes, Callable[[bytes], None]] = {}
        for digits, pri in PRI_DIGITS.items():
            if routes[pri] in queuers:
                self.line_routes[digits] = self.line_routes[b"<%s>1" % digits] = queuers[routes[pri]]
        self._line_sinks = [s for s in self.sinks.values() if isinstance(s, FileSink)]
        self._line_sinks.append(self.unselected)
        self.failed = 0  # messages lost before any destination had them
        self._failures = Trouble("internal error (please report)")

    def route(self, message: Message) -> None:
        for emit in self.table[message.facility * 8 + message.severity]:
            emit(message)

    def deliver(self, frames: Sequence[bytes], sender: str, transport: str, received: float) -> None:
        """Route a batch of frames from one sender: the common shapes by the fast road,
        the rest parsed (`general`), each in its place in the order."""
        table, escape, escape_tab = self.table, self.escape, self.escape_tab

        def general(frame: bytes) -> None:
            m = parse(frame, sender, transport, received, escape, escape_tab)
            for emit in table[m[0] * 8 + m[1]]:  # facility * 8 + severity
                try:
                    emit(m)
                except Exception:  # this destination failed on this message
                    self._destination_failed(emit)

        local_host = LOCAL_HOSTNAME if transport.startswith("unix") else None
        for run, clean in clean_runs(frames):
            rest = iter(run)  # what is not yet routed, whatever raises
            try:
                if not clean:
                    general(next(rest))
                    continue
                first = rfc5424_lines(rest, self.line_routes, general)
                if first is not None:  # the traditional format, or no syslog at all
                    run = [first, *rest]
                    rest = iter(run)
                    traditional_lines(run, rest, self.line_routes, general, local_host)
            except Exception:  # reading or formatting one frame failed: it alone is lost
                self._lost_unread()
                for frame in rest:  # the rest one at a time, so that each costs only itself
                    try:
                        general(frame)
                    except Exception:
                        self._lost_unread()
        for sink in self._line_sinks:
            if len(sink.lines) >= MAX_QUEUED_LINES:
                self._flush(sink)

    def _lost_unread(self) -> None:
        self.failed += 1
        self._failures.failed(_last_error(), 1)

    def _destination_failed(self, emit: Callable[[Message], None]) -> None:
        reason = "internal error (please report): " + _last_error()
        sink = next((s for s in self.sinks.values() if s.emit == emit), None)
        if sink is None:
            self.failed += 1
            self._failures.failed(reason, 1)
        else:
            sink.lose(1, reason)

    def _flush(self, sink: Sink | Unselected) -> None:
        try:
            sink.flush()
        except Exception:  # what the sink held is lost, the other sinks still write
            lost = len(getattr(sink, "lines", ()))
            if isinstance(sink, FileSink):
                sink.lines.clear()
            sink.lose(lost, "internal error (please report): " + _last_error())

    def flush(self) -> None:
        for sink in self.sinks.values():
            self._flush(sink)
        self.unselected.flush()

    def reopen(self) -> None:
        for sink in self.sinks.values():
            try:
                sink.reopen()
            except Exception:
                sink.trouble.failed("internal error (please report): " + _last_error(), 0)

    def close(self) -> None:
        for sink in self.sinks.values():
            try:
                sink.close()
            except Exception:
                sink.trouble.failed("internal error (please report): " + _last_error(), 0)
        self.unselected.flush()

    @property
    def written(self) -> int:
        return sum(s.written for s in self.sinks.values())

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.sinks.values()) + self.failed


def _last_error() -> str:
    """The exception being handled, with where it was raised (for a bug report)."""
    exc = sys.exc_info()[1]
    frames = traceback.extract_tb(exc.__traceback__) if exc is not None else []
    where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"
