"""The service and the store stay typed: checked on the source, not claimed.

No ``Any`` in a constructor's signature in ``filamentctl/service/`` or ``filamentctl/store/`` (a
collaborator typed ``Any`` switches mypy off for it; settings are ``Mapping[str, object]``, read
through ``core.schema.number`` where a number is needed). The size limits (class 400 lines,
function 80) are checked on the whole package in ``test_code_size.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO

CHECKED = ("service", "store")


def _mentions_any(annotation: ast.expr | None) -> bool:
    if annotation is None:
        return False
    return any(
        (isinstance(n, ast.Name) and n.id == "Any")
        or (isinstance(n, ast.Attribute) and n.attr == "Any")
        or (isinstance(n, ast.Constant) and isinstance(n.value, str) and "Any" in n.value)
        for n in ast.walk(annotation)
    )


def untyped_constructors(path: Path, root: Path = REPO) -> list[str]:
    """``file:line Class(parameter)`` for each ``__init__``/``__new__`` parameter of a class in
    ``path`` whose annotation mentions ``Any`` (file relative to ``root``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name in ("__init__", "__new__"):
                args = item.args
                every = args.posonlyargs + args.args + args.kwonlyargs
                every += [a for a in (args.vararg, args.kwarg) if a is not None]
                found += [
                    f"{path.relative_to(root)}:{item.lineno} {node.name}({a.arg})"
                    for a in every
                    if _mentions_any(a.annotation)
                ]
    return found


@pytest.mark.parametrize("package", CHECKED)
def test_no_constructor_takes_any(package: str) -> None:
    files = sorted((REPO / "filamentctl" / package).rglob("*.py"))
    assert files
    untyped = [entry for path in files for entry in untyped_constructors(path)]
    assert not untyped, "give these parameters their real types:\n" + "\n".join(untyped)


def test_the_check_sees_any_in_a_constructor(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from collections.abc import Callable, Mapping\n"
        "from typing import Any\n\n\n"
        "class Typed:\n"
        "    def __init__(self, settings: Mapping[str, object]) -> None: ...\n\n\n"
        "class Loose:\n"
        "    def __init__(self, sink: Any, *, on_event: Callable[[str, Any], None]) -> None:\n"
        "        pass\n\n"
        "    def other(self, data: Any) -> None: ...\n",
        encoding="utf-8",
    )
    assert untyped_constructors(sample, tmp_path) == [
        "sample.py:10 Loose(sink)",
        "sample.py:10 Loose(on_event)",
    ]
