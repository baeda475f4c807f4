"""A service the real xinetd disables stays off everywhere: convert, import, the generator
and serve read the same file, leave out the very services xinetd leaves out (each with an
error naming its file and line) and carry the rest.

xinetd disables a service whose attribute it cannot parse ("... DISABLING SERVICE"): a
unit for it would open a service that never answered (issue 12, item 4).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from support import free_port, run_cli
from xinetd_oracle import needs_xinetd, xinetd_reads

# id -> the attribute xinetd disables it for (None: a service it runs)
ENTRIES = {"keep-a": None,
           "off-times": "access_times = 08:00-24:00",
           "off-umask": "umask = 0778",
           "off-flags": "flags = NOLIBWRAP FAST",
           "off-load": "max_load = 0",
           "keep-b": None}
KEPT = {"keep-a", "keep-b"}


def host(tmp_path: Path) -> tuple[Path, dict[str, int], dict[str, int]]:
    """A host tree whose /etc/xinetd.conf has one internal echo per entry; the ports, and
    the line of each disabling attribute."""
    base = free_port(len(ENTRIES))
    ports = dict(zip(ENTRIES, range(base, base + len(ENTRIES))))
    lines, bad = [], {}
    for id_, attribute in ENTRIES.items():
        lines += ["service echo", "{", "\ttype = INTERNAL UNLISTED", f"\tid = {id_}",
                  "\tsocket_type = stream", "\twait = no", f"\tport = {ports[id_]}",
                  "\tbind = 127.0.0.1"]
        if attribute:
            lines.append(f"\t{attribute}")
            bad[id_] = len(lines)
        if "flags" not in (attribute or ""):
            lines.append("\tflags = NOLIBWRAP")
        lines.append("}")
    conf = tmp_path / "etc" / "xinetd.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("\n".join(lines) + "\n")
    return conf, ports, bad


@needs_xinetd
def test_the_real_xinetd_disables_exactly_these(tmp_path):
    conf, _, bad = host(tmp_path)
    verdict = xinetd_reads(conf)
    assert verdict.started == KEPT, verdict.output[-2000:]
    for id_, line in bad.items():
        assert any("DISABLING" in text for text in verdict.said(line)), \
            (id_, line, verdict.messages)


def test_convert_leaves_them_out_with_an_error_at_their_line(tmp_path):
    conf, _, bad = host(tmp_path)
    result = run_cli("convert", "--json", str(conf))
    document = json.loads(result.stdout)
    assert {s["id"] for s in document["services"]} == KEPT
    units = {u["name"] for u in document["units"]}
    assert {"keep-a.socket", "keep-b.socket"} <= units
    assert not any(name.startswith("off-") for name in units), units
    errors = {(f["service"], f["file"], f["line"]) for f in document["findings"]
              if f["severity"] == "error"}
    assert errors == {(id_, str(conf), line) for id_, line in bad.items()}
    assert result.returncode == 1


def test_import_leaves_them_out_with_an_error_at_their_line(tmp_path):
    conf, _, bad = host(tmp_path)
    out = tmp_path / "out"
    result = run_cli("import", str(tmp_path), "-o", str(out))
    assert result.returncode == 1, result.stderr
    sockets = {p.name for p in (out / "units").glob("*.socket")}
    assert {"keep-a.socket", "keep-b.socket"} <= sockets
    assert not any(name.startswith("off-") for name in sockets), sockets
    report = (out / "report.md").read_text()
    for id_, line in bad.items():
        assert f"{conf}:{line}" in report, (id_, line)
    assert "keep-a" in report and "keep-b" in report


def test_the_generator_leaves_them_out_and_logs_their_line(tmp_path):
    conf, _, bad = host(tmp_path)
    normal = tmp_path / "normal"
    normal.mkdir()
    # generator mode on, as `inetd2systemd generator enable` leaves it
    switch = tmp_path / "etc/systemd/system-generators/inetd2systemd-generator"
    switch.parent.mkdir(parents=True)
    switch.symlink_to(sys.executable)
    env = dict(os.environ, INETD2SYSTEMD_GENERATOR_ROOT=str(tmp_path),
               SYSTEMD_LOG_TARGET="console", SYSTEMD_LOG_LEVEL="info")
    result = subprocess.run([sys.executable, "-c", "import sys; from inetd2systemd.generator."
                             "program import main; sys.exit(main())", str(normal)],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    written = {p.name for p in normal.iterdir()}
    assert {"keep-a.socket", "keep-b.socket"} <= written
    assert not any(name.startswith("off-") for name in written), written
    enabled = {p.name for p in (normal / "sockets.target.wants").iterdir()}
    assert enabled == {"keep-a.socket", "keep-b.socket"}
    for id_, line in bad.items():
        assert f"xinetd.conf:{line}" in result.stderr, (id_, line, result.stderr)


def answers(port: int) -> bool | None:
    """True: it echoes; False: it refuses the connection (nothing listens)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"ping\n")
            return client.recv(16) == b"ping\n"
    except ConnectionRefusedError:
        return False


def test_serve_leaves_their_ports_closed_and_logs_their_line(tmp_path):
    conf, ports, bad = host(tmp_path)
    log = tmp_path / "serve.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "inetd2systemd", "serve", "-c", str(conf),
                                 "--foreground"], stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not answers(ports["keep-b"]):  # the last socket it opens
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        got = {id_: answers(port) for id_, port in ports.items()}
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
    assert got == {id_: id_ in KEPT for id_ in ENTRIES}, (got, log.read_text())
    text = log.read_text()
    for id_, line in bad.items():
        assert f"xinetd.conf:{line}" in text, (id_, line, text)
