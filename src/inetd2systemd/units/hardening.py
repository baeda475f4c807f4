"""How much of the system a generated service may reach (`--harden`).

Four sets of [Service] settings, from the most confined to the least:

- sandbox: the built-in services (echo, discard, chargen, daytime, time) run this suite's
  own code, which needs nothing but the sockets systemd passes: a dynamic user, no
  capabilities, no network of its own, nothing of the file system to write;
- proxy: systemd-socket-proxyd for xinetd's `redirect`, the same but for the network,
  which it needs to reach the target;
- strict: a program that does not run as root cannot use capabilities, set-uid programs,
  devices or other programs' /tmp anyway, so taking them away changes nothing it could
  do before;
- basic: what no inetd service needs (kernel tunables, modules and log, control groups,
  the clock, the host name, namespaces, realtime scheduling, personalities, the
  capabilities and system calls that only serve those), as the shipped superserver
  unit has it. Any inetd program runs under it, root services included.

`--harden=auto` (the default) gives built-ins the sandbox, the proxy its own, a program
that runs as a user other than root `strict` unless it is known to need more (it logs
users in, switches users or chroots itself, writes to users' terminals: NEEDS_MORE), and
every other program `basic`. `--harden=strict` gives `strict` to root programs too
(root without capabilities), but still not to those known to need more; `basic` gives
every service, built-ins included, only `basic`; `none` writes no hardening at all.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..model import Service, Severity

LEVELS = ("auto", "basic", "strict", "none")

_KERNEL = ("ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectKernelLogs=yes",
           "ProtectControlGroups=yes", "ProtectClock=yes", "ProtectHostname=yes",
           "RestrictNamespaces=yes", "RestrictRealtime=yes", "LockPersonality=yes")
# Capabilities only the kernel-level tasks above, hardware or security modules need.
_CAPABILITIES_NO_INETD_SERVICE_NEEDS = (
    "CAP_SYS_MODULE CAP_SYS_RAWIO CAP_SYS_TIME CAP_SYS_BOOT CAP_MAC_ADMIN CAP_MAC_OVERRIDE "
    "CAP_SYSLOG CAP_WAKE_ALARM CAP_BLOCK_SUSPEND CAP_LINUX_IMMUTABLE CAP_BPF CAP_PERFMON "
    "CAP_SYS_PTRACE CAP_SYS_PACCT CAP_AUDIT_CONTROL CAP_AUDIT_READ CAP_LEASE CAP_MKNOD "
    "CAP_NET_ADMIN CAP_IPC_LOCK CAP_SYS_ADMIN")
_NETWORK_FAMILIES = "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK"
# A denied system call fails with EPERM instead of killing the process.
_SYSTEM_SERVICE_CALLS = ("SystemCallArchitectures=native", "SystemCallFilter=@system-service",
                         "SystemCallErrorNumber=EPERM")

# chroot() is in @mount, and servers such as `in.tftpd -s` chroot themselves.
BASIC = (f"CapabilityBoundingSet=~{_CAPABILITIES_NO_INETD_SERVICE_NEEDS}", *_KERNEL,
         _NETWORK_FAMILIES, "SystemCallArchitectures=native",
         "SystemCallFilter=~@clock @cpu-emulation @debug @module @mount @obsolete @raw-io "
         "@reboot @swap", "SystemCallFilter=chroot", "SystemCallErrorNumber=EPERM")

STRICT = ("CapabilityBoundingSet=", "NoNewPrivileges=yes", "PrivateTmp=yes", "PrivateDevices=yes",
          "ProtectSystem=full", "ProtectHome=read-only", "RestrictSUIDSGID=yes", *_KERNEL,
          _NETWORK_FAMILIES, *_SYSTEM_SERVICE_CALLS)


def _confined(*network: str) -> tuple[str, ...]:
    # DynamicUser=yes implies ProtectSystem=strict, PrivateTmp=, NoNewPrivileges=,
    # RestrictSUIDSGID= and RemoveIPC=, so they are not repeated.
    return ("DynamicUser=yes", "CapabilityBoundingSet=", "PrivateDevices=yes", "PrivateMounts=yes", "PrivateUsers=yes", "ProtectHome=yes",
            "ProtectProc=invisible", "ProcSubset=pid", *_KERNEL, *network,
            "MemoryDenyWriteExecute=yes", *_SYSTEM_SERVICE_CALLS[:2],
            "SystemCallFilter=~@privileged @resources", _SYSTEM_SERVICE_CALLS[2])


# The sockets systemd passes keep working in a network namespace of its own: they were
# made outside it, and their own IPAddressAllow= rules stay on the socket unit.
SANDBOX = _confined("PrivateNetwork=yes", "IPAddressDeny=any", "RestrictAddressFamilies=AF_UNIX")
PROXY = _confined("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6")

PROFILES = {"sandbox": SANDBOX, "proxy": PROXY, "strict": STRICT, "basic": BASIC, "none": ()}

# What DynamicUser=yes implies, left out of a profile it is added to.
_IMPLIED_BY_DYNAMIC_USER = ("ProtectSystem=", "PrivateTmp=", "NoNewPrivileges=",
                            "RestrictSUIDSGID=")

# Programs that need more than `strict` leaves a non-root service: by the name they are
# run as (the server's file name, or argv[0]), why. A server that logs users in, switches
# users or chroots needs its capabilities and set-uid programs; one that writes to users'
# terminals needs their devices.
NEEDS_MORE = {
    **dict.fromkeys(("in.ftpd", "ftpd", "in.wuftpd", "wu-ftpd", "proftpd", "in.proftpd",
                     "vsftpd", "pure-ftpd", "in.rshd", "rshd", "in.rlogind", "rlogind",
                     "in.rexecd", "rexecd", "kshd", "klogind", "ekshd", "eklogind",
                     "in.telnetd", "telnetd", "login", "su", "in.uucpd", "uucpd", "swat",
                     "imapd", "ipop2d", "ipop3d", "pop3d", "in.pop3d", "popa3d"),
                    "logs users in and switches to them itself"),
    **dict.fromkeys(("in.talkd", "in.ntalkd", "talkd", "ntalkd", "in.comsat", "comsat"),
                    "writes to users' terminals"),
    "amandad": "runs set-uid helpers (runtar, calcsize)",
    "saned": "opens scanner devices",
    "Xvnc": "makes its display's sockets in /tmp for other programs",
}
# ... and those that need it only in some modes, by an argument.
_NEEDS_MORE_WITH = {
    "in.tftpd": (("-s", "--secure"), "chroots itself (-s)"),
    "tftpd": (("-s", "--secure"), "chroots itself (-s)"),
    "rsync": (("--daemon",), "switches users and chroots itself (--daemon)"),
    "cvs": (("pserver",), "logs users in and switches to them itself (pserver)"),
}


@dataclass(frozen=True)
class Hardening:
    """The settings one service gets, and what the report says about them."""

    profile: str  # a key of PROFILES
    dynamic_user: bool  # DynamicUser=yes: User=/Group= are not written
    comment: str  # the line above the settings, saying why this much
    note: tuple[Severity, str] | None = None

    def lines(self, service: Service) -> list[str]:
        settings = PROFILES[self.profile]
        if self.dynamic_user and "DynamicUser=yes" not in settings:
            settings = ("DynamicUser=yes", *(s for s in settings
                                             if not s.startswith(_IMPLIED_BY_DYNAMIC_USER)))
        if self.profile in ("sandbox", "proxy") and service.umask is None:
            settings = (*settings, "UMask=0077")
        return [f"# {self.comment}", *settings] if settings else []


def dynamic_user_name(stem: str) -> str:
    """User= for a DynamicUser=yes unit named STEM. Without it systemd names the user after
    the unit, and if a static account of that name exists (ftp, tftp, git, uucp, rsync,
    ...) runs the service as that account instead: the prefix keeps the two apart."""
    name = "inetd-" + re.sub(r"[^A-Za-z0-9_-]", "-", stem)
    if len(name) > 31:  # systemd's longest user name
        import hashlib  # here: it loads OpenSSL, ~10 ms at every generator run

        name = "inetd-" + hashlib.sha1(stem.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return name


def needs_more(service: Service) -> str | None:
    """Why this program needs more than `strict` leaves it, or None."""
    names = {os.path.basename(service.server or "")}
    if service.argv:
        names.add(os.path.basename(service.argv[0]))
    for name in sorted(names):
        if name in NEEDS_MORE:
            return f"{name} {NEEDS_MORE[name]}"
        if name in _NEEDS_MORE_WITH:
            flags, why = _NEEDS_MORE_WITH[name]
            if any(_has_flag(arg, flags) for arg in service.argv[1:]):
                return f"{name} {why}"
    return None


def _has_flag(arg: str, flags: tuple[str, ...]) -> bool:
    if arg in flags:
        return True
    # a cluster of short options, such as -vs
    short = [f[1] for f in flags if len(f) == 2 and f[0] == "-"]
    return arg[:1] == "-" and arg[1:2] != "-" and arg[1:].isalpha() and \
        any(c in arg[1:] for c in short)


def runs_as_root(service: Service) -> bool:
    return service.user in (None, "", "root", "0")


def _may_be_dynamic(service: Service) -> bool:
    """A service running as nobody, with nothing that ties it to that account."""
    return service.user == "nobody" and service.group in (None, "nogroup", "nobody") \
        and not service.supplementary_groups


def choose(service: Service, mode: str, level: str, dynamic_user: bool = False) -> Hardening:
    """The hardening of one service rendered as `mode` (accept, stdin, internal, redirect)
    at `level` (one of LEVELS)."""
    if level not in LEVELS:
        raise ValueError(f"unknown hardening level {level!r}: expected {', '.join(LEVELS)}")
    if level == "none":
        return Hardening("none", False, "")
    if mode == "internal" and level != "basic":
        return Hardening("sandbox", True, "Hardening: sandbox, as inetd2systemd's own code "
                                          "needs only the sockets systemd passes")
    if mode == "redirect" and level != "basic":
        return Hardening("proxy", True, "Hardening: sandbox, as systemd-socket-proxyd needs "
                                        "only its sockets and the network")
    dynamic = dynamic_user and mode not in ("internal", "redirect") and _may_be_dynamic(service)
    if level == "basic":
        return Hardening("basic", dynamic, "Hardening (--harden=basic): only what no inetd "
                                           "service needs is taken away")
    why = needs_more(service)
    if why:
        return Hardening("basic", dynamic,
                         f"Hardening: basic only, as {why}, which strict would stop",
                         (Severity.INFO, f"hardened at the basic level only: {why}, which "
                                         "strict hardening would stop"))
    if level == "auto" and runs_as_root(service) and not dynamic:
        return Hardening("basic", False, "Hardening: basic, as the program runs as root")
    note = None
    if _may_be_dynamic(service) and not dynamic:
        note = (Severity.INFO, "runs as nobody, which other services share: --dynamic-user "
                               "gives it a user of its own (DynamicUser=yes)")
    return Hardening("strict", dynamic,
                     "Hardening: strict, as the program does not run as root"
                     if level == "auto" else "Hardening (--harden=strict)", note)
