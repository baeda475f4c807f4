"""notify/Notifier: the wire format, fd passing, the watchdog helper, and the no-op case.

The receiving end here is a plain AF_UNIX datagram socket read with recvmsg, which is
what systemd's notify socket is; what a real systemd makes of the messages (READY=1
gating `active`, StatusText, the watchdog restart, the fd store) is in
test_examples_activation.py, under systemd in the container.
"""

from __future__ import annotations

import array
import errno
import os
import socket
import uuid

import pytest

from inetd2systemd import Notifier, notify
from inetd2systemd.runtime import notify as notify_module


def receive(sock: socket.socket) -> tuple[list[str], list[int]]:
    fds = array.array("i")
    data, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(16 * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return data.decode("utf-8").split("\n"), list(fds)


@pytest.fixture
def manager(tmp_path, monkeypatch):
    """A notify socket at a path, announced in NOTIFY_SOCKET."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    for variable in ("WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(variable, raising=False)
    yield sock
    sock.close()


def test_without_notify_socket_everything_is_a_quiet_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert notify("READY=1") is False
    n = Notifier()
    assert not n.enabled
    assert n.ready("up") is False
    assert n.status("x") is False
    assert n.watchdog() is False
    assert n.store_fds([0]) is False
    assert n.barrier() is False
    assert n.watchdog_interval() is None


def test_notify_sends_one_datagram_of_lines(manager):
    assert notify("READY=1", "STATUS=serving") is True
    assert receive(manager) == (["READY=1", "STATUS=serving"], [])


def test_notifier_messages(manager):
    n = Notifier()
    n.ready("up — ünïcode")
    assert receive(manager)[0] == ["READY=1", "STATUS=up — ünïcode"]  # UTF-8, as systemd reads it
    n.status("two\nlines")
    assert receive(manager)[0] == ["STATUS=two lines"]  # a newline would start a bogus variable
    n.stopping()
    assert receive(manager)[0] == ["STOPPING=1"]
    n.watchdog()
    assert receive(manager)[0] == ["WATCHDOG=1"]
    n.main_pid(1234)
    assert receive(manager)[0] == ["MAINPID=1234"]
    n.extend_timeout(2.5)
    assert receive(manager)[0] == ["EXTEND_TIMEOUT_USEC=2500000"]
    n.notify("X_CUSTOM=1")  # sdnotify's method, for drop-in use
    assert receive(manager)[0] == ["X_CUSTOM=1"]


def test_reloading_carries_monotonic_usec(manager):
    before = __import__("time").clock_gettime_ns(__import__("time").CLOCK_MONOTONIC) // 1000
    Notifier().reloading()
    lines = receive(manager)[0]
    assert lines[0] == "RELOADING=1"
    name, value = lines[1].split("=")
    assert name == "MONOTONIC_USEC" and int(value) >= before


def test_abstract_namespace_address(monkeypatch):
    name = f"i2s-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("READY=1")
        assert receive(sock)[0] == ["READY=1"]


def test_store_fds_passes_the_real_socket_with_its_name(manager):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        Notifier().store_fds([listener], name="web", poll=False)
        lines, fds = receive(manager)
        assert lines == ["FDSTORE=1", "FDNAME=web", "FDPOLL=0"]
        assert len(fds) == 1
        with socket.socket(fileno=fds[0]) as received:
            assert received.getsockname() == listener.getsockname()  # the same socket


@pytest.mark.parametrize("name", ["", "a:b", "x" * 256, "tab\there", "ünï"])
def test_bad_fd_names_are_refused_before_sending(manager, name):
    with pytest.raises(ValueError, match="FDNAME"):
        Notifier().store_fds([0], name=name)


def test_barrier_returns_once_the_manager_closed_its_copy(manager):
    import threading

    seen = []

    def serve_barrier():
        lines, fds = receive(manager)
        seen.append((lines, len(fds)))
        for fd in fds:
            os.close(fd)  # what systemd does with the barrier fd

    thread = threading.Thread(target=serve_barrier)
    thread.start()
    assert Notifier().barrier(timeout=10) is True
    thread.join()
    assert seen == [(["BARRIER=1"], 1)]


def test_barrier_times_out_when_nobody_answers(manager):
    with pytest.raises(TimeoutError):
        Notifier().barrier(timeout=0.05)  # the received fd stays open in the queue


def test_a_missing_manager_is_an_error_not_silence(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    with pytest.raises(OSError):
        notify("READY=1")


def test_bad_address_is_refused(monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", "relative/path")
    with pytest.raises(OSError, match="NOTIFY_SOCKET"):
        notify("READY=1")


def _outcome(send) -> object:
    try:
        return send()
    except OSError as exc:
        return exc.errno


@pytest.mark.parametrize("value", [
    None, "", "/", "@", "relative", " /abs", "@no-such-abstract-name-{uuid}", "/no/such/{uuid}",
    "{manager}", "@{abstract}", "/" + "a" * 106, "/" + "a" * 107, "@" + "b" * 105,
    "@" + "b" * 106, "@" + "b" * 107,
])
def test_notify_socket_is_read_and_used_as_libsystemd_does(value, manager, monkeypatch):
    """The same NOTIFY_SOCKET values through libsystemd's sd_notify (systemd-python) and
    ours: the same outcome (sent, nothing to do, or the same errno)."""
    from systemd import daemon

    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"i2s-test-{uuid.uuid4().hex}"
    abstract.bind(b"\0" + name.encode())
    with abstract:
        if value is None:
            monkeypatch.delenv("NOTIFY_SOCKET")
        else:
            monkeypatch.setenv("NOTIFY_SOCKET", value.format(
                uuid=uuid.uuid4().hex, manager=manager.getsockname(), abstract=name))
        theirs = _outcome(lambda: daemon.notify("READY=1"))
        ours = _outcome(lambda: notify("READY=1"))
    assert ours == theirs


@pytest.mark.parametrize("value, expected", [
    ("vsock:2:5", (socket.AF_VSOCK, 0, (2, 5))),
    ("vsock:host:5", (socket.AF_VSOCK, 0, (2, 5))),
    ("vsock:local:1023", (socket.AF_VSOCK, 0, (1, 1023))),
    ("vsock:hypervisor:0x10", (socket.AF_VSOCK, 0, (0, 16))),
    ("vsock-stream:3: 7", (socket.AF_VSOCK, socket.SOCK_STREAM, (3, 7))),
    ("vsock-seqpacket:42:9", (socket.AF_VSOCK, socket.SOCK_SEQPACKET, (42, 9))),
    ("vsock-dgram:42:9", (socket.AF_VSOCK, socket.SOCK_DGRAM, (42, 9))),
    ("vsock::5", None),  # no CID: a notification needs a specific one
    ("vsock:any:5", None), ("vsock:-1:5", None),
    ("vsock:2", None), ("vsock:2:", None), ("vsock:2:4294967295", None), ("vsock:x:5", None),
    ("vsock:2:4294967296", None), ("vsocks:2:5", None),
])
def test_vsock_addresses_are_parsed_as_newer_libsystemd_parses_them(value, expected):
    """systemd 254 and later notify a VM's host over AF_VSOCK. Debian 12's libsystemd (252)
    predates that, so the expectations here are the newer sd-daemon's rules, not a run of
    it; and no vsock peer can listen in this VM (no vsock loopback), so sending is tested
    only up to the kernel's refusal below."""
    if expected is None:
        with pytest.raises(OSError) as caught:
            notify_module.destination(value)
        assert caught.value.errno == errno.EINVAL
    else:
        assert notify_module.destination(value) == expected


def test_a_vsock_manager_that_is_not_there_is_an_error_not_silence(monkeypatch):
    if not hasattr(socket, "AF_VSOCK"):
        pytest.skip("platform: no AF_VSOCK in this Python")
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock-stream:2:65000")
    with pytest.raises(OSError):
        notify("READY=1")


@pytest.mark.parametrize("env, expected", [
    ({"WATCHDOG_USEC": "3000000"}, 3.0),
    ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": "$PID"}, 0.5),
    ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"}, None),  # another process's duty
    ({}, None),
])
def test_watchdog_interval(monkeypatch, env, expected):
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, str(os.getpid()) if value == "$PID" else value)
    assert Notifier().watchdog_interval() == expected


