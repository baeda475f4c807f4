"""The command line as a whole: sub-command dispatch and exit codes."""

from support import run_cli


def test_help_lists_every_command():
    out = run_cli("--help")
    assert out.returncode == 0
    for name in ("convert", "serve", "syslogd", "daemonize", "internal", "import"):
        assert name in out.stdout


def test_unknown_command_is_an_error():
    out = run_cli("frobnicate")
    assert out.returncode == 2
    assert "invalid choice" in out.stderr
