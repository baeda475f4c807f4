"""Putting a rendered unit set on disk, all or nothing, and handing it to systemd.

Two rules, from the design: nothing a user had is overwritten or lost (a unit file
that does not start with the writer's marker is foreign and is only replaced with
`force`), and nothing is half-written (every file is written to a temporary name,
flushed, and renamed into place only once all of them are ready; a new output
directory is built beside its final place and renamed as a whole).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .writer import MARKER

SYSTEM_UNIT_DIR = "etc/systemd/system"


class InstallError(RuntimeError):
    """Writing or activating units failed, or would have overwritten a foreign file."""


def is_ours(path: Path) -> bool:
    """Whether a unit file on disk was written by this suite (its first line says so)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            first = f.readline()
    except OSError:
        return False
    return first.startswith(MARKER)


@dataclass(frozen=True)
class Plan:
    """What writing a unit set into a directory would do, decided before any write."""

    directory: Path
    new: tuple[str, ...]  # names not there yet
    changed: tuple[str, ...]  # ours (or forced) with different text
    unchanged: tuple[str, ...]
    foreign: tuple[str, ...]  # there, not ours, different: refused without force
    stale: tuple[str, ...]  # ours, no longer generated (removed when pruning)
    forced: tuple[str, ...] = ()  # not ours, replaced because of force (kept as a copy)
    saved: tuple[str, ...] = ()  # after writing: the names of those copies

    @property
    def written(self) -> tuple[str, ...]:
        return self.new + self.changed


def plan(units: Sequence, directory: str | Path, *, force: bool = False,
         prune: bool = False) -> Plan:
    """What writing `units` into `directory` would do. Raises InstallError when the
    directory cannot be examined (no permission to search or list it)."""
    try:
        return _plan(units, Path(directory), force, prune)
    except OSError as exc:
        raise InstallError(f"{exc.filename or directory}: {exc.strerror or exc}") from None


def _plan(units: Sequence, directory: Path, force: bool, prune: bool) -> Plan:
    new, changed, unchanged, foreign, forced = [], [], [], [], []
    names = {unit.name for unit in units}
    for unit in units:
        path = directory / unit.name
        if not path.exists() and not path.is_symlink():
            new.append(unit.name)
            continue
        try:
            same = path.is_file() and path.read_text(encoding="utf-8") == unit.text
        except (OSError, UnicodeDecodeError):
            same = False
        if same:
            unchanged.append(unit.name)
        elif is_ours(path):
            changed.append(unit.name)
        elif force:
            changed.append(unit.name)
            forced.append(unit.name)
        else:
            foreign.append(unit.name)
    stale = []
    if prune and directory.is_dir():
        stale = sorted(p.name for p in directory.iterdir()
                       if p.is_file() and p.name not in names and is_ours(p))
    return Plan(directory, tuple(new), tuple(changed), tuple(unchanged), tuple(foreign),
                tuple(stale), tuple(forced))


def write_units(units: Sequence, directory: str | Path, *, force: bool = False,
                prune: bool = False, durable: bool = True) -> Plan:
    """Write units into directory atomically; refuse foreign files unless force.

    prune: also remove units of ours that this set no longer has (an --output-dir
    holds one conversion; /etc/systemd/system may hold several, so install does not).
    durable: flush the files to disk before the renames publish them, so a power cut
    never leaves an empty unit behind (the system unit directory needs it; a scratch
    output directory can skip the wait).
    """
    p = plan(units, directory, force=force, prune=prune)
    if p.foreign:
        raise InstallError(f"{p.directory}: refusing to overwrite unit files that inetd2systemd "
                           f"did not write: {', '.join(p.foreign)} (use --force to replace them)")
    directory = p.directory
    if not directory.exists():
        _write_new_directory(units, directory, durable)
        return p
    by_name = {unit.name: unit for unit in units}
    temporaries: list[tuple[Path, Path]] = []
    try:
        for name in p.written:
            temporaries.append((_write_temporary(directory, by_name[name].text), directory / name))
        saved = tuple(save_copy(directory / name).name for name in p.forced)
        if temporaries and durable:
            flush_filesystem(directory)
        for temporary, final in temporaries:
            os.replace(temporary, final)
        temporaries = []
        for name in p.stale:
            (directory / name).unlink(missing_ok=True)
        if durable:
            _fsync_directory(directory)
    except OSError as exc:
        raise InstallError(f"{directory}: {exc.strerror or exc}") from None
    finally:
        for temporary, _ in temporaries:
            temporary.unlink(missing_ok=True)
    return replace(p, saved=saved)


