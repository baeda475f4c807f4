"""`inetd2systemd import ROOT --output-dir DIR`: a whole legacy host, converted in one go.

ROOT is a copy of the legacy host's root (ROOT/etc/...), its /etc itself, or `/`.
The output directory then holds:

    units/         the .socket/.service files (config.load -> units.writer.render)
    report.md      per service: source lines, units, access rules, warnings, what to check
    report.html    the same for a browser
    summary.json   the counts and per-service status, for scripts
    install.sh     stops the legacy superserver, installs and starts the sockets
    rollback.sh    puts back exactly what install.sh changed

and the last line printed on stdout is the summary line (`key=value` words).

Equivalence: `--check before` (on the legacy superserver) and `--check after` (on the
new sockets) send the same client transcript to every service, optionally from several
source addresses (`--source`), and the report shows them side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..commandline import add_force, epilog
from ..errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK
from . import report
from .output import write_file, write_output
from .plan import plan_migration
from .probe import load_probes, load_transcripts, record_transcripts

EPILOG = epilog(
    [("migrate this host, with client transcripts before and after the switch",
      "inetd2systemd import / -o /root/mig"),
     ("", "inetd2systemd import / -o /root/mig --check before --source 127.0.0.2"),
     ("", "sudo /root/mig/install.sh"),
     ("", "inetd2systemd import / -o /root/mig --check after --source 127.0.0.2"),
     ("and back, if anything answers differently", "sudo /root/mig/rollback.sh"),
     ("plan another host's migration from a copy of its /etc",
      "inetd2systemd import /srv/oldhost -o /tmp/oldhost --no-port-check")],
    {EXIT_OK: "the whole host was carried over exactly (--check: every service answers as "
              "before)",
     EXIT_INCOMPLETE: "written; a service approximated or not carried over, or a preflight "
                      "finding (--check: a service answers differently); read the report",
     EXIT_BAD_INPUT: "the host's files (file:line:col) or the command line; nothing written",
     EXIT_FAILED: "writing failed, or the output directory exists and is not empty "
                  "(--force replaces it)"})


def configure(parser: argparse.ArgumentParser) -> None:
    from ..config.inetd import FLAVORS  # the dialects the reader knows
    parser.description = __doc__.split("\n\n")[0]
    parser.epilog = EPILOG
    parser.add_argument("root", help="the legacy host's root (a copy of it, its /etc, or /)")
    parser.add_argument("-o", "--output-dir", required=True,
                        help="where the units, report and scripts go")
    add_force(parser, "an output directory that exists and is not empty")
    parser.add_argument("--prefix", default="", help="prefix for every unit name")
    parser.add_argument("--flavor", choices=FLAVORS,
                        help="inetd.conf dialect (default: from the host's /etc/default)")
    parser.add_argument("--include-disabled", action="store_true",
                        help="convert disabled services too (their sockets are not started)")
    parser.add_argument("--systemd-version", type=int, default=None,
                        help="target systemd version (default: this host's)")
    parser.add_argument("--target-root", default="/",
                        help="root of the host the units will run on (programs are looked "
                             "for there; default /)")
    parser.add_argument("--no-port-check", action="store_true",
                        help="skip the ports-in-use preflight (the target is another host)")
    parser.add_argument("--check", choices=("before", "after"),
                        help="record the client transcripts of every service into "
                             "OUTPUT_DIR/transcripts (before: against the legacy "
                             "superserver; after: the new sockets) and refresh the report")
    parser.add_argument("--source", action="append", default=None, metavar="ADDRESS",
                        help="client source address for --check (repeatable)")
    parser.add_argument("--probes", help="JSON: service id -> {send, read, wait} for --check")
    from ..convert.cli import add_hardening_arguments
    add_hardening_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..units.install import installed_systemd_version

    from ..convert.cli import suite_command

    try:
        command = suite_command(args)
    except ValueError as exc:
        print(f"inetd2systemd import: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    version = args.systemd_version or installed_systemd_version()
    migration = plan_migration(args.root, prefix=args.prefix, flavor=args.flavor,
                               include_disabled=args.include_disabled, systemd_version=version,
                               target_root=args.target_root, command=command,
                               harden=args.harden, dynamic_user=args.dynamic_user,
                               check_ports=not args.no_port_check and args.check is None)
    out = Path(args.output_dir)
    if args.check:
        if not (out / "units").is_dir():
            print(f"inetd2systemd import: {out} holds no import yet: run without --check first",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        records = record_transcripts(migration, args.source, load_probes(args.probes))
        (out / "transcripts").mkdir(exist_ok=True)
        write_file(out / "transcripts" / f"{args.check}.json", json.dumps(records, indent=2) + "\n")
        transcripts = load_transcripts(out)
        write_file(out / "report.md", report.markdown(migration, transcripts))
        write_file(out / "report.html", report.html(migration, transcripts))
        write_file(out / "summary.json",
                   json.dumps(report.summary_json(migration, transcripts), indent=2) + "\n")
        verdicts = report.equivalence_rows(migration, transcripts)
        differs = sum(1 for row in verdicts if row["verdict"].startswith("DIFFERS"))
        print(f"{report.SUMMARY_TAG} check={args.check} probes={len(records)} "
              f"compared={sum(1 for r in verdicts if r['verdict'] != 'missing')} differs={differs} "
              f"report={out / 'report.md'}")
        return EXIT_INCOMPLETE if differs else EXIT_OK
    try:
        write_output(migration, out, force=args.force, transcripts=None)
    except OSError as exc:  # the output directory exists (write_output's own), or a write failed
        message = str(exc) if exc.filename is None else f"cannot write {exc.filename}: {exc.strerror}"
        print(f"inetd2systemd import: {message}", file=sys.stderr)
        return EXIT_FAILED
    from ..report import text_lines
    every = [f for p in migration.plans for f in p.findings] + list(migration.findings) \
        + list(migration.preflight)
    for line in text_lines(every):
        print(line, file=sys.stderr)
    print(report.summary_line(migration, out))
    return migration.exit_status
