"""syslog.conf: selectors and actions, read as sysklogd and rsyslog read them.

Selector semantics are rsyslog's (`DecodePRIFilter`, checked against rsyslogd 8.2302 by
tests/test_syslog_rules.py): every facility has a severity bit mask, the `;`-separated
parts are applied left to right and OR into it (`!` removes bits, `=` means exactly that
severity, `none` clears, `*` sets all), so `*.debug;local6.err` keeps local6 at debug and
above, unlike BSD syslogd. A negation only removes: `kern.!err` on its own selects
nothing (rsyslog does the same; write `kern.*;kern.!err`).

Actions: `/file` (synced after every batch of messages), `-/file` (not synced),
`|/fifo`, `/dev/console` and ttys, `@host[:port]` (UDP), `@@host[:port]` (TCP, LF
framing, `@@(o)host` octet counting), `~` / `stop` (discard for the rest of the
file), `:omjournal:` (the journal), and `&` to repeat the previous selector.

The reader is a pure function of the text, like tomli: it returns a `RuleSet` or raises
`ConfigError` naming the file, line and column. Constructs it cannot honour are never
skipped silently: user-message actions (`*`, `root`, `:omusrmsg:`) and rsyslog `$`
directives are reported as findings; filters it cannot evaluate (BSD `!prog`/`+host`
blocks, rsyslog property filters, RainerScript) are errors.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass

from ..errors import ConfigError
from ..model import Finding, Severity, Source
from .tables import FACILITY_COUNT, FACILITY_NAMES, MAX_PRI, SEVERITY_NAMES

ALL_SEVERITIES = 0xFF


@dataclass(frozen=True)
class Action:
    kind: str  # "file", "pipe", "console", "udp", "tcp", "journal", "stop"
    target: str = ""  # path, or host for forwarding
    port: int = 514
    sync: bool = False  # files: fdatasync after each batch
    octet_counted: bool = False  # tcp forwarding framing

    def key(self) -> tuple:
        """Rules naming the same destination share one open sink."""
        return (self.kind, self.target, self.port, self.octet_counted)


@dataclass(frozen=True)
class Rule:
    masks: tuple[int, ...]  # per facility code: bit n set = severity n selected
    action: Action
    source: Source

    def matches(self, facility: int, severity: int) -> bool:
        return facility < FACILITY_COUNT and bool(self.masks[facility] >> severity & 1)


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    findings: tuple[Finding, ...] = ()

    def route_table(self) -> list[tuple[Action, ...]]:
        """For every PRI 0..191, the actions a message with it goes to, in file order,
        stopping after a discard. Routing is then one list index per message."""
        table = []
        for pri in range(MAX_PRI + 1):
            facility, severity = pri >> 3, pri & 7
            actions: list[Action] = []
            for rule in self.rules:
                if rule.matches(facility, severity):
                    if rule.action.kind == "stop":
                        break
                    if rule.action not in actions:
                        actions.append(rule.action)
            table.append(tuple(actions))
        return table

    def actions(self) -> tuple[Action, ...]:
        seen: dict[tuple, Action] = {}
        for rule in self.rules:
            if rule.action.kind != "stop":
                seen.setdefault(rule.action.key(), rule.action)
        return tuple(seen.values())


def journal_ruleset() -> RuleSet:
    """The configuration used on a systemd host when none is given: all to the journal."""
    return RuleSet((Rule((ALL_SEVERITIES,) * FACILITY_COUNT, Action("journal"),
                         Source("<default>", 0)),))


def read_syslog_conf(path: str) -> RuleSet:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path) from None
    return parse_syslog_conf(text, path)


def parse_syslog_conf(text: str, file: str, *, _depth: int = 0) -> RuleSet:
    rules: list[Rule] = []
    findings: list[Finding] = []
    previous: tuple[int, ...] | None = None
    for lineno, line in _logical_lines(text):
        source = Source(file, lineno)
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        head = stripped.split(None, 1)[0]
        if head == "include" or head == "$IncludeConfig":
            pattern = stripped[len(head):].strip()
            if not pattern:
                raise ConfigError("include needs a path", file, lineno)
            if _depth > 8:
                raise ConfigError("includes nested too deeply", file, lineno)
            pattern = os.path.join(os.path.dirname(file), pattern)
            for included in sorted(glob.glob(pattern)):
                with open(included, encoding="utf-8", errors="surrogateescape") as f:
                    sub = parse_syslog_conf(f.read(), included, _depth=_depth + 1)
                rules.extend(sub.rules)
                findings.extend(sub.findings)
            continue
        if stripped.startswith("$"):
            findings.append(Finding(source, Severity.WARNING,
                                    f"rsyslog directive {head} is not supported; ignored"))
            continue
        if stripped[0] in "!+-":
            raise ConfigError("BSD program/host blocks (!prog, +host) are not supported",
                              file, lineno, _column(line, stripped))
        if stripped.startswith(":"):
            raise ConfigError("rsyslog property filters are not supported", file, lineno,
                              _column(line, stripped))
        if re.match(r"[A-Za-z_]+\s*\(|if\s|[{}]", stripped):
            raise ConfigError("RainerScript is not supported: only the legacy "
                              "selector/action syntax is", file, lineno, _column(line, stripped))
        parts = stripped.split(None, 1)
        if len(parts) < 2:
            raise ConfigError(f"no action after selector {parts[0]!r}", file, lineno,
                              _column(line, stripped))
        selector, action_text = parts
        if selector == "&":
            if previous is None:
                raise ConfigError("'&' with no previous selector", file, lineno, _column(line, stripped))
            masks = previous
        else:
            masks = parse_selector(selector, file, lineno, _column(line, selector))
        previous = masks
        action = parse_action(action_text.strip(), file, lineno, _column(line, action_text),
                              findings)
        if action is not None:
            rules.append(Rule(masks, action, source))
    return RuleSet(tuple(rules), tuple(findings))


def _logical_lines(text: str):
    """(first line number, text) with trailing-backslash continuations joined."""
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        if line.endswith("\\") and not line.lstrip().startswith("#"):
            pending += line[:-1]  # joined verbatim, as sysklogd does
            continue
        yield start, pending + line
        pending = ""
    if pending:
        yield start, pending


def _column(line: str, token: str) -> int:
    return line.find(token) + 1 if token in line else 1


def parse_selector(text: str, file: str = "<selector>", line: int = 0,
                   column: int = 1) -> tuple[int, ...]:
    """A selector such as `*.info;mail.none;authpriv.!=debug` -> a mask per facility."""
    masks = [0] * FACILITY_COUNT
    offset = 0
    for part in text.split(";"):
        col = column + offset
        offset += len(part) + 1
        if not part:
            continue
        if "." not in part:
            raise ConfigError(f"selector {part!r} has no '.priority'", file, line, col)
        facs, priority = part.split(".", 1)
        negate = priority.startswith("!")
        if negate:
            priority = priority[1:]
        exact = priority.startswith("=")
        if exact:
            priority = priority[1:]
        priority = priority.lower()
        if priority not in SEVERITY_NAMES and priority not in ("none", "*"):
            raise ConfigError(f"unknown priority {priority!r}", file, line,
                              col + len(facs) + 1)
        facilities: list[int] = []
        for name in facs.split(","):
            name = name.strip().lower()
            if name == "*":
                facilities.extend(range(FACILITY_COUNT))
            elif name in FACILITY_NAMES:
                facilities.append(FACILITY_NAMES[name])
            else:
                raise ConfigError(f"unknown facility {name!r}", file, line, col)
        for f in facilities:
            if priority == "none":
                masks[f] = ALL_SEVERITIES if negate else 0
            elif priority == "*":
                masks[f] = 0 if negate else ALL_SEVERITIES
            else:
                level = SEVERITY_NAMES[priority]
                bits = 1 << level if exact else (1 << (level + 1)) - 1
                if negate:
                    masks[f] &= ~bits
                else:
                    masks[f] |= bits
    return tuple(masks)


_HOST_PORT = re.compile(r"(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d+))?$")


def parse_action(text: str, file: str, line: int, column: int,
                 findings: list[Finding]) -> Action | None:
    """One action; None when it is reported as unsupported (in findings) and skipped."""
    if ";" in text and not text.startswith(("*", ":")):
        text, template = text.split(";", 1)
        findings.append(Finding(Source(file, line), Severity.WARNING,
                                f"template {template!r} ignored; the traditional format is used"))
    if text in ("~", "stop"):
        return Action("stop")
    if text == ":omjournal:":
        return Action("journal")
    if text.startswith("@"):
        tcp = text.startswith("@@")
        rest = text[2:] if tcp else text[1:]
        octet = False
        if rest.startswith("("):
            options, _, rest = rest[1:].partition(")")
            octet = "o" in options
        m = _HOST_PORT.match(rest)
        if m is None:
            raise ConfigError(f"bad forwarding target {text!r}", file, line, column)
        port = int(m["port"] or 514)
        if not 0 < port < 65536:
            raise ConfigError(f"bad port in {text!r}", file, line, column)
        return Action("tcp" if tcp else "udp", m["v6"] or m["host"], port, octet_counted=octet)
    if text.startswith("|"):
        return Action("pipe", text[1:].strip())
    sync = True
    path = text
    if path.startswith("-"):
        sync, path = False, path[1:]
    if path.startswith("/"):
        if path == "/dev/console" or path.startswith("/dev/tty"):
            return Action("console", path)
        return Action("file", path, sync=sync)
    if text == "*" or text.startswith(":omusrmsg:") or re.fullmatch(r"[\w.-]+(,[\w.-]+)*", text):
        findings.append(Finding(Source(file, line), Severity.WARNING,
                                f"user message action {text!r} is not supported; ignored"))
        return None
    raise ConfigError(f"unknown action {text!r}", file, line, column)
