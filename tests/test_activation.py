"""listen_fds() and friends against the sd_listen_fds(3) protocol, edge case by edge case.

Each case runs in a fresh process started the way a service manager starts one: the
launcher puts the sockets on fds 3, 4, ..., sets LISTEN_PID to the pid the program will
have, and execs it (the real managers, systemd-socket-activate and systemd, are used in
test_examples_activation.py; here every odd environment must be reachable).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

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
    {"LISTEN_PID": "$PID", "LISTEN_FDS": "1", "LISTEN_PIDFDID": "1"},  # pid reused
], ids=["foreign-pid", "no-pid", "no-count", "foreign-pidfd"])
def test_activation_meant_for_no_one_here_gives_no_sockets(tcp_listener, env):
    result = launch("""
        print(json.dumps({"fds": len(listen_fds()),
                          "env": sorted(k for k in os.environ if k.startswith("LISTEN_"))}))
    """, fds=[tcp_listener.fileno()], env=env)
    assert report(result) == {"fds": 0, "env": []}


def test_the_pidfd_inode_id_of_this_process_is_accepted(tcp_listener):
    """LISTEN_PIDFDID (systemd 255 and later) names the process by its pidfd's inode, so
    a reused pid cannot receive another process's sockets; ours matches."""
    result = launch("""
        fd = os.pidfd_open(os.getpid())
        os.environ["LISTEN_PIDFDID"] = str(os.fstat(fd).st_ino)
        print(json.dumps({"fds": len(listen_fds()),
                          "env": sorted(k for k in os.environ if k.startswith("LISTEN_"))}))
    """, fds=[tcp_listener.fileno()], env={"LISTEN_PID": "$PID", "LISTEN_FDS": "1"})
    assert report(result) == {"fds": 1, "env": []}


@pytest.mark.parametrize("env, message", [
    ({"LISTEN_PID": "$PID", "LISTEN_FDS": "two"}, "LISTEN_FDS='two' is not a number"),
    ({"LISTEN_PID": "$PID", "LISTEN_FDS": "1 "}, "LISTEN_FDS='1 ' is not a number"),
    ({"LISTEN_PID": "$PID", "LISTEN_FDS": "0"}, "LISTEN_FDS='0' is not a positive count"),
    ({"LISTEN_PID": "$PID", "LISTEN_FDS": "-1"}, "LISTEN_FDS='-1' is not a positive count"),
    ({"LISTEN_PID": "self", "LISTEN_FDS": "1"}, "LISTEN_PID='self' is not a number"),
    ({"LISTEN_PID": "0", "LISTEN_FDS": "1"}, "LISTEN_PID='0' is not a valid process id"),
    ({"LISTEN_PID": "$PID", "LISTEN_FDS": "1", "LISTEN_PIDFDID": "x"},
     "LISTEN_PIDFDID='x' is not a number"),
    ({"LISTEN_PID": "$PID", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "a:b"},
     "LISTEN_FDNAMES='a:b' has 2 names for LISTEN_FDS=1"),
    ({"LISTEN_PID": "$PID", "LISTEN_FDS": "2"}, "fd 4 (LISTEN_FDS=2) is not open"),
], ids=["word", "trailing-space", "zero", "negative", "bad-pid", "pid-zero", "bad-pidfd",
        "names-count", "closed-fd"])
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


