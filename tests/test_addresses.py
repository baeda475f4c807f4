"""only_from / no_access: every address form, the CIDR compiler, and the real xinetd's verdicts.

The last tests start the packaged /usr/sbin/xinetd on private loopback ports with a set
of address lists and connect from several source addresses (127.0.0.0/8 is all
loopback, so a client can bind 127.0.0.2, 127.0.0.3, ... as its source): what xinetd
lets in must be what `AccessList.allows` says and what `compile_allow`'s CIDRs admit.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import time

import pytest

from inetd2systemd.config.addresses import AccessList, AddressError, compile_allow, parse_address, \
    parse_networks

NETWORKS = parse_networks("loopback 127\nlink-local 169.254.0.0\ncorp 10.20\n")


def nets(text: str) -> list[str]:
    return [str(n) for n in parse_address(text, networks=NETWORKS).networks]


# -- the address forms -------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("10.1.2.3", ["10.1.2.3/32"]),
    ("10.1.2.0", ["10.1.2.0/24"]),  # trailing .0 octets are wildcards
    ("10.1.0.0", ["10.1.0.0/16"]),
    ("10.0.0.0", ["10.0.0.0/8"]),
    ("10.0.5.0", ["10.0.5.0/24"]),  # only the trailing zeros count
    ("0.0.0.0", ["0.0.0.0/0"]),
    ("10.1.{2,3}", ["10.1.2.0/24", "10.1.3.0/24"]),
    ("10.1.2.{3,4}", ["10.1.2.3/32", "10.1.2.4/32"]),
    ("10.{1}", ["10.1.0.0/16"]),
    ("192.168.1.77/24", ["192.168.1.0/24"]),  # host bits ignored, as xinetd masks both sides
    ("2001:db8::/32", ["2001:db8::/32"]),
    ("2001:db8::1", ["2001:db8::1/128"]),
    ("::", ["::/0"]),
    ("loopback", ["127.0.0.0/8"]),  # /etc/networks `127`: a class A net
    ("link-local", ["169.254.0.0/32"]),  # written 169.254.0.0: getnetbyname's quirk, kept
    ("corp", ["10.20.0.0/16"]),
])
def test_numeric_forms_become_the_networks_xinetd_matches(text, expected):
    assert nets(text) == expected


def test_names_are_kept_as_names():
    assert parse_address("Host.Example.", networks=NETWORKS).kind == "host"
    assert parse_address("Host.Example.", networks=NETWORKS).name == "host.example"
    domain = parse_address(".corp.example", networks=NETWORKS)
    assert (domain.kind, domain.name) == ("domain", ".corp.example")


@pytest.mark.parametrize("text", ["10.1.{2,,3}", "10.{1}.2", "10.1.{300}", "10.1.2.3/40",
                                  "10.1.2.3,10.1.2.4", "fe80::zz", "999.1.2.3", "a b"])
def test_bad_entries_are_refused(text):
    with pytest.raises(AddressError):
        parse_address(text, networks=NETWORKS)


# -- compiling into systemd's IPAddressAllow= -----------------------------------------------

def admitted(allow: tuple[str, ...] | None, ip: str) -> bool:
    """What systemd does with IPAddressDeny=any + IPAddressAllow=allow."""
    if allow is None:
        return True
    address = ipaddress.ip_address(ip)
    return any(address in ipaddress.ip_network(a) for a in allow)


def test_no_lists_means_no_restriction():
    access = compile_allow(None, ())
    assert access.allow is None and not access.stricter


def test_deny_wins_inside_allow_by_cidr_subtraction():
    allow, unexpressed = compile_allow(("10.0.0.0",), ("10.1.2.3", "10.200.0.0"))
    assert unexpressed == ()
    assert admitted(allow, "10.1.2.2") and admitted(allow, "10.1.2.4")
    assert not admitted(allow, "10.1.2.3")
    assert not admitted(allow, "10.200.7.7")
    assert not admitted(allow, "11.0.0.1")
    assert "10.1.2.3" not in allow and len(allow) < 64  # collapsed, not per host


def test_no_access_alone_allows_everyone_else_v4_and_v6():
    allow, _ = compile_allow(None, ("192.168.{1,2}",))
    assert not admitted(allow, "192.168.2.9")
    assert admitted(allow, "192.168.3.9") and admitted(allow, "8.8.8.8")
    assert admitted(allow, "2001:db8::1")


def test_empty_only_from_lets_nobody_in():
    access = compile_allow((), ())
    assert access.allow == ()


def test_an_allow_entry_fully_denied_disappears():
    allow, _ = compile_allow(("10.1.2.0", "192.0.2.5"), ("10.0.0.0",))
    assert allow == ("192.0.2.5",)


def test_unresolvable_only_from_name_is_stricter_and_said():
    access = compile_allow(("127.0.0.1", "build.example"), ())
    assert access.allow == ("127.0.0.1",)
    assert access.unexpressed == ("build.example",) and access.stricter
    assert any("build.example" in n and "stricter" in n for n in access.notes)


def test_no_access_name_never_widens_access():
    access = compile_allow(("10.0.0.0",), (".evil.example",))
    assert access.allow == () and access.stricter
    assert access.unexpressed == (".evil.example",)


def test_resolver_turns_host_names_into_addresses_with_a_staleness_note():
    table = {"build.example": ("10.9.8.7", "2001:db8::7"), "bad.example": ("10.9.8.6",)}
    access = compile_allow(("10.9.8.0", "build.example"), ("bad.example",),
                           resolve=lambda name: table.get(name, ()))
    assert admitted(access.allow, "2001:db8::7") and admitted(access.allow, "10.9.8.7")
    assert not admitted(access.allow, "10.9.8.6")
    assert access.unexpressed == () and not access.stricter
    assert len(access.notes) == 2 and all("resolved now" in n for n in access.notes)


# -- the runtime check ---------------------------------------------------------------------

def test_access_list_follows_xinetd_precedence():
    acl = AccessList(("10.0.0.0", "2001:db8::/32"), ("10.0.0.5",),
                     reverse_lookup=lambda ip: None)
    assert acl.allows("10.3.4.5")
    assert not acl.allows("10.0.0.5")  # in both lists: no_access wins
    assert not acl.allows("11.0.0.1")
    assert acl.allows("2001:db8::9")
    assert acl.allows("::ffff:10.3.4.5")  # a dual-stack socket's view of a v4 client
    assert not acl.allows("::ffff:10.0.0.5")


def test_access_list_checks_names_by_reverse_lookup():
    names = {"10.1.1.1": "ws1.corp.example", "10.1.1.2": "laptop.guest.example",
             "10.1.1.3": "build.example"}
    acl = AccessList(("build.example", ".corp.example"), (".guest.example",),
                     networks=NETWORKS, reverse_lookup=names.get)
    assert acl.allows("10.1.1.1") and acl.allows("10.1.1.3")
    assert not acl.allows("10.1.1.2")
    assert not acl.allows("10.1.1.4")  # no reverse name: matches no name entry


def test_access_list_without_lists_admits_everyone_without_lookups():
    def fail(ip):
        raise AssertionError("no lookup expected")
    assert AccessList(None, (), reverse_lookup=fail).allows("203.0.113.9")


# -- against the real xinetd -----------------------------------------------------------------

XINETD = "/usr/sbin/xinetd"
CASES = [  # (only_from, no_access): one xinetd service each
    ("127.0.0.0/8", "127.0.0.3"),
    ("127.0.{0}", ""),
    ("127.0.0.2 127.0.0.4", ""),
    ("", "127.0.0.0"),  # `only_from` unset; no_access 127.0.0.0 = 127/8 by wildcard
    (None, "127.0.0.2/31"),
    ("127.0.0.2", "127.0.0.2"),  # both match: denied
]
SOURCES = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.1.1"]


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _echoes(port: int, source: str) -> bool:
    """Whether xinetd's echo answers a client bound to `source` (it accepts then closes
    a refused client, so a refusal reads as end-of-file)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)) as c:
        c.sendall(b"ping\n")
        try:
            return c.recv(16) == b"ping\n"
        except ConnectionResetError:
            return False


