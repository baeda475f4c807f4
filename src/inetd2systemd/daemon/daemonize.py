"""`inetd2systemd daemonize`: run a program as a proper SysV daemon, or not, under systemd.

Detached (no service manager): every step of daemon(7) "SysV Daemons", in its order.
The first child closes inherited fds, resets signal handlers and the signal mask,
calls setsid() and forks again; the grandchild (the final process, never a session
leader, so it can never reacquire a controlling terminal) sets the umask, changes
directory, points stdio at /dev/null or the given files, writes and locks the pidfile
(see pidfile.py), drops privileges (supplementary groups included) and execs the
program with a sanitized environment. The invoking process waits on a status pipe
(close-on-exec) and exits 0 only once the exec has succeeded; any failing step sends
its message and exit status back up the pipe instead. "Started" is never claimed for
a daemon that did not start.

Under systemd (NOTIFY_SOCKET or INVOCATION_ID in the environment) forking would make
the manager lose track of the program, so nothing is detached: stdio stays on the
journal and the program stays in the unit's session. With NOTIFY_SOCKET (Type=notify)
the shim forks once, waits for the exec to succeed through the same status pipe, then
sends MAINPID=<program> and READY=1 in one datagram and waits for the manager to have
read it (BARRIER=1) before exiting: the unit is "active" only once the program really
runs, and its MainPID is the program's. Sending READY=1 from the shim right before
exec() would be simpler but would claim readiness for a program that may fail to exec.
Without NOTIFY_SOCKET (Type=simple/exec) the shim execs in place.

Python API, for programs that daemonize themselves or start others:

    pid = daemonize(["/usr/sbin/in.tftpd", "-L"], DaemonOptions(pidfile="/run/t.pid"))

    with Daemon(DaemonOptions(pidfile="/run/me.pid"), wait_ready=True) as daemon:
        sock = bind_everything()
        daemon.ready()           # the invoking process exits 0 only now
        serve_forever(sock)

Exit statuses of the invoking process: 0 started, 1 already running (pidfile locked,
start-stop-daemon's "nothing done"), 2 bad input (unknown user or group, bad option),
3 a set-up step failed (chdir, stdout file, pidfile directory, setuid), 126 the program
cannot be executed, 127 it was not found.
"""

from __future__ import annotations

import errno
import gc
import grp
import os
import pwd
import resource
import select
import shutil
import signal
import sys
import syslog
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from ..errors import EXIT_ALREADY_RUNNING, EXIT_BAD_INPUT, EXIT_CANNOT_EXECUTE, EXIT_FAILED, \
    EXIT_NOT_FOUND, EXIT_OK
from . import pidfile as pidfiles
from . import safeopen

# Variables that tie a process to the session or manager that started it; a daemon
# outlives both (daemon(7) step 4). LISTEN_* are handed over explicitly, see _Plan.
SESSION_VARIABLES = frozenset({
    "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "INVOCATION_ID", "JOURNAL_STREAM",
    "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "MANAGERPID", "SYSTEMD_EXEC_PID",
    "TERM", "COLUMNS", "LINES", "TTY", "SSH_TTY", "SSH_CONNECTION", "SSH_CLIENT",
    "SSH_AUTH_SOCK", "SSH_AGENT_PID", "GPG_AGENT_INFO", "DISPLAY", "XAUTHORITY",
    "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "XDG_SESSION_ID", "XDG_RUNTIME_DIR",
    "XDG_SESSION_TYPE", "XDG_SESSION_CLASS", "XDG_VTNR", "XDG_SEAT", "TMUX", "TMUX_PANE",
    "STY", "WINDOW", "WINDOWID", "OLDPWD", "PROMPT_COMMAND", "PS1", "SHLVL", "_",
})
MANAGER_VARIABLES = ("NOTIFY_SOCKET", "INVOCATION_ID")
# Long enough for what makes a daemon quit at once (a missing library, a bad option, a
# configuration it refuses, even for a Python program), short enough for a boot script.
DEFAULT_READY_WINDOW = 0.5


