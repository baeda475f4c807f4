"""The journal bridge under a real systemd 252 (container): the shipped socket/service
pair, real logger clients inside the container, fields read back with journalctl -o json;
journald's rate limit made strict so that the unit's own guard is what keeps every line."""

from __future__ import annotations

import json
import uuid

import pytest

from support import ROOT, wait_for
from systemd_container import analyze_verify

UNITS = ROOT / "units"
SERVICE = "inetd2systemd-syslogd.service"
SOCKET = "inetd2systemd-syslogd.socket"
VENV_BIN = ROOT / ".venv" / "bin"

# Far below journald's default (10000 per 30 s x a disk factor), so that a unit without
# its own LogRateLimit*= would visibly lose messages in test_nothing_lost_...
JOURNALD_STRICT = "[Journal]\nRateLimitIntervalSec=30s\nRateLimitBurst=500\n"


def journal(systemd, *match: str) -> list[dict]:
    out = systemd.run("journalctl", "-o", "json", "--all", *match, check=False).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def wait_entries(systemd, count: int, *match: str, timeout: float = 20.0) -> list[dict]:
    entries: list[dict] = []

    def enough():
        nonlocal entries
        entries = journal(systemd, *match)
        return len(entries) >= count
    wait_for(enough, timeout, 0.2)
    return entries


@pytest.fixture(scope="module")
def bridge(systemd):
    systemd.write("/etc/systemd/journald.conf.d/strict.conf", JOURNALD_STRICT)
    systemd.systemctl("restart", "systemd-journald.service")
    return systemd


def test_default_sink_on_a_systemd_host_is_the_journal_on_a_private_socket(bridge):
    """No --config, no --listen: journald owns /dev/log, so a private socket, and the
    journal is the sink."""
    tag = f"dflt{uuid.uuid4().hex[:6]}"
    bridge.run("systemd-run", "--unit=i2s-default", "--property=Type=simple",
               f"--setenv=PATH={VENV_BIN}:/usr/bin:/bin", str(VENV_BIN / "inetd2systemd"), "syslogd")
    try:
        assert bridge.wait_for(lambda: bridge.run("test", "-S", "/run/inetd2systemd-syslogd/log",
                                                  check=False).returncode == 0, timeout=15)
        bridge.run("logger", "-u", "/run/inetd2systemd-syslogd/log", "-t", tag, "default path")
        [entry] = wait_entries(bridge, 1, f"SYSLOG_IDENTIFIER={tag}")
        assert entry["MESSAGE"] == "default path" and entry["SYSLOG_TRANSPORT"] == "unix"
        assert entry["_SYSTEMD_UNIT"] == "i2s-default.service"
    finally:
        bridge.systemctl("stop", "i2s-default.service", check=False)


@pytest.fixture(scope="module")
def shipped(bridge):
    for name in (SOCKET, SERVICE):
        bridge.write(f"/etc/systemd/system/{name}", (UNITS / name).read_text())
    # The shipped unit as it is: it runs `inetd2systemd`, which the container has on
    # systemd's search path where the sandbox can see it (tests/systemd_container.py).
    bridge.systemctl("daemon-reload")
    bridge.systemctl("start", SOCKET)
    return bridge


def test_shipped_units_verify_offline():
    # --man=no: their Documentation= pages are installed by the package, not on this host
    # (tests/test_packaging_deb.py verifies the units where the package put them).
    res = analyze_verify("--man=no", str(UNITS / SOCKET), str(UNITS / SERVICE))
    assert res.returncode == 0, res.stderr


def test_rfc5424_with_structured_data_over_udp_field_by_field(shipped):
    tag = f"sd{uuid.uuid4().hex[:6]}"
    shipped.run("logger", "-n", "127.0.0.1", "-P", "514", "-d", "--rfc5424", "--msgid", "ID47",
                "--sd-id", "zoo@32473", "--sd-param", 'tiger="hungry"',
                "-t", tag, "--id=777", "-p", "local4.warning", "the tiger is hungry")
    [e] = wait_entries(shipped, 1, f"SYSLOG_IDENTIFIER={tag}")
    assert e["MESSAGE"] == "the tiger is hungry"
    assert e["PRIORITY"] == "4" and e["SYSLOG_FACILITY"] == "20"
    assert e["SYSLOG_PID"] == "777" and e["SYSLOG_MSGID"] == "ID47"
    assert e["SYSLOG_TIMESTAMP"].startswith("20") and "T" in e["SYSLOG_TIMESTAMP"]
    assert e["SYSLOG_HOSTNAME"] and e["SYSLOG_SOURCE_ADDR"] == "127.0.0.1"
    assert e["SYSLOG_TRANSPORT"] == "udp"
    assert e["SYSLOG_SD_ZOO_32473_TIGER"] == "hungry"
    assert '[zoo@32473 tiger="hungry"' in e["SYSLOG_STRUCTURED_DATA"]
    assert e["SYSLOG_RAW"].startswith("<164>1 ") and e["SYSLOG_RAW"].endswith("the tiger is hungry")
    assert e["_SYSTEMD_UNIT"] == SERVICE


