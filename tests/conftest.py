"""Shared fixtures: a real systemd per test module, the command line, free ports."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from systemd_container import ROOT, SystemdContainer, unavailable_reason  # noqa: E402

EXAMPLES = ROOT / "examples"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def systemd():
    """A booted systemd 252 in a container, shared by one test module."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"container: {reason}")
    container = SystemdContainer()
    try:
        container.start()
    except RuntimeError as first:
        # A boot that fails is infrastructure, not the code under test: one more try,
        # and if that fails too both logs are in the error.
        try:
            container = SystemdContainer().start()
        except RuntimeError as second:
            raise RuntimeError(f"container did not boot twice:\n{first}\n---\n{second}") from None
    try:
        yield container
    finally:
        container.stop()


def run_cli(*args: str, check: bool = False, input: str | None = None, env: dict | None = None,
            cwd: str | Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `inetd2systemd ARGS` as a user would: a fresh interpreter, the console entry."""
    return subprocess.run([sys.executable, "-m", "inetd2systemd", *args], capture_output=True,
                          text=True, check=check, input=input, env=env, cwd=cwd, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def port():
    return free_port()
