"""The xinetd reader: lexing and merging as the packaged xinetd does, every attribute of
xinetd.conf(5) carried into the model (tests/data/xinetd: a realistic corpus and
Debian's stock files), bad input refused with file:line, units rendered from it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import DATA, free_port, run_cli
from inetd2systemd.config import load
from inetd2systemd.config.services import load_services
from inetd2systemd.config.xinetd import ATTRIBUTES, looks_like_xinetd, parse_xinetd, \
    read_xinetd, read_xinetd_dir
from inetd2systemd.errors import ConfigError
from inetd2systemd.model import Code, Family, Listen, RateLimit, Redirect, Severity, SocketType
from systemd_container import wait_for
from xinetd_oracle import needs_xinetd, xinetd_reads

CORPUS = DATA / "xinetd"
STOCK = CORPUS / "debian-stock"
SERVICES = load_services(CORPUS / "services")


@pytest.fixture(scope="module")
def corpus():
    config = read_xinetd(CORPUS / "xinetd.conf", services=SERVICES)
    return config, {s.id: s for s in config.services}


def parse(text: str, **kw):
    return parse_xinetd(text, "/cfg/xinetd.conf", services=SERVICES, **kw)


def service(text: str, name: str = "nrpe", **kw):
    """One service entry's body, wrapped, parsed."""
    body = "\n".join(f"\t{line}" for line in text.strip().splitlines())
    config = parse(f"service {name}\n{{\n{body}\n}}\n", **kw)
    return config.services[0] if config.services else None


def errors_of(text: str, **kw) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text, **kw)
    return info.value


BASE = "socket_type = stream\nwait = no\nuser = nobody\nserver = /usr/sbin/nrpe\n"


# -- the corpus: every attribute, each with its expected values ----------------------------

def test_corpus_uses_every_attribute_of_the_man_page():
    used = set()
    for path in [CORPUS / "xinetd.conf", *sorted((CORPUS / "xinetd.d").iterdir())]:
        used |= set(re.findall(r"^\s*([a-z_0-9]+)\s+[-+]?=", path.read_text(), re.M))
    # `enabled` would switch the rest of the corpus off: it has its own test below
    assert set(ATTRIBUTES) - used == {"enabled"}


def test_corpus_services_and_skipped_files(corpus):
    config, by_id = corpus
    assert sorted(by_id) == sorted([
        "amanda", "check_mk", "cvspserver", "git", "echo-stream", "echo-dgram",
        "daytime-stream", "time-dgram", "nrpe", "rstatd", "myorg_server", "unlisted-rpc",
        "ftp-sensor", "mysql", "rsync", "telnet", "tftp", "ftp-v6"])
    skipped = {Path(f.source.file).name for f in config.findings if "skipped" in f.message}
    assert skipped == {"tftp.rpmsave", "rsync~"}  # xinetd's includedir rules
    assert all(f.severity is Severity.INFO for f in config.findings if "skipped" in f.message)


def test_tftp_dgram_wait_with_defaults_filled_in(corpus):
    s = corpus[1]["tftp"]
    assert (s.socket_type, s.protocol, s.wait) == (SocketType.DGRAM, "udp", True)
    assert s.listens == (Listen(Family.IPV4, 69),)  # flags IPv4; port from services
    assert s.server == "/usr/sbin/in.tftpd" and s.argv == ("in.tftpd", "-s", "/var/lib/tftpboot")
    assert s.per_source == 11 and s.rate == RateLimit(100, 1, 2)
    # scalar defaults: instances, umask, max_load; list defaults: no_access, passenv, banner
    assert (s.instances, s.umask, s.max_load) == (60, 0o002, 8.0)
    assert s.no_access == ("192.0.2.66",) and s.passenv == ("PATH",)
    assert s.banner_fail == "/etc/xinetd.banner.fail"
    assert s.supplementary_groups is None  # groups = yes in defaults
    assert s.tcp_wrapped and s.libwrap_name == "in.tftpd"
    # log_type is the defaults entry's: said once, at its line, not once per service
    assert "log_type" not in [a for a, _, _ in s.unmapped]
    said = [f for f in corpus[0].findings if f.message.startswith("log_type = SYSLOG daemon info")]
    assert len(said) == 1 and said[0].service is None and said[0].code == Code.LOG_NOT_CARRIED
    assert said[0].severity is Severity.WARNING and "(defaults, taken by " in said[0].message


def test_rsync_ipv6_bind_env_and_merged_log_flags(corpus):
    s = corpus[1]["rsync"]
    assert s.listens == (Listen(Family.DUAL, 873, "2001:db8::10"),)
    assert s.env == (("RSYNC_PROXY", "proxy.example:3128"), ("LANG", "C"))
    unmapped = {a: v for a, v, _ in s.unmapped}
    assert unmapped["log_on_failure"] == "HOST USERID"  # defaults' HOST, then += USERID


def test_cvspserver_empty_passenv_groups_no_limits(corpus):
    s = corpus[1]["cvspserver"]
    assert s.passenv == () and s.supplementary_groups == ()
    assert s.rlimits == (("AS", 64 * 1024 * 1024),) and s.nice == 5 and s.umask == 0o027
    assert s.env == (("HOME", "/var/cvs"),)
    assert s.argv == ("cvs", "-f", "--allow-root=/var/cvs", "pserver")


def test_swat_is_off_through_the_defaults_disabled_list(corpus):
    config, by_id = corpus
    assert "swat" not in by_id
    assert any(f.service == "swat" and "disabled list" in f.message for f in config.findings)
    services = load_services(CORPUS / "services")
    services.ports[("swat", "tcp")] = 901
    again = read_xinetd(CORPUS / "xinetd.conf", services=services, include_disabled=True)
    swat = next(s for s in again.services if s.id == "swat")
    assert swat.disabled and swat.listens == (Listen(Family.DUAL, 901),)
    assert swat.only_from == ("127.0.0.1",)


def test_a_service_missing_from_the_services_table_is_left_out_naming_services():
    # xinetd: "service/protocol combination not in /etc/services" - DISABLING
    config = parse(f"service not-a-service\n{{\n{BASE}}}\n")
    assert config.services == ()
    [error] = [f for f in config.findings if f.severity is Severity.ERROR]
    assert "not-a-service/tcp is not in" in error.message and "--services" in error.message
    assert error.message.endswith("xinetd disables this service")


