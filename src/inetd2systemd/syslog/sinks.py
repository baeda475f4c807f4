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
from .message import BOM, CONTROL, HOSTNAME, YEAR, ISO_TAIL, PRI_5424, PRI_TEXT, Message, parse
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
_stamp_cache: dict[bytes, bytes] = {}  # timestamp text (ISO: its first 19 bytes) -> stamp
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


def _cached_stamp(ts: bytes) -> bytes:
    key = ts[:19] if ts[4:5] == b"-" else ts  # an ISO stamp's text after 19 bytes is not used
    stamp = _stamp_cache.get(key)
    if stamp is None:
        stamp = convert_timestamp(ts)
        if len(_stamp_cache) > 8192:
            _stamp_cache.clear()
        _stamp_cache[key] = stamp
    return stamp


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
    stamp = _stamp_cache.get(ts) if ts else None
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


# `byte in bytes` with a bytes operand first tries it as an integer and formats a
# TypeError for that; with an int it is a plain memchr. This runs for every message.
SP = 0x20
COLON = 0x3A
_VALID_HOSTS: dict[bytes, bool] = {}
_VALID_STAMPS: dict[bytes, bool] = {}


def _is_hostname(host: bytes) -> bool:
    valid = _VALID_HOSTS.get(host)
    if valid is None:
        # A year after the time (`Oct 11 22:14:15 2009 host`) is read as the year.
        valid = HOSTNAME.fullmatch(host + b" ") is not None and YEAR.fullmatch(host) is None
        if len(_VALID_HOSTS) > 4096:
            _VALID_HOSTS.clear()
        _VALID_HOSTS[host] = valid
    return valid


def _is_canonical_stamp(stamp: bytes) -> bool:
    """`Mmm dd hh:mm:ss` exactly as the traditional format writes it back."""
    valid = _VALID_STAMPS.get(stamp)
    if valid is None:
        valid = convert_timestamp(stamp) == stamp
        if len(_VALID_STAMPS) > 8192:
            _VALID_STAMPS.clear()
        _VALID_STAMPS[stamp] = valid
    return valid


def traditional_lines(frames: Iterator[bytes], queues: Sequence[tuple[list[bytes], ...] | None],
                      local: bool = False) -> bytes | None:
    """The common cases at full speed: frames whose PRI goes to line sinks only are turned
    into traditional lines without building a Message, and each line is appended to the
    queues of its PRI. Taken here:

    - RFC 3164 as sent by glibc, logger, rsyslog and most devices,
      `<PRI>Mmm dd hh:mm:ss HOST TAG MSG` (from a local socket, `local`, without HOST), the
      stamp written as the traditional format writes it, the TAG ended by `: ` or a space;
      the line is then the frame itself after the PRI (with the local hostname inserted);
    - RFC 5424 with every header field present, no structured data and MSG not starting
      with a space, BOM or line break.

    Stops at the first frame it does not take and returns it, for parse() and the routing
    table, so lines keep the order their messages came in; None when the iterator is
    exhausted. Only frames for which both roads give the same bytes are taken here
    (tests/test_syslog_fastpath.py checks that): anything unusual, a control character
    above all, goes the general road.
    """
    pri_5424 = PRI_5424.get
    pri_3164 = PRI_TEXT.get
    stamp_of = _stamp_cache.get
    for frame in frames:
        if frame.translate(None, CONTROL) is not frame:  # a control character: escape it
            return frame
        end = frame.find(b">", 1, 5)
        pri = pri_3164(frame[:end + 1])
        if pri is not None and frame[end + 16:end + 17] == b" " and frame[:1] == b"<":
            targets = queues[pri]
            if targets is None or not _is_canonical_stamp(frame[end + 1:end + 16]):
                return frame
            if local:
                rest = frame[end + 17:]
                head = rest
                if rest[4:5] == b" " and rest[:4].isdigit():
                    return frame  # perhaps a year after the time
            else:
                host_end = frame.find(b" ", end + 17)
                if host_end < 0 or not _is_hostname(frame[end + 17:host_end]):
                    return frame
                rest = frame[end + 1:]
                head = frame[host_end + 1:]
            space = head.find(b" ")
            colon = head.find(b":", 0, space)
            if space <= 0 or (colon >= 0 and colon != space - 1):
                return frame  # no TAG, or a colon inside it or not followed by a space
            if targets:
                if local:
                    line = b"%s %s %s\n" % (frame[end + 1:end + 16], LOCAL_HOSTNAME, rest)
                else:
                    line = rest + b"\n"
                for queue in targets:
                    queue.append(line)
            continue
        p = frame.split(b" ", 7)
        if len(p) == 8 and p[6] == b"-":
            pri = pri_5424(p[0])
            targets = None if pri is None else queues[pri]
            if targets is not None:
                ts, host, app, procid, msg = p[1], p[2], p[3], p[4], p[7]
                stamp = stamp_of(ts[:19])
                if stamp is None and ts[4:5] == b"-":
                    stamp = _cached_stamp(ts)
                # NIL HOSTNAME and APP-NAME are written `-` on both roads; an empty field
                # (two spaces) or a NIL PROCID is not written as it stands.
                if stamp and ISO_TAIL.fullmatch(ts, 19) is not None and host and app and \
                        procid and procid != b"-" and \
                        (not msg or (msg[0] != _BOM_FIRST and msg[0] != SP)):
                    if targets:  # else no rule takes this PRI
                        line = b"%s %s %s[%s] %s\n" % (stamp, host, app, procid, msg)
                        for queue in targets:
                            queue.append(line)
                    continue
        return frame
    return None


