"""tcp_wrappers access rules (hosts_access(5), hosts_options(5)), read and decided as
Debian's libwrap 7.6.q does, and compiled for systemd.

Reading: `parse_hosts_access(text, file, kind=...)` returns the rules of one file;
`read_tcpwrappers(etc_dir)` reads hosts.allow and hosts.deny into a `TcpWrappers`. A line
libwrap cannot use costs that line, as it does in libwrap, and becomes a finding at
file:line:column: a line without a ':' is skipped; a rule whose options libwrap rejects
refuses the clients it matches (libwrap jumps to "deny" when it meets the option); a
line longer than libwrap's 2048-byte buffer, or a last line without its newline, ends
the file there (in hosts.deny it refuses every client that reaches it). Nothing here
raises on the text of the files.

Deciding: `TcpWrappers.allows(daemon, address, hostname, user=...)` answers as libwrap
does, rule by rule: hosts.allow first (a match grants), then hosts.deny (a match
refuses), else the client is let in; options can turn a verdict round (`allow`, `deny`),
hand the client to a command (`twist`: a refusal for the service) or refuse it (an
option libwrap rejects). The client's host name is looked up only when a rule needs it.
What cannot be known here (an ident user name, the server endpoint of `daemon@host`, an
`aclexec` command's verdict) is decided strictly: a granting rule does not grant, a
refusing rule refuses.

The patterns, as libwrap's host_match()/string_match() read them: `ALL`; `KNOWN`,
`LOCAL`, `UNKNOWN`, `PARANOID` (on the verified host name); `@netgroup`; `/file` (more
patterns, read at each connection); `net/mask` (IPv4: the client's address ANDed with the
mask must equal net *as written*, so host bits set under the mask match nothing; the mask
may be any dotted quad, holes included, or a length 1-32; glibc's inet_aton reads each
part, so `010.0.0.0` is 8.0.0.0; IPv6: `[net]/len`, compared under the mask); `[v6]`;
`n.n.` (a prefix of the address text, so `192.168.01.` matches nothing); `.domain` (a
suffix of the name, or of the address text); `*`/`?` wildcards (on the address text and
the name); anything else compared with the address text and the name, case ignored.
Address patterns never match IPv4 clients through IPv6 forms: libwrap names an IPv4
client of a dual-stack socket by its IPv4 address.

Compiling: `TcpWrappers.compile(daemon)` turns the rules that apply to one daemon into
the set of source addresses systemd may let in (`IPAddressDeny=any` + `IPAddressAllow=`).
Each pattern becomes two address sets, those it matches *surely* and those it *may*
match (a name depends on DNS at connect time; with the legacy host's /etc/hosts some
addresses have a known name). The rules are evaluated twice over the whole address
space (`addresses.first_match`): strictly (a granting rule grants its sure set, a
refusing rule refuses its may-set) and widely. Whatever libwrap decides lies between
the two; systemd gets the strict set, which is `exact` when both agree.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import ipaddress
import re
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from ..model import Code, Finding, Severity, Source
from .addresses import ANY, ANY_V4, ANY_V6, MAPPED, NOTHING, V4_LAST, V6_BASE, AddressSet, \
    client_address, cover, first_match, for_systemd, point, union, v4_mask

BUFLEN = 2048  # libwrap's line buffer: a longer logical line ends the file there
_LIST_SEPARATORS = ", \t\r\n"
_BLANKS = " \t\r\n"
_C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale
UNKNOWN, PARANOID = "unknown", "paranoid"  # libwrap's names for a failed host name lookup
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold(text: str) -> str:
    """strcasecmp's view of a string: ASCII letters only, as in the C locale."""
    return text.lower() if text.isascii() else text.translate(_LOWER)


# -- the rules -----------------------------------------------------------------------

@dataclass(frozen=True)
class PatternList:
    """`a, b EXCEPT c EXCEPT d` as segments ((a, b), (c,), (d,)): the first segment's
    patterns match unless the rest of the list does (libwrap's list_match, right
    associative). An empty segment never matches."""

    segments: tuple[tuple[str, ...], ...]

    @property
    def items(self) -> tuple[str, ...]:
        return self.segments[0]

    def __str__(self) -> str:
        return " EXCEPT ".join(" ".join(s) for s in self.segments)


@dataclass(frozen=True)
class Option:
    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name} {self.value}"


# hosts_options(5), as libwrap's table has them: name -> (argument, must be last)
# argument: "yes" needed, "no" refused, "optional".
OPTIONS: dict[str, tuple[str, bool]] = {
    "user": ("yes", False), "group": ("yes", False), "umask": ("yes", False),
    "linger": ("yes", False), "keepalive": ("no", False), "aclexec": ("yes", False),
    "spawn": ("yes", False), "twist": ("yes", True), "rfc931": ("optional", False),
    "setenv": ("yes", False), "nice": ("optional", False), "severity": ("yes", False),
    "allow": ("no", True), "deny": ("no", True), "banners": ("yes", False),
}
_FACILITIES = ("kern", "user", "mail", "daemon", "auth", "lpr", "news", "uucp", "cron",
               "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7")
_LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

# What a rule does to a client it matches, once its options have run.
GRANT, REFUSE, TWIST, EXTERNAL = "grant", "refuse", "twist", "external"


@dataclass(frozen=True)
class Rule:
    source: Source
    daemons: PatternList
    clients: PatternList
    options: tuple[Option, ...] = ()
    grants: bool = True  # the file's verdict: hosts.allow grants, hosts.deny refuses
    text: str = ""  # the rule as written (continuations joined), for the report
    outcome: str = GRANT  # GRANT, REFUSE, TWIST or EXTERNAL (aclexec decides)
    accounts: tuple[tuple[str, str], ...] = ()  # ("user"|"group", name) the options need
    problem: str | None = None  # the option error that makes libwrap refuse

    @property
    def twist(self) -> Option | None:
        return next((o for o in self.options if o.name == "twist"), None)


