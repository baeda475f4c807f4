"""Fuzzing the xinetd reader (#14).

The property (tests/fuzz_support.py): any input gives a result or our own error with a
location, in time linear in its size. For xinetd a result is the rule: a bad line or
entry costs what it costs xinetd and is a finding with a line and a column; ConfigError
is left for what xinetd cannot start with at all (a bad defaults entry, a file with no
entry), and it too names a line. The inputs start from real files (tests/data/xinetd,
examples/, the corpus) and are cut, spliced, re-cased and seeded with hostile pieces
(NUL, C blanks other than space and tab, CRLF, bytes that are not UTF-8, host names the
IDNA codec refuses, huge numbers); trees of files include one another in loops, fan-outs
and chains. Every input that ever broke the reader is a file under
tests/data/fuzz-regressions/xinetd/ (a tree is kept as files joined by `#==> NAME` lines)
and is replayed here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from support import DATA, ROOT
from fuzz_support import (BELOW_QUADRATIC, assert_linear, fuzz_settings, growth_ratio,
                          regression_cases, result_or_located_error)

from inetd2systemd.config.services import parse_services
from inetd2systemd.config.xinetd import ATTRIBUTES, parse_xinetd, read_xinetd
from inetd2systemd.errors import ConfigError
from inetd2systemd.model import Severity

NOWHERE = "/nonexistent/fuzz-root"  # absolute includes look here, never at this host's /etc
SERVICES = parse_services("echo 7/tcp\necho 7/udp\nftp 21/tcp\ntelnet 23/tcp\nrsync 873/tcp\n"
                          "daytime 13/tcp\ndaytime 13/udp\ntftp 69/udp\nnrpe 5666/tcp\n"
                          "git 9418/tcp\n", "fuzz")


def _seed_files() -> list[str]:
    paths = [p for folder in (DATA / "xinetd", DATA / "corpus" / "xinetd", ROOT / "examples")
             for p in sorted(folder.rglob("*")) if p.is_file()]
    texts = [p.read_text(encoding="utf-8", errors="surrogateescape") for p in paths]
    return [t for t in texts if "{" in t or "include" in t]


SEEDS = _seed_files()
SEED_LINES = sorted({line for text in SEEDS for line in text.splitlines() if line.strip()})
HOSTILE = ["\0", "\v", "\f", "\r", "\x1c", "\xa0", "\u2028", "\udcff\udcfe", "²", "#", "{", "}",
           "=", "+=", "-=", "==", "a..b", "x" * 64 + ".example", "9" * 30, "-1", "0x10",
           "UNLIMITED", "unlimited", "24:00", "23:59-00:00", "10.{1,,2}", "1,2", "::ffff:1.2.3.4",
           "include", "includedir", "service", "defaults", "disable = no", "disable = yes",
           "enabled", "SERVICE", "FLAGS", "NAMEINARGS", "INTERNAL", "RPC", "TCPMUX", "inf",
           "nan", "2.5x", "K", "M"]
ATTRIBUTE_LINES = [f"\t{name} = {value}" for name in ATTRIBUTES
                   for value in ("", "x", "yes", "1", "10 20", "UNLIMITED")]


def _mutate(draw, line: str) -> str:
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(line)))
        piece = draw(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=6)))
        line = line[:at] + piece + line[at + draw(st.integers(0, 5)):]
    if draw(st.integers(0, 9)) == 0:
        line = line.upper() if draw(st.booleans()) else line.swapcase()
    return line


@st.composite
def xinetd_text(draw) -> str:
    """A real file, some of its lines mutated, dropped, repeated, or replaced by lines of
    other files and attribute lines."""
    lines = draw(st.sampled_from(SEEDS)).split("\n")
    out = []
    for line in lines[:60]:
        choice = draw(st.integers(0, 19))
        if choice == 0:
            continue  # dropped: a lost brace, a lost header
        if choice == 1:
            line = draw(st.sampled_from(SEED_LINES + ATTRIBUTE_LINES))
        elif choice <= 4:
            line = _mutate(draw, line)
        out.append(line)
        if choice == 5:
            out.append(line)  # set twice
    return draw(st.sampled_from(["\n", "\r\n"])).join(out)


def check_reading(read, size: int, files: set[str]) -> None:
    outcome = result_or_located_error(read, size)
    if isinstance(outcome, ConfigError):
        assert os.path.normpath(outcome.file) in files and outcome.column, outcome
        return
    for finding in outcome.findings:
        assert os.path.normpath(finding.source.file) in files or finding.source.line == 0, \
            finding
        if finding.severity is Severity.ERROR and "xinetd" in finding.message:
            # every entry left out is pointed at, down to the column
            assert finding.source.line >= 1 and finding.source.column >= 1, finding
    ids = [s.id for s in outcome.services]
    assert len(ids) == len(set(ids))


@fuzz_settings()
@given(xinetd_text())
def test_any_xinetd_text_reads_with_every_problem_located(text):
    check_reading(lambda: parse_xinetd(text, "/fuzz/xinetd.conf", services=SERVICES, root=NOWHERE),
                  len(text), {"/fuzz/xinetd.conf"})


@fuzz_settings()
@given(st.lists(st.sampled_from(SEED_LINES + ATTRIBUTE_LINES + HOSTILE) | st.text(max_size=12),
                max_size=50).map("\n".join))
def test_arbitrary_lines_read_with_every_problem_located(text):
    check_reading(lambda: parse_xinetd(text, "/fuzz/xinetd.conf", services=SERVICES, root=NOWHERE),
                  len(text), {"/fuzz/xinetd.conf"})


@st.composite
def xinetd_tree(draw) -> dict[str, str]:
    """Up to five files that include one another (loops, repeats, chains, a directory,
    paths that do not exist or hold a NUL), each also holding a real file's text."""
    names = [f"f{n}" for n in range(draw(st.integers(1, 5)))]
    tree = {}
    for name in names:
        lines = []
        for _ in range(draw(st.integers(0, 4))):
            keyword = draw(st.sampled_from(["include", "includedir", "INCLUDE", "include"]))
            target = draw(st.sampled_from(names + ["d", "missing", "f0\0x", "/dev/null", "."]))
            lines.append(f"{keyword} {target}")
        body = draw(xinetd_text()) if draw(st.booleans()) else ""
        at = draw(st.integers(0, len(lines)))
        tree[name] = "\n".join(lines[:at] + [body] + lines[at:]) + "\n"
    if draw(st.booleans()):
        tree["d/svc"] = draw(xinetd_text())
    return tree


