"""The conversion itself, shared by `convert`, `import` and the generator: read the
configuration, leave out what cannot run on the target host, render the units.

Reading, rendering and checking all happen before anything is written, so a bad line
leaves the output directory (and /etc/systemd/system) exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from .. import report
from ..config import load
from ..config.services import ServicesTable
from ..errors import EXIT_OK
from ..model import Code, Configuration, Finding, Service, Severity
from ..units.writer import Unit, WriterOptions, render
from .host import account_check, program_runs, settle_groups, tcp_wrappers_findings


@dataclass(frozen=True)
class Conversion:
    """What one conversion produced: the services read, the units, every finding and the
    exit status they call for."""

    configuration: Configuration
    units: tuple[Unit, ...]
    findings: tuple[Finding, ...]

    @property
    def status(self) -> int:
        return report.exit_status(self.findings)


def convert(paths: Iterable[str | Path], options: WriterOptions, *, format: str | None = None,
            flavor: str = "openbsd", services: ServicesTable | None = None,
            include_disabled: bool = False, host_root: str | None = "/",
            config_root: str | None = None,
            host_check: Callable[[Configuration], Configuration] | None = None) -> Conversion:
    """Read `paths` (xinetd's absolute includes under `config_root`, when given), check
    the services against the host under `host_root` (None: no check, the units are for
    another host; `host_check` replaces check_host) and render them with `options`."""
    configuration = load(paths, format=format, flavor=flavor, services=services,
                         include_disabled=include_disabled, root=config_root)
    if host_check is not None:
        configuration = host_check(configuration)
    elif host_root is not None:
        configuration = check_host(configuration, host_root)
        configuration = settle_groups(configuration, host_root)
    units, writer_findings = render(configuration.services, options)
    findings = merge_findings(configuration.findings, writer_findings)
    if options.engine == "systemd":  # the superserver applies hosts.allow/deny itself
        converted = {unit.service_id for unit in units}
        findings += tcp_wrappers_findings([s for s in configuration.services
                                           if s.id in converted], host_root)
    return Conversion(configuration, tuple(units), tuple(findings))


SYSTEMD_UNIT_DIRECTORIES = ("/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system",
                            "/lib/systemd/system", "/usr/local/lib/systemd/system")


def is_unit_directory(directory: Path) -> bool:
    resolved = directory.resolve()
    return any(resolved == Path(d).resolve() for d in SYSTEMD_UNIT_DIRECTORIES)


def check_host(configuration: Configuration, root: str = "/", *,
               accounts: bool = True) -> Configuration:
    """Leave out services whose program, user or group does not exist (under root), with
    an ERROR each.

    Such a unit would only fail when a client connects (status 203/EXEC or 217/USER,
    and systemd-analyze verify refuses a missing program): better said now, by file and
    line, than found by the first client. accounts=False checks the programs only: the
    generator runs before NSS services (LDAP, sssd) can answer, and before a first boot
    has written /etc/passwd.
    """
    user_exists = account_check(root, "passwd") if accounts else _anyone
    group_exists = account_check(root, "group") if accounts else _anyone
    kept: list[Service] = []
    findings = list(configuration.findings)
    for service in configuration.services:
        problem = None
        if service.server is not None and not program_runs(service.server, root):
            problem = (Code.PROGRAM_MISSING, f"server program {service.server} does not "
                       "exist or is not executable")
        # A number is looked up too: systemd refuses a User=/Group= number without an
        # entry (217/USER, 216/GROUP), and serve refuses it likewise.
        if problem is None and service.user and not user_exists(service.user):
            problem = (Code.USER_MISSING, f"user {service.user!r} does not exist")
        if problem is None and service.group and not group_exists(service.group):
            problem = (Code.GROUP_MISSING, f"group {service.group!r} does not exist")
        if problem is not None:
            code, what = problem
            where = "" if Path(root).resolve() == Path("/") else f" under {root}"
            findings.append(Finding(service.source, Severity.ERROR,
                                    f"{what}{where}: left out (--no-host-check keeps it)",
                                    service.id, code=code))
            continue
        kept.append(service)
    return replace(configuration, services=tuple(kept), findings=tuple(findings))


def _anyone(name: str) -> bool:
    return True


def merge_findings(parsed: tuple[Finding, ...], written: tuple[Finding, ...]) -> list[Finding]:
    """The reader's findings, then the writer's; a service the reader already reported as
    not convertible (rpc, raw, ...) is not reported a second time by the writer."""
    refused = {f.service for f in parsed if f.severity is Severity.ERROR and f.service}
    return list(parsed) + [f for f in written
                           if not (f.severity is Severity.ERROR and f.service in refused)]


def sockets_to_start(units, services) -> list[str]:
    disabled = {s.id for s in services if s.disabled}
    return [u.name for u in units if u.name.endswith(".socket") and u.service_id not in disabled]


def as_json(configuration: Configuration, units, findings, status: int, *, plan=None,
            errors: Iterable[dict] = ()) -> dict:
    """The document `convert --json` prints (docs/json.md). `plan`: the steps of an
    --output-dir or --install run (units.install.Plan); `errors`: why the command
    stopped (report.error_json), when it did."""
    by_service: dict[str, list[str]] = {}
    for unit in units:
        by_service.setdefault(unit.service_id, []).append(unit.name)
    services = []
    for service in configuration.services:
        entry = report.service_json(service)
        entry["units"] = by_service.get(service.id, [])
        services.append(entry)
    document = {
        "schema": report.SCHEMA,
        "services": services,
        "units": [{"name": u.name, "service": u.service_id, "text": u.text} for u in units],
        "findings": [report.finding_json(f) for f in findings],
        "errors": list(errors),
        "complete": status == EXIT_OK,
        "exit_status": status,
    }
    if plan is not None:
        document["plan"] = [step.as_json() for step in plan.steps]
    return document
