"""The project's distributions, built once per test process and shared by the tests
that look at them: the sdist, the wheel built from it, and the Debian package built
from the unpacked sdist (as a packager would).

The sdist and the wheel are built by Debian 12's own setuptools (66, python3-setuptools)
through the PEP 517 hooks: the oldest setuptools the project must build with (it
predates PEP 639), and no network, unlike an isolated `python -m build`.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEBIAN_PYTHON = "/usr/bin/python3"
# Debian's build tools look programs up in PATH: keep pyenv's or a venv's python out.
DEBIAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@functools.cache
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="i2s-dist-"))
    atexit.register(shutil.rmtree, path, True)
    return path


def _pep517(hook: str, source: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    code = ("import sys; from setuptools import build_meta as b; "
            f"print(b.{hook}(sys.argv[1]))")
    proc = subprocess.run([DEBIAN_PYTHON, "-c", code, str(out)], cwd=source, text=True,
                          capture_output=True, env=dict(os.environ, PATH=DEBIAN_PATH))
    if proc.returncode != 0:
        raise RuntimeError(f"{hook} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return out / proc.stdout.strip().splitlines()[-1]


@functools.cache
def sdist() -> Path:
    return _pep517("build_sdist", ROOT, workdir() / "dist")


@functools.cache
def unpacked_sdist() -> Path:
    """The sdist unpacked, as pip, build and a Debian packager start from it."""
    target = workdir() / "unpacked"
    with tarfile.open(sdist()) as tar:
        # filter= (PEP 706) came with 3.11.4; Debian 12's python3 is 3.11.2
        tar.extractall(target, **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))
    (tree,) = target.iterdir()
    return tree


@functools.cache
def wheel() -> Path:
    return _pep517("build_wheel", unpacked_sdist(), workdir() / "dist")


@functools.cache
def debian_package() -> tuple[Path, Path]:
    """`dpkg-buildpackage -us -uc -b` in a copy of the unpacked sdist: (the .deb, the
    .changes). The results land beside the tree, as dpkg-buildpackage puts them."""
    build = workdir() / "deb"
    tree = build / unpacked_sdist().name
    shutil.copytree(unpacked_sdist(), tree, symlinks=True)
    log = build / "build.log"
    with log.open("w") as out:
        proc = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=tree,
                              stdout=out, stderr=subprocess.STDOUT,
                              env=dict(os.environ, PATH=DEBIAN_PATH))
    if proc.returncode != 0:
        raise RuntimeError(f"dpkg-buildpackage failed:\n{log.read_text()[-4000:]}")
    (deb,) = build.glob("inetd2systemd_*_all.deb")
    (changes,) = build.glob("inetd2systemd_*.changes")
    return deb, changes
