"""xinetd.conf and xinetd.d trees, read into `Service` values as the packaged xinetd reads them.

Entry points: `read_xinetd(path)` (an xinetd.conf, following include/includedir),
`read_xinetd_dir(path)` (a directory read as `includedir`), `parse_xinetd(text, file)`
(the same over text), `looks_like_xinetd(text)`. Each returns a `Configuration`: the
services xinetd would run, in the order it meets them, and a Finding for everything the
reader had to decide or the daemon would have said about the file.

The rules are those of Debian's xinetd 2.3.15.3 (the openSUSE fork), each checked
against /usr/sbin/xinetd in tests/test_xinetd_parser.py:

Lexing
- lines end at a newline only, and a NUL byte ends a line as it ends a C string;
- a comment is a line whose first non-blank character is `#`; a `#` after a value is
  data (`server_args = -l # x` passes three arguments; `per_source = 10 # max` is four
  values for a one-value attribute, so xinetd ignores that line);
- keywords, attribute names and enumerated values (yes/no, types, flags, socket types,
  UNLIMITED, log options) are case-insensitive (strcasecmp);
- `service NAME` or `defaults` is followed by a line holding only `{`; the entry ends
  with a line holding only `}`; `include FILE` and `includedir DIR` stand alone;
- `name op value...`: the name needs a blank before the operator, the operators are
  `=`, `+=`, `-=`, values are split on spaces and tabs only, with no quoting.

What bad input costs (as in xinetd, so a bad line costs at most its entry):
- a line that is not an entry header, a header without `{`, or a body line without an
  operator: xinetd skips lines up to the next line holding only `}` and loses the entry
  (an ERROR finding, the entry left out);
- an unknown attribute, one not allowed where it is, one set twice, `+=`/`-=` on a
  single-value attribute or the wrong number of values: xinetd ignores the line (a
  WARNING; the service is converted without it);
- a value the attribute's parser refuses (`wait = maybe`, `access_times = 22:00-06:00`):
  xinetd disables the service (an ERROR, the service left out) - unless a later
  `disable = no`, or the defaults' `enabled` list, switches it back on, in which case it
  runs without that attribute (a WARNING, converted so);
- the same checks xinetd makes once every file is read (a program or user missing, a
  port that disagrees with the services table, an unknown internal service, a
  duplicate): the service is disabled (an ERROR, left out);
- a value the defaults entry's parser refuses: xinetd exits, so ConfigError.
ConfigError is raised only when nothing can be read: the file missing or unreadable,
not a regular file, not an xinetd configuration at all, or a fatal defaults entry.

Merging, as xinetd does it:
- list attributes (only_from, no_access, passenv, log_on_success/failure) and the
  banners are copied from `defaults` into a service before its body is read, so in the
  body `+=`/`-=` adjust the default and `=` replaces it; inside `defaults`, `=` adds;
- the scalar defaults (instances, per_source, cps, groups, umask, max_load, bind,
  v6only, log_type) fill what the service did not set, after every file is read;
- built-in defaults: cps 50 10, instances and per_source UNLIMITED, groups no,
  v6only no, a dual-stack socket unless the IPv4 flag or an IPv4 `bind`; the protocol
  follows from socket_type and back;
- `disable = yes` and the defaults' `enabled`/`disabled` id lists switch a service off:
  left out with an INFO finding unless include_disabled;
- a later service with the id, or the port, protocol and address, of an earlier one is
  left out (xinetd "DISABLING"); a repeated id on another port is legal in xinetd and
  is renamed `ID-2` so that unit names stay unique;
- xinetd reads an included file again each time it is included, and into itself until
  it runs out of descriptors; the services it reads again are duplicates it disables.
  Here each file is read once, with a finding for the repeat: the same services, in
  time linear in the tree.

Every attribute of xinetd.conf(5) lands in a Service field or, when the model has no
place for it (log_type, log_on_*, deny_time, rpc_*, flags INTERCEPT IDONLY SENSOR
LABELED), in `Service.unmapped` for the unit writer to report.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from . import addresses, bad_entry, open_regular, reason, same_address, unreadable
from ..errors import ConfigError
from ..model import (INTERNAL_NAMES, RLIMIT_NAMES, Code, Configuration, Family, Finding, Listen,
                     RateLimit, Redirect, Service, Severity, SocketType, Source,
                     free_id, unmapped_code)
from .services import ServicesTable, load_services
from ..bulk import gc_paused

DEFAULT_RATE = RateLimit(50, 1, 10)  # xconfig.h DEFAULT_LOOP_RATE / DEFAULT_LOOP_TIME

# What xinetd does about each kind of bad input, in the findings' words.
IGNORES_LINE = "xinetd ignores this line"
DISABLES = "xinetd disables this service"
SKIPS_ENTRY = "xinetd skips this entry"

# -- xinetd's tables ---------------------------------------------------------------------------

# Services xinetd serves itself (builtins.c), by socket type.
BUILTINS = {"echo": ("stream", "dgram"), "discard": ("stream", "dgram"),
            "time": ("stream", "dgram"), "daytime": ("stream", "dgram"),
            "chargen": ("stream", "dgram"), "sensor": ("stream", "dgram"),
            "tcpmux": ("stream",)}
XINETD_ONLY_INTERNALS = ("tcpmux",)  # kept in the model (the writer reports it)
assert set(BUILTINS) - {"sensor"} <= set(INTERNAL_NAMES + XINETD_ONLY_INTERNALS)

TYPES = ("RPC", "INTERNAL", "UNLISTED", "SPECIAL", "TCPMUX", "TCPMUXPLUS")
FLAGS = ("REUSE", "INTERCEPT", "NORETRY", "IDONLY", "NAMEINARGS", "NODELAY", "KEEPALIVE",
         "NOLIBWRAP", "SENSOR", "IPv4", "IPv6", "LABELED")
UNMAPPED_FLAGS = ("INTERCEPT", "IDONLY", "LABELED", "SENSOR")
LOG_ON_SUCCESS = ("HOST", "DURATION", "EXIT", "PID", "USERID", "TRAFFIC")
LOG_ON_FAILURE = ("HOST", "ATTEMPT", "USERID")
SYSLOG_FACILITIES = ("daemon", "auth", "authpriv", "user", "mail", "lpr", "news", "uucp",
                     "ftp", *(f"local{n}" for n in range(8)))
SYSLOG_LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
SOCKET_TYPES = {"stream": SocketType.STREAM, "dgram": SocketType.DGRAM,
                "raw": SocketType.RAW, "seqpacket": SocketType.SEQPACKET}
RLIMITS = {"rlimit_as": "AS", "rlimit_cpu": "CPU", "rlimit_data": "DATA",
           "rlimit_rss": "RSS", "rlimit_stack": "STACK", "rlimit_files": "NOFILE"}
assert set(RLIMITS.values()) <= set(RLIMIT_NAMES)

# Copied from defaults into a service before its body (parse.c fill_attribute).
DEFAULTS_BEFORE_BODY = ("log_on_success", "log_on_failure", "only_from", "no_access",
                        "passenv", "banner", "banner_success", "banner_fail")
# Filled from defaults after every file is read, when the service did not set them.
DEFAULTS_AFTER = ("instances", "umask", "per_source", "groups", "cps", "max_load", "bind",
                  "v6only", "log_type")
SYNONYMS = {"interface": "bind"}  # one attribute under two names (parse.c A_BIND)
NOT_BUILT = ("mdns",)  # documented by the man page; Debian's build has no such attribute

_C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(word: str) -> str:
    """strcasecmp's view of a word: ASCII letters folded, nothing else (str.lower would
    also fold the Kelvin sign into `k`)."""
    return word.lower() if word.isascii() else word.translate(_ASCII_LOWER)


def _folded(names) -> dict[str, str]:
    return {fold(n): n for n in names}


_TYPES, _FLAGS = _folded(TYPES), _folded(FLAGS)
_LOG_ON = {"log_on_success": _folded(LOG_ON_SUCCESS), "log_on_failure": _folded(LOG_ON_FAILURE)}


# -- numbers as the C library reads them (util.c parse_int, parse_ull; get_limit) ---------------

_INTEGER = {base: re.compile(rf"[{_C_SPACE}]*([+-]?)([{digits}]+)[{_C_SPACE}]*")
            for base, digits in ((10, "0-9"), (8, "0-7"))}


def c_long(text: str, base: int = 10) -> int | None:
    """xinetd's parse_int: strtol with trailing blanks allowed, the long narrowed to an
    int. None where xinetd reports an error (nothing to read, anything after the number,
    or a value no long holds)."""
    match = _INTEGER[base].fullmatch(text)
    if match is None:
        # strtol reads nothing from blanks alone and parse_int then accepts "0"
        return 0 if text and not text.strip(_C_SPACE) else None
    value = int(match.group(2), base) * (-1 if match.group(1) == "-" else 1)
    if not -2**63 <= value < 2**63:
        return None
    return (value + 2**31) % 2**32 - 2**31  # int res = long value


def c_ulonglong(text: str) -> int | None:
    """xinetd's parse_ull: strtoull (a minus sign wraps around), trailing blanks allowed."""
    match = _INTEGER[10].fullmatch(text)
    if match is None:
        return 0 if text and not text.strip(_C_SPACE) else None
    value = int(match.group(2))
    if value >= 2**64:
        return None
    return (-value) % 2**64 if match.group(1) == "-" else value


_DOUBLE = re.compile(rf"[{_C_SPACE}]*([+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
                     r"|inf(?:inity)?|nan))", re.IGNORECASE)


