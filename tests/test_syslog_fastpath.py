"""The file sink's fast path (sinks.traditional_lines) writes exactly what the general
road (parse -> route -> traditional_line) writes, for every frame it takes."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings, strategies as st

from inetd2systemd.syslog.message import BOM, parse
from inetd2systemd.syslog.rules import parse_syslog_conf
from inetd2systemd.syslog.sinks import Router, traditional_lines

# Files for most PRIs, nothing for mail (mail.none), and local0 also forwarded, so
# some PRIs go to line sinks only, some nowhere and some to a sink that needs a Message.
RULES = "*.*;mail.none\t-{dir}/all.log\nlocal0.*\t@127.0.0.1:9\n*.err\t{dir}/err.log\n"


def _routers(tmp: Path) -> tuple[Router, Router]:
    fast, general = tmp / "fast", tmp / "general"
    fast.mkdir(exist_ok=True)
    general.mkdir(exist_ok=True)
    return (Router(parse_syslog_conf(RULES.format(dir=fast), "rules")),
            Router(parse_syslog_conf(RULES.format(dir=general), "rules")))


def _written(router: Router, tmp: Path, name: str) -> dict[str, bytes]:
    router.close()
    return {p.name: p.read_bytes() for p in sorted((tmp / name).iterdir())}


# Mostly well-formed pieces, so that the fast path's own checks are what decides.
_timestamp = st.one_of(
    st.sampled_from([b"2026-11-27T12:00:00.123456+00:00", b"2003-10-11T22:14:15Z"]),
    st.sampled_from([b"-", b"", b"2026-13-01T00:00:00Z", b"Oct 11 22:14:15"]),
    st.binary(min_size=1, max_size=12).filter(lambda b: b" " not in b))
_field = st.one_of(st.sampled_from([b"host", b"-x", b"app.d", b"4242"]),
                   st.sampled_from([b"-", b""]),
                   st.binary(min_size=1, max_size=8).filter(lambda b: b" " not in b))
_msg = st.one_of(
    st.sampled_from([b"seq=1 xxx", b"", b"- x", b"[sd] x"]),
    st.sampled_from([None, b"a\nb", b"end\r", b"nul\0", b"mid\0dle", BOM + b"text", b"\r\n"]),
    st.binary(max_size=30))
_pri = st.one_of(st.integers(0, 191).map(lambda p: b"<%d>1" % p),
                 st.sampled_from([b"<013>1", b"<192>1", b"<1>2", b"13>1", b" <13>1"]))
_sd = st.sampled_from([b"-", b"[a@1 k=\"v\"]", b"-x", b""])


@settings(max_examples=800, deadline=None)
@given(frames=st.lists(st.tuples(_pri, _timestamp, _field, _field, _field, _field, _sd, _msg),
                       min_size=1, max_size=8))
def test_the_fast_path_writes_what_the_general_road_writes(tmp_path_factory, frames):
    tmp = tmp_path_factory.mktemp("fastpath")
    raw = [b" ".join(parts[:7]) + (b"" if parts[7] is None else b" " + parts[7])
           for parts in frames]
    fast, general = _routers(tmp)
    fast.deliver(raw, "10.0.0.9", "udp", 1_700_000_000.0)
    for frame in raw:
        general.route(parse(frame, "10.0.0.9", "udp", 1_700_000_000.0))
    assert _written(fast, tmp, "fast") == _written(general, tmp, "general")


_SPECIAL_MESSAGES = [None, b"", b"plain", b"a\nb", b"end\r", b"nul\0", b"mid\0dle", BOM + b"text",
                     b"\r\n", b"- x", b"[sd] x"]
_HEADER = [b"<14>1", b"2026-11-27T12:00:00.000001+00:00", b"host", b"app", b"42", b"ID1", b"-"]


def _variants():
    """Each special message after a valid header, and a valid message after a header
    with one field NIL, empty or odd in turn."""
    for msg in _SPECIAL_MESSAGES:
        yield _HEADER, msg
    for i in range(1, 7):
        for odd in (b"-", b"", b"-x", b"x-", b"[a@1]"):
            yield _HEADER[:i] + [odd] + _HEADER[i + 1:], b"text"


def test_every_special_case_is_written_as_the_general_road_writes_it(tmp_path):
    raw = [b" ".join(header) + (b"" if msg is None else b" " + msg) for header, msg in _variants()]
    fast, general = _routers(tmp_path)
    fast.deliver(raw, "10.0.0.9", "tcp", 1_700_000_000.0)
    for frame in raw:
        general.route(parse(frame, "10.0.0.9", "tcp", 1_700_000_000.0))
    written = _written(fast, tmp_path, "fast")
    assert written == _written(general, tmp_path, "general")
    assert written["all.log"].count(b"\n") == len(raw)  # one line each, none lost


def test_a_plain_rfc5424_message_takes_the_fast_path(tmp_path):
    frame = b"<134>1 2026-11-27T12:00:00.000001+00:00 benchhost bench 4242 - - seq=00000001 x"
    router = Router(parse_syslog_conf(f"*.*\t-{tmp_path}/all.log\n", "rules"))
    assert traditional_lines(iter([frame]), router.line_queues) is None  # taken
    router.close()
    assert (tmp_path / "all.log").read_bytes() == b"Nov 27 12:00:00 benchhost bench[4242]: seq=00000001 x\n"


def test_messages_for_a_journal_or_forwarding_rule_take_the_general_road(tmp_path):
    frame = b"<134>1 2026-11-27T12:00:00Z h app 1 - - text"
    router = Router(parse_syslog_conf(f"*.*\t-{tmp_path}/all.log\nlocal0.*\t@127.0.0.1:9\n", "rules"))
    assert traditional_lines(iter([frame]), router.line_queues) == frame  # 134 = local0.info
    router.close()