class DaemonError(Exception):
    """The daemon did not start; `status` is the exit status the command reports."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DaemonOptions:
    pidfile: str | None = None
    user: str | None = None  # name or number; also sets HOME, USER, LOGNAME, SHELL
    group: str | None = None  # default: the user's primary group
    chdir: str = "/"
    # 022, not daemon(7)'s 0: a daemon that creates a log file with mode 0666 (as most
    # programs pass to open()) must not leave it world-writable.
    umask: int = 0o022
    stdout: str | None = None  # appended; default /dev/null (detached) or inherited
    stderr: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # set after sanitizing
    keep_fds: tuple[int, ...] = ()  # inherited fds (above 2) the daemon must keep
    mode: str = "auto"  # "auto": foreground under systemd; "detach"; "foreground"
    ident: str | None = None  # syslog identity; default: the program's name
    # A program that exits this soon after its exec did not start: reported as failed,
    # with its status. 0: "started" means the exec succeeded, nothing more.
    ready_window: float = DEFAULT_READY_WINDOW


def under_systemd(environ: Mapping[str, str] = os.environ) -> bool:
    """Started by a service manager that tracks us: then forking would be wrong."""
    return any(environ.get(name) for name in MANAGER_VARIABLES)


def daemonize(argv: Sequence[str], options: DaemonOptions = DaemonOptions()) -> int:
    """Start `argv` as a daemon and return its PID once its exec has succeeded.

    Raises DaemonError (message and exit status) when any step failed. Under systemd
    without NOTIFY_SOCKET (or with mode="foreground" and no NOTIFY_SOCKET) the calling
    process itself becomes the program: this function then does not return.
    """
    if not argv:
        raise DaemonError("no program given", EXIT_BAD_INPUT)
    plan = _Plan.make(options, list(argv))
    if plan.mode == "detach":
        return _start(plan, detach=True)
    if os.environ.get("NOTIFY_SOCKET"):
        pid = _start(plan, detach=False)
        _announce(pid)
        return pid
    _exec_in_place(plan)


class Daemon:
    """Context manager turning the current Python process into the daemon.

    On entry (detached mode) the invoking process waits and exits with the daemon's
    start status; the body runs in the final, detached process. With wait_ready=True
    "started" means that the body called ready() (bind sockets first, then ready());
    otherwise it means that entry completed. Under systemd nothing forks and ready()
    sends READY=1. On exit the pidfile is removed and its lock released.

    Call it early: fds not listed in keep_fds are closed, as are any the caller opened.
    """

    def __init__(self, options: DaemonOptions = DaemonOptions(), *, wait_ready: bool = False):
        self.options = options
        self.wait_ready = wait_ready
        self.pid: int | None = None
        self.pidfile: pidfiles.PidFile | None = None
        self._status_fd = -1
        self._plan: _Plan | None = None
        # Read now: the program may unset NOTIFY_SOCKET (so that its children do not
        # notify) before it calls ready().
        self._notify_address: str | None = None

    def __enter__(self) -> Daemon:
        plan = _Plan.make(self.options, None)
        self._plan = plan
        if plan.mode == "foreground":
            self._notify_address = os.environ.get("NOTIFY_SOCKET")
        if plan.mode == "detach":
            child, status_fd = _fork_with_pipe()
            if child != 0:
                try:
                    _wait_started(status_fd, child)
                except DaemonError as exc:
                    print_error(str(exc))
                    os._exit(exc.status)
                os._exit(EXIT_OK)
            self._status_fd = status_fd
            reporter = _Reporter(status_fd)
            _detach_or_report(plan, reporter)
        else:
            reporter = _Reporter(-1)
        try:
            self.pidfile = _become_daemon(plan, reporter, python=True)
        except _StepFailed as exc:
            reporter.fail(exc.message, exc.status)
        self.pid = os.getpid()
        if not self.wait_ready:
            self.ready()
        return self

    def ready(self, status: str | None = None) -> None:
        """Tell whoever waits (the invoking process, or systemd) that we are up."""
        if self._status_fd >= 0:
            _Reporter(self._status_fd).started()
            os.close(self._status_fd)
            self._status_fd = -1
        elif self._notify_address:
            from ..runtime.notify import Notifier

            with Notifier(self._notify_address) as notifier:
                notifier.ready(status)

    def log(self, message: str, priority: int = syslog.LOG_INFO) -> None:
        """The daemon's own messages go to syslog, with its identity and LOG_DAEMON."""
        syslog.syslog(priority, message)

    def __exit__(self, exc_type, exc, tb) -> None:
        # The pidfile goes first: when the invoking process hears of a failure, the
        # failed daemon has already left nothing behind.
        if self.pidfile is not None:
            self.pidfile.release()
            self.pidfile = None
        if exc is not None and self._status_fd >= 0:
            _Reporter(self._status_fd).fail(f"{exc_type.__name__}: {exc}", EXIT_FAILED,
                                            exit_now=False)
            os.close(self._status_fd)
            self._status_fd = -1


