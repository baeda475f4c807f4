"""What a server started by `serve` gets, seen from inside the server, on a real terminal.

The superserver is started the way an administrator's careless shell would start it:
on a pseudo-terminal (pty.fork, so it has a controlling terminal), with a stray
/dev/null and a pipe end inherited, SIGQUIT and SIGINT ignored (a shell's `&`),
SIGUSR1 blocked, and a login's environment (HOME, TERM, OLDPWD, SHLVL, SSH_TTY,
LD_LIBRARY_PATH). A probe server reports its descriptors, session, controlling
terminal, signal state and environment. The same probe runs under the real xinetd and
openbsd-inetd, started the same way, and the reports are compared (marked `peers`).
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from superserver_support import tcp_exchange
from support import free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="root: servers run as root here")

# Two servers: cat reports its own /proc/self/status, the signal state it was started
# with (cat changes none of it; a shell would, while it waits for a command); a Python
# probe (-S -I: no site, no PYTHON* variables) reports the rest.
PROBE_PY = r"""
import json, os, sys
me = f"/proc/{os.getpid()}/fd"
fds = {}
for name in os.listdir(me):
    try:
        target = os.readlink(f"{me}/{name}")
    except OSError:
        continue  # the listing's own descriptor, closed already
    if target != me:
        fds[name] = target
try:
    os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    tty = "yes"
except OSError as exc:
    tty = os.strerror(exc.errno)
report = {"fds": fds, "session_leader": os.getsid(0) == os.getpid(), "tty": tty,
          "env": dict(os.environ)}
