"""What the host the units are for says about the services: whether a program runs and
an account exists there (convert's check_host leaves out a service that lacks one,
import's preflight warns), which supplementary groups the users have, and whether its
tcp_wrappers rules (hosts.allow, hosts.deny) can apply to a service that went through
them. `root` is that host's root directory ("/" for
this machine, whose name service is asked too); None means the host is not known
(convert --no-host-check).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from ..config import open_regular
from ..errors import ConfigError
from ..model import Code, Configuration, Finding, Service, Severity


def program_runs(server: str, root: str | Path = "/") -> bool:
    """Whether the server program is a file the host can execute (under root)."""
    path = Path(root) / server.lstrip("/")
    return path.is_file() and os.access(path, os.X_OK)


def account_check(root: str, database: str) -> Callable[[str], bool]:
    """name (or number) -> whether the account exists in ROOT/etc/passwd (or group); on
    this machine NSS is asked too (LDAP, sssd, systemd-userdb accounts exist as well).
    With no such file under a root, nothing can be checked and every name passes."""
    live = Path(root).resolve() == Path("/")
    try:
        text = (Path(root) / "etc" / database).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = None
    if text is None and not live:
        return lambda name: True
    names = account_keys(text or "")
    if not live:
        return names.__contains__
    import grp
    import pwd
    by_name, by_id = (pwd.getpwnam, pwd.getpwuid) if database == "passwd" else \
        (grp.getgrnam, grp.getgrgid)

    def exists(name: str) -> bool:
        if name in names:
            return True
        try:
            by_id(int(name)) if name.isascii() and name.isdigit() else by_name(name)
        except (KeyError, ValueError, OverflowError):
            return False
        return True
    return exists


def account_keys(text: str) -> set[str]:
    """The names and the numeric ids (third field) of a passwd or group file."""
    keys: set[str] = set()
    for line in text.splitlines():
        if line[:1] == "#" or not line:
            continue
        fields = line.split(":")
        keys.add(fields[0])
        if len(fields) > 2 and fields[2].isdigit():
            keys.add(fields[2])
    return keys


def settle_groups(configuration: Configuration, root: str = "/") -> Configuration:
    """xinetd's `groups = no` (its default) starts a server with no supplementary groups;
    systemd always gives the user its own. Where the user has none on the host, the two
    are the same: the service is kept as "the user's own groups" (None), and the writer
    has nothing to report."""
    has_groups = _supplementary_check(root)
    services = tuple(replace(s, supplementary_groups=None)
                     if s.supplementary_groups == () and not has_groups(s.user or "root") else s
                     for s in configuration.services)
    return replace(configuration, services=services)


def _supplementary_check(root: str) -> Callable[[str], bool]:
    """user -> whether it may have supplementary groups on the host: True unless known
    not to (an unknown user, or a root without /etc/passwd and /etc/group, may)."""
    live = Path(root).resolve() == Path("/")
    passwd = _table(root, "passwd")
    groups = _table(root, "group")
    primary = {f[0]: f[3] for f in passwd if len(f) > 3}
    by_uid = {f[2]: f[0] for f in passwd if len(f) > 2}
    members: dict[str, set[str]] = {}
    for f in groups:
        if len(f) > 3:
            for name in filter(None, f[3].split(",")):
                members.setdefault(name, set()).add(f[2])

    def may_have(user: str) -> bool:
        if live:
            import pwd
            try:
                entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
                return bool(set(os.getgrouplist(entry.pw_name, entry.pw_gid)) - {entry.pw_gid})
            except (KeyError, OSError, ValueError, OverflowError):
                return True
        name = by_uid.get(user, user) if user.isdigit() else user
        if name not in primary or not groups:
            return True
        return bool(members.get(name, set()) - {primary[name]})
    return may_have


def _table(root: str, database: str) -> list[list[str]]:
    try:
        text = (Path(root) / "etc" / database).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line.split(":") for line in text.splitlines() if line and line[0] != "#"]


def tcp_wrappers_findings(services: Sequence[Service], root: str | None) -> list[Finding]:
    """What the report says about services that went through tcpd or xinetd's libwrap:
    a WARNING for each one the host's hosts.allow/hosts.deny hold a rule for (systemd does
    not read them), and one INFO for all the others (nothing is lost). When the rules
    cannot be read, or the host is not known, one WARNING for the run."""
    wrapped = [s for s in services if s.tcp_wrapped]
    if not wrapped:
        return []
    if root is None:
        return [_unchecked(wrapped, "the rules of the host the units are for were not read "
                                    "(--no-host-check)")]
    etc = Path(root) / "etc"
    wrappers = None
    # Most hosts have neither file, or only libwrap's comment-only templates: then no
    # rule applies, and the reader (with the address arithmetic under it, a fifth of the
    # generator's time at boot) stays unloaded.
    if any(may_hold_rules(etc / name) for name in ("hosts.allow", "hosts.deny")):
        from ..config.tcpwrappers import read_tcpwrappers
        try:
            wrappers = read_tcpwrappers(etc)
        except (ConfigError, OSError, ValueError) as exc:
            return [_unchecked(wrapped, f"{etc}/hosts.allow and hosts.deny could not be "
                                        f"read ({exc})")]
    findings: list[Finding] = []
    unrestricted: list[Service] = []
    rules_for: dict[str, tuple] = {}
    for service in wrapped:
        daemon = _daemon(service)
        if daemon not in rules_for:
            rules_for[daemon] = () if wrappers is None else _rules(wrappers, daemon)
        rules = rules_for[daemon]
        if rules:
            carried = ("`inetd2systemd import` carries them over as IPAddressAllow="
                       if not service.accepts_itself else
                       "the server accepts its own connections, so they were asked about a "
                       "client they could not name: `inetd2systemd import` carries their "
                       "verdict over, everyone or nobody")
            findings.append(Finding(service.source, Severity.WARNING,
                                    _checked_by(service) + f", and {_where(rules)} can apply to "
                                    "it: systemd does not read those files, so the socket "
                                    f"admits every client they refused ({carried})", service.id,
                                    code=Code.TCP_WRAPPERS))
        else:
            unrestricted.append(service)
    if unrestricted:
        n = len(unrestricted)
        findings.append(Finding(unrestricted[0].source, Severity.INFO,
                                f"{n} service{'s' * (n != 1)} went through tcp_wrappers "
                                f"({_names(unrestricted)}), and no rule in {etc}/hosts.allow or "
                                "hosts.deny applies to them: nothing is lost (systemd will "
                                "not read rules added there later)",
                                code=Code.TCP_WRAPPERS_OPEN))
    return findings


def may_hold_rules(path: Path) -> bool:
    """False only when `path` is missing, or every line is blank or starts with `#` in
    its first column (libwrap's comments: an indented `#` is not one; a continued line
    starts with its first physical line, so the join cannot make a rule of comments).
    Anything else, unreadable included, goes to the reader."""
    try:
        text, _ = open_regular(path)  # never waits on a FIFO
    except FileNotFoundError:
        return os.path.islink(path)  # dangling: the reader reports it
    except OSError:
        return True
    return any(line[:1] != "#" and line.strip(" \t\r\n") for line in text.split("\n"))


def _daemon(service: Service) -> str:
    return service.libwrap_name or service.name


def _rules(wrappers, daemon: str) -> tuple:
    """The rules that can apply to `daemon` (the reader decides, as libwrap would)."""
    if not wrappers:
        return ()
    try:
        return tuple(wrappers.compile(daemon).rules)
    except (ConfigError, ValueError):
        return tuple(wrappers.rules)  # cannot tell: every rule may apply


def _checked_by(service: Service) -> str:
    if service.dialect == "xinetd":
        return (f"xinetd checked each client against /etc/hosts.allow and /etc/hosts.deny "
                f"(libwrap, daemon name {_daemon(service)!r})")
    return (f"tcpd checked each client against /etc/hosts.allow and /etc/hosts.deny (daemon "
            f"name {_daemon(service)!r})")


def _where(rules: Sequence) -> str:
    places = [str(rule.source) for rule in rules]
    shown = ", ".join(places[:3]) + (f" and {len(places) - 3} more" if len(places) > 3 else "")
    return f"the rule{'s' * (len(places) != 1)} at {shown}"


def _names(services: Sequence[Service]) -> str:
    daemons = list(dict.fromkeys(_daemon(s) for s in services))
    return "daemon " + ", ".join(daemons[:5]) + (f" and {len(daemons) - 5} more"
                                                 if len(daemons) > 5 else "")


def _unchecked(wrapped: Sequence[Service], why: str) -> Finding:
    n = len(wrapped)
    return Finding(wrapped[0].source, Severity.WARNING,
                   f"{n} service{'s' * (n != 1)} went through tcp_wrappers ({_names(wrapped)}): "
                   f"{why}; if that host's hosts.allow or hosts.deny hold rules for them, "
                   "systemd will not apply them (`inetd2systemd import` carries them over as "
                   "IPAddressAllow=)", code=Code.TCP_WRAPPERS_UNCHECKED)
