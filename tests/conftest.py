"""Shared fixtures, and the markers they imply.

A test that boots a container (through the `nspawn` fixture, which `systemd` and every
other booting fixture depend on) is marked `container`; a test that runs a reference
program (through that program's fixture: `xinetd`, `openbsd_inetd`, `rsyslogd`, ...) is
marked `peers`. So `pytest -m "not container and not peers"` runs without root or peers,
whoever wrote the test.
"""

from __future__ import annotations

import os

import pytest

from support import PEERS, free_port, run_cli
from systemd_container import SystemdContainer, unavailable_reason

CONTAINER_FIXTURE = "nspawn"


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these markers
def pytest_collection_modifyitems(items):
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if CONTAINER_FIXTURE in used:
            item.add_marker(pytest.mark.container)
        if used & PEERS.keys():
            item.add_marker(pytest.mark.peers)


@pytest.fixture(scope="session")
def nspawn():
    """A container can be booted here (root, systemd-nspawn); skips the test otherwise."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"container: {reason}")
    return SystemdContainer


@pytest.fixture(scope="module")
def systemd(nspawn):
    """A booted systemd 252 in a container, shared by one test module."""
    container = nspawn()
    try:
        container.start()
    except RuntimeError as first:
        # A boot that fails is infrastructure, not the code under test: one more try,
        # and if that fails too both logs are in the error.
        try:
            container = nspawn().start()
        except RuntimeError as second:
            raise RuntimeError(f"container did not boot twice:\n{first}\n---\n{second}") from None
    try:
        yield container
    finally:
        container.stop()


def _peer_fixture(name: str, path: str):
    def peer() -> str:
        if not os.access(path, os.X_OK):
            pytest.skip(f"peers: {path} is not installed (scripts/setup.sh installs it)")
        return path
    peer.__doc__ = f"The path of {path}, a reference program; skips the test without it."
    return pytest.fixture(scope="session", name=name)(peer)


for _name, _path in PEERS.items():
    globals()[_name] = _peer_fixture(_name, _path)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def port():
    return free_port()
