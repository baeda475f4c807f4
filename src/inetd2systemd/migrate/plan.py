"""The plan of a whole-host import: what each legacy service becomes, and why.

Everything the host's superserver did is read from its root: inetd.conf, xinetd.conf
with its includes (absolute include paths resolved under ROOT), the host's own
/etc/services, and its tcp_wrappers rules. A service that went through tcpd (inetd) or
xinetd's libwrap has the rules for its daemon name compiled (config.tcpwrappers) into
the allowed address set, intersected with xinetd's own only_from/no_access, and handed
to the writer as only_from; whatever cannot be expressed is reported and made
stricter, never wider.
"""

from __future__ import annotations

import datetime as _dt
import os
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..config import addresses, merge, read_one
from ..config.services import load_services
from ..config.tcpwrappers import (Compiled, HostNames, TcpWrappers, intersect_allow,
                                  read_host_names, read_tcpwrappers)
from ..errors import EXIT_INCOMPLETE, EXIT_OK, ConfigError
from ..model import Code, Configuration, Finding, Service, Severity
from . import preflight

# Legacy superserver units that install.sh stops (and rollback.sh restarts) when present.
LEGACY_UNITS = {
    "xinetd": ("xinetd.service",),
    "inetd": ("openbsd-inetd.service", "inetutils-inetd.service", "inetd.service"),
}



@dataclass(frozen=True)
class ServicePlan:
    """One service of the legacy host and what becomes of it."""

    original: Service  # as the reader saw it
    service: Service  # as handed to the writer (tcp_wrappers folded into only_from)
    daemon: str | None  # the libwrap daemon name, when wrapped
    access: Compiled | None  # the tcp_wrappers rules for that daemon
    allow: tuple[str, ...] | None  # the IPAddressAllow= the socket gets (None: open)
    units: tuple = ()  # units.writer.Unit values
    findings: tuple[Finding, ...] = ()

    @property
    def id(self) -> str:
        return self.service.id

    @property
    def programs(self) -> tuple[str, ...]:
        """What must exist on the target for its sockets to start (install.sh checks)."""
        return (self.service.server,) if self.service.server else ()

    @property
    def status(self) -> str:
        if not self.units or any(f.severity is Severity.ERROR for f in self.findings):
            return "failed"  # even when disabled: it could not be switched on later
        if self.original.disabled:
            return "disabled"
        if any(f.severity is Severity.WARNING for f in self.findings):
            return "approximated"
        return "converted"


@dataclass(frozen=True)
class Migration:
    root: Path
    etc: Path
    inputs: tuple[str, ...]  # the configuration files read
    services_file: str
    legacy: tuple[str, ...]  # candidate legacy superserver units
    plans: tuple[ServicePlan, ...]
    findings: tuple[Finding, ...]  # not tied to one service
    preflight: tuple[Finding, ...] = ()
    wrappers: TcpWrappers = field(default_factory=TcpWrappers)
    created: str = ""
    shared: tuple = ()  # units that belong to no one service (the re-arm template)

    @property
    def units(self) -> tuple:
        return tuple(u for p in self.plans for u in p.units) + self.shared

    def counts(self) -> dict[str, int]:
        statuses = [p.status for p in self.plans]
        every = [f for p in self.plans for f in p.findings] + list(self.findings)
        # services the reader left out (the daemon disabled them): an ERROR, no plan
        left_out = len({f.service for f in self.findings
                        if f.service and f.severity is Severity.ERROR})
        return {
            "services": len(self.plans) + left_out,
            "converted": statuses.count("converted"),
            "approximated": statuses.count("approximated"),
            "failed": statuses.count("failed") + left_out,
            "disabled": statuses.count("disabled"),
            "units": len(self.units),
            "errors": sum(f.severity is Severity.ERROR for f in every),
            "warnings": sum(f.severity is Severity.WARNING for f in every),
            "preflight_errors": sum(f.severity is Severity.ERROR for f in self.preflight),
            "preflight_warnings": sum(f.severity is Severity.WARNING for f in self.preflight),
            "stricter": sum(1 for p in self.plans if p.access and not p.access.exact),
        }

    @property
    def exit_status(self) -> int:
        """1 when the report has anything to read (a warning or an error about a service,
        the configuration or the preflight), as for convert: one table for every command."""
        every = [f for p in self.plans for f in p.findings] + list(self.findings) \
            + list(self.preflight)
        return EXIT_INCOMPLETE if any(f.severity is not Severity.INFO for f in every) \
            else EXIT_OK


