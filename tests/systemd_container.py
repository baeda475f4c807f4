"""A real systemd, booted in a throw-away container with systemd-nspawn.

The root is a volatile tmpfs over the host's read-only /usr, so units may be written
into /etc/systemd/system freely; the project tree, its virtual environment and the
Python it was made from are bound read-only at the same paths, so `inetd2systemd` runs
inside exactly as outside. The container has its own network namespace: its loopback
ports never collide with the host's or another test run's.

Units name the program `inetd2systemd` bare, and systemd looks it up in its fixed
search path. Inside, it is there as a system-wide install has it, where a sandboxed
service can see it: /usr/local/sbin/inetd2systemd runs the distribution's python3 on
this checkout's package, bound at /opt/inetd2systemd/src. Neither lives under /tmp,
/root or /home (where a checkout, its venv or pyenv's Python may be), which PrivateTmp=
and ProtectHome= hide. The container's /usr is the host's, read-only, so the launcher's
directory is bound over /usr/local/sbin (empty on Debian) from the host.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support import ROOT, wait_for

VENV = ROOT / ".venv"
INSTALLED_SOURCE = "/opt/inetd2systemd/src"  # the package, as the container's services see it
LAUNCHER_DIRECTORY = "/usr/local/sbin"  # first in systemd's search path for bare names
LAUNCHER = f"""#!/bin/sh
# inetd2systemd, as a system-wide install gives it: the distribution's python3 running
# this checkout's package (tests/systemd_container.py).
PYTHONPATH={INSTALLED_SOURCE} exec /usr/bin/python3 -c \
    'import sys; sys.argv[0] = "inetd2systemd"; from inetd2systemd.cli import main; sys.exit(main())' "$@"
"""


def unavailable_reason() -> str | None:
    """Why a container cannot be booted here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root to boot systemd-nspawn"
    if shutil.which("systemd-nspawn") is None:
        return "systemd-nspawn is not installed (scripts/setup.sh installs it)"
    return None


def _new_cgroup(name: str) -> Path | None:
    """A cgroup of its own for one container, beside this process's.

    systemd-nspawn puts the container under `payload/` of the cgroup it starts in; two
    containers started from one cgroup (two test runs at once) share a
    `payload/system.slice` and remove each other's unit cgroups, which breaks Accept=yes
    sockets ("sd-accept: Failed to join unit cgroup"). None where that cannot be done:
    the container then shares, which is harmless when it is the only one.
    """
    mount = next((line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
                  if line.split()[2:3] == ["cgroup2"]), None)
    own = [line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines()
           if line.startswith("0::")]
    if mount is None or not own:
        return None
    path = Path(mount) / own[0].lstrip("/") / f"i2s-test-{name}"
    try:
        path.mkdir()
    except OSError:
        return None
    return path


def _remove_cgroup(path: Path) -> None:
    for child in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            child.rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()


def _write_launcher(directory: Path, text: str) -> None:
    directory.chmod(0o755)
    (directory / "inetd2systemd").write_text(text)
    (directory / "inetd2systemd").chmod(0o755)


_host_launcher: Path | None = None


