#!/usr/bin/env python3
"""Make the manual pages (man/) and the bash and zsh completion (completion/) from the
command line's own argparse definitions.

    .venv/bin/python scripts/man-and-completion.py              # rewrite them in the checkout
    .venv/bin/python scripts/man-and-completion.py --output DIR # write them under DIR instead

Each page: argparse-manpage renders NAME, SYNOPSIS and the options from the parser that
`inetd2systemd COMMAND` parses with; the written sections (DESCRIPTION, EXIT STATUS,
FILES, EXAMPLES, SEE ALSO, ...) come from man/include/PAGE.roff, in argparse-manpage's
include format (`[SECTION]` then roff). The completion: shtab, over one parser holding
every command, with file and directory arguments marked by their metavar or name.

The results are committed, not made at build time: a Debian build runs offline with
bookworm's own packages, whose argparse-manpage (1.2) and shtab (1.5) are older and
render differently, and a pip build from the sdist should need nothing but setuptools.
tests/test_packaging_docs.py makes them again and checks that the bytes are the same, so
a changed option that was not regenerated fails the suite.
"""

from __future__ import annotations

import argparse
import os
import sys
from email.utils import parsedate_to_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# argparse wraps help to the terminal's width: the same bytes wherever they are made.
os.environ["COLUMNS"] = "80"
sys.path.insert(0, str(ROOT / "src"))

import shtab  # noqa: E402
from argparse_manpage.manpage import Manpage  # noqa: E402

from inetd2systemd import __version__  # noqa: E402
from inetd2systemd.cli import COMMANDS, _top_parser, command_parser  # noqa: E402

# Section 1 for what any user runs, 8 for what administers the system.
SECTIONS = {"convert": 1, "import": 8, "generator": 8, "serve": 8, "internal": 8,
            "syslogd": 8, "daemonize": 8}
MANUAL = {1: "User Commands", 8: "System Administration"}
# man-pages(7)'s order for the sections that follow the options.
ORDER = ("EXIT STATUS", "ENVIRONMENT", "FILES", "NOTES", "EXAMPLES", "SEE ALSO")

# What a shell completes for an argument: files, or directories (shtab's markers).
DIRECTORY_METAVARS = {"DIR", "ROOT"}
FILE_METAVARS = {"FILE", "PATH", "PEM", "JSON"}
DIRECTORY_DESTS = {"root", "output_dir", "target_root", "chdir"}
FILE_DESTS = {"probes", "program"}


def page_name(command: str | None) -> str:
    return f"inetd2systemd-{command}" if command else "inetd2systemd"


def release_date() -> str:
    """The newest debian/changelog entry's date: a page changes with a release, not
    with the day it was made."""
    for line in (ROOT / "debian/changelog").read_text().splitlines():
        if line.startswith(" -- "):
            return parsedate_to_datetime(line.split(">  ", 1)[1]).strftime("%Y-%m-%d")
    raise SystemExit("debian/changelog has no trailer line")


def commands_section() -> str:
    lines = []
    for name, (_, summary) in COMMANDS.items():
        lines += [".TP", rf"\fB{name}\fR", f"{summary}; see \\fB{page_name(name)}\\fR({SECTIONS[name]})."]
    return "\n".join(lines).replace("->", r"\->")


def manpage(command: str | None) -> str:
    if command is None:
        parser, summary, section = _top_parser(), "classic superserver and syslog setups, " \
            "carried into systemd", 1
    else:
        parser, _ = command_parser(command)
        summary, section = COMMANDS[command][1], SECTIONS[command]
    # The written sections say at length what the --help epilog and description say
    # in short.
    parser.epilog = parser.description = None
    parser._positionals.title = "arguments"  # their own section, not under DESCRIPTION
    name = page_name(command)
    page = Manpage(parser, _data={
        "project_name": "inetd2systemd", "version": __version__, "date": release_date(),
        "manual_section": section, "manual_title": MANUAL[section], "description": summary,
        "include": str(ROOT / "man" / "include" / f"{name}.roff")})
    page.prog = name
    if command is None:
        page.add_section("COMMANDS", "=", commands_section())
    extra = parser._manpage  # argparse-manpage's list of the included sections
    unknown = [s["heading"] for s in extra
               if s["heading"].upper() not in ORDER + ("COMMANDS",) and s["heading"] != "description"]
    if unknown:
        raise SystemExit(f"{name}: sections argparse-manpage would put in no order: {unknown}")
    extra.sort(key=lambda s: (ORDER.index(s["heading"].upper()) if s["heading"].upper() in ORDER
                              else -1))
    return "".join(_text_line(line) for line in str(page).splitlines(keepends=True))


# The requests argparse-manpage and the written sections use; a line of help text that
# starts with ' or . (a quoted word, a dotted name) would be read as a request instead.
REQUESTS = {"TH", "SH", "SS", "TP", "TQ", "PP", "IP", "B", "I", "BR", "IR", "RB", "RI", "EX",
            "EE", "nf", "fi", "RS", "RE", "UR", "UE"}


def _text_line(line: str) -> str:
    if line.startswith("'") or (line.startswith(".") and line[1:].split(" ", 1)[0].strip()
                                not in REQUESTS):
        return "\\&" + line
    return line


def every_command_parser() -> argparse.ArgumentParser:
    """One parser with every command as a sub-parser, as shtab needs it."""
    top = argparse.ArgumentParser(prog="inetd2systemd")
    top.add_argument("--version", action="version", version=__version__)
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, summary) in COMMANDS.items():
        command_parser(name, commands.add_parser(name, help=summary, description=summary))
    _mark_paths(top)
    return top


def _mark_paths(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _mark_paths(sub)
            continue
        metavar = action.metavar if isinstance(action.metavar, str) else None
        if metavar in DIRECTORY_METAVARS or action.dest in DIRECTORY_DESTS:
            action.complete = shtab.DIRECTORY
        elif metavar in FILE_METAVARS or action.dest in FILE_DESTS:
            action.complete = shtab.FILE


def outputs() -> dict[str, str]:
    """path under the checkout -> its text."""
    files = {}
    for command in (None, *COMMANDS):
        section = SECTIONS[command] if command else 1
        files[f"man/{page_name(command)}.{section}"] = manpage(command)
    parser = every_command_parser()
    files["completion/bash/inetd2systemd"] = shtab.complete(parser, shell="bash")
    files["completion/zsh/_inetd2systemd"] = shtab.complete(parser, shell="zsh")
    return files


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--output", metavar="DIR", default=str(ROOT),
                         help="write man/ and completion/ under DIR (default: the checkout)")
    args = options.parse_args()
    for relative, text in outputs().items():
        path = Path(args.output) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
