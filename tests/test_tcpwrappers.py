"""tcp_wrappers: hosts.allow / hosts.deny read, decided, and compiled for systemd.

The decisions are checked against the real libwrap through `tcpdmatch -d` (Debian's tcpd
7.6.q), which reads hosts.allow/deny from its working directory: every address form of
hosts_access(5), address by address around each form's boundaries, and random rule sets
(hypothesis) where neither the compiled IPAddressAllow= set nor the runtime verdict may
admit an address libwrap refuses.
"""

from __future__ import annotations

import ipaddress
import random
import socket

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from access_support import admitted, tcpdmatch_many, write_tables
from inetd2systemd.config.addresses import AddressSet
from inetd2systemd.config.tcpwrappers import (
    PatternList, TcpWrappers, parse_hosts_access, parse_hosts_file, read_host_names, read_table,
    read_tcpwrappers,
)
from inetd2systemd.convert.host import may_hold_rules


def wrappers(allow: str = "", deny: str = "") -> TcpWrappers:
    return TcpWrappers(parse_hosts_access(allow, "hosts.allow", kind="allow"),
                       parse_hosts_access(deny, "hosts.deny", kind="deny"))


def allowed_by(compiled, address: str) -> bool:
    """What systemd does with IPAddressDeny=any + IPAddressAllow=compiled.allow."""
    if compiled.allow is None or len(compiled.allow) < 8:
        return admitted(compiled.allow, address)  # the texts, as the unit has them
    return admitted_set(compiled.addresses, address)


