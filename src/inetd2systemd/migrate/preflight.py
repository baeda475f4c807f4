"""Checks to run before a host is switched from its superserver to systemd sockets.

Each check returns Findings (the same type as the converter's, so the report lists
them alike), never raises for what it finds:

- `ports_in_use`: a port a converted service needs is still held by something else
  (typically the old xinetd / inetd), read from /proc/net/{tcp,tcp6,udp,udp6}, with
  the holding process when /proc tells it.
- `ip_filter_support`: IPAddressAllow=/IPAddressDeny= are silently ignored by systemd
  without cgroup v2 and BPF (systemd.resource-control(5)); a service whose access
  rules vanish would be open to everyone, so this is an ERROR when rules are needed.
- `missing_accounts`: users and groups the services run as that the host does not have.
- `missing_programs`: server programs that do not exist (or are not executable).
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..model import Code, Family, Finding, Service, Severity, SocketType, Source

TCP_LISTEN = "0A"  # include/net/tcp_states.h: TCP_LISTEN
UDP_UNCONNECTED = "07"  # a bound UDP socket shows as TCP_CLOSE


@dataclass(frozen=True)
class Bound:
    """One listening socket found in /proc/net."""

    transport: str  # "tcp" or "udp"
    address: str
    port: int
    inode: int

    @property
    def wildcard(self) -> bool:
        return ipaddress.ip_address(self.address).is_unspecified


def _decode_address(hex_addr: str) -> str:
    """/proc/net hex (host byte order per 32-bit word) -> printable address."""
    raw = bytes.fromhex(hex_addr)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def listening_sockets(proc: str | Path = "/proc") -> list[Bound]:
    found = []
    for transport, names, state in (("tcp", ("tcp", "tcp6"), TCP_LISTEN),
                                    ("udp", ("udp", "udp6"), UDP_UNCONNECTED)):
        for name in names:
            try:
                lines = (Path(proc) / "net" / name).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if len(fields) < 10 or fields[3] != state:
                    continue
                addr, port = fields[1].split(":")
                found.append(Bound(transport, _decode_address(addr), int(port, 16), int(fields[9])))
    return found


def socket_owners(proc: str | Path = "/proc") -> dict[int, str]:
    """socket inode -> 'comm (pid N)', for the processes /proc lets us look into."""
    owners: dict[int, str] = {}
    for pid_dir in Path(proc).iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            comm = (pid_dir / "comm").read_text().strip()
            for fd in (pid_dir / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owners.setdefault(int(target[8:-1]), f"{comm} (pid {pid_dir.name})")
        except OSError:
            continue
    return owners


def _transport(service: Service) -> str | None:
    if service.socket_type is SocketType.STREAM and service.protocol.startswith("tcp"):
        return "tcp"
    if service.socket_type is SocketType.DGRAM and service.protocol.startswith("udp"):
        return "udp"
    return None


def _clashes(service: Service, bound: Bound) -> bool:
    transport = _transport(service)
    if transport != bound.transport:
        return False
    for listen in service.listens:
        if listen.family is Family.UNIX or listen.port != bound.port:
            continue
        if listen.host is None or bound.wildcard:
            return True
        if ipaddress.ip_address(listen.host) == ipaddress.ip_address(bound.address):
            return True
    return False


def ports_in_use(services: Sequence[Service], proc: str | Path = "/proc") -> list[Finding]:
    bound = listening_sockets(proc)
    owners: dict[int, str] | None = None
    findings = []
    for service in services:
        if service.disabled:
            continue
        for b in bound:
            if not _clashes(service, b):
                continue
            if owners is None:
                owners = socket_owners(proc)
            who = owners.get(b.inode, "a process this user cannot see")
            findings.append(Finding(service.source, Severity.WARNING,
                                    f"port {b.port}/{b.transport} is in use on this host "
                                    f"({b.address} held by {who}): the socket cannot start "
                                    "until it is freed (install.sh stops the legacy "
                                    "superserver first)", service.id, code=Code.PORT_IN_USE))
            break
    return findings


# -- IP filtering: cgroup v2 + BPF -------------------------------------------------------

_BPF_SYSCALL = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "ppc64le": 361, "s390x": 351,
                "riscv64": 280, "i686": 357}
BPF_PROG_LOAD = 5
BPF_PROG_TYPE_CGROUP_SKB = 8


def _bpf_cgroup_skb_loads() -> bool | None:
    """Whether the kernel loads a trivial cgroup/skb program (what systemd's
    bpf_firewall_supported() probes); None when that cannot be told here: an unknown
    architecture, or a user other than root, whom the kernel refuses whatever it
    supports (systemd loads the program as root)."""
    number = _BPF_SYSCALL.get(platform.machine())
    if number is None:
        return None
    insns = (ctypes.c_uint8 * 16)(0xB7, 0, 0, 0, 1, 0, 0, 0,  # r0 = 1 (let it pass)
                                  0x95, 0, 0, 0, 0, 0, 0, 0)  # exit
    license_ = ctypes.create_string_buffer(b"GPL")
    attr = (ctypes.c_uint8 * 128)()
    ctypes.memmove(ctypes.addressof(attr), ctypes.byref(ctypes.c_uint32(BPF_PROG_TYPE_CGROUP_SKB)), 4)
    ctypes.memmove(ctypes.addressof(attr) + 4, ctypes.byref(ctypes.c_uint32(2)), 4)
    ctypes.memmove(ctypes.addressof(attr) + 8, ctypes.byref(ctypes.c_uint64(ctypes.addressof(insns))), 8)
    ctypes.memmove(ctypes.addressof(attr) + 16, ctypes.byref(ctypes.c_uint64(ctypes.addressof(license_))), 8)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(number, BPF_PROG_LOAD, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd >= 0:
        os.close(fd)
        return True
    refused = ctypes.get_errno()
    if refused in (errno.EPERM, errno.EACCES) and os.geteuid() != 0:
        return None
    return False if refused in (errno.EPERM, errno.EINVAL, errno.ENOSYS, errno.EACCES) else None


def cgroup2_mount(mounts: str | Path = "/proc/self/mounts") -> str | None:
    try:
        for line in Path(mounts).read_text().splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2":
                return fields[1]
    except OSError:
        pass
    return None


def ip_filter_support(services: Sequence[Service], *, mounts: str | Path = "/proc/self/mounts",
                      probe=_bpf_cgroup_skb_loads) -> list[Finding]:
    needing = [s for s in services if not s.disabled and (s.only_from is not None or s.no_access)]
    if not needing:
        return []
    where = needing[0].source
    ids = ", ".join(s.id for s in needing)
    mount = cgroup2_mount(mounts)
    if mount is None:
        return [Finding(where, Severity.ERROR,
                        "this host has no cgroup v2 hierarchy: systemd would silently ignore "
                        f"IPAddressAllow=/IPAddressDeny= and {ids} would be open to every "
                        "address. Boot with systemd.unified_cgroup_hierarchy=1 before switching",
                        code=Code.IP_FILTERING)]
    loads = probe()
    if loads is False:
        return [Finding(where, Severity.ERROR,
                        "the kernel refuses cgroup BPF programs here (no CONFIG_CGROUP_BPF, "
                        "or a container without the bpf system call): systemd would silently "
                        f"ignore IPAddressAllow=/IPAddressDeny= and {ids} would be open to every "
                        "address", code=Code.IP_FILTERING)]
    hybrid = "" if mount == "/sys/fs/cgroup" else f" (hybrid hierarchy, cgroup v2 at {mount})"
    if loads is None:
        return [Finding(where, Severity.INFO,
                        f"cgroup v2{hybrid} is there for IP address filtering; cgroup BPF was "
                        "not probed (that needs root and a known architecture): check with "
                        "'systemd-analyze security' or the journal's 'BPF firewalling' messages",
                        code=Code.IP_FILTERING)]
    return [Finding(where, Severity.INFO,
                    f"IP address filtering is enforceable on this host: cgroup v2{hybrid} and "
                    "cgroup BPF are available", code=Code.IP_FILTERING)]


# -- accounts and programs ------------------------------------------------------------------


def _names(path: Path) -> set[str] | None:
    """The account names and numeric ids of a passwd or group file (None: unreadable)."""
    from ..convert.host import account_keys
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return account_keys(text)


def missing_accounts(services: Sequence[Service], etc: str | Path) -> list[Finding]:
    etc = Path(etc)
    users, groups = _names(etc / "passwd"), _names(etc / "group")
    findings = []
    for service in services:
        if service.disabled:
            continue
        checks = [("user", service.user, users, "passwd"), ("group", service.group, groups, "group")]
        checks += [("supplementary group", g, groups, "group")
                   for g in service.supplementary_groups or ()]
        for what, name, known, file in checks:
            if not name or known is None or name in known:  # a number needs an entry too
                continue
            findings.append(Finding(service.source, Severity.WARNING,
                                    f"{what} {name!r} does not exist in {etc / file}: the "
                                    "service would fail to start; create it (or change the "
                                    "unit's User=/Group=) before switching", service.id,
                                    code=Code.USER_MISSING if what == "user"
                                    else Code.GROUP_MISSING))
    return findings


def missing_programs(services: Sequence[Service], target_root: str | Path = "/") -> list[Finding]:
    from ..convert.host import program_runs
    findings = []
    for service in services:
        if service.disabled or service.server is None:
            continue
        if program_runs(service.server, target_root):
            continue
        path = Path(target_root) / service.server.lstrip("/")
        findings.append(Finding(service.source, Severity.WARNING,
                                f"program {service.server} is missing on the target "
                                f"({path}): install it before switching; install.sh leaves "
                                "this service's socket stopped until it exists", service.id,
                                code=Code.PROGRAM_MISSING))
    return findings


def run_all(services: Sequence[Service], *, etc: str | Path, target_root: str | Path = "/",
            proc: str | Path = "/proc", check_ports: bool = True) -> tuple[Finding, ...]:
    """Every check, in the order the report lists them."""
    findings: list[Finding] = []
    if check_ports:
        findings += ports_in_use(services, proc)
    findings += ip_filter_support(services)
    findings += missing_accounts(services, etc)
    findings += missing_programs(services, target_root)
    return tuple(findings)


__all__ = ["Bound", "listening_sockets", "socket_owners", "ports_in_use", "ip_filter_support",
           "cgroup2_mount", "missing_accounts", "missing_programs", "run_all", "Source"]
