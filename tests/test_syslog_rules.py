"""syslog.conf selectors and actions, each compared with what the real rsyslogd does with
the same lines: both daemons get the same syslog.conf rules and the same 192 messages
(every facility x severity) over TCP, and must write the same lines to the same files."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from inetd2systemd.errors import ConfigError
from inetd2systemd.syslog.rules import parse_selector, parse_syslog_conf, read_syslog_conf

from support import free_port, wait_for
from syslog_support import PYTHON, Listener, Rsyslog, outcome_as, read_lines, send_tcp

SELECTORS = [
    "*.info;mail.none;authpriv.none",
    "kern.info;kern.!err",
    "kern.!err",  # rsyslog: a negation alone selects nothing (it only removes bits)
    "kern.*;kern.!err",
    "mail.*;mail.!=info",
    "mail,news.=info",
    "*.=crit;kern.none",
    "*.debug;local6.err",  # Linux semantics: OR, local6 stays debug+ (BSD would differ)
    "*.debug;local6.none;local6.err",
    "local0.warning",
    "auth,authpriv.*;auth.!info",
    "user.!=notice",
    "daemon.*;daemon.!*",
    "local7.none",
    "security.err",
    "cron.=debug;cron.=err",
    "*.emerg;*.=alert",
    "LOCAL1.Info",  # names are case-insensitive
    "*.*",
]

# Discard and '&' need order: local5 goes to its own file and then nowhere else.
TRAILER = """\
local5.*\t{dir}/local5.log
& ~
*.*\t{dir}/after-discard.log
local7.*\t{dir}/end.log
"""


def config_for(directory) -> str:
    lines = [f"{sel}\t{directory}/rule{i}.log" for i, sel in enumerate(SELECTORS)]
    return "\n".join(lines) + "\n" + TRAILER.format(dir=directory)


def all_messages() -> list[bytes]:
    return [b"<%d>Nov 27 12:00:00 testhost seltest: m-%d-%d" % (f * 8 + s, f, s)
            for f in range(24) for s in range(8)] + [b"<191>Nov 27 12:00:01 testhost seltest: END"]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, rsyslogd):
    base = tmp_path_factory.mktemp("selectors")
    ours_dir, theirs_dir = base / "ours", base / "rsyslog"
    ours_dir.mkdir()
    theirs_dir.mkdir()
    port_ours, port_theirs = free_port(), free_port()
    # Debian's rsyslog.conf selects the traditional format, which is what we write.
    rsyslog = Rsyslog(rsyslogd, theirs_dir, config_for(theirs_dir), tcp_port=port_theirs,
                      extra="$ActionFileDefaultTemplate RSYSLOG_TraditionalFileFormat")
    ours = Listener(ours_dir, config_for(ours_dir), [f"tcp:127.0.0.1:{port_ours}"])
    try:
        messages = all_messages()
        send_tcp(port_ours, messages)
        send_tcp(port_theirs, messages)
        for d in (ours_dir, theirs_dir):
            assert wait_for(lambda: any("END" in l for l in read_lines(d / "end.log"))), d
    finally:
        rsyslog.stop()
        ours.stop()
    return ours_dir, theirs_dir


def _ours_and_theirs(outputs, name):
    ours_dir, theirs_dir = outputs
    theirs = [l for l in read_lines(theirs_dir / name) if "seltest:" in l]  # not rsyslogd's own
    return read_lines(ours_dir / name), theirs


@pytest.mark.parametrize("index", range(len(SELECTORS)), ids=SELECTORS)
def test_selector_selects_what_rsyslog_selects(outputs, index):
    ours, theirs = _ours_and_theirs(outputs, f"rule{index}.log")
    assert ours == theirs
    if SELECTORS[index] not in ("local7.none", "daemon.*;daemon.!*", "kern.!err", "user.!=notice"):
        assert ours, "the selector matched nothing: the comparison would prove nothing"


def test_discard_stops_later_rules_like_rsyslog(outputs):
    ours, theirs = _ours_and_theirs(outputs, "after-discard.log")
    assert ours == theirs
    assert not any("m-21-" in l for l in ours) and any("m-20-" in l for l in ours)
    ours, theirs = _ours_and_theirs(outputs, "local5.log")
    assert ours == theirs and len(ours) == 8


def test_linux_or_semantics_differ_from_bsd():
    # *.debug;local6.err: local6 keeps debug (bit 7) under Linux/rsyslog rules.
    masks = parse_selector("*.debug;local6.err")
    assert masks[22] == 0xFF
    assert parse_selector("*.debug;local6.none;local6.err")[22] == 0b1111


@pytest.mark.parametrize("text, line, column, words", [
    ("*.info /a\nmail.inf /b\n", 2, 6, "unknown priority 'inf'"),
    ("# c\n\nmial.info /b\n", 3, 1, "unknown facility 'mial'"),
    ("mail.info\n", 1, 1, "no action"),
    ("mail /x\n", 1, 1, "no '.priority'"),
    ("mail.* @host:99999\n", 1, 14, "bad port"),
    ("mail.* @a..b:5514\n", 1, 9, "bad forwarding host 'a..b'"),
    ("*.* @@(o)[::1x]:5\n", 1, 11, "not an IPv6 address"),
    ("*.* @10.0.0.010\n", 1, 6, "dotted decimal"),
    ("*.* /var/log/a\0b\n", 1, 15, "NUL byte"),
    ("\tinclude\n", 1, 9, "include needs a path"),
    ("!sshd\n*.* /x\n", 1, 1, "BSD program/host blocks"),
    (':msg, contains, "x" /x\n', 1, 1, "property filters"),
    ('module(load="imudp")\n', 1, 1, "RainerScript"),
    ("& /x\n", 1, 1, "no previous selector"),
    ("*.* ?frobnicate\n", 1, 5, "unknown action"),
])
def test_bad_lines_name_file_line_and_column(text, line, column, words):
    with pytest.raises(ConfigError) as info:
        parse_syslog_conf(text, "/etc/syslog.conf")
    err = info.value
    assert (err.file, err.line, err.column) == ("/etc/syslog.conf", line, column)
    assert words in err.msg


def test_unsupported_actions_and_directives_are_reported_not_silently_dropped():
    rs = parse_syslog_conf("*.emerg :omusrmsg:*\n*.alert root,eric\n$RepeatedMsgReduction on\n"
                           "*.* -/var/log/x;RSYSLOG_FileFormat\n", "f")
    assert [f.source.line for f in rs.findings] == [1, 2, 3, 4]
    assert [r.action.kind for r in rs.rules] == ["file"]


def test_actions_and_continuations():
    rs = parse_syslog_conf("mail.*;\\\nnews.* -/var/log/m\nkern.* /dev/console\n"
                           "*.* @[::1]:5514\n*.* @@(o)loghost\nuser.* |/run/fifo\n"
                           "local0.* :omjournal:\n", "f")
    kinds = [(r.action.kind, r.action.target, r.action.port, r.action.sync, r.action.octet_counted)
             for r in rs.rules]
    assert kinds == [("file", "/var/log/m", 514, False, False), ("console", "/dev/console", 514, False, False),
                     ("udp", "::1", 5514, False, False), ("tcp", "loghost", 514, False, True),
                     ("pipe", "/run/fifo", 514, False, False), ("journal", "", 514, False, False)]
    assert rs.rules[0].source.line == 1 and rs.rules[0].masks[7] == 0xFF


def test_include_reads_the_files_in_order(tmp_path):
    (tmp_path / "syslog.d").mkdir()
    (tmp_path / "syslog.d" / "b.conf").write_text("news.* /b\n")
    (tmp_path / "syslog.d" / "a.conf").write_text("mail.* /a\n")
    main = tmp_path / "syslog.conf"
    main.write_text(f"include {tmp_path}/syslog.d/*.conf\nkern.* /k\n")
    from inetd2systemd.syslog.rules import read_syslog_conf

    rs = read_syslog_conf(str(main))
    assert [r.action.target for r in rs.rules] == ["/a", "/b", "/k"]
    assert rs.rules[0].source.file.endswith("a.conf")


def _check(conf, *extra, timeout=20) -> subprocess.CompletedProcess:
    """`syslogd --config CONF --check` as a user runs it."""
    return subprocess.run([PYTHON, "-m", "inetd2systemd", "syslogd", "--config", str(conf),
                           "--check", *extra], capture_output=True, text=True, timeout=timeout)


def test_include_of_a_directory_reads_its_files_as_freebsd_and_rsyslog_do(tmp_path):
    d = tmp_path / "syslog.d"
    d.mkdir()
    (d / "b.conf").write_text("news.* /b\n")
    (d / "a.conf").write_text("mail.* /a\n")
    (d / "notes.txt").write_text("kern.* /notes\n")
    (d / ".hidden.conf").write_text("kern.* /hidden\n")
    (d / "sub.conf").mkdir()
    main = tmp_path / "syslog.conf"
    main.write_text(f"include {d}\n")  # FreeBSD: the *.conf files not starting with '.'
    rs = read_syslog_conf(str(main))
    assert [r.action.target for r in rs.rules] == ["/a", "/b"]
    assert any("sub.conf: not a regular file" in f.message for f in rs.findings)
    main.write_text(f"$IncludeConfig {d}/\n")  # rsyslog: every file not starting with '.'
    assert [r.action.target for r in read_syslog_conf(str(main)).rules] == ["/a", "/b", "/notes"]


@pytest.mark.parametrize("what", ["fifo", "/dev/zero", "itself", "missing-dir-entry", "fan-out"])
def test_includes_that_would_hang_grow_or_loop_are_located_errors(tmp_path, what):
    main = tmp_path / "syslog.conf"
    if what == "fifo":
        os.mkfifo(tmp_path / "fifo.conf")  # opening it for reading would wait for a writer
        main.write_text("*.* /x\n  include fifo.conf\n")
        where, words = ":2:11:", "not a regular file"
    elif what == "/dev/zero":  # reading it would never end
        main.write_text("*.* /x\n\ninclude   /dev/zero\n")
        where, words = ":3:11:", "not a regular file"
    elif what == "itself":
        main.write_text("*.* /x\ninclude syslog.conf\n")
        where, words = ":2:9:", "includes itself"
    elif what == "missing-dir-entry":
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "a.conf").symlink_to(tmp_path / "nowhere")
        main.write_text("include sub/*.conf\n")
        where, words = ":1:9:", "No such file"
    else:  # 22 files, each including the next twice: 2^22 reads if nothing bounds it
        for i in range(22):
            (tmp_path / f"f{i}.conf").write_text(f"include f{i + 1}.conf\ninclude f{i + 1}.conf\n"
                                                 if i < 21 else "*.* /x\n")
        main.write_text("include f0.conf\n")
        where, words = ".conf:1:9:", "nested too deeply"
    res = _check(main)
    assert res.returncode == 2, res.stderr
    assert where in res.stderr and words in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="switches to the user nobody: needs root")
def test_an_unreadable_include_is_a_located_error(tmp_path):
    nobody = pwd.getpwnam("nobody")
    base = Path(tempfile.mkdtemp(dir="/tmp"))  # reachable by nobody (pytest's tmp is not)
    try:
        base.chmod(0o755)
        (base / "secret.conf").write_text("*.* /x\n")
        (base / "secret.conf").chmod(0o600)
        main = base / "syslog.conf"
        main.write_text("*.* /y\ninclude secret.conf\n")
        main.chmod(0o644)
        outcome = outcome_as(nobody, lambda: read_syslog_conf(str(main)))
        assert outcome == (f"ConfigError: {main}:2:9: cannot include {base}/secret.conf: "
                           "cannot read: Permission denied"), outcome
    finally:
        shutil.rmtree(base)


@pytest.mark.skipif(os.geteuid() != 0, reason="makes files owned by nobody: needs root")
@pytest.mark.parametrize("whose", ["main", "included", "directory"])
def test_a_configuration_another_user_can_change_is_refused(tmp_path, whose):
    """As sshd's StrictModes: syslog.conf decides which files root appends to."""
    nobody = pwd.getpwnam("nobody")
    d = tmp_path / "syslog.d"
    d.mkdir()
    (d / "a.conf").write_text("mail.* /a\n")
    main = tmp_path / "syslog.conf"
    main.write_text(f"*.* /x\ninclude {d}/*.conf\n")
    target = {"main": main, "included": d / "a.conf", "directory": d}[whose]
    os.chown(target, nobody.pw_uid, nobody.pw_gid)
    res = _check(main)
    assert res.returncode == 2, res.stderr
    assert "not loaded" in res.stderr and "nobody" in res.stderr, res.stderr
    if whose != "main":
        assert f"{main}:2:9: cannot include" in res.stderr