def locate_etc(root: str | Path) -> Path:
    """ROOT/etc, or ROOT itself when it is an /etc (holds inetd.conf or xinetd.conf)."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError("not a directory: expected a copy of the legacy host's root or /etc",
                          str(root))
    if (root / "etc").is_dir():
        return root / "etc"
    if any((root / name).exists() for name in ("inetd.conf", "xinetd.conf", "xinetd.d")):
        return root
    raise ConfigError("no etc/ directory (and no inetd.conf or xinetd.conf) here", str(root))


def _tree_root(etc: Path) -> Path:
    """The directory that stands for / on the legacy host (for absolute include paths)."""
    return etc.parent if etc.name == "etc" else etc


def inetd_options(etc: Path) -> tuple[str, bool]:
    """(flavour, libwrap for every service) from the legacy host's /etc/default."""
    if (etc / "default" / "inetutils-inetd").exists():
        return "inetutils", False
    try:
        text = (etc / "default" / "openbsd-inetd").read_text()
    except OSError:
        return "openbsd", False
    for line in text.splitlines():
        name, _, value = line.partition("=")
        if name.strip() == "OPTIONS":
            try:
                words = shlex.split(value)
            except ValueError:
                words = value.split()
            return "openbsd", any(w.startswith("-") and "l" in w[1:] for w in words)
    return "openbsd", False


def _is_xinetd_source(service: Service, xinetd_files: set[str]) -> bool:
    return service.source.file in xinetd_files


