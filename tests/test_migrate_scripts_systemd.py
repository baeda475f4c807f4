"""install.sh and rollback.sh under a real systemd (container): what they leave behind
and the exit status that says so.

The host has a legacy superserver (a stand-in inetd.service, enabled and running) and
two services. One service's program lives at a path holding spaces and a quote, and
the output directory's own path holds a space, as an administrator's may. Each test
checks the exit status, the message, the sockets, and that rollback.sh puts back
exactly the state from before.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from inetd2systemd.migrate import install_script, rollback_script
from inetd2systemd.migrate.plan import plan_migration

PROGRAM = "/opt/my app/it's here/server"  # spaces and a quote: one word all the same
OUT = "/root/import out"
# Type=exec, as the real superservers' units wait for their start (notify, forking): a
# start that cannot exec fails the systemctl call.
LEGACY = ("[Service]\nType=exec\nExecStart=/bin/sleep infinity\n"
          "[Install]\nWantedBy=multi-user.target\n")
PORTS = {"i2s-one": 4701, "i2s-two": 4702}


@pytest.fixture(scope="module")
def scripts(tmp_path_factory) -> dict[str, str]:
    """The output of an import of a small inetd host, with i2s-one's program moved to
    PROGRAM (its unit still runs /bin/cat, so that it can answer once started)."""
    root = tmp_path_factory.mktemp("host")
    (root / "etc").mkdir()
    (root / "etc" / "services").write_text(
        "".join(f"{name}\t{port}/tcp\n" for name, port in PORTS.items()))
    (root / "etc" / "inetd.conf").write_text(
        "".join(f"127.0.0.1:{name} stream tcp nowait root /bin/cat cat\n" for name in PORTS))
    migration = plan_migration(root)
    plans = tuple(replace(p, service=replace(p.service, server=PROGRAM)) if p.id == "i2s-one"
                  else p for p in migration.plans)
    migration = replace(migration, plans=plans, created="2024-01-01T00:00:00")
    assert "inetd.service" in migration.legacy
    files = {f"units/{u.name}": u.text for u in migration.units}
    files["install.sh"] = install_script(migration)
    files["rollback.sh"] = rollback_script(migration)
    return files


@pytest.fixture
def host(systemd, scripts):
    c = systemd
    for name, text in scripts.items():
        c.write(f"{OUT}/{name}", text, 0o755 if name.endswith(".sh") else 0o644)
    c.write("/etc/systemd/system/inetd.service", LEGACY)
    c.systemctl("daemon-reload")
    c.systemctl("enable", "--now", "inetd.service")
    before = state(c)
    yield c, before
    c.run("sh", "-c", f'"{OUT}/rollback.sh"', check=False)
    c.run("rm", "-rf", "/opt/my app")
    c.systemctl("disable", "--now", "inetd.service")


def state(c) -> dict:
    files = c.run("sh", "-c", "cd /etc/systemd/system && find . -type f -exec md5sum {} + "
                  "| sort").stdout
    units = {u: (c.systemctl("is-enabled", u, check=False).stdout.strip(),
                 c.systemctl("is-active", u, check=False).stdout.strip())
             for u in ("inetd.service", "i2s-one.socket", "i2s-two.socket")}
    return {"files": files, "units": units}


def run(c, script: str):
    return c.run(f"{OUT}/{script}", check=False)


def echo_through(c, port: int) -> str:
    return c.python("import socket, sys\n"
                    "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5)\n"
                    "s.sendall(b'hello'); s.shutdown(socket.SHUT_WR)\n"
                    "print(s.recv(100).decode())", str(port), check=False).stdout.strip()


def test_a_missing_program_with_spaces_is_named_and_the_status_says_it_was_left_stopped(host):
    c, before = host
    out = run(c, "install.sh")
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"i2s-one.socket left stopped: missing {PROGRAM}" in out.stderr
    assert c.show("i2s-one.socket", "ActiveState") == "inactive"
    assert c.show("i2s-two.socket", "ActiveState") == "active"
    assert c.systemctl("is-active", "inetd.service", check=False).stdout.strip() == "inactive"
    out = run(c, "rollback.sh")
    assert out.returncode == 0, out.stdout + out.stderr
    assert state(c) == before


def test_a_program_path_with_spaces_that_exists_is_started(host):
    c, before = host
    c.run("sh", "-c", 'mkdir -p "$(dirname "$1")" && cp /bin/cat "$1" && chmod 755 "$1"',
          "sh", PROGRAM)
    out = run(c, "install.sh")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 sockets started" in out.stdout
    for name, port in PORTS.items():
        assert c.show(f"{name}.socket", "ActiveState") == "active"
        assert echo_through(c, port) == "hello"
    assert run(c, "install.sh").returncode == 2  # refused: already installed
    out = run(c, "rollback.sh")
    assert out.returncode == 0, out.stdout + out.stderr
    assert state(c) == before
    assert run(c, "rollback.sh").returncode == 2  # nothing left to roll back


def test_a_socket_that_fails_to_start_exits_3_and_rollback_restores(host):
    c, before = host
    c.run("sh", "-c", 'mkdir -p "$(dirname "$1")" && cp /bin/cat "$1" && chmod 755 "$1"',
          "sh", PROGRAM)
    # Someone holds i2s-two's port: its socket cannot bind.
    c.run("systemd-run", "--unit", "i2s-squatter", "--collect", "python3", "-c",
          "import socket, time; s = socket.create_server(('127.0.0.1', 4702)); time.sleep(600)")
    try:
        assert c.wait_for(lambda: "4702" in c.run("ss", "-ltn").stdout)
        out = run(c, "install.sh")
        assert out.returncode == 3, out.stdout + out.stderr
        assert "i2s-two.socket failed to start" in out.stderr
        assert c.show("i2s-one.socket", "ActiveState") == "active"
        out = run(c, "rollback.sh")
        assert out.returncode == 0, out.stdout + out.stderr
        assert state(c) == before
    finally:
        c.systemctl("stop", "i2s-squatter.service", check=False)


def test_a_rollback_that_cannot_restart_the_legacy_superserver_says_so_and_can_run_again(host):
    c, before = host
    c.run("sh", "-c", 'mkdir -p "$(dirname "$1")" && cp /bin/cat "$1" && chmod 755 "$1"',
          "sh", PROGRAM)
    assert run(c, "install.sh").returncode == 0
    c.write("/etc/systemd/system/inetd.service", LEGACY.replace("/bin/sleep", "/nonexistent/x"))
    c.systemctl("daemon-reload")
    out = run(c, "rollback.sh")
    assert out.returncode == 3, out.stdout + out.stderr
    assert "cannot start inetd.service again" in out.stderr
    assert "run rollback.sh again" in out.stderr
    assert c.run("test", "-e", "/var/lib/inetd2systemd/import-rollback/installed",
                 check=False).returncode == 0, "the record must stay for the second run"
    c.write("/etc/systemd/system/inetd.service", LEGACY)
    c.systemctl("daemon-reload")
    c.systemctl("reset-failed", "inetd.service", check=False)
    out = run(c, "rollback.sh")
    assert out.returncode == 0, out.stdout + out.stderr
    assert state(c) == before


def test_a_program_path_is_one_word_never_a_command(tmp_path):
    # No systemd needed: SYSTEMCTL=true. A path built to break out of any quoting.
    import subprocess

    from inetd2systemd.migrate import install_script as render

    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc" / "services").write_text("i2s-one\t4701/tcp\n")
    (host / "etc" / "inetd.conf").write_text("127.0.0.1:i2s-one stream tcp nowait root /bin/cat cat\n")
    evil = f"/opt/x$(touch {tmp_path}/a)`touch {tmp_path}/b`'\"; touch {tmp_path}/c #\nx"
    migration = plan_migration(host)
    migration = replace(migration, root=Path(f"/srv/host\ntouch {tmp_path}/d"), plans=tuple(
        replace(p, service=replace(p.service, server=evil)) for p in migration.plans))
    out_dir = tmp_path / "out dir"
    (out_dir / "units").mkdir(parents=True)
    for unit in migration.units:
        (out_dir / "units" / unit.name).write_text(unit.text)
    (out_dir / "install.sh").write_text(render(migration))
    (out_dir / "install.sh").chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "UNIT_DIR": str(tmp_path / "system"),
           "STATE_DIR": str(tmp_path / "state"), "SYSTEMCTL": "true"}
    done = subprocess.run([str(out_dir / "install.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr  # left stopped: missing
    assert f"i2s-one.socket left stopped: missing {evil}" in done.stderr
    assert not {p.name for p in tmp_path.iterdir()} & {"a", "b", "c", "d"}, "a command ran"
