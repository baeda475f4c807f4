"""xinetd address lists (`only_from`, `no_access`): parsed, compiled for systemd, checked.

Three uses, one parser:

* `parse_address(text)` reads one list entry in every form xinetd.conf(5) accepts, with
  the packaged xinetd's own rules (openSUSE fork, `src/addr.c`):

  ==================  ==================================================================
  ``10.1.2.3``        that host (``/32``)
  ``10.1.0.0``        trailing ``.0`` octets are wildcards: ``10.1.0.0/16``
  ``0.0.0.0``         every IPv4 address (``0.0.0.0/0``)
  ``10.1.{2,3}``      factorised: ``10.1.2.0/24`` and ``10.1.3.0/24`` (the part in
                      braces is the last octet written; what follows it is a wildcard)
  ``10.0.0.0/8``      CIDR, IPv4 or IPv6 (``2001:db8::/32``); a bare IPv6 address is
                      that host, ``::`` is every IPv6 address
  ``loopback``        a network name from /etc/networks, converted as glibc's
                      getnetbyname() + xinetd do it (``127`` is ``127.0.0.0/8``, but an
                      entry written ``127.0.0.0`` is the single address 127.0.0.0:
                      xinetd's quirk, kept so that access is exactly what it was)
  ``host.example``    a host name: xinetd compares the client's reverse-DNS name
  ``.example.com``    a domain: the client's reverse-DNS name ends with it
  ==================  ==================================================================

  Bad syntax raises `AddressError` (a ValueError); the xinetd reader turns it into a
  ConfigError naming file and line.

* `compile_allow(only_from, no_access)` turns xinetd's precedence into systemd's. xinetd
  refuses a client that matches `no_access` (even when it also matches `only_from`) and,
  when `only_from` is set, one that does not match it. systemd allows what matches
  `IPAddressAllow=` whatever `IPAddressDeny=` says. So the socket unit gets
  `IPAddressDeny=any` plus `IPAddressAllow=` the CIDR difference only_from - no_access::

      access = compile_allow(("10.0.0.0",), ("10.1.2.3",))
      access.allow        # ('10.0.0.0/16', '10.1.0.0/23', ..., '10.1.2.2/32', ...)
      access.unexpressed  # () : entries that could not become CIDRs (names)
      access.notes        # one sentence per approximation, for the report
      access.stricter     # True when some client xinetd let in is now refused
      allow, unexpressed = access          # unpacks as a pair, too

  `allow` is None when there is no restriction at all (neither list set): emit nothing.
  An empty tuple means nobody (xinetd's `only_from =` with no value): `IPAddressDeny=any`
  alone. Host and domain names cannot be BPF rules. Given `resolve=` (a function from a
  host name to its addresses), host names are resolved now and the
  staleness is noted; otherwise, and always for `.domain` entries, they are reported in
  `unexpressed`, and the result never widens access: an unmatched `only_from` name simply
  lets nobody in through that entry, and a `no_access` name that cannot be matched makes
  the allowed set empty (nobody), with a note saying why.

* `AccessList(only_from, no_access).allows(ip)` is xinetd's own check at accept time, for
  the superserver: names included (one reverse lookup per check, only when the lists
  hold names), v4-mapped IPv6 clients matched against IPv4 entries as xinetd does on a
  dual-stack socket.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ANY_V4 = ipaddress.IPv4Network("0.0.0.0/0")
ANY_V6 = ipaddress.IPv6Network("::/0")

NETWORKS_PATH = "/etc/networks"


class AddressError(ValueError):
    """An only_from / no_access entry that xinetd would refuse to parse."""


@dataclass(frozen=True)
class AddressEntry:
    """One parsed list entry. Numeric forms have `networks`; names have `name`."""

    text: str  # as written
    kind: str  # "numeric", "cidr", "factorized", "network", "host", "domain"
    networks: tuple[IPNetwork, ...] = ()
    name: str | None = None  # lower-cased host name, or ".domain"

    @property
    def is_name(self) -> bool:
        return self.kind in ("host", "domain")


# -- parsing ---------------------------------------------------------------------------

_DOTTED = re.compile(r"[0-9]+(\.[0-9]+){0,3}")
_FACTORIZED = re.compile(r"((?:[0-9]+\.){0,3})\{([0-9,]*)\}")


def parse_address(text: str, *, networks: Mapping[str, int] | None = None) -> AddressEntry:
    """Parse one only_from / no_access entry (see the module docstring for the forms).

    `networks` maps /etc/networks names to their net numbers (`load_networks()`); when
    None the system file is read on first need.
    """
    if networks is None:
        return _parse_cached(text)  # the same defaults come back for every service
    return _parse(text, networks)


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> AddressEntry:
    return _parse(text, None)


def _parse(text: str, networks: Mapping[str, int] | None) -> AddressEntry:
    if not text:
        raise AddressError("empty address")
    if "," in text and "{" not in text:
        # xinetd's own message: lists are space-separated
        raise AddressError(f"address {text!r} has a comma in it: separate entries by spaces")
    if "/" in text:
        return AddressEntry(text, "cidr", (_parse_cidr(text),))
    if "{" in text:
        return AddressEntry(text, "factorized", _parse_factorized(text))
    if ":" in text:
        try:
            addr6 = ipaddress.IPv6Address(text)
        except ValueError:
            raise AddressError(f"bad IPv6 address {text!r}") from None
        # xinetd: '::' is a zero mask (every IPv6 client); any other address is exact
        net = ANY_V6 if int(addr6) == 0 else ipaddress.IPv6Network(addr6)
        return AddressEntry(text, "numeric", (net,))
    if _DOTTED.fullmatch(text):
        return AddressEntry(text, "numeric", (_wildcard_v4(text),))
    if text.startswith("."):
        if text.strip(".0123456789") == "":
            raise AddressError(f"bad domain {text!r}")
        return AddressEntry(text, "domain", name=text.lower())
    table = load_networks() if networks is None else networks
    if text in table:
        return AddressEntry(text, "network", (_net_number_to_network(text, table[text]),))
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", text):
        raise AddressError(f"cannot parse address {text!r}")
    return AddressEntry(text, "host", name=text.lower().rstrip("."))


def parse_addresses(texts: Sequence[str], *, networks: Mapping[str, int] | None = None
                    ) -> tuple[AddressEntry, ...]:
    return tuple(parse_address(t, networks=networks) for t in texts)


def _inet_aton(text: str) -> int:
    try:
        return int.from_bytes(socket.inet_aton(text), "big")
    except OSError:
        raise AddressError(f"bad IPv4 address {text!r}") from None


def _wildcard_v4(text: str) -> ipaddress.IPv4Network:
    """xinetd numeric_addr(): the trailing zero octets of the address are wildcards."""
    addr = _inet_aton(text)
    if addr == 0:
        return ANY_V4
    prefix = 32
    while addr & ((1 << (32 - prefix + 8)) - 1) == 0:
        prefix -= 8
    return ipaddress.IPv4Network((addr, prefix))


def _parse_cidr(text: str) -> IPNetwork:
    base, _, bits = text.partition("/")
    if not bits.isdigit():
        raise AddressError(f"bad prefix length in {text!r}")
    try:
        # strict=False: xinetd masks both sides when matching, so host bits are ignored
        net = ipaddress.ip_network(f"{base}/{int(bits)}", strict=False)
    except ValueError:
        raise AddressError(f"bad address/prefix {text!r}") from None
    return net


def _parse_factorized(text: str) -> tuple[ipaddress.IPv4Network, ...]:
    """xinetd factorized_addr(): `a.b.{c,d}`: each value is the octet after the prefix."""
    match = _FACTORIZED.fullmatch(text)
    if not match:
        raise AddressError(f"bad factorised address {text!r}: the {{...}} part must be last")
    prefix_octets = [int(o) for o in match.group(1).split(".")[:-1]] if match.group(1) else []
    values = match.group(2).split(",")
    if "" in values:
        raise AddressError(f"bad factorised address {text!r}: empty value")
    if len(prefix_octets) > 3 or any(o > 255 for o in prefix_octets):
        raise AddressError(f"bad factorised address {text!r}")
    shift = 24 - 8 * len(prefix_octets)
    base = 0
    for octet in prefix_octets:
        base = base * 256 + octet
    base <<= shift + 8
    nets = []
    for value in values:
        number = int(value)
        if number > 255:
            raise AddressError(f"bad factorised address {text!r}: {number} is not an octet")
        nets.append(ipaddress.IPv4Network((base + (number << shift), 32 - shift)))
    return tuple(nets)


def _net_number_to_network(name: str, number: int) -> ipaddress.IPv4Network:
    """xinetd net_addr(): the mask follows the size of the net number, as classful nets."""
    if number == 0:
        raise AddressError(f"network {name!r} has net number 0, which xinetd refuses")
    for limit, prefix, shift in ((0xFF, 8, 24), (0xFFFF, 16, 16), (0xFFFFFF, 24, 8),
                                 (0xFFFFFFFF, 32, 0)):
        if number <= limit:
            return ipaddress.IPv4Network(((number << shift) & 0xFFFFFFFF, prefix))
    raise AddressError(f"network {name!r}: net number {number} out of range")


def inet_network(text: str) -> int:
    """glibc inet_network(3): `a.b.c` packs the parts with the last one lowest."""
    value = 0
    for part in text.split("."):
        if not part:
            raise ValueError(text)
        value = (value << 8) | (int(part, 0) & 0xFF)
    return value


def parse_networks(text: str) -> dict[str, int]:
    """/etc/networks (networks(5)): `name number [aliases]`, `#` comments."""
    table: dict[str, int] = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        try:
            number = inet_network(words[1])
        except ValueError:
            continue  # getnetbyname skips what it cannot read
        for name in [words[0], *words[2:]]:
            table.setdefault(name, number)
    return table


_NETWORKS_CACHE: dict[str, dict[str, int]] = {}


def load_networks(path: str | Path = NETWORKS_PATH) -> dict[str, int]:
    key = str(path)
    if key not in _NETWORKS_CACHE:
        try:
            _NETWORKS_CACHE[key] = parse_networks(Path(path).read_text(errors="replace"))
        except OSError:
            _NETWORKS_CACHE[key] = {}
    return _NETWORKS_CACHE[key]


# -- compiling for systemd -----------------------------------------------------------------

@dataclass(frozen=True)
class CompiledAccess:
    """only_from / no_access in systemd's terms (see the module docstring)."""

    allow: tuple[str, ...] | None  # IPAddressAllow= entries, with IPAddressDeny=any
    unexpressed: tuple[str, ...] = ()  # entries that could not become CIDRs
    notes: tuple[str, ...] = ()  # one sentence per approximation
    stricter: bool = False  # some client that xinetd admitted is refused now

    def __iter__(self) -> Iterator:
        return iter((self.allow, self.unexpressed))


