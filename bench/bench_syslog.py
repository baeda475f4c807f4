"""Syslog ingest, this listener against rsyslogd, in the same run.

Sequence-numbered ~260-byte RFC 5424 messages go over TCP (octet counting, one
connection), the unix datagram socket and UDP to both daemons, each writing a file with
the traditional format. The rate reported is end to end: from the first byte sent until
the file stopped growing, and only when every sequence number is in the file exactly
once (zero loss); UDP is offered at fixed rates (sendmmsg, up to what the sender can) and
the best zero-loss rate of each round counts, its median over the rounds reported.
With --journal, the same is done inside a booted systemd container with the journal as
the sink (this listener with --journal against rsyslog's omjournal).

    .venv/bin/python bench/bench_syslog.py [-n 200000] [--runs 3] [--journal] [--quick]

The sender is pinned to CPU 0 and the receivers to CPU 1 (2-core machine); journald, in
journal mode, takes what is left. Figures vary +-15% between runs on a shared machine:
compare the ratios, which are measured side by side.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procstat import HZ, cpu_seconds, cpu_ticks

from inetd2systemd.syslog.datagrams import IOVec, MMsgHdr  # struct iovec, struct mmsghdr

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
RSYSLOGD = "/usr/sbin/rsyslogd"
SEQ = re.compile(rb"seq=(\d{8})")
SENDER_CPU, RECEIVER_CPU = {0}, {1}


# The three shapes senders use: RFC 5424 (logger's default over the network, rsyslog's
# RSYSLOG_SyslogProtocol23Format), the traditional format as rsyslog's default forwarding
# template and most devices send it, and glibc syslog(3) on the local socket (no hostname).
HEADS = {
    "rfc5424": b"<134>1 2026-11-27T12:00:00.%06d+00:00 benchhost bench 4242 - - seq=%08d ",
    "traditional": b"<134>Nov 27 12:00:%02d benchhost bench[4242]: seq=%08d ",
    "glibc": b"<134>Nov 27 12:00:%02d bench[4242]: seq=%08d ",
}


def message(i: int, shape: str = "rfc5424") -> bytes:
    head = HEADS[shape] % (i % (1000000 if shape == "rfc5424" else 60), i)
    return head + b"x" * (260 - len(head))


def free_port() -> int:
    for _ in range(50):
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port")


def _pin(cpus):
    def apply():
        try:
            os.sched_setaffinity(0, cpus)
        except OSError:
            pass
    return apply


class Receiver:
    name = ""

    def __init__(self, work: Path, port: int, sock: Path) -> None:
        self.work, self.port, self.sock = work, port, sock
        self.out = work / "out.log"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} "
                                   "(port taken meanwhile?)")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                if self.sock.exists():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not start")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Ours(Receiver):
    name = "inetd2systemd"

    def __init__(self, work: Path, port: int, sock: Path) -> None:
        super().__init__(work, port, sock)
        conf = work / "syslog.conf"
        conf.write_text(f"*.*\t-{self.out}\n")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "inetd2systemd", "syslogd", "--config", str(conf),
             "--listen", f"tcp:127.0.0.1:{port}", "--listen", f"udp:127.0.0.1:{port}",
             "--listen", f"unix:{sock}"], stderr=subprocess.DEVNULL, preexec_fn=_pin(RECEIVER_CPU))
        self.wait_ready()


class Rsyslog(Receiver):
    name = "rsyslogd"

    def __init__(self, work: Path, port: int, sock: Path) -> None:
        super().__init__(work, port, sock)
        (work / "spool").mkdir()
        conf = work / "rsyslog.conf"
        conf.write_text(f"""global(workDirectory="{work}/spool")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{sock}" CreatePath="on")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{port}" rcvbufSize="8m")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{port}")