def test_amanda_user_group_and_rlimits(corpus):
    s = corpus[1]["amanda"]
    assert (s.user, s.group, s.supplementary_groups) == ("backup", "disk", None)
    assert s.listens == (Listen(Family.IPV4, 10080),)
    assert s.rlimits == (("CPU", 600), ("NOFILE", 1024))


def test_nrpe_access_lists_and_limits(corpus):
    s = corpus[1]["nrpe"]
    assert s.listens == (Listen(Family.DUAL, 5666),)  # UNLISTED + port
    assert s.only_from == ("127.0.0.1", "10.20.{1,2}", "192.0.2.0/24", "2001:db8:20::/48")
    assert s.no_access == ("192.0.2.66", "10.20.1.99")  # default, then +=
    assert (s.instances, s.per_source) == (5, None)  # per_source UNLIMITED
    assert "log_on_success" not in [a for a, _, _ in s.unmapped]  # `=` with nothing clears


def test_git_hash_is_data_times_load_and_interface(corpus):
    s = corpus[1]["git"]
    assert s.argv[-4:] == ("#", "no", "comment:", "data")
    assert s.access_times == ((120, 540), (720, 1439))  # 24:00 disables it (see below)
    assert s.max_load == 4.5 and s.nice == 10
    assert s.listens == (Listen(Family.IPV4, 9418, "127.0.0.1"),)  # interface = bind
    assert s.rlimits == (("DATA", 32 << 20), ("RSS", 16 << 10), ("STACK", None))


def test_telnet_nameinargs_flags_banners_libwrap(corpus):
    config, by_id = corpus
    s = by_id["telnet"]
    assert s.server == "/usr/sbin/tcpd" and s.argv == ("/usr/sbin/in.telnetd", "-h")
    assert s.nodelay and s.keepalive
    assert s.libwrap_name == "in.telnetd"
    assert (s.banner, s.banner_success) == ("/etc/issue.net", "/etc/motd")
    assert s.only_from == ("10.0.0.0", ".corp.example")
    notes = [f.message for f in config.findings if f.service == "telnet"]
    assert any("REUSE" in m for m in notes) and any("NORETRY" in m for m in notes)


def test_vsftpd_id_ipv6_only_unlimited_and_no_rate(corpus):
    s = corpus[1]["ftp-v6"]
    assert s.name == "ftp" and s.listens == (Listen(Family.IPV6, 21),)
    assert s.instances is None and s.per_source == 5 and s.rate is None  # cps 0 0
    assert s.nice == -2 and s.rlimits == (("AS", None),)
    unmapped = {(a, v) for a, v, _ in s.unmapped}
    assert ("flags", "IDONLY") in unmapped
    assert ("log_type", "FILE /var/log/xinetd-ftp.log 10M 20M") in unmapped  # overrides default


def test_check_mk_unlisted_with_only_from(corpus):
    s = corpus[1]["check_mk"]
    assert s.listens == (Listen(Family.DUAL, 6556),) and s.server == "/usr/bin/check_mk_agent"
    assert s.only_from == ("127.0.0.1", "10.0.20.1", "10.0.20.2")


def test_internal_services(corpus):
    by_id = corpus[1]
    assert by_id["echo-stream"].internal == "echo" and by_id["echo-stream"].server is None
    assert by_id["echo-dgram"].socket_type is SocketType.DGRAM and by_id["echo-dgram"].wait
    assert by_id["daytime-stream"].protocol == "tcp"  # derived from socket_type
    time_ = by_id["time-dgram"]
    assert time_.socket_type is SocketType.DGRAM and not time_.wait  # from protocol udp
    assert ("deny_time", "60") in [(a, v) for a, v, _ in by_id["daytime-stream"].unmapped]


def test_what_systemd_cannot_express_is_kept_and_reported(corpus):
    config, by_id = corpus
    rpc = by_id["rstatd"]
    assert rpc.protocol == "rpc/udp" and rpc.listens == ()
    assert ("rpc_version", "2-4") in [(a, v) for a, v, _ in rpc.unmapped]
    assert ("rpc_number", "300999") in [(a, v) for a, v, _ in by_id["unlisted-rpc"].unmapped]
    assert not by_id["unlisted-rpc"].tcp_wrapped  # RPC over TCP: NOLIBWRAP is implied
    errors = {f.service for f in config.findings if f.severity is Severity.ERROR}
    assert {"rstatd", "unlisted-rpc", "myorg_server"} <= errors
    sensor = by_id["ftp-sensor"]
    assert sensor.internal == "sensor" and sensor.server is None
    assert ("deny_time", "FOREVER") in [(a, v) for a, v, _ in sensor.unmapped]
    mysql = by_id["mysql"]
    assert mysql.redirect == Redirect("10.0.0.5", 3306) and mysql.server is None
    assert ("flags", "INTERCEPT") in {(a, v) for a, v, _ in by_id["tftp"].unmapped}
    assert ("flags", "LABELED") in {(a, v) for a, v, _ in by_id["rsync"].unmapped}
    # this build has no mdns attribute: xinetd ignores the line, with a warning
    assert any(f.service == "mysql" and f.severity is Severity.WARNING and
               "'mdns' is in xinetd.conf(5) but not in this xinetd build" in f.message
               for f in config.findings)


def test_corpus_renders_units(corpus):
    from inetd2systemd.units.writer import render
    units, findings = render(corpus[0].services)
    text = {u.name: u.text for u in units}
    nrpe = text["nrpe.socket"]
    assert "ListenStream=[::]:5666" in nrpe and "MaxConnections=5" in nrpe
    assert "IPAddressDeny=any" in nrpe
    allow = re.search(r"^IPAddressAllow=(.*)$", nrpe, re.M).group(1).split()
    assert "10.20.2.0/24" in allow and "2001:db8:20::/48" in allow
    assert not any(a in ("10.20.1.99", "192.0.2.66") for a in allow)
    assert "Accept=no" in text["tftp.socket"] and "ListenDatagram=0.0.0.0:69" in text["tftp.socket"]
    telnet = text["telnet.socket"]
    assert "NoDelay=yes" in telnet and "KeepAlive=yes" in telnet
    assert "/usr/sbin/tcpd" in text["telnet@.service"]
    assert "BindIPv6Only=ipv6-only" in text["ftp-v6.socket"]
    assert "Nice=10" in text["git@.service"] and "LimitSTACK=infinity" in text["git@.service"]
    assert "systemd-socket-proxyd" in text["mysql.service"]
    messages = " ".join(f.message for f in findings)
    assert "log_type" in messages and "corp.example" in messages


# -- Debian's stock files ---------------------------------------------------------------------