def compile_allow(only_from: Sequence[str] | None, no_access: Sequence[str] = (), *,
                  resolve: Callable[[str], Sequence[str]] | None = None,
                  networks: Mapping[str, int] | None = None) -> CompiledAccess:
    """The allowed set, only_from minus no_access by CIDR subtraction (xinetd precedence)."""
    if only_from is None and not no_access:
        return CompiledAccess(None)
    if resolve is None and networks is None:
        return _compile_cached(None if only_from is None else tuple(only_from), tuple(no_access))
    return _compile(only_from, no_access, resolve, networks)


@functools.lru_cache(maxsize=4096)
def _compile_cached(only_from: tuple[str, ...] | None, no_access: tuple[str, ...]
                    ) -> CompiledAccess:
    return _compile(only_from, no_access, None, None)


def _compile(only_from: Sequence[str] | None, no_access: Sequence[str],
             resolve: Callable[[str], Sequence[str]] | None,
             networks: Mapping[str, int] | None) -> CompiledAccess:
    notes: list[str] = []
    unexpressed: list[str] = []
    stricter = False

    def numeric(entry: AddressEntry, role: str) -> list[IPNetwork] | None:
        """The entry's networks, resolving names when allowed; None when impossible."""
        if not entry.is_name:
            return list(entry.networks)
        if entry.kind == "host" and resolve is not None:
            found = [ipaddress.ip_network(a) for a in resolve(entry.name or entry.text)]
            if found:
                notes.append(f"{role} host {entry.text} resolved now to "
                             f"{', '.join(_fmt(n) for n in found)}; re-run the conversion "
                             "if its addresses change (xinetd matched its reverse-DNS name)")
                return found
        unexpressed.append(entry.text)
        return None

    if only_from is None:
        allowed: list[IPNetwork] = [ANY_V4, ANY_V6]
    else:
        allowed = []
        for entry in parse_addresses(only_from, networks=networks):
            nets = numeric(entry, "only_from")
            if nets is None:
                stricter = True
                what = "domain" if entry.kind == "domain" else "host name"
                notes.append(f"only_from {what} {entry.text} cannot be a systemd address "
                             "rule: clients matching only through it are refused (stricter "
                             "than xinetd); list their addresses instead")
            else:
                allowed.extend(nets)
    denied: list[IPNetwork] = []
    nobody = False
    for entry in parse_addresses(no_access, networks=networks):
        nets = numeric(entry, "no_access")
        if nets is None:
            what = "domain" if entry.kind == "domain" else "host name"
            if allowed:
                stricter = True
            notes.append(f"no_access {what} {entry.text} cannot be a systemd address rule: "
                         "to never widen access, nobody is let in (stricter than xinetd); "
                         "replace it with addresses, or run the service under the "
                         "suite's superserver, which checks names as xinetd does")
            nobody = True
            continue
        denied.extend(nets)
    if nobody:
        allowed = []
    ranges = _subtract_ranges(_merge([_range(n) for n in allowed]),
                              _merge([_range(n) for n in denied]))
    return CompiledAccess(_format_ranges(ranges), tuple(unexpressed), tuple(notes), stricter)


