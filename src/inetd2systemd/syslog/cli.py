"""`inetd2systemd syslogd`: listen for syslog and route it to the journal or by syslog.conf.

Which rules: `--config FILE`; else the journal when journald runs on this host; else
/etc/syslog.conf. Which sockets: `--listen` (repeatable); else the sockets systemd
passed (LISTEN_FDS, the shipped units/inetd2systemd-syslogd.socket); else one unix
datagram socket: /dev/log, or a private path when journald already owns /dev/log.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import ssl
import sys

from collections.abc import Callable

from ..commandline import epilog
from ..config.trust import untrusted_way
from ..errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK, ConfigError
from ..model import Code, Finding, Severity
from ..socketfiles import bind_unix, clear_stale_socket
from .framing import MAX_FRAME, MAX_MESSAGE
from .listener import (HANDSHAKE_TIMEOUT, IDLE_TIMEOUT, MAX_CONNECTIONS, MAX_PER_SOURCE,
                       MEMORY_BUDGET, Input, Listener)
from .rules import RuleSet, journal_ruleset, read_syslog_conf
from .sinks import Router

JOURNAL_SOCKET = "/run/systemd/journal/socket"
JOURNAL_DEV_LOG = "/run/systemd/journal/dev-log"
JOURNAL_SYSLOG = "/run/systemd/journal/syslog"  # journald's ForwardToSyslog= target
DEV_LOG = "/dev/log"
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux: SO_RCVBUF past rmem_max
PRIVATE_SOCKET = "/run/inetd2systemd-syslogd/log"
SYSLOG_CONF = "/etc/syslog.conf"
# The kernel's queue is where a burst waits while this single loop writes or is not
# scheduled: rsyslogd holds 50,000 messages in its main queue beside its socket's buffer.
# 32 MiB holds ~52,000 260-byte datagrams (the kernel charges ~1,280 bytes for each, and
# grants twice the size asked); the memory is taken only while datagrams wait.
UDP_RECEIVE_BUFFER = 32 * 1024 * 1024


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = epilog(
        [("remote syslog into the journal, with the shipped units",
          "systemctl enable --now inetd2systemd-syslogd.socket"),
         ("route by a syslog.conf, from the network and /dev/log",
          "inetd2systemd syslogd --config /etc/syslog.conf --listen udp:0.0.0.0:514 "
          "--listen unix:/dev/log"),
         ("check a configuration without starting",
          "inetd2systemd syslogd --config /etc/syslog.conf --check")],
        {EXIT_OK: "stopped cleanly, or --check found nothing to report",
         EXIT_INCOMPLETE: "--check found warnings (on stderr)",
         EXIT_BAD_INPUT: "the syslog.conf (file:line:col), a --listen address, a TLS "
                         "certificate, or a bad command line; nothing started",
         EXIT_FAILED: "a socket could not be bound or opened"},
        __doc__.split("\n", 2)[2])
    parser.add_argument("--config", "-f", metavar="FILE",
                        help="syslog.conf to route by (default: the journal if journald runs, "
                             f"else {SYSLOG_CONF})")
    parser.add_argument("--journal", action="store_true",
                        help="send everything to the journal, whatever syslog.conf says")
    parser.add_argument("--listen", "-l", action="append", default=[], metavar="SPEC",
                        help="unix:PATH, unix-stream:PATH, udp:HOST:PORT, tcp:HOST:PORT or "
                             "tls:HOST:PORT (repeatable)")
    parser.add_argument("--tls-cert", metavar="PEM", help="certificate chain for tls: inputs")
    parser.add_argument("--tls-key", metavar="PEM", help="private key for tls: inputs")
    parser.add_argument("--tls-ca", metavar="PEM",
                        help="require client certificates signed by this CA")
    parser.add_argument("--udp-buffer", type=int, default=UDP_RECEIVE_BUFFER, metavar="BYTES",
                        help="receive buffer for udp: and unix: sockets (default 32 MiB)")
    parser.add_argument("--max-message", type=int, default=MAX_MESSAGE, metavar="BYTES",
                        help="longest LF-framed message kept in one piece (default 64 KiB)")
    parser.add_argument("--max-connections", type=_positive(int), default=MAX_CONNECTIONS,
                        metavar="N", help=f"stream connections in all (default {MAX_CONNECTIONS}); "
                        "when full, the source with the most gives up its least active one")
    parser.add_argument("--max-per-source", type=_positive(int), default=MAX_PER_SOURCE,
                        metavar="N", help="stream connections from one address, IPv6 /64 or "
                        f"local user (default {MAX_PER_SOURCE})")
    parser.add_argument("--idle-timeout", type=_positive(float), default=IDLE_TIMEOUT,
                        metavar="SECONDS", help="close a connection silent this long "
                        f"(default {IDLE_TIMEOUT:g})")
    parser.add_argument("--handshake-timeout", type=_positive(float), default=HANDSHAKE_TIMEOUT,
                        metavar="SECONDS", help="close a TLS connection whose handshake is not "
                        f"done by then (default {HANDSHAKE_TIMEOUT:g})")
    parser.add_argument("--memory-budget", type=_positive(int), default=MEMORY_BUDGET,
                        metavar="BYTES", help="bytes held in partial frames, all connections "
                        f"together, before frames are cut (default {MEMORY_BUDGET // 2**20} MiB)")
    parser.add_argument("--check", action="store_true",
                        help="read the configuration, report, and exit")
    # rsyslog's $EscapeControlCharactersOnReceive and $EscapeControlCharacterTab.
    parser.add_argument("--escape-control-characters-on-receive", choices=("on", "off"),
                        default="on", help="write control characters as #ooo (default on)")
    parser.add_argument("--escape-control-character-tab", choices=("on", "off"), default="on",
                        help="escape TAB too (#011) while escaping is on (default on)")


def _positive(kind: type) -> Callable[[str], float]:
    def convert(text: str):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be more than 0: {text}")
        return value

    convert.__name__ = kind.__name__  # argparse names the type in its error
    return convert


def journald_running() -> bool:
    return os.path.exists(JOURNAL_SOCKET)


def choose_rules(args: argparse.Namespace) -> tuple[str, Callable[[], RuleSet]]:
    """(description, loader) where the loader reads the rules afresh (for SIGHUP)."""
    if args.journal:
        return "the journal", journal_ruleset
    if args.config:
        return args.config, lambda: read_syslog_conf(args.config)
    if journald_running():
        return "the journal", journal_ruleset
    return SYSLOG_CONF, lambda: read_syslog_conf(SYSLOG_CONF)


_SPEC = re.compile(r"(?P<kind>unix|unix-stream|udp|tcp|tls):(?:(?P<path>/.*)|"
                   r"(?:\[(?P<v6>[^\]]*)\]|(?P<host>[^:\[\]]*)):(?P<port>\d+))$")


def parse_listen(spec: str) -> tuple[str, str, int]:
    """(transport, host or path, port)."""
    m = _SPEC.match(spec)
    if m is None or (m["kind"].startswith("unix") != bool(m["path"])):
        raise ConfigError(f"--listen {spec!r}: expected unix:PATH, unix-stream:PATH, "
                          "udp:HOST:PORT, tcp:HOST:PORT or tls:HOST:PORT")
    if m["path"]:
        return m["kind"], m["path"], 0
    port = int(m["port"])
    if not 0 <= port < 65536:
        raise ConfigError(f"--listen {spec!r}: port out of range")
    return m["kind"], m["v6"] if m["v6"] is not None else m["host"], port


def open_input(spec: str, udp_buffer: int) -> Input:
    """Open one --listen socket; OSError names the spec (a failed --listen says which)."""
    try:
        return _open_input(spec, udp_buffer)
    except UnicodeError:  # the IDNA codec behind getaddrinfo
        raise ConfigError(f"--listen {spec!r}: not a valid host name") from None
    except OSError as exc:
        raise OSError(exc.errno, f"{spec}: {exc.strerror or exc}") from None


def _open_input(spec: str, udp_buffer: int) -> Input:
    transport, where, port = parse_listen(spec)
    if transport.startswith("unix"):
        kind = socket.SOCK_DGRAM if transport == "unix" else socket.SOCK_STREAM
        directory = os.path.dirname(where) or "."
        reason = untrusted_way(directory)  # before any directory is made on the way
        if reason:
            raise ConfigError(f"--listen {spec}: {where}: not created: {reason}")
        os.makedirs(directory, exist_ok=True)
        problem = clear_stale_socket(where, kind)
        if problem:
            raise ConfigError(f"--listen {spec}: {problem}")
        sock = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
        try:
            inode = bind_unix(sock, where, 0o666)  # any local program may log, as with /dev/log
            if kind == socket.SOCK_STREAM:
                sock.listen(1024)
            else:
                _size_receive_buffer(sock, udp_buffer)
        except BaseException:
            sock.close()
            raise
        return Input(sock, transport, owned_path=where, owned_inode=inode)
    family, kind, proto, _, address = socket.getaddrinfo(
        where or None, port, type=socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM,
        flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind | socket.SOCK_CLOEXEC, proto)
    try:
        if transport == "udp":
            _size_receive_buffer(sock, udp_buffer)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        if transport != "udp":
            sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    return Input(sock, transport)


def _granted_buffer(item: Input, asked: int | None) -> str:
    """What the kernel granted a datagram socket, as the administrator reads it: Linux
    reports twice the size set (the other half is its bookkeeping), and without privilege
    caps the size at net.core.rmem_max."""
    if item.sock.type != socket.SOCK_DGRAM:
        return ""
    granted = item.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    if sys.platform.startswith("linux"):
        granted //= 2
    text = f" (receive buffer {granted // 1024:,} KiB"
    if asked is not None and granted < asked:
        text += f", not the {asked // 1024:,} KiB asked: raise net.core.rmem_max or run as root"
    return text + ")"


def _size_receive_buffer(sock: socket.socket, size: int) -> None:
    """Room for a burst: SO_RCVBUFFORCE passes net.core.rmem_max when privileged."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def inherited_inputs() -> list[Input]:
    from ..runtime.activation import listen_fds_with_names

    inputs = []
    for name, sock in listen_fds_with_names(stdin=False).pairs:
        if sock.family == socket.AF_UNIX:
            transport = "unix" if sock.type == socket.SOCK_DGRAM else "unix-stream"
        elif sock.type == socket.SOCK_DGRAM:
            transport = "udp"
        else:
            transport = "tls" if name == "tls" else "tcp"
        inputs.append(Input(sock, transport))
    return inputs


