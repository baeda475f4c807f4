"""The migration report of `inetd2systemd import`: Markdown, HTML, JSON and one summary line.

Both documents are made from the same rows (`_sections`), so they never disagree:
the summary, the preflight findings, then per service its source lines, its units,
the access rules it carries, each warning, and what to check after the switch; last,
when transcripts were recorded, the equivalence table (before | after | verdict).
"""

from __future__ import annotations

import html as _html
from pathlib import Path

from ..model import Finding, Severity, Source
from ..report import finding_json
from .plan import Migration, ServicePlan
from .probe import compare

SUMMARY_TAG = "inetd2systemd-import:"  # the summary line's prefix, for scripts to grep
SEVERITY_MARK = {Severity.ERROR: "ERROR", Severity.WARNING: "warning", Severity.INFO: "note"}


def summary_line(migration: Migration, output: str | Path) -> str:
    """One line of `key=value` words, prefixed so a script can grep it."""
    c = migration.counts()
    status = "failed" if c["failed"] == c["services"] and c["services"] else (
        "incomplete" if c["failed"] or c["preflight_errors"] else
        "approximated" if c["approximated"] or c["stricter"] else "complete")
    words = [f"status={status}"] + [f"{k}={v}" for k, v in c.items()]
    words.append(f"report={Path(output) / 'report.md'}")
    return f"{SUMMARY_TAG} " + " ".join(words)


def summary_json(migration: Migration) -> dict:
    return {
        "root": str(migration.root),
        "inputs": list(migration.inputs),
        "created": migration.created,
        "counts": migration.counts(),
        "legacy_units": list(migration.legacy),
        "services": [{
            "id": p.id, "status": p.status, "source": str(p.original.source),
            "daemon": p.daemon,
            "allow": None if p.allow is None else list(p.allow),
            "exact": None if p.access is None else p.access.exact,
            "units": [u.name for u in p.units],
            "findings": [finding_json(f) for f in p.findings],
        } for p in migration.plans],
        "preflight": [finding_json(f) for f in migration.preflight],
        "findings": [finding_json(f) for f in migration.findings],
    }


# -- shared content ---------------------------------------------------------------------------


def source_excerpt(source: Source, limit: int = 40) -> str:
    """The lines a service was read from: an xinetd block up to its `}`, an inetd line
    with its continuation lines."""
    try:
        lines = Path(source.file).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return f"({source.file} is not readable)"
    start = source.line - 1
    if not 0 <= start < len(lines):
        return ""
    out = [lines[start]]
    if lines[start].lstrip().startswith("service"):
        for line in lines[start + 1:start + limit]:
            out.append(line)
            if line.strip() == "}":
                break
    else:
        for line in lines[start + 1:start + limit]:
            if not line[:1].isspace() or not line.strip():
                break
            out.append(line)
    return "\n".join(out)


def what_to_check(plan: ServicePlan) -> list[str]:
    s = plan.service
    checks = []
    units = [u.name for u in plan.units]
    sockets = [u for u in units if u.endswith(".socket")]
    if sockets:
        checks.append(f"`systemctl status {' '.join(sockets)}` shows the socket listening "
                      f"on {', '.join(str(lst) for lst in s.listens)}")
    if plan.allow is not None:
        checks.append("from an allowed address the service answers; from another the "
                      "connection times out (systemd drops refused packets silently)")
    if plan.access is not None and not plan.access.exact:
        checks.append("clients that tcp_wrappers let in by host name, domain, netgroup or "
                      "ident are refused now: add their addresses to the socket's "
                      "IPAddressAllow= if they must still connect")
    if s.user:
        checks.append(f"the server runs as {s.user}" + (f":{s.group}" if s.group else ""))
    if s.server:
        checks.append(f"{s.server} is installed on the target")
    checks.append("`journalctl -u` the service after a first connection: no errors")
    return checks


def equivalence_rows(migration: Migration, transcripts: dict | None) -> list[dict]:
    if not transcripts:
        return []
    key = lambda r: (r["service"], r["source"])  # noqa: E731
    before = {key(r): r for r in transcripts.get("before", [])}
    after = {key(r): r for r in transcripts.get("after", [])}
    internal = {p.id: p.service.internal for p in migration.plans}
    rows = []
    for k in list(before) + [k for k in after if k not in before]:
        b, a = before.get(k), after.get(k)
        rows.append({"service": k[0], "source": k[1] or "default", "before": b, "after": a,
                     "verdict": compare(b, a, internal.get(k[0]))})
    return rows


def _show(record: dict | None) -> str:
    if record is None:
        return "(not recorded)"
    text = record["received"]
    shown = text[:120].encode("unicode_escape").decode("ascii")
    return f"{record['outcome']}" + (f": `{shown}`" if text else "")


def _findings_for(plan: ServicePlan) -> list[Finding]:
    return [f for f in plan.findings if f.severity is not Severity.INFO]


def _notes_for(plan: ServicePlan) -> list[Finding]:
    return [f for f in plan.findings if f.severity is Severity.INFO]


