"""The command line as a whole: sub-command dispatch, and one command line: every
command's --help ends with examples and its exit statuses (one table for all, daemonize
the documented exception), every option says what it does, and the options several
commands have mean the same in each."""

from __future__ import annotations

import argparse
import re

import pytest

from inetd2systemd import cli
from inetd2systemd.errors import EXIT_MEANINGS
from support import run_cli

# The options that mean the same wherever they appear, spelled the same
# (inetd2systemd.commandline adds each). syslogd's -f is rsyslogd's (--config), not -f
# for --force: only the long spellings and -n, -q, -v are reserved.
SHARED = {"--force": ("-f", "--force"), "--dry-run": ("-n", "--dry-run"), "--json": ("--json",),
          "--quiet": ("-q", "--quiet"), "--verbose": ("-v", "--verbose"), "--root": ("--root",)}
RESERVED_SHORT = {"-n": "--dry-run", "-q": "--quiet", "-v": "--verbose"}


def test_help_lists_every_command():
    out = run_cli("--help")
    assert out.returncode == 0
    for name in cli.COMMANDS:
        assert name in out.stdout


def test_unknown_command_is_an_error():
    out = run_cli("frobnicate")
    assert out.returncode == 2
    assert "invalid choice" in out.stderr


def _parsers(parser: argparse.ArgumentParser, path: str):
    """The parser and every nested sub-parser (generator's enable, disable, status)."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def _every_parser():
    yield from _parsers(cli._top_parser(), "inetd2systemd")
    for name in cli.COMMANDS:
        yield from _parsers(cli.command_parser(name)[0], f"inetd2systemd {name}")


def _exit_codes(epilog: str) -> list[int]:
    block = epilog[epilog.index("\nexit status:\n") + len("\nexit status:\n"):].split("\n\n")[0]
    return [int(m) for m in re.findall(r"^  (\d+)  ", block, re.M)]


@pytest.mark.parametrize("name", [None, *cli.COMMANDS])
def test_every_help_ends_with_examples_and_the_exit_statuses(name):
    out = run_cli(*([name] if name else []), "--help")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "\nexamples:\n" in text
    examples = text[text.index("\nexamples:\n"):].split("\n\n")[0]
    assert "inetd2systemd" in examples
    if name == "daemonize":
        # start-stop-daemon's and the shell's codes, said to be the exception
        assert "exit status, starting" in text and "exception" in text
        assert re.search(r"^  126  .*\n(.*\n)*  127  ", text, re.M)
        return
    codes = _exit_codes(text)
    assert codes and set(codes) <= set(EXIT_MEANINGS) and codes == sorted(codes), codes
    for code in codes:  # each with the meaning every command gives it
        assert re.search(rf"^  {code}  {re.escape(EXIT_MEANINGS[code])}: ", text, re.M), code


def test_every_argument_of_every_command_says_what_it_does():
    for path, parser in _every_parser():
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                continue
            what = action.option_strings or [action.dest]
            assert action.help and action.help != argparse.SUPPRESS, (path, what)


def test_the_shared_options_are_spelled_and_meant_the_same_everywhere():
    seen = set()
    for path, parser in _every_parser():
        for action in parser._actions:
            names = set(action.option_strings)
            for long, spelling in SHARED.items():
                if long in names:
                    seen.add(long)
                    assert tuple(action.option_strings) == spelling, (path, long)
                    assert getattr(action, "shared", False), \
                        f"{path} {long}: add it with inetd2systemd.commandline"
            for short, long in RESERVED_SHORT.items():
                if short in names:
                    assert long in names, (path, short)
    assert seen == set(SHARED)  # each is in use somewhere


def test_convert_without_path_reads_what_exists_of_inetd_conf_and_xinetd_conf(
        tmp_path, monkeypatch, capsys):
    from inetd2systemd.convert import cli as convert_cli

    inetd, xinetd = tmp_path / "inetd.conf", tmp_path / "xinetd.conf"
    monkeypatch.setattr(convert_cli, "DEFAULT_PATHS", (str(inetd), str(xinetd)))
    argv = ["convert", "--json", "--no-host-check"]

    def converted() -> tuple[int, str]:
        status = cli.main(argv)
        return status, capsys.readouterr().out

    assert cli.main(argv) == 2
    assert "neither /etc/inetd.conf nor /etc/xinetd.conf exists" in capsys.readouterr().err
    xinetd.write_text("service daytime\n{\n  type = INTERNAL\n  socket_type = stream\n"
                      "  wait = no\n  user = root\n}\n")
    # (1: xinetd's daytime warns that hosts.allow applied to it, which is not read)
    status, out = converted()
    assert status == 1 and '"daytime.socket"' in out and "echo" not in out
    inetd.write_text("echo stream tcp nowait root internal\n")
    status, out = converted()
    assert status == 1 and '"daytime.socket"' in out and '"echo.socket"' in out