def default_listen() -> str:
    """/dev/log unless journald owns it; then a private path (never journald's
    /run/systemd/journal/syslog: journald forwards there, and writing back would loop)."""
    try:
        owned_by_journald = os.path.realpath(DEV_LOG) == JOURNAL_DEV_LOG
    except OSError:
        owned_by_journald = False
    if owned_by_journald or (journald_running() and os.path.exists(DEV_LOG)):
        return f"unix:{PRIVATE_SOCKET}"
    return f"unix:{DEV_LOG}"


def tls_context(args: argparse.Namespace) -> ssl.SSLContext:
    if not args.tls_cert:
        raise ConfigError("a tls: input needs --tls-cert (and --tls-key unless the key is "
                          "in the same file)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_ca:
            context.load_verify_locations(args.tls_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS certificate: {exc}", args.tls_cert) from None
    return context


def run(args: argparse.Namespace) -> int:
    where, load = choose_rules(args)
    ruleset: RuleSet = load()  # ConfigError -> exit 2, nothing opened yet
    _report_findings(ruleset.findings)
    if args.check:
        unresolvable = unresolvable_forwards(ruleset)
        _report_findings(unresolvable)
        print(f"{where}: {len(ruleset.rules)} rules, {len(ruleset.actions())} destinations")
        reported = [*ruleset.findings, *unresolvable]
        return EXIT_INCOMPLETE if any(f.severity is not Severity.INFO for f in reported) \
            else EXIT_OK
    specs = list(args.listen)
    for spec in specs:
        transport, path, _ = parse_listen(spec)
        if path == JOURNAL_SYSLOG:
            raise ConfigError(f"--listen {spec}: journald forwards to this socket; reading it "
                              "and writing to the journal would loop")
    context = tls_context(args) if any(s.startswith("tls:") for s in specs) else None
    router = _router(ruleset, args)  # a sink that cannot be set up is a ConfigError too
    inputs: list[Input] = []
    try:
        if not specs:
            inputs = inherited_inputs()
            if any(i.transport == "tls" for i in inputs):
                context = tls_context(args)
            if not inputs:
                specs = [default_listen()]
        for spec in specs:
            inputs.append(open_input(spec, args.udp_buffer))
    except (OSError, ConfigError) as exc:
        for item in inputs:
            item.sock.close()
        router.close()
        if isinstance(exc, ConfigError):
            raise
        print(f"inetd2systemd syslogd: cannot listen on {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED

    def load_router() -> Router:
        ruleset = load()
        _report_findings(ruleset.findings)  # once per load: at start, then at each SIGHUP
        return _router(ruleset, args)

    from ..runtime.notify import Notifier

    notifier = Notifier(unset_environment=True)
    listener = Listener(inputs, load_router, router=router, tls_context=context,
                        notifier=notifier, max_message=args.max_message,
                        max_frame=max(MAX_FRAME, args.max_message),
                        max_connections=args.max_connections, max_per_source=args.max_per_source,
                        idle_timeout=args.idle_timeout, handshake_timeout=args.handshake_timeout,
                        memory_budget=args.memory_budget)
    asked = args.udp_buffer if specs else None  # inherited sockets come sized by systemd
    names = ", ".join(item.describe() + _granted_buffer(item, asked) for item in inputs)
    print(f"inetd2systemd syslogd: listening on {names}; rules: {where}", file=sys.stderr,
          flush=True)
    return listener.run()


def _router(ruleset: RuleSet, args: argparse.Namespace) -> Router:
    return Router(ruleset, escape=args.escape_control_characters_on_receive == "on",
                  escape_tab=args.escape_control_character_tab == "on")


def _report_findings(findings) -> None:
    for finding in findings:
        print(f"inetd2systemd syslogd: {finding}", file=sys.stderr, flush=True)


def unresolvable_forwards(ruleset: RuleSet) -> list[Finding]:
    """--check: forwarding targets the resolver cannot find now. Only a warning: at boot
    the name server may not answer yet, and the daemon retries (the other rules run)."""
    findings, seen = [], set()
    for rule in ruleset.rules:
        action = rule.action
        if action.kind not in ("udp", "tcp") or action.key() in seen:
            continue
        seen.add(action.key())
        try:
            socket.getaddrinfo(action.target, action.port)
        except (OSError, UnicodeError) as exc:
            findings.append(Finding(rule.source, Severity.WARNING,
                                    f"forwarding host {action.target!r} does not resolve now "
                                    f"({exc}); its messages are dropped (counted) until it does",
                                    code=Code.NO_ADDRESS))
    return findings
