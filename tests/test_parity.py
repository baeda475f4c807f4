"""Parity: the same client checks against `inetd2systemd serve` and the real peers.

One configuration file, read by openbsd-inetd (or xinetd) and by our superserver in
turn, on the same private 127.0.0.1 ports; each check returns what a client observed,
and the observations must be identical. Every daemon runs in its own mount namespace
where /etc/services is a test file (bind mount), so the internal services (echo, ...)
and the named services live on free high ports, exactly as they would on port 7 for
the peers and for us alike.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from superserver_support import Ports, Superserver, needs_root, ours_argv, tcp_exchange


def udp_exchange(port: int, send: bytes, timeout: float = 3.0) -> bytes | str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(send, ("127.0.0.1", port))
        try:
            return s.recvfrom(65536)[0]
        except socket.timeout:
            return "timeout"
        except ConnectionRefusedError:
            return "refused"


def daytime_ok(data: bytes | str) -> bool:
    """RFC 867 leaves the format free; both peers send ctime(3) plus CRLF."""
    if not isinstance(data, bytes):
        return False
    text = data.decode(errors="replace").strip()
    for form, utc in (("%a %b %d %H:%M:%S %Y", False), ("%d %b %Y %H:%M:%S UTC", True)):
        try:  # openbsd-inetd's ctime(3), xinetd's "27 NOV 2026 12:21:40 UTC"
            when = time.strptime(text.title().replace(" Utc", " UTC"), form)
        except ValueError:
            continue
        stamp = time.mktime(when) - (time.timezone if utc else 0) if utc else time.mktime(when)
        return abs(stamp - time.time()) < 120
    return False


def time_ok(data: bytes | str) -> bool:
    """RFC 868: 32-bit big-endian seconds since 1900."""
    if not isinstance(data, bytes) or len(data) != 4:
        return False
    return abs(struct.unpack("!I", data)[0] - 2208988800 - time.time()) < 120


def chargen_ok(data: bytes | str) -> bool:
    """RFC 864: 72 printable characters per line, each line one further round the ring.

    Where on the ring the first line starts is free (RFC 864 does not say); the
    in-process engine (runtime.internal_services) may even start inside a line, so the check
    starts at the first full line."""
    if not isinstance(data, bytes) or len(data) < 74:
        return False
    data = data[data.index(b"\r\n") + 2:] if b"\r\n" in data[:73] else data
    if len(data) < 74:
        return False
    ring = bytes(range(32, 127))
    lines = [data[i:i + 74] for i in range(0, len(data) - 73, 74)]
    start = data[0] - 32
    for n, line in enumerate(lines):
        offset = (start + n) % len(ring)
        if line != (ring * 2)[offset:offset + 72] + b"\r\n":
            return False
    return True


def observe_internals(ports: Ports, *, udp: bool) -> dict:
    seen = {}
    seen["echo/tcp"] = tcp_exchange(ports["echo"], b"hello, echo\r\n")
    seen["discard/tcp"] = tcp_exchange(ports["discard"], b"into the void\r\n" * 100)
    seen["chargen/tcp"] = chargen_ok(tcp_exchange(ports["chargen"], read=74 * 4))
    seen["daytime/tcp"] = daytime_ok(tcp_exchange(ports["daytime"]))
    seen["time/tcp"] = time_ok(tcp_exchange(ports["time"]))
    if udp:
        # Not against openbsd-inetd: its dg_badinput() ignores datagrams from 127/8
        # (anti-spoofing), so on loopback it never answers; xinetd does.
        seen["echo/udp"] = udp_exchange(ports["echo"], b"hello, udp echo")
        seen["discard/udp"] = udp_exchange(ports["discard"], b"void", timeout=0.5)
        # RFC 864 allows an empty datagram; ask until one has a line (both pick at random)
        seen["chargen/udp"] = any(chargen_ok(udp_exchange(ports["chargen"], b"x")) for _ in range(20))
        seen["daytime/udp"] = daytime_ok(udp_exchange(ports["daytime"], b"x"))
        seen["time/udp"] = time_ok(udp_exchange(ports["time"], b"x"))
    return seen


def tftp_get(port: int, name: str, dest: Path) -> bytes | str:
    run = subprocess.run(["tftp", "-m", "binary", "127.0.0.1", str(port), "-c", "get", name, str(dest)],
                         capture_output=True, text=True, timeout=20)
    if not dest.exists():
        return f"failed: {run.stdout.strip()} {run.stderr.strip()}"
    return dest.read_bytes()


def observe_rate(port: int, attempts: int) -> list[str]:
    """What each of `attempts` sequential connections to a nowait.N /bin/cat saw."""
    seen = []
    for i in range(attempts):
        seen.append(outcome(tcp_exchange(port, f"ping {i}\n".encode()), f"ping {i}\n".encode()))
        time.sleep(0.05)  # let the superserver see each exit, as a human client would
    return seen


def outcome(got: bytes | str, expected: bytes) -> str:
    """served / refused (nobody listens) / dropped (accepted, then closed or reset)."""
    if got == expected:
        return "served"
    if got == "refused":
        return "refused"
    return "dropped"


# -- the shared configuration ------------------------------------------------------------------


INETD_CONF = """\
# parity configuration: read by openbsd-inetd and by inetd2systemd serve alike
127.0.0.1:echo     stream tcp4 nowait root internal
127.0.0.1:echo     dgram  udp4 wait   root internal
127.0.0.1:discard  stream tcp4 nowait root internal
127.0.0.1:discard  dgram  udp4 wait   root internal
127.0.0.1:chargen  stream tcp4 nowait root internal
127.0.0.1:chargen  dgram  udp4 wait   root internal
127.0.0.1:daytime  stream tcp4 nowait root internal
127.0.0.1:daytime  dgram  udp4 wait   root internal
127.0.0.1:time     stream tcp4 nowait root internal
127.0.0.1:time     dgram  udp4 wait   root internal
127.0.0.1:i2s-cat  stream tcp4 nowait root /bin/cat cat
127.0.0.1:i2s-id   stream tcp4 nowait nobody /usr/bin/id id
127.0.0.1:i2s-tftp dgram  udp4 wait   root {tftpd} in.tftpd -t 1 -s {tftproot}
127.0.0.1:i2s-rate stream tcp4 nowait.3 root /bin/cat cat
"""


@pytest.fixture(scope="module")
def inetd_setup(tmp_path_factory, tftpd):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a private /etc/services")
    work = tmp_path_factory.mktemp("parity")
    os.chmod(work, 0o755)
    ports = Ports()
    services = work / "services"
    services.write_text(ports.services_text())
    tftproot = work / "tftp"
    tftproot.mkdir()
    os.chmod(tftproot, 0o755)
    payload = bytes(random.Random(5).randrange(256) for _ in range(70_000))  # > 128 blocks
    (tftproot / "payload.bin").write_bytes(payload)
    os.chmod(tftproot / "payload.bin", 0o644)
    conf = work / "inetd.conf"
    conf.write_text(INETD_CONF.format(tftpd=tftpd, tftproot=tftproot))
    return work, ports, services, conf, payload


def _inetd_observations(kind: str, setup, openbsd_inetd: str) -> dict:
    work, ports, services, conf, payload = setup
    argv = [openbsd_inetd, "-d", str(conf)] if kind == "openbsd-inetd" else ours_argv(conf)
    listening = [(ports[n], False) for n in ("echo", "i2s-cat", "i2s-rate", "i2s-id")] + \
                [(ports["i2s-tftp"], True), (ports["echo"], True)]
    daemon = Superserver(kind, argv, work, services).start(listening)
    try:
        seen = observe_internals(ports, udp=False)
        seen["cat"] = tcp_exchange(ports["i2s-cat"], b"through /bin/cat\n" * 1000)
        seen["id"] = tcp_exchange(ports["i2s-id"])
        dest = work / f"{kind}.got"
        seen["tftp"] = tftp_get(ports["i2s-tftp"], "payload.bin", dest) == payload
        seen["rate"] = observe_rate(ports["i2s-rate"], 5)
        seen["alive"] = daemon.proc.poll() is None
        return seen
    finally:
        daemon.stop()


@needs_root
def test_same_results_as_openbsd_inetd(inetd_setup, openbsd_inetd):
    theirs = _inetd_observations("openbsd-inetd", inetd_setup, openbsd_inetd)
    ours = _inetd_observations("inetd2systemd", inetd_setup, openbsd_inetd)
    # The observations are meaningful on their own, not just equal:
    assert theirs["echo/tcp"] == b"hello, echo\r\n"
    assert theirs["discard/tcp"] == b""
    assert theirs["chargen/tcp"] and theirs["daytime/tcp"] and theirs["time/tcp"]
    assert theirs["cat"] == b"through /bin/cat\n" * 1000
    assert theirs["id"].startswith(b"uid=65534(nobody) gid=65534(nogroup)")
    assert theirs["tftp"] is True
    # nowait.3: the third start in a minute trips it; then connections are dropped
    assert theirs["rate"] == ["served", "served", "dropped", "dropped", "dropped"]
    assert ours == theirs


# -- against xinetd: UDP internals, env, only_from, instances, per_source, cps ------------------

XINETD_CONF = """\
defaults
{{
    log_type = FILE {work}/xinetd-services.log
    log_on_success = HOST PID EXIT
    log_on_failure = HOST
}}
{internals}
service i2s-cat
{{
    socket_type = stream
    protocol    = tcp
    wait        = no
    user        = root
    bind        = 127.0.0.1
    server      = /bin/cat
}}
service i2s-id
{{
    socket_type = stream
    wait        = no
    user        = nobody
    bind        = 127.0.0.1
    server      = /usr/bin/id
}}
service i2s-env
{{
    socket_type = stream
    wait        = no
    user        = root
    bind        = 127.0.0.1
    server      = /usr/bin/env
    passenv     = PATH
    env         = GREETING=hello LANG=C
}}
service i2s-limit
{{
    socket_type = stream
    wait        = no
    user        = root
    bind        = 127.0.0.1
    server      = /bin/cat
    instances   = 1
}}
service i2s-src
{{
    socket_type = stream
    wait        = no
    user        = root
    bind        = 127.0.0.1
    server      = /bin/cat
    per_source  = 1
}}
service i2s-deny
{{
    socket_type = stream
    wait        = no
    user        = root
    bind        = 127.0.0.1
    server      = /bin/cat
    only_from   = 127.0.0.2
}}
service i2s-rate
{{
    socket_type = stream
    wait        = no
    user        = root
    bind        = 127.0.0.1
    server      = /bin/cat
    cps         = 3 30
}}
service i2s-banner
{{
    socket_type    = stream
    wait           = no
    user           = root
    bind           = 127.0.0.1
    server         = /bin/cat
    only_from      = 127.0.0.2
    banner         = {work}/banner.txt
    banner_success = {work}/welcome.txt
    banner_fail    = {work}/go-away.txt
}}
service i2s-load
{{
    socket_type = stream
    wait        = no
    user        = root
    bind        = 127.0.0.1
    server      = /bin/cat
    max_load    = 0.001
}}
"""

_XINETD_INTERNAL = """
service {name}
{{
    type        = INTERNAL
    id          = {name}-{kind}
    socket_type = {kind}
    wait        = {wait}
    user        = root
    bind        = 127.0.0.1{extra}
}}
"""


def xinetd_text(work: Path) -> str:
    # discard-stream also shows instances for a service served in-process
    internals = "".join(_XINETD_INTERNAL.format(
        name=name, kind=kind, wait="no" if kind == "stream" else "yes",
        extra="\n    instances   = 1" if (name, kind) == ("discard", "stream") else "")
        for name in ("echo", "discard", "chargen", "daytime", "time")
        for kind in ("stream", "dgram"))
    return XINETD_CONF.format(work=work, internals=internals)


def tcp_from(source: str, port: int, send: bytes, hold: bool = False):
    """Connect from a chosen loopback address; with hold, return the open socket."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10 if hold else 5)  # generous: a loaded machine starts /bin/cat slowly
    s.bind((source, 0))
    try:
        s.connect(("127.0.0.1", port))
        if send:
            s.sendall(send)
        if hold:
            s.recv(len(send))  # the server runs: the slot is taken
            return s
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        return data
    except ConnectionRefusedError:
        return "refused"
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        return "reset"
    except OSError as exc:
        return f"error {exc.errno}"
    finally:
        if not hold:
            s.close()


