"""tcp_wrappers access rules (hosts_access(5), hosts_options(5)) and their systemd form.

Reading: `parse_hosts_access(text, file)` returns the rules of one file (hosts.allow or
hosts.deny); `read_tcpwrappers(etc_dir)` reads both into a `TcpWrappers`. Syntax that
libwrap itself would reject (a missing ':' separator, a dangling EXCEPT, an unknown
option, allow/deny/twist not last) raises `ConfigError` with file, line and column.

Evaluating: `TcpWrappers.allows(daemon, address, hostname=None)` answers as libwrap
does: the first matching rule in hosts.allow grants, else the first in hosts.deny
denies, else access is granted. A `deny` option in hosts.allow (or `allow` in
hosts.deny) turns the verdict round; a `twist` hands the client to a shell command
instead of the service, so for the service it is a refusal.

Compiling: `TcpWrappers.compile(daemon)` turns the rules that apply to one daemon into
the set of source addresses systemd may let in (`IPAddressDeny=any` +
`IPAddressAllow=`). Addresses are exact; host names, `.domain`, `@netgroup`, LOCAL,
KNOWN, UNKNOWN, PARANOID, `user@host` and `daemon@host` depend on DNS, NIS or ident at
connect time and have no BPF form. Each pattern is therefore evaluated as a pair of
sets: the addresses it matches *surely* and those it *may* match. A granting rule
grants only its sure set; a refusing rule refuses its whole may-set. The result can
only be stricter than libwrap, never wider, and `Compiled.exact` says whether it is
the same.
"""

from __future__ import annotations

import fnmatch
import functools
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from . import addresses
from ..errors import ConfigError
from ..model import Finding, Severity, Source

# -- the rules -----------------------------------------------------------------------

# hosts_options(5): name -> whether it takes a value ("optional" for nice/rfc931).
OPTIONS: dict[str, str] = {
    "allow": "no", "deny": "no", "twist": "yes", "spawn": "yes", "severity": "yes",
    "keepalive": "no", "linger": "yes", "rfc931": "optional", "banners": "yes",
    "nice": "optional", "setenv": "yes", "umask": "yes", "user": "yes",
}
LAST_ONLY = ("allow", "deny", "twist")


@dataclass(frozen=True)
class PatternList:
    """`a, b EXCEPT c EXCEPT d`: items match unless the (nested) except list does."""

    items: tuple[str, ...]
    except_: "PatternList | None" = None

    def __str__(self) -> str:
        text = " ".join(self.items)
        return f"{text} EXCEPT {self.except_}" if self.except_ else text


@dataclass(frozen=True)
class Option:
    name: str
    value: str = ""

    def __str__(self) -> str:
        return f"{self.name} {self.value}".strip()


@dataclass(frozen=True)
class Rule:
    source: Source
    daemons: PatternList
    clients: PatternList
    options: tuple[Option, ...] = ()
    grants: bool = True  # the verdict when it matches (file default, or allow/deny option)
    text: str = ""  # the rule as written (continuations joined), for the report

    @property
    def twist(self) -> Option | None:
        return next((o for o in self.options if o.name == "twist"), None)


@dataclass(frozen=True)
class TcpWrappers:
    """The rules of hosts.allow then hosts.deny, in file order."""

    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.allow + self.deny

    def __bool__(self) -> bool:
        return bool(self.allow or self.deny)

    def allows(self, daemon: str, address: str, hostname: str | None = None, *,
               user: str | None = None) -> bool:
        """libwrap's decision for a client at `address` (reverse name `hostname`)."""
        client = _Client(ipaddress.ip_address(_strip_brackets(address)), hostname, user)
        for rule in self.rules:
            if _list_matches(rule.daemons, lambda p: _daemon_pattern_matches(p, daemon)) and \
                    _list_matches(rule.clients, client.matches):
                return rule.grants and rule.twist is None
        return True

    def compile(self, daemon: str, service: str | None = None, *,
                names: "HostNames | None" = None) -> "Compiled":
        return compile_rules(self, daemon, service, names=names)


# -- reading ---------------------------------------------------------------------------


