"""`inetd2systemd serve`: the suite as the superserver, for hosts without systemd.

    inetd2systemd serve [-c PATH ...] [--format inetd|xinetd] [--flavor openbsd]
                        [--services FILE] [--foreground] [--pidfile FILE]

Reads the same inetd.conf / xinetd files as `convert` (config.load) and serves them.
Without --foreground it detaches as a classic daemon (the daemon package) and logs to syslog;
with it, it stays attached and logs to stderr. Under systemd (LISTEN_FDS, set by the
units `convert --engine superserver` writes) it takes its listening sockets from the
manager, one FileDescriptorName= per service id, and never forks away.

The configuration is read once before detaching, so a bad file is reported on the
terminal as file:line with exit status 2 and nothing starts.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..commandline import epilog
from ..errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from ..errors import ConfigError
from ..model import Configuration

DEFAULT_PATHS = ("/etc/inetd.conf", "/etc/xinetd.conf")

EPILOG = epilog(
    [("replace openbsd-inetd and xinetd on a host without systemd",
      "inetd2systemd serve -c /etc/inetd.conf -c /etc/xinetd.conf --pidfile /run/i2s.pid"),
     ("read the configuration again after an edit (unchanged services keep their sockets)",
      "kill -HUP \"$(cat /run/i2s.pid)\""),
     ("stop it", "inetd2systemd daemonize --stop --pidfile /run/i2s.pid --retry 10")],
    {EXIT_OK: "started (detached), or stopped cleanly",
     EXIT_BAD_INPUT: "a bad configuration (file:line:col) or command line; nothing started",
     EXIT_FAILED: "the pidfile is held by a running superserver or cannot be written, or "
                  "detaching failed (a service whose socket cannot be bound is logged and "
                  "left out, as inetd does)"})


def configure(parser: argparse.ArgumentParser) -> None:
    from ..config.inetd import FLAVORS  # the dialects the reader knows
    parser.epilog = EPILOG
    parser.add_argument("-c", "--config", dest="paths", action="append", metavar="PATH",
                        help="inetd.conf, xinetd.conf or an xinetd.d directory; repeatable "
                             "(default: those of /etc/inetd.conf and /etc/xinetd.conf that exist)")
    parser.add_argument("--format", choices=("inetd", "xinetd"),
                        help="read every PATH as this format instead of guessing from content")
    parser.add_argument("--flavor", default="openbsd", choices=FLAVORS,
                        help="inetd.conf dialect (default: openbsd, Debian's openbsd-inetd)")
    parser.add_argument("--services", metavar="FILE",
                        help="port names from this file instead of /etc/services (as convert)")
    parser.add_argument("--foreground", action="store_true",
                        help="stay attached and log to stderr instead of syslog")
    parser.add_argument("--pidfile", metavar="FILE", help="write and lock a pidfile")


def make_loader(args: argparse.Namespace):
    paths = [os.path.abspath(p) for p in (args.paths or [p for p in DEFAULT_PATHS if os.path.exists(p)])]
    if not paths:
        raise ConfigError("no configuration: give -c PATH (neither /etc/inetd.conf nor "
                          "/etc/xinetd.conf exists)")

    services_path = os.path.abspath(args.services) if args.services else None

    def load() -> Configuration:
        from ..config import load as load_configuration
        from ..config.trust import check_trusted
        # A file another user can change decides what runs as root: refused before it is
        # read, at start (exit 2) as at a reload (the running configuration stays).
        for path in paths:
            check_trusted(path)
        services = None
        if services_path is not None:
            from ..config.services import load_services
            check_trusted(services_path)
            services = load_services(services_path)  # re-read on reload, like the rest
        configuration = load_configuration(paths, format=args.format, flavor=args.flavor,
                                           services=services)
        for included in sorted({s.source.file for s in configuration.services} - set(paths)):
            check_trusted(included)  # xinetd's include and includedir files
        return configuration

    return load


def run(args: argparse.Namespace) -> int:
    load = make_loader(args)
    first = load()  # ConfigError here: cli.main prints file:line, exit 2, nothing started
    loads = iter([first])

    def load_once_then_reread() -> Configuration:
        return next(loads, None) or load()

    if args.foreground:
        return _serve_foreground(args, load_once_then_reread)
    return _serve_daemon(args, load_once_then_reread)


def _serve_foreground(args: argparse.Namespace, load) -> int:
    from ..daemon import pidfile as pidfiles
    from .log import Log

    lock = None
    if args.pidfile:
        try:
            lock = pidfiles.acquire(args.pidfile)
        except pidfiles.AlreadyRunning as exc:
            print(f"inetd2systemd serve: {exc}", file=sys.stderr)
            return EXIT_FAILED
        except OSError as exc:
            print(f"inetd2systemd serve: {args.pidfile}: {exc.strerror}", file=sys.stderr)
            return EXIT_FAILED
    try:
        return _serve(load, Log(foreground=True))
    finally:
        if lock is not None:
            lock.release()


def _serve_daemon(args: argparse.Namespace, load) -> int:
    from ..daemon import Daemon, DaemonError, DaemonOptions
    from .log import IDENT, Log

    options = DaemonOptions(pidfile=os.path.abspath(args.pidfile) if args.pidfile else None,
                            mode="auto", ident=IDENT)
    try:
        with Daemon(options, wait_ready=True) as daemon:
            log = Log(foreground=False)
            return _serve(load, log, ready=daemon.ready)
    except DaemonError as exc:
        print(f"inetd2systemd serve: {exc}", file=sys.stderr)
        # daemonize's own codes (1: already running) are a failed start here, as in the
        # foreground: one exit-status table for every command.
        return EXIT_BAD_INPUT if exc.status == EXIT_BAD_INPUT else EXIT_FAILED


def _serve(load, log, ready=None) -> int:
    from .arbiter import Arbiter

    inherited = None
    notifier = None
    if os.environ.get("LISTEN_PID") == str(os.getpid()):
        from ..runtime.activation import listen_fds_with_names
        inherited = listen_fds_with_names(stdin=False)
    from .spawn import seal_inherited_fds
    seal_inherited_fds()  # what we were started with reaches no server
    if os.environ.get("NOTIFY_SOCKET"):
        from ..runtime.notify import Notifier
        notifier = Notifier(unset_environment=True)
    arbiter = Arbiter(load, log, inherited=inherited, notifier=notifier)
    try:
        arbiter.start()
    except ConfigError as exc:
        log.error(str(exc))
        log.flush()
        print(f"inetd2systemd serve: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if ready is not None:
        ready()
    return arbiter.run() or EXIT_OK