def observe_limits(ports: Ports) -> dict:
    seen = {}
    held = tcp_from("127.0.0.1", ports["i2s-limit"], b"first\n", hold=True)
    assert isinstance(held, socket.socket), f"first connection to i2s-limit: {held}"
    seen["instances: second while first runs"] = outcome(
        tcp_from("127.0.0.3", ports["i2s-limit"], b"second\n"), b"second\n")
    held.sendall(b"still\n")
    seen["instances: first still served"] = held.recv(64) == b"still\n"
    held.close()
    # the server exits and is reaped: the slot frees (soon; the machine may be busy)
    deadline = time.monotonic() + 10
    while True:
        after = outcome(tcp_from("127.0.0.3", ports["i2s-limit"], b"third\n"), b"third\n")
        if after == "served" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    seen["instances: after the first left"] = after

    held = socket.create_connection(("127.0.0.1", ports["discard"]), timeout=10)
    held.sendall(b"into the void\n")
    time.sleep(0.3)  # accepted and being served
    seen["internal instances: second"] = tcp_exchange(ports["discard"], b"x\n")
    held.close()

    held = tcp_from("127.0.0.1", ports["i2s-src"], b"first\n", hold=True)
    assert isinstance(held, socket.socket), f"first connection to i2s-src: {held}"
    seen["per_source: same source"] = outcome(tcp_from("127.0.0.1", ports["i2s-src"], b"again\n"), b"again\n")
    seen["per_source: other source"] = outcome(tcp_from("127.0.0.4", ports["i2s-src"], b"other\n"), b"other\n")
    held.close()

    seen["only_from: listed"] = outcome(tcp_from("127.0.0.2", ports["i2s-deny"], b"hi\n"), b"hi\n")
    seen["only_from: not listed"] = outcome(tcp_from("127.0.0.1", ports["i2s-deny"], b"hi\n"), b"hi\n")
    # hosts.deny (libwrap, linked into Debian's xinetd) says "cat: 127.0.0.6"
    seen["libwrap: denied"] = outcome(tcp_from("127.0.0.6", ports["i2s-cat"], b"hi\n"), b"hi\n")
    seen["libwrap: others"] = outcome(tcp_from("127.0.0.7", ports["i2s-cat"], b"hi\n"), b"hi\n")
    seen["banners: granted"] = tcp_from("127.0.0.2", ports["i2s-banner"], b"payload\n")
    # nothing sent: a refused client's unread data would turn the close into a reset
    seen["banners: refused"] = tcp_from("127.0.0.1", ports["i2s-banner"], b"")

    # max_load 0.001: refused while the 1-minute load average is at or above it (both
    # read the same /proc/loadavg, so they agree whatever the machine is doing)
    seen["max_load"] = outcome(tcp_exchange(ports["i2s-load"], b"load\n"), b"load\n")

    # cps 3 30: a burst of four connections at once (well inside one second however
    # busy the machine is), then one more after the service went off
    burst = []
    for i in range(4):
        s = socket.create_connection(("127.0.0.1", ports["i2s-rate"]), timeout=10)
        try:
            s.sendall(f"c{i}\n".encode())
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # already dropped by the server: the read below says so
        burst.append(s)
    seen["cps"] = []
    for i, s in enumerate(burst):
        try:
            data = b""
            while chunk := s.recv(64):
                data += chunk
        except OSError:
            data = b"reset"
        s.close()
        seen["cps"].append(outcome(data, f"c{i}\n".encode()))
    seen["cps"].append(outcome(tcp_exchange(ports["i2s-rate"], b"c4\n"), b"c4\n"))
    return seen