# -- the plan: everything that can be checked before forking ------------------------------
@dataclass(frozen=True)
class _Plan:
    options: DaemonOptions
    argv: list[str] | None  # None: the Python process itself becomes the daemon
    mode: str  # "detach" | "foreground"
    uid: int | None
    gid: int | None
    user_name: str | None  # for initgroups()
    env: dict[str, str]
    listen_fds: int  # LISTEN_FDS handed to us: kept, and LISTEN_PID rewritten
    chdir: str
    stdout: str | None
    stderr: str | None
    pidfile: str | None
    ident: str
    program_exe: str | None  # resolved program, to recognise it behind a stale pidfile

    @staticmethod
    def make(options: DaemonOptions, argv: list[str] | None) -> _Plan:
        if options.mode not in ("auto", "detach", "foreground"):
            raise DaemonError(f"unknown mode {options.mode!r}", EXIT_BAD_INPUT)
        if not 0 <= options.umask <= 0o777:
            raise DaemonError(f"umask {options.umask:o} is out of range", EXIT_BAD_INPUT)
        if not 0 <= options.ready_window <= 3600:
            raise DaemonError(f"ready window {options.ready_window:g} s is out of range",
                              EXIT_BAD_INPUT)
        mode = options.mode
        if mode == "auto":
            mode = "foreground" if under_systemd() else "detach"
        uid = gid = None
        user_name = None
        env = {k: v for k, v in os.environ.items() if k not in SESSION_VARIABLES}
        if mode == "foreground":  # the manager's variables are meant for the program
            env.update({k: os.environ[k] for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC",
                        "WATCHDOG_PID", "INVOCATION_ID", "JOURNAL_STREAM")
                        if k in os.environ})
        if options.user is not None:
            pw = _lookup_user(options.user)
            uid, gid, user_name = pw.pw_uid, pw.pw_gid, pw.pw_name
            env.update(HOME=pw.pw_dir, USER=pw.pw_name, LOGNAME=pw.pw_name,
                       SHELL=pw.pw_shell or "/bin/sh")
        if options.group is not None:
            gid = _lookup_group(options.group)
        listen_fds = 0
        if os.environ.get("LISTEN_PID") == str(os.getpid()):
            count = os.environ.get("LISTEN_FDS", "")
            listen_fds = int(count) if count.isdigit() else 0
            if listen_fds:
                env["LISTEN_FDS"] = count
                if "LISTEN_FDNAMES" in os.environ:
                    env["LISTEN_FDNAMES"] = os.environ["LISTEN_FDNAMES"]
        chdir = os.path.abspath(options.chdir)
        env["PWD"] = chdir
        for key, value in options.env.items():
            if not key or "=" in key or "\0" in key + value:
                raise DaemonError(f"bad environment variable {key!r}", EXIT_BAD_INPUT)
            env[key] = value
        program_exe = None
        if argv is not None:
            found = shutil.which(argv[0], path=env.get("PATH", os.defpath))
            program_exe = os.path.realpath(found) if found else None
            ident = options.ident or os.path.basename(argv[0])
        else:
            ident = options.ident or os.path.basename(sys.argv[0] or sys.executable)
        absolute = lambda p: os.path.abspath(p) if p else None  # noqa: E731
        return _Plan(options, argv, mode, uid, gid, user_name, env, listen_fds, chdir,
                     absolute(options.stdout), absolute(options.stderr),
                     absolute(options.pidfile), ident, program_exe)


