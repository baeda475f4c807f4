"""The one command, `inetd2systemd`, and its sub-commands.

Each sub-command lives in the module that does its job and exposes two functions:
`configure(parser)` adds its arguments, `run(args) -> int` does the work. Only the
chosen sub-command's module is imported, so `inetd2systemd internal echo` does not pay
for the converter, nor `convert` for the superserver.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import EXIT_BAD_INPUT, ConfigError

# name -> (module, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "convert": ("inetd2systemd.convert.cli", "inetd.conf / xinetd configuration -> systemd units"),
    "import": ("inetd2systemd.migrate.cli", "convert a whole legacy host's /etc tree, with a report"),
    "generator": ("inetd2systemd.generator.cli", "keep inetd.conf/xinetd.conf the source: "
                                                 "units made at every boot and reload"),
    "serve": ("inetd2systemd.superserver.cli", "run as the superserver (hosts without systemd)"),
    "internal": ("inetd2systemd.runtime.internal_services", "serve an inetd internal service (echo, ...)"),
    "syslogd": ("inetd2systemd.syslog.cli", "syslog listener: journal bridge and syslog.conf rules"),
    "daemonize": ("inetd2systemd.daemon.cli", "run a program as a proper daemon (or not, under systemd)"),
}

def _top_parser() -> argparse.ArgumentParser:
    from .commandline import epilog
    from .errors import EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK

    summary = "\n".join(f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="inetd2systemd",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Classic superserver and syslog setups, carried into systemd.",
        epilog=f"commands:\n{summary}\n\nRun 'inetd2systemd COMMAND --help' for each.\n\n" + epilog(
            [("what this host's inetd.conf and xinetd.conf become",
              "inetd2systemd convert --dry-run -o /tmp/units"),
             ("migrate the whole host, with a report and a way back",
              "inetd2systemd import / -o /root/migration")],
            {EXIT_OK: "everything was carried over, or the command did what was asked",
             EXIT_INCOMPLETE: "something was not carried over exactly, or a check found a "
                              "difference (the findings are on stderr)",
             EXIT_BAD_INPUT: "a configuration error (file:line:col) or a bad command line; "
                             "nothing written",
             EXIT_FAILED: "writing, installing, starting or binding failed, or replacing "
                          "what inetd2systemd did not write was refused (without --force)"},
            "Every command exits with these; daemonize keeps start-stop-daemon's codes "
            "(see its --help)."),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND",
                        help="one of the commands below")
    return parser


def command_parser(name: str, parser: argparse.ArgumentParser | None = None):
    """(the parser of `inetd2systemd NAME`, the module that runs it). The man pages and
    the shell completion (scripts/man-and-completion.py) are made from the same."""
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(module_name)
    if parser is None:
        parser = argparse.ArgumentParser(prog=f"inetd2systemd {name}", description=help_,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
    module.configure(parser)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("-") or argv[0] not in COMMANDS:
        _top_parser().parse_args(argv[:1] or ["--help"])
        return EXIT_BAD_INPUT  # parse_args exits for everything but a known command
    name, rest = argv[0], argv[1:]
    parser, module = command_parser(name)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except ConfigError as exc:
        print(f"inetd2systemd {name}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
