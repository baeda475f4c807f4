"""Starting one server: its socket on fds 0, 1 and 2, its user, its argv, its environment.

The child gets what inetd gives it (inetd.c spawn(), xinetd child.c), and nothing of
the session that started the superserver:
- the connection (nowait) or the listening/datagram socket (wait) dup2'ed onto 0, 1, 2
  and nothing else: every descriptor the superserver opens is close-on-exec (PEP 446),
  and so is every one it inherited (seal_inherited_fds, at start);
- a session of its own (setsid), as both peers give: no controlling terminal, so a
  server running as nobody cannot push input into the terminal of a superserver run
  with --foreground (TIOCSTI), nor get its signals;
- every signal at its default disposition and none blocked: ignored signals survive
  exec, and a superserver started from a shell with `&` or nohup ignores SIGQUIT,
  SIGINT or SIGHUP;
- the configured user, group and supplementary groups (None: the user's own groups as
  initgroups() gives them; (): none, xinetd's default `groups = no`);
- argv exactly as configured, argv[0] included;
- the environment its peer gives (child_environment), never the starting login's.

How it starts matters for speed: os.posix_spawn is glibc's clone(CLONE_VFORK), which
does not copy the superserver's page tables; measured here it starts /bin/cat at about
twice the rate of os.fork()+exec. It cannot change user, nice, umask or rlimits, so
services that need those take the fork path. Running as root with `user = root`
needs no change and keeps the fast path. The vfork also suspends the superserver until
the child's exec has opened the program: a program on a network filesystem that hangs
would stall every service, where the peers' fork would stall only that child. Programs
on network filesystems therefore take the fork path too.

posix_spawn's setsid and a full setsigdef are done in the vfork'ed child: no measurable
CPU per connection here (parent and child CPU of 12 x 300 spawns of /bin/true, within
the noise of a loaded machine). glibc's posix_spawn leaves its own two reserved signals
(32 and 33, SIGCANCEL and SIGSETXID) ignored in the child, and Python cannot name them;
a glibc program installs its handlers for them before it needs them.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import resource
import signal
from dataclasses import dataclass

from ..errors import ConfigError
from ..model import Service

# Every signal back to its default: an ignored one would stay ignored across exec (Python
# ignores SIGPIPE and SIGXFSZ: a `cat` writing to a closed connection would spin on
# EPIPE instead of dying; a shell's `&` leaves SIGINT and SIGQUIT ignored).
_RESET_SIGNALS = tuple(sorted(set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}))

# Set by systemd or our own parent for us alone; a child must not believe them.
_PRIVATE_ENV = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET",
                "WATCHDOG_USEC", "WATCHDOG_PID")
# Who logged in and started the superserver: not the server's business, whatever user
# it runs as (a server running as nobody with HOME=/root).
_LOGIN_ENV = frozenset({"HOME", "USER", "LOGNAME", "SHELL", "MAIL"})
# Debian's openbsd-inetd discards these from its environment at start unless run with
# -E (discard_stupid_environment, from netkit), so its servers never see them; the
# entries are prefixes, as it matches them. Checked against the real daemon.
OPENBSD_INETD_DISCARDS = ("CVS", "DISPLAY=", "EDITOR=", "GROUP=", "HOME=", "IFS=", "LD_",
                          "LOGNAME=", "MAIL=", "PATH=", "PRINTER=", "PWD=", "SHELL=",
                          "SHLVL=", "SSH", "TERM", "TMP", "USER=", "VISUAL=")

# Environments kept per client address (REMOTE_HOST differs): bounded, not an LRU,
# since rebuilding one costs a dict copy.
_REMOTE_ENV_CACHE = 256

# Filesystems whose files can hang an open() for as long as a server is unreachable.
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "ceph", "glusterfs", "9p", "afs",
    "coda", "lustre", "gfs2", "ocfs2", "davfs", "fuse", "fuseblk",
})

_RLIMITS = {
    "AS": resource.RLIMIT_AS, "CPU": resource.RLIMIT_CPU, "DATA": resource.RLIMIT_DATA,
    "RSS": resource.RLIMIT_RSS, "STACK": resource.RLIMIT_STACK, "NOFILE": resource.RLIMIT_NOFILE,
}


@dataclass(frozen=True)
class Credentials:
    uid: int
    gid: int
    groups: tuple[int, ...]

    @classmethod
    def current(cls) -> "Credentials":
        return cls(os.geteuid(), os.getegid(), tuple(sorted(set(os.getgroups()))))

    def same_privileges(self, other: "Credentials") -> bool:
        """Equal as far as the kernel checks access: the primary group need not be
        repeated among the supplementary ones (root started with none vs initgroups)."""
        return (self.uid, self.gid) == (other.uid, other.gid) and \
            set(self.groups) - {self.gid} == set(other.groups) - {other.gid}


def resolve_credentials(service: Service) -> Credentials | None:
    """The user, group and supplementary groups the service runs as; None: as we are."""
    if service.user is None and service.group is None:
        return None
    where = (service.source.file, service.source.line)
    me = Credentials.current()
    uid, gid, user_name = me.uid, me.gid, None
    if service.user is not None:
        try:
            entry = pwd.getpwuid(int(service.user)) if service.user.isdigit() else pwd.getpwnam(service.user)
        except (KeyError, ValueError, OverflowError):
            # A number without a passwd entry too: never our own group in its place.
            # xinetd would run it as uid=gid=N, systemd refuses it (217/USER); the suite
            # refuses it in serve as convert and import do.
            raise ConfigError(f"unknown user {service.user!r} for service {service.id}: no "
                              "passwd entry (a number must have one too)", *where) from None
        uid, gid, user_name = entry.pw_uid, entry.pw_gid, entry.pw_name
    if service.group is not None:
        gid = _group_id(service.group, service, where)
    if service.supplementary_groups is None:
        groups = tuple(sorted(set(os.getgrouplist(user_name, gid)))) if user_name else (gid,)
    else:
        groups = tuple(sorted({_group_id(g, service, where) for g in service.supplementary_groups}))
    return Credentials(uid, gid, groups)


def _group_id(name: str, service: Service, where: tuple[str, int]) -> int:
    try:
        # a number must name a group too, as for systemd's Group= (216/GROUP otherwise)
        return grp.getgrgid(int(name)).gr_gid if name.isdigit() else grp.getgrnam(name).gr_gid
    except (KeyError, ValueError, OverflowError):
        raise ConfigError(f"unknown group {name!r} for service {service.id}", *where) from None


def base_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The superserver's environment, less what systemd or our parent meant for us alone."""
    env = dict(os.environ if environ is None else environ)
    for name in _PRIVATE_ENV:
        env.pop(name, None)
    return env


