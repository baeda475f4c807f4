"""A legacy host inside a booted container (tests/systemd_container.py): the real
openbsd-inetd or xinetd as its superserver, the files its services serve, and the state
a migration's rollback must restore. Shared by the migration tests (one host) and the
Ansible fleet test (several). The superservers' paths are the ones their fixtures give."""

from __future__ import annotations

import textwrap
from pathlib import Path


def serve_files(c) -> None:
    """What the sample services hand out: a git repository, a file over tftp."""
    c.run("sh", "-c", "mkdir -p /srv/tftp && echo hello from tftp > /srv/tftp/hello.txt && "
          "git init -q /tmp/work && git -C /tmp/work -c user.name=t -c user.email=t@example.org "
          "commit -q --allow-empty -m init && git clone -q --bare /tmp/work /srv/git/proj.git "
          "&& chown -R nobody /srv/git")


def run_openbsd_inetd(c, program: str, enable: bool = True) -> None:
    """Debian's openbsd-inetd binary and its own unit, with the binary's path and without
    waiting for network-online.target (nothing in the container reaches it); enabled and
    started, or only started. It is unpacked privately, out of the container's sight
    (which has only this machine's /usr): it is copied in."""
    c.run("sh", "-c", f'mkdir -p "$(dirname {program})" && cat > {program} && '
          f"chmod 755 {program}", input=Path(program).read_bytes())
    unit = (Path(program).parents[2] / "lib/systemd/system/openbsd-inetd.service").read_text()
    unit = "\n".join(line for line in unit.splitlines() if "network-online" not in line)
    c.write("/etc/systemd/system/openbsd-inetd.service",
            unit.replace("ExecStart=/usr/sbin/inetd", f"ExecStart={program}") + "\n")
    _start(c, "openbsd-inetd.service", enable)


def run_xinetd(c, program: str, enable: bool = True) -> None:
    """xinetd under the unit an administrator writes (Debian ships an init script only)."""
    c.write("/etc/protocols", Path("/etc/protocols").read_text())  # xinetd looks tcp/udp up
    c.write("/etc/systemd/system/xinetd.service", textwrap.dedent(f"""\
        [Unit]
        Description=xinetd (the legacy host's superserver)
        [Service]
        ExecStart={program} -dontfork -stayalive -pidfile /run/xinetd.pid
        [Install]
        WantedBy=multi-user.target
        """))
    _start(c, "xinetd.service", enable)


def _start(c, unit: str, enable: bool) -> None:
    c.systemctl("daemon-reload")
    c.systemctl(*(("enable", "--now") if enable else ("start",)), unit)


def host_state(c) -> dict:
    """What a rollback must restore: the unit files (with their contents), the socket units
    and their states, the legacy superservers' enablement and activity."""
    files = c.run("sh", "-c", "cd /etc/systemd/system && find . \\( -type f -o -type l \\) "
                  "-exec md5sum {} + 2>/dev/null | sort", check=False).stdout
    sockets = c.run("sh", "-c", "systemctl list-units --all --no-legend --plain '*.socket' "
                    "| awk '{print $1, $3, $4}' | sort").stdout
    legacy = {u: (c.systemctl("is-enabled", u, check=False).stdout.strip(),
                  c.systemctl("is-active", u, check=False).stdout.strip())
              for u in ("openbsd-inetd.service", "xinetd.service")}
    return {"files": files, "sockets": sockets, "legacy": legacy}
