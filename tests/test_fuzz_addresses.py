"""Fuzzing xinetd's address lists and the address-set arithmetic behind both compilers.

Any entry text gives an entry or our own AddressError (never another exception); any
lists compile in time linear in their length, and the compiled set never admits a
client that xinetd's own check (`AccessList`) refuses, whatever the socket's family and
the client's host name. `AddressSet`'s operations agree with plain Python sets.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from access_support import admitted, mutated
from fuzz_support import (BELOW_QUADRATIC, fuzz_settings, growth_ratio, regression_cases,
                          result_or_located_error)
from inetd2systemd.config.addresses import (AccessList, AddressError, AddressSet, compile_allow,
                                            first_match, parse_address)
from inetd2systemd.model import Family

SEEDS = ["10.1.2.3", "10.1.0.0", "0.0.0.0", "127.1", "010.0.0.1", "::", "::1", "fe80::1%lo",
         "::ffff:10.0.0.1", "10.0.0.0/8", "10.0.0.1/8x", "10.1.2.3/40", "2001:db8::/32",
         "2001:db8::1/128", "::ffff:10.0.0.0/104", "10.1.{2,3}", "127.0.{256}", "{1,2}",
         "host.example", ".example.com", "999.1.2.3", "10.{1}.2", "loopback", "::/0"]
_noise = st.sampled_from(list("0123456789.:/{},%abcdefx-+ \0\xff") + ["::", "{", "}", "/-1"])


entry_text = st.one_of(
    st.sampled_from(SEEDS),
    mutated(SEEDS, _noise, 3),
    st.text(alphabet=st.characters(max_codepoint=255), min_size=1, max_size=30),
)
families = st.sampled_from([None, (Family.IPV4,), (Family.DUAL,), (Family.IPV6,),
                            (Family.IPV4, Family.DUAL)])
PROBES = ["10.0.0.1", "10.1.2.3", "10.1.3.1", "127.0.0.1", "8.0.0.1", "0.0.0.1", "::1",
          "2001:db8::5", "fe80::1"]


def compile_and_check(only_from, no_access, fams, name) -> None:
    try:
        access = compile_allow(only_from, no_access, families=fams)
        acl = AccessList(only_from, tuple(no_access), reverse_lookup=lambda ip: name)
    except AddressError:
        return
    for probe in PROBES:
        if not admitted(access.allow, probe):
            continue
        # systemd lets it in: xinetd must too, on every socket kind it may have had
        sockets = [False, True] if fams is None else \
            [f is Family.DUAL for f in fams if f is not Family.IPV6] or [False]
        for mapped in sockets if ":" not in probe else [False]:
            assert acl.allows(probe, mapped=mapped), (only_from, no_access, fams, probe, mapped)


@fuzz_settings()
@given(entry_text)
def test_any_entry_is_read_or_refused_with_our_error(text):
    outcome = result_or_located_error(lambda: parse_address(text, networks={}), len(text),
                                      errors=(AddressError,))
    if not isinstance(outcome, AddressError):
        assert outcome.kind in ("numeric", "cidr", "factorized", "network", "host", "domain",
                                "ignored")


@fuzz_settings()
@given(st.one_of(st.none(), st.lists(entry_text, max_size=4)), st.lists(entry_text, max_size=4),
       families, st.sampled_from([None, "localhost", "a.example.com", "10.0.0.1"]))
def test_compiled_lists_are_never_wider_than_xinetd(only_from, no_access, fams, name):
    only = None if only_from is None else tuple(only_from)
    result_or_located_error(lambda: compile_and_check(only, tuple(no_access), fams, name),
                            sum(map(len, (only or ()) + tuple(no_access))), errors=())


@pytest.mark.parametrize("name, data", regression_cases("addresses"))
def test_kept_regressions(name, data):
    """Each kept file: one entry per line, compiled as only_from and as no_access."""
    entries = tuple(line for line in data.decode("latin-1").split("\n") if line)
    result_or_located_error(lambda: compile_and_check(entries, (), None, None), len(data), errors=())
    result_or_located_error(lambda: compile_and_check(None, entries, None, None), len(data), errors=())


# -- the arithmetic ------------------------------------------------------------------------

_small = st.integers(0, 63)
ranges = st.lists(st.tuples(_small, _small).map(sorted), max_size=6)


def _as_set(pairs) -> AddressSet:
    return AddressSet((a, b) for a, b in pairs)  # IPv4 0.0.0.0 - 0.0.0.63


def _as_python(pairs) -> set[int]:
    return {i for a, b in pairs for i in range(a, b + 1)}


def _members(s: AddressSet) -> set[int]:
    return {i for a, b in s.ranges for i in range(a, b + 1)}


@fuzz_settings()
@given(ranges, ranges)
def test_set_operations_agree_with_python_sets(a, b):
    x, y = _as_set(a), _as_set(b)
    assert _members(x | y) == _as_python(a) | _as_python(b)
    assert _members(x - y) == _as_python(a) - _as_python(b)
    assert _members(x & y) == _as_python(a) & _as_python(b)
    covered = {int(ipaddress.IPv4Address(str(n.network_address))) + k
               for n in x.networks() for k in range(n.num_addresses)}
    assert covered == _as_python(a)  # the CIDR blocks are exactly the set


@fuzz_settings()
@given(st.lists(st.tuples(ranges, st.booleans()), max_size=6), st.booleans())
def test_first_match_is_the_first_rule_holding_each_address(rules, default):
    granted = _members(first_match([(_as_set(r), v) for r, v in rules], default) & _as_set([(0, 63)]))
    for address in range(64):
        verdict = next((v for r, v in rules if address in _as_python(r)), default)
        assert (address in granted) == verdict, (rules, address)


_block = st.one_of(
    st.builds(lambda v, b: AddressSet.prefix(4, v, b), st.integers(0, 2**32 - 1), st.integers(0, 32)),
    st.builds(lambda v, b: AddressSet.prefix(6, v, b), st.integers(0, 2**128 - 1), st.integers(0, 128)),
    st.builds(lambda v, b: AddressSet.prefix(6, (0xFFFF << 32) | v, b), st.integers(0, 2**32 - 1),
              st.integers(96, 128)),
    st.sampled_from([AddressSet.parse(["::/0"]), AddressSet.parse(["::/80"]),
                     AddressSet.parse(["::"])]),
)


@fuzz_settings()
@given(st.lists(_block, max_size=5), families)
def test_xinetd_entries_read_back_as_the_same_set(blocks, fams):
    """The import hands tcp_wrappers' result to the writer as only_from entries: read
    with xinetd's rules on the service's sockets they must give back exactly the set."""
    from inetd2systemd.config.addresses import MAPPED, union
    wanted = union(*blocks)
    again = compile_allow(wanted.xinetd_entries(fams), (), families=fams).addresses
    assert again - MAPPED == wanted - MAPPED, (wanted, wanted.xinetd_entries(fams), again)


@pytest.mark.parametrize("value, mask", [(0x0A000500, 0xFF00FF00), (0x0A0000A0, 0xFFFF00F0),
                                         (0x0A010000, 0xFF0F0000), (0x0A000000, 0xFF000000),
                                         (0x0A000001, 0xFF000000), (0, 0)])
def test_masks_with_holes_are_listed_exactly(value, mask):
    found = AddressSet.masked(value, mask)
    for probe in list(range(0x0A000000, 0x0A000000 + 70000, 13)) + [value, value | ~mask & 0xFFFFFFFF]:
        assert (probe in found) == ((probe & mask) == value), hex(probe)


def test_a_mask_with_too_many_holes_is_not_listed():
    assert AddressSet.masked(0xA0000000, 0xF0F0F0F0) is None


# -- time linear in the input --------------------------------------------------------------

def test_compiling_long_lists_grows_linearly():
    entries = {n: tuple(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(n))
               for n in (2000, 20000)}

    def run(n: int) -> None:
        half = n // 2  # networks={}: no cache between the rounds
        compile_allow(entries[n][:half], entries[n][half:], families=(Family.DUAL,), networks={})
        AccessList(entries[n][:half], entries[n][half:], networks={}).allows("10.0.0.1")
    assert growth_ratio(run, 2000) < BELOW_QUADRATIC
