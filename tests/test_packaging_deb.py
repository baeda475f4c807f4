"""The Debian package, as a Debian administrator meets it: `dpkg-buildpackage` from the
unpacked sdist gives inetd2systemd_*_all.deb, lintian finds nothing wrong with it, and
in a real systemd, `apt-get install ./inetd2systemd_*.deb` gives a syslog listener that
`systemctl start` brings up and `logger` reaches the journal through; a purge then
leaves nothing behind.

How a package is installed into a throw-away container whose /usr is the host's,
read-only (tests/systemd_container.py): systemd-nspawn mounts an overlay on each of /usr,
/etc and /var, with the host's directory as the read-only lower layer and an empty
directory of this test as the writable upper one. Inside, that is a whole Debian system
with its dpkg database (the host's, /var/lib/dpkg), its users and apt's configuration:
apt-get and dpkg run unchanged, maintainer scripts included. Everything the package
manager changes lands in the upper directories, so what a purge leaves behind is
exactly what is in them afterwards that was not there before the install. The host
is never changed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import packaging_support as dists

ROOT = dists.ROOT
PACKAGE = "inetd2systemd"
UNITS = ("inetd2systemd-syslogd.socket", "inetd2systemd-syslogd.service",
         "inetd2systemd-superserver.service", "inetd2systemd-rearm@.service")
OVERLAID = ("etc", "usr", "var")
# What the package manager keeps about its own work, whatever the package: logs, caches
# and its databases (which must no longer name the package: checked apart).
# (var/cache/man is man-db's index, which its trigger rebuilds.)
GENERATOR_LINK = "/etc/systemd/system-generators/inetd2systemd-generator"
PACKAGED_GENERATOR = "/usr/lib/systemd/system-generators/inetd2systemd-generator"
CLIENT = """
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30) as s:
        s.shutdown(socket.SHUT_WR)
        sys.stdout.write(s.makefile("rb").read().decode())
except ConnectionRefusedError:
    sys.stdout.write("refused")
