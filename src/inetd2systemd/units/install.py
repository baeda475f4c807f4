"""Putting a rendered unit set on disk, all or nothing, handing it to systemd, and taking
it away again.

Three rules, from the design: nothing a user had is overwritten or lost (a unit file
that does not start with the writer's marker is foreign: it is only replaced with
`force`, and then kept beside as NAME.inetd2systemd-saved, which goes back in place when
our unit goes); nothing is half-written (every file is written to a temporary name,
flushed, and renamed into place only once all of them are ready; a new output directory
is built beside its final place and renamed as a whole); and what was installed can be
taken away (units.manifest records, per set of sources, what an install put in the
system unit directory: a later install removes what the sources no longer produce,
`uninstall` removes all of it).

Every change is planned as a list of `Step`s before the first one is made: a dry run
prints that list, a real run carries out the same list.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..config.trust import untrusted_way
from . import manifest as records
from .manifest import Manifest, ManifestError
from .writer import MARKER

SYSTEM_UNIT_DIR = "etc/systemd/system"
SAVED_SUFFIX = ".inetd2systemd-saved"  # not a unit suffix: systemd does not load it


class InstallError(RuntimeError):
    """Writing or activating units failed, or would have overwritten a foreign file."""


def is_ours(path: Path) -> bool:
    """Whether a unit file on disk was written by this suite (its first line says so).
    A symbolic link is never ours: only a file we wrote is."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False  # a directory, a FIFO: not a unit we wrote
        return os.read(fd, len(MARKER)) == MARKER.encode()
    except OSError:
        return False
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Step:
    """One change to the system, in the order it is made. `verb` is one of write,
    remove, restore, unlink, systemctl, record, forget; `target` a path (or systemctl's
    arguments); `why` says what it is for."""

    verb: str
    target: str
    why: str = ""
    data: object = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        if self.verb == "systemctl":
            return f"run systemctl {self.target}"
        return f"{self.verb} {self.target}" + (f": {self.why}" if self.why else "")

    def as_json(self) -> dict:
        return {"action": self.verb, "target": self.target, "why": self.why}


