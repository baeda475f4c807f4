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
import time
import zlib
from collections.abc import Callable, Iterator, Sequence

from ..errors import ConfigError
from .message import BOM, CONTROL, HOSTNAME, YEAR, ISO_TAIL, PRI_5424, PRI_TEXT, Message, parse
from .rules import Action, RuleSet
from .tables import MONTHS

LOCAL_HOSTNAME = socket.gethostname().split(".")[0].encode()
FILE_MODE = 0o640  # logs can hold secrets: not world-readable, unlike sysklogd's 0644
MAX_QUEUED_LINES = 4096  # a sink writes at least this often, even in a long batch


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


class Sink:
    """Base: counts, and the no-op lifecycle steps."""

    def __init__(self, action: Action) -> None:
        self.action = action
        self.written = 0
        self.dropped = 0

    def emit(self, message: Message) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        pass

    def reopen(self) -> None:
        pass

    def close(self) -> None:
        self.flush()

    def describe(self) -> str:
        a = self.action
        target = f"{a.target}:{a.port}" if a.kind in ("udp", "tcp") else a.target
        return f"{a.kind} {target}".strip()


def _warn(text: str) -> None:
    print(f"inetd2systemd syslogd: {text}", file=sys.stderr, flush=True)


class FileSink(Sink):
    """Append to a file; lines are queued and written once per batch. A synced file
    (no '-' in syslog.conf) is fdatasync'ed after each such write, so a message is on
    disk before the listener waits for more, at one sync per batch rather than per line."""

    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOCTTY

    def __init__(self, action: Action) -> None:
        super().__init__(action)
        self.lines: list[bytes] = []  # queued; the Router's fast path appends here too
        self._fd = -1
        self._open()

    def _open(self) -> None:
        try:
            self._fd = os.open(self.action.target, self.flags, FILE_MODE)
        except OSError as exc:
            self._fd = -1
            _warn(f"cannot open {self.action.target}: {exc.strerror}")

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
            self._open()
            if self._fd < 0:
                self.dropped += len(lines)
                lines.clear()
                return
        data = b"".join(lines)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            if self.action.sync:
                os.fdatasync(self._fd)
            self.written += len(lines)
        except BlockingIOError:
            self.dropped += len(lines)
        except OSError as exc:
            self.dropped += len(lines)
            _warn(f"cannot write {self.action.target}: {exc.strerror}")
            if exc.errno not in (errno.ENOSPC, errno.EAGAIN):
                self._close_fd()
        lines.clear()

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

    def _open(self) -> None:
        try:
            self._fd = os.open(self.action.target, self.flags)
        except OSError:
            self._fd = -1


class ConsoleSink(PipeSink):
    """The console or a tty: O_NOCTTY so the daemon never acquires a controlling
    terminal, O_NONBLOCK so a stopped terminal cannot stall the listener."""

    flags = os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | os.O_APPEND


class UDPForwardSink(Sink):
    """`@host[:port]`: one datagram per message."""

    def __init__(self, action: Action) -> None:
        super().__init__(action)
        self._sock: socket.socket | None = None
        self._address = None
        self._retry_at = 0.0

    def _connect(self) -> bool:
        if self._sock is not None:
            return True
        if time.monotonic() < self._retry_at:
            return False
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                self.action.target, self.action.port, type=socket.SOCK_DGRAM)[0]
            self._sock = socket.socket(family, kind, proto)
            self._sock.setblocking(False)
            self._address = address
            return True
        except OSError as exc:
            _warn(f"cannot forward to {self.describe()}: {exc}")
            self._retry_at = time.monotonic() + 5
            return False

    def emit(self, message: Message) -> None:
        if not self._connect():
            self.dropped += 1
            return
        try:
            self._sock.sendto(forward_frame(message)[:65000], self._address)
            self.written += 1
        except OSError:
            self.dropped += 1

    def close(self) -> None:
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
        self._queued = 0
        self._retry_at = 0.0

    def emit(self, message: Message) -> None:
        frame = forward_frame(message)
        if len(self._pending) + len(frame) > self.limit:
            self.dropped += 1
            return
        if self.action.octet_counted:
            self._pending += b"%d %s" % (len(frame), frame)
        else:
            self._pending += frame + b"\n"
        self._queued += 1
        if len(self._pending) > 1 << 20:
            self.flush()

    def _connect(self) -> bool:
        if self._sock is not None:
            if not self._connected:
                err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
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
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                self.action.target, self.action.port, type=socket.SOCK_STREAM)[0]
            self._sock = socket.socket(family, kind, proto)
            self._sock.setblocking(False)
            self._sock.connect_ex(address)
        except OSError as exc:
            _warn(f"cannot forward to {self.describe()}: {exc}")
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
            del self._pending[:sent]
            if not self._pending:
                self.written += self._queued
                self._queued = 0
        except BlockingIOError:
            pass
        except OSError as exc:
            _warn(f"forwarding to {self.describe()} failed: {exc.strerror}; reconnecting")
            self._drop_connection()

    def close(self, wait: float = 2.0) -> None:
        deadline = time.monotonic() + wait
        while self._pending and time.monotonic() < deadline:
            self.flush()
            if self._pending:
                time.sleep(0.01)
        self.dropped += self._queued if self._pending else 0
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
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10000 == 0:
                _warn(f"journal write failed ({exc}); {self.dropped} dropped so far")


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
    """

    def __init__(self, ruleset: RuleSet, escape: bool = True, escape_tab: bool = True) -> None:
        self.ruleset = ruleset
        self.escape, self.escape_tab = escape, escape_tab
        self.sinks: dict[tuple, Sink] = {a.key(): SINK_TYPES[a.kind](a) for a in ruleset.actions()}
        routes = [tuple(self.sinks[a.key()] for a in actions) for actions in ruleset.route_table()]
        self.table: Sequence[tuple[Callable[[Message], None], ...]] = \
            [tuple(sink.emit for sink in sinks) for sinks in routes]
        self.line_queues: Sequence[tuple[list[bytes], ...] | None] = \
            [tuple(sink.lines for sink in sinks)
             if all(isinstance(sink, FileSink) for sink in sinks) else None
             for sinks in routes]
        self._line_sinks = [s for s in self.sinks.values() if isinstance(s, FileSink)]

    def route(self, message: Message) -> None:
        for emit in self.table[message.facility * 8 + message.severity]:
            emit(message)

    def deliver(self, frames: Sequence[bytes], sender: str, transport: str, received: float) -> None:
        """Route a batch of frames from one sender."""
        table, queues = self.table, self.line_queues
        escape, escape_tab = self.escape, self.escape_tab
        local = transport.startswith("unix")
        rest = iter(frames)
        while (raw := traditional_lines(rest, queues, local)) is not None:
            m = parse(raw, sender, transport, received, escape, escape_tab)
            for emit in table[m[0] * 8 + m[1]]:  # facility * 8 + severity
                emit(m)
        for sink in self._line_sinks:
            if len(sink.lines) >= MAX_QUEUED_LINES:
                sink.flush()

    def flush(self) -> None:
        for sink in self.sinks.values():
            sink.flush()

    def reopen(self) -> None:
        for sink in self.sinks.values():
            sink.reopen()

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()

    @property
    def written(self) -> int:
        return sum(s.written for s in self.sinks.values())

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.sinks.values())
