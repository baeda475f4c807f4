"""Configuration files a user other than root could change are not loaded (sshd's
StrictModes): the check itself on real files, owners and modes, and `serve` refusing
such a file at start and at a reload.

Needs root: the files are given to `nobody` with chown, as an attacker's would be.
"""

from __future__ import annotations

import os
import pwd
import signal
import time
from pathlib import Path

import pytest

from inetd2systemd.config.trust import UntrustedPath, check_trusted, untrusted_reason

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="root: files owned by nobody")
NOBODY = pwd.getpwnam("nobody").pw_uid
CONF = "127.0.0.1:{port} stream tcp4 nowait root /bin/cat cat\n"


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    """A root-owned directory, mode 0755, below pytest's root-only base (under sticky
    /tmp): trusted as it stands."""
    etc = tmp_path / "etc"
    etc.mkdir()
    etc.chmod(0o755)
    (etc / "inetd.conf").write_text(CONF.format(port=7))
    (etc / "inetd.conf").chmod(0o644)
    return etc


def test_a_root_owned_file_in_root_owned_directories_is_trusted(etc):
    assert untrusted_reason(etc / "inetd.conf") is None
    check_trusted(etc / "inetd.conf")
    assert untrusted_reason("/etc/passwd") is None


@pytest.mark.parametrize("mode, words", [(0o666, "writable by everyone (mode 0666)"),
                                         (0o664, "writable by group root (gid 0) (mode 0664)")])
def test_a_file_writable_by_others_is_not(etc, mode, words):
    conf = etc / "inetd.conf"
    conf.chmod(mode)
    assert untrusted_reason(conf) == f"{conf} is {words}"
    with pytest.raises(UntrustedPath) as refused:
        check_trusted(conf)
    assert refused.value.file == str(conf) and "not loaded" in str(refused.value)


def test_a_file_owned_by_another_user_is_not(etc):
    conf = etc / "inetd.conf"
    os.chown(conf, NOBODY, 0)
    assert untrusted_reason(conf) == f"{conf} belongs to nobody (uid {NOBODY})"


@pytest.mark.parametrize("change", ["mode 0777", "mode 0775", "owner nobody"])
def test_a_directory_another_user_can_write_to_is_not(etc, change):
    if change == "owner nobody":
        os.chown(etc, NOBODY, 0)
    else:
        etc.chmod(int(change.split()[1], 8))
    reason = untrusted_reason(etc / "inetd.conf")
    assert reason is not None and reason.startswith(f"the directory {etc} ")


def test_a_sticky_shared_directory_is_fine_above_a_root_entry_but_not_a_foreign_one(etc):
    etc.chmod(0o1777)  # as /tmp: others may add entries, not replace ours
    assert untrusted_reason(etc / "inetd.conf") is None
    os.chown(etc / "inetd.conf", NOBODY, 0)
    assert "sits in" in untrusted_reason(etc / "inetd.conf")


def test_links_are_followed_and_every_directory_on_the_way_is_checked(etc, tmp_path):
    real = etc / "inetd.conf"
    (etc / "alias.conf").symlink_to("inetd.conf")
    (etc / "up.conf").symlink_to(f"../{etc.name}/inetd.conf")
    assert untrusted_reason(etc / "alias.conf") is None
    assert untrusted_reason(etc / "up.conf") is None
    # A link in a directory another user owns: they can point it anywhere, even if
    # it points at a trusted file right now.
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, NOBODY, 0)
    (home / "inetd.conf").symlink_to(real)
    assert untrusted_reason(home / "inetd.conf") == \
        f"the directory {home} belongs to nobody (uid {NOBODY})"
    # A trusted link to a file in an untrusted place.
    (home / "target.conf").write_text("x\n")
    (etc / "out.conf").symlink_to(home / "target.conf")
    assert untrusted_reason(etc / "out.conf").startswith(f"the directory {home} ")


def test_a_link_loop_and_a_missing_file_are_left_to_the_reader(etc):
    (etc / "loop").symlink_to("loop")
    assert "symbolic links" in untrusted_reason(etc / "loop")
    assert untrusted_reason(etc / "absent.conf") is None


def test_our_own_files_are_trusted_when_we_are_not_root(etc):
    conf = etc / "inetd.conf"
    os.chown(etc, NOBODY, 0)
    os.chown(conf, NOBODY, 0)
    owners = frozenset({0, NOBODY})  # what a daemon running as nobody trusts
    assert untrusted_reason(conf, owners=owners) is None
    assert untrusted_reason(conf) is not None


# -- serve -----------------------------------------------------------------------------------
def test_serve_refuses_a_configuration_another_user_can_change(etc, cli):
    conf = etc / "inetd.conf"
    conf.chmod(0o666)
    result = cli("serve", "-c", str(conf), "--foreground", "--pidfile", str(etc / "pid"))
    assert result.returncode == 2
    assert f"{conf}: not loaded: {conf} is writable by everyone" in result.stderr
    assert not (etc / "pid").exists()


def test_serve_refuses_an_included_file_another_user_can_change(etc, cli, port):
    included = etc / "xinetd.d"
    included.mkdir()
    (included / "cat").write_text(
        f"service cat\n{{\n type = UNLISTED\n port = {port}\n socket_type = stream\n"
        " wait = no\n user = root\n bind = 127.0.0.1\n server = /bin/cat\n}\n")
    (etc / "xinetd.conf").write_text(f"includedir {included}\n")
    os.chown(included / "cat", NOBODY, 0)
    result = cli("serve", "-c", str(etc / "xinetd.conf"), "--foreground")
    assert result.returncode == 2
    assert f"{included / 'cat'}: not loaded: {included / 'cat'} belongs to nobody" \
        in result.stderr


def test_a_reload_of_a_file_made_writable_keeps_the_running_configuration(etc, port):
    import subprocess
    import sys

    from superserver_support import tcp_exchange

    conf = etc / "inetd.conf"
    conf.write_text(CONF.format(port=port))
    proc = subprocess.Popen([sys.executable, "-m", "inetd2systemd", "serve", "-c", str(conf),
                             "--foreground"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while tcp_exchange(port, b"up\n") != b"up\n" and time.monotonic() < deadline:
            time.sleep(0.05)
        conf.write_text(CONF.format(port=port) + "127.0.0.1:1 stream tcp4 nowait root /bin/sh sh\n")
        conf.chmod(0o666)
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert tcp_exchange(port, b"still\n") == b"still\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert "reload failed, keeping the running configuration" in err
    assert "writable by everyone" in err
