# A connection plugin for the tests: a "host" is a container booted on this machine
# (tests/systemd_container.py), reached by entering all of its namespaces with
# `nsenter -t PID -a`, PID being the container's init as seen from here (ansible_host).
# Everything runs as root inside, as an administrator's `become: true` would.
from __future__ import annotations

DOCUMENTATION = """
    name: nsenter
    short_description: run tasks inside a local container by entering its namespaces
    description:
        - The inventory's ansible_host is the PID (on the controller) of the container's
          init; commands run as root through C(nsenter -t PID -a), files are copied
          through the same door.
    author: inetd2systemd developers
    extends_documentation_fragment:
        - connection_pipelining
"""

import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()


class Connection(ConnectionBase):
    transport = "nsenter"
    has_pipelining = True

    def _enter(self) -> list[str]:
        pid = str(self._play_context.remote_addr)
        if not pid.isdigit():
            raise AnsibleConnectionFailure(f"nsenter: ansible_host must be a PID, not {pid!r}")
        return ["nsenter", "-t", pid, "-a"]

    def _connect(self):
        self._connected = True
        return self

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        display.vvv(f"EXEC {cmd}", host=self._play_context.remote_addr)
        proc = subprocess.run([*self._enter(), "/bin/sh", "-c", cmd], input=in_data,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=None if in_data is not None else subprocess.DEVNULL)
        return proc.returncode, proc.stdout, proc.stderr

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        with open(in_path, "rb") as f:
            proc = subprocess.run([*self._enter(), "/bin/sh", "-c", 'cat > "$1"', "sh", out_path],
                                  stdin=f, capture_output=True)
        if proc.returncode:
            raise AnsibleError(f"nsenter: cannot write {out_path}: {proc.stderr.decode(errors='replace')}")

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        with open(out_path, "wb") as f:
            proc = subprocess.run([*self._enter(), "cat", in_path], stdout=f, stderr=subprocess.PIPE)
        if proc.returncode:
            raise AnsibleError(f"nsenter: cannot read {in_path}: {proc.stderr.decode(errors='replace')}")

    def close(self):
        self._connected = False