def c_double(text: str) -> float | None:
    """sscanf("%lf"): the longest number at the start (after blanks); what follows is
    not looked at (xinetd accepts `max_load = 2.5x`)."""
    match = _DOUBLE.match(text)
    return None if match is None else float(match.group(1))


def _size(text: str) -> int | None:
    """get_limit: a number with an optional K or M suffix (after trailing blanks)."""
    if not text:
        return None
    body = text.rstrip(_C_SPACE) or text
    multiplier = {"k": 1024, "m": 1024 * 1024}.get(fold(body[-1]), 1)
    if multiplier > 1:
        body = body[:-1]
    value = c_ulonglong(body)
    if value is None or value * multiplier >= 2**64:
        return None
    return value * multiplier


# -- lexing ------------------------------------------------------------------------------

class Assignment(NamedTuple):
    """One `name op values` line (a NamedTuple: there is one per line of a large tree)."""

    name: str
    op: str  # "=", "+=", "-="
    values: tuple[str, ...]
    line: int
    column: int  # of the name
    value_column: int  # of the first value (or where it would be)
    text: str = ""  # the line itself, to point at a later value in an error


# Text whose only blanks are spaces and tabs and that holds no control character takes
# the fast path: str.split() then splits it exactly as xinetd does. (The rest: other
# C blanks, which end an attribute name but do not split values; a NUL; the blanks
# Python splits on and C does not.)
_UNUSUAL = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f"
                      "\u205f\u3000]")


# One line that is neither blank nor a comment: (number, text, words split on spaces and
# tabs up to a NUL, plain: nothing unusual in it so str.split() lexes it). A plain tuple:
# a large tree has one per line.
Line = tuple[int, str, list[str], bool]


def logical_lines(text: str) -> list[Line]:
    """(line number, text, words) of every line that is neither blank nor a comment.

    Lines end at "\\n" only (Srdline). A NUL ends what xinetd sees of a line, as it
    ends a C string (only an attribute's name is scanned past one; see
    parse_assignment), so the words stop there; they are split on spaces and tabs
    (str_parse with " \\t")."""
    result = []
    plain_text = _UNUSUAL.search(text.replace("\n", " ")) is None
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.lstrip(_C_SPACE)
        if not stripped or stripped[0] in "#\0":
            continue
        if plain_text or _UNUSUAL.search(line) is None:
            result.append((number, line, line.split(), True))
        else:
            visible = line.partition("\0")[0]
            result.append((number, line, _c_words(visible), False))
    return result


def _c_words(text: str) -> list[str]:
    """The words between runs of spaces and tabs (str_parse with " \\t")."""
    return [w for w in text.replace("\t", " ").split(" ") if w]


def _column(line: str, word: str, start: int = 0) -> int:
    found = line.find(word, start)
    return found + 1 if found >= 0 else start + 1


_OPERATORS = frozenset(("=", "+=", "-="))


def _fast_assignment(line: Line, file: str) -> Assignment:
    """The common `name op value...` line, columns left for `_located` to find."""
    number, text, words, plain = line
    if plain and len(words) > 1 and words[1] in _OPERATORS and "=" not in words[0]:
        return Assignment(words[0], words[1], tuple(words[2:]), number, 0, 0, text)
    return parse_assignment(text, number, file)  # the careful path, with its errors


def _located(a: Assignment, file: str) -> Assignment:
    """The assignment with its columns, for a message."""
    return a if a.column else parse_assignment(a.text, a.line, file)


def parse_assignment(line: str, number: int, file: str) -> Assignment:
    """Lex one attribute line as xinetd does (parsesup.c get_attr_op, parse_line)."""
    end = len(line)
    start = len(line) - len(line.lstrip(_C_SPACE))
    index = start
    while index < end and line[index] not in _C_SPACE and line[index] != "=":
        index += 1
    name = line[start:index].partition("\0")[0]  # a C string: it ends at a NUL
    if index < end and line[index] == "=":
        if not name:
            raise ConfigError("an attribute name is missing before the operator", file,
                              number, start + 1)
        raise ConfigError(f"attribute {name.rstrip('+-')!r} needs a space before its "
                          "operator", file, number, start + 1)
    op_index = index
    while op_index < end and line[op_index] in _C_SPACE:
        op_index += 1
    if op_index == end:
        raise ConfigError(f"attribute {name!r}: missing '=' (or '+=', '-=') and its value",
                          file, number, index + 1)
    char = line[op_index]
    op = "=" if char == "=" else char + "=" if char in "+-" and \
        line[op_index + 1:op_index + 2] == "=" else None
    if op is None:
        got = line[op_index:].split()[0] if line[op_index:].split() else line[op_index]
        raise ConfigError(f"attribute {name!r}: expected '=', '+=' or '-=' after it, got "
                          f"{got!r}", file, number, op_index + 1)
    rest = op_index + len(op)
    values = _c_words(line[rest:].partition("\0")[0])
    value_column = _column(line, values[0], rest) if values else rest + 1
    return Assignment(name, op, tuple(values), number, start + 1, value_column, line)


def _only(line: str, char: str) -> bool:
    """line_has_only_1_char: the character once, and nothing else but blanks (up to a
    NUL, where the C string ends)."""
    return line.partition("\0")[0].strip(_C_SPACE) == char


_HEADERS = frozenset(("service", "include", "includedir"))


def looks_like_xinetd(text: str) -> bool:
    """Whether text is xinetd syntax: an entry header followed by a `{` line, or includes."""
    lines = logical_lines(text)
    for index, (_, _, words, _) in enumerate(lines):
        keyword = fold(words[0])
        if keyword in ("include", "includedir") and len(words) == 2:
            return True
        if (keyword == "service" and len(words) >= 2) or keyword == "defaults":
            if index + 1 < len(lines) and _only(lines[index + 1][1], "{"):
                return True
    return False


# -- attribute parsers (parsers.c): values -> what xinetd keeps, or _Refused ------------------

class _Refused(Exception):
    """An attribute parser's FAILED: the message xinetd logs, the value it is about, and
    what the parser had already applied (xinetd keeps it if the service is switched back
    on)."""

    def __init__(self, message: str, index: int | None = None, partial: object = None):
        super().__init__(message)
        self.message = message
        self.index = index
        self.partial = partial


def _yes_no(value: str) -> bool:
    answer = fold(value)
    if answer not in ("yes", "no"):
        raise _Refused(f"expected yes or no, got {value!r}", 0)
    return answer == "yes"


def _unlimited_or_count(value: str) -> int | None:
    if fold(value) == "unlimited":
        return None
    number = c_long(value)
    if number is None or number < 0:
        raise _Refused(f"expected a number or UNLIMITED, got {value!r}", 0)
    return number


@functools.lru_cache(maxsize=64)
def _known_protocol(name: str) -> bool:
    try:
        socket.getprotobyname(name)
    except (OSError, UnicodeError, ValueError):
        return False
    return True


def _host_problem(name: str) -> str | None:
    """Why `name` can be no host name getaddrinfo() would resolve (empty or over-long
    labels, bytes that are not UTF-8), or None. Such names are refused here instead of
    reaching the IDNA codec, which raises on them."""
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8"
    if any(c in _C_SPACE or c < " " or c == "\x7f" for c in name):
        return "a blank or control character in it"
    labels = encoded.rstrip(b".").split(b".")
    if not encoded or encoded.startswith(b".") or b"" in labels:
        return "an empty label"
    if any(len(label) > 63 for label in labels) or len(encoded) > 253:
        return "a label over 63 bytes or a name over 253"
    return None


def _numeric_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """What getaddrinfo(AI_NUMERICHOST) makes of `text`: inet_aton's IPv4 forms
    (`127.1`, `0x7f.0.0.1`) for digits and dots, an IPv6 address (with a scope) where
    there is a colon."""
    if ":" in text:
        try:
            found = socket.getaddrinfo(text, None, socket.AF_INET6, socket.SOCK_STREAM, 0,
                                       socket.AI_NUMERICHOST)
        except (OSError, UnicodeError, ValueError):
            return None
        return ipaddress.ip_address(found[0][4][0].split("%")[0])
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, UnicodeError, ValueError):
        return None


def _bind_value(value: str) -> str:
    """bind_parser: a numeric address of either family, or a name resolved later."""
    if value and (":" in value or not value.strip("0123456789.")):
        if _numeric_address(value) is None:
            raise _Refused(f"bad address {value!r}", 0)
    else:
        problem = _host_problem(value)
        if problem is not None:
            raise _Refused(f"cannot resolve {value!r}: {problem}", 0)
    return value


def _interval(text: str) -> tuple[int, int]:
    """ti_add: hh:mm-hh:mm, hours 0-23 and minutes 0-59, the start before the end."""
    position = len(text) - len(text.lstrip(" "))
    numbers = []
    for low, high, stop in ((0, 23, ":"), (0, 59, "-"), (0, 23, ":"), (0, 59, "")):
        digits = re.match(r"[0-9]*", text[position:]).group()
        position += len(digits)
        if text[position:position + 1] != stop or (not stop and position < len(text)):
            raise _Refused(f"incorrect time interval {text!r} (expected hh:mm-hh:mm)")
        number = (int(digits or "0") + 2**31) % 2**32 - 2**31  # an int that overflowed
        if not low <= number <= high:
            raise _Refused(f"invalid time interval {text!r} (hours 0-23, minutes 0-59)")
        numbers.append(number)
        position += 1
    start, end = numbers[0] * 60 + numbers[1], numbers[2] * 60 + numbers[3]
    if start >= end:
        raise _Refused(f"invalid time interval {text!r} (it must end after it starts, "
                       "on the same day)")
    return start, end


