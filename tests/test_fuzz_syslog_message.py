"""Fuzzing the syslog message path: parse() and every formatter are total on arbitrary
bytes (a Message, a line, journal fields, a forward frame, never an exception, in time
linear in the input), and the file sinks' fast road writes what the general road writes.

One exception in a formatter used to lose the rest of the listener's read batch (issue
14: an RFC 5424 timestamp with day `xx`); every input that ever broke this path is kept
under tests/data/fuzz-regressions/syslog-message/ and replayed here.
"""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from fuzz_support import fuzz_settings, regression_cases, result_or_located_error
from inetd2systemd.syslog.message import Message, parse, sd_elements
from inetd2systemd.syslog.sinks import forward_frame, journal_fields, traditional_line
from syslog_support import both_roads

SEEDS = [
    b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed",
    b'<165>1 2003-10-11T22:14:15.003Z host evntslog 42 ID47 [ex@32473 iut="3" a="\\]"] text',
    b"<13>1 - - - - - -",
    b"<13>Oct 11 22:14:15 host sshd[123]: Accepted publickey",
    b"<13>Nov 27 10:44:08 mytag[55]: glibc from /dev/log",
    b"<189>16261: *May 28 16:09:56.185: %SYS-5-CONFIG_I: Configured from console",
    b"<190>Apr 15 21:28:13 2007 linksys app: msg",
    b"<7>2006-10-29 02:00:00.15600000000000+01:00 host prog: iso with a space",
    b"<166>2016-03-01T12:00:00.000Z esx Vpxa: [Originator@6876 sub=vpxLro opID=x-1] bare",
    b"<13>Oct 11 22:14:15 2001:db8::1 tag:no space",
]


@st.composite
def _mutated(draw) -> bytes:
    """A seed with a few bytes replaced, inserted or removed at random places."""
    out = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(out)))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(st.integers(0, 255))
        if action == "insert" or not out:
            out.insert(at, byte)
        elif action == "replace":
            out[min(at, len(out) - 1)] = byte
        else:
            del out[min(at, len(out) - 1)]
    return bytes(out)


frames = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda seed, tail: seed + tail, st.sampled_from(SEEDS), st.binary(max_size=40)),
    _mutated(),
)
transports = st.sampled_from(["udp", "tcp", "tls", "unix", "unix-stream"])


def every_output(data: bytes, transport: str) -> Message:
    """Parse, then format the message every way a sink does; all must return."""
    for escape in (True, False):
        m = parse(data, "" if transport.startswith("unix") else "192.0.2.1", transport, 1.7e9, escape)
        assert m.raw == data
        assert 0 <= m.facility <= 23 and 0 <= m.severity <= 7
        line = traditional_line(m)
        assert line.endswith(b"\n")
        if escape:
            assert line.count(b"\n") == 1  # one message, one line
            assert not any(c < 0x20 and c != 0x0A for c in line)  # nothing raw for a terminal
        assert forward_frame(m).startswith(b"<%d>" % m.pri)
        assert all(f.partition(b"=")[1] for f in journal_fields(m))
        sd_elements(m.structured_data)
    return m


@fuzz_settings()
@given(data=frames, transport=transports)
def test_parse_and_every_formatter_are_total(data, transport):
    result_or_located_error(lambda: every_output(data, transport), len(data), errors=())


@pytest.mark.parametrize("name, data", regression_cases("syslog-message"))
def test_kept_regressions(name, data):
    for transport in ("udp", "unix"):
        every_output(data, transport)


@fuzz_settings(max_examples=max(20, fuzz_settings().max_examples // 5))
@given(batch=st.lists(frames, min_size=1, max_size=6), transport=transports)
def test_the_fast_road_writes_what_the_general_road_writes(tmp_path_factory, batch, transport):
    # Frames reach the router without their framing: no LF inside a TCP frame.
    batch = [f.replace(b"\n", b" ") for f in batch] if transport != "udp" else batch
    both_roads(tmp_path_factory.mktemp("roads"), batch, transport)


def test_a_long_input_takes_linear_time(tmp_path):
    # Regexes with nested repetition over the header must not backtrack on long inputs,
    # on the general road or the fast road (whose expression runs over a whole batch).
    for i, data in enumerate((b"<13>" + b"1" * 100_000, b"<13>Oct 11 22:14:15 " + b"a" * 100_000,
                 b"<13>1 - h a p m [" + b'a k="' * 20_000, b"<13>1 - h a p m " + b"[x]" * 30_000,
                 b"<13>Oct 11 22:14:15 " + b"1:" * 50_000 + b" x",
                 b"<13>Oct 11 22:14:15 " + b"a" * 100_000 + b"- tag: x",
                 b"<13>Oct 11 22:14:15 " + b"a:" * 50_000 + b"- tag: x",
                 b"<13>Oct 11 22:14:15 host " + b"t" * 100_000 + b"x",
                 b"<13>1 2026-11-27T12:00:00." + b"1" * 100_000 + b"+00:00 h a p m - x")):
        result_or_located_error(lambda: every_output(data, "udp"), len(data), errors=())
        for transport in ("udp", "unix"):
            (roads := tmp_path / f"{i}{transport}").mkdir()
            result_or_located_error(lambda: both_roads(roads, [data] * 3, transport),
                                    3 * len(data), errors=())
