"""A fleet migrated with the real ansible-core and the collection in contrib/ansible.

Three containers, each a real systemd 252 with a real legacy superserver, are the
fleet, in rollout order:

    alpha    openbsd-inetd: internal services, git daemon (tcp, nowait), in.tftpd (udp, wait)
    charlie  openbsd-inetd through tcpd with hosts.allow/hosts.deny (the Debian sample):
             in.fingerd and in.identd are not installed
    bravo    xinetd with `includedir /etc/xinetd.d`, its libwrap obeying hosts.allow/deny,
             one service disabled

Ansible reaches them with tests/ansible_plugins/connection/nsenter.py (`nsenter -t PID -a`).
The example playbook (serial 1, max_fail_percentage 0) migrates alpha, stops at charlie
(a program is missing: nothing is switched there) and never reaches bravo. Then:
check mode and a second run change nothing, bravo migrates alone, and state=absent
brings alpha's openbsd-inetd back, its services answering as before.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from pathlib import Path

import pytest

import ansible_support
from legacy_hosts import host_state, run_openbsd_inetd, run_xinetd, serve_files
from systemd_container import start_all
from support import ROOT

SAMPLE = ROOT / "contrib" / "xinetd-import" / "samples" / "debian-inetd"
EXECUTABLE = str(ansible_support.BIN / "inetd2systemd")
OUTPUT_DIR = "/var/lib/inetd2systemd/migration"
HOSTS = ("alpha", "charlie", "bravo")  # the inventory's order is the rollout's

GIT_REQUEST = "002dgit-upload-pack /proj.git\0host=localhost\0"
TFTP_REQUEST = "\0\1hello.txt\0octet\0"
SOURCES = {"bravo": ["127.0.0.2", "127.0.0.3"]}  # where the transcripts are recorded from
PROBES = {"git": {"send": GIT_REQUEST}, "tftp": {"send": TFTP_REQUEST, "read": 600}}

ALPHA_INETD = """\
# alpha: a plain openbsd-inetd host
echo	stream	tcp	nowait	root	internal
daytime	stream	tcp	nowait	root	internal
git	stream	tcp	nowait	nobody	/usr/bin/git git daemon --inetd --base-path=/srv/git --export-all /srv/git
tftp	dgram	udp	wait	root	/usr/sbin/in.tftpd in.tftpd -s /srv/tftp
"""

BRAVO_XINETD = {
    "/etc/xinetd.conf": """\
defaults
{
	log_type	= SYSLOG daemon info
	log_on_failure	= HOST
	instances	= 50
	per_source	= 10
	v6only		= no
}

includedir /etc/xinetd.d
""",
    "/etc/xinetd.d/echo-stream": """\
service echo
{
	id		= echo-stream
	type		= INTERNAL
	wait		= no
	socket_type	= stream
}
""",
    "/etc/xinetd.d/daytime-stream": """\
service daytime
{
	id		= daytime-stream
	type		= INTERNAL
	wait		= no
	socket_type	= stream
}
""",
    "/etc/xinetd.d/git": """\
service git
{
	socket_type	= stream
	protocol	= tcp
	wait		= no
	user		= nobody
	server		= /usr/bin/git
	server_args	= daemon --inetd --base-path=/srv/git --export-all /srv/git
}
""",
    "/etc/xinetd.d/time-dgram": """\
