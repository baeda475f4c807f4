"""`inetd2systemd import ROOT --output-dir DIR`: a whole legacy host, converted in one go.

ROOT is a copy of the legacy host's root (ROOT/etc/...), its /etc itself, or `/`.
Everything its superserver did is read from there: inetd.conf, xinetd.conf with its
includes (absolute include paths resolved under ROOT), the host's own /etc/services,
and its tcp_wrappers rules. The output directory then holds:

    units/         the .socket/.service files (config.load -> units.writer.render)
    report.md      per service: source lines, units, access rules, warnings, what to check
    report.html    the same for a browser
    summary.json   the counts and per-service status, for scripts
    install.sh     stops the legacy superserver, installs and starts the sockets
    rollback.sh    puts back exactly what install.sh changed

and the last line printed on stdout is the summary line (`key=value` words).

tcp_wrappers: a service that went through tcpd (inetd) or xinetd's libwrap has the
rules for its daemon name compiled (config.tcpwrappers) into the allowed address set,
intersected with xinetd's own only_from/no_access, and handed to the writer as
only_from; whatever cannot be expressed is reported and made stricter, never wider.

Equivalence: `--check before` (on the legacy superserver) and `--check after` (on the
new sockets) send the same client transcript to every service, optionally from several
source addresses (`--source`), and the report shows them side by side.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import preflight
from .config import addresses
from .errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK
from .config import merge, read_one
from .config.services import load_services
from .config.tcpwrappers import (Compiled, HostNames, TcpWrappers, intersect_allow,
                                 read_host_names, read_tcpwrappers)
from .errors import ConfigError
from .model import Configuration, Family, Finding, Service, Severity, SocketType

# Legacy superserver units that install.sh stops (and rollback.sh restarts) when present.
LEGACY_UNITS = {
    "xinetd": ("xinetd.service",),
    "inetd": ("openbsd-inetd.service", "inetutils-inetd.service", "inetd.service"),
}
STATE_DIR = "/var/lib/inetd2systemd/import-rollback"
SUMMARY_TAG = "inetd2systemd-import:"


# -- the plan ----------------------------------------------------------------------------------


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

    @property
    def units(self) -> tuple:
        return tuple(u for p in self.plans for u in p.units)

    def counts(self) -> dict[str, int]:
        statuses = [p.status for p in self.plans]
        every = [f for p in self.plans for f in p.findings] + list(self.findings)
        return {
            "services": len(self.plans),
            "converted": statuses.count("converted"),
            "approximated": statuses.count("approximated"),
            "failed": statuses.count("failed"),
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
        c = self.counts()
        return EXIT_INCOMPLETE if c["failed"] or c["preflight_errors"] else EXIT_OK


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
                   proc: str | Path = "/proc", check_ports: bool = True) -> Migration:
    from .convert import merge_findings
    from .units.writer import WriterOptions, render

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
        from .config import xinetd
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
    configuration = merge(configurations)
    wrappers = read_tcpwrappers(etc)
    names = read_host_names(etc)  # host-name rules become exact for /etc/hosts addresses

    general: list[Finding] = []
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

    options = WriterOptions(prefix=prefix, systemd_version=systemd_version,
                            **({"command": command} if command else {}))
    units, writer_findings = render([new for _, new, *_ in folded], options)
    writer_by_id: dict[str | None, list[Finding]] = {}
    for f in merge_findings(tuple(f for fs in by_id.values() for f in fs), writer_findings):
        writer_by_id.setdefault(f.service, []).append(f)
    general += writer_by_id.pop(None, [])

    plans = []
    for original, new, daemon, access, allow, notes in folded:
        mine = tuple(u for u in units if u.service_id == new.id)
        findings = [f for f in writer_by_id.get(new.id, []) if not _is_tcpd_note(f, daemon)]
        plans.append(ServicePlan(original, new, daemon, access, allow, mine,
                                 tuple(sorted(findings + notes, key=_order))))

    enabled = [p.service for p in plans if p.units]
    checks = preflight.run_all(enabled, etc=etc, target_root=target_root, proc=proc,
                               check_ports=check_ports)
    return Migration(Path(root), etc, tuple(inputs), table.source, tuple(legacy), tuple(plans),
                     tuple(general), checks, wrappers,
                     _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def _order(f: Finding):
    return ({Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}[f.severity],
            f.source.file, f.source.line)


def _is_tcpd_note(f: Finding, daemon: str | None) -> bool:
    """The reader's / writer's remark that host rules are lost: we carried them."""
    return daemon is not None and ("hosts.allow" in f.message and "tcpd" in f.message)


def fold_access(service: Service, wrappers: TcpWrappers, daemon: str | None,
                names: HostNames | None = None
                ) -> tuple[Service, Compiled | None, tuple[str, ...] | None, list[Finding]]:
    """The service with its tcp_wrappers rules folded into only_from (for the writer)."""
    if daemon is None:
        return service, None, _own_allow(service), []
    access = wrappers.compile(daemon, service.id, names=names)
    notes = list(access.findings)
    if access.allow is None:
        what = ("no rule in hosts.allow/hosts.deny names it" if not access.rules else
                "its rules let every address in")
        notes.append(Finding(service.source, Severity.INFO,
                             f"tcp_wrappers (daemon {daemon}): {what}; the socket is open to "
                             "every address, as before", service.id))
        return replace(service, tcp_wrapped=False), access, _own_allow(service), notes
    own = None
    if service.only_from is not None or service.no_access:
        own = addresses.compile_allow(service.only_from, service.no_access)
        notes += [Finding(service.source, Severity.WARNING, note, service.id) for note in own.notes]
    allow = intersect_allow(own.allow if own else None, access.allow)
    lines = ", ".join(str(r.source) for r in access.rules)
    shown = " ".join(allow) if allow else "nobody"
    both = (" together with the service's own only_from/no_access (a client must pass "
            "both, as under xinetd)") if own else ""
    notes.append(Finding(service.source, Severity.INFO if access.exact else Severity.WARNING,
                         f"tcp_wrappers (daemon {daemon}, {lines}){both} carried as "
                         f"IPAddressDeny=any IPAddressAllow={shown}"
                         + ("" if access.exact else " (stricter than before: see the rules above)"),
                         service.id))
    return replace(service, only_from=allow, no_access=(), tcp_wrapped=False), access, allow, notes


def _own_allow(service: Service) -> tuple[str, ...] | None:
    if service.only_from is None and not service.no_access:
        return None
    try:
        return addresses.compile_allow(service.only_from, service.no_access).allow
    except ValueError:
        return ()


# -- output --------------------------------------------------------------------------------------


def write_output(migration: Migration, directory: str | Path, *, force: bool = False,
                 transcripts: dict | None = None) -> Path:
    """Build the whole output beside `directory`, then rename it into place."""
    from . import migration_report
    from .units.install import write_units

    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()) and not force:
        raise FileExistsError(f"{directory} exists and is not empty (use --force to replace it)")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        write_units(migration.units, staging / "units")
        _write(staging / "install.sh", install_script(migration), 0o755)
        _write(staging / "rollback.sh", rollback_script(migration), 0o755)
        _write(staging / "report.md", migration_report.markdown(migration, transcripts))
        _write(staging / "report.html", migration_report.html(migration, transcripts))
        _write(staging / "summary.json", json.dumps(migration_report.summary_json(migration),
                                                    indent=2) + "\n")
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            os.replace(directory, old)
        os.replace(staging, directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def _sockets(migration: Migration) -> list[tuple[str, tuple[str, ...]]]:
    """(socket unit, programs it needs) for every socket install.sh starts."""
    out = []
    for plan in migration.plans:
        if plan.original.disabled:
            continue
        programs = (plan.service.server,) if plan.service.server else ()
        out += [(u.name, programs) for u in plan.units if u.name.endswith(".socket")]
    return out


def install_script(migration: Migration) -> str:
    units = " ".join(u.name for u in migration.units)
    socket_lines = "\n".join(f"{name} {' '.join(progs)}".rstrip()
                             for name, progs in _sockets(migration))
    needs_bpf = any(p.allow is not None for p in migration.plans if p.units)
    return f"""#!/bin/sh
