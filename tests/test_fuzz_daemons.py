"""Fuzzing both daemons while they run: hostile bytes at a live `syslogd` and a live
`serve` over TCP, UDP and unix sockets (stream and datagram), connections closed
cleanly, reset, or left half-written.

After every generated example the daemon is still running and still answers on every
transport. For syslogd the counters add up (received = written + dropped + not selected)
and the file holds exactly one line per message written: one bad message costs at most
itself (issue 14). For serve, every connection it accepted is closed again and every
child it started is reaped: nothing leaks however a client misbehaves.

Each example talks to a real process, so the budget is a tenth of FUZZ_EXAMPLES.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest
from hypothesis import given, strategies as st

from fuzz_support import FUZZ_EXAMPLES, fuzz_settings, regression_cases
from support import free_port, wait_for
from syslog_support import Listener, self_signed_certificate, terminate

BUDGET = max(10, FUZZ_EXAMPLES // 10)

# Every input that ever broke the syslog path, and the shapes behind issue 14's crashes.
SEEDS = [data for parser in ("syslog-message", "syslog-framing")
         for _, data in regression_cases(parser)] + [
    b"<14>1 2024-01-xxT00:00:00Z host app 1 - - day xx",
    b"<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 [ex@1 a=\"\\]\"] text",
    b"<13>Oct 11 22:14:15 host sshd[123]: \x1b[31mred\x07\r\x00",
    b"<189>16261: *May 28 16:09:56.185: %SYS-5-CONFIG_I: Configured from console",
    b"99999999999 ", b"012 ab\n", b"17 <13>short", b"<999>", b"<", b"\xff\xfe\xfd",
]


@st.composite
def _mutated(draw) -> bytes:
    """A seed with a few bytes replaced, inserted or removed."""
    out = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(out)))
        byte = draw(st.integers(0, 255))
        if not out or draw(st.booleans()):
            out.insert(at, byte)
        else:
            out[min(at, len(out) - 1)] = byte
    return bytes(out)


chunks = st.one_of(st.binary(max_size=2000), st.sampled_from(SEEDS), _mutated(),
                   st.integers(1, 70_000).map(lambda n: b"7" * 5 + b"x" * n))  # past the limits
# How a stream client leaves: closing, resetting (RST), or half-closing and vanishing.
endings = st.sampled_from(["close", "reset", "shutdown"])


def _end(s: socket.socket, how: str) -> None:
    if how == "reset":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    elif how == "shutdown":
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    s.close()


def _stream(family: int, address, data: list[bytes], how: str) -> None:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        try:
            s.connect(address)
            for chunk in data:
                s.sendall(chunk)
        except OSError:
            pass  # the daemon may cut a hostile client off; that is its right
        _end(s, how)


def _datagrams(family: int, address, data: list[bytes]) -> None:
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        for chunk in data:
            try:
                s.sendto(chunk[:65000], address)
            except OSError:
                pass  # a unix datagram past the socket's size limit


# -- syslogd -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def syslogd(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz-syslogd")
    cert, key = self_signed_certificate(d)
    port, tls_port = free_port(), free_port()
    listener = Listener(d, f"*.*;mail.none\t-{d}/out.log\n",
                        [f"udp:127.0.0.1:{port}", f"tcp:127.0.0.1:{port}", f"unix:{d}/log",
                         f"unix-stream:{d}/log-stream", f"tls:127.0.0.1:{tls_port}"],
                        ("--tls-cert", str(cert), "--tls-key", str(key)))
    yield dict(dir=d, listener=listener, port=port, tls_port=tls_port,
               addresses={"tcp": (socket.AF_INET, ("127.0.0.1", port)),
                          "udp": (socket.AF_INET, ("127.0.0.1", port)),
                          "unix": (socket.AF_UNIX, str(d / "log")),
                          "unix-stream": (socket.AF_UNIX, str(d / "log-stream")),
                          "tls": (socket.AF_INET, ("127.0.0.1", tls_port))})
    assert listener.stop() == 0, listener.stderr()[-3000:]


def _lines_written(path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@fuzz_settings(max_examples=BUDGET)
@given(sends=st.lists(st.tuples(st.sampled_from(["tcp", "udp", "unix", "unix-stream", "tls"]),
                                st.lists(chunks, min_size=1, max_size=6), endings),
                      min_size=1, max_size=5))
def test_hostile_bytes_on_every_transport_cost_at_most_themselves(syslogd, sends):
    listener, out = syslogd["listener"], syslogd["dir"] / "out.log"
    for transport, data, how in sends:
        family, address = syslogd["addresses"][transport]
        if transport in ("udp", "unix"):
            _datagrams(family, address, data)
        else:  # raw bytes at the TLS port too: a handshake that is garbage
            _stream(family, address, data, how)
    # afterwards every plain transport still delivers, and every message is accounted for
    tag = uuid.uuid4().hex[:12]
    for transport in ("tcp", "udp", "unix", "unix-stream"):
        family, address = syslogd["addresses"][transport]
        alive = [b"<14>Nov 27 12:00:00 h alive: %s %s" % (tag.encode(), transport.encode())]
        (_datagrams if transport in ("udp", "unix") else
         lambda f, a, d: _stream(f, a, [d[0] + b"\n"], "close"))(family, address, alive)
    assert wait_for(lambda: out.read_bytes().count(tag.encode()) == 4, timeout=20), \
        listener.stderr()[-3000:]
    assert listener.proc.poll() is None
    assert "internal error" not in listener.stderr(), listener.stderr()[-3000:]

    def adds_up() -> dict | None:
        c = listener.counters()
        ok = (c["received"] == c["written"] + c["dropped"] + c["unselected"]
              and _lines_written(out) == c["written"])
        return None if not ok else c
    assert wait_for(adds_up, timeout=10), (listener.counters(), _lines_written(out))


# -- serve ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz-serve")
    echo, discard, cat = free_port(), free_port(), free_port()
    services = d / "services"
    services.write_text(f"echo\t{echo}/tcp\necho\t{echo}/udp\ndiscard\t{discard}/tcp\n"
                        f"discard\t{discard}/udp\ni2s-cat\t{cat}/tcp\n")
    user = getpass.getuser()
    conf = d / "inetd.conf"
    # .100000: inetd's default rate limit (256 starts a minute, then 10 minutes off) is
    # meant to trip, and would under a long campaign
    base = (f"127.0.0.1:echo    stream tcp4 nowait.100000 {user} internal\n"
                    f"127.0.0.1:echo    dgram  udp4 wait.100000 {user} internal\n"
                    f"127.0.0.1:discard stream tcp4 nowait.100000 {user} internal\n"
                    f"127.0.0.1:discard dgram  udp4 wait.100000 {user} internal\n"
                    f"127.0.0.1:i2s-cat stream tcp4 nowait.100000 {user} /bin/cat cat\n"
                    f"{d}/echo          stream unix nowait.100000 {user} internal\n")
    conf.write_text(base)
    err = (d / "serve.err").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "inetd2systemd", "serve", "-c", str(conf),
                             "--services", str(services), "--foreground"],
                            stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    err.close()
    ports = {"tcp": echo, "cat": cat, "discard": discard}
    assert wait_for(lambda: proc.poll() is not None or _echo_tcp(echo, b"up\n") == b"up\n"), \
        (d / "serve.err").read_text()
    assert proc.poll() is None, (d / "serve.err").read_text()
    baseline = wait_for(lambda: _held(proc.pid)[0] if not _held(proc.pid)[1] else None)
    yield dict(dir=d, proc=proc, ports=ports, baseline=baseline, conf=conf, base=base,
               log=lambda: (d / "serve.err").read_text(errors="replace"),
               addresses={"tcp": (socket.AF_INET, ("127.0.0.1", echo)),
                          "udp": (socket.AF_INET, ("127.0.0.1", echo)),
                          "discard": (socket.AF_INET, ("127.0.0.1", discard)),
                          "discard-udp": (socket.AF_INET, ("127.0.0.1", discard)),
                          "cat": (socket.AF_INET, ("127.0.0.1", cat)),
                          "unix": (socket.AF_UNIX, str(d / "echo"))})
    terminate(proc)


def _echo_tcp(port_or_path, payload: bytes, family: int = socket.AF_INET) -> bytes | None:
    address = ("127.0.0.1", port_or_path) if family == socket.AF_INET else port_or_path
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(address)
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := s.recv(65536):
                got += chunk
            return got
    except OSError:
        return None


def _echo_udp(port: int, payload: bytes) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(payload, ("127.0.0.1", port))
        try:
            return s.recv(65536)
        except OSError:
            return None


def _held(pid: int) -> tuple[int, list[int]]:
    """Descriptors the daemon holds, and its children (pids)."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(p) for p in f.read().split()]
    except FileNotFoundError:
        children = []
    return fds, children


