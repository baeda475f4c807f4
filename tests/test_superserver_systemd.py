"""The superserver under a real systemd: socket-activated, every socket from the manager.

`convert --engine superserver --install` writes one .socket per service (with
FileDescriptorName= = the service id) and one inetd2systemd-superserver.service that
runs `inetd2systemd serve`; the superserver must then serve from the sockets systemd
passed (LISTEN_FDS) instead of binding its own, and keep them across SIGHUP.
"""

from __future__ import annotations

import json

from systemd_container import VENV

SERVICES = "echo\t7007/tcp\necho\t7007/udp\ni2s-cat\t7008/tcp\n"
CONF = """\
echo    stream tcp4 nowait root internal
echo    dgram  udp4 wait   root internal
i2s-cat stream tcp4 nowait root /bin/cat cat
"""

CLIENT = r"""
import json, socket
out = {}
with socket.create_connection(("127.0.0.1", 7007), timeout=5) as s:
    s.sendall(b"hello systemd\r\n"); out["echo"] = s.recv(100).decode()
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.settimeout(5); s.sendto(b"udp hello", ("127.0.0.1", 7007)); out["udp"] = s.recv(100).decode()
with socket.create_connection(("127.0.0.1", 7008), timeout=5) as s:
    s.sendall(b"cat me\n"); s.shutdown(socket.SHUT_WR); out["cat"] = s.recv(100).decode()
print(json.dumps(out))
"""

SHARED_SOCKETS = r"""
import json, os, sys
def inodes(pid):
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found
listening = set()
for table in ("/proc/net/tcp", "/proc/net/udp"):
    for line in open(table).readlines()[1:]:
        f = line.split()
        if f[1].endswith((":1B5F", ":1B60")) and (f[3] == "0A" or "udp" in table):
            listening.add(int(f[9]))
main = int(sys.argv[1])
print(json.dumps({"listening": sorted(listening), "systemd": sorted(listening & inodes(1)),
                  "superserver": sorted(listening & inodes(main))}))
"""


def test_socket_activated_superserver_serves_from_systemds_sockets(systemd):
    systemd.write("/etc/services", SERVICES)
    systemd.write("/etc/i2s/inetd.conf", CONF)
    result = systemd.run(str(VENV / "bin" / "inetd2systemd"), "convert", "--engine", "superserver",
                         "--install", "/etc/i2s/inetd.conf", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    service = "inetd2systemd-superserver.service"
    # The first connection starts the service (Accept=no): the client is the trigger.
    seen = json.loads(systemd.python(CLIENT).stdout)
    assert seen == {"echo": "hello systemd\r\n", "udp": "udp hello", "cat": "cat me\n"}
    assert systemd.show(service, "ActiveState") == "active"
    main = systemd.show(service, "MainPID")
    shared = json.loads(systemd.python(SHARED_SOCKETS, main).stdout)
    # three listening sockets, each held by systemd AND the superserver: none bound by us
    assert len(shared["listening"]) == 3
    assert shared["superserver"] == shared["listening"] == shared["systemd"]

    # SIGHUP: the configuration is re-read, the sockets are the same ones
    systemd.systemctl("kill", "-s", "HUP", "--kill-who=main", service)
    assert systemd.wait_for(lambda: "reloaded" in systemd.run(
        "journalctl", "-b", "-u", service, "-o", "cat", check=False).stdout)
    assert json.loads(systemd.python(SHARED_SOCKETS, main).stdout) == shared
    assert json.loads(systemd.python(CLIENT).stdout) == seen
    assert systemd.show(service, "MainPID") == main
