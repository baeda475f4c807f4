"""The listener with real clients: logger in each mode, Python's SysLogHandler, rsyslog
forwarding to it and receiving from it, TLS; nothing lost per transport, across SIGHUP
(logrotate) and SIGTERM; kernel drops counted; a stuck client does not stall others."""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid

import pytest

from syslog_support import Listener, Rsyslog, free_ports, read_lines, send_tcp, wait_for

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/logger"), reason="needs util-linux logger")

CONFIG = """\
local0.*\t{d}/udp.log
local1.*\t-{d}/tcp.log
local2.*\t{d}/unix.log
local3.*\t@127.0.0.1:{rs_udp}
local3.*\t@@127.0.0.1:{rs_tcp}
local4.*\t-{d}/unixstream.log
local5.*\t-{d}/tls.log
*.*;local0.none;local1.none;local2.none;local3.none;local4.none;local5.none\t{d}/all.log
"""


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=localhost", "-days", "2",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def setup(tmp_path_factory, certificate):
    d = tmp_path_factory.mktemp("listener")
    rd = tmp_path_factory.mktemp("rsyslog")
    port, tls_port = free_ports(), free_ports()
    rs_udp, rs_tcp = free_ports(), free_ports()
    # rsyslog forwards local6 over UDP and local7 over TCP to us, and writes what we
    # forward to it (local3) to a file.
    rsyslog = Rsyslog(rd, f"local6.*\t@127.0.0.1:{port}\nlocal7.*\t@@127.0.0.1:{port}\n"
                          f"local3.*\t{rd}/from-ours.log\n", udp_port=rs_udp, tcp_port=rs_tcp,
                      extra="$ActionFileDefaultTemplate RSYSLOG_TraditionalFileFormat")
    sock, stream_sock = d / "log", d / "log-stream"
    listener = Listener(d, CONFIG.format(d=d, rs_udp=rs_udp, rs_tcp=rs_tcp),
                        [f"udp:127.0.0.1:{port}", f"tcp:127.0.0.1:{port}", f"unix:{sock}",
                         f"unix-stream:{stream_sock}", f"tls:127.0.0.1:{tls_port}"],
                        ("--tls-cert", str(certificate[0]), "--tls-key", str(certificate[1])))
    yield dict(dir=d, port=port, tls_port=tls_port, sock=sock, stream_sock=stream_sock,
               listener=listener, rsyslog_dir=rd, rs_udp=rs_udp)
    listener.stop()
    rsyslog.stop()


def _line_with(path, needle, timeout=10.0):
    return wait_for(lambda: next((l for l in read_lines(path) if needle in l), None), timeout)


HOST = socket.gethostname().split(".")[0]


@pytest.mark.parametrize("mode", ["unix", "udp", "tcp", "tcp-octet-count", "udp-rfc3164",
                                  "tcp-rfc5424-sd", "unix-rfc5424"])
def test_logger_in_each_mode(setup, mode):
    tag = f"lg{uuid.uuid4().hex[:8]}"
    target = {"unix": ["-u", str(setup["sock"])], "unix-rfc5424": ["-u", str(setup["sock"]), "--rfc5424"]}.get(
        mode, ["-n", "127.0.0.1", "-P", str(setup["port"])])
    flags = {"udp": ["-d"], "tcp": ["-T"], "tcp-octet-count": ["-T", "--octet-count"],
             "udp-rfc3164": ["-d", "--rfc3164"],
             "tcp-rfc5424-sd": ["-T", "--rfc5424", "--sd-id", "zoo@32473", "--sd-param", 'tiger="hungry"']}
    argv = ["logger", *target, *flags.get(mode, []), "-t", tag, "--id=4242", "-p", "daemon.warning",
            f"hello from {mode}"]
    subprocess.run(argv, check=True, timeout=10)
    line = _line_with(setup["dir"] / "all.log", tag)
    assert line is not None, f"{mode}: nothing arrived; stderr: {setup['listener'].stderr()}"
    # traditional format: time, host, tag[pid]: text; as rsyslog writes it, an RFC 5424
    # message's APP-NAME[PROCID] has no colon after it
    colon = ":" if mode in ("unix", "udp-rfc3164") else ""
    assert re.fullmatch(rf"\w{{3}} [ \d]\d \d\d:\d\d:\d\d {HOST} {tag}\[4242\]{colon} hello from {mode}",
                        line), line


