"""The suite's own unit files (units/): they load cleanly and are hardened.

`systemd-analyze verify` runs offline on the host; `systemd-analyze security` needs the
units loaded by a running manager, so it runs inside the container's real systemd. The
scores measured here are the ones docs/units.md and the README give.
"""

from __future__ import annotations

import re

import pytest

from inetd2systemd.units import hardening
from inetd2systemd.units.writer import REARM_TEMPLATE, REARM_TEXT
from systemd_container import analyze_verify
from support import ROOT

UNITS = sorted(p for p in (ROOT / "units").iterdir() if p.suffix in (".service", ".socket"))
# A template is loaded (and scored) through an instance.
SERVICES = [p.name.replace("@.", "@60s-echo.") for p in UNITS if p.suffix == ".service"]

# The highest exposure each shipped service may have (systemd-analyze security, 0-10).
# The superserver runs arbitrary inetd.conf servers as their configured users, so it
# cannot be sandboxed like a daemon that needs nothing (see the comment in its unit).
MAX_EXPOSURE = {
    "inetd2systemd-superserver.service": 4.5,
    "inetd2systemd-syslogd.service": 1.0,
    "inetd2systemd-rearm@60s-echo.service": 1.0,
}


def test_there_are_units_to_check():
    names = {p.name for p in UNITS}
    assert "inetd2systemd-superserver.service" in names


def test_every_unit_passes_systemd_analyze_verify():
    out = analyze_verify("--man=no", *map(str, UNITS), timeout=120)
    assert out.returncode == 0, out.stderr
    # verify also prints warnings without failing: a shipped unit has none
    assert out.stderr.strip() == "", out.stderr


def test_each_unit_starts_with_a_comment_saying_what_it_is():
    for path in UNITS:
        assert path.read_text().startswith("# "), path.name


@pytest.fixture(scope="module")
def loaded(systemd):
    for path in UNITS:
        systemd.write(f"/etc/systemd/system/{path.name}", path.read_text())
    systemd.systemctl("daemon-reload")
    return systemd


def exposure(container, unit: str) -> float:
    out = container.run("systemd-analyze", "security", "--no-pager", unit).stdout
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
    assert match, out[-2000:]
    return float(match.group(1))


@pytest.mark.parametrize("unit", SERVICES)
def test_security_exposure_is_low(loaded, unit):
    score = exposure(loaded, unit)
    print(f"{unit}: exposure {score}")
    assert score <= MAX_EXPOSURE[unit], f"{unit}: {score}"


def test_the_superserver_takes_away_what_convert_harden_basic_does():
    """One definition of what no inetd service needs, for the shipped superserver and
    the generated units."""
    lines = (ROOT / "units" / "inetd2systemd-superserver.service").read_text().splitlines()
    assert not [line for line in hardening.BASIC if line not in lines]


def test_the_shipped_rearm_template_is_the_one_convert_writes():
    assert (ROOT / "units" / REARM_TEMPLATE).read_text() == REARM_TEXT


def test_every_unit_loads_in_a_real_manager(loaded):
    for name in [*SERVICES, *(p.name for p in UNITS if p.suffix == ".socket")]:
        assert loaded.show(name, "LoadState") == "loaded", name
        assert loaded.show(name, "LoadError").strip() in ("", '"" ""'), name


ECHO_CLIENT = """
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    s.sendall(b"ping\\n")
    s.shutdown(socket.SHUT_WR)
    data = b""
    while chunk := s.recv(100):
        data += chunk
print(data.decode())
"""


def test_superserver_unit_serves_an_unchanged_inetd_conf(loaded):
    """The hardened unit still lets the superserver bind, switch users and serve, and
    its children chroot. The unit runs `inetd2systemd` found on systemd's search path,
    as installed in the container (tests/systemd_container.py)."""
    c = loaded
    c.write("/etc/services", "echo 7/tcp\necho 7/udp\n")
    c.write("/etc/inetd.conf", "echo stream tcp nowait root internal\n"
                               "7007 stream tcp nowait nobody /bin/cat cat\n"
                               "69 dgram udp4 wait root /usr/sbin/in.tftpd in.tftpd -s /srv/tftp\n")
    c.write("/srv/tftp/hello.txt", "chrooted\n")
    c.systemctl("start", "inetd2systemd-superserver.service")
    try:
        assert c.show("inetd2systemd-superserver.service", "ActiveState") == "active"
        assert c.python(ECHO_CLIENT, "7").stdout.strip() == "ping"  # internal, in-process
        assert c.python(ECHO_CLIENT, "7007").stdout.strip() == "ping"  # /bin/cat as nobody
        result = c.run("tftp", "-m", "binary", "127.0.0.1", "-c", "get", "hello.txt",
                       "/tmp/superserver-tftp.txt", check=False, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr  # tftpd chrooted
        assert c.run("cat", "/tmp/superserver-tftp.txt").stdout == "chrooted\n"
        c.systemctl("reload", "inetd2systemd-superserver.service")
        assert c.wait_for(lambda: c.python(ECHO_CLIENT, "7", check=False).stdout.strip() == "ping")
        assert c.show("inetd2systemd-superserver.service", "ActiveState") == "active"
    finally:
        c.systemctl("stop", "inetd2systemd-superserver.service", check=False)