@dataclass(frozen=True)
class TcpWrappers:
    """The rules of hosts.allow then hosts.deny, in file order."""

    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()
    findings: tuple[Finding, ...] = ()  # lines libwrap skips or stops at

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.allow + self.deny

    def __bool__(self) -> bool:
        return bool(self.allow or self.deny)

    def allows(self, daemon: str, address: str | None,
               hostname: str | None | Callable[[], str] = None,
               *, user: str | None = None, port: int | None = None) -> bool:
        """libwrap's decision for a client at `address` (None: a client whose address is
        not known, which libwrap calls "unknown"). `hostname`: its verified name,
        None when the lookup failed ("unknown"), or a function that looks it up when a
        rule first needs it (`verified_hostname`). `user`: the ident user name, None when
        not asked (rules that need it are then decided strictly). `port`: the server's
        port, for port-number daemon patterns."""
        return decide(self.rules, daemon, Client(address, hostname, user), port)

    def compile(self, daemon: str, service: str | None = None, *,
                names: "HostNames | None" = None, ports: Sequence[int] = ()) -> "Compiled":
        return compile_rules(self, daemon, service, names=names, ports=ports)


# -- reading ---------------------------------------------------------------------------


def parse_hosts_access(text: str, file: str, *, kind: str) -> tuple[Rule, ...]:
    """The rules of one hosts.allow (`kind="allow"`) or hosts.deny (`kind="deny"`)."""
    return read_table(text, file, kind)[0]


@contextlib.contextmanager
def _collector_paused():
    """Rules and address sets hold no reference cycles; the cycle collector scanning a
    heap that grows by a hundred thousand of them would cost more than the work."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_table(text: str, file: str, kind: str) -> tuple[tuple[Rule, ...], tuple[Finding, ...]]:
    """(rules, findings) of one file's text, bytes read as latin-1 (one char a byte)."""
    with _collector_paused():
        return _read_table(text, file, kind)


def _read_table(text: str, file: str, kind: str) -> tuple[tuple[Rule, ...], tuple[Finding, ...]]:
    if kind not in ("allow", "deny"):
        raise ValueError(f"kind must be 'allow' or 'deny', not {kind!r}")
    rules: list[Rule] = []
    findings: list[Finding] = []
    for lineno, line, complete in _logical_lines(text):
        if not complete:
            what = "is longer than libwrap's 2048-byte line" if len(line) >= BUFLEN - 1 \
                else "has no newline at its end"
            if kind == "allow":
                outcome = ("libwrap stops reading hosts.allow here: this rule and any after "
                           "it grant nobody")
            else:
                outcome = ("libwrap stops reading hosts.deny here and refuses every client "
                           "that reaches this line")
                rules.append(_stop_rule(file, lineno, line))
            findings.append(Finding(Source(file, lineno, 1), Severity.ERROR,
                                    f"this line {what}: {outcome}", code=Code.TCP_WRAPPERS_RULE))
            break
        if line.startswith("#") or not line.strip(_BLANKS):
            continue
        rule, problem = _parse_rule(line + "\n", file, lineno, kind)
        if problem is not None:
            findings.append(problem)
        if rule is not None:
            rules.append(rule)
    return tuple(rules), tuple(findings)


def read_tcpwrappers(etc: str | Path) -> TcpWrappers:
    """hosts.allow and hosts.deny of one /etc directory; a missing file has no rules."""
    etc = Path(etc)
    found: dict[str, tuple[Rule, ...]] = {}
    findings: list[Finding] = []
    for kind in ("allow", "deny"):
        path = etc / f"hosts.{kind}"
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            data = b""  # libwrap: no such file, or one that reads as empty
        except OSError as exc:
            data = b""
            verdict = "no client is granted by it" if kind == "allow" else \
                "libwrap refuses every client not granted by hosts.allow"
            findings.append(Finding(Source(str(path), 0), Severity.ERROR,
                                    f"cannot read: {exc.strerror}; {verdict}",
                                    code=Code.UNREADABLE))
            if kind == "deny":
                found[kind] = (_stop_rule(str(path), 0, ""),)
                continue
        rules, problems = read_table(data.decode("latin-1"), str(path), kind)
        found[kind] = rules
        findings += problems
    return TcpWrappers(found["allow"], found["deny"], tuple(findings))


class WatchedTables:
    """hosts.allow and hosts.deny for a daemon that runs for weeks: libwrap opens them at
    every connection, so an edit applies to the next client; here a stat() of each file
    per connection finds an edit, and only then are they read again. A file that a user
    other than root could change is not believed (config.trust, sshd's rule): hosts.allow
    then grants nobody and hosts.deny refuses everyone, never wider."""

    def __init__(self, etc: str | Path) -> None:
        self.etc = Path(etc)
        self._stamps: tuple | None = None
        self.tables = TcpWrappers()

    def current(self) -> tuple[TcpWrappers, tuple[Finding, ...]]:
        """The rules now, and the findings of a new reading (empty when unchanged)."""
        stamps = tuple(_stamp(self.etc / f"hosts.{kind}") for kind in ("allow", "deny"))
        if stamps == self._stamps:
            return self.tables, ()
        self._stamps = stamps
        self.tables = read_tcpwrappers(self.etc)
        findings = list(self.tables.findings)
        from .trust import untrusted_reason
        for kind in ("allow", "deny"):
            path = self.etc / f"hosts.{kind}"
            reason = untrusted_reason(path) if path.exists() else None
            if reason is None:
                continue
            if kind == "allow":
                self.tables = replace(self.tables, allow=())
                outcome = "its rules grant nobody"
            else:
                self.tables = replace(self.tables, deny=(_stop_rule(str(path), 0, ""),))
                outcome = "every client not granted by hosts.allow is refused"
            findings.append(Finding(Source(str(path), 0), Severity.ERROR,
                                    f"not believed: {reason}; {outcome} until only root can "
                                    "change it", code=Code.UNREADABLE))
        return self.tables, tuple(findings)


def _stamp(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode, st.st_uid)


def _stop_rule(file: str, line: int, text: str) -> Rule:
    """Where libwrap stops reading hosts.deny with an error: everyone is refused."""
    every = PatternList((("ALL",),))
    return Rule(Source(file, line), every, every, (), False, text.strip(_BLANKS), REFUSE,
                problem="libwrap cannot read past this line")


HostNames = dict  # ip_address -> the name a reverse lookup gives (lower case)


def parse_hosts_file(text: str) -> HostNames:
    """/etc/hosts as libwrap's reverse lookup sees it: each address's first name (first
    line wins), kept only when that name looks up forward to the same address again
    (libwrap's double check; otherwise the client's name is "paranoid" to it)."""
    names: HostNames = {}
    forward: dict[tuple[str, int], object] = {}
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        try:
            address = ipaddress.ip_address(words[0].split("%", 1)[0])
        except ValueError:
            continue
        if address.is_multicast or address.is_unspecified:
            continue  # never a client's source address (ff02::1 ip6-allnodes, ...)
        names.setdefault(address, words[1].lower())
        for name in words[1:]:
            forward.setdefault((name.lower(), address.version), address)
    return {a: n for a, n in names.items() if forward.get((n, a.version)) == a}


