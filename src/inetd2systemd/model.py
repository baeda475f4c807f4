"""The neutral model between the configuration readers and the back ends.

Both readers (inetd.conf, xinetd) produce `Service` values; the unit writer and the
superserver only read them. A feature is added here once, then in each consumer.
Everything is frozen: a parsed configuration is a value that can be compared, which
is how the superserver decides on reload which sockets to keep.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Source:
    """Where a value came from: every warning and every unit points back at it."""

    file: str
    line: int
    column: int = 0  # 1-based; 0 when the finding concerns the whole line or entry

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.column else \
            f"{self.file}:{self.line}"


class Severity(enum.Enum):
    INFO = "info"  # carried over, but the administrator may want to know how
    WARNING = "warning"  # carried over approximately, or something could not be
    ERROR = "error"  # the service could not be carried over at all


class Code(enum.StrEnum):
    """What a finding is about, as a stable word a script can act on (the message is
    for people and may be reworded). Each is documented in docs/json.md."""

    # -- input that cannot be read at all (exit 2) --------------------------------------
    UNREADABLE = "unreadable"  # a file or directory missing, not permitted, not regular
    NOT_A_CONFIGURATION = "not-a-configuration"  # not inetd.conf / xinetd syntax at all
    BAD_INPUT = "bad-input"  # anything else that stops the reading (xinetd exits on it)
    BAD_ARGUMENTS = "bad-arguments"  # options that contradict each other
    # -- writing or installing that failed or was refused (exit 3) -----------------------
    REFUSED = "refused"  # would replace a unit inetd2systemd did not write
    INSTALL_FAILED = "install-failed"  # a file could not be written, systemctl failed
    # -- one entry, line or attribute (what the daemon itself does about it) -------------
    ENTRY_SKIPPED = "entry-skipped"  # the daemon skips the line or entry: left out
    LINE_IGNORED = "line-ignored"  # the daemon ignores the line; the rest is converted
    DISABLED_BY_DAEMON = "disabled-by-daemon"  # xinetd disables the service: left out
    NO_ADDRESS = "no-address"  # read, but nothing to listen on (unknown name or host)
    NEVER_SERVED = "never-served"  # the daemon never served it either: left out
    DISABLED = "disabled"  # switched off in the source: left out, or written not enabled
    DUPLICATE = "duplicate"  # the same id, or the same address, as an earlier service
    ID_RENAMED = "id-renamed"  # an id used twice: the later one renamed
    DUAL_STACK_PAIR = "dual-stack-pair"  # a tcp/tcp6 pair folded as the daemon binds it
    RESOLVED_NOW = "resolved-now"  # a host name resolved at conversion time
    ARGV_LIMIT = "argv-limit"  # more arguments than the daemon passes
    TCPD_UNWRAPPED = "tcpd-unwrapped"  # a tcpd line: the real program runs directly
    PATH_LOOKUP = "path-lookup"  # a bare program name looked up as busybox does
    NO_EFFECT = "no-effect"  # an attribute or flag that changes nothing here
    INCLUDE_LOOP = "include-loop"  # an xinetd include that includes itself
    INCLUDE_REPEATED = "include-repeated"  # an xinetd file included twice
    INCLUDE_SKIPPED = "include-skipped"  # an included file or directory xinetd skips too
    # -- what systemd cannot do the same way ---------------------------------------------
    RPC = "rpc"  # RPC services need the portmapper: no units
    TCPMUX = "tcpmux"  # TCPMUX (RFC 1078) services: no units
    NOT_CONVERTIBLE = "not-convertible"  # any other service that gets no units
    PROGRAM_MISSING = "program-missing"  # the server program is not on this host
    USER_MISSING = "user-missing"  # the user does not exist on this host
    GROUP_MISSING = "group-missing"  # the group does not exist on this host
    NOT_CARRIED = "not-carried"  # an attribute with no systemd counterpart (here)
    LOG_NOT_CARRIED = "log-not-carried"  # xinetd's own logging (log_type, log_on_*)
    DGRAM_NOWAIT = "dgram-nowait"  # a datagram service with wait = no / nowait
    SUPPLEMENTARY_GROUPS = "supplementary-groups"  # groups = no, for a user who has some
    PASSENV = "passenv"  # passenv reads the service manager's environment
    ENVIRONMENT_NAME = "environment-name"  # a variable name systemd refuses
    TCP_WRAPPERS = "tcp-wrappers"  # hosts.allow/hosts.deny rules that apply are not carried
    TCP_WRAPPERS_UNCHECKED = "tcp-wrappers-unchecked"  # the target's rules are not known
    TCP_WRAPPERS_OPEN = "tcp-wrappers-open"  # wrapped, but no rule restricts who connects
    TCP_WRAPPERS_CARRIED = "tcp-wrappers-carried"  # (import) rules carried as IPAddressAllow=
    TCP_WRAPPERS_INEXACT = "tcp-wrappers-inexact"  # (import) a rule carried stricter
    TCP_WRAPPERS_RULE = "tcp-wrappers-rule"  # a hosts.allow/deny line libwrap skips or stops at
    ACCESS_APPROXIMATED = "access-approximated"  # only_from/no_access carried stricter
    ACCESS_UNREADABLE = "access-unreadable"  # only_from/no_access unreadable: nobody let in
    ACCESS_NOBODY = "access-nobody"  # the address rules let nobody in
    RATE_LIMIT = "rate-limit"  # the rate limit's pause differs from the daemon's
    SOCKET_SPLIT = "socket-split"  # one socket and service per address
    HARDENING = "hardening"  # the sandbox level chosen for a service, and why
    NOT_CHECKED = "not-checked"  # (generator) a program on a file system not mounted yet
    INTERNAL_ERROR = "internal-error"  # a bug of ours, kept to the file or service it hit
    # -- import's checks of the target host ----------------------------------------------
    PORT_IN_USE = "port-in-use"
    IP_FILTERING = "ip-filtering"  # whether IPAddressAllow=/Deny= can be enforced
    # -- syslog.conf -----------------------------------------------------------------------
    SYSLOG_UNSUPPORTED = "syslog-unsupported"  # a directive, template or action ignored


def unmapped_code(attribute: str) -> Code:
    """The code of an attribute that is not carried over (Service.unmapped): xinetd's own
    connection logging (log_type, log_on_success, log_on_failure) is the kind a script
    most often wants to tell from the rest."""
    return Code.LOG_NOT_CARRIED if attribute.startswith("log_") else Code.NOT_CARRIED


@dataclass(frozen=True)
class Finding:
    """A remark about one service or one line: the report is made of these. Whoever
    makes one names its `code` (tests/test_report.py holds every call to it)."""

    source: Source
    severity: Severity
    message: str
    service: str | None = None  # the service's id, when it concerns one
    code: Code | None = None  # what it is about, for scripts (docs/json.md)

    def __str__(self) -> str:
        who = f" [{self.service}]" if self.service else ""
        return f"{self.source}: {self.severity.value}{who}: {self.message}"


class SocketType(enum.Enum):
    STREAM = "stream"
    DGRAM = "dgram"
    SEQPACKET = "seqpacket"
    RAW = "raw"
    RDM = "rdm"


class Family(enum.Enum):
    """The address family a listening socket is bound with."""

    IPV4 = "ipv4"  # 0.0.0.0 or one v4 address
    IPV6 = "ipv6"  # v6 only (IPV6_V6ONLY=1)
    DUAL = "dual"  # one v6 socket that also takes v4-mapped connections
    UNIX = "unix"  # AF_UNIX path


@dataclass(frozen=True)
class Listen:
    """One listening address. `host` None means every address of the family."""

    family: Family
    port: int | None = None  # None only for UNIX
    host: str | None = None  # numeric address; for UNIX the socket path

    def __str__(self) -> str:
        """As systemd's Listen*= and every message write it: `[::]:21`, `10.0.0.1:21`, a path."""
        if self.family is Family.UNIX:
            return str(self.host)
        if self.host is None:
            return host_port("0.0.0.0" if self.family is Family.IPV4 else "::", self.port)
        return host_port(self.host, self.port)


