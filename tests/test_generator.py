"""`inetd2systemd-generator` as systemd runs it (a fresh process, three directories), on
host trees built under a temporary root (INETD2SYSTEMD_GENERATOR_ROOT), and the
`inetd2systemd generator` sub-command. The same under a real systemd is in
test_generator_systemd.py.

The generator's log goes to stderr here (SYSTEMD_LOG_TARGET=console, as for systemd's
own generators): a test must not write into this machine's kernel log.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from support import EXAMPLES, run_cli
from fuzz_support import fuzz_settings
from inetd2systemd.convert.pipeline import convert
from inetd2systemd.config.services import load_services
from inetd2systemd.generator import generate as gen_module, program
from inetd2systemd.generator.generate import generate, write
from inetd2systemd.generator.kmsg import Log, max_level
from inetd2systemd.units.writer import MARKER, WriterOptions

GENERATOR = str(Path(sys.executable).with_name("inetd2systemd-generator"))

INETD = """\
# a host's inetd.conf
echo\tstream\ttcp\tnowait\troot\tinternal
echo\tdgram\tudp\twait\troot\tinternal
7777\tstream\ttcp\tnowait.50\tnobody\t/usr/bin/echo\techo hello from inetd
tftp\tdgram\tudp\twait\troot\t/usr/sbin/in.tftpd\tin.tftpd -s /srv/tftp
"""

XINETD = """\
defaults
{
\tinstances = 50
}
includedir /etc/xinetd.d
"""

DAYTIME = """\
service daytime
{
\ttype = INTERNAL
\tid = daytime-stream
\tsocket_type = stream
\tprotocol = tcp
\twait = no
\tuser = root
}
"""


LINK = "etc/systemd/system-generators/inetd2systemd-generator"
OFF = "generator mode is off: inetd2systemd generator enable switches it on"


def make_host(root: Path, inetd: str | None = INETD, xinetd: str | None = None,
              xinetd_d: dict[str, str] | None = None, on: bool = True) -> Path:
    """A host tree: its /etc files, and /usr from this machine (the programs the
    services name must exist, as the generator checks); with generator mode on (the link
    `inetd2systemd generator enable` makes), unless on=False."""
    etc = root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    if on and not os.path.lexists(root / LINK):
        (root / LINK).parent.mkdir(parents=True, exist_ok=True)
        (root / LINK).symlink_to(GENERATOR)
    (etc / "services").write_text((EXAMPLES / "services").read_text())
    if not (root / "usr").exists():
        (root / "usr").symlink_to("/usr")
    if inetd is not None:
        (etc / "inetd.conf").write_text(inetd)
    if xinetd is not None:
        (etc / "xinetd.conf").write_text(xinetd)
    for name, text in (xinetd_d or {}).items():
        (etc / "xinetd.d").mkdir(exist_ok=True)
        (etc / "xinetd.d" / name).write_text(text)
    return root


def run_generator(root: Path, *args: str, env: dict | None = None
                  ) -> subprocess.CompletedProcess:
    environment = dict(os.environ, INETD2SYSTEMD_GENERATOR_ROOT=str(root),
                       SYSTEMD_LOG_TARGET="console")
    environment.update(env or {})
    return subprocess.run([GENERATOR, *args], capture_output=True, text=True,
                          env=environment, timeout=120)


def generated(directory: Path) -> dict[str, str]:
    """name -> text, and sockets.target.wants/NAME -> link target."""
    out = {}
    for path in sorted(directory.rglob("*")):
        name = str(path.relative_to(directory))
        if path.is_symlink():
            out[name] = os.readlink(path)
        elif path.is_file():
            out[name] = path.read_text()
    return out


@pytest.fixture
def normal(tmp_path) -> Path:
    path = tmp_path / "generator"
    path.mkdir()
    return path


# -- what it writes -------------------------------------------------------------------

def test_writes_the_units_convert_writes_and_links_the_sockets(tmp_path, normal):
    root = make_host(tmp_path / "host")
    out = run_generator(root, str(normal), str(tmp_path / "early"), str(tmp_path / "late"))
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    files = generated(normal)
    conf = str(root / "etc" / "inetd.conf")
    expected = convert([conf], WriterOptions(systemd_version=gen_module.systemd_version()),
                       services=load_services(root / "etc" / "services"))
    assert expected.units
    for unit in expected.units:
        text = files.pop(unit.name)
        # the same unit, plus the generator's note and SourcePath=
        lines = text.splitlines()
        assert lines[1].startswith("# inetd2systemd-generator: rewritten at every boot")
        assert f"SourcePath={conf}" in lines or not unit.service_id  # a shared unit
        kept = [line for line in lines if not line.startswith(("# inetd2systemd-generator:",
                                                                 "SourcePath="))]
        assert kept == unit.text.splitlines()
    sockets = sorted(u.name for u in expected.units if u.name.endswith(".socket"))
    assert sorted(files) == [f"sockets.target.wants/{s}" for s in sockets]
    for socket in sockets:
        assert files[f"sockets.target.wants/{socket}"] == str(normal / socket)
    # the early and late directories are left alone
    assert not (tmp_path / "early").exists() and not (tmp_path / "late").exists()


def test_the_unit_says_where_it_came_from(tmp_path, normal):
    root = make_host(tmp_path / "host")
    assert run_generator(root, str(normal)).returncode == 0
    text = (normal / "7777@.service").read_text()
    assert text.startswith(f"{MARKER} from {root}/etc/inetd.conf:4\n")


def test_writes_nowhere_else(tmp_path, normal):
    root = make_host(tmp_path / "host", xinetd=XINETD, xinetd_d={"daytime": DAYTIME})
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    out = run_generator(root, str(normal))
    assert out.returncode == 0, out.stderr
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["generator", "host"]


def test_xinetd_conf_and_its_includes_under_the_root(tmp_path, normal):
    root = make_host(tmp_path / "host", inetd=None, xinetd=XINETD,
                     xinetd_d={"daytime": DAYTIME})
    out = run_generator(root, str(normal))
    assert out.returncode == 0, out.stderr
    text = (normal / "daytime-stream.socket").read_text()
    assert f"from {root}/etc/xinetd.d/daytime:1" in text
    assert f"SourcePath={root}/etc/xinetd.d/daytime" in text
    assert (normal / "sockets.target.wants" / "daytime-stream.socket").is_symlink()


def analyze_verify(*args: str) -> subprocess.CompletedProcess:
    try:  # where units name `inetd2systemd` bare, the container helper finds it for verify
        from systemd_container import analyze_verify as verify
    except ImportError:
        return subprocess.run(["systemd-analyze", "verify", *args], capture_output=True,
                              text=True, timeout=120)
    return verify(*args)


def test_verify_is_clean(tmp_path, normal):
    root = make_host(tmp_path / "host", xinetd=XINETD, xinetd_d={"daytime": DAYTIME})
    assert run_generator(root, str(normal)).returncode == 0
    out = analyze_verify("--man=no", *sorted(str(p) for p in normal.iterdir() if p.is_file()))
    assert out.returncode == 0, out.stderr
    assert [line for line in out.stderr.splitlines()
            if not line.endswith("Special user nobody configured, this is not safe!")] == []


def test_no_configuration_no_units(tmp_path, normal):
    root = make_host(tmp_path / "host", inetd=None)
    out = run_generator(root, str(normal))
    assert out.returncode == 0 and out.stdout == "" and out.stderr == ""
    assert list(normal.iterdir()) == []


# -- bad input costs itself only ---------------------------------------------------------

BROKEN = INETD + """\
bogus\tstream\ttcp\tmaybe\troot\t/usr/bin/true
8888\tstream\ttcp\tnowait\tnobody\t/usr/bin/no-such-program\tx
"""


def test_a_broken_line_costs_its_service_only(tmp_path, normal):
    root = make_host(tmp_path / "host", inetd=BROKEN)
    out = run_generator(root, str(normal))
    assert out.returncode == 0
    assert out.stdout == ""
    assert {"echo-tcp.socket", "7777.socket", "tftp.socket"} <= set(os.listdir(normal))
    conf = f"{root}/etc/inetd.conf"
    assert f"{conf}:6:18: [bogus] bad wait field 'maybe'" in out.stderr
    assert f"{conf}:7: [8888] server program /usr/bin/no-such-program does not exist" \
        in out.stderr
    assert "2 errors" in out.stderr.splitlines()[0]


def test_an_unreadable_file_costs_that_file_only(tmp_path, normal):
    root = make_host(tmp_path / "host")
    os.mkfifo(root / "etc" / "xinetd.conf")  # opening it must not hang either
    out = run_generator(root, str(normal))
    assert out.returncode == 0
    assert f"{root}/etc/xinetd.conf" in out.stderr and "not a regular file" in out.stderr
    assert (normal / "echo-tcp.socket").exists()


def test_a_crash_in_rendering_costs_that_service_only(tmp_path, normal, monkeypatch):
    """Fault injection: the writer raising on one service (a bug) leaves the others."""
    import inetd2systemd.convert.pipeline as pipeline
    import inetd2systemd.units.writer as writer

    real = writer.render

    def render(services, options=WriterOptions()):
        if any(s.id == "7777" for s in services):
            raise RuntimeError("injected")
        return real(services, options)

    monkeypatch.setattr(writer, "render", render)
    monkeypatch.setattr(pipeline, "render", render)
    monkeypatch.setattr(gen_module, "render", render)
    root = make_host(tmp_path / "host")
    generation = generate(str(root))
    names = {u.name for u in generation.units}
    assert {"echo-tcp.socket", "echo-udp.socket", "tftp.socket"} <= names
    assert not any(n.startswith("7777") for n in names)
    error = next(f for f in generation.findings if f.service == "7777")
    assert "internal error writing its units (RuntimeError: injected" in error.message


def test_an_unexpected_exception_is_logged_and_exits_0(tmp_path, normal, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise KeyError("injected")

    monkeypatch.setattr(gen_module, "generate", broken)
    monkeypatch.setenv("SYSTEMD_LOG_TARGET", "console")
    monkeypatch.setenv("INETD2SYSTEMD_GENERATOR_ROOT", str(make_host(tmp_path / "host")))
    assert program.main([str(normal), str(normal), str(normal)]) == 0
    err = capsys.readouterr().err
    assert "internal error" in err and "KeyError: 'injected'" in err


def test_a_unit_another_generator_wrote_is_kept(tmp_path, normal):
    root = make_host(tmp_path / "host")
    (normal / "echo-tcp.socket").write_text("# another generator's\n")
    out = run_generator(root, str(normal))
    assert out.returncode == 0
    assert (normal / "echo-tcp.socket").read_text() == "# another generator's\n"
    assert "echo-tcp.socket: already there" in out.stderr
    assert not (normal / "sockets.target.wants" / "echo-tcp.socket").exists()
    assert (normal / "echo-udp.socket").exists()


@fuzz_settings(max_examples=max(20, int(os.environ.get("FUZZ_EXAMPLES", "300")) // 10))
@given(st.lists(st.sampled_from(INETD.splitlines() + BROKEN.splitlines()[-2:] + [
    "echo stream tcp nowait root", "\\", "[::1]:", "*:", "x:y:z", "7 dgram udp nowait.0 a.b c",
    "daytime stream tcp6 wait root internal", "#<off># echo stream tcp nowait root internal",
    "tcpmux/+a stream tcp nowait root /usr/bin/true", "\x00\xff", "host:", ""]),
    max_size=12))
def test_fuzz_any_file_gives_units_and_findings_never_an_exception(tmp_path_factory, lines):
    root = make_host(tmp_path_factory.mktemp("host"), inetd="\n".join(lines) + "\n")
    generation = generate(str(root))
    directory = tmp_path_factory.mktemp("out")
    written = write(generation, str(directory))
    assert set(written.units) == {u.name for u in generation.units}
    assert not written.problems


# -- coexistence -------------------------------------------------------------------------

def _link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def test_an_enabled_xinetd_keeps_its_file(tmp_path, normal):
    root = make_host(tmp_path / "host", xinetd=XINETD, xinetd_d={"daytime": DAYTIME})
    evidence = root / "etc/systemd/system/multi-user.target.wants/xinetd.service"
    _link(evidence, "/lib/systemd/system/xinetd.service")
    out = run_generator(root, str(normal))
    assert out.returncode == 0
    assert f"{root}/etc/xinetd.conf: not read: xinetd.service is enabled ({evidence})" \
        in out.stderr
    names = os.listdir(normal)
    assert "daytime-stream.socket" not in names and "echo-tcp.socket" in names


def test_an_inetd_enabled_by_sysv_links_keeps_inetd_conf(tmp_path, normal):
    root = make_host(tmp_path / "host", xinetd=XINETD, xinetd_d={"daytime": DAYTIME})
    (root / "etc/init.d").mkdir()
    (root / "etc/init.d/openbsd-inetd").write_text("#!/bin/sh\n")
    _link(root / "etc/rc2.d/S01openbsd-inetd", "../init.d/openbsd-inetd")
    out = run_generator(root, str(normal))
    assert "etc/inetd.conf: not read: openbsd-inetd.service is enabled" in out.stderr
    names = os.listdir(normal)
    assert "echo-tcp.socket" not in names and "daytime-stream.socket" in names


def test_what_systemd_would_not_start_does_not_count(tmp_path, normal):
    """A masked daemon, K links only, and rc links beside a native unit (which
    systemd-sysv-generator ignores) leave the file to the generator."""
    root = make_host(tmp_path / "host", xinetd=XINETD, xinetd_d={"daytime": DAYTIME})
    (root / "etc/init.d").mkdir()
    for name in ("xinetd", "openbsd-inetd", "inetutils-inetd"):
        (root / "etc/init.d" / name).write_text("#!/bin/sh\n")
    _link(root / "etc/rc2.d/S01xinetd", "../init.d/xinetd")
    _link(root / "etc/systemd/system/xinetd.service", "/dev/null")  # masked
    _link(root / "etc/rc3.d/K01openbsd-inetd", "../init.d/openbsd-inetd")
    _link(root / "etc/rc5.d/S01inetutils-inetd", "../init.d/inetutils-inetd")
    (root / "lib/systemd/system").mkdir(parents=True)
    (root / "lib/systemd/system/inetutils-inetd.service").write_text("[Service]\n")
    out = run_generator(root, str(normal))
    assert ": not read: " not in out.stderr
    assert {"echo-tcp.socket", "daytime-stream.socket"} <= set(os.listdir(normal))


def test_an_alias_made_by_enable_counts(tmp_path, normal):
    root = make_host(tmp_path / "host")
    _link(root / "etc/systemd/system/inetd.service", "/lib/systemd/system/openbsd-inetd.service")
    out = run_generator(root, str(normal))
    assert "not read: inetd.service is enabled" in out.stderr
    assert os.listdir(normal) == []


def test_a_native_unit_of_the_same_name_wins(tmp_path, normal):
    root = make_host(tmp_path / "host")
    native = root / "etc/systemd/system/echo-tcp.socket"
    native.parent.mkdir(parents=True)
    native.write_text("[Socket]\nListenStream=7\n")
    out = run_generator(root, str(normal))
    assert f"echo-tcp.socket: {native} takes precedence" in out.stderr
    assert not (normal / "echo-tcp.socket").exists()
    assert not (normal / "sockets.target.wants" / "echo-tcp.socket").exists()
    assert (normal / "echo-tcp.service").exists()  # systemd's precedence is per name
    assert (normal / "sockets.target.wants" / "echo-udp.socket").exists()


# -- off until switched on ---------------------------------------------------------------

def _off_hosts(tmp_path: Path):
    """Hosts a package install leaves: no link (systemd runs the /usr/lib copy), or a
    mask, by a link to /dev/null or an empty file."""
    yield "no link", make_host(tmp_path / "absent", on=False)
    masked = make_host(tmp_path / "masked", on=False)
    (masked / LINK).parent.mkdir(parents=True)
    (masked / LINK).symlink_to("/dev/null")
    yield "a link to /dev/null", masked
    empty = make_host(tmp_path / "empty", on=False)
    (empty / LINK).parent.mkdir(parents=True)
    (empty / LINK).write_text("")
    yield "an empty file", empty


def test_off_unless_switched_on_writes_nothing(tmp_path, normal):
    """Installing the package puts the generator where systemd runs it: on a host whose
    administrator disabled inetd (or left an inetd.conf behind) that must open no port."""
    for why, root in _off_hosts(tmp_path):
        out = run_generator(root, str(normal), str(tmp_path / "early"), str(tmp_path / "late"))
        assert out.returncode == 0, (why, out.stderr)
        assert out.stdout == "" and out.stderr == "", why  # info level is not shown
        assert list(normal.iterdir()) == [], why
        out = run_generator(root, str(normal), env={"SYSTEMD_LOG_LEVEL": "info"})
        assert out.stderr == f"inetd2systemd-generator: {OFF}\n", why
        assert list(normal.iterdir()) == [], why
    assert not (tmp_path / "early").exists() and not (tmp_path / "late").exists()


def test_dryrun_says_whether_mode_is_on(tmp_path):
    off = run_generator(make_host(tmp_path / "off", on=False), "--dryrun")
    on = run_generator(make_host(tmp_path / "on"), "--dryrun")
    assert off.returncode == on.returncode == 0
    assert f"{OFF}; this dry run shows what it would generate" in off.stderr
    assert "generator mode is on" in on.stderr and "off" not in on.stderr
    assert "# ==> echo-tcp.socket <==" in off.stdout
    assert off.stdout.replace(f"{tmp_path}/off/", f"{tmp_path}/on/") == on.stdout


# -- dry run, log ------------------------------------------------------------------------

def test_dryrun_prints_the_units_and_writes_nothing(tmp_path):
    root = make_host(tmp_path / "host", inetd=BROKEN)
    before = sorted(tmp_path.rglob("*"))
    out = run_generator(root, "--dryrun")
    assert out.returncode == 0
    assert "# ==> echo-tcp.socket <==\n# Generated by inetd2systemd from " in out.stdout
    assert "[bogus] bad wait field" in out.stderr
    assert sorted(tmp_path.rglob("*")) == before


def test_kmsg_records(tmp_path):
    """Each message one record `<LEVEL>inetd2systemd-generator[PID]: text`, cut to what
    the kernel takes."""
    path = tmp_path / "kmsg"
    path.write_text("")
    log = Log("inetd2systemd-generator", level=4, path=str(path))
    log(3, "a.conf:2: bad\nline")
    log(5, "not shown at level 4")
    log(4, "x" * 5000)
    log.close()
    data = path.read_bytes()
    assert data.startswith(f"<3>inetd2systemd-generator[{os.getpid()}]: a.conf:2: bad line"
                           .encode())
    assert b"not shown" not in data
    assert len(data) < 2 * 1024


def test_log_level_from_the_environment():
    assert max_level({}) == 5
    assert max_level({"SYSTEMD_LOG_LEVEL": "debug"}) == 7
    assert max_level({"SYSTEMD_LOG_LEVEL": "3"}) == 3
    assert max_level({"SYSTEMD_LOG_LEVEL": "nonsense"}) == 5


def test_notes_only_at_info_level(tmp_path, normal):
    root = make_host(tmp_path / "host", inetd="#<off># " + INETD.splitlines()[1] + "\n")
    quiet = run_generator(root, "--dryrun")
    loud = run_generator(root, "--dryrun", env={"SYSTEMD_LOG_LEVEL": "info"})
    note = "inetd.conf:1: echo: disabled entry (#<off>#) left out"
    assert note not in quiet.stderr and note in loud.stderr


# -- the sub-command -------------------------------------------------------------------

def test_enable_and_disable_manage_only_their_link(tmp_path, normal):
    root = make_host(tmp_path / "host", on=False)
    link = root / LINK
    status = run_cli("generator", "status", "--root", str(root))
    assert "generator mode: off ('inetd2systemd generator enable' switches it on)" \
        in status.stdout
    out = run_cli("generator", "enable", "--root", str(root))
    assert out.returncode == 0, out.stderr
    assert os.readlink(link) == GENERATOR
    assert run_generator(root, str(normal)).returncode == 0
    assert (normal / "sockets.target.wants" / "echo-tcp.socket").exists()  # on
    assert run_cli("generator", "enable", "--root", str(root)).returncode == 0  # again
    status = run_cli("generator", "status", "--root", str(root))
    assert f"generator mode: on ({link} -> {GENERATOR})" in status.stdout
    out = run_cli("generator", "disable", "--root", str(root))
    assert out.returncode == 0, out.stderr
    assert not os.path.lexists(link)
    assert "generator mode: off" in run_cli("generator", "status", "--root", str(root)).stdout
    # a file that is not its link is never touched
    link.write_text("#!/bin/sh\n")
    for action in ("enable", "disable"):
        out = run_cli("generator", action, "--root", str(root))
        assert out.returncode == 3 and "not a link inetd2systemd made" in out.stderr
        assert link.read_text() == "#!/bin/sh\n"
    data = json.loads(run_cli("generator", "status", "--root", str(root), "--json").stdout)
    assert data["generator"]["enabled"] is None


def test_a_packaged_generator_runs_only_once_linked_from_etc(tmp_path):
    """The package's copy in /usr/lib: enable links /etc's name to it (which systemd then
    runs in its place), disable removes that link and makes no mask; a mask an earlier
    version made is replaced by enable and left by disable (off either way)."""
    root = make_host(tmp_path / "host", on=False)
    shipped = "/usr/lib/systemd/system-generators/inetd2systemd-generator"
    (root / "usr").unlink()  # this host's own /usr, with the package's file
    (root / shipped.lstrip("/")).parent.mkdir(parents=True)
    (root / shipped.lstrip("/")).write_text("#!/bin/sh\n")
    link = root / LINK
    assert run_cli("generator", "status", "--root", str(root), "--json").returncode in (0, 1)
    data = json.loads(run_cli("generator", "status", "--root", str(root), "--json").stdout)
    assert data["generator"]["enabled"] is False and data["generator"]["packaged"] == shipped
    out = run_cli("generator", "enable", "--root", str(root))
    assert out.returncode == 0, out.stderr
    assert os.readlink(link) == shipped
    assert "generator mode: on" in run_cli("generator", "status", "--root", str(root)).stdout
    out = run_cli("generator", "disable", "--root", str(root))
    assert out.returncode == 0, out.stderr
    assert not os.path.lexists(link)
    link.symlink_to("/dev/null")
    assert "off (masked" in run_cli("generator", "status", "--root", str(root)).stdout
    assert run_cli("generator", "disable", "--root", str(root)).returncode == 0
    assert os.readlink(link) == "/dev/null"
    assert run_cli("generator", "enable", "--root", str(root)).returncode == 0
    assert os.readlink(link) == shipped


def test_status_lists_services_units_and_findings(tmp_path):
    root = make_host(tmp_path / "host", inetd=BROKEN, xinetd=XINETD,
                     xinetd_d={"daytime": DAYTIME})
    _link(root / "etc/systemd/system/multi-user.target.wants/xinetd.service", "/x")
    out = run_cli("generator", "status", "--root", str(root))
    assert out.returncode == 1  # errors among the findings, as convert says
    text = out.stdout
    assert "generator mode: on (" in text
    assert f"{root}/etc/inetd.conf: read" in text
    assert f"{root}/etc/xinetd.conf: legacy: xinetd.service is enabled" in text
    assert re.search(rf"\n  7777 +{root}/etc/inetd.conf:4  7777.socket \(enabled\), 7777@.service",
                     text)
    assert f"{root}/etc/inetd.conf:6:18: error [bogus]: bad wait field" in text
    data = json.loads(run_cli("generator", "status", "--root", str(root), "--json").stdout)
    assert data["generator"]["enabled"] is True
    assert {f["state"] for f in data["files"]} == {"read", "legacy"}
    assert "7777.socket" in data["wanted"]
    assert any(f["service"] == "bogus" for f in data["findings"])


# -- what can be checked at boot ---------------------------------------------------------

def test_accounts_are_left_to_systemd(tmp_path, normal):
    """At boot NSS (LDAP, sssd) cannot answer and a first boot has no /etc/passwd: a
    user the files do not list is systemd's to resolve when the service starts."""
    root = make_host(tmp_path / "host",
                     inetd="7777\tstream\ttcp\tnowait\tldapuser\t/usr/bin/echo\techo hi\n")
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    out = run_generator(root, str(normal))
    assert out.returncode == 0 and "0 errors, 0 warnings" in out.stderr
    assert "User=ldapuser" in (normal / "7777@.service").read_text()


