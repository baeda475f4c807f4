"""Helpers shared by the tests/test_syslog_*.py modules: the listener and rsyslog as
real processes on private sockets, and waiting for their output files."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from support import ROOT, wait_for

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable


def read_lines(path: Path) -> list[str]:
    try:
        return path.read_bytes().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return []


class Listener:
    """`inetd2systemd syslogd` as a user runs it, stderr kept in a file."""

    def __init__(self, directory: Path, config: str | None, listens: list[str],
                 extra: tuple[str, ...] = (), preexec_fn=None) -> None:
        self.directory = directory
        self.stderr_path = directory / f"syslogd-{time.monotonic_ns()}.err"
        argv = [PYTHON, "-m", "inetd2systemd", "syslogd"]
        if config is not None:
            conf = directory / "syslog.conf"
            conf.write_text(config)
            argv += ["--config", str(conf)]
        for spec in listens:
            argv += ["--listen", spec]
        argv += list(extra)
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS")}
        with self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         env=env, preexec_fn=preexec_fn)
        if not wait_for(lambda: "listening on" in self.stderr() or self.proc.poll() is not None):
            self.stop()
            raise RuntimeError(f"listener did not start: {self.stderr()}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"listener exited {self.proc.returncode}: {self.stderr()}")

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def status(self) -> str:
        """The counters line printed on SIGUSR1."""
        before = self.stderr().count("received ")
        self.signal(signal.SIGUSR1)
        wait_for(lambda: self.stderr().count("received ") > before, timeout=5)
        return [line for line in self.stderr().splitlines() if "received " in line][-1]

    def counters(self) -> dict[str, int]:
        """The SIGUSR1 status line as numbers: received, written, dropped, unselected,
        kernel (dropped by the kernel), connections (open now)."""
        text = self.status()
        names = {"received": r"received (\d+)", "written": r"written (\d+)",
                 "dropped": r"; dropped (\d+)", "unselected": r"not selected by any rule (\d+)",
                 "kernel": r"dropped by the kernel (\d+)", "connections": r"open connections (\d+)"}
        return {name: int(re.search(pattern, text)[1]) for name, pattern in names.items()}

    def rss_kb(self) -> int:
        """The listener's resident memory (VmRSS) in KiB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int:
        return terminate(self.proc)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and its key, made by openssl in `directory`."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=localhost",
                    "-days", "2", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def terminate(proc: subprocess.Popen) -> int:
    """SIGTERM (the daemon drains and exits), SIGKILL if it does not within 15 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


class Rsyslog:
    """The real rsyslogd (the path the `rsyslogd` fixture gives) on private ports, a
    private work directory, no /dev/log."""

    def __init__(self, rsyslogd: str, directory: Path, rules: str, udp_port: int | None = None,
                 tcp_port: int | None = None, extra: str = "") -> None:
        self.directory = directory
        work = directory / "rsyslog-work"
        work.mkdir(exist_ok=True)
        self.pidfile = directory / "rsyslog.pid"
        lines = [f'global(workDirectory="{work}")',
                 'module(load="imuxsock" SysSock.Use="off")']
        if udp_port:
            lines += ['module(load="imudp")', f'input(type="imudp" address="127.0.0.1" port="{udp_port}")']
        if tcp_port:
            lines += ['module(load="imtcp")', f'input(type="imtcp" address="127.0.0.1" port="{tcp_port}")']
        lines += [extra, rules]
        self.conf = directory / "rsyslog.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.log = directory / "rsyslog.out"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([rsyslogd, "-n", "-f", str(self.conf), "-i", str(self.pidfile)],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        ports = [p for p in (tcp_port,) if p]
        ok = wait_for(lambda: self.proc.poll() is not None or all(_accepts(p) for p in ports))
        if not ok or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"rsyslogd did not start: {self.log.read_text()}")
        if udp_port:
            time.sleep(0.3)  # imudp binds with the other inputs; no handshake to wait for

    def stop(self) -> None:
        terminate(self.proc)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def send_tcp(port: int, frames: list[bytes], octet: bool = False) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        if octet:
            s.sendall(b"".join(b"%d %s" % (len(f), f) for f in frames))
        else:
            s.sendall(b"".join(f + b"\n" for f in frames))


# -- the two roads of the file sinks (sinks.traditional_lines and parse + route) ------------

# Files for most PRIs, nothing for mail (mail.none), and local0 also forwarded, so
# some PRIs go to line sinks only, some nowhere and some to a sink that needs a Message.
ROAD_RULES = "*.*;mail.none\t-{dir}/all.log\nlocal0.*\t@127.0.0.1:9\n*.err\t{dir}/err.log\n"


def both_roads(tmp: Path, frames: list[bytes], transport: str,
               received: float = 1_700_000_000.0) -> dict[str, bytes]:
    """Deliver the frames through Router.deliver (the fast path where it applies) and
    through parse + route one by one; assert both wrote the same bytes, return them."""
    from inetd2systemd.syslog.message import parse
    from inetd2systemd.syslog.rules import parse_syslog_conf
    from inetd2systemd.syslog.sinks import Router

    routers = {}
    for name in ("fast", "general"):
        (tmp / name).mkdir(exist_ok=True)
        routers[name] = Router(parse_syslog_conf(ROAD_RULES.format(dir=tmp / name), "rules"))
    sender = "" if transport.startswith("unix") else "10.0.0.9"
    routers["fast"].deliver(frames, sender, transport, received)
    for frame in frames:
        routers["general"].route(parse(frame, sender, transport, received))
    written = {}
    for name, router in routers.items():
        router.close()
        written[name] = {p.name: p.read_bytes() for p in sorted((tmp / name).iterdir())}
    assert written["fast"] == written["general"]
    return written["fast"]


# -- running code as another user (no exec: the interpreter may live where they cannot reach)

def forked_as(user, function) -> int:
    """Fork a child that becomes `user` (a pwd entry) and runs function(); its pid."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(user.pw_gid)
            os.setgroups([])
            os.setuid(user.pw_uid)
            function()
        finally:
            os._exit(0)
    return pid


def outcome_as(user, function) -> str:
    """repr() of what function() returned as `user`, or the text of what it raised."""
    reader, writer = os.pipe()

    def run() -> None:
        try:
            outcome = repr(function())
        except Exception as exc:  # the outcome under test
            outcome = f"{type(exc).__name__}: {exc}"
        os.write(writer, outcome.encode())

    pid = forked_as(user, run)
    os.close(writer)
    with os.fdopen(reader, "rb") as f:
        outcome = f.read().decode()
    os.waitpid(pid, 0)
    return outcome
