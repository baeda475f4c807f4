"""listen_fds() and friends against the sd_listen_fds(3) protocol, edge case by edge case.

Each case runs in a fresh process started the way a service manager starts one: the
launcher puts the sockets on fds 3, 4, ..., sets LISTEN_PID to the pid the program will
have, and execs it (the real managers, systemd-socket-activate and systemd, are used in
test_examples_activation.py; here every odd environment must be reachable).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings, strategies as st

LAUNCHER = r"""
import json, os, sys
spec = json.loads(sys.argv[1])
for i, fd in enumerate(spec["fds"]):
    os.dup2(fd, 3 + i, inheritable=True)
    if fd >= 3 + len(spec["fds"]):
        os.close(fd)
env = dict(os.environ)
for key, value in spec["env"].items():
    env[key] = str(os.getpid()) if value == "$PID" else value
os.execve(sys.executable, [sys.executable, "-c", spec["code"]], env)
"""

# The program side: report what listen_fds saw as JSON on stdout.
REPORT = """
import json, os, socket, sys
from inetd2systemd import listen_fds, listen_fds_with_names, ActivationError
def describe(s):
    return {"fd": s.fileno(), "family": s.family.name, "type": s.type.name,
            "inheritable": os.get_inheritable(s.fileno())}
"""


def start(code: str, *, fds: list[int] = (), env: dict[str, str] | None = None,
          stdin=subprocess.DEVNULL) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "NOTIFY_"))}
    spec = {"fds": list(fds), "env": env or {}, "code": REPORT + textwrap.dedent(code)}
    return subprocess.Popen([sys.executable, "-c", LAUNCHER, json.dumps(spec)], env=clean,
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, pass_fds=tuple(fds))


def launch(code: str, **kwargs) -> subprocess.CompletedProcess:
    proc = start(code, **kwargs)
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def report(result: subprocess.CompletedProcess):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def tcp_listener():
    with socket.create_server(("127.0.0.1", 0)) as s:
        yield s


@pytest.fixture
def udp_socket():
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        yield s


def test_sockets_come_back_typed_named_cloexec_and_environment_is_unset(tcp_listener, udp_socket):
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with unix:
        result = launch("""
            got = listen_fds_with_names()
            print(json.dumps({
                "sockets": [describe(s) for s in got.sockets],
                "names": list(got.names),
                "by_name": {k: [s.fileno() for s in v] for k, v in got.items()},
                "env": sorted(k for k in os.environ if k.startswith("LISTEN_")),
                "again": len(listen_fds()),
                "listening": got.sockets[0].getsockname()[1],
            }))
        """, fds=[tcp_listener.fileno(), udp_socket.fileno(), unix.fileno()],
            env={"LISTEN_PID": "$PID", "LISTEN_FDS": "3", "LISTEN_FDNAMES": "web:dns:web"})
    seen = report(result)
    assert seen["sockets"] == [
        {"fd": 3, "family": "AF_INET", "type": "SOCK_STREAM", "inheritable": False},
        {"fd": 4, "family": "AF_INET6", "type": "SOCK_DGRAM", "inheritable": False},
        {"fd": 5, "family": "AF_UNIX", "type": "SOCK_SEQPACKET", "inheritable": False},
    ]
    assert seen["names"] == ["web", "dns", "web"]
    assert seen["by_name"] == {"web": [3, 5], "dns": [4]}
    assert seen["env"] == []  # children will not inherit the activation
    assert seen["again"] == 0  # consumed, as sd_listen_fds(1) documents
    assert seen["listening"] == tcp_listener.getsockname()[1]


def test_keeping_the_environment_returns_the_same_socket_objects(tcp_listener):
    result = launch("""
        first = listen_fds(unset_environment=False)
        second = listen_fds(unset_environment=False)
        print(json.dumps({"same": first[0] is second[0],
                          "env": os.environ.get("LISTEN_FDS"),
                          "names": list(listen_fds_with_names(False).names)}))
    """, fds=[tcp_listener.fileno()], env={"LISTEN_PID": "$PID", "LISTEN_FDS": "1"})
    assert report(result) == {"same": True, "env": "1", "names": ["unknown"]}


def test_a_listening_socket_passed_in_really_accepts(tcp_listener):
    proc = start("""
        (s,) = listen_fds()
        conn, _ = s.accept()
        conn.sendall(b"from the child")
        conn.close()
    """, fds=[tcp_listener.fileno()], env={"LISTEN_PID": "$PID", "LISTEN_FDS": "1"})
    try:
        with socket.create_connection(tcp_listener.getsockname(), timeout=20) as client:
            assert client.recv(100) == b"from the child"
        assert proc.wait(20) == 0, proc.stderr.read()
    finally:
        proc.kill()
        proc.communicate()


@pytest.mark.parametrize("env", [
    {"LISTEN_PID": "1", "LISTEN_FDS": "1"},  # a parent's, inherited because it did not unset
    {"LISTEN_FDS": "1"},  # no LISTEN_PID at all
    {"LISTEN_PID": "$PID"},  # no LISTEN_FDS
    {"LISTEN_PID": "$PID", "LISTEN_FDS": "0"},
], ids=["foreign-pid", "no-pid", "no-count", "zero"])
def test_activation_meant_for_no_one_here_gives_no_sockets(tcp_listener, env):
    result = launch("""
        print(json.dumps({"fds": len(listen_fds()),
                          "env": sorted(k for k in os.environ if k.startswith("LISTEN_"))}))
    """, fds=[tcp_listener.fileno()], env=env)
    assert report(result) == {"fds": 0, "env": []}


@pytest.mark.parametrize("env, message", [
    ({"LISTEN_PID": "$PID", "LISTEN_FDS": "two"}, "LISTEN_FDS='two' is not a number"),
    ({"LISTEN_PID": "$PID", "LISTEN_FDS": " 1"}, "LISTEN_FDS=' 1' is not a number"),
    ({"LISTEN_PID": "$PID", "LISTEN_FDS": "-1"}, "LISTEN_FDS='-1' is negative"),
    ({"LISTEN_PID": "self", "LISTEN_FDS": "1"}, "LISTEN_PID='self' is not a number"),
    ({"LISTEN_PID": "$PID", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "a:b"},
     "LISTEN_FDNAMES='a:b' has 2 names for LISTEN_FDS=1"),
    ({"LISTEN_PID": "$PID", "LISTEN_FDS": "2"}, "fd 4 (LISTEN_FDS=2) is not open"),
], ids=["word", "space", "negative", "bad-pid", "names-count", "closed-fd"])
def test_a_wrong_environment_is_a_clear_error_and_still_unset(tcp_listener, env, message):
    result = launch("""
        try:
            listen_fds()
        except ActivationError as exc:
            print(json.dumps({"error": str(exc),
                              "env": sorted(k for k in os.environ if k.startswith("LISTEN_"))}))
    """, fds=[tcp_listener.fileno()], env=env)
    seen = report(result)
    assert message in seen["error"]
    assert seen["env"] == []


def test_an_fd_that_is_not_a_socket_is_named(tcp_listener, tmp_path):
    read_end, write_end = os.pipe()
    try:
        result = launch("""
            try:
                listen_fds()
            except ActivationError as exc:
                print(json.dumps({"error": str(exc)}))
        """, fds=[tcp_listener.fileno(), read_end], env={"LISTEN_PID": "$PID", "LISTEN_FDS": "2"})
    finally:
        os.close(read_end)
        os.close(write_end)
    assert report(result)["error"] == "fd 4 (LISTEN_FDS=2) is not a socket but a pipe"


def test_inetd_style_connection_on_fd0_is_taken_over():
    """As a classic inetd child: the connection on fds 0, 1 and 2, no environment."""
    ours, theirs = socket.socketpair()
    go_r, go_w = os.pipe()
    with ours, theirs:
        proc = subprocess.Popen([sys.executable, "-c", REPORT + textwrap.dedent(f"""
            got = listen_fds_with_names()
            (conn,) = got.sockets
            print("stray print must not reach the peer")
            conn.sendall(json.dumps({{"names": list(got.names), **describe(conn),
                                     "fd0_is_socket": os.path.samestat(os.fstat(0), os.fstat(conn.fileno()))}}).encode())
            conn.close()
            os.read({go_r}, 1)  # still alive when the peer sees the end of the reply
        """)], stdin=theirs, stdout=theirs, stderr=theirs, pass_fds=(go_r,),
            env={k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")})
        theirs.close()
        ours.settimeout(20)
        data = b""
        while chunk := ours.recv(4096):
            data += chunk
        assert proc.poll() is None  # EOF came from close(), not from the process exiting
        os.write(go_w, b"x")
        assert proc.wait(20) == 0
    os.close(go_r)
    os.close(go_w)
    seen = json.loads(data)  # nothing but the reply: the print went elsewhere
    assert seen["names"] == ["connection"]
    assert seen["family"] == "AF_UNIX" and seen["type"] == "SOCK_STREAM"
    assert seen["fd"] > 2 and seen["inheritable"] is False
    assert seen["fd0_is_socket"] is False


def test_inetd_style_listening_socket_on_fd0_is_named_stdin(tcp_listener):
    result = launch("""
        got = listen_fds_with_names(unset_environment=False)
        print(json.dumps({"names": list(got.names), "type": got.sockets[0].type.name,
                          "fd0_kept": os.path.samestat(os.fstat(0), os.fstat(got.sockets[0].fileno()))}))
    """, stdin=tcp_listener.fileno())
    assert report(result) == {"names": ["stdin"], "type": "SOCK_STREAM", "fd0_kept": True}


def test_stdin_fallback_can_be_turned_off(tcp_listener):
    result = launch("print(json.dumps(len(listen_fds(stdin=False))))", stdin=tcp_listener.fileno())
    assert report(result) == 0


def test_nothing_passed_at_all_gives_no_sockets():
    assert report(launch("print(json.dumps(len(listen_fds())))")) == 0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12).filter(lambda t: not (t.isascii() and t.isdigit())))
def test_any_count_that_is_not_plain_digits_is_an_activation_error(text):
    """In-process (no fd is touched: the count is rejected before any fd is looked at)."""
    from inetd2systemd import ActivationError, listen_fds

    if text.startswith("-") and text[1:].isascii() and text[1:].isdigit():
        expected = "negative" if int(text) else None
    else:
        expected = "is not a number"
    saved = {k: os.environ.get(k) for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")}
    try:
        os.environ["LISTEN_PID"] = str(os.getpid())
        if "\0" in text:
            return  # cannot be in an environment at all
        os.environ["LISTEN_FDS"] = text
        if expected is None:  # "-0": zero, i.e. nothing passed
            assert listen_fds(stdin=False) == []
        else:
            with pytest.raises(ActivationError, match=expected):
                listen_fds(stdin=False)
        assert "LISTEN_FDS" not in os.environ and "LISTEN_PID" not in os.environ
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