@pytest.fixture(scope="module")
def xinetd_setup(inetd_setup):
    work, ports, services, _conf, _payload = inetd_setup
    conf = work / "xinetd.conf"
    conf.write_text(xinetd_text(work))
    (work / "banner.txt").write_text("i2s test host\r\n")
    (work / "welcome.txt").write_text("welcome\r\n")
    (work / "go-away.txt").write_text("go away\r\n")
    (work / "hosts.deny").write_text("cat: 127.0.0.6\n")
    return work, ports, services, conf


def _xinetd_observations(kind: str, setup, xinetd: str) -> dict:
    work, ports, services, conf = setup
    if kind == "xinetd":
        argv = [xinetd, "-dontfork", "-f", str(conf), "-pidfile", str(work / "xinetd.pid")]
    else:
        argv = ours_argv(conf)
    listening = [(ports[n], False) for n in ("echo", "i2s-cat", "i2s-rate", "i2s-deny", "i2s-env")] + \
                [(ports["echo"], True), (ports["time"], True)]
    daemon = Superserver(kind, argv, work, services, work / "hosts.deny").start(listening)
    try:
        seen = observe_internals(ports, udp=True)
        seen["cat"] = tcp_exchange(ports["i2s-cat"], b"through /bin/cat\n" * 100)
        seen["id"] = tcp_exchange(ports["i2s-id"])
        env = tcp_exchange(ports["i2s-env"])
        seen["env"] = sorted(line for line in env.decode().splitlines()
                             if not line.startswith("REMOTE_HOST=")) if isinstance(env, bytes) else env
        seen.update(observe_limits(ports))
        seen["alive"] = daemon.proc.poll() is None
        return seen
    finally:
        daemon.stop()


