"""Generated units under a real systemd 252 (booted in a container), with real clients.

Every service here is rendered by units.writer from Service values (as the readers
produce them for the classic inetd.conf lines quoted in each test), installed into the
container's /etc/systemd/system, and talked to from inside the container's network.
"""

from __future__ import annotations

import json
import os
import re
import time

from functools import partial

import pytest
from support import service

from inetd2systemd.config.inetd import parse_inetd
from inetd2systemd.model import Family, Listen, RateLimit, Redirect, Service, SocketType
from inetd2systemd.units.writer import UNLIMITED_CONNECTIONS, WriterOptions, render


IDLE = 2  # internal services exit after this many idle seconds in these tests

# The handler reports what it was started with: its raw argv (argv[0] included, read
# from /proc so that nothing is lost to an interpreter), uid, pid and the line it read.
# It is Debian's python3 started through a symlink with a space in its name, so the
# ExecStart= path itself needs quoting too.
HANDLER_CODE = (
    "import os,sys,json\n"
    "argv=open('/proc/self/cmdline','rb').read().split(b'\\0')[:-1]\n"
    "line=sys.stdin.buffer.readline()\n"
    "sys.stdout.write(json.dumps({'argv':[a.hex() for a in argv],'uid':os.getuid(),"
    "'pid':os.getpid(),'line':line.decode()})+'\\n')\n"
)
HANDLER_PATH = "/srv/bin/my python"
AWKWARD = ("argv0 with space", "a b", '"q"', "it's", "back\\slash", "%n", "100%", "$HOME",
           "${X}", ";", "", "ü", "\udcff", "tab\there", "new\nline", "\x01",
           # written bare: every printable ASCII character a bare word may hold
           "a;b", "#x", "-w", "--opt=[x]", "".join(chr(c) for c in range(0x21, 0x7F)
                                                 if chr(c) not in "\"'\\"),
           os.fsdecode(bytes(range(1, 256))))  # every byte an argument can hold


svc = partial(service, family=Family.IPV4)  # 127.0.0.1 unless a test says otherwise


INTERNAL_PORTS = {"echo": 7, "discard": 9, "chargen": 19, "daytime": 13, "time": 37}


def all_services() -> list[Service]:
    services = []
    for name, port in INTERNAL_PORTS.items():
        # `echo stream tcp nowait root internal` / `echo dgram udp wait root internal`
        services.append(svc(name, port, id=f"{name}-tcp", internal=name, user="root",
                            family=Family.DUAL, rate=RateLimit(256, 60, 600)))
        services.append(svc(name, port, id=f"{name}-udp", kind=SocketType.DGRAM, wait=True,
                            internal=name, user="root", family=Family.DUAL,
                            rate=RateLimit(256, 60, 600)))
    # `5000 stream tcp nowait nobody "/srv/bin/my python" argv0... -c CODE args...`
    services.append(svc("handler", 5000, server=HANDLER_PATH,
                        argv=(AWKWARD[0], "-c", HANDLER_CODE, *AWKWARD[1:]), user="nobody",
                        rate=RateLimit(256, 60, 600)))
    # The classic line itself, through the inetd.conf reader (numeric port: the test
    # does not depend on this host's /etc/services)
    services += parse_inetd("69 dgram udp4 wait root /usr/sbin/in.tftpd in.tftpd -s /srv/tftp\n",
                            "/etc/inetd.conf").services
    # `nowait.3`-like: over 3 starts in 5 s the service is off for 8 s, then back on
    services.append(svc("limited", 5001, server="/usr/bin/python3",
                        argv=("limited", "-c", "print('ok')"), rate=RateLimit(3, 5, 8)))
    # xinetd `instances = 2`: a handler that holds its connection until the client leaves
    services.append(svc("two", 5002, server="/usr/bin/cat", argv=("cat",), instances=2))
    # xinetd `redirect = 127.0.0.1 7`: the internal echo, through systemd-socket-proxyd
    services.append(svc("fwd", 5003, redirect=Redirect("127.0.0.1", 7)))
    # xinetd `only_from = 127.0.0.2`
    services.append(svc("guarded", 5004, server="/usr/bin/python3",
                        argv=("guarded", "-c", "print('welcome')"), only_from=("127.0.0.2",)))
    # a unix stream service: `/run/hello.sock stream unix nowait nobody ...`
    services.append(svc("hello", None, listens=(Listen(Family.UNIX, host="/run/hello.sock"),),
                        protocol="unix", server="/usr/bin/python3", user="nobody",
                        argv=("hello", "-c", "import os; print('hello', os.getuid())")))
    # xinetd `banner` + `banner_success`: copied to the client before the server runs
    services.append(svc("greeter", 5005, server="/usr/bin/python3", banner="/srv/banner.txt",
                        banner_success="/srv/ok.txt", argv=("greeter", "-c", "print('served')")))
    # xinetd `max_load`: one that is never reached, one that always is
    services.append(svc("light", 5006, server="/usr/bin/python3", max_load=1000.0,
                        argv=("light", "-c", "print('served')")))
    services.append(svc("heavy", 5007, server="/usr/bin/python3", max_load=0.0,
                        argv=("heavy", "-c", "print('served')")))
    # xinetd `access_times`: the whole day, and a window that is not now
    now = time.gmtime()  # the container has no /etc/localtime: its local time is UTC
    minute = now.tm_hour * 60 + now.tm_min
    later = ((minute + 120) % 1440, (minute + 180) % 1440)
    services.append(svc("open", 5008, server="/usr/bin/python3", access_times=((0, 1439),),
                        argv=("open", "-c", "print('served')")))
    services.append(svc("closed", 5009, server="/usr/bin/python3", access_times=(later,),
                        argv=("closed", "-c", "print('served')")))
    # `5010 dgram udp nowait root /usr/bin/python3 ...`: one datagram per server run
    services.append(svc("shout", 5010, kind=SocketType.DGRAM, wait=False,
                        server="/usr/bin/python3", argv=("shout", "-c", (
                            "import socket; s = socket.socket(fileno=0); "
                            "d, a = s.recvfrom(100); s.sendto(d.upper(), a)"))))
    return services




