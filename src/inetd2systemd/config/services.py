"""/etc/services: service names to port numbers, as getservbyname(3) reads them.

Read from a file (a migrated host's own, or --services) rather than through libc, so
that a conversion does not depend on the machine it runs on. Like glibc's reader, a
line that is not `name port/protocol [aliases]` is skipped, not fatal: every daemon on
the host reads the same file that way, and one odd line must not make the whole table
(and with it every service of the configuration) unreadable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..model import Code, base_protocol

DEFAULT_PATH = "/etc/services"

# `port/protocol`: ASCII digits only (str.isdigit() takes '²' too), at most five of them.
_PORT_PROTOCOL = re.compile(r"([0-9]{1,5})/(\S+)")


@dataclass(frozen=True)
class ServicesTable:
    """(name or alias, protocol) -> port, and (port, protocol) -> canonical name."""

    ports: dict[tuple[str, str], int] = field(default_factory=dict)
    names: dict[tuple[int, str], str] = field(default_factory=dict)
    source: str = "<none>"

    def port(self, name: str, proto: str) -> int | None:
        """The port of `name` over `proto` ("tcp", "udp", ...); numbers pass through."""
        if name.isascii() and name.isdigit():
            return int(name) if len(name) <= 5 else None
        return self.ports.get((name, base_protocol(proto)))

    def name(self, port: int, proto: str) -> str | None:
        return self.names.get((port, base_protocol(proto)))


def parse_services(text: str, file: str = "<services>") -> ServicesTable:
    """The table in `text`. The first entry for a name wins, as in getservbyname()."""
    ports: dict[tuple[str, str], int] = {}
    names: dict[tuple[int, str], str] = {}
    for raw in text.splitlines():
        fields = raw.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        match = _PORT_PROTOCOL.fullmatch(fields[1])
        if match is None or not 0 < int(match[1]) < 65536:
            continue  # glibc's files reader skips a line it cannot parse
        port, proto = int(match[1]), match[2]
        for alias in fields[:1] + fields[2:]:
            ports.setdefault((alias, proto), port)
        names.setdefault((port, proto), fields[0])
    return ServicesTable(ports, names, file)


def load_services(path: str | Path = DEFAULT_PATH) -> ServicesTable:
    from . import open_regular  # the package imports this module: not at the top

    path = Path(path)
    try:
        # a regular file only: /dev/zero or a FIFO would never end
        text, _ = open_regular(path)
    except FileNotFoundError:
        if str(path) == DEFAULT_PATH:
            return ServicesTable(source=str(path))  # a bare system: numeric ports only
        raise ConfigError("services file not found", str(path), code=Code.UNREADABLE) from None
    except (OSError, ValueError) as exc:  # a directory, a device, no permission, a NUL
        why = getattr(exc, "strerror", None) or "the path cannot be opened"
        raise ConfigError(f"cannot read the services file: {why}", str(path),
                          code=Code.UNREADABLE) from None
    return parse_services(text, str(path))
