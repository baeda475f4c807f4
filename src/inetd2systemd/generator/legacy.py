"""Who else serves the files: the legacy daemons enabled for them, and the native units
that take precedence over generated ones.

Two processes must never fight for one port. When xinetd or an inetd is enabled to
start at boot, the file it reads stays its own and the generator emits nothing for it
(the administrator hands a file over by disabling the daemon); see docs/generator.md.

Enablement is read from the file system the way systemd itself decides at boot:
symlinks in /etc/systemd/system/*.wants/ (and *.requires/, and an Alias= made by
`systemctl enable`), a mask (a link to /dev/null) overriding them, and for a daemon with
only an /etc/init.d script, systemd-sysv-generator's rule: an S link in /etc/rc[2-5].d.
"""

from __future__ import annotations

import os
from collections import namedtuple

from .program import under

# The daemons that read each file, by the names of their units (and init scripts).
OWNERS: dict[str, tuple[str, ...]] = {
    "/etc/inetd.conf": ("openbsd-inetd", "inetutils-inetd", "inetd"),
    "/etc/xinetd.conf": ("xinetd",),
}

# Unit directories whose units take precedence over the generator's normal directory
# (systemd.generator(7): "generator" has lower priority than /etc but higher than /usr).
OVERRIDING_DIRECTORIES = ("/etc/systemd/system", "/run/systemd/system")
# Every directory a native unit may live in: systemd-sysv-generator leaves an init
# script alone when one of these has a unit of its name.
NATIVE_DIRECTORIES = OVERRIDING_DIRECTORIES + (
    "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
# The runlevels systemd-sysv-generator (252) maps to the targets of a normal boot:
# 2-4 multi-user.target, 5 graphical.target (1 is rescue).
BOOT_RUNLEVELS = ("2", "3", "4", "5")


# unit: "xinetd.service"; evidence: the path that says it is enabled
Owner = namedtuple("Owner", "unit evidence")


def owner(root: str, path: str) -> Owner | None:
    """The legacy daemon enabled to start at boot for the file `path`, or None."""
    for name in OWNERS.get(path, ()):
        evidence = enabled(root, name)
        if evidence:
            return Owner(f"{name}.service", evidence)
    return None


def enabled(root: str, name: str) -> str | None:
    """A path showing that NAME.service (or init script NAME) starts at boot, or None."""
    unit = f"{name}.service"
    system = under(root, "/etc/systemd/system")
    if _masked(root, unit):
        return None
    for directory in _dependency_directories(system):
        link = os.path.join(system, directory, unit)
        if os.path.lexists(link):
            return link
    alias = os.path.join(system, unit)
    if os.path.islink(alias):
        # `systemctl enable` links a unit's Alias= names (inetd.service for
        # openbsd-inetd.service); a link to a file of its own name is only `link`ed.
        target = os.path.basename(os.readlink(alias))
        if target != unit and target.endswith(".service"):
            return alias
    if native_unit(root, unit) is None and os.path.isfile(under(root, f"/etc/init.d/{name}")):
        return sysv_start_link(root, name)
    return None


def _masked(root: str, unit: str) -> bool:
    for directory in OVERRIDING_DIRECTORIES:
        path = os.path.join(under(root, directory), unit)
        try:
            if os.readlink(path) == "/dev/null":
                return True
        except OSError:
            continue
    return False


def _dependency_directories(system: str) -> list[str]:
    try:
        return [e.name for e in os.scandir(system)
                if e.name.endswith((".wants", ".requires")) and e.is_dir()]
    except OSError:
        return []


def native_unit(root: str, unit: str) -> str | None:
    for directory in NATIVE_DIRECTORIES:
        path = os.path.join(under(root, directory), unit)
        if os.path.lexists(path):
            return path
    return None


def sysv_start_link(root: str, name: str) -> str | None:
    """/etc/rcN.d/SNNname for a boot runlevel, as systemd-sysv-generator reads them."""
    for level in BOOT_RUNLEVELS:
        directory = under(root, f"/etc/rc{level}.d")
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        for entry in entries:
            if entry[:1] == "S" and entry[1:3].isdigit() and entry[3:] == name:
                return os.path.join(directory, entry)
    return None


def overriding_units(root: str) -> dict[str, str]:
    """unit name -> the native unit file (or mask) that takes precedence over a
    generated unit of that name (one directory listing each, not a lookup per unit)."""
    found: dict[str, str] = {}
    for directory in reversed(OVERRIDING_DIRECTORIES):  # the first listed wins
        path = under(root, directory)
        try:
            names = os.listdir(path)
        except OSError:
            continue
        found.update((name, f"{path}/{name}") for name in names)
    return found