# Generated by inetd2systemd import on {migration.created} from {migration.root}
# Switches this host from its legacy superserver to the systemd sockets in ./units.
# Everything it changes is recorded in $STATE_DIR so that rollback.sh can undo it.
# Environment: UNIT_DIR (default /etc/systemd/system), STATE_DIR, SYSTEMCTL, FORCE=1.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
UNIT_DIR=${{UNIT_DIR:-/etc/systemd/system}}
STATE_DIR=${{STATE_DIR:-{STATE_DIR}}}
SYSTEMCTL=${{SYSTEMCTL:-systemctl}}
UNITS="{units}"
LEGACY="{' '.join(migration.legacy)}"
# socket unit, then the programs it needs
SOCKETS='
{socket_lines}
'

if [ -e "$STATE_DIR/installed" ]; then
    echo "install.sh: already installed ($STATE_DIR); run rollback.sh first" >&2; exit 1
fi
for f in $UNITS; do
    if [ -e "$UNIT_DIR/$f" ] && ! head -n1 "$UNIT_DIR/$f" | grep -q '^# Generated by inetd2systemd' \\
            && [ "${{FORCE:-0}}" != 1 ]; then
        echo "install.sh: $UNIT_DIR/$f exists and was not written by inetd2systemd (FORCE=1 replaces it; rollback.sh restores it)" >&2
        exit 1
    fi
