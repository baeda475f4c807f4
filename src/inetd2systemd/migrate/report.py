"""The migration report of `inetd2systemd import`: Markdown, HTML, JSON and one summary line.

Both documents are rendered from one model (`document`), so they never disagree:
the summary, the preflight findings, then per service its source lines, its units,
the access rules it carries, each warning, and what to check after the switch; last,
when transcripts were recorded, the equivalence table (before | after | verdict).
"""

from __future__ import annotations

import html as _html
from pathlib import Path

from ..model import Finding, Severity, Source
from ..report import SCHEMA, finding_json
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


def summary_json(migration: Migration, transcripts: dict | None = None) -> dict:
    """summary.json: the counts, each service's outcome and, once transcripts were
    recorded (--check), the equivalence rows with their verdicts."""
    return {
        "schema": SCHEMA,
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
            "programs": list(p.programs),
            "findings": [finding_json(f) for f in p.findings],
        } for p in migration.plans],
        "preflight": [finding_json(f) for f in migration.preflight],
        "findings": [finding_json(f) for f in migration.findings],
        "equivalence": equivalence_rows(migration, transcripts),
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


# -- the document: one model, two renderers ---------------------------------------------------------
#
# The report is built once as a list of blocks whose text is made of inline pieces; the
# Markdown and HTML renderers only spell them, so the two documents never disagree.
# Inline pieces: ("text", s), ("code", s), ("strong", s), ("link", s, anchor),
# ("mark", label) for a severity (ERROR, warning, note).
# Blocks: ("h", level, inlines, anchor), ("p", inlines), ("list", [inlines], style) with
# style "bullet", "check" or "number",
# ("table", headers, [(cells, css_class)]), ("pre", text, language),
# ("details", summary, text, language).

def _t(s: str) -> tuple:
    return ("text", s)


def _c(s: str) -> tuple:
    return ("code", s)


def _finding(f: Finding, *, where: bool = True, who: bool = False) -> list[tuple]:
    out = [("mark", SEVERITY_MARK[f.severity]), _t(" ")]
    if where:
        out.append(_c(str(f.source)))
    if who and f.service:
        out.append(_t(f" [{f.service}]"))
    return out + [_t(f": {f.message}")]


def _access_text(plan: ServicePlan) -> str:
    if plan.allow is None:
        return "open to every address"
    if plan.allow:
        return f"IPAddressDeny=any + IPAddressAllow={' '.join(plan.allow)}"
    return "IPAddressDeny=any: nobody"


def document(migration: Migration, transcripts: dict | None = None) -> tuple[str, list]:
    """The report's title and blocks."""
    c = migration.counts()
    title = f"Migration report: {migration.root}"
    blocks: list = [
        ("p", [_t("Generated by "), _c("inetd2systemd import"), _t(f" on {migration.created}.")]),
        ("h", 2, [_t("Summary")], None),
        ("list", [
            [_t("Read: ")] + _joined([_c(str(p)) for p in migration.inputs])
            + [_t("; port names from "), _c(str(migration.services_file)),
               _t(f"; tcp_wrappers rules: {len(migration.wrappers.allow)} in hosts.allow, "
                  f"{len(migration.wrappers.deny)} in hosts.deny.")],
            [_t(f"{c['services']} services: {c['converted']} converted exactly, "
                f"{c['approximated']} approximated, {c['failed']} not converted, "
                f"{c['disabled']} disabled; {c['units']} units.")],
            [_t(f"Access made stricter than before for {c['stricter']} service(s) "
                "(tcp_wrappers rules systemd cannot express).")],
            [_t(f"Preflight: {c['preflight_errors']} errors, {c['preflight_warnings']} warnings.")],
        ], "bullet"),
        ("table", ("service", "status", "source", "units", "access (IPAddressAllow=)"), [
            ([[("link", p.id, f"service-{p.id}")], [_t(p.status)], [_c(str(p.original.source))],
              _joined([_c(u.name) for u in p.units]) or [_t("-")],
              [_t("open" if p.allow is None else (" ".join(p.allow) or "nobody"))]], p.status)
            for p in migration.plans]),
        ("h", 2, [_t("Preflight")], None),
    ]
    if migration.preflight:
        blocks.append(("list", [_finding(f, who=True) for f in migration.preflight], "bullet"))
    else:
        blocks.append(("p", [_t("Nothing found: no port in use, accounts and programs present.")]))
    if migration.findings:
        blocks += [("h", 2, [_t("Configuration-wide remarks")], None),
                   ("list", [_finding(f) for f in migration.findings], "bullet")]
    blocks.append(("h", 2, [_t("Services")], None))
    for p in migration.plans:
        blocks += _service_blocks(migration, p)
    blocks += _equivalence_blocks(migration, transcripts)
    legacy = _joined([_c(u) for u in migration.legacy]) or [_t("the legacy superserver")]
    blocks += [("h", 2, [_t("Switching")], None),
               ("list", [[_t("Review this report; fix the preflight findings.")],
                         [_c("sudo ./install.sh"), _t(" stops ")] + legacy
                         + [_t(" (whichever exist), installs "), _c("units/"),
                            _t(" into /etc/systemd/system and starts the sockets.")],
                         [_c("sudo ./rollback.sh"), _t(" puts everything back as it was.")]],
                "number")]
    return title, blocks