def parse_hosts_access(text: str, file: str, *, kind: str) -> tuple[Rule, ...]:
    """The rules of one hosts.allow (`kind="allow"`) or hosts.deny (`kind="deny"`)."""
    if kind not in ("allow", "deny"):
        raise ValueError(f"kind must be 'allow' or 'deny', not {kind!r}")
    rules = []
    for lineno, line in _logical_lines(text):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        rules.append(_parse_rule(line, file, lineno, kind))
    return tuple(rules)


def read_tcpwrappers(etc: str | Path) -> TcpWrappers:
    """hosts.allow and hosts.deny of one /etc directory; a missing file has no rules."""
    etc = Path(etc)
    found = {}
    for kind in ("allow", "deny"):
        path = etc / f"hosts.{kind}"
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except FileNotFoundError:
            text = ""
        found[kind] = parse_hosts_access(text, str(path), kind=kind)
    return TcpWrappers(found["allow"], found["deny"])


HostNames = dict  # ip_address -> the name a reverse lookup gives (lower case)


def parse_hosts_file(text: str) -> HostNames:
    """/etc/hosts as libwrap's reverse lookup sees it: each address's first name (first
    line wins), kept only when that name looks up forward to the same address again
    (libwrap's double check; otherwise the client's name is unknown to it)."""
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


def _logical_lines(text: str):
    """(first line number, text) with backslash-newline continuations joined (xgets)."""
    start, parts = None, []
    for lineno, raw in enumerate(text.splitlines(), 1):
        if start is None:
            start = lineno
        if raw.endswith("\\"):
            parts.append(raw[:-1])
            continue
        parts.append(raw)
        yield start, "".join(parts)
        start, parts = None, []
    if parts:
        yield start, "".join(parts)


def _split_fields(line: str) -> list[tuple[int, str]]:
    """Split at ':' outside [...] (IPv6) and not escaped as '\\:'; keep each column."""
    fields, current, col, depth, i = [], [], 0, 0, 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line) and line[i + 1] == ":":
            current.append(":")
            i += 2
            continue
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        elif ch == ":" and depth == 0:
            fields.append((col, "".join(current)))
            current, col = [], i + 1
            i += 1
            continue
        current.append(ch)
        i += 1
    fields.append((col, "".join(current)))
    return fields


def _parse_list(text: str, file: str, line: int, column: int, what: str) -> PatternList:
    tokens = text.replace(",", " ").split()
    if not tokens:
        raise ConfigError(f"empty {what} list", file, line, column + 1)
    if tokens[0].upper() == "EXCEPT" or tokens[-1].upper() == "EXCEPT":
        raise ConfigError(f"EXCEPT needs a pattern on both sides in the {what} list",
                          file, line, column + 1)
    # Right-associative like libwrap's list_match: a EXCEPT b EXCEPT c = a EXCEPT (b EXCEPT c)
    head: list[str] = []
    for i, tok in enumerate(tokens):
        if tok.upper() == "EXCEPT":
            rest = _parse_list(" ".join(tokens[i + 1:]), file, line, column, what)
            return PatternList(tuple(head), rest)
        head.append(tok)
    return PatternList(tuple(head))


def _parse_rule(line: str, file: str, lineno: int, kind: str) -> Rule:
    fields = _split_fields(line)
    if len(fields) < 2:
        raise ConfigError("missing ':' separator: expected 'daemon_list : client_list "
                          "[: option ...]'", file, lineno, len(line.rstrip()) + 1)
    (dcol, dtext), (ccol, ctext) = fields[0], fields[1]
    daemons = _parse_list(dtext, file, lineno, dcol, "daemon")
    clients = _parse_list(ctext, file, lineno, ccol, "client")
    options = []
    for n, (ocol, otext) in enumerate(fields[2:]):
        name, _, value = otext.strip().partition(" ")
        if "=" in name:
            name, _, rest = name.partition("=")
            value = f"{rest} {value}".strip()
        value = value.strip().removeprefix("=").strip()
        name = name.lower()
        if not name:
            raise ConfigError("empty option", file, lineno, ocol + 1)
        wants = OPTIONS.get(name)
        if wants is None:
            raise ConfigError(f"unknown option {name!r} (hosts_options(5))", file, lineno, ocol + 1)
        if wants == "yes" and not value:
            raise ConfigError(f"option {name!r} needs a value", file, lineno, ocol + 1)
        if wants == "no" and value:
            raise ConfigError(f"option {name!r} takes no value", file, lineno, ocol + 1)
        if name in LAST_ONLY and n != len(fields) - 3:
            raise ConfigError(f"option {name!r} must be the last one in its rule",
                              file, lineno, ocol + 1)
        options.append(Option(name, value))
    grants = kind == "allow"
    for option in options:
        if option.name in ("allow", "deny"):
            grants = option.name == "allow"
    return Rule(Source(file, lineno), daemons, clients, tuple(options), grants,
                " ".join(line.split()))


