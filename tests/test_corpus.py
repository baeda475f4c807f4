"""Real files, read as the real daemons read them (#13).

tests/data/corpus holds inetd.conf files and lines and xinetd files that other people
wrote and ran: public projects and Debian 12 packages, each with its origin in
SOURCES.tsv (whose last column says which reader and dialect the file was written for).
Every file is converted; the only errors allowed are those where the daemon itself could
not serve the line either (a service name its host's /etc/services has and ours lacks)
or where systemd has no counterpart (RPC, TCPMUX): never a refusal of something the
daemon runs. Where the daemon is installed here, its own reading (`-d`) is compared with
ours. Every unit written is checked with `systemd-analyze verify`, all in one call, in a
private mount namespace where the programs the units name exist (most are other hosts'
paths): what is verified is the units, not this machine's contents.

FreeBSD and NetBSD have no daemon here: their files are held to the grammar taken from
their inetd sources (see test_inetd_parser.py), and to converting without refusal.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

import inetd_support
from support import DATA

from inetd2systemd.config.inetd import read_inetd
from inetd2systemd.config.services import load_services
from inetd2systemd.convert.pipeline import Conversion, convert
from inetd2systemd.errors import ConfigError
from inetd2systemd.model import Severity
from inetd2systemd.units.writer import WriterOptions

CORPUS = DATA / "corpus"


@dataclass(frozen=True)
class Source:
    file: str  # relative to CORPUS
    origin: str  # "github" or "debian"
    where: str  # repository or package
    path: str  # path there
    version: str  # commit or package version
    reader: str  # "xinetd" or "inetd:FLAVOUR"

    @property
    def flavor(self) -> str:
        return self.reader.partition(":")[2] or "openbsd"

    @property
    def format(self) -> str:
        return self.reader.partition(":")[0]


def sources() -> list[Source]:
    rows = []
    for line in (CORPUS / "SOURCES.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            rows.append(Source(*line.split("\t")))
    return rows


SOURCES = sources()
INETD = [s for s in SOURCES if s.format == "inetd"]

# The errors a conversion may report for a real file: the daemon could not serve the line
# either (NoAddress: it reads it, then finds no port or address to listen on), or
# systemd has no counterpart for what the line asks (the reader says why).
NOT_SERVED_BY_THE_DAEMON = re.compile(r"reads this line but cannot listen for it$")
NO_SYSTEMD_COUNTERPART = re.compile(r"^(RPC service|TCPMUX service|internal tcpmux)")


def test_the_corpus_is_real_and_every_file_has_its_origin():
    on_disk = sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*")
                     if p.is_file() and p.name not in ("SOURCES.tsv", "README.md"))
    assert on_disk == sorted(s.file for s in SOURCES)
    assert len(SOURCES) >= 100
    assert len(INETD) >= 40 and len(SOURCES) - len(INETD) >= 40
    for s in SOURCES:
        assert s.origin in ("github", "debian") and s.where and s.path and s.version, s
        if s.origin == "github":
            assert re.fullmatch(r"[0-9a-f]{40}", s.version), s  # a commit, not a branch
    assert {s.flavor for s in INETD} >= {"openbsd", "inetutils", "freebsd", "netbsd", "busybox"}


@pytest.fixture(scope="module")
def inetd_conversions() -> dict[str, Conversion]:
    services = load_services()  # the same table openbsd-inetd reads through getservbyname()
    return {s.file: convert([CORPUS / s.file],
                            WriterOptions(prefix=f"c{index:03d}-", systemd_version=252),
                            format="inetd", flavor=s.flavor, services=services,
                            host_root=None)  # other hosts' files: their programs are not here
            for index, s in enumerate(INETD)}


def test_every_inetd_file_converts_with_no_refusal_the_daemon_would_not_make(
        inetd_conversions):
    refused = []
    converted = 0
    for name, conversion in inetd_conversions.items():
        converted += len(conversion.configuration.services)
        for f in conversion.findings:
            if f.severity is Severity.ERROR and not (
                    NOT_SERVED_BY_THE_DAEMON.search(f.message)
                    or NO_SYSTEMD_COUNTERPART.match(f.message)):
                refused.append(f"{f}")
    assert refused == []
    assert converted >= 120  # the files really were read


def files_for(flavor: str) -> list[Source]:
    """The corpus files written for `flavor`."""
    files = [s for s in INETD if s.flavor == flavor]
    assert files
    return files


def test_openbsd_inetd_reads_the_corpus_as_we_do(openbsd_inetd):
    files = files_for("openbsd")
    services = load_services()
    readings = inetd_support.openbsd_readings(openbsd_inetd, (CORPUS / s.file for s in files))
    differ = {}
    for s, theirs in zip(files, readings):
        ours = inetd_support.our_openbsd_rows(read_inetd(CORPUS / s.file, services=services))
        theirs = _servable(theirs, services)
        if ours != theirs:
            differ[s.file] = (ours, theirs)
    assert differ == {}
    assert sum(len(r) for r in readings) >= 100


def _servable(rows: list[tuple], services) -> list[tuple]:
    """openbsd-inetd's ADD lines, less what it reads but cannot listen for: a name not in
    /etc/services (tcpmux/NAME included: it has no TCPMUX), and the tcp6 line of a
    tcp + tcp6 pair, whose socket the tcp line's IPv6 half already holds."""
    dual = {(name, host, proto) for name, host, proto, family, *_ in rows if family == "dual"}
    kept = []
    for row in rows:
        name, host, proto, family = row[:4]
        if family == "ipv6" and host is None and (name, host, proto) in dual:
            continue
        if family != "unix" and not name.isdigit() and services.port(name, proto) is None:
            continue
        kept.append(row)
    return kept