def _lookup_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except KeyError:
        raise DaemonError(f"user {name!r} does not exist", EXIT_BAD_INPUT) from None


def _lookup_group(name: str) -> int:
    try:
        return grp.getgrgid(int(name)).gr_gid if name.isdigit() else grp.getgrnam(name).gr_gid
    except KeyError:
        raise DaemonError(f"group {name!r} does not exist", EXIT_BAD_INPUT) from None


# -- the status pipe ----------------------------------------------------------------------
# One line per message, each far below PIPE_BUF so that writes are atomic:
#   "P<pid>"            the final process exists, with this PID
#   "R"                 started: about to exec (exec mode) or ready() (Python mode)
#   "E<status> <text>"  failed; the writer exits with <status> right after
# EOF without "R" means the final process died before starting: never "started".
class _Reporter:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        # Detached with a ready window: the session leader waits on this pipe for the
        # program's exec (EOF); a byte here tells it that set-up failed instead.
        self.exec_fd = -1
        # Detached there is no terminal left: the shim's own messages go to syslog.
        # Under a manager stderr is the journal already; syslog would say it twice.
        self.syslog = False

    def _send(self, line: str) -> None:
        if self.fd >= 0:
            data = (line.replace("\n", " ")[:3000] + "\n").encode("utf-8", "replace")
            try:
                os.write(self.fd, data)
            except OSError:
                pass  # the invoking process is gone: nobody left to tell

    def pid(self, pid: int) -> None:
        self._send(f"P{pid}")

    def started(self) -> None:
        self._send("R")

    def fail(self, message: str, status: int, *, exit_now: bool = True) -> None:
        if self.exec_fd >= 0:
            try:
                os.write(self.exec_fd, b"F")
            except OSError:
                pass
        self._send(f"E{status} {message}")
        if self.fd < 0:  # no one waits on a pipe: stderr is all there is (the journal)
            print_error(message)
        if self.syslog:
            syslog.syslog(syslog.LOG_ERR, message)
        if exit_now:
            os._exit(status)


def _wait_started(read_fd: int, child: int | None) -> int:
    """Read the status pipe to EOF; the daemon's PID, or DaemonError."""
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(read_fd, 65536)
            except InterruptedError:
                continue
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
    if child is not None:
        _reap(child)
    pid, started, error = None, False, None
    for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
        if line.startswith("P") and line[1:].isdigit():
            pid = int(line[1:])
        elif line == "R":
            started = True
        elif line.startswith("E") and error is None:
            code, _, text = line[1:].partition(" ")
            error = DaemonError(text, int(code) if code.isdigit() else EXIT_FAILED)
    if error is not None:
        raise error
    if not started or pid is None:
        raise DaemonError("the daemon exited before it started", EXIT_FAILED)
    return pid


def _reap(pid: int) -> int:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue
        except ChildProcessError:
            return 0