def child_environment(service: Service, base: dict[str, str]) -> dict[str, str]:
    """What a server finds in its environment, then `env` (xinetd.conf(5)) on top.

    With `passenv`: only the variables listed, from our environment (asked for by name,
    even TERM). Otherwise the environment a daemon started at boot would pass on: ours
    less the session that started us (TERM, SSH_*, OLDPWD, ... as daemonize removes
    them) and the login's identity (HOME, USER, LOGNAME, SHELL, MAIL); for inetd.conf
    services also less what openbsd-inetd discards (PATH, LD_*, ...), as it does.
    """
    from ..daemon.daemonize import SESSION_VARIABLES

    if service.passenv is not None:
        env = {name: base[name] for name in service.passenv if name in base}
    else:
        env = {name: value for name, value in base.items()
               if name not in SESSION_VARIABLES and name not in _LOGIN_ENV}
        if service.dialect == "inetd":
            env = {name: value for name, value in env.items()
                   if not f"{name}=".startswith(OPENBSD_INETD_DISCARDS)}
    env.update(service.env)
    return env


def seal_inherited_fds() -> None:
    """Mark every descriptor above 2 close-on-exec, so that what the superserver was
    started with (a shell's stray fds, a pipe of whoever ran it) reaches no server, as
    the peers close theirs at start. Sockets passed by systemd are kept: they are
    handed to servers through dup2 onto 0-2 only."""
    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        fds = range(3, min(soft if soft != resource.RLIM_INFINITY else 1 << 16, 1 << 16))
    for fd in fds:
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass  # the directory listing's own descriptor, already closed