def read_host_names(etc: str | Path) -> HostNames | None:
    """The legacy host's /etc/hosts, when its nsswitch.conf asks `files` first for hosts
    (then a reverse lookup of those addresses never reaches DNS); else None."""
    etc = Path(etc)
    try:
        nsswitch = (etc / "nsswitch.conf").read_text(errors="replace")
        hosts = (etc / "hosts").read_text(errors="replace")
    except OSError:
        return None
    for line in nsswitch.splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[0] == "hosts:":
            return parse_hosts_file(hosts) if words[1:2] == ["files"] else None
    return None


def _logical_lines(text: str) -> Iterator[tuple[int, str, bool]]:
    """(first physical line, logical line, complete) as libwrap's xgets() reads them:
    fgets() into a 2048-byte buffer, a backslash before the newline joins the next line
    in, a NUL byte ends what a read brought in. `complete` is False for a line that
    did not end in a newline (too long, or the end of the file): libwrap stops there."""
    position, size, physical = 0, len(text), 0
    while position < size:
        start = physical + 1
        parts: list[str] = []
        room = BUFLEN
        while True:
            if position >= size:
                if "".join(parts):
                    yield start, "".join(parts), False
                return
            end = text.find("\n", position, position + room - 1)
            stop = end + 1 if end >= 0 else min(size, position + room - 1)
            chunk = text[position:stop]
            physical += chunk.count("\n")
            position = stop
            chunk = chunk.split("\0", 1)[0]  # strlen()
            if chunk.endswith("\n"):
                if chunk.endswith("\\\n"):
                    chunk = chunk[:-2]
                else:
                    parts.append(chunk)
                    yield start, "".join(parts)[:-1], True
                    break
            parts.append(chunk)
            room -= len(chunk)
            if room == 1:
                yield start, "".join(parts), False
                return


def _split_at(text: str, delimiter: str) -> tuple[str, str | None, int]:
    """libwrap split_at(): (before, after or None, index) at the first delimiter outside
    [...] brackets (a counter that a stray ']' can drive below zero)."""
    if "[" not in text and "]" not in text:
        index = text.find(delimiter)
        return (text, None, -1) if index < 0 else (text[:index], text[index + 1:], index)
    depth = 0
    for index, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == delimiter and depth == 0:
            return text[:index], text[index + 1:], index
    return text, None, -1


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(t for t in re.split(r"[, \t\r\n]+", text) if t)


def _pattern_list(text: str) -> PatternList:
    segments: list[tuple[str, ...]] = []
    current: list[str] = []
    for token in _tokens(text):
        if len(token) == 6 and _fold(token) == "except":
            segments.append(tuple(current))
            current = []
        else:
            current.append(token)
    segments.append(tuple(current))
    return PatternList(tuple(segments))


def _parse_rule(line: str, file: str, lineno: int, kind: str) -> tuple[Rule | None, Finding | None]:
    daemon_text, rest, first_colon = _split_at(line, ":")
    if rest is None:
        return None, Finding(Source(file, lineno, len(line.rstrip(_BLANKS)) + 1), Severity.ERROR,
                             "missing ':' separator (expected 'daemon_list : client_list "
                             "[: option ...]'): libwrap skips this line",
                             code=Code.TCP_WRAPPERS_RULE)
    client_text, options_text, second = _split_at(rest, ":")
    daemons, clients = _pattern_list(daemon_text), _pattern_list(client_text)
    grants = kind == "allow"
    options, outcome, accounts, problem = _options(options_text, grants)
    rule = Rule(Source(file, lineno), daemons, clients, options, grants,
                " ".join(line.split()), outcome, accounts, problem)
    finding = None
    if problem is not None:
        column = first_colon + second + 3 if second >= 0 else 1
        finding = Finding(Source(file, lineno, column), Severity.ERROR,
                          f"{problem}: libwrap refuses every client this rule matches",
                          code=Code.TCP_WRAPPERS_RULE)
    elif not any(daemons.segments[0]) or not clients.segments[0]:
        what = "daemon" if not daemons.segments[0] else "client"
        column = 1 if what == "daemon" else first_colon + 2
        finding = Finding(Source(file, lineno, column), Severity.WARNING,
                          f"empty {what} list (or one that starts with EXCEPT): this rule "
                          "never matches", code=Code.TCP_WRAPPERS_RULE)
    return rule, finding


def _option_fields(text: str) -> list[str]:
    """libwrap get_field(): ':'-separated, `\\:` is a colon; a trailing ':' ends it."""
    fields, current, index = [], [], 0
    while index < len(text):
        char = text[index]
        if char == ":":
            fields.append("".join(current))
            current = []
            index += 1
            continue
        if char == "\\" and text[index + 1:index + 2] == ":":
            index += 1
            char = ":"
        current.append(char)
        index += 1
    if current:
        fields.append("".join(current))
    return fields


def _options(text: str | None, grants: bool
             ) -> tuple[tuple[Option, ...], str, tuple[tuple[str, str], ...], str | None]:
    """(options, outcome, accounts, problem): libwrap process_options() without running
    anything. The first option libwrap rejects makes the rule refuse."""
    outcome = GRANT if grants else REFUSE
    options: list[Option] = []
    accounts: list[tuple[str, str]] = []
    fields = _option_fields(text) if text else []
    for index, raw in enumerate(fields):
        body = raw.strip(_C_SPACE)
        cut = len(body)
        for i, char in enumerate(body):
            if char in "= \t\r\n":
                cut = i
                break
        key, value = body[:cut], body[cut:]
        if value and value[0] != "=":
            value = value[1:].lstrip(_BLANKS)
        if value.startswith("="):
            value = value[1:].lstrip(_BLANKS)
        name = _fold(key)
        if not key:
            return tuple(options), REFUSE, (), "empty option (a ':' with nothing after it)"
        spec = OPTIONS.get(name)
        if spec is None:
            return tuple(options), REFUSE, (), f"unknown option {key!r} (hosts_options(5))"
        argument, last = spec
        if not value and argument == "yes":
            return tuple(options), REFUSE, (), f"option {key!r} needs a value"
        if value and argument == "no":
            return tuple(options), REFUSE, (), f"option {key!r} takes no value"
        if last and index != len(fields) - 1:
            return tuple(options), REFUSE, (), f"option {key!r} must be the last one"
        bad = _bad_value(name, value)
        if bad:
            return tuple(options), REFUSE, (), f"option {key!r}: {bad}"
        options.append(Option(name, value or None))
        if name in ("allow", "deny"):
            outcome = GRANT if name == "allow" else REFUSE
        elif name == "twist":
            outcome = TWIST
        elif name == "aclexec":
            outcome = EXTERNAL
        elif name == "user":
            user, group, _ = _split_at(value, ".")
            if group is not None:
                accounts.append(("group", group))
            accounts.append(("user", user))
        elif name == "group":
            accounts.append(("group", value))
    return tuple(options), outcome, tuple(accounts), None


