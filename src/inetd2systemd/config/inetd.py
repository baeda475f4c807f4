"""inetd.conf in each inetd's dialect, read into `Service` values.

In the manner of tomli: pure functions over the text, each taking a position and
returning values; every problem is a `ConfigError` carrying file, line and column. One bad
entry costs only itself, as it does in the daemons: `parse_inetd` turns the error into an
ERROR finding that says what the daemon does about it ("openbsd-inetd skips this line"),
leaves that service out and reads on. Only a file that cannot be read at all raises.

The only things read from outside the text are the port table (passed in, or
/etc/services when none is given), for a symbolic host name in a `host:` prefix the
resolver (reported, since the result is frozen into the units), and for busybox a bare
program name, looked up in PATH as busybox's execvp() does.

The dialects (`--flavor`) disagree on a few tokens. Each row says what the daemon does,
taken from its source or, for the two installed here, from the daemon itself (`-d`):

==============  ============  ===========  ==========  =========  =========  ==========
aspect          openbsd       inetutils    freebsd     netbsd     busybox    xinetd-
                (Debian)                                                     compat
==============  ============  ===========  ==========  =========  =========  ==========
continuation    leading blank none         leading     leading    none       none
                                           blank       blank
quoting         none          "..." '...'  none        shell-like none       none
comments        # in col. 1   # in col. 1  # in col. 1 # in col. 1 # anywhere # in col. 1
host: prefix    yes           yes          no (-a)     yes        yes        no
tcp / udp       IPv4 + IPv6   IPv4         IPv4        IPv4       IPv4       IPv4 + IPv6
tcp6            IPv6 only     IPv6 only    IPv6 only   IPv6 only  IPv6 and   IPv6 only
                                                                  mapped v4
tcp46           mapped v4     unknown      mapped v4   IPv6 only  unknown    unknown
wait limits     .N per min    .N per min   /child/     :N or .N   .N per     none
                                           cpm/perip   per min    min
no limit given  256/min, 10   1000/min,    256/min,    40/min,    none       cps 50 10
                min off       10 min off   10 min off  10 min off
user.group      '.' then ':'  ':' then '.' ':' (/class) ':' then  '.' then   '.'
                                                       '.'        ':'
program         absolute      absolute     absolute    absolute   PATH       absolute
tcpmux/NAME     no TCPMUX     TCPMUX       TCPMUX      TCPMUX     no         no
==============  ============  ===========  ==========  =========  =========  ==========

What a dialect keeps but systemd cannot express (rpc, raw, rdm, TCPMUX) stays in the
model with an ERROR finding, so a superserver may still use it and the report says why.
"""

from __future__ import annotations

import ipaddress
import os.path
import re
from collections import namedtuple
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import bad_entry, open_regular, unreadable
from ..bulk import gc_paused
from ..errors import ConfigError
from ..model import (INTERNAL_NAMES, Code, Configuration, Family, Finding, Listen, RateLimit, Service,
                     Severity, SocketType, Source, base_protocol, free_id)
from .services import ServicesTable, load_services

DISABLED_PREFIX = "#<off>#"  # Debian update-inetd's marker ($SEP in DebianNet.pm)
TCPD_DAEMON_DIR = "/usr/sbin"  # tcpd's REAL_DAEMON_DIR on Debian
TCPMUX_PREFIX = "tcpmux/"
# busybox inetd runs a bare program name with execvp(), so through the PATH it was started
# with; init and the rc scripts of the systems that ship it give it this one.
BUSYBOX_PATH = ("/sbin", "/usr/sbin", "/bin", "/usr/bin")
_FIELDS = "service socket-type protocol wait[.max] user[.group] server-program [arguments]"
_DIGITS = re.compile(r"[0-9]{1,9}")  # ASCII digits only, and a bounded count of them


class NoAddress(ConfigError):
    """A line the daemon reads but cannot listen for: no port for its service name, a
    host that does not resolve. It serves nothing, so nothing is converted."""


@dataclass(frozen=True)
class Dialect:
    """How one inetd reads its file: everything `--flavor` changes."""

    name: str
    daemon: str  # as the messages name it: "openbsd-inetd skips this line"
    protocols: Mapping[str, Family]  # tcp tokens; the udp ones follow (udp6 as tcp6)
    default_rate: RateLimit | None  # when the wait field sets none; None: unlimited
    rate_pause: float = 600  # seconds off after a `.N` limit is hit
    wait_separators: str = "."  # what may join a rate to wait/nowait, in search order
    user_separators: str = ".:"  # user.group / user:group, in search order
    continuation: bool = False  # a line starting with a blank continues the entry
    quoting: str = ""  # "" none; "argcv" whole-word quotes; "shell" quotes inside words
    hash_anywhere: bool = False  # '#' starts a comment anywhere, not only in column 1
    hosts: bool = True  # `host:service` and `host:` lines
    unix: bool = True
    buffers: bool = False  # `,sndbuf=N` and `,rcvbuf=N` after the protocol
    internals: tuple[str, ...] = INTERNAL_NAMES
    tcpmux: bool = False  # serves `tcpmux/NAME` lines through its internal tcpmux
    freebsd_limits: bool = False  # wait/max-child/max-connections-per-ip-per-minute/per-ip
    login_class: bool = False  # user[:group][/login-class]
    path_lookup: bool = False  # a bare program name is looked up in PATH
    max_argv: int | None = None  # arguments past this many are dropped by the daemon