# -- Markdown -------------------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(migration: Migration, transcripts: dict | None = None) -> str:
    c = migration.counts()
    out = [f"# Migration report: {migration.root}", "",
           f"Generated by `inetd2systemd import` on {migration.created}.", "",
           f"<!-- {summary_line(migration, '.')} -->", "",
           "## Summary", "",
           f"- Read: {', '.join(f'`{p}`' for p in migration.inputs)}; port names from "
           f"`{migration.services_file}`; tcp_wrappers rules: "
           f"{len(migration.wrappers.allow)} in hosts.allow, {len(migration.wrappers.deny)} "
           "in hosts.deny.",
           f"- {c['services']} services: {c['converted']} converted exactly, "
           f"{c['approximated']} approximated, {c['failed']} not converted, "
           f"{c['disabled']} disabled; {c['units']} units.",
           f"- Access made stricter than before for {c['stricter']} service(s) "
           "(tcp_wrappers rules systemd cannot express).",
           f"- Preflight: {c['preflight_errors']} errors, {c['preflight_warnings']} warnings.",
           "", "| service | status | source | units | access (IPAddressAllow=) |",
           "|---|---|---|---|---|"]
    for p in migration.plans:
        allow = "open" if p.allow is None else (" ".join(p.allow) or "nobody")
        out.append(f"| [{p.id}](#service-{p.id}) | {p.status} | `{p.original.source}` | "
                   f"{', '.join(f'`{u.name}`' for u in p.units) or '-'} | {_md_escape(allow)} |")
    out += ["", "## Preflight", ""]
    if migration.preflight:
        out += [f"- **{SEVERITY_MARK[f.severity]}** `{f.source}`"
                f"{f' [{f.service}]' if f.service else ''}: {f.message}" for f in migration.preflight]
    else:
        out.append("Nothing found: no port in use, accounts and programs present.")
    if migration.findings:
        out += ["", "## Configuration-wide remarks", ""]
        out += [f"- {SEVERITY_MARK[f.severity]} `{f.source}`: {f.message}" for f in migration.findings]
    out += ["", "## Services", ""]
    for p in migration.plans:
        out += [f"### <a id=\"service-{p.id}\"></a>{p.id} — {p.status}", "",
                f"Source `{p.original.source}`:", "", "```", source_excerpt(p.original.source), "```", ""]
        if p.daemon:
            out.append(f"tcp_wrappers daemon name: `{p.daemon}`; rules that apply:")
            out.append("")
            rules = p.access.rules if p.access else ()
            out += [f"- `{r.source}`: `{r.text}`" for r in rules] or ["- none"]
            out.append("")
        allow = "open to every address" if p.allow is None else (
            f"`IPAddressDeny=any` + `IPAddressAllow={' '.join(p.allow)}`" if p.allow
            else "`IPAddressDeny=any`: nobody")
        out += [f"Access on the socket: {allow}"
                + ("" if p.access is None or p.access.exact else " — **stricter than before**"), ""]
        warnings = _findings_for(p)
        if warnings:
            out += ["Warnings:", ""]
            out += [f"- **{SEVERITY_MARK[f.severity]}** `{f.source}`: {f.message}" for f in warnings]
            out.append("")
        notes = _notes_for(p)
        if notes:
            out += ["Notes:", ""] + [f"- `{f.source}`: {f.message}" for f in notes] + [""]
        pre = [f for f in migration.preflight if f.service == p.id]
        if pre:
            out += ["Preflight:", ""] + [f"- {SEVERITY_MARK[f.severity]}: {f.message}" for f in pre] + [""]
        out += ["What to check after the switch:", ""] + [f"- [ ] {c}" for c in what_to_check(p)] + [""]
        for u in p.units:
            out += [f"<details><summary>{u.name}</summary>", "", "```ini", u.text.rstrip(), "```",
                    "", "</details>", ""]
    rows = equivalence_rows(migration, transcripts)
    out += ["## Equivalence check", ""]
    if rows:
        out += ["The same client transcript (connect, send, read) before the switch (legacy "
                "superserver) and after it (systemd sockets).", "",
                "| service | client source | before | after | verdict |", "|---|---|---|---|---|"]
        out += [f"| {r['service']} | {r['source']} | {_md_escape(_show(r['before']))} | "
                f"{_md_escape(_show(r['after']))} | {r['verdict']} |" for r in rows]
    else:
        out += ["Not recorded yet. Run `inetd2systemd import ROOT -o DIR --check before` while the "
                "legacy superserver runs, `install.sh`, then `--check after`."]
    out += ["", "## Switching", "",
            "1. Review this report; fix the preflight findings.",
            "2. `sudo ./install.sh` stops " + (", ".join(f"`{u}`" for u in migration.legacy)
                                              or "the legacy superserver")
            + " (whichever exist), installs `units/` into /etc/systemd/system and starts the sockets.",
            "3. `sudo ./rollback.sh` puts everything back as it was.", ""]
    return "\n".join(out)


# -- HTML -------------------------------------------------------------------------------------------

_CSS = """body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;vertical-align:top;text-align:left}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto}.ERROR{color:#b00;font-weight:bold}.warning{color:#a60}
.note{color:#555}.failed{background:#fdd}.approximated{background:#ffd}.converted{background:#dfd}
.DIFFERS{background:#fdd;font-weight:bold}"""


