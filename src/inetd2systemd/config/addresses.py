"""Address sets, and xinetd's address lists (`only_from`, `no_access`).

**Address sets.** `AddressSet` is the one piece of CIDR arithmetic in the suite: a set of
IPv4 and IPv6 addresses kept as sorted, disjoint integer ranges, with union, difference
and intersection in time linear in the ranges, `first_match` (the first rule that covers
each address decides it, for ordered rule lists such as hosts.allow) and the fewest CIDR
blocks for systemd's `IPAddressAllow=`. tcp_wrappers (`config.tcpwrappers`) and xinetd's
lists both compile through it.

**xinetd's lists.** `parse_address(text)` reads one list entry as the packaged xinetd
(openSUSE's 2.3.15, `addr.c`) does, trying its readers in its order:

  ==================  ==================================================================
  ``10.1.2.3``        that host (glibc's numeric forms too: ``127.1``, ``010.0.0.1``)
  ``10.1.0.0``        trailing zero octets are wildcards: ``10.1.0.0/16``
  ``0.0.0.0``         every IPv4 address
  ``2001:db8::1``     that host; ``::`` is the address ``::`` only (no client has it)
  ``host.example``    the client's reverse-DNS name
  ``.example.com``    a domain: the reverse-DNS name ends with it
  ``10.0.0.0/8``      address/bits, host bits ignored; ``/32`` and more is one host; an
                      IPv6 ``/128`` (or more) matches nothing (xinetd makes it a host-name
                      entry without a name); text after the number is ignored
  ``10.1.{2,3}``      factorised: ``10.1.2.0/24`` and ``10.1.3.0/24``, with xinetd's
                      arithmetic (``127.0.{256}`` is ``127.1.0.0/24``)
  ``loopback``        a network name from /etc/networks, made classful as xinetd does
  ==================  ==================================================================

  What xinetd cannot read at all it logs ("failed to parse") and ignores: such an entry
  comes back with kind "ignored" and matches nothing. What makes xinetd disable the
  service (a comma outside braces, a malformed factorised form) raises `AddressError`.

**Families.** xinetd compares an IPv4 client on an IPv4 socket with the IPv4 entries
only. On a dual-stack socket the same client is the IPv6 address ``::ffff:a.b.c.d``: the
IPv4 entries match it through its IPv4 part, and so do IPv6 entries that cover it
(``::ffff:10.0.0.1``, ``::ffff:10.0.0.0/104``, even ``::/0``). systemd's BPF filter sees
the IPv4 packet either way. So `compile_allow(only_from, no_access, families=...)`
counts a no_access IPv6 entry's mapped part as IPv4 denials unless every socket is
IPv4-only or IPv6-only, and an only_from entry's mapped part as IPv4 grants only when
every socket is dual-stack: exact where the family is known, stricter where it is not.

**Precedence.** xinetd refuses a client that matches `no_access` (even when it also
matches `only_from`) and, when `only_from` is set, one that does not match it. systemd
allows what matches `IPAddressAllow=` whatever `IPAddressDeny=` says. So the socket gets
`IPAddressDeny=any` plus `IPAddressAllow=` only_from minus no_access::

    access = compile_allow(("10.0.0.0",), ("10.1.2.3",))
    access.allow        # ('10.0.0.0/16', '10.1.0.0/23', ..., '10.1.2.2/31', ...)
    access.unexpressed  # () : entries that could not become address rules (names)
    access.notes        # one sentence per approximation, for the report
    access.stricter     # True when some client xinetd let in is now refused

`allow` is None when there is no restriction (neither list set); an empty tuple means
nobody. Host and domain names cannot be BPF rules: given `resolve=` (name -> addresses)
host names are resolved now and the staleness is noted; otherwise, and always for
`.domain` entries, they are reported and never widen access (an only_from name adds
nobody; a no_access name makes the allowed set empty).

**At accept time** `AccessList(only_from, no_access).allows(ip, mapped=...)` is xinetd's
own check (access.c) for the superserver, names included.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import ipaddress
import re
import socket
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..model import Family

# -- address sets -------------------------------------------------------------------------
# One integer line holds both families: IPv4 addresses are themselves (small integers, the
# fast case), IPv6 addresses sit above them with a gap, so that no range can run from one
# family into the other.

V4_SIZE = 1 << 32
V4_LAST = V4_SIZE - 1
V6_BASE = 1 << 33
V6_SIZE = 1 << 128
V6_LAST = V6_BASE + V6_SIZE - 1
MAPPED_FIRST = 0xFFFF << 32  # ::ffff:0.0.0.0, the first IPv4-mapped IPv6 address
MAPPED_LAST = MAPPED_FIRST + V4_SIZE - 1

_Range = tuple[int, int]  # first, last (inclusive)


def point(ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    """An address's place on the line. IPv4-mapped IPv6 text stays IPv6 here: whether it
    means the IPv4 client is the caller's decision (see `client_address`)."""
    address = ip if not isinstance(ip, str) else ipaddress.ip_address(ip.split("%", 1)[0])
    return int(address) if address.version == 4 else V6_BASE + int(address)


