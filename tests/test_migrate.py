"""`inetd2systemd import`: the sample host trees against their expected results, the
preflight checks, the report, and the output's all-or-nothing writing.

The real-systemd side (install, allow/deny by source address, rollback, equivalence
with the real legacy superserver) is in test_migrate_systemd.py.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from support import ROOT, run_cli

from inetd2systemd.convert.host import tcp_wrappers_findings
from inetd2systemd.migrate import preflight
from inetd2systemd.migrate import (Probe, compare, plan_migration, record_transcripts,
                                   transcript)
from inetd2systemd.model import Family, Listen, Service, Severity, SocketType, Source
from systemd_container import analyze_verify

SAMPLES = ROOT / "contrib" / "xinetd-import" / "samples"
SAMPLE_NAMES = sorted(p.name for p in SAMPLES.iterdir() if (p / "expected.json").exists())


def expected(name: str) -> dict:
    return json.loads((SAMPLES / name / "expected.json").read_text())


def fake_target(tmp_path: Path, programs) -> Path:
    """A target root holding exactly these programs (so the check does not depend on
    what this machine has installed)."""
    target = tmp_path / "target"
    for program in programs:
        path = target / program.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    return target


def plan_sample(name: str, tmp_path: Path):
    exp = expected(name)
    return plan_migration(SAMPLES / name, target_root=fake_target(tmp_path, exp["programs_on_target"]),
                          check_ports=False), exp


def admits(allow, address: str) -> bool:
    if allow is None:
        return True
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(a) for a in allow)


def test_there_are_two_samples():
    assert {"debian-inetd", "rhel-xinetd"} <= set(SAMPLE_NAMES)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_services_access_and_status(name, tmp_path):
    migration, exp = plan_sample(name, tmp_path)
    plans = {p.id: p for p in migration.plans}
    assert set(plans) == set(exp["services"])
    for sid, want in exp["services"].items():
        plan = plans[sid]
        assert plan.status == want["status"], (sid, [str(f) for f in plan.findings])
        assert plan.daemon == want["daemon"], sid
        if "exact" in want:
            assert plan.access.exact == want["exact"], sid
        if want.get("open"):
            assert plan.allow is None, sid
        for address in want.get("allowed", []):
            assert admits(plan.allow, address), (sid, address, plan.allow)
        for address in want.get("denied", []):
            assert not admits(plan.allow, address), (sid, address, plan.allow)
        # the socket unit says the same as the plan
        sockets = [u for u in plan.units if u.name.endswith(".socket")]
        assert sockets, sid
        text = sockets[0].text
        if plan.allow is None:
            assert "IPAddressDeny" not in text
        else:
            assert "IPAddressDeny=any" in text
            allow_lines = [line for line in text.splitlines() if line.startswith("IPAddressAllow=")]
            written = " ".join(line.split("=", 1)[1] for line in allow_lines).split()
            for address in want.get("allowed", []):
                assert admits(written, address), (sid, address, written)
    assert list(migration.legacy) == exp["legacy_units"]


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_unexpressible_rules_and_lost_options_are_reported(name, tmp_path):
    from inetd2systemd.migrate.report import html, markdown
    migration, exp = plan_sample(name, tmp_path)
    findings = [f for p in migration.plans for f in p.findings]
    md, page = markdown(migration), html(migration)
    for file, line, pattern in exp["unexpressible"] + exp["not_carried"]:
        hits = [f for f in findings if f.source.file.endswith(file) and f.source.line == line
                and pattern in f.message and f.severity is Severity.WARNING]
        assert hits, (file, line, pattern)
        assert pattern in md
        assert pattern.replace('"', "&quot;").replace("&", "&amp;").replace("<", "&lt;") in page \
            or pattern in page


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_preflight_accounts_and_programs(name, tmp_path):
    migration, exp = plan_sample(name, tmp_path)
    messages = [f.message for f in migration.preflight]
    users = sorted(m.split("'")[1] for m in messages if m.startswith("user "))
    groups = sorted(m.split("'")[1] for m in messages if m.startswith("group "))
    programs = sorted(m.split()[1] for m in messages if m.startswith("program "))
    assert users == sorted(exp["missing_users"])
    assert groups == sorted(exp["missing_groups"])
    assert programs == sorted(exp["missing_programs"])


def test_sample_tcpwrapper_decisions_match_the_real_libwrap(tcpdmatch, tmp_path):
    """For every exact service, the compiled set agrees with tcpdmatch on the sample's files."""
    for name in SAMPLE_NAMES:
        migration, exp = plan_sample(name, tmp_path / name)
        for sid, want in exp["services"].items():
            plan = next(p for p in migration.plans if p.id == sid)
            if not want.get("daemon") or not plan.access.exact or plan.original.only_from:
                continue
            for address in want.get("allowed", []) + want.get("denied", []):
                out = subprocess.run([tcpdmatch, "-d", want["daemon"], address],
                                     cwd=migration.etc, capture_output=True, text=True,
                                     timeout=30).stdout
                granted = out.strip().splitlines()[-1].split()[-1] == "granted"
                assert granted == admits(plan.allow, address), (name, sid, address)


