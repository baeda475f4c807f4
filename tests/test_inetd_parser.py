"""inetd.conf reader: every form of the grammar, each flavour difference, every error.

The texts are the lines an administrator has in /etc/inetd.conf; the assertions are on
what the converted services will do (addresses, argv, users, limits) and on the exact
file:line:column and wording of each error.
"""

from __future__ import annotations

import shutil
import string
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import inetd_support
from support import DATA

from inetd2systemd.config import load, looks_like_xinetd, merge, same_address
from inetd2systemd.config.inetd import BUSYBOX_PATH, parse_inetd, read_inetd, unique_ids
from inetd2systemd.config.services import load_services, parse_services
from inetd2systemd.errors import ConfigError
from inetd2systemd.model import Family, Listen, RateLimit, Severity, SocketType
from inetd2systemd.units.writer import WriterOptions, render

SERVICES = parse_services("""\
echo 7/tcp
echo 7/udp
discard 9/tcp sink null
discard 9/udp sink null
daytime 13/tcp
daytime 13/udp
chargen 19/tcp ttytst source
chargen 19/udp ttytst source
time 37/tcp timserver
time 37/udp timserver
ftp 21/tcp
telnet 23/tcp
tftp 69/udp
finger 79/tcp
auth 113/tcp ident
talk 517/udp
tcpmux 1/tcp
""", "test-services")


def parse(text: str, **kw):
    kw.setdefault("services", SERVICES)
    return parse_inetd(text, "inetd.conf", **kw)


def one(text: str, **kw):
    configuration = parse(text, **kw)
    assert len(configuration.services) == 1, configuration.services
    return configuration.services[0]


@dataclass(frozen=True)
class Bad:
    """The one ERROR finding a bad entry becomes, with its location."""

    file: str
    line: int
    column: int
    msg: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.msg}"


def error(text: str, **kw) -> Bad:
    """A bad entry costs only itself: one ERROR finding at its file:line:column, saying
    what the daemon does about it, and no service for it."""
    configuration = parse(text, **kw)
    errors = [f for f in configuration.findings if f.severity is Severity.ERROR]
    assert len(errors) == 1, configuration.findings
    (finding,) = errors
    assert finding.source.column > 0, finding
    assert all(s.source.line != finding.source.line for s in configuration.services)
    return Bad(finding.source.file, finding.source.line, finding.source.column, finding.message)


# -- fields ---------------------------------------------------------------------------

def test_a_classic_line_gives_every_field():
    s = one("ftp\tstream\ttcp\tnowait\troot\t/usr/sbin/in.ftpd\tin.ftpd -l -a\n")
    assert (s.name, s.id, s.socket_type, s.protocol, s.wait) == \
        ("ftp", "ftp", SocketType.STREAM, "tcp", False)
    assert s.listens == (Listen(Family.DUAL, 21),)
    assert s.server == "/usr/sbin/in.ftpd"
    assert s.argv == ("in.ftpd", "-l", "-a")  # argv[0] as written, not the path
    assert (s.user, s.group) == ("root", None)
    assert str(s.source) == "inetd.conf:1"
    assert s.rate == RateLimit(256, 60, 600)  # openbsd-inetd's -R default, ten minutes off
    assert s.accept


def test_no_arguments_means_argv0_is_the_program_basename():
    s = one("ftp stream tcp nowait root /usr/sbin/in.ftpd\n")
    assert s.argv == ("in.ftpd",)


def test_wait_dgram_service():
    s = one("tftp dgram udp4 wait root /usr/sbin/in.tftpd in.tftpd -s /srv/tftp\n")
    assert s.wait and s.socket_type is SocketType.DGRAM and s.protocol == "udp"
    assert s.listens == (Listen(Family.IPV4, 69),)
    assert s.argv == ("in.tftpd", "-s", "/srv/tftp")


def test_numeric_port_instead_of_a_name():
    s = one("8007 stream tcp nowait root /bin/cat cat\n")
    assert s.listens == (Listen(Family.DUAL, 8007),) and s.name == "8007"


def test_alias_names_resolve_like_getservbyname():
    assert one("ident stream tcp nowait nobody /usr/sbin/identd identd\n").listens[0].port == 113


def test_hash_is_a_comment_only_in_column_one():
    c = parse("# a comment\n\n   \nftp stream tcp nowait root /bin/echo echo a#b # c\n")
    assert c.services[0].argv == ("echo", "a#b", "#", "c")
    assert c.services[0].source.line == 4


def test_argument_words_pass_through_unchanged():
    s = one("ftp stream tcp nowait root /bin/echo echo %h $HOME \\x 'q' \"d\" ;\n")
    assert s.argv == ("echo", "%h", "$HOME", "\\x", "'q'", '"d"', ";")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=string.printable.strip() + "éü€", min_size=1).filter(
    lambda w: not any(c.isspace() for c in w)), min_size=1, max_size=8))
def test_any_argv_of_blank_free_words_is_kept_exactly(words):
    s = one(f"ftp stream tcp nowait root /bin/prog {' '.join(words)}\n")
    assert s.argv == tuple(words)


# -- host prefixes --------------------------------------------------------------------

def test_host_prefix_binds_one_address():
    s = one("127.0.0.1:ftp stream tcp nowait root /bin/cat cat\n")
    assert s.listens == (Listen(Family.IPV4, 21, "127.0.0.1"),)
    assert s.name == "ftp"


def test_bracketed_ipv6_host():
    s = one("[::1]:ftp stream tcp nowait root /bin/cat cat\n")
    assert s.listens == (Listen(Family.IPV6, 21, "::1"),)