RAW_SENDER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(sys.argv[1].encode("utf-8", "surrogateescape"), ("127.0.0.1", 514))
"""


def test_sd_escapes_bom_and_nil_values(shipped):
    # logger refuses escapes in --sd-param, so this one is sent as bytes.
    tag = f"esc{uuid.uuid4().hex[:6]}"
    shipped.python(RAW_SENDER, f'<13>1 - - {tag} - - [a@1 color="st\\"ri\\]p\\\\ed"] \ufeffwith BOM')
    [e] = wait_entries(shipped, 1, f"SYSLOG_IDENTIFIER={tag}")
    assert e["SYSLOG_SD_A_1_COLOR"] == 'st"ri]p\\ed'
    assert e["MESSAGE"] == "with BOM"  # BOM stripped
    assert "SYSLOG_HOSTNAME" not in e and "SYSLOG_TIMESTAMP" not in e and "SYSLOG_PID" not in e


@pytest.mark.parametrize("how", ["tcp-octet", "tcp-rfc3164", "unix"])
def test_other_transports_into_the_journal(shipped, how):
    tag = f"tr{uuid.uuid4().hex[:6]}"
    target = (["-u", "/run/inetd2systemd-syslogd/log"] if how == "unix" else
              ["-n", "127.0.0.1", "-P", "514", "-T"] + (["--octet-count"] if how == "tcp-octet" else ["--rfc3164"]))
    shipped.run("logger", *target, "-t", tag, "-i", "-p", "mail.err", f"via {how}")
    [e] = wait_entries(shipped, 1, f"SYSLOG_IDENTIFIER={tag}")
    assert (e["MESSAGE"], e["PRIORITY"], e["SYSLOG_FACILITY"]) == (f"via {how}", "3", "2")
    assert e["SYSLOG_TRANSPORT"] == ("unix" if how == "unix" else "tcp")
    assert e["SYSLOG_PID"].isdigit()


SENDER = """
import socket, sys
n, tag = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", 514))
s.sendall(b"".join(b"<134>Nov 27 12:00:00 remote1 %s: seq=%06d\\n" % (tag.encode(), i) for i in range(n)))
s.close()
"""


def test_nothing_lost_into_the_journal_past_journald_rate_limit(shipped):
    """5000 messages over TCP, ten times journald's (strict) burst for a unit: all stored
    once, because the unit raises its own limit (LogRateLimitIntervalSec=0 alone was
    measured to keep only ~1600: systemd 252 treats 0 as unset)."""
    tag = f"loss{uuid.uuid4().hex[:6]}"
    n = 5000
    shipped.python(SENDER, str(n), tag)
    entries = wait_entries(shipped, n, f"SYSLOG_IDENTIFIER={tag}", timeout=40)
    seqs = sorted(int(e["MESSAGE"].split("=")[1]) for e in entries)
    assert seqs == list(range(n))
    assert entries[0]["SYSLOG_HOSTNAME"] == "remote1"
    suppressed = journal(shipped, "MESSAGE_ID=a596d6fe7bfa4994828e72309e95d61e", f"_SYSTEMD_UNIT={SERVICE}")
    assert not suppressed


def test_status_reload_and_counters(shipped):
    tag = f"st{uuid.uuid4().hex[:6]}"
    shipped.run("logger", "-n", "127.0.0.1", "-P", "514", "-d", "-t", tag, "count me")
    wait_entries(shipped, 1, f"SYSLOG_IDENTIFIER={tag}")
    assert shipped.wait_for(lambda: "received" in shipped.show(SERVICE, "StatusText"), timeout=5)
    status = shipped.show(SERVICE, "StatusText")
    assert "dropped by the kernel 0" in status
    pid = shipped.show(SERVICE, "MainPID")
    shipped.systemctl("reload", SERVICE)
    assert shipped.show(SERVICE, "ActiveState") == "active" and shipped.show(SERVICE, "MainPID") == pid
    shipped.run("logger", "-n", "127.0.0.1", "-P", "514", "-T", "-t", tag, "after reload")
    wait_entries(shipped, 2, f"SYSLOG_IDENTIFIER={tag}")


def test_restart_keeps_the_sockets_so_datagrams_wait(shipped):
    """The sockets belong to systemd: stopping the service does not refuse syslog; what
    arrives meanwhile is read when the socket starts it again."""
    tag = f"rs{uuid.uuid4().hex[:6]}"
    shipped.systemctl("stop", SERVICE)
    shipped.run("logger", "-n", "127.0.0.1", "-P", "514", "-d", "-t", tag, "while stopped")
    [e] = wait_entries(shipped, 1, f"SYSLOG_IDENTIFIER={tag}")
    assert e["MESSAGE"] == "while stopped"


def test_shipped_service_is_hardened(shipped):
    out = shipped.run("systemd-analyze", "security", "--no-pager", SERVICE, check=False).stdout
    level = out.strip().splitlines()[-1]
    score = float(level.split("exposure level for", 1)[1].split(":")[1].split()[0])
    assert score <= 2.5, level
