"""CPU per datagram of the listener's UDP receive path, in-process: the traditional-format
datagrams bench_syslog.py sends are queued in a UDP socket's receive buffer (untimed),
then the listener reads them as its loop does (Listener._on_datagrams until the socket
is empty, the router flushed once per batch as the loop flushes when input pauses),
the lines written to /dev/null (or a file: --out).

    .venv/bin/python bench/bench_syslog_udp_cpu.py [-n 200000] [--chunk 20000] [--rounds 5]

Reports the median and the minimum over the rounds of process CPU µs per datagram, the
receive path (syscalls included) and the file path together. Needs root for a receive
buffer large enough to hold a chunk (SO_RCVBUFFORCE); without it, --chunk must fit in
net.core.rmem_max. With --profile, a cProfile of one round, sorted by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_syslog import message  # noqa: E402  (the same frames the end-to-end bench sends)
from inetd2systemd.syslog.listener import Input, Listener  # noqa: E402
from inetd2systemd.syslog.rules import parse_syslog_conf  # noqa: E402
from inetd2systemd.syslog.sinks import Router  # noqa: E402

SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def one_round(frames: list[bytes], chunk: int, out: str) -> tuple[float, int]:
    """(CPU seconds spent receiving, datagrams received)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 256 * 1024 * 1024)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024 * 1024)
    item = Input(sock, "udp")
    router = Router(parse_syslog_conf(f"*.*\t-{out}\n", "bench"))
    listener = Listener([item], lambda: router, log=lambda text: None)
    listener._register_inputs()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.connect(sock.getsockname())
    cpu, received = 0.0, 0
    for k in range(0, len(frames), chunk):
        for frame in frames[k:k + chunk]:
            sender.send(frame)
        start = time.process_time()
        while listener._on_datagrams(item):
            router.flush()
        cpu += time.process_time() - start
    received = listener.counters.total()
    listener.selector.close()
    router.close()
    sender.close()
    sock.close()
    if listener.counters.kernel_drops:
        raise SystemExit(f"the kernel dropped {listener.counters.kernel_drops}: lower --chunk")
    return cpu, received


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=200_000)
    parser.add_argument("--chunk", type=int, default=20_000, help="datagrams queued at a time")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default="/dev/null", help="the file the lines go to")
    parser.add_argument("--profile", action="store_true", help="cProfile one round instead")
    args = parser.parse_args()
    frames = [message(i, "traditional") for i in range(args.n)]
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(one_round, frames, args.chunk, args.out)
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)
        return 0
    figures = []
    for _ in range(args.rounds):
        cpu, received = one_round(frames, args.chunk, args.out)
        if received != args.n:
            raise SystemExit(f"received {received} of {args.n}")
        figures.append(cpu * 1e6 / received)
    print(f"{args.n} UDP datagrams of 260 bytes (traditional), {args.chunk} queued at a time, "
          f"{args.rounds} rounds; process CPU µs per datagram")
    print(f"median {statistics.median(figures):.3f}  min {min(figures):.3f}  max {max(figures):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
