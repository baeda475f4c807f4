"""Parsing (RFC 5424, tolerant RFC 3164) and RFC 6587 framing, including hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from inetd2systemd.syslog.framing import StreamFramer
from inetd2systemd.syslog.message import parse, sd_elements
from inetd2systemd.syslog.sinks import journal_fields, traditional_line


def test_rfc5424_example_with_bom_and_nil_procid():
    # RFC 5424 section 6.5, example 1.
    raw = (b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
           b"\xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8")
    m = parse(raw, "192.0.2.1", "udp")
    assert (m.facility, m.severity) == (4, 2)
    assert m.timestamp == b"2003-10-11T22:14:15.003Z"
    assert m.hostname == b"mymachine.example.com"
    assert (m.app_name, m.procid, m.msgid, m.structured_data) == (b"su", b"", b"ID47", b"")
    assert m.msg == b"\xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8"  # as sent
    fields = dict(f.split(b"=", 1) for f in journal_fields(m))
    assert fields[b"MESSAGE"] == b"'su root' failed for lonvick on /dev/pts/8"  # BOM removed
    assert m.raw == raw and m.sender == "192.0.2.1" and m.syntax == "rfc5424"


def test_rfc5424_structured_data_escapes_and_several_elements():
    raw = (b'<165>1 2003-10-11T22:14:15.003Z host evntslog 42 ID47 '
           b'[exampleSDID@32473 iut="3" eventSource="Ap\\]p\\"li\\\\cation" x="a\\b"]'
           b'[examplePriority@32473 class="high"] message text')
    m = parse(raw)
    assert m.msg == b"message text"
    assert m.sd_elements() == (
        ("exampleSDID@32473", (("iut", "3"), ("eventSource", 'Ap]p"li\\cation'), ("x", "a\\b"))),
        ("examplePriority@32473", (("class", "high"),)),
    )


def test_rfc5424_all_nil_and_no_message():
    m = parse(b"<13>1 - - - - - -")
    assert m.syntax == "rfc5424"
    assert (m.timestamp, m.hostname, m.app_name, m.msg) == (b"", b"", b"", b"")


def test_rfc5424_with_broken_structured_data_keeps_the_text():
    m = parse(b'<13>1 - host app - - [unterminated x="1" and more')
    assert m.syntax == "rfc5424" and m.hostname == b"host" and m.app_name == b"app"
    assert m.msg == b'[unterminated x="1" and more'


@pytest.mark.parametrize("raw, fields", [
    # glibc /dev/log format: no hostname
    (b"<13>Nov 27 10:44:08 mytag[55]: hi there",
     dict(timestamp=b"Nov 27 10:44:08", hostname=b"", app_name=b"mytag", procid=b"55", msg=b"hi there")),
    (b"<190>Oct 11 22:14:15 myhost su[123]: x",
     dict(facility=23, severity=6, hostname=b"myhost", app_name=b"su", procid=b"123", msg=b"x")),
    (b"<190>Oct  1 22:14:15 su: x", dict(hostname=b"", app_name=b"su", msg=b"x")),
    # ISO timestamp with a zone (rsyslog's high-precision format)
    (b"<13>2023-10-11T22:14:15.123+02:00 host tag: m",
     dict(timestamp=b"2023-10-11T22:14:15.123+02:00", hostname=b"host", app_name=b"tag")),
    # Brocade (year first), Cisco (year after, colon after the time)
    (b"<13>2023 Oct 11 22:14:15 sw1 raslogd: m", dict(timestamp=b"2023 Oct 11 22:14:15", hostname=b"sw1")),
    (b"<13>Oct 11 2023 22:14:15: rtr tag: m", dict(timestamp=b"Oct 11 2023 22:14:15", hostname=b"rtr")),
    (b"<13>Oct 11 22:14:15.567 host tag: m", dict(hostname=b"host", msg=b"m")),
    # a TAG ended by a space, without a colon (rsyslog and syslog-ng alike)
    (b"<13>Oct 11 22:14:15 host just words", dict(hostname=b"host", app_name=b"just", msg=b"words",
                                                   tag=b"just")),
    # no timestamp at all: no hostname guessed from the text
    (b"<13>last message repeated 3 times", dict(hostname=b"", app_name=b"last",
                                                msg=b"message repeated 3 times")),
    (b"<34>kernel: oops", dict(facility=4, severity=2, app_name=b"kernel", msg=b"oops")),
    # leading zeros are accepted as rsyslog does
    (b"<034>Oct 11 22:14:15 h t: m", dict(facility=4, severity=2)),
])
def test_rfc3164_and_its_real_world_deviations(raw, fields):
    m = parse(raw)
    for name, value in fields.items():
        assert getattr(m, name) == value, name


@pytest.mark.parametrize("raw", [b"no pri at all", b"<999>too big", b"<>empty", b"", b"\xff\xfe",
                                 b'{"json": 1}'])
def test_unparseable_is_kept_whole(raw):
    m = parse(raw, "10.0.0.1", "udp", 1e9)
    assert m.raw == raw
    text = raw.lstrip(b" ")
    assert traditional_line(m).endswith(b" " + text + b"\n") or text.split(b" ", 1)[-1] in \
        traditional_line(m)  # written whole, after the stamp and host (a first word as TAG)
    assert (m.facility, m.severity) == (1, 5)  # user.notice, as rsyslog and RFC 3164 relays


def test_trailing_newline_and_nul_are_not_part_of_the_message():
    assert parse(b"<13>Oct 11 22:14:15 h t: m\r\n\x00").msg == b"m"


def test_traditional_file_line_converts_rfc5424_time_and_escapes_newlines():
    m = parse(b"<13>1 2024-03-05T07:08:09.123456Z web nginx 77 - - a\nb", "10.1.1.1", "tcp")
    assert traditional_line(m) == b"Mar  5 07:08:09 web nginx[77] a#012b\n"  # rsyslog: no colon
    m = parse(b"<13>Oct 11 22:14:15 t: m", "10.1.1.1", "udp")
    assert traditional_line(m) == b"Oct 11 22:14:15 10.1.1.1 t: m\n"  # sender stands in for the host


def test_journal_fields_are_complete_and_validly_named():
    m = parse(b'<165>1 2003-10-11T22:14:15.003Z host app 42 ID7 [a-b@1 k.x="v" very-long-'
              + b'x' * 60 + b'="y"] text', "192.0.2.9", "tcp")
    fields = dict(f.split(b"=", 1) for f in journal_fields(m))
    assert fields[b"MESSAGE"] == b"text" and fields[b"PRIORITY"] == b"5"
    assert fields[b"SYSLOG_FACILITY"] == b"20" and fields[b"SYSLOG_IDENTIFIER"] == b"app"
    assert fields[b"SYSLOG_PID"] == b"42" and fields[b"SYSLOG_MSGID"] == b"ID7"
    assert fields[b"SYSLOG_HOSTNAME"] == b"host" and fields[b"SYSLOG_SOURCE_ADDR"] == b"192.0.2.9"
    assert fields[b"SYSLOG_SD_A_B_1_K_X"] == b"v"
    assert b"y" in fields.values()  # the long name was shortened, not dropped
    for name in fields:
        assert len(name) <= 64 and not name[:1].isdigit()
        assert all(c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_" for c in name), name


# -- framing ------------------------------------------------------------------------------


def test_both_framings_are_detected_per_frame():
    f = StreamFramer()
    stream = b"<13>lf one\n11 <13>counted<13>lf two\n  \n9 <13>a\nb c"
    assert f.feed(stream) == [b"<13>lf one", b"<13>counted", b"<13>lf two", b"<13>a\nb c"]


def test_a_count_that_is_not_a_count_is_read_as_lf_framing():
    f = StreamFramer(max_frame=100)
    assert f.feed(b"2023-10-11 text\n999 too long\n") == [b"2023-10-11 text", b"999 too long"]


def test_an_endless_line_is_delivered_in_bounded_pieces():
    f = StreamFramer(max_message=1000)
    out = []
    for _ in range(50):
        out += f.feed(b"x" * 997)
        assert f.pending < 2000
    out += f.feed(b"\n") + f.close()
    assert b"".join(out) == b"x" * 997 * 50 and all(len(p) <= 1000 for p in out)


def test_an_unterminated_last_frame_survives_eof():
    f = StreamFramer()
    assert f.feed(b"<13>a\n<13>b") == [b"<13>a"]
    assert f.close() == [b"<13>b"]


frames_st = st.lists(st.binary(min_size=1, max_size=300).filter(lambda b: b"\n" not in b and b"\0" not in b
                                                                 and b[:1] not in b" \x00"),
                     max_size=30)


@settings(max_examples=300, deadline=None)
@given(frames=frames_st, cuts=st.lists(st.integers(min_value=0, max_value=20000), max_size=10),
       octet=st.lists(st.booleans(), min_size=30, max_size=30))
def test_framing_is_independent_of_how_the_stream_is_cut(frames, cuts, octet):
    # Any mix of the two framings, cut anywhere, gives back exactly the frames sent.
    # (An LF frame starting with a digit and a space is ambiguous by design of RFC 6587:
    # those are sent octet-counted here.)
    stream = b"".join(b"%d %s" % (len(fr), fr) if (octet[i] or fr[:1].isdigit()) else fr + b"\n"
                      for i, fr in enumerate(frames))
    f = StreamFramer()
    out: list[bytes] = []
    last = 0
    for cut in sorted(c % (len(stream) + 1) for c in cuts):
        out += f.feed(stream[last:cut])
        last = cut
    out += f.feed(stream[last:]) + f.close()
    assert out == frames


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2000))
def test_hostile_bytes_never_crash_the_parser_and_stay_in_raw(data):
    m = parse(data, "x", "udp")
    assert m.raw == data
    assert 0 <= m.facility <= 23 and 0 <= m.severity <= 7
    traditional_line(m)
    journal_fields(m)
    sd_elements(m.structured_data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=500), max_size=20))
def test_hostile_streams_never_crash_the_framer_and_lose_no_bytes(chunks):
    f = StreamFramer(max_message=256, max_frame=1000)
    out = []
    for chunk in chunks:
        out += f.feed(chunk)
        assert f.pending <= 1000 + 500 + 8
    out += f.close()
    # Every non-filler byte sent is in some frame (counts and separators aside).
    sent = b"".join(chunks)
    assert sum(len(o) for o in out) <= len(sent)
    for frame in out:
        assert frame in sent


