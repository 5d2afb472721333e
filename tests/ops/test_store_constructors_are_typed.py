"""The store layer stays typed: checked on the source, not claimed.

No ``Any`` in a constructor's signature (a collaborator typed ``Any`` switches mypy off for it).
The size limits (class 400 lines, function 80) are checked on the whole package in
``test_code_size.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import REPO

STORE = REPO / "filamentctl" / "store"


def _trees() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(STORE.rglob("*.py")):
        yield path.relative_to(REPO), ast.parse(path.read_text(encoding="utf-8"))


def _mentions_any(annotation: ast.expr | None) -> bool:
    if annotation is None:
        return False
    return any(
        (isinstance(n, ast.Name) and n.id == "Any")
        or (isinstance(n, ast.Attribute) and n.attr == "Any")
        or (isinstance(n, ast.Constant) and isinstance(n.value, str) and "Any" in n.value)
        for n in ast.walk(annotation)
    )


def test_no_store_constructor_takes_any() -> None:
    untyped = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name in ("__init__", "__new__"):
                    args = item.args
                    every = args.posonlyargs + args.args + args.kwonlyargs
                    every += [a for a in (args.vararg, args.kwarg) if a is not None]
                    untyped += [
                        f"{path}:{item.lineno} {node.name}({a.arg})"
                        for a in every
                        if _mentions_any(a.annotation)
                    ]
    assert not untyped, "give these parameters their real types:\n" + "\n".join(untyped)