_INT = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")


def _bad_value(name: str, value: str) -> str | None:
    """The value checks libwrap's option functions make (sscanf "%d%c" and the like)."""
    if name == "umask":
        if not re.fullmatch(r"[ \t\n\v\f\r]*[+-]?[0-7]+", value) or int(value, 8) & ~0o777:
            return f"bad umask value {value!r}"
    elif name in ("linger", "nice", "rfc931") and value:
        if not _INT.fullmatch(value):
            return f"bad {name} value {value!r}"
        number = int(value)
        if (name == "linger" and number < 0) or (name == "rfc931" and number <= 0):
            return f"bad {name} value {value!r}"
    elif name == "severity":
        facility, level, _ = _split_at(value, ".")
        if level is None:
            facility, level = None, value
        if facility is not None and _fold(facility) not in _FACILITIES or \
                _fold(level) not in _LEVELS:
            return f"bad syslog facility or severity {value!r}"
    return None


# -- one client --------------------------------------------------------------------------

_YES, _NO, _MAYBE = "yes", "no", "maybe"


class Client:
    """What libwrap knows of a client: its address (as text, the way libwrap prints it,
    and as a point on the address line), its host name (looked up once, when first
    needed) and its ident user name."""

    __slots__ = ("text", "where", "_hostname", "user")

    def __init__(self, address: str | None, hostname: str | None | Callable[[], str] = None,
                 user: str | None = None) -> None:
        if address is None:
            # No address at all (a wait-type stream server accepts its own connections,
            # so xinetd asks about a client it cannot name): libwrap's text for both the
            # address and the name is "unknown", and no net/mask pattern matches it.
            self.text, self.where, self._hostname, self.user = UNKNOWN, None, None, user
            return
        raw = address[1:-1] if address.startswith("[") and address.endswith("]") else address
        # libwrap's text for the client: an IPv4-mapped address loses its ::ffff: prefix
        # (string_match), a link-local scope stays as the kernel's name printed it
        mapped = raw[:7].lower() == "::ffff:" and _dot_quad(raw[7:]) is not None
        self.text = raw[7:] if mapped else raw
        self.where = point(client_address(raw))
        self._hostname = hostname
        self.user = user

    @property
    def hostname(self) -> str:
        name = self._hostname
        if callable(name):
            name = self._hostname = name()
        return UNKNOWN if name is None else name


