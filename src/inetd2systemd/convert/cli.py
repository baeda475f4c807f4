"""`inetd2systemd convert`: inetd.conf / xinetd configuration -> systemd units."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .. import report
from ..config.services import DEFAULT_PATH as SERVICES_PATH, load_services
from ..errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK
from .pipeline import as_json, convert, is_unit_directory, sockets_to_start

EPILOG = f"""\
exit status:
  {EXIT_OK}  everything was carried over: the units behave as the configuration did
  {EXIT_INCOMPLETE}  converted, but something was not carried over exactly (any warning or
     error in the report on stderr: read it)
  {EXIT_BAD_INPUT}  bad input (the message names file:line) or bad arguments: nothing written
  {EXIT_FAILED}  writing or installing failed, or would overwrite a unit inetd2systemd did not
     write (--force replaces it): the target is left as it was

Without --output-dir, --install or --json the units are printed to stdout.
Findings go to stderr as 'file:line: severity [service]: message'.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    from ..config.inetd import FLAVORS  # the dialects the reader knows
    parser.epilog = EPILOG
    parser.add_argument("paths", nargs="*", metavar="PATH", default=["/etc/inetd.conf"],
                        help="inetd.conf, xinetd.conf or an xinetd.d directory "
                             "(default /etc/inetd.conf)")
    out = parser.add_argument_group("output")
    out.add_argument("-o", "--output-dir", metavar="DIR",
                     help="write the units into DIR (atomically; a failed run leaves it as it was)")
    out.add_argument("--json", action="store_true",
                     help="print every service, its units and every finding as JSON on stdout")
    out.add_argument("-n", "--dry-run", action="store_true",
                     help="read, render and check, say what would be written; write nothing")
    out.add_argument("--install", action="store_true",
                     help="write into ROOT/etc/systemd/system, daemon-reload, enable and start "
                          "the sockets")
    out.add_argument("--root", metavar="DIR", default="/",
                     help="with --install: the root to install under; other than / systemctl "
                          "is not called")
    out.add_argument("-f", "--force", action="store_true",
                     help="replace unit files that inetd2systemd did not write")
    out.add_argument("-v", "--verbose", action="store_true",
                     help="also show informational findings and what was written")
    reading = parser.add_argument_group("reading")
    reading.add_argument("--format", choices=("inetd", "xinetd"),
                         help="read every PATH in this format (default: detected by content)")
    reading.add_argument("--flavor", "--flavour", choices=FLAVORS,
                         default="openbsd", help="inetd.conf dialect (default: openbsd, Debian's "
                                                 "openbsd-inetd)")
    reading.add_argument("--services", metavar="FILE", default=SERVICES_PATH,
                         help=f"port names table (default {SERVICES_PATH})")
    reading.add_argument("--include-disabled", action="store_true",
                         help="also convert Debian's #<off># entries and disable=yes services "
                              "(written, not enabled)")
    reading.add_argument("--no-host-check", "--no-server-check", action="store_true",
                         dest="no_host_check",
                         help="do not check that each server program, user and group exists "
                              "here (or under --root): converting for another machine")
    writing = parser.add_argument_group("writing")
    writing.add_argument("--prefix", default="", help="prepend to every unit name")
    writing.add_argument("--systemd-version", type=int, metavar="N",
                         help="target systemd version (default: the installed one)")
    writing.add_argument("--engine", choices=("systemd", "superserver"), default="systemd",
                         help="per-service socket units, or one unit running "
                              "'inetd2systemd serve'")
    writing.add_argument("--stderr-to-journal", action="store_true",
                         help="send servers' stderr to the journal instead of the client")
    add_hardening_arguments(writing)


def add_hardening_arguments(group) -> None:
    """--harden, --dynamic-user and --suite-path, shared with `import`."""
    from ..units.hardening import LEVELS

    group.add_argument("--harden", choices=LEVELS, default="auto",
                       help="sandbox the services (default auto: built-ins fully, programs "
                            "not running as root strictly, the rest basically; docs/units.md)")
    group.add_argument("--dynamic-user", action="store_true",
                       help="run User=nobody services as a user of their own (DynamicUser=yes)")
    group.add_argument("--suite-path", metavar="PATH",
                       help="how the units run inetd2systemd (default: the bare name, which "
                            "systemd finds in /usr/local/sbin, /usr/local/bin, /usr/sbin or "
                            "/usr/bin on the host that runs them)")