def _accumulate(table: dict[str, str], what: str):
    """type, flags, access_times: each value adds to what earlier lines (even a refused
    one) left, as xinetd sets bits in a mask."""
    def parse(values, state, current):
        result = list(current or ())
        if not values:
            raise _Refused(f"needs at least one value", None, result)
        for index, value in enumerate(values):
            name = table.get(fold(value)) if table else None
            if table and name is None:
                raise _Refused(f"unknown {what} {value!r}: expected any of "
                               f"{', '.join(table.values())}", index, result)
            try:
                item = name if table else _interval(value)
            except _Refused as refusal:
                raise _Refused(refusal.message, index, result) from None
            if item not in result or not table:
                result.append(item)
        return result
    return parse


def _log_type(values, state, current):
    if not values:
        raise _Refused("needs a value")
    kind = fold(values[0])
    if kind == "syslog":
        if not 2 <= len(values) <= 3:
            raise _Refused("SYSLOG takes a facility and an optional level")
        facility = fold(values[1])
        if facility not in SYSLOG_FACILITIES:
            raise _Refused(f"unknown syslog facility {values[1]!r}", 1)
        level = fold(values[2]) if len(values) == 3 else "info"
        if level not in SYSLOG_LEVELS:
            raise _Refused(f"unknown syslog level {values[2]!r}", 2)
        return ("SYSLOG", facility, level) if len(values) == 3 else ("SYSLOG", facility)
    if kind == "file":
        if not 2 <= len(values) <= 4:
            raise _Refused("FILE takes a path and optional soft and hard size limits")
        limits = [_size(v) for v in values[2:]]
        for index, limit in enumerate(limits, 2):
            if limit is None:
                raise _Refused(f"bad size limit {values[index]!r}", index)
        if len(limits) == 2 and limits[1] < limits[0]:
            raise _Refused("the hard limit is below the soft limit", 3)
        return ("FILE", *values[1:])
    raise _Refused(f"expected SYSLOG or FILE, got {values[0]!r}", 0)


def _rpc_version(values, state, current):
    text = values[0]
    low_text, dash, high_text = text.partition("-")
    low = c_long(low_text)
    high = c_long(high_text) if dash else low
    if low is None or high is None or low > high:
        raise _Refused(f"bad version or version range {text!r}", 0)
    return (low, high)


def _port(values, state, current):
    port = c_long(values[0])
    if port is None or not 0 <= port < 65536:
        raise _Refused(f"port number {values[0]!r} is invalid", 0)
    return port


def _redirect(values, state, current):
    host, port_text = values
    port = c_long(port_text)
    if port is None or port <= 0:
        port = state.services.port(port_text, "tcp") if not port_text.isdigit() else None
        if port is None:
            raise _Refused(f"port {port_text!r} is neither a number nor a tcp service in "
                           f"{state.services.source}", 1)
    if port >= 65536:
        raise _Refused(f"port {port_text!r} is too large", 1)
    if ":" in host or not host.strip("0123456789."):
        if _numeric_address(host) is None:
            raise _Refused(f"bad address {host!r}", 0)
    elif _host_problem(host) is not None:
        raise _Refused(f"cannot resolve {host!r}: {_host_problem(host)}", 0)
    return Redirect(host, port)


def _cps(values, state, current):
    numbers = [c_ulonglong(v) for v in values]
    for index, number in enumerate(numbers):
        if number is None:
            raise _Refused(f"expected a number, got {values[index]!r}", index)
    return tuple(n % 2**32 for n in numbers)  # parse_ubase10 narrows to unsigned int


def _max_load(values, state, current):
    load = c_double(values[0])
    if load is None:
        raise _Refused(f"expected a number, got {values[0]!r}", 0)
    if load == 0:
        raise _Refused("0 is refused by xinetd", 0)
    return load


def _rlimit(attr: str):
    def parse(values, state, current):
        value = values[0]
        if fold(value) == "unlimited":
            return None
        # the CPU limit is a count of seconds; the others take a K or M suffix
        number = c_ulonglong(value) if attr == "rlimit_cpu" else _size(value)
        if number is None:
            raise _Refused(f"expected a number{'' if attr == 'rlimit_cpu' else ' (K or M suffix allowed)'}"
                           f" or UNLIMITED, got {value!r}", 0)
        return number
    return parse


def _deny_time(values, state, current):
    value = fold(values[0])
    if value in ("forever", "never"):
        return value.upper()
    if c_long(values[0]) is None:
        raise _Refused(f"expected minutes, FOREVER or NEVER, got {values[0]!r}", 0)
    return values[0]


def _umask(values, state, current):
    mask = c_long(values[0], 8)
    if mask is None or not 0 <= mask <= 0o777:
        raise _Refused(f"expected an octal umask 0-777, got {values[0]!r}", 0)
    return mask


def _server_args(values, state, current):
    if not values:
        raise _Refused("needs a value")
    return tuple(values)


def _socket_type(values, state, current):
    kind = SOCKET_TYPES.get(fold(values[0]))
    if kind is None:
        raise _Refused(f"unknown socket type {values[0]!r}: expected "
                       f"{', '.join(SOCKET_TYPES)}", 0)
    return kind


def _protocol(values, state, current):
    if not _known_protocol(values[0]):
        raise _Refused(f"protocol {values[0]!r} is not in /etc/protocols", 0)
    return values[0]


def _scalar(parse: Callable[[str], object]):
    return lambda values, state, current: parse(values[0])


def _number(values, state, current):
    number = c_long(values[0])
    if number is None:
        raise _Refused(f"expected a number, got {values[0]!r}", 0)
    return number


_text = _scalar(str)


# List attributes: each value is checked on its own; the operators add and remove.

def _log_option(attr: str):
    table = _LOG_ON[attr]

    def check(value: str, state) -> str:
        name = table.get(fold(value))
        if name is None:
            raise _Refused(f"unknown {attr} flag {value!r}: expected any of "
                           f"{', '.join(table.values())}")
        return name
    return check


# addr.c factorized_addr: what makes xinetd refuse an entry (the service is disabled),
# as opposed to an entry it cannot read and drops (with an error in its log).
_FACTORIZED = re.compile(r"((?:[0-9]*\.)*[0-9]*)\{(.*)")


def _address(value: str, state) -> str | None:
    if "," in value and "{" not in value:
        raise _Refused(f"{value!r} has a comma in it (addresses are separated by blanks)")
    if "{" in value:
        match = _FACTORIZED.fullmatch(value)
        if match is None or ".." in "." + match.group(1):
            if match is not None:
                raise _Refused(f"bad address {value!r}: consecutive dots")
            return None  # not a factorized address: xinetd cannot parse it
        inside, _, after = match.group(2).partition("}")
        if not re.fullmatch(r"[0-9,]*", inside) or not _ or after:
            raise _Refused(f"bad address {value!r}: expected digits and commas in braces, "
                           "and nothing after them")
        if re.search(r"^,|,,|,$", inside) or not inside:
            raise _Refused(f"bad address {value!r}: consecutive commas")
    try:
        entry = addresses.parse_address(value)
    except addresses.AddressError as exc:
        raise _Refused(str(exc)) from None  # what makes xinetd disable the service
    return None if entry.kind == "ignored" else value  # xinetd: "failed to parse", dropped


def _env_value(value: str, state) -> str:
    if "=" not in value:
        raise _Refused(f"env value {value!r} has no '='")
    return value


def _any_value(value: str, state) -> str:
    return value


ANY = -1  # any number of values (possibly none); `=` only, once
MODIFIABLE = -2  # any number of values; `+=` and `-=` allowed; repeatable


class _Spec(NamedTuple):
    service: int | None  # value count in a service entry; None: not allowed there
    defaults: int | None  # value count in the defaults entry; None: not allowed there
    parse: Callable  # (values, state, current) -> kept; or, for lists, (value, state)


# parse.c service_attributes / default_attributes of the packaged xinetd.
ATTRIBUTES: dict[str, _Spec] = {
    "socket_type": _Spec(1, None, _socket_type), "protocol": _Spec(1, None, _protocol),
    "wait": _Spec(1, None, _scalar(_yes_no)), "user": _Spec(1, None, _text),
    "group": _Spec(1, None, _text), "server": _Spec(1, None, _text),
    "server_args": _Spec(ANY, None, _server_args),
    "instances": _Spec(1, 1, _scalar(_unlimited_or_count)),
    "log_on_success": _Spec(MODIFIABLE, MODIFIABLE, _log_option("log_on_success")),
    "log_on_failure": _Spec(MODIFIABLE, MODIFIABLE, _log_option("log_on_failure")),
    "log_type": _Spec(ANY, MODIFIABLE, _log_type),
    "only_from": _Spec(MODIFIABLE, MODIFIABLE, _address),
    "no_access": _Spec(MODIFIABLE, MODIFIABLE, _address),
    "access_times": _Spec(ANY, None, _accumulate({}, "time interval")),
    "type": _Spec(ANY, None, _accumulate(_TYPES, "type")),
    "rpc_version": _Spec(1, None, _rpc_version), "rpc_number": _Spec(1, None, _number),
    "id": _Spec(1, None, _text), "env": _Spec(MODIFIABLE, None, _env_value),
    "port": _Spec(1, None, _port), "passenv": _Spec(MODIFIABLE, MODIFIABLE, _any_value),
    "flags": _Spec(ANY, None, _accumulate(_FLAGS, "flag")),
    "nice": _Spec(1, None, _number), "redirect": _Spec(2, None, _redirect),
    "banner": _Spec(1, 1, _text), "bind": _Spec(1, 1, _scalar(_bind_value)),
    "interface": _Spec(1, 1, _scalar(_bind_value)),
    "per_source": _Spec(1, 1, _scalar(_unlimited_or_count)),
    "groups": _Spec(1, 1, _scalar(_yes_no)), "banner_success": _Spec(1, 1, _text),
    "banner_fail": _Spec(1, 1, _text), "cps": _Spec(2, 2, _cps),
    "disable": _Spec(1, None, _scalar(_yes_no)), "max_load": _Spec(1, 1, _max_load),
    **{attr: _Spec(1, None, _rlimit(attr)) for attr in RLIMITS},
    "v6only": _Spec(1, 1, _scalar(_yes_no)), "deny_time": _Spec(1, None, _deny_time),
    "umask": _Spec(1, 1, _umask), "libwrap": _Spec(1, None, _text),
    "enabled": _Spec(None, MODIFIABLE, _any_value),
    "disabled": _Spec(None, MODIFIABLE, _any_value),
}