# CIDR arithmetic on integer ranges: a converter meets the same lists thousands of times
# (defaults apply to every service), and ipaddress' own exclude/collapse is ~50x slower.
_Range = tuple[int, int, int]  # (version, first, last), inclusive


def _range(net: IPNetwork) -> _Range:
    first = int(net.network_address)
    return (net.version, first, first + net.num_addresses - 1)


def _merge(ranges: list[_Range]) -> list[_Range]:
    merged: list[_Range] = []
    for version, first, last in sorted(ranges):
        if merged and merged[-1][0] == version and first <= merged[-1][2] + 1:
            if last > merged[-1][2]:
                merged[-1] = (version, merged[-1][1], last)
        else:
            merged.append((version, first, last))
    return merged


def _subtract_ranges(allowed: list[_Range], denied: list[_Range]) -> list[_Range]:
    result: list[_Range] = []
    for version, first, last in allowed:
        pieces = [(first, last)]
        for d_version, d_first, d_last in denied:
            if d_version != version:
                continue
            cut = []
            for a, b in pieces:
                if d_last < a or d_first > b:
                    cut.append((a, b))
                    continue
                if a < d_first:
                    cut.append((a, d_first - 1))
                if d_last < b:
                    cut.append((d_last + 1, b))
            pieces = cut
        result.extend((version, a, b) for a, b in pieces)
    return result


