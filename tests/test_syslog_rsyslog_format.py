"""The traditional file format byte for byte as the real rsyslogd writes it, given the
same datagrams: RFC 5424 with NIL fields, PROCID, structured data and a BOM, RFC 3164
as devices send it, and control characters (escaped as `#ooo` on receive, or not, with
rsyslog's $EscapeControlCharactersOnReceive turned off)."""

from __future__ import annotations

import socket
import time

from inetd2systemd.syslog.message import parse
from inetd2systemd.syslog.sinks import traditional_line
from support import free_port, wait_for
from syslog_support import Rsyslog

BOM = b"\xef\xbb\xbf"
VECTORS = [
    # RFC 5424: every field, NIL in each place, PROCID, structured data, BOM
    b"<134>1 2026-11-27T12:00:00.000001+00:00 benchhost bench 4242 - - seq=1 x",
    b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - " + BOM + b"'su root' failed",
    b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
    b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
    b'eventSource="Application" eventID="1011"] ' + BOM + b"An application event log entry...",
    b'<165>1 2003-10-11T22:14:15.003Z host evntslog - ID47 [a@1 x="y"][b@2 z="\\]"]',
    b"<13>1 2019-05-15T11:21:57+03:00 domain.tld tag - - -  nosd-sp",
    b'<13>1 2019-05-15T11:21:57+03:00 domain.tld tag - - [abc@123 a="b"]  sd-sp',
    b"<13>1 2019-05-15T11:21:57+03:00 - app 12 - - NIL host",
    b"<13>1 2019-05-15T11:21:57+03:00 host - 12 - - NIL app with a PROCID",
    b"<13>1 2019-05-15T11:21:57+03:00 host - - - - NIL app and PROCID",
    b"<13>1 2019-05-15T11:21:57+03:00 host app - - -",
    b"<13>1 2019-05-15T11:21:57Z h a p - - m\x1b[1mbold\x07",
    # RFC 3164 as sent (the rsyslog testbench's parsertest-parse1 inputs among them)
    b"<167>Mar  6 16:57:54 172.20.245.8 %PIX-7-710005: UDP request discarded from SERVER1/2741",
    b"<167>Mar 27 19:06:53 source_server sshd(pam_unix)[12750]: session opened for user foo",
    b"<167>AUG 10 22:18:24 host tag This msg contains 8-bit European chars: \xc3\xa4\xc3\xb6\xc3\xbc",
    b"<167> Mar  7 19:06:53 example tag: testmessage (only date actually tested)",
    b"<167>Mar 7 2008 19:06:53: example tag: testmessage (only date actually tested)",
    b"<167>Mar 7 19:06:53: example tag: testmessage (only date actually tested)",
    b"<14>Jan  6 2009 15:22:26 localhost",
    b"<167>Feb 18 16:01:59 serverX -- MARK --",
    b"Feb 18 16:01:59 serverX -- MARK --",
    b"<38>Mar 27 19:06:53 source_server 0123456789012345678901234567890123456789: MSG part",
    b"<29>Oct 16 20:47:24 example-p exam-pl[12345]: connect host= /192.0.2.1",
    b"<14>Aug 30 23:00:05 X4711 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    b"<14>Aug 30 23:00:05 X4711 ",
    b"<14>Aug 30 23:00:05 X4711",
    b"<14>2010-08-30T23:00:05Z X4711 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    b"<13>Oct 11 22:14:15 host tag:nospace",
    b"<13>Oct 11 22:14:15 host tag:  two spaces",
    b"<13>Oct 11 22:14:15 host sshd[1]:",
    b'<13>Oct 11 22:14:15 host {"json": 1}',
    b'<13> {"headerless": true}',
    b"<15> openvpn[2499]: PTHREAD support initialized",  # syslog-ng: program openvpn
    b"<189> program[pid]: message",
    b"<13>Oct  1 02:03:04 host.example.org app[9]: x:y z",
    # control characters in the message, the HOSTNAME and the TAG
    b"<13>Oct 11 22:14:15 host tag: a\x1b[31mred\x07 b\tc\rd\x00e\x7f",
    b"<13>Oct 11 22:14:15 ho\x1bst ta\x01g: m",
    b"<13>Oct 11 22:14:15 host tag: \x01\x02\x03\x04\x05\x06\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14"
    b"\x15\x16\x17\x18\x19\x1a\x1c\x1d\x1e\x1f end",
    b"<13>1 2003-10-11T22:14:15.003Z h\x1bx a\x1by p - - esc in the header",
    b"<13>Oct 11 22:14:15 host tag: multi\nline\nmessage",
]


def rsyslog_lines(rsyslogd: str, tmp_path, frames: list[bytes], escape: bool = True) -> list[bytes]:
    """What rsyslogd writes in RSYSLOG_TraditionalFileFormat for these datagrams, one
    line per frame (DNS off: the peer's address stands in for a missing hostname, as in
    this listener)."""
    port = free_port()
    out = tmp_path / "rsyslog-trad.log"
    settings = 'global(net.enableDNS="off"' + \
        ("" if escape else ' parser.escapeControlCharactersOnReceive="off"') + ")"
    rs = Rsyslog(rsyslogd, tmp_path, f'*.* action(type="omfile" file="{out}" template="RSYSLOG_TraditionalFileFormat")',
                 udp_port=port, extra=settings)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for frame in frames:
                s.sendto(frame, ("127.0.0.1", port))
                time.sleep(0.002)  # one datagram at a time keeps their order in the file
        assert wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") >= len(frames)) or escape
        time.sleep(0.3)
    finally:
        rs.stop()
    return [line + b"\n" for line in out.read_bytes().split(b"\n")[:-1]]  # LF only: CR may be raw


def ours(frame: bytes, escape: bool = True) -> bytes:
    return traditional_line(parse(frame, "127.0.0.1", "udp", time.time(), escape))


def _without_received_time(line: bytes, frame: bytes) -> bytes:
    """A message with no readable timestamp is stamped with its arrival time, which
    differs by the moment each daemon read it: compare what follows the stamp."""
    return line[16:] if not parse(frame).timestamp else line


def test_the_traditional_format_is_rsyslogs_byte_for_byte(rsyslogd, tmp_path):
    theirs = rsyslog_lines(rsyslogd, tmp_path, VECTORS)
    assert len(theirs) == len(VECTORS), theirs
    for frame, line in zip(VECTORS, theirs):
        assert _without_received_time(ours(frame), frame) == _without_received_time(line, frame), frame


def test_with_escaping_off_control_characters_are_written_as_rsyslog_writes_them(rsyslogd, tmp_path):
    frames = [b"<13>Oct 11 22:14:15 host tag: esc \x1b[31m red \x07 tab\there cr\rx",
              b"<13>Oct 11 22:14:15 host tag: nul \x00 esc \x1b tab\t end"]
    theirs = rsyslog_lines(rsyslogd, tmp_path, frames, escape=False)
    assert ours(frames[0], escape=False) == theirs[0]  # written raw, as sent
    # A NUL is always escaped. rsyslog then deletes every other control character of
    # that message; this listener keeps them as sent (docs/syslogd.md).
    assert ours(frames[1], escape=False) == b"Oct 11 22:14:15 host tag: nul #000 esc \x1b tab\t end\n"
    assert theirs[1] == b"Oct 11 22:14:15 host tag: nul #000 esc  tab end\n"
