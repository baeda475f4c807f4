"""Facility and severity names as plain tables, in the manner of CPython's
logging.handlers.SysLogHandler (facility_names / priority_names).

Codes follow RFC 5424 section 6.2.1 and the Linux <syslog.h>; the aliases are the ones
sysklogd and rsyslog accept in syslog.conf (`security` = auth, `panic` = emerg, ...).
"""

from __future__ import annotations

FACILITY_NAMES: dict[str, int] = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "security": 4,
    "syslog": 5, "lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10,
    "ftp": 11, "ntp": 12, "audit": 13, "console": 14, "cron2": 15,
    "local0": 16, "local1": 17, "local2": 18, "local3": 19,
    "local4": 20, "local5": 21, "local6": 22, "local7": 23,
    # rsyslog's internal "-- MARK --" facility: selectable, never produced here.
    "mark": 24,
}

# The name each code is printed as (the first, canonical spelling).
FACILITY_LABELS: dict[int, str] = {}
for _name, _code in FACILITY_NAMES.items():
    FACILITY_LABELS.setdefault(_code, _name)

SEVERITY_NAMES: dict[str, int] = {
    "emerg": 0, "panic": 0, "alert": 1, "crit": 2, "err": 3, "error": 3,
    "warning": 4, "warn": 4, "notice": 5, "info": 6, "debug": 7,
}

SEVERITY_LABELS: dict[int, str] = {}
for _name, _code in SEVERITY_NAMES.items():
    SEVERITY_LABELS.setdefault(_code, _name)

# What a message without a PRI is taken to be (RFC 3164 section 4.3.3, rsyslog).
DEFAULT_FACILITY = 1  # user
DEFAULT_SEVERITY = 5  # notice
FACILITY_COUNT = 25  # 0..23 plus mark: the size of a selector's mask table
MAX_PRI = 191  # 23 * 8 + 7

MONTHS: tuple[bytes, ...] = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun",
                             b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")