done
if [ {1 if needs_bpf else 0} = 1 ] && ! grep -q ' cgroup2 ' /proc/self/mounts; then
    echo "install.sh: no cgroup v2 here: systemd would ignore IPAddressAllow=/IPAddressDeny= and open the services to everyone; not switching" >&2
    exit 1
fi

rm -rf "$STATE_DIR"; mkdir -p "$STATE_DIR/backup"
: > "$STATE_DIR/legacy"; : > "$STATE_DIR/units"; : > "$STATE_DIR/started"
for u in $LEGACY; do
    load=$($SYSTEMCTL show -P LoadState "$u" 2>/dev/null || echo not-found)
    [ "$load" = loaded ] || continue
    echo "$u $($SYSTEMCTL is-enabled "$u" 2>/dev/null || true) $($SYSTEMCTL is-active "$u" 2>/dev/null || true)" >> "$STATE_DIR/legacy"
done
for f in $UNITS; do
    if [ -e "$UNIT_DIR/$f" ]; then cp -p "$UNIT_DIR/$f" "$STATE_DIR/backup/$f"; fi
    echo "$f" >> "$STATE_DIR/units"
done
touch "$STATE_DIR/installed"

mkdir -p "$UNIT_DIR"
for f in $UNITS; do
    cp "$HERE/units/$f" "$UNIT_DIR/.$f.new"
    mv -f "$UNIT_DIR/.$f.new" "$UNIT_DIR/$f"
done
$SYSTEMCTL daemon-reload

# Decided before the legacy superserver stops, so that the ports are handed over in
# one systemctl call: the shorter the gap, the fewer clients are refused.
startable=
while read -r sock programs; do
    [ -n "$sock" ] || continue
    missing=
    for p in $programs; do [ -x "$p" ] || missing="$missing $p"; done
    if [ -n "$missing" ]; then
        echo "install.sh: $sock left stopped: missing$missing" >&2
    else
        startable="$startable $sock"
    fi
done <<SOCKETS_END
$SOCKETS
SOCKETS_END