# -- the command ---------------------------------------------------------------------------------


def test_import_writes_units_report_scripts_and_a_summary_line(tmp_path):
    out = tmp_path / "out"
    result = run_cli("import", str(SAMPLES / "debian-inetd"), "-o", str(out), "--no-port-check")
    assert result.returncode == 1, result.stderr  # written, with warnings to read (approximated)
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("inetd2systemd-import: ")
    fields = dict(word.split("=", 1) for word in last.split()[1:])
    assert fields["services"] == "6" and fields["failed"] == "0"
    assert fields["status"] == "approximated" and fields["stricter"] == "1"
    assert int(fields["units"]) == len(list((out / "units").iterdir()))
    for name in ("report.md", "report.html", "install.sh", "rollback.sh", "summary.json"):
        assert (out / name).is_file(), name
    assert os.access(out / "install.sh", os.X_OK) and os.access(out / "rollback.sh", os.X_OK)
    summary = json.loads((out / "summary.json").read_text())
    assert {s["id"]: s["status"] for s in summary["services"]}["finger"] == "approximated"
    report = (out / "report.md").read_text()
    # per service: the source lines, the units, what to check
    assert "git\t\tstream\ttcp\tnowait\tnobody\t/usr/sbin/tcpd\t/usr/bin/git daemon" in report
    assert "IPAddressAllow=127.0.0.2 192.168.10.0/24 fd00:10::/64" in report
    assert "What to check after the switch" in report
    assert "<!DOCTYPE html>" in (out / "report.html").read_text()
    for script in ("install.sh", "rollback.sh"):
        subprocess.run(["sh", "-n", str(out / script)], check=True)


def test_an_output_directory_that_cannot_be_written_is_exit_3_without_a_traceback(tmp_path):
    (tmp_path / "file").write_text("")
    result = run_cli("import", str(SAMPLES / "rhel-xinetd"), "-o", str(tmp_path / "file" / "out"),
                     "--no-port-check")
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith(f"inetd2systemd import: cannot write {tmp_path / 'file'}: ")
    assert "Traceback" not in result.stderr


def test_generated_units_pass_systemd_analyze_verify(tmp_path):
    out = tmp_path / "out"
    assert run_cli("import", str(SAMPLES / "debian-inetd"), "-o", str(out),
                   "--no-port-check").returncode == 1  # approximated: warnings to read
    # the services whose programs exist on this machine (git, tftp, internal ones)
    names = [p.name for p in (out / "units").iterdir()
             if p.name.split(".")[0].split("@")[0] in ("echo", "time", "git", "tftp")]
    verify = analyze_verify("--man=no", *[str(out / "units" / n) for n in names], timeout=120)
    assert verify.returncode == 0, verify.stderr


