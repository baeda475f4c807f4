"""The Ansible collection in contrib/ansible, without a fleet: it builds, installs, passes
`ansible-test sanity`, follows `inetd2systemd import`'s options, and its fleet report
reads summaries into one table (CSV and HTML) that hostile text cannot break.

(tests/test_ansible_fleet.py runs it against booted hosts.)
"""

from __future__ import annotations

import argparse
import ast
import csv
import importlib.util
import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import ansible_support
from inetd2systemd.migrate.cli import configure

COLLECTION = ansible_support.COLLECTION
MODULE = COLLECTION / "plugins" / "modules" / "migration.py"
SAMPLE = Path(__file__).resolve().parent.parent / "contrib" / "xinetd-import" / "samples" / "debian-inetd"

pytestmark = pytest.mark.skipif(ansible_support.available() is not None,
                                reason=str(ansible_support.available()))

# import's options that the module spells differently, or handles itself
RENAMED = {"no_port_check": "port_check", "check": "phase", "source": "sources"}
MODULE_OWN = {"force"}  # the module replaces its output directory itself


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def documented_options(path: Path) -> dict:
    tree = ast.parse(path.read_text())
    text = next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                and getattr(node.targets[0], "id", "") == "DOCUMENTATION")
    return yaml.safe_load(text)["options"]


def import_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inetd2systemd import")
    configure(parser)
    return parser


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    return ansible_support.build_and_install(tmp_path_factory.mktemp("collection"))


def test_the_collection_builds_and_installs(installed):
    tarball, collections = installed
    assert tarball.name == "inetd2systemd-fleet-0.1.0.tar.gz"
    root = collections / "ansible_collections" / "inetd2systemd" / "fleet"
    for part in ("plugins/modules/migration.py", "plugins/modules/fleet_report.py",
                 "plugins/module_utils/fleet_table.py", "roles/migrate/tasks/main.yml",
                 "playbooks/migrate.yml", "MANIFEST.json"):
        assert (root / part).is_file(), part
    doc = ansible_support.run([str(ansible_support.BIN / "ansible-doc"), "inetd2systemd.fleet.migration"],
                              env=ansible_support.environment(ANSIBLE_COLLECTIONS_PATH=str(collections)))
    text = " ".join(doc.stdout.split())
    assert "Runs `inetd2systemd import' on the managed host" in text, text[:600]
    assert "choices: [present, absent, checked]" in text


def test_ansible_test_sanity_passes():
    proc = ansible_support.sanity()
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    for test in ("validate-modules", "pylint", "pep8", "yamllint", "import", "compile"):
        assert f'Running sanity test "{test}"' in proc.stdout, test


def test_the_module_has_every_option_of_import():
    """Each option of `inetd2systemd import` is one of the module's, with the same choices:
    an option added to import (such as --harden) fails here until the module has it."""
    options = documented_options(MODULE)
    for action in import_parser()._actions:
        if action.dest in ("help", "output_dir") or action.dest in MODULE_OWN:
            continue
        name = RENAMED.get(action.dest, action.dest)
        assert name in options, f"import's {action.option_strings or action.dest} is not a module option"
        if action.choices and name != "phase":
            assert set(options[name]["choices"]) == set(action.choices), name
    assert set(import_parser()._option_string_actions["--check"].choices) < set(options["phase"]["choices"])


def test_the_role_passes_every_option_of_import_through():
    role = COLLECTION / "roles" / "migrate"
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    variables = specs["argument_specs"]["main"]["options"]
    tasks = yaml.safe_load((role / "tasks" / "main.yml").read_text())
    passed = tasks[0]["module_defaults"]["inetd2systemd.fleet.migration"]
    for action in import_parser()._actions:
        if action.dest in ("help", "output_dir", "check") or action.dest in MODULE_OWN:
            continue
        name = RENAMED.get(action.dest, action.dest)
        assert f"inetd2systemd_{name}" in variables, name
        assert passed[name].startswith(f"{{{{ inetd2systemd_{name}"), name
        if action.choices:
            assert set(variables[f"inetd2systemd_{name}"]["choices"]) == set(action.choices), name


