"""`inetd2systemd daemonize` seen from outside, through /proc, as an administrator would.

The test process makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER): a
daemon's double fork then reparents it to this process instead of PID 1, so its parent
can be checked exactly and it can be reaped here once killed. Without that the daemon's
parent would be whatever init this sandbox has, and every daemon would leak to it.
"""

from __future__ import annotations

import ctypes
import fcntl
import grp
import os
import pty
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from inetd2systemd.daemon import DaemonError, DaemonOptions, daemonize

PR_SET_CHILD_SUBREAPER = 36
SHIM = [sys.executable, "-m", "inetd2systemd", "daemonize"]
SLEEP = "/bin/sleep"
MANAGER_VARIABLES = ("NOTIFY_SOCKET", "INVOCATION_ID", "LISTEN_PID", "LISTEN_FDS",
                     "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")


def _prctl_subreaper(on: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


@pytest.fixture(scope="module", autouse=True)
def subreaper():
    _prctl_subreaper(True)
    yield
    _prctl_subreaper(False)


@pytest.fixture(autouse=True)
def reap_orphans():
    """Failed starts leave exited grandchildren reparented to us: reap them."""
    yield
    _reap_exited()


def _reap_exited() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment as if no service manager had started it."""
    env = {k: v for k, v in os.environ.items() if k not in MANAGER_VARIABLES}
    env.update(extra)
    return env


def shim(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*SHIM, *args], capture_output=True, text=True, timeout=30,
                          env=clean_env() if env is None else env, **kw)


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)  # ours through the subreaper
    except ChildProcessError:
        while Path(f"/proc/{pid}").exists():
            time.sleep(0.01)


@pytest.fixture
def daemons():
    started: list[int] = []
    yield started
    for pid in started:
        kill(pid)


# -- /proc readers ----------------------------------------------------------------------
def proc_stat(pid: int) -> dict[str, int | str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return {"state": fields[0], "ppid": int(fields[1]), "pgrp": int(fields[2]),
            "session": int(fields[3]), "tty_nr": int(fields[4])}


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def proc_fds(pid: int) -> dict[int, str]:
    base = Path(f"/proc/{pid}/fd")
    return {int(fd): os.readlink(base / fd) for fd in os.listdir(base)}


def _settled_read(path: str) -> bytes:
    # Right after exec the new image's argument and environment areas are set up a
    # moment after the old fds were closed (which is when the shim returns): an
    # empty read there means "not yet", never "empty".
    deadline = time.monotonic() + 5
    while not (data := Path(path).read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.005)
    return data


def proc_environ(pid: int) -> dict[str, str]:
    raw = _settled_read(f"/proc/{pid}/environ").split(b"\0")
    return dict(item.decode().partition("=")[::2] for item in raw if item)


def proc_exe(pid: int) -> str:
    return os.path.realpath(f"/proc/{pid}/exe")


def pidfile_pid(path: Path) -> int:
    text = path.read_text()
    assert text.endswith("\n") and text.strip().isdigit(), repr(text)
    return int(text)


def lock_is_held(path: Path) -> bool:
    with open(path) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


# -- a properly detached daemon -----------------------------------------------------------
@pytest.fixture(scope="module")
def detached(tmp_path_factory):
    """One daemon started the way a careless shell would: a stray inherited fd, a
    blocked signal, ignored signals, terminal and SSH variables. The shim must undo all."""
    tmp = tmp_path_factory.mktemp("detached")
    pidfile = tmp / "sleep.pid"
    stray = os.open(tmp / "stray", os.O_CREAT | os.O_RDWR)

    def careless_parent():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup does

    env = clean_env(TERM="xterm", SSH_TTY="/dev/pts/9", KEEP_ME="yes")
    started_at = time.monotonic()
    out = subprocess.run([*SHIM, "--pidfile", str(pidfile), "--env", "EXTRA=1", "--",
                          SLEEP, "300"], capture_output=True, text=True, env=env,
                         pass_fds=(stray,), preexec_fn=careless_parent, timeout=30)
    os.close(stray)
    pid = pidfile_pid(pidfile)
    yield {"out": out, "pid": pid, "pidfile": pidfile, "stray": stray, "seconds":
           time.monotonic() - started_at}
    kill(pid)


def test_started_daemon_is_the_program_and_the_shim_says_so(detached):
    assert detached["out"].returncode == 0, detached["out"].stderr
    assert detached["out"].stdout == detached["out"].stderr == ""
    pid = detached["pid"]
    assert proc_exe(pid) == os.path.realpath(SLEEP)  # exec'd: the PID is the program's
    assert _settled_read(f"/proc/{pid}/cmdline") == b"%s\x00300\x00" % SLEEP.encode()


def test_daemon_is_reparented_and_leads_nothing(detached):
    pid = detached["pid"]
    stat = proc_stat(pid)
    assert stat["ppid"] == os.getpid()  # the shim and its first child are gone
    assert stat["session"] != pid, "a session leader could acquire a terminal"
    assert stat["pgrp"] != pid
    assert stat["session"] != os.getsid(0), "still in the invoking session"
    assert stat["tty_nr"] == 0


LOCK_FD = 1023  # the highest below min(RLIMIT_NOFILE, 1024): out of fd 3's way


def test_daemon_has_only_stdio_on_devnull_and_the_pidfile_lock(detached):
    fds = proc_fds(detached["pid"])
    assert fds == {0: "/dev/null", 1: "/dev/null", 2: "/dev/null",
                   LOCK_FD: str(detached["pidfile"])}, "the inherited stray fd must be closed"


def test_the_lock_descriptor_is_read_only(detached):
    flags = _fdinfo_flags(detached["pid"], LOCK_FD)
    assert flags & os.O_ACCMODE == os.O_RDONLY, oct(flags)
    assert not flags & os.O_NONBLOCK


def _fdinfo_flags(pid: int, fd: int) -> int:
    for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("flags:"):
            return int(line.split()[1], 8)
    raise AssertionError("no flags in fdinfo")


def test_daemon_signals_are_reset(detached):
    status = proc_status(detached["pid"])
    assert int(status["SigBlk"], 16) == 0
    assert int(status["SigIgn"], 16) == 0  # not even SIGHUP, ignored by the parent


def test_daemon_cwd_umask_environment(detached):
    pid = detached["pid"]
    assert os.readlink(f"/proc/{pid}/cwd") == "/"
    assert proc_status(pid)["Umask"] == "0022"
    env = proc_environ(pid)
    assert "TERM" not in env and "SSH_TTY" not in env  # tied to the session it left
    assert env["KEEP_ME"] == "yes" and env["EXTRA"] == "1" and env["PWD"] == "/"
    assert env["PATH"] == os.environ["PATH"]


def test_pidfile_names_the_daemon_and_stays_locked(detached):
    pidfile = detached["pidfile"]
    assert pidfile_pid(pidfile) == detached["pid"]
    assert oct(pidfile.stat().st_mode & 0o777) == oct(0o644)
    assert lock_is_held(pidfile)
    assert not list(pidfile.parent.glob(".*.tmp")), "temporary files left behind"
    locks = Path("/proc/locks").read_text()
    inode = pidfile.stat().st_ino
    assert any("FLOCK" in line and f" {detached['pid']} " in line and f":{inode} " in line
               for line in locks.splitlines()), locks


def test_holder_names_the_live_daemon_only(detached, tmp_path):
    from inetd2systemd.daemon.pidfile import holder

    assert holder(str(detached["pidfile"])) == detached["pid"]
    stale = tmp_path / "stale.pid"
    stale.write_text(f"{detached['pid']}\n")  # same PID, but nobody holds the lock
    assert holder(str(stale)) is None
    assert holder(str(tmp_path / "absent.pid")) is None


def test_second_start_is_refused_and_changes_nothing(detached):
    pidfile = detached["pidfile"]
    before = pidfile.stat()
    out = shim("--pidfile", str(pidfile), "--", SLEEP, "301")
    assert out.returncode == 1
    assert f"already running as PID {detached['pid']}" in out.stderr
    assert pidfile_pid(pidfile) == detached["pid"]
    assert pidfile.stat().st_ino == before.st_ino
    assert lock_is_held(pidfile)
    assert not [p for p in _children() if b"301" in _cmdline(p)], "a second daemon runs"


def _children() -> list[int]:
    me = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
    return [int(p) for p in me]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()  # empty for a zombie
    except OSError:
        return b""


# -- from a real terminal ------------------------------------------------------------------
def test_no_controlling_terminal_when_started_from_a_pty(tmp_path, daemons):
    pidfile = tmp_path / "tty.pid"
    env = clean_env()
    # The shell prints its own tty_nr first: proof that the shim really starts with a
    # controlling terminal, the pseudo-terminal opened here.
    script = 'cut -d" " -f7 /proc/$$/stat; exec "$@"'
    child, master = pty.fork()
    if child == 0:
        try:
            os.execve("/bin/sh", ["sh", "-c", script, "sh", *SHIM, "--pidfile", str(pidfile),
                                  "--", SLEEP, "300"], env)
        finally:
            os._exit(99)
    output = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 1024)
        except OSError:  # EIO: every holder of the slave side is gone
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    shell_tty = int(output.split()[0])
    assert shell_tty != 0
    pid = pidfile_pid(pidfile)
    daemons.append(pid)
    assert proc_stat(pid)["tty_nr"] == 0
    assert proc_fds(pid)[0] == "/dev/null"


# -- stale pidfiles ---------------------------------------------------------------------------
def _dead_pid() -> int:
    p = subprocess.Popen(["/bin/true"])
    p.wait()
    return p.pid


@pytest.mark.parametrize("recorded", ["dead", "foreign", "garbage", "huge", "pid_t+1"])
def test_stale_pidfile_is_taken_over(tmp_path, daemons, recorded):
    pidfile = tmp_path / "stale.pid"
    content = {"dead": f"{_dead_pid()}\n",
               "foreign": f"{os.getpid()}\n",  # alive, unlocked, but not our program
               "garbage": "not a pid\n",
               "huge": "12345678901234567890123\n",  # was an OverflowError
               "pid_t+1": f"{2**31}\n"}[recorded]
    pidfile.write_text(content)
    out = shim("--pidfile", str(pidfile), "--", SLEEP, "300")
    assert out.returncode == 0, out.stderr
    pid = pidfile_pid(pidfile)
    daemons.append(pid)
    assert proc_exe(pid) == os.path.realpath(SLEEP)
    assert lock_is_held(pidfile)


def test_unlocked_pidfile_of_the_same_program_still_running_is_refused(tmp_path):
    # Written by a tool that never locks (start-stop-daemon --make-pidfile): the PID is
    # alive and runs the very program, so it is not stale.
    other = subprocess.Popen([SLEEP, "300"])
    try:
        pidfile = tmp_path / "nolock.pid"
        pidfile.write_text(f"{other.pid}\n")
        out = shim("--pidfile", str(pidfile), "--", SLEEP, "300")
        assert out.returncode == 1
        assert f"already running as PID {other.pid}" in out.stderr
        assert pidfile.read_text() == f"{other.pid}\n"
    finally:
        other.kill()
        other.wait()


# -- each failure, its status, and nothing left behind ----------------------------------------
FAILURES = {
    "program not found": (["--", "/nonexistent/program"], 127, "No such file or directory"),
    "not executable": (["--", "{tmp}/data.txt"], 126, "Permission denied"),
    "unknown user": (["--user", "no-such-user-i2s", "--", SLEEP, "1"], 2,
                     "user 'no-such-user-i2s' does not exist"),
    "unknown group": (["--group", "no-such-group-i2s", "--", SLEEP, "1"], 2,
                      "group 'no-such-group-i2s' does not exist"),
    "chdir fails": (["--chdir", "/nonexistent/dir", "--", SLEEP, "1"], 3,
                    "cannot change directory to /nonexistent/dir"),
    "pidfile directory missing": (["--pidfile", "/nonexistent/dir/x.pid", "--", SLEEP, "1"],
                                  3, "/nonexistent/dir/x.pid"),
    "stdout file unwritable": (["--stdout", "/nonexistent/dir/out.log", "--", SLEEP, "1"],
                               3, "cannot open /nonexistent/dir/out.log"),
    "stdout is a FIFO": (["--stdout", "{tmp}/fifo", "--", SLEEP, "1"], 3,
                         "cannot open {tmp}/fifo: not a regular file"),
    "stdout is a directory": (["--stdout", "{tmp}", "--", SLEEP, "1"], 3,
                              "cannot open {tmp}: Is a directory"),
    "stderr is a symbolic link": (["--stderr", "{tmp}/link", "--", SLEEP, "1"], 3,
                                  "cannot open {tmp}/link: is a symbolic link; refusing it"),
    "stdout has another hard link": (["--stdout", "{tmp}/hardlink", "--", SLEEP, "1"], 3,
                                     "cannot open {tmp}/hardlink: has 2 hard links"),
    "program exits at once": (["--", "/bin/sh", "-c", "exit 5"], 3,
                              "/bin/sh exited with status 5 within 0.5 s of starting"),
    "program exits 0 at once": (["--", "/bin/sh", "-c", "exit 0"], 3,
                                "exited with status 0 within 0.5 s of starting: a daemon "
                                "must keep running"),
    "program crashes at once": (["--", "/bin/sh", "-c", "kill -SEGV $$"], 3,
                                "/bin/sh was killed by SIGSEGV within 0.5 s"),
    "program exits within a longer window": (["--ready-window", "3", "--", "/bin/sh", "-c",
                                              "sleep 1; exit 4"], 3,
                                             "exited with status 4 within 3 s"),
    "bad umask": (["--umask", "8", "--", SLEEP, "1"], 2, "not an octal umask"),
    "no program": ([], 2, "no program given"),
}


@pytest.mark.parametrize("case", FAILURES, ids=list(FAILURES))
def test_startup_failure_is_reported_with_its_status(tmp_path, case):
    args, status, message = FAILURES[case]
    pidfile = tmp_path / "f.pid"
    (tmp_path / "data.txt").write_text("not a program\n")  # mode 0644: no x bit
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to(tmp_path / "data.txt")
    os.link(tmp_path / "data.txt", tmp_path / "hardlink")
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    message = message.replace("{tmp}", str(tmp_path))
    if "--pidfile" not in args and args:
        args = ["--pidfile", str(pidfile), *args]
    before = set(_children())
    out = shim(*args)
    assert out.returncode == status, out.stderr
    assert message in out.stderr
    assert not pidfile.exists(), "a daemon that did not start left its pidfile"
    assert (tmp_path / "data.txt").read_text() == "not a program\n"
    time.sleep(0.05)
    _reap_exited()
    assert set(_children()) <= before, "a process of the failed start is still running"


# -- privileges --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def test_user():
    if os.geteuid() != 0:
        pytest.skip("root: needs to create a user and switch to it")
    name, extra = f"i2sd{os.getpid() % 100000}", f"i2sg{os.getpid() % 100000}"
    subprocess.run(["groupadd", extra], check=True, capture_output=True)
    subprocess.run(["useradd", "--no-create-home", "--home-dir", "/nonexistent-home",
                    "--shell", "/usr/sbin/nologin", "--groups", extra, name], check=True,
                   capture_output=True)
    try:
        yield pwd.getpwnam(name), grp.getgrnam(extra)
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", extra], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)  # USERGROUPS_ENAB


def test_privileges_are_dropped_with_supplementary_groups(tmp_path, daemons, test_user):
    user, extra = test_user
    pidfile = tmp_path / "user.pid"
    log = tmp_path / "user.log"
    log.write_text("kept line\n")
    out = shim("--pidfile", str(pidfile), "--user", user.pw_name, "--stdout", str(log),
               "--stderr", str(log), "--umask", "027", "--chdir", str(tmp_path), "--",
               "/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; exec sleep 300")
    assert out.returncode == 0, out.stderr
    pid = pidfile_pid(pidfile)
    daemons.append(pid)
    status = proc_status(pid)
    assert status["Uid"].split() == [str(user.pw_uid)] * 4  # real, effective, saved, fs
    assert status["Gid"].split() == [str(user.pw_gid)] * 4
    assert set(status["Groups"].split()) == {str(user.pw_gid), str(extra.gr_gid)}
    assert status["Umask"] == "0027"
    assert os.readlink(f"/proc/{pid}/cwd") == str(tmp_path)
    env = proc_environ(pid)
    assert (env["USER"], env["LOGNAME"], env["HOME"]) == (user.pw_name, user.pw_name,
                                                          "/nonexistent-home")
    # The pidfile was written as root before the drop: the daemon cannot forge it.
    assert pidfile.stat().st_uid == 0 and lock_is_held(pidfile)
    deadline = time.monotonic() + 10
    while "to-stderr" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    lines = log.read_text().splitlines()
    assert lines[0] == "kept line" and set(lines[1:]) == {"to-stdout", "to-stderr"}


def test_new_output_file_belongs_to_the_daemon_user(tmp_path, daemons, test_user):
    user, _ = test_user
    pidfile, log = tmp_path / "own.pid", tmp_path / "new.log"
    out = shim("--pidfile", str(pidfile), "--user", user.pw_name, "--stderr", str(log),
               "--", SLEEP, "300")
    assert out.returncode == 0, out.stderr
    daemons.append(pidfile_pid(pidfile))
    st = log.stat()
    assert (st.st_uid, st.st_gid) == (user.pw_uid, user.pw_gid)
    assert st.st_mode & 0o777 == 0o644  # 0666 through the default umask 022


def test_group_alone_drops_root_supplementary_groups(tmp_path, daemons, test_user):
    _, extra = test_user
    pidfile = tmp_path / "group.pid"
    out = shim("--pidfile", str(pidfile), "--group", extra.gr_name, "--", SLEEP, "300")
    assert out.returncode == 0, out.stderr
    pid = pidfile_pid(pidfile)
    daemons.append(pid)
    status = proc_status(pid)
    assert status["Gid"].split() == [str(extra.gr_gid)] * 4
    assert status["Uid"].split()[0] == "0"
    assert status["Groups"] == ""


# -- socket activation handed through ------------------------------------------------------------
def test_listen_fds_survive_and_listen_pid_follows_the_daemon(tmp_path, daemons):
    listener = socket.create_server(("127.0.0.1", 0))
    pidfile = tmp_path / "sa.pid"
    env = clean_env(LISTEN_FDS="1", LISTEN_FDNAMES="web")
    # As systemd-socket-activate does: the socket on fd 3, LISTEN_PID = the shim's PID.
    out = subprocess.run(["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh", *SHIM,
                          "--pidfile", str(pidfile), "--", SLEEP, "300"], env=env,
                         capture_output=True, text=True, timeout=30, pass_fds=(3,),
                         preexec_fn=lambda: os.dup2(listener.fileno(), 3))
    assert out.returncode == 0, out.stderr
    pid = pidfile_pid(pidfile)
    daemons.append(pid)
    inode = os.fstat(listener.fileno()).st_ino
    fds = proc_fds(pid)
    assert fds[3] == f"socket:[{inode}]"
    assert fds[LOCK_FD] == str(pidfile) and set(fds) == {0, 1, 2, 3, LOCK_FD}
    env = proc_environ(pid)
    assert (env["LISTEN_PID"], env["LISTEN_FDS"], env["LISTEN_FDNAMES"]) == (str(pid), "1",
                                                                             "web")
    listener.close()


# -- the Python API ---------------------------------------------------------------------------------
def test_daemonize_function_returns_the_started_pid(tmp_path, daemons):
    pidfile = tmp_path / "api.pid"
    pid = daemonize([SLEEP, "300"], DaemonOptions(pidfile=str(pidfile), mode="detach"))
    daemons.append(pid)
    assert pidfile_pid(pidfile) == pid
    assert proc_exe(pid) == os.path.realpath(SLEEP)
    assert proc_stat(pid)["session"] != pid
    with pytest.raises(DaemonError) as failed:
        daemonize([SLEEP, "300"], DaemonOptions(pidfile=str(pidfile), mode="detach"))
    assert failed.value.status == 1


def test_daemonize_function_raises_when_exec_fails(tmp_path):
    with pytest.raises(DaemonError) as failed:
        daemonize(["/nonexistent/program"], DaemonOptions(mode="detach"))
    assert failed.value.status == 127
    assert "cannot execute /nonexistent/program" in str(failed.value)


SELF_DAEMONIZING = textwrap.dedent("""
    import socket, sys, time
    from inetd2systemd.daemon import Daemon, DaemonOptions
    pidfile, port_file, fail = sys.argv[1], sys.argv[2], sys.argv[3] == "fail"
    with Daemon(DaemonOptions(pidfile=pidfile, mode="detach"), wait_ready=True) as daemon:
        time.sleep(0.3)  # a slow start-up: the invoking process must wait for it
        if fail:
            raise RuntimeError("cannot load the configuration")
        server = socket.create_server(("127.0.0.1", 0))
        open(port_file, "w").write(str(server.getsockname()[1]))
        daemon.ready()
        while True:
            conn, _ = server.accept()
            conn.sendall(b"hello\\n")
            conn.close()
""")


def test_context_manager_parent_exits_only_when_the_daemon_is_ready(tmp_path, daemons):
    script = tmp_path / "selfd.py"
    script.write_text(SELF_DAEMONIZING)
    pidfile, port_file = tmp_path / "selfd.pid", tmp_path / "port"
    out = subprocess.run([sys.executable, str(script), str(pidfile), str(port_file), "ok"],
                         capture_output=True, text=True, env=clean_env(), timeout=30)
    assert out.returncode == 0, out.stderr
    pid = pidfile_pid(pidfile)
    daemons.append(pid)
    # No retry loop: readiness was promised, so the port answers right away.
    with socket.create_connection(("127.0.0.1", int(port_file.read_text())), timeout=5) as c:
        assert c.recv(16) == b"hello\n"
    stat = proc_stat(pid)
    assert stat["ppid"] == os.getpid() and stat["session"] != pid and stat["tty_nr"] == 0
    assert set(proc_fds(pid)) >= {0, 1, 2} and proc_fds(pid)[0] == "/dev/null"
    assert lock_is_held(pidfile)
    os.kill(pid, signal.SIGTERM)  # a clean stop leaves no pidfile behind
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert not pidfile.exists()


def test_context_manager_failure_before_ready_is_reported(tmp_path):
    script = tmp_path / "selfd.py"
    script.write_text(SELF_DAEMONIZING)
    pidfile = tmp_path / "selfd.pid"
    out = subprocess.run([sys.executable, str(script), str(pidfile), str(tmp_path / "p"),
                          "fail"], capture_output=True, text=True, env=clean_env(),
                         timeout=30)
    assert out.returncode == 3
    assert "RuntimeError: cannot load the configuration" in out.stderr
    assert not pidfile.exists()


# -- under a service manager: no detaching ------------------------------------------------------------
def test_under_systemd_without_notify_socket_it_execs_in_place(tmp_path):
    # INVOCATION_ID alone (Type=simple/exec): the shim's PID becomes the program's.
    pidfile = tmp_path / "fg.pid"
    proc = subprocess.Popen([*SHIM, "--pidfile", str(pidfile), "--", SLEEP, "300"],
                            env=clean_env(INVOCATION_ID="0123456789abcdef0123456789abcdef"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while proc_exe(proc.pid) != os.path.realpath(SLEEP) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc_exe(proc.pid) == os.path.realpath(SLEEP)
        assert pidfile_pid(pidfile) == proc.pid
        assert proc.poll() is None  # still running: it did not fork and exit
        assert proc_fds(proc.pid)[1].startswith("pipe:")  # stdout stays with the manager
        assert proc_environ(proc.pid)["INVOCATION_ID"] == "0123456789abcdef0123456789abcdef"
    finally:
        proc.kill()
        proc.communicate()


# -- the pidfile under contention ------------------------------------------------------------------
@pytest.mark.parametrize("existing", ["none", "stale"])
def test_concurrent_starts_exactly_one_wins(tmp_path, existing):
    """Many starters released at once on the same pidfile (absent, or stale): exactly one
    gets it, every other one is told who runs, and the file names the winner."""
    from inetd2systemd.daemon import pidfile as pidfiles

    path = tmp_path / "race.pid"
    if existing == "stale":
        path.write_text(f"{_dead_pid()}\n")
    gate_r, gate_w = os.pipe()
    result_r, result_w = os.pipe()
    children = []
    for _ in range(8):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(gate_w)
                os.read(gate_r, 1)  # every starter waits here until the gate opens
                try:
                    held = pidfiles.acquire(str(path))
                    os.write(result_w, f"W{os.getpid()}\n".encode())
                    time.sleep(0.5)  # hold it while the others try
                    held.release()
                except pidfiles.AlreadyRunning as exc:
                    os.write(result_w, f"L{exc.pid}\n".encode())
                code = 0
            finally:
                os._exit(code)
        children.append(pid)
    os.close(gate_r)
    os.close(result_w)
    time.sleep(0.1)
    os.close(gate_w)  # open the gate: EOF for all at once
    data = b""
    while chunk := os.read(result_r, 4096):
        data += chunk
    os.close(result_r)
    for pid in children:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    lines = data.decode().split()
    winners = [int(line[1:]) for line in lines if line[0] == "W"]
    losers = [line[1:] for line in lines if line[0] == "L"]
    assert len(lines) == 8 and len(winners) == 1, lines
    assert losers == [str(winners[0])] * 7, "a refused starter named the wrong process"
    assert not path.exists(), "the winner's release removes its pidfile"
    assert not list(tmp_path.glob(".*.tmp"))


def test_symlink_at_the_pidfile_path_is_refused_and_its_target_untouched(tmp_path):
    target = tmp_path / "precious"
    target.write_text("do not overwrite\n")
    pidfile = tmp_path / "link.pid"
    pidfile.symlink_to(target)
    out = shim("--pidfile", str(pidfile), "--", SLEEP, "300")
    assert out.returncode == 3
    assert "symbolic link" in out.stderr
    assert target.read_text() == "do not overwrite\n" and pidfile.is_symlink()


def test_final_process_dying_before_it_started_is_not_reported_as_started(tmp_path):
    # Killed before ready(), it never said why. That must not read as success.
    script = tmp_path / "dies.py"
    script.write_text(textwrap.dedent("""
        import os, signal, sys
        from inetd2systemd.daemon import Daemon, DaemonOptions
        with Daemon(DaemonOptions(pidfile=sys.argv[1], mode="detach"), wait_ready=True):
            os.kill(os.getpid(), signal.SIGKILL)
    """))
    pidfile = tmp_path / "dies.pid"
    out = subprocess.run([sys.executable, str(script), str(pidfile)], capture_output=True,
                         text=True, env=clean_env(), timeout=30)
    assert out.returncode == 3
    assert "the daemon exited before it started" in out.stderr


def test_a_program_that_outlives_the_ready_window_is_started(tmp_path, daemons):
    # Exits after 1 s: with the window off, only the exec counts, and it did succeed.
    pidfile = tmp_path / "late.pid"
    started = time.monotonic()
    out = shim("--ready-window", "0", "--pidfile", str(pidfile), "--", "/bin/sh", "-c",
               "sleep 1; exit 4")
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - started < 1, "with no window, the shim must not wait"
    daemons.append(pidfile_pid(pidfile))
    # The default window is waited for, and no longer: a program that runs on is started.
    started = time.monotonic()
    out = shim("--pidfile", str(tmp_path / "on.pid"), "--", SLEEP, "300")
    assert out.returncode == 0, out.stderr
    assert 0.5 <= time.monotonic() - started < 5
    daemons.append(pidfile_pid(tmp_path / "on.pid"))


# -- --status and --stop, as start-stop-daemon ------------------------------------------------------

def _situation(kind: str, tmp_path: Path, daemons: list[int]) -> Path:
    pidfile = tmp_path / f"{kind}.pid"
    if kind == "running":
        assert shim("--pidfile", str(pidfile), "--", SLEEP, "300").returncode == 0
        daemons.append(pidfile_pid(pidfile))
    elif kind == "stale":
        pidfile.write_text(f"{_dead_pid()}\n")
    return pidfile


@pytest.mark.parametrize("kind", ["absent", "stale", "running"])
def test_status_answers_as_start_stop_daemon_does(start_stop_daemon, tmp_path, daemons, kind):
    pidfile = _situation(kind, tmp_path, daemons)
    theirs = subprocess.run([start_stop_daemon, "--status", "--pidfile", str(pidfile)],
                            capture_output=True, timeout=30).returncode
    ours = shim("--status", "--pidfile", str(pidfile))
    assert theirs == {"absent": 3, "stale": 1, "running": 0}[kind]
    assert ours.returncode == theirs, ours.stdout + ours.stderr
    word = {"absent": "not running", "stale": "the pidfile remains", "running": "running as PID"}
    assert word[kind] in ours.stdout


@pytest.mark.parametrize("kind", ["absent", "stale", "running"])
@pytest.mark.parametrize("oknodo", [False, True])
def test_stop_answers_as_start_stop_daemon_does(start_stop_daemon, tmp_path, daemons, kind,
                                                oknodo):
    pidfile = _situation(kind, tmp_path, daemons)
    extra = ["--oknodo"] if oknodo else []
    target = pidfile
    if kind == "running":  # start-stop-daemon stops a second, identical daemon
        (tmp_path / "twin").mkdir()
        target = _situation("running", tmp_path / "twin", daemons)
    theirs = subprocess.run([start_stop_daemon, "--stop", "--pidfile", str(target), *extra],
                            capture_output=True, timeout=30)
    pid = pidfile_pid(pidfile) if kind == "running" else None
    ours = shim("--stop", "--pidfile", str(pidfile), *extra)
    assert theirs.returncode == (0 if kind == "running" or oknodo else 1)
    assert ours.returncode == theirs.returncode, ours.stdout + ours.stderr
    if kind == "running":
        _, status = os.waitpid(pid, 0)  # ours through the subreaper
        assert os.waitstatus_to_exitcode(status) == -signal.SIGTERM
    else:
        # start-stop-daemon leaves a stale pidfile; ours removes it (documented)
        assert not pidfile.exists()


def test_unlocked_pidfile_is_stale_whatever_live_pid_it_names(tmp_path):
    # start-stop-daemon believes the live PID (exit 0); a daemonize daemon holds its
    # lock for life, so an unlocked file is stale: a recycled PID is never signalled.
    pidfile = tmp_path / "recycled.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    assert shim("--status", "--pidfile", str(pidfile)).returncode == 1
    out = shim("--stop", "--pidfile", str(pidfile))
    assert out.returncode == 1 and "removed the stale pidfile" in out.stdout
    assert not pidfile.exists()


def test_stop_retry_follows_the_schedule(tmp_path, daemons):
    pidfile = tmp_path / "stubborn.pid"
    out = shim("--pidfile", str(pidfile), "--", "/bin/sh", "-c", "trap '' TERM; exec sleep 300")
    assert out.returncode == 0, out.stderr
    pid = pidfile_pid(pidfile)
    daemons.append(pid)
    started = time.monotonic()
    out = shim("--stop", "--pidfile", str(pidfile), "--retry", "TERM/1")
    assert out.returncode == 2, out.stderr  # still running at the end of the schedule
    assert 1 <= time.monotonic() - started < 10
    assert "still runs at the end of the schedule" in out.stderr
    assert proc_stat(pid)["state"] != "Z" and lock_is_held(pidfile)
    out = shim("--stop", "--pidfile", str(pidfile), "--retry", "1")  # TERM/1/KILL/1
    assert out.returncode == 0, out.stderr
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == -signal.SIGKILL
    assert not pidfile.exists()


def test_bad_stop_and_status_command_lines_are_bad_input(tmp_path):
    pidfile = str(tmp_path / "x.pid")
    assert shim("--stop").returncode == 2  # no --pidfile
    assert shim("--status", "--pidfile", pidfile, "--", SLEEP, "1").returncode == 2
    assert shim("--stop", "--pidfile", pidfile, "--retry", "TERM").returncode == 2
    assert shim("--stop", "--pidfile", pidfile, "--signal", "NOSUCH").returncode == 2
    assert shim("--status", "--stop", "--pidfile", pidfile).returncode == 2


def test_stop_refuses_a_pidfile_whose_process_does_not_hold_it(tmp_path, daemons):
    # Another user replaced the pidfile (in a directory they own) with one of their
    # own, locked by their own process and naming a victim: nothing may be signalled.
    pidfile = _situation("running", tmp_path, daemons)
    victim = subprocess.Popen([SLEEP, "300"])
    try:
        forged = tmp_path / "forged"
        forged.write_text(f"{victim.pid}\n")
        # -F: flock becomes the command (no child left behind when it is killed)
        holder_proc = subprocess.Popen(["flock", "-n", "-F", str(forged), SLEEP, "300"])
        try:
            deadline = time.monotonic() + 5
            while not lock_is_held(forged) and time.monotonic() < deadline:
                time.sleep(0.02)
            os.rename(forged, pidfile)
            status = shim("--status", "--pidfile", str(pidfile))
            assert status.returncode == 4, status.stdout
            assert f"PID {victim.pid} does not hold it" in status.stderr
            out = shim("--stop", "--pidfile", str(pidfile), "--signal", "KILL")
            assert out.returncode == 3
            assert "refusing to signal it" in out.stderr
            assert victim.poll() is None, "the victim was signalled"
        finally:
            holder_proc.kill()
            holder_proc.wait()
    finally:
        victim.kill()
        victim.wait()


WRITER = """\
import errno, os, sys, time
pidfile = os.path.realpath(sys.argv[1])
for fd in map(int, os.listdir("/proc/self/fd")):
    try:
        if os.readlink(f"/proc/self/fd/{fd}") != pidfile:
            continue
    except OSError:
        continue
    for attempt, act in (("write", lambda: os.write(fd, b"1\\n")),
                         ("ftruncate", lambda: os.ftruncate(fd, 0)),
                         ("reopen", lambda: os.open(f"/proc/self/fd/{fd}", os.O_WRONLY))):
        try:
            act()
            print(f"{attempt} fd {fd}: done", flush=True)
        except OSError as exc:
            print(f"{attempt} fd {fd}: {errno.errorcode[exc.errno]}", flush=True)
time.sleep(300)
"""


@pytest.fixture
def public_dir():
    """A directory every user can reach (pytest's own base is root's alone, 0700)."""
    path = Path(tempfile.mkdtemp(prefix="i2s-daemonize-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_daemon_running_as_another_user_cannot_rewrite_its_pidfile(public_dir, daemons,
                                                                     test_user):
    user, _ = test_user
    pidfile, log = public_dir / "nobody.pid", public_dir / "writer.log"
    (public_dir / "writer.py").write_text(WRITER)
    out = shim("--pidfile", str(pidfile), "--user", user.pw_name, "--stdout", str(log),
               "--stderr", str(log), "--", "/usr/bin/python3", "-S",
               str(public_dir / "writer.py"), str(pidfile))
    assert out.returncode == 0, out.stderr
    pid = pidfile_pid(pidfile)
    daemons.append(pid)
    deadline = time.monotonic() + 10
    while log.read_text().count("\n") < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert log.read_text().splitlines() == [
        f"write fd {LOCK_FD}: EBADF", f"ftruncate fd {LOCK_FD}: EINVAL",
        f"reopen fd {LOCK_FD}: EACCES"], "the daemon could write its own pidfile"
    assert pidfile.read_text() == f"{pid}\n" and lock_is_held(pidfile)
    assert shim("--status", "--pidfile", str(pidfile)).returncode == 0


@pytest.mark.parametrize("text, steps", [
    ("10", [("signal", 15), ("wait", 10), ("signal", 9), ("wait", 10)]),
    ("HUP/5/-9/2", [("signal", 1), ("wait", 5), ("signal", 9), ("wait", 2)]),
    ("-TERM/30/forever/KILL/5", [("signal", 15), ("wait", 30), ("forever", None),
                                 ("signal", 9), ("wait", 5)]),
])
def test_retry_schedules_read_as_start_stop_daemon_documents_them(text, steps):
    from inetd2systemd.daemon.control import parse_schedule
    assert list(parse_schedule(text, signal.SIGTERM)) == steps


@pytest.mark.parametrize("text", ["TERM", "x/5", "5/forever/forever/5", "TERM/-5x", ""])
def test_bad_retry_schedules_are_refused(text):
    from inetd2systemd.daemon.control import parse_schedule
    with pytest.raises(ValueError):
        parse_schedule(text, signal.SIGTERM)
