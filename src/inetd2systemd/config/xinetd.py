"""xinetd.conf and xinetd.d trees, read into `Service` values as the packaged xinetd reads them.

Entry points: `read_xinetd(path)` (an xinetd.conf, following include/includedir),
`read_xinetd_dir(path)` (a directory read as `includedir`), `parse_xinetd(text, file)`
(the same over text), `looks_like_xinetd(text)`. Each returns a `Configuration`: the
services in the order xinetd would meet them, and a Finding for everything the reader
had to decide (skipped files, disabled services, duplicates, resolved names).

Lexing (Debian's xinetd 2.3.15.3, the openSUSE fork: src/parse.c, src/parsesup.c):

- a comment is a line whose first non-blank character is `#`; a `#` after a value is
  data (`server_args = -l # x` passes three arguments);
- `service NAME` (or `defaults`) is followed by a line holding only `{`; the entry ends
  with a line holding only `}`; `include FILE` and `includedir DIR` stand alone;
- `name op value...`: the name needs a blank before the operator (`port=23` is an
  error), the operators are `=`, `+=`, `-=`, values split on blanks with no quoting.

Merging, as xinetd does it:

- list attributes (only_from, no_access, passenv, log_on_success/failure) and the
  banners are copied from `defaults` into a service before its body is read, so in the
  body `+=`/`-=` adjust the default and `=` replaces it; inside `defaults`, `=` adds;
- the scalar defaults (instances, per_source, cps, groups, umask, max_load, bind,
  v6only, log_type) fill what the service did not set, after every file is read;
- built-in defaults: cps 50 10, instances and per_source UNLIMITED, groups no,
  v6only no, a dual-stack socket unless the IPv4 flag or an IPv4 `bind`; the protocol
  follows from socket_type and back;
- `disable = yes`, the DISABLE flag and the defaults' `enabled`/`disabled` id lists
  switch a service off: left out with an INFO finding unless include_disabled;
- a later service with the id, or the port, protocol and address, of an earlier one is
  left out with a WARNING (xinetd "DISABLING"); a repeated id on another port is legal
  in xinetd and is renamed `ID-2` so that unit names stay unique.

Every attribute of xinetd.conf(5) lands in a Service field or, when the model has no
place for it (log_type, log_on_*, deny_time, rpc_*, mdns, flags INTERCEPT IDONLY
SENSOR LABELED), in `Service.unmapped` for the unit writer to report. Bad input raises
ConfigError with file, line and column: an unknown attribute, a missing operator, `{`
or `}`, an attribute without its values, a service without socket_type or wait, a port
that disagrees with the services file, an include loop.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import socket
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from . import addresses
from ..errors import ConfigError
from ..model import (INTERNAL_NAMES, RLIMIT_NAMES, Configuration, Family, Finding, Listen, RateLimit,
                     Redirect, Service, Severity, SocketType, Source)
from .services import ServicesTable, load_services
from ..bulk import gc_paused

# xinetd-only internal services: kept in the model (the writer reports them).
XINETD_ONLY_INTERNALS = ("services", "servers", "tcpmux")

DEFAULT_RATE = RateLimit(50, 1, 10)  # xconfig.h DEFAULT_LOOP_RATE / DEFAULT_LOOP_TIME

MODIFIABLE = -2  # any number of values; `+=` and `-=` allowed; repeatable
ANY = -1  # any number of values (possibly none); `=` only, once


@dataclass(frozen=True)
class _Spec:
    service: int | None  # value count in a service entry; None: not allowed there
    defaults: int | None  # value count in the defaults entry; None: not allowed there


# parse.c service_attributes / default_attributes of the packaged xinetd, plus `mdns`
# (documented by its man page though this build ignores it), so that it is reported
# rather than refused.
ATTRIBUTES: dict[str, _Spec] = {
    "socket_type": _Spec(1, None), "protocol": _Spec(1, None), "wait": _Spec(1, None),
    "user": _Spec(1, None), "group": _Spec(1, None), "server": _Spec(1, None),
    "server_args": _Spec(ANY, None), "instances": _Spec(1, 1),
    "log_on_success": _Spec(MODIFIABLE, MODIFIABLE),
    "log_on_failure": _Spec(MODIFIABLE, MODIFIABLE),
    "log_type": _Spec(ANY, MODIFIABLE), "only_from": _Spec(MODIFIABLE, MODIFIABLE),
    "no_access": _Spec(MODIFIABLE, MODIFIABLE), "access_times": _Spec(ANY, None),
    "type": _Spec(ANY, None), "rpc_version": _Spec(1, None), "rpc_number": _Spec(1, None),
    "id": _Spec(1, None), "env": _Spec(MODIFIABLE, None), "port": _Spec(1, None),
    "passenv": _Spec(MODIFIABLE, MODIFIABLE), "flags": _Spec(ANY, None),
    "nice": _Spec(1, None), "redirect": _Spec(2, None), "banner": _Spec(1, 1),
    "bind": _Spec(1, 1), "interface": _Spec(1, 1), "per_source": _Spec(1, 1),
    "groups": _Spec(1, 1), "banner_success": _Spec(1, 1), "banner_fail": _Spec(1, 1),
    "cps": _Spec(2, 2), "disable": _Spec(1, None), "max_load": _Spec(1, 1),
    "rlimit_as": _Spec(1, None), "rlimit_cpu": _Spec(1, None), "rlimit_data": _Spec(1, None),
    "rlimit_files": _Spec(1, None), "rlimit_rss": _Spec(1, None),
    "rlimit_stack": _Spec(1, None), "v6only": _Spec(1, 1), "deny_time": _Spec(1, None),
    "umask": _Spec(1, 1), "libwrap": _Spec(1, None), "enabled": _Spec(None, MODIFIABLE),
    "disabled": _Spec(None, MODIFIABLE), "mdns": _Spec(1, None),
}
_SERVICE_COUNTS = {n: s.service for n, s in ATTRIBUTES.items() if s.service is not None}
_DEFAULT_COUNTS = {n: s.defaults for n, s in ATTRIBUTES.items() if s.defaults is not None}
# Attributes whose single value is checked as it is read (see _apply).
_CHECKED = frozenset(("only_from", "no_access", "env"))
# Attributes that need at least one value even though their count is open.
NEEDS_VALUE = ("server_args", "type", "flags", "log_type")

# Copied from defaults into a service before its body (parse.c fill_attribute).
DEFAULTS_BEFORE_BODY = ("log_on_success", "log_on_failure", "only_from", "no_access",
                        "passenv", "banner", "banner_success", "banner_fail")
# Filled from defaults after every file is read, when the service did not set them.
DEFAULTS_AFTER = ("instances", "umask", "per_source", "groups", "cps", "max_load", "bind",
                  "v6only", "log_type")
SYNONYMS = {"interface": "bind"}  # one attribute under two names (parse.c A_BIND)

TYPES = ("RPC", "INTERNAL", "TCPMUX", "TCPMUXPLUS", "UNLISTED")
FLAGS = ("INTERCEPT", "NORETRY", "IDONLY", "NAMEINARGS", "NODELAY", "KEEPALIVE", "NOLIBWRAP",
         "SENSOR", "IPv4", "IPv6", "LABELED", "REUSE", "DISABLE")
UNMAPPED_FLAGS = ("INTERCEPT", "IDONLY", "LABELED")
LOG_ON_SUCCESS = ("PID", "HOST", "USERID", "EXIT", "DURATION", "TRAFFIC")
LOG_ON_FAILURE = ("HOST", "USERID", "ATTEMPT", "RECORD")
SOCKET_TYPES = {"stream": SocketType.STREAM, "dgram": SocketType.DGRAM,
                "raw": SocketType.RAW, "seqpacket": SocketType.SEQPACKET,
                "rdm": SocketType.RDM}
RLIMITS = {"rlimit_as": "AS", "rlimit_cpu": "CPU", "rlimit_data": "DATA",
           "rlimit_rss": "RSS", "rlimit_stack": "STACK", "rlimit_files": "NOFILE"}
assert set(RLIMITS.values()) <= set(RLIMIT_NAMES)


# -- lexing ------------------------------------------------------------------------------

class Assignment(NamedTuple):
    """One `name op values` line (a NamedTuple: there is one per line of a large tree)."""

    name: str
    op: str  # "=", "+=", "-="
    values: tuple[str, ...]
    line: int
    column: int  # of the name
    value_column: int  # of the first value (or where it would be)
    text: str = ""  # the line itself, to point at a later value in an error


def logical_lines(text: str) -> list[tuple[int, str, list[str]]]:
    """(line number, text, words) of every line that is neither blank nor a comment."""
    result = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if words and not words[0].startswith("#"):
            result.append((number, line, words))
    return result


_OPERATORS = frozenset(("=", "+=", "-="))


def _fast_assignment(line: str, words: list[str], number: int, file: str) -> Assignment:
    """The common `name op value...` line, columns left for `_located` to find."""
    if len(words) > 1 and words[1] in _OPERATORS and "=" not in words[0]:
        return Assignment(words[0], words[1], tuple(words[2:]), number, 0, 0, line)
    return parse_assignment(line, number, file)  # the careful path, with its errors


def _located(a: Assignment, file: str) -> Assignment:
    """The assignment with its columns, for a message."""
    return a if a.column else parse_assignment(a.text, a.line, file)


def parse_assignment(line: str, number: int, file: str) -> Assignment:
    """Lex one attribute line (parsesup.c parse_line)."""
    words = line.split()
    name = words[0]
    column = line.find(name) + 1
    if "=" in name:
        if name.startswith(("=", "+=", "-=")):
            raise ConfigError("an attribute name is missing before the operator", file,
                              number, column)
        raise ConfigError(f"attribute {name.split('=')[0].rstrip('+-')!r} needs a space "
                          "before its operator", file, number, column)
    if len(words) < 2:
        raise ConfigError(f"attribute {name!r}: missing '=' (or '+=', '-=') and its value",
                          file, number, column + len(name))
    op_word = words[1]
    op_column = line.find(op_word, column - 1 + len(name)) + 1
    op = "+=" if op_word.startswith("+=") else "-=" if op_word.startswith("-=") else \
        "=" if op_word.startswith("=") else None
    if op is None:
        raise ConfigError(f"attribute {name!r}: expected '=', '+=' or '-=' after it, got "
                          f"{op_word!r}", file, number, op_column)
    values = words[2:]
    if op_word != op:  # `name =value`: the value is glued to the operator
        values.insert(0, op_word[len(op):])
        value_column = op_column + len(op)
    elif values:
        value_column = line.find(values[0], op_column - 1 + len(op)) + 1
    else:
        value_column = op_column + len(op)
    return Assignment(name, op, tuple(values), number, column, value_column, line)


def looks_like_xinetd(text: str) -> bool:
    """Whether text is xinetd syntax: an entry header followed by a `{` line, or includes."""
    lines = logical_lines(text)
    for index, (_, _, words) in enumerate(lines):
        if words[0] in ("include", "includedir") and len(words) == 2:
            return True
        if (words[0] == "service" and len(words) >= 2) or words == ["defaults"]:
            if index + 1 < len(lines) and lines[index + 1][2] == ["{"]:
                return True
    return False


# -- reading files -------------------------------------------------------------------------

class _Value:
    """An attribute's values after the operators, and the line that set them last.

    Source and column are made only when a message needs them: a large tree has one of
    these per line.
    """

    __slots__ = ("values", "file", "assignment", "specified", "_inherited")

    def __init__(self, values: list[str], file: str, assignment: Assignment,
                 specified: bool = True) -> None:
        self.values = values
        self.file = file
        self.assignment = assignment
        self.specified = specified  # set in the body, not copied from defaults
        self._inherited: _Value | None = None

    @property
    def source(self) -> Source:
        return Source(self.file, self.assignment.line)

    @property
    def column(self) -> int:
        return _located(self.assignment, self.file).value_column

    def inherited(self) -> "_Value":
        """This default as a service sees it. One shared copy: an operator in a service
        makes a new _Value rather than changing this one."""
        if self._inherited is None:
            self._inherited = _Value(self.values, self.file, self.assignment, specified=False)
        return self._inherited


@dataclass
class _Raw:
    """One `service` entry as read: attribute values after the operators."""

    name: str
    source: Source
    attrs: dict[str, _Value] = field(default_factory=dict)

    def get(self, name: str) -> list[str] | None:
        value = self.attrs.get(name)
        return None if value is None else value.values

    def first(self, name: str) -> str | None:
        value = self.attrs.get(name)
        return value.values[0] if value is not None and value.values else None


@dataclass
class _State:
    services: ServicesTable
    include_disabled: bool
    root: str | None
    defaults: _Raw = field(default_factory=lambda: _Raw("defaults", Source("<defaults>", 0)))
    raws: list[_Raw] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    stack: list[str] = field(default_factory=list)  # files being read, for the message
    reading: set = field(default_factory=set)  # their (device, inode): include loops

    def note(self, source: Source, severity: Severity, message: str,
             service: str | None = None) -> None:
        self.findings.append(Finding(source, severity, message, service))


def _apply(target: _Raw, a: Assignment, file: str, in_defaults: bool, state: _State) -> None:
    """One assignment into a service (or the defaults), with xinetd's operator rules."""
    name = SYNONYMS.get(a.name, a.name)
    count = (_DEFAULT_COUNTS if in_defaults else _SERVICE_COUNTS).get(name)
    if count is None:
        known = a.name in ATTRIBUTES
        where = "in the defaults entry" if in_defaults else "in a service entry"
        raise _fail(a, file, f"attribute {a.name!r} is not allowed {where}" if known else
                    f"unknown attribute {a.name!r}")
    values = list(a.values)
    current = target.attrs.get(name)
    if count == 1 and len(values) == 1 and a.op == "=" and name not in _CHECKED and \
            (current is None or not current.specified):
        target.attrs[name] = _Value(values, file, a)  # the common case, in one step
        return
    if count > 0 and len(values) != count:
        if not values:
            raise _fail(a, file, f"attribute {name!r} needs a value", 0)
        raise _fail(a, file, f"attribute {name!r} takes {count} value{'s' * (count > 1)}, "
                             f"got {len(values)}", 0)
    if name in NEEDS_VALUE and not values:
        raise _fail(a, file, f"attribute {name!r} needs a value", 0)
    if name in ("only_from", "no_access"):
        for index, value in enumerate(values):
            try:
                addresses.parse_address(value)
            except addresses.AddressError as exc:
                raise _fail(a, file, f"{name}: {exc}", index) from None
    if count != MODIFIABLE:
        if a.op != "=":
            raise _fail(a, file, f"operator {a.op!r} cannot be used with attribute {name!r} "
                                 "(only with list attributes such as only_from)")
        if current is not None and current.specified:
            state.note(Source(file, a.line), Severity.WARNING,
                       f"{name} is already set at line {current.source.line}: this line is "
                       "ignored, as xinetd does", target.name if not in_defaults else None)
            return
        target.attrs[name] = _Value(values, file, a)
        return
    op = "+=" if in_defaults and a.op == "=" else a.op  # inside defaults, '=' adds
    if name == "env":
        if op == "-=":
            raise _fail(a, file, "operator '-=' is not supported for env")
        for index, value in enumerate(values):
            if "=" not in value:
                raise _fail(a, file, f"env value {value!r} has no '='", index)
    old = [] if current is None or op == "=" else list(current.values)
    if op == "-=":
        new = [v for v in old if not _same_entry(name, v, values)]
    else:
        new = old + [v for v in values if not (name == "passenv" and v in old)]
    target.attrs[name] = _Value(new, file, a)