# -- matching one client ----------------------------------------------------------------

_YES, _NO, _MAYBE = "yes", "no", "maybe"


def _strip_brackets(text: str) -> str:
    return text[1:-1] if text.startswith("[") and text.endswith("]") else text


def _list_matches(plist: PatternList, match) -> bool:
    if not any(match(p) for p in plist.items):
        return False
    return plist.except_ is None or not _list_matches(plist.except_, match)


def _daemon_pattern_matches(pattern: str, daemon: str) -> bool:
    if pattern.upper() == "ALL":
        return True
    name, _, _host = pattern.partition("@")  # server endpoint: not known here, assume it matches
    return name.lower() == daemon.lower() or name.upper() == "ALL"


def _daemon_list_tri(plist: PatternList, daemon: str) -> str:
    """Does the daemon list name `daemon`? `daemon@host` forms are only a maybe."""
    def one(p: str) -> str:
        if "@" in p:
            return _MAYBE if _daemon_pattern_matches(p, daemon) else _NO
        return _YES if _daemon_pattern_matches(p, daemon) else _NO
    results = [one(p) for p in plist.items]
    head = _YES if _YES in results else (_MAYBE if _MAYBE in results else _NO)
    if plist.except_ is None or head is _NO:
        return head
    tail = _daemon_list_tri(plist.except_, daemon)
    if tail is _YES:
        return _NO
    return head if tail is _NO else _MAYBE


@dataclass(frozen=True)
class _Client:
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    hostname: str | None
    user: str | None = None

    def matches(self, pattern: str) -> bool:
        upper = pattern.upper()
        if upper == "ALL":
            return True
        if upper == "KNOWN":
            return self.hostname is not None
        if upper == "UNKNOWN":
            return self.hostname is None
        if upper == "LOCAL":
            return self.hostname is not None and "." not in self.hostname
        if upper == "PARANOID":
            return False  # only with a name/address mismatch, which we are not told about
        if "@" in pattern and not pattern.startswith("@"):
            user, _, host = pattern.partition("@")
            user_ok = user.upper() == "ALL" or (user.upper() == "KNOWN" and self.user is not None) \
                or user == self.user
            return user_ok and self.matches(host)
        if pattern.startswith("@"):
            return False  # NIS netgroups: not available here
        nets = address_pattern(pattern)
        if nets is not None:
            return any(self.address in n for n in nets)
        name = (self.hostname or "").lower()
        if pattern.startswith("."):
            return bool(name) and name.endswith(pattern.lower())
        if any(c in pattern for c in "*?"):
            return fnmatch.fnmatchcase(name, pattern.lower()) or \
                fnmatch.fnmatchcase(str(self.address), pattern)
        return name == pattern.lower()


def address_pattern(pattern: str) -> tuple | None:
    """The networks an address-only pattern stands for, or None for a name pattern.

    Forms: `n.n.n.n`, `n.n.n.` (prefix), `n.n.n.n/m.m.m.m`, `n.n.n.n/len`, `[v6]`,
    `[v6]/len` (also unbracketed v6). A non-contiguous netmask is not a CIDR and is
    reported (None) rather than widened.
    """
    text = pattern
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            return None
        addr, rest = text[1:close], text[close + 1:]
        if rest and not rest.startswith("/"):
            return None
        text = addr + rest
    if text.endswith(".") and text[:-1].replace(".", "").isdigit():
        octets = text[:-1].split(".")
        if not 1 <= len(octets) <= 3 or any(not o or int(o) > 255 for o in octets):
            return None
        octets += ["0"] * (4 - len(octets))
        return (ipaddress.ip_network(f"{'.'.join(octets)}/{8 * len(text[:-1].split('.'))}"),)
    try:
        return (ipaddress.ip_network(text, strict=False),)
    except ValueError:
        pass
    return None