def test_debian_stock_files_convert_without_error():
    config = read_xinetd(STOCK / "etc/xinetd.conf", services=SERVICES, root=str(STOCK))
    assert config.services == ()  # all shipped disabled
    assert all(f.severity is Severity.INFO for f in config.findings)
    full = read_xinetd(STOCK / "etc/xinetd.conf", services=SERVICES, root=str(STOCK),
                       include_disabled=True)
    ids = [s.id for s in full.services]
    assert ids == ["chargen-stream", "chargen-dgram", "daytime-stream", "daytime-dgram",
                   "discard-stream", "discard-dgram", "echo-stream", "echo-dgram",
                   "time-stream", "time-dgram"]
    assert all(s.disabled for s in full.services)
    # Debian ships `servers` and `services`, but its xinetd has no such internal
    # services: switched on, xinetd would disable them ("No such internal service")
    refused = {f.service: f.message for f in full.findings if f.severity is Severity.ERROR}
    assert set(refused) == {"services", "servers"}
    assert "if it were enabled" in refused["servers"]
    by_id = {s.id: s for s in full.services}
    assert by_id["echo-dgram"].listens == (Listen(Family.DUAL, 7),)
    from inetd2systemd.units.writer import render
    _, findings = render(full.services)
    assert not [f for f in findings if f.severity is Severity.ERROR]


def test_the_machines_own_stock_tree_matches_the_copy():
    if not Path("/etc/xinetd.d/echo").exists():
        pytest.skip("the xinetd package is not installed here")
    a = read_xinetd("/etc/xinetd.conf", services=SERVICES, include_disabled=True)
    b = read_xinetd(STOCK / "etc/xinetd.conf", services=SERVICES, root=str(STOCK),
                    include_disabled=True)
    assert [s.id for s in a.services] == [s.id for s in b.services]


# -- lexing and merging ----------------------------------------------------------------------

def test_comment_only_at_line_start():
    s = service(BASE.replace("server = /usr/sbin/nrpe", "server = /usr/sbin/nrpe\n"
                             "  # a comment line\nserver_args = -l # x"))
    assert s.argv == ("nrpe", "-l", "#", "x")


def test_defaults_equals_adds_and_service_equals_replaces():
    text = """defaults
{
	only_from = 10.0.0.0
	only_from = 192.0.2.0/24
	no_access = 10.0.0.9
}
service nrpe
{
%s}
service git
{
	socket_type = stream
	wait = no
	user = nobody
	server = /usr/bin/git
	only_from = 127.0.0.1
	no_access += 10.0.0.10
}
service rsync
{
	socket_type = stream
	wait = no
	user = nobody
	server = /usr/bin/rsync
	only_from -= 10.0.0.0/8
}
""" % BASE
    by_id = {s.id: s for s in parse(text).services}
    assert by_id["nrpe"].only_from == ("10.0.0.0", "192.0.2.0/24")
    assert by_id["git"].only_from == ("127.0.0.1",)
    assert by_id["git"].no_access == ("10.0.0.9", "10.0.0.10")
    assert by_id["rsync"].only_from == ("192.0.2.0/24",)  # removed by address, not spelling


def test_list_defaults_apply_from_where_they_are_read_scalars_at_the_end():
    text = f"service nrpe\n{{\n{BASE}}}\ndefaults\n{{\n\tinstances = 7\n\tonly_from = 10.0.0.1\n}}\n"
    s = parse(text).services[0]
    assert s.instances == 7  # service_fill runs after every file is read
    assert s.only_from is None  # fill_attribute copied the lists before the body


def test_builtin_defaults():
    s = service(BASE)
    assert s.rate == RateLimit(50, 1, 10) and s.instances is None and s.per_source is None
    assert s.supplementary_groups == () and s.listens == (Listen(Family.DUAL, 5666),)
    assert s.argv == ("nrpe",) and s.protocol == "tcp" and s.tcp_wrapped


def test_families_from_flags_bind_and_v6only():
    assert service(BASE + "flags = IPv4").listens == (Listen(Family.IPV4, 5666),)
    assert service(BASE + "bind = 10.1.1.1").listens == (Listen(Family.IPV4, 5666, "10.1.1.1"),)
    assert service(BASE + "v6only = yes").listens == (Listen(Family.IPV6, 5666),)
    assert service(BASE + "flags = IPv4 IPv6").listens == (Listen(Family.DUAL, 5666),)
    assert service(BASE + "bind = 0.0.0.0").listens == (Listen(Family.IPV4, 5666),)


def test_enabled_list_switches_off_the_rest():
    text = (f"defaults\n{{\n\tenabled = git\n}}\nservice nrpe\n{{\n{BASE}}}\n"
            f"service git\n{{\n{BASE}}}\n")
    config = parse(text)
    assert [s.id for s in config.services] == ["git"]
    assert any(f.service == "nrpe" and "enabled list" in f.message for f in config.findings)
    assert [s.disabled for s in parse(text, include_disabled=True).services] == [True, False]


def test_disable_attribute_and_the_flag_this_build_does_not_have():
    assert service(BASE + "disable = yes") is None
    assert service(BASE + "disable = yes", include_disabled=True).disabled
    # Debian's xinetd has no DISABLE flag: "Bad service flag", the service is disabled
    # as an error (and --include-disabled does not bring it back)
    config = parse(f"service nrpe\n{{\n{BASE}flags = DISABLE\n}}\n", include_disabled=True)
    assert config.services == ()
    assert [f.severity for f in config.findings] == [Severity.ERROR]


def test_duplicates_resolved_as_xinetd_does():
    text = (f"service nrpe\n{{\n{BASE}}}\nservice nrpe\n{{\n{BASE}server_args = -x\n}}\n"
            f"service other\n{{\n{BASE}type = UNLISTED\nport = 5666\n}}\n"
            f"service nrpe\n{{\n{BASE}type = UNLISTED\nport = 15666\n}}\n")
    config = parse(text)
    assert [(s.id, s.listens[0].port) for s in config.services] == [("nrpe", 5666),
                                                                    ("nrpe-2", 15666)]
    errors = [f for f in config.findings if f.severity is Severity.ERROR]
    assert len(errors) == 2 and all("left out" in f.message for f in errors)
    assert [f.source.line for f in errors] == [8, 16]


def test_attribute_set_twice_keeps_the_first_with_a_warning():
    config = parse(f"service nrpe\n{{\n{BASE}user = root\n}}\n")
    assert config.services[0].user == "nobody"
    [warning] = config.findings
    assert "already set at line 5" in warning.message and (warning.source.line,
                                                           warning.source.column) == (7, 1)
    assert warning.severity is Severity.WARNING and "xinetd ignores this line" in warning.message