def _fail(a: Assignment, file: str, message: str, value_index: int | None = None
          ) -> ConfigError:
    """The error for an assignment, pointing at its name or at one of its values."""
    located = _located(a, file)  # columns only now, for the message
    column = located.column if value_index is None else \
        (_value_columns(located)[value_index] if located.values else located.value_column)
    return ConfigError(message, file, a.line, column)


def _value_columns(a: Assignment) -> list[int]:
    """1-based column of each value (only computed when a value is checked)."""
    columns, position = [], a.value_column - 1
    for value in a.values:
        found = a.text.find(value, position)
        columns.append(found + 1 if found >= 0 else a.value_column)
        position = found + len(value) if found >= 0 else position
    return columns


def _same_entry(name: str, value: str, removed: list[str]) -> bool:
    if value in removed:
        return True
    if name in ("only_from", "no_access"):
        # xinetd removes by address and mask, however the entry was written
        try:
            nets = addresses.parse_address(value).networks
            return bool(nets) and any(addresses.parse_address(r).networks == nets for r in removed)
        except addresses.AddressError:
            return False
    return False


def _expect_open(lines: list[tuple[int, str, list[str]]], index: int, header: str, file: str,
                 line: int) -> int:
    if index >= len(lines) or lines[index][2] != ["{"]:
        raise ConfigError(f"{header}: missing '{{' on a line of its own after it", file,
                          lines[index][0] if index < len(lines) else line)
    return index + 1


