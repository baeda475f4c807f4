"""The Python distributions as a publisher and a pip user meet them: metadata that says
what the project is and under which licence, a wheel that installs the commands with the
units, man pages and completion, and an sdist whose tests load."""

from __future__ import annotations

import email.parser
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import packaging_support as dists

ROOT = dists.ROOT


def _metadata():
    with zipfile.ZipFile(dists.wheel()) as whl:
        name = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(whl.read(name).decode())


def test_the_metadata_names_the_licence_authors_and_what_the_project_is():
    meta = _metadata()
    assert meta["License"] == "MIT"
    classifiers = meta.get_all("Classifier")
    assert "License :: OSI Approved :: MIT License" in classifiers
    assert "Intended Audience :: System Administrators" in classifiers
    assert "Operating System :: POSIX :: Linux" in classifiers
    assert meta["Author"]
    assert "xinetd" in meta["Keywords"].split(",")
    assert meta["Requires-Python"] == ">=3.11"
    assert "journal" in meta.get_all("Provides-Extra")
    # The README is the long description, rendered as Markdown.
    assert meta["Description-Content-Type"] == "text/markdown"
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def test_twine_check_passes_on_the_sdist_and_the_wheel():
    proc = subprocess.run([sys.executable, "-m", "twine", "check", "--strict",
                           str(dists.sdist()), str(dists.wheel())],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 2, proc.stdout


def test_the_wheel_installs_the_command_and_its_data_where_systemd_man_and_shells_look(tmp_path):
    # A virtual environment of its own: `pip install --prefix` would first uninstall the
    # checkout's own (editable) install from this one.
    prefix = tmp_path / "prefix"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(prefix / "bin/python"),
                    "install", "-q", "--no-deps", "--no-index", str(dists.wheel())], check=True)
    units = sorted(p.name for p in (prefix / "lib/systemd/system").iterdir())
    shipped = sorted(p.name for p in (ROOT / "units").iterdir())
    assert units == shipped
    assert (prefix / "share/man/man1/inetd2systemd.1").is_file()
    assert (prefix / "share/man/man8/inetd2systemd-syslogd.8").is_file()
    assert (prefix / "share/bash-completion/completions/inetd2systemd").is_file()
    assert (prefix / "share/zsh/site-functions/_inetd2systemd").is_file()
    proc = subprocess.run([str(prefix / "bin/inetd2systemd"), "--version"], capture_output=True,
                          text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("inetd2systemd "), proc


def test_an_unpacked_sdist_has_every_test_and_collects_them_without_error():
    tree = dists.unpacked_sdist()
    ours = sorted(p.name for p in (ROOT / "tests").glob("*.py"))
    assert sorted(p.name for p in (tree / "tests").glob("*.py")) == ours
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider"], cwd=tree, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(tree / "src")), timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert "tests collected" in last and "error" not in last, last


def test_the_package_in_the_sdist_is_the_checkouts():
    tree = dists.unpacked_sdist()
    for path in (ROOT / "src/inetd2systemd").rglob("*.py"):
        relative = path.relative_to(ROOT)
        assert (tree / relative).read_bytes() == path.read_bytes(), relative