def _cidrs(r: _Range) -> list[IPNetwork]:
    """The fewest CIDR blocks covering exactly one range."""
    version, first, last = r
    bits = 32 if version == 4 else 128
    make = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    blocks = []
    while first <= last:
        size = (first & -first) if first else 1 << bits
        while size > last - first + 1:
            size >>= 1
        blocks.append(make((first, bits - size.bit_length() + 1)))
        first += size
    return blocks


def _fmt(net: IPNetwork) -> str:
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def _format_ranges(ranges: list[_Range]) -> tuple[str, ...]:
    return tuple(_fmt(net) for r in _merge(ranges) for net in _cidrs(r))


# -- the runtime check ---------------------------------------------------------------------

def reverse_name(ip: str) -> str | None:
    """The client's reverse-DNS name, as xinetd asks for it (NI_NAMEREQD)."""
    try:
        return socket.getnameinfo((ip, 0), socket.NI_NAMEREQD)[0]
    except (socket.gaierror, socket.herror, OSError):
        return None


@dataclass(frozen=True)
class _Compiled:
    v4: tuple[tuple[int, int], ...]  # (network, mask) as integers: the hot path
    v6: tuple[tuple[int, int], ...]
    hosts: frozenset[str]
    domains: tuple[str, ...]

    @classmethod
    def of(cls, entries: Sequence[AddressEntry]) -> "_Compiled":
        v4, v6 = [], []
        for entry in entries:
            for net in entry.networks:
                pair = (int(net.network_address), int(net.netmask))
                (v4 if net.version == 4 else v6).append(pair)
        return cls(tuple(v4), tuple(v6),
                   frozenset(e.name for e in entries if e.kind == "host" and e.name),
                   tuple(e.name for e in entries if e.kind == "domain" and e.name))

    @property
    def has_names(self) -> bool:
        return bool(self.hosts or self.domains)

    def match(self, version: int, value: int, mapped_v4: int | None, name: str | None) -> bool:
        if version == 4 or mapped_v4 is not None:
            v4 = value if version == 4 else mapped_v4
            if any(v4 & mask == net for net, mask in self.v4):
                return True
        if version == 6 and any(value & mask == net for net, mask in self.v6):
            return True
        if name is not None:
            lowered = name.lower().rstrip(".")
            if lowered in self.hosts:
                return True
            if any(lowered.endswith(d) for d in self.domains):
                return True
        return False