def test_check_refuses_a_malformed_forward_and_warns_about_one_that_does_not_resolve(tmp_path):
    conf = tmp_path / "syslog.conf"
    conf.write_text("*.* /x\n*.*\t@a..b:5514\n")
    res = _check(conf)
    assert res.returncode == 2 and f"{conf}:2:6: bad forwarding host 'a..b'" in res.stderr, res.stderr
    conf.write_text("*.* /x\n*.*\t@no-such-host.invalid:5514\n")
    res = _check(conf)
    assert res.returncode == 1, res.stderr  # read, with a warning to read (as convert's 1)
    assert f"{conf}:2: warning: forwarding host 'no-such-host.invalid' does not resolve" in res.stderr


def test_cli_check_and_bad_config_exit_codes(tmp_path):
    good, bad = tmp_path / "good.conf", tmp_path / "bad.conf"
    good.write_text("*.info -/tmp/x\n")
    bad.write_text("*.info /x\nkern.bogus /y\n")
    ok = subprocess.run([PYTHON, "-m", "inetd2systemd", "syslogd", "--config", str(good), "--check"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "1 rules" in ok.stdout
    res = subprocess.run([PYTHON, "-m", "inetd2systemd", "syslogd", "--config", str(bad),
                          "--listen", "udp:127.0.0.1:0"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert f"{bad}:2:6: unknown priority 'bogus'" in res.stderr


def test_default_rules_journal_when_journald_runs_else_etc_syslog_conf(tmp_path, monkeypatch):
    import argparse

    from inetd2systemd.syslog import cli

    conf = tmp_path / "syslog.conf"
    conf.write_text("mail.* -/var/log/mail\n")
    monkeypatch.setattr(cli, "SYSLOG_CONF", str(conf))
    monkeypatch.setattr(cli, "JOURNAL_SOCKET", str(tmp_path / "journal-socket"))
    args = argparse.Namespace(journal=False, config=None)
    where, load = cli.choose_rules(args)
    assert where == str(conf) and load().rules[0].action.target == "/var/log/mail"
    (tmp_path / "journal-socket").touch()  # journald runs
    where, load = cli.choose_rules(args)
    assert where == "the journal" and load().rules[0].action.kind == "journal"
    args.config = str(conf)  # an explicit file always wins
    assert cli.choose_rules(args)[0] == str(conf)
