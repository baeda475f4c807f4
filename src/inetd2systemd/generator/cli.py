"""`inetd2systemd generator enable|disable|status`: switch generator mode on and off,
and say what it makes of the host's files."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

from ..commandline import add_json, add_root, add_verbose, epilog
from ..errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK
from .program import LINK, NAME, switched_on, under

# Where a distribution package puts it (systemd.generator(7)'s directories below /etc).
PACKAGED = tuple(f"{d}/{NAME}" for d in ("/usr/local/lib/systemd/system-generators",
                                         "/usr/lib/systemd/system-generators",
                                         "/lib/systemd/system-generators"))
GENERATOR_DIR = "/run/systemd/generator"  # the normal directory systemd gives generators

EPILOG = epilog(
    [("link it, daemon-reload, start the sockets", "inetd2systemd generator enable --now"),
     ("what it makes of the files", "inetd2systemd generator status"),
     ("after editing them, bring the running sockets in line", "inetd2systemd generator reload"),
     ("stop the sockets, unlink it, daemon-reload", "inetd2systemd generator disable --now")],
    {EXIT_OK: "for status, every service converts exactly",
     EXIT_INCOMPLETE: "status found a warning or an error (the list says which), as "
                      "'inetd2systemd convert' does",
     EXIT_BAD_INPUT: "a bad command line",
     EXIT_FAILED: "linking, unlinking or reloading systemd failed, or a file at the link's "
                  "path is not inetd2systemd's"},
    f"""\
Generator mode is off until enable switches it on, after a pip install and a package
install alike: the generator makes units only while {LINK}
exists and is not a mask (a package's copy in /usr/lib/systemd/system-generators/, run
without it, writes nothing).
enable makes that link (to the packaged program, or else to the {NAME} console script
installed with this inetd2systemd) and reloads systemd, which runs it at once and at
every boot and daemon-reload.
disable removes that link; the units vanish at the next daemon-reload (--now stops them
first). Neither touches a file at that path that inetd2systemd did not make.
reload, after editing the files: daemon-reload, then restart the changed sockets, start
the new ones and stop the ones no longer generated.
""")


RELOAD_HELP = """\
What a configuration management run calls after writing inetd.conf or xinetd.d: runs
'systemctl daemon-reload' (systemd runs the generator), then brings the running units
in line with what it wrote. A reload alone changes unit definitions, not the sockets
already listening, so:
  a socket whose unit changed (a port, an address) is restarted (its service first
  stopped when it holds the listening socket, Accept=no: systemd refuses to start a
  socket whose service still runs);
  a socket newly linked into sockets.target.wants/ is started;
  a unit no longer generated (its line removed or disabled) is stopped, with its service.