def test_host_list_fans_out_to_one_listen_per_address():
    s = one("[127.0.0.1,::1,10.0.0.5]:ftp stream tcp nowait root /bin/cat cat\n")
    assert s.listens == (Listen(Family.IPV4, 21, "127.0.0.1"), Listen(Family.IPV6, 21, "::1"),
                         Listen(Family.IPV4, 21, "10.0.0.5"))


def test_star_means_every_address():
    assert one("*:ftp stream tcp nowait root /bin/cat cat\n").listens == (Listen(Family.DUAL, 21),)


def test_host_line_sets_the_default_until_the_next_one():
    c = parse("127.0.0.1:\nftp stream tcp nowait root /bin/cat cat\n"
              "[::1]:\ntelnet stream tcp nowait root /bin/cat cat\n"
              "*:\nfinger stream tcp nowait root /bin/cat cat\n"
              "10.1.1.1:auth stream tcp nowait root /bin/cat cat\n")
    assert [s.listens for s in c.services] == [
        (Listen(Family.IPV4, 21, "127.0.0.1"),), (Listen(Family.IPV6, 23, "::1"),),
        (Listen(Family.DUAL, 79),), (Listen(Family.IPV4, 113, "10.1.1.1"),)]


def test_host_name_is_resolved_and_reported():
    c = parse("localhost:ftp stream tcp4 nowait root /bin/cat cat\n")
    assert c.services[0].listens == (Listen(Family.IPV4, 21, "127.0.0.1"),)
    assert any("resolved now" in f.message and f.severity is Severity.WARNING
               for f in c.findings)


def test_address_family_must_match_the_protocol():
    e = error("ftp stream tcp nowait root /bin/cat cat\n[::1]:telnet stream tcp4 nowait root "
              "/bin/cat cat\n")
    assert (e.file, e.line, e.column) == ("inetd.conf", 2, 2)  # the address inside [...]
    assert "IPv6" in e.msg and "ipv4 only" in e.msg


# -- protocols and flavours -----------------------------------------------------------

@pytest.mark.parametrize("flavor,token,family", [
    ("openbsd", "tcp", Family.DUAL), ("openbsd", "udp", Family.DUAL),
    ("openbsd", "tcp4", Family.IPV4), ("openbsd", "udp4", Family.IPV4),
    ("openbsd", "tcp6", Family.IPV6), ("openbsd", "udp6", Family.IPV6),
    ("openbsd", "tcp46", Family.DUAL), ("openbsd", "udp46", Family.DUAL),
    ("inetutils", "tcp", Family.IPV4), ("inetutils", "udp", Family.IPV4),
    ("inetutils", "tcp4", Family.IPV4), ("inetutils", "tcp6", Family.IPV6),
    ("inetutils", "tcp6only", Family.IPV6), ("inetutils", "udp6only", Family.IPV6),
    ("xinetd-compat", "tcp", Family.DUAL), ("xinetd-compat", "udp6", Family.IPV6),
])
def test_what_each_protocol_token_means_in_each_flavour(flavor, token, family):
    kind = "stream" if token.startswith("tcp") else "dgram"
    s = one(f"daytime {kind} {token} wait root /bin/cat cat\n", flavor=flavor)
    assert s.listens == (Listen(family, 13),)
    assert s.protocol == token[:3]


@pytest.mark.parametrize("flavor,token", [("openbsd", "tcp6only"), ("inetutils", "tcp46"),
                                          ("openbsd", "sctp"), ("xinetd-compat", "unix")])
def test_a_token_the_flavour_does_not_know_is_an_error(flavor, token):
    e = error(f"ftp stream {token} nowait root /bin/cat cat\n", flavor=flavor)
    assert (e.line, e.column) == (1, 12)
    assert f"unknown protocol {token!r}" in e.msg and "expected one of" in e.msg


def test_unix_socket_service_field_is_a_path():
    s = one("/run/legacy/ctl.sock stream unix nowait root /usr/bin/cat cat\n")
    assert s.listens == (Listen(Family.UNIX, None, "/run/legacy/ctl.sock"),)
    assert s.protocol == "unix" and s.id == "ctl.sock"


def test_unix_socket_path_must_be_absolute():
    e = error("run/x.sock stream unix nowait root /usr/bin/cat cat\n")
    assert e.line == 1 and "must be absolute" in e.msg


def test_buffer_sizes_with_units():
    s = one("ftp stream tcp,rcvbuf=64k,sndbuf=1m nowait root /bin/cat cat\n")
    assert (s.recv_buffer, s.send_buffer) == (64 * 1024, 1024 * 1024)
    s = one("ftp stream tcp6,sndbuf=16384 nowait root /bin/cat cat\n")
    assert (s.recv_buffer, s.send_buffer) == (None, 16384)
    assert s.listens == (Listen(Family.IPV6, 21),)


@pytest.mark.parametrize("proto", ["tcp,rcvbuf=lots", "tcp,rcvbuf=", "tcp,rcvbuf=12g",
                                   "tcp,rcvbuf=0"])
def test_bad_buffer_size(proto):
    e = error(f"ftp stream {proto} nowait root /bin/cat cat\n")
    assert (e.line, e.column) == (1, 12) and "bad buffer size" in e.msg


def test_buffer_options_are_openbsd_only():
    e = error("ftp stream tcp,rcvbuf=1k nowait root /bin/cat cat\n", flavor="inetutils")
    assert "unknown protocol option" in e.msg


def test_rpc_services_are_kept_and_reported_once():
    c = parse("rusers/1-3 dgram rpc/udp wait root /usr/sbin/rpc.rusersd rpc.rusersd\n")
    (s,) = c.services
    assert (s.name, s.protocol, s.listens) == ("rusers", "rpc/udp", ())
    errors = [f for f in c.findings if f.severity is Severity.ERROR]
    assert len(errors) == 1 and "portmapper" in errors[0].message
    assert errors[0].service == "rusers" and str(errors[0].source) == "inetd.conf:1"


