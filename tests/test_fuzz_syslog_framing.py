"""Fuzzing the stream framing (RFC 6587) and the road behind it.

The framer must give the same frames however TCP cuts the stream: each stream is fed
whole, split at every position, byte by byte and at random places, and every way must
agree with a byte-at-a-time reference written from the rules in framing.py's docstring.
"""

from __future__ import annotations

import random

from hypothesis import given, strategies as st

from fuzz_support import fuzz_settings, regression_cases, time_allowance
from inetd2systemd.syslog.framing import StreamFramer

MAX_MESSAGE, MAX_FRAME = 64, 300  # small, so the cuts and the count limit happen often


def reference(stream: bytes, max_message: int = MAX_MESSAGE, max_frame: int = MAX_FRAME) -> list[bytes]:
    """The framing rules, one byte at a time, on the whole stream at once."""
    data = stream.replace(b"\0", b"\n")
    width = len(str(max_frame))
    frames, i, n = [], 0, len(data)
    while i < n:
        if data[i] in b" \n":  # filler between frames
            i += 1
            continue
        j = i
        while j < n and j - i < width and 0x30 <= data[j] <= 0x39:
            j += 1
        if data[i] != 0x30 and j > i and j < n and data[j] == 0x20 and int(data[i:j]) <= max_frame:
            body = data[j + 1:j + 1 + int(data[i:j])]
            if body:
                frames.append(body)
            i = j + 1 + int(data[i:j])
            continue
        k = data.find(b"\n", i)
        line = data[i:] if k < 0 else data[i:k]
        frames += [line[p:p + max_message] for p in range(0, len(line), max_message)]
        i = n if k < 0 else k + 1
    return frames


def framed(chunks: list[bytes], **limits) -> list[bytes]:
    framer = StreamFramer(**(limits or dict(max_message=MAX_MESSAGE, max_frame=MAX_FRAME)))
    out: list[bytes] = []
    for chunk in chunks:
        out += framer.feed(chunk)
    return out + framer.close()


# Streams made of the shapes that matter: both framings, lines around the size limit,
# text that starts with digits and a space, counts too large or with a leading zero,
# filler, NUL, and raw garbage.
_text = st.binary(max_size=90).map(lambda b: b.replace(b"\n", b"").replace(b"\0", b""))
_piece = st.one_of(
    _text.map(lambda t: b"<13>" + t + b"\n"),
    _text.map(lambda t: b"%d %s" % (len(t), t)),
    st.integers(MAX_MESSAGE - 2, 3 * MAX_MESSAGE + 2).map(lambda n: b"x" * (n - 4) + b"12 y"),
    st.integers(1, 3 * MAX_MESSAGE).map(lambda n: b"7" * n + b" " + b"z" * 9 + b"\n"),
    st.sampled_from([b"  ", b"\n\n", b"\0", b"0 ", b"012 ab\n", b"301 ", b"300 ", b"1234567 "]),
    _text.map(lambda t: b"%d %s" % (len(t) + 5, t)),  # a count longer than what follows
    st.binary(max_size=40),
)
streams = st.lists(_piece, max_size=25).map(b"".join)


@fuzz_settings()
@given(stream=streams, seed=st.integers(0, 2**32 - 1))
def test_the_same_bytes_give_the_same_frames_however_they_are_split(stream, seed):
    expected = reference(stream)
    assert framed([stream]) == expected
    assert framed([stream[i:i + 1] for i in range(len(stream))]) == expected
    rng = random.Random(seed)
    for _ in range(5):
        cuts = sorted(rng.sample(range(len(stream) + 1), min(len(stream) + 1, rng.randint(1, 12))))
        pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
        assert framed(pieces) == expected


@fuzz_settings(max_examples=max(10, fuzz_settings().max_examples // 10))
@given(stream=streams)
def test_split_at_every_position(stream):
    expected = reference(stream)
    for i in range(len(stream) + 1):
        assert framed([stream[:i], stream[i:]]) == expected, i


def test_a_long_line_is_cut_the_same_way_and_its_rest_is_never_a_count():
    # The case: a line over the limit whose rest begins with digits and a space.
    line = b"a" * MAX_MESSAGE + b"12 next message"
    stream = line + b"\n<13>after\n"
    expected = [b"a" * MAX_MESSAGE, b"12 next message", b"<13>after"]
    assert reference(stream) == expected
    for i in range(len(stream) + 1):
        assert framed([stream[:i], stream[i:]]) == expected, i


def test_memory_stays_bounded_on_hostile_streams():
    rng = random.Random(7)
    framer = StreamFramer(max_message=MAX_MESSAGE, max_frame=MAX_FRAME)
    for _ in range(2000):
        framer.feed(bytes(rng.choice(b"0123456789 \nx") for _ in range(rng.randint(0, 400))))
        assert framer.pending <= MAX_FRAME + len(str(MAX_FRAME)) + 1


def test_framing_time_is_linear():
    # Worst cases for the fast path: a LF-digit pair at every line, one endless line.
    for unit in (b"<13>m\n5 abcde", b"x" * 50, b"\n\n  "):
        for size in (10_000, 1_000_000):
            stream = (unit * (size // len(unit) + 1))[:size]
            import time

            started = time.process_time()
            framed([stream[i:i + 4096] for i in range(0, len(stream), 4096)],
                   max_message=65536, max_frame=200_000)
            assert time.process_time() - started <= time_allowance(size) / 4


def test_cut_gives_up_the_held_bytes_and_the_rest_follows():
    framer = StreamFramer(max_message=1000, max_frame=1000)
    assert framer.feed(b"900 " + b"a" * 300) == []
    assert framer.cut() == [b"a" * 300] and framer.pending == 0
    assert framer.feed(b"b" * 600 + b"<13>next\n") == [b"b" * 600, b"<13>next"]
    assert framer.feed(b"an LF frame in progress") == []
    assert framer.cut() == [b"an LF frame in progress"]
    # its rest is the same line: never read as a count
    assert framer.feed(b"12 more\n") == [b"12 more"]
    assert framer.feed(b"12") == [] and framer.cut() == [] and framer.pending == 2


def test_regressions():
    for name, data in regression_cases("syslog-framing"):
        assert framed([data]) == reference(data), name
