"""Dependencies are the ones the product uses, and the locks say which is which.

- every runtime dependency declared in pyproject.toml is imported somewhere in ``filamentctl/``
  (statically, or by name through ``importlib.import_module``/``blinka.load``);
- ``requirements.lock`` holds exactly the runtime dependencies and what they need (as the
  installed packages' own metadata says), no test or lint tool;
- ``requirements-dev.lock`` reads the runtime lock and adds the ``test`` extra, nothing twice.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import tomllib
from pathlib import Path

from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
RUNTIME = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
TEST_EXTRA = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]]
# Calls that import a module named by a string: importlib.import_module(...), blinka.load(...).
_IMPORTING_CALLS = {"import_module", "load"}


def imported_modules() -> set[str]:
    """Top-level names of every module ``filamentctl/`` imports, at any depth of the code."""
    found: set[str] = set()
    for path in (REPO / "filamentctl").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Call) and node.args:
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                arg = node.args[0]
                if name in _IMPORTING_CALLS and isinstance(arg, ast.Constant):
                    if isinstance(arg.value, str):
                        found.add(arg.value.split(".")[0])
    return found


def modules_of(distribution: str) -> set[str]:
    """The top-level import names an installed distribution provides."""
    wanted = canonicalize_name(distribution)
    return {
        module
        for module, dists in md.packages_distributions().items()
        if any(canonicalize_name(d) == wanted for d in dists)
    }


def locked(path: Path) -> dict[str, str]:
    """``name -> marker`` ("" when none) of every pin in a lock file."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9._-]+)==\S+(?:\s*;\s*([^\\]+?))?\s*\\?$", line)
        if m:
            out[canonicalize_name(m.group(1))] = (m.group(2) or "").strip()
    return out


def runtime_closure() -> set[str]:
    """Runtime dependencies and everything they need here, from the installed metadata."""
    env = default_environment()
    seen: set[tuple[str, str]] = set()  # (distribution, extra): an extra can add dependencies
    stack: list[Requirement] = list(RUNTIME)
    while stack:
        req = stack.pop()
        name = canonicalize_name(req.name)
        todo = {extra for extra in req.extras | {""} if (name, extra) not in seen}
        if not todo:
            continue
        seen.update((name, extra) for extra in todo)
        for text in md.requires(req.name) or []:
            dep = Requirement(text)
            if dep.marker is None or any(
                dep.marker.evaluate({**env, "extra": extra}) for extra in todo
            ):
                stack.append(dep)
    return {name for name, _ in seen}


def test_every_runtime_dependency_is_imported_by_the_code() -> None:
    imported = imported_modules()
    unused = []
    for req in RUNTIME:
        modules = modules_of(req.name)
        assert modules, f"{req.name} is declared but not installed in this environment"
        if not modules & imported:
            unused.append(f"{req.name} (provides {sorted(modules)})")
    assert not unused, f"declared in pyproject.toml but never imported: {unused}"


def test_the_runtime_lock_is_the_runtime_dependencies_and_nothing_else() -> None:
    pins = locked(REPO / "requirements.lock")
    env = default_environment()
    here = {name for name, marker in pins.items() if not marker or Marker(marker).evaluate(env)}
    closure = runtime_closure()
    tools = {canonicalize_name(r.name) for r in TEST_EXTRA}
    assert not tools & set(pins), f"test or lint tools in requirements.lock: {tools & set(pins)}"
    assert not here - closure, f"locked but not needed at run time: {sorted(here - closure)}"
    assert not closure - here, f"needed at run time but not locked: {sorted(closure - here)}"
    assert all("--hash=sha256:" in block for block in _pin_blocks(REPO / "requirements.lock"))


def test_the_development_lock_adds_the_tools_on_top_of_the_runtime_lock() -> None:
    text = (REPO / "requirements-dev.lock").read_text()
    first = next(ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#"))
    assert first == "-r requirements.lock"
    dev, runtime = locked(REPO / "requirements-dev.lock"), locked(REPO / "requirements.lock")
    assert not set(dev) & set(runtime), f"pinned twice: {sorted(set(dev) & set(runtime))}"
    tools = {canonicalize_name(r.name) for r in TEST_EXTRA}
    assert tools <= set(dev), f"test tools missing from requirements-dev.lock: {tools - set(dev)}"


def _pin_blocks(path: Path) -> list[str]:
    """Each pin with its continuation lines (hashes)."""
    blocks: list[str] = []
    for line in path.read_text().splitlines():
        if re.match(r"^[A-Za-z0-9._-]+==", line):
            blocks.append(line)
        elif blocks and line.startswith("    --hash"):
            blocks[-1] += line
    return blocks