def test_the_module_passes_its_options_to_import_as_import_reads_them():
    module = load(MODULE, "i2s_migration_module")
    parser = import_parser()
    has = parser._option_string_actions  # --harden and the like: passed once import has them
    params = {"executable": "inetd2systemd", "root": "/srv/copy of host", "target_root": "/mnt/t",
              "prefix": "legacy-", "flavor": "inetutils", "include_disabled": True,
              "systemd_version": 247, "port_check": False,
              "harden": "strict" if "--harden" in has else None,
              "dynamic_user": "--dynamic-user" in has,
              "suite_path": "/opt/i2s/bin/inetd2systemd" if "--suite-path" in has else None}
    argv = module.import_argv(SimpleNamespace(params=params), "/var/out", ["--check", "after",
                                                                         "--source", "127.0.0.2"])
    assert argv[:2] == ["inetd2systemd", "import"]
    got = parser.parse_args(argv[2:])
    assert (got.root, got.output_dir, got.target_root, got.prefix, got.flavor, got.include_disabled,
            got.systemd_version, got.no_port_check, got.check, got.source) == (
        "/srv/copy of host", "/var/out", "/mnt/t", "legacy-", "inetutils", True, 247, True, "after",
        ["127.0.0.2"])
    for flag in module.newer_flags(params):
        dest = has[flag].dest
        assert getattr(got, dest) == params[dest], flag
    # the defaults give import's own defaults
    defaults = {"executable": "inetd2systemd", "root": "/", "target_root": "/", "prefix": "",
                "flavor": None, "include_disabled": False, "systemd_version": None,
                "port_check": True, "harden": None, "dynamic_user": False, "suite_path": None}
    got = parser.parse_args(module.import_argv(SimpleNamespace(params=defaults), "/o")[2:])
    assert vars(got) == vars(parser.parse_args(["/", "-o", "/o"]))


def on_this_machine(collections: Path, module: str, args: dict, *options: str) -> dict:
    """A module run on this machine (connection local); its result."""
    proc = ansible_support.run(
        [str(ansible_support.BIN / "ansible"), "localhost", "-m", module, "-a", json.dumps(args),
         "-o", *options],
        env=ansible_support.environment(ANSIBLE_COLLECTIONS_PATH=str(collections),
                                        ANSIBLE_LOCALHOST_WARNING="false",
                                        ANSIBLE_INVENTORY_UNPARSED_WARNING="false"),
        check=False)
    # -o: "localhost | FAILED! => {json}" on one line
    return json.loads(proc.stdout.split("=>", 1)[1])


def plan_only(collections: Path, root: Path, tmp_path: Path) -> dict:
    """state=present in check mode against a copy of a host, with private directories."""
    args = {"root": str(root), "executable": str(ansible_support.BIN / "inetd2systemd"),
            "port_check": False, "output_dir": str(tmp_path / "out"),
            "unit_dir": str(tmp_path / "units"), "state_dir": str(tmp_path / "state"),
            "state": "present"}
    result = on_this_machine(collections, "inetd2systemd.fleet.migration", args, "--check", "--diff")
    assert not any((tmp_path / d).exists() for d in ("out", "units", "state"))  # nothing written
    return result


def test_check_mode_against_a_copy_of_a_host_plans_and_writes_nothing(installed, tmp_path):
    """The Debian sample host: the plan, the findings; not to be switched."""
    result = plan_only(installed[1], SAMPLE, tmp_path)
    # in.fingerd and in.identd are not installed here: the host would not be switched
    assert result["changed"] is False and "in.fingerd is missing" in result["msg"], result
    assert result["services"]["git"]["allow"] == ["127.0.0.2", "192.168.10.0/24", "fd00:10::/64"]
    assert any("twist" in f for f in result["findings"])


def test_a_service_the_import_cannot_convert_keeps_the_host_from_switching(installed, tmp_path):
    etc = tmp_path / "host" / "etc"
    (etc / "xinetd.d").mkdir(parents=True)
    (etc / "xinetd.conf").write_text("defaults\n{\n}\nincludedir /etc/xinetd.d\n")
    (etc / "services").write_text("echo 7/tcp\n")
    (etc / "xinetd.d" / "echo").write_text(
        "service echo\n{\n\ttype = INTERNAL\n\tid = echo-stream\n\tsocket_type = stream\n\twait = no\n}\n")
    (etc / "xinetd.d" / "bogus").write_text(
        "service bogus\n{\n\tsocket_type = stream\n\twait = no\n\tuser = root\n"
        "\tserver = /bin/cat\n\tport = notaport\n}\n")
    result = plan_only(installed[1], etc.parent, tmp_path)
    assert result["problems"] == ["bogus: not converted: port: port number 'notaport' is invalid: "
                                  "xinetd disables this service"], result
    assert result["counts"]["failed"] == 1 and result["services"]["echo-stream"]["status"] == "converted"


# -- the fleet report -----------------------------------------------------------------------


def summary(counts: dict, findings: list[dict] = (), preflight: list[dict] = ()) -> dict:
    return {"counts": counts, "services": [{"id": "git", "status": "approximated",
                                            "findings": list(findings)}],
            "preflight": list(preflight), "findings": []}


def finding(severity: str, message: str, service: str | None = "git") -> dict:
    return {"file": "/etc/inetd.conf", "line": 3, "severity": severity, "service": service,
            "message": message}