@dataclass(frozen=True)
class Plan:
    """What writing (or removing) a unit set would do, decided before any change."""

    directory: Path
    new: tuple[str, ...] = ()  # names not there yet
    changed: tuple[str, ...] = ()  # ours (or forced) with different text
    unchanged: tuple[str, ...] = ()
    foreign: tuple[str, ...] = ()  # there, not ours, different: refused without force
    stale: tuple[str, ...] = ()  # ours, no longer generated: removed
    forced: tuple[str, ...] = ()  # not ours, replaced because of force (kept as a copy)
    saved: tuple[str, ...] = ()  # the names of those copies, in the order of `forced`
    claimed: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (unit, the other install's sources)
    kept: tuple[str, ...] = ()  # recorded as ours, but no longer ours on disk: left alone
    restored: tuple[tuple[str, str], ...] = ()  # (unit, copy): the original goes back
    steps: tuple[Step, ...] = ()

    @property
    def written(self) -> tuple[str, ...]:
        return self.new + self.changed

    @property
    def refused(self) -> str | None:
        """Why this plan may not be carried out (without force), or None."""
        problems = []
        if self.foreign:
            problems.append(f"refusing to overwrite unit files that inetd2systemd did not "
                            f"write: {', '.join(self.foreign)}")
        for name, sources in self.claimed:
            problems.append(f"{name} is installed from {', '.join(sources)}, a different "
                            "conversion: refusing to take it over")
        if not problems:
            return None
        return f"{self.directory}: {'; '.join(problems)} (use --force to replace them)"


# -- planning ----------------------------------------------------------------------------

def plan(units: Sequence, directory: str | Path, *, force: bool = False,
         prune: bool = False) -> Plan:
    """What writing `units` into a directory of their own would do (`prune`: remove our
    units that the set no longer has). Raises InstallError when the directory cannot be
    examined (no permission to search or list it)."""
    directory = Path(directory)
    try:
        p = _compare(units, directory, force)
        stale: tuple[str, ...] = ()
        if prune and directory.is_dir():
            names = {unit.name for unit in units}
            stale = tuple(sorted(e.name for e in os.scandir(directory)
                                 if e.is_file(follow_symlinks=False) and e.name not in names
                                 and is_ours(directory / e.name)))
    except OSError as exc:
        raise InstallError(f"{exc.filename or directory}: {exc.strerror or exc}") from None
    p = replace(p, stale=stale)
    return replace(p, steps=_file_steps(p, why_stale="no longer produced"))


def _compare(units: Sequence, directory: Path, force: bool) -> Plan:
    new, changed, unchanged, foreign, forced, saved = [], [], [], [], [], []
    for unit in units:
        path = directory / unit.name
        if not _exists(path):
            new.append(unit.name)
        elif _same_text(path, unit.text):
            unchanged.append(unit.name)
        elif is_ours(path):
            changed.append(unit.name)
        elif force:
            changed.append(unit.name)
            forced.append(unit.name)
            saved.append(_copy_name(directory, unit.name, taken=saved))
        else:
            foreign.append(unit.name)
    return Plan(directory, tuple(new), tuple(changed), tuple(unchanged), tuple(foreign),
                forced=tuple(forced), saved=tuple(saved))


def _exists(path: Path) -> bool:
    """os.path.lexists, except that a directory we may not search is an error (said as
    such), not a file that is not there."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def _same_text(path: Path, text: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except PermissionError:
        raise  # a unit we may not read cannot be compared: the caller says so
    except OSError:
        return False  # a symbolic link, a FIFO: not our text
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        expected = text.encode("utf-8")
        with os.fdopen(fd, "rb") as f:
            fd = -1
            return f.read(len(expected) + 1) == expected
    finally:
        if fd >= 0:
            os.close(fd)


def _copy_name(directory: Path, name: str, taken: Iterable[str] = ()) -> str:
    """NAME.inetd2systemd-saved, or .2, .3, ... when that is taken already."""
    copy, n = f"{name}{SAVED_SUFFIX}", 1
    while os.path.lexists(directory / copy) or copy in taken:
        n += 1
        copy = f"{name}{SAVED_SUFFIX}.{n}"
    return copy


def _file_steps(p: Plan, *, why_stale: str) -> tuple[Step, ...]:
    d = p.directory
    copies = dict(zip(p.forced, p.saved))
    steps = [Step("write", str(d / name), "new") for name in p.new]
    for name in p.changed:
        why = (f"replaces a unit not written by inetd2systemd, kept as {copies[name]}"
               if name in copies else "changed")
        steps.append(Step("write", str(d / name), why))
    restored = dict(p.restored)
    for name in p.stale:
        if name in restored:
            steps.append(Step("restore", str(d / name),
                              f"{why_stale}; the file it replaced goes back ({restored[name]})",
                              data=restored[name]))
        else:
            steps.append(Step("remove", str(d / name), why_stale))
    return tuple(steps)


def plan_install(units: Sequence, *, sources: Sequence[str], root: str | Path = "/",
                 force: bool = False, start: Sequence[str] = ()) -> Plan:
    """What `convert --install` from `sources` (absolute paths) would do.

    The record of an earlier install from the same sources (or from some of them: they
    are now converted together) says which units were ours: those the sources no longer
    produce are stopped, disabled and removed, and a file one of them replaced goes back.
    A unit another install's record holds is left to that one. On the running system
    (root /) systemd is reloaded, the sockets in `start` enabled, changed ones restarted
    (a daemon-reload alone keeps the old listening socket) and the rest started.
    """
    root = Path(root)
    directory = _trusted(unit_directory(root))
    live = _is_live(root)
    sources = tuple(sorted(sources))
    try:
        found = records.read_all(root)
        p = _compare(units, directory, force)
        own = [m for m in found if set(m.sources) <= set(sources)]
        others = {name: m.sources for m in found if m not in own for name in m.units}
        names = {unit.name for unit in units}
        before = {name for m in own for name in m.units}
        saved = {k: v for m in own for k, v in m.saved.items()}
        claimed = tuple((u.name, others[u.name]) for u in units
                        if u.name in others and u.name not in before and u.service_id
                        and u.name not in p.unchanged)
        gone = sorted(before - names - set(others))
        stale = _removable(directory, gone)
        kept = tuple(n for n in gone if n not in stale and os.path.lexists(directory / n))
    except OSError as exc:
        raise InstallError(f"{exc.filename or directory}: {exc.strerror or exc}") from None
    restored = tuple((n, saved[n]) for n in stale
                     if n in saved and os.path.lexists(directory / saved[n]))
    if force:
        claimed = ()
    kept_saved = {n: c for n, c in saved.items() if n in names}
    kept_saved.update(zip(p.forced, p.saved))
    final = Manifest(sources, tuple(sorted(names)), kept_saved)
    p = replace(p, stale=stale, kept=kept, claimed=claimed, restored=restored)

    steps: list[Step] = []
    recorded = next((m for m in own if m.sources == sources), None)
    if p.written or p.stale:
        # Recorded before any unit is written: a run cut short leaves no unit of ours
        # that no record names.
        intent = Manifest(sources, tuple(sorted(names | set(stale))),
                          {**{n: saved[n] for n in stale if n in saved}, **kept_saved})
        if intent != recorded:
            steps.append(Step("record", str(records.path_of(root, intent)),
                              f"what is being installed from {', '.join(sources)}", intent))
            recorded = intent
    steps += _stop_steps(stale, live)
    steps += _file_steps(p, why_stale=f"no longer produced by {', '.join(sources)}")
    steps += _link_steps(directory, stale, live)
    if live:
        steps.append(Step("systemctl", "daemon-reload"))
        if start:
            steps.append(Step("systemctl", "enable " + " ".join(start)))
            restart = [n for n in start if n in p.changed]
            fresh = [n for n in start if n not in p.changed]
            if restart:
                steps.append(Step("systemctl", "restart " + " ".join(restart),
                                  "its file changed: a reload alone keeps the old socket"))
            if fresh:
                steps.append(Step("systemctl", "start " + " ".join(fresh)))
    if final != recorded:
        steps.append(Step("record", str(records.path_of(root, final)),
                          f"what is installed from {', '.join(sources)}", final))
    steps += [Step("forget", str(records.path_of(root, m)),
                   f"its units are now installed from {', '.join(sources)}", m)
              for m in own if m.sources != sources]
    return replace(p, steps=tuple(steps))


def plan_uninstall(*, sources: Sequence[str] | None = None, root: str | Path = "/") -> Plan:
    """What `convert --uninstall` would do: stop, disable and remove every unit installed
    from `sources` (None: from anything), put back the files they replaced, reload
    systemd and forget the records. A unit another install still holds stays."""
    root = Path(root)
    directory = _trusted(unit_directory(root))
    live = _is_live(root)
    try:
        found = records.read_all(root)
        wanted = tuple(sorted(sources)) if sources is not None else None
        chosen = [m for m in found if wanted is None or m.sources == wanted]
        others = {name for m in found if m not in chosen for name in m.units}
        listed = sorted({n for m in chosen for n in m.units} - others)
        stale = _removable(directory, listed)
        kept = tuple(n for n in listed if n not in stale and os.path.lexists(directory / n))
    except OSError as exc:
        raise InstallError(f"{exc.filename or directory}: {exc.strerror or exc}") from None
    saved = {k: v for m in chosen for k, v in m.saved.items()}
    restored = tuple((n, saved[n]) for n in stale
                     if n in saved and os.path.lexists(directory / saved[n]))
    p = Plan(directory, stale=stale, kept=kept, restored=restored)
    steps = list(_stop_steps(stale, live))
    steps += _file_steps(p, why_stale="uninstalled")
    steps += _link_steps(directory, stale, live)
    if live and stale:
        steps.append(Step("systemctl", "daemon-reload"))
    steps += [Step("forget", str(records.path_of(root, m)),
                   f"nothing is installed from {', '.join(m.sources)} any more", m)
              for m in chosen]
    return replace(p, steps=tuple(steps))


def _trusted(directory: Path) -> Path:
    """`directory`, once no user but root (or whoever runs this) could have put a link or
    swapped a directory anywhere on the way to it: under a --root another user owns, the
    writes, removals and restores below would otherwise follow that user's links into
    any directory of the host. Where it does not exist yet, the way to where it would be
    made is what is checked."""
    reason = untrusted_way(directory)
    if reason is not None:
        raise InstallError(f"{directory}: refusing to install or remove units there: {reason}")
    return directory


def _removable(directory: Path, names: Sequence[str]) -> tuple[str, ...]:
    """The names that are ours on disk and that nothing staying needs: a shared template
    (the re-arm one) stays while any other socket in the directory still names it in
    OnFailure=, such as one `import`'s install.sh put there."""
    ours = [n for n in names if is_ours(directory / n)]
    templates = {n: f"={n.partition('@')[0]}@" for n in ours if "@." in n}
    if not templates:
        return tuple(ours)
    going = set(ours)
    needed = set()
    for entry in os.scandir(directory):
        if entry.name.endswith(".socket") and entry.name not in going \
                and entry.is_file(follow_symlinks=False):
            try:
                text = Path(entry.path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            needed |= {n for n, ref in templates.items() if "OnFailure" + ref in text}
    return tuple(n for n in ours if n not in needed)


def _stop_steps(units: Sequence[str], live: bool) -> list[Step]:
    """Stop what listens: the sockets, and the services that hold a socket of their own
    (Accept=no). A connection's instance of a template (NAME@...service) is left to
    finish its connection, as inetd leaves its children when a line is removed."""
    if not live:
        return []
    sockets = [n for n in units if n.endswith(".socket")]
    running = [n for n in units if n.endswith(".service") and "@." not in n]
    steps = []
    if sockets or running:
        steps.append(Step("systemctl", "stop " + " ".join(sockets + running)))
    if sockets:
        steps.append(Step("systemctl", "disable " + " ".join(sockets)))
    return steps


def _link_steps(directory: Path, units: Sequence[str], live: bool) -> list[Step]:
    """Without a running systemd (an image under --root), what `systemctl disable` would
    remove: the units' links in the .wants/ and .requires/ directories."""
    if live or not units:
        return []
    wanted = set(units)
    steps = []
    try:
        holders = [e for e in os.scandir(directory) if e.is_dir(follow_symlinks=False)
                   and e.name.endswith((".wants", ".requires"))]
        for holder in sorted(holders, key=lambda e: e.name):
            for link in sorted(os.scandir(holder.path), key=lambda e: e.name):
                if link.name in wanted and link.is_symlink():
                    steps.append(Step("unlink", link.path, "the link that enabled it"))
    except OSError:
        pass  # nothing enabled there
    return steps


# -- carrying a plan out ------------------------------------------------------------------

def carry_out(p: Plan, units: Sequence = (), *, root: str | Path | None = None,
              durable: bool = True) -> Plan:
    """Make the changes `p.steps` lists, in order. Every file to write is prepared (and
    flushed, when `durable`) before the first change, so a full disk changes nothing.
    Raises InstallError; `p` must not be refused (p.refused is None)."""
    assert p.refused is None, p.refused
    directory = p.directory
    by_name = {unit.name: unit for unit in units}
    writes = [s for s in p.steps if s.verb == "write"]
    if writes and not directory.exists() and not any(s.verb != "write" for s in p.steps):
        _write_new_directory([by_name[Path(s.target).name] for s in writes], directory, durable)
        return p
    prepared: dict[str, Path] = {}
    try:
        try:
            if writes and not os.path.lexists(directory):
                directory.mkdir(parents=True)
            for step in writes:
                name = Path(step.target).name
                prepared[name] = write_temporary(directory, by_name[name].text)
            for name, copy in zip(p.forced, p.saved):
                shutil.copy2(directory / name, directory / copy, follow_symlinks=False)
            if prepared and durable:
                flush_filesystem(directory)
        except OSError as exc:  # nothing changed yet
            raise InstallError(f"{directory}: {exc.strerror or exc}") from None
        try:
            for step in p.steps:
                _carry_out(step, prepared, root)
            if durable and any(s.verb in ("write", "remove", "restore") for s in p.steps):
                _fsync_directory(directory)
        except OSError as exc:
            raise InstallError(f"{exc.filename or directory}: {exc.strerror or exc}") from None
    finally:
        for temporary in prepared.values():
            temporary.unlink(missing_ok=True)
    return p


def _carry_out(step: Step, prepared: dict[str, Path], root: str | Path | None) -> None:
    path = Path(step.target)
    if step.verb == "write":
        os.replace(prepared.pop(path.name), path)
    elif step.verb == "remove":
        if is_ours(path):  # checked again: it may have been replaced since the plan
            path.unlink(missing_ok=True)
    elif step.verb == "restore":
        if is_ours(path):
            os.replace(path.with_name(str(step.data)), path)
    elif step.verb == "unlink":
        if path.is_symlink():
            path.unlink()
    elif step.verb == "systemctl":
        try:
            systemctl(*step.target.split())
        except InstallError as exc:
            if step.target.startswith(("start ", "restart ")):
                raise InstallError(f"{exc}\nthe units are installed and enabled; a socket that "
                                   "cannot bind usually means inetd or xinetd still holds the "
                                   "port: stop it, then 'systemctl start' the sockets") from None
            raise
    elif step.verb == "record":
        assert root is not None
        records.write(root, step.data)  # type: ignore[arg-type]
    elif step.verb == "forget":
        assert root is not None
        records.remove(root, step.data)  # type: ignore[arg-type]
    else:
        raise AssertionError(step.verb)


def write_units(units: Sequence, directory: str | Path, *, force: bool = False,
                prune: bool = False, durable: bool = True) -> Plan:
    """Write units into a directory of their own, atomically; refuse foreign files
    unless force.

    prune: also remove units of ours that this set no longer has (an --output-dir
    holds one conversion). durable: flush the files to disk before the renames publish
    them, so a power cut never leaves an empty unit behind (a scratch output directory
    can skip the wait).
    """
    p = plan(units, directory, force=force, prune=prune)
    if p.refused:
        raise InstallError(p.refused)
    return carry_out(p, units, durable=durable)


def install(units: Sequence, *, sources: Sequence[str], root: str | Path = "/",
            force: bool = False, start: Sequence[str] = ()) -> Plan:
    """plan_install, then carry it out (see there)."""
    p = plan_install(units, sources=sources, root=root, force=force, start=start)
    check_installable(p, root)
    return carry_out(p, units, root=root)


def uninstall(*, sources: Sequence[str] | None = None, root: str | Path = "/") -> Plan:
    p = plan_uninstall(sources=sources, root=root)
    check_installable(p, root)
    return carry_out(p, root=root)


def check_installable(p: Plan, root: str | Path) -> None:
    """Raise InstallError when the plan may not be carried out: refused, or meant for a
    running systemd that is not there (checked before writing: files the running system
    cannot load are of no use, and the target must stay as it was)."""
    if p.refused:
        raise InstallError(p.refused)
    if _is_live(Path(root)) and not systemd_running() \
            and any(s.verb == "systemctl" for s in p.steps):
        raise InstallError("systemd is not running on this machine (no /run/systemd/system): "
                           "nothing changed; use --output-dir, or --root for an image")


def _write_new_directory(units: Sequence, directory: Path, durable: bool) -> None:
    """The units in a new directory of their own, published by one rename.

    The parent may belong to another user (--root, -o): that user could remove or swap
    the empty staging directory before the first file is written. Every write goes
    through a descriptor of the directory mkdtemp made (O_NOFOLLOW, checked to be root's
    own), so a swap can only make the rename publish something else, which is then
    refused; it never redirects a write."""
    parent = directory.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=parent))
        fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        made = os.fstat(fd)
    except OSError as exc:
        raise InstallError(f"{directory}: {exc.strerror or exc}") from None
    written: list[str] = []
    try:
        if made.st_uid != os.geteuid() or stat.S_IMODE(made.st_mode) != 0o700:
            raise InstallError(f"{directory}: the staging directory {staging} was replaced "
                               "by someone else's")
        for unit in units:
            _write_at(fd, unit.name, unit.text)
            written.append(unit.name)
        if durable:
            flush_filesystem(fd)
        os.fchmod(fd, 0o755)
        os.rename(staging, directory)
        if _identity(directory) != (made.st_dev, made.st_ino):
            raise InstallError(f"{directory}: the staging directory {staging} was replaced "
                               "before it was renamed into place")
        if durable:
            _fsync_directory(parent)
    except (OSError, InstallError) as exc:
        for name in written:  # only what this call made, inside its own directory
            try:
                os.unlink(name, dir_fd=fd)
            except OSError:
                pass
        for leftover in (staging, directory):
            if _identity(leftover) == (made.st_dev, made.st_ino):
                try:
                    os.rmdir(leftover)
                except OSError:
                    pass
        if isinstance(exc, InstallError):
            raise
        raise InstallError(f"{directory}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _write_at(directory_fd: int, name: str, text: str, mode: int = 0o644) -> None:
    """A new file `name` in the directory open as `directory_fd` (O_EXCL|O_NOFOLLOW: never
    through a link), its mode set on the descriptor."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 mode, dir_fd=directory_fd)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), mode)
        f.write(text)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = os.lstat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def write_temporary(directory: Path, text: str, mode: int = 0o644) -> Path:
    """A new file in `directory` (O_EXCL, so never through a link), its mode set on the
    descriptor: by path, a link that a user who can change `directory` swapped in
    meanwhile would make root chmod the file it points to."""
    fd, name = tempfile.mkstemp(prefix=".inetd2systemd.", suffix=".tmp", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), mode)
        f.write(text)
    return Path(name)


def flush_filesystem(directory: Path | int) -> None:
    """Get every file written so far onto the disk before the renames that publish them.

    One syncfs(2) of the target's file system instead of an fsync per file: a
    conversion of thousands of units otherwise spends seconds waiting on the disk.
    `directory` may be an open descriptor of it.
    """
    fd = directory if isinstance(directory, int) else os.open(directory, os.O_RDONLY)
    try:
        syncfs = _syncfs()
        if syncfs is None or syncfs(fd) != 0:
            os.sync()
    finally:
        if fd is not directory:
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


def _is_live(root: Path) -> bool:
    """Whether root is this machine's own (systemctl talks to its systemd)."""
    return root.resolve() == Path("/")


def systemctl(*args: str) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"systemctl {' '.join(args)}: {exc}") from None
    if result.returncode != 0:
        raise InstallError(f"systemctl {' '.join(args)} failed: "
                           f"{(result.stderr or result.stdout).strip()}")
    return result


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


__all__ = ["InstallError", "ManifestError", "Plan", "Step", "carry_out", "check_installable",
           "install", "installed_systemd_version", "is_ours", "plan", "plan_install",
           "plan_uninstall", "uninstall", "unit_directory", "write_units"]
