"""What the commands' command lines share: the options that mean the same wherever they
appear, and the end of every --help (examples, then the exit statuses).

Each helper adds the option with the same spelling and the same first words of help,
followed by what it acts on in that command, and marks the action as shared (the test
of the command line checks that no command spells one of these by hand).
"""

from __future__ import annotations

import argparse
import textwrap

from .errors import EXIT_MEANINGS

WIDTH = 88  # the epilog is kept as written (RawDescriptionHelpFormatter)


def _shared(action: argparse.Action) -> argparse.Action:
    action.shared = True  # type: ignore[attr-defined]
    return action


def add_force(parser, what: str) -> argparse.Action:
    return _shared(parser.add_argument(
        "-f", "--force", action="store_true",
        help=f"replace what inetd2systemd would otherwise refuse to (exit 3): {what}"))


def add_dry_run(parser, what: str) -> argparse.Action:
    return _shared(parser.add_argument(
        "-n", "--dry-run", action="store_true",
        help=f"change nothing, say what would be done: {what}"))


def add_json(parser, what: str) -> argparse.Action:
    return _shared(parser.add_argument(
        "--json", action="store_true", help=f"print the result as JSON on stdout: {what}"))


def add_verbose(parser, what: str) -> argparse.Action:
    return _shared(parser.add_argument(
        "-v", "--verbose", action="store_true", help=f"say more: {what}"))


def add_quiet(parser, what: str) -> argparse.Action:
    return _shared(parser.add_argument(
        "-q", "--quiet", action="store_true",
        help=f"print nothing, the exit status says it: {what}"))


def add_root(parser, what: str) -> argparse.Action:
    return _shared(parser.add_argument(
        "--root", metavar="DIR", default="/",
        help=f"work on the host's tree under DIR instead of / (other than /, no systemctl is "
             f"run): {what}"))


def epilog(examples: list[tuple[str, str]], exit_status: dict[int, str], notes: str = "") -> str:
    """The end of a command's --help. examples: (what it does, the command line);
    exit_status: code -> this command's case of it (the codes of errors.EXIT_MEANINGS)."""
    lines = ["examples:"]
    for what, command in examples:  # no `what`: the line goes on the example above
        lines += [f"  {what}:"] * bool(what) + [f"    {command}"]
    lines += ["", "exit status:"]
    for code, case in exit_status.items():
        lines += textwrap.wrap(f"{code}  {EXIT_MEANINGS[code]}: {case}", WIDTH,
                               initial_indent="  ", subsequent_indent="     ")
    if notes:
        lines += ["", notes.strip("\n")]
    return "\n".join(lines) + "\n"