service time
{
	disable		= yes
	id		= time-dgram
	type		= INTERNAL
	wait		= yes
	socket_type	= dgram
}
""",
    # xinetd's libwrap asks under the service name (internal) or the server's basename
    "/etc/hosts.allow": "echo: 127.0.0.2\ndaytime: 127.0.0.0/255.0.0.0 EXCEPT 127.0.0.3\ngit: ALL\n",
    "/etc/hosts.deny": "ALL: ALL\n",
}

# What a client sends, per host: (source address, port, udp?, bytes). Refused clients
# are probed where the refusal is quick (xinetd's libwrap closes at once; tcpd would
# hold the connection 5 s).
CLIENTS = {
    "alpha": [("127.0.0.2", 7, False, "ping\n"), ("127.0.0.3", 13, False, ""),
              ("127.0.0.2", 9418, False, GIT_REQUEST), ("127.0.0.2", 69, True, TFTP_REQUEST)],
    "charlie": [("127.0.0.2", 7, False, "ping\n"), ("127.0.0.2", 9418, False, GIT_REQUEST),
                ("127.0.0.2", 69, True, TFTP_REQUEST)],
    "bravo": [("127.0.0.2", 7, False, "ping\n"), ("127.0.0.3", 7, False, "ping\n"),
              ("127.0.0.2", 13, False, ""), ("127.0.0.3", 13, False, ""),
              ("127.0.0.3", 9418, False, GIT_REQUEST)],
}

CLIENT = textwrap.dedent("""
    import json, socket, sys
    answers = []
    for source, port, udp, send in json.loads(sys.argv[1]):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
        s.settimeout(1)  # a refused client's SYN is dropped: no answer to wait for
        s.bind((source, 0))
        data = b""
        try:
            if udp:
                s.sendto(send.encode("latin-1"), ("127.0.0.1", port))
                data = s.recvfrom(65535)[0]
            else:
                s.connect(("127.0.0.1", port))
                s.sendall(send.encode("latin-1"))
                s.settimeout(8)  # a first answer may wait for a unit to start
                while chunk := s.recv(4096):
                    data += chunk
                    s.settimeout(1)
        except OSError:  # refused, timed out, reset: nothing (more) received
            pass
        answers.append(data.decode("latin-1"))
    print(json.dumps(answers))
""")


def answers(container, host: str) -> list[str]:
    """What each of the host's clients receives."""
    out = container.python(CLIENT, json.dumps(CLIENTS[host]), timeout=120).stdout
    return json.loads(out)


def comparable(host: str, received: list[str]) -> list[str]:
    """daytime tells the time: only its shape (length) can be compared."""
    return [f"<{len(r)} bytes>" if port == 13 else r
            for (_, port, _, _), r in zip(CLIENTS[host], received)]


# -- the legacy hosts ------------------------------------------------------------------------


def legacy(c, files: dict[str, str], superserver, program: str) -> None:
    c.write("/etc/services", Path("/etc/services").read_text())
    for path, text in files.items():
        c.write(path, text)
    serve_files(c)
    superserver(c, program)


LEGACY = {
    "alpha": ({"/etc/inetd.conf": ALPHA_INETD, "/etc/default/openbsd-inetd": 'OPTIONS=""\n'},
              run_openbsd_inetd),
    "charlie": ({f"/etc/{name}": (SAMPLE / "etc" / name).read_text()
                 for name in ("inetd.conf", "services", "hosts.allow", "hosts.deny",
                              "default/openbsd-inetd")}, run_openbsd_inetd),
    "bravo": (BRAVO_XINETD, run_xinetd),
}


@pytest.fixture(scope="module")
def fleet(nspawn, openbsd_inetd, xinetd, tmp_path_factory):
    reason = ansible_support.available()
    if reason:
        pytest.skip(reason)
    containers = start_all([nspawn(f"i2s-{host}") for host in HOSTS])
    hosts = dict(zip(HOSTS, containers))
    programs = {run_openbsd_inetd: openbsd_inetd, run_xinetd: xinetd}
    try:
        for host, c in hosts.items():
            files, superserver = LEGACY[host]
            legacy(c, files, superserver, programs[superserver])
        work = tmp_path_factory.mktemp("ansible")
        tarball, collections = ansible_support.build_and_install(work)
        inventory = {"inetd_hosts": {
            # bravo's rules tell .2 from .3; the others are probed from one address
            # (tcpd would hold each refused probe 5 s)
            "hosts": {host: {"ansible_host": c.pid,
                             "inetd2systemd_sources": SOURCES.get(host, ["127.0.0.2"])}
                      for host, c in hosts.items()},
            "vars": {"ansible_connection": "nsenter",
                     "inetd2systemd_executable": EXECUTABLE,
                     "inetd2systemd_probes": PROBES,
                     "inetd2systemd_fleet_dir": str(work / "fleet")}}}
        controller = ansible_support.Controller(work / "controller", collections, inventory)
        for host, c in hosts.items():  # every legacy superserver answers
            assert c.wait_for(lambda: answers(c, host)[0] == "ping\n", timeout=15), host
        baseline = {host: answers(c, host) for host, c in hosts.items()}
        states = {host: host_state(c) for host, c in hosts.items()}
        yield {"hosts": hosts, "ansible": controller, "baseline": baseline, "states": states,
               "fleet_dir": work / "fleet"}
    finally:
        for c in containers:
            c.stop()


