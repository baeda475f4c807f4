"""/etc/services: service names to port numbers, as getservbyname(3) reads them.

Read from a file (a migrated host's own, or --services) rather than through libc, so
that a conversion does not depend on the machine it runs on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

DEFAULT_PATH = "/etc/services"


@dataclass(frozen=True)
class ServicesTable:
    """(name or alias, protocol) -> port, and (port, protocol) -> canonical name."""

    ports: dict[tuple[str, str], int] = field(default_factory=dict)
    names: dict[tuple[int, str], str] = field(default_factory=dict)
    source: str = "<none>"

    def port(self, name: str, proto: str) -> int | None:
        """The port of `name` over `proto` ("tcp", "udp", ...); numbers pass through."""
        if name.isdigit():
            return int(name)
        return self.ports.get((name, _base_protocol(proto)))

    def name(self, port: int, proto: str) -> str | None:
        return self.names.get((port, _base_protocol(proto)))


def _base_protocol(proto: str) -> str:
    """tcp6 / udp4 / tcp46 / rpc/tcp look up as tcp / udp (getservbyname's view)."""
    proto = proto.rsplit("/", 1)[-1]
    return proto.rstrip("46").removesuffix("only").rstrip("46") or proto


def parse_services(text: str, file: str = "<services>") -> ServicesTable:
    ports: dict[tuple[str, str], int] = {}
    names: dict[tuple[int, str], str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].split()
        if not line:
            continue
        if len(line) < 2 or "/" not in line[1]:
            raise ConfigError(f"expected 'name port/protocol [aliases]', got {raw.strip()!r}",
                              file, lineno)
        port_s, _, proto = line[1].partition("/")
        if not port_s.isdigit() or not 0 < int(port_s) < 65536:
            raise ConfigError(f"bad port number {port_s!r}", file, lineno)
        port = int(port_s)
        for alias in line[:1] + line[2:]:
            ports.setdefault((alias, proto), port)  # first entry wins, as in getservbyname
        names.setdefault((port, proto), line[0])
    return ServicesTable(ports, names, file)


def load_services(path: str | Path = DEFAULT_PATH) -> ServicesTable:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        if str(path) == DEFAULT_PATH:
            return ServicesTable(source=str(path))  # a bare system: numeric ports only
        raise ConfigError("services file not found", str(path)) from None
    return parse_services(text, str(path))
