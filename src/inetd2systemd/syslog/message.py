"""The parsed syslog message and the parsers that make it (RFC 5424, RFC 3164).

Parsers are pure functions from bytes to a `Message`; they never raise, whatever the
bytes. The chain is the one rsyslog and syslog-ng follow: RFC 5424 when the PRI is
followed by the version `1 `, else the tolerant RFC 3164 reading of what devices really
send, and what cannot be read as a header stays message text. The received bytes are
kept in `raw` as well, so a lossy parse can always be checked against what arrived.

The RFC 3164 reading follows rsyslog's (so that files written in the traditional format
come out byte for byte as rsyslogd writes them) and takes syslog-ng's side where rsyslog's
default would misread common devices (docs/syslogd.md lists each choice):

- control characters are escaped on receive as `#ooo` (octal), rsyslog's
  `$EscapeControlCharactersOnReceive`, before anything is parsed; TAB too unless
  `escape_tab` is off; NUL is always escaped;
- after the PRI: spaces, a Cisco sequence number (`123: `) and a Cisco clock mark
  (`*` not synchronised, `.` synchronised) are skipped;
- the timestamp: `Mmm dd hh:mm:ss` with the month in any case, an optional year before
  it, after the day or after the time, fractions, a trailing colon; or ISO 8601 with `T`
  or a space, any number of fraction digits, with or without a zone;
- a hostname only after a timestamp and never from a local socket (no sender writes one
  there): letters, digits, `.`, `_`, `-`, ending in a letter or digit, or an IPv6
  address, followed by a space or the end;
- the TAG runs to the first `:` (kept in it) or space, as rsyslog and syslog-ng end it;
  the program name is the TAG up to `[` or `:`, the PID what is between `[` and `]`;
- MSG is the rest, without the one space that separates it from the header.

Fields stay bytes: the sinks write bytes, so decoding and re-encoding every message
would only cost time and could alter what the sender sent. `Message` is a NamedTuple
because it is built hundreds of thousands of times a second on the hot path.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .tables import DEFAULT_FACILITY, DEFAULT_SEVERITY, MAX_PRI

DEFAULT_PRI = DEFAULT_FACILITY * 8 + DEFAULT_SEVERITY

BOM = b"\xef\xbb\xbf"

# -- control characters (rsyslog's $EscapeControlCharactersOnReceive) ---------------------

CONTROL = bytes(range(32))
CONTROL_NO_TAB = CONTROL.replace(b"\t", b"")
_OCTAL = {c: b"#%03o" % c for c in range(32)}
_ESCAPE = {True: re.compile(rb"[\x00-\x1f]"), False: re.compile(rb"[\x00-\x08\x0a-\x1f]")}


def escape_controls(text: bytes, escape: bool = True, escape_tab: bool = True) -> bytes:
    """Every byte below 0x20 as `#` and three octal digits (ESC -> #033), as rsyslog
    escapes them on receive. With escaping off only NUL is escaped (it is never kept
    raw, in rsyslog either); TAB is kept when `escape_tab` is off."""
    if not escape:
        return text.replace(b"\0", b"#000") if 0 in text else text
    if text.translate(None, CONTROL if escape_tab else CONTROL_NO_TAB) is text:
        return text  # nothing to escape: translate hands back the same object
    return _ESCAPE[escape_tab].sub(lambda m: _OCTAL[m[0][0]], text)


# -- RFC 5424 --------------------------------------------------------------------------------

# Section 6.3, with the structured data matched whole; names may be longer than the RFC's
# 32 characters, as some senders write them. A quoted PARAM-VALUE may hold anything but
# an unescaped '"'; the escapes are undone only when a sink asks (sd_elements). VMware
# ESXi writes values without quotes (`[Originator@6876 sub=Vpxa opID=x-1]`): a bare value
# runs to the next space or ']'.
_SD_VALUE = rb'(?:"(?:[^"\\]|\\.)*"|[^\s\]"]*)'
_SD_ELEMENT = rb'\[[^\s\]="]{1,128}(?: [^\s\]="]{1,128}=' + _SD_VALUE + rb')*\]'
_SD_RUN = re.compile(rb"(?:" + _SD_ELEMENT + rb")+", re.S)
PRI_DIGITS = {digits: pri for pri in range(MAX_PRI + 1)  # `13`, `013` -> 13
              for digits in {b"%d" % pri, b"%02d" % pri, b"%03d" % pri}}
PRI_TEXT = {b"<%s>" % digits: pri for digits, pri in PRI_DIGITS.items()}
_new = tuple.__new__  # Message(...) without the Python-level __new__ frame: the hot path

# RFC 3339 as senders write it: `T` or a space, any number of fraction digits, the zone
# optional (syslog-ng reads all of these; rsyslog refuses the last three). The pattern
# texts in capitals are shared with the file sinks' fast road (sinks.py), which must read
# exactly what these parsers read.
_ISO_DATE_TIME = (rb"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])[T ](?:[01]\d|2[0-3]):[0-5]\d:"
                  rb"(?:[0-5]\d|60)")
FRACTION_ZONE = rb"(?:\.\d*)?(?:[Zz]|[+-](?:[01]\d|2[0-3]):?[0-5]\d)?"
_ISO = _ISO_DATE_TIME + FRACTION_ZONE
_ISO_5424 = re.compile(_ISO_DATE_TIME.replace(b"[T ]", b"[Tt]") + FRACTION_ZONE)


class Message(NamedTuple):
    """One syslog message. Absent header fields are b"" (RFC 5424's NILVALUE too)."""

    facility: int
    severity: int
    timestamp: bytes  # the sender's timestamp text, unconverted (b"": none readable)
    hostname: bytes  # the hostname the sender wrote (not the peer address)
    app_name: bytes  # RFC 5424 APP-NAME or the program name from the RFC 3164 TAG
    procid: bytes  # PROCID or the [pid] in the TAG
    msgid: bytes
    structured_data: bytes  # the STRUCTURED-DATA text as sent, b"" for NIL
    msg: bytes  # the free-form text as sent (a BOM kept), control characters escaped
    raw: bytes  # exactly what was received for this message
    syntax: str  # "rfc5424", "rfc3164", or "raw": no valid PRI (user.notice) or an
    #             RFC 5424 header cut short by a bad TIMESTAMP (all text after the version)
    sender: str = ""  # peer address ("10.0.0.1", "[::1]", a unix path or "")
    transport: str = ""  # "udp", "tcp", "tls", "unix", "unix-stream"
    received: float = 0.0  # time.time() when it was read
    tag: bytes = b""  # the RFC 3164 TAG exactly as written (`su[12]:`), b"" for RFC 5424

    @property
    def pri(self) -> int:
        return self.facility * 8 + self.severity

    def sd_elements(self) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
        return sd_elements(self.structured_data)


def parse(data: bytes, sender: str = "", transport: str = "", received: float = 0.0,
          escape: bool = True, escape_tab: bool = True) -> Message:
    """Parse one frame. Never raises: what cannot be read as a header stays message text.
    Trailing CR, LF and NUL are framing and removed, as are spaces before the PRI."""
    text = escape_controls(data.rstrip(b"\r\n\0").lstrip(b" "), escape, escape_tab)
    if text[:1] == b"<":
        end = text.find(b">", 1, 5)
        pri = PRI_TEXT.get(text[:end + 1]) if end > 0 else None
        if pri is not None:
            if text[end + 1:end + 3] == b"1 ":
                return _rfc5424(pri, text, end + 3, data, sender, transport, received)
            return _rfc3164(pri, text[end + 1:], data, sender, transport, received, "rfc3164")
    # No valid PRI: user.notice, and the whole text read as RFC 3164, as rsyslog and
    # syslog-ng both do (`Feb 18 16:01:59 host -- MARK --` keeps its hostname).
    return _rfc3164(DEFAULT_PRI, text, data, sender, transport, received, "raw")


def _rfc5424(pri: int, text: bytes, start: int, data: bytes, sender: str, transport: str,
             received: float) -> Message:
    """Six space-separated header fields, NILVALUE `-`, then STRUCTURED-DATA and MSG.
    A TIMESTAMP that is not RFC 3339 (day `xx`) ends the header there and the rest is
    MSG, as rsyslog reads it; a STRUCTURED-DATA that cannot be cut is left in MSG."""
    parts = text[start:].split(b" ", 5)
    timestamp = parts[0]
    if timestamp != b"-" and _ISO_5424.fullmatch(timestamp) is None:
        return _new(Message, (pri >> 3, pri & 7, b"", b"", b"", b"", b"", b"", text[start:], data,
                              "raw", sender, transport, received, b""))
    while len(parts) < 6:
        parts.append(b"")
    _, hostname, app_name, procid, msgid, rest = parts
    sd = b""
    if rest[:1] == b"-" and rest[1:2] in (b" ", b""):
        msg = rest[2:]
    elif rest[:1] == b"[" and (m := _SD_RUN.match(rest)) is not None and \
            rest[m.end():m.end() + 1] in (b" ", b""):
        sd, msg = rest[:m.end()], rest[m.end() + 1:]
    else:
        msg = rest
    return _new(Message, (
        pri >> 3, pri & 7, b"" if timestamp == b"-" else timestamp,
        b"" if hostname == b"-" else hostname, b"" if app_name == b"-" else app_name,
        b"" if procid == b"-" else procid, b"" if msgid == b"-" else msgid,
        sd, msg, data, "rfc5424", sender, transport, received, b""))


# -- RFC 3164 as devices send it ------------------------------------------------------------

_MONTH = (rb"(?:[Jj][Aa][Nn]|[Ff][Ee][Bb]|[Mm][Aa][Rr]|[Aa][Pp][Rr]|[Mm][Aa][Yy]|[Jj][Uu][Nn]"
          rb"|[Jj][Uu][Ll]|[Aa][Uu][Gg]|[Ss][Ee][Pp]|[Oo][Cc][Tt]|[Nn][Oo][Vv]|[Dd][Ee][Cc])")
YEAR = rb"(?:19[7-9]\d|20\d\d)"
_BSD = (rb"(?:" + YEAR + rb" )?" + _MONTH + rb" {1,2}(?:0?[1-9]|[12]\d|3[01])(?: " + YEAR +
        rb")? (?:[01]?\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)(?:\.\d*)?(?: " + YEAR + rb"(?= ))?")
_HOST = rb"[A-Za-z0-9._-]{0,254}[A-Za-z0-9]"
ZONE_NAME = rb"(?:UTC|GMT|[A-Z]{1,3}[SD]?T)"
# Cisco IOS: `<189>123: host: *Mar  1 00:00:00.123 UTC: %SYS-5-...`: the sequence number,
# the origin hostname, the clock mark and the zone are optional; a colon may end the
# timestamp.
_HEADER_3164 = re.compile(
    rb" *(?:\d{1,10}: +(?:(" + _HOST + rb"): +)?)?[*.]?(" + _BSD + rb"|" + _ISO +
    rb")(?: " + ZONE_NAME + rb"(?=:))?:?(?: +|$)")
# A hostname: rsyslog's characters, ending in a letter or digit; or an IPv6 address.
HOST_NAME = rb"(?:" + _HOST + rb"|[0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f:.]*)"
HOSTNAME = re.compile(HOST_NAME + rb"(?: |$)")
_TAG = re.compile(rb"[^: ]*:?")
_HEADERLESS = re.compile(rb" *[\[{]")


def _rfc3164(pri: int, text: bytes, data: bytes, sender: str, transport: str, received: float,
             syntax: str) -> Message:
    timestamp = hostname = b""
    pos = 0
    if _HEADERLESS.match(text) is None:  # JSON or `[...]` right after the PRI: all text
        m = _HEADER_3164.match(text)
        if m is not None:
            origin, timestamp, pos = m[1], m[2], m.end()
            if origin is not None:
                hostname = origin
            elif not transport.startswith("unix"):
                h = HOSTNAME.match(text, pos)
                if h is not None:
                    hostname = text[pos:h.end()].rstrip(b" ")
                    pos = h.end()
        tag = _TAG.match(text, pos)[0]
        pos += len(tag)
    else:
        tag = b""
    msg = text[pos + 1:] if text[pos:pos + 1] == b" " else text[pos:]
    app_name, procid = program_and_pid(tag)
    return _new(Message, (pri >> 3, pri & 7, timestamp, hostname, app_name, procid, b"", b"", msg,
                          data, syntax, sender, transport, received, tag))


def program_and_pid(tag: bytes) -> tuple[bytes, bytes]:
    """`sshd[12]:` -> (b"sshd", b"12"); the program ends at `[` or `:` (rsyslog's
    programname, syslog-ng's PROGRAM), the PID is what stands between `[` and `]`."""
    if not tag:
        return b"", b""
    end = len(tag)
    for stop in (b"[", b":"):
        i = tag.find(stop, 0, end)
        if i >= 0:
            end = i
    program = tag[:end]
    if tag[end:end + 1] == b"[":
        close = tag.find(b"]", end)
        return program, tag[end + 1:close if close >= 0 else len(tag)].rstrip(b":")
    return program, b""


# -- structured data -------------------------------------------------------------------------

_SD_PARAM = re.compile(rb'([^\s\]="]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s\]"]*))', re.S)
_SD_ID = re.compile(rb"\[([^\s\]=\"]+)")
_SD_ESCAPE = re.compile(rb'\\(["\\\]])')


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
             (bare if quoted is None else _SD_ESCAPE.sub(rb"\1", quoted)).decode("utf-8", "replace"))
            for name, quoted, bare in (m.groups() for m in _SD_PARAM.finditer(chunk, head.end()))
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