# -- entries as read -------------------------------------------------------------------------

class _Value:
    """What xinetd keeps of an attribute, and the line that set it last.

    Source and column are made only when a message needs them: a large tree has one of
    these per line. `owner` is the entry that set it: a list copied from the defaults is
    copied again before a service changes it, and a one-value attribute is "already set"
    only when its own entry set it."""

    __slots__ = ("parsed", "file", "assignment", "owner", "shared")

    def __init__(self, parsed: object, file: str, assignment: Assignment, owner: "_Raw | None"
                 ) -> None:
        self.parsed = parsed
        self.file = file
        self.assignment = assignment
        self.owner = owner
        self.shared = False  # a defaults list some service holds: copied before a change

    @property
    def values(self) -> tuple[str, ...]:
        return self.assignment.values

    @property
    def source(self) -> Source:
        return Source(self.file, self.assignment.line)

    @property
    def column(self) -> int:
        return _located(self.assignment, self.file).value_column

    @property
    def located(self) -> Source:
        """Where its value is, for a finding about it."""
        return Source(self.file, self.assignment.line, self.column)


class _Failure(NamedTuple):
    """A parser's refusal, which disabled the service (SC_DISABLE) unless undone."""

    error: ConfigError
    undone_by: str | None  # "`disable = no` at line N" or "the defaults' enabled list"


@dataclass
class _Raw:
    """One `service` entry (or the defaults) as read."""

    name: str
    source: Source
    column: int = 0  # of the name on the header line: where a missing attribute points
    attrs: dict[str, _Value] = field(default_factory=dict)
    failures: list[_Failure] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # about its lines, in order
    switched_off: str | None = None  # "disable = yes": xinetd stops reading the entry there
    stopped: bool = False  # xinetd stopped reading at a `disable` line

    def get(self, name: str, default: object = None) -> object:
        value = self.attrs.get(name)
        return default if value is None else value.parsed

    def id(self) -> str:
        return self.get("id") or self.name

    def failed(self) -> bool:
        return any(f.undone_by is None for f in self.failures)

    def undo_failures(self, how: str) -> None:
        self.failures = [f if f.undone_by else f._replace(undone_by=how) for f in self.failures]


@dataclass
class _State:
    services: ServicesTable
    include_disabled: bool
    root: str | None
    defaults: _Raw = field(default_factory=lambda: _Raw("defaults", Source("<defaults>", 0)))
    raws: list[_Raw] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    reading: list[tuple[str, object]] = field(default_factory=list)  # (path, identity) open
    read: set = field(default_factory=set)  # identities of every file and directory read
    entries: int = 0  # entries recognised, to tell a configuration from something else
    # attributes systemd has no place for, as the defaults entry sets them: (attribute,
    # value, where) -> how many services take them (reported once, at the defaults' line)
    from_defaults: dict[tuple[str, str, Source], int] = field(default_factory=dict)

    def note(self, source: Source, severity: Severity, message: str,
             service: str | None = None, *, code: Code) -> None:
        self.findings.append(Finding(source, severity, message, service, code=code))


def _value_columns(a: Assignment) -> list[int]:
    """1-based column of each value (only computed when a value is checked)."""
    columns, position = [], a.value_column - 1
    for value in a.values:
        found = a.text.find(value, position)
        columns.append(found + 1 if found >= 0 else a.value_column)
        position = found + len(value) if found >= 0 else position
    return columns


def _error_at(a: Assignment, file: str, message: str, value_index: int | None = None
              ) -> ConfigError:
    """The error for an assignment, pointing at its name or at one of its values."""
    located = _located(a, file)  # columns only now, for the message
    if value_index is None:
        column = located.column
    elif located.values and value_index < len(located.values):
        column = _value_columns(located)[value_index]
    else:
        column = located.value_column
    return ConfigError(message, file, a.line, column)


def _ignore(target: _Raw, a: Assignment, file: str, message: str) -> None:
    """A line xinetd reads past with a warning: the service runs without it."""
    target.findings.append(bad_entry(_error_at(a, file, message), IGNORES_LINE,
                                     severity=Severity.WARNING, code=Code.LINE_IGNORED))


def _apply(target: _Raw, a: Assignment, file: str, in_defaults: bool, state: _State
           ) -> str | None:
    """One assignment into a service (or the defaults), as parse.c identify_attribute.
    Returns the attribute's name (None for one xinetd does not know)."""
    name = a.name
    spec = ATTRIBUTES.get(name)
    if spec is None or name in SYNONYMS:  # written in capitals, or a second name
        name = fold(name)
        name = SYNONYMS.get(name, name)
        spec = ATTRIBUTES.get(name)
    count = None if spec is None else spec.defaults if in_defaults else spec.service
    if count is None:
        where = "the defaults entry" if in_defaults else "a service entry"
        _ignore(target, a, file, f"attribute {a.name!r} is not allowed in {where}"
                if spec is not None else f"attribute {a.name!r} is in xinetd.conf(5) but "
                "not in this xinetd build" if name in NOT_BUILT else
                f"unknown attribute {a.name!r}")
        return name
    current = target.attrs.get(name)
    if in_defaults and name == "log_type":
        if current is not None:  # its parser: "Cannot set more than one log_type attribute"
            _refused(target, a, file, True, _Refused("cannot be set more than once"))
        count = ANY
    if count != MODIFIABLE:
        if current is not None and current.owner is target:
            _ignore(target, a, file, f"{a.name} is already set at line "
                    f"{current.assignment.line}")
            return name
        if a.op != "=":
            _ignore(target, a, file, f"operator {a.op!r} only goes with list attributes such "
                    f"as only_from, not {a.name}")
            return name
        if count > 0 and len(a.values) != count:
            hint = " (a '#' after a value is not a comment)" if \
                any(v.startswith("#") for v in a.values) else ""
            _ignore(target, a, file, f"{a.name} takes {count} value{'s' * (count > 1)}, got "
                    f"{len(a.values)}{hint}")
            return name
        try:
            parsed = spec.parse(a.values, state, None if current is None else current.parsed)
        except _Refused as refusal:
            if refusal.partial is not None:
                target.attrs[name] = _Value(refusal.partial, file, a, None)
            _refused(target, a, file, in_defaults, refusal)
            return name
        target.attrs[name] = _Value(parsed, file, a, target)
        if name == "disable":
            if parsed:
                target.switched_off = f"disable = {a.values[0]}"
            else:
                target.undo_failures(f"`disable = {a.values[0]}` at line {a.line}")
        return name
    _apply_list(target, name, spec, a, file, in_defaults, state, current)
    return name


def _apply_list(target: _Raw, name: str, spec: _Spec, a: Assignment, file: str,
                in_defaults: bool, state: _State, current: _Value | None) -> None:
    """`=`, `+=` and `-=` on a list attribute, in place (no copy per line: a list built
    over 100,000 `+=` lines costs linear time)."""
    op = "+=" if in_defaults and a.op == "=" else a.op
    if name == "env" and op == "-=":
        return _refused(target, a, file, in_defaults, _Refused("operator '-=' is not "
                                                               "supported for env"))
    if current is None or current.owner is not target or current.shared:
        items = _copy_items(name, None if current is None else current.parsed)
    else:
        items = current.parsed
    if op == "=":
        items = _copy_items(name, None)
    target.attrs[name] = _Value(items, file, a, target)
    removed = []
    for index, value in enumerate(a.values):
        try:
            item = spec.parse(value, state)
        except _Refused as refusal:
            return _refused(target, a, file, in_defaults, _Refused(refusal.message, index))
        if item is None:
            target.findings.append(bad_entry(
                _error_at(a, file, f"{name}: cannot read address {value!r}", index),
                "xinetd leaves it out of the list", severity=Severity.WARNING,
                code=Code.LINE_IGNORED))
        elif op == "-=":
            removed.append(item)
        elif isinstance(items, dict):
            items.setdefault(fold(item) if name == "passenv" else item, item)
        else:
            items.append(item)
    if removed:
        if isinstance(items, dict):
            for item in removed:
                items.pop(fold(item) if name == "passenv" else item, None)
        else:
            items[:] = [v for v in items if not _same_entry(name, v, removed)]


def _copy_items(name: str, items: object) -> list | dict:
    """A list attribute's own copy. passenv and the log flags are sets that keep their
    order (a dict: membership in constant time)."""
    if name in ("passenv", "log_on_success", "log_on_failure"):
        return dict(items or {})
    return list(items or ())


