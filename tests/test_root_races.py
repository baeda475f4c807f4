"""Races against root-run paths: an attacker who owns a directory the command touches.

For each path a root-run command opens, creates, replaces or removes on behalf of a
daemon (daemonize --stdout/--stderr, the pidfile of daemonize and serve), an attacker
process running as `nobody` swaps symbolic links, directories and files in that
directory in a tight loop while the command runs hundreds of times. After every run,
root's own files (a precious file and a directory standing for /etc) must be exactly
as they were: owner, mode, contents, link count, and no new entry.

The runs go through the Python API (daemonize(), pidfile.acquire/release): the same
code the command line runs, without an interpreter start per run, so that a few
seconds give hundreds of tries. Needs root (setuid to nobody, chown).
"""

from __future__ import annotations

import ctypes
import mmap
import os
import pwd
import shutil
import signal
import struct
import tempfile
import time
from pathlib import Path

import pytest

from inetd2systemd.daemon import DaemonError, DaemonOptions, daemonize
from inetd2systemd.daemon import pidfile as pidfiles

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="root: an attacker running as nobody")
RUNS = 150
NOBODY = pwd.getpwnam("nobody")
PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture
def arena():
    """/tmp/i2s-race-X/{victim/precious, etc/shadow-like, attacker's/} with the modes a
    host would have: root's directories 0755, the attacker's directory theirs."""
    base = Path(tempfile.mkdtemp(prefix="i2s-race-"))
    base.chmod(0o755)
    etc = base / "etc"
    etc.mkdir(mode=0o755)
    precious = etc / "shadow"
    precious.write_text("root:$6$precious\n")
    precious.chmod(0o600)
    attacker = base / "attacker"
    attacker.mkdir(mode=0o755)
    os.chown(attacker, NOBODY.pw_uid, NOBODY.pw_gid)
    yield base, etc, precious, attacker
    shutil.rmtree(base, ignore_errors=True)


def snapshot(etc: Path) -> dict:
    """Everything about root's directory that an attack could change."""
    return {entry.name: (st.st_uid, st.st_gid, st.st_mode, st.st_nlink, entry.read_bytes())
            for entry in etc.iterdir() for st in [entry.lstat()]}


class Attacker:
    """A process running as nobody that runs `moves` over and over until stopped; the
    number of rounds it made is counted in shared memory (proof that it raced)."""

    def __init__(self, moves) -> None:
        self.rounds = mmap.mmap(-1, 8)
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.setgroups([])
                os.setgid(NOBODY.pw_gid)
                os.setuid(NOBODY.pw_uid)
                count = 0
                while True:
                    for move in moves:
                        try:
                            move()
                        except OSError:
                            pass
                    count += 1
                    self.rounds[:8] = struct.pack("Q", count)
            finally:
                os._exit(0)
        deadline = time.monotonic() + 10
        while not self.made() and time.monotonic() < deadline:
            time.sleep(0.001)  # the runs begin once the attacker is at work

    def made(self) -> int:
        return struct.unpack("Q", self.rounds[:8])[0]

    def stop(self) -> int:
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        return self.made()


def race(moves, one_run, etc: Path, *, runs: int, success: str,
         min_rounds: int = 200) -> dict[str, int]:
    """Run `one_run()` (which returns a word for what happened) at least `runs` times
    while an attacker makes `moves`, and on until the attacker has made `min_rounds`
    rounds and the runs have seen `success` and some other outcome (the race bit);
    after every run root's directory `etc` must be as it was."""
    before = snapshot(etc)
    outcomes: dict[str, int] = {}
    attack = Attacker(moves)
    deadline = time.monotonic() + 120

    def more() -> bool:
        return run < runs or attack.made() < min_rounds or success not in outcomes \
            or len(outcomes) < 2

    try:
        run = 0
        while more() and time.monotonic() < deadline:
            run += 1
            outcome = one_run()
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            assert snapshot(etc) == before, f"run {run}: root's files changed ({outcome})"
    finally:
        rounds = attack.stop()
    assert rounds >= min_rounds, f"the attacker made only {rounds} rounds: no race took place"
    assert success in outcomes and len(outcomes) > 1, f"the race never bit: {outcomes}"
    return outcomes