def test_inetutils_inetd_reads_its_corpus_files_as_we_do(inetutils_inetd):
    files = files_for("inetutils")
    services = load_services()
    readings = inetd_support.inetutils_readings(inetutils_inetd, (CORPUS / s.file for s in files))
    for s, theirs in zip(files, readings):
        ours = read_inetd(CORPUS / s.file, flavor="inetutils", services=services)
        assert inetd_support.our_inetutils_rows(ours) == inetd_support.their_inetutils_rows(theirs)


def test_every_unit_written_for_the_inetd_corpus_passes_systemd_analyze_verify(
        inetd_conversions, tmp_path):
    assert_verify_clean(inetd_conversions.values(), tmp_path / "units", at_least=200)


def assert_verify_clean(conversions: Iterable[Conversion | ConfigError], units: Path,
                        at_least: int) -> None:
    """All the units of `conversions` in one directory pass one systemd-analyze verify."""
    units.mkdir()
    for conversion in conversions:
        if not isinstance(conversion, ConfigError):
            for unit in conversion.units:
                (units / unit.name).write_text(unit.text)
    assert len(list(units.iterdir())) >= at_least
    result = verify_all(units)
    assert result.returncode == 0, result.stderr[-5000:]
    assert verify_complaints(result) == []


def verify_complaints(result: subprocess.CompletedProcess) -> list[str]:
    """What verify says about the units, less its remark on `User=nobody`: the files
    run those servers as nobody, and the units say so rather than change who runs them."""
    return [line for line in result.stderr.splitlines()
            if not line.endswith("Special user nobody configured, this is not safe!")]


# -- systemd-analyze verify, where the units' programs exist ---------------------------------

