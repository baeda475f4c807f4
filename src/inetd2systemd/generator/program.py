"""`inetd2systemd-generator`: the program systemd runs from system-generators/.

    inetd2systemd-generator NORMAL-DIR [EARLY-DIR LATE-DIR]
    inetd2systemd-generator --dryrun

It reads /etc/inetd.conf and /etc/xinetd.conf (with its includes), writes the units
`inetd2systemd convert` would write into NORMAL-DIR (below /etc/systemd/system in
precedence, so a native unit of the same name wins) and links the enabled sockets into
NORMAL-DIR/sockets.target.wants/. It writes nowhere else, runs no systemctl, prints
nothing on stdout and logs to /dev/kmsg. It exits 0 whatever the files hold, after
writing every service that converts: a broken line, or a bug, must never stop a boot.

--dryrun prints the units to stdout instead (as quadlet's --dryrun does) and the log to
stderr. INETD2SYSTEMD_GENERATOR_ROOT=DIR reads the host's files under DIR (tests,
images).
"""

from __future__ import annotations

import os
import sys

NAME = "inetd2systemd-generator"
ROOT_VARIABLE = "INETD2SYSTEMD_GENERATOR_ROOT"
USAGE = f"usage: {NAME} NORMAL-DIR [EARLY-DIR LATE-DIR] | {NAME} --dryrun\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        sys.stdout.write(USAGE + (__doc__ or "").split("\n\n", 2)[2])
        return 0
    dryrun = argv[:1] == ["--dryrun"]
    if not dryrun and len(argv) not in (1, 3):
        sys.stderr.write(USAGE)
        return 2  # systemd always passes one or three directories
    from .kmsg import Log, max_level, to_console

    log = Log(NAME, max_level(), stream=sys.stderr if dryrun or to_console() else None)
    try:
        run(argv[0] if not dryrun else None, os.environ.get(ROOT_VARIABLE) or "/", log)
    except BaseException as exc:  # noqa: BLE001 - a generator must not fail a boot
        if isinstance(exc, KeyboardInterrupt):
            raise
        try:
            from .generate import describe
            text = describe(exc)
        except Exception:  # noqa: BLE001
            text = repr(exc)
        log(3, f"internal error, the units written so far stay: {text}; please report it")
    finally:
        log.close()
    return 0


def run(directory: str | None, root: str, log) -> None:
    from .generate import generate, write

    generation = generate(root)
    if directory is None:
        sys.stdout.write("".join(f"# ==> {unit.name} <==\n{unit.text.rstrip(chr(10))}\n\n"
                                 for unit in generation.units))
        sys.stdout.flush()
        problems: tuple[str, ...] = ()
    else:
        problems = write(generation, directory).problems
    log.write_all(records(generation, problems),
                  more=": 'inetd2systemd generator status' lists them all")


def records(generation, problems=()) -> list[tuple[int, str]]:
    """What to log, most important first: a summary, the generator's decisions, then
    the findings by severity."""
    from ..model import Severity

    findings = sorted(generation.findings, key=lambda f: f.source)
    by = {s: [f for f in findings if f.severity is s] for s in Severity}
    errors, warnings = len(by[Severity.ERROR]) + len(problems), len(by[Severity.WARNING])
    read = [f.path for f in generation.files if f.state == "read"]
    out: list[tuple[int, str]] = []
    if read or generation.notices:
        services = len({u.service_id for u in generation.units if u.service_id})
        out.append((5, f"{', '.join(read) or 'no file read'}: {services} services, "
                       f"{len(generation.units)} units; {errors} errors, {warnings} warnings"
                       + ("; 'inetd2systemd generator status' lists them"
                          if errors or warnings else "")))
    out += [(5, text) for text in generation.notices]
    out += [(3, text) for text in problems]
    for level, severity in ((3, Severity.ERROR), (4, Severity.WARNING), (6, Severity.INFO)):
        for f in by[severity]:
            who = f" [{f.service}]" if f.service else ""
            out.append((level, f"{f.source}:{who} {f.message}"))
    return out


if __name__ == "__main__":
    sys.exit(main())
