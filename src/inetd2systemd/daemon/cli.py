"""`inetd2systemd daemonize`: the command line over daemonize.py."""

from __future__ import annotations

import argparse

from ..errors import EXIT_BAD_INPUT, EXIT_OK
from .daemonize import DaemonError, DaemonOptions, daemonize, print_error


def _umask(text: str) -> int:
    try:
        value = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an octal umask") from None
    if not 0 <= value <= 0o777:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 000 and 777")
    return value


def _assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run PROGRAM as a daemon: every step of daemon(7), a locked pidfile, and an exit "
        "status that says whether it really started. Under systemd (NOTIFY_SOCKET or "
        "INVOCATION_ID set) it does not detach: it runs PROGRAM in the unit and sends "
        "READY=1 and MAINPID= once PROGRAM is executing.")
    parser.epilog = ("exit status: 0 started, 1 already running, 2 bad input, 3 a set-up "
                     "step failed, 126 cannot execute, 127 program not found")
    parser.add_argument("--pidfile", metavar="FILE", help="write and lock this pidfile")
    parser.add_argument("--user", metavar="USER", help="run as USER (with its groups)")
    parser.add_argument("--group", metavar="GROUP", help="run with GROUP as primary group")
    parser.add_argument("--chdir", metavar="DIR", default="/", help="working directory (/)")
    parser.add_argument("--umask", metavar="MASK", type=_umask, default=0o022,
                        help="octal file mode creation mask (022)")
    parser.add_argument("--stdout", metavar="FILE", help="append standard output to FILE")
    parser.add_argument("--stderr", metavar="FILE", help="append standard error to FILE")
    parser.add_argument("--env", metavar="K=V", type=_assignment, action="append", default=[],
                        help="set a variable in the program's environment (repeatable)")
    parser.add_argument("--ident", metavar="NAME", help="syslog identity (program name)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--detach", dest="mode", action="store_const", const="detach",
                     help="always detach, even under systemd (for Type=forking units)")
    how.add_argument("--foreground", dest="mode", action="store_const", const="foreground",
                     help="never detach")
    parser.set_defaults(mode="auto")
    parser.add_argument("program", nargs=argparse.REMAINDER, metavar="-- PROGRAM ARGS",
                        help="the program to run and its arguments")


def run(args: argparse.Namespace) -> int:
    argv = list(args.program)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print_error("no program given (inetd2systemd daemonize [OPTIONS] -- PROGRAM ARGS)")
        return EXIT_BAD_INPUT
    options = DaemonOptions(pidfile=args.pidfile, user=args.user, group=args.group,
                            chdir=args.chdir, umask=args.umask, stdout=args.stdout,
                            stderr=args.stderr, env=dict(args.env), mode=args.mode,
                            ident=args.ident)
    try:
        daemonize(argv, options)
    except DaemonError as exc:
        print_error(str(exc))
        return exc.status
    return EXIT_OK