def _joined(pieces: list[tuple], sep: str = ", ") -> list[tuple]:
    out: list[tuple] = []
    for i, piece in enumerate(pieces):
        if i:
            out.append(_t(sep))
        out.append(piece)
    return out


def _service_blocks(migration: Migration, p: ServicePlan) -> list:
    blocks: list = [("h", 3, [_t(f"{p.id} — {p.status}")], f"service-{p.id}"),
                    ("p", [_t("Source "), _c(str(p.original.source)), _t(":")]),
                    ("pre", source_excerpt(p.original.source), "")]
    if p.daemon:
        rules = p.access.rules if p.access else ()
        blocks += [("p", [_t("tcp_wrappers daemon name: "), _c(p.daemon), _t("; rules that apply:")]),
                   ("list", [[_c(str(r.source)), _t(": "), _c(r.text)] for r in rules]
                    or [[_t("none")]], "bullet")]
    access = [_t("Access on the socket: "), _c(_access_text(p))]
    if p.access is not None and not p.access.exact:
        access += [_t(" — "), ("strong", "stricter than before")]
    blocks.append(("p", access))
    warnings = [f for f in p.findings if f.severity is not Severity.INFO]
    if warnings:
        blocks += [("p", [_t("Warnings:")]), ("list", [_finding(f) for f in warnings], "bullet")]
    notes = [f for f in p.findings if f.severity is Severity.INFO]
    if notes:
        blocks += [("p", [_t("Notes:")]), ("list", [_finding(f) for f in notes], "bullet")]
    pre = [f for f in migration.preflight if f.service == p.id]
    if pre:
        blocks += [("p", [_t("Preflight:")]), ("list", [_finding(f, where=False) for f in pre], "bullet")]
    blocks += [("p", [_t("What to check after the switch:")]),
               ("list", [_inline_code(check) for check in what_to_check(p)], "check")]
    blocks += [("details", u.name, u.text.rstrip(), "ini") for u in p.units]
    return blocks


def _inline_code(text: str) -> list[tuple]:
    """Text with `backquoted` parts as code pieces."""
    return [_c(part) if i % 2 else _t(part) for i, part in enumerate(text.split("`")) if part]


def _equivalence_blocks(migration: Migration, transcripts: dict | None) -> list:
    blocks: list = [("h", 2, [_t("Equivalence check")], None)]
    rows = equivalence_rows(migration, transcripts)
    if not rows:
        return blocks + [("p", [_t("Not recorded yet. Run "),
                                _c("inetd2systemd import ROOT -o DIR --check before"),
                                _t(" while the legacy superserver runs, "), _c("install.sh"),
                                _t(", then "), _c("--check after"), _t(".")])]
    return blocks + [
        ("p", [_t("The same client transcript (connect, send, read) before the switch (legacy "
                  "superserver) and after it (systemd sockets).")]),
        ("table", ("service", "client source", "before", "after", "verdict"),
         [([[_t(r["service"])], [_t(r["source"])], _inline_code(_show(r["before"])),
            _inline_code(_show(r["after"])), [_t(r["verdict"])]], r["verdict"].split(":")[0])
          for r in rows])]