def _write_tree(root: Path, tree: dict[str, str]) -> None:
    for name, text in tree.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8", "surrogateescape"))


@fuzz_settings(max_examples=max(10, int(os.environ.get("FUZZ_EXAMPLES", "300")) // 5))
@given(xinetd_tree())
def test_any_include_tree_reads_with_every_problem_located(tmp_path_factory, tree):
    root = tmp_path_factory.mktemp("tree")
    _write_tree(root, tree)
    files = {str(root / name) for name in tree} | {str(root / "d")}
    check_reading(lambda: read_xinetd(root / "f0", services=SERVICES, root=str(root)),
                  sum(len(t) for t in tree.values()), files)


def _regression_tree(data: bytes) -> dict[str, str] | str:
    text = data.decode("utf-8", "surrogateescape")
    if not text.startswith("#==> "):
        return text
    tree = {}
    for part in text.split("#==> ")[1:]:
        name, _, body = part.partition("\n")
        tree[name] = body
    return tree


@pytest.mark.parametrize("name,data", regression_cases("xinetd"),
                         ids=[name for name, _ in regression_cases("xinetd")] or None)
def test_every_input_that_ever_broke_the_reader_stays_fixed(name, data, tmp_path):
    case = _regression_tree(data)
    if isinstance(case, str):
        check_reading(lambda: parse_xinetd(case, "/fuzz/xinetd.conf", services=SERVICES, root=NOWHERE),
                      len(case), {"/fuzz/xinetd.conf"})
    else:
        _write_tree(tmp_path, case)
        check_reading(lambda: read_xinetd(tmp_path / "f0", services=SERVICES, root=str(tmp_path)),
                      len(data), {str(tmp_path / n) for n in case} | {str(tmp_path / "d")})


# -- linear growth ---------------------------------------------------------------------------

ENTRY = ("service nrpe\n{\n\ttype = UNLISTED\n\tsocket_type = stream\n\twait = no\n"
         "\tuser = nobody\n\tserver = /bin/cat\n\tport = %d\n}\n")

GROWING = {
    "entries": lambda n: "".join(ENTRY % (1000 + i % 60000) for i in range(n)),
    "only_from +=": lambda n: ENTRY.replace("}", "".join(
        f"\tonly_from += 10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}\n"
        for i in range(n)) + "}") % 5666,
    "env +=": lambda n: ENTRY.replace("}", "".join(f"\tenv += V{i}=x\n" for i in range(n))
                                      + "}") % 5666,
    "passenv +=": lambda n: ENTRY.replace("}", "".join(f"\tpassenv += V{i}\n"
                                                        for i in range(n)) + "}") % 5666,
    "ignored lines": lambda n: ENTRY.replace("}", "\tbogus = 1\n" * n + "}") % 5666,
    "bad entries": lambda n: (ENTRY.replace("wait = no", "wait = maybe") % 5666) * n,
    "a lost brace per entry": lambda n: (ENTRY.replace("}\n", "") % 5666) * n,
    "defaults lists": lambda n: "defaults\n{\n" + "".join(
        f"\tno_access += 10.0.{i // 256 % 256}.{i % 256}\n" for i in range(n)) + "}\n",
    "one long line": lambda n: ENTRY.replace("}", "\tserver_args =" + " a" * n + "\n}") % 5666,
}


# Address entries are parsed through a cache of 4,096: both sizes must overflow it, or
# the smaller one is measured from the cache and the ratio means nothing.
SMALL = {"only_from +=": 5000, "defaults lists": 5000}


@pytest.mark.parametrize("case", sorted(GROWING))
def test_reading_time_grows_linearly(case):
    assert_linear(GROWING[case], lambda text: parse_xinetd(text, "big.conf", services=SERVICES),
                  SMALL.get(case, 500))


def test_include_trees_grow_linearly(tmp_path):
    """A chain of includes, each file included twice by the one before it."""
    def run(n: int) -> None:
        root = tmp_path / str(n)
        root.mkdir(exist_ok=True)
        for i in range(n):
            (root / f"f{i}").write_text(f"include f{i + 1}\ninclude f{i + 1}\n")
        (root / f"f{n}").write_text(ENTRY % 5666)
        assert len(read_xinetd(root / "f0", services=SERVICES).services) == 1
    assert growth_ratio(run, 100) < BELOW_QUADRATIC


def test_the_regression_corpus_exists():
    assert (DATA / "fuzz-regressions" / "xinetd").is_dir()
