"""tcp_wrappers: hosts.allow / hosts.deny read, decided, and compiled for systemd.

The decisions are checked against the real libwrap through `tcpdmatch -d` (tcpd
package), which reads hosts.allow/deny from the current directory.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inetd2systemd.config.tcpwrappers import (
    PatternList, TcpWrappers, address_pattern, parse_hosts_access, read_tcpwrappers,
)
from inetd2systemd.errors import ConfigError


def wrappers(allow: str = "", deny: str = "") -> TcpWrappers:
    return TcpWrappers(parse_hosts_access(allow, "hosts.allow", kind="allow"),
                       parse_hosts_access(deny, "hosts.deny", kind="deny"))


def allowed_by(compiled, address: str) -> bool:
    """What systemd does with IPAddressDeny=any + IPAddressAllow=compiled.allow."""
    if compiled.allow is None:
        return True
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(n) for n in compiled.allow)


# -- reading ------------------------------------------------------------------------------


def test_daemon_lists_commas_and_blanks_and_comments():
    rules = parse_hosts_access(
        "# a comment\n\nin.fingerd, in.telnetd  in.ftpd : 10.0.0.1\n   # indented comment\n",
        "hosts.allow", kind="allow")
    assert len(rules) == 1
    assert rules[0].daemons == PatternList(("in.fingerd", "in.telnetd", "in.ftpd"))
    assert rules[0].source.line == 3


def test_backslash_continuation_joins_lines_and_keeps_the_first_line_number():
    rules = parse_hosts_access("\n in.fingerd : 10.0.0.1, \\\n   10.0.0.2 \\\n : deny\n",
                               "hosts.allow", kind="allow")
    assert len(rules) == 1
    rule = rules[0]
    assert rule.source.line == 2
    assert rule.clients.items == ("10.0.0.1", "10.0.0.2")
    assert rule.grants is False  # the `deny` option on the continued line applies


def test_nested_except_is_right_associative():
    # a EXCEPT b EXCEPT c == a EXCEPT (b EXCEPT c): 10.1.2.3 is in c, so it is let back in
    tw = wrappers("ALL: 10. EXCEPT 10.1. EXCEPT 10.1.2.\n", "ALL: ALL\n")
    assert tw.allow[0].clients == PatternList(("10.",), PatternList(("10.1.",), PatternList(("10.1.2.",))))
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
])
def test_address_forms_compile_exactly(pattern, inside, outside):
    tw = wrappers(f"in.tftpd : {pattern}\n", "ALL : ALL\n")
    compiled = tw.compile("in.tftpd")
    assert compiled.exact and not compiled.findings
    assert allowed_by(compiled, inside) and tw.allows("in.tftpd", inside)
    assert not allowed_by(compiled, outside) and not tw.allows("in.tftpd", outside)


def test_non_contiguous_netmask_is_not_a_cidr():
    assert address_pattern("10.0.0.0/255.0.255.0") is None
    tw = wrappers("ALL: 10.0.0.0/255.0.255.0\n", "ALL: ALL\n")
    compiled = tw.compile("x")
    assert not compiled.exact and compiled.allow == ()
    assert "netmask" in compiled.findings[0].message


@pytest.mark.parametrize("pattern, why", [
    (".example.com", "domain"),
    ("gate.example.com", "host name"),
    ("LOCAL", "host name"),
    ("KNOWN", "host name"),
    ("UNKNOWN", "host name"),
    ("PARANOID", "host name"),
    ("@trusted-hosts", "netgroup"),
    ("alice@10.0.0.0/8", "ident"),
])
def test_name_based_grants_are_reported_and_not_granted(pattern, why):
    """In hosts.allow a pattern systemd cannot check grants nobody: stricter, reported."""
    tw = wrappers(f"sshd: 127.0.0.2\nsshd: {pattern}\n", "sshd: ALL\n")
    compiled = tw.compile("sshd", "ssh")
    assert compiled.allow == ("127.0.0.2/32",)
    assert not compiled.exact
    finding = compiled.findings[0]
    assert finding.service == "ssh" and finding.source.line == 2
    assert why in finding.message and "stricter" in finding.message


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
    assert tw.compile("other").allow == ("127.0.0.4/32",)


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


@pytest.mark.parametrize("text, column, message", [
    ("in.fingerd 10.0.0.1\n", None, "missing ':'"),
    ("in.fingerd : EXCEPT 10.0.0.1\n", 13, "EXCEPT"),
    ("in.fingerd : 10.0.0.1 EXCEPT\n", 13, "EXCEPT"),
    (" : 10.0.0.1\n", 1, "empty daemon"),
    ("in.fingerd : 10.0.0.1 : frobnicate yes\n", 24, "unknown option"),
    ("in.fingerd : 10.0.0.1 : allow : severity auth.info\n", 24, "last"),
    ("in.fingerd : 10.0.0.1 : spawn\n", 24, "needs a value"),
])
def test_bad_rules_name_file_line_and_column(text, column, message):
    with pytest.raises(ConfigError) as info:
        parse_hosts_access("# first line\n" + text, "/etc/hosts.allow", kind="allow")
    err = info.value
    assert err.file == "/etc/hosts.allow" and err.line == 2 and message in err.msg
    if column is not None:
        assert err.column == column


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


# -- against the real libwrap --------------------------------------------------------------

TCPDMATCH = shutil.which("tcpdmatch") or "/usr/sbin/tcpdmatch"

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
             "192.168.8.1", "172.16.5.5", "2001:db8::1", "2001:db8:1::1", "8.8.4.4")


@pytest.fixture(scope="module")
def tcpdmatch_dir(tmp_path_factory):
    if not shutil.which(TCPDMATCH) and not shutil.os.path.exists(TCPDMATCH):
        pytest.skip("tcpdmatch (Debian package tcpd) is not installed")
    d = tmp_path_factory.mktemp("libwrap")
    (d / "hosts.allow").write_text(RULESET_ALLOW)
    (d / "hosts.deny").write_text(RULESET_DENY)
    return d


def libwrap_grants(directory, daemon: str, address: str) -> bool:
    out = subprocess.run([TCPDMATCH, "-d", daemon, address], cwd=directory,
                         capture_output=True, text=True, timeout=30).stdout
    verdict = [line for line in out.splitlines() if line.startswith("access:")][-1]
    return verdict.split()[-1] == "granted"


def test_decisions_match_the_real_libwrap(tcpdmatch_dir):
    tw = wrappers(RULESET_ALLOW, RULESET_DENY)
    for daemon in DAEMONS:
        for address in ADDRESSES:
            assert tw.allows(daemon, address) == libwrap_grants(tcpdmatch_dir, daemon, address), \
                (daemon, address)


def test_compiled_sets_match_the_real_libwrap_where_exact(tcpdmatch_dir):
    tw = wrappers(RULESET_ALLOW, RULESET_DENY)
    for daemon in ("in.fingerd", "in.tftpd", "in.telnetd", "in.ftpd"):
        compiled = tw.compile(daemon)
        assert compiled.exact, daemon
        for address in ADDRESSES:
            assert allowed_by(compiled, address) == libwrap_grants(tcpdmatch_dir, daemon, address), \
                (daemon, address)
    # sshd's `.example.com` grant is name-based: only the ALL rule's v6 network remains.
    assert tw.compile("sshd").allow == ("2001:db8::/48",) and not tw.compile("sshd").exact


# -- never wider than libwrap, whatever the client's name -----------------------------------

octet = st.integers(0, 255)
ipv4 = st.tuples(octet, octet, octet, octet).map(lambda t: ".".join(map(str, t)))
v4_pattern = st.one_of(
    st.builds(lambda a, n: f"{ipaddress.ip_network(f'{a}/{n}', strict=False)}", ipv4, st.integers(0, 32)),
    st.builds(lambda t: ".".join(map(str, t)) + ".", st.tuples(octet, octet)),
    ipv4,
)
name_pattern = st.sampled_from([".example.com", "host.example.com", "LOCAL", "KNOWN",
                                "UNKNOWN", "@ng", "ALL"])
client_list = st.lists(st.one_of(v4_pattern, v4_pattern, name_pattern), min_size=1, max_size=3)
rule = st.tuples(st.sampled_from(["svc", "ALL", "other"]), client_list,
                 st.one_of(st.none(), client_list), st.sampled_from(["", " : allow", " : deny"]))
names = st.sampled_from([None, "localhost", "host.example.com", "a.evil.org"])


def render(rules) -> str:
    lines = []
    for daemon, clients, exc, opt in rules:
        text = f"{daemon} : {', '.join(clients)}"
        if exc:
            text += f" EXCEPT {' '.join(exc)}"
        lines.append(text + opt)
    return "\n".join(lines) + "\n"


@settings(max_examples=100, deadline=None)
@given(st.lists(rule, max_size=4), st.lists(rule, max_size=4), st.lists(ipv4, min_size=1, max_size=6),
       names)
def test_compiled_access_is_never_wider(allow_rules, deny_rules, addresses, hostname):
    tw = wrappers(render(allow_rules), render(deny_rules))
    compiled = tw.compile("svc")
    for address in addresses:
        if allowed_by(compiled, address):
            assert tw.allows("svc", address, hostname), (address, hostname)
        if compiled.exact:
            assert allowed_by(compiled, address) == tw.allows("svc", address, hostname)


@pytest.mark.parametrize("allow, why", [
    ("in.fingerd@192.0.2.1 : 10.0.0.0/8\n", "server address"),       # daemon@host
    ("in.fingerd : 10.0.0.*\n", "host name"),                         # wildcards
    ("in.fingerd : /etc/hosts.trusted\n", "read from a file"),        # pattern file
])
def test_other_forms_systemd_cannot_check_are_reported(allow, why):
    tw = wrappers(allow, "ALL: ALL\n")
    compiled = tw.compile("in.fingerd", "finger")
    assert compiled.allow == () and not compiled.exact
    assert why in compiled.findings[0].message


def test_daemon_at_host_matches_the_daemon_part_at_runtime():
    tw = wrappers("in.fingerd@192.0.2.1 : 10.0.0.0/8\n", "ALL: ALL\n")
    assert tw.allows("in.fingerd", "10.1.1.1")
    assert not tw.allows("in.telnetd", "10.1.1.1")
    assert tw.compile("in.telnetd").allow == ()  # not named: only hosts.deny applies


# -- /etc/hosts: names a reverse lookup answers without DNS ---------------------------------

from inetd2systemd.config.tcpwrappers import parse_hosts_file, read_host_names  # noqa: E402

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
    assert set(compiled.allow) == {"127.0.0.1/32", "127.0.1.1/32", "10.0.0.5/32", "::1/128"}
    assert not compiled.exact  # an address outside /etc/hosts may still resolve in DNS
    assert "from /etc/hosts" in compiled.findings[0].message
    # LOCAL: names without a dot
    local = wrappers("ALL: LOCAL\n", "ALL: ALL\n").compile("x", names=names)
    assert set(local.allow) == {"127.0.0.1/32", "::1/128"}


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
