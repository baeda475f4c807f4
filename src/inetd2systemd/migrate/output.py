"""The import's output directory, built beside its place and renamed in: units/,
report.md, report.html, summary.json, install.sh, rollback.sh."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from . import report
from .plan import Migration
from .scripts import install_script, rollback_script



def write_output(migration: Migration, directory: str | Path, *, force: bool = False,
                 transcripts: dict | None = None) -> Path:
    """Build the whole output beside `directory`, then rename it into place."""
    from ..units.install import write_units

    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()) and not force:
        raise FileExistsError(f"{directory} exists and is not empty (use --force to replace it)")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        write_units(migration.units, staging / "units")
        write_file(staging / "install.sh", install_script(migration), 0o755)
        write_file(staging / "rollback.sh", rollback_script(migration), 0o755)
        write_file(staging / "report.md", report.markdown(migration, transcripts))
        write_file(staging / "report.html", report.html(migration, transcripts))
        write_file(staging / "summary.json", json.dumps(report.summary_json(migration, transcripts),
                                                    indent=2) + "\n")
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            os.replace(directory, old)
        os.replace(staging, directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Write `path` as a new file renamed into place, its mode set on the descriptor:
    run as root in a directory another user can change, a link swapped in at the name
    is replaced, never followed (neither to write nor to chmod a file elsewhere)."""
    from ..units.install import write_temporary

    os.replace(write_temporary(path.parent, text, mode), path)