@pytest.mark.parametrize("kind", ["raw", "rdm"])
def test_raw_and_rdm_are_kept_and_reported(kind):
    c = parse(f"ftp {kind} tcp nowait root /bin/cat cat\n")
    assert c.services[0].socket_type.value == kind
    assert [f.severity for f in c.findings] == [Severity.ERROR]


def test_seqpacket_is_a_socket_type():
    s = one("/run/sp.sock seqpacket unix nowait root /bin/cat cat\n")
    assert s.socket_type is SocketType.SEQPACKET and s.accept


def test_unknown_socket_type():
    e = error("ftp\tstrem tcp nowait root /bin/cat cat\n")
    assert (e.line, e.column) == (1, 5)
    assert "unknown socket type 'strem'" in e.msg and "stream, dgram" in e.msg


# -- continuation lines ---------------------------------------------------------------

def test_openbsd_joins_lines_starting_with_blanks():
    c = parse("ftp stream tcp nowait root\n\t/usr/sbin/in.ftpd in.ftpd\n    -l -a\n"
              "telnet stream tcp nowait root /bin/cat cat\n")
    assert [s.name for s in c.services] == ["ftp", "telnet"]
    assert c.services[0].argv == ("in.ftpd", "-l", "-a")
    assert c.services[0].source.line == 1


def test_a_blank_line_ends_an_entry():
    c = parse("ftp stream tcp nowait root /bin/echo echo a\n\n"
              "\ttelnet stream tcp nowait root /bin/cat cat\n")
    assert c.services[0].argv == ("echo", "a")
    assert [(s.name, s.source.line) for s in c.services] == [("ftp", 1), ("telnet", 3)]


def test_a_comment_ends_an_entry():
    c = parse("ftp stream tcp nowait root\n# comment\n  /usr/sbin/in.ftpd in.ftpd\n"
              "telnet stream tcp nowait root /bin/cat cat\n")
    assert [(f.source.line, f.severity) for f in c.findings] == [(1, Severity.ERROR),
                                                                 (3, Severity.ERROR)]
    assert all("too few fields" in f.message for f in c.findings)
    assert [s.name for s in c.services] == ["telnet"]


def test_inetutils_has_no_continuation_lines():
    e = error("ftp stream tcp nowait root /bin/cat cat\n  -n\n", flavor="inetutils")
    assert e.line == 2 and "too few fields" in e.msg


# -- wait field and rate limits -------------------------------------------------------

@pytest.mark.parametrize("field,wait,rate", [
    ("nowait.30", False, RateLimit(30, 60, 600)), ("wait.5", True, RateLimit(5, 60, 600)),
    ("nowait", False, RateLimit(256, 60, 600))])
def test_wait_max(field, wait, rate):
    s = one(f"ftp stream tcp {field} root /bin/cat cat\n")
    assert (s.wait, s.rate) == (wait, rate)


def test_default_rate_by_flavour():
    assert one("ftp stream tcp nowait root /bin/cat cat\n", flavor="inetutils").rate == \
        RateLimit(1000, 60, 600)
    assert one("ftp stream tcp nowait root /bin/cat cat\n", flavor="xinetd-compat").rate == \
        RateLimit(50, 1, 10)


@pytest.mark.parametrize("field,column,needle", [
    ("nowiat", 16, "bad wait field"), ("nowait.", 23, "bad max"), ("nowait.0", 23, "bad max"),
    ("wait.x", 21, "bad max"), ("nowait.-1", 23, "bad max")])
def test_bad_wait_field(field, column, needle):
    e = error(f"ftp stream tcp {field} root /bin/cat cat\n")
    assert (e.line, e.column) == (1, column) and needle in e.msg


def test_xinetd_compat_refuses_max():
    e = error("ftp stream tcp nowait.10 root /bin/cat cat\n", flavor="xinetd-compat")
    assert "takes no '.max'" in e.msg


# -- user and group -------------------------------------------------------------------

@pytest.mark.parametrize("flavor,field,user,group", [
    ("openbsd", "nobody.nogroup", "nobody", "nogroup"),
    ("openbsd", "nobody:nogroup", "nobody", "nogroup"),
    ("openbsd", "a.b:c", "a", "b:c"),  # '.' is searched first
    ("inetutils", "a.b:c", "a.b", "c"),  # ':' is searched first
    ("inetutils", "nobody.nogroup", "nobody", "nogroup"),
    ("xinetd-compat", "a.b", "a", "b"),
    ("xinetd-compat", "a:b", "a:b", None),  # xinetd knows only '.'
    ("openbsd", "daemon", "daemon", None),
])
def test_user_group_separator_by_flavour(flavor, field, user, group):
    s = one(f"ftp stream tcp nowait {field} /bin/cat cat\n", flavor=flavor)
    assert (s.user, s.group) == (user, group)


# -- internal services ----------------------------------------------------------------

def test_internal_services_tcp_and_udp():
    c = parse("".join(f"{n} stream tcp nowait root internal\n{n} dgram udp wait root internal\n"
                      for n in ("echo", "discard", "chargen", "daytime", "time")))
    assert [(s.id, s.internal, s.server) for s in c.services[:2]] == \
        [("echo-tcp", "echo", None), ("echo-udp", "echo", None)]
    assert {s.internal for s in c.services} == {"echo", "discard", "chargen", "daytime", "time"}
    assert not c.findings


def test_unknown_internal_service():
    e = error("ftp stream tcp nowait root internal\n")
    assert (e.line, e.column) == (1, 28) and "no internal service 'ftp'" in e.msg


def test_inetutils_tcpmux_is_reported():
    c = parse("tcpmux stream tcp nowait root internal\n", flavor="inetutils")
    assert c.services[0].internal == "tcpmux"
    assert [f.severity for f in c.findings] == [Severity.ERROR]


