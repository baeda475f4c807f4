"""units.escape: the quoting layers of systemd unit files.

The byte-exact round trip through a real systemd is proven in test_units_systemd.py
(every byte from 1 to 255 in one argument); here, the rules one by one.
"""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from inetd2systemd.units import escape


@pytest.mark.parametrize("word, written", [
    ("plain", "plain"),
    ("-w", "-w"),
    ("--base-path=/srv/git", "--base-path=/srv/git"),
    ("a;b", "a;b"),  # only a lone `;` separates command lines
    ("#x", "#x"),  # `#` starts a comment only at the start of a line
    ("two words", '"two words"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("back\\slash", '"back\\\\slash"'),
    ("100%", "100%%"),
    ("%n%i", "%%n%%i"),
    ("$HOME ${X} $$", '"$$HOME $${X} $$$$"'),
    ("$HOME", "$$HOME"),
    (";", '";"'),
    ("", '""'),
    ("it's", '"it\'s"'),
    ("tab\tnl\n", '"tab\\x09nl\\x0a"'),
    ("ü", '"\\xc3\\xbc"'),
    ("\udcff", '"\\xff"'),  # a non-UTF-8 byte read with surrogateescape
])
def test_exec_word_is_bare_unless_it_must_be_quoted(word, written):
    assert escape.exec_word(word) == written


def test_nul_cannot_be_an_argument():
    with pytest.raises(ValueError):
        escape.exec_word("a\0b")


def test_exec_line_keeps_argv0_with_the_at_prefix():
    assert escape.exec_line("/usr/sbin/tcpd", ["in.fingerd", "-w"], prefix="-") == \
        "-@/usr/sbin/tcpd in.fingerd -w"
    assert escape.exec_line("/usr/bin/cat", []) == "@/usr/bin/cat cat"
    assert escape.exec_line("/opt/my tools/prog", ["prog"]) == '@"/opt/my tools/prog" prog'


@pytest.mark.parametrize("path, ok", [
    ("/usr/sbin/in.fingerd", True),
    ("/opt/my tools/prog", True),
    ("relative/prog", False),
    ("/usr/sbin/", False),
    ("/usr//sbin/x", False),
    ("/usr/./x", False),
    ("/usr/../x", False),
    ('/usr/"x', False),
    ("/usr/\\x", False),
    ("/usr/$x", False),
    ("/usr/x\n", False),
])
def test_executable_problem(path, ok):
    assert (escape.executable_problem(path) is None) is ok


def test_environment_assignment():
    assert escape.env_assignment("MSG", 'a "b" 5% \\ $X') == '"MSG=a \\"b\\" 5%% \\\\ $X"'
    assert escape.env_assignment("LANG", "C.UTF-8") == "LANG=C.UTF-8"
    with pytest.raises(ValueError):
        escape.env_assignment("BAD-NAME", "x")


def test_free_values_and_comments_stay_on_one_line():
    assert escape.value("50% off\n") == "50%% off?"
    assert escape.comment("a\nb") == "a?b"


@pytest.mark.parametrize("text, stem", [
    ("echo-tcp", "echo-tcp"),
    ("a@b c/d", "a-b-c-d"),
    ("-.hidden", "hidden"),
    ("@", "service"),
    ("host:echo", "host-echo"),  # `:` is valid but systemd-analyze verify misreads it
])
def test_unit_stem(text, stem):
    assert escape.unit_stem(text) == stem


def _unquote(word: str) -> bytes:
    """systemd's reading of one word (specifiers, $$, then quotes and C escapes), for the
    property test below; the real systemd reads the same words in test_units_systemd.py."""
    assert word and word != ";"
    if word[0] != '"':  # bare: nothing but the specifier and variable escapes
        assert not set(word) & set(" \"'\\") and word.isascii() and word.isprintable()
        return word.replace("%%", "%").replace("$$", "$").encode()
    assert word[-1] == '"'
    body, out, i = word[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        if c in "%$":
            assert body[i + 1] == c, f"unescaped {c}"
            out += c.encode()
            i += 2
        elif c == "\\":
            if body[i + 1] == "x":
                out.append(int(body[i + 2:i + 4], 16))
                i += 4
            else:
                out += body[i + 1].encode()
                i += 2
        else:
            assert c != '"' and 0x20 <= ord(c) < 0x7F
            out += c.encode()
            i += 1
    return bytes(out)


@given(st.binary(max_size=60).filter(lambda b: b"\0" not in b))
def test_any_argument_round_trips(data):
    import os

    assert _unquote(escape.exec_word(os.fsdecode(data))) == data


@given(st.text(max_size=300))
def test_stems_are_always_valid_unit_names(text):
    stem = escape.unit_stem(text)
    assert stem and len(stem) <= escape.MAX_STEM
    assert not escape.UNIT_NAME_CHARS.search(stem) and stem[0] not in "-."
