"""The store layer stays in small, typed pieces: checked on the source, not claimed.

No class in ``filamentctl/store`` longer than 400 lines, no function longer than 80, and no
``Any`` in a constructor's signature (a collaborator typed ``Any`` switches mypy off for it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import REPO

STORE = REPO / "filamentctl" / "store"
MAX_CLASS_LINES = 400
MAX_FUNCTION_LINES = 80


def _trees() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(STORE.rglob("*.py")):
        yield path.relative_to(REPO), ast.parse(path.read_text(encoding="utf-8"))


def _lines(node: ast.AST) -> int:
    end = getattr(node, "end_lineno", None)
    start = getattr(node, "lineno", None)
    assert end is not None and start is not None
    return int(end) - int(start) + 1


def test_no_store_class_or_function_is_too_long() -> None:
    too_long = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and _lines(node) > MAX_CLASS_LINES:
                too_long.append(f"{path}:{node.lineno} class {node.name}: {_lines(node)} lines")
            if (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and _lines(node) > MAX_FUNCTION_LINES
            ):
                too_long.append(f"{path}:{node.lineno} def {node.name}: {_lines(node)} lines")
    assert not too_long, "split these by concern:\n" + "\n".join(too_long)


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