# -- tcpd -----------------------------------------------------------------------------

def test_tcpd_runs_the_real_program_from_its_daemon_directory():
    c = parse("finger stream tcp nowait nobody /usr/sbin/tcpd in.fingerd -w\n")
    s = c.services[0]
    assert (s.server, s.argv) == ("/usr/sbin/in.fingerd", ("in.fingerd", "-w"))
    assert s.tcp_wrapped and s.libwrap_name == "in.fingerd"
    (finding,) = c.findings
    assert finding.severity is Severity.INFO
    assert "unwrapped to /usr/sbin/in.fingerd" in finding.message
    assert finding.service == "finger"


def test_tcpd_with_an_absolute_program_passes_its_basename_as_argv0():
    s = one("telnet stream tcp nowait root /usr/sbin/tcpd /usr/local/sbin/in.telnetd -h\n")
    assert (s.server, s.argv, s.libwrap_name) == \
        ("/usr/local/sbin/in.telnetd", ("in.telnetd", "-h"), "in.telnetd")


# -- Debian #<off># -------------------------------------------------------------------

OFF = "#<off># telnet\tstream\ttcp\tnowait\ttelnetd\t/usr/sbin/tcpd\t/usr/sbin/in.telnetd\n"


def test_disabled_entries_are_left_out_with_a_note():
    c = parse("# plain comment\n" + OFF + "ftp stream tcp nowait root /bin/cat cat\n")
    assert [s.name for s in c.services] == ["ftp"]
    (note,) = c.findings
    assert note.severity is Severity.INFO and str(note.source) == "inetd.conf:2"
    assert "include-disabled" in note.message


def test_disabled_entries_are_parsed_on_request():
    c = parse(OFF, include_disabled=True)
    (s,) = c.services
    assert s.disabled and s.name == "telnet" and s.server == "/usr/sbin/in.telnetd"
    assert s.source.line == 1


def test_errors_in_included_disabled_entries_point_at_their_column():
    e = error("#<off># telnet stream tcp nowait\n", include_disabled=True)
    assert e.line == 1 and "too few fields" in e.msg


# -- inetutils quoting ----------------------------------------------------------------

def test_inetutils_quotes_whole_words():
    s = one("ftp stream tcp nowait root /bin/echo echo \"two words\" 'single \"q\"' "
            "\"back\\\"slash\"\n", flavor="inetutils")
    assert s.argv == ("echo", "two words", 'single "q"', 'back"slash')


def test_openbsd_has_no_quoting():
    s = one("ftp stream tcp nowait root /bin/echo echo \"two words\"\n")
    assert s.argv == ("echo", '"two', 'words"')


def test_unterminated_quote():
    e = error("ftp stream tcp nowait root /bin/echo echo \"open\n", flavor="inetutils")
    assert (e.line, e.column) == (1, 43) and "unterminated" in e.msg


def test_inetutils_node_prefix():
    s = one("127.0.0.1:ftp stream tcp nowait root /bin/cat cat\n", flavor="inetutils")
    assert s.listens == (Listen(Family.IPV4, 21, "127.0.0.1"),)


# -- ids ------------------------------------------------------------------------------

def test_ids_are_unique_and_readable():
    c = parse("echo stream tcp nowait root internal\necho dgram udp wait root internal\n"
              "ftp stream tcp nowait root /bin/cat cat\n"
              "127.0.0.1:telnet stream tcp nowait root /bin/cat cat\n"
              "127.0.0.2:telnet stream tcp nowait root /bin/cat cat\n"
              "daytime stream tcp4 nowait root internal\n"
              "daytime stream tcp6 nowait root internal\n")
    assert [s.id for s in c.services] == ["echo-tcp", "echo-udp", "ftp", "telnet-tcp",
                                          "telnet-tcp-2", "daytime-tcp4", "daytime-tcp6"]


def test_unique_ids_is_stable():
    keys = [("a", "tcp"), ("b", "udp"), ("a", "udp")]
    assert unique_ids(keys) == unique_ids(list(keys)) == ["a-tcp", "b", "a-udp"]


# -- errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("line,column,needle", [
    ("ftp stream tcp nowait root\n", 27, "missing server-program"),
    ("ftp stream\n", 11, "missing protocol"),
])
def test_too_few_fields(line, column, needle):
    e = error("# header\n" + line)
    assert (e.file, e.line, e.column) == ("inetd.conf", 2, column)
    assert "too few fields" in e.msg and needle in e.msg and "expected" in e.msg
    assert str(e).startswith("inetd.conf:2:")


def test_unknown_service_name():
    e = error("ftp stream tcp nowait root /bin/cat cat\n"
              "nosuch stream tcp nowait root /bin/cat cat\n")
    assert (e.line, e.column) == (2, 1)
    assert "service nosuch/tcp is not in test-services" in e.msg and "--services" in e.msg
    assert "cannot listen for it" in e.msg  # what openbsd-inetd does with it


def test_unknown_service_name_after_a_host_points_at_the_name():
    e = error("127.0.0.1:nosuch stream tcp nowait root /bin/cat cat\n")
    assert e.column == 11


def test_service_known_only_for_the_other_protocol():
    e = error("tftp stream tcp nowait root /bin/cat cat\n")
    assert "service tftp/tcp is not in" in e.msg


def test_port_out_of_range():
    assert "out of range" in error("70000 stream tcp nowait root /bin/cat cat\n").msg


def test_relative_server_path():
    e = error("ftp stream tcp nowait root in.ftpd in.ftpd\n")
    assert (e.line, e.column) == (1, 28) and "not an absolute path" in e.msg


def test_unknown_flavour():
    with pytest.raises(ConfigError, match="unknown inetd flavour"):
        parse("", flavor="bsd")


