"""`inetd2systemd convert`: inetd.conf / xinetd configuration -> systemd units."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .. import report
from ..config.services import DEFAULT_PATH as SERVICES_PATH, load_services
from ..commandline import add_dry_run, add_force, add_json, add_root, add_verbose, epilog
from ..errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK
from ..units.install import check_installable, carry_out, plan, plan_install
from .pipeline import as_json, convert, is_unit_directory, sockets_to_start

EPILOG = epilog(
    [("what /etc/inetd.conf and /etc/xinetd.conf become, and what would not carry over",
      "inetd2systemd convert --dry-run -o /tmp/units"),
     ("install the units, enable and start the sockets",
      "inetd2systemd convert --install"),
     ("everything, for a script", "inetd2systemd convert --json /etc/xinetd.conf"),
     ("take back everything installed from /etc/inetd.conf",
      "inetd2systemd convert --uninstall /etc/inetd.conf")],
    {EXIT_OK: "everything was carried over, the units behave as the configuration did",
     EXIT_INCOMPLETE: "something was not carried over exactly (a warning or an error in the "
                      "report on stderr)",
     EXIT_BAD_INPUT: "the message names file:line:col, or bad arguments; nothing written",
     EXIT_FAILED: "writing or installing failed, or would replace a unit inetd2systemd did "
                  "not write (--force replaces it); the target is left as it was"},
    """\
Without PATH, those of /etc/inetd.conf and /etc/xinetd.conf that exist are read.
Without --output-dir, --install or --json the units are printed to stdout.
Findings go to stderr as 'file:line: severity [service]: message'.