def verify_all(units: Path) -> subprocess.CompletedProcess:
    """One `systemd-analyze verify` over every unit in `units`. verify refuses an
    ExecStart= whose program is missing, and the corpus names other hosts' programs
    (/usr/libexec/ftpd, /etc/telnetd): they exist for the time of the call (see
    `in_overlay`), so the units themselves are what is checked."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (scripts/setup.sh installs systemd)")
    programs = {program for path in units.iterdir()
                for program in _exec_programs(path.read_text())}
    return in_overlay(f'systemd-analyze verify --man=no "{units}"/*', programs)


def in_overlay(command: str, programs: Iterable[str] = (), users: Iterable[str] = (),
               groups: Iterable[str] = (), network: bool = True) -> subprocess.CompletedProcess:
    """Run a shell command as on this machine, but in a private mount namespace where /
    is an overlay in which every program of `programs` that is missing here exists (an
    empty script) and every user and group of `users`/`groups` has an entry: other
    hosts' files name their own programs and accounts, and what a test checks is how
    they are read, not what this machine holds. network=False adds a network namespace
    of its own (for a daemon that binds). Needs root; skips the test without it."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a private overlay of /")
    missing = sorted(p for p in programs if p.startswith("/") and not os.access(p, os.X_OK))
    users = sorted(u for u in users if not _known("passwd", u))
    groups = sorted(g for g in groups if not _known("group", g))
    script = textwrap.dedent("""\
        set -e
        top=$(mktemp -d)
        mount -t tmpfs tmpfs "$top"
        mkdir "$top/upper" "$top/work" "$top/root"
        mount -t overlay overlay -o "lowerdir=/,upperdir=$top/upper,workdir=$top/work" "$top/root"
        for d in proc sys dev run tmp; do mount --rbind "/$d" "$top/root/$d"; done
        for program in $PROGRAMS; do
            mkdir -p "$top/root${program%/*}"
            printf '#!/bin/sh\\n' > "$top/root$program"
            chmod 755 "$top/root$program"
        done
        n=60000
        for user in $USERS; do n=$((n+1)); echo "$user:x:$n:$n::/:/bin/false" >> "$top/root/etc/passwd"; done
        for group in $GROUPS; do n=$((n+1)); echo "$group:x:$n:" >> "$top/root/etc/group"; done
        exec chroot "$top/root" sh -c "$COMMAND"
        """)
    env = {**os.environ, "PROGRAMS": " ".join(missing), "USERS": " ".join(users),
           "GROUPS": " ".join(groups), "COMMAND": command}
    namespaces = ["-m"] + ([] if network else ["-n"])
    return subprocess.run(["unshare", *namespaces, "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=600, env=env)


def _known(database: str, name: str) -> bool:
    import grp
    import pwd
    try:
        (pwd.getpwnam if database == "passwd" else grp.getgrnam)(name)
    except KeyError:
        return name.isdigit()
    return True


def _exec_programs(text: str) -> list[str]:
    programs = []
    for line in text.splitlines():
        if line.startswith(("ExecStart=", "ExecStartPre=", "ExecStartPost=", "ExecStop=")):
            command = line.split("=", 1)[1].lstrip("-@:+!")
            if command.startswith("/"):
                programs.append(command.split()[0])
            elif command[:1].isalnum():  # a bare name (the suite's own): systemd looks it
                programs.append(f"/usr/local/sbin/{command.split()[0]}")  # up from here
    return programs


# -- xinetd ------------------------------------------------------------------------------------

XINETD = [s for s in SOURCES if s.format == "xinetd"]


def convert_xinetd(paths: list[Path]) -> list[Conversion | ConfigError]:
    services = load_services()
    conversions: list[Conversion | ConfigError] = []
    for index, path in enumerate(paths):
        try:
            conversions.append(convert(
                [path], WriterOptions(prefix=f"x{index:03d}-", systemd_version=252),
                format="xinetd", services=services, host_root=None))
        except ConfigError as exc:  # a refusal of the whole file: the tests report it
            conversions.append(exc)
    return conversions


@pytest.fixture(scope="module")
def xinetd_conversions() -> list[Conversion | ConfigError]:
    return convert_xinetd([CORPUS / s.file for s in XINETD])


def test_every_unit_written_for_the_xinetd_corpus_passes_systemd_analyze_verify(
        xinetd_conversions, tmp_path):
    assert_verify_clean(xinetd_conversions, tmp_path / "units", at_least=40)


@pytest.mark.parametrize("enabled", [False, True], ids=["as-written", "all-enabled"])
def test_xinetd_reads_the_corpus_as_we_do(xinetd, tmp_path, enabled):
    """Every corpus file through the packaged xinetd (-d, in a private overlay where the
    files' programs and accounts exist and a network namespace of its own): the services
    it starts are the services we convert, and no file is refused. Most packaged files
    ship their services disabled, and xinetd starts (so says something about) only
    enabled ones: the files are also given to both readers with every `disable = yes`
    turned to no, so that every entry of the corpus is compared."""
    from inetd2systemd.config.xinetd import read_xinetd
    from xinetd_oracle import read_verdict
    services = load_services()
    paths = [CORPUS / s.file for s in XINETD]
    if enabled:
        paths = enabled_copies(paths, tmp_path / "enabled")
    ours = [read_xinetd(path, services=services) for path in paths]  # no ConfigError
    texts = "\n".join(path.read_text(errors="replace") for path in paths)

    def values(attr: str) -> set[str]:
        return set(re.findall(rf"^\s*{attr}\s*=\s*(\S+)", texts, re.M | re.I))

    script = textwrap.dedent(f"""\
        ip link set lo up
        i=0
        for f in {' '.join(f"'{p}'" for p in paths)}; do
            log={tmp_path}/$i.log pid={tmp_path}/$i.pid
            script -qfec "{xinetd} -d -dontfork -f '$f' -pidfile $pid" "$log" >/dev/null 2>&1 &
            n=0
            until grep -qE "Started working|will exit" "$log" 2>/dev/null || [ $n -ge 200 ]; do
                sleep 0.05; n=$((n+1))
            done
            [ -s "$pid" ] && kill "$(cat "$pid")" 2>/dev/null
            wait
            i=$((i+1))
        done
        """)
    result = in_overlay(script, values("server"), values("user"), values("group"),
                        network=False)
    assert result.returncode == 0, result.stderr
    differ = {}
    for index, (path, config) in enumerate(zip(paths, ours)):
        theirs = read_verdict((tmp_path / f"{index}.log").read_text(errors="replace"))
        assert "Started working" in theirs.output, theirs.output
        # RPC and TCPMUX services listen where systemd has no counterpart (a portmapper,
        # port 1's dispatcher): reported as such, and xinetd runs RPC only with a
        # portmapper. A bind to an address this namespace lacks fails here, not in the file.
        nowhere = {s.id for s in config.services if not s.listens}
        mine = {s.id for s in config.services
                if s.listens and s.listens[0].host in (None, "127.0.0.1", "::1")}
        if mine != theirs.started - nowhere:
            differ[str(path)] = (sorted(mine), sorted(theirs.started))
    assert differ == {}
    assert sum(len(c.services) for c in ours) >= (80 if enabled else 40)


def enabled_copies(paths: list[Path], directory: Path) -> list[Path]:
    """A copy of each file with `disable = yes` turned to no (any case, as xinetd reads
    attribute names and values), in `directory`, names kept apart by a number."""
    directory.mkdir()
    copies = []
    for index, path in enumerate(paths):
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        copy = directory / f"{index:03d}-{path.name}"
        copy.write_text(re.sub(r"(?im)^(\s*disable\s*=\s*)yes\b", r"\1no", text),
                        encoding="utf-8", errors="surrogateescape")
        copies.append(copy)
    return copies