def test_read_inetd_names_the_file(tmp_path):
    path = tmp_path / "inetd.conf"
    path.write_text("ftp stream tcp nowait root /bin/cat cat\nbad\n")
    c = read_inetd(path, services=SERVICES)
    assert [s.name for s in c.services] == ["ftp"]
    assert [str(f).split(": ")[0] for f in c.findings] == [f"{path}:2:4"]
    with pytest.raises(ConfigError, match="no such file"):
        read_inetd(tmp_path / "missing", services=SERVICES)


def test_services_default_to_etc_services_when_not_given():
    if not Path("/etc/services").exists():
        pytest.skip("no /etc/services on this machine")
    s = parse_inetd("telnet stream tcp nowait root /bin/cat cat\n", "x")
    assert s.services[0].listens[0].port == 23


def test_the_services_file_is_read_as_getservbyname_reads_it(tmp_path):
    table = parse_services("# comment\n"
                           "ftp 21/tcp\n"
                           "broken\n"  # lines glibc cannot parse are skipped, not fatal
                           "bad 70000/tcp\n"
                           "sup 2\u00b2/tcp\n"  # '²' is a digit to str.isdigit(), not to glibc
                           "noproto 25\n"
                           "ftp 2121/tcp\n"  # the first entry for a name wins
                           "www 80/tcp http # trailing comment\n", "svc")
    assert (table.port("ftp", "tcp6"), table.port("http", "tcp"), table.port("sup", "tcp"),
            table.port("bad", "tcp")) == (21, 80, None, None)
    assert table.port("2\u00b2", "tcp") is None and table.port("123456", "tcp") is None
    assert (table.name(80, "tcp"), table.source) == ("www", "svc")
    with pytest.raises(ConfigError, match="cannot read the services file"):
        load_services(tmp_path)  # a directory
    with pytest.raises(ConfigError, match="services file not found"):
        load_services(tmp_path / "nope")


# -- load(): several files ------------------------------------------------------------

def test_load_detects_xinetd_by_content():
    assert looks_like_xinetd("defaults\n{\n}\nservice echo\n{\n socket_type = stream\n}\n")
    assert looks_like_xinetd("includedir /etc/xinetd.d\n")
    assert not looks_like_xinetd("echo stream tcp nowait root internal\n")


def test_load_merges_files_and_keeps_ids_unique(tmp_path):
    a = tmp_path / "a.conf"
    b = tmp_path / "b.conf"
    a.write_text("ftp stream tcp nowait root /bin/cat cat\n")
    b.write_text("127.0.0.1:ftp stream tcp nowait root /bin/cat cat\nftp stream tcp6 nowait root "
                 "/bin/cat cat\n")
    c = load([a, b], services=SERVICES)
    assert [s.id for s in c.services] == ["ftp"]
    clashes = [f for f in c.findings if f.severity is Severity.ERROR]
    assert [f.source.line for f in clashes] == [1, 2] and "already does" in clashes[0].message
    services = SERVICES.ports | {("ftp", "udp"): 21}
    table = type(SERVICES)(services, SERVICES.names, "s")
    b.write_text("ftp dgram udp wait root /bin/cat cat\n")
    c = load([a, b], services=table)
    assert [s.id for s in c.services] == ["ftp", "ftp-2"]
    assert any("renamed 'ftp-2'" in f.message for f in c.findings)


def test_same_address_rules():
    c = parse("127.0.0.1:ftp stream tcp nowait root /bin/cat cat\n"
              "[::1]:ftp stream tcp nowait root /bin/cat cat\n"
              "ftp stream tcp4 nowait root /bin/cat cat\n"
              "ftp stream tcp6 nowait root /bin/cat cat\n")
    v4_host, v6_host, v4_any, v6_any = c.services
    assert not same_address(v4_host, v6_host)
    assert same_address(v4_host, v4_any) and same_address(v6_host, v6_any)
    assert not same_address(v4_any, v6_any)  # two sockets, as openbsd-inetd's tcp opens


def test_inetutils_inetd_d_directory_with_format_inetd(tmp_path):
    d = tmp_path / "inetd.d"
    d.mkdir()
    (d / "a").write_text("ftp stream tcp nowait root /bin/cat cat\n")
    (d / "b").write_text("telnet stream tcp nowait root /bin/cat cat\n")
    (d / "b~").write_text("finger stream tcp nowait root /bin/cat cat\n")  # editor backup
    c = load([d], format="inetd", flavor="inetutils", services=SERVICES)
    assert [(s.id, s.source.file) for s in c.services] == [("ftp", str(d / "a")),
                                                          ("telnet", str(d / "b"))]
    assert c.services[0].listens == (Listen(Family.IPV4, 21),)


def test_host_prefix_with_the_service_on_a_continuation_line():
    c = parse("127.0.0.1:\n\tftp stream tcp nowait root /bin/cat cat\n"
              "telnet stream tcp nowait root /bin/cat cat\n")
    # the host applies to that entry only, it does not become the default
    assert [s.listens for s in c.services] == [(Listen(Family.IPV4, 21, "127.0.0.1"),),
                                               (Listen(Family.DUAL, 23),)]


def test_inetutils_tcpmux_services_are_reported():
    c = parse("tcpmux/+status stream tcp nowait root /bin/cat cat\n", flavor="inetutils")
    assert c.services[0].listens == ()
    assert [f.severity for f in c.findings] == [Severity.ERROR]
    assert "TCPMUX" in c.findings[0].message


# -- the same reading as the real openbsd-inetd -----------------------------------------

