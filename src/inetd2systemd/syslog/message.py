"""The parsed syslog message and the parsers that make it (RFC 5424, RFC 3164).

Parsers are pure functions from bytes to a `Message`. The chain is the one the reference
recommends (and rsyslog and syslog-ng follow): RFC 5424 first, then a tolerant RFC 3164
that accepts the deviations seen in the field (no hostname, ISO or year-bearing dates,
a trailing colon after the time, no tag), and what is left is kept whole as the message
text. Nothing is ever rejected: the received bytes are kept in `raw` as well, so a lossy
parse can always be checked against what arrived.

Fields stay bytes. The sinks write bytes (files, sockets, the journal), so decoding and
re-encoding every message would only cost time and could alter what the sender sent.
`Message` is an immutable NamedTuple rather than a frozen dataclass because it is built
hundreds of thousands of times a second on the hot path, and a tuple is several times
cheaper to construct.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .tables import DEFAULT_FACILITY, DEFAULT_SEVERITY, MAX_PRI

BOM = b"\xef\xbb\xbf"

# RFC 5424 section 6, with the structured data matched whole (section 6.3); names may be
# longer than the RFC's 32 characters, as some senders write them. A quoted
# PARAM-VALUE may hold anything but an unescaped '"'; the escapes are undone later, only
# when a sink asks for the elements (sd_elements).
_SD_ELEMENT = rb'\[[^\s\]="]{1,128}(?: [^\s\]="]{1,128}="(?:[^"\\]|\\.)*")*\]'
# A NILVALUE leaves its group unmatched, so m.groups(b"") yields b"" for it directly.
_NIL = rb"(?:-(?= )|"
_RFC5424 = re.compile(
    rb"<(\d{1,3})>1 " + _NIL + rb"([^ ]+)) " + _NIL + rb"([^ ]+)) " + _NIL +
    rb"([^ ]+)) " + _NIL + rb"([^ ]+)) " + _NIL + rb"([^ ]+))"
    rb" (?:-|((?:" + _SD_ELEMENT + rb")+))(?: (.*)|$)",
    re.S,
)
# The same grammar, read with one bytes.split and a dictionary lookup for "<PRI>1": about
# twice as fast as the regex above, which stays as the reference and the fallback.
_SD_RUN = re.compile(rb"(?:" + _SD_ELEMENT + rb")+", re.S)
PRI_5424 = {b"<%s>1" % digits: pri for pri in range(MAX_PRI + 1)
             for digits in {b"%d" % pri, b"%02d" % pri, b"%03d" % pri}}
_VERSION_1 = re.compile(rb"<\d{1,3}>1 ")
_new = tuple.__new__  # Message(...) without the Python-level __new__ frame: the hot path

# The tolerant RFC 3164 reading. Every part is optional, so it always matches; a hostname
# is only taken after a timestamp (without one, the first word is far more often text
# than a host), and a tag only when it ends in ':' as glibc, busybox and logger write it.
_MONTH = rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIMESTAMP = (
    rb"(?:\d{4} )?" + _MONTH + rb" {1,2}\d{1,2}(?: \d{4})? \d{1,2}:\d{2}:\d{2}(?:\.\d{1,9})?"
    rb"|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?"
)
_RFC3164 = re.compile(
    rb"(?:<(\d{1,3})>)?"
    rb"(?:(" + _TIMESTAMP + rb"):? +)?"
    rb"(?(2)(?:([A-Za-z0-9][A-Za-z0-9._-]{0,254}) +(?=\S))?)"
    rb"(?:([A-Za-z0-9_./%-][^\s\[\]:{}\"']{0,63})(?:\[([^\]\s]{0,128})\])?:(?: |$))?"
    rb"(.*)",
    re.S,
)
_SD_PARAM = re.compile(rb'([^\s\]="]+)="((?:[^"\\]|\\.)*)"', re.S)
_SD_ID = re.compile(rb"\[([^\s\]=\"]+)")
_SD_ESCAPE = re.compile(rb'\\(["\\\]])')


class Message(NamedTuple):
    """One syslog message. Absent header fields are b"" (RFC 5424's NILVALUE too)."""

    facility: int
    severity: int
    timestamp: bytes  # the sender's timestamp text, unconverted
    hostname: bytes  # the hostname the sender wrote (not the peer address)
    app_name: bytes  # RFC 5424 APP-NAME or the RFC 3164 tag
    procid: bytes  # PROCID or the [pid] after the tag
    msgid: bytes
    structured_data: bytes  # the STRUCTURED-DATA text as sent, b"" for NIL
    msg: bytes  # the free-form text, BOM removed
    raw: bytes  # exactly what was received for this message
    syntax: str  # "rfc5424", "rfc3164" or "raw" (no valid PRI: defaults used)
    sender: str = ""  # peer address ("10.0.0.1", "[::1]", a unix path or "")
    transport: str = ""  # "udp", "tcp", "tls", "unix", "unix-stream"
    received: float = 0.0  # time.time() when it was read

    @property
    def pri(self) -> int:
        return self.facility * 8 + self.severity

    def sd_elements(self) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
        return sd_elements(self.structured_data)


def _nil(value: bytes) -> bytes:
    return b"" if value == b"-" else value


def parse(data: bytes, sender: str = "", transport: str = "", received: float = 0.0) -> Message:
    """Parse one frame. Never raises: what cannot be read as a header stays message text."""
    text = data.rstrip(b"\r\n\0").lstrip(b" ")
    if text[:1] == b"<":
        parts = text.split(b" ", 6)
        if len(parts) == 7:
            pri = PRI_5424.get(parts[0])
            if pri is not None:
                _, timestamp, hostname, app_name, procid, msgid, rest = parts
                if timestamp and hostname and app_name and procid and msgid:
                    sd = None
                    if rest[:2] == b"- ":
                        sd, msg = b"", rest[2:]
                    elif rest == b"-":
                        sd = msg = b""
                    elif rest[:1] == b"[":
                        m = _SD_RUN.match(rest)
                        if m is not None:
                            end = m.end()
                            if end == len(rest):
                                sd, msg = rest, b""
                            elif rest[end] == 0x20:
                                sd, msg = rest[:end], rest[end + 1:]
                    if sd is not None:
                        if msg[:3] == BOM:
                            msg = msg[3:]
                        return _new(Message, (
                            pri >> 3, pri & 7, b"" if timestamp == b"-" else timestamp,
                            b"" if hostname == b"-" else hostname,
                            b"" if app_name == b"-" else app_name,
                            b"" if procid == b"-" else procid, b"" if msgid == b"-" else msgid,
                            sd, msg, data, "rfc5424", sender, transport, received))
        if _VERSION_1.match(text):
            return rfc5424_by_regex(text, data, sender, transport, received)
    m = _RFC3164.match(text)
    pri_text = m[1]
    if pri_text is None:
        facility, severity = DEFAULT_FACILITY, DEFAULT_SEVERITY
    else:
        pri = int(pri_text)
        if pri > MAX_PRI:
            return _raw(text, data, sender, transport, received)
        facility, severity = pri >> 3, pri & 7
    _, timestamp, hostname, app_name, procid, msg = m.groups(b"")
    syntax = "raw" if pri_text is None else "rfc3164"
    return _new(Message, (facility, severity, timestamp, hostname, app_name, procid, b"", b"",
                          msg, data, syntax, sender, transport, received))


def rfc5424_by_regex(text: bytes, data: bytes, sender: str = "", transport: str = "",
                     received: float = 0.0) -> Message:
    """The reference reading of an RFC 5424 message (parse() has a faster equivalent)."""
    m = _RFC5424.match(text)
    if m is None:
        return _broken_5424(text, data, sender, transport, received)
    pri_text, timestamp, hostname, app_name, procid, msgid, sd, msg = m.groups(b"")
    pri = int(pri_text)
    if pri > MAX_PRI:
        return _raw(text, data, sender, transport, received)
    if msg[:3] == BOM:
        msg = msg[3:]
    return _new(Message, (pri >> 3, pri & 7, timestamp, hostname, app_name, procid, msgid, sd,
                          msg, data, "rfc5424", sender, transport, received))


def _raw(text: bytes, data: bytes, sender: str, transport: str, received: float) -> Message:
    return Message(DEFAULT_FACILITY, DEFAULT_SEVERITY, b"", b"", b"", b"", b"", b"", text, data,
                   "raw", sender, transport, received)


_HEADER_5424 = re.compile(rb"<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) ?(.*)", re.S)


def _broken_5424(text: bytes, data: bytes, sender: str, transport: str, received: float) -> Message:
    """An RFC 5424 header whose structured data is malformed: keep the header, and let
    the rest (SD included) be the message text, as rsyslog does with an SD it cannot cut."""
    m = _HEADER_5424.match(text)
    if m is None or int(m[1]) > MAX_PRI:
        return _raw(text, data, sender, transport, received)
    pri = int(m[1])
    return Message(pri >> 3, pri & 7, _nil(m[2]), _nil(m[3]), _nil(m[4]), _nil(m[5]), _nil(m[6]),
                   b"", m[7], data, "rfc5424", sender, transport, received)


def sd_elements(sd: bytes) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """Split STRUCTURED-DATA text into (SD-ID, ((name, value), ...)) with escapes undone
    (RFC 5424 6.3.3: only \\", \\\\ and \\] are escapes; any other backslash is literal)."""
    if not sd:
        return ()
    elements = []
    for chunk in _split_elements(sd):
        head = _SD_ID.match(chunk)
        if head is None:
            continue
        params = tuple(
            (name.decode("utf-8", "replace"),
             _SD_ESCAPE.sub(rb"\1", value).decode("utf-8", "replace"))
            for name, value in _SD_PARAM.findall(chunk, head.end())
        )
        elements.append((head[1].decode("utf-8", "replace"), params))
    return tuple(elements)


def _split_elements(sd: bytes) -> list[bytes]:
    """Cut '[a ...][b ...]' at the brackets that are not inside a quoted value."""
    parts, start, quoted, i, n = [], 0, False, 0, len(sd)
    while i < n:
        c = sd[i]
        if c == 0x5C and quoted:  # backslash: skip the escaped byte
            i += 2
            continue
        if c == 0x22:
            quoted = not quoted
        elif c == 0x5D and not quoted:
            parts.append(sd[start:i + 1])
            start = i + 1
        i += 1
    return parts