@dataclass(frozen=True)
class AccessList:
    """xinetd's address check (access.c remote_address_check) for one service."""

    only_from: tuple[str, ...] | None = None
    no_access: tuple[str, ...] = ()
    networks: Mapping[str, int] | None = field(default=None, compare=False)
    reverse_lookup: Callable[[str], str | None] = field(default=reverse_name, compare=False)

    def __post_init__(self) -> None:
        only = None if self.only_from is None else _Compiled.of(
            parse_addresses(self.only_from, networks=self.networks))
        deny = _Compiled.of(parse_addresses(self.no_access, networks=self.networks))
        object.__setattr__(self, "_only", only)
        object.__setattr__(self, "_deny", deny)

    def allows(self, ip: str) -> bool:
        """True when xinetd would let a client with this source address in."""
        only: _Compiled | None = self._only  # type: ignore[attr-defined]
        deny: _Compiled = self._deny  # type: ignore[attr-defined]
        if only is None and not self.no_access:
            return True
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
        value = int(addr)
        mapped = addr.ipv4_mapped if addr.version == 6 else None
        mapped_v4 = int(mapped) if mapped is not None else None
        name = None
        if deny.has_names or (only is not None and only.has_names):
            name = self.reverse_lookup(str(mapped or addr))
        if deny.match(addr.version, value, mapped_v4, name):
            return False
        if only is not None and not only.match(addr.version, value, mapped_v4, name):
            return False
        return True
