"""RFC 6587 framing of a syslog byte stream (TCP, TLS, unix stream), one per connection.

Each frame is detected on its own, as rsyslog's imtcp does: a frame that starts with a
digit is octet-counted (`LEN SP MSG`, section 3.4.1), anything else runs to the next LF
(non-transparent framing, 3.4.2). Spaces and stray LFs between frames are skipped. A
count that is not a number or is larger than `max_frame` is not a count: the frame is
read LF-terminated instead, so garbage cannot make the reader swallow megabytes. NUL
counts as LF (Python's SysLogHandler ends TCP frames with NUL).

Memory per connection is bounded: an LF frame longer than `max_message` is cut into
pieces of that size (each still delivered, nothing is dropped), and an octet-counted
frame is never buffered beyond `max_frame`.
"""

from __future__ import annotations

import re

MAX_MESSAGE = 64 * 1024  # longest LF-framed message kept in one piece
MAX_FRAME = 200_000  # largest octet count honoured (rsyslog's MaxFrameSize)

# A frame start that needs the careful path: a digit right after a LF.
_DIGIT_AFTER_LF = re.compile(rb"\n[ \n]*[0-9]")


class StreamFramer:
    """Feed it bytes as they arrive; it returns the complete frames, in order."""

    __slots__ = ("_buffer", "max_message", "max_frame")

    def __init__(self, max_message: int = MAX_MESSAGE, max_frame: int = MAX_FRAME) -> None:
        self._buffer = b""
        self.max_message = max_message
        self.max_frame = max_frame

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        if b"\0" in data:
            # NUL ends a frame too (Python's SysLogHandler and some appliances end TCP
            # messages with it; rsyslog's AddtlFrameDelimiter). Same length, so the
            # octet counts stay right.
            data = data.replace(b"\0", b"\n")
        buf = self._buffer + data if self._buffer else data
        frames: list[bytes] = []
        pos, end = 0, len(buf)
        while pos < end:
            first = buf[pos]
            if first == 0x20 or first == 0x0A or first == 0x00:  # filler between frames
                pos += 1
                continue
            if 0x30 <= first <= 0x39:
                # Octet counting, inline (this runs once per frame): LEN SP MSG.
                space = buf.find(b" ", pos, pos + 8)
                if space > pos:
                    digits = buf[pos:space]
                    if digits.isdigit() and first != 0x30:
                        length = int(digits)
                        if length <= self.max_frame:
                            stop = space + 1 + length
                            if stop > end:
                                break  # the frame is not all here yet
                            frames.append(buf[space + 1:stop])
                            pos = stop
                            continue
                elif space < 0 and end - pos < 8 and buf[pos:end].isdigit():
                    break  # the count itself is still arriving
                # Not a valid count: read this frame LF-terminated.
                stop = buf.find(b"\n", pos)
            else:
                # The fast path: a run of LF-framed frames taken with one split, up to
                # the first frame that might be octet-counted.
                last = buf.rfind(b"\n", pos)
                if last < 0:
                    stop = -1
                else:
                    risky = _DIGIT_AFTER_LF.search(buf, pos, last + 2)
                    cut = last if risky is None else risky.start()
                    if cut > pos:
                        frames.extend(buf[pos:cut].split(b"\n"))
                        pos = cut + 1
                        continue
                    stop = cut
            if stop < 0:
                if end - pos >= self.max_message:  # too long: deliver it in pieces
                    frames.append(buf[pos:pos + self.max_message])
                    pos += self.max_message
                    continue
                break
            if stop - pos > self.max_message:
                frames.append(buf[pos:pos + self.max_message])
                pos += self.max_message
                continue
            frames.append(buf[pos:stop])
            pos = stop + 1
        self._buffer = buf[pos:] if pos < end else b""
        if frames and not frames[-1]:
            frames = [f for f in frames if f]
        return frames

    def close(self) -> list[bytes]:
        """The connection ended: an unterminated frame is still a message (rsyslog
        accepts a last LF frame without LF; a truncated counted frame is kept too)."""
        rest, self._buffer = self._buffer, b""
        if not rest.strip(b" \n\0"):
            return []
        m = re.match(rb"[1-9][0-9]{0,7} ", rest)
        return [rest[m.end():] if m else rest]
