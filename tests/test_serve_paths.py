"""Paths `serve` opens as root besides its configuration: xinetd banners (read, and sent
to every client) and unix socket paths (a stale socket is removed before bind). Neither
may be turned by a user who owns a directory on the way (needs root: chown)."""

from __future__ import annotations

import os
import pwd
import socket
from pathlib import Path

import pytest

from inetd2systemd.config.inetd import parse_inetd
from inetd2systemd.config.xinetd import parse_xinetd
from inetd2systemd.errors import ConfigError
from inetd2systemd.superserver.arbiter import _read_banners
from inetd2systemd.superserver.sockets import open_listener

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="root: directories owned by nobody")
NOBODY = pwd.getpwnam("nobody").pw_uid


def banner_service(path: Path):
    text = ("service echo\n{\n type = INTERNAL\n socket_type = stream\n wait = no\n"
            f" user = root\n banner = {path}\n}}\n")
    return parse_xinetd(text, "xinetd.conf").services[0]


def test_a_banner_linked_to_a_root_file_from_a_users_directory_is_refused(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:secret\n")
    secret.chmod(0o600)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, 0)
    (theirs / "banner").symlink_to(secret)
    with pytest.raises(ConfigError) as refused:
        _read_banners(banner_service(theirs / "banner"))
    assert "refusing to follow the symbolic link" in str(refused.value)
    # The same link in root's own directory is root's choice: followed.
    (tmp_path / "issue").symlink_to(secret)
    assert _read_banners(banner_service(tmp_path / "issue"))[0] == b"root:secret\n"
    (theirs / "plain").write_text("hello\n")  # their own file: read as it is
    assert _read_banners(banner_service(theirs / "plain"))[0] == b"hello\n"


def unix_service(path: Path):
    return parse_inetd(f"{path} stream unix nowait root /bin/cat cat\n", "inetd.conf").services[0]


def test_a_unix_socket_in_a_directory_another_user_can_change_is_not_created(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, 0)
    service = unix_service(theirs / "s.sock")
    with pytest.raises(ConfigError) as refused:
        open_listener(service, service.listens[0])
    assert f"{theirs / 's.sock'}: not created: {theirs} belongs to nobody" \
        in str(refused.value)
    assert not (theirs / "s.sock").exists()


def test_a_stale_unix_socket_in_roots_directory_is_replaced_a_live_one_and_a_file_not(
        tmp_path):
    path = tmp_path / "s.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()
    service = unix_service(path)
    sock = open_listener(service, service.listens[0])
    try:
        assert Path(path).is_socket()
        # Another superserver answers there: its socket is not stolen.
        with pytest.raises(ConfigError) as refused:
            open_listener(service, service.listens[0])
        assert f"{path} is in use by another running program" in str(refused.value)
        assert refused.value.line == 1
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))  # still answered by the first one
    finally:
        sock.close()
    path.unlink()
    path.write_text("not a socket\n")
    with pytest.raises(ConfigError, match=f"{path} exists and is not a socket"):
        open_listener(service, service.listens[0])
    assert path.read_text() == "not a socket\n"