@pytest.mark.parametrize("value", ["0", "abc", "-5"])
def test_watchdog_interval_rejects_garbage(monkeypatch, value):
    monkeypatch.setenv("WATCHDOG_USEC", value)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    with pytest.raises(ValueError, match="WATCHDOG_USEC"):
        Notifier().watchdog_interval()


def test_unset_environment_keeps_children_out(manager, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    n = Notifier(unset_environment=True)
    assert "NOTIFY_SOCKET" not in os.environ and "WATCHDOG_USEC" not in os.environ
    assert n.ready() and receive(manager)[0] == ["READY=1"]  # the notifier itself still works
    assert n.watchdog_interval() == 1.0
    assert notify("READY=1") is False  # the environment-reading function now is a no-op


def test_notify_follows_a_changed_notify_socket(manager, tmp_path, monkeypatch):
    other_path = str(tmp_path / "other")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as other:
        other.bind(other_path)
        other.settimeout(5)
        notify("READY=1")
        monkeypatch.setenv("NOTIFY_SOCKET", other_path)
        notify("STATUS=moved")
        assert receive(other)[0] == ["STATUS=moved"]
    assert receive(manager)[0] == ["READY=1"]
    assert notify_module._default.address == other_path


def test_notify_can_unset_the_socket_for_children(manager):
    assert notify("READY=1", unset_environment=True) is True
    assert receive(manager)[0] == ["READY=1"]
    assert "NOTIFY_SOCKET" not in os.environ
    assert notify("STATUS=later") is False
