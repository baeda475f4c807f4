"""inetd.conf, the full grammar of the inetd flavours, read into `Service` values.

In the manner of tomli: pure functions over the text, each taking a position and
returning values; every problem is a `ConfigError` carrying file, line and column.
The only things read from outside the text are the port table (passed in, or
/etc/services when none is given) and, for a symbolic host name in a `host:` prefix,
the resolver (reported, since the result is frozen into the units).

Flavours (converter-reference.md section 2) disagree on a few tokens:

=============  ==========================  ===================  =================
aspect         openbsd (Debian, default)   inetutils            xinetd-compat
=============  ==========================  ===================  =================
continuation   line starting with blank    none                 none
quoting        none                        "..." and '...'      none
tcp / udp      IPv4 + IPv6                 IPv4 only            IPv4 + IPv6
tcp6           IPv6 only                   IPv6 only            IPv6 only
tcp46          IPv4-mapped on IPv6         unknown              unknown
tcp6only       unknown                     IPv6 only            unknown
user.group     '.' searched first          ':' searched first   '.' only
wait.N         N starts/minute, 10 min off same                 refused
no .N          256/min (-R default)        1000/min (TOOMANY)   cps 50 10
=============  ==========================  ===================  =================

What the parser keeps but systemd cannot express (rpc, raw, rdm) stays in the model
with an ERROR finding, so a superserver may still use it and the report says why.
"""

from __future__ import annotations

import ipaddress
import os.path
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..errors import ConfigError
from ..model import INTERNAL_NAMES, Configuration, Family, Finding, Listen, RateLimit, Service, Severity, \
    SocketType, Source
from .services import ServicesTable, load_services
from ..bulk import gc_paused

FLAVORS = ("openbsd", "inetutils", "xinetd-compat")
DISABLED_PREFIX = "#<off>#"  # Debian update-inetd's marker ($SEP in DebianNet.pm)
TCPD_DAEMON_DIR = "/usr/sbin"  # tcpd's REAL_DAEMON_DIR on Debian
OPENBSD_MAXARGV = 20

# Rate limit when the wait field has no `.N`: (count, interval, pause) per flavour.
DEFAULT_RATE = {
    "openbsd": RateLimit(256, 60, 600),  # inetd(8): -R default 256/min, off for ten minutes
    "inetutils": RateLimit(1000, 60, 600),  # inetd.c TOOMANY (the man page's 40 is stale)
    "xinetd-compat": RateLimit(50, 1, 10),  # xinetd's cps default
}

# protocol token -> (base protocol, family for a wildcard address) per flavour.
_IP_PROTOCOLS = {
    "openbsd": {"tcp": Family.DUAL, "tcp4": Family.IPV4, "tcp6": Family.IPV6,
                "tcp46": Family.DUAL},
    "inetutils": {"tcp": Family.IPV4, "tcp4": Family.IPV4, "tcp6": Family.IPV6,
                  "tcp6only": Family.IPV6},
    "xinetd-compat": {"tcp": Family.DUAL, "tcp4": Family.IPV4, "tcp6": Family.IPV6},
}
_SOCKET_TYPES = {t.value: t for t in SocketType}
_FIELDS = "service socket-type protocol wait[.max] user[.group] server-program [arguments]"


class Word(NamedTuple):
    """One field of an entry and where it starts (1-based line and column).

    A NamedTuple, not a frozen dataclass: a large file has tens of thousands of words
    and a tuple is several times cheaper to make."""

    text: str
    line: int
    column: int


@dataclass(frozen=True)
class Entry:
    """One logical entry: its words (continuations joined) and how it was marked."""

    words: tuple[Word, ...]
    disabled: bool = False


def _family_table(flavor: str) -> dict[str, tuple[str, Family]]:
    table: dict[str, tuple[str, Family]] = {}
    for token, family in _IP_PROTOCOLS[flavor].items():
        table[token] = ("tcp", family)
        table["udp" + token[3:]] = ("udp", family)
    return table