def test_dgram_nowait_is_accepted_as_the_packaged_xinetd_does():
    s = service("type = INTERNAL\nsocket_type = dgram\nwait = no\nuser = root", name="echo")
    assert s.socket_type is SocketType.DGRAM and not s.wait


def test_includedir_order_and_skips(tmp_path):
    d = tmp_path / "xinetd.d"
    d.mkdir()
    for name, port in (("b", 1001), ("B", 1002), ("_x", 1003), ("a.conf", 1004),
                       ("c~", 1005), ("a", 1006)):
        (d / name).write_text(f"service s{port}\n{{\n{BASE}type = UNLISTED\nport = {port}\n}}\n")
    (d / "sub").mkdir()
    config = read_xinetd_dir(d, services=SERVICES)
    assert [s.listens[0].port for s in config.services] == [1002, 1003, 1006, 1001]  # strcmp
    skipped = {Path(f.source.file).name for f in config.findings if "skipped" in f.message}
    assert skipped == {"a.conf", "c~", "sub"}


def test_include_and_relative_paths(tmp_path):
    (tmp_path / "extra").write_text(f"service nrpe\n{{\n{BASE}}}\n")
    (tmp_path / "xinetd.conf").write_text("include extra\n")
    config = read_xinetd(tmp_path / "xinetd.conf", services=SERVICES)
    assert config.services[0].source.file == str(tmp_path / "extra")


def test_looks_like_xinetd():
    assert looks_like_xinetd((STOCK / "etc/xinetd.conf").read_text())
    assert looks_like_xinetd((STOCK / "etc/xinetd.d/echo").read_text())
    assert not looks_like_xinetd("echo stream tcp nowait root internal\n"
                                 "# service foo\n{\n")


def test_config_load_detects_xinetd_files_and_directories():
    config = load([CORPUS / "xinetd.d"], services=SERVICES)
    assert "nrpe" in {s.id for s in config.services}
    config = load([STOCK / "etc/xinetd.d/echo"], services=SERVICES, include_disabled=True)
    assert [s.id for s in config.services] == ["echo-stream", "echo-dgram"]


# -- bad input: what it costs, with file, line and column ------------------------------------

IGNORED, DISABLED, SKIPPED = "xinetd ignores this line", "xinetd disables this service", \
    "xinetd skips this entry"


@pytest.mark.parametrize("body, line, column, message, outcome", [
    ("bogus = 1", 8, 2, "unknown attribute 'bogus'", IGNORED),
    ("port=23", 8, 2, "needs a space", SKIPPED),
    ("port 23", 8, 7, "expected '='", SKIPPED),
    ("nice", 8, 6, "missing '='", SKIPPED),
    ("server_args =", 8, 2, "needs a value", DISABLED),
    ("cps = 10", 8, 2, "takes 2 values, got 1", IGNORED),
    ("per_source = 10 # comment", 8, 2, "'#' after a value is not a comment", IGNORED),
    ("instances += 3", 8, 2, "operator '+='", IGNORED),
    ("user = root", 8, 2, "already set at line 6", IGNORED),
    ("env -= A=1", 8, 2, "'-='", DISABLED),
    ("env = NOEQUALS", 8, 8, "has no '='", DISABLED),
    ("only_from = 10.1.{2,,3}", 8, 14, "consecutive commas", DISABLED),
    ("only_from = 10.0.0.1 10.0.0.2,10.0.0.3", 8, 23, "has a comma", DISABLED),
    ("wait = maybe", 5, 9, "expected yes or no", DISABLED),
    ("instances = lots", 8, 14, "expected a number or UNLIMITED", DISABLED),
    ("port = 5667", 8, 9, "is port 5666", DISABLED),
    ("flags = NODELAY FAST", 8, 18, "unknown flag 'FAST'", DISABLED),
    ("rlimit_as = 8G", 8, 14, "K or M", DISABLED),
    ("rlimit_cpu = 10K", 8, 15, "expected a number or UNLIMITED", DISABLED),
    ("access_times = 25:00-26:00", 8, 17, "hours 0-23", DISABLED),
    ("access_times = 08:00-24:00", 8, 17, "hours 0-23", DISABLED),
    ("access_times = 22:00-06:00", 8, 17, "must end after it starts", DISABLED),
    ("log_type = SYSLOG", 8, 2, "SYSLOG takes a facility", DISABLED),
    ("log_type = SYSLOG daemon loud", 8, 27, "unknown syslog level 'loud'", DISABLED),
    ("log_on_failure = RECORD", 8, 19, "unknown log_on_failure flag 'RECORD'", DISABLED),
    ("log_on_success = TRAFFIC", 8, 19, "only for redirected services", DISABLED),
    ("deny_time = SOMETIMES", 8, 14, "FOREVER or NEVER", DISABLED),
    ("max_load = 0", 8, 13, "0 is refused", DISABLED),
    ("umask = 0778", 8, 10, "octal umask", DISABLED),
    ("socket_type = rdm", 4, 16, "unknown socket type 'rdm'", DISABLED),
    ("disable = maybe", 8, 12, "expected yes or no", DISABLED),
    ("flags = NAMEINARGS", 8, 10, "NAMEINARGS needs server_args", DISABLED),
    ("bind = a..b", 8, 9, "an empty label", DISABLED),
    ("bind = " + "a" * 64 + ".example", 8, 9, "over 63 bytes", DISABLED),
    ("bind = 10.0.0.300", 8, 9, "bad address", DISABLED),
    ("redirect = 10.0.0.1 99999", 8, 22, "too large", DISABLED),
])
def test_a_bad_line_costs_what_it_costs_xinetd(body, line, column, message, outcome):
    if body.startswith(("wait", "socket_type")):
        base = BASE.replace({"wait": "wait = no", "socket_type": "socket_type = stream"}[
            body.split()[0]], body)
    else:
        base = BASE + body
    text = "# comment\nservice nrpe\n{\n" + "\n".join(f"\t{x}" for x in base.strip().split("\n"))
    config = parse(text + "\n}\n")
    bad = [f for f in config.findings if f.severity is not Severity.INFO]
    assert len(bad) == 1, bad
    [finding] = bad
    assert message in finding.message and outcome in finding.message
    assert (finding.source.file, finding.source.line, finding.source.column) == \
        ("/cfg/xinetd.conf", line, column)
    # a line xinetd ignores costs only itself; anything else costs the service
    assert bool(config.services) == (outcome == IGNORED)
    assert finding.severity is (Severity.WARNING if outcome == IGNORED else Severity.ERROR)


