"""`inetd2systemd daemonize` under a real systemd 252 (booted in a container).

Under a service manager the shim must not detach: a Type=notify unit becomes active
only once the program really runs (READY=1 comes after its exec), and the unit's
MainPID is the program's, so `systemctl stop`, `status` and restarts act on it.
"""

from __future__ import annotations

import json
import sys

import pytest


SHIM = f"{sys.executable} -m inetd2systemd daemonize"


def unit(name: str, service: str) -> str:
    return f"[Unit]\nDescription=daemonize test {name}\n\n[Service]\n{service}\n"


def install(systemd, name: str, service: str) -> None:
    systemd.write(f"/etc/systemd/system/{name}", unit(name, service))
    systemd.systemctl("daemon-reload")


def comm(systemd, pid: str) -> str:
    return systemd.run("cat", f"/proc/{pid}/comm").stdout.strip()


def test_type_notify_unit_is_active_and_main_pid_is_the_program(systemd):
    install(systemd, "dz-notify.service",
            "Type=notify\nWatchdogSec=1h\n"
            f"ExecStart={SHIM} --pidfile /run/dz-notify.pid -- "
            "/bin/sh -c 'echo hello-from-the-program; exec sleep infinity'")
    systemd.systemctl("start", "dz-notify.service")  # returns once READY=1 arrived
    assert systemd.show("dz-notify.service", "ActiveState") == "active"
    assert systemd.show("dz-notify.service", "SubState") == "running"
    main = systemd.show("dz-notify.service", "MainPID")
    assert main != "0" and comm(systemd, main) == "sleep"
    assert systemd.run("cat", "/run/dz-notify.pid").stdout == f"{main}\n"
    environ = dict(item.partition("=")[::2] for item in systemd.run(
        "cat", f"/proc/{main}/environ").stdout.split("\0") if item)
    # The manager's variables reach the program, the watchdog duty with MainPID.
    assert environ["WATCHDOG_PID"] == main and environ["NOTIFY_SOCKET"]
    # The shim was the first main process and handed over (MAINPID=): it is gone.
    tasks = systemd.run("cat", "/sys/fs/cgroup/system.slice/dz-notify.service/cgroup.procs")
    assert tasks.stdout.split() == [main]
    # Not detached: the program's output reaches the journal.
    systemd.wait_for(lambda: "hello-from-the-program" in systemd.run(
        "journalctl", "-u", "dz-notify.service", "-o", "cat").stdout)
    journal = systemd.run("journalctl", "-u", "dz-notify.service", "-o", "cat").stdout
    assert "hello-from-the-program" in journal
    assert "Failed" not in journal, journal
    systemd.systemctl("stop", "dz-notify.service")
    assert systemd.show("dz-notify.service", "Result") == "success"
    # The lock died with the program; the file is left (stale), as with any SIGTERM,
    # and the next start takes it over.
    systemd.systemctl("start", "dz-notify.service")
    assert systemd.show("dz-notify.service", "ActiveState") == "active"
    systemd.systemctl("stop", "dz-notify.service")


def test_type_notify_program_crash_is_noticed_and_restarted(systemd):
    # systemd 252 logs "Supervising process N which is not our child" when MAINPID=
    # names the shim's child; the program is reparented to PID 1 when the shim exits,
    # so its death is still seen: Restart= must work.
    install(systemd, "dz-crash.service",
            "Type=notify\nRestart=on-failure\nRestartSec=100ms\n"
            f"ExecStart={SHIM} -- /bin/sleep infinity")
    systemd.systemctl("start", "dz-crash.service")
    first = systemd.show("dz-crash.service", "MainPID")
    systemd.run("kill", "-KILL", first)
    assert systemd.wait_for(lambda: systemd.show("dz-crash.service", "NRestarts") == "1")
    assert systemd.wait_for(
        lambda: systemd.show("dz-crash.service", "ActiveState") == "active"
        and systemd.show("dz-crash.service", "MainPID") not in ("0", first))
    assert comm(systemd, systemd.show("dz-crash.service", "MainPID")) == "sleep"
    systemd.systemctl("stop", "dz-crash.service")


def test_type_notify_unit_whose_program_cannot_start_never_becomes_active(systemd):
    install(systemd, "dz-broken.service",
            f"Type=notify\nExecStart={SHIM} -- /nonexistent/program")
    out = systemd.systemctl("start", "dz-broken.service", check=False)
    # READY=1 was never sent: the start job itself fails, `systemctl start` says so.
    assert out.returncode != 0
    assert systemd.show("dz-broken.service", "ActiveState") == "failed"
    assert systemd.show("dz-broken.service", "ExecMainStatus") == "127"
    journal = systemd.run("journalctl", "-u", "dz-broken.service", "-o", "cat").stdout
    assert "cannot execute /nonexistent/program" in journal


@pytest.mark.parametrize("unit_type", ["notify", "forking"])
def test_a_program_that_quits_at_once_fails_the_start(systemd, unit_type):
    # It did exec, then exited 5 within the ready window: not "started". For
    # Type=notify READY=1 is never sent; for Type=forking the shim exits 3.
    name = f"dz-quits-{unit_type}.service"
    detach = "--detach --pidfile /run/dz-quits.pid " if unit_type == "forking" else ""
    install(systemd, name, f"Type={unit_type}\n"
            + ("PIDFile=/run/dz-quits.pid\n" if unit_type == "forking" else "")
            + f"ExecStart={SHIM} {detach}-- /bin/sh -c 'exit 5'")
    out = systemd.systemctl("start", name, check=False)
    assert out.returncode != 0
    assert systemd.show(name, "ActiveState") == "failed"
    assert systemd.show(name, "Result") == "exit-code"  # the shim exited 3
    journal = systemd.run("journalctl", "-u", name, "-o", "cat").stdout
    assert "/bin/sh exited with status 5 within 0.5 s of starting" in journal, journal
    assert systemd.run("test", "-e", "/run/dz-quits.pid", check=False).returncode != 0


