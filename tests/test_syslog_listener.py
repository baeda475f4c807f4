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

from support import free_port, wait_for
from syslog_support import (PYTHON, Listener, Rsyslog, forked_as, read_lines, self_signed_certificate,
                            send_tcp)

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
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory, certificate):
    d = tmp_path_factory.mktemp("listener")
    port, tls_port = free_port(), free_port()
    rs_udp, rs_tcp = free_port(), free_port()  # where `rsyslog` listens, when a test starts it
    sock, stream_sock = d / "log", d / "log-stream"
    listener = Listener(d, CONFIG.format(d=d, rs_udp=rs_udp, rs_tcp=rs_tcp),
                        [f"udp:127.0.0.1:{port}", f"tcp:127.0.0.1:{port}", f"unix:{sock}",
                         f"unix-stream:{stream_sock}", f"tls:127.0.0.1:{tls_port}"],
                        ("--tls-cert", str(certificate[0]), "--tls-key", str(certificate[1])))
    yield dict(dir=d, port=port, tls_port=tls_port, sock=sock, stream_sock=stream_sock,
               listener=listener, rs_udp=rs_udp, rs_tcp=rs_tcp)
    listener.stop()


@pytest.fixture(scope="module")
def rsyslog(setup, rsyslogd, tmp_path_factory):
    """The real rsyslogd beside the listener: it forwards local6 over UDP and local7 over
    TCP to us, and writes what we forward to it (local3) to a file; its directory."""
    rd = tmp_path_factory.mktemp("rsyslog")
    port = setup["port"]
    daemon = Rsyslog(rsyslogd, rd, f"local6.*\t@127.0.0.1:{port}\nlocal7.*\t@@127.0.0.1:{port}\n"
                                   f"local3.*\t{rd}/from-ours.log\n",
                     udp_port=setup["rs_udp"], tcp_port=setup["rs_tcp"],
                     extra="$ActionFileDefaultTemplate RSYSLOG_TraditionalFileFormat")
    yield rd
    daemon.stop()


def _line_with(path, needle, timeout=10.0):
    return wait_for(lambda: next((l for l in read_lines(path) if needle in l), None), timeout)


HOST = socket.gethostname().split(".")[0]


@pytest.mark.parametrize("mode", ["unix", "udp", "tcp", "tcp-octet-count", "udp-rfc3164",
                                  "tcp-rfc5424-sd", "unix-rfc5424"])
