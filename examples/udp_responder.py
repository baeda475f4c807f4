#!/usr/bin/env python3
"""A UDP responder: answers each datagram with the address it came from.

    udp_responder.py [IDLE_SECONDS]

"you are 192.0.2.7 port 40123" - handy to see the address a NAT or a container
network shows to the server. Runs unchanged as a systemd ListenDatagram= service
(Accept=no), with StandardInput=socket, as an inetd `dgram udp wait` child, under
systemd-socket-activate -d (with or without --inetd) and under `inetd2systemd serve`.
Datagram services are `wait` services: give IDLE_SECONDS so it exits when quiet and
the superserver takes the socket back.
"""

import sys

from inetd2systemd import serve


def respond(data, peer):
    host, port = peer[0], peer[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]  # an IPv4 client of a dual-stack socket (ListenDatagram=7009)
    return f"you are {host} port {port}\n".encode()


if __name__ == "__main__":
    serve(datagram=respond, idle_timeout=float(sys.argv[1]) if sys.argv[1:] else None)