def host_port(host: str, port: object) -> str:
    """`host:port`, an IPv6 address in brackets (`[::1]:21`)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class RateLimit:
    """At most `count` starts per `interval` seconds; over it, off for `pause` seconds.

    inetd's `nowait.N` is (N, 60, 600); xinetd's `cps N T` is (N, 1, T).
    """

    count: int
    interval: float
    pause: float


@dataclass(frozen=True)
class Redirect:
    """xinetd `redirect = host port`: forward each connection there."""

    host: str
    port: int

    def __str__(self) -> str:
        return host_port(self.host, self.port)


def base_protocol(token: str) -> str:
    """The transport of an inetd protocol token, as /etc/services lists it: tcp4, tcp6,
    tcp46, tcp6only (inetutils) -> tcp, likewise udp; the family they name goes in the
    Listen. Anything else as it is: `rpc/tcp` stays RPC (looked up by getrpcbyname, never
    in /etc/services), `sctp` and xinetd's protocols are already bare."""
    if token[:3] in ("tcp", "udp") and token[3:] in ("", "4", "6", "46", "6only"):
        return token[:3]
    return token


def free_id(id_: str, taken: set[str], suffixes: dict[str, int]) -> str:
    """`ID-N` for the lowest N from 2 not taken: how a repeated service id, or unit name,
    is made unique everywhere. `suffixes` remembers where each id's search stopped, so
    that 10,000 services of one name cost linear time, not square."""
    n = suffixes.get(id_, 2)
    while f"{id_}-{n}" in taken:
        n += 1
    suffixes[id_] = n + 1
    return f"{id_}-{n}"