def test_logger_in_each_mode(setup, logger, mode):
    tag = f"lg{uuid.uuid4().hex[:8]}"
    target = {"unix": ["-u", str(setup["sock"])], "unix-rfc5424": ["-u", str(setup["sock"]), "--rfc5424"]}.get(
        mode, ["-n", "127.0.0.1", "-P", str(setup["port"])])
    flags = {"udp": ["-d"], "tcp": ["-T"], "tcp-octet-count": ["-T", "--octet-count"],
             "udp-rfc3164": ["-d", "--rfc3164"],
             "tcp-rfc5424-sd": ["-T", "--rfc5424", "--sd-id", "zoo@32473", "--sd-param", 'tiger="hungry"']}
    argv = [logger, *target, *flags.get(mode, []), "-t", tag, "--id=4242", "-p", "daemon.warning",
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


def test_rsyslog_forwarding_to_us_over_udp_and_tcp(setup, rsyslog, logger):
    tag = f"rs{uuid.uuid4().hex[:8]}"
    for facility, how in (("local6", "udp"), ("local7", "tcp")):
        subprocess.run([logger, "-n", "127.0.0.1", "-P", str(setup["rs_udp"]), "-d", "--rfc3164",
                        "-t", tag, "-p", f"{facility}.info", f"relayed over {how}"], check=True)
    for how in ("udp", "tcp"):
        line = _line_with(setup["dir"] / "all.log", f"relayed over {how}", timeout=15)
        assert line is not None and f" {tag}: relayed over {how}" in line, how


def test_we_forward_to_rsyslog_over_udp_and_tcp(setup, rsyslog, logger):
    tag = f"fw{uuid.uuid4().hex[:8]}"
    subprocess.run([logger, "-n", "127.0.0.1", "-P", str(setup["port"]), "-T", "-t", tag,
                    "-p", "local3.notice", "forward me"], check=True)
    # Two rules (@ and @@) send it: rsyslog must receive it twice, intact.
    got = wait_for(lambda: [l for l in read_lines(rsyslog / "from-ours.log") if tag in l]
                   if len([l for l in read_lines(rsyslog / "from-ours.log") if tag in l]) >= 2
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
        # 20000 datagrams (the kernel charges ~1.3 KB each) fit the 32 MiB receive buffer:
        # UDP loss here would be ours.
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
        if wait_for(path.exists, 5):  # the previous SIGHUP made it anew
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
    counted plus what was written equals what was sent, as soon as SIGUSR1 asks (no
    later datagram needed to carry the kernel's counter)."""
    port = free_port()
    listener = Listener(tmp_path, f"*.*\t-{tmp_path}/out.log\n", [f"udp:127.0.0.1:{port}"],
                        ("--udp-buffer", "65536"))
    try:
        listener.signal(signal.SIGSTOP)
        sent = 3000
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(sent):
                s.sendto(b"<14>drop test %05d " % i + b"x" * 200, ("127.0.0.1", port))
        listener.signal(signal.SIGCONT)
        counts = []
        wait_for(lambda: counts.append(len(read_lines(tmp_path / "out.log"))) or
                 (len(counts) > 5 and counts[-1] == counts[-6] > 0), timeout=10)
        written = len(read_lines(tmp_path / "out.log"))
        c = listener.counters()
        assert c["kernel"] > 0 and written + c["kernel"] == sent, c
        assert c["received"] == c["written"] == written
    finally:
        listener.stop()


def test_the_receive_buffer_granted_is_said_at_start(tmp_path):
    port = free_port()
    listener = Listener(tmp_path, f"*.*\t-{tmp_path}/out.log\n",
                        [f"udp:127.0.0.1:{port}", f"unix:{tmp_path}/log", f"tcp:127.0.0.1:{port}"],
                        ("--udp-buffer", "196608"))
    try:
        said = listener.stderr()
        assert f"udp 127.0.0.1:{port} (receive buffer 192 KiB)" in said, said
        assert f"unix {tmp_path}/log (receive buffer 192 KiB)" in said, said
        assert f"tcp 127.0.0.1:{port};" in said, said
    finally:
        listener.stop()


def test_sigterm_drains_what_was_sent(tmp_path):
    port = free_port()
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
    assert res.returncode == 3 and f"cannot listen on tcp:127.0.0.1:{port}: Address already in use" \
        in res.stderr, res.stderr


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
    port = free_port()
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
    dead = free_port()  # nobody listens there
    port = free_port()
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
    port = free_port()
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


# -- one bad message, counters ------------------------------------------------------------

BAD_5424 = b"<14>1 2024-01-xxT00:00:00Z host app 1 - - the bad one"  # the invalid day


@pytest.mark.parametrize("transport", ["tcp", "udp", "unix"])
def test_one_bad_message_costs_at_most_itself_and_the_counters_add_up(tmp_path, transport):
    """The issue's case: 400 good messages with one bad one among them, in one read batch:
    every good one is written, and received = written + dropped + not selected."""
    port = free_port()
    sock = tmp_path / "log"
    listener = Listener(tmp_path, f"*.*;mail.none\t-{tmp_path}/out.log\n",
                        [f"tcp:127.0.0.1:{port}", f"udp:127.0.0.1:{port}", f"unix:{sock}"])
    try:
        frames = [b"<14>1 2024-01-02T03:04:05Z host app - - - good %03d" % i for i in range(400)]
        frames.insert(200, BAD_5424)
        frames.append(b"<22>not selected: mail.info")
        if transport == "tcp":
            send_tcp(port, frames)
        else:
            family, address = ((socket.AF_INET, ("127.0.0.1", port)) if transport == "udp"
                               else (socket.AF_UNIX, str(sock)))
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                for frame in frames:
                    s.sendto(frame, address)
        assert wait_for(lambda: len([l for l in read_lines(tmp_path / "out.log") if "good" in l]) == 400)
        c = listener.counters()
        assert c["received"] == 402 and c["unselected"] == 1, c
        assert c["received"] == c["written"] + c["dropped"] + c["unselected"], c
    finally:
        listener.stop()


def test_counters_run_on_across_sighup_and_warnings_come_once_per_load(tmp_path):
    port = free_port()
    listener = Listener(tmp_path, f"$RepeatedMsgReduction on\n*.*\t-{tmp_path}/out.log\n",
                        [f"tcp:127.0.0.1:{port}"])
    try:
        send_tcp(port, [b"<14>before %d" % i for i in range(30)])
        assert wait_for(lambda: len(read_lines(tmp_path / "out.log")) == 30)
        listener.signal(signal.SIGHUP)
        assert wait_for(lambda: listener.stderr().count("$RepeatedMsgReduction") == 2)
        send_tcp(port, [b"<14>after %d" % i for i in range(20)])
        assert wait_for(lambda: len(read_lines(tmp_path / "out.log")) == 50)
        c = listener.counters()
        assert (c["received"], c["written"], c["dropped"]) == (50, 50, 0), c
        # once at start (not once more when the first rules were built), once per SIGHUP
        assert listener.stderr().count("$RepeatedMsgReduction") == 2
    finally:
        listener.stop()


def test_a_forward_to_an_unresolvable_host_never_touches_the_file_rule(tmp_path):
    port = free_port()
    listener = Listener(tmp_path, f"*.*\t@no-such-host.invalid:5514\n*.*\t-{tmp_path}/out.log\n",
                        [f"tcp:127.0.0.1:{port}"])
    try:
        send_tcp(port, [b"<14>message %d" % i for i in range(400)])
        assert wait_for(lambda: len(read_lines(tmp_path / "out.log")) == 400)
        c = listener.counters()
        assert c["written"] == 400 and c["dropped"] == 400, c  # one drop per forwarded message
        assert listener.stderr().count("no-such-host.invalid") == 1  # reported once, not 400 times
    finally:
        listener.stop()


# -- bounded under abuse ------------------------------------------------------------------

def _enough_descriptors(count: int) -> None:
    """Raise this process's descriptor limit to `count` (a CI shell's is often 1024)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < count:
        pytest.skip(f"needs {count} descriptors; the hard limit is {hard}")
    if soft != resource.RLIM_INFINITY and soft < count:
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


def _connect_many(address: tuple[str, int], count: int, source: str) -> list[socket.socket]:
    """`count` connections from `source` (127.0.0.x: a source of its own on loopback),
    opened without waiting for each to be accepted."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket()
            socks.append(s)
            s.bind((source, 0))
            s.setblocking(False)
            s.connect_ex(address)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def test_idle_connections_from_one_source_do_not_keep_another_out(tmp_path):
    """1,100 idle connections from 127.0.0.2: a message from 127.0.0.3 is still written
    within a second (the limit per source refuses the rest of 127.0.0.2's)."""
    _enough_descriptors(4096)
    port = free_port()
    listener = Listener(tmp_path, f"*.*\t-{tmp_path}/out.log\n", [f"tcp:127.0.0.1:{port}"])
    idle = _connect_many(("127.0.0.1", port), 1100, "127.0.0.2")
    try:
        wait_for(lambda: listener.counters()["connections"] == 32, timeout=10)
        started = time.monotonic()
        with socket.socket() as s:
            s.bind(("127.0.0.3", 0))
            s.connect(("127.0.0.1", port))
            s.sendall(b"<14>legitimate\n")
            assert wait_for(lambda: read_lines(tmp_path / "out.log"), timeout=5, interval=0.01)
        elapsed = time.monotonic() - started
        print(f"written {elapsed * 1000:.0f} ms after connecting, beside 1,100 idle connections")
        assert elapsed < 1.0
        c = listener.status()
        assert "open connections 32" in c or "open connections 33" in c, c
        assert "connections refused" in c
        assert listener.stderr().count("the limit per source") <= 2  # not one line per refusal
    finally:
        for s in idle:
            s.close()
        listener.stop()


def test_tls_clients_that_reset_before_being_accepted_cost_only_themselves(tmp_path, certificate):
    """Found by tests/test_fuzz_daemons.py: a TLS client reset while it waited to be
    accepted made wrap_socket raise in the accept loop, an internal error (and a
    traceback in the log) that any client could cause at will."""
    port, tls_port = free_port(), free_port()
    listener = Listener(tmp_path, f"*.*\t-{tmp_path}/out.log\n",
                        [f"tcp:127.0.0.1:{port}", f"tls:127.0.0.1:{tls_port}"],
                        ("--tls-cert", str(certificate[0]), "--tls-key", str(certificate[1])))
    try:
        listener.signal(signal.SIGSTOP)  # the resets all arrive before the accepts
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", tls_port)) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        listener.signal(signal.SIGCONT)
        send_tcp(port, [b"<14>after the resets"])
        assert _line_with(tmp_path / "out.log", "after the resets")
        assert listener.counters()["connections"] == 0
        assert "internal error" not in listener.stderr(), listener.stderr()[-3000:]
    finally:
        listener.stop()


def test_idle_connections_and_unfinished_tls_handshakes_time_out(tmp_path, certificate):
    port, tls_port = free_port(), free_port()
    listener = Listener(tmp_path, f"*.*\t-{tmp_path}/out.log\n",
                        [f"tcp:127.0.0.1:{port}", f"tls:127.0.0.1:{tls_port}"],
                        ("--tls-cert", str(certificate[0]), "--tls-key", str(certificate[1]),
                         "--idle-timeout", "1", "--handshake-timeout", "1"))
    try:
        started = time.monotonic()
        idle = socket.create_connection(("127.0.0.1", port))
        idle.sendall(b"<14>a frame not yet ended")  # what it held is still delivered
        silent = socket.create_connection(("127.0.0.1", tls_port))  # never says hello
        for s in (idle, silent):
            s.settimeout(10)
            assert s.recv(1) == b"", "not closed"
            s.close()
        assert 1.0 <= time.monotonic() - started < 5
        assert _line_with(tmp_path / "out.log", "a frame not yet ended")
        assert "TLS handshake with 127.0.0.1 not finished" in listener.stderr()
    finally:
        listener.stop()


def test_memory_stays_bounded_with_partial_frames_on_1000_connections(tmp_path):
    """1,000 connections each holding a partial 200 KB frame: the bytes held are bounded
    by the budget (frames past it are cut and delivered, counted), and the memory comes
    back when they close."""
    _enough_descriptors(4096)  # the listener inherits it
    port = free_port()
    listener = Listener(tmp_path, f"*.*\t-/dev/null\n", [f"tcp:127.0.0.1:{port}"])
    conns: list[socket.socket] = []
    try:
        before = listener.rss_kb()
        body = b"<14>" + b"x" * 199_980  # with 10 more: a count of 199,994, under the 200,000 honoured
        peak = 0
        for source in range(2, 42):  # 40 sources x 25 connections (under the limit per source)
            for s in _connect_many(("127.0.0.1", port), 25, f"127.0.0.{source}"):
                s.setblocking(True)
                s.sendall(b"%d " % (len(body) + 10) + body)  # 10 bytes short: never complete
                conns.append(s)
            peak = max(peak, listener.rss_kb())
        assert wait_for(lambda: listener.counters()["connections"] == 1000, timeout=30)
        time.sleep(0.5)
        peak = max(peak, listener.rss_kb())
        status = listener.status()
        for s in conns:
            s.close()
        conns.clear()
        assert wait_for(lambda: listener.counters()["connections"] == 0, timeout=30)
        # The freed heap goes back to the system at the next sweep (once a second).
        wait_for(lambda: listener.rss_kb() < 50 * 1024, timeout=5, interval=0.2)
        after = listener.rss_kb()
        print(f"RSS: {before // 1024} MiB at start, peak {peak // 1024} MiB, {after // 1024} MiB "
              f"after they closed; {status}")
        assert "frames cut to stay within the memory budget" in status
        assert peak < 100 * 1024 and after < 50 * 1024, (before, peak, after)
        c = listener.counters()
        # every byte sent became part of some message: each connection's frame is
        # delivered whole, or cut (once or more) and the rest delivered when it closed
        assert c["received"] >= 1000 and c["written"] == c["received"], c
    finally:
        for s in conns:
            s.close()
        listener.stop()


def test_out_of_descriptors_the_accept_loop_rests_and_says_so_once(tmp_path):
    import resource

    def few_descriptors():
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))

    port = free_port()
    listener = Listener(tmp_path, f"*.*\t-{tmp_path}/out.log\n", [f"tcp:127.0.0.1:{port}"],
                        ("--max-per-source", "1000"), preexec_fn=few_descriptors)
    clients = []
    try:
        clients = _connect_many(("127.0.0.1", port), 60, "127.0.0.2")
        assert wait_for(lambda: "Too many open files" in listener.stderr(), timeout=10)
        cpu = listener.cpu_seconds()
        time.sleep(3)
        spent = listener.cpu_seconds() - cpu
        assert spent < 0.5, f"{spent:.2f} s of CPU in 3 s while out of descriptors: spinning"
        assert listener.stderr().count("Too many open files") == 1
        for s in clients:
            s.close()
        clients = []
        send_tcp(port, [b"<14>room again"])
        assert _line_with(tmp_path / "out.log", "room again")
        assert "accepting again" in listener.stderr()
    finally:
        for s in clients:
            s.close()
        listener.stop()


# -- root-run paths ---------------------------------------------------------------------

ATTACK_SECONDS = 3.0


@pytest.mark.skipif(os.geteuid() != 0, reason="runs an attacker as the user nobody: needs root")
def test_a_symlink_swapped_in_while_binding_never_changes_another_file(tmp_path):
    """An attacker running as nobody owns the socket's directory: syslogd refuses to make
    its socket there at all. Should root's socket code bind in such a directory anyway
    while the attacker swaps a link to a root file in at the socket's name in a tight
    loop (binding and removing the socket again hundreds of times), the root file keeps
    its mode and owner every time, and is never removed."""
    import pwd
    import shutil
    import tempfile

    from inetd2systemd.socketfiles import bind_unix, remove_socket_file
    from inetd2systemd.syslog.cli import open_input
    from inetd2systemd.errors import ConfigError

    nobody = pwd.getpwnam("nobody")
    base = tempfile.mkdtemp(dir="/tmp")  # reachable by nobody (pytest's tmp is not)
    try:
        os.chmod(base, 0o755)
        target = os.path.join(base, "root-only")
        with open(target, "w") as f:
            f.write("secret\n")
        os.chmod(target, 0o600)
        socks = os.path.join(base, "socks")
        os.mkdir(socks, 0o755)
        os.chown(socks, nobody.pw_uid, nobody.pw_gid)
        path = os.path.join(socks, "log")
        with pytest.raises(ConfigError) as refused_at_once:
            open_input(f"unix:{path}", 65536)
        assert f"{path}: not created: {socks} belongs to nobody" \
            in str(refused_at_once.value)
        deeper = os.path.join(socks, "sub", "log")
        with pytest.raises(ConfigError, match="belongs to nobody"):
            open_input(f"unix:{deeper}", 65536)
        assert not os.path.exists(os.path.dirname(deeper))  # nothing made under it first

        def attack() -> None:
            link = os.path.join(socks, "link")
            deadline = time.monotonic() + ATTACK_SECONDS
            n = 0
            while time.monotonic() < deadline:
                n += 1
                try:
                    os.unlink(path)  # the name is free for a moment: the listener binds
                except OSError:
                    pass
                for _ in range(n % 200):  # a varying pause, to land inside its steps
                    pass
                try:
                    os.symlink(target, link)
                    os.rename(link, path)  # replaces the socket just bound, if any
                except OSError:
                    pass

        attacker = forked_as(nobody, attack)
        binds = refused = 0
        deadline = time.monotonic() + ATTACK_SECONDS
        try:
            while time.monotonic() < deadline:
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                    try:
                        inode = bind_unix(sock, path, 0o666)
                    except OSError:  # bind() found the name taken (it never follows a link)
                        refused += 1
                    else:
                        binds += 1
                        remove_socket_file(path, inode)
                st = os.stat(target)
                assert (st.st_mode & 0o7777, st.st_uid) == (0o600, 0), \
                    f"after {binds} binds: mode {st.st_mode & 0o7777:o}, owner {st.st_uid}"
        finally:
            os.waitpid(attacker, 0)
        print(f"{binds} binds and {refused} refusals under attack; the target kept 0600 root")
        assert binds > 20 and refused > 20, (binds, refused)  # both sides really raced
        with open(target) as f:
            assert f.read() == "secret\n"
    finally:
        shutil.rmtree(base)


def test_the_unix_socket_is_made_0666_and_a_stale_one_is_replaced(tmp_path):
    path = tmp_path / "log"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(path))
    stale.close()  # a socket file nobody listens on any more
    listener = Listener(tmp_path, f"*.*\t-{tmp_path}/out.log\n", [f"unix:{path}"])
    try:
        assert os.stat(path).st_mode & 0o777 == 0o666
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"<14>through the replaced socket", str(path))
        assert _line_with(tmp_path / "out.log", "through the replaced socket")
    finally:
        listener.stop()
    assert not path.exists()  # removed at exit
    # Something that is not a socket is never replaced, a live socket never stolen.
    path.write_text("not a socket")
    res = subprocess.run([PYTHON, "-m", "inetd2systemd", "syslogd", "--config", "/dev/null",
                          "--listen", f"unix:{path}"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and f"{path} exists and is not a socket" in res.stderr
    assert path.read_text() == "not a socket"
    path.unlink()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as live:  # another syslogd's
        live.bind(str(path))
        res = subprocess.run([PYTHON, "-m", "inetd2systemd", "syslogd", "--config",
                              "/dev/null", "--listen", f"unix:{path}"],
                             capture_output=True, text=True, timeout=30)
        assert res.returncode == 2
        assert f"{path} is in use by another running program" in res.stderr
        live.sendto(b"still ours", str(path))
        assert live.recv(100) == b"still ours"


@pytest.mark.skipif(os.geteuid() != 0, reason="makes the configuration nobody's: needs root")
def test_a_reload_refuses_a_configuration_another_user_could_change(tmp_path):
    import pwd

    port = free_port()
    listener = Listener(tmp_path, f"*.*\t-{tmp_path}/out.log\n", [f"tcp:127.0.0.1:{port}"])
    try:
        nobody = pwd.getpwnam("nobody")
        conf = tmp_path / "syslog.conf"
        conf.write_text(f"*.*\t-{tmp_path}/elsewhere.log\n")
        os.chown(conf, nobody.pw_uid, nobody.pw_gid)
        listener.signal(signal.SIGHUP)
        assert wait_for(lambda: "reload failed, keeping the previous rules" in listener.stderr())
        assert "not loaded" in listener.stderr() and "nobody" in listener.stderr()
        send_tcp(port, [b"<14>still the old rules"])
        assert _line_with(tmp_path / "out.log", "still the old rules")
        assert not (tmp_path / "elsewhere.log").exists()
    finally:
        listener.stop()
