"""The report's codes: every finding is made with one, and docs/json.md lists each.

A code is what a script acts on (the message may be reworded), so it is named where the
finding is made, never worked out from the message afterwards.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from support import ROOT

from inetd2systemd.model import Code

SOURCE = ROOT / "src" / "inetd2systemd"
# The calls that make a finding: the class itself and the helpers that build one.
MAKERS = {"Finding", "bad_entry", "note"}


def _calls_without_a_code(path: Path) -> list[str]:
    missing = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else \
            node.func.attr if isinstance(node.func, ast.Attribute) else None
        # code=..., or **kwargs (which cannot be told apart here: assumed to carry it)
        if name in MAKERS and not any(k.arg in ("code", None) for k in node.keywords):
            missing.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}(...) without code=")
    return missing


def test_every_finding_is_made_with_a_code():
    missing = [m for path in sorted(SOURCE.rglob("*.py")) for m in _calls_without_a_code(path)]
    assert not missing, "\n".join(missing)


def test_docs_list_every_code_and_no_other():
    codes_section = (ROOT / "docs" / "json.md").read_text().split("\n## Codes\n", 1)[1]
    documented = re.findall(r"^\| `([a-z0-9-]+)` \|", codes_section, re.MULTILINE)
    assert len(documented) == len(set(documented)), "a code documented twice"
    assert set(documented) == {c.value for c in Code}


def test_codes_are_words_a_script_can_match():
    for code in Code:
        assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", code.value), code
