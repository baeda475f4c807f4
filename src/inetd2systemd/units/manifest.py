"""What `convert --install` put on a system: one record per set of sources.

The record is what makes the way back possible: a later install from the same sources
removes the units it no longer produces, and `--uninstall` removes them all and puts
back the files `--force` replaced. Because it decides which files root deletes and
which units it stops, it is only believed when nobody but root (or the user running
the command) could have written it: its directory and every directory above it are
checked as sshd's StrictModes checks a key file (config.trust), the record is opened
without following a link, and only a regular file that is ours is read. A record that
fails a check stops the command; a unit it names is still removed only when the file
itself says we wrote it.

ROOT/var/lib/inetd2systemd/installed/KEY.json, KEY a hash of the sources' absolute
paths:
    {"schema": 1, "sources": ["/etc/inetd.conf"], "units": ["echo-tcp.socket", ...],
     "saved": {"qotd.socket": "qotd.socket.inetd2systemd-saved"}}
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..config.trust import trusted_owners, untrusted_reason, untrusted_way

MANIFEST_DIR = "var/lib/inetd2systemd/installed"
SCHEMA = 1
# A unit file name as systemd takes it: no '/', not '.' or '..' (nothing outside the
# unit directory can be named), printable, at most 255 bytes.
_UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\@-]{1,255}")
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class ManifestError(OSError):
    """The record cannot be read, trusted or written."""


@dataclass(frozen=True)
class Manifest:
    sources: tuple[str, ...]  # absolute paths, sorted: the key
    units: tuple[str, ...] = ()  # unit file names in the unit directory
    saved: dict[str, str] = field(default_factory=dict)  # unit -> the copy of what it replaced

    @property
    def key(self) -> str:
        return key(self.sources)

    def to_json(self) -> str:
        return json.dumps({"schema": SCHEMA, "sources": list(self.sources),
                           "units": sorted(self.units), "saved": dict(sorted(self.saved.items()))},
                          indent=2) + "\n"


def key(sources: Iterable[str]) -> str:
    digest = hashlib.sha256("\0".join(sorted(sources)).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


def directory(root: str | Path) -> Path:
    return Path(root) / MANIFEST_DIR


def read_all(root: str | Path) -> list[Manifest]:
    """Every record under root, in key order; none when the directory does not exist."""
    where = directory(root)
    fd = _open_directory(where, create=False)
    if fd is None:
        return []
    try:
        names = sorted(n for n in os.listdir(fd) if n.endswith(".json") and not n.startswith("."))
        return [_read(fd, where / name) for name in names]
    finally:
        os.close(fd)


def write(root: str | Path, manifest: Manifest) -> Path:
    """Replace the record of manifest.sources, atomically (a temporary file, flushed,
    renamed over the old one)."""
    where = directory(root)
    fd = _open_directory(where, create=True)
    assert fd is not None
    name = f"{manifest.key}.json"
    temporary = f".{name}.{os.getpid()}.tmp"
    try:
        out = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                      | os.O_CLOEXEC, 0o644, dir_fd=fd)
        try:
            os.write(out, manifest.to_json().encode("utf-8", "surrogateescape"))
            os.fchmod(out, 0o644)
            os.fsync(out)
        finally:
            os.close(out)
        os.rename(temporary, name, src_dir_fd=fd, dst_dir_fd=fd)
        os.fsync(fd)
    except OSError as exc:
        try:
            os.unlink(temporary, dir_fd=fd)
        except OSError:
            pass
        raise ManifestError(exc.errno, exc.strerror, str(where / name)) from None
    finally:
        os.close(fd)
    return where / name


def remove(root: str | Path, manifest: Manifest) -> None:
    fd = _open_directory(directory(root), create=False)
    if fd is None:
        return
    try:
        os.unlink(f"{manifest.key}.json", dir_fd=fd)
        os.fsync(fd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ManifestError(exc.errno, exc.strerror,
                            str(directory(root) / f"{manifest.key}.json")) from None
    finally:
        os.close(fd)


def path_of(root: str | Path, manifest: Manifest) -> Path:
    return directory(root) / f"{manifest.key}.json"


def _open_directory(where: Path, *, create: bool) -> int | None:
    """A descriptor of the record directory, once nobody untrusted could have placed or
    changed anything on the way to it; None when it does not exist (and not create)."""
    reason = untrusted_way(where)  # before any directory is made on the way
    if reason is not None:
        raise ManifestError(errno.EPERM, f"refusing to trust the records of what was "
                            f"installed: {reason}", str(where))
    if create:
        try:
            os.makedirs(where, mode=0o755, exist_ok=True)
        except OSError as exc:
            raise ManifestError(exc.errno, exc.strerror, exc.filename or str(where)) from None
        reason = untrusted_reason(where)
        if reason is not None:
            raise ManifestError(errno.EPERM, f"refusing to trust the records of what was "
                                f"installed: {reason}", str(where))
    try:
        return os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        if create:
            raise ManifestError(errno.ENOENT, "vanished while being created", str(where)) from None
        return None
    except OSError as exc:
        raise ManifestError(exc.errno, exc.strerror, str(where)) from None


def _read(fd: int, path: Path) -> Manifest:
    try:
        handle = os.open(path.name, _OPEN, dir_fd=fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ManifestError(errno.ELOOP, "a symbolic link: refusing it", str(path)) from None
        raise ManifestError(exc.errno, exc.strerror, str(path)) from None
    try:
        st = os.fstat(handle)
        if not stat.S_ISREG(st.st_mode):
            raise ManifestError(errno.EINVAL, "not a regular file", str(path))
        if st.st_uid not in trusted_owners() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) \
                or st.st_nlink != 1:
            raise ManifestError(errno.EPERM, "refusing a record that others could have "
                                "written (it must be root's, mode 0644, with one link)", str(path))
        with os.fdopen(handle, "rb") as f:
            handle = -1
            data = f.read(1 << 24)
    finally:
        if handle >= 0:
            os.close(handle)
    try:
        return _parse(json.loads(data.decode("utf-8", "surrogateescape")))
    except (ValueError, TypeError, KeyError) as exc:
        raise ManifestError(errno.EINVAL, f"not a record of what was installed ({exc})",
                            str(path)) from None


def _parse(data: dict) -> Manifest:
    if data.get("schema") != SCHEMA:
        raise ValueError(f"schema {data.get('schema')!r}, expected {SCHEMA}")
    sources = tuple(str(s) for s in data["sources"])
    if not sources or not all(s.startswith("/") for s in sources):
        raise ValueError("sources must be absolute paths")
    units = tuple(data["units"])
    saved = dict(data.get("saved", {}))
    for name in (*units, *saved, *saved.values()):
        if not isinstance(name, str) or not _UNIT_NAME.fullmatch(name) or name in (".", ".."):
            raise ValueError(f"{name!r} is not a unit file name")
    return Manifest(tuple(sorted(sources)), units, saved)