$ActionFileDefaultTemplate RSYSLOG_TraditionalFileFormat
*.*\t-{self.out}
""")
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(conf), "-i", str(work / "pid")],
                                     stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     preexec_fn=_pin(RECEIVER_CPU))
        self.wait_ready()


def frames_for(transport: str, shape: str, first: int, n: int) -> list[bytes]:
    """Everything to send, built before the clock starts: TCP as 1 MB blocks of
    octet-counted frames, datagrams one per message."""
    messages = [message(i, shape) for i in range(first, first + n)]
    if transport != "tcp":
        return messages
    blocks, block, size = [], [], 0
    for m in messages:
        block.append(b"%d %s" % (len(m), m))
        size += len(block[-1])
        if size >= 1 << 20:
            blocks.append(b"".join(block))
            block, size = [], 0
    blocks.append(b"".join(block))
    return blocks


def send(transport: str, receiver: Receiver, frames: list[bytes], rate: float | None) -> float:
    """Send the prepared frames; returns the start time."""
    _pin(SENDER_CPU)()
    start = time.monotonic()
    if transport == "tcp":
        with socket.create_connection(("127.0.0.1", receiver.port)) as s:
            for block in frames:
                s.sendall(block)
        return start
    if transport == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.connect(str(receiver.sock))
        send_one = s.send
        for frame in frames:
            send_one(frame)  # blocks when the receiver's queue is full
        s.close()
        return start
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", receiver.port))
    send_many = datagram_sender(s, frames)
    start = time.monotonic()
    step = 500
    for k in range(0, len(frames), step):
        send_many(k, min(k + step, len(frames)))
        if rate:
            ahead = start + (k + step) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    s.close()
    return start


def datagram_sender(sock: socket.socket, frames: list[bytes]):
    """send_many(first, end): frames[first:end] sent on the connected `sock`, by sendmmsg(2)
    from headers built here, before the clock starts, so that the sender (one send() per
    datagram from Python managed ~80k/s on this machine) is not the limit; one send()
    each where libc has no sendmmsg."""
    try:
        sendmmsg = ctypes.CDLL(None, use_errno=True).sendmmsg
    except (OSError, AttributeError):
        send_one = sock.send

        def send_many(first: int, end: int) -> None:
            for frame in frames[first:end]:
                send_one(frame)
        return send_many
    sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    data = ctypes.create_string_buffer(b"".join(frames))
    iovecs, headers = (IOVec * len(frames))(), (MMsgHdr * len(frames))()
    at, base, iov_base = 0, ctypes.addressof(data), ctypes.addressof(iovecs)
    for i, frame in enumerate(frames):
        iovecs[i].base, iovecs[i].len = base + at, len(frame)
        headers[i].hdr.iov, headers[i].hdr.iovlen = iov_base + i * ctypes.sizeof(IOVec), 1
        at += len(frame)
    fd, first_header, size = sock.fileno(), ctypes.addressof(headers), ctypes.sizeof(MMsgHdr)

    def send_many(first: int, end: int) -> None:
        keep = (data, iovecs, headers)  # noqa: F841  (alive while the kernel reads them)
        while first < end:
            sent = sendmmsg(fd, first_header + first * size, end - first, 0)
            if sent < 0:
                raise OSError(ctypes.get_errno(), "sendmmsg")
            first += sent
    return send_many


def wait_quiet(path: Path, quiet: float = 0.5, limit: float = 120.0) -> float:
    """Wait until the file stops growing; the time it last grew."""
    last_size, last_change = -1, time.monotonic()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        size = path.stat().st_size if path.exists() else 0
        now = time.monotonic()
        if size != last_size:
            last_size, last_change = size, now
        elif now - last_change > quiet:
            break
        time.sleep(0.01)
    return last_change


def check(path: Path, first: int, n: int) -> tuple[int, int]:
    """(missing, duplicated) sequence numbers in [first, first+n)."""
    seen = [0] * n
    with path.open("rb") as f:
        for line in f:
            m = SEQ.search(line)
            if m:
                k = int(m[1]) - first
                if 0 <= k < n:
                    seen[k] += 1
    return seen.count(0), sum(c - 1 for c in seen if c > 1)


def one_run(kind, transport: str, n: int, rate: float | None, counter: list[int],
            shape: str = "rfc5424") -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"bench-{kind.name}-"))
    try:
        for attempt in range(3):  # a free port may be taken by another program meanwhile
            try:
                receiver = kind(work, free_port(), work / "log.sock")
                break
            except RuntimeError:
                if attempt == 2:
                    raise
                shutil.rmtree(work, ignore_errors=True)
                work.mkdir()
        first = counter[0]
        counter[0] += n
        frames = frames_for(transport, shape, first, n)
        cpu0 = receiver.cpu_seconds()
        start = send(transport, receiver, frames, rate)
        end = wait_quiet(receiver.out)
        cpu = receiver.cpu_seconds() - cpu0
        receiver.stop()
        missing, dups = check(receiver.out, first, n)
        return dict(rate=n / (end - start) if end > start else 0.0, missing=missing, dups=dups,
                    cpu_per_m=cpu * 1e6 / n)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# (transport, shape) in the order they are measured; the unix socket carries what glibc's
# syslog(3) writes there.
FILE_CASES = [("tcp", "traditional"), ("tcp", "rfc5424"), ("unix", "glibc")]


def bench_file(n: int, runs: int, udp_rates: list[float | None]) -> None:
    counter = [0]
    print(f"\n== file sink, {n} messages of 260 bytes per run, median of {runs} (A/B alternating) ==")
    print(f"{'case':<18}{'receiver':<16}{'msg/s e2e':>12}{'loss':>8}{'dups':>6}{'CPU-s/1M':>10}")
    ratios = {}
    for transport, shape in FILE_CASES:
        case = f"{transport} {shape}"
        results = {Ours: [], Rsyslog: []}
        for _ in range(runs):
            for kind in (Ours, Rsyslog):
                results[kind].append(one_run(kind, transport, n, None, counter, shape))
        medians = {}
        for kind, rs in results.items():
            rate = statistics.median(r["rate"] for r in rs)
            lost = max(r["missing"] for r in rs)
            dups = max(r["dups"] for r in rs)
            cpu = statistics.median(r["cpu_per_m"] for r in rs)
            medians[kind] = rate if lost == 0 and dups == 0 else 0.0
            print(f"{case:<18}{kind.name:<16}{rate:>12,.0f}{lost:>8}{dups:>6}{cpu:>10.2f}")
        if medians[Rsyslog]:
            ratios[case] = medians[Ours] / medians[Rsyslog]
            print(f"{case:<18}{'ratio':<16}{ratios[case]:>12.2f}")
    print(f"-- udp traditional: best rate with zero loss over the offered rates ({n} messages "
          f"per step), median of {runs} rounds --")
    bests: dict = {Ours: [], Rsyslog: []}
    for _ in range(runs):
        best = {Ours: 0.0, Rsyslog: 0.0}
        for rate in udp_rates:
            for kind in (Ours, Rsyslog):
                r = one_run(kind, "udp", n, rate, counter, "traditional")
                label = "max" if rate is None else f"{rate:,.0f}/s"
                print(f"{'udp ' + label:<18}{kind.name:<16}{r['rate']:>12,.0f}{r['missing']:>8}"
                      f"{r['dups']:>6}{r['cpu_per_m']:>10.2f}")
                if r["missing"] == 0 and r["dups"] == 0:
                    best[kind] = max(best[kind], r["rate"])
        print(f"{'udp zero-loss':<18}{'best':<16}ours {best[Ours]:,.0f}  rsyslog {best[Rsyslog]:,.0f}")
        for kind in bests:
            bests[kind].append(best[kind])
    ours, theirs = statistics.median(bests[Ours]), statistics.median(bests[Rsyslog])
    ratios["udp traditional zero-loss"] = ours / theirs if theirs else float("nan")
    print(f"{'udp zero-loss':<18}{'median':<16}ours {ours:,.0f}  rsyslog {theirs:,.0f}")
    print("-- ratios (this listener / rsyslogd, same run) --")
    for case, ratio in ratios.items():
        print(f"{case:<32}{ratio:>6.2f}")


# -- journal sink: inside a booted systemd (journald is the real sink) ---------------------

JOURNAL_SENDER = """
import socket, sys
n, first, port, app = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode()
out = []
for i in range(first, first + n):
    head = b"<134>1 2026-11-27T12:00:00.000000+00:00 benchhost %s 4242 - - seq=%08d " % (app, i)
    m = head + b"x" * (260 - len(head))
    out.append(b"%d %s" % (len(m), m))
