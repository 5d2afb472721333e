"""Size limits that keep the code readable: no class over 400 lines, no function over 80.

Checked on every module of the package, one test per subpackage (and one for the top-level
modules), so a failure names the area. There are no exceptions: a long table is a module-level
constant or a function of its own, not a reason to let a function grow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO

PACKAGE = REPO / "filamentctl"
CHECKED = sorted(
    p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()
) + ["(top level)"]
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
    if package == "(top level)":
        files = sorted(PACKAGE.glob("*.py"))
    else:
        files = sorted((PACKAGE / package).rglob("*.py"))
    assert files
    offenders = [entry for path in files for entry in too_long(path)]
    assert offenders == [], "\n".join(offenders)


def test_every_subpackage_is_checked() -> None:
    assert {"cli", "core", "gateways", "hw", "service", "sinks", "store", "tui"} <= set(CHECKED)


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    sample = tmp_path / "sample.py"
    sample.write_text(f"def long():\n{body}\n\n\ndef short():\n    return 1\n", encoding="utf-8")
    assert too_long(sample, tmp_path) == [f"sample.py:1 long ({MAX_FUNCTION_LINES + 1} lines > 80)"]