while read -r u enabled active; do
    [ -n "$u" ] || continue
    if [ "$active" = active ]; then $SYSTEMCTL stop "$u"; fi
    if [ "$enabled" = enabled ]; then $SYSTEMCTL disable -q "$u"; fi
done < "$STATE_DIR/legacy"
if [ -n "$startable" ]; then $SYSTEMCTL start $startable || true; fi

status=0
for sock in $startable; do
    if [ "$($SYSTEMCTL is-active "$sock" 2>/dev/null || true)" = active ]; then
        echo "$sock" >> "$STATE_DIR/started"
        if grep -q '^\\[Install\\]' "$UNIT_DIR/$sock"; then $SYSTEMCTL enable -q "$sock" || true; fi
    else
        echo "install.sh: $sock failed to start (see: systemctl status $sock)" >&2
        status=3
    fi
done
echo "install.sh: done; $(wc -l < "$STATE_DIR/started") sockets started; rollback.sh undoes it"
exit $status
"""


def rollback_script(migration: Migration) -> str:
    return f"""#!/bin/sh
# Generated by inetd2systemd import on {migration.created} from {migration.root}
# Undoes install.sh: stops and removes the units it installed, puts back any unit file
# it replaced, and restarts the legacy superserver as it was.
set -eu
UNIT_DIR=${{UNIT_DIR:-/etc/systemd/system}}
STATE_DIR=${{STATE_DIR:-{STATE_DIR}}}
SYSTEMCTL=${{SYSTEMCTL:-systemctl}}

if [ ! -e "$STATE_DIR/installed" ]; then
    echo "rollback.sh: nothing to roll back ($STATE_DIR/installed is missing)" >&2; exit 1
fi
while read -r f; do
    case "$f" in
        *.socket) $SYSTEMCTL disable -q --now "$f" 2>/dev/null || $SYSTEMCTL stop "$f" 2>/dev/null || true ;;
    esac
done < "$STATE_DIR/units"
while read -r f; do
    case "$f" in
        *@.service) $SYSTEMCTL stop "${{f%@.service}}@*.service" 2>/dev/null || true ;;
        *.service) $SYSTEMCTL stop "$f" 2>/dev/null || true ;;
    esac
    if [ -e "$STATE_DIR/backup/$f" ]; then
        cp -p "$STATE_DIR/backup/$f" "$UNIT_DIR/.$f.old"
        mv -f "$UNIT_DIR/.$f.old" "$UNIT_DIR/$f"
    else
        rm -f "$UNIT_DIR/$f"
    fi
done < "$STATE_DIR/units"
$SYSTEMCTL daemon-reload
$SYSTEMCTL reset-failed 2>/dev/null || true
while read -r u enabled active; do
    [ -n "$u" ] || continue
    if [ "$enabled" = enabled ]; then $SYSTEMCTL enable -q "$u"; fi
    if [ "$active" = active ]; then $SYSTEMCTL start "$u"; fi