@pytest.mark.parametrize("name", ["parity.conf", "debian.conf"])
def test_same_reading_as_openbsd_inetd(openbsd_inetd, name):
    path = DATA / "inetd" / name
    (theirs,) = inetd_support.openbsd_readings(openbsd_inetd, [path])
    assert len(theirs) > 8  # inetd really read the file
    ours = read_inetd(path, services=load_services())
    assert inetd_support.our_openbsd_rows(ours) == theirs


# -- one bad entry costs only itself (#13) ----------------------------------------------

def test_a_bad_entry_is_left_out_and_every_other_line_read():
    c = parse("ftp stream tcp nowait root /bin/cat cat\n"
              "telnet strem tcp nowait root /bin/cat cat\n"
              "finger stream tcp nowait nobody /bin/cat cat\n")
    assert [s.name for s in c.services] == ["ftp", "finger"]
    (bad,) = c.findings
    assert (bad.severity, bad.source.line, bad.source.column) == (Severity.ERROR, 2, 8)
    assert bad.message.endswith(": openbsd-inetd skips this line")


def test_each_dialect_names_its_own_daemon_in_the_outcome():
    for flavor, daemon in [("inetutils", "inetutils-inetd"), ("freebsd", "FreeBSD's inetd"),
                           ("netbsd", "NetBSD's inetd"), ("busybox", "busybox inetd")]:
        assert error("ftp strem tcp nowait root /bin/cat cat\n",
                     flavor=flavor).msg.endswith(f"{daemon} skips this line")


def test_an_unknown_service_name_names_the_services_option():
    e = error("ftp stream tcp nowait root /bin/cat cat\nfortune stream tcp nowait ect "
              "/usr/games/fortune fortune\n")
    assert (e.line, e.column) == (2, 1)
    assert "fortune/tcp is not in test-services" in e.msg and "--services" in e.msg


# -- host names the resolver cannot take (#14) ----------------------------------------------

@pytest.mark.parametrize("host", ["a..b", "x" * 64 + ".example", ".lead", "trail..", "nul\0x",
                                  "caf\udcc3\udca9", "-dash.example", "a." * 130])
def test_host_names_the_idna_codec_refuses_are_a_located_error(host):
    e = error(f"ftp stream tcp nowait root /bin/cat cat\n{host}:telnet stream tcp nowait root "
              "/bin/cat cat\n")
    assert (e.line, e.column) == (2, 1)
    assert "bad host name" in e.msg and "openbsd-inetd reads this line but cannot listen" in e.msg


def test_a_blank_inside_a_bracketed_host_still_splits_the_field():
    e = error("ftp stream tcp nowait root /bin/cat cat\n[b c]:telnet stream tcp nowait root "
              "/bin/cat cat\n")
    assert (e.line, e.column) == (2, 4)
    assert "unknown socket type 'c]:telnet'" in e.msg and "openbsd-inetd skips this line" in e.msg


def test_a_bad_name_in_a_host_list_points_at_that_name():
    e = error("127.0.0.1,a..b:telnet stream tcp nowait root /bin/cat cat\n")
    assert (e.line, e.column) == (1, 11)


def test_invalid_utf8_in_a_host_is_a_located_error(tmp_path):
    path = tmp_path / "inetd.conf"
    path.write_bytes(b"ftp stream tcp nowait root /bin/cat cat\n\xff\xfe.example:telnet stream "
                     b"tcp nowait root /bin/cat cat\n")
    c = read_inetd(path, services=SERVICES)
    assert [s.name for s in c.services] == ["ftp"]
    assert [(f.source.line, f.source.column, f.severity) for f in c.findings] == \
        [(2, 1, Severity.ERROR)]


def test_a_default_host_line_with_a_bad_name_costs_the_lines_below_it():
    c = parse("a..b:\nftp stream tcp nowait root /bin/cat cat\n*:\n"
              "telnet stream tcp nowait root /bin/cat cat\n")
    assert [s.name for s in c.services] == ["telnet"]
    assert [f.source.line for f in c.findings] == [2]


# -- FreeBSD (grammar from FreeBSD's inetd(8) and its parser: no daemon runs here) ------------

def test_freebsd_limits_become_max_connections_and_per_source():
    s = one("ftp stream tcp nowait/3/10/2 root /bin/cat cat\n", flavor="freebsd")
    assert (s.instances, s.per_source, s.wait) == (3, 2, False)
    assert [(a, v) for a, v, _ in s.unmapped] == [("max-connections-per-ip-per-minute", "10")]
    assert s.rate == RateLimit(256, 60, 600)  # -R: 256 a minute, then ten minutes off
    units, findings = render([s], WriterOptions(systemd_version=252))
    socket_unit = next(u.text for u in units if u.name.endswith(".socket"))
    assert "MaxConnections=3\n" in socket_unit and "MaxConnectionsPerSource=2\n" in socket_unit
    assert any("max-connections-per-ip-per-minute = 10: not carried over" in f.message
               and f.severity is Severity.WARNING for f in findings)


@pytest.mark.parametrize("field,instances,per_source,cpm", [
    ("nowait", None, None, None),
    ("nowait/0", None, None, None),  # 0: no maximum
    ("nowait//10", None, None, "10"),  # an empty field keeps the default
    ("nowait///4", None, 4, None),
    ("wait/1", 1, None, None),
    ("nowait/32767", 32767, None, None),
])
def test_freebsd_wait_field_forms(field, instances, per_source, cpm):
    s = one(f"ftp stream tcp {field} root /bin/cat cat\n", flavor="freebsd")
    assert (s.instances, s.per_source) == (instances, per_source)
    assert [v for _, v, _ in s.unmapped] == ([cpm] if cpm else [])


def test_freebsd_reads_the_wait_keyword_as_a_prefix_and_says_what_it_ignores():
    c = parse("swat stream tcp nowait.400 root /usr/local/sbin/swat swat\n".replace(
        "swat stream", "ftp stream"), flavor="freebsd")
    assert c.services[0].wait is False and c.services[0].instances is None
    assert any("ignores '.400'" in f.message and f.severity is Severity.WARNING
               for f in c.findings)


