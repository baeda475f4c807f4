"""The sinks' I/O and the router's promises, in process: one message that cannot be read,
formatted or written costs that message only, counted; the counters add up; a full
disk never leaves part of a line for the next one to be glued to, is reported once per
interval with a count, and is left behind by itself when room comes back.

The disk is a real tmpfs of a few pages (root mounts it; others get a private mount
namespace through `unshare`), and the failures inside the router are real exceptions
raised where a bug would raise them (monkeypatched: nothing here can produce a bug on
demand)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from inetd2systemd.syslog import sinks
from inetd2systemd.syslog.rules import parse_syslog_conf
from inetd2systemd.syslog.sinks import Router

GOOD = [b"<14>1 2024-01-02T03:04:05Z host app %d - - good %03d" % (i, i) for i in range(400)]
BAD = b"<14>1 2024-01-xxT00:00:00Z host app 1 - - the bad one"  # the invalid day


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines() if path.exists() else []


def _router(tmp_path: Path, rules: str = "*.*\t-{d}/out.log\n") -> Router:
    return Router(parse_syslog_conf(rules.format(d=tmp_path), "rules"))


def _balanced(router: Router, received: int) -> None:
    router.flush()
    assert router.written + router.dropped + router.unselected.count == received, \
        (router.written, router.dropped, router.unselected.count, received)


def test_a_bad_message_in_a_batch_costs_at_most_itself(tmp_path):
    router = _router(tmp_path)
    batch = GOOD[:200] + [BAD] + GOOD[200:]
    router.deliver(batch, "10.0.0.1", "tcp", 1.7e9)
    router.close()
    lines = _lines(tmp_path / "out.log")
    assert [int(l.rsplit(b" ", 1)[1]) for l in lines if b"good" in l] == list(range(400))
    assert len(lines) in (400, 401)  # the bad one written (raw) or counted as dropped
    _balanced(router, len(batch))


@pytest.mark.parametrize("where", ["fast path", "parse", "format", "emit", "flush"])
def test_whatever_raises_only_that_message_is_lost_and_counted(tmp_path, monkeypatch, where):
    """A bug anywhere on the road (simulated by raising for one marked message) loses
    that message alone, and the counters still add up."""
    marked = b"<14>1 2024-01-02T03:04:05Z host app 7 - - MARKED"

    def failing(real):
        def wrapper(first, *args, **kwargs):
            raw = first if isinstance(first, bytes) else getattr(first, "raw", b"")
            if b"MARKED" in raw:
                raise RuntimeError("simulated bug")
            return real(first, *args, **kwargs)
        return wrapper

    if where == "fast path":
        real = sinks.rfc5424_lines  # the road these frames take

        def fast(frames, *args):
            def checked():
                for frame in frames:
                    if b"MARKED" in frame:
                        raise RuntimeError("simulated bug")
                    yield frame
            return real(checked(), *args)
        monkeypatch.setattr(sinks, "rfc5424_lines", fast)
    elif where == "parse":
        monkeypatch.setattr(sinks, "parse", failing(sinks.parse))
        marked = b"<14>1 - host app 7 - - MARKED"  # the general road parses it
    elif where == "format":
        monkeypatch.setattr(sinks, "traditional_line", failing(sinks.traditional_line))
        marked = b"<14>1 - host app 7 - - MARKED"  # the general road formats it
    # A journal-less, forward-free set: a file, and a file that also takes a Message.
    router = _router(tmp_path, "*.*\t-{d}/a.log\n*.*\t-{d}/b.log\n")
    if where == "emit":
        sink = router.sinks[next(iter(router.sinks))]
        real_emit = sink.emit
        monkeypatch.setattr(sink, "emit", failing(real_emit))
        router = _rebuilt(router)
        marked = b"<14>1 - host app 7 - - MARKED"  # general road: emit() is called
    if where == "flush":
        sink = next(iter(router.sinks.values()))
        real_flush = sink.flush
        calls = []

        def flaky_flush():
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("simulated bug")
            real_flush()
        monkeypatch.setattr(sink, "flush", flaky_flush)
    batch = GOOD[:10] + [marked] + GOOD[10:20]
    router.deliver(batch, "10.0.0.1", "tcp", 1.7e9)
    router.flush()
    router.deliver(GOOD[20:30], "10.0.0.1", "tcp", 1.7e9)
    router.close()
    a, b = _lines(tmp_path / "a.log"), _lines(tmp_path / "b.log")
    good = {b"good %03d" % i for i in range(30)}
    if where == "flush":  # the first batch of a.log was lost whole, the next one written
        assert {l[-8:] for l in a} == {b"good %03d" % i for i in range(20, 30)}
    else:
        assert {l[-8:] for l in a if b"good" in l} == good
    assert {l[-8:] for l in b if b"good" in l} == good
    # Counted once per destination it was handed to, or once when it was lost before
    # any destination had it (it cannot be read: where it would go is unknown).
    handed = 2 * 31 if where in ("format", "emit", "flush") else 2 * 30 + 1
    assert router.written + router.dropped == handed, (router.written, router.dropped)
    assert router.dropped >= 1


def _rebuilt(router: Router) -> Router:
    """The router's table holds bound methods taken when it was built: rebuild it around
    the (patched) sinks it already has."""
    sinks_by_key = router.sinks
    router.table = [tuple(sinks_by_key[a.key()].emit for a in actions) or (router.unselected.emit,)
                    for actions in router.ruleset.route_table()]
    router.line_routes = {}  # every message takes the general road
    return router


def test_counters_count_what_no_rule_selects(tmp_path):
    router = _router(tmp_path, "mail.*\t-{d}/mail.log\n")
    router.deliver(GOOD[:5] + [b"<22>mail message"], "", "unix", 1.7e9)
    router.close()
    assert (router.written, router.dropped, router.unselected.count) == (1, 0, 5)


def test_a_forward_to_a_host_that_does_not_resolve_touches_nothing_else(tmp_path):
    router = _router(tmp_path, "*.*\t@no-such-host.invalid:5514\n*.*\t-{d}/out.log\n"
                               "*.*\t@@no-such-host.invalid:5514\n")
    router.deliver(GOOD, "10.0.0.1", "udp", 1.7e9)
    router.close()
    assert len(_lines(tmp_path / "out.log")) == 400
    assert router.written == 400 and router.dropped == 800


# -- a full disk --------------------------------------------------------------------------

FULL_DISK = r'''
import os, subprocess, sys, time
sys.path.insert(0, {src!r})
from inetd2systemd.syslog import sinks
from inetd2systemd.syslog.rules import parse_syslog_conf
from inetd2systemd.syslog.sinks import Router

mount = {mount!r}
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mount], check=True)
sinks.WARNING_INTERVAL = 0.5
router = Router(parse_syslog_conf(f"*.*\t{{mount}}/out.log\n", "rules"))
filler = os.path.join(mount, "filler")
fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
try:
    while True:
        os.write(fd, b"x" * 4096)
except OSError:
    pass
os.close(fd)
# Two pages of room: the line that reaches their end is written in part (tmpfs
# allocates by page), which is what must not stay behind.
os.truncate(filler, os.path.getsize(filler) // 4096 * 4096 - 8192)
sent = 0
for batch in range(40):  # sparse traffic, a batch at a time
    frames = [b"<14>1 2024-01-02T03:04:05Z host app %d - - line %05d " % (batch, sent + i) + b"y" * 50
              for i in range(7)]
    router.deliver(frames, "10.0.0.1", "tcp", 1.7e9)
    router.flush()
    sent += len(frames)
    time.sleep(0.02)
full = open(os.path.join(mount, "out.log"), "rb").read()
lost_while_full = router.dropped
os.unlink(filler)  # room again
frames = [b"<14>1 2024-01-02T03:04:05Z host app 9 - - after %05d" % i for i in range(50)]
router.deliver(frames, "10.0.0.1", "tcp", 1.7e9)
router.close()
sent += 50
data = open(os.path.join(mount, "out.log"), "rb").read()
print(repr((sent, router.written, router.dropped, lost_while_full, full, data)))
'''


def test_a_full_disk_never_glues_lines_counts_and_recovers(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    script = FULL_DISK.format(src=str(Path(sinks.__file__).parents[2]), mount=str(mount))
    # A private mount namespace: the tmpfs goes away with the process, whatever happens.
    argv = ["unshare", "--mount", sys.executable, "-c", script]
    if os.geteuid() != 0:
        argv[1:1] = ["--user", "--map-root-user"]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if res.returncode != 0 and "mount" in res.stderr and os.geteuid() != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()[-200:]}")
    assert res.returncode == 0, res.stderr
    sent, written, dropped, lost_while_full, full, data = eval(res.stdout.strip().splitlines()[-1])
    lines = data.split(b"\n")
    assert lines[-1] == b"", "the file ends inside a line"
    pattern = re.compile(rb"\w{3} [ \d]\d \d\d:\d\d:\d\d host app\[\d+\]:? (line \d{5} y{50}|after \d{5})")
    assert all(pattern.fullmatch(line) for line in lines[:-1]), [l for l in lines if not pattern.fullmatch(l)][:3]
    assert 0 < lost_while_full == dropped < sent, (sent, written, dropped)
    assert written + dropped == sent
    assert len(lines) - 1 == written
    assert all(b"after %05d" % i in data for i in range(50)), "did not recover when room came back"
    warnings = [l for l in res.stderr.splitlines() if "No space left" in l]
    # Reported at once, then at most once per (shortened, 0.5 s) interval with a count,
    # and once more when writing works again: never once per batch.
    assert 1 <= len(warnings) <= 4, warnings
    assert re.search(r"\d+ messages lost", warnings[0]), warnings
    assert any("working again" in l and "lost while it failed" in l for l in res.stderr.splitlines())


@pytest.mark.skipif(os.geteuid() != 0, reason="makes a directory owned by nobody: needs root")
def test_as_root_a_link_in_a_directory_another_user_owns_is_not_followed(tmp_path, capfd):
    """The log directory belongs to nobody, who has put a link at the log file's name
    pointing to a root file: root must not append to that file."""
    import pwd

    nobody = pwd.getpwnam("nobody")
    target = tmp_path / "root-only"
    target.write_text("secret\n")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").symlink_to(target)
    os.chown(logs, nobody.pw_uid, nobody.pw_gid)
    router = _router(tmp_path, "*.*\t-{d}/logs/app.log\n*.*\t-{d}/own.log\n")
    router.deliver(GOOD[:3], "10.0.0.1", "tcp", 1.7e9)
    router.close()
    assert target.read_text() == "secret\n"
    assert len(_lines(tmp_path / "own.log")) == 3
    assert router.dropped == 3
    assert "symbolic link in a directory other users can write; not followed" in capfd.readouterr().err
    # In a directory only root can change, a link is root's own doing and is followed.
    os.chown(logs, 0, 0)
    router = _router(tmp_path, "*.*\t-{d}/logs/app.log\n")
    router.deliver(GOOD[:1], "10.0.0.1", "tcp", 1.7e9)
    router.close()
    assert target.read_text().startswith("secret\n") and "good 000" in target.read_text()


def test_a_name_server_that_does_not_answer_never_holds_the_other_rules(tmp_path, monkeypatch):
    """getaddrinfo for the forwarding host takes 2 s (a name server that does not answer
    cannot be had here: the resolver is slowed down in process). Delivering does not
    wait for it, the file gets every message at once, and the forwarded messages wait
    and go out once the address is known."""
    import socket
    import threading
    import time

    real = socket.getaddrinfo
    slow_started = threading.Event()

    def slow_getaddrinfo(host, *args, **kwargs):
        if host == "slow.example":
            slow_started.set()
            time.sleep(2)
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    port = receiver.getsockname()[1]
    router = _router(tmp_path, f"*.*\t@slow.example:{port}\n*.*\t-{{d}}/out.log\n")
    started = time.monotonic()
    router.deliver(GOOD[:100], "10.0.0.1", "tcp", 1.7e9)
    router.flush()
    assert time.monotonic() - started < 1.0, "delivering waited for the name server"
    assert len(_lines(tmp_path / "out.log")) == 100
    assert slow_started.wait(5)
    deadline = time.monotonic() + 10
    while router.written < 200 and time.monotonic() < deadline:
        time.sleep(0.1)
        router.flush()  # the loop's idle flush: the sink polls its lookup
    got = [receiver.recv(65536) for _ in range(100)]
    router.close()
    receiver.close()
    assert all(b"good" in frame for frame in got) and router.written == 200 and router.dropped == 0
