"""`inetd2systemd daemonize`: the command line over daemonize.py and control.py."""

from __future__ import annotations

import argparse
import signal
import sys

from ..commandline import add_quiet
from ..errors import EXIT_BAD_INPUT, EXIT_OK
from .daemonize import DEFAULT_READY_WINDOW, DaemonError, DaemonOptions, daemonize, print_error

EPILOG = f"""\
examples:
  start tftpd as a daemon, as user tftp, logging its output:
    inetd2systemd daemonize --pidfile /run/tftpd.pid --user tftp \\
        --stdout /var/log/tftpd.log --stderr /var/log/tftpd.log -- /usr/sbin/in.tftpd -L
  is it running? (start-stop-daemon's --status codes)
    inetd2systemd daemonize --pidfile /run/tftpd.pid --status
  stop it: SIGTERM, up to 10 s, then SIGKILL, up to 10 s more
    inetd2systemd daemonize --pidfile /run/tftpd.pid --stop --retry 10
  in a Type=forking unit with PIDFile=/run/tftpd.pid:
    ExecStart=inetd2systemd daemonize --detach --pidfile /run/tftpd.pid -- /usr/sbin/in.tftpd -L

exit status, starting (daemonize keeps start-stop-daemon's and the shell's codes, the
one exception to the table every other command shares):
  0    started: the program runs (its exec succeeded, and it did not exit within
       --ready-window, {DEFAULT_READY_WINDOW:g} s by default)
  1    already running: the pidfile is locked by a live daemon
  2    bad input: a bad option, an unknown user or group
  3    a set-up step failed (directory, output file, pidfile, user switch), or the
       program exited within --ready-window (its status is in the message)
  126  the program cannot be executed
  127  the program was not found
exit status, --status (start-stop-daemon's, the LSB codes):
  0 running   1 not running, the pidfile remains   3 not running   4 cannot tell
exit status, --stop (start-stop-daemon's):
  0 signalled (with --retry: and it exited)   1 nothing to stop (0 with --oknodo)
  2 still running at the end of the --retry schedule   3 any other error
  (a bad command line is 2, as for every command)"""


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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 3600 seconds")
    return value


def _signal(text: str) -> int:
    from .control import parse_signal
    try:
        return parse_signal(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run PROGRAM as a daemon: every step of daemon(7), a locked pidfile, and an exit "
        "status that says whether it really started. Under systemd (NOTIFY_SOCKET or "
        "INVOCATION_ID set) it does not detach: it runs PROGRAM in the unit and sends "
        "READY=1 and MAINPID= once PROGRAM is executing. With --status or --stop it "
        "asks about, or stops, the daemon holding --pidfile, as start-stop-daemon does.")
    parser.epilog = EPILOG
    command = parser.add_mutually_exclusive_group()
    command.add_argument("--status", dest="command", action="store_const", const="status",
                         help="say whether the daemon holding --pidfile runs (no PROGRAM)")
    command.add_argument("--stop", dest="command", action="store_const", const="stop",
                         help="signal the daemon holding --pidfile (no PROGRAM); a stale "
                              "pidfile is removed")
    parser.set_defaults(command="start")
    parser.add_argument("--pidfile", metavar="FILE", help="write and lock this pidfile")
    parser.add_argument("--user", metavar="USER", help="run as USER (with its groups)")
    parser.add_argument("--group", metavar="GROUP", help="run with GROUP as primary group")
    parser.add_argument("--chdir", metavar="DIR", default="/", help="working directory (/)")
    parser.add_argument("--umask", metavar="MASK", type=_umask, default=0o022,
                        help="octal file mode creation mask (022)")
    parser.add_argument("--stdout", metavar="FILE",
                        help="append standard output to FILE (a regular file; links refused)")
    parser.add_argument("--stderr", metavar="FILE",
                        help="append standard error to FILE (a regular file; links refused)")
    parser.add_argument("--env", metavar="K=V", type=_assignment, action="append", default=[],
                        help="set a variable in the program's environment (repeatable)")
    parser.add_argument("--ident", metavar="NAME", help="syslog identity (program name)")
    parser.add_argument("--ready-window", metavar="SECONDS", type=_seconds,
                        default=DEFAULT_READY_WINDOW,
                        help="a program that exits this soon after starting has failed "
                             f"(default {DEFAULT_READY_WINDOW:g}; 0: only the exec counts)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--detach", dest="mode", action="store_const", const="detach",
                     help="always detach, even under systemd (for Type=forking units)")
    how.add_argument("--foreground", dest="mode", action="store_const", const="foreground",
                     help="never detach")
    parser.set_defaults(mode="auto")
    parser.add_argument("--signal", metavar="SIG", type=_signal, default=int(signal.SIGTERM),
                        help="with --stop: the signal to send (TERM)")
    parser.add_argument("--retry", metavar="TIMEOUT|SCHEDULE",
                        help="with --stop: wait for the daemon to exit; TIMEOUT means "
                             "SIG/TIMEOUT/KILL/TIMEOUT, or a schedule such as TERM/30/KILL/5")
    parser.add_argument("--oknodo", action="store_true",
                        help="with --stop: exit 0, not 1, when nothing runs")
    add_quiet(parser, "with --status or --stop")
    parser.add_argument("program", nargs=argparse.REMAINDER, metavar="-- PROGRAM ARGS",
                        help="the program to run and its arguments")


def run(args: argparse.Namespace) -> int:
    argv = list(args.program)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if args.command != "start":
        return _control(args, argv)
    if not argv:
        print_error("no program given (inetd2systemd daemonize [OPTIONS] -- PROGRAM ARGS)")
        return EXIT_BAD_INPUT
    options = DaemonOptions(pidfile=args.pidfile, user=args.user, group=args.group,
                            chdir=args.chdir, umask=args.umask, stdout=args.stdout,
                            stderr=args.stderr, env=dict(args.env), mode=args.mode,
                            ident=args.ident, ready_window=args.ready_window)
    try:
        daemonize(argv, options)
    except DaemonError as exc:
        print_error(str(exc))
        return exc.status
    return EXIT_OK


def _control(args: argparse.Namespace, argv: list[str]) -> int:
    from . import control

    if argv:
        print_error(f"--{args.command} takes no program")
        return EXIT_BAD_INPUT
    if not args.pidfile:
        print_error(f"--{args.command} needs --pidfile")
        return EXIT_BAD_INPUT
    if args.command == "status":
        outcome = control.status(args.pidfile)
    else:
        try:
            schedule = control.parse_schedule(args.retry, args.signal) if args.retry else None
        except ValueError as exc:
            print_error(f"--retry: {exc}")
            return EXIT_BAD_INPUT
        outcome = control.stop(args.pidfile, signum=args.signal, schedule=schedule,
                               oknodo=args.oknodo)
    if not args.quiet:
        print(outcome.message, file=sys.stderr if outcome.failed else sys.stdout)
    return outcome.status