def _refused(target: _Raw, a: Assignment, file: str, in_defaults: bool,
             refusal: _Refused) -> None:
    error = _error_at(a, file, f"{a.name}: {refusal.message}", refusal.index)
    if in_defaults:
        # parse.c: "A fatal error was encountered while parsing the default section"
        raise ConfigError(f"{error.msg}: xinetd exits on an error in the defaults entry",
                          error.file, error.line, error.column, code=Code.BAD_INPUT)
    target.failures.append(_Failure(error, None))
    if fold(a.name) == "disable":
        target.switched_off = None  # not an administrator's choice: a failure


def _same_entry(name: str, value: str, removed: list[str]) -> bool:
    if value in removed:
        return True
    if name in ("only_from", "no_access"):
        # xinetd removes by address and mask, however the entry was written
        try:
            nets = addresses.parse_address(value).networks
            return bool(nets) and any(addresses.parse_address(r).networks == nets
                                      for r in removed)
        except addresses.AddressError:
            return False
    return False


# -- reading files (parse.c parse_conf_file, find_next_entry, parse_entry, skip_entry) --------

def _skip_entry(lines: list[tuple[int, str, list[str]]], index: int) -> int:
    """skip_entry: past the next line holding only `}` (or to the end)."""
    while index < len(lines):
        index += 1
        if _only(lines[index - 1][1], "}"):
            break
    return index


def _skipped(lines: list[tuple[int, str, list[str]]], start: int, end: int) -> str:
    """What skip_entry passed over, for the message: the lines, and any entry headers
    among them (a lost `}` makes xinetd lose the next entry too)."""
    if start >= end:
        return ""
    first, last = lines[start][0], lines[end - 1][0]
    lost = [f"{words[0]} {words[1]}" if len(words) > 1 else words[0]
            for _, _, words, _ in lines[start:end]
            if fold(words[0]) in _HEADERS | {"defaults"}]
    text = f" (lines {first}-{last}" if first != last else f" (line {first}"
    return text + (f", with {', '.join(lost)})" if lost else ")")


def _bad_entry(state: _State, error: ConfigError, lines, start: int, end: int,
               what: str = SKIPS_ENTRY) -> None:
    """An ERROR for what skip_entry lost; a WARNING when it lost nothing (a stray line
    at the end of a file: the `}` after a complete entry in many CTF templates)."""
    if start >= end:
        state.findings.append(bad_entry(error, IGNORES_LINE, severity=Severity.WARNING,
                                        code=Code.LINE_IGNORED))
    else:
        state.findings.append(bad_entry(error, what + _skipped(lines, start, end),
                                        code=Code.ENTRY_SKIPPED))


def _entries(file: str, text: str, state: _State) -> Iterator[tuple[str, str, Source]]:
    """Read one file's entries into the state; yields ("include" | "includedir", path,
    where) for the caller to read before this file goes on. A generator rather than a
    recursive call, so that nesting depth costs no Python stack."""
    lines = logical_lines(text)
    index = 0
    found_defaults = False
    while index < len(lines):
        number, line, words, _ = lines[index]
        index += 1
        keyword = fold(words[0])
        column = _column(line, words[0])
        if keyword in _HEADERS and len(words) < 2:
            end = _skip_entry(lines, index)
            _bad_entry(state, ConfigError(f"{words[0]}: the name is missing", file, number,
                                          column + len(words[0])), lines, index, end)
            index = end
            continue
        if keyword in ("include", "includedir"):
            state.entries += 1
            yield keyword, words[1], Source(file, number, _column(line, words[1],
                                                                  column + len(words[0])))
            continue
        if keyword not in ("service", "defaults"):
            end = _skip_entry(lines, index)
            _bad_entry(state, ConfigError(f"expected 'service NAME', 'defaults', 'include' or "
                                          f"'includedir', got {words[0]!r}", file, number,
                                          column), lines, index, end)
            index = end
            continue
        header = "defaults" if keyword == "defaults" else f"service {words[1]}"
        if index >= len(lines) or not _only(lines[index][1], "{"):
            where = (number, column + len(words[0])) if index >= len(lines) else \
                (lines[index][0], _column(lines[index][1], lines[index][2][0]))
            end = _skip_entry(lines, min(index + 1, len(lines)))
            _bad_entry(state, ConfigError(f"{header}: missing '{{' on a line of its own after "
                                          "it", file, *where), lines, index, end)
            index = end
            continue
        state.entries += 1
        index += 1
        source = Source(file, number)
        if keyword == "defaults":
            if found_defaults:
                end = _skip_entry(lines, index)
                # at the `{` line, where xinetd is when it says so
                state.note(Source(file, lines[index - 1][0], 1), Severity.WARNING,
                           "only one defaults entry is allowed per file: xinetd ignores this "
                           f"one{_skipped(lines, index, end)}", code=Code.LINE_IGNORED)
                index = end
                continue
            index, complete = _read_body(lines, index, file, state.defaults, True, state,
                                         number, column)
            found_defaults = complete
            state.findings += state.defaults.findings
            state.defaults.findings.clear()
            continue
        raw = _Raw(words[1], source, _column(line, words[1], column + len(words[0])))
        for name in DEFAULTS_BEFORE_BODY:
            value = state.defaults.attrs.get(name)
            if value is not None:
                value.shared = True
                raw.attrs[name] = value
        index, complete = _read_body(lines, index, file, raw, False, state, number, column)
        if complete or raw.stopped:
            state.raws.append(raw)


def _read_body(lines, index: int, file: str, target: _Raw, in_defaults: bool,
               state: _State, number: int, column: int) -> tuple[int, bool]:
    """parse_entry: the attribute lines up to `}`. Returns (next index, whether the
    entry was read to its end)."""
    count = len(lines)
    while index < count:
        line_number, line, words, _ = lines[index]
        index += 1
        if "}" in words[0] and _only(line, "}"):
            return index, True
        try:
            assignment = _fast_assignment(lines[index - 1], file)
        except ConfigError as error:
            keyword = fold(words[0])
            if keyword in _HEADERS | {"defaults"}:
                where = "the defaults entry" if in_defaults else f"service {target.name}"
                problem = "its closing '}' is missing" if keyword in ("service", "defaults") \
                    else f"{words[0]} cannot appear inside an entry (move it after the '}}')"
                error = ConfigError(f"{' '.join(words[:2])!r} inside {where}: {problem}",
                                    file, line_number, _column(line, words[0]))
            end = _skip_entry(lines, index)
            what = "xinetd skips the rest of the defaults entry" if in_defaults else SKIPS_ENTRY
            _bad_entry(state, error, lines, index - 1, end, what)
            return end, False
        name = _apply(target, assignment, file, in_defaults, state)
        if name == "disable" and (target.switched_off or target.failed()):
            # xinetd stops reading a disabled entry here; the rest is read only to
            # convert it as a disabled unit, and then nothing more is said about it
            target.stopped = True
            if target.failed() or not state.include_disabled:
                return _skip_entry(lines, index), False
            seen = len(target.findings)
            index, complete = _read_body(lines, index, file, target, in_defaults, state,
                                         number, column)
            del target.findings[seen:]
            return index, complete
    where = "the defaults entry" if in_defaults else f"service {target.name}"
    state.findings.append(bad_entry(ConfigError(f"{where}: missing '}}' before the end of the "
                                                "file", file, number, column),
                                    SKIPS_ENTRY if not in_defaults else
                                    "xinetd keeps what it read of the defaults entry",
                                    code=Code.ENTRY_SKIPPED))
    return index, False


def _include_path(path: str, base: str, root: str | None) -> str:
    if os.path.isabs(path):
        return os.path.join(root, path.lstrip("/")) if root else path
    # xinetd opens it relative to its working directory (/); a relative path in a file
    # being converted elsewhere means the file's own directory far more often.
    return os.path.join(base, path)


def _read_tree(file: str, text: str, identity: object, state: _State) -> None:
    """Read a file and everything it includes, depth first as xinetd does."""
    state.read.add(identity)
    _drive([(_entries(file, text, state), file, identity)], state)


def _drive(stack: list[tuple[Iterator, str, object]], state: _State) -> None:
    """Run the readers of the files being read, innermost first: an explicit stack, so
    that a tree nested a thousand deep is read like a flat one."""
    state.reading.extend((path, identity) for _, path, identity in stack)
    while stack:
        reader, current, _ = stack[-1]
        request = next(reader, None)
        if request is None:
            stack.pop()
            state.reading.pop()
            continue
        keyword, path, where = request
        if keyword == "include-file":  # the next file of an includedir
            opened = _open_included(path, where, state, in_dir=True)
        elif keyword == "include":
            opened = _open_included(_include_path(path, os.path.dirname(current), state.root),
                                    where, state)
        else:
            opened = _open_included_dir(_include_path(path, os.path.dirname(current),
                                                      state.root), where, state)
        if opened is not None:
            stack.append(opened)
            state.reading.append((opened[1], opened[2]))


def _repeat(path: str, identity: object, where: Source, state: _State) -> bool:
    """A file or directory included a second time, or into itself: reported, not read
    again. xinetd reads it again (into itself until it runs out of descriptors), and
    every service it meets again is a duplicate it disables: the same services."""
    if identity not in state.read:
        return False
    chain = [p for p, i in state.reading]
    if identity in [i for _, i in state.reading]:
        start = [i for _, i in state.reading].index(identity)
        state.note(where, Severity.WARNING, f"include loop: {path} is being read already "
                   f"({' -> '.join(chain[start:] + [path])}); xinetd reads it into itself "
                   "until it runs out of file descriptors and disables the services it "
                   "meets again: read once here", code=Code.INCLUDE_LOOP)
    else:
        state.note(where, Severity.INFO, f"{path} is included again: xinetd reads it "
                   "again and disables the services it meets a second time as duplicates; "
                   "read once here", code=Code.INCLUDE_REPEATED)
    return True