def plan_migration(root: str | Path, *, prefix: str = "", flavor: str | None = None,
                   include_disabled: bool = False, systemd_version: int = 252,
                   command: tuple[str, ...] | None = None, target_root: str | Path = "/",
                   proc: str | Path = "/proc", check_ports: bool = True, harden: str = "auto",
                   dynamic_user: bool = False) -> Migration:
    from ..convert.host import settle_groups
    from ..convert.pipeline import merge_findings
    from ..units.writer import WriterOptions, render

    etc = locate_etc(root)
    tree = _tree_root(etc)
    services_path = etc / "services"
    # The legacy host's own port names; without them, this host's (said in the report).
    table = load_services(services_path if services_path.exists() else "/etc/services")
    found_flavor, inetd_libwrap = inetd_options(etc)
    flavor = flavor or found_flavor

    configurations: list[Configuration] = []
    inputs: list[str] = []
    xinetd_files: set[str] = set()
    legacy: list[str] = []
    if (etc / "xinetd.conf").is_file() or (etc / "xinetd.d").is_dir():
        from ..config import xinetd
        if (etc / "xinetd.conf").is_file():
            c = xinetd.read_xinetd(etc / "xinetd.conf", services=table,
                                   include_disabled=include_disabled, root=str(tree))
            inputs.append(str(etc / "xinetd.conf"))
        else:
            c = xinetd.read_xinetd_dir(etc / "xinetd.d", services=table,
                                       include_disabled=include_disabled, root=str(tree))
            inputs.append(str(etc / "xinetd.d"))
        xinetd_files |= {s.source.file for s in c.services}
        configurations.append(c)
        legacy += LEGACY_UNITS["xinetd"]
    if (etc / "inetd.conf").is_file():
        configurations.append(read_one(etc / "inetd.conf", format="inetd", flavor=flavor,
                                       services=table, include_disabled=include_disabled))
        inputs.append(str(etc / "inetd.conf"))
        legacy += LEGACY_UNITS["inetd"]
    if not configurations:
        raise ConfigError("no inetd.conf, xinetd.conf or xinetd.d: nothing to import", str(etc))
    configuration = settle_groups(merge(configurations), str(tree))
    wrappers = read_tcpwrappers(etc)
    names = read_host_names(etc)  # host-name rules become exact for /etc/hosts addresses

    general: list[Finding] = list(wrappers.findings)  # lines libwrap skips or stops at
    by_id: dict[str, list[Finding]] = {}
    for f in configuration.findings:
        if f.service:
            by_id.setdefault(f.service, []).append(f)
        else:
            general.append(f)

    folded: list[tuple[Service, Service, str | None, Compiled | None, tuple[str, ...] | None,
                       list[Finding]]] = []
    for service in configuration.services:
        wrapped = service.tcp_wrapped or (
            inetd_libwrap and service.internal is None
            and not _is_xinetd_source(service, xinetd_files))
        daemon = None
        if wrapped:
            daemon = service.libwrap_name or os.path.basename(
                (service.argv[:1] or (service.server or service.id,))[0])
        new, access, allow, notes = fold_access(service, wrappers, daemon, names)
        folded.append((service, new, daemon, access, allow, notes))

    options = WriterOptions(prefix=prefix, systemd_version=systemd_version, harden=harden,
                            dynamic_user=dynamic_user, **({"command": command} if command else {}))
    units, writer_findings = render([new for _, new, *_ in folded], options)
    writer_by_id: dict[str | None, list[Finding]] = {}
    for f in merge_findings(tuple(f for fs in by_id.values() for f in fs), writer_findings):
        writer_by_id.setdefault(f.service, []).append(f)
    general += writer_by_id.pop(None, [])

    # A service the reader left out (the daemon disabled it, or skipped its entry) has
    # findings but no plan: they belong to the report as a whole, not lost with it.
    planned = {new.id for _, new, *_ in folded}
    general += [f for id_, fs in writer_by_id.items() if id_ not in planned for f in fs]
    plans = []
    for original, new, daemon, access, allow, notes in folded:
        mine = tuple(u for u in units if u.service_id == new.id)
        findings = list(writer_by_id.get(new.id, []))
        if any(f.code is Code.ACCESS_NOBODY for f in notes):
            # the fold said why nobody is let in (libwrap's rules): the writer, which sees
            # only the folded only_from, would blame only_from/no_access
            findings = [f for f in findings if f.code is not Code.ACCESS_NOBODY]
        plans.append(ServicePlan(original, new, daemon, access, allow, mine,
                                 tuple(sorted(findings + notes, key=_order))))

    enabled = [p.service for p in plans if p.units]
    checks = preflight.run_all(enabled, etc=etc, target_root=target_root, proc=proc,
                               check_ports=check_ports)
    return Migration(Path(root), etc, tuple(inputs), table.source, tuple(legacy), tuple(plans),
                     tuple(general), checks, wrappers,
                     _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                     tuple(u for u in units if not u.service_id))


def _order(f: Finding):
    return ({Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}[f.severity],
            f.source.file, f.source.line)