def test_type_exec_unit_runs_the_program_in_place(systemd):
    install(systemd, "dz-exec.service",
            f"Type=exec\nExecStart={SHIM} --umask 027 -- /bin/sleep infinity")
    systemd.systemctl("start", "dz-exec.service")
    main = systemd.show("dz-exec.service", "MainPID")
    # No fork at all: the process systemd started becomes the program (Type=exec
    # reports the shim's own exec, so wait for the shim's exec of the program).
    assert systemd.show("dz-exec.service", "ExecMainPID") == main
    assert systemd.wait_for(lambda: comm(systemd, main) == "sleep")
    status = systemd.run("cat", f"/proc/{main}/status").stdout
    assert "Umask:\t0027" in status
    systemd.systemctl("stop", "dz-exec.service")


def test_type_forking_unit_with_detach_finds_its_pidfile(systemd):
    # The pidfile exists before the shim exits, so systemd reads it at once (no
    # "PID file not readable (yet?)" race as with python-daemon).
    install(systemd, "dz-forking.service",
            "Type=forking\nPIDFile=/run/dz-forking.pid\n"
            f"ExecStart={SHIM} --detach --pidfile /run/dz-forking.pid -- /bin/sleep infinity")
    systemd.systemctl("start", "dz-forking.service")
    main = systemd.show("dz-forking.service", "MainPID")
    assert comm(systemd, main) == "sleep"
    assert systemd.run("cat", "/run/dz-forking.pid").stdout == f"{main}\n"
    journal = systemd.run("journalctl", "-u", "dz-forking.service", "-o", "cat").stdout
    assert "not readable" not in journal and "Failed to read PID" not in journal, journal
    systemd.systemctl("stop", "dz-forking.service")


def test_detached_shim_logs_to_syslog_with_the_program_identity(systemd):
    # Run from outside any unit (nsenter: no INVOCATION_ID), so it really detaches;
    # journald's /dev/log is the syslog daemon.
    env = ["env", "-u", "NOTIFY_SOCKET", "-u", "INVOCATION_ID"]
    ok = systemd.run(*env, *SHIM.split(), "--ident", "dz-logged", "--pidfile", "/run/dz.pid",
                     "--", "/bin/sleep", "300")
    assert ok.returncode == 0
    systemd.run("sh", "-c", "kill $(cat /run/dz.pid)")
    bad = systemd.run(*env, *SHIM.split(), "--", "/nonexistent/dz-missing", check=False)
    assert bad.returncode == 127
    assert "cannot execute /nonexistent/dz-missing" in bad.stderr
    quit_ = systemd.run(*env, *SHIM.split(), "--ident", "dz-quits", "--", "/bin/sh", "-c",
                        "exit 5", check=False)
    assert quit_.returncode == 3

    def entries(ident):
        out = systemd.run("journalctl", "-t", ident, "-o", "json", check=False).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    started = systemd.wait_for(lambda: entries("dz-logged"))
    assert started and "starting /bin/sleep 300 as a daemon" in started[0]["MESSAGE"]
    assert started[0]["SYSLOG_FACILITY"] == "3"  # LOG_DAEMON
    assert started[0]["PRIORITY"] == "6"
    def errors():
        return [e for e in entries("dz-missing") if e["PRIORITY"] == "3"]  # LOG_ERR

    failed = systemd.wait_for(errors)
    assert failed and "cannot execute /nonexistent/dz-missing" in failed[0]["MESSAGE"]
    assert failed[0]["SYSLOG_FACILITY"] == "3"
    # A program that quits within the ready window: the failure is in syslog too.
    quits = systemd.wait_for(lambda: [e for e in entries("dz-quits") if e["PRIORITY"] == "3"])
    assert quits and "/bin/sh exited with status 5 within 0.5 s" in quits[0]["MESSAGE"]


SELF_DAEMONIZING = """
import os, time
from inetd2systemd.daemon import Daemon, DaemonOptions
with Daemon(DaemonOptions(pidfile="/run/dz-self.pid"), wait_ready=True) as daemon:
    os.environ.pop("NOTIFY_SOCKET")  # as a program does for its children's sake
    time.sleep(0.3)  # a slow start-up: the unit must stay "activating" until ready()
    daemon.ready("serving")
    while True:
        time.sleep(60)
"""


def test_self_daemonizing_python_program_under_systemd_does_not_fork(systemd):
    systemd.write("/run/dz/selfd.py", SELF_DAEMONIZING)
    install(systemd, "dz-self.service",
            f"Type=notify\nExecStart={sys.executable} /run/dz/selfd.py")
    systemd.systemctl("start", "dz-self.service")
    assert systemd.show("dz-self.service", "ActiveState") == "active"
    assert systemd.show("dz-self.service", "StatusText") == "serving"
    main = systemd.show("dz-self.service", "MainPID")
    assert systemd.show("dz-self.service", "ExecMainPID") == main  # no fork at all
    assert systemd.run("cat", "/run/dz-self.pid").stdout == f"{main}\n"
    systemd.systemctl("stop", "dz-self.service")
    assert systemd.show("dz-self.service", "Result") == "success"