def client_address(ip: str) -> str:
    """The peer as libwrap and xinetd name it: an IPv4-mapped IPv6 peer (an IPv4 client
    on a dual-stack socket) is its IPv4 address; a link-local scope is dropped."""
    text = ip.split("%", 1)[0]
    if text[:7].lower() == "::ffff:" and "." in text:
        return text[7:]
    return text


class AddressSet:
    """An immutable set of addresses of both families, as sorted disjoint ranges."""

    __slots__ = ("ranges", "_firsts")

    def __init__(self, ranges: Iterable[_Range] = ()) -> None:
        self.ranges: tuple[_Range, ...] = _normalized(ranges)
        self._firsts: list[int] | None = None

    @classmethod
    def _trusted(cls, ranges: Sequence[_Range]) -> "AddressSet":
        made = cls.__new__(cls)
        made.ranges = tuple(ranges)
        made._firsts = None
        return made

    # -- building ----------------------------------------------------------------------

    @classmethod
    def v4(cls, first: int, last: int | None = None) -> "AddressSet":
        return cls._trusted(((first, first if last is None else last),))

    @classmethod
    def v6(cls, first: int, last: int | None = None) -> "AddressSet":
        return cls._trusted(((V6_BASE + first, V6_BASE + (first if last is None else last)),))

    @classmethod
    def prefix(cls, version: int, value: int, bits: int) -> "AddressSet":
        """value/bits, host bits ignored."""
        width = 32 if version == 4 else 128
        size = 1 << (width - bits)
        first = value & ~(size - 1) & ((1 << width) - 1)
        return cls.v4(first, first + size - 1) if version == 4 else cls.v6(first, first + size - 1)

    @classmethod
    def masked(cls, value: int, mask: int, limit: int = 256) -> "AddressSet | None":
        """The IPv4 addresses a with a & mask == value (libwrap's net/mask, whatever the
        mask). None when that takes more than `limit` blocks (a mask with holes)."""
        if value & ~mask & 0xFFFFFFFF:
            return NOTHING  # bits outside the mask: nothing can equal it
        if mask == 0:
            return ANY_V4
        lowest = (mask & -mask).bit_length() - 1  # below it, every bit is free: one block
        holes = [b for b in range(lowest, 32) if not mask >> b & 1]
        if 1 << len(holes) > limit:
            return None
        firsts = [value]
        for bit in holes:
            firsts += [f | (1 << bit) for f in firsts]
        block = 1 << lowest
        return cls((f, f + block - 1) for f in firsts)

    @classmethod
    def of(cls, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> "AddressSet":
        first = int(net.network_address)
        last = first + net.num_addresses - 1
        return cls.v4(first, last) if net.version == 4 else cls.v6(first, last)

    @classmethod
    def parse(cls, texts: Iterable[str]) -> "AddressSet":
        """From CIDR texts as systemd reads them (a bare address is one host)."""
        return union(*(cls.of(ipaddress.ip_network(t, strict=False)) for t in texts))

    # -- reading -----------------------------------------------------------------------

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AddressSet) and self.ranges == other.ranges

    def __hash__(self) -> int:
        return hash(self.ranges)

    def __repr__(self) -> str:
        return f"AddressSet({' '.join(self.texts()) or 'nothing'})"

    def __contains__(self, ip: object) -> bool:
        where = ip if isinstance(ip, int) else point(ip)  # type: ignore[arg-type]
        index = bisect.bisect_right(self._starts(), where) - 1
        return index >= 0 and self.ranges[index][1] >= where

    def _starts(self) -> list[int]:
        if self._firsts is None:
            self._firsts = [first for first, _ in self.ranges]
        return self._firsts

    @property
    def ipv4(self) -> "AddressSet":
        return self & ANY_V4

    @property
    def ipv6(self) -> "AddressSet":
        return self & ANY_V6

    def blocks(self) -> Iterator[tuple[int, int, int]]:
        """(version, first address, prefix length) of the fewest CIDR blocks, IPv4 first."""
        for first, last in self.ranges:
            if first <= V4_LAST:
                yield from ((4, f, p) for f, p in _blocks(first, last, 32))
            else:
                yield from ((6, f, p) for f, p in _blocks(first - V6_BASE, last - V6_BASE, 128))

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [(ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network)((f, p))
                for version, f, p in self.blocks()]

    def texts(self) -> tuple[str, ...]:
        """CIDR texts for IPAddressAllow=: one host is its bare address."""
        return tuple(_cidr_text(version, first, prefix, bare=True)
                     for version, first, prefix in self.blocks())

    def xinetd_entries(self, families: Collection[Family] | None = None) -> tuple[str, ...]:
        """only_from entries that xinetd (and `compile_allow`) read back as exactly this
        set on sockets of these families: IPv4 always with its /bits (a bare 10.1.2.0
        would be a /24 wildcard), an IPv6 host bare (xinetd reads /128 as nothing), and
        no IPv6 block whose mapped part would add IPv4 clients on a dual-stack socket."""
        v6 = self.ipv6
        if _maps_grants(families) and (mapped_down(v6) - self.ipv4):
            v6 = v6 - MAPPED
        return tuple(_cidr_text(version, first, prefix, bare=version == 6)
                     for version, first, prefix in (self.ipv4 | v6).blocks())

    # -- combining ---------------------------------------------------------------------

    def __or__(self, other: "AddressSet") -> "AddressSet":
        if not other.ranges:
            return self
        if not self.ranges:
            return other
        return AddressSet(self.ranges + other.ranges)

    def __sub__(self, other: "AddressSet") -> "AddressSet":
        if not self.ranges or not other.ranges:
            return self
        if self.ranges is other.ranges:
            return NOTHING
        starts, cuts = other._starts(), other.ranges
        out: list[_Range] = []
        for first, last in self.ranges:
            index = max(0, bisect.bisect_right(starts, first) - 1)
            while index < len(cuts) and cuts[index][0] <= last:
                cut_first, cut_last = cuts[index]
                if cut_last >= first:
                    if cut_first > first:
                        out.append((first, cut_first - 1))
                    first = cut_last + 1
                    if first > last:
                        break
                index += 1
            if first <= last:
                out.append((first, last))
        return AddressSet._trusted(out)

    def __and__(self, other: "AddressSet") -> "AddressSet":
        small, large = (self, other) if len(self.ranges) <= len(other.ranges) else (other, self)
        if not small.ranges:
            return NOTHING
        starts, ranges = large._starts(), large.ranges
        out: list[_Range] = []
        for first, last in small.ranges:
            index = max(0, bisect.bisect_right(starts, first) - 1)
            while index < len(ranges) and ranges[index][0] <= last:
                lo, hi = max(first, ranges[index][0]), min(last, ranges[index][1])
                if lo <= hi:
                    out.append((lo, hi))
                index += 1
        return AddressSet._trusted(out)

    def shifted_into(self, first: int, last: int, offset: int) -> "AddressSet":
        """The part inside [first, last], moved by `offset`."""
        window = self & AddressSet._trusted(((first, last),))
        return AddressSet._trusted([(a + offset, b + offset) for a, b in window.ranges])