def swap_in(path: Path, make) -> None:
    """Put what `make(tmp)` creates at `path` in one rename (whatever was there goes)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    make(tmp)
    os.rename(tmp, path)


def remove(path: Path) -> None:
    try:
        os.unlink(path)
    except IsADirectoryError:
        for entry in os.listdir(path):
            os.unlink(path / entry)
        os.rmdir(path)


@pytest.fixture
def subreaper():
    """The daemons' double fork reparents them to us: reaped here, not leaked to init."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    yield
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    _reap()


def _reap() -> None:
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def _failure(exc: Exception) -> str:
    if isinstance(exc, pidfiles.PidFileError):
        return exc.strerror
    return str(exc).split(": ", 1)[-1]


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_daemonize_output_file_cannot_be_turned_into_a_root_file(arena, subreaper, stream):
    base, etc, precious, attacker = arena
    log = attacker / "out.log"
    logs_dir = attacker / "logs"  # the same for a directory on the way
    moves = [
        lambda: swap_in(log, lambda t: t.symlink_to(precious)),  # the reviewer's swap
        lambda: remove(log),
        lambda: os.link(precious, log),  # protected_hardlinks refuses it; tried anyway
        lambda: swap_in(log, lambda t: os.mkfifo(t)),
        lambda: remove(log),
        lambda: remove(logs_dir),  # a link cannot be renamed over a directory
        lambda: swap_in(logs_dir, lambda t: t.symlink_to(etc)),
        lambda: remove(logs_dir),
        lambda: logs_dir.mkdir(),
    ]
    turn = iter(range(1 << 30))

    def one_run() -> str:
        target = log if next(turn) % 2 else logs_dir / "out.log"
        try:
            daemonize(["/bin/echo", "written by the daemon"], DaemonOptions(
                user="nobody", mode="detach", ready_window=0, **{stream: str(target)}))
            return "started"
        except DaemonError as exc:
            return _failure(exc)
        finally:
            _reap()

    race(moves, one_run, etc, runs=RUNS, success="started")
    assert precious.read_text() == "root:$6$precious\n"


def test_pidfile_creation_and_removal_stay_in_the_directory_named(arena):
    base, etc, precious, attacker = arena
    (etc / "app.pid").write_text("1\n")  # a root file with the pidfile's name
    (etc / "app.pid").chmod(0o644)
    run_dir = attacker / "run"
    pidfile = run_dir / "app.pid"
    moves = [
        lambda: remove(run_dir),  # a link cannot be renamed over a directory
        lambda: swap_in(run_dir, lambda t: t.symlink_to(etc)),
        lambda: remove(run_dir),
        lambda: run_dir.mkdir(),
        lambda: swap_in(pidfile, lambda t: t.symlink_to(precious)),
        lambda: remove(pidfile),
        lambda: swap_in(pidfile, lambda t: t.write_text("1\n")),
    ]

    def one_run() -> str:
        try:
            held = pidfiles.acquire(str(pidfile))
        except (pidfiles.PidFileError, pidfiles.AlreadyRunning) as exc:  # and nothing else
            return _failure(exc)
        held.release()
        return "acquired"

    race(moves, one_run, etc, runs=RUNS, success="acquired")