# -- compiling for systemd ---------------------------------------------------------------

ANY = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
NOTHING: tuple = ()


@dataclass(frozen=True)
class _Match:
    """Addresses a pattern matches surely (`sure`) and possibly (`may`); sure <= may."""

    sure: tuple
    may: tuple
    why: tuple[str, ...] = ()  # patterns that made sure != may


# Inside the compiler, the /etc/hosts table travels as a sorted tuple of (address, name)
# so that pattern and list results can be cached: the set arithmetic is the costly part.
_Names = tuple


def _frozen(names: HostNames | None) -> _Names | None:
    if not names:
        return None
    return tuple(sorted(names.items(), key=lambda kv: (kv[0].version, int(kv[0]))))


def _by_name(pattern: str, names: _Names | None, matches, what: str) -> _Match:
    """A pattern on the client's host name. Addresses listed in the host's /etc/hosts
    (looked up there first) have a known name: they surely match or surely do not;
    any other address may have any name in DNS."""
    if not names:
        return _Match(NOTHING, ANY, (f"{pattern} ({what}: needs DNS at connect time)",))
    yes = [ipaddress.ip_network(a) for a, n in names if matches(n)]
    no = [ipaddress.ip_network(a) for a, n in names if not matches(n)]
    shown = ", ".join(str(n.network_address) for n in yes) or "none"
    return _Match(_union(yes), _subtract(ANY, _union(no)),
                  (f"{pattern} ({what}: from /etc/hosts {shown}; other addresses need DNS "
                   "at connect time)",))


@functools.lru_cache(maxsize=4096)
def _pattern_match(pattern: str, names: _Names | None = None) -> _Match:
    upper = pattern.upper()
    if upper == "ALL":
        return _Match(ANY, ANY)
    if upper == "LOCAL":
        return _by_name(pattern, names, lambda n: "." not in n, "host name without a dot")
    if upper == "KNOWN":
        return _by_name(pattern, names, lambda n: True, "known host name")
    if upper in ("UNKNOWN", "PARANOID"):  # an /etc/hosts address is known and consistent
        return _by_name(pattern, names, lambda n: False, "depends on the client's host name")
    if pattern.startswith("@"):
        return _Match(NOTHING, ANY, (f"{pattern} (NIS netgroup)",))
    if "@" in pattern:
        _user, _, host = pattern.partition("@")
        inner = _pattern_match(host, names)
        return _Match(NOTHING, inner.may, inner.why + (f"{pattern} (ident user lookup)",))
    if pattern.startswith("/"):
        return _Match(NOTHING, ANY, (f"{pattern} (patterns read from a file at connect time)",))
    nets = address_pattern(pattern)
    if nets is not None:
        return _Match(nets, nets)
    if "/" in pattern and pattern.split("/")[0].replace(".", "").isdigit():
        return _Match(NOTHING, ANY, (f"{pattern} (netmask is not a CIDR prefix)",))
    if any(c in pattern for c in "*?"):  # may also match the address as a string
        return _Match(NOTHING, ANY, (f"{pattern} (host name wildcard)",))
    lower = pattern.lower()
    if pattern.startswith("."):
        return _by_name(pattern, names, lambda n: n.endswith(lower), "domain name")
    return _by_name(pattern, names, lambda n: n == lower, "host name")


@functools.lru_cache(maxsize=4096)
def _list_match(plist: PatternList, names: _Names | None = None) -> _Match:
    parts = [_pattern_match(p, names) for p in plist.items]
    sure = _union(*(m.sure for m in parts))
    may = _union(*(m.may for m in parts))
    why = tuple(w for m in parts for w in m.why)
    if plist.except_ is None:
        return _Match(sure, may, why)
    exc = _list_match(plist.except_, names)
    return _Match(_subtract(sure, exc.may), _subtract(may, exc.sure), why + exc.why)


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


