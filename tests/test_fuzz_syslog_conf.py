"""Fuzzing the syslog.conf reader: any text yields rules or a ConfigError naming file, line
and column, in time linear in the text, never a traceback or a hang.

Inputs are lines built from the grammar's pieces (selectors, every kind of action, rsyslog
directives, includes, continuations, comments) and then mutated byte by byte. Include
lines name files in a private directory holding a few real files: one that includes
itself, a directory, a FIFO (which must never be opened for a blocking read), an empty
file, a plain one. Every input that ever broke the reader is kept under
tests/data/fuzz-regressions/syslog-conf/ and replayed.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, strategies as st

from fuzz_support import (BELOW_QUADRATIC, fuzz_settings, growth_ratio, regression_cases,
                          result_or_located_error)
from inetd2systemd.errors import ConfigError
from inetd2systemd.syslog.rules import parse_syslog_conf

FACILITIES = ["kern", "user", "mail", "daemon", "auth", "authpriv", "local7", "*", "mark",
              "security", "LOCAL1", "mial", ""]
PRIORITIES = ["info", "*", "none", "err", "!err", "=debug", "!=notice", "emerg", "inf", "", "!"]
ACTIONS = ["/var/log/x", "-/var/log/y", "|/run/fifo", "|", "/dev/console", "/dev/tty1",
           "@loghost", "@loghost:5514", "@@(o)loghost", "@[::1]:514", "@a..b:5514", "@[::1x]:5",
           "@10.0.0.010", "@host:99999", "@h\u00f6st.example", "@" + "a" * 70 + ".example",
           ":omjournal:", "~", "stop", "*", "root,eric", ":omusrmsg:*", "-", "?bad",
           "/var/log/x;RSYSLOG_FileFormat", "/var/log/\0x"]
INCLUDES = ["a.conf", "*.conf", "sub", "sub/", "self.conf", "fifo", "empty.conf", "missing.conf",
            "", "[", "sub/*"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("conf")
    (d / "a.conf").write_text("mail.* /a\n& /b\n")
    (d / "self.conf").write_text("include self.conf\n")
    (d / "empty.conf").write_text("")
    (d / "sub").mkdir()
    (d / "sub" / "b.conf").write_text("news.* -/b\n")
    os.mkfifo(d / "fifo")
    return d


@st.composite
def _line(draw) -> str:
    kind = draw(st.sampled_from(["rule", "rule", "rule", "include", "directive", "comment",
                                 "blank", "junk"]))
    space = draw(st.sampled_from([" ", "\t", "  \t", ""]))
    if kind == "rule":
        selector = ";".join(
            ",".join(draw(st.lists(st.sampled_from(FACILITIES), min_size=1, max_size=3)))
            + "." + draw(st.sampled_from(PRIORITIES))
            for _ in range(draw(st.integers(1, 3))))
        if draw(st.booleans()):
            selector = draw(st.sampled_from(["&", "*.*", "kern.!err"]))
        return selector + space + draw(st.sampled_from(ACTIONS))
    if kind == "include":
        word = draw(st.sampled_from(["include", "$IncludeConfig", "$includeconfig"]))
        return f"{word}{space}{draw(st.sampled_from(INCLUDES))}"
    if kind == "directive":
        return "$" + draw(st.sampled_from(["RepeatedMsgReduction on", "ModLoad imuxsock", ""]))
    if kind == "comment":
        return "# " + draw(st.text(max_size=20))
    if kind == "blank":
        return space
    return draw(st.text(max_size=40))


@st.composite
def configurations(draw) -> str:
    lines = draw(st.lists(_line(), max_size=12))
    text = "\n".join(line + ("\\" if draw(st.integers(0, 9)) == 0 else "") for line in lines)
    chars = list(text)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(chars)))
        change = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(st.sampled_from(["\0", "\r", "\n", " ", "\\", ".", ";", "@", "[", "\x0b",
                                     "\u2028", "\udcff", "é", "(", ")", ":", "#", "{"]))
        if change == "insert" or not chars:
            chars.insert(at, char)
        elif change == "delete":
            del chars[min(at, len(chars) - 1)]
        else:
            chars[min(at, len(chars) - 1)] = char
    return "".join(chars)


def _read(text: str, folder) -> object:
    outcome = result_or_located_error(lambda: parse_syslog_conf(text, str(folder / "syslog.conf")),
                                      len(text))
    if isinstance(outcome, ConfigError):
        assert outcome.column is not None, f"error without a column: {outcome}"
        assert outcome.file is not None
    return outcome


@fuzz_settings()
@given(text=configurations())
def test_any_text_is_rules_or_a_located_error(folder, text):
    _read(text, folder)


@fuzz_settings()
@given(data=st.binary(max_size=300))
def test_any_bytes_are_rules_or_a_located_error(folder, data):
    _read(data.decode("utf-8", "surrogateescape"), folder)


def test_time_is_linear_in_the_number_of_lines(folder):
    text = "*.info;mail.none /var/log/m\nmail.* -/var/log/mail\n& @loghost:514\n$Foo bar\n"
    ratio = growth_ratio(lambda n: parse_syslog_conf(text * n, str(folder / "syslog.conf")), 500)
    assert ratio < BELOW_QUADRATIC, ratio


@pytest.mark.parametrize("name, data", regression_cases("syslog-conf") or [("none", b"")],
                         ids=lambda value: value if isinstance(value, str) else "")
def test_regressions(folder, name, data):
    _read(data.decode("utf-8", "surrogateescape"), folder)