def suite_command(args: argparse.Namespace) -> tuple[str, ...] | None:
    """WriterOptions.command from --suite-path; None for the default. Raises ValueError."""
    from ..units.escape import executable_problem

    if args.suite_path is None:
        return None
    problem = executable_problem(args.suite_path)
    if problem:
        raise ValueError(f"--suite-path: {problem}")
    return (args.suite_path,)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except OSError as exc:
        # Reading failures are ConfigErrors (exit 2) by now; what is left is output: a
        # full disk under stdout, a file system gone read-only while writing.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"inetd2systemd convert: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED


def _run(args: argparse.Namespace) -> int:
    from ..units.install import InstallError, install, installed_systemd_version, plan, \
        unit_directory, write_units
    from ..units.writer import WriterOptions

    if args.install and args.output_dir:
        print("inetd2systemd convert: --install and --output-dir exclude each other "
              "(--install --root DIR writes under DIR)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.root != "/" and not args.install:
        print("inetd2systemd convert: --root only goes with --install", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        command = suite_command(args)
    except ValueError as exc:
        print(f"inetd2systemd convert: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    version = args.systemd_version or installed_systemd_version()
    options = WriterOptions(prefix=args.prefix, systemd_version=version, engine=args.engine,
                            stderr_to_journal=args.stderr_to_journal,
                            config_paths=tuple(os.path.abspath(p) for p in args.paths),
                            harden=args.harden, dynamic_user=args.dynamic_user,
                            **({"command": command} if command else {}))
    conversion = convert(args.paths, options, format=args.format, flavor=args.flavor,
                         services=load_services(args.services),
                         include_disabled=args.include_disabled,
                         host_root=None if args.no_host_check else
                         (args.root if args.install else "/"))
    configuration, units, findings = conversion.configuration, conversion.units, conversion.findings
    status = conversion.status

    target = None
    if args.install:
        target = unit_directory(args.root)
    elif args.output_dir:
        target = Path(args.output_dir)

    for line in report.text_lines(findings, verbose=args.verbose):
        print(line, file=sys.stderr)

    if args.dry_run:
        if target is not None:
            try:
                p = plan(units, target, force=args.force,
                         prune=not args.install and not is_unit_directory(target))
            except InstallError as exc:
                print(f"inetd2systemd convert: {exc}", file=sys.stderr)
                return EXIT_FAILED
            for label, names in (("new", p.new), ("changed", p.changed),
                                 ("unchanged", p.unchanged), ("REFUSED (not ours)", p.foreign),
                                 ("removed", p.stale)):
                for name in names:
                    print(f"would write {target / name}: {label}" if label != "removed"
                          else f"would remove {target / name}", file=sys.stderr)
            if p.foreign and not args.force:
                status = EXIT_FAILED
    elif target is not None:
        start = sockets_to_start(units, configuration.services)
        try:
            if args.install:
                p = install(units, root=args.root, force=args.force, start=start)
            else:
                # A unit directory systemd reads may hold other conversions' units:
                # only a directory of its own is pruned of units this one no longer has.
                p = write_units(units, target, force=args.force,
                                prune=not is_unit_directory(target), durable=False)
        except InstallError as exc:
            print(f"inetd2systemd convert: {exc}", file=sys.stderr)
            return EXIT_FAILED
        for name, copy in zip(p.forced, p.saved):
            print(f"replaced {target / name} (not written by inetd2systemd): the old file is "
                  f"kept as {target / copy}", file=sys.stderr)
        if args.verbose:
            for name in p.written:
                print(f"wrote {target / name}", file=sys.stderr)
            for name in p.stale:
                print(f"removed {target / name}", file=sys.stderr)
        if args.install and Path(args.root).resolve() != Path("/") and start:
            print(f"installed under {args.root}: enable there with 'systemctl enable "
                  f"{' '.join(start)}'", file=sys.stderr)

    if args.json:
        # one write: json.dump would make a write() call per token (~50 per unit)
        sys.stdout.write(json.dumps(as_json(configuration, units, findings, status), indent=2))
        sys.stdout.write("\n")
    elif target is None and not args.dry_run:
        sys.stdout.write("".join(f"# ==> {unit.name} <==\n{unit.text.rstrip(chr(10))}\n\n"
                                 for unit in units))
    print(report.summary(configuration.services, len(units), findings), file=sys.stderr)
    return status
