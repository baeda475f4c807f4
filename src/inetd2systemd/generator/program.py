"""`inetd2systemd-generator`: the program systemd runs from system-generators/.

    inetd2systemd-generator NORMAL-DIR [EARLY-DIR LATE-DIR]
    inetd2systemd-generator --dryrun

It does nothing unless generator mode is on: /etc/systemd/system-generators/NAME exists
and is not a mask (`inetd2systemd generator enable` links it there). A package ships the
program in /usr/lib/systemd/system-generators/, where systemd runs it at every boot and
reload once installed; a file of the same name in /etc overrides it (systemd.generator(7)),
so when it runs from /usr/lib, mode is off: it writes nothing, logs that at info level and
exits 0. Installing a package must never start serving anything.

When on, it reads /etc/inetd.conf and /etc/xinetd.conf (with its includes), writes the units
`inetd2systemd convert` would write into NORMAL-DIR (below /etc/systemd/system in
precedence, so a native unit of the same name wins) and links the enabled sockets into
NORMAL-DIR/sockets.target.wants/. It writes nowhere else, runs no systemctl, prints
nothing on stdout and logs to /dev/kmsg. It exits 0 whatever the files hold, after
writing every service that converts: a broken line, or a bug, must never stop a boot.

--dryrun prints the units to stdout instead (as quadlet's --dryrun does), on or off, and
the log, which says whether generator mode is on, to stderr.
INETD2SYSTEMD_GENERATOR_ROOT=DIR reads the host's files, and the link, under DIR (tests,
images).
"""

from __future__ import annotations

import os
import stat
import sys

NAME = "inetd2systemd-generator"
ROOT_VARIABLE = "INETD2SYSTEMD_GENERATOR_ROOT"
# The one switch, for a pip install and a package alike: systemd runs only this copy
# when it exists, as a same-named generator in /etc overrides one in /usr/lib.
LINK = f"/etc/systemd/system-generators/{NAME}"
OFF = "generator mode is off: inetd2systemd generator enable switches it on"
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
    root = os.environ.get(ROOT_VARIABLE) or "/"
    try:
        on = switched_on(root)
        if dryrun:
            log(5, "generator mode is on" if on else f"{OFF}; this dry run shows what it "
                                                     "would generate")
        elif not on:
            log(6, OFF)
            return 0
        run(argv[0] if not dryrun else None, root, log)
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


def under(root: str, path: str) -> str:
    """An absolute path of the host, under root."""
    return path if root in ("", "/") else os.path.join(root, path.lstrip("/"))


def switched_on(root: str) -> bool:
    """Generator mode is on when LINK (under root) exists and is not a mask: a link to
    /dev/null, or what systemd also takes for one (a character device, an empty file)."""
    link = under(root, LINK)
    try:
        if os.readlink(link) == "/dev/null":
            return False
    except FileNotFoundError:
        return False
    except OSError:  # not a link: a file of the administrator's
        pass
    try:
        found = os.stat(link)
    except OSError:
        return os.path.lexists(link)  # a dangling link: systemd runs it (and fails)
    return not (stat.S_ISCHR(found.st_mode) or (stat.S_ISREG(found.st_mode)
                                                and found.st_size == 0))


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
