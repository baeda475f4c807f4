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
import ipaddress
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from ..config.trust import UntrustedPath, check_trusted
from ..errors import ConfigError
from ..model import Code, Finding, Severity, Source
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


MAX_CONFIG_BYTES = 16 * 1024 * 1024  # one syslog.conf: far beyond any real one
MAX_INCLUDED_FILES = 1000  # files read for one configuration, includes counted
MAX_INCLUDE_DEPTH = 8
_NULL_DEVICE = os.makedev(1, 3)  # /dev/null on Linux


def journal_ruleset() -> RuleSet:
    """The configuration used on a systemd host when none is given: all to the journal."""
    return RuleSet((Rule((ALL_SEVERITIES,) * FACILITY_COUNT, Action("journal"),
                         Source("<default>", 0)),))


def read_syslog_conf(path: str) -> RuleSet:
    """Read a syslog.conf and the files it includes. Only regular files are read, only
    files root alone can change when we run as root (config.trust), each at most
    MAX_CONFIG_BYTES; every problem is a ConfigError naming the file (and the include
    line that led to it)."""
    reader = _Includes()
    return parse_syslog_conf(reader.read(path), path, include=reader)


def parse_syslog_conf(text: str, file: str, *, include: _Includes | None = None) -> RuleSet:
    """The rules in `text` (read from `file`). `include` reads the files that `include`
    lines name; without one they are read from the file system."""
    include = include or _Includes()
    rules: list[Rule] = []
    findings: list[Finding] = []
    previous: tuple[int, ...] | None = None
    for lineno, line in _logical_lines(text):
        source = Source(file, lineno)
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        start = len(line) - len(line.lstrip()) + 1  # the column where the text starts
        head, after_head = _first_word(stripped)
        if head == "include" or head.lower() == "$includeconfig":
            pattern = after_head.strip()
            where = (file, lineno, start + len(stripped) - len(after_head.lstrip())
                     if pattern else start + len(head))
            for name, sub_text in include.expand(pattern, where, findings):
                sub = parse_syslog_conf(sub_text, name, include=include)
                rules.extend(sub.rules)
                findings.extend(sub.findings)
            include.leave()
            continue
        if stripped.startswith("$"):
            findings.append(Finding(source, Severity.WARNING,
                                    f"rsyslog directive {head} is not supported; ignored",
                                    code=Code.SYSLOG_UNSUPPORTED))
            continue
        if stripped[0] in "!+-":
            raise ConfigError("BSD program/host blocks (!prog, +host) are not supported",
                              file, lineno, start)
        if stripped.startswith(":"):
            raise ConfigError("rsyslog property filters are not supported", file, lineno, start)
        if re.match(r"[A-Za-z_]+\s*\(|if\s|[{}]", stripped):
            raise ConfigError("RainerScript is not supported: only the legacy "
                              "selector/action syntax is", file, lineno, start)
        selector, action_text = head, after_head.strip()
        if not action_text:
            raise ConfigError(f"no action after selector {selector!r}", file, lineno, start)
        action_column = start + len(stripped) - len(after_head.lstrip())
        if selector == "&":
            if previous is None:
                raise ConfigError("'&' with no previous selector", file, lineno, start)
            masks = previous
        else:
            masks = parse_selector(selector, file, lineno, start)
        previous = masks
        action = parse_action(action_text, file, lineno, action_column, findings)
        if action is not None:
            rules.append(Rule(masks, action, source))
    return RuleSet(tuple(rules), tuple(findings))


