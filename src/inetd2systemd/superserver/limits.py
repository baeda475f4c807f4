"""The protections the peers put in front of a service, as plain bookkeeping.

Nothing here touches a socket or the clock: each check takes `now` so the arbiter
reads the clock once per wake-up and tests can drive time by hand.

- `SpawnRate`: openbsd-inetd `nowait.N` (N starts per 60 s, then 10 min off) and
  xinetd `cps N T` (N per second, then T s off), both as the model's `RateLimit`.
- `Occupancy`: xinetd `instances` and `per_source`, counted over running servers.
- `LoadGate`: xinetd `max_load`, the 1-minute load average read at most once a second.
"""

from __future__ import annotations

import os
from collections import Counter

from ..model import RateLimit, Service

# Why a connection was turned away, in xinetd's own words (access.c access_code_names),
# so that an administrator grepping old xinetd logs finds the same reasons here.
ADDRESS = "address"
SERVICE_LIMIT = "service_limit"
PER_SOURCE_LIMIT = "per_source_limit"
LOAD = "load"
RATE = "connections per second"
TIME = "time"
LIBWRAP = "libwrap"


class SpawnRate:
    """Starts counted in a window opened by the first start, as both peers count them.

    The model carries the numbers (inetd `nowait.N` = (N, 60, 600), xinetd `cps N T` =
    (N, 1, T)); the peers differ in the details, observed against the real daemons:
    - openbsd-inetd (inetd.c spawn(): `se_count++ == 0 ... else if (se_count >= se_max)`)
      trips on the N-th start inside the window, so N-1 are served; then for the pause
      it keeps accepting and closes each connection at once (the client sees a reset);
    - xinetd (access.c: `SC_TIME_CONN / time_diff > SC_TIME_CONN_MAX`) trips on the
      (N+1)-th within a second, then deactivates the service: the socket is closed and
      clients are refused until the pause ends.
    A window of a minute or more is inetd's; a shorter one is xinetd's cps.
    """

    __slots__ = ("limit", "window_start", "count", "inetd_style")

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self.window_start = 0.0
        self.count = 0
        self.inetd_style = limit.interval >= 60

    @property
    def closes_socket(self) -> bool:
        """Over the limit: close the socket (xinetd) or accept-and-close (inetd)."""
        return not self.inetd_style

    def admit(self, now: float) -> bool:
        """Record one start; False means the limit tripped and the service must pause."""
        if self.count == 0 or now - self.window_start > self.limit.interval:
            self.window_start = now
            self.count = 1
            return True
        self.count += 1
        over = self.count >= self.limit.count if self.inetd_style else self.count > self.limit.count
        if over:
            self.count = 0  # the pause starts a fresh window, as both peers reset it
            return False
        return True


class Occupancy:
    """Running servers of one service, in total and by source address."""

    __slots__ = ("instances", "per_source", "running", "by_source")

    def __init__(self, instances: int | None, per_source: int | None) -> None:
        self.instances = instances
        self.per_source = per_source
        self.running = 0
        self.by_source: Counter[str] = Counter()

    def refusal(self, source: str | None) -> str | None:
        """The xinetd reason this source cannot start one more server, or None."""
        if self.instances is not None and self.running >= self.instances:
            return SERVICE_LIMIT
        if (self.per_source is not None and source is not None
                and self.by_source[source] >= self.per_source):
            return PER_SOURCE_LIMIT
        return None

    def started(self, source: str | None) -> None:
        self.running += 1
        if source is not None and self.per_source is not None:
            self.by_source[source] += 1

    def ended(self, source: str | None) -> None:
        self.running = max(0, self.running - 1)
        if source is not None and self.per_source is not None:
            left = self.by_source[source] - 1
            if left > 0:
                self.by_source[source] = left
            else:
                self.by_source.pop(source, None)

    def retune(self, instances: int | None, per_source: int | None) -> None:
        """A reload changed the limits: keep counting the servers already running."""
        if per_source is not None and self.per_source is None:
            self.by_source.clear()  # was not counted before; start fresh rather than lie
        self.instances = instances
        self.per_source = per_source


class LoadGate:
    """xinetd max_load: refuse while the 1-minute load average is at or above it."""

    __slots__ = ("_read_at", "_load", "_getloadavg")

    def __init__(self, getloadavg=os.getloadavg) -> None:
        self._read_at = -1.0
        self._load = 0.0
        self._getloadavg = getloadavg

    def too_high(self, max_load: float, now: float) -> bool:
        if now - self._read_at >= 1.0:  # the kernel updates it every 5 s anyway
            try:
                self._load = self._getloadavg()[0]
            except OSError:  # no /proc: "where the platform allows"
                self._load = 0.0
            self._read_at = now
        return self._load >= max_load


def peer(address: object) -> tuple[str | None, bool]:
    """(the client's address as libwrap and xinetd name it, whether it came IPv4-mapped).

    An IPv4 client of a dual-stack socket arrives as ::ffff:a.b.c.d. libwrap and xinetd
    both call it a.b.c.d, so every check (tcp_wrappers, only_from/no_access, per_source),
    the log and REMOTE_HOST see that; only xinetd's IPv6 list entries still compare the
    mapped form, hence the flag. Taken once, where the connection is accepted."""
    if not isinstance(address, tuple):
        return None, False
    host = address[0]
    if host[:7].lower() == "::ffff:" and "." in host:
        return host[7:], True
    return host, False


def has_accept_checks(service: Service) -> bool:
    """Whether anything must be checked per connection (a fast path skips it all)."""
    return (service.instances is not None or service.per_source is not None
            or service.max_load is not None or service.only_from is not None
            or bool(service.no_access) or bool(service.access_times))


def outside_access_times(windows: tuple[tuple[int, int], ...], minute_of_day: int) -> bool:
    """xinetd access_times: True when the current minute is in none of the windows.

    A window is (start, end) in minutes after midnight, both ends included as xinetd
    does (timex.c); one that wraps midnight (22:00-02:00) is honoured too.
    """
    if not windows:
        return False
    for start, end in windows:
        if start <= end:
            if start <= minute_of_day <= end:
                return False
        elif minute_of_day >= start or minute_of_day <= end:
            return False
    return True