def test_python_sysloghandler_udp_tcp_and_unix(setup):
    tag = f"py{uuid.uuid4().hex[:8]}"
    handlers = [logging.handlers.SysLogHandler(("127.0.0.1", setup["port"])),
                logging.handlers.SysLogHandler(("127.0.0.1", setup["port"]), socktype=socket.SOCK_STREAM),
                logging.handlers.SysLogHandler(str(setup["sock"]))]
    log = logging.getLogger(tag)
    log.propagate = False
    for i, h in enumerate(handlers):
        h.setFormatter(logging.Formatter(f"{tag}: via-{i} %(message)s"))
        h.ident = ""
        log.handlers = [h]
        log.error("something failed")
        h.close()
    for i in range(3):
        line = _line_with(setup["dir"] / "all.log", f"{tag}: via-{i} something failed")
        assert line is not None, i
    # SysLogHandler sends user.err (<11>) and no timestamp: the receive time is used.


def test_rsyslog_forwarding_to_us_over_udp_and_tcp(setup):
    tag = f"rs{uuid.uuid4().hex[:8]}"
    for facility, how in (("local6", "udp"), ("local7", "tcp")):
        subprocess.run(["logger", "-n", "127.0.0.1", "-P", str(setup["rs_udp"]), "-d", "--rfc3164",
                        "-t", tag, "-p", f"{facility}.info", f"relayed over {how}"], check=True)
    for how in ("udp", "tcp"):
        line = _line_with(setup["dir"] / "all.log", f"relayed over {how}", timeout=15)
        assert line is not None and f" {tag}: relayed over {how}" in line, how


def test_we_forward_to_rsyslog_over_udp_and_tcp(setup):
    tag = f"fw{uuid.uuid4().hex[:8]}"
    subprocess.run(["logger", "-n", "127.0.0.1", "-P", str(setup["port"]), "-T", "-t", tag,
                    "-p", "local3.notice", "forward me"], check=True)
    # Two rules (@ and @@) send it: rsyslog must receive it twice, intact.
    got = wait_for(lambda: [l for l in read_lines(setup["rsyslog_dir"] / "from-ours.log") if tag in l]
                   if len([l for l in read_lines(setup["rsyslog_dir"] / "from-ours.log") if tag in l]) >= 2
                   else None, timeout=15)
    assert got and len(got) == 2 and all(l.endswith(f"{HOST} {tag} forward me") for l in got), got


def test_tls_rfc5425(setup, certificate):
    tag = f"tls{uuid.uuid4().hex[:6]}"
    context = ssl.create_default_context(cafile=str(certificate[0]))
    with socket.create_connection(("127.0.0.1", setup["tls_port"])) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as s:
            frames = [b"<174>1 2024-01-02T03:04:05Z h1 %s - - - secure %d" % (tag.encode(), i)
                      for i in range(100)]
            s.sendall(b"".join(b"%d %s" % (len(f), f) for f in frames))
    assert wait_for(lambda: len([l for l in read_lines(setup["dir"] / "tls.log") if tag in l]) == 100)
    assert read_lines(setup["dir"] / "tls.log")[0] == f"Jan  2 03:04:05 h1 {tag} secure 0"


def _numbered(n: int, facility: int, run: str) -> list[bytes]:
    return [b"<%d>Nov 27 12:00:00 h loss: %s seq=%06d" % (facility * 8 + 6, run.encode(), i) for i in range(n)]


def _assert_all_once(path, run: str, n: int, timeout: float = 30.0) -> None:
    def seqs():
        return [int(l.rsplit("seq=", 1)[1]) for l in read_lines(path) if run in l]
    wait_for(lambda: len(seqs()) >= n, timeout)
    got = seqs()
    assert len(got) == n and sorted(got) == list(range(n)), \
        f"{len(got)} of {n}; missing {sorted(set(range(n)) - set(got))[:10]}"


N = 20000


@pytest.mark.parametrize("transport", ["udp", "tcp-lf", "tcp-octet", "unix", "unix-stream"])
def test_nothing_lost_per_transport(setup, transport):
    run = uuid.uuid4().hex[:8]
    facility, file = {"udp": (16, "udp.log"), "unix": (18, "unix.log"),
                      "unix-stream": (20, "unixstream.log")}.get(transport, (17, "tcp.log"))
    frames = _numbered(N, facility, run)
    if transport == "udp":
        # 20000 x ~50 bytes fit the 8 MiB receive buffer: UDP loss here would be ours.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for f in frames:
                s.sendto(f, ("127.0.0.1", setup["port"]))
    elif transport == "unix":
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(str(setup["sock"]))
            for f in frames:
                s.send(f)  # blocks while the queue is full: back-pressure, not loss
    elif transport == "unix-stream":
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(setup["stream_sock"]))
            s.sendall(b"".join(f + b"\n" for f in frames))
    else:
        send_tcp(setup["port"], frames, octet=transport == "tcp-octet")
    _assert_all_once(setup["dir"] / file, run, N)