def verified_hostname(address: str) -> str:
    """libwrap's sock_hostname(): the reverse name, kept only when it is not numeric and
    looks up forward (same canonical name, unless "localhost") to this very address;
    "unknown" when there is none, "paranoid" when the check fails."""
    text = client_address(address)
    try:
        name = socket.getnameinfo((text, 0), socket.NI_NAMEREQD)[0]
    except (OSError, UnicodeError):
        return UNKNOWN
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    try:
        socket.getaddrinfo(name, None, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
        return PARANOID  # a numeric "name"
    except (OSError, UnicodeError):
        pass
    try:
        found = socket.getaddrinfo(name, None, family, socket.SOCK_STREAM, 0, socket.AI_CANONNAME)
    except (OSError, UnicodeError):
        return PARANOID
    canonical = found[0][3] if found else ""
    if _fold(canonical) != _fold(name) and _fold(name) != "localhost":
        return PARANOID
    wanted = point(text)
    if any(point(info[4][0]) == wanted for info in found):
        return name
    return PARANOID


def glob_match(pattern: str, text: str) -> bool:
    """libwrap's `*`/`?` match (Tatu Ylonen's), case ignored, without backtracking:
    the positions of the pattern are followed as a set."""
    pattern, text = _fold(pattern), _fold(text)
    states = _closure(pattern, {0})
    for char in text:
        states = _closure(pattern, {i + 1 for i in states if i < len(pattern) and
                                    pattern[i] in ("?", char)} |
                          {i for i in states if i < len(pattern) and pattern[i] == "*"})
        if not states:
            return False
    return len(pattern) in states


def _closure(pattern: str, states: set[int]) -> frozenset[int]:
    """A `*` may match nothing: its position also stands for the next one."""
    todo = list(states)
    seen = set(states)
    while todo:
        i = todo.pop()
        if i < len(pattern) and pattern[i] == "*" and i + 1 not in seen:
            seen.add(i + 1)
            todo.append(i + 1)
    return frozenset(seen)


def _is_address_text(pattern: str) -> bool:
    """libwrap NOT_INADDR()'s negation: digits, dots and slashes only, compared with the
    address alone (never with the host name)."""
    return not pattern.strip("01234567890./")


def string_match(pattern: str, text: str) -> bool:
    """libwrap string_match() (the text already without a ::ffff: prefix)."""
    if "*" in pattern or "?" in pattern:
        return glob_match(pattern, text)
    folded = _fold(pattern)
    if pattern.startswith("."):
        return len(text) > len(pattern) and _fold(text).endswith(folded)
    if folded == "all":
        return True
    if folded == "known":
        return _fold(text) != UNKNOWN
    if pattern.endswith("."):
        return _fold(text).startswith(folded)
    if len(pattern) >= 2 and pattern[0] == "[" and pattern[-1] == "]":
        mine, theirs = _numeric_v6(pattern[1:-1]), _numeric_v6(text)
        return mine is not None and mine == theirs
    return folded == _fold(text)


def _numeric_v6(text: str) -> int | None:
    try:
        found = socket.getaddrinfo(text, None, socket.AF_INET6, socket.SOCK_STREAM, 0,
                                   socket.AI_NUMERICHOST | socket.AI_PASSIVE)
    except (OSError, UnicodeError, ValueError):
        return None
    return int(ipaddress.IPv6Address(found[0][4][0].split("%", 1)[0]))


def _dot_quad(text: str) -> int | None:
    """libwrap dot_quad_addr(): four runs of non-dots, read by glibc's inet_aton; the
    all-ones address is its error value, so it never reads back."""
    if len([run for run in text.split(".") if run]) != 4 or "\0" in text:
        return None
    try:
        value = int.from_bytes(socket.inet_aton(text), "big")
    except (OSError, ValueError, UnicodeError):
        return None
    return None if value == 0xFFFFFFFF else value


def _atoi(text: str) -> int:
    match = re.match(r"[ \t\n\v\f\r]*([+-]?[0-9]+)", text)
    return int(match.group(1)) if match else 0


def _cidr_mask(text: str) -> int | None:
    """libwrap cidr_mask_addr(): atoi() of the length, 1 to 32 (0 is its error value)."""
    bits = _atoi(text)
    return v4_mask(bits) if 1 <= bits <= 32 else None


@dataclass(frozen=True)
class _Masked:
    """net/mask: IPv4 (net, mask) and IPv6 (net, bits), either may be absent."""

    v4: tuple[int, int] | None
    v6: tuple[int, int] | None

    @classmethod
    @functools.lru_cache(maxsize=4096)
    def read(cls, net: str, mask: str) -> "_Masked":
        v4 = None
        net4 = _dot_quad(net)
        if net4 is not None:
            mask4 = _dot_quad(mask)
            if mask4 is None:
                mask4 = _cidr_mask(mask)
            if mask4 is not None:
                v4 = (net4, mask4)
        v6 = None
        if len(net) >= 2 and net[0] == "[" and net[-1] == "]":
            value = _numeric_v6(net[1:-1])
            bits = _atoi(mask)
            if value is not None and 0 <= bits <= 128:
                v6 = (value, bits)
        return cls(v4, v6)

    def matches(self, where: int | None) -> bool:
        if where is None:
            return False
        if where <= V4_LAST:
            return self.v4 is not None and (where & self.v4[1]) == self.v4[0]
        if self.v6 is None:
            return False
        value, bits = self.v6
        shift = 128 - bits
        return (where - V6_BASE) >> shift == value >> shift

    def addresses(self) -> tuple[AddressSet, AddressSet]:
        """(sure, may): exact, unless the IPv4 mask has too many holes to list."""
        sure = may = AddressSet.prefix(6, *self.v6) if self.v6 else NOTHING
        if self.v4 is not None:
            net, mask = self.v4
            exact = AddressSet.masked(net, mask)
            if exact is None:
                ones = 32 - len(f"{mask:032b}".lstrip("1"))  # the mask's leading run
                may = may | (AddressSet.prefix(4, net, ones) if net & ~mask == 0 else NOTHING)
            else:
                sure, may = sure | exact, may | exact
        return sure, may


def host_match(pattern: str, client: Client, depth: int = 0) -> str:
    """libwrap host_match() on the client: _YES, _NO, or _MAYBE (a /file too deeply
    nested, an unreadable netgroup database)."""
    folded = _fold(pattern)
    if pattern.startswith("@"):
        return _YES if _innetgr(pattern[1:], client.hostname) else _NO
    if pattern.startswith("/"):
        return _file_match(pattern, client, depth)
    if folded == "known":
        return _YES if client.hostname not in (UNKNOWN, PARANOID) else _NO
    if folded == "local":
        name = client.hostname
        return _YES if "." not in name and name not in (UNKNOWN, PARANOID) else _NO
    net, mask, _ = _split_at(pattern, "/")
    if mask is not None:
        return _YES if _Masked.read(net, mask).matches(client.where) else _NO
    if string_match(pattern, client.text):
        return _YES
    if not _is_address_text(pattern) and string_match(pattern, client.hostname):
        return _YES
    return _NO


def _file_match(path: str, client: Client, depth: int) -> str:
    """libwrap hostfile_match(): every whitespace-separated word of the file, read now."""
    if depth > 8:
        return _MAYBE  # libwrap would recurse until its stack runs out
    try:
        with open(path, "rb") as f:
            words = f.read(1 << 20).decode("latin-1").split()
    except OSError:
        return _NO
    result = _NO
    for word in words:
        found = host_match(word, client, depth + 1)
        if found is _YES:
            return _YES
        if found is _MAYBE:
            result = _MAYBE
    return result


@functools.cache
def _libc_innetgr():
    import ctypes  # only for a rule that names a netgroup
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function = libc.innetgr
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_char_p] * 4
    function.restype = ctypes.c_int
    return function


def _innetgr(group: str, host: str) -> bool:
    function = _libc_innetgr()
    if function is None:
        return False
    try:
        return bool(function(group.encode("latin-1"), host.encode("latin-1"), None, None))
    except (UnicodeError, ValueError):
        return False


def client_match(pattern: str, client: Client) -> str:
    """libwrap client_match(): `user@host` needs the ident user name as well."""
    host, after, _ = _split_at(pattern[1:], "@") if pattern else ("", None, -1)
    if after is None:
        return host_match(pattern, client)
    user_pattern = pattern[:len(host) + 1]
    found = host_match(after, client)
    if found is _NO:
        return _NO
    if _matches_any_user(user_pattern):
        return found
    if client.user is None:
        return _MAYBE
    return found if string_match(user_pattern, client.user) else _NO


def _matches_any_user(pattern: str) -> bool:
    return _fold(pattern) == "all" or pattern.strip("*") == ""


_PORT = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)")


def _port_number(pattern: str) -> int | None:
    """libwrap daemon_or_port_match(): sscanf "%u%c" reading just a number up to 65535."""
    match = _PORT.fullmatch(pattern)
    if not match:
        return None
    value = int(match.group(2))
    value = 0xFFFFFFFF if value > 0xFFFFFFFFFFFFFFFF else value & 0xFFFFFFFF
    if match.group(1) == "-":
        value = (-value) & 0xFFFFFFFF
    return value if value <= 65535 else None


def server_match(pattern: str, daemon: str, ports: Sequence[int] | None) -> str:
    """libwrap server_match() for one daemon (and the server's port, when known; None:
    unknown, () : none). `daemon@host` depends on the server endpoint: at best _MAYBE."""
    name, host, _ = _split_at(pattern[1:], "@") if pattern else ("", None, -1)
    name = pattern if host is None else pattern[:len(name) + 1]
    port = _port_number(name)
    if port is not None:
        if ports is None:
            result = _MAYBE
        else:
            result = _YES if ports and all(p == port for p in ports) else \
                (_MAYBE if port in ports else _NO)
    else:
        result = _YES if string_match(name, daemon) else _NO
    if result is _NO or host is None or _fold(host) == "all":
        return result
    return _MAYBE