def untouched(fleet, host: str) -> bool:
    """As the fixture left it: unit files, sockets, the legacy superserver; no import."""
    c = fleet["hosts"][host]
    return (host_state(c) == fleet["states"][host]
            and c.run("test", "-e", OUTPUT_DIR, check=False).returncode == 1)


def migration(controller, hosts: str, *options: str, **args) -> dict[str, dict]:
    args.setdefault("executable", EXECUTABLE)
    return controller.module(hosts, "inetd2systemd.fleet.migration", args, *options)


# -- the tests, in the order of a rollout ---------------------------------------------------


def test_baseline_is_what_the_legacy_superservers_serve(fleet):
    alpha, charlie, bravo = (fleet["baseline"][h] for h in HOSTS)
    assert alpha[0] == "ping\n" and len(alpha[1]) > 10  # echo; daytime (not wrapped)
    assert "HEAD\0" in alpha[2] and alpha[2].endswith("0000")  # git's ref advertisement
    assert alpha[3].startswith("\0\3\0\1hello from tftp")  # tftp DATA block 1
    assert "HEAD\0" in charlie[1] and charlie[2].startswith("\0\3\0\1hello")
    # bravo's libwrap: echo only for .2, daytime for 127/8 except .3, git for everyone
    assert bravo[:4] == ["ping\n", "", bravo[2], ""] and len(bravo[2]) > 10
    assert "HEAD" in bravo[4]


def test_check_mode_reports_the_plan_and_changes_nothing(fleet):
    results = migration(fleet["ansible"], "all", "--check", "--diff", state="present")
    for host, c in fleet["hosts"].items():
        assert untouched(fleet, host), host
    alpha, bravo, charlie = results["alpha"], results["bravo"], results["charlie"]
    assert alpha["_status"] == "ok" and alpha["changed"] is True, alpha["_output"]
    assert alpha["migrated"] is False
    assert {"echo", "daytime", "git", "tftp"} == set(alpha["services"])
    assert alpha["services"]["git"]["units"] == ["git.socket", "git@.service"]
    diff = {d["after_header"]: d for d in alpha["diff"]}
    assert "ListenStream=[::]:9418" in diff["/etc/systemd/system/git.socket"]["after"]
    assert diff["/etc/systemd/system/git.socket"]["before"] == ""
    assert any("in use" in f and "inetd" in f for f in alpha["findings"])  # the preflight
    assert set(bravo["services"]) == {"echo-stream", "daytime-stream", "git"}  # time-dgram is off
    assert bravo["services"]["echo-stream"]["allow"] == ["127.0.0.2"]
    # charlie: the import names its missing programs; the host would not be switched
    assert charlie["_status"] == "failed" and charlie["changed"] is False
    assert "finger: program /usr/sbin/in.fingerd is missing" in charlie["msg"]
    assert charlie["services"]["finger"]["missing_programs"] == ["/usr/sbin/in.fingerd"]
    # the transcript alone, in check mode: recorded in a private copy, nothing kept
    checked = migration(fleet["ansible"], "bravo", "--check", state="checked",
                        sources=["127.0.0.2", "127.0.0.3"])["bravo"]
    assert checked["_status"] == "ok" and checked["phase"] == "before", checked["_output"]
    rows = {(r["service"], r["source"]): r for r in checked["equivalence"]}
    assert rows[("echo-stream", "127.0.0.2")]["before"]["received"] == "inetd2systemd equivalence probe\r\n"
    assert rows[("echo-stream", "127.0.0.3")]["before"]["received"] == ""  # libwrap refuses .3
    assert untouched(fleet, "bravo")


