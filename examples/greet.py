#!/usr/bin/env python3
"""A line-based greeting: asks for a name, answers "Hello, NAME!" to each line until EOF.

    greet.py [IDLE_SECONDS]

Runs unchanged in every activation mode (see echo.py). The connection is read and
written through a buffered file, as a line protocol usually is.
"""

import sys

from inetd2systemd import serve

MAX_LINE = 1024  # a client cannot make us buffer without bound


def greet(conn, peer):
    with conn.makefile("rwb") as stream:
        stream.write(b"Who are you?\r\n")
        stream.flush()
        while line := stream.readline(MAX_LINE):
            name = line.strip().decode("utf-8", "replace") or "stranger"
            stream.write(f"Hello, {name}!\r\n".encode("utf-8"))
            stream.flush()


if __name__ == "__main__":
    serve(greet, idle_timeout=float(sys.argv[1]) if sys.argv[1:] else None)