def html(migration: Migration, transcripts: dict | None = None) -> str:
    e = _html.escape
    c = migration.counts()
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>Migration report: {e(str(migration.root))}</title><style>{_CSS}</style></head><body>",
             f"<h1>Migration report: {e(str(migration.root))}</h1>",
             f"<p>Generated by <code>inetd2systemd import</code> on {e(migration.created)}.</p>",
             f"<p><code>{e(summary_line(migration, '.'))}</code></p>",
             "<h2>Summary</h2>",
             f"<p>{c['services']} services: {c['converted']} converted exactly, {c['approximated']} "
             f"approximated, {c['failed']} not converted, {c['disabled']} disabled; {c['units']} "
             f"units. Access made stricter for {c['stricter']} service(s). Preflight: "
             f"{c['preflight_errors']} errors, {c['preflight_warnings']} warnings.</p>",
             "<table><tr><th>service</th><th>status</th><th>source</th><th>units</th>"
             "<th>access (IPAddressAllow=)</th></tr>"]
    for p in migration.plans:
        allow = "open" if p.allow is None else (" ".join(p.allow) or "nobody")
        parts.append(f"<tr class=\"{p.status}\"><td><a href=\"#service-{e(p.id)}\">{e(p.id)}</a></td>"
                     f"<td>{p.status}</td><td><code>{e(str(p.original.source))}</code></td>"
                     f"<td>{e(', '.join(u.name for u in p.units)) or '-'}</td><td>{e(allow)}</td></tr>")
    parts.append("</table><h2>Preflight</h2><ul>")
    parts += [f"<li><span class=\"{SEVERITY_MARK[f.severity]}\">{SEVERITY_MARK[f.severity]}</span> "
              f"<code>{e(str(f.source))}</code>{e(f' [{f.service}]' if f.service else '')}: {e(f.message)}</li>"
              for f in migration.preflight] or ["<li>Nothing found.</li>"]
    parts.append("</ul>")
    if migration.findings:
        parts.append("<h2>Configuration-wide remarks</h2><ul>")
        parts += [f"<li><span class=\"{SEVERITY_MARK[f.severity]}\">{SEVERITY_MARK[f.severity]}</span> "
                  f"<code>{e(str(f.source))}</code>: {e(f.message)}</li>" for f in migration.findings]
        parts.append("</ul>")
    parts.append("<h2>Services</h2>")
    for p in migration.plans:
        parts += [f"<h3 id=\"service-{e(p.id)}\">{e(p.id)} — {p.status}</h3>",
                  f"<p>Source <code>{e(str(p.original.source))}</code>:</p>",
                  f"<pre>{e(source_excerpt(p.original.source))}</pre>"]
        if p.daemon:
            rules = p.access.rules if p.access else ()
            parts.append(f"<p>tcp_wrappers daemon name <code>{e(p.daemon)}</code>; rules that apply:</p><ul>")
            parts += [f"<li><code>{e(str(r.source))}</code>: <code>{e(r.text)}</code></li>" for r in rules] \
                or ["<li>none</li>"]
            parts.append("</ul>")
        allow = "open to every address" if p.allow is None else (
            f"IPAddressDeny=any + IPAddressAllow={' '.join(p.allow)}" if p.allow else "IPAddressDeny=any: nobody")
        stricter = "" if p.access is None or p.access.exact else " <strong>(stricter than before)</strong>"
        parts.append(f"<p>Access on the socket: <code>{e(allow)}</code>{stricter}</p>")
        listed = _findings_for(p) + _notes_for(p) + [f for f in migration.preflight if f.service == p.id]
        if listed:
            parts.append("<ul>")
            parts += [f"<li><span class=\"{SEVERITY_MARK[f.severity]}\">{SEVERITY_MARK[f.severity]}</span> "
                      f"<code>{e(str(f.source))}</code>: {e(f.message)}</li>" for f in listed]
            parts.append("</ul>")
        parts.append("<p>What to check after the switch:</p><ul>")
        parts += [f"<li>{e(c.replace('`', ''))}</li>" for c in what_to_check(p)]
        parts.append("</ul>")
        for u in p.units:
            parts.append(f"<details><summary>{e(u.name)}</summary><pre>{e(u.text)}</pre></details>")
    parts.append("<h2>Equivalence check</h2>")
    rows = equivalence_rows(migration, transcripts)
    if rows:
        parts.append("<table><tr><th>service</th><th>client source</th><th>before</th><th>after</th>"
                     "<th>verdict</th></tr>")
        parts += [f"<tr><td>{e(r['service'])}</td><td>{e(r['source'])}</td><td>{e(_show(r['before']))}</td>"
                  f"<td>{e(_show(r['after']))}</td><td class=\"{r['verdict'].split(':')[0]}\">"
                  f"{e(r['verdict'])}</td></tr>" for r in rows]
        parts.append("</table>")
    else:
        parts.append("<p>Not recorded yet: <code>--check before</code>, install.sh, "
                     "<code>--check after</code>.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