def _normalized(ranges: Iterable[_Range]) -> tuple[_Range, ...]:
    merged: list[list[int]] = []
    for first, last in sorted(ranges):
        if first > last:
            continue
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1][1] = last
        else:
            merged.append([first, last])
    return tuple((a, b) for a, b in merged)


def union(*sets: AddressSet) -> AddressSet:
    present = [s for s in sets if s.ranges]
    if len(present) <= 1:
        return present[0] if present else NOTHING
    return AddressSet(r for s in present for r in s.ranges)


def _blocks(first: int, last: int, width: int) -> Iterator[tuple[int, int]]:
    """(first, prefix length) of the fewest CIDR blocks covering exactly [first, last]."""
    while first <= last:
        size = (first & -first) if first else 1 << width
        while size > last - first + 1:
            size >>= 1
        yield first, width - size.bit_length() + 1
        first += size


def _cidr_text(version: int, first: int, prefix: int, bare: bool) -> str:
    """a.b.c.d/len or v6/len; `bare`: a single host without its length."""
    if version == 4:
        text = ".".join(str(first >> shift & 0xFF) for shift in (24, 16, 8, 0))
    else:
        text = str(ipaddress.IPv6Address(first))
    full = 32 if version == 4 else 128
    return text if bare and prefix == full else f"{text}/{prefix}"