def compile_rules(wrappers: TcpWrappers, daemon: str, service: str | None = None, *,
                  names: HostNames | None = None) -> Compiled:
    """The rules for one daemon, evaluated twice: strictly (a granting rule grants what
    it surely matches, a refusing rule refuses what it may match) and widely (the other
    way round). Whatever libwrap decides at connect time lies between the two; the
    strict result is what systemd gets, and it is exact when both agree."""
    frozen = _frozen(names)
    applied, uncertain_by_rule = [], []
    strict, wide = (ANY, NOTHING), (ANY, NOTHING)  # (undecided, granted)
    for rule in wrappers.rules:
        tri = _daemon_list_tri(rule.daemons, daemon)
        if tri is _NO:
            continue
        applied.append(rule)
        match = _list_match(rule.clients, frozen)
        sure = match.sure if tri is _YES else NOTHING
        grants = rule.grants and rule.twist is None
        uncertain_by_rule.append((rule, _intersect(_subtract(match.may, sure), strict[0]),
                                  grants, match.why + ((f"daemon pattern {rule.daemons} (server "
                                                        "address)",) if tri is _MAYBE else ())))
        strict = _step(strict, sure if grants else match.may, grants)
        wide = _step(wide, match.may if grants else sure, grants)
    strict_granted = _union(strict[1], strict[0])
    lost = _subtract(_union(wide[1], wide[0]), strict_granted)
    findings: list[Finding] = []
    for rule, uncertain, grants, why in uncertain_by_rule:
        if _intersect(uncertain, lost):
            side = ("not granted: only the addresses it surely matches are let in" if grants
                    else "refused for every address it might match")
            findings.append(Finding(rule.source, Severity.WARNING,
                                    f"tcp_wrappers rule '{rule.text}' cannot be expressed as "
                                    f"IPAddressAllow/Deny: {'; '.join(why)}; made stricter "
                                    f"({side})", service))
        findings.extend(_option_findings(rule, service))
    allow = None if _covers_any(strict_granted) else tuple(str(n) for n in strict_granted)
    return Compiled(allow, not lost, tuple(applied), tuple(findings))


def _step(state: tuple, matched: tuple, grants: bool) -> tuple:
    """One first-match rule over (undecided, granted) address sets."""
    undecided, granted = state
    decided = _intersect(matched, undecided)
    return _subtract(undecided, matched), (_union(granted, decided) if grants else granted)


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
        out.append(Finding(rule.source, Severity.WARNING, msg, service))
    return out


# -- address sets ---------------------------------------------------------------------
# Collapsed tuples of ip_network. The CIDR subtraction is addresses.py's (its public
# compile_allow: only_from minus no_access), fed explicit a.b.c.d/len forms so that
# xinetd's wildcard rules for trailing .0 octets never apply.


def _union(*sets) -> tuple:
    return _union_cached(tuple(tuple(s) for s in sets))


@functools.lru_cache(maxsize=16384)
def _union_cached(sets: tuple) -> tuple:
    nets = [n for s in sets for n in s]
    return (tuple(ipaddress.collapse_addresses(n for n in nets if n.version == 4))
            + tuple(ipaddress.collapse_addresses(n for n in nets if n.version == 6)))


def _subtract(a, b) -> tuple:
    return _subtract_cached(tuple(a), tuple(b))


@functools.lru_cache(maxsize=16384)
def _subtract_cached(a: tuple, b: tuple) -> tuple:
    if not a:
        return NOTHING
    if not b:
        return _union(a)
    allowed = addresses.compile_allow(tuple(_cidr(n) for n in a), tuple(_cidr(n) for n in b)).allow
    return _union([ipaddress.ip_network(x) for x in allowed or ()])


def _cidr(net) -> str:
    return f"{net.network_address}/{net.prefixlen}"


def _intersect(a, b) -> tuple:
    return _subtract(a, _subtract(a, b))


def _covers_any(nets) -> bool:
    return not _subtract(ANY, nets)


def intersect_allow(a: tuple[str, ...] | None, b: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """Two IPAddressAllow= sets that must both admit a client (None: no restriction)."""
    if a is None or b is None:
        return b if a is None else a
    nets = _intersect(_union([ipaddress.ip_network(x, strict=False) for x in a]),
                      _union([ipaddress.ip_network(x, strict=False) for x in b]))
    return tuple(str(n) for n in nets)