@pytest.mark.parametrize("text, line, column, message", [
    ("service nrpe\n\tsocket_type = stream\n}\n", 2, 2, "missing '{'"),
    ("service nrpe {\n\tsocket_type = stream\n}\n", 2, 2, "missing '{'"),
    ("service\n{\n}\n", 1, 8, "the name is missing"),
    ("\nservice nrpe\n{\n\twait = no\n\tuser = x\n\tserver = /x\n}\n", 2, 9,
     "missing attribute socket_type"),
    ("service nrpe\n{\n\tsocket_type = stream\n\tuser = x\n\tserver = /x\n}\n", 1, 9, "wait"),
    ("service nrpe\n{\n\tsocket_type = stream\n\twait = no\n\tserver = /x\n}\n", 1, 9,
     "missing attribute user"),
    ("service zzz\n{\n" + BASE + "type = UNLISTED\n}\n", 1, 9, "needs a port"),
    ("listen here\n" f"service nrpe\n{{\n{BASE}}}\n", 1, 1, "expected 'service NAME'"),
    ("service nrpe\n{\n\tincludedir /etc/xinetd.d\n}\n", 3, 2, "cannot appear inside"),
])
def test_a_bad_entry_is_left_out_with_an_error_and_the_rest_is_read(text, line, column,
                                                                      message):
    config = parse(text + f"service git\n{{\n{BASE}type = UNLISTED\nport = 9418\n}}\n")
    [error] = [f for f in config.findings if f.severity is not Severity.INFO]
    assert message in error.message and error.severity is Severity.ERROR
    assert (error.source.line, error.source.column) == (line, column)
    assert [s.id for s in config.services] == ["git"]


def test_a_lost_closing_brace_loses_the_next_entry_too_as_in_xinetd():
    text = (f"service nrpe\n{{\n{BASE}service git\n{{\n{BASE}type = UNLISTED\nport = 9418\n}}\n"
            f"service rsync\n{{\n{BASE}type = UNLISTED\nport = 873\n}}\n")
    config = parse(text)
    assert [s.id for s in config.services] == ["rsync"]
    [error] = [f for f in config.findings if f.severity is Severity.ERROR]
    assert (error.source.line, error.source.column) == (7, 1)
    assert "'service git' inside service nrpe: its closing '}' is missing" in error.message
    assert "lines 7-15, with service git" in error.message
    # at the end of the file
    [error] = parse(f"service nrpe\n{{\n{BASE}").findings
    assert "missing '}' before the end of the file" in error.message
    assert (error.source.line, error.source.column, error.severity) == (1, 1, Severity.ERROR)


def test_a_bad_defaults_entry_stops_xinetd_so_it_is_refused():
    with pytest.raises(ConfigError) as info:
        parse(f"defaults\n{{\n\tinstances = lots\n}}\nservice nrpe\n{{\n{BASE}}}\n")
    assert (info.value.line, info.value.column) == (3, 14)
    assert "xinetd exits" in info.value.msg
    # a line it ignores in the defaults costs only that line
    config = parse(f"defaults\n{{\n\tserver = /x\n\tinstances = 5\n}}\nservice nrpe\n{{\n{BASE}}}\n")
    assert config.services[0].instances == 5
    assert "not allowed in the defaults entry" in config.findings[0].message


def test_a_failed_attribute_switched_back_on_runs_without_it():
    # parse.c: a refused value disables the service, a later `disable = no` enables it
    config = parse(f"service nrpe\n{{\n{BASE}access_times = 08:00-24:00\ndisable = no\n}}\n")
    [s] = config.services
    assert s.access_times == ()
    [warning] = config.findings
    assert warning.severity is Severity.WARNING and "`disable = no` at line 8" in warning.message
    # so does the defaults' enabled list
    config = parse(f"defaults\n{{\n\tenabled = nrpe\n}}\n"
                   f"service nrpe\n{{\n{BASE}instances = lots\n}}\n")
    assert config.services[0].instances is None
    assert "enabled list switches it back on" in config.findings[0].message


def test_include_loop_and_repeats_are_read_once(tmp_path):
    (tmp_path / "a").write_text("include b\ninclude c\ninclude c\n")
    (tmp_path / "b").write_text(f"service nrpe\n{{\n{BASE}}}\ninclude a\n")
    (tmp_path / "c").write_text("")
    config = read_xinetd(tmp_path / "a", services=SERVICES)
    assert [s.id for s in config.services] == ["nrpe"]
    loop, again = [f for f in config.findings]
    assert "include loop" in loop.message and loop.severity is Severity.WARNING
    assert (loop.source.file, loop.source.line, loop.source.column) == (str(tmp_path / "b"), 8, 9)
    assert "included again" in again.message and again.source.line == 3


def test_disabled_entries_are_not_checked_past_the_disable_line():
    assert service("disable = yes\nsocket_type = stream") is None  # no wait, no user: fine
    config = parse(f"service nrpe\n{{\n{BASE}disable = yes\nbogus = 1\n}}\n")
    assert config.services == () and [f.severity for f in config.findings] == [Severity.INFO]
    # lines before it were read, and xinetd said so
    config = parse(f"service nrpe\n{{\n{BASE}bogus = 1\ndisable = yes\n}}\n")
    assert [f.severity for f in config.findings] == [Severity.WARNING, Severity.INFO]


def test_cli_converts_the_rest_exits_1_and_says_where(tmp_path):
    bad = tmp_path / "xinetd.conf"
    bad.write_text(f"service nrpe\n{{\n{BASE}port=5666\n}}\n"
                   f"service git\n{{\n{BASE}type = UNLISTED\nport = 9418\n}}\n")
    out = tmp_path / "units"
    result = run_cli("convert", "--no-host-check", "--services", str(CORPUS / "services"),
                     str(bad), "-o", str(out))
    assert result.returncode == 1, result.stderr
    assert f"{bad}:7:1: error: attribute 'port' needs a space" in result.stderr
    written = {p.name for p in out.iterdir()}
    assert {"git.socket", "git@.service"} <= written and not any("nrpe" in n for n in written)