# Constant per flavour: protocol token -> (base protocol, family).
_FAMILIES = {flavor: _family_table(flavor) for flavor in _IP_PROTOCOLS}
_WORD = re.compile(r"[^ \t\r\n\f\v]+")


# -- lexing ---------------------------------------------------------------------------

def split_words(text: str, line: int, column: int, file: str, *, quoting: bool) -> list[Word]:
    """Split one physical line into words; `column` is that of text[0].

    With `quoting` (inetutils' argcv), a word may be wrapped in "..." or '...': inside
    double quotes a backslash escapes the next character, single quotes are literal.
    """
    if not quoting or ('"' not in text and "'" not in text):
        return [Word(m.group(), line, column + m.start()) for m in _WORD.finditer(text)]
    words: list[Word] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t\r\n\f\v":
            i += 1
            continue
        start = i
        if quoting and text[i] in "\"'":
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
        while i < n and text[i] not in " \t\r\n\f\v":
            i += 1
        words.append(Word(text[start:i], line, column + start))
    return words


def entries(text: str, file: str, flavor: str = "openbsd") -> list[Entry]:
    """The logical entries of a file: comments dropped, continuation lines joined.

    `#` starts a comment only in column 1 (elsewhere it is data, as inetd reads it).
    Debian's `#<off>#` lines are entries marked disabled. In the openbsd flavour a line
    starting with a blank continues the entry above it (inetd.c skip()).
    """
    result: list[Entry] = []
    continuable = False
    quoting = flavor == "inetutils"
    for lineno, raw in enumerate(text.splitlines(), 1):
        if raw.startswith(DISABLED_PREFIX):
            body = raw[len(DISABLED_PREFIX):]
            words = split_words(body, lineno, len(DISABLED_PREFIX) + 1, file, quoting=quoting)
            if words:
                result.append(Entry(tuple(words), disabled=True))
            continuable = False  # update-inetd never wraps its lines
            continue
        if raw.startswith("#") or not raw.strip():
            # A comment or a blank line ends the entry: inetd's skip() only continues
            # when the very next line starts with a blank (seen with openbsd-inetd -d).
            continuable = False
            continue
        words = split_words(raw, lineno, 1, file, quoting=quoting)
        if flavor == "openbsd" and raw[0] in " \t" and continuable:
            last = result[-1]
            result[-1] = Entry(last.words + tuple(words), last.disabled)
            continue
        result.append(Entry(tuple(words)))
        continuable = True
    return result


# -- fields ---------------------------------------------------------------------------

def parse_size(word: Word, value: str, file: str) -> int:
    """A buffer size: digits with an optional k or m (binary multiples, as inetd does)."""
    scale = 1
    if value[-1:].lower() in ("k", "m"):
        scale = 1024 if value[-1].lower() == "k" else 1024 * 1024
        value = value[:-1]
    if not value.isdigit() or int(value) == 0:
        raise ConfigError(f"bad buffer size in {word.text!r}: expected a positive number "
                          "with an optional k or m", file, word.line, word.column)
    return int(value) * scale


def parse_protocol(word: Word, flavor: str, file: str
                   ) -> tuple[str, Family | None, int | None, int | None]:
    """`proto[,sndbuf=N][,rcvbuf=N]` -> (protocol, family, rcvbuf, sndbuf).

    protocol is "tcp", "udp", "unix", "rpc/tcp" or "rpc/udp"; family None for unix/rpc.
    """
    token, *options = word.text.split(",")
    rcvbuf = sndbuf = None
    for option in options:
        key, eq, value = option.partition("=")
        if flavor != "openbsd" or not eq or key not in ("rcvbuf", "sndbuf"):
            raise ConfigError(f"unknown protocol option {option!r} in {word.text!r}: expected "
                              "',rcvbuf=SIZE' or ',sndbuf=SIZE' (openbsd flavour)",
                              file, word.line, word.column)
        size = parse_size(word, value, file)
        if key == "rcvbuf":
            rcvbuf = size
        else:
            sndbuf = size
    families = _FAMILIES[flavor]
    if token in families:
        base, family = families[token]
        return base, family, rcvbuf, sndbuf
    if token == "unix" and flavor != "xinetd-compat":
        return "unix", None, rcvbuf, sndbuf
    if token in ("rpc/tcp", "rpc/udp"):
        return token, None, rcvbuf, sndbuf
    expected = ", ".join(sorted(families)) + (", unix" if flavor != "xinetd-compat" else "")
    raise ConfigError(f"unknown protocol {token!r} for the {flavor} flavour: expected one of "
                      f"{expected}, rpc/tcp, rpc/udp", file, word.line, word.column)