def _open_included(path: str, where: Source, state: _State, in_dir: bool = False):
    try:
        text, identity = open_regular(path)
    except (OSError, ValueError) as exc:
        if in_dir and isinstance(exc, OSError) and exc.errno in (0, 21):
            state.note(Source(path, 0), Severity.INFO, "skipped: not a regular file, as "
                       "xinetd does", code=Code.INCLUDE_SKIPPED)
        elif isinstance(exc, IsADirectoryError):
            state.note(where, Severity.WARNING, f"include {path}: a directory (xinetd reads "
                       "nothing from it; includedir reads one): skipped", code=Code.INCLUDE_SKIPPED)
        else:
            # xinetd logs "Unable to open included configuration file" and goes on
            state.note(Source(path, 0) if in_dir else where, Severity.WARNING,
                       f"included file {path}: {reason(exc)}: skipped, as "
                       "xinetd does", code=Code.INCLUDE_SKIPPED)
        return None
    if _repeat(path, identity, where, state):
        return None
    state.read.add(identity)
    return _entries(path, text, state), path, identity


def _open_included_dir(path: str, where: Source, state: _State):
    try:
        status = os.stat(path)
        identity = ("dir", status.st_dev, status.st_ino)
        read, skipped = included_names(path)
    except (OSError, ValueError) as exc:
        state.note(where, Severity.WARNING, f"included directory {path}: {reason(exc)}: "
                   "skipped, as xinetd does", code=Code.INCLUDE_SKIPPED)
        return None
    if _repeat(path, identity, where, state):
        return None
    state.read.add(identity)
    for name in skipped:
        state.note(Source(os.path.join(path, name), 0), Severity.INFO,
                   "skipped: xinetd ignores files in an includedir whose name contains '.' or "
                   "ends with '~'", code=Code.INCLUDE_SKIPPED)
    return _dir_entries(path, read, where, state), path, identity


def _dir_entries(path: str, names: list[str], where: Source, state: _State):
    """handle_includedir: each file of the directory, as if included in turn."""
    for name in names:
        yield "include-file", os.path.join(path, name), where


def included_names(directory: str) -> tuple[list[str], list[str]]:
    """(read, skipped) file names of an includedir, in xinetd's order (includedir.c)."""
    names = sorted(os.listdir(directory), key=lambda n: n.encode("utf-8", "surrogateescape"))
    read, skipped = [], []
    for name in names:
        if "." in name or name.endswith("~"):
            skipped.append(name)
        else:
            read.append(name)
    return read, skipped


# -- building services (confparse.c service_fill and check_entry) ------------------------------

def _error(raw: _Raw, attr: str, message: str) -> ConfigError:
    """A check on the whole entry failed: located at the attribute, or at the header."""
    value = raw.attrs.get(attr)
    if value is None or value.owner is None:
        return ConfigError(f"service {raw.name}: {message}", raw.source.file, raw.source.line,
                           raw.column)
    return ConfigError(f"{attr}: {message}", value.source.file, value.source.line,
                       value.column)


def _fill_defaults(raw: _Raw, defaults: _Raw) -> None:
    for name in DEFAULTS_AFTER:
        value = defaults.attrs.get(name)
        if value is not None and name not in raw.attrs:
            raw.attrs[name] = value


class _Kind(NamedTuple):
    """What `type` and `flags` say about how the service runs."""

    types: list[str]
    flags: list[str]
    internal: bool  # the INTERNAL type (SENSOR joins it only after service_fill)
    rpc: bool
    unlisted: bool
    tcpmux: bool


class _Program(NamedTuple):
    """What runs for a connection: a program, an internal service or a redirect."""

    server: str | None
    argv: tuple[str, ...]
    internal: str | None
    redirect: Redirect | None
    nameinargs: bool


class _Limits(NamedTuple):
    instances: int | None
    per_source: int | None
    rate: RateLimit | None
    max_load: float | None
    umask: int | None
    nice: int | None
    supplementary_groups: tuple[str, ...] | None
    rlimits: tuple[tuple[str, int | None], ...]


def _kind(raw: _Raw) -> _Kind:
    types = raw.get("type", [])
    flags = raw.get("flags", [])
    return _Kind(types, flags, internal="INTERNAL" in types, rpc="RPC" in types,
                 unlisted="UNLISTED" in types,
                 tcpmux="TCPMUX" in types or "TCPMUXPLUS" in types)


def _socket(raw: _Raw) -> tuple[SocketType, str | None, bool]:
    """(socket type, protocol, wait): socket_type and protocol imply each other, for
    stream/tcp and dgram/udp only (service_fill)."""
    socket_type = raw.get("socket_type")
    protocol = raw.get("protocol")
    if socket_type is None and protocol is not None and fold(protocol) in ("tcp", "udp"):
        socket_type = SocketType.STREAM if fold(protocol) == "tcp" else SocketType.DGRAM
    if protocol is None:
        protocol = {SocketType.STREAM: "tcp", SocketType.DGRAM: "udp"}.get(socket_type)
    if socket_type is None:
        raise _error(raw, "socket_type", "missing attribute socket_type (needed unless "
                                         "protocol is tcp or udp)")
    wait = raw.get("wait")
    if wait is None:
        raise _error(raw, "wait", "missing attribute wait (yes or no)")
    return socket_type, protocol, wait


def _program(raw: _Raw, kind: _Kind, socket_type: SocketType, wait: bool, id_: str,
             findings: list[Finding]) -> _Program:
    """server, server_args and NAMEINARGS, or the internal service, or the redirect, with
    the checks fix_server_argv and check_entry make."""
    server = raw.get("server")
    args = raw.get("server_args")
    nameinargs = "NAMEINARGS" in kind.flags
    redirect = raw.get("redirect")
    if redirect is not None:
        if socket_type is not SocketType.STREAM:
            raise _error(raw, "redirect", "only stream (tcp) services can be redirected")
        if wait:
            raise _error(raw, "redirect", "a redirected service must not wait")
        if nameinargs:
            raise _error(raw, "flags", "a redirected service cannot have NAMEINARGS")
        if server is not None:
            findings.append(Finding(raw.attrs["server"].source, Severity.INFO,
                                    "server is ignored: redirect takes over, as in xinetd", id_,
                                    code=Code.NO_EFFECT))
    elif "TRAFFIC" in raw.get("log_on_success", {}):
        raise _error(raw, "log_on_success", "TRAFFIC is only for redirected services")
    if not kind.internal and redirect is None:
        if server is None:  # even for SENSOR, which becomes internal only afterwards
            raise _error(raw, "server", "missing attribute server (the program to run)")
        if nameinargs and args is None:
            raise _error(raw, "flags", "NAMEINARGS needs server_args (their first word is "
                                       "argv[0])")
    internal = "sensor" if "SENSOR" in kind.flags else fold(raw.name) if kind.internal else None
    if "LABELED" in kind.flags:
        # check_entry: labeled networking only for a program that accepts stream clients
        for refused, what in ((internal is not None, "internal services"),
                              (socket_type is not SocketType.STREAM, "non-stream sockets"),
                              (wait, "wait = yes services"), (redirect is not None,
                                                               "redirected services")):
            if refused:
                raise _error(raw, "flags", f"LABELED cannot be used for {what}")
    if internal is not None:
        if socket_type.value not in BUILTINS.get(internal, ()):
            raise _error(raw, "type", f"no internal service {raw.name}/{socket_type.value}: "
                                      f"xinetd has {', '.join(sorted(BUILTINS))}")
        if nameinargs:
            raise _error(raw, "flags", "an INTERNAL service cannot have NAMEINARGS")
        if server is not None and redirect is None:
            findings.append(Finding(raw.attrs["server"].source, Severity.INFO,
                                    "server is ignored for an INTERNAL service, as xinetd "
                                    "does", id_, code=Code.NO_EFFECT))
        return _Program(None, (), internal, redirect, nameinargs)
    if redirect is not None:
        return _Program(None, (), None, redirect, nameinargs)
    argv = tuple(args) if nameinargs else (os.path.basename(server), *(args or ()))
    return _Program(server, argv, None, None, nameinargs)


# A tree binds the same few addresses thousands of times; ipaddress parsing is slow.
_ip_address = functools.lru_cache(maxsize=256)(_numeric_address)


