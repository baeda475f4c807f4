"""A user written as a number: never the superserver's own group, one decision everywhere.

xinetd (parsers.c user_parser) takes `user = 4` as uid 4 without a passwd lookup and runs
it with group 4 too (not the passwd entry's group: uid 4 is `sync`, group nogroup, here).
The reader carries that as group "4". A number that the account databases do not have
is refused everywhere: systemd refuses such a User= (217/USER) or Group= (216/GROUP),
so convert leaves the service out, import warns before the switch, and serve does not
start it (it once ran it as uid N with its own group, root's).
"""

from __future__ import annotations

import json
import os
import pwd
import sys

import pytest
from support import free_port, run_cli

from access_support import Namespaced, exchange, write_tables
from inetd2systemd.config.xinetd import parse_xinetd
from inetd2systemd.errors import ConfigError
from inetd2systemd.superserver.spawn import resolve_credentials

MISSING = 43210  # no passwd or group entry has it on the test machines


def entry(user: str, group: str | None = None, port: int = 7777, server: str = "/usr/bin/id") -> str:
    return (f"service i2s-{user}\n{{\n\ttype = UNLISTED\n\tsocket_type = stream\n\twait = no\n"
            f"\tport = {port}\n\tbind = 127.0.0.1\n\tflags = NOLIBWRAP\n\tserver = {server}\n"
            f"\tuser = {user}\n\tcps = 10000 1\n" + (f"\tgroup = {group}\n" if group else "") + "}\n")


def service(user: str, group: str | None = None):
    (one,) = parse_xinetd(entry(user, group), "xinetd.conf").services
    return one


def test_the_reader_gives_a_numeric_user_its_own_number_as_group():
    assert service("4").group == "4"
    assert service("4", "nogroup").group == "nogroup"
    assert service("nobody").group is None


def test_serve_runs_a_known_number_with_that_number_as_group():
    assert pwd.getpwuid(4).pw_gid != 4  # the passwd entry's group is another one
    credentials = resolve_credentials(service("4"))
    assert (credentials.uid, credentials.gid, credentials.groups) == (4, 4, ())


@pytest.mark.parametrize("user, group", [(str(MISSING), None), ("nobody", str(MISSING)),
                                         ("99999999999999999999", None)])
def test_serve_refuses_a_number_without_an_entry(user, group):
    with pytest.raises(ConfigError) as info:
        resolve_credentials(service(user, group))
    assert str(MISSING) in str(info.value) or "9999" in str(info.value)


def test_convert_leaves_out_a_number_without_an_entry_and_writes_group_for_a_known_one(tmp_path):
    conf = tmp_path / "xinetd.conf"
    conf.write_text(entry("4", port=7001) + entry(str(MISSING), port=7002))
    result = run_cli("convert", str(conf), "--json")
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    units = {u["name"]: u["text"] for u in data["units"]}
    known = next(text for name, text in units.items() if "i2s-4" in name and name.endswith(".service"))
    assert "User=4\n" in known and "Group=4\n" in known
    assert not any(f"i2s-{MISSING}" in name for name in units)
    (error,) = [f for f in data["findings"] if f["severity"] == "error"]
    assert f"user '{MISSING}' does not exist" in error["message"]


def test_import_preflight_names_a_number_without_an_entry(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "xinetd.conf").write_text(entry(str(MISSING), port=7002) + entry("4", port=7001))
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\nsync:x:4:65534::/bin:/bin/sync\n")
    (etc / "group").write_text("root:x:0:\nadm:x:4:\nnogroup:x:65534:\n")
    result = run_cli("import", str(tmp_path), "-o", str(tmp_path / "out"), "--no-port-check")
    report = (tmp_path / "out" / "report.md").read_text()
    assert f"user '{MISSING}' does not exist" in report, result.stderr
    assert "user '4' does not exist" not in report and "group '4' does not exist" not in report


@pytest.mark.skipif(os.geteuid() != 0, reason="xinetd needs root to start")
def test_serve_and_xinetd_run_a_numeric_user_alike(xinetd, tmp_path):
    """`id` as the server: the same identity under xinetd and serve for a known number;
    for an unknown one xinetd runs uid=gid=N and serve refuses to start the service."""
    known = free_port(2)
    unknown = known + 1
    conf = tmp_path / "xinetd.conf"
    conf.write_text(entry("4", port=known) + entry(str(MISSING), port=unknown))
    write_tables(tmp_path, "", "")
    with Namespaced([xinetd, "-dontfork", "-f", str(conf), "-pidfile", str(tmp_path / "pid")],
                    tmp_path / "hosts.allow", tmp_path / "hosts.deny", tmp_path / "x.log"
                    ).start([known, unknown]):
        theirs = exchange(known, "127.0.0.1", b""), exchange(unknown, "127.0.0.1", b"")
    with Namespaced([sys.executable, "-m", "inetd2systemd", "serve", "-c", str(conf), "--foreground"],
                    tmp_path / "hosts.allow", tmp_path / "hosts.deny", tmp_path / "s.log"
                    ).start([known]) as ours:
        mine = exchange(known, "127.0.0.1", b"")
        assert exchange(unknown, "127.0.0.1", b"", timeout=2) is None  # no socket for it
        log = ours.log()
    assert theirs[0] == mine and mine.startswith(b"uid=4(sync) gid=4(")
    assert theirs[1].startswith(f"uid={MISSING} gid={MISSING}".encode())
    assert f"unknown user '{MISSING}'" in log and "Traceback" not in log