def test_rollout_stops_at_the_first_host_with_an_error_and_leaves_it_as_it_was(fleet):
    ansible, hosts = fleet["ansible"], fleet["hosts"]
    run, results = ansible.playbook("inetd2systemd.fleet.migrate", "-e", "inetd2systemd_become=false",
                           "-e", '{"inetd2systemd_serial": 1}')
    log = run.stdout[-8000:] + run.stderr[-3000:]
    assert run.returncode == 2, log  # a host failed
    assert "Stop the rollout at this host" in run.stdout, log

    # alpha: migrated; the same answers from the systemd sockets
    alpha = hosts["alpha"]
    assert alpha.systemctl("is-active", "openbsd-inetd.service", check=False).stdout.strip() == "inactive"
    for sock in ("echo.socket", "daytime.socket", "git.socket", "tftp.socket"):
        assert alpha.show(sock, "ActiveState") == "active", sock
    assert comparable("alpha", answers(alpha, "alpha")) == comparable("alpha", fleet["baseline"]["alpha"])
    after = json.loads(alpha.run("cat", f"{OUTPUT_DIR}/transcripts/after.json").stdout)
    assert {r["service"] for r in after} == {"echo", "daytime", "git", "tftp"}

    # charlie: nothing switched, nothing lost; the report is there to read
    charlie = hosts["charlie"]
    assert host_state(charlie) == fleet["states"]["charlie"]
    assert answers(charlie, "charlie") == fleet["baseline"]["charlie"]
    summary = json.loads(charlie.run("cat", f"{OUTPUT_DIR}/summary.json").stdout)
    assert summary["counts"]["services"] == 6
    assert charlie.run("test", "-e", "/var/lib/inetd2systemd/import-rollback", check=False).returncode == 1

    assert untouched(fleet, "bravo")  # never reached

    # the fleet report has the two hosts the rollout reached
    table = list(csv.DictReader(io.StringIO((fleet["fleet_dir"] / "report.csv").read_text())))
    rows = {r["host"]: r for r in table}
    assert set(rows) == {"alpha", "charlie"}
    assert rows["alpha"]["outcome"] == "migrated"
    assert (rows["alpha"]["services"], rows["alpha"]["exact"], rows["alpha"]["left_out"]) == ("4", "4", "0")
    assert rows["charlie"]["outcome"].startswith("stopped: Switch to the systemd sockets: not switched")
    assert "in.fingerd is missing" in rows["charlie"]["outcome"]
    assert (rows["charlie"]["services"], rows["charlie"]["exact"], rows["charlie"]["approximated"]) == ("6", "4", "2")
    assert "[finger] warning: program /usr/sbin/in.fingerd is missing" in rows["charlie"]["findings"]
    html = (fleet["fleet_dir"] / "report.html").read_text()
    assert "<td>alpha</td>" in html and "<td>charlie</td>" in html


def test_a_second_run_changes_nothing(fleet):
    alpha = fleet["hosts"]["alpha"]
    before = host_state(alpha)
    result = migration(fleet["ansible"], "alpha", "--diff", state="present")["alpha"]
    assert result["changed"] is False and result["migrated"] is True, result["_output"]
    facts = result["ansible_facts"]["inetd2systemd"]
    assert facts["migrated"] is True
    assert all(s["started"] for s in facts["services"].values()), facts["services"]
    assert host_state(alpha) == before


def test_a_changed_legacy_configuration_is_installed_anew(fleet):
    """alpha's inetd.conf gains a service after the switch: state=present puts the old
    units back (openbsd-inetd returns), then installs the new set."""
    alpha = fleet["hosts"]["alpha"]
    migrated = host_state(alpha)
    alpha.write("/etc/inetd.conf", ALPHA_INETD + "discard\tstream\ttcp\tnowait\troot\tinternal\n")
    result = migration(fleet["ansible"], "alpha", "--diff", state="present")["alpha"]
    assert result["changed"] is True and result["migrated"] is True, result["_output"]
    added = [d for d in result["diff"] if d["after_header"].endswith("/discard.socket")]
    assert added and added[0]["before"] == ""
    assert alpha.show("discard.socket", "ActiveState") == "active"
    assert alpha.systemctl("is-active", "openbsd-inetd.service", check=False).stdout.strip() == "inactive"
    assert comparable("alpha", answers(alpha, "alpha")) == comparable("alpha", fleet["baseline"]["alpha"])
    alpha.write("/etc/inetd.conf", ALPHA_INETD)  # and back
    result = migration(fleet["ansible"], "alpha", state="present")["alpha"]
    assert result["changed"] is True and "discard" not in result["services"], result["_output"]
    assert host_state(alpha) == migrated


