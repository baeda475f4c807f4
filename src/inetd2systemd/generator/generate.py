"""What the generator makes of a host's files: the units `convert` would write, the
sockets to link into sockets.target.wants/, and every reason something is left out.

`generate(root)` decides everything in memory; `write(generation, directory)` puts it on
disk. The generator program and `inetd2systemd generator status` share both halves, so
that status says exactly what the next daemon-reload does.

A bad line costs its own service only (the readers report it and read on). A file that
cannot be read, or even a bug that raises in the middle of a conversion, costs that
file or that service: the conversion is retried file by file and service by service,
because a generator that emits nothing stops every socket on the host.
"""

from __future__ import annotations

import os
from collections import namedtuple
from collections.abc import Callable
from dataclasses import replace

from ..config import load, merge
from ..config.services import ServicesTable, load_services
from ..convert.pipeline import Conversion, check_host, convert, merge_findings, sockets_to_start
from ..errors import ConfigError
from ..model import Code, Configuration, Finding, Service, Severity, Source
from ..units import escape
from ..units.writer import Unit, WriterOptions, render
from . import legacy
from .program import under

NAME = "inetd2systemd-generator"
CONFIG_FILES = ("/etc/inetd.conf", "/etc/xinetd.conf")
WANTS = "sockets.target.wants"


# Named tuples rather than dataclasses: making a dataclass costs ~4M instructions at
# import (its methods are generated and compiled), paid at every boot and reload.

class FileState(namedtuple("FileState", "path state reason", defaults=("",))):
    """path: as read (under the root); state: "read", "missing" or "legacy" (a legacy
    daemon is enabled for it); reason: why, for "legacy"."""

    __slots__ = ()


class Generation(namedtuple("Generation", "root files conversion units wanted shadowed")):
    """root; files: FileState each; conversion: the Conversion; units: to write, with the
    generator's SourcePath= and note; wanted: the sockets linked into
    sockets.target.wants/; shadowed: (unit, the native file that wins) each (the shared
    template every conversion ships, inetd2systemd-rearm@.service, is not listed: any
    copy of it does)."""

    __slots__ = ()

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.conversion.findings

    @property
    def notices(self) -> list[str]:
        """What the generator decided, beside the conversion's findings."""
        lines = [f"{f.path}: not read: {f.reason}" for f in self.files if f.state == "legacy"]
        lines += [f"{unit}: {path} takes precedence (a native unit of the same name wins): "
                  "the generated one is not written" for unit, path in self.shadowed]
        return lines


def generate(root: str = "/", *, options: WriterOptions | None = None) -> Generation:
    """Read the host's inetd.conf and xinetd.conf under root, as the generator does."""
    files: list[FileState] = []
    paths: list[str] = []
    for path in CONFIG_FILES:
        full = under(root, path)
        if not os.path.lexists(full):
            files.append(FileState(full, "missing"))
            continue
        owner = legacy.owner(root, path)
        if owner is not None:
            files.append(FileState(full, "legacy", f"{owner.unit} is enabled ({owner.evidence}) "
                                   "and serves it; disable it to hand the file to the "
                                   "generator"))
            continue
        files.append(FileState(full, "read"))
        paths.append(full)
    options = options or WriterOptions(systemd_version=systemd_version(root))
    conversion = robust_convert(paths, options, root)
    units, wanted, shadowed = [], [], []
    enabled = set(sockets_to_start(conversion.units, conversion.configuration.services))
    sources = {s.id: s.source.file for s in conversion.configuration.services}
    overriding = legacy.overriding_units(root)
    for unit in conversion.units:
        native = overriding.get(unit.name)
        if native is not None:
            if unit.service_id:
                shadowed.append((unit.name, native))
            continue
        units.append(annotate(unit, sources.get(unit.service_id)))
        if unit.name in enabled:
            wanted.append(unit.name)
    return Generation(root, tuple(files), conversion, tuple(units), tuple(wanted),
                      tuple(shadowed))


def annotate(unit: Unit, source: str | None) -> Unit:
    """The generator's additions: a note under the writer's marker line (whose `from
    FILE:LINE` `systemctl cat` shows), and SourcePath=, with which systemd says when the
    file changed since the last daemon-reload (systemd.generator(7))."""
    first, _, rest = unit.text.partition("\n")
    note = f"# {NAME}: rewritten at every boot and daemon-reload"
    if source is not None:  # else a unit all the services share (the re-arm template)
        note += f"; edit {escape.comment(source)}, not this file"
        if source[:1] == "/" and source.isprintable():
            rest = _after_description(rest, f"SourcePath={escape.value(source)}")
    return Unit(unit.name, f"{first}\n{note}\n{rest}", unit.service_id)