@pytest.fixture
def fleet_dir(tmp_path):
    hosts = {
        "web1": (summary({"services": 4, "converted": 3, "approximated": 1, "failed": 0, "disabled": 0},
                         [finding("warning", "severity daemon.info not carried"),
                          finding("info", "carried exactly")]),
                 {"outcome": "migrated", "detail": ""}),
        "<b>evil": (summary({"services": 2, "converted": 0, "approximated": 1, "failed": 1, "disabled": 0},
                                [finding("error", "=HYPERLINK(\"http://x\")")],
                                [finding("warning", "program /x is missing <script>", None)]),
                        {"outcome": "stopped", "detail": "not switched: <script>alert(1)</script>"}),
    }
    for host, (data, outcome) in hosts.items():
        (tmp_path / host).mkdir()
        (tmp_path / host / "summary.json").write_text(json.dumps(data))
        (tmp_path / host / "outcome.json").write_text(json.dumps(outcome))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text("{not json")
    (tmp_path / "no-summary").mkdir()
    return tmp_path


def test_fleet_table_rows_csv_and_html(fleet_dir):
    table = load(COLLECTION / "plugins" / "module_utils" / "fleet_table.py", "i2s_fleet_table")
    rows = table.gather(fleet_dir)
    assert [r["host"] for r in rows] == ["<b>evil", "broken", "web1"]  # no-summary: no row
    web1 = rows[2]
    assert (web1["services"], web1["exact"], web1["approximated"], web1["left_out"]) == (4, 3, 1, 0)
    assert web1["findings"] == ["[git] warning: severity daemon.info not carried"]  # notes left out
    assert rows[1]["outcome"].startswith("unreadable summary.json")
    evil = rows[0]
    assert (evil["errors"], evil["warnings"], evil["left_out"]) == (1, 1, 1)

    parsed = list(csv.DictReader(io.StringIO(table.to_csv(rows))))
    assert [r["host"] for r in parsed] == ["<b>evil", "broken", "web1"]
    # a cell a spreadsheet would run as a formula is quoted
    assert parsed[0]["findings"].splitlines()[0] == "[git] error: =HYPERLINK(\"http://x\")"
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in parsed for cell in r.values())
    assert parsed[2]["left_out"] == "0" and parsed[2]["outcome"] == "migrated"

    page = table.to_html(rows)
    assert "<script>" not in page and "<b>evil" not in page
    assert "<td>&lt;b&gt;evil</td>" in page and "not switched: &lt;script&gt;" in page
    assert "3 hosts, 6 services: 3 exact, 2 approximated, 1 left out" in page


def test_fleet_report_module_writes_once_and_not_in_check_mode(installed, fleet_dir, tmp_path):
    tarball, collections = installed
    out_csv, out_html = tmp_path / "fleet.csv", tmp_path / "fleet.html"

    def report(*options: str) -> dict:
        args = {"src": str(fleet_dir), "csv": str(out_csv), "html": str(out_html)}
        return on_this_machine(collections, "inetd2systemd.fleet.fleet_report", args, *options)

    assert report("--check")["changed"] is True and not out_csv.exists() and not out_html.exists()
    first = report()
    assert first["changed"] is True and first["hosts"] == 3
    assert out_csv.read_text().splitlines()[0].startswith("host,outcome,services,exact,approximated,left_out")
    assert report()["changed"] is False


def test_import_summary_has_what_the_module_reads(tmp_path):
    """summary.json: the programs each service's sockets need (the module checks them
    before switching) and, once --check ran, the equivalence rows with their verdicts."""
    from support import free_port, run_cli

    port = free_port()  # nobody listens there: each transcript is a refused connection
    etc = tmp_path / "host" / "etc"
    etc.mkdir(parents=True)
    (etc / "services").write_text(f"echo {port}/tcp\ngit 9418/tcp\n")
    (etc / "inetd.conf").write_text(
        "echo stream tcp nowait root internal\n"
        "git stream tcp nowait nobody /usr/bin/git git daemon --inetd /srv/git\n")
    out = tmp_path / "out"
    assert run_cli("import", str(etc.parent), "-o", str(out), "--no-port-check").returncode == 0
    summary = json.loads((out / "summary.json").read_text())
    assert {s["id"]: s["programs"] for s in summary["services"]} == {"echo": [], "git": ["/usr/bin/git"]}
    assert summary["equivalence"] == []
    for phase in ("before", "after"):
        done = run_cli("import", str(etc.parent), "-o", str(out), "--check", phase)
        assert done.returncode == 0, done.stderr
    rows = json.loads((out / "summary.json").read_text())["equivalence"]
    echo = next(r for r in rows if r["service"] == "echo")
    assert echo["before"]["outcome"] == echo["after"]["outcome"] == "connection refused"
    assert echo["verdict"] == "same" and echo["source"] == "default"