def admitted_set(addresses, ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address in addresses


# -- reading ------------------------------------------------------------------------------


def test_daemon_lists_commas_and_blanks_and_comments():
    rules = parse_hosts_access(
        "# a comment\n\nin.fingerd, in.telnetd  in.ftpd : 10.0.0.1\n",
        "hosts.allow", kind="allow")
    assert len(rules) == 1
    assert rules[0].daemons == PatternList((("in.fingerd", "in.telnetd", "in.ftpd"),))
    assert rules[0].source.line == 3


def test_an_indented_hash_is_not_a_comment():
    """libwrap skips a line only when '#' is its first byte: an indented one is a rule
    (here daemons '#' and 'ALL', so it grants 10.0.0.1 to every daemon)."""
    tw = wrappers("  # ALL: 10.0.0.1\n", "ALL: ALL\n")
    assert len(tw.allow) == 1
    assert tw.allows("svc", "10.0.0.1") and not tw.allows("svc", "10.0.0.2")
    assert wrappers("# ALL: 10.0.0.1\n", "ALL: ALL\n").allow == ()


def test_backslash_continuation_joins_lines_and_keeps_the_first_line_number():
    rules = parse_hosts_access("\n in.fingerd : 10.0.0.1, \\\n   10.0.0.2 \\\n : deny\n",
                               "hosts.allow", kind="allow")
    assert len(rules) == 1
    rule = rules[0]
    assert rule.source.line == 2
    assert rule.clients.items == ("10.0.0.1", "10.0.0.2")
    assert rule.grants and rule.outcome == "refuse"  # the `deny` option on the continued line


def test_nested_except_is_right_associative():
    # a EXCEPT b EXCEPT c == a EXCEPT (b EXCEPT c): 10.1.2.3 is in c, so it is let back in
    tw = wrappers("ALL: 10. EXCEPT 10.1. except 10.1.2.\n", "ALL: ALL\n")
    assert tw.allow[0].clients == PatternList((("10.",), ("10.1.",), ("10.1.2.",)))
    assert tw.allows("svc", "10.9.9.9")
    assert not tw.allows("svc", "10.1.9.9")
    assert tw.allows("svc", "10.1.2.3")
    compiled = tw.compile("svc")
    assert compiled.exact
    for addr in ("10.9.9.9", "10.1.9.9", "10.1.2.3", "11.0.0.1"):
        assert allowed_by(compiled, addr) == tw.allows("svc", addr), addr


def test_except_in_the_daemon_list():
    tw = wrappers("", "ALL EXCEPT in.fingerd : ALL\n")
    assert tw.allows("in.fingerd", "192.0.2.1")
    assert not tw.allows("in.telnetd", "192.0.2.1")
    assert tw.compile("in.fingerd").allow is None
    assert tw.compile("in.telnetd").allow == ()


@pytest.mark.parametrize("pattern, inside, outside", [
    ("192.168.", "192.168.77.1", "192.169.0.1"),                # n.n. prefix
    ("10.1.2.", "10.1.2.200", "10.1.3.1"),                      # n.n.n. prefix
    ("172.16.0.0/255.240.0.0", "172.31.255.1", "172.32.0.1"),   # address/netmask
    ("172.16.0.0/12", "172.20.0.1", "172.32.0.1"),              # address/prefix
    ("198.51.100.7", "198.51.100.7", "198.51.100.8"),           # one address
    ("[2001:db8::]/32", "2001:db8:1::5", "2001:db9::1"),        # [v6]/len
    ("[::1]", "::1", "::2"),                                    # [v6]
    ("10.0.0.0/255.0.255.0", "10.77.0.9", "10.77.1.9"),         # a mask with a hole
    ("010.0.0.0/8", "8.1.2.3", "10.1.2.3"),                     # inet_aton reads octal
])
def test_address_forms_compile_exactly(pattern, inside, outside):
    tw = wrappers(f"in.tftpd : {pattern}\n", "ALL : ALL\n")
    compiled = tw.compile("in.tftpd")
    assert compiled.exact and not [f for f in compiled.findings if f.severity.value != "info"]
    assert allowed_by(compiled, inside) and tw.allows("in.tftpd", inside)
    assert not allowed_by(compiled, outside) and not tw.allows("in.tftpd", outside)


@pytest.mark.parametrize("pattern", [
    "10.1.2.3/255.255.255.0",   # host bits set under the mask: libwrap compares them too
    "10.1.2.3/24",
    "0.0.0.0/0",                # a length of 0 is libwrap's error value
    "10.0.0.0/0.255.255.255",   # not a netmask, and 10 is outside it
    "192.168.01.",              # the address text never has a leading zero
    "010.1.2.3",                # compared as text
    "10.0.0.1/255.255.255.255",  # inet_addr's error value
    "[10.0.0.1]",               # an IPv4 client never matches a bracketed pattern
    "[::ffff:10.0.0.1]",        # nor an IPv4-mapped one
    "[::ffff:10.0.0.0]/104",
])
def test_forms_that_match_nothing_grant_nothing_and_say_so(pattern):
    tw = wrappers(f"svc : {pattern}\n", "ALL : ALL\n")
    compiled = tw.compile("svc")
    assert compiled.exact and compiled.allow == ()
    for address in ("10.1.2.3", "10.1.2.4", "10.0.0.1", "192.168.1.1", "::ffff:10.0.0.1"):
        assert not tw.allows("svc", address)
    if "/" in pattern or "0" in pattern.split(".")[0][:1] or ".01." in pattern:
        assert any("matches no address" in f.message for f in compiled.findings), compiled.findings


def test_a_bad_ipv6_length_is_read_as_zero_every_ipv6_address():
    tw = wrappers("svc : [2001:db8::]/abc\n", "ALL : ALL\n")
    compiled = tw.compile("svc")
    assert tw.allows("svc", "fe80::1") and allowed_by(compiled, "fe80::1")
    assert not tw.allows("svc", "10.0.0.1") and not allowed_by(compiled, "10.0.0.1")
    assert any("every IPv6 address" in f.message for f in compiled.findings)


def test_ipv4_mapped_clients_are_their_ipv4_address():
    tw = wrappers("svc: 127.0.0.5, 10.1.\n", "ALL: ALL\n")
    assert tw.allows("svc", "::ffff:127.0.0.5") and tw.allows("svc", "::FFFF:10.1.2.3")
    assert not tw.allows("svc", "::ffff:127.0.0.6")


@pytest.mark.parametrize("pattern, why", [
    (".example.com", "domain"),
    ("gate.example.com", "host name"),
    ("LOCAL", "host name"),
    ("KNOWN", "host name"),
    ("UNKNOWN", "no host name"),
    ("PARANOID", "double check"),
    ("@trusted-hosts", "netgroup"),
    ("alice@10.0.0.0/8", "ident"),
    ("10.0.0.*", "wildcard"),
])
def test_name_based_grants_are_reported_and_not_granted(pattern, why):
    """In hosts.allow a pattern systemd cannot check grants only what it surely matches."""
    tw = wrappers(f"sshd: 127.0.0.2\nsshd: {pattern}\n", "sshd: ALL\n")
    compiled = tw.compile("sshd", "ssh")
    assert not compiled.exact
    finding = next(f for f in compiled.findings if f.severity.value == "warning")
    assert finding.service == "ssh" and finding.source.line == 2
    assert why in finding.message and "stricter" in finding.message
    if pattern == "10.0.0.*":  # the address text is certain; the host name is not
        assert set(compiled.allow) == {"127.0.0.2", "10.0.0.0/24"}
    else:
        assert compiled.allow == ("127.0.0.2",)


@pytest.mark.parametrize("pattern", [".evil.example", "LOCAL", "@blocked", "UNKNOWN", "PARANOID"])
def test_name_based_denials_refuse_everyone_not_granted_before(pattern):
    """In hosts.deny such a pattern might match anybody: everyone not already granted is refused."""
    tw = wrappers("in.ftpd: 10.0.0.0/8\n", f"in.ftpd: {pattern}\n")
    compiled = tw.compile("in.ftpd")
    assert compiled.allow == ("10.0.0.0/8",)
    assert not compiled.exact and "refused for every address" in compiled.findings[0].message
    # libwrap itself lets an outsider with an ordinary name in: we only ever narrow.
    assert tw.allows("in.ftpd", "192.0.2.1", "client.example.net")


def test_allow_and_deny_options_turn_the_verdict_round():
    tw = wrappers("in.fingerd: 127.0.0.3 : deny\nin.fingerd: ALL\n",
                  "ALL: 127.0.0.4 : allow\nALL: ALL\n")
    assert not tw.allows("in.fingerd", "127.0.0.3")
    assert tw.allows("in.fingerd", "127.0.0.5")
    assert tw.allows("other", "127.0.0.4") and not tw.allows("other", "127.0.0.5")
    compiled = tw.compile("in.fingerd")
    assert compiled.exact
    assert not allowed_by(compiled, "127.0.0.3") and allowed_by(compiled, "127.0.0.5")
    assert tw.compile("other").allow == ("127.0.0.4",)


def test_twist_spawn_severity_are_reported():
    tw = wrappers("in.telnetd: 10.0.0.0/8 : severity auth.notice : spawn /bin/logger %h\n",
                  "in.telnetd: ALL : twist /bin/echo go away\n")
    compiled = tw.compile("in.telnetd", "telnet")
    messages = " | ".join(f.message for f in compiled.findings)
    assert "severity auth.notice" in messages
    assert "spawn /bin/logger %h" in messages
    assert "twist /bin/echo go away" in messages
    # twisted clients never reach the service: refused, exactly.
    assert compiled.exact and compiled.allow == ("10.0.0.0/8",)
    assert not tw.allows("in.telnetd", "192.0.2.9")


def test_escaped_colon_in_an_option_and_v6_colons_in_brackets():
    tw = wrappers(r"ALL: [2001:db8::]/64 : spawn echo a\:b" + "\n")
    rule = tw.allow[0]
    assert rule.clients.items == ("[2001:db8::]/64",)
    assert rule.options[0].value == "echo a:b"


@pytest.mark.parametrize("text, column, message, refuses", [
    ("in.fingerd 10.0.0.1\n", 20, "missing ':'", False),
    ("in.fingerd : EXCEPT 10.0.0.1\n", 13, "empty client list", False),
    (" : 10.0.0.1\n", 1, "empty daemon", False),
    ("in.fingerd : 10.0.0.1 : frobnicate yes\n", 24, "unknown option", True),
    ("in.fingerd : 10.0.0.1 : allow : severity auth.info\n", 24, "last", True),
    ("in.fingerd : 10.0.0.1 : spawn\n", 24, "needs a value", True),
    ("in.fingerd : 10.0.0.1 : umask 0778\n", 24, "umask", True),
    ("in.fingerd : 10.0.0.1 : severity local0.warn\n", 24, "severity", True),
    ("in.fingerd : 10.0.0.1 :\n", 24, "empty option", True),
])
def test_a_bad_line_costs_that_line_with_file_line_and_column(text, column, message, refuses):
    rules, findings = read_table("# first line\n" + text + "in.fingerd: 10.0.0.2\n",
                                 "/etc/hosts.allow", "allow")
    (finding,) = findings
    assert finding.source.file == "/etc/hosts.allow" and finding.source.line == 2
    assert finding.source.column == column and message in finding.message
    tw = TcpWrappers(rules, parse_hosts_access("ALL: ALL\n", "hosts.deny", kind="deny"))
    assert tw.allows("in.fingerd", "10.0.0.2")  # the next line still counts
    assert not tw.allows("in.fingerd", "10.0.0.1")  # refused whether skipped or refusing
    if refuses:
        assert "refuses every client" in finding.message


def test_a_last_line_without_newline_stops_hosts_deny_refusing_everyone():
    rules, findings = read_table("in.ftpd: 10.0.0.9", "hosts.deny", "deny")
    tw = TcpWrappers((), rules)
    assert not tw.allows("in.ftpd", "10.0.0.1") and not tw.allows("other", "10.0.0.1")
    assert "no newline" in findings[0].message
    assert wrappers("", "in.ftpd: 10.0.0.9\n").allows("in.ftpd", "10.0.0.1")


def test_a_line_too_long_for_libwrap_ends_hosts_allow():
    long_line = "svc: " + ", ".join(f"10.0.{i // 250}.{i % 250}" for i in range(300)) + "\n"
    rules, findings = read_table("svc: 192.0.2.1\n" + long_line + "svc: 192.0.2.2\n",
                                 "hosts.allow", "allow")
    assert len(rules) == 1 and "2048" in findings[0].message
    tw = TcpWrappers(rules, parse_hosts_access("ALL: ALL\n", "hosts.deny", kind="deny"))
    assert tw.allows("svc", "192.0.2.1") and not tw.allows("svc", "192.0.2.2")


def test_read_tcpwrappers_missing_files_mean_no_rules(tmp_path):
    assert not read_tcpwrappers(tmp_path)
    (tmp_path / "hosts.deny").write_text("ALL: ALL\n")
    tw = read_tcpwrappers(tmp_path)
    assert not tw.allows("anything", "127.0.0.1")
    assert tw.deny[0].source.file == str(tmp_path / "hosts.deny")


def test_rules_for_other_daemons_do_not_apply():
    tw = wrappers("sshd: ALL\n", "in.tftpd: 10.0.0.0/8\n")
    compiled = tw.compile("in.fingerd")
    assert compiled.allow is None and compiled.rules == ()


def test_daemon_patterns_are_libwrap_strings_and_ports():
    tw = wrappers("in.*: 10.0.0.1\nsv.: 10.0.0.2\n22: 10.0.0.3\n", "ALL: ALL\n")
    assert tw.allows("in.telnetd", "10.0.0.1") and not tw.allows("sshd", "10.0.0.1")
    assert tw.allows("sv.x", "10.0.0.2")  # a trailing dot is a prefix
    assert tw.allows("sshd", "10.0.0.3", port=22) and not tw.allows("sshd", "10.0.0.3", port=23)
    assert not tw.allows("sshd", "10.0.0.3")  # the port is not known: a grant is not given
    assert tw.compile("sshd", ports=(22,)).allow == ("10.0.0.3",)
    assert tw.compile("sshd", ports=(2222,)).allow == ()


# -- against the real libwrap --------------------------------------------------------------

RULESET_ALLOW = """\
# hosts.allow of a small office
in.fingerd: 127.0.0.2, 10.1. EXCEPT 10.1.2.0/255.255.255.0
in.tftpd : 192.168.0.0/16 EXCEPT 192.168.7. : severity local0.info
ALL: [2001:db8::]/48
in.telnetd: 172.16.0.0/12 : deny
in.telnetd, in.ftpd: 172.16.0.0/255.240.0.0
sshd: .example.com
"""
RULESET_DENY = """\
in.fingerd: 10.0.0.0/8 : allow
ALL EXCEPT in.ftpd : ALL
"""
DAEMONS = ("in.fingerd", "in.tftpd", "in.telnetd", "in.ftpd", "sshd")
ADDRESSES = ("127.0.0.2", "127.0.0.3", "10.1.2.9", "10.1.3.9", "10.9.9.9", "192.168.7.1",
             "192.168.8.1", "172.16.5.5", "2001:db8::1", "2001:db8:1::1", "8.8.4.4",
             "::ffff:127.0.0.2", "::ffff:10.1.3.9")


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    d = tmp_path_factory.mktemp("libwrap")
    write_tables(d, RULESET_ALLOW, RULESET_DENY)
    return d


@pytest.mark.usefixtures("tcpdmatch")
def test_decisions_match_the_real_libwrap(office):
    tw = wrappers(RULESET_ALLOW, RULESET_DENY)
    for daemon in DAEMONS:
        real = tcpdmatch_many(office, daemon, ADDRESSES)
        for address in ADDRESSES:
            assert tw.allows(daemon, address, user="unknown") == (real[address] == "granted"), \
                (daemon, address)


@pytest.mark.usefixtures("tcpdmatch")
def test_compiled_sets_match_the_real_libwrap_where_exact(office):
    tw = wrappers(RULESET_ALLOW, RULESET_DENY)
    for daemon in ("in.fingerd", "in.tftpd", "in.telnetd", "in.ftpd"):
        compiled = tw.compile(daemon)
        assert compiled.exact, daemon
        real = tcpdmatch_many(office, daemon, ADDRESSES)
        for address in ADDRESSES:
            assert allowed_by(compiled, address) == (real[address] == "granted"), (daemon, address)
    # sshd's `.example.com` grant is name-based: only the ALL rule's v6 network remains.
    assert tw.compile("sshd").allow == ("2001:db8::/48",) and not tw.compile("sshd").exact


# Every address form, around its boundaries: the runtime verdict must be libwrap's, and
# the compiled set libwrap's too when it says exact (else never wider).
FORMS = [
    "10.0.0.0/0.255.255.255", "10.1.2.3/255.255.255.0", "10.1.2.3/24", "10.1.2.0/24",
    "0.0.0.0/0", "0.0.0.0/0.0.0.0", "128.0.0.0/1", "10.0.0.0/255.0.255.0",
    "10.0.0.0/255.255.0.255", "192.168.01.", "192.168.1.", "10.", "010.0.0.0/8",
    "0x0a.0.0.0/255.0.0.0", "10.0.0.0/8abc", "10.0.0.0/33", "10.0.0.1/255.255.255.255",
    "10.0.0.1", "010.0.0.1", "10.0.0.01", ".5", ".0.5", ".2.0.5", "1.2.3.4.",
    "[2001:db8::]/32", "[2001:db8::1]/64", "[2001:db8::]/abc", "[2001:db8::]/129",
    "[::1]", "[::ffff:10.0.0.1]", "[::ffff:10.0.0.0]/104", "[::]/0", "10.0.0.*",
    "10.0.0.?", "1?.0.0.1", "*.5", "ALL", "all", "UNKNOWN", "KNOWN", "LOCAL",
    "10.0.0.0/24 EXCEPT 10.0.0.128/25", "ALL EXCEPT 10.0.0.0/8 EXCEPT 10.1.",
    "ALL@10.0.0.0/8", "unknown@10.0.0.0/8",
]


def address_text(version: int, value: int) -> str:
    """An address as the kernel's peer address reaches libwrap: glibc's inet_ntop
    (::ffff:10.0.0.1, ::1.2.3.4), not Python's spelling (::ffff:a00:1)."""
    if version == 4:
        return str(ipaddress.IPv4Address(value))
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


def boundary_addresses(pattern: str, rng: random.Random) -> list[str]:
    """Addresses at and beside each edge of what the pattern could match, a few inside,
    their IPv4-mapped forms, and some random ones."""
    tw = wrappers(f"svc: {pattern}\n", "ALL: ALL\n")
    compiled = tw.compile("svc")
    edges = set()
    for net in (compiled.addresses or AddressSet()).networks()[:40]:
        first, last = int(net.network_address), int(net.broadcast_address)
        top = 2 ** net.max_prefixlen - 1
        for value in (first - 1, first, first + 1, (first + last) // 2, last - 1, last, last + 1):
            if 0 <= value <= top:
                edges.add(address_text(net.version, value))
    for text in pattern.replace("/", " ").replace("[", " ").replace("]", " ").split():
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        for delta in (-1, 0, 1, 255, 256):
            value = int(address) + delta
            if 0 <= value < 2 ** address.max_prefixlen:
                edges.add(address_text(address.version, value))
    edges |= {str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(8)}
    edges |= {"10.0.0.1", "10.1.2.3", "10.0.0.5", "192.168.1.1", "1.2.3.5", "::1", "2001:db8::1"}
    edges.discard("255.255.255.255")  # no client has it (libwrap's inet_addr error value)
    mapped = {f"::ffff:{e}" for e in edges if "." in e and ":" not in e}
    return sorted(edges | set(list(mapped)[:10]))


@pytest.mark.usefixtures("tcpdmatch")
@pytest.mark.parametrize("pattern", FORMS)
def test_every_address_form_against_the_real_libwrap(pattern, tmp_path):
    allow, deny = f"svc: {pattern}\n", "ALL: ALL\n"
    write_tables(tmp_path, allow, deny)
    tw = wrappers(allow, deny)
    compiled = tw.compile("svc")
    addresses = boundary_addresses(pattern, random.Random(pattern))
    real = tcpdmatch_many(tmp_path, "svc", addresses)
    for address in addresses:
        granted = real[address] == "granted"
        assert tw.allows("svc", address, user="unknown") == granted, address
        if allowed_by(compiled, address):
            assert granted, ("compiled set wider than libwrap", address, compiled.allow)
        if compiled.exact:
            assert allowed_by(compiled, address) == granted, address


# -- random rule sets: never wider than libwrap ----------------------------------------------

octet = st.integers(0, 255)
small_octet = st.sampled_from([0, 1, 2, 5, 10, 127, 128, 255])
ipv4 = st.tuples(small_octet, small_octet, octet, octet).map(lambda t: ".".join(map(str, t)))
masks = st.one_of(st.integers(0, 33).map(str),
                  st.sampled_from(["255.0.0.0", "255.255.0.0", "255.255.255.0", "255.0.255.0",
                                   "0.255.255.255", "255.255.255.255", "0.0.0.0", "255.254.0.0",
                                   "8x", "-1"]))
v4_pattern = st.one_of(
    st.builds(lambda a, m: f"{a}/{m}", ipv4, masks),
    st.builds(lambda t: ".".join(map(str, t)) + ".", st.lists(small_octet, min_size=1, max_size=3)),
    st.builds(lambda t: "." + ".".join(map(str, t)), st.lists(small_octet, min_size=3, max_size=3)),
    ipv4,
    ipv4.map(lambda a: "0" + a),  # a leading zero
    st.builds(lambda a: a.rsplit(".", 1)[0] + ".*", ipv4),
    st.builds(lambda a: a[:-1] + "?", ipv4),
)
v6_pattern = st.sampled_from(["[2001:db8::]/32", "[2001:db8::1]", "[::1]", "[::]/0",
                              "[::ffff:10.0.0.0]/104", "[fe80::]/10", "[2001:db8::]/x"])
name_pattern = st.sampled_from([".example.com", "host.example.com", "LOCAL", "KNOWN",
                                "UNKNOWN", "PARANOID", "@ng", "ALL", "ALL@10.0.0.0/8"])
client_list = st.lists(st.one_of(v4_pattern, v4_pattern, v6_pattern, name_pattern),
                       min_size=1, max_size=3)
option = st.sampled_from(["", "", "", " : allow", " : deny", " : severity local0.info",
                          " : spawn /bin/true", " : frob", " : twist /bin/true", " :"])
rule = st.tuples(st.sampled_from(["svc", "ALL", "other", "sv*", "ALL EXCEPT svc"]), client_list,
                 st.one_of(st.none(), client_list), option)
names = st.sampled_from([None, "localhost", "host.example.com", "a.evil.org", "paranoid"])


def render(rules) -> str:
    lines = []
    for daemon, clients, exc, opt in rules:
        text = f"{daemon} : {', '.join(clients)}"
        if exc:
            text += f" EXCEPT {' '.join(exc)}"
        lines.append(text + opt)
    return "\n".join(lines) + "\n"


def probe_addresses(allow_rules, deny_rules, rng: random.Random) -> list[str]:
    patterns = [p for rules in (allow_rules, deny_rules) for _, c, e, _ in rules
                for p in c + (e or [])]
    found: set[str] = set()
    for pattern in patterns:
        found |= set(rng.sample(boundary_addresses(pattern, rng), 6))
    return sorted(found)[:60]


@settings(max_examples=100, deadline=None)
@given(st.lists(rule, max_size=4), st.lists(rule, max_size=4), st.lists(ipv4, min_size=1, max_size=6),
       names)
def test_compiled_access_is_never_wider(allow_rules, deny_rules, addresses, hostname):
    """Against the model, for any host name the client may have."""
    tw = wrappers(render(allow_rules), render(deny_rules))
    compiled = tw.compile("svc")
    rng = random.Random(repr((allow_rules, deny_rules)))
    for address in addresses + probe_addresses(allow_rules, deny_rules, rng)[:20]:
        if allowed_by(compiled, address):
            assert tw.allows("svc", address, hostname, user="unknown"), (address, hostname)
        if compiled.exact:
            assert allowed_by(compiled, address) == tw.allows("svc", address, hostname,
                                                              user="unknown")


@pytest.mark.usefixtures("tcpdmatch")
# tcpdmatch runs once per address of each example: no shrinking phase (it would try
# examples until hypothesis's own five-minute limit); a failing rule set is small to read
@settings(max_examples=40, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(st.lists(rule, max_size=4), st.lists(rule, max_size=4))
def test_random_rule_sets_against_the_real_libwrap(tmp_path_factory, allow_rules, deny_rules):
    """The runtime verdict is libwrap's; the compiled set never admits what it refuses."""
    directory = tmp_path_factory.mktemp("rules")
    allow, deny = render(allow_rules), render(deny_rules)
    write_tables(directory, allow, deny)
    tw = wrappers(allow, deny)
    compiled = tw.compile("svc")
    addresses = probe_addresses(allow_rules, deny_rules, random.Random(allow + deny))
    real = tcpdmatch_many(directory, "svc", addresses)
    for address in addresses:
        granted = real[address] == "granted"
        assert tw.allows("svc", address, user="unknown") == granted, (address, allow, deny)
        if allowed_by(compiled, address):
            assert granted, ("wider than libwrap", address, allow, deny, compiled.allow)
        if compiled.exact:
            assert allowed_by(compiled, address) == granted, (address, allow, deny)


@pytest.mark.parametrize("allow, why", [
    ("in.fingerd@192.0.2.1 : 10.0.0.0/8\n", "server address"),       # daemon@host
    ("in.fingerd : 10.0.0.*\n", "host name"),                         # wildcards
    ("in.fingerd : /etc/hosts.trusted\n", "read from a file"),        # pattern file
])
def test_other_forms_systemd_cannot_check_are_reported(allow, why):
    tw = wrappers(allow, "ALL: ALL\n")
    compiled = tw.compile("in.fingerd", "finger")
    assert not compiled.exact
    assert why in compiled.findings[0].message


def test_daemon_at_host_is_decided_strictly_at_runtime():
    tw = wrappers("in.fingerd@192.0.2.1 : 10.0.0.0/8\n", "ALL: ALL\n")
    assert not tw.allows("in.fingerd", "10.1.1.1")  # the server address is not known here
    assert tw.compile("in.telnetd").allow == ()  # not named: only hosts.deny applies
    deny_at = wrappers("", "in.fingerd@192.0.2.1 : 10.0.0.0/8\n")
    assert not deny_at.allows("in.fingerd", "10.1.1.1")  # might be denied: refused
    assert deny_at.allows("in.fingerd", "11.1.1.1")


# -- /etc/hosts: names a reverse lookup answers without DNS ---------------------------------

HOSTS = """\
127.0.0.1\tlocalhost
127.0.1.1\toldhost.lan.example.org oldhost
10.0.0.5\tbuild.lan.example.org build
10.0.0.6\tbuild.lan.example.org
# the following lines are desirable for IPv6 capable hosts
::1     localhost ip6-localhost ip6-loopback
"""


def test_hosts_file_first_name_and_forward_check():
    names = parse_hosts_file(HOSTS)
    ip = ipaddress.ip_address
    assert names[ip("127.0.0.1")] == "localhost" and names[ip("::1")] == "localhost"
    assert names[ip("127.0.1.1")] == "oldhost.lan.example.org"
    # build.lan.example.org looks up forward to 10.0.0.5: for 10.0.0.6 libwrap's double
    # check fails, its name counts as unknown
    assert ip("10.0.0.6") not in names


def test_names_from_etc_hosts_are_granted_surely():
    names = parse_hosts_file(HOSTS)
    tw = wrappers("ALL: localhost\nin.fingerd: .lan.example.org\n", "ALL: ALL\n")
    compiled = tw.compile("in.fingerd", names=names)
    assert set(compiled.allow) == {"127.0.0.1", "127.0.1.1", "10.0.0.5", "::1"}
    assert not compiled.exact  # an address outside /etc/hosts may still resolve in DNS
    assert "from /etc/hosts" in compiled.findings[0].message
    # LOCAL: names without a dot
    local = wrappers("ALL: LOCAL\n", "ALL: ALL\n").compile("x", names=names)
    assert set(local.allow) == {"127.0.0.1", "::1"}


def test_a_name_denial_spares_addresses_whose_name_is_known_to_differ():
    names = parse_hosts_file(HOSTS + "192.0.2.1 ok.example.net\n10.0.0.9 x.evil.example\n")
    tw = wrappers("in.ftpd: 10.0.0.0/8\n", "in.ftpd: .evil.example\n")
    compiled = tw.compile("in.ftpd", names=names)
    assert allowed_by(compiled, "192.0.2.1") and allowed_by(compiled, "127.0.0.1")
    assert allowed_by(compiled, "10.0.0.9")  # granted by hosts.allow before hosts.deny
    assert not allowed_by(compiled, "198.51.100.1")  # unknown: could be in .evil.example


def test_rules_that_cannot_matter_are_not_reported():
    """Nothing follows a name rule and the default grants: exact, no warning."""
    compiled = wrappers("sshd: .example.com\n").compile("sshd")
    assert compiled.allow is None and compiled.exact and compiled.findings == ()


def test_read_host_names_only_when_files_come_first(tmp_path):
    (tmp_path / "hosts").write_text(HOSTS)
    assert read_host_names(tmp_path) is None  # no nsswitch.conf: glibc asks DNS first
    (tmp_path / "nsswitch.conf").write_text("passwd: files\nhosts:          dns files\n")
    assert read_host_names(tmp_path) is None
    (tmp_path / "nsswitch.conf").write_text("passwd: files\nhosts:          files dns\n")
    assert read_host_names(tmp_path)[ipaddress.ip_address("127.0.0.1")] == "localhost"


TABLE = parse_hosts_file(HOSTS + "192.0.2.7 gate.example.com\n10.9.0.1 a.evil.org\n")
table_addresses = st.sampled_from([str(a) for a in TABLE if a.version == 4])
table_names = st.sampled_from([".example.com", "gate.example.com", "LOCAL", "KNOWN", "UNKNOWN",
                               "localhost", ".lan.example.org", ".evil.org", "PARANOID"])
client_list_n = st.lists(st.one_of(v4_pattern, table_names), min_size=1, max_size=3)
rule_n = st.tuples(st.sampled_from(["svc", "ALL"]), client_list_n, st.one_of(st.none(), client_list_n),
                   st.sampled_from(["", " : allow", " : deny"]))


@settings(max_examples=60, deadline=None)
@given(st.lists(rule_n, max_size=4), st.lists(rule_n, max_size=4),
       st.lists(st.one_of(ipv4, table_addresses), min_size=1, max_size=6), names)
def test_compiled_access_with_etc_hosts_is_never_wider(allow_rules, deny_rules, addresses, other):
    """Addresses in /etc/hosts have their name from there; any other may have any name."""
    tw = wrappers(render(allow_rules), render(deny_rules))
    compiled = tw.compile("svc", names=TABLE)
    for address in addresses:
        hostname = TABLE.get(ipaddress.ip_address(address), other)
        if allowed_by(compiled, address):
            assert tw.allows("svc", address, hostname), (address, hostname)
        if compiled.exact:
            assert allowed_by(compiled, address) == tw.allows("svc", address, hostname)


def test_multicast_names_in_etc_hosts_are_no_clients():
    names = parse_hosts_file("ff02::1 ip6-allnodes\n0.0.0.0 nothing\n::1 localhost\n")
    assert list(names) == [ipaddress.ip_address("::1")]


# convert, import and the generator skip the reader for a file that can hold no rule
# (missing, or libwrap's comment-only template): that shortcut must never hide a rule.
LINE_PIECES = st.sampled_from(["#", " ", "\t", "\r", "\\", "ALL", ":", "127.0.0.1", "\f", "x"])


@settings(max_examples=300)
@given(st.lists(st.lists(LINE_PIECES, max_size=6).map("".join), max_size=6).map("\n".join))
def test_a_file_skipped_as_ruleless_holds_no_rule_for_the_reader(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("tables") / "hosts.allow"
    path.write_text(text)
    if not may_hold_rules(path):
        rules, _ = read_table(text, str(path), "allow")
        assert rules == (), text


def test_the_comment_only_templates_are_skipped_and_a_rule_is_not(tmp_path):
    template = ("# /etc/hosts.allow: list of hosts that are allowed to access the system.\n"
                "#                   See the manual pages hosts_access(5) and hosts_options(5).\n"
                "#\n# Example:    ALL: LOCAL @some_netgroup\n\n")
    (tmp_path / "hosts.allow").write_text(template)
    assert not may_hold_rules(tmp_path / "hosts.allow")
    assert not may_hold_rules(tmp_path / "hosts.deny")  # missing
    (tmp_path / "hosts.deny").write_text(template + " # indented: a rule line to libwrap\n")
    assert may_hold_rules(tmp_path / "hosts.deny")
    (tmp_path / "hosts.deny").write_text(template + "ALL: ALL\n")
    assert may_hold_rules(tmp_path / "hosts.deny")