done < "$STATE_DIR/legacy"
rm -rf "$STATE_DIR"
echo "rollback.sh: done; the legacy superserver is back as it was"
"""


# -- equivalence: the same client transcript before and after ---------------------------------


@dataclass(frozen=True)
class Probe:
    send: bytes = b""
    read: int = 4096
    wait: float = 1.0  # seconds to wait for more data before calling the answer complete


# What to say to each internal service; a program gets nothing unless --probes says.
INTERNAL_PROBES = {
    "echo": Probe(b"inetd2systemd equivalence probe\r\n"),
    "discard": Probe(b"inetd2systemd equivalence probe\r\n", wait=0.5),
    "chargen": Probe(b"\r\n", read=74 * 3),
    "daytime": Probe(b"\r\n"),
    "time": Probe(b"\r\n"),
}
TIME_DEPENDENT = ("daytime", "time")


def load_probes(path: str | None) -> dict[str, Probe]:
    if not path:
        return {}
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read probes: {exc}", path) from None
    out = {}
    for key, value in raw.items():
        out[key] = Probe(value.get("send", "").encode("latin-1").decode("unicode_escape")
                         .encode("latin-1"), int(value.get("read", 4096)),
                         float(value.get("wait", 1.0)))
    return out


def probe_target(service: Service) -> tuple[str, int] | None:
    for listen in service.listens:
        if listen.family is Family.UNIX or listen.port is None:
            continue
        if listen.host:
            return listen.host, listen.port
        return ("::1" if listen.family is Family.IPV6 else "127.0.0.1"), listen.port
    return None


def transcript(service: Service, probe: Probe, source: str | None = None,
               timeout: float = 2.0, first_byte: float = 8.0) -> dict:
    """Connect (or send one datagram), send, read: what a client sees."""
    target = probe_target(service)
    record = {"service": service.id, "source": source or "", "target": "", "outcome": "",
              "received": ""}
    if target is None:
        record["outcome"] = "not probed (no IP address)"
        return record
    host, port = target
    dgram = service.socket_type is SocketType.DGRAM
    record["target"] = f"{host}:{port}/{'udp' if dgram else 'tcp'}"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM if dgram else socket.SOCK_STREAM)
    data = b""
    try:
        sock.settimeout(timeout)
        if source:
            sock.bind((source, 0))
        if dgram:
            sock.sendto(probe.send or b"\n", (host, port))
            try:
                data, _ = sock.recvfrom(65535)
                outcome = "answered"
            except socket.timeout:
                outcome = "no reply"
        else:
            try:
                sock.connect((host, port))
            except socket.timeout:
                record["outcome"] = "connect timed out"
                return record
            except ConnectionRefusedError:
                record["outcome"] = "connection refused"
                return record
            if probe.send:
                try:
                    sock.sendall(probe.send)
                except OSError:
                    pass
            outcome = "silent"
            # The first byte may take a server start (a unit per connection under a busy
            # manager): wait the full timeout for it, then only `probe.wait` between chunks.
            sock.settimeout(first_byte)
            deadline = time.monotonic() + first_byte + timeout
            while len(data) < probe.read and time.monotonic() < deadline:
                try:
                    chunk = sock.recv(probe.read - len(data))
                    sock.settimeout(probe.wait)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    outcome = "reset"
                    break
                if not chunk:
                    outcome = "closed"
                    break
                data += chunk
            if data:
                outcome = "answered" + (", then closed" if outcome == "closed" else "")
    except OSError as exc:
        outcome = f"error: {exc.strerror or exc}"
    finally:
        sock.close()
    record["outcome"] = outcome
    record["received"] = data[:probe.read].decode("latin-1")
    return record


def record_transcripts(migration: Migration, sources: list[str] | None,
                       probes: dict[str, Probe]) -> list[dict]:
    out = []
    for plan in migration.plans:
        if plan.original.disabled or not plan.units:
            continue
        probe = probes.get(plan.id) or INTERNAL_PROBES.get(plan.service.internal or "", Probe())
        for source in sources or [None]:
            out.append(transcript(plan.service, probe, source))
    return out


def compare(before: dict | None, after: dict | None, internal: str | None) -> str:
    """A verdict for one (service, source) pair of transcripts."""
    if before is None or after is None:
        return "missing"
    # Only an answer tells a served client from a refused one: tcpd holds a refused
    # connection open for 5 s (libwrap's clean_exit) and a discard server is silent too.
    served = lambda r: r["outcome"].startswith("answered")  # noqa: E731
    if served(before) != served(after):
        return "DIFFERS"
    if not served(before):
        if before["outcome"] == after["outcome"]:
            return "same"
        return f"same: nothing received ({before['outcome']} before, {after['outcome']} after)"
    if before["received"] == after["received"]:
        return "same"
    if internal in TIME_DEPENDENT and len(before["received"]) == len(after["received"]):
        return "same shape (time of day differs)"
    return "DIFFERS"


# -- the command -----------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[0]
    parser.add_argument("root", help="the legacy host's root (a copy of it, its /etc, or /)")
    parser.add_argument("-o", "--output-dir", required=True,
                        help="where the units, report and scripts go")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing, non-empty output directory")
    parser.add_argument("--prefix", default="", help="prefix for every unit name")
    parser.add_argument("--flavor", choices=("openbsd", "inetutils", "xinetd-compat"),
                        help="inetd.conf dialect (default: from the host's /etc/default)")
    parser.add_argument("--include-disabled", action="store_true",
                        help="convert disabled services too (their sockets are not started)")
    parser.add_argument("--systemd-version", type=int, default=None,
                        help="target systemd version (default: this host's)")
    parser.add_argument("--target-root", default="/",
                        help="root of the host the units will run on (programs are looked "
                             "for there; default /)")
    parser.add_argument("--no-port-check", action="store_true",
                        help="skip the ports-in-use preflight (the target is another host)")
    parser.add_argument("--check", choices=("before", "after"),
                        help="record the client transcripts of every service into "
                             "OUTPUT_DIR/transcripts (before: against the legacy "
                             "superserver; after: the new sockets) and refresh the report")
    parser.add_argument("--source", action="append", default=None, metavar="ADDRESS",
                        help="client source address for --check (repeatable)")
    parser.add_argument("--probes", help="JSON: service id -> {send, read, wait} for --check")


def run(args: argparse.Namespace) -> int:
    from . import migration_report
    from .units.install import installed_systemd_version

    version = args.systemd_version or installed_systemd_version()
    migration = plan_migration(args.root, prefix=args.prefix, flavor=args.flavor,
                               include_disabled=args.include_disabled, systemd_version=version,
                               target_root=args.target_root,
                               check_ports=not args.no_port_check and args.check is None)
    out = Path(args.output_dir)
    if args.check:
        if not (out / "units").is_dir():
            print(f"inetd2systemd import: {out} holds no import yet: run without --check first",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        records = record_transcripts(migration, args.source, load_probes(args.probes))
        (out / "transcripts").mkdir(exist_ok=True)
        _write(out / "transcripts" / f"{args.check}.json", json.dumps(records, indent=2) + "\n")
        transcripts = load_transcripts(out)
        _write(out / "report.md", migration_report.markdown(migration, transcripts))
        _write(out / "report.html", migration_report.html(migration, transcripts))
        verdicts = migration_report.equivalence_rows(migration, transcripts)
        differs = sum(1 for row in verdicts if row["verdict"].startswith("DIFFERS"))
        print(f"{SUMMARY_TAG} check={args.check} probes={len(records)} "
              f"compared={sum(1 for r in verdicts if r['verdict'] != 'missing')} differs={differs} "
              f"report={out / 'report.md'}")
        return EXIT_INCOMPLETE if differs else EXIT_OK
    try:
        write_output(migration, out, force=args.force, transcripts=None)
    except FileExistsError as exc:
        print(f"inetd2systemd import: {exc}", file=sys.stderr)
        return EXIT_FAILED
    from .report import text_lines
    every = [f for p in migration.plans for f in p.findings] + list(migration.findings) \
        + list(migration.preflight)
    for line in text_lines(every):
        print(line, file=sys.stderr)
    print(migration_report.summary_line(migration, out))
    return migration.exit_status


def load_transcripts(out: Path) -> dict[str, list[dict]]:
    found = {}
    for phase in ("before", "after"):
        path = out / "transcripts" / f"{phase}.json"
        if path.exists():
            found[phase] = json.loads(path.read_text())
    return found


__all__ = ["Migration", "ServicePlan", "plan_migration", "fold_access", "write_output",
           "install_script", "rollback_script", "transcript", "record_transcripts", "compare",
           "Probe", "configure", "run", "locate_etc"]