def _families(tcp: Family, tcp6: Family = Family.IPV6, **more: Family) -> dict[str, Family]:
    return {"tcp": tcp, "tcp4": Family.IPV4, "tcp6": tcp6, **more}


DIALECTS: dict[str, Dialect] = {d.name: d for d in (
    # Debian's openbsd-inetd: `tcp` opens an IPv4 and an IPv6 socket (seen with -d).
    Dialect("openbsd", "openbsd-inetd", _families(Family.DUAL, tcp46=Family.DUAL),
            RateLimit(256, 60, 600), continuation=True, buffers=True, max_argv=20),
    # GNU inetutils: the man page's 40/min is stale, inetd.c has TOOMANY 1000.
    Dialect("inetutils", "inetutils-inetd", _families(Family.IPV4, tcp6only=Family.IPV6),
            RateLimit(1000, 60, 600), user_separators=":.", quoting="argcv",
            internals=INTERNAL_NAMES + ("tcpmux",), tcpmux=True),
    # FreeBSD inetd(8) and its parser: `tcp` is IPv4 (for compatibility), tcp46 one
    # mapped socket; no host prefix (inetd -a binds one address for all); -R 256/min.
    Dialect("freebsd", "FreeBSD's inetd", _families(Family.IPV4, tcp46=Family.DUAL),
            RateLimit(256, 60, 600), wait_separators="/", user_separators=":",
            continuation=True, hosts=False, buffers=True,
            internals=INTERNAL_NAMES + ("tcpmux", "auth"), tcpmux=True, freebsd_limits=True,
            login_class=True, max_argv=64),
    # NetBSD inetd(8), parse.c: the last character of the protocol picks the family
    # ('6' IPv6, anything else IPv4, so tcp46 is IPv6); max after ':' or '.', TOOMANY 40.
    Dialect("netbsd", "NetBSD's inetd", _families(Family.IPV4, tcp46=Family.IPV6),
            RateLimit(40, 60, 600), wait_separators=":.", user_separators=":.",
            continuation=True, quoting="shell", buffers=True,
            internals=INTERNAL_NAMES + ("tcpmux",), tcpmux=True, max_argv=64),
    # busybox networking/inetd.c: config_read() with '#' comments anywhere, one line per
    # entry; tcp/udp or a trailing 6 only (tcp4, tcp46 are parse errors); it sets no
    # IPV6_V6ONLY, so on Linux's default (bindv6only=0) tcp6 takes IPv4 as well. -R
    # defaults to no limit; a `.N` limit pauses the service for RETRYTIME, 60 s.
    Dialect("busybox", "busybox inetd", {"tcp": Family.IPV4, "tcp6": Family.DUAL},
            None, rate_pause=60, hash_anywhere=True, path_lookup=True),
    # xinetd's own inetd.conf reader (xconv.pl / itox): no host prefix, no `.max`.
    Dialect("xinetd-compat", "xinetd", _families(Family.DUAL), RateLimit(50, 1, 10),
            wait_separators="", user_separators=".", hosts=False, unix=False),
)}
FLAVORS = tuple(DIALECTS)
DEFAULT_RATE = {name: d.default_rate for name, d in DIALECTS.items()}
_SOCKET_TYPES = {t.value: t for t in SocketType}


class Word(namedtuple("Word", "text line column")):
    """One field of an entry and where it starts (1-based line and column): `text`,
    `line`, `column`.

    A named tuple, not a frozen dataclass: a large file has tens of thousands of words
    and a tuple is several times cheaper to make (collections', not typing's: typing
    costs the generator's every run more than reading a small file)."""

    __slots__ = ()


@dataclass(frozen=True)
class Entry:
    """One logical entry: its words (continuations joined) and how it was marked."""

    words: tuple[Word, ...]
    disabled: bool = False
    notes: tuple[tuple[str, str], ...] = ()  # (attribute, value) the dialect set for it


def dialect_of(flavor: str) -> Dialect:
    try:
        return DIALECTS[flavor]
    except KeyError:
        raise ConfigError(f"unknown inetd flavour {flavor!r}: expected one of "
                          f"{', '.join(FLAVORS)}") from None


# -- lexing ---------------------------------------------------------------------------

_WORD = re.compile(r"[^ \t\r\n\f\v]+")
_BLANKS = " \t\r\n\f\v"


def split_words(text: str, line: int, column: int, file: str, *, quoting: str | bool) -> list[Word]:
    """Split one physical line into words; `column` is that of text[0].

    quoting "argcv" (inetutils): a word may be wrapped in "..." or '...'; inside double
    quotes a backslash escapes the next character, single quotes are literal. quoting
    "shell" (NetBSD's skip()): quotes may open and close anywhere inside a word, and are
    removed; the other kind of quote inside is literal. `True` means "argcv".
    """
    quoting = "argcv" if quoting is True else quoting or ""
    if not quoting or ('"' not in text and "'" not in text):
        return [Word(m.group(), line, column + m.start()) for m in _WORD.finditer(text)]
    return (_argcv_words if quoting == "argcv" else _shell_words)(text, line, column, file)