def _reload(serve, text: bytes) -> None:
    """Write the configuration, SIGHUP, wait until serve says how the reload went."""
    before = serve["log"]().count("reload")
    serve["conf"].write_bytes(text)
    serve["proc"].send_signal(signal.SIGHUP)
    assert wait_for(lambda: serve["log"]().count("reload") > before, timeout=10), serve["log"]()


# The inetd.conf inputs that ever broke the reader (one was a reload that ended serve).
BAD_CONFIGURATIONS = [data for _, data in regression_cases("inetd")]


@fuzz_settings(max_examples=BUDGET)
@given(sends=st.lists(st.tuples(st.sampled_from(["tcp", "udp", "discard", "discard-udp", "cat",
                                                 "unix"]),
                                st.lists(chunks, min_size=1, max_size=4), endings),
                      max_size=5),
       extra=st.one_of(st.none(), st.sampled_from(BAD_CONFIGURATIONS), st.binary(max_size=300)))
def test_hostile_clients_never_stop_serve_or_leak_a_connection(serve, sends, extra):
    """Hostile clients, and a reload of the configuration with a bad entry added (then
    one back to the first): serve keeps running and keeps serving what it served."""
    proc = serve["proc"]
    if extra is not None:
        _reload(serve, serve["base"].encode() + extra)
    for target, data, how in sends:
        family, address = serve["addresses"][target]
        if target in ("udp", "discard-udp"):
            _datagrams(family, address, data)
        else:
            _stream(family, address, data, how)
    assert proc.poll() is None, serve["log"]()[-3000:]
    assert "Traceback" not in serve["log"]() and "internal error" not in serve["log"](), \
        serve["log"]()[-3000:]
    tag = uuid.uuid4().hex.encode()
    assert wait_for(lambda: _echo_tcp(serve["ports"]["tcp"], tag) == tag, timeout=10), \
        serve["log"]()[-3000:]
    assert wait_for(lambda: _echo_udp(serve["ports"]["tcp"], tag) == tag, timeout=10), \
        serve["log"]()[-3000:]
    assert _echo_tcp(serve["addresses"]["unix"][1], tag, socket.AF_UNIX) == tag
    assert _echo_tcp(serve["ports"]["cat"], tag) == tag
    if extra is not None:
        _reload(serve, serve["base"].encode())
    # every connection closed again, every child reaped: the daemon is back where it began
    assert wait_for(lambda: _held(proc.pid) == (serve["baseline"], []), timeout=10), \
        (_held(proc.pid), serve["baseline"], serve["log"]()[-3000:])
