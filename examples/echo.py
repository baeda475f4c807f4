#!/usr/bin/env python3
"""Echo (RFC 862): every byte sent comes back. TCP and UDP, in every activation mode.

    echo.py [IDLE_SECONDS]

The same file runs under a systemd socket unit with Accept=no or Accept=yes, with
StandardInput=socket, as a classic inetd/xinetd child, under systemd-socket-activate
(with or without --inetd, -a, -d) and under `inetd2systemd serve`: serve() finds the
sockets and picks the loop. With IDLE_SECONDS it exits after that long without a
connection, and the socket unit (or inetd, for `wait` services) starts it again on
the next one.
"""

import sys

from inetd2systemd import serve


def echo(conn, peer):
    while data := conn.recv(65536):
        conn.sendall(data)


def echo_datagram(data, peer):
    return data


if __name__ == "__main__":
    serve(echo, datagram=echo_datagram, idle_timeout=float(sys.argv[1]) if sys.argv[1:] else None)