def _read_body(lines: list[tuple[int, str, list[str]]], index: int, header: str, file: str,
               start: int) -> tuple[list[Assignment], int]:
    assignments = []
    count = len(lines)
    while index < count:
        number, line, words = lines[index]
        first = words[0]
        if first == "}" and len(words) == 1:
            return assignments, index + 1
        if first in _ENTRY_WORDS and len(words) <= 2:
            if first in ("service", "defaults"):
                if index + 1 < count and lines[index + 1][2] == ["{"]:
                    break  # the next entry starts: this one lost its '}'
            elif len(words) == 2:
                raise ConfigError(f"{first} cannot appear inside an entry ({header}); move it "
                                  "after the closing '}'", file, number)
        assignments.append(_fast_assignment(line, words, number, file))
        index += 1
    raise ConfigError(f"{header}: missing '}}' to end the entry", file, start)


_ENTRY_WORDS = frozenset(("service", "defaults", "include", "includedir"))


def parse_into(text: str, file: str, state: _State) -> None:
    """Read one file's entries into the state (parse.c parse_conf_file)."""
    lines = logical_lines(text)
    index = 0
    found_defaults = False
    base = os.path.dirname(file)
    while index < len(lines):
        number, line, words = lines[index]
        keyword = words[0]
        if keyword in ("include", "includedir"):
            if len(words) != 2:
                raise ConfigError(f"{keyword} needs exactly one path", file, number)
            path = _include_path(words[1], base, state.root)
            if keyword == "include":
                _include_file(path, Source(file, number), state)
            else:
                _include_dir(path, Source(file, number), state)
            index += 1
            continue
        if keyword == "service":
            if len(words) < 2:
                raise ConfigError("service name missing after 'service'", file, number)
            header = f"service {words[1]}"
        elif keyword == "defaults" and len(words) == 1:
            header = "defaults"
        else:
            raise ConfigError(f"expected 'service NAME', 'defaults', 'include' or "
                              f"'includedir', got {line.strip()!r}", file, number)
        index = _expect_open(lines, index + 1, header, file, number)
        body, index = _read_body(lines, index, header, file, number)
        source = Source(file, number)
        if header == "defaults":
            if found_defaults:
                state.note(source, Severity.WARNING, "only one defaults entry is allowed per "
                           "file: this one is ignored, as xinetd does")
                continue
            found_defaults = True
            for assignment in body:
                _apply(state.defaults, assignment, file, True, state)
            continue
        raw = _Raw(words[1], source)
        for name in DEFAULTS_BEFORE_BODY:
            value = state.defaults.attrs.get(name)
            if value is not None:
                raw.attrs[name] = value.inherited()
        for assignment in body:
            _apply(raw, assignment, file, False, state)
        state.raws.append(raw)