def fold_access(service: Service, wrappers: TcpWrappers, daemon: str | None,
                names: HostNames | None = None
                ) -> tuple[Service, Compiled | None, tuple[str, ...] | None, list[Finding]]:
    """The service with its tcp_wrappers rules folded into only_from (for the writer).

    The rules for its daemon name are compiled (config.tcpwrappers) and intersected with
    the service's own only_from/no_access: a client must pass both, as under xinetd. The
    result is handed on as only_from entries that read back as exactly that set on the
    service's sockets (`AddressSet.xinetd_entries`), so the writer's own compilation of
    only_from neither widens nor narrows it."""
    families = tuple(listen.family for listen in service.listens)
    if daemon is None:
        return service, None, _own_allow(service), []
    ports = tuple(sorted({listen.port for listen in service.listens if listen.port}))
    access = wrappers.compile(daemon, service.id, names=names, ports=ports)
    if service.accepts_itself:
        return _fold_unknown_client(service, wrappers, daemon, access, ports)
    notes = list(access.findings)
    if access.allow is None:
        what = ("no rule in hosts.allow/hosts.deny names it" if not access.rules else
                "its rules let every address in")
        notes.append(Finding(service.source, Severity.INFO,
                             f"tcp_wrappers (daemon {daemon}): {what}; the socket is open to "
                             "every address, as before", service.id, code=Code.TCP_WRAPPERS_OPEN))
        return replace(service, tcp_wrapped=False), access, _own_allow(service), notes
    own = None
    if service.only_from is not None or service.no_access:
        try:
            own = addresses.compile_allow(service.only_from, service.no_access, families=families)
        except addresses.AddressError as exc:
            own = addresses.CompiledAccess((), addresses=addresses.NOTHING)
            notes.append(Finding(service.source, Severity.ERROR, f"only_from/no_access could "
                                 f"not be read ({exc}): nobody is let in", service.id,
                                 code=Code.ACCESS_UNREADABLE))
        notes += [Finding(service.source, Severity.WARNING, note, service.id,
                          code=Code.ACCESS_APPROXIMATED) for note in own.notes]
    allowed = intersect_allow(own.addresses if own else None, access.addresses)
    allow = addresses.for_systemd(allowed).texts()
    lines = ", ".join(str(r.source) for r in access.rules)
    shown = " ".join(allow) if allow else "nobody"
    both = (" together with the service's own only_from/no_access (a client must pass "
            "both, as under xinetd)") if own else ""
    notes.append(Finding(service.source, Severity.INFO if access.exact else Severity.WARNING,
                         f"tcp_wrappers (daemon {daemon}, {lines}){both} carried as "
                         f"IPAddressDeny=any IPAddressAllow={shown}"
                         + ("" if access.exact else " (stricter than before: see the rules above)"),
                         service.id, code=Code.TCP_WRAPPERS_CARRIED))
    return (replace(service, only_from=allowed.xinetd_entries(families), no_access=(),
                    tcp_wrapped=False), access, allow, notes)


def _fold_unknown_client(service: Service, wrappers: TcpWrappers, daemon: str,
                         access: Compiled, ports: tuple[int, ...]
                         ) -> tuple[Service, Compiled, tuple[str, ...] | None, list[Finding]]:
    """tcp_wrappers for a server that accepts its own connections: libwrap is asked about
    a client it cannot name ("unknown"), so its rules let everyone in (`ALL`, `UNKNOWN`,
    `*`, `ALL EXCEPT` an address) or nobody (`ALL: ALL` in hosts.deny), whatever the
    client's address: the socket gets the same verdict, never an address list."""
    lines = ", ".join(str(r.source) for r in access.rules) or "no rule names it"
    why = (f"tcp_wrappers (daemon {daemon}, {lines}): a wait-type stream server accepts its "
           "own connections, so libwrap was asked about a client it could not name")
    own = service.only_from is not None or bool(service.no_access)
    # a daemon@host or user@host pattern, a netgroup or a /file cannot always be decided
    # here; decide() then refuses (stricter), so the verdict is not called exact
    exact = not any(p.startswith("/") or "@" in p for rule in access.rules
                    for p in rule.daemons.items + rule.clients.items)
    if all(wrappers.allows(daemon, None, port=port) for port in ports or (None,)):
        note = Finding(service.source, Severity.INFO, why + ", and its rules let that client "
                       "in: nothing to carry" + (" (only_from/no_access decide alone)" if own
                                                 else "; the socket is open to every address, "
                                                 "as before"),
                       service.id, code=Code.TCP_WRAPPERS_OPEN)
        return (replace(service, tcp_wrapped=False), Compiled(None, exact, access.rules),
                _own_allow(service), [*access.findings, note])
    note = Finding(service.source, Severity.WARNING, why + ", and its rules refuse that client"
                   + (" (so do only_from/no_access)" if own else "") + ": xinetd served nobody, "
                   "and the socket refuses every client too (IPAddressDeny=any alone)",
                   service.id, code=Code.ACCESS_NOBODY)
    return (replace(service, only_from=(), no_access=(), tcp_wrapped=False),
            Compiled((), exact, access.rules, addresses=addresses.NOTHING), (),
            [*access.findings, note])


def _own_allow(service: Service) -> tuple[str, ...] | None:
    if service.only_from is None and not service.no_access:
        return None
    if service.accepts_itself:
        return ()  # no client address to check: they refuse everyone (the writer says so)
    families = tuple(listen.family for listen in service.listens)
    try:
        return addresses.compile_allow(service.only_from, service.no_access, families=families).allow
    except addresses.AddressError:
        return ()