@pytest.mark.parametrize("field,column", [("nowait/32768", 23), ("nowait/x", 23),
                                          ("nowait/3/y", 25), ("sometimes/3", 16)])
def test_freebsd_bad_limits(field, column):
    e = error(f"ftp stream tcp {field} root /bin/cat cat\n", flavor="freebsd")
    assert (e.line, e.column) == (1, column) and "FreeBSD's inetd skips this line" in e.msg


def test_freebsd_protocols_users_and_no_host_prefix():
    c = parse("ftp stream tcp46 nowait root /bin/cat cat\n"
              "telnet stream tcp6 nowait nobody:kmem/daemon /bin/cat cat\n"
              "finger stream tcp nowait nobody.kmem /bin/cat cat\n"
              "127.0.0.1:comsat dgram udp wait root /bin/cat cat\n", flavor="freebsd")
    ftp, telnet, finger = c.services
    assert ftp.listens == (Listen(Family.DUAL, 21),)  # tcp46: one mapped socket
    assert telnet.listens == (Listen(Family.IPV6, 23),)
    assert (telnet.user, telnet.group) == ("nobody", "kmem")
    assert [(a, v) for a, v, _ in telnet.unmapped] == [("login-class", "daemon")]
    assert (finger.user, finger.group) == ("nobody.kmem", None)  # only ':' separates
    (bad,) = [f for f in c.findings if f.severity is Severity.ERROR]
    assert bad.source.line == 4 and "FreeBSD's inetd has no host: prefix" in bad.message


def test_freebsd_internal_services_and_tcpmux():
    c = parse("auth stream tcp nowait root internal auth -r -f\n"
              "tcpmux stream tcp nowait root internal\n"
              "tcpmux/+date stream tcp nowait guest /bin/date date\n"
              "echo stream tcp nowait root internal\n", flavor="freebsd")
    assert [s.name for s in c.services] == ["tcpmux", "tcpmux/+date", "echo"]
    errors = [(f.source.line, f.message) for f in c.findings if f.severity is Severity.ERROR]
    assert [line for line, _ in errors] == [1, 2, 3]
    assert "ident" in errors[0][1] and "TCPMUX" in errors[2][1] and "port 1" in errors[2][1]
    assert c.services[1].listens == ()


def test_freebsd_continues_lines_as_4_4bsd_did():
    s = one("ftp stream tcp nowait root\n\t/usr/libexec/ftpd ftpd -l\n", flavor="freebsd")
    assert s.argv == ("ftpd", "-l")


# -- NetBSD (grammar from NetBSD's usr.sbin/inetd/parse.c and inetd.h) --------------------

@pytest.mark.parametrize("field,rate", [
    ("nowait", RateLimit(40, 60, 600)),  # TOOMANY 40 a minute, RETRYTIME ten minutes
    ("nowait:600", RateLimit(600, 60, 600)),
    ("nowait.5", RateLimit(5, 60, 600)),
    ("wait:2", RateLimit(2, 60, 600)),
])
def test_netbsd_max_after_a_colon_or_a_dot(field, rate):
    assert one(f"ftp stream tcp {field} root /bin/cat cat\n", flavor="netbsd").rate == rate


def test_netbsd_families_follow_the_last_character():
    c = parse("ftp stream tcp nowait root /bin/cat cat\n"
              "ftp stream tcp6 nowait root /bin/cat cat\n"
              "telnet stream tcp46 nowait root /bin/cat cat\n", flavor="netbsd")
    assert [s.listens[0].family for s in c.services] == [Family.IPV4, Family.IPV6, Family.IPV6]


def test_netbsd_quotes_like_a_shell_and_separates_groups_either_way():
    c = parse("ftp stream tcp nowait nobody.kmem /bin/echo echo \"a b\" c'd e'f\n"
              "telnet stream tcp nowait a:b.c /bin/cat cat\n", flavor="netbsd")
    assert c.services[0].argv == ("echo", "a b", "cd ef")
    assert (c.services[0].user, c.services[0].group) == ("nobody", "kmem")
    assert (c.services[1].user, c.services[1].group) == ("a", "b.c")


def test_netbsd_ipsec_policies_accept_filters_and_what_is_not_read():
    c = parse("#@ in ipsec esp/transport//require\n"
              "ftp stream:dataready tcp nowait root /bin/cat cat\n"
              "#@\n"
              "telnet stream tcp nowait root /bin/cat cat\n"
              ".include /etc/inetd.d/*.conf\n"
              "finger on socktype=stream protocol=tcp;\n", flavor="netbsd")
    ftp, telnet = c.services
    assert ftp.socket_type is SocketType.STREAM
    assert sorted((a, v) for a, v, _ in ftp.unmapped) == [
        ("IPsec policy", "in ipsec esp/transport//require"), ("accept filter", "dataready")]
    assert telnet.unmapped == ()
    errors = [(f.source.line, f.message) for f in c.findings if f.severity is Severity.ERROR]
    assert [line for line, _ in errors] == [5, 6]
    assert ".include" in errors[0][1] and "key-value syntax" in errors[1][1]


# -- busybox (grammar from busybox's networking/inetd.c; Debian builds it without inetd) --------

def test_busybox_cuts_comments_anywhere_and_does_not_continue_lines():
    c = parse("ftp stream tcp nowait root /bin/echo echo a#b\n"
              " telnet stream tcp nowait root /bin/cat cat  # the shell\n", flavor="busybox")
    assert c.services[0].argv == ("echo", "a")
    assert c.services[1].name == "telnet" and c.services[1].argv == ("cat",)