def _include_path(path: str, base: str, root: str | None) -> str:
    if os.path.isabs(path):
        return os.path.join(root, path.lstrip("/")) if root else path
    # xinetd opens it relative to its working directory (/); a relative path in a file
    # being converted elsewhere means the file's own directory far more often.
    return os.path.join(base, path)


def _read_text(path: str, where: Source | None) -> str:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror
        if where is None:
            raise ConfigError(f"cannot read: {reason}", path) from None
        raise ConfigError(f"cannot read {path}: {reason}", where.file, where.line) from None


def _include_file(path: str, where: Source, state: _State, in_dir: bool = False) -> None:
    try:
        status = os.stat(path)
    except OSError as exc:
        # xinetd logs "Unable to open included configuration file" and goes on
        state.note(Source(path, 0) if in_dir else where, Severity.WARNING,
                   f"included file {path} cannot be read ({exc.strerror}): skipped, as "
                   "xinetd does")
        return
    if not stat.S_ISREG(status.st_mode):
        state.note(Source(path, 0) if in_dir else where, Severity.INFO,
                   "skipped: not a regular file, as xinetd does")
        return
    identity = (status.st_dev, status.st_ino)
    if identity in state.reading:
        raise ConfigError(f"include loop: {path} is already being read "
                          f"({' -> '.join(state.stack + [path])})", where.file, where.line)
    state.stack.append(path)
    state.reading.add(identity)
    try:
        parse_into(_read_text(path, where), path, state)
    finally:
        state.stack.pop()
        state.reading.discard(identity)


def included_names(directory: str) -> tuple[list[str], list[str]]:
    """(read, skipped) file names of an includedir, in xinetd's order (includedir.c)."""
    names = sorted(os.listdir(directory), key=lambda n: n.encode("utf-8", "surrogateescape"))
    read, skipped = [], []
    for name in names:
        if "." in name or name.endswith("~"):
            skipped.append(name)
        else:
            read.append(name)
    return read, skipped


def _include_dir(path: str, where: Source, state: _State) -> None:
    try:
        status = os.stat(path)
    except OSError:
        status = None
    real = (status.st_dev, status.st_ino) if status else path
    if real in state.reading:
        raise ConfigError(f"include loop: directory {path} is already being read",
                          where.file, where.line)
    try:
        read, skipped = included_names(path)
    except OSError as exc:
        state.note(where, Severity.WARNING, f"included directory {path} cannot be read "
                   f"({exc.strerror}): skipped, as xinetd does")
        return
    for name in skipped:
        state.note(Source(os.path.join(path, name), 0), Severity.INFO,
                   "skipped: xinetd ignores files in an includedir whose name contains '.' or "
                   "ends with '~'")
    state.stack.append(path)
    state.reading.add(real)
    try:
        for name in read:
            _include_file(os.path.join(path, name), where, state, in_dir=True)
    finally:
        state.stack.pop()
        state.reading.discard(real)


# -- building services ---------------------------------------------------------------------

def _error(raw: _Raw, attr: str, message: str) -> ConfigError:
    value = raw.attrs.get(attr)
    if value is None:
        return ConfigError(f"service {raw.name}: {message}", raw.source.file, raw.source.line)
    return ConfigError(f"{attr}: {message}", value.source.file, value.source.line,
                       value.column)


def _yes_no(raw: _Raw, attr: str) -> bool | None:
    value = raw.first(attr)
    if value is None:
        return None
    if value not in ("yes", "no"):
        raise _error(raw, attr, f"expected yes or no, got {value!r}")
    return value == "yes"