def test_a_host_whose_transcripts_differ_is_rolled_back(fleet):
    """charlie switched anyway (allow_incomplete): finger's socket stays stopped, so the
    client that tcpd's `twist` answered now finds nothing - the after-transcript differs,
    and the role puts openbsd-inetd back as it was."""
    charlie = fleet["hosts"]["charlie"]
    run, results = fleet["ansible"].playbook("inetd2systemd.fleet.migrate", "--limit", "charlie",
                                             "-e", "inetd2systemd_become=false",
                                             "-e", '{"inetd2systemd_allow_incomplete": true}')
    assert run.returncode == 2, run.stdout[-8000:]
    steps = {r["_task"].split(" : ")[-1]: r for r in results["charlie"]}
    assert steps["Switch to the systemd sockets"]["changed"] is True
    differs = steps["Record what clients see from the systemd sockets"]["differs"]
    assert [(d["service"], d["source"]) for d in differs] == [("finger", "127.0.0.2")]
    assert differs[0]["before"]["received"].startswith("finger is not offered to 127.0.0.2")
    assert steps["Put the legacy superserver back as it was"]["changed"] is True
    assert host_state(charlie) == fleet["states"]["charlie"]
    assert answers(charlie, "charlie") == fleet["baseline"]["charlie"]
    outcome = json.loads((fleet["fleet_dir"] / "charlie" / "outcome.json").read_text())
    assert outcome["outcome"] == "stopped"
    assert "transcripts before and after differ: finger from 127.0.0.2" in outcome["detail"]


def test_the_rollout_resumes_without_the_stopped_host(fleet):
    """alpha again (already migrated: nothing changes), then bravo: xinetd with
    includedir and its libwrap rules."""
    alpha, bravo = fleet["hosts"]["alpha"], fleet["hosts"]["bravo"]
    alpha_before = host_state(alpha)
    run, results = fleet["ansible"].playbook("inetd2systemd.fleet.migrate", "--limit", "alpha,bravo",
                                             "-e", "inetd2systemd_become=false")
    assert run.returncode == 0, run.stdout[-8000:]
    steps = {r["_task"].split(" : ")[-1]: r for r in results["alpha"]}
    assert "kept" in steps["Record what clients see from the legacy superserver"]["msg"]
    assert steps["Switch to the systemd sockets"]["changed"] is False
    assert steps["Record what clients see from the systemd sockets"]["differs"] == []
    assert host_state(alpha) == alpha_before

    assert bravo.systemctl("is-active", "xinetd.service", check=False).stdout.strip() == "inactive"
    assert bravo.show("echo-stream.socket", "IPAddressAllow") == "127.0.0.2/32"
    assert comparable("bravo", answers(bravo, "bravo")) == comparable("bravo", fleet["baseline"]["bravo"])
    summary = json.loads(bravo.run("cat", f"{OUTPUT_DIR}/summary.json").stdout)
    verdicts = {(r["service"], r["source"]): r["verdict"] for r in summary["equivalence"]}
    assert verdicts[("echo-stream", "127.0.0.2")] == "same"
    assert verdicts[("echo-stream", "127.0.0.3")].startswith("same")  # refused, before and after
    table = csv.DictReader(io.StringIO((fleet["fleet_dir"] / "report.csv").read_text()))
    rows = {r["host"]: r for r in table}
    assert set(rows) == {"alpha", "bravo", "charlie"}
    assert rows["bravo"]["outcome"] == "migrated" and rows["alpha"]["outcome"] == "migrated: already migrated"


def test_absent_brings_the_legacy_superserver_back(fleet):
    alpha = fleet["hosts"]["alpha"]
    checked = migration(fleet["ansible"], "alpha", "--check", state="absent")["alpha"]
    assert checked["changed"] is True
    assert alpha.systemctl("is-active", "openbsd-inetd.service", check=False).stdout.strip() == "inactive"
    result = migration(fleet["ansible"], "alpha", "--diff", state="absent")["alpha"]
    assert result["changed"] is True and result["migrated"] is False, result["_output"]
    assert result["legacy"] == {"openbsd-inetd.service": "active"}
    assert host_state(alpha) == fleet["states"]["alpha"]
    assert alpha.wait_for(lambda: answers(alpha, "alpha")[0] == "ping\n", timeout=15)
    assert comparable("alpha", answers(alpha, "alpha")) == comparable("alpha", fleet["baseline"]["alpha"])
    again = migration(fleet["ansible"], "alpha", state="absent")["alpha"]
    assert again["changed"] is False