def test_fds_that_are_not_sockets_are_returned_with_their_names(tcp_listener):
    """The fd store and OpenFile= pass files, pipes and memfds too: they come back as
    their fd numbers (close-on-exec, still open), named; listen_fds() lists the sockets."""
    read_end, write_end = os.pipe()
    try:
        result = launch("""
            got = listen_fds_with_names(unset_environment=False)
            print(json.dumps({"pairs": [[n, p if isinstance(p, int) else "socket"]
                                        for n, p in got.pairs],
                              "files": got.files, "by_name": {k: len(v) for k, v in got.items()},
                              "cloexec": os.get_inheritable(4),
                              "sockets": [s.fileno() for s in listen_fds()]}))
        """, fds=[tcp_listener.fileno(), read_end],
            env={"LISTEN_PID": "$PID", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:stored"})
    finally:
        os.close(read_end)
        os.close(write_end)
    assert report(result) == {"pairs": [["web", "socket"], ["stored", 4]], "files": [4],
                              "by_name": {"web": 1, "stored": 1}, "cloexec": False,
                              "sockets": [3]}


def test_serve_skips_what_is_not_a_socket_and_says_so(tcp_listener):
    read_end, write_end = os.pipe()
    try:
        proc = start("""
            from inetd2systemd import serve
            serve(lambda conn, peer: conn.sendall(b"served"))
        """, fds=[tcp_listener.fileno(), read_end],
            env={"LISTEN_PID": "$PID", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:stored"})
        try:
            with socket.create_connection(tcp_listener.getsockname(), timeout=20) as client:
                assert client.recv(100) == b"served"
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=20)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert "fd 4 (stored) is a pipe, not a socket: not served" in err


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


# -- the same environment through libsystemd (systemd-python) and through ours -----------

def _libsystemd_verdict(count_text: str, pid_text: str) -> str:
    """What libsystemd's sd_listen_fds makes of LISTEN_FDS=count_text with LISTEN_PID set
    by pid_text: "none", "count", or "error" (closed fds in the range are 'count': the
    number was read, the fds are another matter, checked by the tests above)."""
    from systemd import daemon

    os.environ["LISTEN_PID"], os.environ["LISTEN_FDS"] = pid_text, count_text
    try:
        return "count" if daemon.listen_fds(unset_environment=False) else "none"
    except OSError as exc:
        return "count" if exc.errno == errno.EBADF else "error"


def _our_verdict(count_text: str, pid_text: str) -> str:
    from inetd2systemd.runtime.activation import ActivationError, _read_environment

    os.environ["LISTEN_PID"], os.environ["LISTEN_FDS"] = pid_text, count_text
    try:
        return "count" if _read_environment()[0] else "none"
    except ActivationError:
        return "error"


@pytest.fixture
def saved_environment():
    variables = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PIDFDID")
    saved = {k: os.environ.pop(k, None) for k in variables}
    yield
    for key, value in saved.items():
        os.environ.pop(key, None)
        if value is not None:
            os.environ[key] = value


PID_FORMS = ["{pid}", " {pid}", "\t{pid}", "\v{pid}", "{pid} ", "+{pid}", "-{pid}", "0{pid}",
             "0x{pid:x}", "0X{pid:X}", "0o{pid:o}", "0{pid:o}", "0b{pid:b}", "1", "0", "-0", "",
             "abc", "99999999999999999999", "{pid}\n", " +{pid}", "+ {pid}", "0x"]
COUNT_FORMS = ["1", "0", "-1", " 1", "+1", "01", "0x1", "0o1", "0b1", "1 ", "", "x", "00",
               "-0", "\v1", "0x", "2147483644", "2147483645", "99999999999", " +1", "+ 1",
               "1_0", "\u0661", "0b", "08", "0o8"]


@pytest.mark.parametrize("pid_form", PID_FORMS)
def test_listen_pid_is_read_as_libsystemd_reads_it(pid_form, saved_environment):
    pid_text = pid_form.format(pid=os.getpid())
    assert _our_verdict("1", pid_text) == _libsystemd_verdict("1", pid_text)


@pytest.mark.parametrize("count_text", COUNT_FORMS)
def test_listen_fds_is_read_as_libsystemd_reads_it(count_text, saved_environment):
    pid_text = str(os.getpid())
    assert _our_verdict(count_text, pid_text) == _libsystemd_verdict(count_text, pid_text)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # every input sets both
@given(count=st.one_of(st.text(alphabet=" \t\v+-0123456789abxoXO_", max_size=12), st.text(max_size=8)),
       pid_form=st.sampled_from(PID_FORMS))
def test_any_count_and_pid_text_get_libsystemds_verdict(count, pid_form, saved_environment):
    """In-process, no fd touched: only the reading of the numbers is compared."""
    assume("\0" not in count)  # cannot be in an environment at all
    pid_text = pid_form.format(pid=os.getpid())
    assert _our_verdict(count, pid_text) == _libsystemd_verdict(count, pid_text)


def test_names_are_split_and_counted_as_libsystemd_does(saved_environment, tcp_listener,
                                                         udp_socket):
    """An empty LISTEN_FDNAMES is one empty name, '::' three; a count that differs is an
    error in both."""
    result = launch("""
        from systemd import daemon
        out = []
        for names in ("", ":", "a::b", "a:b"):
            os.environ["LISTEN_FDNAMES"] = names
            try:
                theirs = list(daemon.listen_fds_with_names(False).values())
            except OSError:
                theirs = "error"
            try:
                ours = list(listen_fds_with_names(False, stdin=False).names)
            except ActivationError:
                ours = "error"
            out.append([names, theirs, ours])
        print(json.dumps(out))
    """, fds=[tcp_listener.fileno(), udp_socket.fileno()],
        env={"LISTEN_PID": "$PID", "LISTEN_FDS": "2"})
    for names, theirs, ours in report(result):
        assert ours == theirs, names
