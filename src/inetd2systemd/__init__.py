"""inetd2systemd: classic superserver and syslog setups, carried into systemd.

This module is the runtime face a per-connection handler imports, so it must stay
cheap: it pulls in nothing but the activation and notification helpers, and those
only when first used (PEP 562 lazy attributes). No parser, no command line, no
systemd-python on this path (tests/test_import_cost.py keeps it so).
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "listen_fds": "inetd2systemd.runtime.activation",
    "listen_fds_with_names": "inetd2systemd.runtime.activation",
    "serve": "inetd2systemd.runtime.activation",
    "ActivationError": "inetd2systemd.runtime.activation",
    "notify": "inetd2systemd.runtime.notify",
    "Notifier": "inetd2systemd.runtime.notify",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'inetd2systemd' has no attribute {name!r}")
    # __import__, not importlib.import_module: importlib would pull in `warnings` too
    value = getattr(__import__(module, fromlist=[name]), name)
    globals()[name] = value
    return value