def test_cli_exit_2_only_when_nothing_can_be_read(tmp_path):
    os.mkfifo(tmp_path / "fifo")  # never waited on: it is not a regular file
    for path in (tmp_path / "missing.conf", tmp_path / "fifo"):
        result = run_cli("convert", "--format", "xinetd", str(path), "-o", str(tmp_path / "o"))
        assert result.returncode == 2 and str(path) in result.stderr, result.stderr
    (tmp_path / "inetd.conf").write_text("echo stream tcp nowait root internal\n")
    result = run_cli("convert", "--format", "xinetd", str(tmp_path / "inetd.conf"))
    assert result.returncode == 2 and "not an xinetd configuration" in result.stderr
    assert f"{tmp_path / 'inetd.conf'}:1:1:" in result.stderr


def test_cli_verbose_says_which_files_xinetd_would_skip():
    result = run_cli("convert", "-v", "--dry-run", "--services", str(CORPUS / "services"),
                     str(CORPUS / "xinetd.d"))
    assert "tftp.rpmsave" in result.stderr + result.stdout
    quiet = run_cli("convert", "--dry-run", "--services", str(CORPUS / "services"),
                    str(CORPUS / "xinetd.d"))
    assert "tftp.rpmsave" not in quiet.stderr + quiet.stdout


def test_error_column_points_at_the_bad_value_not_the_first():
    config = parse(f"service nrpe\n{{\n{BASE}only_from = 10.0.0.1 10.0.{{1,,2}}\n}}\n")
    assert (config.findings[0].source.line, config.findings[0].source.column) == (7, 22)


# -- against the real xinetd: what it accepts, which duplicate wins --------------------------

