r"""Quoting for systemd unit files: command lines, specifiers, environment, names.

systemd reads a unit value in several passes, and each one eats characters that a
legacy inetd line may well contain (systemd.syntax(7), systemd.service(5) "Command
lines", load-fragment.c `config_parse_exec`):

- specifiers: `%x` is expanded, and an unknown one is a *fatal* load error, so every
  literal `%` becomes `%%`;
- environment expansion in ExecStart= arguments: `$X` / `${X}` are replaced, so every
  literal `$` becomes `$$`;
- C-style unescaping and unquoting: `"..."` groups a word, `\\` and `\"` are literal,
  and `\xNN` gives one raw byte (how non-ASCII and control bytes travel);
- a lone unquoted `;` separates two command lines.

An argument of printable ASCII without space, quote or backslash (and not `;` alone)
passes the last two passes unchanged and is written bare, as an administrator would
(`ExecStart=-@/usr/sbin/in.fingerd in.fingerd -w`); any other is one double-quoted word
with C escapes. Both forms escape `%` and `$`, and together they round-trip any byte
string except NUL (which argv cannot hold anyway).
"""

from __future__ import annotations

import os
import re

# Characters a unit name may contain: systemd's unit_name_is_valid minus `@` (it would
# make the name a template or an instance), `\` (never needed) and `:`, which systemd
# accepts in names but `systemd-analyze verify FILE` misreads ("Couldn't process
# aliases"), so a unit named with it could not be checked.
UNIT_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")
# Unit names, including the ".socket" suffix, are limited to 255 bytes; keep room for
# our own suffixes ("-rearm", "@.service", a split counter).
MAX_STEM = 200


def specifiers(text: str) -> str:
    """Escape `%` so systemd's specifier expansion gives back `text` unchanged."""
    return text.replace("%", "%%")


# What each byte becomes inside a quoted word.
_ESCAPED = tuple("\\" + chr(b) if b in b'"\\' else chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}"
                 for b in range(256))
_PLAIN = re.compile(rb'[ !#-\[\]-~]*\Z')  # printable ASCII but `"` and `\`: nothing to escape
# A word systemd reads back unchanged without quotes: printable ASCII but space, `"`,
# `'` and `\` (quotes and escapes would be interpreted), and not a lone `;`.
_BARE = re.compile(rb"[!#-&(-\[\]-~]+\Z")


def _c_escape(data: bytes) -> str:
    """C-escape for systemd's cunescape: printable ASCII stays, the rest is \\xNN."""
    if _PLAIN.match(data):  # the common case, a plain word
        return data.decode("ascii")
    return "".join([_ESCAPED[b] for b in data])


def _as_bytes(text: str) -> bytes:
    # argv comes from a file read as UTF-8 with surrogateescape (or from os.fsdecode):
    # this returns exactly the bytes the program must receive.
    return os.fsencode(text)


def exec_word(word: str) -> str:
    """One ExecStart= argument, bare when it can be, else quoted, that systemd turns back
    into `word`."""
    data = _as_bytes(word)
    if b"\0" in data:
        raise ValueError("an argument cannot contain a NUL byte")
    text = data.decode("ascii") if _BARE.match(data) and data != b";" \
        else '"' + _c_escape(data) + '"'
    return text.replace("%", "%%").replace("$", "$$")


def executable_problem(path: str) -> str | None:
    """Why systemd would refuse `path` as an ExecStart= executable, or None if it is fine."""
    if not path.startswith("/"):
        return "the server must be an absolute path"
    data = _as_bytes(path)
    if any(b < 0x20 or b == 0x7F for b in data):
        return "the server path contains control characters"
    if any(c in path for c in "\"'\\$"):
        return "the server path contains a quote, backslash or `$`, which systemd refuses"
    parts = path.split("/")[1:]
    if path.endswith("/") or any(p in ("", ".", "..") for p in parts):
        return "the server path is not normalised (empty, '.' or '..' component)"
    if len(data) >= 4096:
        return "the server path is too long"
    return None


def exec_line(path: str, argv: tuple[str, ...] | list[str], *, prefix: str = "") -> str:
    """`ExecStart=` value: `PREFIX@path argv0 args...` with argv[0] kept as given.

    `prefix` holds systemd's other flags (`-` to ignore the exit status). The caller
    checks `executable_problem(path)` first.
    """
    problem = executable_problem(path)
    if problem:
        raise ValueError(problem)
    args = list(argv) or [os.path.basename(path)]
    words = [exec_word(path)] + [exec_word(a) for a in args]
    return f"{prefix}@" + " ".join(words)


def env_assignment(name: str, value: str) -> str:
    """An `Environment=` value: one `NAME=value` word, quoted when it must be (no `$`
    expansion there)."""
    if not valid_env_name(name):
        raise ValueError(f"not a valid environment variable name: {name!r}")
    data = _as_bytes(f"{name}={value}")
    if b"\0" in data:
        raise ValueError("an environment value cannot contain a NUL byte")
    text = data.decode("ascii") if _BARE.match(data) else '"' + _c_escape(data) + '"'
    return text.replace("%", "%%")


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def valid_env_name(name: str) -> bool:
    return bool(_ENV_NAME.match(name))


def value(text: str) -> str:
    """A free-text directive value (Description=, paths in Listen*=, User=): one line,
    specifiers escaped. Control characters cannot be expressed there and become `?`."""
    return specifiers(comment(text))


def comment(text: str) -> str:
    """Text safe to put after `# ` on one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else "?" for c in text)


def unit_stem(text: str) -> str:
    """A unit-name stem from an arbitrary id: only [A-Za-z0-9:_.-], never empty, never
    starting with `-` or `.`; long ids are cut and disambiguated with a stable hash."""
    stem = UNIT_NAME_CHARS.sub("-", text).lstrip("-.") or "service"
    if len(stem) > MAX_STEM:
        import hashlib

        digest = hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:10]
        stem = f"{stem[:MAX_STEM - 11]}-{digest}"
    return stem


def user_problem(name: str) -> str | None:
    """Why systemd would not take `name` for User=/Group=/SupplementaryGroups=, or None.

    systemd ignores an invalid User= with a warning and then runs the service as root,
    so a name it would refuse must stop the conversion of that service instead."""
    if not name or name in (".", "..") or len(name) > 256:
        return f"not a valid user or group name: {name!r}"
    if name.startswith("-") or any(c.isspace() or not c.isprintable() or c in ":/,"
                                   for c in name):
        return f"not a valid user or group name: {name!r}"
    if name.isdigit() and int(name) in (65535, 4294967295) or \
            name.isdigit() and int(name) > 4294967295:
        return f"not a usable numeric user or group id: {name}"
    return None