SAVED_SUFFIX = ".inetd2systemd-saved"  # not a unit suffix: systemd does not load it


def save_copy(path: Path) -> Path:
    """Keep a copy of a file --force is about to replace: NAME.inetd2systemd-saved[.N]."""
    backup = path.with_name(path.name + SAVED_SUFFIX)
    n = 1
    while backup.exists() or backup.is_symlink():
        n += 1
        backup = path.with_name(f"{path.name}{SAVED_SUFFIX}.{n}")
    shutil.copy2(path, backup, follow_symlinks=False)
    return backup


def _write_new_directory(units: Sequence, directory: Path, durable: bool) -> None:
    parent = directory.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=parent))
    except OSError as exc:
        raise InstallError(f"{directory}: {exc.strerror or exc}") from None
    try:
        for unit in units:
            (staging / unit.name).write_text(unit.text, encoding="utf-8")
        if durable:
            flush_filesystem(staging)
        staging.chmod(0o755)
        os.rename(staging, directory)
        if durable:
            _fsync_directory(parent)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise InstallError(f"{directory}: {exc.strerror or exc}") from None


def _write_temporary(directory: Path, text: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=".inetd2systemd.", suffix=".tmp", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(name, 0o644)
    return Path(name)


def flush_filesystem(directory: Path) -> None:
    """Get every file written so far onto the disk before the renames that publish them.

    One syncfs(2) of the target's file system instead of an fsync per file: a
    conversion of thousands of units otherwise spends seconds waiting on the disk.
    """
    fd = os.open(directory, os.O_RDONLY)
    try:
        syncfs = _syncfs()
        if syncfs is None or syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


@functools.cache
def _syncfs():
    """libc's syncfs(2), loaded on first use (ctypes is not free to import)."""
    try:
        import ctypes
        import ctypes.util
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unit_directory(root: str | Path = "/") -> Path:
    return Path(root) / SYSTEM_UNIT_DIR


def systemctl(*args: str) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"systemctl {' '.join(args)}: {exc}") from None
    if result.returncode != 0:
        raise InstallError(f"systemctl {' '.join(args)} failed: "
                           f"{(result.stderr or result.stdout).strip()}")
    return result


def install(units: Sequence, *, root: str | Path = "/", force: bool = False,
            start: Sequence[str] = ()) -> Plan:
    """Write units into ROOT/etc/systemd/system; on the running system reload systemd,
    enable the sockets in `start` and (re)start them.

    A socket whose file changed is restarted: a daemon-reload alone keeps the old
    listening socket (converter-reference.md section 3).
    """
    live = Path(root).resolve() == Path("/")
    if live and not systemd_running():
        # Checked before writing: files the running system cannot load are of no use,
        # and the target must stay as it was when the command fails.
        raise InstallError("systemd is not running on this machine (no /run/systemd/system): "
                           "nothing installed; use --output-dir, or --root for an image")
    p = write_units(units, unit_directory(root), force=force)
    if not live:
        return p  # an image or a mounted root: its own systemd reads the files at boot
    systemctl("daemon-reload")
    if start:
        systemctl("enable", *start)
        changed = [name for name in start if name in p.changed]
        fresh = [name for name in start if name not in p.changed]
        try:
            if changed:
                systemctl("restart", *changed)
            if fresh:
                systemctl("start", *fresh)
        except InstallError as exc:
            raise InstallError(f"{exc}\nthe units are installed and enabled; a socket that cannot "
                               "bind usually means inetd or xinetd still holds the port: stop "
                               "it, then 'systemctl start' the sockets") from None
    return p


def systemd_running() -> bool:
    """sd_booted(3): whether systemd is the init system here."""
    return Path("/run/systemd/system").is_dir()


def installed_systemd_version(default: int = 252) -> int:
    """The installed systemd's version (`systemctl --version`), or default."""
    try:
        out = subprocess.run(["systemctl", "--version"], capture_output=True, text=True,
                             timeout=10).stdout
        return int(out.split()[1])
    except (OSError, subprocess.TimeoutExpired, IndexError, ValueError):
        return default