def _bind(raw: _Raw, ipv6_flag: bool, findings: list[Finding], id_: str
          ) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = raw.get("bind")
    if value is None:
        return None
    if ":" in value or not value.strip("0123456789."):
        return _ip_address(value)
    # xinetd resolves a name once, at start-up; the units freeze today's answer
    family = socket.AF_INET6 if ipv6_flag else socket.AF_INET
    try:
        found = socket.getaddrinfo(value, None, family, socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        raise _error(raw, "bind", f"cannot resolve {value!r} to an address to bind") from None
    address = ipaddress.ip_address(found[0][4][0].split("%")[0])
    findings.append(Finding(raw.attrs["bind"].located, Severity.WARNING,
                            f"bind {value} resolved now to {address}: re-run the conversion "
                            "if it changes", id_, code=Code.RESOLVED_NOW))
    return address


def _listens(raw: _Raw, kind: _Kind, protocol: str | None, state: _State, id_: str,
             findings: list[Finding]) -> tuple[str, tuple[Listen, ...]]:
    """(protocol, listens): the port from the attribute or the services table, the
    family from flags, bind and v6only. RPC and TCPMUX services listen nowhere systemd
    can (reported), and RPC's protocol becomes rpc/PROTO."""
    port = raw.get("port")
    if protocol is None:
        raise _error(raw, "protocol", "missing attribute protocol (needed with socket_type "
                                      f"{raw.get('socket_type').value})")
    lookup = "(give --services the host's file, or add UNLISTED to type and a port)"
    if kind.rpc:
        if "rpc_version" not in raw.attrs:
            raise _error(raw, "rpc_version", "missing attribute rpc_version")
        if kind.unlisted and "rpc_number" not in raw.attrs:
            raise _error(raw, "rpc_number", "missing attribute rpc_number")
        findings.append(Finding(raw.attrs["type"].located, Severity.ERROR,
                                f"RPC service (rpc_version {' '.join(raw.attrs['rpc_version'].values)}): "
                                "systemd cannot register it with the portmapper; keep the "
                                "native daemon", id_, code=Code.RPC))
        return f"rpc/{fold(protocol)}", ()
    if kind.tcpmux:
        if not kind.unlisted:
            raise _error(raw, "type", "a TCPMUX service needs UNLISTED in type")
        if fold(protocol) != "tcp":
            raise _error(raw, "protocol", "a TCPMUX service needs protocol tcp")
        findings.append(Finding(raw.attrs["type"].located, Severity.ERROR,
                                "TCPMUX service: systemd has no RFC 1078 dispatcher on port 1, "
                                "so it cannot be reached; give it a port of its own "
                                "(UNLISTED + port) instead", id_, code=Code.TCPMUX))
        return fold(protocol), ()
    if kind.unlisted:
        if port is None:
            raise _error(raw, "port", "an UNLISTED service needs a port")
    else:
        # getservbyname(name, protocol): the protocol as written, case and all
        listed = state.services.port(raw.name, protocol) if not raw.name.isdigit() else None
        if listed is None:
            raise _error(raw, "port", f"{raw.name}/{protocol} is not in "
                                      f"{state.services.source} {lookup}")
        if port is not None and port != listed:
            raise _error(raw, "port", f"service {raw.name} is port {listed} in "
                                      f"{state.services.source}, not {port} (add UNLISTED "
                                      "to type for a private port)")
        port = listed
    if port == 0:
        raise _error(raw, "port", "port 0: xinetd listens on a port the kernel picks, which "
                                  "systemd cannot do")
    ipv4_flag, ipv6_flag = "IPv4" in kind.flags, "IPv6" in kind.flags
    v6only = bool(raw.get("v6only"))
    bind = _bind(raw, ipv6_flag, findings, id_)
    if bind is None and raw.get("bind") is not None:
        raise _error(raw, "bind", f"bad address {raw.get('bind')!r}")
    if ipv4_flag and not ipv6_flag:
        family = Family.IPV4
    elif bind is not None and not ipv6_flag:
        family = Family.IPV4 if bind.version == 4 else (Family.IPV6 if v6only else Family.DUAL)
    else:
        family = Family.IPV6 if v6only else Family.DUAL
    if bind is not None and (bind.version == 4) != (family is Family.IPV4):
        flag = "IPv6" if bind.version == 4 else "IPv4"
        raise _error(raw, "bind", f"IPv{bind.version} address {bind} with the {flag} flag: "
                                  "xinetd cannot bind it, so the service never runs")
    host = None if bind is None or bind.is_unspecified else str(bind)
    return fold(protocol), (Listen(family, port, host),)


def _numeric_user_group(user: str | None) -> str | None:
    """parsers.c user_parser: a user written in digits is taken as the uid without a
    passwd lookup, and its group is that same number (unless `group` names one)."""
    return user if user is not None and user.isascii() and user.isdigit() else None


def _limits(raw: _Raw) -> _Limits:
    """instances, per_source, cps, max_load, umask, nice, groups and the rlimits."""
    cps = raw.get("cps")
    rate = DEFAULT_RATE if cps is None else RateLimit(cps[0], 1, cps[1]) if cps[0] else None
    return _Limits(
        instances=raw.get("instances"), per_source=raw.get("per_source"), rate=rate,
        max_load=raw.get("max_load"), umask=raw.get("umask"), nice=raw.get("nice"),
        supplementary_groups=None if raw.get("groups") else (),
        rlimits=tuple((RLIMITS[a], raw.get(a)) for a in RLIMITS if a in raw.attrs))


def _unmapped(raw: _Raw, kind: _Kind, program: _Program, wait: bool, id_: str,
              findings: list[Finding], state: _State) -> tuple[tuple[str, str, Source], ...]:
    """The attributes and flags systemd has no place for, for the writer to report;
    flags that mean nothing under systemd are noted here. Those the service has from the
    defaults entry, as it is there, are counted in state.from_defaults instead: one
    finding at their own line says it for every service (_defaults_findings)."""
    def entry(attr: str, value: str) -> tuple[str, str, Source]:
        return (attr, value, raw.attrs[attr].source if attr in raw.attrs else raw.source)

    unmapped = []
    for attr in ("log_type", "log_on_success", "log_on_failure", "deny_time", "rpc_version",
                 "rpc_number"):
        value = raw.attrs.get(attr)
        if value is None:
            continue
        if attr.startswith("log_on"):
            text = " ".join(value.parsed)
        else:
            text = " ".join(value.values)
        if not text:
            continue
        if value.owner is state.defaults:
            key = (attr, text, value.source)
            state.from_defaults[key] = state.from_defaults.get(key, 0) + 1
        else:
            unmapped.append(entry(attr, text))
    for flag in UNMAPPED_FLAGS:
        if flag not in kind.flags:
            continue
        if flag == "INTERCEPT" and (program.internal is not None or not wait):
            # check_entry: internal and multi-threaded services cannot be intercepted
            findings.append(Finding(raw.attrs["flags"].source, Severity.INFO, "flag INTERCEPT "
                                    "is cleared by xinetd for internal and wait = no services",
                                    id_, code=Code.NO_EFFECT))
            continue
        unmapped.append(entry("flags", flag))
    for flag in ("REUSE", "NORETRY"):
        if flag in kind.flags:
            findings.append(Finding(raw.attrs["flags"].source, Severity.INFO,
                                    f"flag {flag} has no meaning under systemd (nothing to do)",
                                    id_, code=Code.NO_EFFECT))
    if "SPECIAL" in kind.types:
        findings.append(Finding(raw.attrs["type"].source, Severity.INFO, "type SPECIAL only "
                                "changes how xinetd logs its own services (nothing to do)", id_,
                                code=Code.NO_EFFECT))
    return tuple(unmapped)


def _libwrap_name(raw: _Raw, kind: _Kind, socket_type: SocketType, program: _Program
                  ) -> str | None:
    """The daemon name hosts.allow/hosts.deny were consulted under, or None when they were
    not: Debian's xinetd links libwrap and checks every service but NOLIBWRAP ones and
    RPC over TCP (access.c)."""
    if "NOLIBWRAP" in kind.flags or (kind.rpc and socket_type is SocketType.STREAM):
        return None
    name = raw.get("libwrap")
    if name is not None:
        return name
    if program.internal is not None or program.redirect is not None:
        return raw.name
    if program.nameinargs:
        return os.path.basename(program.argv[0])
    return os.path.basename(program.server or "")


def build_service(raw: _Raw, state: _State) -> tuple[Service, list[Finding]]:
    """One entry (defaults filled in) -> its Service and the findings about it; a check
    xinetd would disable it for raises ConfigError."""
    findings: list[Finding] = []
    id_ = raw.id()
    kind = _kind(raw)
    socket_type, protocol, wait = _socket(raw)
    program = _program(raw, kind, socket_type, wait, id_, findings)
    protocol, listens = _listens(raw, kind, protocol, state, id_, findings)
    user = raw.get("user")
    if user is None and not kind.internal and "SENSOR" not in kind.flags:
        raise _error(raw, "user", "missing attribute user")
    limits = _limits(raw)
    env = tuple(tuple(v.split("=", 1)) for v in raw.get("env", ()))
    passenv = raw.get("passenv")
    unmapped = _unmapped(raw, kind, program, wait, id_, findings, state)
    if socket_type is SocketType.DGRAM and not wait:
        # The packaged xinetd runs it (checked with /usr/sbin/xinetd), one server per
        # datagram; kept as written, the writer decides how systemd runs it.
        findings.append(Finding(raw.source, Severity.INFO, "dgram service with wait = no: "
                                "the packaged xinetd starts a server per datagram", id_,
                                code=Code.DGRAM_NOWAIT))
    libwrap_name = _libwrap_name(raw, kind, socket_type, program)
    only_from = raw.get("only_from")
    service = Service(
        dialect="xinetd", name=raw.name, id=id_, source=raw.source, socket_type=socket_type,
        protocol=protocol, listens=listens, wait=wait, nodelay="NODELAY" in kind.flags,
        keepalive="KEEPALIVE" in kind.flags, server=program.server, argv=program.argv,
        internal=program.internal, redirect=program.redirect, user=user,
        group=raw.get("group") or _numeric_user_group(user),
        supplementary_groups=limits.supplementary_groups, env=env,
        passenv=None if passenv is None else tuple(passenv.values()), nice=limits.nice,
        umask=limits.umask, rlimits=limits.rlimits, instances=limits.instances,
        per_source=limits.per_source, rate=limits.rate,
        only_from=None if only_from is None else tuple(only_from),
        no_access=tuple(raw.get("no_access", ())),
        access_times=tuple(raw.get("access_times", ())),
        max_load=limits.max_load, tcp_wrapped=libwrap_name is not None,
        libwrap_name=libwrap_name, banner=raw.get("banner"),
        banner_success=raw.get("banner_success"), banner_fail=raw.get("banner_fail"),
        disabled=False, unmapped=unmapped)
    return service, findings


# -- the whole configuration (confparse.c cnf_get) --------------------------------------------

def _failure_findings(raw: _Raw) -> list[Finding]:
    """The entry's parser refusals: an ERROR each while they keep it disabled, a WARNING
    once something switched it back on (it then runs without those attributes)."""
    id_ = raw.id()
    findings = []
    for error, undone_by in raw.failures:
        if undone_by is None:
            findings.append(bad_entry(error, DISABLES, id_, code=Code.DISABLED_BY_DAEMON))
        else:
            findings.append(bad_entry(error, f"{DISABLES}, but {undone_by} switches it back "
                                             "on: it runs without this attribute, and so does "
                                             "the unit", id_, severity=Severity.WARNING,
                                      code=Code.LINE_IGNORED))
    return findings


def _finish(state: _State) -> Configuration:
    """remove_disabled_services, then service_fill and check_entry, in xinetd's order."""
    enabled = state.defaults.get("enabled")
    enabled_ids = None if enabled is None else {fold(i) for i in enabled}
    disabled_ids = {fold(i) for i in state.defaults.get("disabled", ())}
    services: list[tuple[Service, bool, int]] = []
    findings = state.findings
    for raw in state.raws:
        id_ = raw.id()
        findings.extend(replace(f, service=f.service or id_) for f in raw.findings)
        reason = None
        if raw.switched_off and not raw.failed():
            reason = raw.switched_off
        elif enabled_ids is not None:
            if fold(id_) in enabled_ids:
                raw.undo_failures("the defaults' enabled list")
            elif not raw.failed():
                reason = "its id is not in the defaults' enabled list"
        if reason is None and not raw.failed() and fold(id_) in disabled_ids:
            reason = "its id is in the defaults' disabled list"
        findings.extend(_failure_findings(raw))
        if raw.failed():
            continue
        if reason and not state.include_disabled:
            findings.append(Finding(raw.source, Severity.INFO,
                                    f"service {raw.name} ({id_}) is disabled ({reason}): left "
                                    "out; --include-disabled converts it", id_, code=Code.DISABLED))
            continue
        _fill_defaults(raw, state.defaults)
        try:
            service, notes = build_service(raw, state)
        except ConfigError as error:
            findings.append(bad_entry(error, DISABLES if not reason else
                                      "xinetd would disable this service if it were enabled",
                                      id_, code=Code.DISABLED_BY_DAEMON))
            continue
        findings.extend(notes)
        services.append((service if not reason else replace(service, disabled=True),
                         "bind" in raw.attrs, raw.column))
    findings.extend(_defaults_findings(state))
    return Configuration(*_resolve_duplicates(services, findings))


def _defaults_findings(state: _State) -> list[Finding]:
    """One WARNING per attribute of the defaults entry that systemd has no place for, at
    its line, however many services take it."""
    return [Finding(where, Severity.WARNING, f"{attr} = {text} (defaults, taken by {count} "
                    f"service{'s' * (count != 1)}): not carried over (no systemd equivalent)",
                    code=unmapped_code(attr))
            for (attr, text, where), count in state.from_defaults.items()]


def _clash(earlier: tuple[Service, bool], later: tuple[Service, bool]) -> bool:
    """Whether the later of two services on one port and protocol does not run.

    check_entry disables it when the earlier one has a `bind` and the later either has
    none or the same address; otherwise both pass, and the later one fails to bind if
    its socket overlaps the earlier's (a wildcard covers the addresses of its family,
    a dual-stack one both)."""
    (a, a_bound), (b, b_bound) = earlier, later
    x, y = a.listens[0], b.listens[0]
    if a_bound and (not b_bound or ((x.family is Family.IPV4) == (y.family is Family.IPV4)
                                    and x.host == y.host)):
        return True
    return same_address(a, b)


def _resolve_duplicates(services: list[tuple[Service, bool, int]], findings: list[Finding]
                        ) -> tuple[tuple[Service, ...], tuple[Finding, ...]]:
    """Services that cannot all run, in xinetd's order: `services` holds each with
    whether it had a `bind`, and the column of its name."""
    kept: list[Service] = []
    ids: set[str] = set()
    suffixes: dict[str, int] = {}
    running: dict[tuple, list[tuple[Service, bool]]] = {}  # (port, protocol) -> enabled
    parked: dict[tuple, Service] = {}  # (socket, id) -> a disabled one
    for service, bound, column in services:
        key = (service.listens[0].port, service.protocol) if service.listens else None
        clash = next((other for other, other_bound in running.get(key, ())
                      if _clash((other, other_bound), (service, bound))), None) \
            if key is not None and not service.disabled else None
        twin = parked.get((service.listens, service.protocol, service.id)) \
            if key is not None and service.disabled else None
        if twin is not None:
            # Debian ships echo-dgram twice (echo and echo-udp), both off: one unit is enough
            findings.append(Finding(service.source, Severity.INFO,
                                    f"disabled duplicate of {twin.id} ({twin.source}), same "
                                    "socket: left out", service.id, code=Code.DUPLICATE))
            continue
        if clash is not None:
            same = "the same id" if clash.id == service.id else f"the same port as {clash.id}"
            findings.append(Finding(replace(service.source, column=column), Severity.ERROR,
                                    f"{same} ({clash.source}) on {service.listens[0]}/"
                                    f"{service.protocol}: xinetd disables (or cannot bind) "
                                    "this later entry: left out", service.id, code=Code.DUPLICATE))
            continue
        original_id = service.id
        if service.id in ids:
            new = free_id(service.id, ids, suffixes)
            findings.append(Finding(service.source, Severity.INFO,
                                    f"id {service.id} is used by an earlier entry (xinetd "
                                    "allows that while they differ in socket or one is "
                                    f"disabled): renamed {new}", new, code=Code.ID_RENAMED))
            service = replace(service, id=new)
        ids.add(service.id)
        kept.append(service)
        if key is not None:
            if service.disabled:
                parked.setdefault((service.listens, service.protocol, original_id), service)
            else:
                running.setdefault(key, []).append((service, bound))
    return tuple(kept), tuple(findings)


# -- entry points --------------------------------------------------------------------------

def _state(services: ServicesTable | None, include_disabled: bool, root: str | None) -> _State:
    return _State(services if services is not None else load_services(), include_disabled,
                  root)


def _read_top(file: str, text: str, identity: object, state: _State) -> None:
    seen = len(state.findings)
    _read_tree(file, text, identity, state)
    if state.entries == 0:
        first = next((f for f in state.findings[seen:] if f.severity is not Severity.INFO),
                     None)
        if first is not None:
            raise ConfigError("not an xinetd configuration: no 'service NAME' entry, "
                              f"'defaults', 'include' or 'includedir' ({first.message})",
                              first.source.file, first.source.line, first.source.column,
                              code=Code.NOT_A_CONFIGURATION)


@gc_paused
def parse_xinetd(text: str, file: str = "<xinetd.conf>", *,
                 services: ServicesTable | None = None, include_disabled: bool = False,
                 root: str | None = None) -> Configuration:
    """xinetd.conf text -> Configuration; includes are read relative to `file`'s directory.

    `root`: read absolute include paths under this directory (a migrated host's tree
    mounted elsewhere).
    """
    state = _state(services, include_disabled, root)
    try:
        status = os.stat(file)
        identity: object = (status.st_dev, status.st_ino)
    except (OSError, ValueError):
        identity = ("text", file)  # text that is not (yet) a file: nothing can include it
    _read_top(file, text, identity, state)
    return _finish(state)


def read_xinetd(path: str | Path, *, services: ServicesTable | None = None,
                include_disabled: bool = False, root: str | None = None) -> Configuration:
    """An xinetd.conf file, following include and includedir."""
    path = str(path)
    try:
        text, _ = open_regular(path)
    except (OSError, ValueError) as exc:
        raise unreadable(exc, path) from None
    return parse_xinetd(text, path, services=services, include_disabled=include_disabled,
                        root=root)


@gc_paused
def read_xinetd_dir(path: str | Path, *, services: ServicesTable | None = None,
                    include_disabled: bool = False, root: str | None = None) -> Configuration:
    """A directory of service files (an xinetd.d), read as `includedir` reads it."""
    path = str(path)
    if not os.path.isdir(path):
        raise ConfigError("not a directory", path, code=Code.UNREADABLE)
    try:  # the directory asked for, unlike one an includedir names, must be readable
        names, _ = included_names(path)
    except OSError as exc:
        raise unreadable(exc, path) from None
    state = _state(services, include_disabled, root)
    opened = _open_included_dir(path, Source(path, 0), state)
    if opened is not None:
        _drive([opened], state)
    configuration = _finish(state)
    if not configuration.services and names and not any(
            _is_xinetd_file(os.path.join(path, name)) for name in names):
        raise ConfigError("not an xinetd.d directory: nothing in it is an xinetd "
                          "configuration (give an inetd.conf as a file, or --format inetd "
                          "for an inetd.d directory)", path, code=Code.NOT_A_CONFIGURATION)
    return configuration


def _is_xinetd_file(path: str) -> bool:
    try:
        text, _ = open_regular(path)
    except (OSError, ValueError):
        return False
    return looks_like_xinetd(text)