def test_an_existing_output_directory_is_not_replaced_without_force(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    result = run_cli("import", str(SAMPLES / "rhel-xinetd"), "-o", str(out), "--no-port-check")
    assert result.returncode == 3 and "--force" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    result = run_cli("import", str(SAMPLES / "rhel-xinetd"), "-o", str(out), "--no-port-check",
                     "--force")
    assert result.returncode == 1, result.stderr  # written; the sample has warnings to read
    assert not (out / "mine.txt").exists() and (out / "report.md").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no staging left


def test_a_bad_hosts_allow_line_costs_that_line_as_in_libwrap(tmp_path):
    """libwrap skips a line without ':' and reads on: so does the import, with an error
    at file:line:column and exit status 1; the other rules are carried."""
    tree = tmp_path / "host"
    shutil.copytree(SAMPLES / "debian-inetd", tree)
    with (tree / "etc" / "hosts.allow").open("a") as f:
        f.write("in.telnetd 10.0.0.1\n")  # no ':'
    lines = (tree / "etc" / "hosts.allow").read_text().count("\n")
    out = tmp_path / "out"
    result = run_cli("import", str(tree), "-o", str(out), "--no-port-check")
    assert result.returncode == 1, result.stderr
    report = (out / "report.md").read_text()
    assert f"{tree / 'etc' / 'hosts.allow'}:{lines}:20" in report
    assert "missing ':'" in report and "libwrap skips this line" in report
    assert "IPAddressAllow=127.0.0.2 192.168.10.0/24 fd00:10::/64" in report


def test_root_may_be_the_etc_directory_itself(tmp_path):
    migration = plan_migration(SAMPLES / "rhel-xinetd" / "etc", check_ports=False,
                               target_root=tmp_path)
    assert {p.id for p in migration.plans} == set(expected("rhel-xinetd")["services"])


def test_not_a_host_tree_is_a_clear_error(tmp_path):
    result = run_cli("import", str(tmp_path), "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and str(tmp_path) in result.stderr


def test_libwrap_option_of_openbsd_inetd_wraps_plain_services(tmp_path):
    """`inetd -l` (OPTIONS="-l" in /etc/default/openbsd-inetd) checks hosts.allow itself."""
    etc = tmp_path / "etc"
    (etc / "default").mkdir(parents=True)
    (etc / "default" / "openbsd-inetd").write_text('OPTIONS="-l"\n')
    (etc / "inetd.conf").write_text("9999 stream tcp nowait nobody /bin/cat cat\n"
                                    "echo stream tcp nowait root internal\n")
    (etc / "hosts.allow").write_text("cat: 127.0.0.2\n")
    (etc / "hosts.deny").write_text("ALL: ALL\n")
    migration = plan_migration(tmp_path, check_ports=False)
    plans = {p.id: p for p in migration.plans}
    assert plans["9999"].daemon == "cat" and plans["9999"].allow == ("127.0.0.2",)
    assert plans["echo"].daemon is None and plans["echo"].allow is None  # internal: not wrapped


def test_xinetd_only_from_and_tcp_wrappers_both_apply(tmp_path):
    migration, _ = plan_sample("rhel-xinetd", tmp_path)
    check_mk = next(p for p in migration.plans if p.id == "check_mk")
    # only_from 127.0.0.1 10.0.20.0/24, hosts.allow check_mk_agent: 10.0.20.  -> 10.0.20.0/24
    assert check_mk.allow == ("10.0.20.0/24",)



def test_wait_stream_services_carry_libwrap_verdict_on_an_unknown_client(tmp_path, tcpdmatch):
    """A wait-type stream server accepts its own connections: xinetd asks libwrap about a
    client it cannot name, so the rules admit everyone or nobody (the real xinetd, in
    test_access_serve.py). The unit gets that verdict, the finding names libwrap (not
    only_from), and the report never shows an allow list the socket does not use."""
    etc = tmp_path / "etc"
    (etc / "xinetd.d").mkdir(parents=True)
    (etc / "xinetd.conf").write_text("includedir /etc/xinetd.d\n")

    def entry(name: str, port: int, extra: str = "") -> str:
        return (f"service {name}\n{{\n\ttype = UNLISTED\n\tsocket_type = stream\n\twait = yes\n"
                f"\tuser = root\n\tport = {port}\n\tserver = /bin/cat\n\tlibwrap = {name}\n"
                f"{extra}}}\n")
    (etc / "xinetd.d" / "waits").write_text(
        entry("w-refused", 7001) + entry("w-all", 7002)
        + entry("w-lists", 7003, "\tonly_from = 10.0.0.0/8\n")
        + entry("w-both", 7004, "\tonly_from = 10.0.0.0/8\n"))
    (etc / "hosts.allow").write_text("w-refused: 127.0.0.1, 10.0.0.0/255.0.0.0\nw-all: ALL\n"
                                     "w-lists: UNKNOWN\nw-both: 10.\n")
    (etc / "hosts.deny").write_text("ALL: ALL\n")
    migration = plan_migration(tmp_path, check_ports=False)
    plans = {p.id: p for p in migration.plans}
    libwrap = {n: subprocess.run([tcpdmatch, "-d", n, "unknown"], cwd=etc, capture_output=True,
                                 text=True, timeout=30).stdout.split()[-1] == "granted"
               for n in plans}
    assert libwrap == {"w-refused": False, "w-all": True, "w-lists": True, "w-both": False}

    def socket_text(plan) -> str:
        return next(u.text for u in plan.units if u.name.endswith(".socket"))

    for name, plan in plans.items():
        admits_everyone = libwrap[name] and name != "w-lists" and name != "w-both"
        text = socket_text(plan)
        assert ("IPAddressDeny=any" not in text) == admits_everyone, (name, text)
        assert "IPAddressAllow=" not in text, (name, text)
        assert plan.allow == (None if admits_everyone else ()), name
    refused = plans["w-refused"].findings
    nobody = [f for f in refused if f.code == "access-nobody"]
    assert len(nobody) == 1 and nobody[0].severity is Severity.WARNING
    assert "libwrap" in nobody[0].message and "refuse" in nobody[0].message
    assert "only_from" not in nobody[0].message, nobody[0].message
    assert not any(f.code == "tcp-wrappers-carried" for f in refused)
    # only_from alone refuses (no address to check it against): the writer says so
    assert any(f.code == "access-nobody" and "only_from" in f.message
               for f in plans["w-lists"].findings)
    both = [f for f in plans["w-both"].findings if f.code == "access-nobody"]
    assert len(both) == 1 and "libwrap" in both[0].message and "only_from" in both[0].message
    # convert does not fold the rules: it says they were asked about an unnamed client
    wrappers = [f.message for f in tcp_wrappers_findings([p.original for p in plans.values()],
                                                         str(tmp_path))]
    assert len(wrappers) == 4 and all("could not name" in m and "IPAddressAllow=" not in m
                                      for m in wrappers), wrappers
    report = (tmp_path / "out")
    assert run_cli("import", str(tmp_path), "-o", str(report)).returncode in (0, 1)
    text = "\n".join(p.read_text() for p in report.rglob("*.md"))
    assert "IPAddressAllow=127.0.0.1" not in text and "IPAddressAllow=10." not in text, text


# -- preflight -----------------------------------------------------------------------------------


def service(port: int, proto: str = "tcp", **kw) -> Service:
    kind = SocketType.STREAM if proto == "tcp" else SocketType.DGRAM
    return Service(name="svc", id=kw.pop("id", "svc"), source=Source("/etc/inetd.conf", 3),
                   socket_type=kind, protocol=proto, listens=(Listen(Family.DUAL, port),),
                   wait=proto == "udp", **kw)


def test_preflight_finds_a_port_still_held_and_by_whom():
    with socket.socket() as held, socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp:
        held.bind(("127.0.0.1", 0))
        held.listen()
        udp.bind(("::", 0))
        tcp_port, udp_port = held.getsockname()[1], udp.getsockname()[1]
        found = preflight.ports_in_use([service(tcp_port, id="a"), service(udp_port, "udp", id="b"),
                                        service(tcp_port, "udp", id="c")])
    assert [f.service for f in found] == ["a", "b"]
    assert f"port {tcp_port}/tcp" in found[0].message
    assert f"pid {os.getpid()}" in found[0].message


def test_preflight_ip_filter_without_cgroup2_is_an_error(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("proc /proc proc rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n")
    guarded = service(7, only_from=("127.0.0.2/32",))
    found = preflight.ip_filter_support([guarded], mounts=mounts)
    assert len(found) == 1 and found[0].severity is Severity.ERROR
    assert "silently ignore" in found[0].message
    assert preflight.ip_filter_support([service(7)], mounts=mounts) == []  # nothing to enforce
    mounts.write_text("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n")
    refused = preflight.ip_filter_support([guarded], mounts=mounts, probe=lambda: False)
    assert refused[0].severity is Severity.ERROR and "BPF" in refused[0].message
    ok = preflight.ip_filter_support([guarded], mounts=mounts, probe=lambda: True)
    assert ok[0].severity is Severity.INFO
    # not root: the kernel refuses the probe whatever it supports, which proves nothing
    unknown = preflight.ip_filter_support([guarded], mounts=mounts, probe=lambda: None)
    assert unknown[0].severity is Severity.INFO and "not probed" in unknown[0].message


def test_preflight_bpf_probe_refused_to_a_user_is_not_a_verdict():
    """As a user other than root the kernel refuses bpf(2) (EPERM): that is no proof that
    it lacks cgroup BPF, so `import` run by a user is not failed for it (as root the
    probe runs in a child that became nobody)."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            os.write(writer, repr(preflight._bpf_cgroup_skb_loads()).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as f:
        verdict = f.read()
    os.waitpid(pid, 0)
    assert verdict == "None"


def test_preflight_bpf_probe_runs_here():
    """The real bpf(2) probe: as root on this kernel it loads (None only on an unknown arch)."""
    if os.geteuid() != 0:
        pytest.skip("loading a BPF program needs root")
    assert preflight._bpf_cgroup_skb_loads() in (True, None)


def test_preflight_missing_accounts_numbers_need_an_entry_too(tmp_path):
    """systemd refuses a User=/Group= number without an entry (217/USER, 216/GROUP)."""
    (tmp_path / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (tmp_path / "group").write_text("root:x:0:\n")
    found = preflight.missing_accounts([service(7, user="1001", group="staff"),
                                        service(8, user="root", id="b", supplementary_groups=("dialout",)),
                                        service(9, user="0", id="c", group="0")],
                                       tmp_path)
    assert [(f.service, f.message.split("'")[1]) for f in found] == \
        [("svc", "1001"), ("svc", "staff"), ("b", "dialout")]


# -- transcripts ----------------------------------------------------------------------------------


def test_transcripts_and_verdicts_with_a_real_server():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        svc = service(port, internal="echo")
        import threading

        def echo_once():
            conn, _ = server.accept()
            with conn:
                conn.sendall(conn.recv(100))
        thread = threading.Thread(target=echo_once)
        thread.start()
        record = transcript(svc, Probe(b"hello\r\n", wait=0.5), source="127.0.0.2")
        thread.join()
    assert record["outcome"].startswith("answered") and record["received"] == "hello\r\n"
    assert record["source"] == "127.0.0.2"
    gone = transcript(svc, Probe(b"hello\r\n"))
    assert gone["outcome"] == "connection refused"
    assert compare(record, dict(record), "echo") == "same"
    assert compare(record, gone, "echo") == "DIFFERS"
    assert compare(gone, {**gone, "outcome": "connect timed out"}, None).startswith("same: nothing")
    assert compare({**gone, "outcome": "silent"}, {**gone, "outcome": "silent"}, "discard") == "same"
    day1 = {**record, "received": "Fri Nov 27 12:21:45 2026\r\n"}
    day2 = {**record, "received": "Fri Nov 27 12:29:03 2026\r\n"}
    assert compare(day1, day2, "daytime").startswith("same shape")
    assert compare(day1, day2, None) == "DIFFERS"


def test_record_transcripts_covers_every_enabled_service(tmp_path):
    migration, exp = plan_sample("debian-inetd", tmp_path)
    records = record_transcripts(migration, ["127.0.0.1"], {})
    assert {r["service"] for r in records} == set(exp["services"])


def test_standalone_script_runs_from_a_source_checkout(tmp_path):
    """contrib/xinetd-import/xinetd-import with a Python that has no inetd2systemd installed."""
    python = "/usr/bin/python3"
    if not os.path.exists(python):
        pytest.skip("no system Python to run the script outside the virtual environment")
    script = ROOT / "contrib" / "xinetd-import" / "xinetd-import"
    out = subprocess.run([python, str(script), str(SAMPLES / "rhel-xinetd"), "-o", str(tmp_path / "o"),
                          "--no-port-check"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr  # written; the sample has warnings to read
    assert out.stdout.strip().splitlines()[-1].startswith("inetd2systemd-import: ")
    assert (tmp_path / "o" / "report.html").exists()


def test_a_disabled_service_that_cannot_be_converted_still_counts_as_failed(tmp_path):
    etc = tmp_path / "etc"
    (etc / "xinetd.d").mkdir(parents=True)
    (etc / "xinetd.conf").write_text("defaults\n{\n}\nincludedir /etc/xinetd.d\n")
    (etc / "xinetd.d" / "services").write_text(
        "service services\n{\n\tdisable\t= yes\n\ttype\t= INTERNAL UNLISTED\n\tport\t= 9098\n"
        "\tsocket_type\t= stream\n\tprotocol\t= tcp\n\twait\t= no\n\tonly_from\t= 127.0.0.1\n}\n")
    (etc / "xinetd.d" / "echo").write_text(
        "service echo\n{\n\tdisable\t= yes\n\ttype\t= INTERNAL\n\tid\t= echo-stream\n"
        "\tsocket_type\t= stream\n\twait\t= no\n}\n")
    (etc / "services").write_text("echo 7/tcp\n")
    out = run_cli("import", str(tmp_path), "-o", str(tmp_path / "out"), "--include-disabled",
                  "--no-port-check")
    fields = dict(w.split("=", 1) for w in out.stdout.strip().splitlines()[-1].split()[1:])
    assert out.returncode == 1, out.stderr
    assert fields["status"] == "incomplete" and fields["failed"] == "1" and fields["disabled"] == "1"