def mapped_down(s: AddressSet) -> AddressSet:
    """The IPv4 addresses whose IPv4-mapped IPv6 form (::ffff:a.b.c.d) is in `s`."""
    if not s.ranges or s.ranges[-1][1] < V6_BASE:
        return NOTHING  # no IPv6 address at all
    return s.shifted_into(V6_BASE + MAPPED_FIRST, V6_BASE + MAPPED_LAST, -(V6_BASE + MAPPED_FIRST))


def for_systemd(s: AddressSet) -> AddressSet:
    """The same set for a BPF filter, with the IPv4-mapped IPv6 block filled in or left
    out, whichever takes fewer CIDR blocks: no packet has such a source (an IPv4 client
    is an IPv4 packet, on any socket), so the choice changes nothing."""
    filled, emptied = s | MAPPED, s - MAPPED
    return filled if sum(1 for _ in filled.blocks()) < sum(1 for _ in emptied.blocks()) else emptied


def first_match(rules: Sequence[tuple[AddressSet, bool]], default: bool) -> AddressSet:
    """The addresses an ordered rule list lets in: the first rule whose set holds an
    address decides it (True: let in), `default` for the addresses no rule holds.
    One sweep over the rules' ranges: O(n log n) in the number of ranges."""
    verdicts = [grants for _, grants in rules] + [default]  # index -1: no rule
    granted: list[_Range] = []
    for first, last, index in cover([s for s, _ in rules]):
        if verdicts[index]:
            if granted and granted[-1][1] + 1 == first:
                granted[-1] = (granted[-1][0], last)
            else:
                granted.append((first, last))
    return AddressSet._trusted(granted)


def cover(sets: Sequence[AddressSet]) -> list[tuple[int, int, int]]:
    """(first, last, index) pieces of both address spaces, each with the index of the
    first set holding it (-1: none), in address order."""
    events: list[tuple[int, int]] = [(0, -1), (V4_SIZE, -1), (V6_BASE, -1), (V6_LAST + 1, -1)]
    for index, s in enumerate(sets):  # (where, i): i >= 0 opens set i, -2 - i closes it
        closing = -2 - index
        for first, last in s.ranges:
            events.append((first, index))
            events.append((last + 1, closing))
    events.sort()
    active: list[int] = []
    stale = [0] * len(sets)
    pieces: list[tuple[int, int, int]] = []
    push, pop = heapq.heappush, heapq.heappop
    previous = -1
    for where, index in events:
        if where != previous:
            if previous >= 0 and (previous <= V4_LAST or V6_BASE <= previous <= V6_LAST):
                while active and stale[active[0]]:
                    stale[active[0]] -= 1
                    pop(active)
                pieces.append((previous, where - 1, active[0] if active else -1))
            previous = where
        if index >= 0:
            push(active, index)
        elif index != -1:  # -1: an edge of a space
            stale[-2 - index] += 1
    return pieces