sys.stdout.write(json.dumps(report) + "\n")
"""
# Glibc's posix_spawn leaves its two reserved signals (32, 33: SIGCANCEL, SIGSETXID)
# ignored in the child, and Python cannot name them; a glibc program installs its own
# handlers for them before use. Nothing else may be ignored.
GLIBC_RESERVED = (1 << 31) | (1 << 32)

LOGIN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
             "USER": "root", "LOGNAME": "root", "SHELL": "/bin/bash", "TERM": "xterm",
             "OLDPWD": "/etc", "SHLVL": "2", "SSH_TTY": "/dev/pts/7",
             "LD_LIBRARY_PATH": "/nonexistent/lib", "KEEP_ME": "kept"}


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("children")
    os.chmod(work, 0o755)
    (work / "probe.py").write_text(PROBE_PY)
    return work


SERVERS = (("/usr/bin/python3", "-S -I {work}/probe.py"), ("/bin/cat", "/proc/self/status"))


def configuration(work: Path, dialect: str, port: int) -> Path:
    """The probe on `port`, cat on `port` + 1."""
    conf = work / f"{dialect}-{port}.conf"
    if dialect == "inetd":
        conf.write_text("".join(f"127.0.0.1:{port + i} stream tcp nowait root {server} "
                                f"{os.path.basename(server)} {args.format(work=work)}\n"
                                for i, (server, args) in enumerate(SERVERS)))
    else:
        conf.write_text("defaults\n{\n}\n" + "".join(
            f"service probe{i}\n{{\n type = UNLISTED\n port = {port + i}\n"
            " socket_type = stream\n protocol = tcp\n wait = no\n user = root\n"
            f" bind = 127.0.0.1\n server = {server}\n server_args = {args.format(work=work)}\n}}\n"
            for i, (server, args) in enumerate(SERVERS)))
    return conf


def on_a_terminal(argv: list[str], port: int, cwd: Path) -> dict:
    """Start `argv` on a new pty from a careless parent, ask the probe, stop it."""
    stray_null = os.open(os.devnull, os.O_RDONLY)
    pipe_r, pipe_w = os.pipe()
    pid, master = pty.fork()
    if pid == 0:
        try:
            for fd in (stray_null, pipe_w):
                os.set_inheritable(fd, True)
            signal.signal(signal.SIGQUIT, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
            os.chdir(cwd)
            os.execve(argv[0], argv, LOGIN_ENV)
        finally:
            os._exit(127)
    os.close(stray_null)
    os.close(pipe_w)
    output = bytearray()
    try:
        deadline = time.monotonic() + 15
        answer = "refused"
        while time.monotonic() < deadline:
            _drain(master, output)
            answer = tcp_exchange(port, timeout=5)
            if isinstance(answer, bytes) and answer:
                break
            time.sleep(0.05)
        assert isinstance(answer, bytes) and answer, (answer, bytes(output))
        report = json.loads(answer)
        status = tcp_exchange(port + 1, timeout=5)
        assert isinstance(status, bytes), status
        report.update(line.split(":\t", 1) for line in status.decode().splitlines()
                      if line.startswith(("SigIgn:", "SigBlk:")))
        return report
    finally:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while os.waitpid(pid, os.WNOHANG)[0] == 0:
            _drain(master, output)
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.02)
        os.close(master)
        os.close(pipe_r)


def _drain(master: int, output: bytearray) -> None:
    while select.select([master], [], [], 0)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            return
        if not chunk:
            return
        output += chunk


def ours(work: Path, dialect: str) -> dict:
    port = free_port(2)
    conf = configuration(work, dialect, port)
    return on_a_terminal([sys.executable, "-m", "inetd2systemd", "serve", "-c", str(conf),
                          "--foreground"], port, work)


def theirs(work: Path, dialect: str, peer: str) -> dict:
    port = free_port(2)
    conf = configuration(work, dialect, port)
    argv = [peer, "-d", str(conf)] if dialect == "inetd" else \
        [peer, "-dontfork", "-f", str(conf), "-pidfile", str(work / f"x{port}.pid")]
    return on_a_terminal(argv, port, work)


def only_the_socket(report: dict) -> bool:
    fds = report["fds"]
    return set(fds) == {"0", "1", "2"} and len(set(fds.values())) == 1 \
        and fds["0"].startswith("socket:")


@pytest.mark.parametrize("dialect", ["inetd", "xinetd"])
def test_a_server_gets_its_socket_a_session_default_signals_and_a_daemons_environment(
        probe, dialect):
    report = ours(probe, dialect)
    # Only the connection, on 0, 1 and 2: not the stray /dev/null nor the pipe end.
    assert only_the_socket(report), report["fds"]
    # Its own session, no controlling terminal: nothing to inject input into.
    assert report["session_leader"] is True
    assert report["tty"] == "No such device or address"
    # SIGQUIT and SIGINT ignored by the starting shell are not ignored here; SIGUSR1
    # is not blocked.
    assert int(report["SigIgn"], 16) & ~GLIBC_RESERVED == 0, report["SigIgn"]
    assert int(report["SigBlk"], 16) == 0, report["SigBlk"]
    env = report["env"]
    for name in ("HOME", "USER", "LOGNAME", "SHELL", "TERM", "OLDPWD", "SHLVL", "SSH_TTY"):
        assert name not in env, f"{name} of the login reached the server"
    assert env["KEEP_ME"] == "kept" and env["LANG"] == "C.UTF-8"
    if dialect == "inetd":  # as openbsd-inetd: PATH and LD_* are discarded too
        assert "PATH" not in env and "LD_LIBRARY_PATH" not in env
        assert "REMOTE_HOST" not in env
    else:
        assert env["PATH"] == LOGIN_ENV["PATH"] and env["REMOTE_HOST"] == "127.0.0.1"


@pytest.mark.parametrize("dialect", ["inetd", "xinetd"])
def test_a_server_gets_no_more_than_the_peer_gives(probe, openbsd_inetd, xinetd, dialect):
    peer = openbsd_inetd if dialect == "inetd" else xinetd
    mine, real = ours(probe, dialect), theirs(probe, dialect, peer)
    # Descriptors, session and terminal: the same as the peer's.
    assert only_the_socket(real), real["fds"]
    assert only_the_socket(mine)
    assert real["session_leader"] is mine["session_leader"] is True
    assert real["tty"] == mine["tty"]
    # Signals: nothing ignored or blocked here. xinetd is as clean; openbsd-inetd hands
    # on the SIGQUIT its starting shell ignored (and SIGXFSZ) and the SIGUSR1 it blocked.
    ignored, blocked = int(real["SigIgn"], 16), int(real["SigBlk"], 16)
    if dialect == "xinetd":
        assert ignored == blocked == 0
    else:
        assert ignored & 1 << (signal.SIGQUIT - 1) and blocked == 1 << (signal.SIGUSR1 - 1)
    assert int(mine["SigIgn"], 16) & ~GLIBC_RESERVED == int(mine["SigBlk"], 16) == 0
    # Environment: never a variable the peer would not give, with the documented
    # exceptions that the peer gives and we do not (the starting login's session).
    shell_pwd = {"PWD"}  # sh sets it from the working directory, for both
    artefacts = {"inetd_dummy"}  # openbsd-inetd's setproctitle space, not a variable
    extra = set(mine["env"]) - set(real["env"]) - shell_pwd
    assert not extra, f"ours gives what {peer} does not: {extra}"
    missing = set(real["env"]) - set(mine["env"]) - shell_pwd - artefacts
    assert missing <= {"HOME", "USER", "LOGNAME", "SHELL", "TERM", "OLDPWD", "SHLVL",
                       "SSH_TTY"}, missing
    for name in set(mine["env"]) & set(real["env"]) - shell_pwd:
        assert mine["env"][name] == real["env"][name], name