def test_a_program_on_a_file_system_not_mounted_yet_is_kept(tmp_path, normal):
    root = make_host(tmp_path / "host", inetd=(
        "7777\tstream\ttcp\tnowait\tnobody\t/opt/app/bin/server\tserver\n"
        "7778\tstream\ttcp\tnowait\tnobody\t/srv/missing\tmissing\n"))
    (root / "etc/fstab").write_text("# <fs> <mount point> <type> <options>\n"
                                    "UUID=1 / ext4 defaults 0 1\n"
                                    "UUID=2 /opt/app ext4 defaults 0 2\n"
                                    "UUID=3 none swap sw 0 0\n")
    out = run_generator(root, str(normal), env={"SYSTEMD_LOG_LEVEL": "info"})
    assert out.returncode == 0
    assert (normal / "7777.socket").exists()
    assert "server program /opt/app/bin/server not checked: /opt/app is not mounted yet" \
        in out.stderr
    assert not (normal / "7778.socket").exists()  # on /, which is there: really missing
    assert "[7778] server program /srv/missing does not exist" in out.stderr


def test_kmsg_takes_ten_records_so_the_tenth_counts_the_rest(tmp_path):
    path = tmp_path / "kmsg"
    path.write_text("")
    log = Log("inetd2systemd-generator", level=6, path=str(path))
    log.write_all([(3, f"error {i}") for i in range(12)] + [(4, "a warning")],
                  more=": see status")
    log.close()
    records = path.read_bytes().split(b"<")[1:]
    assert len(records) == 10
    assert records[-1].startswith(b"3>") and records[-1].endswith(
        b": 4 more messages not logged here: see status")


