"""Equivalence: the same client transcript, sent before (to the legacy superserver) and
after (to the new sockets), optionally from several source addresses."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..model import Family, Service, SocketType
from .plan import Migration



@dataclass(frozen=True)
class Probe:
    send: bytes = b""
    read: int = 4096
    wait: float = 1.0  # seconds to wait for more data before calling the answer complete


# What to say to each internal service; a program gets nothing unless --probes says.
INTERNAL_PROBES = {
    "echo": Probe(b"inetd2systemd equivalence probe\r\n"),
    "discard": Probe(b"inetd2systemd equivalence probe\r\n", wait=0.5),
    "chargen": Probe(b"\r\n", read=74 * 3),
    "daytime": Probe(b"\r\n"),
    "time": Probe(b"\r\n"),
}
TIME_DEPENDENT = ("daytime", "time")


def load_probes(path: str | None) -> dict[str, Probe]:
    if not path:
        return {}
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read probes: {exc}", path) from None
    out = {}
    for key, value in raw.items():
        out[key] = Probe(value.get("send", "").encode("latin-1").decode("unicode_escape")
                         .encode("latin-1"), int(value.get("read", 4096)),
                         float(value.get("wait", 1.0)))
    return out


def probe_target(service: Service) -> tuple[str, int] | None:
    for listen in service.listens:
        if listen.family is Family.UNIX or listen.port is None:
            continue
        if listen.host:
            return listen.host, listen.port
        return ("::1" if listen.family is Family.IPV6 else "127.0.0.1"), listen.port
    return None


def transcript(service: Service, probe: Probe, source: str | None = None,
               timeout: float = 2.0, first_byte: float = 8.0) -> dict:
    """Connect (or send one datagram), send, read: what a client sees."""
    target = probe_target(service)
    record = {"service": service.id, "source": source or "", "target": "", "outcome": "",
              "received": ""}
    if target is None:
        record["outcome"] = "not probed (no IP address)"
        return record
    host, port = target
    dgram = service.socket_type is SocketType.DGRAM
    record["target"] = f"{host}:{port}/{'udp' if dgram else 'tcp'}"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM if dgram else socket.SOCK_STREAM)
    data = b""
    try:
        sock.settimeout(timeout)
        if source:
            sock.bind((source, 0))
        if dgram:
            sock.sendto(probe.send or b"\n", (host, port))
            try:
                data, _ = sock.recvfrom(65535)
                outcome = "answered"
            except socket.timeout:
                outcome = "no reply"
        else:
            try:
                sock.connect((host, port))
            except socket.timeout:
                record["outcome"] = "connect timed out"
                return record
            except ConnectionRefusedError:
                record["outcome"] = "connection refused"
                return record
            if probe.send:
                try:
                    sock.sendall(probe.send)
                except OSError:
                    pass
            outcome = "silent"
            # The first byte may take a server start (a unit per connection under a busy
            # manager): wait the full timeout for it, then only `probe.wait` between chunks.
            sock.settimeout(first_byte)
            deadline = time.monotonic() + first_byte + timeout
            while len(data) < probe.read and time.monotonic() < deadline:
                try:
                    chunk = sock.recv(probe.read - len(data))
                    sock.settimeout(probe.wait)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    outcome = "reset"
                    break
                if not chunk:
                    outcome = "closed"
                    break
                data += chunk
            if data:
                outcome = "answered" + (", then closed" if outcome == "closed" else "")
    except OSError as exc:
        outcome = f"error: {exc.strerror or exc}"
    finally:
        sock.close()
    record["outcome"] = outcome
    record["received"] = data[:probe.read].decode("latin-1")
    return record


def record_transcripts(migration: Migration, sources: list[str] | None,
                       probes: dict[str, Probe]) -> list[dict]:
    out = []
    for plan in migration.plans:
        if plan.original.disabled or not plan.units:
            continue
        probe = probes.get(plan.id) or INTERNAL_PROBES.get(plan.service.internal or "", Probe())
        for source in sources or [None]:
            out.append(transcript(plan.service, probe, source))
    return out


def compare(before: dict | None, after: dict | None, internal: str | None) -> str:
    """A verdict for one (service, source) pair of transcripts."""
    if before is None or after is None:
        return "missing"
    # Only an answer tells a served client from a refused one: tcpd holds a refused
    # connection open for 5 s (libwrap's clean_exit) and a discard server is silent too.
    served = lambda r: r["outcome"].startswith("answered")  # noqa: E731
    if served(before) != served(after):
        return "DIFFERS"
    if not served(before):
        if before["outcome"] == after["outcome"]:
            return "same"
        return f"same: nothing received ({before['outcome']} before, {after['outcome']} after)"
    if before["received"] == after["received"]:
        return "same"
    if internal in TIME_DEPENDENT and len(before["received"]) == len(after["received"]):
        return "same shape (time of day differs)"
    return "DIFFERS"



def load_transcripts(out: Path) -> dict[str, list[dict]]:
    found = {}
    for phase in ("before", "after"):
        path = out / "transcripts" / f"{phase}.json"
        if path.exists():
            found[phase] = json.loads(path.read_text())
    return found