def print_error(message: str) -> None:
    try:
        sys.stderr.write(f"inetd2systemd daemonize: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


# -- the steps ------------------------------------------------------------------------------
class _StepFailed(Exception):
    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _start(plan: _Plan, *, detach: bool) -> int:
    """Fork (twice when detaching), become the program in the child; the child's PID."""
    child, status_fd = _fork_with_pipe()
    if child != 0:
        # Detached, the child is the intermediate, which watches the program through the
        # ready window and exits: reap it. Else the child is the program itself, which
        # we watch here, and must not reap once it runs.
        pid = _wait_started(status_fd, child if detach else None)
        if not detach and plan.options.ready_window > 0:
            status = _exit_status_within(pid, plan.options.ready_window)
            if status is not None:
                _remove_stale_pidfile(plan)
                raise DaemonError(_early_exit_message(plan, status), EXIT_FAILED)
        return pid
    try:
        # Python objects of the caller whose fds we are about to close must not be
        # finalized (closing whatever reuses their numbers) before the exec.
        gc.disable()
        reporter = _Reporter(status_fd)
        if detach:
            _detach_or_report(plan, reporter)
        else:
            reporter.pid(os.getpid())
        try:
            _become_daemon(plan, reporter, python=False)
        except _StepFailed as exc:
            reporter.fail(exc.message, exc.status)
    except BaseException as exc:  # never let a forked child run on in the caller's code
        _Reporter(status_fd).fail(f"internal error: {exc!r}", EXIT_FAILED)
    os._exit(EXIT_FAILED)


def _fork_with_pipe(*, pipe: bool = True) -> tuple[int, int]:
    """fork() with a pipe from the child up to the parent: (child's PID, read end) in the
    parent, (0, write end) in the child, each side's other end closed; -1 without `pipe`.
    Both ends are close-on-exec, so EOF is how the child's exec (or its end) reports
    itself. Python's buffered output is flushed first, or both processes would write it."""
    read_fd, write_fd = os.pipe() if pipe else (-1, -1)
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    keep, other = (read_fd, write_fd) if child != 0 else (write_fd, read_fd)
    if other >= 0:
        os.close(other)
    return child, keep


def _exec_in_place(plan: _Plan) -> NoReturn:
    try:
        _become_daemon(plan, _Reporter(-1), python=False)
    except _StepFailed as exc:
        raise DaemonError(exc.message, exc.status) from None
    raise AssertionError("unreachable: _become_daemon execs or fails")


def _announce(pid: int) -> None:
    """Type=notify: hand MainPID to the program, and only then say READY=1."""
    from ..runtime.notify import Notifier

    with Notifier() as notifier:
        notifier.send(f"MAINPID={pid}", "READY=1")
        try:
            # Our exit must not reach the manager before this message: it would see
            # its main process exit before READY=1 and fail the unit.
            notifier.barrier(timeout=5.0)
        except (TimeoutError, OSError):
            pass


def _detach_or_report(plan: _Plan, reporter: _Reporter) -> None:
    """daemon(7) steps 1-8, run in the first child: on return we are the grandchild."""
    _close_inherited_fds(plan, keep={reporter.fd})
    _reset_signals(python=plan.argv is None)
    # Between setsid() and the second fork we are a session leader: a stray SIGHUP
    # (the old session's terminal hanging up) must not kill us in that window.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        os.setsid()
    except OSError as exc:
        reporter.fail(f"setsid failed: {exc.strerror}", EXIT_FAILED)
    watch = plan.argv is not None and plan.options.ready_window > 0
    # Closed by the program's exec (close-on-exec), or by the final process's end.
    child, exec_fd = _fork_with_pipe(pipe=watch)
    if child != 0:
        if watch:
            _watch_ready_window(plan, child, exec_fd, reporter)
        os._exit(EXIT_OK)  # the session leader goes; the daemon can never get a tty
    reporter.exec_fd = exec_fd
    reporter.pid(os.getpid())


def _watch_ready_window(plan: _Plan, child: int, exec_r: int, reporter: _Reporter) -> None:
    """In the session leader: from the program's exec on, give it the ready window; if
    it exits within it, report its status and leave no pidfile behind. A final process
    that failed has said so itself (a byte on the pipe): nothing to add then."""
    try:
        failed = os.read(exec_r, 1) != b""  # PEP 475: retried on EINTR
    finally:
        os.close(exec_r)
    if failed:
        return
    status = _exit_status_within(child, plan.options.ready_window)
    if status is not None:
        _remove_stale_pidfile(plan)
        syslog.openlog(plan.ident, syslog.LOG_PID, syslog.LOG_DAEMON)
        reporter.syslog = True  # detached: the program's "starting" line is there too
        reporter.fail(_early_exit_message(plan, status), EXIT_FAILED, exit_now=False)


def _exit_status_within(pid: int, seconds: float) -> int | None:
    """The wait status of child `pid` if it exits within `seconds`; else None (and it
    is left running, unreaped). A pidfd turns readable at its exit."""
    pidfd = os.pidfd_open(pid)
    try:
        select.select([pidfd], [], [], seconds)
    finally:
        os.close(pidfd)
    done, status = os.waitpid(pid, os.WNOHANG)
    return status if done else None


def _early_exit_message(plan: _Plan, status: int) -> str:
    assert plan.argv is not None
    if os.WIFSIGNALED(status):
        what = f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    else:
        what = f"exited with status {os.waitstatus_to_exitcode(status)}"
    message = f"{plan.argv[0]} {what} within {plan.options.ready_window:g} s of starting"
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        message += (": a daemon must keep running (run a program that forks into the "
                    "background in its foreground mode)")
    return message


def _remove_stale_pidfile(plan: _Plan) -> None:
    if plan.pidfile:
        try:
            pidfiles.remove_stale(plan.pidfile)
        except OSError:
            pass  # left stale: the next start takes it over


def _close_inherited_fds(plan: _Plan, keep: set[int]) -> None:
    keep = {fd for fd in keep | set(plan.options.keep_fds) if fd > 2}
    keep |= set(range(3, 3 + plan.listen_fds))
    low = 3
    high = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if high == resource.RLIM_INFINITY or high > 1 << 30:
        high = 1 << 30
    for fd in sorted(keep) + [high]:
        if fd > low:
            os.closerange(low, fd)  # close_range(2) underneath: cheap for huge ranges
        low = max(low, fd + 1)


def _reset_signals(*, python: bool) -> None:
    for signum in signal.valid_signals():
        if signum in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(signum, signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # reserved by the C library (SIGRTMIN..+2)
    if python:  # the interpreter's own expectations, as at its start-up
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # daemon(7): exit cleanly on SIGTERM, i.e. through the `with` block's exit,
        # which removes the pidfile. A program with its own loop installs its own.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _become_daemon(plan: _Plan, reporter: _Reporter, *, python: bool) -> pidfiles.PidFile | None:
    """The final process: steps 9-14, then exec (or return, for the Python API)."""
    opts = plan.options
    syslog.openlog(plan.ident, syslog.LOG_PID, syslog.LOG_DAEMON)
    reporter.syslog = plan.mode == "detach"
    if plan.mode == "foreground":
        _reset_signals(python=python)
    os.umask(opts.umask)
    try:
        os.chdir(plan.chdir)
    except OSError as exc:
        raise _StepFailed(f"cannot change directory to {plan.chdir}: {exc.strerror}")
    _redirect_stdio(plan)
    lock = _acquire_pidfile(plan, python) if plan.pidfile else None
    try:
        return _finish(plan, reporter, lock, python=python)
    except _StepFailed:
        if lock is not None:  # a daemon that did not start leaves no pidfile behind
            lock.release()
        raise


def _finish(plan: _Plan, reporter: _Reporter, lock: pidfiles.PidFile | None, *,
            python: bool) -> pidfiles.PidFile | None:
    opts = plan.options
    _drop_privileges(plan)
    env = dict(plan.env)
    if plan.listen_fds:
        env["LISTEN_PID"] = str(os.getpid())
    if "WATCHDOG_PID" in env:  # the watchdog duty follows MainPID to the program
        env["WATCHDOG_PID"] = str(os.getpid())
    if python:
        os.environ.clear()
        os.environ.update(env)
        if plan.mode == "detach":
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
        return lock
    assert plan.argv is not None
    if plan.mode == "detach":
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
    if lock is not None:
        lock.keep_across_exec(avoid={*range(3, 3 + plan.listen_fds), *opts.keep_fds})
    for fd in range(3, 3 + plan.listen_fds):
        os.set_inheritable(fd, True)
    for fd in opts.keep_fds:
        if fd > 2:
            os.set_inheritable(fd, True)
    if reporter.syslog:
        syslog.syslog(syslog.LOG_INFO, f"starting {' '.join(plan.argv)} as a daemon, "
                      f"pid {os.getpid()}")
    reporter.started()  # superseded by an "E" line should exec fail
    try:
        os.execvpe(plan.argv[0], plan.argv, env)
    except OSError as exc:
        status = EXIT_NOT_FOUND if exc.errno == errno.ENOENT else EXIT_CANNOT_EXECUTE
        raise _StepFailed(f"cannot execute {plan.argv[0]}: {exc.strerror}", status) from None


def _redirect_stdio(plan: _Plan) -> None:
    detached = plan.mode == "detach"
    if detached:
        null = os.open(os.devnull, os.O_RDWR | os.O_NOCTTY)
        os.dup2(null, 0)
    opened: dict[str, int] = {}
    for target, path in ((1, plan.stdout), (2, plan.stderr)):
        if path is None:
            if detached:
                os.dup2(null, target)
            continue
        if path not in opened:
            opened[path] = _open_log(path, plan)
        os.dup2(opened[path], target)
    for fd in opened.values():
        os.close(fd)
    if detached and null > 2:
        os.close(null)


def _open_log(path: str, plan: _Plan) -> int:
    # Created by root on behalf of the daemon: let the daemon reopen it later. Only a
    # file this open created, never one found there (safeopen: no links followed that
    # another user could have placed, regular files only).
    owner = None
    if plan.uid is not None and os.geteuid() == 0:
        owner = (plan.uid, plan.gid if plan.gid is not None else -1)
    try:
        return safeopen.open_append(path, owner=owner)  # mode 0666: the umask decides
    except OSError as exc:
        raise _StepFailed(f"cannot open {path}: {exc.strerror}") from None


def _acquire_pidfile(plan: _Plan, python: bool) -> pidfiles.PidFile:
    def is_ours(pid: int) -> bool:
        # An unlocked pidfile naming a live process: refuse only if that process runs
        # our program (someone started it without a lock); a recycled PID is foreign.
        try:
            exe = os.path.realpath(f"/proc/{pid}/exe", strict=True)
        except OSError:
            return False
        if python:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as a, open("/proc/self/cmdline", "rb") as b:
                    return a.read() == b.read()
            except OSError:
                return False
        return exe == plan.program_exe

    try:
        return pidfiles.acquire(plan.pidfile, is_ours=is_ours)
    except pidfiles.AlreadyRunning as exc:
        raise _StepFailed(str(exc), EXIT_ALREADY_RUNNING) from None
    except OSError as exc:
        raise _StepFailed(f"{exc.filename}: {exc.strerror}") from None


def _drop_privileges(plan: _Plan) -> None:
    if plan.uid is None and plan.gid is None:
        return
    gid = plan.gid if plan.gid is not None else os.getegid()
    try:
        if os.geteuid() == 0:
            if plan.user_name is not None:
                os.initgroups(plan.user_name, gid)  # the user's supplementary groups
            else:
                os.setgroups([])  # a group alone: root's own groups must not stay
        if os.getegid() != gid or os.getgid() != gid:
            os.setgid(gid)
        if plan.uid is not None and (os.geteuid() != plan.uid or os.getuid() != plan.uid):
            os.setuid(plan.uid)
    except OSError as exc:
        who = plan.user_name or plan.options.group
        raise _StepFailed(f"cannot switch to {who}: {exc.strerror}") from None