@functools.lru_cache(maxsize=4096)
def _daemons_tri(plist: PatternList, daemon: str, ports: tuple[int, ...] | None) -> str:
    return _list_match(plist, lambda p: server_match(p, daemon, ports))


def _list_match(plist: PatternList, match: Callable[[str], str]) -> str:
    """libwrap list_match(), three-valued: a EXCEPT b = a and not b, right to left."""
    result = _NO
    for segment in reversed(plist.segments):
        head = _NO
        for pattern in segment:
            found = match(pattern)
            if found is _YES:
                head = _YES
                break
            if found is _MAYBE:
                head = _MAYBE
        if head is _NO or result is _YES:
            result = _NO
        elif result is _NO:
            result = head
        else:
            result = _MAYBE
    return result


def _account_exists(kind: str, name: str) -> bool:
    import grp
    import pwd
    try:
        (pwd.getpwnam if kind == "user" else grp.getgrnam)(name)
    except (KeyError, ValueError, UnicodeError):
        return False
    return True


def decide(rules: Sequence[Rule], daemon: str, client: Client, port: int | None = None,
           account_exists: Callable[[str, str], bool] = _account_exists) -> bool:
    """libwrap hosts_access() over the rules, strictly where something is unknown."""
    ports = None if port is None else (port,)
    for rule in rules:
        served = _list_match(rule.daemons, lambda p: server_match(p, daemon, ports))
        if served is _NO:
            continue
        matched = _list_match(rule.clients, lambda p: client_match(p, client))
        if matched is _NO:
            continue
        outcome = rule.outcome
        if outcome in (GRANT, EXTERNAL) and any(not account_exists(k, n) for k, n in rule.accounts):
            outcome = REFUSE  # libwrap: "unknown user" refuses
        if outcome == GRANT and served is _YES and matched is _YES:
            return True
        if outcome != GRANT:
            return False  # refuses (or might: an aclexec command decides)
        # a granting rule that only might match grants nobody: on to the next rule
    return True


# -- compiling for systemd ---------------------------------------------------------------

class _Match(NamedTuple):
    """Addresses a pattern matches surely (`sure`) and possibly (`may`); sure <= may."""

    sure: AddressSet
    may: AddressSet
    why: tuple[str, ...] = ()  # what made sure != may
    notes: tuple[str, ...] = ()  # readings that are exact but not what they look like


_EVERYTHING = _Match(ANY, ANY)
_NOTHING = _Match(NOTHING, NOTHING)

class _Names(tuple):
    """The /etc/hosts table inside the compiler: sorted (point, name) pairs, hashed once,
    so that pattern and list results can be cached."""

    def __hash__(self) -> int:
        found = self.__dict__.get("hash")
        if found is None:
            found = self.__dict__["hash"] = tuple.__hash__(self)
        return found


def _frozen(names: HostNames | None) -> _Names | None:
    if not names:
        return None
    return _Names(sorted((point(a), n) for a, n in names.items()))


def _by_name(pattern: str, names: _Names | None, matches: Callable[[str], bool], what: str,
             address: _Match = _NOTHING) -> _Match:
    """A pattern on the verified host name (and, through `address`, on the address text).
    Addresses listed in the legacy host's /etc/hosts have a known name: they surely match
    or surely do not; any other address may have any name, or none."""
    if not names:
        return _Match(address.sure, ANY, (f"{pattern} ({what}: needs DNS at connect time)",),
                      address.notes)
    yes = AddressSet((p, p) for p, n in names if matches(n))
    listed = AddressSet((p, p) for p, _ in names)
    shown = ", ".join(t for t in yes.texts()) or "none"
    return _Match(address.sure | yes, address.may | yes | (ANY - listed),
                  (f"{pattern} ({what}: from /etc/hosts {shown}; other addresses need DNS "
                   "at connect time)",), address.notes)


def _address_text(pattern: str) -> _Match:
    """The addresses whose text (as libwrap prints it) string_match() takes for this
    pattern: exact for a dotted quad, a prefix, a bracketed IPv6 address; a suffix or a
    wildcard pattern is listed when it takes few blocks, else only bounded."""
    folded = _fold(pattern)
    if folded == "all":
        return _EVERYTHING
    if "*" in pattern or "?" in pattern:
        return _glob_addresses(pattern)
    if pattern.startswith("."):
        return _suffix_addresses(pattern)
    if pattern.endswith("."):
        octets = pattern[:-1].split(".")
        if len(octets) <= 3 and all(_canonical_octet(o) for o in octets):
            value = 0
            for octet in octets:
                value = value * 256 + int(octet)
            block = AddressSet.prefix(4, value << (32 - 8 * len(octets)), 8 * len(octets))
            return _Match(block, block)
        return _no_address(pattern, "addresses are written without leading zeros or "
                                    "empty parts") if _is_address_text(pattern) else _NOTHING
    if len(pattern) >= 2 and pattern[0] == "[" and pattern[-1] == "]":
        value = _numeric_v6(pattern[1:-1])
        if value is None:
            return _no_address(pattern, "not an IPv6 address")
        if value in MAPPED:
            return _no_address(pattern, "libwrap names an IPv4 client by its IPv4 address")
        return _Match(AddressSet.v6(value), AddressSet.v6(value))
    quad = _QUAD.fullmatch(pattern)
    if quad:
        one = AddressSet.v4(int.from_bytes(bytes(map(int, quad.groups())), "big"))
        return _Match(one, one)
    if _is_address_text(pattern):
        return _no_address(pattern, "libwrap compares it with the address as text, "
                                    "written as four decimal numbers without leading zeros")
    return _NOTHING


_OCTET = re.compile(r"25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]")
_QUAD = re.compile(r"\.".join([f"({_OCTET.pattern})"] * 4))


def _canonical_octet(text: str) -> bool:
    """One part of an address as inet_ntop writes it: 0-255, no leading zero."""
    return _OCTET.fullmatch(text) is not None


def _no_address(pattern: str, why: str) -> _Match:
    return _Match(NOTHING, NOTHING, (), (f"'{pattern}' matches no address ({why})",))


_LINK_LOCAL = AddressSet.prefix(6, 0xFE80 << 112, 10)
_COMPAT = AddressSet.v6(1 << 16, (1 << 32) - 1)  # ::0.1.0.0 to ::255.255.255.255, printed dotted


def _compat(v4: AddressSet) -> AddressSet:
    """IPv6 addresses glibc prints as ::a.b.c.d (IPv4-compatible), from their IPv4 part."""
    return v4.shifted_into(0, V4_LAST, V6_BASE) & _COMPAT