--install records what it installed from PATH... (ROOT/var/lib/inetd2systemd/installed):
run again after the configuration changed, it also stops, disables and removes the
units it installed before that are no longer produced; --uninstall [PATH...] removes
everything installed from those paths (from any, without PATH) and puts back the unit
files --force had replaced. --dry-run prints every file and systemctl step first.
""")

# Without PATH: those of these that exist, as `serve` reads them.
DEFAULT_PATHS = ("/etc/inetd.conf", "/etc/xinetd.conf")


def configure(parser: argparse.ArgumentParser) -> None:
    from ..config.inetd import FLAVORS  # the dialects the reader knows
    parser.epilog = EPILOG
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="inetd.conf, xinetd.conf or an xinetd.d directory "
                             "(default: those of /etc/inetd.conf and /etc/xinetd.conf that "
                             "exist; with --uninstall: every installed one)")
    out = parser.add_argument_group("output")
    out.add_argument("-o", "--output-dir", metavar="DIR",
                     help="write the units into DIR (atomically; a failed run leaves it as it was)")
    add_json(out, "every service, its units and every finding")
    add_dry_run(out, "read, render and check, print every file and systemctl step that "
                     "would be taken")
    out.add_argument("--install", action="store_true",
                     help="write into ROOT/etc/systemd/system, daemon-reload, enable and start "
                          "the sockets; remove what an earlier install from PATH... installed "
                          "and the configuration no longer produces")
    out.add_argument("--uninstall", action="store_true",
                     help="stop, disable and remove every unit installed from PATH... (from "
                          "any path, without PATH) and put back the files they replaced")
    add_root(out, "with --install or --uninstall")
    add_force(out, "unit files it did not write (a copy is kept), or another install's")
    add_verbose(out, "informational findings too, and what was written")
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


def _conflict(args: argparse.Namespace) -> str | None:
    if args.install and args.uninstall:
        return "--install and --uninstall exclude each other"
    if (args.install or args.uninstall) and args.output_dir:
        which = "--install" if args.install else "--uninstall"
        return f"{which} and --output-dir exclude each other ({which} --root DIR works under DIR)"
    if args.root != "/" and not (args.install or args.uninstall):
        return "--root only goes with --install or --uninstall"
    return None


def _run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..model import Code
    from ..units.install import InstallError, installed_systemd_version, unit_directory
    from ..units.writer import WriterOptions

    problem = _conflict(args)
    if problem:
        print(f"inetd2systemd convert: {problem}", file=sys.stderr)
        return _failed(args, EXIT_BAD_INPUT, report.error_json(Code.BAD_ARGUMENTS, problem))
    if args.uninstall:
        return _uninstall(args)
    try:
        command = suite_command(args)
    except ValueError as exc:
        print(f"inetd2systemd convert: {exc}", file=sys.stderr)
        return _failed(args, EXIT_BAD_INPUT, report.error_json(Code.BAD_ARGUMENTS, str(exc)))
    paths = args.paths or [p for p in DEFAULT_PATHS if os.path.lexists(p)]
    if not paths:
        message = "no configuration: give PATH (neither /etc/inetd.conf nor /etc/xinetd.conf exists)"
        print(f"inetd2systemd convert: {message}", file=sys.stderr)
        return _failed(args, EXIT_BAD_INPUT, report.error_json(Code.BAD_ARGUMENTS, message))
    sources = tuple(os.path.abspath(p) for p in paths)
    version = args.systemd_version or installed_systemd_version()
    options = WriterOptions(prefix=args.prefix, systemd_version=version, engine=args.engine,
                            stderr_to_journal=args.stderr_to_journal, config_paths=sources,
                            harden=args.harden, dynamic_user=args.dynamic_user,
                            **({"command": command} if command else {}))
    try:
        conversion = convert(paths, options, format=args.format, flavor=args.flavor,
                             services=load_services(args.services),
                             include_disabled=args.include_disabled,
                             host_root=None if args.no_host_check else
                             (args.root if args.install else "/"))
    except ConfigError as exc:
        print(f"inetd2systemd convert: {exc}", file=sys.stderr)
        return _failed(args, EXIT_BAD_INPUT, report.error_json(exc.code, exc.msg, exc.file,
                                                               exc.line, exc.column))
    configuration, units, findings = conversion.configuration, conversion.units, conversion.findings
    status = conversion.status

    for line in report.text_lines(findings, verbose=args.verbose):
        print(line, file=sys.stderr)

    target = unit_directory(args.root) if args.install else \
        Path(args.output_dir) if args.output_dir else None
    p = errors = None
    if target is not None:
        start = sockets_to_start(units, configuration.services)
        try:
            if args.install:
                p = plan_install(units, sources=sources, root=args.root, force=args.force,
                                 start=start)
            else:
                # A unit directory systemd reads may hold other conversions' units:
                # only a directory of its own is pruned of units this one no longer has.
                p = plan(units, target, force=args.force, prune=not is_unit_directory(target))
            if args.dry_run:
                _print_plan(p, dry_run=True)
                if p.refused:
                    status = EXIT_FAILED
                    errors = [report.error_json(Code.REFUSED, p.refused)]
            else:
                check_installable(p, args.root if args.install else target)
                carry_out(p, units, root=args.root, durable=bool(args.install))
                _print_plan(p, dry_run=False, verbose=args.verbose)
        except InstallError as exc:
            print(f"inetd2systemd convert: {exc}", file=sys.stderr)
            status = EXIT_FAILED
            refused = p is not None and p.refused is not None
            errors = [report.error_json(Code.REFUSED if refused else Code.INSTALL_FAILED,
                                        str(exc))]
        if args.install and status != EXIT_FAILED and not args.dry_run \
                and Path(args.root).resolve() != Path("/") and start:
            print(f"installed under {args.root}: enable there with 'systemctl enable "
                  f"{' '.join(start)}'", file=sys.stderr)
    elif args.dry_run and not args.json:
        print(f"would print {len(units)} units on stdout: "
              f"{' '.join(u.name for u in units) or 'none'}", file=sys.stderr)

    if args.json:
        _write_json(as_json(configuration, units, findings, status, plan=p, errors=errors or ()))
    elif target is None and not args.dry_run:
        sys.stdout.write("".join(f"# ==> {unit.name} <==\n{unit.text.rstrip(chr(10))}\n\n"
                                 for unit in units))
    if status != EXIT_FAILED:
        print(report.summary(configuration.services, len(units), findings), file=sys.stderr)
    return status


def _write_json(document: dict) -> None:
    # one write: json.dump would make a write() call per token (~50 per unit)
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def _failed(args: argparse.Namespace, status: int, error: dict) -> int:
    """A command that stopped before converting: with --json, the document still comes,
    empty but for the error."""
    if args.json:
        _write_json({"schema": report.SCHEMA, "services": [], "units": [], "findings": [],
                     "errors": [error], "complete": False, "exit_status": status})
    return status


def _uninstall(args: argparse.Namespace) -> int:
    from ..model import Code
    from ..units.install import InstallError, check_installable, carry_out, plan_uninstall

    sources = tuple(os.path.abspath(p) for p in args.paths) if args.paths else None
    p, status, errors = None, EXIT_OK, []
    try:
        p = plan_uninstall(sources=sources, root=args.root)
        if not p.steps:
            what = f"from {', '.join(sources)}" if sources else "by inetd2systemd convert"
            print(f"inetd2systemd convert: nothing is installed {what} under {args.root}",
                  file=sys.stderr)
        elif args.dry_run:
            _print_plan(p, dry_run=True)
        else:
            check_installable(p, args.root)
            carry_out(p, root=args.root)
            _print_plan(p, dry_run=False, verbose=args.verbose)
    except InstallError as exc:
        print(f"inetd2systemd convert: {exc}", file=sys.stderr)
        status = EXIT_FAILED
        errors.append(report.error_json(Code.INSTALL_FAILED, str(exc)))
    if args.json:
        _write_json({"schema": report.SCHEMA, "plan": [s.as_json() for s in p.steps] if p else [],
                     "errors": errors, "exit_status": status})
    return status


def _print_plan(p, *, dry_run: bool, verbose: bool = True) -> None:
    """Every step of the plan (with --dry-run, or --verbose after the fact), and what the
    administrator should know in any case: files put aside, put back or left alone."""
    say = (lambda text: print(f"would {text}", file=sys.stderr)) if dry_run else \
        (lambda text: print(text, file=sys.stderr))
    if dry_run or verbose:
        for step in p.steps:
            say(str(step))
        for name in p.unchanged:
            say(f"leave {p.directory / name}: unchanged")
    for name in p.foreign:
        print(f"REFUSED {p.directory / name}: not written by inetd2systemd (--force replaces "
              "it, keeping a copy)", file=sys.stderr)
    for name, sources in p.claimed:
        print(f"REFUSED {p.directory / name}: installed from {', '.join(sources)} (--force "
              "takes it over)", file=sys.stderr)
    for name in p.kept:
        print(f"left {p.directory / name} alone: recorded as installed by inetd2systemd, but "
              "no longer a file it wrote", file=sys.stderr)
    if dry_run:
        return
    for name, copy in zip(p.forced, p.saved):
        print(f"replaced {p.directory / name} (not written by inetd2systemd): the old file is "
              f"kept as {p.directory / copy}", file=sys.stderr)
    for name, copy in p.restored:
        print(f"put back {p.directory / name} (the file it had replaced, from {copy}); it is "
              f"not started: 'systemctl enable --now {name}' if it ran before", file=sys.stderr)