A changed service whose socket did not change takes effect at its next start.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION",
                                    help="what to do (each has its own --help)")
    for name, help_ in (("enable", "switch generator mode on: make units from the files at "
                                   "every boot and daemon-reload"),
                        ("disable", "switch generator mode off: no more units from the files")):
        action = actions.add_parser(name, help=help_, description=help_)
        action.add_argument("--now", action="store_true",
                            help="enable: start the generated sockets; disable: stop them "
                                 "and their services first")
        action.add_argument("--no-reload", action="store_true",
                            help="do not run 'systemctl daemon-reload'")
        add_root(action, "the tree whose link to change")
    reload = actions.add_parser(
        "reload", help="after editing the files: daemon-reload, then restart the changed "
                       "sockets, start the new ones, stop the ones no longer generated",
        description=RELOAD_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    status = actions.add_parser("status", help="the services it generates, their units and "
                                               "findings")
    add_root(status, "read the host's files there")
    add_json(status, "the services, their units and every finding")
    add_verbose(status, "informational findings too")


def run(args: argparse.Namespace) -> int:
    return {"enable": enable, "disable": disable, "reload": reload,
            "status": status}[args.action](args)


# -- the link --------------------------------------------------------------------------

def packaged(root: str) -> str | None:
    return next((p for p in PACKAGED if os.path.lexists(under(root, p))), None)


def link_state(root: str) -> tuple[str, str | None]:
    """("ours" | "mask" | "foreign" | "absent", the link's target)."""
    link = under(root, LINK)
    try:
        target = os.readlink(link)
    except FileNotFoundError:
        return "absent", None
    except OSError:
        return ("foreign", None) if os.path.lexists(link) else ("absent", None)
    if target == "/dev/null":
        return "mask", target
    if os.path.basename(target) == NAME:
        return "ours", target
    return "foreign", target


def installed_program() -> str | None:
    """The `inetd2systemd-generator` console script installed with this package."""
    candidates = [os.path.join(os.path.dirname(sys.executable), NAME),
                  os.path.join(os.path.dirname(os.path.abspath(sys.argv[0] or ".")), NAME)]
    found = shutil.which(NAME)
    if found:
        candidates.append(found)
    return next((os.path.abspath(c) for c in candidates
                 if os.path.isfile(c) and os.access(c, os.X_OK)), None)


def _say(text: str) -> None:
    print(f"inetd2systemd generator: {text}", file=sys.stderr)


def _replace_link(link: str, target: str) -> None:
    os.makedirs(os.path.dirname(link), mode=0o755, exist_ok=True)
    temporary = f"{link}.inetd2systemd-new"
    if os.path.lexists(temporary):
        os.unlink(temporary)
    os.symlink(target, temporary)
    os.replace(temporary, link)


def enable(args: argparse.Namespace) -> int:
    root = args.root
    link = under(root, LINK)
    state, target = link_state(root)
    if state == "foreign":
        _say(f"{link} is not a link inetd2systemd made ({target or 'a file'}): left alone, "
             "nothing enabled")
        return EXIT_FAILED
    # A packaged copy first: it is on /usr, where systemd finds it at boot.
    program = packaged(root) or installed_program()
    if program is None:
        _say(f"{NAME} is not installed next to this inetd2systemd: nothing enabled")
        return EXIT_FAILED
    try:
        if state == "ours" and target == program:
            _say(f"already on: {link} -> {program}")
        else:
            _replace_link(link, program)
            _say(f"generator mode on: {link} -> {program}"
                 + (" (was a mask)" if state == "mask" else ""))
    except OSError as exc:
        _say(f"{link}: {exc.strerror or exc}")
        return EXIT_FAILED
    _warn_late_mount(program)
    _warn_owned(root)
    return _apply(args, start=True)


def disable(args: argparse.Namespace) -> int:
    root = args.root
    link = under(root, LINK)
    state, target = link_state(root)
    if state == "foreign":
        _say(f"{link} is not a link inetd2systemd made ({target or 'a file'}): left alone")
        return EXIT_FAILED
    if args.now and _live(args):
        _stop_generated()
    try:
        if state == "ours":
            os.unlink(link)
            _say(f"generator mode off: removed {link}")
        else:  # absent, or masked: off either way
            _say("generator mode is already off: nothing to do")
    except OSError as exc:
        _say(f"{link}: {exc.strerror or exc}")
        return EXIT_FAILED
    return _apply(args, start=False)


def _warn_late_mount(program: str) -> None:
    """Generators run before /var, /home or /opt are mounted: a program (or the Python
    it runs with) on such a file system cannot run at boot."""
    try:
        early = {os.stat("/").st_dev, os.stat("/usr").st_dev}
        paths = {program, os.path.realpath(sys.executable)}
        late = [p for p in sorted(paths) if os.stat(p).st_dev not in early]
    except OSError:
        return
    for path in late:
        _say(f"warning: {path} is on a file system other than / and /usr: at boot, "
             "generators run before such file systems are mounted")


def _warn_owned(root: str) -> None:
    from .generate import CONFIG_FILES
    from .legacy import owner

    for path in CONFIG_FILES:
        found = owner(root, path)
        if found and os.path.lexists(under(root, path)):
            _say(f"{found.unit} is enabled ({found.evidence}): {path} stays its own and "
                 f"nothing is generated from it; 'systemctl disable --now {found.unit}' and "
                 "'systemctl daemon-reload' hand it over")


def _live(args: argparse.Namespace) -> bool:
    from ..units.install import systemd_running

    return os.path.realpath(args.root) == "/" and systemd_running()


def _apply(args: argparse.Namespace, *, start: bool) -> int:
    """daemon-reload (and with --now start the enabled sockets) on the running system."""
    if args.no_reload or not _live(args):
        if os.path.realpath(args.root) == "/" and not args.no_reload:
            _say("systemd is not running here: the generator runs at the next boot")
        return EXIT_OK
    from ..units.install import InstallError, systemctl

    try:
        systemctl("daemon-reload")
        if start and args.now:
            sockets = _generated(wanted=True)
            if sockets:
                systemctl("start", *sockets)
                _say(f"started {' '.join(sockets)}")
    except InstallError as exc:
        _say(str(exc))
        return EXIT_FAILED
    return EXIT_OK


def reload(args: argparse.Namespace) -> int:
    from ..units.install import InstallError, systemctl, systemd_running

    if not systemd_running():
        _say("systemd is not running here: nothing to reload")
        return EXIT_FAILED
    if not _enablement("/")["enabled"]:
        _say("generator mode is off ('inetd2systemd generator enable' switches it on)")
        return EXIT_FAILED
    before = _snapshot()
    try:
        systemctl("daemon-reload")
    except InstallError as exc:
        _say(str(exc))
        return EXIT_FAILED
    after = _snapshot()
    wanted = _generated(wanted=True)
    changed = sorted(n for n in after if n.endswith(".socket") and n in before
                     and before[n] != after[n])
    gone = sorted(n for n in before if n not in after and n.endswith((".socket", ".service")))
    holding = [f"{n[:-len('.socket')]}.service" for n in changed
               if f"{n[:-len('.socket')]}.service" in after]
    steps = [("stop", [n.replace("@.service", "@*.service") for n in gone]),
             ("stop", holding), ("restart", changed),
             ("start", [n for n in wanted if n not in changed])]
    status = EXIT_OK
    for verb, units in steps:
        if not units:
            continue
        try:
            systemctl(verb, *units)
        except InstallError as exc:
            _say(str(exc))
            status = EXIT_FAILED
    new = [n for n in wanted if n not in before]
    for label, names in (("stopped (no longer generated)", gone), ("restarted", changed),
                         ("started", new)):
        if names:
            _say(f"{label}: {' '.join(names)}")
    later = sorted(n for n in after if n.endswith(".service") and n in before
                   and before[n] != after[n] and n not in holding)
    if later:
        _say(f"changed, in effect at their next start: {' '.join(later)}")
    return status


def _snapshot() -> dict[str, str]:
    """name -> text of every unit this generator wrote into the generator directory."""
    from pathlib import Path

    texts = {}
    for name in _generated(wanted=False):
        try:
            texts[name] = (Path(GENERATOR_DIR) / name).read_text("utf-8", "surrogateescape")
        except OSError:
            continue
    return texts


def _generated(*, wanted: bool) -> list[str]:
    """Units in the generator directory that this generator wrote (or, wanted=True, the
    sockets it linked into sockets.target.wants/)."""
    from ..units.install import is_ours
    from pathlib import Path

    from .generate import WANTS

    directory = Path(GENERATOR_DIR) / (WANTS if wanted else "")
    try:
        names = sorted(p.name for p in directory.iterdir())
    except OSError:
        return []
    return [n for n in names if not n.endswith(".d")
            and is_ours(Path(GENERATOR_DIR) / n)]


def _stop_generated() -> None:
    from ..units.install import InstallError, systemctl

    units = [n.replace("@.service", "@*.service") for n in _generated(wanted=False)
             if n.endswith((".socket", ".service"))]
    if units:
        try:
            systemctl("stop", *units)
            _say(f"stopped {len(units)} generated units")
        except InstallError as exc:
            _say(str(exc))


# -- status ------------------------------------------------------------------------------

def status(args: argparse.Namespace) -> int:
    from .. import report
    from .generate import generate

    generation = generate(args.root)
    conversion = generation.conversion
    enablement = _enablement(args.root)
    live = _live_states(generation) \
        if os.path.realpath(args.root) == "/" and enablement["enabled"] else {}
    if args.json:
        from ..convert.pipeline import as_json

        data = as_json(conversion.configuration, generation.units, conversion.findings,
                       conversion.status)
        data["generator"] = enablement
        data["files"] = [{"path": f.path, "state": f.state, "reason": f.reason or None}
                         for f in generation.files]
        data["wanted"] = list(generation.wanted)
        data["shadowed"] = [{"unit": u, "by": p} for u, p in generation.shadowed]
        data["loaded"] = live
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return conversion.status
    out = [f"generator mode: {enablement['text']}"]
    for f in generation.files:
        out.append(f"{f.path}: {f.state}" + (f": {f.reason}" if f.reason else ""))
    by_service: dict[str, list[str]] = {}
    wanted = set(generation.wanted)
    for unit in generation.units:
        label = unit.name + (" (enabled)" if unit.name in wanted else "")
        if live.get(unit.name, "current") != "current":
            label += f" [{live[unit.name]}]"
        by_service.setdefault(unit.service_id, []).append(label)
    services = conversion.configuration.services
    if services:
        out.append("")
        out.append("services:")
        width = max(len(s.id) for s in services)
        for s in services:
            units = by_service.get(s.id)
            out.append(f"  {s.id:<{width}}  {s.source}  "
                       + (", ".join(units) if units else "no units (see the findings)"))
    for text in generation.notices:
        out.append(text)
    removed = sorted(n for n, state in live.items() if state == "removed")
    if removed:
        out.append(f"no longer generated, still loaded until stopped: {', '.join(removed)}")
    if any(state != "current" for state in live.values()):
        out.append("the files changed since systemd last ran the generator: "
                   "'inetd2systemd generator reload' makes it so")
    lines = report.text_lines(conversion.findings, verbose=args.verbose)
    if lines:
        out += ["", "findings:"] + [f"  {line}" for line in lines]
    out.append(report.summary(services, len(generation.units), conversion.findings))
    print("\n".join(out))
    return conversion.status


def _enablement(root: str) -> dict:
    """Whether generator mode is on (program.switched_on, the generator's own test), and
    the link that says so. enabled: None when a file inetd2systemd did not make is there
    (systemd runs that, not this generator)."""
    state, target = link_state(root)
    link = under(root, LINK)
    on = switched_on(root)
    if state == "ours":
        text, enabled = f"on ({link} -> {target})", on
    elif state == "foreign":
        text, enabled = (f"unknown: {link} is not inetd2systemd's ({target or 'a file'}); "
                         f"systemd runs it instead of {NAME}"), None
    elif state == "mask":
        text, enabled = (f"off (masked: {link} -> /dev/null; 'inetd2systemd generator "
                         "enable' switches it on)"), False
    else:
        text, enabled = "off ('inetd2systemd generator enable' switches it on)", False
    return {"enabled": enabled, "link": link, "target": target, "packaged": packaged(root),
            "text": text}


def _live_states(generation) -> dict[str, str]:
    """unit -> "current" | "changed" | "new" | "removed": what systemd has from the
    generator's last run, against what the files say now."""
    from pathlib import Path

    from ..units.install import is_ours

    directory = Path(GENERATOR_DIR)
    if not directory.is_dir():
        return {}
    states: dict[str, str] = {}
    for unit in generation.units:
        try:
            states[unit.name] = ("current" if (directory / unit.name).read_text("utf-8")
                                 == unit.text else "changed")
        except FileNotFoundError:
            states[unit.name] = "new"
        except (OSError, UnicodeDecodeError):
            states[unit.name] = "changed"
    for path in directory.iterdir():
        if path.name not in states and path.is_file() and is_ours(path):
            states[path.name] = "removed"
    return states