def analyze_verify(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """`systemd-analyze verify ARGS` as on a host with the suite installed system-wide.

    verify checks that every command of a unit exists, and finds a bare name as systemd
    does, in its fixed search path; this host has `inetd2systemd` only in the checkout's
    venv. So verify runs in a mount namespace of its own (as root; otherwise in a user
    namespace too, where the user is root), with a launcher of this checkout bound over
    /usr/local/sbin; the host itself is not changed.
    """
    global _host_launcher
    cmd = ["systemd-analyze", "verify", *args]
    if shutil.which("unshare"):
        if _host_launcher is None:
            _host_launcher = Path(tempfile.mkdtemp(prefix="i2s-verify-sbin-"))
            atexit.register(shutil.rmtree, _host_launcher, True)
            _write_launcher(_host_launcher,
                            f'#!/bin/sh\nexec {sys.executable} -m inetd2systemd "$@"\n')
        user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
        cmd = ["unshare", *user, "--mount", "--propagation", "private", "sh", "-c",
               f'mount --bind "$0" {LAUNCHER_DIRECTORY} && exec "$@"', str(_host_launcher), *cmd]
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run(cmd, **kwargs)


class SystemdContainer:
    def __init__(self, name: str = "i2s", nspawn_args: tuple[str, ...] = (),
                 launcher: bool = True) -> None:
        """nspawn_args: more systemd-nspawn options, e.g. `--bind-ro=HOST:PATH` to have
        a file in place before the container's systemd starts (its root is empty until
        then), or `--bind=/dev/kmsg`, which nspawn otherwise leaves out.
        launcher=False leaves /usr/local/sbin alone: the container then runs whichever
        inetd2systemd its /usr has (a test that installs the Debian package there)."""
        self.name = f"{name}-{os.getpid()}-{int(time.monotonic() * 1000) % 100000}"
        self.nspawn_args = tuple(nspawn_args)
        self.with_launcher = launcher
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None  # the container's PID 1, as seen from the host
        self.log = Path(f"/tmp/{self.name}.boot.log")
        self.cgroup: Path | None = None
        self.launcher: Path | None = None  # host directory bound at LAUNCHER_DIRECTORY

    # -- lifecycle --------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> "SystemdContainer":
        binds = {str(ROOT), sys.base_prefix, os.path.realpath(sys.prefix)}
        if VENV.exists():
            binds.add(str(VENV))
        cmd = ["systemd-nspawn", "-D", "/", "--volatile=yes", "-M", self.name, "-b",
               "--register=no", "--keep-unit", "--quiet", "--private-network",
               "--capability=all", "--system-call-filter=bpf"]
        cmd += [f"--bind-ro={b}" for b in sorted(binds) if b != "/" and not b.startswith("/usr")]
        if self.with_launcher:
            self.launcher = Path(tempfile.mkdtemp(prefix=f"{self.name}-sbin-"))
            _write_launcher(self.launcher, LAUNCHER)
            cmd += [f"--bind-ro={ROOT / 'src'}:{INSTALLED_SOURCE}",
                    f"--bind-ro={self.launcher}:{LAUNCHER_DIRECTORY}"]
        cmd += self.nspawn_args
        cmd += ["--", "systemd.firstboot=off", "systemd.unit=basic.target"]
        env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
        self.cgroup = _new_cgroup(self.name)
        procs = str(self.cgroup / "cgroup.procs") if self.cgroup else None

        def enter_cgroup() -> None:
            if procs:
                with open(procs, "w") as f:
                    f.write("0")

        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=env, start_new_session=True, preexec_fn=enter_cgroup)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"systemd-nspawn exited: {self.log.read_text()[-2000:]}")
            if self.pid is None:
                self.pid = self._child_pid()
            if self.pid is not None:
                state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
                if state in ("running", "degraded"):
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"container did not boot in {timeout}s: {self.log.read_text()[-2000:]}")

    def _child_pid(self) -> int | None:
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None
        self.pid = None
        if self.cgroup is not None:
            _remove_cgroup(self.cgroup)
            self.cgroup = None
        if self.launcher is not None:
            shutil.rmtree(self.launcher, ignore_errors=True)
            self.launcher = None

    def __enter__(self) -> "SystemdContainer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- inside -------------------------------------------------------------------------
    def run(self, *argv: str, check: bool = True, input: str | bytes | None = None,
            timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Run argv inside the container (all its namespaces), capturing text output."""
        text = not isinstance(input, bytes)
        return subprocess.run(["nsenter", "-t", str(self.pid), "-a", *argv], input=input,
                              capture_output=True, text=text, check=check, timeout=timeout)

    def python(self, code: str, *args: str, check: bool = True, timeout: float = 60.0):
        """Run Python code inside, with the project's virtual environment."""
        return self.run(str(VENV / "bin" / "python"), "-c", code, *args, check=check, timeout=timeout)

    def write(self, path: str, text: str, mode: int = 0o644) -> None:
        self.run("sh", "-c", f'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod {mode:o} "$1"',
                 "sh", path, input=text)

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("systemctl", *args, check=check)

    def show(self, unit: str, prop: str) -> str:
        return self.systemctl("show", "-P", prop, unit).stdout.strip()

    def install_units(self, directory: str | Path, start: tuple[str, ...] = ()) -> None:
        """Copy every unit file of a host directory into /etc/systemd/system and reload."""
        for path in sorted(Path(directory).iterdir()):
            if path.is_file():
                self.write(f"/etc/systemd/system/{path.name}", path.read_text())
        self.systemctl("daemon-reload")
        for unit in start:
            self.systemctl("start", unit)

    def wait_for(self, predicate, timeout: float = 10.0, interval: float = 0.05):
        return wait_for(predicate, timeout, interval)


def start_all(containers: list[SystemdContainer], timeout: float = 60.0) -> list[SystemdContainer]:
    """Boot several containers at once (each in its own thread: a boot mostly waits).

    A boot that fails is tried once more, as the `systemd` fixture does; if one still
    fails, every container is stopped and the error says why."""
    from concurrent.futures import ThreadPoolExecutor

    def boot(index: int) -> SystemdContainer:
        try:
            return containers[index].start(timeout)
        except RuntimeError:
            containers[index] = SystemdContainer(containers[index].name.rsplit("-", 2)[0])
            return containers[index].start(timeout)

    with ThreadPoolExecutor(len(containers)) as pool:
        futures = [pool.submit(boot, i) for i in range(len(containers))]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        for container in containers:
            container.stop()
        raise RuntimeError("; ".join(str(e) for e in errors))
    return containers