def _after_description(text: str, line: str) -> str:
    """text with line added to its [Unit] section, after Description=."""
    start = text.find("\n[Unit]\n")
    if start < 0:
        return text
    at = start + len("\n[Unit]\n")
    if text.startswith("Description=", at):
        at = text.find("\n", at) + 1 or len(text)
    return f"{text[:at]}{line}\n{text[at:]}"


def services_table(root: str) -> tuple[ServicesTable, list[Finding]]:
    path = under(root, "/etc/services")
    if not os.path.exists(path):
        return ServicesTable(source=path), []  # numeric ports only, as on a bare system
    try:
        return load_services(path), []
    except ConfigError as exc:
        return ServicesTable(source=path), [Finding(Source(path, 0), Severity.WARNING,
                                                    f"{exc.msg}: only numeric ports are known",
                                                    code=Code.UNREADABLE)]


def flavor(root: str) -> str:
    """The inetd.conf dialect: GNU inetutils' when its package left its defaults file
    (the rule `import` follows too), else Debian's openbsd-inetd."""
    return "inetutils" if os.path.exists(under(root, "/etc/default/inetutils-inetd")) \
        else "openbsd"


def robust_convert(paths: list[str], options: WriterOptions, root: str) -> Conversion:
    """convert(paths), exactly as `convert` runs it; should that raise, the same again
    file by file and service by service, keeping everything that does convert."""
    services, table_findings = services_table(root)
    config_root = None if root in ("", "/") else root
    kind = flavor(root)
    check = host_check(root)
    try:
        conversion = convert(paths, options, flavor=kind, services=services,
                             host_root=root, config_root=config_root, host_check=check)
    except Exception:  # noqa: BLE001 - a generator must emit every good service
        conversion = _piecewise(paths, options, check, services, kind, config_root)
    if table_findings:
        conversion = replace(conversion, findings=tuple(table_findings) + conversion.findings)
    return conversion


def host_check(root: str) -> Callable[[Configuration], Configuration]:
    """check_host as the generator can run it at boot: programs only, and only where
    their file system is there.

    Accounts are not checked: a generator may not ask NSS (LDAP or sssd are not up
    yet, a first boot has no /etc/passwd), and systemd resolves User= when a service
    starts. A program under a mount point of /etc/fstab that is not mounted yet (at
    boot, generators run before everything but / and /usr) is not checked either: its
    service is kept, with a note, and checked at the next daemon-reload.
    """
    pending = pending_mounts(root)

    def check(configuration: Configuration) -> Configuration:
        def waiting(service: Service) -> str | None:
            return next((m for m in pending if service.server and
                         (service.server + "/").startswith(m.rstrip("/") + "/")), None)

        later = {s.id: waiting(s) for s in configuration.services}
        now = [s for s in configuration.services if later[s.id] is None]
        checked = check_host(replace(configuration, services=tuple(now)), root,
                             accounts=False)
        kept = {s.id for s in checked.services}
        notes = tuple(Finding(s.source, Severity.INFO, f"server program {s.server} not "
                              f"checked: {later[s.id]} is not mounted yet", s.id,
                              code=Code.NOT_CHECKED)
                      for s in configuration.services if later[s.id])
        return replace(checked, findings=checked.findings + notes,
                       services=tuple(s for s in configuration.services
                                      if s.id in kept or later[s.id]))
    return check