def test_busybox_looks_a_bare_program_up_in_its_path():
    s = one("ftp stream tcp nowait root cat cat -u\n", flavor="busybox")
    assert s.server == shutil.which("cat", path=":".join(BUSYBOX_PATH))
    assert s.argv == ("cat", "-u")
    e = error("ftp stream tcp nowait root no-such-program-here x\n", flavor="busybox")
    assert (e.line, e.column) == (1, 28) and "PATH" in e.msg
    assert "not an absolute path" in error("ftp stream tcp nowait root cat cat\n").msg


def test_busybox_protocols_rates_and_mixups():
    c = parse("ftp stream tcp nowait root /bin/cat cat\n"
              "telnet stream tcp6 nowait.30 root /bin/cat cat\n", flavor="busybox")
    ftp, telnet = c.services
    assert ftp.listens == (Listen(Family.IPV4, 21),) and ftp.rate is None  # -R: no limit
    assert telnet.listens == (Listen(Family.DUAL, 23),)  # no IPV6_V6ONLY: v4-mapped too
    assert telnet.rate == RateLimit(30, 60, 60)  # then paused for RETRYTIME, a minute
    for line in ["ftp stream tcp4 nowait root /bin/cat cat", "ftp stream udp nowait root "
                 "/bin/cat cat", "echo stream tcp wait root internal",
                 "echo dgram udp nowait root internal"]:
        assert "busybox inetd skips this line" in error(line + "\n", flavor="busybox").msg


# -- openbsd-inetd: tcpmux lines, and tcp + tcp6 pairs ---------------------------------------

def test_openbsd_reads_tcpmux_lines_but_serves_them_nowhere():
    c = parse("tcpmux/+status stream tcp nowait root /bin/cat cat\n"
              "tcpmux/phonebook stream tcp nowait root /bin/cat cat\n"
              "ftp stream tcp nowait root /bin/cat cat\n")
    assert [s.name for s in c.services] == ["ftp"]
    assert [(f.source.line, f.severity) for f in c.findings] == [(1, Severity.WARNING),
                                                                 (2, Severity.WARNING)]
    assert all("TCPMUX" in f.message and "never served it" in f.message for f in c.findings)


def test_a_tcp6_line_after_a_dual_tcp_line_is_a_note_not_a_clash():
    c = load_text("daytime stream tcp nowait root internal\n"
                  "daytime stream tcp6 nowait root internal\n"
                  "echo stream tcp nowait root internal\n"
                  "echo stream tcp6 nowait nobody internal\n")
    assert [(s.name, s.listens) for s in c.services] == [
        ("daytime", (Listen(Family.DUAL, 13),)), ("echo", (Listen(Family.DUAL, 7),))]
    notes = [(f.source.line, f.severity) for f in c.findings]
    assert notes == [(2, Severity.INFO), (4, Severity.WARNING)]  # the second echo differs
    assert "nothing is lost" in c.findings[0].message


def test_a_tcp_line_after_a_tcp6_line_keeps_ipv4_as_openbsd_inetd_does():
    c = load_text("ftp stream tcp6 nowait root /bin/cat cat\n"
                  "ftp stream tcp nowait root /bin/echo echo\n")
    assert [s.listens for s in c.services] == [(Listen(Family.IPV6, 21),),
                                               (Listen(Family.IPV4, 21),)]
    assert [f.severity for f in c.findings] == [Severity.INFO]


def test_in_bsd_dialects_a_tcp_tcp6_pair_is_two_sockets():
    c = load_text("ftp stream tcp nowait root /bin/cat cat\n"
                  "ftp stream tcp6 nowait root /bin/cat cat\n", flavor="freebsd")
    assert [s.listens[0].family for s in c.services] == [Family.IPV4, Family.IPV6]
    assert c.findings == ()


def load_text(text: str, flavor: str = "openbsd"):
    """parse and then the loader's merge, where address clashes are found."""
    return merge([parse(text, flavor=flavor)])


# -- inetutils: the same reading as the real inetutils-inetd ----------------------------------

def test_same_reading_as_inetutils_inetd(inetutils_inetd):
    paths = [DATA / "inetd" / "inetutils.conf",
             DATA / "corpus" / "inetd" / "debian-rush" / "rush.inetutils-inetd"]
    for path, theirs in zip(paths, inetd_support.inetutils_readings(inetutils_inetd, paths)):
        assert len(theirs) >= 3  # it really read the file
        ours = read_inetd(path, flavor="inetutils", services=load_services())
        assert inetd_support.our_inetutils_rows(ours) == \
            inetd_support.their_inetutils_rows(theirs)


_TOKENS = ["echo", "ftp", "7", "127.0.0.1:", "[::1]:ftp", "*:", "stream", "dgram", "raw", "tcp",
           "udp6", "tcp,rcvbuf=4k", "unix", "rpc/tcp", "nowait", "wait.3", "nowait.", "root",
           "a.b", "internal", "/usr/sbin/tcpd", "/bin/cat", "cat", "#", "#<off>#", "\"q",
           "[127.0.0.1,::1]:7"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", " ", "\t"]),
                          st.lists(st.sampled_from(_TOKENS), max_size=9)), max_size=6),
       st.sampled_from(["openbsd", "inetutils", "xinetd-compat"]), st.booleans())
def test_any_text_reads_or_fails_with_a_located_config_error(lines, flavor, disabled):
    text = "".join(lead + " ".join(words) + "\n" for lead, words in lines)
    try:
        c = parse(text, flavor=flavor, include_disabled=disabled)
    except ConfigError as e:
        assert e.file == "inetd.conf" and e.line is not None and 1 <= e.line <= len(lines)
        return
    assert len({s.id for s in c.services}) == len(c.services)  # ids unique
    assert all(1 <= s.source.line <= len(lines) for s in c.services)