def modules_loaded(root: Path, normal: Path) -> set[str]:
    """The modules one generator run (in a fresh interpreter) has loaded when it ends."""
    code = ("import sys; from inetd2systemd.generator.program import main; "
            "main([sys.argv[1]]); print(' '.join(sorted(sys.modules)))")
    env = dict(os.environ, INETD2SYSTEMD_GENERATOR_ROOT=str(root),
               SYSTEMD_LOG_TARGET="console")
    out = subprocess.run([sys.executable, "-c", code, str(normal)], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_it_imports_only_what_generating_needs(tmp_path, normal):
    """The generator runs at every boot and daemon-reload: each of these once crept in
    (or would), at several milliseconds a run. Checked on the modules loaded, not on
    timings."""
    root = make_host(tmp_path / "host")
    loaded = modules_loaded(root, normal)
    heavy = {"argparse", "subprocess", "hashlib", "socket", "typing", "json", "shutil",
             "tempfile", "ctypes", "inetd2systemd.config.xinetd", "inetd2systemd.migrate",
             "inetd2systemd.cli", "inetd2systemd.generator.cli", "inetd2systemd.units.install"}
    assert loaded & heavy == set()
    assert (normal / "echo-tcp.socket").exists()


def test_off_it_reads_nothing_and_imports_nothing_more(tmp_path, normal):
    """Off is what every boot of a host with the package installed but generator mode
    not switched on pays: the switch alone, not the parsers."""
    root = make_host(tmp_path / "host", on=False)
    ours = {m for m in modules_loaded(root, normal) if m.startswith("inetd2systemd")}
    assert ours == {"inetd2systemd", "inetd2systemd.generator",
                    "inetd2systemd.generator.program", "inetd2systemd.generator.kmsg"}
    assert list(normal.iterdir()) == []


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="systemd runs here: "
                    "test_generator_systemd.py covers reload under it")
def test_reload_needs_a_running_systemd():
    out = run_cli("generator", "reload")
    assert out.returncode == 3 and "systemd is not running here" in out.stderr


def test_hosts_allow_and_deny_are_the_roots_not_this_machines(tmp_path):
    """Under INETD2SYSTEMD_GENERATOR_ROOT (an image, a test tree) the tcp_wrappers rules
    the report weighs are that tree's (they were this machine's /etc)."""
    root = make_host(tmp_path / "host", inetd="finger stream tcp nowait nobody /usr/sbin/tcpd "
                                              "/usr/bin/cat\n")

    def codes() -> list[str]:
        return [f.code.value for f in generate(str(root)).findings
                if f.code.value.startswith("tcp-wrappers")]

    assert codes() == ["tcp-wrappers-open"]  # neither file in the tree
    (root / "etc" / "hosts.deny").write_text("cat: ALL\n")
    assert codes() == ["tcp-wrappers"]