def parse_wait(word: Word, flavor: str, file: str) -> tuple[bool, RateLimit]:
    """`wait`/`nowait` with an optional `.N` (starts per minute, then ten minutes off)."""
    mode, dot, limit = word.text.partition(".")
    if mode not in ("wait", "nowait"):
        raise ConfigError(f"bad wait field {word.text!r}: expected wait, nowait, wait.N or "
                          "nowait.N", file, word.line, word.column)
    if not dot:
        return mode == "wait", DEFAULT_RATE[flavor]
    if flavor == "xinetd-compat":
        raise ConfigError(f"bad wait field {word.text!r}: xinetd's inetd.conf reader takes no "
                          "'.max'", file, word.line, word.column + len(mode))
    if not limit.isdigit() or int(limit) < 1:
        raise ConfigError(f"bad max {limit!r} in {word.text!r}: expected a number of starts per "
                          "minute, at least 1", file, word.line, word.column + len(mode) + 1)
    return mode == "wait", RateLimit(int(limit), 60, DEFAULT_RATE["openbsd"].pause)


def parse_user(word: Word, flavor: str, file: str) -> tuple[str, str | None]:
    """`user`, `user.group` or `user:group`; which separator wins depends on the flavour."""
    order = {"openbsd": ".:", "inetutils": ":.", "xinetd-compat": "."}[flavor]
    for sep in order:
        if sep in word.text:
            user, _, group = word.text.partition(sep)
            break
    else:
        user, group = word.text, ""
    if not user:
        raise ConfigError(f"bad user field {word.text!r}: expected user[.group]", file,
                          word.line, word.column)
    return user, group or None


def split_host(word: Word, flavor: str) -> tuple[str | None, str]:
    """`host:service` -> (host, service); None when the field has no host part.

    Like inetd, the last ':' separates; `[...]` around the host is removed (IPv6
    literals, host lists); an empty host is `*`.
    """
    if flavor == "xinetd-compat" or ":" not in word.text:
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
    for name in host.split(","):
        if name in ("*", ""):
            listens.append(Listen(family))
            continue
        try:
            addresses = [ipaddress.ip_address(name.split("%", 1)[0])]
        except ValueError:
            addresses = _lookup(name, family, word, file)
            notes.append(f"host name {name!r} resolved now to "
                         f"{', '.join(map(str, addresses))}: the units keep these addresses")
        for address in addresses:
            version = Family.IPV4 if address.version == 4 else Family.IPV6
            if family is not Family.DUAL and family is not version:
                raise ConfigError(f"address {name!r} is IPv{address.version} but the protocol is "
                                  f"{family.value} only", file, word.line, word.column)
            listens.append(Listen(version, host=str(address)))
    return listens, notes