class Launcher:
    """Everything needed to start one service's server, worked out once per (re)load."""

    __slots__ = ("service", "path", "argv", "env", "credentials", "_forks", "_remote_envs",
                 "_remote_host")

    def __init__(self, service: Service, base_env: dict[str, str],
                 mountinfo: str | None = None) -> None:
        """`mountinfo`: the mount table as read_mountinfo() gives it, read once for a whole
        (re)load by the caller; None reads it here."""
        if not service.server:
            raise ConfigError(f"service {service.id} has no server program",
                              service.source.file, service.source.line)
        self.service = service
        self.path = service.server
        self.argv = list(service.argv) or [os.path.basename(service.server)]
        self.env = child_environment(service, base_env)
        credentials = resolve_credentials(service)
        if credentials is not None and (credentials.same_privileges(Credentials.current())
                                        or os.geteuid() != 0):
            # Already who the child must be: keep the fast path. Not root: we could not
            # switch anyway, and xinetd too runs the server as itself then.
            credentials = None
        self.credentials = credentials
        self._remote_envs: dict[str, dict[str, str]] = {}
        # xinetd sets REMOTE_HOST (xinetd(8)); openbsd-inetd does not.
        self._remote_host = service.dialect == "xinetd"
        self._forks = (credentials is not None or service.nice is not None
                       or service.umask is not None or bool(service.rlimits)
                       or on_network_filesystem(self.path, read_mountinfo() if mountinfo is None
                                                else mountinfo))

    @property
    def forks(self) -> bool:
        """True when the server needs os.fork (user switch, nice, umask, rlimits) or
        lives on a network filesystem."""
        return self._forks

    def spawn(self, fd: int, remote: str | None = None) -> int:
        """Start the server with `fd` as its stdin, stdout and stderr; return its pid.

        Raises OSError when the program cannot be started (missing, not executable):
        posix_spawn reports exec failures to the parent, the fork path exits 127.
        """
        env = self.env
        if remote is not None and self._remote_host:
            # Clients come back: reuse the environment built for this address instead
            # of copying the whole environment for every connection.
            env = self._remote_envs.get(remote)
            if env is None:
                if len(self._remote_envs) >= _REMOTE_ENV_CACHE:
                    self._remote_envs.clear()
                env = self._remote_envs[remote] = {**self.env, "REMOTE_HOST": remote}
        if self._forks:
            return self._fork_exec(fd, env)
        return os.posix_spawn(
            self.path, self.argv, env,
            file_actions=((os.POSIX_SPAWN_DUP2, fd, 0), (os.POSIX_SPAWN_DUP2, fd, 1),
                          (os.POSIX_SPAWN_DUP2, fd, 2)),
            setsid=True, setsigmask=(), setsigdef=_RESET_SIGNALS)

    def _fork_exec(self, fd: int, env: dict[str, str]) -> int:
        pid = os.fork()
        if pid:
            return pid
        # The child: nothing here may return into the superserver's loop.
        try:
            for target in (0, 1, 2):
                os.dup2(fd, target)  # dup2 clears close-on-exec on the copy
            os.setsid()
            for signum in _RESET_SIGNALS:
                try:
                    signal.signal(signum, signal.SIG_DFL)
                except (OSError, ValueError):
                    pass
            signal.pthread_sigmask(signal.SIG_SETMASK, ())
            service = self.service
            for name, value in service.rlimits:
                limit = resource.RLIM_INFINITY if value is None else value
                resource.setrlimit(_RLIMITS[name], (limit, limit))
            if service.umask is not None:
                os.umask(service.umask)
            if service.nice is not None:
                os.nice(service.nice)
            credentials = self.credentials
            if credentials is not None:
                os.setgroups(list(credentials.groups))
                os.setgid(credentials.gid)
                os.setuid(credentials.uid)
            os.execve(self.path, self.argv, env)
        except BaseException:
            pass
        os._exit(127)


def read_mountinfo() -> str:
    """This process's mount table (proc(5)); empty where there is none to read."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def on_network_filesystem(path: str, mountinfo: str) -> bool:
    """Whether `path` lies on a network or FUSE filesystem, by the mount table text. The
    path itself is not touched (no stat, no symbolic links followed): on a hung
    filesystem that would hang this check."""
    kind = filesystem_type(os.path.normpath(path), mountinfo)
    return kind is not None and (kind in NETWORK_FILESYSTEMS or kind.startswith("fuse."))


def filesystem_type(path: str, mountinfo: str) -> str | None:
    """The type of the filesystem mounted at the longest mount point above `path`; the
    last such mount wins, as a later mount on the same point hides the earlier one
    (proc(5): mountinfo; spaces in mount points are written as \\040)."""
    best, kind = -1, None
    for line in mountinfo.splitlines():
        head, separator, tail = line.partition(" - ")
        fields = head.split()
        if not separator or len(fields) < 5 or not tail:
            continue
        point = _unescape_mount_point(fields[4])
        inside = path == point or path.startswith(point if point.endswith("/") else point + "/")
        if inside and len(point) >= best:
            best, kind = len(point), tail.split()[0]
    return kind


def _unescape_mount_point(text: str) -> str:
    if "\\" not in text:
        return text
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), text)