NOTHING = AddressSet()
ANY_V6 = AddressSet.v6(0, V6_SIZE - 1)
ANY_V4 = AddressSet.v4(0, V4_SIZE - 1)
ANY = ANY_V6 | ANY_V4
MAPPED = AddressSet.v6(MAPPED_FIRST, MAPPED_LAST)


# -- xinetd's list entries -------------------------------------------------------------------

NETWORKS_PATH = "/etc/networks"


class AddressError(ValueError):
    """An only_from / no_access entry that makes xinetd disable the service."""


@dataclass(frozen=True)
class AddressEntry:
    """One parsed list entry. Numeric forms have `blocks` (what they match in their own
    family, as (version, first address, prefix length)); names have `name`; kind
    "ignored" matches nothing."""

    text: str  # as written
    kind: str  # "numeric", "cidr", "factorized", "network", "host", "domain", "ignored"
    blocks: tuple[tuple[int, int, int], ...] = ()
    name: str | None = None  # host name or ".domain", as written
    note: str | None = None  # how xinetd reads it, when that is not what it looks like

    @property
    def is_name(self) -> bool:
        return self.kind in ("host", "domain")

    @property
    def networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple((ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network)((first, bits))
                     for version, first, bits in self.blocks)

    @functools.cached_property
    def addresses(self) -> AddressSet:
        return union(*(AddressSet.prefix(*block) for block in self.blocks))


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


def parse_addresses(texts: Sequence[str], *, networks: Mapping[str, int] | None = None
                    ) -> tuple[AddressEntry, ...]:
    return tuple(parse_address(t, networks=networks) for t in texts)


_HOST_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_IGNORED = "xinetd cannot read this entry: it logs 'failed to parse' and ignores it"


def _parse(text: str, networks: Mapping[str, int] | None) -> AddressEntry:
    if not text:
        raise AddressError("empty address")
    if "\0" in text:
        raise AddressError(f"address {text!r} has a NUL byte in it")
    if "," in text and "{" not in text:
        # xinetd's own message; it then disables the service
        raise AddressError(f"address {text!r} has a comma in it: separate entries by spaces")
    # xinetd's readers, in its order: numeric, host name, address/bits, factorised, network
    plain = "/" not in text and "{" not in text
    if plain:
        entry = _numeric(text)
        if entry is not None:
            return entry
        if text.startswith(".") and text.strip(".0123456789"):
            return AddressEntry(text, "domain", name=text)
    elif "{" not in text:
        entry = _explicit_mask(text)
        if entry is not None:
            return entry
    if "{" in text:
        entry = _factorized(text)
        if entry is not None:
            return entry
    else:
        _factorized_prefix(text)  # xinetd's factorised reader still refuses `1..2`, `.1`
    table = load_networks() if networks is None else networks
    if text in table:
        return _net_number(text, table[text])
    if plain and _HOST_NAME.fullmatch(text) and text.strip("0123456789."):
        return AddressEntry(text, "host", name=text)
    return AddressEntry(text, "ignored", note=_IGNORED)


_PLAIN_QUAD = re.compile(r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
                         r"(?:\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}")