def _integer(raw: _Raw, attr: str, *, unlimited: bool = False, minimum: int = 0,
             base: int = 10) -> int | None:
    value = raw.first(attr)
    if value is None or (unlimited and value == "UNLIMITED"):
        return None
    try:
        number = int(value, base)
    except ValueError:
        what = "a number" + (" or UNLIMITED" if unlimited else "")
        raise _error(raw, attr, f"expected {what}, got {value!r}") from None
    if number < minimum:
        raise _error(raw, attr, f"{number} is below {minimum}")
    return number


def _limit(raw: _Raw, attr: str) -> int | None:
    """rlimit values: a number with an optional K or M suffix, or UNLIMITED."""
    value = raw.first(attr) or ""
    if value == "UNLIMITED":
        return None
    match = re.fullmatch(r"([0-9]+)([kKmM]?)", value)
    if not match:
        raise _error(raw, attr, f"expected a number (K or M suffix allowed) or UNLIMITED, "
                                f"got {value!r}")
    multiplier = {"": 1, "k": 1024, "m": 1024 * 1024}[match.group(2).lower()]
    return int(match.group(1)) * multiplier


def _access_times(raw: _Raw) -> tuple[tuple[int, int], ...]:
    result = []
    for value in raw.get("access_times") or ():
        match = re.fullmatch(r"([0-9]{1,2}):([0-9]{1,2})-([0-9]{1,2}):([0-9]{1,2})", value)
        if not match:
            raise _error(raw, "access_times", f"expected hh:mm-hh:mm, got {value!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        # xinetd's own example writes 24:00 for the end of the day
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            raise _error(raw, "access_times", f"time out of range in {value!r}")
        result.append((h1 * 60 + m1, h2 * 60 + m2))
    return tuple(result)


def _fill_defaults(raw: _Raw, defaults: _Raw) -> None:
    for name in DEFAULTS_AFTER:
        value = defaults.attrs.get(name)
        if value is not None and name not in raw.attrs:
            raw.attrs[name] = value.inherited()


# A tree binds the same few addresses thousands of times; ipaddress parsing is slow.
_ip_address = functools.lru_cache(maxsize=256)(ipaddress.ip_address)


def _bind(raw: _Raw, ipv6_flag: bool, findings: list[Finding], id_: str
          ) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    attr = "bind"
    value = raw.first(attr)
    if value is None:
        return None
    try:
        return _ip_address(value)
    except ValueError:
        pass
    # xinetd resolves a name once, at start-up; the units freeze today's answer
    family = socket.AF_INET6 if ipv6_flag else socket.AF_INET
    try:
        found = socket.getaddrinfo(value, None, family, socket.SOCK_STREAM)
    except socket.gaierror:
        raise _error(raw, attr, f"cannot resolve {value!r} to an address to bind") from None
    address = ipaddress.ip_address(found[0][4][0])
    findings.append(Finding(raw.attrs[attr].source, Severity.WARNING,
                            f"{attr} {value} resolved now to {address}: re-run the conversion "
                            "if it changes", id_))
    return address


class _Kind(NamedTuple):
    """What `type` and `flags` say about how the service runs."""

    types: list[str]
    flags: list[str]
    internal: bool  # INTERNAL type, or the SENSOR flag
    rpc: bool
    unlisted: bool
    tcpmux: bool


class _Program(NamedTuple):
    """What runs for a connection: a program, an internal service or a redirect."""

    server: str | None
    argv: tuple[str, ...]
    internal: str | None
    redirect: Redirect | None
    nameinargs: bool


class _Limits(NamedTuple):
    instances: int | None
    per_source: int | None
    rate: RateLimit | None
    max_load: float | None
    umask: int | None
    nice: int | None
    supplementary_groups: tuple[str, ...] | None
    rlimits: tuple[tuple[str, int | None], ...]


def _kind(raw: _Raw) -> _Kind:
    """type and flags, checked against xinetd's tables."""
    types = raw.get("type") or []
    for value in types:
        if value not in TYPES:
            raise _error(raw, "type", f"unknown type {value!r}: expected any of "
                                      f"{', '.join(TYPES)}")
    flags = raw.get("flags") or []
    for value in flags:
        if value not in FLAGS:
            raise _error(raw, "flags", f"unknown flag {value!r}: expected any of "
                                       f"{', '.join(FLAGS)}")
    return _Kind(types, flags, internal="INTERNAL" in types or "SENSOR" in flags,
                 rpc="RPC" in types, unlisted="UNLISTED" in types,
                 tcpmux="TCPMUX" in types or "TCPMUXPLUS" in types)


def _socket(raw: _Raw) -> tuple[SocketType, str, bool]:
    """(socket type, protocol, wait): socket_type and protocol imply each other
    (confparse.c service_fill)."""
    socket_type_text = raw.first("socket_type")
    protocol = raw.first("protocol")
    if socket_type_text is not None and socket_type_text not in SOCKET_TYPES:
        raise _error(raw, "socket_type", f"unknown socket type {socket_type_text!r}: expected "
                                         f"{', '.join(SOCKET_TYPES)}")
    if socket_type_text is None:
        if protocol in ("tcp", "udp"):
            socket_type_text = "stream" if protocol == "tcp" else "dgram"
        else:
            raise _error(raw, "socket_type", "missing socket_type (needed unless protocol is "
                                             "tcp or udp)")
    socket_type = SOCKET_TYPES[socket_type_text]
    if protocol is None:
        protocol = {SocketType.STREAM: "tcp", SocketType.DGRAM: "udp"}.get(socket_type)
        if protocol is None:
            raise _error(raw, "protocol", f"socket_type {socket_type_text} needs a protocol")
    wait = _yes_no(raw, "wait")
    if wait is None:
        raise _error(raw, "wait", "missing attribute wait (yes or no)")
    return socket_type, protocol, wait


def _redirect(raw: _Raw, socket_type: SocketType, wait: bool,
              services: ServicesTable) -> Redirect | None:
    if raw.get("redirect") is None:
        return None
    host, port_text = raw.get("redirect") or ["", ""]
    port = int(port_text) if port_text.isdigit() else services.port(port_text, "tcp")
    if port is None or not 0 < port < 65536:
        raise _error(raw, "redirect", f"bad port {port_text!r}")
    if socket_type is not SocketType.STREAM or wait:
        raise _error(raw, "redirect", "redirect needs socket_type stream and wait = no")
    return Redirect(host, port)


def _program(raw: _Raw, kind: _Kind, redirect: Redirect | None, id_: str,
             findings: list[Finding]) -> _Program:
    """server, server_args and NAMEINARGS, or the internal service, or the redirect."""
    server = raw.first("server")
    args = raw.get("server_args")
    nameinargs = "NAMEINARGS" in kind.flags
    if "SENSOR" in kind.flags:
        # xinetd serves it itself, whatever `server` says
        return _Program(None, (), "sensor", redirect, nameinargs)
    if kind.internal:
        if raw.name not in INTERNAL_NAMES + XINETD_ONLY_INTERNALS:
            raise _error(raw, "type", f"no internal service {raw.name!r}: xinetd provides "
                                      f"{', '.join(INTERNAL_NAMES + XINETD_ONLY_INTERNALS)}")
        if nameinargs:
            raise _error(raw, "flags", "an INTERNAL service cannot have NAMEINARGS")
        if server is not None:
            findings.append(Finding(raw.attrs["server"].source, Severity.INFO,
                                    "server is ignored for an INTERNAL service, as xinetd "
                                    "does", id_))
        return _Program(None, (), raw.name, redirect, nameinargs)
    if redirect is not None:
        if nameinargs:
            raise _error(raw, "flags", "a redirected service cannot have NAMEINARGS")
        if server is not None:
            findings.append(Finding(raw.attrs["server"].source, Severity.INFO,
                                    "server is ignored: redirect takes over, as in xinetd", id_))
        return _Program(None, (), None, redirect, nameinargs)
    if server is None:
        raise _error(raw, "server", "missing attribute server (the program to run)")
    if nameinargs:
        if not args:
            raise _error(raw, "flags", "NAMEINARGS needs server_args (their first word "
                                       "is argv[0])")
        argv = tuple(args)
    else:
        argv = (os.path.basename(server), *(args or ()))
    return _Program(server, argv, None, None, nameinargs)


def _listens(raw: _Raw, kind: _Kind, protocol: str, state: _State, id_: str,
             findings: list[Finding]) -> tuple[str, tuple[Listen, ...]]:
    """(protocol, listens): the port from the attribute or the services table, the
    family from flags, bind and v6only. RPC and TCPMUX services listen nowhere
    systemd can (reported), and RPC's protocol becomes rpc/PROTO."""
    where = raw.source
    v6only = bool(_yes_no(raw, "v6only"))
    ipv4_flag, ipv6_flag = "IPv4" in kind.flags, "IPv6" in kind.flags
    bind = _bind(raw, ipv6_flag, findings, id_)
    port = _integer(raw, "port", minimum=0)
    if port is not None and not 0 < port < 65536:
        raise _error(raw, "port", f"port {port} out of range 1-65535")
    listed = None if kind.unlisted or kind.rpc or kind.tcpmux else \
        state.services.port(raw.name, protocol)
    if port is not None and listed is not None and port != listed:
        raise _error(raw, "port", f"service {raw.name} is port {listed} in "
                                  f"{state.services.source}, not {port} (xinetd refuses this; "
                                  "add UNLISTED to type for a private port)")
    if kind.rpc:
        findings.append(Finding(where, Severity.ERROR,
                                f"RPC service (rpc_version {raw.first('rpc_version') or '?'}): "
                                "systemd cannot register it with the portmapper; keep the "
                                "native daemon", id_))
        return f"rpc/{protocol}", ()
    if kind.tcpmux:
        findings.append(Finding(where, Severity.ERROR,
                                "TCPMUX service: systemd has no RFC 1078 dispatcher on port 1, "
                                "so it cannot be reached; give it a port of its own "
                                "(UNLISTED + port) instead", id_))
        return protocol, ()
    if port is None:
        port = listed
    if port is None:
        if kind.unlisted:
            raise _error(raw, "port", "an UNLISTED service needs a port")
        raise _error(raw, "port", f"{raw.name}/{protocol} is not in "
                                  f"{state.services.source} and has no port attribute "
                                  "(give --services the host's file, or add port)")
    if listed is None and not kind.unlisted:
        findings.append(Finding(where, Severity.WARNING,
                                f"{raw.name}/{protocol} is not in {state.services.source}: "
                                f"xinetd would refuse it without UNLISTED; port {port} kept",
                                id_))
    if bind is not None and not ipv4_flag and not ipv6_flag:
        family = Family.IPV4 if bind.version == 4 else (Family.IPV6 if v6only else Family.DUAL)
    elif ipv4_flag and not ipv6_flag:
        family = Family.IPV4
    else:
        family = Family.IPV6 if v6only else Family.DUAL
    if bind is not None and (bind.version == 4) != (family is Family.IPV4):
        flag = "IPv6" if bind.version == 4 else "IPv4"
        raise _error(raw, "bind", f"IPv{bind.version} address {bind} with the {flag} flag")
    host = None if bind is None or bind.is_unspecified else str(bind)
    return protocol, (Listen(family, port, host),)


def _limits(raw: _Raw) -> _Limits:
    """instances, per_source, cps, max_load, umask, nice, groups and the rlimits."""
    rate: RateLimit | None = DEFAULT_RATE
    cps = raw.get("cps")
    if cps is not None:
        if not all(v.isdigit() for v in cps):
            raise _error(raw, "cps", f"expected two numbers (connections per second, seconds "
                                     f"off), got {' '.join(cps)!r}")
        count, pause = int(cps[0]), int(cps[1])
        rate = RateLimit(count, 1, pause) if count else None  # cps 0: no limit (access.c)
    max_load = None
    if raw.first("max_load") is not None:
        try:
            max_load = float(raw.first("max_load") or "")
        except ValueError:
            raise _error(raw, "max_load", f"expected a number, got {raw.first('max_load')!r}") \
                from None
        if max_load == 0:
            raise _error(raw, "max_load", "0 is refused by xinetd")
    groups = _yes_no(raw, "groups")
    return _Limits(
        instances=_integer(raw, "instances", unlimited=True),
        per_source=_integer(raw, "per_source", unlimited=True), rate=rate, max_load=max_load,
        umask=_integer(raw, "umask", base=8), nice=_integer(raw, "nice", minimum=-20),
        supplementary_groups=None if groups else (),
        rlimits=tuple((RLIMITS[a], _limit(raw, a)) for a in RLIMITS if a in raw.attrs))


def _unmapped(raw: _Raw, kind: _Kind, id_: str, findings: list[Finding]
              ) -> tuple[tuple[str, str, Source], ...]:
    """The attributes and flags systemd has no place for, checked, for the writer to
    report; flags that mean nothing under systemd are noted here."""
    def entry(attr: str, value: str) -> tuple[str, str, Source]:
        return (attr, value, raw.attrs[attr].source if attr in raw.attrs else raw.source)

    unmapped = []
    for attr in ("log_type", "log_on_success", "log_on_failure", "deny_time", "rpc_version",
                 "rpc_number", "mdns"):
        values = raw.get(attr)
        if values is None:
            continue
        if attr == "log_on_success" and set(values) - set(LOG_ON_SUCCESS):
            raise _error(raw, attr, f"unknown log_on_success flag in {' '.join(values)}")
        if attr == "log_on_failure" and set(values) - set(LOG_ON_FAILURE):
            raise _error(raw, attr, f"unknown log_on_failure flag in {' '.join(values)}")
        if attr == "log_type" and not (values[0] == "SYSLOG" and 2 <= len(values) <= 3 or
                                       values[0] == "FILE" and 2 <= len(values) <= 4):
            raise _error(raw, attr, "expected SYSLOG facility [level] or FILE path [soft "
                                    f"[hard]], got {' '.join(values)!r}")
        if attr == "deny_time" and not (values[0].isdigit() or values[0] in ("FOREVER",
                                                                              "NEVER")):
            raise _error(raw, attr, f"expected minutes, FOREVER or NEVER, got {values[0]!r}")
        if values:
            unmapped.append(entry(attr, " ".join(values)))
    for flag in (*UNMAPPED_FLAGS, "SENSOR"):
        if flag in kind.flags:
            unmapped.append(entry("flags", flag))
    for flag in ("REUSE", "NORETRY"):
        if flag in kind.flags:
            findings.append(Finding(raw.attrs["flags"].source, Severity.INFO,
                                    f"flag {flag} has no meaning under systemd (nothing to do)",
                                    id_))
    return tuple(unmapped)


def _libwrap_name(raw: _Raw, kind: _Kind, socket_type: SocketType, program: _Program
                  ) -> str | None:
    """The daemon name hosts.allow/hosts.deny were consulted under, or None when they were
    not: Debian's xinetd links libwrap and checks every service but NOLIBWRAP ones and
    RPC over TCP (access.c)."""
    if "NOLIBWRAP" in kind.flags or (kind.rpc and socket_type is SocketType.STREAM):
        return None
    name = raw.first("libwrap")
    if name is not None:
        return name
    if program.internal is not None or program.redirect is not None:
        return raw.name
    if program.nameinargs:
        return os.path.basename(program.argv[0])
    return os.path.basename(program.server or "")


def build_service(raw: _Raw, state: _State) -> tuple[Service, list[Finding]]:
    """One entry (defaults filled in) -> its Service and the findings about it."""
    findings: list[Finding] = []
    id_ = raw.first("id") or raw.name
    kind = _kind(raw)
    socket_type, protocol, wait = _socket(raw)
    redirect = _redirect(raw, socket_type, wait, state.services)
    program = _program(raw, kind, redirect, id_, findings)
    user = raw.first("user")
    if user is None and program.internal is None and redirect is None:
        raise _error(raw, "user", "missing attribute user")
    protocol, listens = _listens(raw, kind, protocol, state, id_, findings)
    limits = _limits(raw)
    env = tuple(tuple(v.split("=", 1)) for v in raw.get("env") or ())
    passenv = raw.get("passenv")
    unmapped = _unmapped(raw, kind, id_, findings)
    if socket_type is SocketType.DGRAM and not wait:
        # The packaged xinetd runs it (checked with /usr/sbin/xinetd), one server per
        # datagram; kept as written, the writer decides how systemd runs it.
        findings.append(Finding(raw.source, Severity.INFO, "dgram service with wait = no: "
                                "the packaged xinetd starts a server per datagram", id_))
    libwrap_name = _libwrap_name(raw, kind, socket_type, program)
    disabled = raw.first("disable") == "yes" or "DISABLE" in kind.flags
    if raw.first("disable") not in (None, "yes", "no"):
        raise _error(raw, "disable", f"expected yes or no, got {raw.first('disable')!r}")

    service = Service(
        dialect="xinetd", name=raw.name, id=id_, source=raw.source, socket_type=socket_type,
        protocol=protocol, listens=listens, wait=wait, nodelay="NODELAY" in kind.flags,
        keepalive="KEEPALIVE" in kind.flags, server=program.server, argv=program.argv,
        internal=program.internal, redirect=redirect, user=user, group=raw.first("group"),
        supplementary_groups=limits.supplementary_groups, env=env,
        passenv=None if passenv is None else tuple(passenv), nice=limits.nice,
        umask=limits.umask, rlimits=limits.rlimits, instances=limits.instances,
        per_source=limits.per_source, rate=limits.rate,
        only_from=None if raw.get("only_from") is None else tuple(raw.get("only_from") or ()),
        no_access=tuple(raw.get("no_access") or ()), access_times=_access_times(raw),
        max_load=limits.max_load, tcp_wrapped=libwrap_name is not None,
        libwrap_name=libwrap_name, banner=raw.first("banner"),
        banner_success=raw.first("banner_success"), banner_fail=raw.first("banner_fail"),
        disabled=disabled, unmapped=unmapped)
    return service, findings


def _is_disabled_early(raw: _Raw) -> bool:
    return raw.first("disable") == "yes" or "DISABLE" in (raw.get("flags") or ())


def _finish(state: _State) -> Configuration:
    """Defaults, enabled/disabled lists, validation and duplicates, over every entry."""
    enabled = state.defaults.get("enabled")
    disabled_ids = set(state.defaults.get("disabled") or ())
    services: list[Service] = []
    findings = state.findings
    for raw in state.raws:
        id_ = raw.first("id") or raw.name
        reason = None
        if _is_disabled_early(raw):
            reason = "disable = yes" if raw.first("disable") == "yes" else "flag DISABLE"
        elif enabled is not None and id_ not in enabled:
            reason = "its id is not in the defaults' enabled list"
        elif id_ in disabled_ids:
            reason = "its id is in the defaults' disabled list"
        if reason and not state.include_disabled:
            # xinetd stops reading a disabled entry, so neither does it check the rest
            findings.append(Finding(raw.source, Severity.INFO,
                                    f"service {raw.name} ({id_}) is disabled ({reason}): left "
                                    "out; --include-disabled converts it", id_))
            continue
        _fill_defaults(raw, state.defaults)
        service, notes = build_service(raw, state)
        findings.extend(notes)
        if reason:
            service = replace(service, disabled=True)
        services.append(service)
    return Configuration(*_resolve_duplicates(services, findings))


def _socket_key(service: Service) -> tuple | None:
    """confparse.c check_entry: port, protocol and bound address (family included)."""
    if not service.listens:
        return None
    listen = service.listens[0]
    return (listen.port, service.protocol, listen.host, listen.family is Family.IPV4)


def _resolve_duplicates(services: list[Service], findings: list[Finding]
                        ) -> tuple[tuple[Service, ...], tuple[Finding, ...]]:
    kept: list[Service] = []
    ids: set[str] = set()
    running: dict[tuple, Service] = {}  # socket -> the enabled service holding it
    parked: dict[tuple, Service] = {}  # (socket, id) -> a disabled one
    for service in services:
        key = _socket_key(service)
        clash = running.get(key) if key is not None and not service.disabled else None
        twin = parked.get((key, service.id)) if key is not None and service.disabled else None
        if twin is not None:
            # Debian ships echo-dgram twice (echo and echo-udp), both off: one unit is enough
            findings.append(Finding(service.source, Severity.INFO,
                                    f"disabled duplicate of {twin.id} ({twin.source}), same "
                                    "socket: left out", service.id))
            continue
        if clash is not None:
            same = "the same id" if clash.id == service.id else f"the same port as {clash.id}"
            findings.append(Finding(service.source, Severity.WARNING,
                                    f"{same} ({clash.source}) on {service.listens[0]}/"
                                    f"{service.protocol}: xinetd disables this later entry, "
                                    "so it is left out", service.id))
            continue
        original_id = service.id
        if service.id in ids:
            n = 2
            while f"{service.id}-{n}" in ids:
                n += 1
            new = f"{service.id}-{n}"
            findings.append(Finding(service.source, Severity.INFO,
                                    f"id {service.id} is used by an earlier entry (xinetd "
                                    "allows that while they differ in socket or one is "
                                    f"disabled): renamed {new}", new))
            service = replace(service, id=new)
        ids.add(service.id)
        kept.append(service)
        if key is not None:
            if service.disabled:
                parked.setdefault((key, original_id), service)
            else:
                running[key] = service
    return tuple(kept), tuple(findings)


# -- entry points --------------------------------------------------------------------------

def _state(services: ServicesTable | None, include_disabled: bool, root: str | None) -> _State:
    return _State(services if services is not None else load_services(), include_disabled,
                  root)


@gc_paused
def parse_xinetd(text: str, file: str = "<xinetd.conf>", *,
                 services: ServicesTable | None = None, include_disabled: bool = False,
                 root: str | None = None) -> Configuration:
    """xinetd.conf text -> Configuration; includes are read relative to `file`'s directory.

    `root`: read absolute include paths under this directory (a migrated host's tree
    mounted elsewhere).
    """
    state = _state(services, include_disabled, root)
    state.stack.append(file)
    try:
        status = os.stat(file)
        state.reading.add((status.st_dev, status.st_ino))
    except OSError:
        pass  # text that is not (yet) a file: nothing can include it
    parse_into(text, file, state)
    return _finish(state)


def read_xinetd(path: str | Path, *, services: ServicesTable | None = None,
                include_disabled: bool = False, root: str | None = None) -> Configuration:
    """An xinetd.conf file, following include and includedir."""
    path = str(path)
    return parse_xinetd(_read_text(path, None), path, services=services,
                        include_disabled=include_disabled, root=root)


@gc_paused
def read_xinetd_dir(path: str | Path, *, services: ServicesTable | None = None,
                    include_disabled: bool = False, root: str | None = None) -> Configuration:
    """A directory of service files (an xinetd.d), read as `includedir` reads it."""
    path = str(path)
    if not os.path.isdir(path):
        raise ConfigError("not a directory", path)
    state = _state(services, include_disabled, root)
    _include_dir(path, Source(path, 0), state)
    return _finish(state)