def _suffix_addresses(pattern: str) -> _Match:
    """`.c.d` on the address text: fixed last octets; also the ::a.b.c.d forms, and a
    link-local address whose interface name (printed after %) ends with it."""
    octets = pattern[1:].split(".")
    if not all(_canonical_octet(o) for o in octets) or len(octets) > 3:
        if _is_address_text(pattern):
            return _no_address(pattern, "addresses are written without leading zeros or "
                                        "empty parts")
        return _Match(NOTHING, _LINK_LOCAL)
    fixed = len(octets)
    tail = int.from_bytes(bytes(int(o) for o in octets), "big")
    if fixed < 3:
        why = f"{pattern} (ends of addresses: too scattered to list as address blocks)"
        return _Match(NOTHING, ANY_V4 | _COMPAT | _LINK_LOCAL, (why,))
    v4 = AddressSet((high << 24 | tail, high << 24 | tail) for high in range(256))
    v6 = _compat(v4)
    why = f"{pattern} (may end a link-local address's interface name)"
    return _Match(v4 | v6, v4 | v6 | _LINK_LOCAL, (why,))


@functools.lru_cache(maxsize=1024)
def _glob_addresses(pattern: str) -> _Match:
    """Wildcards on the address text: the IPv4 addresses (and ::a.b.c.d forms) whose
    dotted text matches, found octet by octet with the pattern's positions as state;
    given up past 1024 blocks. IPv6 text and names are only bounded (may = any)."""
    folded = _fold(pattern)
    try:
        v4 = _glob_octets(folded, _closure(folded, {0}), 0, {})
        compat_start = _glob_step(folded, _closure(folded, {0}), "::")
        v6 = _compat(_to_set(_glob_octets(folded, compat_start, 0, {}))) if compat_start else NOTHING
    except _TooScattered:
        return _Match(NOTHING, ANY, (f"{pattern} (wildcards: too scattered to list)",))
    return _Match(_to_set(v4) | v6, ANY, (f"{pattern} (wildcards also match host names)",))


class _TooScattered(Exception):
    pass


def _glob_step(pattern: str, states: frozenset[int], text: str) -> frozenset[int]:
    for char in text:
        states = _closure(pattern, {i + 1 for i in states if i < len(pattern) and
                                    pattern[i] in ("?", char)} |
                          {i for i in states if i < len(pattern) and pattern[i] == "*"})
        if not states:
            break
    return states


def _glob_octets(pattern: str, states: frozenset[int], level: int,
                 memo: dict) -> tuple[tuple[int, int], ...]:
    """Ranges (relative to the octets still to come) of addresses whose remaining
    text, from these pattern positions, matches."""
    if level == 4:
        return ((0, 0),) if len(pattern) in states else ()
    key = (level, states)
    if key in memo:
        return memo[key]
    if len(memo) > 4096:
        raise _TooScattered
    span = 1 << (8 * (3 - level))
    out: list[tuple[int, int]] = []
    for octet in range(256):
        after = _glob_step(pattern, states, str(octet) + ("." if level < 3 else ""))
        if not after:
            continue
        for first, last in _glob_octets(pattern, after, level + 1, memo):
            start, end = octet * span + first, octet * span + last
            if out and out[-1][1] + 1 == start:
                out[-1] = (out[-1][0], end)
            else:
                out.append((start, end))
        if len(out) > 1024:
            raise _TooScattered
    memo[key] = tuple(out)
    return memo[key]


def _to_set(ranges: tuple[tuple[int, int], ...]) -> AddressSet:
    return AddressSet._trusted(ranges)


@functools.lru_cache(maxsize=16384)
def _pattern_match(pattern: str, names: _Names | None = None) -> _Match:
    folded = _fold(pattern)
    if pattern.startswith("@"):
        return _by_name(pattern, None, lambda n: False, "NIS netgroup")
    if pattern.startswith("/"):
        return _Match(NOTHING, ANY, (f"{pattern} (patterns read from a file at connect time)",))
    if folded == "known":
        return _by_name(pattern, names, lambda n: True, "known host name")
    if folded == "local":
        return _by_name(pattern, names, lambda n: "." not in n, "host name without a dot")
    net, mask, _ = _split_at(pattern, "/")
    if mask is not None:
        masked = _Masked.read(net, mask)
        sure, may = masked.addresses()
        why = () if sure == may else (f"{pattern} (a netmask with holes: too many blocks to list)",)
        notes = ()
        if not may - MAPPED:
            notes = (f"'{pattern}' matches no address under libwrap (it compares the "
                     "client's address ANDed with the mask with the net exactly as written; "
                     "a length of 0 and a mask of 255.255.255.255 are errors to it)",)
        elif masked.v6 is not None and not re.fullmatch(r"[ \t\n\v\f\r]*[+-]?[0-9]+.*", mask):
            notes = (f"'{pattern}': libwrap reads the length as 0: every IPv6 address",)
        return _Match(sure, may, why, notes)
    address = _address_text(pattern)
    bracketed = len(pattern) >= 2 and pattern[0] == "[" and pattern[-1] == "]"
    if _is_address_text(pattern) or folded == "all" or bracketed:
        return address  # a verified host name is never numeric: brackets match addresses
    lowered = folded

    def on_name(name: str) -> bool:
        return string_match(pattern, name)

    what = {"unknown": "no host name", "paranoid": "a host name that fails the double "
            "check"}.get(lowered, "host name")
    if pattern.startswith("."):
        what = "domain name"
    elif "*" in pattern or "?" in pattern:
        what = "host name wildcard"
    result = _by_name(pattern, names, on_name, what, address)
    return _Match(result.sure, result.may, address.why + result.why, result.notes)


def _client_pattern(pattern: str, names: _Names | None) -> _Match:
    if "@" not in pattern[1:]:
        return _pattern_match(pattern, names)
    host, after, _ = _split_at(pattern[1:], "@")
    if after is None:
        return _pattern_match(pattern, names)
    inner = _pattern_match(after, names)
    user = pattern[:len(host) + 1]
    if _matches_any_user(user):
        return inner
    return _Match(NOTHING, inner.may, inner.why + (f"{pattern} (ident user lookup)",), inner.notes)