def _lookup(name: str, family: Family, word: Word, file: str) -> list:
    af = {Family.IPV4: socket.AF_INET, Family.IPV6: socket.AF_INET6}.get(family, socket.AF_UNSPEC)
    try:
        infos = socket.getaddrinfo(name, None, af, socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(f"cannot resolve host {name!r}: {exc.strerror or exc}", file,
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


def parse_entry(entry: Entry, file: str, flavor: str, services: ServicesTable | None,
                default_host: str) -> _Parsed:
    """One entry -> the fields of its Service, all but the id (unique only per file)."""
    words = entry.words
    first = words[0]
    if len(words) < 6:
        missing = _FIELDS.split()[len(words)]
        raise ConfigError(f"too few fields ({len(words)}): missing {missing}; expected "
                          f"'{_FIELDS}'", file, first.line, words[-1].column + len(words[-1].text))
    where = Source(file, first.line)
    findings: list[Finding] = []
    host, name = split_host(first, flavor)
    socket_word, proto_word, wait_word, user_word = words[1:5]

    socket_type = _SOCKET_TYPES.get(socket_word.text)
    if socket_type is None:
        raise ConfigError(f"unknown socket type {socket_word.text!r}: expected stream, dgram, "
                          "seqpacket, raw or rdm", file, socket_word.line, socket_word.column)
    protocol, family, rcvbuf, sndbuf = parse_protocol(proto_word, flavor, file)
    wait, rate = parse_wait(wait_word, flavor, file)
    user, group = parse_user(user_word, flavor, file)
    if not name:
        raise ConfigError("empty service name", file, first.line, first.column)

    problems: list[str] = []
    if socket_type in (SocketType.RAW, SocketType.RDM):
        problems.append(f"socket type {socket_type.value} cannot be a systemd socket unit")
    listens: tuple[Listen, ...] = ()
    if protocol == "unix":
        path = first.text  # the whole field: a path is never host-prefixed
        if not path.startswith("/"):
            raise ConfigError(f"unix socket path {path!r} must be absolute", file, first.line,
                              first.column)
        name, listens = path, (Listen(Family.UNIX, host=path),)
    elif flavor == "inetutils" and name.startswith("tcpmux/"):
        problems.append(f"TCPMUX service {name!r}: systemd has no TCPMUX (RFC 1078) dispatcher")
    elif protocol.startswith("rpc/"):
        name = name.split("/", 1)[0]
        problems.append(f"RPC service ({protocol}): systemd cannot register with the "
                        "portmapper, so it cannot be a socket unit; keep a native daemon")
    else:
        assert family is not None
        port = _port(name, protocol, services, first, file)
        hosts, notes = resolve_hosts(default_host if host is None else host, family, first, file)
        listens = tuple(Listen(lst.family, port, lst.host) for lst in hosts)
        findings += [Finding(where, Severity.WARNING, note) for note in notes]

    server, argv, internal, wrapped = _program(words[5:], name, flavor, file)
    if internal == "tcpmux":
        problems.append("internal tcpmux has no systemd equivalent")
    if flavor == "openbsd" and len(argv) > OPENBSD_MAXARGV:
        findings.append(Finding(where, Severity.WARNING,
                                f"{len(argv)} arguments: openbsd-inetd passes only the first "
                                f"{OPENBSD_MAXARGV}; the units pass them all"))
    fields = dict(
        name=name, source=where, socket_type=socket_type, protocol=protocol,
        listens=listens, wait=wait, recv_buffer=rcvbuf, send_buffer=sndbuf,
        server=server, argv=argv, internal=internal, user=user, group=group,
        rate=rate, tcp_wrapped=wrapped is not None, libwrap_name=wrapped,
        disabled=entry.disabled)
    if wrapped is not None:
        # INFO only: the writer reports, once, that hosts.allow/deny are not applied.
        findings.append(Finding(where, Severity.INFO,
                                f"run through tcpd: unwrapped to {server} with argv[0] "
                                f"{argv[0]!r} (libwrap daemon name {wrapped!r}), as tcpd would "
                                "exec it"))
    for problem in problems:
        findings.append(Finding(where, Severity.ERROR, problem))
    token = proto_word.text.split(",", 1)[0]
    return _Parsed(fields, token, tuple(findings))


def _port(name: str, protocol: str, services: ServicesTable | None, word: Word,
          file: str) -> int:
    column = word.column + len(word.text) - len(name)
    if name.isdigit():
        port = int(name)
    else:
        table = services if services is not None else ServicesTable()
        found = table.port(name, protocol)
        if found is None:
            raise ConfigError(f"unknown service name {name!r} for {protocol}: expected a name "
                              f"from {table.source} or a port number", file, word.line, column)
        port = found
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} out of range 1-65535", file, word.line, column)
    return port


def _program(words: tuple[Word, ...], name: str, flavor: str, file: str
             ) -> tuple[str | None, tuple[str, ...], str | None, str | None]:
    """server and argv fields -> (server, argv, internal name, tcpd daemon name)."""
    server_word, args = words[0], [w.text for w in words[1:]]
    if server_word.text == "internal":
        internal = os.path.basename(name)
        known = INTERNAL_NAMES + (("tcpmux",) if flavor == "inetutils" else ())
        if internal not in known:
            raise ConfigError(f"no internal service {internal!r}: expected one of "
                              f"{', '.join(known)}", file, server_word.line, server_word.column)
        return None, (), internal, None
    server = server_word.text
    if not server.startswith("/"):
        raise ConfigError(f"server program {server!r} is not an absolute path (expected "
                          "'internal' or /path/to/program)", file, server_word.line,
                          server_word.column)
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


# -- the file -------------------------------------------------------------------------

@gc_paused
def parse_inetd(text: str, file: str = "<inetd.conf>", *, flavor: str = "openbsd",
                services: ServicesTable | None = None,
                include_disabled: bool = False) -> Configuration:
    """Read inetd.conf text into a Configuration (services in file order, with findings)."""
    if flavor not in FLAVORS:
        raise ConfigError(f"unknown inetd flavour {flavor!r}: expected one of {', '.join(FLAVORS)}")
    if services is None:
        services = load_services()  # /etc/services, read once for the whole file
    parsed: list[_Parsed] = []
    findings: list[Finding] = []
    default_host = "*"
    for entry in entries(text, file, flavor):
        first = entry.words[0]
        if len(entry.words) == 1 and first.text.endswith(":") and flavor != "xinetd-compat":
            if not entry.disabled:  # a `host:` line: the default for the lines below
                host = first.text[:-1]
                if host.startswith("[") and host.endswith("]"):
                    host = host[1:-1]
                default_host = host or "*"
            continue
        if first.text.endswith(":") and len(entry.words) > 1 and flavor != "xinetd-compat":
            # `host:` with the service on a continuation line: inetd takes the next
            # word as the service, for this entry only.
            second = entry.words[1]
            joined = Word(first.text + second.text, second.line, second.column - len(first.text))
            entry = Entry((joined,) + entry.words[2:], entry.disabled)
        if entry.disabled and not include_disabled:
            findings.append(Finding(Source(file, first.line), Severity.INFO,
                                    f"{first.text}: disabled entry ({DISABLED_PREFIX}) left out; "
                                    "--include-disabled converts it"))
            continue
        parsed.append(parse_entry(entry, file, flavor, services, default_host))
    ids = unique_ids([(p.fields["name"], p.token) for p in parsed])
    result: list[Service] = []
    for p, id_ in zip(parsed, ids):
        result.append(Service(id=id_, **p.fields))
        findings += [Finding(f.source, f.severity, f.message, id_) for f in p.findings]
    findings.sort(key=lambda f: f.source.line)
    return Configuration(tuple(result), tuple(findings))


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
    seen: dict[str, int] = {}
    ids = []
    for want in wanted:
        seen[want] = seen.get(want, 0) + 1
        ids.append(want if seen[want] == 1 else f"{want}-{seen[want]}")
    return ids


def read_inetd(path: str | Path, *, flavor: str = "openbsd",
               services: ServicesTable | None = None,
               include_disabled: bool = False) -> Configuration:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        raise ConfigError("no such file", str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, expected an inetd.conf file", str(path)) from None
    return parse_inetd(text, str(path), flavor=flavor, services=services,
                       include_disabled=include_disabled)