s = socket.create_connection(("127.0.0.1", port))
for k in range(0, len(out), 2000):
    s.sendall(b"".join(out[k:k + 2000]))
s.close()
"""

RSYSLOG_JOURNAL_CONF = """global(workDirectory="/run/bench-rsyslog")
module(load="imuxsock" SysSock.Use="off")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="20514")
module(load="omjournal")
*.* action(type="omjournal")
"""

# Both receivers run as transient units with journald's per-unit limit lifted the way the
# shipped unit lifts it, and on the same CPU.
UNIT_PROPS = ["-p", "LogRateLimitIntervalSec=1s", "-p", "LogRateLimitBurst=1000000",
              "-p", "CPUAffinity=1"]


def bench_journal(n: int, runs: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from systemd_container import SystemdContainer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        print(f"\n== journal sink: skipped ({reason}) ==")
        return
    print(f"\n== journal sink (journald in a container), TCP, {n} messages per run, median of {runs} ==")
    with SystemdContainer("bench") as c:
        c.run("mkdir", "-p", "/run/bench-rsyslog")
        c.write("/run/bench-rsyslog/rsyslog.conf", RSYSLOG_JOURNAL_CONF)
        c.run("systemd-run", "--unit=bench-ours", *UNIT_PROPS, PYTHON, "-m", "inetd2systemd",
              "syslogd", "--journal", "--listen", "tcp:127.0.0.1:30514")
        c.run("systemd-run", "--unit=bench-rsyslog", *UNIT_PROPS, RSYSLOGD, "-n", "-f",
              "/run/bench-rsyslog/rsyslog.conf", "-i", "/run/bench-rsyslog/pid")
        time.sleep(1.5)
        results: dict[str, list[float]] = {"inetd2systemd": [], "rsyslogd omjournal": []}
        first = 0

        def unit_ticks(unit: str) -> int:
            """A unit's main process's user + system ticks, read inside the container."""
            pid = c.run("systemctl", "show", "-p", "MainPID", "--value", unit).stdout.strip()
            return cpu_ticks(c.run("cat", f"/proc/{pid}/stat").stdout)

        for _ in range(runs):
            for name, unit, port in (("inetd2systemd", "bench-ours", 30514),
                                     ("rsyslogd omjournal", "bench-rsyslog", 20514)):
                app = f"b{first}"
                ticks = (unit_ticks("systemd-journald.service"), unit_ticks(f"{unit}.service"))
                start = time.monotonic()
                c.run("taskset", "-c", "0", PYTHON, "-c", JOURNAL_SENDER, str(n), str(first), str(port), app)
                last = first + n - 1
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    # The newest entries (the daemon may log a line of its own after ours).
                    tail = c.run("journalctl", f"_SYSTEMD_UNIT={unit}.service", "-n", "200", "-o", "cat",
                                 check=False).stdout
                    if f"seq={last:08d}" in tail:
                        break
                    time.sleep(0.02)
                end = time.monotonic()
                journald_cpu = (unit_ticks("systemd-journald.service") - ticks[0]) / HZ / (end - start)
                receiver_cpu = (unit_ticks(f"{unit}.service") - ticks[1]) / HZ / (end - start)
                text = c.run("journalctl", f"_SYSTEMD_UNIT={unit}.service", "-o", "cat",
                             check=False, timeout=120).stdout
                seqs = [int(x) for x in re.findall(r"seq=(\d{8})", text)]
                got = [q for q in seqs if first <= q <= last]
                missing = n - len(set(got))
                dups = len(got) - len(set(got))
                rate = n / (end - start)
                print(f"{'tcp':<14}{name:<20}{rate:>12,.0f}  loss {missing}  dups {dups}  "
                      f"CPU: journald {journald_cpu:.0%}, receiver {receiver_cpu:.0%}")
                results[name].append(rate if missing == 0 and dups == 0 else 0.0)
                first += n
        ours = statistics.median(results["inetd2systemd"])
        theirs = statistics.median(results["rsyslogd omjournal"])
        ratio = ours / theirs if theirs else float("nan")
        print(f"{'tcp':<14}{'ratio':<20}{ratio:>12.2f}   (journald near 100% of a CPU: it is the ceiling)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--journal", action="store_true", help="also the journal sink, in a container")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = parser.parse_args()
    if args.quick:
        args.n, args.runs = 2000, 1
    if not os.path.exists(RSYSLOGD):
        print("rsyslogd is needed (scripts/setup.sh)", file=sys.stderr)
        return 2
    udp_rates = [20_000.0] if args.quick else [25_000.0, 50_000.0, 100_000.0, 150_000.0, 200_000.0,
                                                300_000.0, 400_000.0, None]
    bench_file(args.n, args.runs, udp_rates)
    if args.journal:
        bench_journal(min(args.n, 100_000), 1 if args.quick else args.runs)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
