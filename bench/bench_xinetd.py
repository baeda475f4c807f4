"""How long converting a 5,000-service xinetd.d tree takes, against xinetd reading it.

    .venv/bin/python bench/bench_xinetd.py [--services 5000] [--rounds 5]

The generated tree (one file per service, as packages install them, plus a few files
xinetd skips) mixes what real ones hold: internal services, nowait programs with
arguments, wait UDP programs, only_from/no_access lists in every form, env, limits,
NAMEINARGS/tcpd, redirects, log attributes, disabled entries; xinetd.conf has a
defaults entry and `includedir`.

Measured, median of --rounds:
- parse: `read_xinetd` on the tree, in-process;
- render: `units.writer.render` of the parsed services, in-process;
- convert: the whole command, `inetd2systemd convert xinetd.conf --output-dir DIR` in a
  fresh interpreter (start-up, parse, render, atomic write of every unit file);
- the peer in the same run: the packaged xinetd reading the same tree, from exec to its
  "Started working" log line (parse, plus binding every port, which it must do to
  start: so this is an upper bound of its parse time, not a pure parse figure).
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from inetd2systemd.config.services import load_services  # noqa: E402
from inetd2systemd.config.xinetd import read_xinetd  # noqa: E402
from inetd2systemd.units.writer import render  # noqa: E402

SERVICES = ROOT / "examples" / "services"
XINETD = "/usr/sbin/xinetd"
BASE_PORT = 42000


def service_file(i: int) -> str:
    port = BASE_PORT + i
    kind = i % 8
    head = f"# generated service {i}\nservice svc{i}\n{{\n\ttype\t\t= UNLISTED\n\tport\t\t= {port}\n" \
           "\tbind\t\t= 127.0.0.1\n"
    if kind == 0:
        body = ("\ttype\t\t= INTERNAL UNLISTED\n\tsocket_type\t= stream\n\twait\t\t= no\n"
                "\tuser\t\t= root\n")
        head = head.replace(f"service svc{i}", "service echo").replace(
            "\ttype\t\t= UNLISTED\n", f"\tid\t\t= echo-{i}\n")
    elif kind == 1:
        body = ("\tsocket_type\t= stream\n\twait\t\t= no\n\tuser\t\t= nobody\n"
                "\tserver\t\t= /usr/bin/cat\n\tserver_args\t= -u -\n"
                "\tonly_from\t= 127.0.0.1 10.0.0.0 192.168.{1,2,3} 2001:db8::/32\n"
                "\tno_access\t+= 10.9.9.9\n\tinstances\t= 30\n\tper_source\t= 5\n")
    elif kind == 2:
        body = ("\tsocket_type\t= dgram\n\twait\t\t= yes\n\tuser\t\t= root\n"
                "\tserver\t\t= /usr/sbin/in.tftpd\n\tserver_args\t= -s /srv/tftp\n"
                "\tflags\t\t= IPv4\n\tcps\t\t= 100 2\n")
    elif kind == 3:
        body = ("\tsocket_type\t= stream\n\twait\t\t= no\n\tuser\t\t= root\n"
                "\tflags\t\t= NAMEINARGS NODELAY KEEPALIVE\n\tserver\t\t= /usr/sbin/tcpd\n"
                "\tserver_args\t= /usr/bin/cat -u # data\n\tlog_on_failure\t+= USERID\n")
    elif kind == 4:
        body = ("\tsocket_type\t= stream\n\twait\t\t= no\n\tuser\t\t= nobody\n"
                "\tserver\t\t= /usr/bin/cat\n\tenv\t\t= LANG=C HOME=/tmp\n"
                "\tpassenv\t\t= PATH\n\tnice\t\t= 10\n\trlimit_as\t= 64M\n\tumask\t\t= 027\n")
    elif kind == 5:
        body = ("\tsocket_type\t= stream\n\twait\t\t= no\n\tuser\t\t= nobody\n"
                "\tredirect\t= 127.0.0.1 5432\n")
    elif kind == 6:
        body = ("\tsocket_type\t= stream\n\twait\t\t= no\n\tuser\t\t= root\n"
                "\tserver\t\t= /usr/bin/cat\n\tdisable\t\t= yes\n")
    else:
        body = ("\tsocket_type\t= stream\n\tprotocol\t= tcp\n\twait\t\t= no\n"
                "\tuser\t\t= nobody\n\tgroup\t\t= nogroup\n\tgroups\t\t= yes\n"
                "\tserver\t\t= /usr/bin/cat\n\taccess_times\t= 2:00-9:00 12:00-23:59\n"
                "\tmax_load\t= 4.5\n")
    return head + body + "}\n"


def generate(root: Path, count: int) -> Path:
    tree = root / "xinetd.d"
    tree.mkdir(parents=True)
    for i in range(count):
        (tree / f"svc{i:05d}").write_text(service_file(i))
    for skipped in ("README.md", "svc00000.rpmsave", "svc00001~"):
        (tree / skipped).write_text("not read\n")
    conf = root / "xinetd.conf"
    conf.write_text("defaults\n{\n\tlog_type\t= SYSLOG daemon info\n\tlog_on_failure\t= HOST\n"
                    "\tcps\t\t= 50 10\n\tinstances\t= 50\n\tno_access\t= 192.0.2.66\n}\n\n"
                    f"includedir {tree}\n")
    return conf


CPU: dict[str, float] = {}  # CPU seconds per measurement: steadier than wall time on a busy box


def median_time(fn, rounds: int, label: str = "") -> tuple[float, object]:
    times, cpu, result = [], [], None
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    CPU[label] = statistics.median(cpu)
    return statistics.median(times), result


def xinetd_ready(conf: Path, work: Path, expected: int, timeout: float = 60.0) -> float | None:
    """Seconds from exec until xinetd logs that it started working, or None."""
    if not os.access(XINETD, os.X_OK) or os.geteuid() != 0:
        return None
    log = work / "xinetd.log"
    log.unlink(missing_ok=True)

    def more_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (expected + 1024, expected + 1024))

    start = time.perf_counter()
    proc = subprocess.Popen([XINETD, "-dontfork", "-f", str(conf), "-filelog", str(log),
                             "-pidfile", str(work / "xinetd.pid")], preexec_fn=more_files,
                            start_new_session=True)
    try:
        while time.perf_counter() - start < timeout:
            if log.exists() and "Started working" in log.read_text(errors="replace"):
                return time.perf_counter() - start
            time.sleep(0.002)
        return None
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    table = load_services(SERVICES)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        conf = generate(root, args.services)
        parse_s, config = median_time(lambda: read_xinetd(conf, services=table), args.rounds,
                                      "parse")
        render_s, (units, findings) = median_time(lambda: render(config.services), args.rounds,
                                                  "render")
        print(f"tree: {args.services} service files; {len(config.services)} services read, "
              f"{len(units)} units, {len(config.findings) + len(findings)} findings")
        print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"                          {'wall':>8}    {'CPU':>8}")
        print(f"parse  (read_xinetd)      {parse_s * 1000:8.1f} ms {CPU['parse'] * 1000:8.1f} ms")
        print(f"render (units.writer)     {render_s * 1000:8.1f} ms {CPU['render'] * 1000:8.1f} ms")
        print(f"parse + render            {(parse_s + render_s) * 1000:8.1f} ms "
              f"{(CPU['parse'] + CPU['render']) * 1000:8.1f} ms")

        def convert() -> None:
            out = root / "units"
            subprocess.run([str(ROOT / ".venv" / "bin" / "inetd2systemd"), "convert",
                            "--services", str(SERVICES), str(conf), "--output-dir", str(out)],
                           capture_output=True, check=False)
        convert_s, _ = median_time(convert, max(1, args.rounds // 2))
        print(f"convert command (fresh interpreter, files written) {convert_s * 1000:8.1f} ms")

        peer = [xinetd_ready(conf, root, args.services) for _ in range(max(1, args.rounds // 2))]
        peer = [p for p in peer if p is not None]
        if peer:
            xinetd_s = statistics.median(peer)
            print(f"xinetd reading the same tree until ready {xinetd_s * 1000:8.1f} ms")
            print(f"ratio parse / xinetd: {parse_s / xinetd_s:.2f}; "
                  f"parse+render / xinetd: {(parse_s + render_s) / xinetd_s:.2f}")
        else:
            print("xinetd: not run (needs /usr/sbin/xinetd and root)")


if __name__ == "__main__":
    main()