def test_daemonize_pidfile_in_an_attackers_directory(arena, subreaper):
    base, etc, precious, attacker = arena
    pidfile = attacker / "d.pid"
    moves = [
        lambda: swap_in(pidfile, lambda t: t.symlink_to(precious)),
        lambda: remove(pidfile),
        lambda: swap_in(pidfile, lambda t: t.write_text("1\n")),
    ]

    def one_run() -> str:
        try:
            pid = daemonize(["/bin/sleep", "30"], DaemonOptions(
                pidfile=str(pidfile), user="nobody", mode="detach", ready_window=0))
        except DaemonError as exc:
            return _failure(exc)
        finally:
            _reap()
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return "started"

    race(moves, one_run, etc, runs=RUNS // 2, success="started")


def test_stop_removes_stale_pidfiles_only_in_the_directory_named(arena):
    # --stop removes a stale pidfile: never root's file of the same name elsewhere.
    from inetd2systemd.daemon import control

    base, etc, precious, attacker = arena
    (etc / "app.pid").write_text("1\n")  # unlocked: "stale" if it were the pidfile
    (etc / "app.pid").chmod(0o644)
    run_dir = attacker / "run"
    pidfile = run_dir / "app.pid"
    moves = [
        lambda: remove(run_dir),
        lambda: swap_in(run_dir, lambda t: t.symlink_to(etc)),
        lambda: remove(run_dir),
        lambda: run_dir.mkdir(),
        lambda: swap_in(pidfile, lambda t: t.write_text("1\n")),
        lambda: swap_in(pidfile, lambda t: t.symlink_to(etc / "app.pid")),
    ]

    def one_run() -> str:
        outcome = control.stop(str(pidfile))
        return outcome.message.split(": ", 1)[-1]

    race(moves, one_run, etc, runs=RUNS, success="not running; removed the stale pidfile")


def test_a_banner_read_as_root_never_reads_a_root_file_through_a_link(arena):
    # serve reads xinetd banners as root and sends them to any client: swapping the
    # banner for a link to a root file must never hand that file's bytes out.
    from inetd2systemd.daemon.safeopen import open_read

    base, etc, precious, attacker = arena
    banner = attacker / "banner.txt"
    moves = [
        lambda: swap_in(banner, lambda t: t.write_text("welcome\n")),
        lambda: swap_in(banner, lambda t: t.symlink_to(precious)),
        lambda: remove(banner),
        lambda: swap_in(banner, lambda t: os.mkfifo(t)),
    ]

    def one_run() -> str:
        try:
            with open(open_read(str(banner)), "rb") as f:
                data = f.read()
        except OSError as exc:
            return exc.strerror
        assert data == b"welcome\n", f"read {data!r} through a link"
        return "read"

    race(moves, one_run, etc, runs=RUNS * 4, success="read")


# -- convert -o / --root: the staging directory in a directory another user owns ---------------

def test_staged_unit_files_never_go_through_a_swapped_staging_directory(arena):
    """The units are written into a new staging directory, renamed into place at the end.
    Its parent belongs to the attacker (an -o directory, an image under --root), who
    swaps the empty staging directory for a link to root's directory before the first
    file is written: every write goes through a descriptor of the directory root made,
    so none lands in root's directory; a swap makes the run fail, or changes nothing."""
    from inetd2systemd.model import Family, Listen, Service, SocketType, Source
    from inetd2systemd.units.install import InstallError, write_units
    from inetd2systemd.units.writer import render

    base, etc, precious, attacker = arena
    services = [Service(name=f"svc{n}", id=f"svc{n}", source=Source("/etc/inetd.conf", n),
                        socket_type=SocketType.STREAM, protocol="tcp",
                        listens=(Listen(Family.DUAL, 7000 + n),), wait=False,
                        server="/bin/cat", argv=("cat",)) for n in range(1, 4)]
    units, _ = render(services)
    output = attacker / "units"

    def steal() -> None:
        for name in os.listdir(attacker):
            if name.startswith(".units."):
                os.rename(attacker / name, attacker / f"stolen{name}")
                (attacker / name).symlink_to(etc)

    moves = [steal, steal, steal, lambda: remove(output)]

    def one_run() -> str:
        for name in os.listdir(attacker):  # the last run's output (the attacker races us)
            path = attacker / name
            try:
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            except FileNotFoundError:
                pass
        try:
            write_units(units, output, durable=False)
        except InstallError as exc:
            return "refused: " + str(exc).split(": ", 2)[-1][:40]
        st = os.lstat(output)
        if not (os.path.isdir(output) and not os.path.islink(output)):
            return "removed after"
        assert st.st_uid == 0 and {u.name for u in units} <= set(os.listdir(output))
        return "written"

    outcomes = race(moves, one_run, etc, runs=RUNS, success="written")
    assert any(o.startswith("refused") for o in outcomes), outcomes
    assert precious.read_text() == "root:$6$precious\n"