def pending_mounts(root: str) -> list[str]:
    """Mount points in /etc/fstab, other than / and /usr, with nothing mounted yet."""
    try:
        with open(under(root, "/etc/fstab"), encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    points = []
    for line in lines:
        fields = line.split()
        if len(fields) < 2 or fields[0].startswith("#") or not fields[1].startswith("/"):
            continue
        point = fields[1].replace("\\040", " ").rstrip("/") or "/"
        if point not in ("/", "/usr") and not os.path.ismount(under(root, point)):
            points.append(point)
    return points


def _piecewise(paths, options, check, services, kind, config_root) -> Conversion:
    configurations: list[Configuration] = []
    findings: list[Finding] = []
    for path in paths:
        try:
            configurations.append(load([path], flavor=kind, services=services,
                                       root=config_root))
        except ConfigError as exc:
            findings.append(Finding(Source(exc.file or path, exc.line or 0, exc.column or 0),
                                    Severity.ERROR, f"{exc.msg}: nothing read from this file",
                                    code=exc.code))
        except Exception as exc:  # noqa: BLE001
            findings.append(Finding(Source(path, 0), Severity.ERROR,
                                    f"internal error reading this file ({describe(exc)}): "
                                    "nothing generated from it; please report it",
                                    code=Code.INTERNAL_ERROR))
    configuration = merge(configurations)
    configuration = replace(configuration, findings=tuple(findings) + configuration.findings)
    try:
        configuration = check(configuration)
    except Exception as exc:  # noqa: BLE001 - unchecked units still serve
        configuration = replace(configuration, findings=configuration.findings + (
            Finding(Source(paths[0] if paths else "/etc", 0), Severity.WARNING,
                    f"internal error checking the server programs ({describe(exc)}): "
                    "not checked; please report it", code=Code.INTERNAL_ERROR),))
    units, written = render_each(configuration.services, options)
    return Conversion(configuration, units, tuple(merge_findings(configuration.findings, written)))


def render_each(services, options: WriterOptions) -> tuple[tuple[Unit, ...], tuple[Finding, ...]]:
    """render(services), leaving out the services on which it raises."""
    try:
        return render(services, options)
    except Exception:  # noqa: BLE001
        pass
    bad: dict[str, Exception] = {}
    for service in services:
        try:
            render([service], options)
        except Exception as exc:  # noqa: BLE001
            bad[service.id] = exc
    good = [s for s in services if s.id not in bad]
    try:
        units, findings = render(good, options)
    except Exception:  # noqa: BLE001 - only together do they fail: nothing can be kept
        units, findings, bad = (), (), {s.id: RuntimeError("rendering failed") for s in services}
    findings += tuple(Finding(s.source, Severity.ERROR, f"internal error writing its units "
                              f"({describe(bad[s.id])}): left out; please report it", s.id,
                              code=Code.INTERNAL_ERROR)
                      for s in services if s.id in bad)
    return units, findings


def describe(exc: BaseException) -> str:
    """An exception in one line: type, message and the innermost frame."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = ""
    if tb is not None:
        code = tb.tb_frame.f_code
        where = f" at {os.path.basename(code.co_filename)}:{tb.tb_lineno} in {code.co_name}"
    return f"{type(exc).__name__}: {exc}{where}"


def systemd_version(root: str = "/", default: int = 252) -> int:
    """The installed systemd's version, from its shared library's file name (a generator
    may not run systemctl, and this costs a few directory reads)."""
    for directory in ("/usr/lib/systemd", "/lib/systemd", "/usr/lib64/systemd"):
        found = _library_version(under(root, directory))
        if found:
            return found
    try:
        arch_dirs = [e.path for e in os.scandir(under(root, "/usr/lib")) if "-linux-" in e.name]
    except OSError:
        arch_dirs = []
    for directory in arch_dirs:  # Debian's /usr/lib/x86_64-linux-gnu/systemd
        found = _library_version(os.path.join(directory, "systemd"))
        if found:
            return found
    return default


def _library_version(directory: str) -> int | None:
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    for name in names:
        if name.startswith("libsystemd-shared-") and ".so" in name:
            digits = name[len("libsystemd-shared-"):].split(".", 1)[0].split("-", 1)[0]
            if digits.isdigit():
                return int(digits)
    return None


# -- on disk ----------------------------------------------------------------------------

class Written(namedtuple("Written", "units links problems")):
    """The units and links written, and the problems (one line each: a unit or link
    that could not be written)."""

    __slots__ = ()


def write(generation: Generation, directory: str) -> Written:
    """Every unit into directory (a generator directory systemd emptied before running
    the generators), and sockets.target.wants/ links for the enabled sockets.

    A file that is already there was written by another generator: it stays, and this
    unit is left out. One failed write costs that unit only."""
    units: list[str] = []
    links: list[str] = []
    problems: list[str] = []
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for unit in generation.units:
        path = f"{directory}/{unit.name}"
        try:
            fd = os.open(path, flags, 0o644)
        except FileExistsError:
            problems.append(f"{path}: already there (another generator wrote it): kept, "
                            "this one is not written")
            continue
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
            continue
        try:
            data = unit.text.encode("utf-8", "surrogateescape")
            while data:  # a short write only on a full file system, but then say so
                data = data[os.write(fd, data):]
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
            _unlink(path)
            continue
        finally:
            os.close(fd)
        units.append(unit.name)
    if generation.wanted:
        wants = f"{directory}/{WANTS}"
        try:
            os.makedirs(wants, mode=0o755, exist_ok=True)
        except OSError as exc:
            problems.append(f"{wants}: {exc.strerror or exc}")
        written = set(units)
        for name in generation.wanted:
            if name not in written:
                continue
            link = f"{wants}/{name}"
            try:
                os.symlink(f"{directory}/{name}", link)
            except FileExistsError:
                pass  # another generator wants it too
            except OSError as exc:
                problems.append(f"{link}: {exc.strerror or exc}")
                continue
            links.append(name)
    return Written(tuple(units), tuple(links), tuple(problems))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