@needs_root
def test_same_results_as_xinetd(xinetd_setup, xinetd):
    theirs = _xinetd_observations("xinetd", xinetd_setup, xinetd)
    ours = _xinetd_observations("inetd2systemd", xinetd_setup, xinetd)
    assert theirs["echo/udp"] == b"hello, udp echo"
    assert theirs["discard/udp"] == "timeout"
    assert theirs["chargen/udp"] and theirs["daytime/udp"] and theirs["time/udp"]
    assert theirs["env"] == ["GREETING=hello", "LANG=C", f"PATH={os.environ['PATH']}"]
    assert theirs["instances: second while first runs"] == "dropped"
    assert theirs["instances: first still served"] is True
    assert theirs["per_source: same source"] == "dropped"
    assert theirs["per_source: other source"] == "served"
    assert theirs["internal instances: second"] in ("reset", b"")  # closed at once
    assert theirs["only_from: listed"] == "served"
    assert theirs["only_from: not listed"] == "dropped"
    assert theirs["libwrap: denied"] == "dropped" and theirs["libwrap: others"] == "served"
    assert theirs["banners: granted"] == b"i2s test host\r\nwelcome\r\npayload\n"
    assert theirs["banners: refused"] == b"i2s test host\r\ngo away\r\n"
    # cps 3 30: three served, the fourth trips it, then the socket is closed
    assert theirs["cps"] == ["served", "served", "served", "dropped", "refused"]
    assert ours == theirs