# inetd's internal services (RFC 862, 863, 864, 867, 868): the readers accept these
# names, the unit writer and the superserver serve them in-process.
INTERNAL_NAMES = ("echo", "discard", "chargen", "daytime", "time")

# Resource limits by the systemd directive's suffix (LimitAS=, LimitCPU=, ...).
# None as a value means unlimited (systemd's `infinity`).
RLIMIT_NAMES = ("AS", "CPU", "DATA", "RSS", "STACK", "NOFILE")


@dataclass(frozen=True)
class Service:
    """One listening service, as an inetd or xinetd configuration describes it."""

    # -- identity -------------------------------------------------------------------
    name: str  # the service name as written (/etc/services key, unit name basis)
    id: str  # unique among the services of one configuration (xinetd `id`)
    source: Source

    # -- socket ---------------------------------------------------------------------
    socket_type: SocketType
    protocol: str  # "tcp", "udp", "unix", "sctp", "rpc/tcp", ... (family is in listens)
    listens: tuple[Listen, ...]
    wait: bool
    recv_buffer: int | None = None
    send_buffer: int | None = None
    nodelay: bool = False
    keepalive: bool = False

    # -- what runs --------------------------------------------------------------------
    server: str | None = None  # absolute path; None for internal services
    argv: tuple[str, ...] = ()  # argv exactly as the server must receive it, argv[0] included
    internal: str | None = None  # "echo", "discard", "chargen", "daytime", "time"
    redirect: Redirect | None = None
    user: str | None = None
    group: str | None = None
    # None: the user's own supplementary groups (inetd); () : none at all (xinetd groups=no)
    supplementary_groups: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    passenv: tuple[str, ...] | None = None  # None: nothing said
    nice: int | None = None
    umask: int | None = None
    rlimits: tuple[tuple[str, int | None], ...] = ()  # (RLIMIT_NAMES member, value)

    # -- limits and access ---------------------------------------------------------------
    instances: int | None = None  # concurrent servers; None = unlimited
    per_source: int | None = None
    rate: RateLimit | None = None
    only_from: tuple[str, ...] | None = None  # None: not set; () : nobody
    no_access: tuple[str, ...] = ()
    access_times: tuple[tuple[int, int], ...] = ()  # (start, end) in minutes after midnight
    max_load: float | None = None
    tcp_wrapped: bool = False  # went through tcpd / libwrap: hosts.allow/deny applied
    libwrap_name: str | None = None

    # -- xinetd extras -------------------------------------------------------------------
    banner: str | None = None
    banner_success: str | None = None
    banner_fail: str | None = None

    disabled: bool = False
    # Which daemon's file it came from: where inetd and xinetd behave differently
    # (the wording of the daytime service), the back ends answer as that daemon did.
    dialect: str = "inetd"  # or "xinetd"
    # Attributes the reader met and could not place in the fields above, kept for the
    # report as (attribute, value, source); never dropped silently.
    unmapped: tuple[tuple[str, str, Source], ...] = ()

    @property
    def accept(self) -> bool:
        """systemd Accept=: one server per connection. Only stream sockets can accept."""
        return not self.wait and self.socket_type in (SocketType.STREAM, SocketType.SEQPACKET)

    @property
    def accepts_itself(self) -> bool:
        """A wait-type stream server accepts its own connections: the superserver (and
        tcpd) never learns a client's address, so address rules decide for everyone."""
        return self.wait and self.socket_type is SocketType.STREAM and self.server is not None


def fd_name(service: Service) -> str:
    """The name a service's sockets are passed under (systemd's FileDescriptorName=).

    The unit writer names the sockets with it and the superserver finds its own with it.
    systemd refuses `:` and control characters there and caps it at 255 bytes."""
    name = "".join(c if c.isascii() and c.isprintable() and c not in ": " else "_"
                   for c in service.id)
    return name[:255] or "_"


@dataclass(frozen=True)
class Configuration:
    """What one reading of the configuration produced."""

    services: tuple[Service, ...] = ()
    findings: tuple[Finding, ...] = field(default=())
