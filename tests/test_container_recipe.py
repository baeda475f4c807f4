"""The container recipe itself: a real systemd boots and sees the project's venv.

Every systemd-backed test builds on this; when it fails, the others' failures are noise.
"""

from systemd_container import VENV


def test_booted_systemd_runs_units_and_sees_the_venv(systemd):
    assert systemd.run("systemctl", "--version").stdout.startswith("systemd 25")
    systemd.write("/etc/systemd/system/hello.service",
                  "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
                  f"ExecStart={VENV}/bin/python -c 'import inetd2systemd'\n")
    systemd.systemctl("daemon-reload")
    systemd.systemctl("start", "hello.service")
    assert systemd.show("hello.service", "ActiveState") == "active"