@pytest.fixture(scope="module")
def box(systemd, tmp_path_factory):
    units, findings = render(all_services(), WriterOptions(internal_idle_timeout=IDLE))
    out = tmp_path_factory.mktemp("units")
    for unit in units:
        (out / unit.name).write_text(unit.text, encoding="utf-8", errors="surrogateescape")
    systemd.run("mkdir", "-p", "/srv/bin", "/srv/tftp")
    systemd.run("ln", "-s", "/usr/bin/python3", HANDLER_PATH)
    systemd.write("/srv/tftp/hello.txt", "tftp works\n" * 100, mode=0o644)
    systemd.write("/srv/banner.txt", "BANNER\n")
    systemd.write("/srv/ok.txt", "GRANTED\n")
    systemd.install_units(out)
    sockets = [u.name for u in units if u.name.endswith(".socket")]
    systemd.systemctl("start", *sockets)
    systemd.units = {u.name: u for u in units}
    return systemd


def inside(box, code: str, *args: str) -> str:
    result = box.python(code, *args, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


TCP = """
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=30)
"""
UDP = """
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def ask(data, timeout=30):
    u.settimeout(timeout)
    u.sendto(data, ('127.0.0.1', int(sys.argv[1])))
    try:
        return u.recv(65536)
    except socket.timeout:
        return None
"""


# -- internal services ------------------------------------------------------------------

def test_echo_returns_what_it_gets_over_tcp_and_udp(box):
    out = inside(box, TCP + """
s.sendall(b'hello, echo\\r\\n' * 1000)
s.shutdown(socket.SHUT_WR)
got = b''
while True:
    d = s.recv(65536)
    if not d: break
    got += d
print(got == b'hello, echo\\r\\n' * 1000)
""" + UDP + "print(ask(b'ping \\x00\\xff') == b'ping \\x00\\xff')", "7")
    assert out.split() == ["True", "True"]


def test_a_dual_stack_socket_answers_over_ipv4_and_ipv6(box):
    # `echo stream tcp ...` in openbsd-inetd means v4 and v6: [::]:7 + BindIPv6Only=both
    out = inside(box, """
import socket
for family, host in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')):
    s = socket.socket(family); s.settimeout(30); s.connect((host, 7))
    s.sendall(b'both'); print(s.recv(10))
""")
    assert out.split() == ["b'both'", "b'both'"]


def test_discard_swallows_everything_and_answers_nothing(box):
    out = inside(box, TCP + """
s.sendall(b'x' * 100000); s.shutdown(socket.SHUT_WR)
print(repr(s.recv(100)))
""" + UDP + "print(ask(b'anything', timeout=1))", "9")
    assert out.split() == ["b''", "None"]


def _chargen_ring_ok(lines: list[bytes]) -> bool:
    ring = bytes(range(0x20, 0x7F))
    starts = [ring.index(line[:1]) for line in lines]
    for line, start in zip(lines, starts):
        if line != (ring * 2)[start:start + 72]:
            return False
    return all((b - a) % 95 == 1 for a, b in zip(starts, starts[1:]))


def test_chargen_streams_rotating_72_character_lines_and_udp_datagrams_up_to_512(box):
    out = inside(box, TCP + """
got = b''
while len(got) < 74 * 200:
    got += s.recv(65536)
s.close()
print(got.hex())
""" + UDP + "print(' '.join(ask(b'x').hex() for _ in range(20)))", "19")
    stream_hex, datagrams_hex = out.splitlines()
    stream = bytes.fromhex(stream_hex)
    first = stream.index(b"\r\n") + 2  # the stream starts somewhere in the ring
    lines = stream[first:].split(b"\r\n")[:-1]
    assert len(lines) >= 150 and all(len(line) == 72 for line in lines)
    assert _chargen_ring_ok(lines)
    datagrams = [bytes.fromhex(h) for h in datagrams_hex.split()] if datagrams_hex.strip() else []
    assert 15 <= len(datagrams) + datagrams_hex.count("  ") <= 20
    assert all(len(d) <= 512 for d in datagrams)
    assert len({len(d) for d in datagrams}) > 1  # random lengths, RFC 864
    cycle = b"".join((bytes(range(0x20, 0x7F)) * 2)[i:i + 72] + b"\r\n" for i in range(95))
    assert all(d in cycle * 2 for d in datagrams)


CTIME = re.compile(rb"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|"
                   rb"Oct|Nov|Dec) [ 1-3]\d \d\d:\d\d:\d\d \d{4}\r\n$")


def test_daytime_answers_the_time_as_a_human_readable_line(box):
    out = inside(box, TCP + "print(s.recv(100).hex() + '|' + s.recv(100).hex())\n" + UDP +
                 "print(ask(b'').hex())", "13")
    (tcp_hex, after), udp_hex = out.splitlines()[0].split("|"), out.splitlines()[1]
    for answer in (bytes.fromhex(tcp_hex), bytes.fromhex(udp_hex)):
        assert CTIME.match(answer), answer
        stamp = time.mktime(time.strptime(answer.decode().strip(), "%a %b %d %H:%M:%S %Y"))
        assert abs(stamp - time.time()) < 60
    assert after == ""  # and the server closed the connection


def test_time_answers_32_bit_seconds_since_1900(box):
    out = inside(box, TCP + "print(s.recv(100).hex())\n" + UDP + "print(ask(b'').hex())", "37")
    for line in out.split():
        data = bytes.fromhex(line)
        assert len(data) == 4
        assert abs(int.from_bytes(data, "big") - 2208988800 - time.time()) < 60


def test_internal_service_is_one_process_that_exits_when_idle_and_comes_back(box):
    ask = TCP + "s.sendall(b'x'); print(s.recv(10))"
    inside(box, ask, "7")
    pid1 = box.show("echo-tcp.service", "MainPID")
    inside(box, ask, "7")
    assert box.show("echo-tcp.service", "MainPID") == pid1 != "0"  # no process per connection
    assert box.wait_for(lambda: box.show("echo-tcp.service", "ActiveState") == "inactive",
                        timeout=IDLE + 30)
    assert box.show("echo-tcp.socket", "ActiveState") == "active"
    assert inside(box, ask, "7").strip() == "b'x'"


# -- external programs -------------------------------------------------------------------

def test_nowait_program_gets_byte_exact_argv_its_user_and_a_process_per_connection(box):
    code = TCP + "s.sendall(b'line one\\n'); print(s.makefile().read().strip())"
    first = json.loads(inside(box, code, "5000"))
    second = json.loads(inside(box, code, "5000"))
    argv = [bytes.fromhex(a) for a in first["argv"]]
    want = [os.fsencode(a) for a in (AWKWARD[0], "-c", HANDLER_CODE, *AWKWARD[1:])]
    assert argv == want
    assert first["uid"] == 65534  # User=nobody took effect
    assert first["line"] == "line one\n"
    assert first["pid"] != second["pid"]


def test_wait_udp_legacy_tftpd_serves_a_file_to_the_tftp_client(box):
    result = box.run("tftp", "-m", "binary", "127.0.0.1", "-c", "get", "hello.txt",
                     "/tmp/got.txt", check=False, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert box.run("cat", "/tmp/got.txt").stdout == "tftp works\n" * 100


def test_rate_limit_stops_the_socket_and_it_comes_back_by_itself(box):
    # inetd: more than N starts a minute turns the service off for ten minutes, then
    # back on. Here: more than 3 in 5 seconds, off for 8 seconds.
    out = inside(box, """
import socket
held = []
for i in range(8):
    try:
        held.append(socket.create_connection(('127.0.0.1', 5001), timeout=30))
        print('connected')
    except OSError as exc:
        print(type(exc).__name__)
""")
    assert out.split().count("connected") >= 4
    assert box.wait_for(lambda: box.show("limited.socket", "Result") == "trigger-limit-hit",
                        timeout=30)
    # During the pause a timer waits, not a start job: the job queue empties at once.
    assert box.wait_for(lambda: "inetd2systemd-rearm-limited.timer" in box.systemctl(
        "list-timers", "--all", "--no-legend", "--no-pager").stdout, timeout=10)
    assert box.wait_for(lambda: box.systemctl("list-jobs", "--no-legend", "--no-pager")
                        .stdout.strip() == "", timeout=2)
    assert box.show("limited.socket", "ActiveState") == "failed"  # still in its pause
    assert box.wait_for(lambda: box.show("limited.socket", "ActiveState") == "active", timeout=60)
    code = TCP + "print(s.recv(100).decode().strip())"
    assert inside(box, code, "5001").strip() == "ok"


def test_max_connections_is_written_and_enforced(box):
    assert box.show("handler.socket", "MaxConnections") == str(UNLIMITED_CONNECTIONS)
    assert box.show("two.socket", "MaxConnections") == "2"
    out = inside(box, """
import socket, time
held = [socket.create_connection(('127.0.0.1', 5002), timeout=30) for _ in range(2)]
for h in held:
    h.sendall(b'hi\\n'); h.recv(10)
third = socket.create_connection(('127.0.0.1', 5002), timeout=30)
try:
    third.sendall(b'hi\\n'); print('third:', third.recv(10))
except OSError as exc:
    print('third:', type(exc).__name__)
""")
    assert out.strip() in ("third: b''", "third: ConnectionResetError")


def test_redirect_forwards_bytes_both_ways(box):
    out = inside(box, TCP + "s.sendall(b'through the proxy'); print(s.recv(100))", "5003")
    assert out.strip() == "b'through the proxy'"


def test_only_from_lets_the_allowed_address_in_and_keeps_another_out(box):
    code = """
import socket, sys
try:
    s = socket.create_connection(('127.0.0.1', 5004), timeout=3,
                                 source_address=(sys.argv[1], 0))
    s.settimeout(30)
    print(s.recv(100).decode().strip())
except OSError as exc:
    print(type(exc).__name__)
"""
    assert inside(box, code, "127.0.0.2").strip() == "welcome"
    assert inside(box, code, "127.0.0.1").strip() in ("TimeoutError", "timeout")


def test_unix_socket_service_is_reachable_by_local_users(box):
    assert box.run("stat", "-c", "%a", "/run/hello.sock").stdout.strip() == "666"
    out = inside(box, """
import socket
s = socket.socket(socket.AF_UNIX); s.connect('/run/hello.sock'); print(s.recv(100).decode())
""")
    assert out.strip() == "hello 65534"


def test_banners_are_sent_before_the_server_runs(box):
    out = inside(box, TCP + "print(s.makefile().read(), end='')", "5005")
    assert out == "BANNER\nGRANTED\nserved\n"


def test_max_load_and_access_times_refuse_a_connection_outside_their_limits(box):
    code = TCP + "print(repr(s.makefile().read()))"
    assert inside(box, code, "5006").strip() == "'served\\n'"
    assert inside(box, code, "5007").strip() == "''"
    assert inside(box, code, "5008").strip() == "'served\\n'"
    assert inside(box, code, "5009").strip() == "''"
    assert box.show("heavy.socket", "ActiveState") == "active"  # a refusal is not a failure


def test_dgram_nowait_program_answers_each_datagram(box):
    out = inside(box, UDP + "print(ask(b'one'), ask(b'two'))", "5010")
    assert out.split() == ["b'ONE'", "b'TWO'"]


# -- every hardening level, under the same client checks ---------------------------------

LEVELS = ("auto", "strict", "basic", "none", "dynamic-user")
# The most each kind of service may be exposed at each level (systemd-analyze security).
MAX_EXPOSURE = {"builtin": {"auto": 1.0, "strict": 1.0, "dynamic-user": 1.0},
                "root program": {"auto": 5.0, "strict": 5.0, "basic": 5.0, "dynamic-user": 5.0},
                "nobody program": {"auto": 3.0, "strict": 3.0, "basic": 5.0,
                                   "dynamic-user": 3.0}}


def level_services(index: int) -> list[Service]:
    """The internal echo, tftpd-hpa and the argv probe, on ports of this level's own."""
    echo = 1700 + index
    return [svc("echo", echo, id="echo-tcp", internal="echo", user="root"),
            svc("echo", echo, id="echo-udp", kind=SocketType.DGRAM, wait=True,
                internal="echo", user="root"),
            *parse_inetd(f"{1690 + index} dgram udp4 wait root /usr/sbin/in.tftpd in.tftpd -s "
                         "/srv/tftp\n", "/etc/inetd.conf").services,
            svc("handler", 1500 + index, server=HANDLER_PATH, user="nobody",
                argv=(AWKWARD[0], "-c", HANDLER_CODE, *AWKWARD[1:]))]


@pytest.fixture(scope="module", params=LEVELS)
def hardened(request, box, tmp_path_factory):
    level, index = request.param, LEVELS.index(request.param)
    options = WriterOptions(prefix=f"{level}-", internal_idle_timeout=IDLE,
                            harden="auto" if level == "dynamic-user" else level,
                            dynamic_user=level == "dynamic-user")
    units, _ = render(level_services(index), options)
    out = tmp_path_factory.mktemp(f"units-{level}")
    for unit in units:
        (out / unit.name).write_text(unit.text, encoding="utf-8", errors="surrogateescape")
    box.install_units(out, start=tuple(u.name for u in units if u.name.endswith(".socket")))
    return box, level, index


def test_each_level_serves_echo_over_tcp_and_udp(hardened):
    box, _, index = hardened
    out = inside(box, TCP + "s.sendall(b'hardened'); s.shutdown(socket.SHUT_WR); "
                            "print(s.recv(100))\n" + UDP + "print(ask(b'over udp'))",
                 str(1700 + index))
    assert out.split() == ["b'hardened'", "b'over", "udp'"]


def test_each_level_lets_tftpd_chroot_and_serve_a_file(hardened):
    box, level, index = hardened
    got = f"/tmp/got-{level}.txt"
    result = box.run("tftp", "-m", "binary", "127.0.0.1", str(1690 + index), "-c", "get",
                     "hello.txt", got, check=False, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert box.run("cat", got).stdout == "tftp works\n" * 100


def test_each_level_gives_the_program_its_exact_argv_and_its_user(hardened):
    box, level, index = hardened
    probe = json.loads(inside(box, TCP + "s.sendall(b'x\\n'); print(s.makefile().read())",
                              str(1500 + index)))
    assert [bytes.fromhex(a) for a in probe["argv"]] == \
        [os.fsencode(a) for a in (AWKWARD[0], "-c", HANDLER_CODE, *AWKWARD[1:])]
    if level == "dynamic-user":  # a user of its own, not the shared nobody
        assert probe["uid"] not in (0, 65534)
    else:
        assert probe["uid"] == 65534


def exposure(box, unit: str) -> float:
    # --offline reads the unit files: the manager cannot hand the argv probe's ExecStart=
    # over D-Bus, whose strings must be UTF-8 (its arguments are not)
    out = box.run("systemd-analyze", "security", "--offline=true", "--no-pager", unit).stdout
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
    assert match, out[-2000:]
    return float(match.group(1))


def test_each_level_keeps_each_service_below_its_exposure(hardened):
    box, level, index = hardened
    scores = {"builtin": exposure(box, f"{level}-echo-tcp.service"),
              "root program": exposure(box, f"{level}-{1690 + index}.service"),
              "nobody program": exposure(box, f"{level}-handler@probe.service")}
    print(f"--harden={level}: {scores}")
    for kind, score in scores.items():
        assert score <= MAX_EXPOSURE[kind].get(level, 10.0), (kind, score)