# -- Markdown -------------------------------------------------------------------------------------

_MD_BULLET = {"bullet": "- ", "check": "- [ ] ", "number": "{}. "}


def _md_inline(pieces: list[tuple], *, in_table: bool = False) -> str:
    out = []
    for kind, text, *rest in pieces:
        if kind == "code":
            text = f"`{text}`"
        elif kind in ("strong", "mark") and not (kind == "mark" and text == "note"):
            text = f"**{text}**"
        elif kind == "link":
            text = f"[{text}](#{rest[0]})"
        out.append(text)
    line = "".join(out)
    return line.replace("|", "\\|").replace("\n", " ") if in_table else line


def markdown(migration: Migration, transcripts: dict | None = None) -> str:
    title, blocks = document(migration, transcripts)
    out = [f"# {title}", "", f"<!-- {summary_line(migration, '.')} -->", ""]
    for block in blocks:
        kind = block[0]
        if kind == "h":
            anchor = f'<a id="{block[3]}"></a>' if block[3] else ""
            out += [f"{'#' * block[1]} {anchor}{_md_inline(block[2])}", ""]
        elif kind == "p":
            out += [_md_inline(block[1]), ""]
        elif kind == "list":
            out += [f"{_MD_BULLET[block[2]].format(n)}{_md_inline(item)}"
                    for n, item in enumerate(block[1], 1)] + [""]
        elif kind == "table":
            out += ["| " + " | ".join(block[1]) + " |", "|" + "---|" * len(block[1])]
            out += ["| " + " | ".join(_md_inline(cell, in_table=True) for cell in cells) + " |"
                    for cells, _ in block[2]]
            out.append("")
        elif kind == "pre":
            out += [f"```{block[2]}", block[1], "```", ""]
        elif kind == "details":
            out += [f"<details><summary>{block[1]}</summary>", "", f"```{block[3]}", block[2],
                    "```", "", "</details>", ""]
    return "\n".join(out)


# -- HTML -------------------------------------------------------------------------------------------

_CSS = """body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;vertical-align:top;text-align:left}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto}.ERROR{color:#b00;font-weight:bold}.warning{color:#a60}
.note{color:#555}.failed{background:#fdd}.approximated{background:#ffd}.converted{background:#dfd}
.DIFFERS{background:#fdd;font-weight:bold}"""


def _html_inline(pieces: list[tuple]) -> str:
    e = _html.escape
    out = []
    for kind, text, *rest in pieces:
        if kind == "code":
            out.append(f"<code>{e(text)}</code>")
        elif kind == "strong":
            out.append(f"<strong>{e(text)}</strong>")
        elif kind == "mark":
            out.append(f'<span class="{e(text)}">{e(text)}</span>')
        elif kind == "link":
            out.append(f'<a href="#{e(rest[0])}">{e(text)}</a>')
        else:
            out.append(e(text))
    return "".join(out)


def html(migration: Migration, transcripts: dict | None = None) -> str:
    e = _html.escape
    title, blocks = document(migration, transcripts)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
             f"<!-- {e(summary_line(migration, '.'))} -->", f"<h1>{e(title)}</h1>"]
    for block in blocks:
        kind = block[0]
        if kind == "h":
            anchor = f' id="{e(block[3])}"' if block[3] else ""
            parts.append(f"<h{block[1]}{anchor}>{_html_inline(block[2])}</h{block[1]}>")
        elif kind == "p":
            parts.append(f"<p>{_html_inline(block[1])}</p>")
        elif kind == "list":
            tag = "ol" if block[2] == "number" else "ul"
            parts.append(f"<{tag}>" + "".join(f"<li>{_html_inline(item)}</li>" for item in block[1])
                         + f"</{tag}>")
        elif kind == "table":
            parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in block[1]) + "</tr>")
            parts += ["<tr" + (f' class="{e(css)}"' if css else "") + ">"
                      + "".join(f"<td>{_html_inline(cell)}</td>" for cell in cells) + "</tr>"
                      for cells, css in block[2]]
            parts.append("</table>")
        elif kind == "pre":
            parts.append(f"<pre>{e(block[1])}</pre>")
        elif kind == "details":
            parts.append(f"<details><summary>{e(block[1])}</summary><pre>{e(block[2])}</pre></details>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