def test_sighup_under_load_loses_nothing_and_reopens(setup):
    """logrotate: move the file away, SIGHUP, keep sending; old + new = everything."""
    run = uuid.uuid4().hex[:8]
    path = setup["dir"] / "tcp.log"
    frames = _numbered(N, 17, run)
    def send():
        for i in range(0, N, 500):
            send_tcp(setup["port"], frames[i:i + 500])
            time.sleep(0.01)
    sender = threading.Thread(target=send)
    sender.start()
    rotated = []
    for k in range(3):
        time.sleep(0.05)
        target = setup["dir"] / f"tcp.log.{run}.{k}"
        if path.exists():
            os.rename(path, target)
            rotated.append(target)
        setup["listener"].signal(signal.SIGHUP)
    sender.join()
    send_tcp(setup["port"], [b"<142>Nov 27 12:00:00 h after: %s rotation" % run.encode()])

    def seqs():
        out = []
        for p in [*rotated, path]:
            out += [int(l.rsplit("seq=", 1)[1]) for l in read_lines(p) if run in l and "seq=" in l]
        return out
    wait_for(lambda: len(seqs()) >= N, 30)
    got = seqs()
    assert sorted(got) == list(range(N))
    assert _line_with(path, f"{run} rotation"), "not reopened after SIGHUP"
    assert len(rotated) == 3 and all(any(run in l for l in read_lines(p)) for p in rotated[1:])
    assert setup["listener"].proc.poll() is None


def test_a_stuck_or_flooding_client_does_not_stall_others(setup):
    run = uuid.uuid4().hex[:8]
    stuck = socket.create_connection(("127.0.0.1", setup["port"]))
    stuck.sendall(b"<14>Nov 27 12:00:00 h stuck: a frame that never ends")
    flooder = socket.create_connection(("127.0.0.1", setup["port"]))
    flooder.sendall(b"9" * 8 + b"x" * 300_000)  # endless line, garbage count
    try:
        send_tcp(setup["port"], [b"<14>Nov 27 12:00:00 h ok: %s %d" % (run.encode(), i) for i in range(100)])
        assert wait_for(lambda: len([l for l in read_lines(setup["dir"] / "all.log") if run in l]) == 100)
    finally:
        stuck.close()
        flooder.close()
    # Closing ends the stuck frame: it is still delivered, not dropped.
    assert _line_with(setup["dir"] / "all.log", "a frame that never ends")
    assert setup["listener"].proc.poll() is None


def test_kernel_drops_are_counted_exactly(tmp_path):
    """Stop the listener, overflow its small UDP buffer, resume: the drops the kernel
    reports (SO_RXQ_OVFL) plus what was written equals what was sent."""
    port = free_ports()
    listener = Listener(tmp_path, f"*.*\t-{tmp_path}/out.log\n", [f"udp:127.0.0.1:{port}"],
                        ("--udp-buffer", "65536"))
    try:
        listener.signal(signal.SIGSTOP)
        sent = 3000
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(sent):
                s.sendto(b"<14>drop test %05d " % i + b"x" * 200, ("127.0.0.1", port))
        listener.signal(signal.SIGCONT)
        # Let it drain the full buffer first, so the last datagram finds room.
        counts = []
        wait_for(lambda: counts.append(len(read_lines(tmp_path / "out.log"))) or
                 (len(counts) > 5 and counts[-1] == counts[-6] > 0), timeout=10)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"<14>drop test last", ("127.0.0.1", port))  # carries the final counter
        assert _line_with(tmp_path / "out.log", "drop test last")
        written = len(read_lines(tmp_path / "out.log"))
        status = listener.status()
        drops = int(re.search(r"dropped by the kernel (\d+)", status)[1])
        assert drops > 0 and written + drops == sent + 1, status
    finally:
        listener.stop()


def test_sigterm_drains_what_was_sent(tmp_path):
    port = free_ports()
    listener = Listener(tmp_path, f"*.*\t-{tmp_path}/out.log\n", [f"tcp:127.0.0.1:{port}"])
    frames = _numbered(5000, 1, "drain")
    send_tcp(port, frames)
    assert listener.stop() == 0
    _assert_all_once(tmp_path / "out.log", "drain", 5000, timeout=1)


