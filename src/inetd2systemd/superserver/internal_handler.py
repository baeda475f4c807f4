"""inetd's internal services inside the superserver's loop, without a fork.

The protocol code is runtime.internal_services' (the same that `inetd2systemd internal` runs
under systemd); this module only connects it to the arbiter: the arbiter accepts and
applies the protections, then each admitted connection becomes an `InternalService`
registered on the arbiter's selector, and datagrams are answered with its `reply()`.
The running connections are remembered only when instances or per_source must be
counted, so the common case costs nothing per connection.
"""

from __future__ import annotations

import selectors
import socket
from collections import Counter

from ..model import Service
from ..model import INTERNAL_NAMES
from ..runtime.internal_services import MIN_CLIENT_PORT, InternalService


class InternalHandler:
    """One internal service (echo, discard, ...) as the arbiter drives it."""

    __slots__ = ("name", "style", "selector", "replier", "track", "live")

    def __init__(self, service: Service, selector: selectors.BaseSelector) -> None:
        name = service.internal
        if name not in INTERNAL_NAMES:
            raise ValueError(f"no internal service {name!r}: expected one of {', '.join(INTERNAL_NAMES)}")
        self.name = name
        self.style = service.dialect  # xinetd and inetd word daytime differently
        self.selector = selector
        self.replier: InternalService | None = None
        # Counting running connections is needed only for instances / per_source.
        self.track = service.instances is not None or service.per_source is not None
        self.live: list[tuple[InternalService, str | None]] = []

    def start_stream(self, conn: socket.socket, peer: str | None) -> None:
        served = InternalService(self.name, conn, style=self.style)
        served.register(self.selector)
        if self.track and not served.done:
            self.live.append((served, peer))

    def running(self) -> tuple[int, Counter]:
        """Open connections, in total and by source, for the occupancy checks."""
        self.live = [(s, peer) for s, peer in self.live if not s.done]
        return len(self.live), Counter(peer for _, peer in self.live if peer is not None)

    def answer(self, sock: socket.socket, data: bytes, address) -> None:
        # A reply to a low port could be another server's (echo to chargen): the loop
        # inetd guards against by ignoring such sources, as runtime.internal does.
        if isinstance(address, tuple) and address[1] < MIN_CLIENT_PORT:
            return
        if self.replier is None:
            self.replier = InternalService(self.name, sock, style=self.style)
        reply = self.replier.reply(data)
        if reply is not None:
            try:
                sock.sendto(reply, address)
            except OSError:
                pass

    def close(self) -> None:
        for served, _ in self.live:
            served.unregister()
        self.live.clear()