"""
BOOKKEEPING = ("var/log/", "var/cache/apt/", "var/cache/debconf/", "var/cache/man/",
               "var/lib/apt/", "var/lib/dpkg/", "var/lib/PackageKit/")


def _contents(deb: Path) -> list[str]:
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], check=True,
                             capture_output=True, text=True).stdout
    return [line.split(None, 5)[5].removeprefix(".").split(" -> ")[0]
            for line in listing.splitlines()]


def test_dpkg_buildpackage_gives_an_all_architecture_package():
    deb, _ = dists.debian_package()
    assert deb.name.startswith(f"{PACKAGE}_") and deb.name.endswith("_all.deb")
    field = lambda name: subprocess.run(["dpkg-deb", "--field", str(deb), name], check=True,  # noqa: E731
                                        capture_output=True, text=True).stdout.strip()
    assert field("Architecture") == "all"
    assert field("Depends").startswith("python3:any (>= 3.11")
    assert field("Recommends") == "python3-systemd"


def test_the_package_installs_commands_units_generator_pages_completion_docs_examples():
    files = set(_contents(dists.debian_package()[0]))
    assert "/usr/bin/inetd2systemd" in files
    assert "/usr/lib/systemd/system-generators/inetd2systemd-generator" in files
    for unit in UNITS:
        assert f"/usr/lib/systemd/system/{unit}" in files
    assert "/usr/lib/python3/dist-packages/inetd2systemd/cli.py" in files
    for page in (ROOT / "man").glob("*.[18]"):
        assert f"/usr/share/man/man{page.suffix[1:]}/{page.name}.gz" in files
    assert "/usr/share/bash-completion/completions/inetd2systemd" in files
    assert "/usr/share/zsh/vendor-completions/_inetd2systemd" in files
    assert "/usr/share/doc/inetd2systemd/copyright" in files
    assert "/usr/share/doc/inetd2systemd/examples/inetd.conf" in files
    assert "/usr/share/doc/inetd2systemd/syslogd.md.gz" in files


def test_lintian_reports_no_error_and_no_warning():
    _, changes = dists.debian_package()
    proc = subprocess.run(["lintian", "--pedantic", str(changes)], capture_output=True, text=True)
    tags = [line for line in proc.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert tags == [], proc.stdout


# -- in a real systemd -------------------------------------------------------------------

@pytest.fixture(scope="module")
def host(nspawn):
    """A container with writable overlays on /usr, /etc and /var, and the package built;
    yields (container, the upper directories, the .deb's path inside)."""
    deb, _ = dists.debian_package()
    upper = Path(tempfile.mkdtemp(prefix="i2s-deb-overlay-"))
    for name in OVERLAID:
        (upper / name).mkdir()
    args = [f"--overlay=/{name}:{upper / name}:/{name}" for name in OVERLAID]
    args.append(f"--bind-ro={deb.parent}")
    container = None
    try:
        for attempt in (1, 2):  # a boot that fails is infrastructure: one more try
            container = nspawn("i2s-deb", nspawn_args=tuple(args), launcher=False)
            try:
                container.start()
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        yield container, upper, str(deb)
    finally:
        if container is not None:
            container.stop()
        shutil.rmtree(upper, ignore_errors=True)


def _files(upper: Path) -> set[str]:
    """Every non-directory in the upper layers, as a path relative to the root."""
    return {str(p.relative_to(upper)) for name in OVERLAID for p in (upper / name).rglob("*")
            if not p.is_dir()}


def _apt_get(container, *args: str):
    return container.run("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-y", "-q", *args,
                         timeout=300)


@pytest.fixture(scope="module")
def installed(host):
    container, upper, deb = host
    # This machine image forbids every service action to maintainer scripts (a Docker
    # style policy-rc.d that exits 101); a Debian system has none. Removed in the overlay.
    container.run("rm", "-f", "/usr/sbin/policy-rc.d")
    before = _files(upper)
    _apt_get(container, "install", deb)
    return container, upper, before


def test_apt_installs_the_units_disabled_and_starts_nothing(installed):
    container, _, _ = installed
    assert container.run("dpkg-query", "-W", "-f=${Status}", PACKAGE).stdout == "install ok installed"
    assert container.run("man", "-w", "inetd2systemd-syslogd").stdout.strip() == \
        "/usr/share/man/man8/inetd2systemd-syslogd.8.gz"
    # as installed, every command of the units exists, and each page of ours they name
    # in Documentation= (the superserver also names inetd(8), the legacy daemon's)
    verify = container.run("systemd-analyze", "verify", "--man=no",
                           *(f"/usr/lib/systemd/system/{unit}" for unit in UNITS), check=False)
    assert verify.returncode == 0, verify.stderr
    pages = {page for unit in UNITS for page in re.findall(
        r"man:(inetd2systemd[\w-]*)\((\d)\)", (ROOT / "units" / unit).read_text())}
    assert ("inetd2systemd-syslogd", "8") in pages
    for name, section in pages:
        container.run("man", "-w", section, name)
    for unit in ("inetd2systemd-syslogd.socket", "inetd2systemd-syslogd.service",
                 "inetd2systemd-superserver.service"):
        assert container.systemctl("is-enabled", unit, check=False).stdout.strip() == "disabled"
        assert container.systemctl("is-active", unit, check=False).stdout.strip() == "inactive"


def test_logger_reaches_the_journal_through_the_packaged_syslog_listener(installed):
    container, _, _ = installed
    container.systemctl("start", "inetd2systemd-syslogd.socket")
    container.run("logger", "--udp", "--server", "127.0.0.1", "--port", "514",
                  "-t", "deb-test", "over UDP")
    container.run("logger", "--tcp", "--octet-count", "--server", "127.0.0.1", "--port", "514",
                  "-t", "deb-test", "over TCP")
    container.run("logger", "--socket", "/run/inetd2systemd-syslogd/log", "-t", "deb-test",
                  "over the unix socket")

    def journal():
        lines = container.run("journalctl", "-t", "deb-test", "-o", "cat", check=False).stdout
        return sorted(lines.splitlines()) if len(lines.splitlines()) >= 3 else None

    assert container.wait_for(journal) == ["over TCP", "over UDP", "over the unix socket"]
    # The unit's bare `inetd2systemd` is the packaged program, found in /usr/bin.
    main_pid = container.show("inetd2systemd-syslogd.service", "MainPID")
    argv = container.run("cat", f"/proc/{main_pid}/cmdline").stdout.split("\0")
    assert argv[:3] == ["/usr/bin/python3", "/usr/bin/inetd2systemd", "syslogd"]


def test_generator_mode_is_off_until_enabled(installed):
    """The package puts the generator where systemd runs it; on a host whose
    administrator left an inetd.conf behind (its inetd disabled or removed), installing
    it must open no port. `inetd2systemd generator enable` switches it on, `disable` off."""
    container, _, _ = installed
    inetd = "/usr/bin/inetd2systemd"

    def ask(port: int) -> str:
        return container.run("python3", "-c", CLIENT, str(port), timeout=60).stdout

    container.write("/etc/inetd.conf",
                    "7777\tstream\ttcp\tnowait\tnobody\t/usr/bin/printf\tprintf deb-gen\n")
    try:
        container.systemctl("daemon-reload")
        assert container.show("7777.socket", "LoadState") == "not-found"
        assert ask(7777) == "refused"
        assert "generator mode: off" in container.run(inetd, "generator", "status",
                                                      check=False).stdout
        out = container.run(inetd, "generator", "enable", "--now", check=False, timeout=120)
        assert out.returncode == 0, out.stderr
        assert container.run("readlink", GENERATOR_LINK).stdout.strip() == PACKAGED_GENERATOR
        assert container.show("7777.socket", "FragmentPath") == \
            "/run/systemd/generator/7777.socket"
        assert container.show("7777.socket", "ActiveState") == "active"
        assert ask(7777) == "deb-gen"
        out = container.run(inetd, "generator", "disable", "--now", check=False, timeout=120)
        assert out.returncode == 0, out.stderr
        assert container.run("test", "-e", GENERATOR_LINK, check=False).returncode != 0
        assert container.show("7777.socket", "LoadState") == "not-found"
        assert ask(7777) == "refused"
    finally:  # as it was, for the purge below
        container.run("rm", "-f", "/etc/inetd.conf", GENERATOR_LINK)
        container.systemctl("daemon-reload", check=False)


def test_purge_leaves_nothing_behind(installed):
    container, upper, before = installed
    # As an administrator would have it: the listener enabled and running.
    container.systemctl("enable", "--now", "inetd2systemd-syslogd.socket")
    _apt_get(container, "purge", PACKAGE)

    for unit in ("inetd2systemd-syslogd.socket", "inetd2systemd-syslogd.service"):
        assert container.systemctl("is-active", unit, check=False).stdout.strip() == "inactive"
    assert container.systemctl("list-unit-files", "inetd2systemd*", "--no-legend",
                               check=False).stdout.strip() == ""
    assert container.run("man", "-w", "inetd2systemd", check=False).returncode != 0
    left = sorted(path for path in _files(upper) - before if not path.startswith(BOOKKEEPING))
    assert left == []
    assert not [path for path in _files(upper) if PACKAGE in path]
    for database in ("var/lib/dpkg/status", "var/lib/apt/extended_states"):
        text = (upper / database).read_text() if (upper / database).exists() else ""
        assert f"Package: {PACKAGE}\n" not in text, database