def test_the_packaged_xinetd_agrees_on_dgram_nowait_and_duplicates(xinetd, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("xinetd needs root to start")
    socks = [socket.socket() for _ in range(3)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    p1, p2, p3 = (s.getsockname()[1] for s in socks)
    for s in socks:
        s.close()
    common = "\ttype = INTERNAL UNLISTED\n\tbind = 127.0.0.1\n\tflags = NOLIBWRAP\n\tuser = root\n"
    text = (f"service echo\n{{\n{common}\tid = e-dgram\n\tsocket_type = dgram\n\twait = no\n"
            f"\tport = {p1}\n}}\n"
            f"service echo\n{{\n{common}\tid = e\n\tsocket_type = stream\n\twait = no\n"
            f"\tport = {p2}\n}}\n"
            f"service echo\n{{\n{common}\tid = e\n\tsocket_type = stream\n\twait = no\n"
            f"\tport = {p3}\n}}\n"
            f"service daytime\n{{\n{common}\tid = d\n\tsocket_type = stream\n\twait = no\n"
            f"\tport = {p2}\n}}\n")
    conf = tmp_path / "xinetd.conf"
    conf.write_text(text)
    ours = {(s.id, s.listens[0].port) for s in read_xinetd(conf, services=SERVICES).services}
    assert ours == {("e-dgram", p1), ("e", p2), ("e-2", p3)}  # daytime on p2 left out
    proc = subprocess.Popen([xinetd, "-dontfork", "-f", str(conf), "-filelog",
                             str(tmp_path / "log"), "-pidfile", str(tmp_path / "pid")],
                            start_new_session=True)
    try:
        def tcp(port):
            for _ in range(100):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=3) as c:
                        c.sendall(b"who\n")
                        return c.recv(64)
                except ConnectionRefusedError:
                    time.sleep(0.05)
        assert tcp(p2) == b"who\n"  # the first entry (echo) holds the port, not daytime
        assert tcp(p3) == b"who\n"  # the same id on another port is served too
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(3)
            u.sendto(b"dgram nowait", ("127.0.0.1", p1))
            assert u.recvfrom(64)[0] == b"dgram nowait"  # accepted, not rejected
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


# -- per-entry errors: the shape both readers report them in ---------------------------------

def test_a_bad_entry_becomes_an_error_finding_with_its_location_and_outcome():
    from inetd2systemd.config import bad_entry
    from inetd2systemd.report import exit_status, finding_json, text_lines
    finding = bad_entry(ConfigError("access_times: invalid time interval", "/x.conf", 9, 17),
                        "xinetd disables this service", "daytime",
                        code=Code.DISABLED_BY_DAEMON)
    assert finding.severity is Severity.ERROR
    assert text_lines([finding]) == ["/x.conf:9:17: error [daytime]: access_times: invalid "
                                     "time interval: xinetd disables this service"]
    assert finding_json(finding)["column"] == 17 and exit_status([finding]) == 1
    assert finding_json(finding)["code"] == "disabled-by-daemon"


# -- every rule, against the packaged xinetd ---------------------------------------------------

def _body(*extra: str, drop: tuple[str, ...] = (), **values: str) -> str:
    """A service body that runs under xinetd on 127.0.0.1, changed as a case needs."""
    attrs = {"type": "UNLISTED", "socket_type": "stream", "wait": "no", "user": "root",
             "server": "/bin/cat", "port": "{port}", "bind": "127.0.0.1"}
    attrs = {k: v for k, v in attrs.items() if k not in drop} | values
    return "\n".join([f"\t{k} = {v}" for k, v in attrs.items()] + [f"\t{e}" for e in extra])


# (name, header keyword, body, whether xinetd runs it): each is a rule of the reader
RULES = [
    ("case", "SERVICE", "\tTYPE = unlisted\n\tSocket_Type = STREAM\n\tWAIT = No\n\tUSER = root\n"
     "\tServer = /bin/cat\n\tFLAGS = ipv4 KeepAlive\n\tPORT = {port}\n\tBIND = 127.0.0.1", True),
    ("hash", "service", _body("per_source = 10 # the CTF template's comment"), True),
    ("t24", "service", _body("access_times = 01:00-24:00"), False),
    ("t24-on-again", "service", _body("access_times = 01:00-24:00", "disable = no"), True),
    ("overnight", "service", _body("access_times = 22:00-06:00"), False),
    ("lots", "service", _body("instances = lots"), False),
    ("bogus", "service", _body("bogus = 1"), True),
    ("nospace", "service", _body("nice=5"), False),
    ("twice", "service", _body("user = nobody"), True),
    ("pluseq", "service", _body("instances += 3"), True),
    ("cps1", "service", _body("cps = 10"), True),
    ("noargs", "service", _body("server_args ="), False),
    ("envminus", "service", _body("env -= A=1"), False),
    ("envnoeq", "service", _body("env = NOEQUALS"), False),
    ("commas", "service", _body("only_from = 10.1.{2,,3}"), False),
    ("comma", "service", _body("only_from = 10.0.0.1,10.0.0.2"), False),
    ("badname", "service", _body("only_from = 127.0.0.1 bad!!name"), True),
    ("fast", "service", _body("flags = FAST"), False),
    ("disflag", "service", _body("flags = DISABLE"), False),
    ("8g", "service", _body("rlimit_as = 8G"), False),
    ("cpuk", "service", _body("rlimit_cpu = 10K"), False),
    ("syslog1", "service", _body("log_type = SYSLOG"), False),
    ("syslogcase", "service", _body("log_type = syslog DAEMON"), True),
    ("deny", "service", _body("deny_time = SOMETIMES"), False),
    ("record", "service", _body("log_on_failure = RECORD"), False),
    ("load25x", "service", _body("max_load = 2.5x"), True),
    ("load0", "service", _body("max_load = 0"), False),
    ("umask8", "service", _body("umask = 0778"), False),
    ("maybe", "service", _body(wait="maybe"), False),
    ("redirect-no-user", "service", _body("redirect = 127.0.0.1 9", drop=("user", "server")),
     False),
    ("redirect", "service", _body("redirect = 127.0.0.1 9", drop=("server",)), True),
    ("sensor-no-server", "service", _body("flags = SENSOR", drop=("server",)), False),
    ("servers", "service", _body(type="INTERNAL UNLISTED", drop=("server", "user")), False),
    ("ECHO", "service", _body(type="INTERNAL UNLISTED", drop=("server", "user")), True),
    ("rdm", "service", _body(socket_type="rdm"), False),
    ("TCP", "service", _body("protocol = TCP"), True),
    ("cpsneg", "service", _body("cps = -1 5"), True),
    ("bind1271", "service", _body(bind="127.1"), True),
    ("bind-bad-name", "service", _body(bind="a..b"), False),
    ("mdns", "service", _body("mdns = no"), True),
    ("bothflags", "service", _body("flags = IPv6 IPv4"), False),
    ("dismaybe", "service", _body("disable = maybe"), False),
    ("traffic", "service", _body("log_on_success = TRAFFIC"), False),
    ("nameinargs", "service", _body("flags = NAMEINARGS"), False),
    ("nice5x", "service", _body("nice = 5x"), False),
    ("vt", "service", _body("instances = \v"), True),
    ("nul", "service", _body("server_args = a\0 b", "bogus\0 = 1"), True),
    ("include-inside", "service", _body("include /etc/xinetd.conf"), False),
    ("nowait", "service", _body(drop=("wait",)), False),
    ("listed-wrong-port", "service", _body("port = 17", drop=("type", "port")), False),
    ("labeled", "service", _body("flags = LABELED"), True),
    ("labeled-wait", "service", _body("flags = LABELED", wait="yes"), False),
    ("labeled-dgram", "service", _body("flags = LABELED", socket_type="dgram"), False),
    ("partial-times", "service", _body("access_times = 01:00-02:00 25:00-26:00",
                                       "disable = no"), True),
    ("cps-in-defaults-style", "service", _body("cps = 0 0"), True),
    ("umask-octal", "service", _body("umask = 022"), True),
    ("nice-neg", "service", _body("nice = -5"), True),
    ("per-source-neg", "service", _body("per_source = -1"), False),
    ("port-big", "service", _body(port="65536"), False),
    ("rpc-version-range", "service", _body("rpc_version = 3-1"), False),
    ("groups-bad", "service", _body("groups = maybe"), False),
    ("v6only-case", "service", _body("v6only = NO"), True),
    ("deny-forever", "service", _body("deny_time = forever"), True),
    ("log-file", "service", _body("log_type = FILE /tmp/x 10K 5K"), False),
    ("env-many", "service", _body("env = A=1 B=2", "env += C=3"), True),
    ("passenv-minus", "service", _body("passenv = PATH HOME", "passenv -= path"), True),
]


def _rules_text(ports) -> str:
    entries = []
    for (name, header, body, _), port in zip(RULES, ports):
        real = name if name in ("servers", "ECHO") else f"r-{name}"
        if name == "listed-wrong-port":
            real = "echo"
        entries.append(f"{header} {real}\n{{\n{body.replace('{port}', str(port))}\n}}\n")
    return "".join(entries)


# Messages xinetd logs after asking this host (its users, its programs): the reader
# leaves those checks to convert's host check, which knows the target may be elsewhere.
HOST_CHECKS = ("user_parser", "group_parser", "server_parser")


def _agrees(ours, theirs) -> None:
    """Same services running; every line xinetd speaks of has a finding of ours."""
    assert {s.id for s in ours.services} == theirs.started
    lines = {f.source.line for f in ours.findings if f.severity is not Severity.INFO}
    host_checks = {line for _, line, _, function in theirs.messages if function in HOST_CHECKS}
    spoken = theirs.lines() - host_checks
    assert spoken <= lines, theirs.output


@needs_xinetd
def test_every_rule_against_the_packaged_xinetd(tmp_path):
    ports = range(20000, 20000 + len(RULES))  # in xinetd's own network namespace
    conf = tmp_path / "xinetd.conf"
    conf.write_text(_rules_text(ports))
    theirs = xinetd_reads(conf)
    ours = read_xinetd(conf, services=load_services("/etc/services"))
    for (name, _, _, runs), port in zip(RULES, ports):
        real = {"servers": "servers", "ECHO": "ECHO", "listed-wrong-port": "echo"}.get(
            name, f"r-{name}")
        assert (real in theirs.started) is runs, (name, theirs.output)
    _agrees(ours, theirs)


@needs_xinetd
def test_entry_structure_against_the_packaged_xinetd(tmp_path):
    p = iter(range(20000, 20020))

    def svc(extra: str = "") -> str:
        return _body().replace("{port}", str(next(p))) + "\n" + extra

    text = ("defaults\n{\n\tenabled = s-bad s-ok s-crlf s4 s7 S-CASE\n\tinstances = 5\n}\n"
            f"service s-bad\n{{\n{svc()}\taccess_times = 24:00-25:00\n}}\n"
            f"service s-off\n{{\n{svc()}}}\n"
            f"service s-ok\n{{\n{svc()}}}\n"
            f"service s1\n{svc()}}}\n"  # no `{`
            f"service s2\n{{\n{svc()}"  # no `}`: s3 goes with it
            f"service s3\n{{\n{svc()}}}\n"
            f"service s4\n{{\n{svc()}}}\n"
            + f"service s-crlf\n{{\n{svc()}}}\n".replace("\n", "\r\n")
            + "include\n"  # no name: xinetd skips to the next `}`, and s5 with it
            f"service s5\n{{\n{svc()}}}\n"
            f"service s7 extra words\n{{\n{svc()}}}\n"
            f"service s-case\n{{\n{svc()}}}\n"
            "defaults\n{\n\tinstances = 7\n}\n"  # a second one in a file
            f"service s8\n}}\n{svc()}}}\n"
            f"service s9\n{{\n{svc()}}}\n")
    conf = tmp_path / "xinetd.conf"
    conf.write_text(text, newline="")
    theirs = xinetd_reads(conf)
    ours = read_xinetd(conf, services=SERVICES)
    assert theirs.started == {"s-bad", "s-ok", "s4", "s7", "s-case"}
    _agrees(ours, theirs)


@needs_xinetd
def test_a_bad_defaults_entry_stops_the_packaged_xinetd_too(tmp_path):
    conf = tmp_path / "xinetd.conf"
    conf.write_text("defaults\n{\n\tinstances = lots\n}\n"
                    f"service s1\n{{\n{_body().replace('{port}', '20000')}\n}}\n")
    theirs = xinetd_reads(conf, debug=False)
    assert theirs.exited and not theirs.started
    with pytest.raises(ConfigError) as info:
        read_xinetd(conf, services=SERVICES)
    assert info.value.line == 3 and any(line == 3 for _, line, _, _ in theirs.messages)


@needs_xinetd
def test_an_include_loop_ends_with_each_service_once_in_the_packaged_xinetd(tmp_path):
    conf = tmp_path / "xinetd.conf"
    conf.write_text(f"service s1\n{{\n{_body().replace('{port}', '20000')}\n}}\n"
                    f"include {conf}\n"
                    f"service s2\n{{\n{_body().replace('{port}', '20001')}\n}}\n")
    # with the usual limit of 1,024 descriptors it stops nesting, and disables the
    # duplicates it read (with a much higher limit it overflows its stack instead)
    theirs = xinetd_reads(conf, debug=False, open_files=1024)
    assert not theirs.exited
    ours = read_xinetd(conf, services=SERVICES)
    assert [s.id for s in ours.services] == ["s1", "s2"]
    assert sum("not unique or is a duplicate" in t for _, _, t, _ in theirs.messages) > 100


# -- hostile input: no traceback, no hang, linear time ---------------------------------------

def test_a_nul_byte_ends_an_include_path_as_it_ends_a_c_string(tmp_path):
    (tmp_path / "extra").write_text(f"service nrpe\n{{\n{BASE}}}\n")
    (tmp_path / "xinetd.conf").write_bytes(b"include extra\0/../../etc/shadow\n"
                                           b"includedir \0\n")
    config = read_xinetd(tmp_path / "xinetd.conf", services=SERVICES)
    assert [s.id for s in config.services] == ["nrpe"]
    assert "the name is missing" in config.findings[-1].message  # `includedir` alone


def test_include_nesting_a_thousand_deep(tmp_path):
    depth = 1000
    for n in range(depth):
        (tmp_path / f"f{n}").write_text(f"include f{n + 1}\n" if n + 1 < depth else
                                        f"service nrpe\n{{\n{BASE}}}\n")
    config = read_xinetd(tmp_path / "f0", services=SERVICES)
    assert [s.id for s in config.services] == ["nrpe"]


def test_include_fan_out_is_read_once_per_file(tmp_path):
    # each file includes the next twice: xinetd reads the last one 2**21 times
    for n in range(22):
        (tmp_path / f"f{n}").write_text(f"include f{n + 1}\ninclude f{n + 1}\n" if n < 21 else
                                        f"service nrpe\n{{\n{BASE}}}\n")
    config = read_xinetd(tmp_path / "f0", services=SERVICES)
    assert [s.id for s in config.services] == ["nrpe"]
    assert sum("included again" in f.message for f in config.findings) == 21


def test_fifos_and_devices_are_not_opened_for_reading(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "xinetd.conf").write_text(f"include {tmp_path}/fifo\ninclude /dev/zero\n"
                                          f"service nrpe\n{{\n{BASE}}}\n")
    config = read_xinetd(tmp_path / "xinetd.conf", services=SERVICES)
    assert [s.id for s in config.services] == ["nrpe"]
    assert [f.source.line for f in config.findings] == [1, 2]
    assert all("not a regular file" in f.message for f in config.findings)


@pytest.mark.parametrize("name", ["a..b", "." + "x" * 10, "x" * 64 + ".example",
                                  "host\udcff.example", "10.1.2.3.4.5"])
def test_bind_names_no_resolver_would_take_disable_the_service(name):
    config = parse(f"service nrpe\n{{\n{BASE}bind = {name}\n}}\n")
    assert config.services == ()
    [error] = config.findings
    assert error.message.endswith("xinetd disables this service")
    assert (error.source.line, error.source.column) == (7, 8)


# -- serve: a bad entry costs only itself, at start and on reload -----------------------------

def _echo_entry(name: str, port: int, extra: str = "") -> str:
    return (f"service {name}\n{{\n\ttype = INTERNAL UNLISTED\n\tid = {name}\n"
            f"\tsocket_type = stream\n\twait = no\n\tport = {port}\n\tbind = 127.0.0.1\n"
            f"{extra}}}\n")


def _echoes(port: int, payload: bytes = b"hi\n") -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
            c.sendall(payload)
            return c.recv(64) == payload
    except OSError:
        return False


def test_serve_starts_the_rest_and_reloads_past_a_bad_entry(tmp_path):
    echo, second = free_port(), free_port()
    conf = tmp_path / "xinetd.conf"
    conf.write_text(_echo_entry("echo", echo) +
                    _echo_entry("echo", free_port(), "\taccess_times = 08:00-24:00\n"))
    log = tmp_path / "log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "inetd2systemd", "serve", "-c", str(conf),
                                 "--format", "xinetd", "--foreground"], stderr=err)
    try:
        assert wait_for(lambda: _echoes(echo)), log.read_text()
        # the log is flushed once per turn of serve's loop
        assert wait_for(lambda: f"{conf}:18:17: error" in log.read_text()), log.read_text()
        assert "xinetd disables this service" in log.read_text()
        conf.write_text(_echo_entry("echo", echo) + _echo_entry("echo", second) +
                        "service broken\n\tsocket_type = stream\n}\n")
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: _echoes(second)), log.read_text()
        assert _echoes(echo) and proc.poll() is None
        # at the line xinetd finds instead of '{'
        assert wait_for(lambda: f"{conf}:20:2: error" in log.read_text()), log.read_text()
    finally:
        proc.terminate()
        proc.wait(10)
