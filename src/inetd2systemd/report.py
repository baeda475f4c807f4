"""The report of a conversion: findings as text lines and as JSON, and the exit status.

Shared by `convert` and `import`: one place decides what "carried over" means.
A conversion is complete when no finding is a WARNING or an ERROR; INFO findings
explain choices that keep the behaviour.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .errors import EXIT_INCOMPLETE, EXIT_OK
from .model import Finding, Service, Severity


def incomplete(findings: Iterable[Finding]) -> bool:
    """Whether anything was not carried over exactly (a WARNING or an ERROR)."""
    return any(f.severity is not Severity.INFO for f in findings)


def exit_status(findings: Iterable[Finding]) -> int:
    return EXIT_INCOMPLETE if incomplete(findings) else EXIT_OK


def text_lines(findings: Iterable[Finding], *, verbose: bool = False) -> list[str]:
    """`file:line[:column]: severity [id]: message`, in source order; INFO only when
    verbose."""
    shown = [f for f in findings if verbose or f.severity is not Severity.INFO]
    return [str(f) for f in sorted(shown, key=lambda f: f.source)]


def summary(services: Sequence[Service], unit_count: int, findings: Sequence[Finding]) -> str:
    counts = {s: sum(1 for f in findings if f.severity is s) for s in Severity}
    return (f"{len(services)} services, {unit_count} units; {counts[Severity.ERROR]} errors, "
            f"{counts[Severity.WARNING]} warnings, {counts[Severity.INFO]} notes")


# The version of the JSON documents `convert --json` and `import` (summary.json) write:
# raised when a field changes meaning or goes away, not when one is added (docs/json.md).
SCHEMA = 1


def finding_json(finding: Finding) -> dict[str, object]:
    return {"code": finding.code, "file": finding.source.file, "line": finding.source.line,
            "column": finding.source.column or None,
            "severity": finding.severity.value, "service": finding.service,
            "message": finding.message}


def error_json(code: str, message: str, file: str | None = None, line: int | None = None,
               column: int | None = None) -> dict[str, object]:
    """Why a command stopped (exit 2 or 3): the shape of a finding, severity "error"."""
    return {"code": code, "file": file, "line": line, "column": column or None,
            "severity": "error", "service": None, "message": message}


def service_json(service: Service) -> dict[str, object]:
    """The fields a script needs to know what a service was and where it came from."""
    return {
        "id": service.id, "name": service.name,
        "file": service.source.file, "line": service.source.line,
        "socket_type": service.socket_type.value, "protocol": service.protocol,
        "listen": [str(listen) for listen in service.listens],
        "wait": service.wait, "server": service.server, "argv": list(service.argv),
        "internal": service.internal, "user": service.user, "group": service.group,
        "rate": None if service.rate is None else {
            "count": service.rate.count, "interval": service.rate.interval,
            "pause": service.rate.pause},
        "tcp_wrapped": service.tcp_wrapped, "disabled": service.disabled,
    }
