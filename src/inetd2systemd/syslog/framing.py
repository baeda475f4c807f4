"""RFC 6587 framing of a syslog byte stream (TCP, TLS, unix stream), one per connection.

Each frame is detected on its own, as rsyslog's imtcp does: a frame that starts with a
digit is octet-counted (`LEN SP MSG`, section 3.4.1), anything else runs to the next LF
(non-transparent framing, 3.4.2). Spaces and stray LFs between frames are skipped. A
count that is not a number or is larger than `max_frame` is not a count: the frame is
read LF-terminated instead, so garbage cannot make the reader swallow megabytes. NUL
counts as LF (Python's SysLogHandler ends TCP frames with NUL).

The frames depend only on the bytes, never on how the network cut them: every decision
is taken on bytes that are all present (a count is recognised from at most its digits
and the space after them), and an LF frame longer than `max_message` is cut into pieces
of exactly that size whatever the read boundaries. The rest of a cut line is read as
the same line (a continuation), never examined again for a count or filler, so text
that happens to start with digits and a space cannot mangle the next message.

Memory per connection is bounded: an LF frame is held up to `max_message` bytes, a
counted one up to `max_frame`. `cut()` gives up what is held (the listener's budget for
all connections): the piece becomes a message of its own and the rest of that frame
follows as a continuation.
"""

from __future__ import annotations

import re

MAX_MESSAGE = 64 * 1024  # longest LF-framed message kept in one piece
MAX_FRAME = 200_000  # largest octet count honoured (rsyslog's MaxFrameSize)

# Where a run of LF frames can no longer be split blindly: a LF followed by a digit (the
# next frame may be octet-counted), a space or another LF (filler to skip).
_RISKY_AFTER_LF = re.compile(rb"\n[ \n0-9]")


class StreamFramer:
    """Feed it bytes as they arrive; it returns the complete frames, in order."""

    __slots__ = ("_buffer", "_continued", "_remaining", "max_message", "max_frame", "_digits")

    def __init__(self, max_message: int = MAX_MESSAGE, max_frame: int = MAX_FRAME) -> None:
        self._buffer = b""
        self._continued = False  # the buffer continues an LF frame that was cut
        self._remaining = 0  # the buffer continues a counted frame: bytes still to come
        self.max_message = max_message
        self.max_frame = max_frame
        self._digits = len(str(max_frame))  # the longest count that can be honoured

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        if 0 in data:
            # NUL ends a frame too (Python's SysLogHandler and some appliances end TCP
            # messages with it; rsyslog's AddtlFrameDelimiter). Same length, so the
            # octet counts stay right.
            data = data.replace(b"\0", b"\n")
        buf = self._buffer + data if self._buffer else data
        frames: list[bytes] = []
        pos, end = 0, len(buf)
        limit, max_frame, width = self.max_message, self.max_frame, self._digits
        if self._remaining:  # the rest of a counted frame that was cut
            if end < self._remaining:
                self._buffer = buf
                return frames
            pos = self._remaining
            frames.append(buf[:pos])
            self._remaining = 0
        continued = self._continued
        while pos < end:
            if not continued:
                first = buf[pos]
                if first == 0x20 or first == 0x0A:  # filler between frames
                    pos += 1
                    continue
                if 0x31 <= first <= 0x39:
                    # Octet counting, inline (this runs once per frame): LEN SP MSG, the
                    # count at most as long as max_frame written out.
                    space = buf.find(b" ", pos + 1, pos + 1 + width)
                    if space > 0:
                        digits = buf[pos:space]
                        if digits.isdigit():
                            length = int(digits)
                            if length <= max_frame:
                                stop = space + 1 + length
                                if stop > end:
                                    break  # the frame is not all here yet
                                frames.append(buf[space + 1:stop])
                                pos = stop
                                continue
                    elif end - pos <= width and buf[pos:end].isdigit():
                        break  # the count itself is still arriving
                    # Not a count: this frame runs to LF.
                else:
                    # The fast path: a run of LF frames taken with one split, up to the
                    # first place that needs a closer look. The run spans at most
                    # max_message bytes, so none of its frames can be too long.
                    last = buf.rfind(b"\n", pos, pos + limit + 1)
                    if last > pos:
                        risky = _RISKY_AFTER_LF.search(buf, pos, last + 2)
                        cut = last if risky is None else risky.start()
                        frames.extend(buf[pos:cut].split(b"\n"))
                        pos = cut + 1
                        continue
            # One LF frame (or the rest of a cut one): to the LF, or max_message bytes.
            stop = buf.find(b"\n", pos, pos + limit + 1)
            if stop < 0:
                if end - pos <= limit:
                    break  # shorter than the limit so far: wait for its end
                frames.append(buf[pos:pos + limit])
                pos += limit
                continued = True
                continue
            if stop > pos:
                frames.append(buf[pos:stop])
            pos = stop + 1
            continued = False
        self._buffer = buf[pos:] if pos < end else b""
        self._continued = continued
        return frames

    def cut(self) -> list[bytes]:
        """Give up what is held for an incomplete frame (memory is short): it becomes a
        message of its own, and the rest of its frame arrives as a continuation. An
        unfinished count (a few digits) stays."""
        held = self._buffer
        if not held:
            return []
        if self._remaining:
            self._remaining -= len(held)
            self._buffer = b""
            return [held]
        if not self._continued:
            header = _count(held, self.max_frame, self._digits)
            if header is not None:
                length, start = header
                if start > len(held):
                    return []  # only the count so far
                self._remaining = length - (len(held) - start)
                self._buffer = b""
                return [held[start:]] if len(held) > start else []
        self._continued = True
        self._buffer = b""
        return [held]

    def close(self) -> list[bytes]:
        """The connection ended: an unterminated frame is still a message (rsyslog
        accepts a last LF frame without LF; a truncated counted frame is kept too)."""
        rest, self._buffer = self._buffer, b""
        if self._remaining or self._continued:
            self._remaining, self._continued = 0, False
            return [rest] if rest else []
        if not rest.strip(b" \n"):
            return []
        header = _count(rest, self.max_frame, self._digits)
        if header is not None and header[1] <= len(rest):  # a counted frame, cut short
            return [rest[header[1]:]] if header[1] < len(rest) else []
        return [rest]


def _count(held: bytes, max_frame: int, digits: int) -> tuple[int, int] | None:
    """(length, where the frame starts) when `held` starts with an honoured count and
    its space; (0, len + 1) when it is only digits that may still become one."""
    space = held.find(b" ", 1, 1 + digits)
    if space > 0:
        if held[:space].isdigit() and held[0] != 0x30 and int(held[:space]) <= max_frame:
            return int(held[:space]), space + 1
        return None
    if len(held) <= digits and held.isdigit() and held[0] != 0x30:
        return 0, len(held) + 1
    return None