def test_cannot_listen_is_a_clear_failure(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = subprocess.run([*Listener.__init__.__globals__["PYTHON"].split(), "-m", "inetd2systemd",
                              "syslogd", "--config", "/dev/null", "--listen", f"tcp:127.0.0.1:{port}"],
                             capture_output=True, text=True, timeout=30)
    assert res.returncode == 3 and "cannot listen" in res.stderr


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.lists(st.binary(min_size=1, max_size=3000), min_size=1, max_size=5))
def test_hostile_input_on_a_live_listener_never_stops_it(setup, garbage):
    """Random bytes over UDP, TCP and the unix socket; afterwards it still serves."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as x, \
            socket.create_connection(("127.0.0.1", setup["port"])) as t:
        for chunk in garbage:
            u.sendto(chunk, ("127.0.0.1", setup["port"]))
            x.sendto(chunk, str(setup["sock"]))
            t.sendall(chunk)
    tag = uuid.uuid4().hex[:10]
    send_tcp(setup["port"], [b"<14>Nov 27 12:00:00 h alive: %s" % tag.encode()])
    assert _line_with(setup["dir"] / "all.log", tag), setup["listener"].stderr()[-2000:]
    assert setup["listener"].proc.poll() is None


def test_fifo_action(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    port = free_ports()
    listener = Listener(tmp_path, f"*.*\t|{fifo}\n", [f"udp:127.0.0.1:{port}"])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"<14>Nov 27 12:00:00 h fifo: through the pipe", ("127.0.0.1", port))
        data = wait_for(lambda: _read_some(reader))
        assert data == b"Nov 27 12:00:00 h fifo: through the pipe\n"
    finally:
        listener.stop()
        os.close(reader)


def _read_some(fd: int) -> bytes | None:
    try:
        return os.read(fd, 65536) or None
    except BlockingIOError:
        return None


def test_tcp_forwarding_octet_counted_and_a_dead_peer_never_stalls(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    dead = free_ports()  # nobody listens there
    port = free_ports()
    listener = Listener(tmp_path, f"*.*\t@@(o)127.0.0.1:{server.getsockname()[1]}\n"
                                  f"*.*\t@@127.0.0.1:{dead}\n*.*\t-{tmp_path}/out.log\n",
                        [f"udp:127.0.0.1:{port}"])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(50):
                s.sendto(b"<14>Nov 27 12:00:00 h fwd: n%02d" % i, ("127.0.0.1", port))
        # The unreachable peer costs nothing: the file still gets every message at once.
        assert wait_for(lambda: len(read_lines(tmp_path / "out.log")) == 50)
        server.settimeout(10)
        conn, _ = server.accept()
        conn.settimeout(10)
        data = b""
        while data.count(b"fwd:") < 50:
            data += conn.recv(65536)
        frame = b"<14>Nov 27 12:00:00 h fwd: n00"
        assert data.startswith(b"%d %s" % (len(frame), frame))
        conn.close()
    finally:
        listener.stop()
        server.close()


def test_tls_client_certificates_when_a_ca_is_given(tmp_path, certificate):
    client_cert, client_key = tmp_path / "client.pem", tmp_path / "client.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-subj", "/CN=client", "-days", "2", "-keyout", str(client_key),
                    "-out", str(client_cert)], check=True, capture_output=True)
    port = free_ports()
    listener = Listener(tmp_path, f"*.*\t-{tmp_path}/out.log\n", [f"tls:127.0.0.1:{port}"],
                        ("--tls-cert", str(certificate[0]), "--tls-key", str(certificate[1]),
                         "--tls-ca", str(client_cert)))
    try:
        def send(with_cert: bool, text: bytes) -> None:
            context = ssl.create_default_context(cafile=str(certificate[0]))
            if with_cert:
                context.load_cert_chain(str(client_cert), str(client_key))
            try:
                with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=2),
                                         server_hostname="localhost") as s:
                    frame = b"<14>Nov 27 12:00:00 h tls: " + text
                    s.sendall(b"%d %s" % (len(frame), frame))
                    s.recv(1)  # TLS 1.3 reports a refused certificate only on the next read
            except (ssl.SSLError, OSError):  # refused, or (accepted) nothing to read
                pass
        send(False, b"anonymous")
        send(True, b"authenticated")
        assert _line_with(tmp_path / "out.log", "authenticated")
        assert not any("anonymous" in l for l in read_lines(tmp_path / "out.log"))
        assert "TLS handshake with 127.0.0.1 failed" in listener.stderr()
    finally:
        listener.stop()
