"""Configuration readers: inetd.conf, xinetd, /etc/services, tcp_wrappers.

`load(paths)` is the one entry point the commands use: it reads each path with the
reader its content calls for (an inetd.conf, an xinetd.conf, or a directory read as an
xinetd.d tree; with format="inetd" a directory is an inetutils /etc/inetd.d) and
merges the results into one Configuration whose service ids are unique across files.
Services that would listen on the same address are reported and the later one is left
out, because only one of them could ever bind.

Bad input costs what it costs the daemon, not the whole reading: a bad line, attribute or
entry becomes an ERROR finding made by `bad_entry` (file, line and column, then what the
daemon does about it), the reader leaves out what the daemon leaves out and reads on, and
the command exits 1 with everything else converted. `ConfigError` escapes a reader only
when nothing can be read: a missing or unreadable file, a directory where a file is
expected, a file that is not a configuration (exit 2).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from ..errors import ConfigError
from ..model import (Code, Configuration, Family, Finding, Listen, Service, Severity,
                     SocketType, Source, free_id)
from .services import ServicesTable
from ..bulk import gc_paused

FORMATS = ("inetd", "xinetd")

# Every xinetd file has one of these words at the start of a line; an inetd.conf
# almost never does, and then the xinetd reader need not even be imported.
_XINETD_WORD = re.compile(r"^[ \t]*(service|defaults|include|includedir)\b",
                          re.MULTILINE | re.IGNORECASE)


def bad_entry(error: ConfigError, outcome: str, service: str | None = None, *, code: Code,
              severity: Severity = Severity.ERROR) -> Finding:
    """The ERROR finding for one bad line, attribute or entry, in place of stopping.

    `error` is what the reader would have raised (message, file, line, column); `outcome`
    says what the real daemon does about it, in its words ("xinetd ignores this
    attribute", "xinetd disables this service", "inetd skips this line"), so that the
    report tells the administrator what was running rather than what was refused. An
    ERROR when the entry is left out; a WARNING when it is converted without the line
    (the daemon ignored it too). `code`: Code.ENTRY_SKIPPED, LINE_IGNORED,
    DISABLED_BY_DAEMON or NO_ADDRESS, by what the daemon does.
    """
    where = Source(error.file or "<input>", error.line or 0, error.column or 0)
    return Finding(where, severity, f"{error.msg}: {outcome}", service, code=code)


def looks_like_xinetd(text: str) -> bool:
    """Whether text is xinetd syntax (the xinetd reader's own test, imported only when
    the text has one of xinetd's words)."""
    if not _XINETD_WORD.search(text):
        return False
    from .xinetd import looks_like_xinetd as xinetd_test

    return xinetd_test(text)


def open_regular(path: str | Path) -> tuple[str, tuple[int, int]]:
    """The text of a configuration file and its (device, inode). Only a regular file is
    read: opening never waits on a FIFO, and a device (/dev/zero) is never read. Raises
    OSError (errno 0 for "not a regular file", EISDIR for a directory)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY
    fd = os.open(path, flags)
    try:
        status = os.fstat(fd)
        if stat.S_ISDIR(status.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        if not stat.S_ISREG(status.st_mode):
            raise OSError(0, "not a regular file")
        with os.fdopen(fd, encoding="utf-8", errors="surrogateescape", newline="") as f:
            fd = -1
            return f.read(), (status.st_dev, status.st_ino)
    finally:
        if fd >= 0:
            os.close(fd)


def unreadable(exc: OSError | ValueError, path: str | Path) -> ConfigError:
    """The error for a path that cannot be read (exit 2), saying why."""
    return ConfigError(reason(exc), str(path), code=Code.UNREADABLE)


def reason(exc: OSError | ValueError) -> str:
    """Why a file could not be opened, in the words a message uses."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, ValueError):
        return "cannot read: the path cannot be opened"
    return f"cannot read: {exc.strerror or exc}"


def _is_dir(path: Path) -> bool:
    """Path.is_dir(), with a path that cannot be examined (a directory on the way that we
    may not search) said as the ConfigError it is, not a PermissionError."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except (OSError, ValueError) as exc:
        raise unreadable(exc, path) from None


def detect_format(path: Path) -> str:
    if _is_dir(path):
        return "xinetd"
    try:
        text, _ = open_regular(path)
    except (OSError, ValueError) as exc:
        raise unreadable(exc, path) from None
    return "xinetd" if looks_like_xinetd(text) else "inetd"


def read_one(path: str | Path, *, format: str | None = None, flavor: str = "openbsd",
             services: ServicesTable | None = None, include_disabled: bool = False,
             root: str | None = None) -> Configuration:
    """One path, read by the reader its content (or `format`) calls for; xinetd's
    absolute include paths are read under `root` (a host's tree) when given."""
    path = Path(path)
    if format is not None and format not in FORMATS:
        raise ConfigError(f"unknown format {format!r}: expected inetd or xinetd")
    kind = format or detect_format(path)
    if kind == "inetd":
        from .inetd import read_inetd
        if _is_dir(path):  # GNU inetutils' /etc/inetd.d: every file is an inetd.conf
            try:
                names = sorted(os.listdir(path))
            except OSError as exc:
                raise unreadable(exc, path) from None
            return merge(read_inetd(path / name, flavor=flavor, services=services,
                                    include_disabled=include_disabled)
                         for name in names
                         if not name.startswith(".") and not name.endswith("~")
                         and not _is_dir(path / name))
        return read_inetd(path, flavor=flavor, services=services,
                          include_disabled=include_disabled)
    from . import xinetd

    if _is_dir(path):
        return xinetd.read_xinetd_dir(path, services=services, include_disabled=include_disabled,
                                      root=root)
    return xinetd.read_xinetd(path, services=services, include_disabled=include_disabled,
                              root=root)


@gc_paused
def load(paths: str | Path | Iterable[str | Path], *, format: str | None = None,
         flavor: str = "openbsd", services: ServicesTable | None = None,
         include_disabled: bool = False, root: str | None = None) -> Configuration:
    """Read every path and merge: unique ids across files, address clashes reported."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    configurations = [read_one(p, format=format, flavor=flavor, services=services,
                               include_disabled=include_disabled, root=root) for p in paths]
    return merge(configurations)


def merge(configurations: Iterable[Configuration]) -> Configuration:
    kept: list[Service] = []
    findings: list[Finding] = []
    ids: set[str] = set()
    suffixes: dict[str, int] = {}
    # (protocol, socket type, port or unix path) -> services bound there: a clash can
    # only be among services sharing a key, which keeps merging linear.
    bound: dict[tuple, list[Service]] = {}
    for configuration in configurations:
        findings.extend(configuration.findings)
        for service in configuration.services:
            keys = {_bind_key(service, listen) for listen in service.listens}
            clash = None
            if not service.disabled:
                clash = next((other for key in keys for other in bound.get(key, ())
                              if same_address(service, other)), None)
            if clash is not None:
                findings.append(Finding(service.source, Severity.ERROR,
                                        f"listens where {clash.id} ({clash.source}) already does "
                                        f"({', '.join(map(str, service.listens))}); only one can "
                                        "bind, so this one is left out", service.id,
                                        code=Code.DUPLICATE))
                continue
            if service.id in ids:
                new_id = free_id(service.id, ids, suffixes)
                findings.append(Finding(service.source, Severity.INFO,
                                        f"id {service.id!r} is already used by another file's "
                                        f"service: renamed {new_id!r}", new_id,
                                        code=Code.ID_RENAMED))
                service = replace(service, id=new_id)
            ids.add(service.id)
            kept.append(service)
            if not service.disabled:
                for key in keys:
                    bound.setdefault(key, []).append(service)
    return Configuration(tuple(kept), tuple(findings))


def _bind_key(service: Service, listen: Listen) -> tuple:
    where = listen.host if listen.family is Family.UNIX else listen.port
    return service.protocol, service.socket_type, where


def _transport(service: Service) -> tuple[str, SocketType]:
    return service.protocol, service.socket_type


def same_address(a: Service, b: Service) -> bool:
    """Whether two services would bind the same port and transport (so one must fail)."""
    if _transport(a) != _transport(b):
        return False
    return any(_overlap(x, y) for x in a.listens for y in b.listens)


def _overlap(x: Listen, y: Listen) -> bool:
    if Family.UNIX in (x.family, y.family):
        return x.family is y.family and x.host == y.host
    if x.port != y.port:
        return False
    if x.host is not None and y.host is not None:
        return x.host == y.host
    # A wildcard takes every address of its families: a dual socket both.
    families = {Family.IPV4: {Family.IPV4}, Family.IPV6: {Family.IPV6},
                Family.DUAL: {Family.IPV4, Family.IPV6}}
    return bool(families[x.family] & families[y.family])
