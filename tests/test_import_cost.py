"""The runtime face stays cheap: a per-connection handler pays every import, every time.

Checked on the set of modules a fresh interpreter loads (not on timings, which vary):
whatever `from inetd2systemd import ...` adds beyond the socket module the handler needs
anyway must be on a short allow-list. A parser, the command line, systemd-python or
threads sneaking onto this path fails here with the module's name.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

ALLOWED = {
    "__future__",
    "inetd2systemd",
    "inetd2systemd.runtime",
    "inetd2systemd.runtime.activation",
    "inetd2systemd.runtime.notify",
}
# Named for the failure message: each of these once was, or could easily be, one
# careless import away.
HEAVY = {"argparse", "inetd2systemd.cli", "inetd2systemd.config", "inetd2systemd.model",
         "inetd2systemd.units", "inetd2systemd.superserver", "inetd2systemd.syslog",
         "systemd", "systemd.daemon", "systemd.journal", "threading", "importlib", "json",
         "re", "traceback", "signal", "sdnotify"}


def added_modules(code: str) -> set[str]:
    program = textwrap.dedent("""
        import sys, socket, stat, time, os
        before = set(sys.modules)
    """) + textwrap.dedent(code) + textwrap.dedent("""
        print(repr(sorted(set(sys.modules) - before)))
    """)
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    return set(eval(result.stdout))


def check(added: set[str]) -> None:
    assert not added & HEAVY, f"heavy modules on the handler's import path: {added & HEAVY}"
    assert added <= ALLOWED, f"new modules on the handler's import path: {added - ALLOWED}"


def test_import_package_loads_nothing_else():
    added = added_modules("import inetd2systemd")
    check(added)
    assert "inetd2systemd.runtime.activation" not in added  # lazy until used


def test_public_names_load_only_the_runtime_modules():
    added = added_modules("""
        from inetd2systemd import listen_fds, listen_fds_with_names, ActivationError, serve
        from inetd2systemd import notify, Notifier
        listen_fds(); notify("READY=1")
    """)
    check(added)
    assert {"inetd2systemd.runtime.activation", "inetd2systemd.runtime.notify"} <= added


def test_serving_one_inetd_connection_stays_lean():
    """The Accept=yes / inetd nowait path: serve() on one connection, no threads."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.sendall(b"ping")
        ours.shutdown(socket.SHUT_WR)
        result = subprocess.run([sys.executable, "-c", textwrap.dedent("""
            import sys, socket, stat, time, os
            before = set(sys.modules)
            from inetd2systemd import serve
            def handler(conn, peer):
                data = conn.recv(100)
                conn.sendall(data + b" " + repr(sorted(set(sys.modules) - before)).encode())
            serve(handler)
        """)], stdin=theirs, stdout=theirs, capture_output=False, timeout=30)
        theirs.close()
        assert result.returncode == 0
        reply = b""
        while chunk := ours.recv(65536):
            reply += chunk
    word, _, modules = reply.partition(b" ")
    assert word == b"ping"
    check(set(eval(modules)))
