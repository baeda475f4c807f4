"""CPU time of a process, from /proc/PID/stat (proc(5)): what the benches charge each daemon."""

from __future__ import annotations

import os
from pathlib import Path

HZ = os.sysconf("SC_CLK_TCK")


def cpu_ticks(stat: str, children: bool = False) -> int:
    """utime + stime from the text of a stat file, plus cutime + cstime (its reaped
    children) when asked. The command name may hold spaces and parentheses, so the
    fields are counted after the last ')'."""
    fields = stat.rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15 if children else 13])


def cpu_seconds(pid: int, children: bool = False) -> float:
    return cpu_ticks(Path(f"/proc/{pid}/stat").read_text(), children) / HZ
