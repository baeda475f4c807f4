#!/usr/bin/env python3
"""`inetd2systemd serve` against xinetd and openbsd-inetd, in one run, same client.

    .venv/bin/python bench/bench_superserver.py [--seconds 3] [--clients 2] [--only NAME]

Three paths, each daemon started in turn on the same private 127.0.0.1 ports (root:
each runs in a mount namespace whose /etc/services names those ports):
  (a) internal TCP echo: connect, send 16 bytes, read them back, close;
  (b) an external nowait program, /bin/cat: connect, send, half-close, read to EOF;
  (c) a wait-type UDP service: a small Python handler started on the first datagram,
      which then answers until idle. Cold start (first answer) and sustained rate with
      one request in flight.
Each round also measures (b) against a bare Python accept + posix_spawn loop: the
floor for any Python superserver, since /bin/cat's own start dominates path (b).
Packaged rate limits are lifted (inetd `nowait.N` / -R, xinetd `cps = 0 0`): left on,
they, not the daemons, would set the figures. Connections per second are totals over all
clients; latencies are per connection. Ratios are ours / the faster peer.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procstat import cpu_seconds

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
OPENBSD_INETD = "/opt/inetd2systemd-peers/openbsd-inetd/usr/sbin/inetd"
XINETD = "/usr/sbin/xinetd"

HANDLER = r'''
import socket, select
s = socket.socket(fileno=0)          # the inetd contract: the datagram socket on fd 0
while select.select([s], [], [], 0.5)[0]:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
'''

# The floor for a Python superserver: the least a Python loop can do per connection
# (blocking accept, posix_spawn, reap), with none of the protections or the logging.
BARE_SPAWN_LOOP = r'''
import os, socket, sys
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(128)
env, dup2 = dict(os.environ), os.POSIX_SPAWN_DUP2
while True:
    fd, _ = listener._accept()
    os.posix_spawn("/bin/cat", ["cat"], env, file_actions=((dup2, fd, 0), (dup2, fd, 1), (dup2, fd, 2)))
    os.close(fd)
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
'''

INETD_CONF = """\
127.0.0.1:echo    stream tcp4 nowait.1000000 root internal
127.0.0.1:i2s-cat stream tcp4 nowait.1000000 root /bin/cat cat
127.0.0.1:i2s-udp dgram  udp4 wait.1000000   root {python} python3 -S {handler}
"""

XINETD_CONF = """\
defaults
{{
    cps      = 0 0
    instances = UNLIMITED
}}
service echo
{{
    type = INTERNAL
    id = echo-stream
    socket_type = stream
    wait = no
    user = root
    bind = 127.0.0.1
}}
service i2s-cat
{{
    socket_type = stream
    wait = no
    user = root
    bind = 127.0.0.1
    server = /bin/cat
}}
service i2s-udp
{{
    socket_type = dgram
    wait = yes
    user = root
    bind = 127.0.0.1
    server = {python}
    server_args = -S {handler}
}}
"""


def free_base(count: int) -> int:
    import random
    for _ in range(100):
        base = random.randrange(20000, 60000)
        try:
            for port in range(base, base + count):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as s:
                        s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise SystemExit("no free ports")


def listening(port: int, udp: bool) -> bool:
    want = f":{port:04X}"
    with open("/proc/net/udp" if udp else "/proc/net/tcp") as f:
        return any(line.split()[1].endswith(want) and (udp or line.split()[3] == "0A")
                   for line in f.readlines()[1:])


class Daemon:
    def __init__(self, argv: list[str], services: Path, log: Path) -> None:
        self.argv, self.services, self.log = argv, services, log
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Daemon":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 'mount --bind "$0" /etc/services && exec "$@"', str(self.services), *self.argv],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        return self

    def wait(self, ports: list[tuple[int, bool]]) -> None:
        deadline = time.monotonic() + 15
        while not all(listening(p, u) for p, u in ports):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{self.argv[0]} did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# -- clients -----------------------------------------------------------------------------------

def _echo_exchange(s: socket.socket, msg: bytes) -> bytes:
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(64)
        if not chunk:
            break
        got += chunk
    return got


def _cat_exchange(s: socket.socket, msg: bytes) -> bytes:
    s.sendall(msg)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while chunk := s.recv(64):
        got += chunk
    return got


def _client(exchange, port: int, until: float, out) -> None:
    """Connections one after another until `until`: latencies of the right answers."""
    lat, errors, msg = [], 0, b"0123456789abcdef"
    clock = time.perf_counter
    while clock() < until:
        t = clock()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                got = exchange(s, msg)
        except OSError:
            errors += 1
            continue
        if got != msg:
            errors += 1
            continue
        lat.append(clock() - t)
    out.put((lat, errors))


_echo_client = functools.partial(_client, _echo_exchange)
_cat_client = functools.partial(_client, _cat_exchange)


def run_clients(target, port: int, clients: int, seconds: float) -> dict:
    out = multiprocessing.Queue()
    start = time.perf_counter() + 0.2
    until = start + seconds
    procs = [multiprocessing.Process(target=_delayed, args=(target, port, start, until, out))
             for _ in range(clients)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    lat = sorted(x for r in results for x in r[0])
    errors = sum(r[1] for r in results)
    return summarize(lat, errors, seconds)


def _delayed(target, port, start, until, out) -> None:
    while time.perf_counter() < start:
        time.sleep(0.001)
    target(port, until, out)


def summarize(lat: list[float], errors: int, seconds: float) -> dict:
    if not lat:
        return {"rate": 0.0, "p50": float("nan"), "p99": float("nan"), "errors": errors}
    lat.sort()
    return {"rate": len(lat) / seconds, "p50": lat[len(lat) // 2] * 1000,
            "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, "errors": errors}


def median_result(runs: list[dict]) -> dict:
    """Per field, the median over the rounds (errors: the total)."""
    merged = {}
    for field in runs[0]:
        values = [r[field] for r in runs]
        merged[field] = sum(values) if field == "errors" else statistics.median(values)
    return merged


def udp_wait(port: int, seconds: float, colds: int) -> dict:
    """Cold start (first answer after the handler exited) and sustained request rate."""
    cold = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        for i in range(colds):
            time.sleep(0.9)  # the handler idles out after 0.5 s; the superserver re-arms
            t = time.perf_counter()
            s.sendto(b"cold %d" % i, ("127.0.0.1", port))
            try:
                s.recvfrom(2048)
                cold.append(time.perf_counter() - t)
            except socket.timeout:
                pass
        lat, errors = [], 0
        until = time.perf_counter() + seconds
        while time.perf_counter() < until:
            t = time.perf_counter()
            s.sendto(b"warm", ("127.0.0.1", port))
            try:
                s.recvfrom(2048)
            except socket.timeout:
                errors += 1
                continue
            lat.append(time.perf_counter() - t)
    result = summarize(lat, errors, seconds)
    result["cold"] = statistics.median(cold) * 1000 if cold else float("nan")
    return result


# -- the run -----------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement (default 3)")
    parser.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--colds", type=int, default=5, help="cold starts measured for UDP")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds, the daemons' order reversed each round; medians are "
                             "reported (default 2: a busy machine drifts)")
    parser.add_argument("--only", action="append", choices=("inetd2systemd", "xinetd", "openbsd-inetd"))
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("unshare"):
        print("needs root and unshare (private /etc/services per daemon)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="bench-superserver-"))
    base = free_base(3)
    ports = {"echo": base, "i2s-cat": base + 1, "i2s-udp": base + 2}
    services = work / "services"
    services.write_text("".join(f"{n}\t{p}/tcp\n{n}\t{p}/udp\n" for n, p in ports.items()))
    handler = work / "handler.py"
    handler.write_text(HANDLER)
    inetd_conf = work / "inetd.conf"
    inetd_conf.write_text(INETD_CONF.format(python=PYTHON, handler=handler))
    xinetd_conf = work / "xinetd.conf"
    xinetd_conf.write_text(XINETD_CONF.format(python=PYTHON, handler=handler))
    daemons = {
        "inetd2systemd": [PYTHON, "-m", "inetd2systemd", "serve", "-c", str(inetd_conf), "--foreground"],
        "xinetd": [XINETD, "-dontfork", "-f", str(xinetd_conf), "-pidfile", str(work / "x.pid")],
        "openbsd-inetd": [OPENBSD_INETD, "-d", "-R", "1000000", str(inetd_conf)],
    }
    wanted = args.only or list(daemons)
    wait_for = [(ports["echo"], False), (ports["i2s-cat"], False), (ports["i2s-udp"], True)]
    wanted = [n for n in wanted if os.path.exists(daemons[n][0]) or print(f"{n}: not installed")]
    samples: dict[str, dict[str, list[dict]]] = {n: {"echo": [], "cat": [], "udp": []} for n in wanted}
    bare_loop: list[dict] = []
    for round_ in range(args.rounds):
        for name in (wanted if round_ % 2 == 0 else wanted[::-1]):
            while any(listening(p, u) for p, u in wait_for):
                time.sleep(0.1)  # the previous daemon's UDP handler still idling out
            with Daemon(daemons[name], services, work / f"{name}.log") as daemon:
                daemon.wait(wait_for)
                time.sleep(0.3)
                row = samples[name]
                row["echo"].append(run_clients(_echo_client, ports["echo"], args.clients, args.seconds))
                before = cpu_seconds(daemon.proc.pid)
                result = run_clients(_cat_client, ports["i2s-cat"], args.clients, args.seconds)
                spent = cpu_seconds(daemon.proc.pid) - before
                result["cpu_us"] = spent / max(1, result["rate"] * args.seconds) * 1e6
                row["cat"].append(result)
                row["udp"].append(udp_wait(ports["i2s-udp"], args.seconds, args.colds))
            print(f"round {round_ + 1}: {name} done", file=sys.stderr)
        while listening(ports["i2s-cat"], False):
            time.sleep(0.1)
        with Daemon([PYTHON, "-S", "-c", BARE_SPAWN_LOOP, str(ports["i2s-cat"])], services,
                    work / "bare-loop.log") as daemon:
            daemon.wait([(ports["i2s-cat"], False)])
            time.sleep(0.3)
            bare_loop.append(run_clients(_cat_client, ports["i2s-cat"], args.clients, args.seconds))
    table = {name: {key: median_result(runs) for key, runs in row.items()} for name, row in samples.items()}

    print(f"\n{args.clients} client processes, {args.seconds:g} s per measurement, median of "
          f"{args.rounds} rounds, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}, logs in {work}\n")
    print(f"{'path':<34}" + "".join(f"{n:>18}" for n in table))
    lines = [("(a) internal echo, conn/s", "echo", "rate", "{:.0f}"),
             ("    p50 / p99 ms", "echo", None, None),
             ("(b) /bin/cat nowait, conn/s", "cat", "rate", "{:.0f}"),
             ("    p50 / p99 ms", "cat", None, None),
             ("    daemon's own CPU us/conn", "cat", "cpu_us", "{:.0f}"),
             ("(c) wait UDP, cold start ms", "udp", "cold", "{:.1f}"),
             ("    sustained req/s", "udp", "rate", "{:.0f}"),
             ("    errors (a/b/c)", None, None, None)]
    for label, key, field, fmt in lines:
        cells = []
        for name, row in table.items():
            if key is None:
                cells.append(f"{row['echo']['errors']}/{row['cat']['errors']}/{row['udp']['errors']}")
            elif field is None:
                cells.append(f"{row[key]['p50']:.2f} / {row[key]['p99']:.2f}")
            else:
                cells.append(fmt.format(row[key][field]))
        print(f"{label:<34}" + "".join(f"{c:>18}" for c in cells))
    ours = table.get("inetd2systemd")
    peers = {n: r for n, r in table.items() if n != "inetd2systemd"}
    if ours and peers:
        print()
        for key, label in (("echo", "internal echo"), ("cat", "/bin/cat"), ("udp", "wait UDP sustained")):
            best = max(peers, key=lambda n: peers[n][key]["rate"])
            ratio = ours[key]["rate"] / peers[best][key]["rate"] if peers[best][key]["rate"] else float("inf")
            print(f"ratio {label:<20} ours / {best:<14} = {ratio:.2f}x")
        best = min(peers, key=lambda n: peers[n]["udp"]["cold"])
        print(f"ratio {'wait UDP cold start':<20} {best} / ours = "
              f"{peers[best]['udp']['cold'] / ours['udp']['cold']:.2f}x (above 1: ours starts faster)")
    bare = median_result(bare_loop)
    print(f"\n(b) floor: a bare Python accept + posix_spawn + reap loop, /bin/cat: {bare['rate']:.0f} conn/s"
          + (f" (ours = {ours['cat']['rate'] / bare['rate']:.2f}x of it)" if ours and bare["rate"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