@pytest.fixture(scope="module")
def real_xinetd(tmp_path_factory):
    if not os.access(XINETD, os.X_OK) or os.geteuid() != 0:
        pytest.skip("needs the packaged xinetd and root")
    tmp = tmp_path_factory.mktemp("xinetd")
    ports = _free_ports(len(CASES))
    entries = []
    for (only_from, no_access), port in zip(CASES, ports):
        lines = ["type = INTERNAL UNLISTED", "socket_type = stream", "wait = no",
                 f"port = {port}", "bind = 127.0.0.1", "flags = NOLIBWRAP", "cps = 1000 1"]
        if only_from is not None and only_from != "":
            lines.append(f"only_from = {only_from}")
        if no_access:
            lines.append(f"no_access = {no_access}")
        entries.append(f"service echo\n{{\n\tid = echo-{port}\n\t" + "\n\t".join(lines) + "\n}\n")
    conf = tmp / "xinetd.conf"
    conf.write_text("\n".join(entries))
    proc = subprocess.Popen([XINETD, "-dontfork", "-f", str(conf), "-filelog", str(tmp / "log"),
                             "-pidfile", str(tmp / "pid")], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", ports[-1]), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield dict(zip(range(len(CASES)), ports))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_verdicts_match_the_real_xinetd(real_xinetd, case):
    only_from, no_access = CASES[case]
    only = None if only_from is None or only_from == "" else tuple(only_from.split())
    deny = tuple(no_access.split())
    acl = AccessList(only, deny, reverse_lookup=lambda ip: None)
    allow, _ = compile_allow(only, deny)
    for source in SOURCES:
        real = _echoes(real_xinetd[case], source)
        assert acl.allows(source) == real, (CASES[case], source)
        assert admitted(allow, source) == real, (CASES[case], source, allow)


# -- the compiler against the definition, on random lists ------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

_v4 = st.builds(lambda a, p: str(ipaddress.ip_network((a, p), strict=False)),
                st.integers(0, 2**32 - 1), st.integers(0, 32))
_probe = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))


@settings(max_examples=200, deadline=None)
@given(st.lists(_v4, max_size=5), st.lists(_v4, max_size=5), st.lists(_probe, min_size=1,
                                                                       max_size=20))
def test_allow_set_is_exactly_only_from_minus_no_access(only, deny, probes):
    allow, _ = compile_allow(tuple(only), tuple(deny))
    # the probes, plus the edges of every listed network, where off-by-ones would show
    edges = [str(n[i]) for n in map(ipaddress.ip_network, only + deny) for i in (0, -1)]
    for ip in probes + edges:
        address = ipaddress.ip_address(ip)
        expected = any(address in ipaddress.ip_network(n) for n in only) and \
            not any(address in ipaddress.ip_network(n) for n in deny)
        assert admitted(allow, ip) == expected, (only, deny, ip, allow)