def _numeric_host(text: str, family: int) -> tuple[int, int] | None:
    """(version, value) as glibc getaddrinfo(AI_NUMERICHOST) reads the text: IPv4 as
    inet_aton does (127.1, 010.0.0.1, 0x7f.1); an IPv6 scope is accepted and dropped."""
    if family != socket.AF_INET6 and _PLAIN_QUAD.fullmatch(text):
        return 4, int.from_bytes(bytes(map(int, text.split("."))), "big")  # the common case
    try:
        found = socket.getaddrinfo(text, None, family, socket.SOCK_STREAM, 0,
                                   socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    address = ipaddress.ip_address(found[0][4][0].split("%", 1)[0])
    return address.version, int(address)


def _numeric(text: str) -> AddressEntry | None:
    found = _numeric_host(text, socket.AF_INET6 if ":" in text else socket.AF_INET)
    if found is None:
        return None
    version, value = found
    if version == 6:
        # xinetd compares a numeric IPv6 entry for equality, `::` included
        note = "'::' is the one address '::', which no client has (xinetd compares it " \
               "for equality)" if value == 0 else None
        return AddressEntry(text, "numeric", ((6, value, 128),), note=note)
    if value == 0:
        return AddressEntry(text, "numeric", ((4, 0, 0),))
    prefix = 32
    while value & ((1 << (32 - prefix + 8)) - 1) == 0:
        prefix -= 8  # xinetd: the trailing zero octets are wildcards
    return AddressEntry(text, "numeric", ((4, value, prefix),))


_MASK = re.compile(r"([^/]{1,45})/[ \t\n\v\f\r]*([+-]?)([0-9]+)")


def _explicit_mask(text: str) -> AddressEntry | None:
    """xinetd explicit_mask(): sscanf "%45[^/]/%u", then a numeric address of either
    family. IPv4: bits >= 32 is one host. IPv6: bits >= 128 becomes a host-name entry
    whose name was never set, which matches nothing."""
    match = _MASK.match(text)
    if not match:
        return None
    base, sign, digits = match.groups()
    bits = int(digits) % V4_SIZE
    if sign == "-":
        bits = (V4_SIZE - bits) % V4_SIZE  # %u takes a sign and wraps
    found = _numeric_host(base, socket.AF_UNSPEC)
    if found is None:
        return None
    version, value = found
    if version == 4:
        prefix = min(bits, 32)
        return AddressEntry(text, "cidr", ((4, value & v4_mask(prefix), prefix),))
    if bits >= 128:
        return AddressEntry(text, "cidr", (), note="an IPv6 entry with /128 (or more) "
                            "matches nothing in xinetd; write the bare address")
    return AddressEntry(text, "cidr", ((6, value >> (128 - bits) << (128 - bits), bits),))


def v4_mask(prefix: int) -> int:
    """The IPv4 netmask of a prefix length (0 to 32) as a number: 24 -> 0xFFFFFF00."""
    return (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF


def _factorized_prefix(text: str) -> tuple[int, int] | None:
    """xinetd factorized_addr() up to the brace: (address, shift), None when a character
    other than a digit or a dot comes first (not this reader's form); a leading or
    doubled dot makes xinetd disable the service."""
    address, shift, number, last = 0, 24, 0, "."
    for char in text:
        if char == "{":
            break
        if char in "0123456789":
            number = (number * 10 + int(char)) & 0xFFFFFFFF
        elif char == ".":
            if last == ".":
                raise AddressError(f"bad address {text!r}: consecutive dots")
            address, number, shift = (address * 256 + number) & 0xFFFFFFFF, 0, shift - 8
        else:
            return None
        last = char
    else:
        return None
    return address, shift


def _factorized(text: str) -> AddressEntry | None:
    """xinetd factorized_addr(), with its unsigned 32-bit arithmetic: `a.b.{c,d}`."""
    prefix = _factorized_prefix(text)
    if prefix is None:
        return None
    address, shift = prefix
    if shift < 0:
        raise AddressError(f"bad address {text!r}: more than three octets before the braces")
    address = (address << (shift + 8)) & 0xFFFFFFFF
    tail = text[text.index("{") + 1:]
    if not tail.endswith("}") or "}" in tail[:-1] or tail.strip("0123456789,}"):
        raise AddressError(f"bad factorised address {text!r}: the {{...}} part must be last")
    values = tail[:-1].split(",")
    if "" in values:
        raise AddressError(f"bad factorised address {text!r}: consecutive commas")
    mask = ~((1 << shift) - 1) & 0xFFFFFFFF
    nets = []
    for value in values:
        start = (address + ((int(value) & 0xFFFFFFFF) << shift)) & 0xFFFFFFFF
        nets.append((4, start & mask, 32 - shift))
    return AddressEntry(text, "factorized", tuple(nets))


def _net_number(name: str, number: int) -> AddressEntry:
    """xinetd net_addr(): the mask follows the size of the net number, as classful nets
    (`127` is 127.0.0.0/8; a number written 127.0.0.0 is one address)."""
    if number == 0:
        return AddressEntry(name, "ignored", note=_IGNORED)
    for limit, prefix, shift in ((0xFF, 8, 24), (0xFFFF, 16, 16), (0xFFFFFF, 24, 8),
                                 (0xFFFFFFFF, 32, 0)):
        if number <= limit:
            return AddressEntry(name, "network", ((4, (number << shift) & 0xFFFFFFFF, prefix),))
    return AddressEntry(name, "ignored", note=_IGNORED)


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


def _maps_grants(families: Collection[Family] | None) -> bool:
    """only_from IPv6 entries admit IPv4 clients only where every socket is dual-stack."""
    inet = [f for f in families or () if f is not Family.UNIX]
    return bool(inet) and all(f is Family.DUAL for f in inet)


def _maps_denials(families: Collection[Family] | None) -> bool:
    """no_access IPv6 entries refuse IPv4 clients unless no socket is dual-stack (known)."""
    return families is None or Family.DUAL in families


@dataclass(frozen=True)
class CompiledAccess:
    """only_from / no_access in systemd's terms (see the module docstring)."""

    allow: tuple[str, ...] | None  # IPAddressAllow= entries, with IPAddressDeny=any
    unexpressed: tuple[str, ...] = ()  # entries that could not become address rules
    notes: tuple[str, ...] = ()  # one sentence per approximation
    stricter: bool = False  # some client that xinetd admitted is refused now
    addresses: AddressSet | None = None  # `allow` as a set (None: no restriction)

    def __iter__(self) -> Iterator:
        return iter((self.allow, self.unexpressed))


def compile_allow(only_from: Sequence[str] | None, no_access: Sequence[str] = (), *,
                  resolve: Callable[[str], Sequence[str]] | None = None,
                  networks: Mapping[str, int] | None = None,
                  families: Collection[Family] | None = None) -> CompiledAccess:
    """The allowed set: only_from minus no_access (xinetd precedence). `families` are
    those of the service's sockets (None: unknown, read strictly)."""
    if only_from is None and not no_access:
        return CompiledAccess(None)
    fams = None if families is None else frozenset(families)
    if resolve is None and networks is None:
        return _compile_cached(None if only_from is None else tuple(only_from),
                               tuple(no_access), fams)
    return _compile(only_from, no_access, resolve, networks, fams)


@functools.lru_cache(maxsize=4096)
def _compile_cached(only_from: tuple[str, ...] | None, no_access: tuple[str, ...],
                    families: frozenset[Family] | None) -> CompiledAccess:
    return _compile(only_from, no_access, None, None, families)


def _compile(only_from: Sequence[str] | None, no_access: Sequence[str],
             resolve: Callable[[str], Sequence[str]] | None,
             networks: Mapping[str, int] | None,
             families: Collection[Family] | None) -> CompiledAccess:
    notes: list[str] = []
    unexpressed: list[str] = []
    stricter = False
    grants_mapped, denials_mapped = _maps_grants(families), _maps_denials(families)

    def numeric(entry: AddressEntry, role: str) -> AddressSet | None:
        """The entry's addresses, resolving names when allowed; None when impossible."""
        if entry.note:
            notes.append(f"{role} {entry.text}: {entry.note}")
        if not entry.is_name:
            return entry.addresses
        if entry.kind == "host" and resolve is not None:
            found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(entry.text)]
            if found:
                notes.append(f"{role} host {entry.text} resolved now to "
                             f"{', '.join(map(str, found))}; re-run the conversion if its "
                             "addresses change (xinetd matched its reverse-DNS name)")
                return union(*(AddressSet.of(ipaddress.ip_network(a)) for a in found))
        unexpressed.append(entry.text)
        return None

    if only_from is None:
        allowed = ANY
    else:
        parts = []
        for entry in parse_addresses(only_from, networks=networks):
            nets = numeric(entry, "only_from")
            if nets is None:
                stricter = True
                what = "domain" if entry.kind == "domain" else "host name"
                notes.append(f"only_from {what} {entry.text} cannot be a systemd address "
                             "rule: clients matching only through it are refused (stricter "
                             "than xinetd); list their addresses instead")
                continue
            mapped = mapped_down(nets)
            if mapped and not grants_mapped:
                stricter = True
                notes.append(f"only_from {entry.text}: xinetd lets the IPv4 clients it "
                             "covers in only on a dual-stack socket, and systemd's filter "
                             "sees IPv4 packets: they are refused here (stricter); write "
                             "the IPv4 addresses instead")
            parts.append(nets | mapped if grants_mapped else nets)
        allowed = union(*parts)
    denied_parts = []
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
        mapped = mapped_down(nets)
        if mapped and families is None:
            notes.append(f"no_access {entry.text} also refuses the IPv4 clients it covers "
                         "(xinetd does on a dual-stack socket)")
        denied_parts.append(nets | mapped if denials_mapped else nets)
    if nobody:
        allowed = NOTHING
    result = for_systemd(allowed - union(*denied_parts))
    return CompiledAccess(result.texts(), tuple(unexpressed), tuple(notes), stricter, result)


# -- the runtime check ---------------------------------------------------------------------

def reverse_name(ip: str) -> str | None:
    """The client's reverse-DNS name, as xinetd asks for it (NI_NAMEREQD)."""
    try:
        return socket.getnameinfo((ip, 0), socket.NI_NAMEREQD)[0]
    except (socket.gaierror, socket.herror, OSError, UnicodeError):
        return None


def _name_matches(entry: AddressEntry, hname: str) -> bool:
    """xinetd addrlist_match() on a HOST entry: a domain matches where its first
    occurrence in the name (case ignored) is the name's tail; a host, the whole name."""
    wanted = (entry.name or "").lower()
    lowered = hname.lower()
    if wanted.startswith("."):
        found = lowered.find(wanted)
        return found >= 0 and len(lowered) - found == len(wanted)
    return lowered == wanted


@dataclass(frozen=True)
class _Compiled:
    """One list, ready for the accept path."""

    addresses: AddressSet  # numeric entries, each in its own family
    names: tuple[AddressEntry, ...]

    @classmethod
    def of(cls, entries: Sequence[AddressEntry]) -> "_Compiled":
        return cls(union(*(e.addresses for e in entries if not e.is_name)),
                   tuple(e for e in entries if e.is_name))

    def match(self, where: int, mapped: int | None, name: Callable[[], str | None]) -> bool:
        if where in self.addresses or (mapped is not None and mapped in self.addresses):
            return True
        if self.names:
            hname = name()
            if hname and any(_name_matches(e, hname) for e in self.names):
                return True
        return False


@dataclass(frozen=True)
class AccessList:
    """xinetd's address check (access.c) for one service."""

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

    def allows(self, ip: str, *, mapped: bool = False) -> bool:
        """True when xinetd would let a client with this source address in. `mapped`:
        an IPv4 client that came in on a dual-stack socket (xinetd then also compares
        its ::ffff: form with the IPv6 entries); IPv4-mapped text implies it."""
        only: _Compiled | None = self._only  # type: ignore[attr-defined]
        deny: _Compiled = self._deny  # type: ignore[attr-defined]
        if only is None and not self.no_access:
            return True
        text = client_address(ip)
        mapped = mapped or text != ip.split("%", 1)[0]
        where = point(text)
        as_v6 = V6_BASE + MAPPED_FIRST + where if mapped and where <= V4_LAST else None
        found: list[str | None] = []

        def name() -> str | None:
            if not found:
                # xinetd asks for the name of the address as the socket has it: on a
                # dual-stack socket the mapped one, which glibc does not answer with
                # the IPv4 name (no PTR under ip6.arpa, no /etc/hosts line for it)
                found.append(self.reverse_lookup(f"::ffff:{text}" if mapped and ":" not in text
                                                 else text))
            return found[0]

        if deny.match(where, as_v6, name):
            return False
        if only is not None and not only.match(where, as_v6, name):
            return False
        return True