class _Includes:
    """Reads configuration files for one load: the top file and what `include` names.
    Bounded: each file at most MAX_CONFIG_BYTES, MAX_INCLUDED_FILES files in all, no
    deeper than MAX_INCLUDE_DEPTH, and no file including itself."""

    def __init__(self) -> None:
        self.count = 0
        self.stack: list[tuple[int, int]] = []  # (st_dev, st_ino) of the files being read
        self.depth_of: list[int] = []  # stack heights at each open include line

    def read(self, path: str, where: tuple[str, int, int] | None = None) -> str:
        """The text of one file; ConfigError (at `where`, the include line) if it cannot
        or must not be read."""
        def refuse(reason: str) -> ConfigError:
            if where is None:
                return ConfigError(reason, path)
            return ConfigError(f"cannot include {path}: {reason}", *where)

        if "\0" in path:
            raise refuse("a NUL byte in the path")
        self.count += 1
        if self.count > MAX_INCLUDED_FILES:
            raise refuse(f"more than {MAX_INCLUDED_FILES} files included")
        try:
            # O_NONBLOCK: a FIFO must not hang the daemon before it can be refused.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError as exc:
            raise refuse(f"cannot read: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise refuse("is a directory")
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == _NULL_DEVICE:
                return ""  # `--config /dev/null`: no rules
            if not stat.S_ISREG(st.st_mode):
                raise refuse("not a regular file (a FIFO or a device could hang or never end)")
            if st.st_size > MAX_CONFIG_BYTES:
                raise refuse(f"larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB")
            if (st.st_dev, st.st_ino) in self.stack:
                raise refuse("it includes itself")
            try:
                check_trusted(path)
            except UntrustedPath as exc:
                if where is None:
                    raise
                raise ConfigError(f"cannot include {path}: {exc.msg}", *where) from None
            data = _read_at_most(fd, MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise refuse(f"cannot read: {exc.strerror}") from None
        finally:
            os.close(fd)
        if len(data) > MAX_CONFIG_BYTES:
            raise refuse(f"larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB")
        self.stack.append((st.st_dev, st.st_ino))
        return data.decode("utf-8", "surrogateescape")

    def expand(self, pattern: str, where: tuple[str, int, int],
               findings: list[Finding]) -> Iterator[tuple[str, str]]:
        """(name, text) of each file an include line names: a glob pattern, relative to
        the including file's directory; a directory names its files (FreeBSD's
        `include DIR`: the *.conf ones; rsyslog's `$IncludeConfig DIR/`: all), never
        those starting with '.'."""
        file, line, column = where
        if not pattern:
            raise ConfigError("include needs a path", file, line, column)
        if "\0" in pattern:
            raise ConfigError("a NUL byte in the include path", file, line, column)
        if len(self.stack) > MAX_INCLUDE_DEPTH:
            raise ConfigError("includes nested too deeply", file, line, column)
        self.depth_of.append(len(self.stack))
        pattern = os.path.join(os.path.dirname(file), pattern)
        for match in sorted(glob.glob(pattern)):
            if os.path.isdir(match):
                if match != pattern and match != pattern.rstrip("/"):
                    findings.append(Finding(Source(file, line), Severity.WARNING,
                                            f"include {match}: a directory matched by a "
                                            "pattern; not read", code=Code.INCLUDE_SKIPPED))
                    continue
                every_file = pattern.endswith("/")
                try:
                    names = sorted(n for n in os.listdir(match) if not n.startswith(".")
                                   and (every_file or n.endswith(".conf")))
                except OSError as exc:
                    raise ConfigError(f"cannot include {match}: {exc.strerror}", *where) from None
                for name in names:
                    path = os.path.join(match, name)
                    if not os.path.isfile(path):
                        findings.append(Finding(Source(file, line), Severity.WARNING,
                                                f"include {path}: not a regular file; not read",
                                                code=Code.INCLUDE_SKIPPED))
                        continue
                    yield path, self._enter(path, where)
            else:
                yield match, self._enter(match, where)

    def _enter(self, path: str, where: tuple[str, int, int]) -> str:
        """Read an included file; the stack is unwound to the include line's height on the
        next file or when the include line is done."""
        del self.stack[self.depth_of[-1]:]
        return self.read(path, where)

    def leave(self) -> None:
        del self.stack[self.depth_of.pop():]


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks, size = [], 0
    while size < limit:
        chunk = os.read(fd, min(1 << 20, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _logical_lines(text: str):
    """(first line number, text) with trailing-backslash continuations joined. Lines end
    at LF only (and a CR before it is dropped), so the numbers are an editor's."""
    pending, start = "", 0
    lines = text.split("\n")
    if lines and not lines[-1]:
        lines.pop()
    for number, line in enumerate(lines, 1):
        if line.endswith("\r"):
            line = line[:-1]
        if not pending:
            start = number
        if line.endswith("\\") and not line.lstrip().startswith("#"):
            pending += line[:-1]  # joined verbatim, as sysklogd does
            continue
        yield start, pending + line
        pending = ""
    if pending:
        yield start, pending


def _first_word(text: str) -> tuple[str, str]:
    """(the first word, everything after it) of a stripped line."""
    parts = text.split(None, 1)
    word = parts[0]
    return word, text[len(word):]


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
                                f"template {template!r} ignored; the traditional format is used",
                                code=Code.SYSLOG_UNSUPPORTED))
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
        host_column = column + len(text) - len(rest)
        m = _HOST_PORT.match(rest)
        if m is None:
            raise ConfigError(f"bad forwarding target {text!r}", file, line, host_column)
        host = m["v6"] if m["v6"] is not None else m["host"]
        problem = _host_problem(host, m["v6"] is not None)
        if problem:
            # Refused here rather than failing at every message: the codec behind
            # getaddrinfo raises on such names, and --check should say so.
            raise ConfigError(f"bad forwarding host {host!r}: {problem}", file, line,
                              host_column + m.start("v6" if m["v6"] is not None else "host"))
        port = int(m["port"] or 514)
        if not 0 < port < 65536:
            raise ConfigError(f"bad port in {text!r}", file, line, host_column + m.start("port"))
        return Action("tcp" if tcp else "udp", host, port, octet_counted=octet)
    if "\0" in text:
        raise ConfigError("a NUL byte in the path", file, line, column + text.index("\0"))
    if text.startswith("|"):
        if not text[1:].strip():
            raise ConfigError("'|' needs the path of a FIFO", file, line, column)
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
                                f"user message action {text!r} is not supported; ignored",
                                code=Code.SYSLOG_UNSUPPORTED))
        return None
    raise ConfigError(f"unknown action {text!r}", file, line, column)


_LABEL = re.compile(rb"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def _host_problem(host: str, v6: bool) -> str | None:
    """Why `host` cannot be a forwarding target's host, or None: an IP address literal,
    or a DNS name (international names in their IDNA form), as getaddrinfo takes it."""
    if v6:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return "not an IPv6 address"
        return None
    if host.replace(".", "").isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            # getaddrinfo would read 010 as octal 8, and 123 as 0.0.0.123
            return "not an IPv4 address in dotted decimal"
        return None
    try:
        name = host.encode("idna")
    except UnicodeError:
        return "not a valid host name (an empty label, a label over 63 characters, " \
               "or characters a host name cannot have)"
    if len(name) > 253:
        return "longer than 253 characters"
    for label in name.removesuffix(b".").split(b"."):
        if not _LABEL.fullmatch(label):
            return f"{label.decode('ascii', 'replace')!r} is not a host name label"
    return None
