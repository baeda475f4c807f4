"""The file sinks' fast path (sinks.traditional_lines) writes exactly what the general
road (parse -> route -> traditional_line) writes, for every frame it takes, in both
syntaxes and from network and local senders."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from inetd2systemd.syslog.message import BOM, parse
from inetd2systemd.syslog.rules import parse_syslog_conf
from inetd2systemd.syslog import sinks as sinks_module
from inetd2systemd.syslog.sinks import LOCAL_HOSTNAME, Router
from inetd2systemd.syslog.tables import MONTHS
from syslog_support import both_roads

# -- RFC 5424 ------------------------------------------------------------------------------

# Timestamps around the fast road's own tests of the fraction and the zone.
_TIMESTAMPS = [b"2003-10-11T22:14:15+24:00", b"2003-10-11T22:14:15.+00:00", b"2003-10-11T22:14:155+00:00",
               b"2003-10-11T22:14:15123+00:00",
               b"2003-10-11T22:14:15.1.2+00:00", b"2003-10-11T22:14:15.12-23:59", b"2003-10-11T22:14:15.1+00:60",
               b"2003-10-11T22:14:15.123456789+05:30", b"2003-10-11T22:14:15+05:30", b"2003-10-11T22:14:15.1z",
               b"2003-10-11T22:14:15.x1+00:00", b"2003-10-11T22:14:15.1+00:00x", b"2003-10-11T22:14:60.1+00:00",
               b"2003-10-11T22:14:61.1+00:00", b"2003-02-30T22:14:15Z", b"2003-00-11T22:14:15Z",
               b"2003-10-11T22:14:15\xd9\xa1+00:00", b"2003-10-11T22:14:15.\xd9\xa1+00:00"]

# Mostly well-formed pieces, so that the fast path's own checks are what decides.
_timestamp = st.one_of(
    st.sampled_from([b"2026-11-27T12:00:00.123456+00:00", b"2003-10-11T22:14:15Z"]),
    st.sampled_from([b"-", b"", b"2026-13-01T00:00:00Z", b"Oct 11 22:14:15", b"2003-10-xxT22:14:15Z",
                     b"2003-10-11T22:14:15.1+0200", b"2003-10-11t22:14:15Z", b"2003-10-11T22:14:15+25:00",
                     b"2003-10-11T22:14:15.Z", b"2003-10-11T22:14:15", b"2003-10-11T22:14:15.003Zjunk"]),
    st.sampled_from(_TIMESTAMPS),
    st.binary(min_size=1, max_size=12).filter(lambda b: b" " not in b))
_field = st.one_of(st.sampled_from([b"host", b"-x", b"app.d", b"4242"]),
                   st.sampled_from([b"-", b""]),
                   st.binary(min_size=1, max_size=8).filter(lambda b: b" " not in b))
_msg = st.one_of(
    st.sampled_from([b"seq=1 xxx", b"", b"- x", b"[sd] x", b" lead", b"  two"]),
    st.sampled_from([None, b"a\nb", b"end\r", b"nul\0", b"mid\0dle", BOM + b"text", b"\r\n", b"\x1b[1m"]),
    st.binary(max_size=30))
_pri = st.one_of(st.integers(0, 191).map(lambda p: b"<%d>1" % p),
                 st.sampled_from([b"<013>1", b"<192>1", b"<1>2", b"13>1", b" <13>1"]))
_sd = st.sampled_from([b"-", b"[a@1 k=\"v\"]", b"-x", b""])


@settings(max_examples=800, deadline=None)
@given(frames=st.lists(st.tuples(_pri, _timestamp, _field, _field, _field, _field, _sd, _msg),
                       min_size=1, max_size=8),
       transport=st.sampled_from(["udp", "tcp", "unix"]))
def test_rfc5424_fast_path_writes_what_the_general_road_writes(tmp_path_factory, frames, transport):
    raw = [b" ".join(parts[:7]) + (b"" if parts[7] is None else b" " + parts[7])
           for parts in frames]
    both_roads(tmp_path_factory.mktemp("fastpath"), raw, transport)


_SPECIAL_MESSAGES = [None, b"", b"plain", b"a\nb", b"end\r", b"nul\0", b"mid\0dle", BOM + b"text",
                     b"\r\n", b"- x", b"[sd] x", b" lead", b"\x1b]0;title\x07", b"tab\there"]
_HEADER = [b"<14>1", b"2026-11-27T12:00:00.000001+00:00", b"host", b"app", b"42", b"ID1", b"-"]


def _variants_5424():
    """Each special message after a valid header, and a valid message after a header
    with one field NIL, empty or odd in turn."""
    for msg in _SPECIAL_MESSAGES:
        yield b" ".join(_HEADER) + (b"" if msg is None else b" " + msg)
    for i in range(1, 7):
        for odd in (b"-", b"", b"-x", b"x-", b"[a@1]", b"2003-10-xxT22:14:15Z", b"h\x1bst",
                    b"2003-10-11T22:14:15.003Zjunk", b"2003-10-11t22:14:15Z", b"2003-10-11T22:14:15+0200",
                    *_TIMESTAMPS):
            yield b" ".join(_HEADER[:i] + [odd] + _HEADER[i + 1:]) + b" text"


# -- RFC 3164 ------------------------------------------------------------------------------

_STAMPS = [b"Oct 11 22:14:15", b"Oct  1 22:14:15", b"Nov 30 23:59:60", b"Dec 31 00:00:61", b"Jun 00 12:00:00", b"Oct 01 22:14:15", b"oct 11 22:14:15",
           b"OCT 11 22:14:15", b"Oct 11 22:14:15.123", b"Oct 11 2023 22:14:15", b"Oct 32 22:14:15",
           b"Oct 11 24:00:00", b"Oct 11 22:14:15:", b"Oct 11 2:14:15", b"2023 Oct 11 22:14:15",
           b"2026-11-27T12:00:00Z", b"Oct 11 22:14", b"Foo 11 22:14:15",
           *(b"%s %s 12:00:00" % (month, day) for month in MONTHS for day in (b" 9", b"10")),
           *(b"%s 21 12:00:00" % month.lower() for month in MONTHS),
           *(b"%s 21 12:00:00" % month.upper() for month in MONTHS)]
_HOSTS = [b"host", b"web-01.example.org", b"2001:db8::1", b"::1", b"host-", b"2009", b"1969", b"ho_st",
          b"", b"h@st", b"[10.0.0.1]", b"h\x1bst", b"-", b"a:b", b"x" * 300]
_TAGS = [b"sshd[1]:", b"sshd:", b"sshd", b"a:b", b":", b"su[1]:x", b"-", b"%SYS-5-CONFIG_I:", b"",
         b"tag:", b"t\tg:", b"[sd]", b"{j}", b"UTC:", b"CEST:", b"EDT", b"2009", b"UTC:x"]
_MESSAGES_3164 = [b"msg text", b"", b" two", b"a\nb", b"\x1b[31m", b"end\r", b"nul\0", BOM + b"t",
                  b"x:y z", None]
_PRIS_3164 = [b"<13>", b"<0>", b"<191>", b"<013>", b"<192>", b"<16>", b"<134>", b"<22>", b"", b"<1", b"13>"]


def _frame_3164(pri, stamp, host, tag, msg) -> bytes:
    words = [w for w in (stamp, host, tag) if w is not None]
    text = pri + b" ".join(words)
    return text + (b"" if msg is None else b" " + msg)


def _variants_3164():
    """The usual frame, then each part replaced in turn by each of its odd forms; with a
    HOST (as from the network) and without (as glibc writes to the local socket)."""
    for usual in ([b"<13>", b"Oct 11 22:14:15", b"host", b"sshd[1]:", b"msg text"],
                  [b"<13>", b"Oct 11 22:14:15", None, b"sshd[1]:", b"msg text"]):
        yield _frame_3164(*usual)
        for i, options in enumerate([_PRIS_3164, _STAMPS, _HOSTS + [None], _TAGS, _MESSAGES_3164]):
            for option in options:
                yield _frame_3164(*(usual[:i] + [option] + usual[i + 1:]))


@pytest.mark.parametrize("transport", ["udp", "tcp", "unix", "unix-stream"])
def test_every_special_case_is_written_as_the_general_road_writes_it(tmp_path, transport):
    raw = list(_variants_5424()) + list(_variants_3164())
    written = both_roads(tmp_path, raw, transport)
    mail = sum(1 for frame in raw if parse(frame).facility == 2)
    assert written["all.log"].count(b"\n") == len(raw) - mail  # one line each, none lost


@settings(max_examples=800, deadline=None)
@given(frames=st.lists(st.tuples(
    st.one_of(st.sampled_from(_PRIS_3164), st.integers(0, 191).map(lambda p: b"<%d>" % p)),
    st.one_of(st.sampled_from(_STAMPS), st.binary(max_size=16)),
    st.one_of(st.sampled_from(_HOSTS + [None]), st.binary(max_size=10)),
    st.one_of(st.sampled_from(_TAGS + [None]), st.binary(max_size=10)),
    st.one_of(st.sampled_from(_MESSAGES_3164), st.binary(max_size=20))), min_size=1, max_size=8),
    transport=st.sampled_from(["udp", "tcp", "unix"]))
def test_rfc3164_fast_path_writes_what_the_general_road_writes(tmp_path_factory, frames, transport):
    both_roads(tmp_path_factory.mktemp("fastpath"), [_frame_3164(*f) for f in frames], transport)


# -- which road a frame takes --------------------------------------------------------------

def _roads(router: Router, frames: list[bytes], transport: str = "tcp") -> list[bytes]:
    """The frames the fast road hands to the general road, delivering them."""
    general = []
    original = sinks_module.parse

    def parse_spy(frame, *args):
        general.append(frame)
        return original(frame, *args)

    sinks_module.parse = parse_spy
    try:
        router.deliver(frames, "" if transport.startswith("unix") else "10.0.0.9", transport, 1.7e9)
    finally:
        sinks_module.parse = original
    return general


@pytest.mark.parametrize("frame, local, line", [
    (b"<134>1 2026-11-27T12:00:00.000001+00:00 benchhost bench 4242 - - seq=00000001 x", False,
     b"Nov 27 12:00:00 benchhost bench[4242] seq=00000001 x\n"),
    (b"<134>1 2026-11-27T12:00:00Z - - - - -  two", False, b"Nov 27 12:00:00 - - two\n"),
    (b"<134>Nov 27 12:00:00 benchhost bench[4242]: seq=00000001 x", False,
     b"Nov 27 12:00:00 benchhost bench[4242]: seq=00000001 x\n"),
    (b"<134>Nov  7 12:00:00 2001:db8::7 bench: x", False, b"Nov  7 12:00:00 2001:db8::7 bench: x\n"),
    (b"<134>Nov 27 12:00:00 host tag without colon", False, b"Nov 27 12:00:00 host tag without colon\n"),
    (b"<134>Nov 27 12:00:00 bench[4242]: x", True, b"Nov 27 12:00:00 %s bench[4242]: x\n"),
])
def test_the_common_shapes_take_the_fast_path(tmp_path, frame, local, line):
    router = Router(parse_syslog_conf(f"*.*\t-{tmp_path}/all.log\n", "rules"))
    assert _roads(router, [frame], "unix" if local else "tcp") == []  # all taken
    router.close()
    assert (tmp_path / "all.log").read_bytes() == (line % LOCAL_HOSTNAME if local else line)


def test_messages_for_a_journal_or_forwarding_rule_take_the_general_road(tmp_path):
    router = Router(parse_syslog_conf(f"*.*\t-{tmp_path}/all.log\nlocal0.*\t@127.0.0.1:9\n", "rules"))
    frames = [b"<134>1 2026-11-27T12:00:00Z h app 1 - - text", b"<134>Nov 27 12:00:00 h app: text",
              b"<13>Nov 27 12:00:00 h app: text"]
    assert _roads(router, frames) == frames[:2]  # 134 = local0.info; 13 = user.notice: fast
    router.close()


def test_a_batch_with_a_control_character_takes_the_fast_road_for_the_other_frames(tmp_path):
    router = Router(parse_syslog_conf(f"*.*\t-{tmp_path}/all.log\n", "rules"))
    frames = [b"<13>Nov 27 12:00:00 h app: %d" % i for i in range(5)]
    frames[2] += b"\tx"
    frames[4] += b"\nx"
    assert _roads(router, frames) == [frames[2], frames[4]]
    router.close()