def _list_sets(plist: PatternList, names: _Names | None) -> _Match:
    """The list's sure and may sets: a EXCEPT b surely matches what a surely matches and
    b cannot; it may match what a may and b does not surely."""
    if len(plist.segments) == 1 and len(plist.segments[0]) == 1:
        return _client_pattern(plist.segments[0][0], names)
    result = _NOTHING
    for position, segment in enumerate(reversed(plist.segments)):
        parts = [_client_pattern(p, names) for p in segment]
        if len(parts) == 1:
            head = parts[0]
        else:
            head = _Match(union(*(m.sure for m in parts)), union(*(m.may for m in parts)),
                          tuple(w for m in parts for w in m.why),
                          tuple(n for m in parts for n in m.notes))
        if position == 0:
            result = head
        else:
            result = _Match(head.sure - result.may, head.may - result.sure,
                            head.why + result.why, head.notes + result.notes)
    return result


@dataclass(frozen=True)
class Compiled:
    """What systemd can enforce for one daemon.

    `allow` None: no restriction at all. Otherwise systemd gets `IPAddressDeny=any` and
    `IPAddressAllow=` these CIDRs (possibly none: nobody may connect). `exact` is False
    when the rules could not be expressed and the result was made stricter.
    """

    allow: tuple[str, ...] | None
    exact: bool
    rules: tuple[Rule, ...] = ()  # the rules that apply to this daemon
    findings: tuple[Finding, ...] = field(default=())
    addresses: AddressSet | None = None  # `allow` as a set (None: no restriction)


def compile_rules(wrappers: TcpWrappers, daemon: str, service: str | None = None, *,
                  names: HostNames | None = None, ports: Sequence[int] = ()) -> Compiled:
    """The rules for one daemon, evaluated twice: strictly (a granting rule grants what
    it surely matches, a refusing rule refuses what it may match) and widely (the other
    way round). Whatever libwrap decides at connect time lies between the two; the
    strict result is what systemd gets, and it is exact when both agree. `ports`: the
    service's ports, for port-number daemon patterns (empty: unknown)."""
    with _collector_paused():
        return _compile_rules(wrappers, daemon, service, names, ports)


def _compile_rules(wrappers: TcpWrappers, daemon: str, service: str | None,
                   names: HostNames | None, ports: Sequence[int]) -> Compiled:
    frozen = _frozen(names)
    known_ports = tuple(ports) if ports else None
    applied: list[Rule] = []
    strict: list[tuple[AddressSet, bool]] = []
    wide: list[tuple[AddressSet, bool]] = []
    uncertain: list[AddressSet] = []
    reasons: list[tuple[Rule, tuple[str, ...]]] = []
    notes: list[Finding] = []
    for rule in wrappers.rules:
        served = _daemons_tri(rule.daemons, daemon, known_ports)
        if served is _NO:
            continue
        applied.append(rule)
        match = _list_sets(rule.clients, frozen)
        sure, why = match.sure, match.why
        if served is _MAYBE:
            sure, why = NOTHING, why + (f"daemon pattern {rule.daemons} (server address "
                                        "or port)",)
        outcome = rule.outcome
        if rule.accounts and outcome == GRANT:
            outcome, why = EXTERNAL, why + ("user/group option (libwrap refuses when the "
                                            "account does not exist at connect time)",)
        if outcome == EXTERNAL:
            why = why + ("aclexec (a command decides at connect time)",) \
                if any(o.name == "aclexec" for o in rule.options) else why
        grants = outcome == GRANT
        strict.append((sure if grants else match.may, grants))
        wide.append((match.may if outcome in (GRANT, EXTERNAL) else sure,
                     outcome in (GRANT, EXTERNAL)))
        uncertain.append(match.may if outcome == EXTERNAL else
                         NOTHING if match.may is sure else match.may - sure)
        reasons.append((rule, why))
        for note in dict.fromkeys(match.notes):
            notes.append(Finding(rule.source, Severity.INFO, note, service,
                                 code=Code.TCP_WRAPPERS_CARRIED))
        if rule.options:
            notes.extend(_option_findings(rule, service))
    granted = first_match(strict, True)
    # where no rule is uncertain, the wide reading is the strict one
    lost = NOTHING if not any(uncertain) else first_match(wide, True) - granted - MAPPED
    strict_granted = for_systemd(granted)
    findings: list[Finding] = []
    if lost:
        blamed = sorted({index for first, last, index in cover(uncertain) if index >= 0
                         and lost & AddressSet(((first, last),))})
        for index in blamed:
            rule, why = reasons[index]
            side = ("not granted: only the addresses it surely matches are let in"
                    if rule.outcome == GRANT and not rule.accounts
                    else "refused for every address it might match")
            findings.append(Finding(rule.source, Severity.WARNING,
                                    f"tcp_wrappers rule '{rule.text}' cannot be expressed as "
                                    f"IPAddressAllow/Deny: {'; '.join(dict.fromkeys(why))}; "
                                    f"made stricter ({side})", service,
                                    code=Code.TCP_WRAPPERS_INEXACT))
    allow = None if strict_granted == ANY else strict_granted.texts()
    return Compiled(allow, not lost, tuple(applied), tuple(findings + notes),
                    None if allow is None else strict_granted)


def _option_findings(rule: Rule, service: str | None) -> list[Finding]:
    out = []
    for option in rule.options:
        if option.name in ("allow", "deny"):
            continue
        if option.name == "twist":
            msg = (f"'twist {option.value}' answers these clients with a shell command instead "
                   f"of the service; systemd refuses them silently (the command is not carried)")
        elif option.name == "spawn":
            msg = (f"'spawn {option.value}' ran a command on each matching connection; not "
                   f"carried (use the journal: systemd logs each accepted connection)")
        elif option.name == "severity":
            msg = (f"'severity {option.value}' set the log level of this rule's connections; "
                   f"not carried (systemd logs to the journal at its own levels)")
        else:
            msg = f"option '{option}' is not carried over to systemd"
        out.append(Finding(rule.source, Severity.WARNING, msg, service, code=Code.NOT_CARRIED))
    return out


def intersect_allow(a: AddressSet | None, b: AddressSet | None) -> AddressSet | None:
    """Two allowed sets that must both admit a client (None: no restriction)."""
    if a is None or b is None:
        return b if a is None else a
    return a & b


__all__ = ["ANY", "ANY_V4", "ANY_V6", "BUFLEN", "Client", "Compiled", "HostNames", "OPTIONS",
           "Option", "PatternList", "Rule", "TcpWrappers", "WatchedTables", "compile_rules", "decide",
           "glob_match", "host_match", "intersect_allow", "parse_hosts_access",
           "parse_hosts_file", "read_host_names", "read_table", "read_tcpwrappers",
           "string_match", "verified_hostname"]
