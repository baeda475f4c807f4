"""Daemons done right: `daemonize` (daemon(7)'s steps, or readiness under systemd) and
the locked, atomically written pidfile it and the superserver share."""

from .daemonize import Daemon, DaemonError, DaemonOptions, daemonize, under_systemd

__all__ = ["Daemon", "DaemonError", "DaemonOptions", "daemonize", "under_systemd"]
