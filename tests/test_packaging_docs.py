"""The manual pages and the shell completion: made from the parsers the commands parse
with (scripts/man-and-completion.py), committed, current, rendered by groff without a
warning, and completing what a user types in bash and zsh."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inetd2systemd.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "man-and-completion.py"
PAGES = sorted((ROOT / "man").glob("inetd2systemd*.[18]"))
BASH = ROOT / "completion" / "bash" / "inetd2systemd"
ZSH = ROOT / "completion" / "zsh" / "_inetd2systemd"
WRITTEN = ("DESCRIPTION", "EXIT STATUS", "EXAMPLES", "SEE ALSO")


def _generated(tmp_path: Path) -> dict[str, bytes]:
    subprocess.run([sys.executable, str(SCRIPT), "--output", str(tmp_path)], check=True,
                   env=dict(os.environ, COLUMNS="200"))  # the script fixes the width itself
    return {str(p.relative_to(tmp_path)): p.read_bytes()
            for p in sorted(tmp_path.rglob("*")) if p.is_file()}


def test_the_committed_pages_and_completion_are_what_the_parsers_make_now(tmp_path):
    made = _generated(tmp_path)
    committed = {str(p.relative_to(ROOT)): p.read_bytes()
                 for p in [*PAGES, *sorted((ROOT / "completion").rglob("*"))] if p.is_file()}
    assert sorted(made) == sorted(committed), "run scripts/man-and-completion.py"
    stale = [name for name in made if made[name] != committed[name]]
    assert stale == [], f"run scripts/man-and-completion.py: {stale} changed"


def test_every_command_has_its_page_with_the_written_sections():
    names = {p.stem for p in PAGES}
    assert names == {"inetd2systemd", *(f"inetd2systemd-{c}" for c in COMMANDS)}
    for page in PAGES:
        text = page.read_text()
        sections = re.findall(r"^\.SH (.+)$", text, re.M)
        for section in WRITTEN:
            assert section in sections, (page.name, section)
        # Section 1 for what anyone runs, 8 for administration; the page says its own.
        title = page.stem.upper().replace("-", "\\-")
        assert text.startswith(f'.TH {title} "{page.suffix[1:]}" '), page.name
    # Pages for commands that read or write the system's files say which.
    for name in ("inetd2systemd", "convert", "import", "generator", "serve", "syslogd"):
        stem = name if name == "inetd2systemd" else f"inetd2systemd-{name}"
        assert ".SH FILES" in next(p for p in PAGES if p.stem == stem).read_text(), stem


def test_every_option_of_every_command_is_on_its_page():
    from inetd2systemd.cli import command_parser

    for command in COMMANDS:
        parser, _ = command_parser(command)
        page = next(p for p in PAGES if p.stem == f"inetd2systemd-{command}").read_text()
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert rf"\fB{option.replace('-', chr(92) + '-')}\fR" in page, (command, option)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_groff_renders_the_page_without_a_warning(page):
    proc = subprocess.run(["groff", "-man", "-ww", "-Tutf8", "-z", str(page)],
                          capture_output=True, text=True, env=dict(os.environ, LC_ALL="C.UTF-8"))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def _bash_complete(*words: str) -> list[str]:
    """What bash offers for the last word, through the completion function as `complete`
    registered it."""
    script = f"""
source {BASH}
function=$(complete -p inetd2systemd | sed -E 's/.* -F ([^ ]+) .*/\\1/')
COMP_WORDS=("$@"); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
COMP_LINE="$*"; COMP_POINT=${{#COMP_LINE}}
"$function" inetd2systemd "${{COMP_WORDS[-1]}}" "${{COMP_WORDS[-2]}}"
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    out = subprocess.run(["bash", "-c", script, "bash", "inetd2systemd", *words],
                         capture_output=True, text=True, check=True).stdout
    return sorted(line for line in out.splitlines() if line)


def test_bash_completes_commands_options_choices_and_paths(tmp_path):
    (tmp_path / "inetd.conf").write_text("")
    (tmp_path / "inetd.d").mkdir()
    assert _bash_complete("con") == ["convert"]
    assert _bash_complete("") == sorted(COMMANDS)
    assert _bash_complete("convert", "--dry") == ["--dry-run"]
    assert "--max-connections" in _bash_complete("syslogd", "--max")
    assert _bash_complete("convert", "--harden", "s") == ["strict"]
    assert _bash_complete("generator", "st") == ["status"]
    # a file argument offers files and directories, a directory argument directories
    assert _bash_complete("serve", "--config", f"{tmp_path}/inetd") == \
        [f"{tmp_path}/inetd.conf", f"{tmp_path}/inetd.d"]
    assert _bash_complete("import", "-o", f"{tmp_path}/inetd") == [f"{tmp_path}/inetd.d"]


def test_zsh_finds_the_completion_for_the_command(tmp_path):
    if shutil.which("zsh") is None:
        pytest.fail("zsh is not installed (scripts/setup.sh installs it)")
    subprocess.run(["zsh", "-n", str(ZSH)], check=True)
    script = (f"fpath=({ZSH.parent} $fpath); autoload -U compinit; "
              f"compinit -u -d {tmp_path}/zcompdump; print -r -- $_comps[inetd2systemd]")
    out = subprocess.run(["zsh", "-f", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "_inetd2systemd"
    text = ZSH.read_text()
    for command in COMMANDS:
        assert f"{command}:" in text or f'"{command}' in text, command
    assert ":DIR:_files -/" in text and ":FILE:_files" in text
