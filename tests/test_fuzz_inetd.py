"""Fuzzing the inetd.conf reader and the /etc/services reader (#14).

The property (tests/fuzz_support.py): any input gives a result or our own error with a
location, in time linear in its size. For inetd.conf a result is the rule: a bad entry
is an ERROR finding with a line and a column, never an exception, so the reader raises
nothing at all for text. The inputs start from the real files of the corpus and the
forms the dialects know, then are cut, spliced and seeded with hostile pieces (host
names the IDNA codec refuses, NUL, bytes that are not UTF-8, digits that are not ASCII).
Every input that ever broke a reader is a file under tests/data/fuzz-regressions/inetd/
and is replayed here for every flavour.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from support import DATA
from fuzz_support import (BELOW_QUADRATIC, fuzz_settings, growth_ratio, regression_cases,
                          result_or_located_error)

from inetd2systemd.config.inetd import FLAVORS, parse_inetd
from inetd2systemd.config.services import parse_services
from inetd2systemd.model import Severity

SERVICES = parse_services("echo 7/tcp\necho 7/udp\nftp 21/tcp\ntelnet 23/tcp\n"
                          "daytime 13/tcp\ndaytime 13/udp\ntftp 69/udp\nfinger 79/tcp\n", "fuzz")


def _corpus_lines() -> list[str]:
    lines = []
    for path in sorted((DATA / "corpus" / "inetd").rglob("*")) + sorted((DATA / "inetd").glob("*")):
        if path.is_file():
            lines += path.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    return [line for line in lines if line.strip()]


CORPUS_LINES = _corpus_lines()
HOSTILE = ["a..b:", "x" * 64 + ".example:", "\0", "\udcff\udcfe", "²", "9" * 5000, "[::1", "]",
           ":", "[", "#<off>#", "tcpmux/+", "nowait/", "wait:", "/", ".include", "#@ ipsec",
           "on", '"', "'", "\t", " ", ",", "rcvbuf=", "internal", "rpc/", "tcp46", "udp6only",
           "unix", "stream:", "\ufeff"]


@st.composite
def inetd_text(draw) -> str:
    """Corpus lines, some cut or spliced with hostile pieces, some continued."""
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        line = draw(st.sampled_from(CORPUS_LINES))
        for _ in range(draw(st.integers(0, 3))):
            at = draw(st.integers(0, len(line)))
            piece = draw(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=8)))
            line = line[:at] + piece + line[at + draw(st.integers(0, 6)):]
        lead = draw(st.sampled_from(["", "", "", " ", "\t"]))
        lines.append(lead + line)
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))


# How a bad entry's finding ends: what the daemon does with it (config.bad_entry).
BAD_ENTRY_OUTCOMES = ("skips this line", "cannot listen for it", "reads those files too")


def check_reading(text: str, flavor: str) -> None:
    outcome = result_or_located_error(
        lambda: parse_inetd(text, "fuzz.conf", flavor=flavor, services=SERVICES), len(text))
    assert not isinstance(outcome, BaseException), outcome  # a bad entry is a finding
    count = max(1, len(text.splitlines()))
    for finding in outcome.findings:
        assert finding.source.file == "fuzz.conf" and 1 <= finding.source.line <= count
        if finding.message.endswith(BAD_ENTRY_OUTCOMES):
            assert finding.severity is Severity.ERROR and finding.source.column >= 1, finding
    ids = [s.id for s in outcome.services]
    assert len(ids) == len(set(ids))


@fuzz_settings()
@given(inetd_text(), st.sampled_from(FLAVORS))
def test_any_inetd_text_reads_with_every_problem_located(text, flavor):
    check_reading(text, flavor)


@fuzz_settings()
@given(st.lists(st.text(max_size=20) | st.sampled_from(HOSTILE), max_size=40).map("".join),
       st.sampled_from(FLAVORS))
def test_arbitrary_text_reads_with_every_problem_located(text, flavor):
    check_reading(text, flavor)


@fuzz_settings()
@given(st.binary(max_size=600))
def test_any_services_file_reads(data):
    text = data.decode("utf-8", "surrogateescape")
    table = result_or_located_error(lambda: parse_services(text, "services"), len(text))
    assert not isinstance(table, BaseException)
    assert all(0 < port < 65536 for port in table.ports.values())


@pytest.mark.parametrize("name,data", regression_cases("inetd"),
                         ids=[name for name, _ in regression_cases("inetd")] or None)
def test_every_input_that_ever_broke_the_reader_stays_fixed(name, data):
    text = data.decode("utf-8", "surrogateescape")
    for flavor in FLAVORS:
        check_reading(text, flavor)


# -- linear growth: the blow-ups of #14 ------------------------------------------------------

LINE = "ftp stream tcp nowait root /bin/cat cat\n"

GROWING = {
    # 100k continuation lines of one entry: was a tuple concatenation per line
    "continuation lines": lambda n: LINE + "  -x\n" * n,
    "entries": lambda n: "".join(f"{1000 + i % 60000} stream tcp nowait root /bin/cat cat\n"
                                 for i in range(n)),
    "one name many times (ids)": lambda n: LINE * n,
    "bad entries": lambda n: "ftp stream tcp sometimes root /bin/cat cat\n" * n,
    "tcp + tcp6 pairs": lambda n: "".join(f"{1000 + i % 60000} stream tcp nowait root internal\n"
                                          f"{1000 + i % 60000} stream tcp6 nowait root internal\n"
                                          for i in range(n // 2)),
    "a long host list": lambda n: ",".join(f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"
                                           for i in range(n)) + ":" + LINE,
    "disabled entries": lambda n: ("#<off># " + LINE) * n,
    "one long line": lambda n: LINE.rstrip("\n") + " arg" * n + "\n",
}


@pytest.mark.parametrize("case", sorted(GROWING))
def test_reading_time_grows_linearly(case):
    make = GROWING[case]
    texts = {n: make(n) for n in (1000, 10000)}
    ratio = growth_ratio(lambda n: parse_inetd(texts[n], "big.conf", services=SERVICES), 1000)
    assert ratio < BELOW_QUADRATIC, f"{case}: 10x the input took {ratio:.0f}x the time"


def test_services_file_time_grows_linearly():
    texts = {n: "".join(f"svc{i} {1 + i % 65535}/tcp alias{i}\n" for i in range(n))
             for n in (5000, 50000)}
    assert growth_ratio(lambda n: parse_services(texts[n]), 5000) < BELOW_QUADRATIC


def test_the_regression_corpus_exists():
    assert (Path(__file__).parent / "data" / "fuzz-regressions" / "inetd").is_dir()
