"""Listening sockets: how a `Listen` becomes a bound socket, and how one is recognised.

A socket is identified by what a client sees of it — family, address, port, type and
protocol — never by the service that owns it. On reload the arbiter keeps every socket
whose key is still configured, whatever else changed about the service, so clients are
never refused while the configuration is re-read.
"""

from __future__ import annotations

import socket

from ..errors import ConfigError
from ..model import Family, Listen, Service, SocketType, base_protocol
from ..socketfiles import clear_stale_socket

# xinetd's LISTEN_BACKLOG; openbsd-inetd uses 10 unless -q says otherwise. The larger
# one, so a burst waits in the kernel instead of being reset.
DEFAULT_BACKLOG = 64

_TYPES = {
    SocketType.STREAM: socket.SOCK_STREAM,
    SocketType.DGRAM: socket.SOCK_DGRAM,
    SocketType.SEQPACKET: socket.SOCK_SEQPACKET,
}

EndpointKey = tuple[Family, "str | None", "int | None", SocketType, str]


def endpoint_key(service: Service, listen: Listen) -> EndpointKey:
    return (listen.family, listen.host, listen.port, service.socket_type, base_protocol(service.protocol))


def unsupported_reason(service: Service) -> str | None:
    """Why this service cannot be served here, or None. Parsers keep everything they read."""
    if service.socket_type not in _TYPES:
        return f"socket type {service.socket_type.value} is not supported"
    proto = base_protocol(service.protocol)
    if proto.startswith("rpc"):
        return "RPC services need the portmapper, which this superserver does not speak"
    if proto not in ("tcp", "udp", "unix", "sctp"):
        return f"protocol {service.protocol} is not supported"
    if not service.listens:
        return "no address to listen on"
    if service.redirect is not None:
        return "redirect is not supported by this superserver"
    if service.server is None and service.internal is None:
        return "neither a server program nor an internal service"
    return None


def open_listener(service: Service, listen: Listen) -> socket.socket:
    """Create, configure and bind the socket for one Listen of a service.

    Raises OSError (address in use, permission) for the caller to report with the
    service's source line.
    """
    kind = _TYPES[service.socket_type]
    proto = socket.IPPROTO_SCTP if base_protocol(service.protocol) == "sctp" else 0
    if listen.family is Family.UNIX:
        sock = socket.socket(socket.AF_UNIX, kind)
        try:
            problem = clear_stale_socket(str(listen.host), kind)
            if problem is not None:
                raise ConfigError(problem, service.source.file, service.source.line)
            sock.bind(str(listen.host))
        except BaseException:
            sock.close()
            raise
    else:
        family = socket.AF_INET if listen.family is Family.IPV4 else socket.AF_INET6
        sock = socket.socket(family, kind, proto)
        try:
            if kind != socket.SOCK_DGRAM:
                # Both peers set it: a restarted superserver must rebind at once.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY,
                                1 if listen.family is Family.IPV6 else 0)
            host = listen.host or ("0.0.0.0" if family == socket.AF_INET else "::")
            sock.bind((host, listen.port or 0))
        except BaseException:
            sock.close()
            raise
    try:
        apply_options(sock, service)
        if kind != socket.SOCK_DGRAM:
            sock.listen(DEFAULT_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def apply_options(sock: socket.socket, service: Service) -> None:
    """Options that may change on reload without a new socket."""
    if service.recv_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, service.recv_buffer)
    if service.send_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, service.send_buffer)
    if sock.type == socket.SOCK_STREAM and sock.family != socket.AF_UNIX:
        # Linux hands both to accepted connections, so they are set once here.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if service.nodelay else 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1 if service.keepalive else 0)


def listen_of_socket(sock: socket.socket) -> Listen | None:
    """The Listen an inherited socket was bound with (to match it to a service)."""
    if sock.family == socket.AF_UNIX:
        name = sock.getsockname()
        return Listen(Family.UNIX, None, name if isinstance(name, str) else None)
    try:
        host, port = sock.getsockname()[:2]
    except OSError:
        return None
    if sock.family == socket.AF_INET:
        return Listen(Family.IPV4, port, None if host == "0.0.0.0" else host)
    v6only = sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
    return Listen(Family.IPV6 if v6only else Family.DUAL, port, None if host == "::" else host)
