"""Fuzzing hosts.allow / hosts.deny: the reader, the runtime decision and the compiler.

Any bytes give rules and findings (never an exception), in time linear in the input; a
finding names its file and line; the compiled set never admits an address that the
runtime decision (libwrap's) refuses. Inputs are real hosts.allow lines, mutated, plus the
shapes that broke the first version: leading-zero octets, EXCEPT chains thousands long,
lines past libwrap's buffer, NUL bytes, stray brackets and colons.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from access_support import admitted, mutated
from fuzz_support import (BELOW_QUADRATIC, fuzz_settings, growth_ratio, regression_cases,
                          result_or_located_error)
from inetd2systemd.config.tcpwrappers import TcpWrappers, read_table

# Lines as they are found in the wild (Debian's hosts.allow examples, hosts_access(5),
# hosts_options(5)), and the forms libwrap reads differently from how they look.
SEEDS = [
    "ALL: LOCAL @some_netgroup", "ALL: .foobar.edu EXCEPT terminalserver.foobar.edu",
    "in.tftpd: LOCAL, .my.domain", "ALL EXCEPT in.fingerd: other.host.name, .other.domain",
    "sshd: 192.168.1.0/255.255.255.0", "sshd: 10.0.0.0/8 : allow", "ALL: ALL : deny",
    "in.telnetd: [3ffe:505:2:1::]/64", "ALL: [::1]", "sshd: 192.168.", "portmap: 127.0.0.1",
    "in.fingerd: ALL : spawn (/usr/sbin/safe_finger -l @%h | mail root) & : twist /bin/false",
    "ALL: PARANOID", "ALL: UNKNOWN : severity auth.warning", "vsftpd: ALL EXCEPT 10.1.",
    "sshd: 192.168.01.", "sshd: 10.1.2.3/24", "sshd: 0.0.0.0/0", "sshd: 10.0.0.0/0.255.255.255",
    "sshd@10.0.0.1: ALL", "22: 10.0.0.1", "in.*: *.example.com", "sshd: alice@10.0.0.0/8",
    "ALL: /etc/hosts.trusted", "ALL: 10.0.0.1 : rfc931 5 : nice 5 : umask 022 : banners /b",
    "sshd: ALL : user nobody.nogroup", "sshd: ALL : setenv A b\\:c : keepalive : linger 3",
    "sshd : 10. EXCEPT 10.1. EXCEPT 10.1.2.", "# a comment", "  # indented: ALL", "",
]
DAEMONS = ("sshd", "in.telnetd", "vsftpd", "portmap", "in.fingerd")
PROBES = ("10.0.0.1", "10.1.2.3", "10.1.3.3", "192.168.1.7", "127.0.0.1", "8.8.8.8",
          "::1", "3ffe:505:2:1::9", "::ffff:10.1.2.3", "0.0.0.1")

_noise = st.sampled_from([":", "\\", "\\\n", "[", "]", ",", " EXCEPT ", "except", "@", "/",
                          "\0", "\r", "\t", "*", "?", ".", "0", "255", "ALL", "=", "\n", "\xff",
                          "/255.0.255.0", "/-1", "/33", "[::]/0", "::ffff:", "%h"])


_line = st.one_of(
    st.sampled_from(SEEDS),
    mutated(SEEDS, _noise, 4),
    st.text(alphabet=st.characters(max_codepoint=255), max_size=60),
    st.integers(1, 300).map(lambda n: "ALL: ALL" + " EXCEPT 10.0.0.1" * n),
    st.integers(2040, 2060).map(lambda n: "sshd: " + "1" * (n - 6)),
)
endings = st.sampled_from(["\n", "", "\\\n", "\r\n"])


def exercise(allow: bytes, deny: bytes) -> None:
    rules, findings = read_table(allow.decode("latin-1"), "/etc/hosts.allow", "allow")
    denials, more = read_table(deny.decode("latin-1"), "/etc/hosts.deny", "deny")
    for finding in findings + more:
        assert finding.source.file.startswith("/etc/hosts.") and finding.source.line >= 1
    tw = TcpWrappers(rules, denials)
    for daemon in DAEMONS:
        compiled = tw.compile(daemon, ports=(22,))
        for address in PROBES:
            verdict = tw.allows(daemon, address, None, port=22)
            if admitted(compiled.allow, address):
                assert verdict, (daemon, address, compiled.allow)
            if compiled.exact:
                assert admitted(compiled.allow, address) == verdict, (daemon, address)


@fuzz_settings()
@given(st.lists(_line, max_size=15), endings, st.lists(_line, max_size=6), endings)
def test_any_hosts_files_give_rules_and_findings(allow, allow_end, deny, deny_end):
    allow_bytes = ("\n".join(allow) + allow_end).encode("latin-1")
    deny_bytes = ("\n".join(deny) + deny_end).encode("latin-1")
    result_or_located_error(lambda: exercise(allow_bytes, deny_bytes),
                            len(allow_bytes) + len(deny_bytes), errors=())


@pytest.mark.parametrize("name, data", regression_cases("tcpwrappers"))
def test_kept_regressions(name, data):
    """Each kept file is read as hosts.allow and as hosts.deny."""
    result_or_located_error(lambda: exercise(data, b""), len(data), errors=())
    result_or_located_error(lambda: exercise(b"", data), len(data), errors=())


# -- time linear in the input ------------------------------------------------------------

def _rules(n: int) -> str:
    lines = []
    for i in range(n):
        a, b, c = i >> 16 & 255, i >> 8 & 255, i & 255
        lines.append(("sshd, in.ftpd: 10.%d.%d.%d" % (a, b, c), "ALL: 172.%d.%d.0/255.255.255.0 "
                      "EXCEPT 172.%d.%d.7" % (a, b, a, b), "sshd: 192.%d.%d. : deny" % (a, b),
                      "in.x: .host%d.example" % i, "sshd: 10.%d.%d.%d/%d" % (a, b, c, 8 + i % 25))[i % 5])
    return "\n".join(lines) + "\n"


def _read_and_compile(text: str) -> None:
    rules, _ = read_table(text, "hosts.allow", "allow")
    TcpWrappers(rules, ()).compile("sshd")


def test_reading_and_compiling_grow_linearly_with_the_rules():
    texts = {n: _rules(n) for n in (2000, 20000)}
    assert growth_ratio(lambda n: _read_and_compile(texts[n]), 2000) < BELOW_QUADRATIC


def test_a_long_except_chain_grows_linearly():
    """10,000 EXCEPTs once took 1.5 GB and a RecursionError."""
    def chain(n: int) -> str:
        return "sshd: ALL" + "".join(f" EXCEPT 10.{i >> 8 & 255}.{i & 255}.1" for i in range(n)) + "\n"
    texts = {n: chain(n) for n in (1000, 10000)}

    def run(n: int) -> None:
        rules, _ = read_table(texts[n], "hosts.allow", "allow")
        tw = TcpWrappers(rules, ())
        tw.compile("sshd")
        tw.allows("sshd", "10.0.0.1")
    assert growth_ratio(run, 1000) < BELOW_QUADRATIC


def test_one_rule_with_many_patterns_grows_linearly():
    texts = {n: "sshd: " + ", ".join(f"10.{i >> 8 & 255}.{i & 255}." for i in range(n)) + "\n"
             for n in (100, 1000)}

    def run(n: int) -> None:
        rules, _ = read_table(texts[n], "hosts.allow", "allow")
        TcpWrappers(rules, ()).compile("sshd")
    assert growth_ratio(run, 100) < BELOW_QUADRATIC


def test_wildcard_patterns_are_listed_or_bounded():
    """`?` patterns are listed octet by octet (the address text is certain, the host
    name is not); past a bound they are only bounded."""
    deny = read_table("ALL: ALL\n", "hosts.deny", "deny")[0]
    listed = TcpWrappers(read_table("sshd: ?.?.?.?\n", "a", "allow")[0], deny)
    compiled = listed.compile("sshd")
    assert listed.allows("sshd", "1.2.3.4") and admitted(compiled.allow, "1.2.3.4")
    assert not listed.allows("sshd", "10.0.0.2") and not admitted(compiled.allow, "10.0.0.2")
    scattered = TcpWrappers(read_table("sshd: *1*1*1*1*\n", "a", "allow")[0], deny)
    compiled = scattered.compile("sshd")
    assert scattered.allows("sshd", "11.1.1.1") and not compiled.exact
    assert not admitted(compiled.allow, "22.2.2.2")