_BOM_FIRST = BOM[0]


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


class Router:
    """The sinks of one RuleSet and the PRI-indexed table of their emit methods.

    For each PRI whose sinks all write traditional lines (files, FIFOs, the console),
    `line_queues` holds those sinks' line queues, so the common message can skip the
    Message object altogether (traditional_lines); None where any other sink is involved.
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
        self.line_queues: Sequence[tuple[list[bytes], ...] | None] = \
            [tuple(sink.lines for sink in sinks)
             if all(isinstance(sink, (FileSink, Unselected)) for sink in sinks) else None
             for sinks in routes]
        self._line_sinks = [s for s in self.sinks.values() if isinstance(s, FileSink)]
        self._line_sinks.append(self.unselected)
        self.failed = 0  # messages lost before any destination had them
        self._failures = Trouble("internal error (please report)")

    def route(self, message: Message) -> None:
        for emit in self.table[message.facility * 8 + message.severity]:
            emit(message)

    def deliver(self, frames: Sequence[bytes], sender: str, transport: str, received: float) -> None:
        """Route a batch of frames from one sender."""
        rest = iter(frames)
        try:
            self._route(rest, sender, transport, received)
        except Exception:  # reading or formatting one frame failed: it alone is lost
            self._lost_unread()
            for frame in rest:  # the rest one at a time, so that each costs only itself
                try:
                    self._route(iter((frame,)), sender, transport, received)
                except Exception:
                    self._lost_unread()
        for sink in self._line_sinks:
            if len(sink.lines) >= MAX_QUEUED_LINES:
                self._flush(sink)

    def _route(self, frames: Iterator[bytes], sender: str, transport: str, received: float) -> None:
        table, queues = self.table, self.line_queues
        escape, escape_tab = self.escape, self.escape_tab
        local = transport.startswith("unix")
        while (raw := traditional_lines(frames, queues, local)) is not None:
            m = parse(raw, sender, transport, received, escape, escape_tab)
            for emit in table[m[0] * 8 + m[1]]:  # facility * 8 + severity
                try:
                    emit(m)
                except Exception:  # this destination failed on this message
                    self._destination_failed(emit)

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
