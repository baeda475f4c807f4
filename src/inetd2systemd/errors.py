"""The one exception type for bad input, in the manner of tomli's TOMLDecodeError, and
the exit statuses every command shares.

Every reader raises `ConfigError` with the file and line (and column when known) so the
command line can print `file:line:col: message` and exit non-zero before writing anything.
"""

from __future__ import annotations

# The exit statuses of every command, one table (daemonize keeps start-stop-daemon's
# and the shell's, below). Each command's --help names its own case of each it uses.
EXIT_OK = 0
EXIT_INCOMPLETE = 1  # done, but something could not be carried over exactly (see the report)
EXIT_BAD_INPUT = 2  # bad configuration or command line: nothing was written
EXIT_FAILED = 3  # an operation on the system failed or was refused (write, install, bind, ...)
EXIT_MEANINGS = {
    EXIT_OK: "done",
    EXIT_INCOMPLETE: "done, with findings to read",
    EXIT_BAD_INPUT: "bad input",
    EXIT_FAILED: "a system operation failed",
}

# daemonize's own, after start-stop-daemon and the shell: 1 means "already running"
# there (nothing was done), and 126/127 are the shell's "cannot execute"/"not found".
EXIT_ALREADY_RUNNING = 1
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127
# daemonize --stop and --status, as start-stop-daemon's (its man page, EXIT STATUS);
# --status's are the LSB init script status codes.
EXIT_NOTHING_DONE = 1  # --stop: nothing was running (0 with --oknodo)
EXIT_STILL_RUNNING = 2  # --stop --retry: still running at the end of the schedule
EXIT_STATUS_STALE = 1  # --status: not running, but the pidfile remains
EXIT_STATUS_NOT_RUNNING = 3
EXIT_STATUS_UNKNOWN = 4


class ConfigError(ValueError):
    """`code` says what kind of error it is, as model.Code does for findings: "unreadable",
    "not-a-configuration", or "bad-input" for the rest."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 column: int | None = None, *, code: str = "bad-input") -> None:
        self.msg = message
        self.file = file
        self.line = line
        self.column = column
        self.code = code
        super().__init__(str(self))

    def __str__(self) -> str:
        where = [str(x) for x in (self.file, self.line, self.column) if x is not None]
        return f"{':'.join(where)}: {self.msg}" if where else self.msg
