"""The superserver's one loop, in the shape of gunicorn's arbiter.

One selector watches every listening socket and the signal pipe. Signals only write
their number into that pipe (signal.set_wakeup_fd); the loop reads them and handles
them in order, so no work ever runs inside a signal handler:

- SIGCHLD: reap every exited child (one waitpid loop, the only place children are
  reaped), log its status, free its instance slot and re-arm its wait service;
- SIGHUP: re-read the configuration. Sockets whose address is still configured stay
  open (same socket, same inode), removed ones close, new ones open. A configuration
  that fails to read leaves the running one untouched and logs file:line;
- SIGTERM, SIGINT: close the listeners, ask running servers to stop, exit.

Per service kind (inetd.conf(5), xinetd.conf(5)):
- nowait stream: accept, check the protections, start the server on the connection;
- wait (stream or datagram): stop watching the socket, hand it to the server, watch
  it again when that server exits — the reason inetd has `wait` at all;
- internal (echo, discard, chargen, daytime, time): served in this process, no fork.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import os
import selectors
import signal
import socket
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..config.tcpwrappers import WatchedTables, verified_hostname
from ..daemon.safeopen import open_read
from ..errors import ConfigError
from ..model import Configuration, Service, Severity, fd_name
from . import limits
from ..wakeup import Wakeup
from .log import Log
from .sockets import EndpointKey, apply_options, endpoint_key, listen_of_socket, open_listener, \
    unsupported_reason
from .spawn import Launcher, base_environment, read_mountinfo

# Accept at most this many connections per wake-up of one socket: amortises select()
# under load, yet one flooded service cannot starve the others or the signal pipe.
ACCEPT_BATCH = 32
# accept() failing for lack of descriptors or memory, or a bug in a listening socket's
# handling: stop watching that socket this long instead of spinning on a readiness that
# nothing can clear now.
RESOURCE_BACKOFF = 1.0
# On stop, how long running servers get after SIGTERM before the superserver exits.
STOP_GRACE = 2.0
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_HANDLED_SIGNALS = (signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM, signal.SIGINT)

Loader = Callable[[], Configuration]


class Unit:
    """One configured service while it runs: its launcher, limits and sockets."""

    __slots__ = ("service", "launcher", "internal", "rate", "occupancy", "acl", "checks",
                 "endpoints", "paused_until", "refusing_until", "accepts", "hands_over",
                 "wrap_name", "banners")

    def __init__(self, service: Service) -> None:
        self.service = service
        self.launcher: Launcher | None = None
        self.internal = None  # the runtime.internal_services engine serving it, when internal
        self.rate = limits.SpawnRate(service.rate) if service.rate else None
        self.occupancy = limits.Occupancy(service.instances, service.per_source)
        self.acl = None
        self.wrap_name: str | None = None  # libwrap daemon name, when hosts.* apply
        self.banners: tuple[bytes | None, bytes | None, bytes | None] | None = None
        self.checks = limits.has_accept_checks(service)
        self.endpoints: list[Endpoint] = []
        self.paused_until: float | None = None  # sockets closed until then (xinetd cps)
        self.refusing_until: float | None = None  # connections closed until then (inetd)
        self.accepts = service.accept
        self.hands_over = _hands_over(service)

    def retarget(self, service: Service) -> None:
        """A reload changed the service but kept its id: keep the counts, take the rest."""
        if service.rate != self.service.rate:
            self.rate = limits.SpawnRate(service.rate) if service.rate else None
        self.occupancy.retune(service.instances, service.per_source)
        self.service = service
        self.checks = limits.has_accept_checks(service)
        self.accepts = service.accept
        self.hands_over = _hands_over(service)


@dataclass(eq=False)
class Endpoint:
    """One listening socket and the unit it currently serves."""

    key: EndpointKey
    sock: socket.socket
    unit: Unit
    inherited: bool = False  # from systemd: never closed on pause, never re-bound
    watched: bool = False
    busy_pid: int | None = None  # the wait server that holds this socket now


@dataclass(eq=False)
class Child:
    unit: Unit
    endpoint: Endpoint | None  # set for wait servers: re-armed when this child exits
    source: str | None
    started: float = field(default_factory=time.monotonic)


class Arbiter:
    def __init__(self, load: Loader, log: Log, *,
                 inherited: Mapping[str, Sequence[socket.socket]] | None = None,
                 notifier=None, environ: Mapping[str, str] | None = None,
                 etc: str = "/etc") -> None:
        self._load = load
        self._etc = etc
        self.log = log
        self._inherited = {name: list(socks) for name, socks in (inherited or {}).items()}
        self._notifier = notifier
        self._env = base_environment(dict(environ) if environ is not None else None)
        self.selector = selectors.DefaultSelector()
        self.units: dict[str, Unit] = {}
        self.endpoints: dict[EndpointKey, Endpoint] = {}
        self.children: dict[int, Child] = {}
        self._signals: deque[int] = deque()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        self._stopping = False
        self._wakeup: Wakeup | None = None
        self._load_gate = limits.LoadGate()
        self._tables = WatchedTables(etc)  # hosts.allow / hosts.deny, read when they change
        self._failures: set[str] = set()  # internal errors already logged

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Read the configuration and open every socket; ConfigError if it cannot be read."""
        configuration = self._load()
        self._report_findings(configuration)
        self._install_signals()
        self._apply(configuration)
        if not self.endpoints:
            raise ConfigError("no service could be started (see the messages above)")

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; the return value is the exit status."""
        if self._notifier is not None:
            self._notifier.ready(f"serving {len(self.units)} services")
        self.log.notice(f"started: {len(self.units)} services on {len(self.endpoints)} sockets")
        select = self.selector.select
        flush = self.log.flush
        while not self._stopping:
            timeout = self._next_timeout()
            # Callbacks take the event mask: runtime.internal_services registers its connections
            # on this same selector with that convention.
            for key, mask in select(timeout):
                try:
                    key.data(mask)
                except Exception:  # one client's or one service's bug, not the superserver's end
                    self._contain(key)
            if self._signals:
                self._handle_signals()
            if self._timers:
                self._run_timers()
            flush()
        self._shutdown()
        flush()
        return 0

    def _contain(self, key: selectors.SelectorKey) -> None:
        """A callback raised: log it (each distinct failure once), and close what it was
        serving when that is one client's connection (an internal service's), so that it
        cannot fail again in a loop. Every other client and service carries on."""
        failure = traceback.format_exc()
        if failure not in self._failures and len(self._failures) < 100:
            self._failures.add(failure)
            self.log.error("internal error (please report); the other services carry on:\n"
                           + failure)
        endpoint = next((e for e in self.endpoints.values() if e.sock is key.fileobj), None)
        if endpoint is not None:
            # a listening socket's callback: what made it ready (a datagram a wait service
            # peeks at) may still be there, and would fail again at once, in a loop
            self._rest(endpoint, "internal error")
            return
        owner = getattr(key.data, "__self__", None)
        if owner is not self and callable(getattr(owner, "close", None)):
            try:
                owner.close()
            except Exception:  # closing failed as well: take the socket out by hand
                try:
                    self.selector.unregister(key.fileobj)
                except (KeyError, ValueError):
                    pass
                key.fileobj.close()

    # -- signals: one queue, handled in the loop -----------------------------------------------

    def _install_signals(self) -> None:
        self._wakeup = Wakeup()
        self._wakeup.catch(_HANDLED_SIGNALS)
        self.selector.register(self._wakeup.read_fd, selectors.EVENT_READ, self._on_wakeup)

    def _on_wakeup(self, _mask) -> None:
        # A full pipe drops bytes; SIGCHLD is therefore also implied by any wake-up
        # while children run, and handled idempotently (waitpid WNOHANG).
        for signum in self._wakeup.drain():
            if signum not in self._signals:
                self._signals.append(signum)
        if self.children and signal.SIGCHLD not in self._signals:
            self._signals.append(signal.SIGCHLD)

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.popleft()
            if signum == signal.SIGCHLD:
                self._reap()
            elif signum == signal.SIGHUP:
                self.reload()
            elif signum in (signal.SIGTERM, signal.SIGINT):
                self.log.notice(f"{signal.Signals(signum).name}: stopping")
                self._stopping = True

    # -- children ------------------------------------------------------------------------------

    def _reap(self) -> None:
        """The one place children are reaped."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is not None:
                self._ended(pid, child, status)

    def _ended(self, pid: int, child: Child, status: int) -> None:
        unit = child.unit
        unit.occupancy.ended(child.source)
        self.log.info(f"EXIT: {unit.service.id} pid={pid} {_describe_status(status)} "
                      f"duration={time.monotonic() - child.started:.3f}s")
        endpoint = child.endpoint
        if endpoint is not None and endpoint.busy_pid == pid:
            endpoint.busy_pid = None
            if self.endpoints.get(endpoint.key) is endpoint and unit.paused_until is None:
                self._watch(endpoint)

    # -- reading the configuration -------------------------------------------------------------

    def reload(self) -> bool:
        """SIGHUP: apply a new configuration, or keep the old one if it cannot be read."""
        if self._notifier is not None:
            self._notifier.reloading()
        try:
            configuration = self._load()
        except ConfigError as exc:
            self.log.error(f"reload failed, keeping the running configuration: {exc}")
            ok = False
        else:
            self._report_findings(configuration)
            self._apply(configuration)
            self.log.notice(f"reloaded: {len(self.units)} services on {len(self.endpoints)} sockets")
            ok = True
        if self._notifier is not None:
            self._notifier.ready(f"serving {len(self.units)} services")
        return ok

    def _report_findings(self, configuration: Configuration) -> None:
        for finding in configuration.findings:
            if finding.severity is not Severity.INFO:
                self.log.warning(str(finding))

    def _servable(self, configuration: Configuration) -> list[Service]:
        services = []
        for service in configuration.services:
            if service.disabled:
                continue
            reason = unsupported_reason(service)
            if reason is not None:
                self.log.error(f"{service.source}: {service.id}: not started: {reason}")
                continue
            services.append(service)
        return services

    def _apply(self, configuration: Configuration) -> None:
        """Make the running set match the configuration, keeping unchanged sockets."""
        self._libwrap_tables()  # read now, so that its findings come with the load's
        mountinfo = read_mountinfo()  # once for all launchers (spawn.on_network_filesystem)
        old_units, old_endpoints = self.units, self.endpoints
        units: dict[str, Unit] = {}
        endpoints: dict[EndpointKey, Endpoint] = {}
        for service in self._servable(configuration):
            unit = old_units.get(service.id)
            if unit is None:
                unit = Unit(service)
            else:
                unit.retarget(service)
            try:
                self._prepare(unit, mountinfo)
            except (ConfigError, ValueError) as exc:
                self.log.error(f"{service.source}: {service.id}: not started: {_message(exc)}")
                continue
            unit.endpoints = []
            for endpoint in self._endpoints_for(unit, old_endpoints, endpoints):
                endpoints[endpoint.key] = endpoint
                unit.endpoints.append(endpoint)
            if unit.endpoints or unit.paused_until is not None:
                units[service.id] = unit
        for key, endpoint in old_endpoints.items():
            if endpoints.get(key) is not endpoint:
                self._close(endpoint)
        self.units, self.endpoints = units, endpoints
        for endpoint in endpoints.values():
            if endpoint.busy_pid is not None or endpoint.unit.paused_until is not None:
                self._unwatch(endpoint)
            elif endpoint.watched:
                # Same socket, maybe a new unit: swap the callback without a gap.
                self.selector.modify(endpoint.sock, selectors.EVENT_READ, self._callback_for(endpoint))
            else:
                self._watch(endpoint)

    def _prepare(self, unit: Unit, mountinfo: str) -> None:
        service = unit.service
        if service.server is not None:
            unit.launcher = Launcher(service, self._env, mountinfo)
            unit.internal = None
        else:
            unit.launcher = None
            unit.internal = self._internal_for(service)
        if service.only_from is not None or service.no_access:
            from ..config.addresses import AccessList
            unit.acl = AccessList(service.only_from, service.no_access)
        else:
            unit.acl = None
        # Debian's xinetd is linked with libwrap: hosts.allow/deny are consulted under
        # the service's libwrap name (at each connection: the files may change while we
        # run). A service whose argv runs tcpd is checked by tcpd.
        wrapped = service.tcp_wrapped and service.libwrap_name \
            and os.path.basename(service.server or "") != "tcpd"
        unit.wrap_name = service.libwrap_name if wrapped else None
        unit.banners = _read_banners(service)
        unit.checks = limits.has_accept_checks(service) or bool(unit.wrap_name) or bool(unit.banners)

    def _libwrap_tables(self):
        """hosts.allow/hosts.deny as they are now; what a new reading found is logged
        once (a bad line costs that line, as in libwrap)."""
        tables, findings = self._tables.current()
        for finding in findings:
            (self.log.error if finding.severity is Severity.ERROR else self.log.warning)(str(finding))
        return tables

    def _endpoints_for(self, unit: Unit, old: dict[EndpointKey, Endpoint],
                       new: dict[EndpointKey, Endpoint]) -> list[Endpoint]:
        service = unit.service
        result = []
        inherited = self._inherited_for(service)
        for listen in service.listens:
            key = endpoint_key(service, listen)
            if key in new:
                self.log.error(f"{service.source}: {service.id}: {listen} is already served by "
                               f"{new[key].unit.service.id}")
                continue
            endpoint = old.get(key)
            sock = inherited.pop(listen, None)  # the same socket as the old endpoint's, if any
            if endpoint is not None:
                endpoint.unit = unit
                try:
                    apply_options(endpoint.sock, service)
                except OSError as exc:
                    self.log.warning(f"{service.source}: {service.id}: socket options: {exc.strerror}")
            elif unit.paused_until is not None and sock is None:
                continue  # closed by its rate limit; the timer reopens it
            else:
                try:
                    endpoint = Endpoint(key, sock, unit, inherited=True) if sock is not None else \
                        Endpoint(key, open_listener(service, listen), unit)
                except (OSError, ConfigError) as exc:
                    self.log.error(f"{service.source}: {service.id}: cannot listen on {listen}: "
                                   f"{_message(exc)}")
                    continue
            # Wait and datagram sockets are handed to servers, which expect a blocking
            # socket (the flag is shared with the child); the others are ours alone.
            endpoint.sock.setblocking(unit.hands_over)
            result.append(endpoint)
        for sock in inherited.values():
            key = ("inherited", sock.fileno())
            endpoint = old.get(key)
            if endpoint is None:
                self.log.warning(f"{service.id}: socket {listen_of_socket(sock)} passed for it "
                                 "matches no configured address; serving it anyway")
                endpoint = Endpoint(key, sock, unit, inherited=True)
            endpoint.unit = unit
            sock.setblocking(unit.hands_over)
            result.append(endpoint)
        return result

    def _inherited_for(self, service: Service) -> dict:
        """Sockets systemd passed for this service (FileDescriptorName= is its id)."""
        if not self._inherited:
            return {}
        # Kept, not consumed: a reload that drops and re-adds a service finds them again
        # (they belong to systemd and can never be re-bound by us).
        socks = self._inherited.get(fd_name(service))
        if not socks:
            return {}
        return {listen_of_socket(sock): sock for sock in socks}

    # -- watching sockets ----------------------------------------------------------------------

    def _watch(self, endpoint: Endpoint) -> None:
        if endpoint.watched:
            return
        self.selector.register(endpoint.sock, selectors.EVENT_READ, self._callback_for(endpoint))
        endpoint.watched = True

    def _callback_for(self, endpoint: Endpoint) -> Callable[[object], None]:
        unit = endpoint.unit
        if unit.internal is not None:
            return self._internal_callback(endpoint)
        if unit.accepts:
            return self._accept_callback(endpoint)
        return self._wait_callback(endpoint)

    def _unwatch(self, endpoint: Endpoint) -> None:
        if endpoint.watched:
            self.selector.unregister(endpoint.sock)
            endpoint.watched = False

    def _close(self, endpoint: Endpoint) -> None:
        self._unwatch(endpoint)
        if not endpoint.inherited:
            endpoint.sock.close()  # a wait server running now keeps its own copy

    # -- nowait stream: accept and start one server per connection -----------------------------------

    def _accept_callback(self, endpoint: Endpoint) -> Callable[[object], None]:
        unit = endpoint.unit
        launcher = unit.launcher
        children = self.children
        log = self.log
        service_id = unit.service.id

        def start(fd: int, source: str | None) -> None:
            try:
                pid = launcher.spawn(fd, source)
            except OSError as exc:
                log.error(f"FAIL: {service_id} cannot start {launcher.path}: {exc.strerror}")
                return
            finally:
                os.close(fd)
            unit.occupancy.started(source)
            children[pid] = Child(unit, None, source)
            log.info(f"START: {service_id} pid={pid} from={source}")

        return self._accepting(endpoint, start)

    def _accepting(self, endpoint: Endpoint, start: Callable[[int, str | None], None],
                   count_running: Callable[[], None] | None = None) -> Callable[[object], None]:
        """The accept loop of a stream socket: up to ACCEPT_BATCH connections per wake-up,
        each through the protections (count_running first brings the service's occupancy
        up to date), then `start(fd, source)`. A refused connection is closed here."""
        accept = endpoint.sock._accept  # (fd, address) without building a socket object
        unit = endpoint.unit
        port = _local_port(endpoint.sock)

        def on_ready(_mask) -> None:
            for _ in range(ACCEPT_BATCH):
                try:
                    fd, address = accept()
                except BlockingIOError:
                    return
                except OSError as exc:
                    self._accept_failed(endpoint, exc)
                    return
                try:
                    source, mapped = limits.peer(address)
                    if unit.checks or unit.rate is not None:
                        if count_running is not None:
                            count_running()
                        admitted = self._let_in(unit, fd, source, mapped, port)
                    else:
                        admitted = True
                except BaseException:  # a bug here costs this connection, not its fd
                    os.close(fd)
                    raise
                if not admitted:
                    os.close(fd)
                    if unit.paused_until is not None:
                        return
                    continue
                start(fd, source)

        return on_ready

    def _accept_failed(self, endpoint: Endpoint, exc: OSError) -> None:
        if exc.errno in _RESOURCE_ERRORS:
            self._rest(endpoint, f"accept: {exc.strerror}")
        elif exc.errno not in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR, errno.EPERM):
            self.log.error(f"{endpoint.unit.service.id}: accept: {exc.strerror}")

    def _rest(self, endpoint: Endpoint, why: str) -> None:
        """Stop watching a socket for RESOURCE_BACKOFF seconds: its readiness is something
        no handling can clear now (no descriptors left, or a bug), and watching it would
        spin the loop."""
        self.log.error(f"{endpoint.unit.service.id}: {why}; pausing this socket for "
                       f"{RESOURCE_BACKOFF:g}s")
        self._unwatch(endpoint)

        def resume() -> None:
            if self.endpoints.get(endpoint.key) is endpoint and endpoint.busy_pid is None \
                    and endpoint.unit.paused_until is None:
                self._watch(endpoint)

        self._at(time.monotonic() + RESOURCE_BACKOFF, resume)

    def _let_in(self, unit: Unit, fd: int, source: str | None, mapped: bool = False,
                port: int | None = None) -> bool:
        """_admit() a new connection, with xinetd's banners around the decision: `banner`
        first, then `banner_success` or `banner_fail`. The caller closes a refused one."""
        banners = unit.banners
        if banners and banners[0]:
            _send_banner(fd, banners[0])
        admitted = self._admit(unit, source, mapped, port)
        banner = banners and banners[1 if admitted else 2]
        if banner:
            _send_banner(fd, banner)
        return admitted

    def _admit(self, unit: Unit, source: str | None, mapped: bool = False,
               port: int | None = None) -> bool:
        """The peers' checks, in xinetd's order (access.c): rate, load, time, limits, address.
        `source` is the client as limits.peer() names it; `mapped`, whether it came as an
        IPv4-mapped address (a dual-stack socket); `port`, the server's port."""
        now = time.monotonic()
        if unit.refusing_until is not None:
            if now < unit.refusing_until:
                return False  # logged once when the pause began
            unit.refusing_until = None
            self.log.notice(f"{unit.service.id}: service on again")
        if unit.rate is not None and not unit.rate.admit(now):
            self.log.error(f"FAIL: {unit.service.id} {limits.RATE} from={source}")
            self._pause(unit, now)
            return False
        service = unit.service
        if unit.checks:
            reason = None
            if service.max_load is not None and self._load_gate.too_high(service.max_load, now):
                reason = limits.LOAD
            elif service.access_times and limits.outside_access_times(
                    service.access_times, _minute_of_day()):
                reason = limits.TIME
            else:
                reason = unit.occupancy.refusal(source)
                if reason is None:
                    reason = self._address_refusal(unit, source, mapped, port)
            if reason is not None:
                self.log.warning(f"FAIL: {service.id} {reason} from={source}")
                return False
        return True

    def _address_refusal(self, unit: Unit, source: str | None, mapped: bool,
                         port: int | None) -> str | None:
        """only_from/no_access, then hosts.allow/hosts.deny. `source` None: a wait-type
        stream server accepts the client itself, so xinetd has no address: its
        only_from/no_access check fails, and libwrap is asked about an "unknown" client
        (`ALL: ALL` in hosts.deny refuses it, `name: ALL` in hosts.allow admits it). An
        error here refuses this one client (and is logged): it never takes the
        superserver down."""
        try:
            if unit.acl is not None and (source is None
                                         or not unit.acl.allows(source, mapped=mapped)):
                return limits.ADDRESS
            if unit.wrap_name and not self._libwrap_tables().allows(
                    unit.wrap_name, source,
                    None if source is None else lambda: verified_hostname(source), port=port):
                return limits.LIBWRAP
        except Exception as exc:  # noqa: BLE001 - one client's check, not the daemon
            self.log.error(f"{unit.service.id}: access check failed for {source}: "
                           f"{type(exc).__name__}: {exc}; refused")
            return limits.ADDRESS
        return None

    def _pause(self, unit: Unit, now: float) -> None:
        """Over its rate: the service goes off for `pause` seconds, as both peers do.

        Both peers close the socket (clients are refused, not queued); a socket systemd
        gave us cannot be re-bound, so it is only left unwatched.
        """
        rate = unit.service.rate
        assert rate is not None and unit.rate is not None
        self.log.error(f"{unit.service.id}: too many starts ({rate.count} in {rate.interval:g}s): "
                       f"service off for {rate.pause:g}s")
        if not unit.rate.closes_socket:
            unit.refusing_until = now + rate.pause
            return
        unit.paused_until = now + rate.pause
        for endpoint in unit.endpoints:
            if endpoint.inherited:
                self._unwatch(endpoint)
            else:
                self._close(endpoint)
                self.endpoints.pop(endpoint.key, None)
        unit.endpoints = [e for e in unit.endpoints if e.inherited]

        def resume() -> None:
            if self.units.get(unit.service.id) is not unit:
                return  # reloaded away meanwhile
            unit.paused_until = None
            for listen in unit.service.listens:
                key = endpoint_key(unit.service, listen)
                if key in self.endpoints:
                    continue
                try:
                    endpoint = Endpoint(key, open_listener(unit.service, listen), unit)
                except (OSError, ConfigError) as exc:
                    self.log.error(f"{unit.service.id}: cannot listen on {listen} again: {_message(exc)}")
                    continue
                endpoint.sock.setblocking(unit.hands_over)
                self.endpoints[key] = endpoint
                unit.endpoints.append(endpoint)
            for endpoint in unit.endpoints:
                if endpoint.busy_pid is None:
                    self._watch(endpoint)
            self.log.notice(f"{unit.service.id}: service on again")

        self._at(unit.paused_until, resume)

    # -- wait: hand the socket over, watch it again when the server exits -------------------------------

    def _wait_callback(self, endpoint: Endpoint) -> Callable[[object], None]:
        port = _local_port(endpoint.sock)

        def on_ready(_mask) -> None:
            unit = endpoint.unit
            if (unit.checks or unit.rate is not None or unit.refusing_until is not None) \
                    and not self._admit(unit, *self._datagram_sender(endpoint), port):
                if unit.paused_until is None:
                    self._refuse_one(endpoint)  # else the readiness would wake us forever
                return
            launcher = unit.launcher
            try:
                pid = launcher.spawn(endpoint.sock.fileno())
            except OSError as exc:
                self.log.error(f"FAIL: {unit.service.id} cannot start {launcher.path}: {exc.strerror}")
                self._refuse_one(endpoint)  # else the same failure on every loop turn
                return
            if unit.service.wait:
                self._unwatch(endpoint)
                endpoint.busy_pid = pid
                self.children[pid] = Child(unit, endpoint, None)
            else:
                # dgram nowait (openbsd-inetd only): the server must read the datagram
                # itself; the socket stays watched, its rate limit bounds any loop.
                self.children[pid] = Child(unit, None, None)
            unit.occupancy.started(None)
            self.log.info(f"START: {unit.service.id} pid={pid}")

        return on_ready

    @staticmethod
    def _datagram_sender(endpoint: Endpoint) -> tuple[str | None, bool]:
        """Who sent the datagram a wait server is about to read, as limits.peer() names
        it: xinetd peeks at it so that its address checks (only_from/no_access, libwrap,
        per_source) refuse a datagram from a client they refuse (and drops it), as tcpd
        does. A stream socket's client is unknown until the server accepts it."""
        if endpoint.sock.type != socket.SOCK_DGRAM:
            return None, False
        try:
            _, address = endpoint.sock.recvfrom(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except OSError:  # no sender known: the address checks refuse, as xinetd's do
            return None, False
        return limits.peer(address)

    def _drain(self, endpoint: Endpoint) -> None:
        """A datagram nobody will read would wake us forever: drop it (xinetd drain())."""
        if endpoint.sock.type == socket.SOCK_DGRAM:
            try:
                endpoint.sock.recv(1, socket.MSG_DONTWAIT)
            except OSError:
                pass

    def _refuse_one(self, endpoint: Endpoint) -> None:
        """Turn away what made a wait socket readable: one datagram or one connection."""
        if endpoint.sock.type == socket.SOCK_DGRAM:
            self._drain(endpoint)
            return
        try:
            fd, _ = endpoint.sock._accept()
        except OSError:
            return
        os.close(fd)

    # -- internal services ---------------------------------------------------------------------

    def _internal_for(self, service: Service):
        from .internal_handler import InternalHandler
        return InternalHandler(service, self.selector)

    def _internal_callback(self, endpoint: Endpoint) -> Callable[[int], None]:
        if endpoint.sock.type == socket.SOCK_DGRAM:
            return self._internal_datagram_callback(endpoint)
        sock = endpoint.sock
        # socket.accept() converts family and type to enums on every call; building
        # the object from plain ints is a measurable part of a whole echo connection.
        family, kind, proto = int(sock.family), int(sock.type), sock.proto
        make = socket.socket
        unit = endpoint.unit
        handler = unit.internal
        log = self.log
        selector = self.selector
        service_id = unit.service.id

        def start(fd: int, source: str | None) -> None:
            log.info(f"START: {service_id} internal from={source}")
            conn = make(family, kind, proto, fd)
            try:
                handler.start_stream(conn, source)
            except Exception:  # a bug costs this client's connection: closed, not leaked
                try:
                    selector.unregister(conn)
                except (KeyError, ValueError):
                    pass
                conn.close()
                raise

        def count_running() -> None:
            unit.occupancy.running, unit.occupancy.by_source = handler.running()

        return self._accepting(endpoint, start, count_running if handler.track else None)

    def _internal_datagram_callback(self, endpoint: Endpoint) -> Callable[[int], None]:
        sock = endpoint.sock
        unit = endpoint.unit
        handler = unit.internal
        port = _local_port(sock)

        def on_ready(_mask) -> None:
            for _ in range(ACCEPT_BATCH):
                try:
                    data, address = sock.recvfrom(65536)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    return  # an ICMP error for an earlier reply
                source, mapped = limits.peer(address)
                if (unit.checks or unit.rate is not None) and \
                        not self._admit(unit, source, mapped, port):
                    if unit.paused_until is not None:
                        return
                    continue
                handler.answer(sock, data, address)

        return on_ready

    # -- timers ----------------------------------------------------------------------------------

    def _at(self, when: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (when, next(self._timer_seq), callback))

    def _next_timeout(self) -> float | None:
        if self._signals:
            return 0
        if not self._timers:
            return None
        return max(0.0, self._timers[0][0] - time.monotonic())

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, callback = heapq.heappop(self._timers)
            callback()

    # -- stopping ----------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        if self._notifier is not None:
            self._notifier.stopping()
        for endpoint in list(self.endpoints.values()):
            self._close(endpoint)
        self.endpoints.clear()
        for unit in self.units.values():
            if unit.internal is not None:
                unit.internal.close()
        # xinetd(8): SIGTERM "terminates all running servers before terminating xinetd".
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_GRACE
        while self.children and time.monotonic() < deadline:
            self._reap()
            if self.children:
                time.sleep(0.02)
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap()
        if self._wakeup is not None:
            self._wakeup.close()
        self.selector.close()
        self.log.notice("stopped")


def _read_banners(service: Service) -> tuple[bytes | None, bytes | None, bytes | None] | None:
    """xinetd banner / banner_success / banner_fail, read once per (re)load."""
    if not (service.banner or service.banner_success or service.banner_fail):
        return None
    contents = []
    for path in (service.banner, service.banner_success, service.banner_fail):
        if not path:
            contents.append(None)
            continue
        try:
            # Read as root, sent to anyone who connects: never through a link that a
            # user other than root could have put there (daemon.safeopen).
            with open(open_read(path), "rb") as f:
                contents.append(f.read(65536))
        except OSError as exc:
            raise ConfigError(f"banner {path}: {exc.strerror}", service.source.file,
                              service.source.line) from None
    return (contents[0], contents[1], contents[2])


def _send_banner(fd: int, data: bytes) -> None:
    """Best effort, as xinetd's Swrite: a client that went away gets nothing."""
    try:
        os.write(fd, data)
    except OSError:
        pass


def _local_port(sock: socket.socket) -> int | None:
    """The port a listening socket serves (libwrap's daemon patterns may name it)."""
    try:
        name = sock.getsockname()
    except OSError:
        return None
    return name[1] if isinstance(name, tuple) else None


def _hands_over(service: Service) -> bool:
    """Whether the socket itself goes to a server (wait, or datagram to a program)."""
    return service.server is not None and not service.accept


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal={signal.Signals(os.WTERMSIG(status)).name}"
    return f"status={os.waitstatus_to_exitcode(status)}"


def _minute_of_day() -> int:
    now = time.localtime()
    return now.tm_hour * 60 + now.tm_min


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
