"""Size limits that keep the clients readable: no class over 400 lines, no function over 80.

Checked on the packages listed in ``CHECKED`` (the CLI and the dashboard); another package joins
the list once it keeps the limits.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO

CHECKED = ("cli", "tui")
MAX_CLASS_LINES = 400
MAX_FUNCTION_LINES = 80


def too_long(path: Path, root: Path = REPO) -> list[str]:
    """``file:line name (N lines)`` (file relative to ``root``) for each class or function in
    ``path`` over the limits."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef):
            limit = MAX_CLASS_LINES
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            limit = MAX_FUNCTION_LINES
        else:
            continue
        lines = (node.end_lineno or node.lineno) - node.lineno + 1
        if lines > limit:
            where = path.relative_to(root)
            found.append(f"{where}:{node.lineno} {node.name} ({lines} lines > {limit})")
    return found


@pytest.mark.parametrize("package", CHECKED)
def test_no_class_or_function_is_too_long(package: str) -> None:
    files = sorted((REPO / "filamentctl" / package).rglob("*.py"))
    assert files
    offenders = [entry for path in files for entry in too_long(path)]
    assert offenders == [], "\n".join(offenders)


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    sample = tmp_path / "sample.py"
    sample.write_text(f"def long():\n{body}\n\n\ndef short():\n    return 1\n", encoding="utf-8")
    assert too_long(sample, tmp_path) == [f"sample.py:1 long ({MAX_FUNCTION_LINES + 1} lines > 80)"]