def _argcv_words(text: str, line: int, column: int, file: str) -> list[Word]:
    words: list[Word] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in _BLANKS:
            i += 1
            continue
        start = i
        if text[i] in "\"'":
            quote, i, chars = text[i], i + 1, []
            while i < n and text[i] != quote:
                if quote == '"' and text[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(text[i])
                i += 1
            if i >= n:
                raise ConfigError(f"unterminated {quote} quote", file, line, column + start)
            i += 1
            words.append(Word("".join(chars), line, column + start))
            continue
        while i < n and text[i] not in _BLANKS:
            i += 1
        words.append(Word(text[start:i], line, column + start))
    return words


def _shell_words(text: str, line: int, column: int, file: str) -> list[Word]:
    words: list[Word] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        start, quote, chars = i, "", []
        while i < n and (quote or text[i] not in " \t"):
            c = text[i]
            if c in "\"'" and (not quote or c == quote):
                quote = "" if quote else c
            else:
                chars.append(c)
            i += 1
        if quote:
            raise ConfigError(f"unterminated {quote} quote", file, line, column + start)
        words.append(Word("".join(chars), line, column + start))
    return words


def entries(text: str, file: str, flavor: str = "openbsd") -> list[Entry]:
    """The logical entries of a file: comments dropped, continuation lines joined.

    `#` starts a comment only in column 1 (elsewhere it is data, as inetd reads it),
    except in busybox, whose config_read() cuts a line at any '#'. Debian's `#<off>#`
    lines are entries marked disabled. Where the dialect continues lines, a line starting
    with a blank continues the entry above it (inetd.c skip()). A line that cannot be
    split (an unterminated quote) becomes an entry of no words carrying its error.
    """
    return list(_entries(text, file, dialect_of(flavor)))


def _entries(text: str, file: str, dialect: Dialect):
    pending: list[Word] | None = None  # the open entry's words, joined in place (linear)
    pending_disabled = False
    pending_notes: tuple[tuple[str, str], ...] = ()
    notes: tuple[tuple[str, str], ...] = ()
    for lineno, raw in enumerate(text.splitlines(), 1):
        disabled = raw.startswith(DISABLED_PREFIX)
        if dialect.name == "netbsd" and raw.startswith("#@"):
            # NetBSD: `#@ policy` sets the IPsec policy of the entries below it.
            policy = raw[2:].strip()
            notes = (("IPsec policy", policy),) if policy else ()
        if disabled:
            body, offset = raw[len(DISABLED_PREFIX):], len(DISABLED_PREFIX) + 1
        elif raw.startswith("#") or not raw.strip():
            # A comment or a blank line ends the entry: inetd's skip() only continues
            # when the very next line starts with a blank (seen with openbsd-inetd -d).
            if pending is not None:
                yield Entry(tuple(pending), pending_disabled, pending_notes)
                pending = None
            continue
        else:
            body, offset = raw, 1
        if dialect.hash_anywhere and "#" in body:
            body = body[:body.index("#")]
        try:
            words = split_words(body, lineno, offset, file, quoting=dialect.quoting)
        except ConfigError as exc:
            if pending is not None:
                yield Entry(tuple(pending), pending_disabled, pending_notes)
                pending = None
            yield _Unreadable((), error=exc)
            continue
        continues = (dialect.continuation and not disabled and pending is not None
                     and raw[0] in " \t")
        if continues:
            pending.extend(words)
            continue
        if pending is not None:
            yield Entry(tuple(pending), pending_disabled, pending_notes)
            pending = None
        if not words:
            continue
        if disabled:  # update-inetd never wraps its lines
            yield Entry(tuple(words), disabled=True, notes=notes)
        else:
            pending, pending_disabled, pending_notes = words, False, notes
    if pending is not None:
        yield Entry(tuple(pending), pending_disabled, pending_notes)


@dataclass(frozen=True)
class _Unreadable(Entry):
    """A line that could not even be split into words, with the error that says why."""

    error: ConfigError = field(default_factory=lambda: ConfigError("unreadable line"))


# -- fields ---------------------------------------------------------------------------

def _number(text: str) -> int | None:
    """A count written in ASCII digits (not '²', not 5,000 digits), or None."""
    return int(text) if _DIGITS.fullmatch(text) else None


def parse_size(word: Word, value: str, file: str) -> int:
    """A buffer size: digits with an optional k or m (binary multiples, as inetd does)."""
    scale = 1
    if value[-1:].lower() in ("k", "m"):
        scale = 1024 if value[-1].lower() == "k" else 1024 * 1024
        value = value[:-1]
    number = _number(value)
    if not number:
        raise ConfigError(f"bad buffer size in {word.text!r}: expected a positive number "
                          "with an optional k or m", file, word.line, word.column)
    return number * scale


def parse_protocol(word: Word, flavor: str, file: str
                   ) -> tuple[str, Family | None, int | None, int | None]:
    """`proto[,sndbuf=N][,rcvbuf=N]` -> (protocol, family, rcvbuf, sndbuf).

    protocol is "tcp", "udp", "unix", "rpc/tcp" or "rpc/udp"; family None for unix/rpc.
    """
    dialect = dialect_of(flavor)
    token, *options = word.text.split(",")
    rcvbuf = sndbuf = None
    for option in options:
        key, eq, value = option.partition("=")
        if not dialect.buffers or not eq or key not in ("rcvbuf", "sndbuf"):
            raise ConfigError(f"unknown protocol option {option!r} in {word.text!r}: expected "
                              "',rcvbuf=SIZE' or ',sndbuf=SIZE' (openbsd, freebsd and netbsd "
                              "flavours)", file, word.line, word.column + len(token))
        size = parse_size(word, value, file)
        if key == "rcvbuf":
            rcvbuf = size
        else:
            sndbuf = size
    family = _family(token, dialect)
    if family is not None:
        return base_protocol(token), family, rcvbuf, sndbuf
    if token == "unix" and dialect.unix:
        return "unix", None, rcvbuf, sndbuf
    if token in ("rpc/tcp", "rpc/udp"):
        return token, None, rcvbuf, sndbuf
    expected = ", ".join(sorted(_tokens(dialect))) + (", unix" if dialect.unix else "")
    raise ConfigError(f"unknown protocol {token!r} for the {dialect.name} flavour: expected one "
                      f"of {expected}, rpc/tcp, rpc/udp", file, word.line, word.column)


def _tokens(dialect: Dialect) -> list[str]:
    return [p for tcp in dialect.protocols for p in (tcp, "udp" + tcp[3:])]


def _family(token: str, dialect: Dialect) -> Family | None:
    if token[:3] not in ("tcp", "udp"):
        return None
    return dialect.protocols.get("tcp" + token[3:])


def parse_wait(word: Word, flavor: str, file: str) -> tuple[bool, RateLimit | None]:
    """`wait`/`nowait` with an optional `.N` (starts per minute, then the dialect's pause).

    FreeBSD's slash-separated limits are read by `parse_freebsd_wait`."""
    dialect = dialect_of(flavor)
    mode, separator, limit = _split_wait(word.text, dialect)
    if mode not in ("wait", "nowait"):
        raise ConfigError(f"bad wait field {word.text!r}: expected wait, nowait, wait.N or "
                          "nowait.N", file, word.line, word.column)
    if not separator:
        return mode == "wait", dialect.default_rate
    if not dialect.wait_separators:
        raise ConfigError(f"bad wait field {word.text!r}: {dialect.daemon}'s inetd.conf reader "
                          "takes no '.max'", file, word.line, word.column + len(mode))
    count = _number(limit)
    if not count:
        raise ConfigError(f"bad max {limit!r} in {word.text!r}: expected a number of starts per "
                          "minute, at least 1", file, word.line, word.column + len(mode) + 1)
    return mode == "wait", RateLimit(count, 60, dialect.rate_pause)


def _split_wait(text: str, dialect: Dialect) -> tuple[str, str, str]:
    for separator in dialect.wait_separators or ".":
        if separator in text:
            return text.partition(separator)
    return text, "", ""


@dataclass(frozen=True)
class FreeBSDLimits:
    """`{wait|nowait}[/max-child[/max-connections-per-ip-per-minute[/max-child-per-ip]]]`."""

    wait: bool
    max_child: int | None = None  # 0 (or none) is unlimited
    per_ip_per_minute: int | None = None
    max_child_per_ip: int | None = None
    ignored: str = ""  # what FreeBSD's prefix match let through after the keyword


FREEBSD_MAX_CHILD = 32767  # MAX_MAXCHLD in FreeBSD's inetd


def parse_freebsd_wait(word: Word, file: str) -> FreeBSDLimits:
    """FreeBSD's wait field. Its parser matches the keyword as a prefix (so `nowait.400`
    is nowait, the rest ignored) and allows empty fields (`nowait//10`: defaults)."""
    head, _, rest = word.text.partition("/")
    if head.startswith("nowait"):
        wait, extra = False, head[6:]
    elif head.startswith("wait"):
        wait, extra = True, head[4:]
    else:
        raise ConfigError(f"bad wait field {word.text!r}: expected wait or nowait, optionally "
                          "followed by /max-child[/max-connections-per-ip-per-minute"
                          "[/max-child-per-ip]]", file, word.line, word.column)
    values: list[int | None] = []
    column = word.column + len(head) + 1
    for index, field_ in enumerate(rest.split("/")[:3] if rest else ()):
        if field_ == "":
            values.append(None)
        else:
            number = _number(field_)
            if number is None or (index == 0 and number > FREEBSD_MAX_CHILD):
                name = ("max-child", "max-connections-per-ip-per-minute", "max-child-per-ip")[index]
                raise ConfigError(f"bad {name} {field_!r} in {word.text!r}: expected a number"
                                  + (f" up to {FREEBSD_MAX_CHILD}" if index == 0 else ""),
                                  file, word.line, column)
            values.append(number)
        column += len(field_) + 1
    values += [None] * (3 - len(values))
    return FreeBSDLimits(wait, *values, ignored=extra)


def parse_user(word: Word, flavor: str, file: str) -> tuple[str, str | None]:
    """`user`, `user.group` or `user:group`; which separator wins depends on the flavour
    (FreeBSD: `user[:group][/login-class]`, the class read by `split_login_class`)."""
    dialect = dialect_of(flavor)
    text = split_login_class(word.text, dialect)[0]
    for sep in dialect.user_separators:
        if sep in text:
            user, _, group = text.partition(sep)
            break
    else:
        user, group = text, ""
    if not user:
        raise ConfigError(f"bad user field {word.text!r}: expected user[.group]", file,
                          word.line, word.column)
    return user, group or None


def split_login_class(text: str, dialect: Dialect) -> tuple[str, str | None]:
    if dialect.login_class and "/" in text:
        user, _, login_class = text.rpartition("/")
        return user, login_class
    return text, None


def split_host(word: Word, flavor: str) -> tuple[str | None, str]:
    """`host:service` -> (host, service); None when the field has no host part.

    Like inetd, the last ':' separates; `[...]` around the host is removed (IPv6
    literals, host lists); an empty host is `*`.
    """
    if not dialect_of(flavor).hosts or ":" not in word.text:
        return None, word.text
    host, _, service = word.text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "*", service


def resolve_hosts(host: str, family: Family, word: Word, file: str
                  ) -> tuple[list[Listen], list[str]]:
    """A comma-separated host list -> listen addresses (port filled in later) and notes.

    Numeric addresses are taken as written; a name is resolved now, since systemd only
    takes numeric addresses, and the note says it was frozen.
    """
    listens: list[Listen] = []
    notes: list[str] = []
    column = word.column + (1 if word.text.startswith("[") else 0)
    for name in host.split(","):
        where = Word(name, word.line, column)
        column += len(name) + 1
        if name in ("*", ""):
            listens.append(Listen(family))
            continue
        try:
            addresses = [ipaddress.ip_address(name.split("%", 1)[0])]
        except ValueError:
            addresses = _lookup(name, family, where, file)
            notes.append(f"host name {name!r} resolved now to "
                         f"{', '.join(map(str, addresses))}: the units keep these addresses")
        for address in addresses:
            version = Family.IPV4 if address.version == 4 else Family.IPV6
            if family is not Family.DUAL and family is not version:
                raise NoAddress(f"address {name!r} is IPv{address.version} but the protocol is "
                                  f"{family.value} only", file, word.line, where.column)
            listens.append(Listen(version, host=str(address)))
    return listens, notes


# A host name the resolver can be asked about: labels of 1-63 letters, digits, '-', '_'.
_HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?")


def _lookup(name: str, family: Family, word: Word, file: str) -> list:
    if len(name) > 253 or not _HOST_NAME.fullmatch(name):
        # Checked here rather than left to getaddrinfo(): Python's IDNA codec raises
        # UnicodeError for an empty or 64+ character label, and a NUL or invalid UTF-8
        # would reach the resolver as something else than what the file says.
        raise NoAddress(f"bad host name {name!r}: expected an IP address or a name of "
                          "dot-separated labels of 1 to 63 letters, digits and '-'", file,
                          word.line, word.column)
    import socket  # here: its import costs more than reading a small file, and most have no names

    af = {Family.IPV4: socket.AF_INET, Family.IPV6: socket.AF_INET6}.get(family, socket.AF_UNSPEC)
    try:
        infos = socket.getaddrinfo(name, None, af, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise NoAddress(f"cannot resolve host {name!r}: {reason}", file,
                          word.line, word.column) from None
    seen: list = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if address not in seen:
            seen.append(address)
    return seen


# -- entries --------------------------------------------------------------------------

@dataclass(frozen=True)
class _Parsed:
    fields: dict  # Service's fields but the id: the id needs the whole file
    token: str  # the protocol as written (without options), for ids
    findings: tuple[Finding, ...]
    dropped: bool = False  # read, but nothing to convert (its findings say why)


def parse_entry(entry: Entry, file: str, flavor: str, services: ServicesTable | None,
                default_host: str) -> _Parsed:
    """One entry -> the fields of its Service, all but the id (unique only per file).

    Raises ConfigError for an entry the daemon would not take (it skips that line)."""
    dialect = dialect_of(flavor)
    words = entry.words
    first = words[0]
    if dialect.name == "netbsd" and len(words) > 1 and words[1].text.split("#")[0] in ("on", "off"):
        raise ConfigError(f"NetBSD's key-value syntax ('{words[1].text}' and 'key=value' pairs) "
                          "is not read by this converter: write the entry in the positional "
                          "form", file, words[1].line, words[1].column)
    if len(words) < 6:
        missing = _FIELDS.split()[len(words)]
        raise ConfigError(f"too few fields ({len(words)}): missing {missing}; expected "
                          f"'{_FIELDS}'", file, first.line, words[-1].column + len(words[-1].text))
    where = Source(file, first.line)
    findings: list[Finding] = []
    unmapped: list[tuple[str, str, Source]] = [(k, v, where) for k, v in entry.notes]
    host, name = split_host(first, flavor)
    socket_word, proto_word, wait_word, user_word = words[1:5]

    socket_type = _socket_type(socket_word, dialect, unmapped, where, file)
    protocol, family, rcvbuf, sndbuf = parse_protocol(proto_word, flavor, file)
    if dialect.name == "busybox":
        _busybox_mixup(socket_type, protocol, socket_word, file)
    limits = {}
    if dialect.freebsd_limits:
        freebsd = parse_freebsd_wait(wait_word, file)
        wait, rate = freebsd.wait, dialect.default_rate
        limits = _freebsd_limits(freebsd, wait_word, unmapped, findings, where)
    else:
        wait, rate = parse_wait(wait_word, flavor, file)
    user, group = parse_user(user_word, flavor, file)
    login_class = split_login_class(user_word.text, dialect)[1]
    if login_class:
        unmapped.append(("login-class", login_class, where))
    if not name:
        raise ConfigError("empty service name", file, first.line, first.column)

    problems: list[tuple[Code, str]] = []
    if socket_type in (SocketType.RAW, SocketType.RDM):
        problems.append((Code.NOT_CONVERTIBLE,
                         f"socket type {socket_type.value} cannot be a systemd socket unit"))
    listens: tuple[Listen, ...] = ()
    if name.startswith(TCPMUX_PREFIX) and protocol != "unix":
        if not dialect.tcpmux:
            return _not_served_tcpmux(name, protocol, dialect, where)
        problems.append((Code.TCPMUX,
                         f"TCPMUX service {name!r}: reached by name through {dialect.daemon}'s "
                         "internal tcpmux on port 1 (RFC 1078); systemd has no TCPMUX "
                         "dispatcher, so it is not converted"))
        if socket_type is not SocketType.STREAM or protocol != "tcp":
            raise ConfigError(f"TCPMUX service {name!r} must be 'stream tcp'", file,
                              proto_word.line, proto_word.column)
    elif protocol == "unix":
        path = first.text  # the whole field: a path is never host-prefixed
        if not path.startswith("/"):
            raise ConfigError(f"unix socket path {path!r} must be absolute", file, first.line,
                              first.column)
        name, listens = path, (Listen(Family.UNIX, host=path),)
    elif protocol.startswith("rpc/"):
        name = name.split("/", 1)[0]
        problems.append((Code.RPC, f"RPC service ({protocol}): systemd cannot register with "
                         "the portmapper, so it cannot be a socket unit; keep a native daemon"))
    else:
        assert family is not None
        if ":" in name and not dialect.hosts:
            raise NoAddress(f"service {name}/{protocol}: {dialect.daemon} has no host: prefix, so "
                            "it looks the whole field up as a service name and finds none",
                            file, first.line, first.column)
        port = _port(name, protocol, services, first, file)
        hosts, notes = resolve_hosts(default_host if host is None else host, family, first, file)
        listens = tuple(Listen(lst.family, port, lst.host) for lst in hosts)
        findings += [Finding(where, Severity.WARNING, note, code=Code.RESOLVED_NOW)
                     for note in notes]

    server, argv, internal, wrapped = _program(words[5:], name, dialect, file, findings, where)
    if dialect.name == "busybox" and internal is not None \
            and wait != (socket_type is SocketType.DGRAM):
        raise ConfigError("busybox inetd runs internal stream services nowait and dgram ones "
                          "wait only", file, wait_word.line, wait_word.column)
    if internal == "tcpmux":
        problems.append((Code.TCPMUX, "internal tcpmux has no systemd equivalent"))
    if dialect.max_argv is not None and len(argv) > dialect.max_argv:
        findings.append(Finding(where, Severity.WARNING,
                                f"{len(argv)} arguments: {dialect.daemon} passes only the first "
                                f"{dialect.max_argv}; the units pass them all",
                                code=Code.ARGV_LIMIT))
    fields = dict(
        name=name, source=where, socket_type=socket_type, protocol=protocol,
        listens=listens, wait=wait, recv_buffer=rcvbuf, send_buffer=sndbuf,
        server=server, argv=argv, internal=internal, user=user, group=group,
        rate=rate, tcp_wrapped=wrapped is not None, libwrap_name=wrapped,
        disabled=entry.disabled, unmapped=tuple(unmapped), **limits)
    if wrapped is not None:
        # INFO only: the writer reports, once, that hosts.allow/deny are not applied.
        findings.append(Finding(where, Severity.INFO,
                                f"run through tcpd: unwrapped to {server} with argv[0] "
                                f"{argv[0]!r} (libwrap daemon name {wrapped!r}), as tcpd would "
                                "exec it", code=Code.TCPD_UNWRAPPED))
    for code, problem in problems:
        findings.append(Finding(where, Severity.ERROR, problem, code=code))
    token = proto_word.text.split(",", 1)[0]
    return _Parsed(fields, token, tuple(findings))


def _socket_type(word: Word, dialect: Dialect, unmapped: list, where: Source,
                 file: str) -> SocketType:
    text = word.text
    if dialect.name == "netbsd" and text.startswith("stream") and text != "stream":
        # NetBSD: `stream:filter[,arg]` names an accept filter, `stream,N` an accept limit.
        unmapped.append(("accept filter" if text[6] == ":" else "accept max", text[7:], where))
        text = "stream"
    socket_type = _SOCKET_TYPES.get(text)
    if socket_type is None:
        raise ConfigError(f"unknown socket type {word.text!r}: expected stream, dgram, "
                          "seqpacket, raw or rdm", file, word.line, word.column)
    return socket_type


def _busybox_mixup(socket_type: SocketType, protocol: str, word: Word, file: str) -> None:
    """busybox's parse_one_line() refuses `stream udp` and `dgram tcp` ("parse error")."""
    base = protocol.rsplit("/", 1)[-1]
    if (socket_type is SocketType.STREAM and base == "udp") or \
            (socket_type is SocketType.DGRAM and base == "tcp"):
        raise ConfigError(f"socket type {socket_type.value} does not go with {protocol}", file,
                          word.line, word.column)


def _freebsd_limits(limits: FreeBSDLimits, word: Word, unmapped: list, findings: list,
                    where: Source) -> dict:
    """FreeBSD's limits -> Service fields: max-child is MaxConnections=, max-child-per-ip
    MaxConnectionsPerSource=; systemd has no per-source rate, so that one is reported."""
    fields: dict = {}
    if limits.ignored:
        findings.append(Finding(where, Severity.WARNING,
                                f"{word.text!r}: FreeBSD's inetd reads only the keyword and "
                                f"ignores {limits.ignored!r} (its limits follow a '/'); "
                                "ignored here too", code=Code.LINE_IGNORED))
    if limits.max_child:
        fields["instances"] = limits.max_child
    if limits.max_child_per_ip:
        fields["per_source"] = limits.max_child_per_ip
    if limits.per_ip_per_minute:
        unmapped.append(("max-connections-per-ip-per-minute", str(limits.per_ip_per_minute),
                         where))
    return fields


def _not_served_tcpmux(name: str, protocol: str, dialect: Dialect, where: Source) -> _Parsed:
    """A tcpmux/NAME line for a daemon without TCPMUX: it takes the whole field for a
    service name, finds no port for it and serves nothing (openbsd-inetd -d lists it and
    binds nothing), so nothing is lost by leaving it out."""
    finding = Finding(where, Severity.WARNING,
                      f"{name!r} is a TCPMUX (RFC 1078) service: {dialect.daemon} has no TCPMUX "
                      f"and finds no port for that name, so it never served it; systemd has "
                      "no TCPMUX either: left out", code=Code.NEVER_SERVED)
    return _Parsed({"name": name}, protocol, (finding,), dropped=True)


def _port(name: str, protocol: str, services: ServicesTable | None, word: Word,
          file: str) -> int:
    column = word.column + len(word.text) - len(name)
    port = _number(name)
    if port is None and name.isdigit():
        port = -1  # digits but not ASCII ones, or too many of them: out of range below
    if port is None:
        table = services if services is not None else ServicesTable()
        found = table.port(name, protocol)
        if found is None:
            raise NoAddress(f"service {name}/{protocol} is not in {table.source} (give "
                              "--services the host's file, or use a port number)",
                              file, word.line, column)
        port = found
    if not 0 < port < 65536:
        raise NoAddress(f"port {name} out of range 1-65535", file, word.line, column)
    return port


def _program(words: tuple[Word, ...], name: str, dialect: Dialect, file: str,
             findings: list[Finding], where: Source
             ) -> tuple[str | None, tuple[str, ...], str | None, str | None]:
    """server and argv fields -> (server, argv, internal name, tcpd daemon name)."""
    server_word, args = words[0], [w.text for w in words[1:]]
    if server_word.text == "internal":
        internal = os.path.basename(name)
        if internal not in dialect.internals:
            raise ConfigError(f"no internal service {internal!r} in {dialect.daemon}: expected "
                              f"one of {', '.join(dialect.internals)}", file, server_word.line,
                              server_word.column)
        if internal == "auth":
            raise ConfigError("FreeBSD's internal auth (ident, RFC 1413) service has no "
                              "equivalent here: run an identd instead", file, server_word.line,
                              server_word.column)
        return None, (), internal, None
    server = server_word.text
    if not server.startswith("/"):
        if not dialect.path_lookup or "/" in server:
            raise ConfigError(f"server program {server!r} is not an absolute path (expected "
                              "'internal' or /path/to/program)", file, server_word.line,
                              server_word.column)
        server = _path_lookup(server_word, file)
        findings.append(Finding(where, Severity.INFO,
                                f"program {server_word.text!r} looked up in PATH as busybox "
                                f"inetd does: {server}", code=Code.PATH_LOOKUP))
    argv = tuple(args) or (os.path.basename(server),)
    if os.path.basename(server) == "tcpd":
        # tcpd execs argv[0]: an absolute path as is (argv[0] then its basename), any
        # other name from its REAL_DAEMON_DIR; that basename is also the libwrap name.
        real = argv[0]
        if real.startswith("/"):
            argv = (os.path.basename(real),) + argv[1:]
        else:
            real = f"{TCPD_DAEMON_DIR}/{real}"
        return real, argv, None, argv[0]
    return server, argv, None, None


def _path_lookup(word: Word, file: str) -> str:
    for directory in BUSYBOX_PATH:
        candidate = f"{directory}/{word.text}"
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise ConfigError(f"program {word.text!r} is not in busybox inetd's PATH here "
                      f"({':'.join(BUSYBOX_PATH)}): give its absolute path", file, word.line,
                      word.column)


# -- the file -------------------------------------------------------------------------

@gc_paused
def parse_inetd(text: str, file: str = "<inetd.conf>", *, flavor: str = "openbsd",
                services: ServicesTable | None = None,
                include_disabled: bool = False) -> Configuration:
    """Read inetd.conf text into a Configuration (services in file order, with findings).

    A bad entry becomes an ERROR finding and is left out, as the daemon skips it."""

    dialect = dialect_of(flavor)
    if services is None:
        services = load_services()  # /etc/services, read once for the whole file
    parsed: list[_Parsed] = []
    findings: list[Finding] = []
    default_host = "*"
    for entry in _entries(text, file, dialect):
        if isinstance(entry, _Unreadable):
            findings.append(bad_entry(entry.error, f"{dialect.daemon} skips this line",
                                      code=Code.ENTRY_SKIPPED))
            continue
        first = entry.words[0]
        if len(entry.words) == 1 and first.text.endswith(":") and dialect.hosts:
            if not entry.disabled:  # a `host:` line: the default for the lines below
                host = first.text[:-1]
                if host.startswith("[") and host.endswith("]"):
                    host = host[1:-1]
                default_host = host or "*"
            continue
        if first.text.endswith(":") and len(entry.words) > 1 and dialect.hosts:
            # `host:` with the service on a continuation line: inetd takes the next
            # word as the service, for this entry only. The joined field is located where
            # it starts, at the host (its service is on the next line).
            second = entry.words[1]
            joined = Word(first.text + second.text, first.line, first.column)
            entry = replace(entry, words=(joined,) + entry.words[2:])
        if dialect.name == "netbsd" and first.text.startswith("."):
            findings.append(bad_entry(ConfigError(
                f"NetBSD directive {first.text!r} is not followed: name the included files "
                "on the command line as well", file, first.line, first.column),
                f"{dialect.daemon} reads those files too", code=Code.NOT_CARRIED))
            continue
        if entry.disabled and not include_disabled:
            findings.append(Finding(Source(file, first.line), Severity.INFO,
                                    f"{first.text}: disabled entry ({DISABLED_PREFIX}) left out; "
                                    "--include-disabled converts it", code=Code.DISABLED))
            continue
        try:
            one = parse_entry(entry, file, flavor, services, default_host)
        except ConfigError as exc:
            findings.append(bad_entry(exc, _outcome(exc, dialect), first.text,
                                      code=Code.NO_ADDRESS if isinstance(exc, NoAddress)
                                      else Code.ENTRY_SKIPPED))
            continue
        if one.dropped:
            findings.extend(one.findings)
        else:
            parsed.append(one)
    parsed, pair_findings = _pairs(parsed, dialect)
    ids = unique_ids([(p.fields["name"], p.token) for p in parsed])
    result: list[Service] = []
    for p, id_ in zip(parsed, ids):
        result.append(Service(id=id_, **p.fields))
        findings += [replace(f, service=id_) for f in p.findings]
    findings += pair_findings
    findings.sort(key=lambda f: f.source)
    return Configuration(tuple(result), tuple(findings))


def _outcome(error: ConfigError, dialect: Dialect) -> str:
    if isinstance(error, NoAddress):
        return f"{dialect.daemon} reads this line but cannot listen for it"
    return f"{dialect.daemon} skips this line"


def _pairs(parsed: list[_Parsed], dialect: Dialect) -> tuple[list[_Parsed], list[Finding]]:
    """BSD files list a service twice, `tcp` then `tcp6`, for both families. Where `tcp`
    already listens on both (Debian's openbsd-inetd), the `tcp6` socket cannot bind and
    nothing is lost: that line is left out with a note, not reported as a clash. In the
    other order the daemon serves IPv4 from the `tcp` line and IPv6 from the `tcp6` one;
    so do the units."""
    wildcard: dict[tuple, _Parsed] = {}  # (protocol, socket type, port, family) -> entry
    kept: list[_Parsed] = []
    notes: list[Finding] = []
    for p in parsed:
        f = p.fields
        listens = f["listens"]
        if len(listens) != 1 or listens[0].host is not None or f["disabled"] \
                or listens[0].family is Family.UNIX:
            kept.append(p)
            continue
        listen = listens[0]
        key = (f["protocol"], f["socket_type"], listen.port)
        dual = wildcard.get(key + (Family.DUAL,))
        v6 = wildcard.get(key + (Family.IPV6,))
        if listen.family is Family.IPV6 and dual is not None:
            notes.append(_pair_note(p, dual, dialect, "already listens on IPv6 too, so this "
                                    f"line's socket cannot bind under {dialect.daemon}"))
            continue
        if listen.family is Family.DUAL and v6 is not None:
            p = replace(p, fields={**f, "listens": (Listen(Family.IPV4, listen.port),)})
            notes.append(Finding(f["source"], Severity.INFO,
                                 f"{f['name']}: IPv6 is served by line {v6.fields['source'].line}"
                                 f" ({v6.token}), as under {dialect.daemon}: this line keeps "
                                 "IPv4 only", code=Code.DUAL_STACK_PAIR))
        wildcard.setdefault(key + (p.fields["listens"][0].family,), p)
        kept.append(p)
    return kept, notes


def _pair_note(p: _Parsed, first: _Parsed, dialect: Dialect, why: str) -> Finding:
    f, g = p.fields, first.fields
    same = all(f[k] == g[k] for k in ("server", "argv", "internal", "user", "group", "wait"))
    where = f"line {g['source'].line} ({first.token})"
    if same:
        return Finding(f["source"], Severity.INFO,
                       f"{f['name']} ({p.token}): {where} {why}; nothing is lost: left out",
                       code=Code.DUAL_STACK_PAIR)
    return Finding(f["source"], Severity.WARNING,
                   f"{f['name']} ({p.token}): {where} {why}, so this line's server never ran "
                   "there (it differs from that line's): left out", code=Code.DUAL_STACK_PAIR)


def unique_ids(keys: list[tuple[str, str]]) -> list[str]:
    """(name, protocol token) per entry -> ids unique within the file, stable and readable.

    A name used once keeps it (`telnet`); a name used with several protocols gets the
    protocol (`echo-tcp`, `echo-udp`); what still collides gets `-2`, `-3` in file order.
    A unix path becomes its basename.
    """
    bases = [os.path.basename(name) or name for name, _ in keys]
    counts: dict[str, int] = {}
    for base in bases:
        counts[base] = counts.get(base, 0) + 1
    wanted = [base if counts[base] == 1 else f"{base}-{token.replace('/', '-')}"
              for base, (_, token) in zip(bases, keys)]
    taken = set(wanted)  # a later entry's own name is never given to an earlier one
    suffixes: dict[str, int] = {}
    given: set[str] = set()
    ids = []
    for want in wanted:
        if want in given:
            want = free_id(want, taken, suffixes)
            taken.add(want)
        given.add(want)
        ids.append(want)
    return ids


def read_inetd(path: str | Path, *, flavor: str = "openbsd",
               services: ServicesTable | None = None,
               include_disabled: bool = False) -> Configuration:
    path = Path(path)
    dialect_of(flavor)  # an unknown flavour is the command line's error, not the file's
    try:
        text, _ = open_regular(path)  # a regular file only: /dev/zero would never end
    except IsADirectoryError:
        raise ConfigError("is a directory, expected an inetd.conf file", str(path),
                          code=Code.UNREADABLE) from None
    except (OSError, ValueError) as exc:
        raise unreadable(exc, path) from None
    return parse_inetd(text, str(path), flavor=flavor, services=services,
                       include_disabled=include_disabled)
