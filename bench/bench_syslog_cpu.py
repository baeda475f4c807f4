"""CPU per message of the file path inside the listener, without sockets: the frames
bench_syslog.py sends, prebuilt, handed to Router.deliver in batches as the listener's
loop hands them over, the lines written to /dev/null (or a file: --out).

    .venv/bin/python bench/bench_syslog_cpu.py [-n 200000] [--batch 1000] [--rounds 7]

Reports, per shape, the median over the rounds of process CPU time per message (µs),
and the minimum, which varies least on a shared machine. It is the figure to develop
against; bench_syslog.py measures end to end against rsyslogd. For exact comparisons
under heavy load, count instructions instead:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/bench_syslog_cpu.py --shape rfc5424 -n 20000 --rounds 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_syslog import message  # noqa: E402  (the same frames the end-to-end bench sends)
from inetd2systemd.syslog.rules import parse_syslog_conf  # noqa: E402
from inetd2systemd.syslog.sinks import Router  # noqa: E402

# shape -> (the sender's transport, the peer address the listener would give)
SHAPES = {
    "rfc5424": ("tcp", "127.0.0.1"),
    "traditional": ("tcp", "127.0.0.1"),
    "glibc": ("unix", ""),
}


def cpu_per_message(shape: str, batches: list[list[bytes]], out: str) -> float:
    """One round: µs of process CPU per message, these batches of this shape."""
    transport, sender = SHAPES[shape]
    router = Router(parse_syslog_conf(f"*.*\t-{out}\n", "bench"))
    deliver, flush = router.deliver, router.flush
    start = time.process_time()
    for frames in batches:
        deliver(frames, sender, transport, 1.7e9)
        flush()  # the listener flushes when its sockets are drained
    cpu = time.process_time() - start
    router.close()
    return cpu * 1e6 / sum(map(len, batches))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000, help="frames per deliver() call")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--shape", choices=sorted(SHAPES), action="append",
                        help="only these shapes (repeatable)")
    parser.add_argument("--out", default="/dev/null", help="the file the lines go to")
    args = parser.parse_args()
    shapes = args.shape or list(SHAPES)
    print(f"{args.n} frames of 260 bytes, {args.batch} per batch, {args.rounds} rounds; "
          "process CPU µs per message")
    print(f"{'shape':<14}{'median':>8}{'min':>8}{'max':>8}")
    for shape in shapes:
        frames = [message(i, shape) for i in range(args.n)]
        batches = [frames[k:k + args.batch] for k in range(0, args.n, args.batch)]
        figures = [cpu_per_message(shape, batches, args.out) for _ in range(args.rounds)]
        if not figures:  # --rounds 0: the set-up alone, for instruction counts
            continue
        print(f"{shape:<14}{statistics.median(figures):>8.3f}{min(figures):>8.3f}{max(figures):>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
