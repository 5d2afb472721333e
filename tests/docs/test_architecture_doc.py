"""``docs/architecture.md`` names every module of the package, and only modules that exist.

The rule the package table follows, and this test checks:

- Each top-level package has a row whose first cell starts with its name in backticks and a
  slash (`` `service/` ``); the modules directly under ``filamentctl/`` have the row
  `` `filamentctl/` ``. A package may have several rows (the service's are grouped by concern);
  text after the name in the first cell is a free label.
- Every module file (``*.py`` except ``__init__.py``) is named in a row of its top-level package
  by its path inside that package, without ``.py``, in backticks: ``service/sampler.py`` is
  `` `sampler` `` in a `` `service/` `` row, ``service/handlers/config.py`` is
  `` `handlers/config` `` there, ``filamentctl/client.py`` is `` `client` `` in the
  `` `filamentctl/` `` row.
- In the cells after the first, every backticked lowercase name (letters, digits, ``_`` and
  ``/``) is such a module path, or a directory of the package when it ends with ``/``
  (`` `handlers/` ``, `` `web/static/` ``), and it must exist. Anything else in backticks is
  written so that it cannot be read as one: ``Class``, ``CONSTANT``, ``dotted.name``,
  ``function()``, ``a command line``.

So a module added without its entry fails, and so does an entry left behind when a module is
removed or renamed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from tests.helpers import REPO

DOC = REPO / "docs" / "architecture.md"
PACKAGE = REPO / "filamentctl"
ROOT_ROW = "filamentctl/"

ROW = re.compile(r"^\|\s*`(?P<package>[a-z_]+/)`(?P<label>[^|]*)\|(?P<rest>.*)\|\s*$")
TOKEN = re.compile(r"`([^`]+)`")
MODULE_PATH = re.compile(r"[a-z_][a-z0-9_]*(?:/[a-z_][a-z0-9_]*)*/?")


def required_modules(package: Path) -> dict[str, set[str]]:
    """Row name -> the module paths its rows must name (every top-level package has a key)."""
    out: dict[str, set[str]] = defaultdict(set)
    out[ROOT_ROW] = set()
    for child in package.iterdir():
        if child.is_dir() and (child / "__init__.py").is_file():
            out[f"{child.name}/"] = set()
    for path in package.rglob("*.py"):
        if path.name == "__init__.py":
            continue
        parts = path.relative_to(package).with_suffix("").parts
        if len(parts) == 1:
            out[ROOT_ROW].add(parts[0])
        else:
            out[f"{parts[0]}/"].add("/".join(parts[1:]))
    return dict(out)


def table_rows(doc: str) -> dict[str, list[str]]:
    """Row name -> the module-like names in backticks in its rows (after the first cell)."""
    rows: dict[str, list[str]] = defaultdict(list)
    for line in doc.splitlines():
        match = ROW.match(line.strip())
        if match is None:
            continue
        names = [t for t in TOKEN.findall(match["rest"]) if MODULE_PATH.fullmatch(t)]
        rows[match["package"]].extend(names)
    return dict(rows)


def problems(doc: str, package: Path) -> list[str]:
    """What the doc's package table gets wrong about ``package``, one line each."""
    required = required_modules(package)
    rows = table_rows(doc)
    found: list[str] = []
    for row, modules in sorted(required.items()):
        if row not in rows:
            found.append(f"no row for `{row}`")
            continue
        named = set(rows[row])
        found.extend(f"`{row}` row does not name `{m}`" for m in sorted(modules - named))
    for row, names in sorted(rows.items()):
        if row not in required:
            found.append(f"row `{row}` is no package of {package.name}")
            continue
        base = package if row == ROOT_ROW else package / row
        for name in names:
            target = base / name if name.endswith("/") else base / f"{name}.py"
            exists = target.is_dir() if name.endswith("/") else target.is_file()
            if not exists:
                where = base.relative_to(package.parent).as_posix()
                found.append(f"`{row}` row names `{name}`, which is not in {where}/")
    return found


def test_the_doc_names_every_module_and_no_other() -> None:
    found = problems(DOC.read_text(encoding="utf-8"), PACKAGE)
    assert found == [], "docs/architecture.md is out of date:\n" + "\n".join(found)


def test_a_removed_entry_is_found() -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert "`sampler`" in doc
    found = problems(doc.replace("`sampler`", "the sampler"), PACKAGE)
    assert found == ["`service/` row does not name `sampler`"]


def test_a_renamed_or_stale_entry_is_found() -> None:
    doc = DOC.read_text(encoding="utf-8")
    found = problems(doc.replace("`handlers/relays`", "`handlers/relay`"), PACKAGE)
    assert found == [
        "`service/` row does not name `handlers/relays`",
        "`service/` row names `handlers/relay`, which is not in filamentctl/service/",
    ]


def test_the_rule_on_a_package_of_its_own(tmp_path: Path) -> None:
    """Missing and unknown rows, nested modules, directories and the root row, on real files."""
    pkg = tmp_path / "pkg"
    for rel in ("__init__.py", "top.py", "a/__init__.py", "a/one.py", "a/sub/__init__.py"):
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text("", encoding="utf-8")
    (pkg / "a/sub/two.py").write_text("", encoding="utf-8")
    (pkg / "b").mkdir()
    (pkg / "b/__init__.py").write_text("", encoding="utf-8")
    good = (
        "| package | what |\n|---|---|\n"
        "| `filamentctl/` | `top` (a module), `Top` and `top.thing` and `run()` are no modules |\n"
        "| `a/` | `one`, `sub/` holding `sub/two` |\n"
        "| `b/` (a label) | nothing but its `__init__` |\n"
    )
    assert problems(good, pkg) == []
    assert problems(good.replace("`sub/two`", "`two`"), pkg) == [
        "`a/` row does not name `sub/two`",
        "`a/` row names `two`, which is not in pkg/a/",
    ]
    assert problems(good.replace("`sub/`", "`subs/`"), pkg) == [
        "`a/` row names `subs/`, which is not in pkg/a/"
    ]
    assert problems(good.replace("| `b/` (a label) |", "| b |"), pkg) == ["no row for `b/`"]
    assert problems(good + "| `c/` | `x` |\n", pkg) == ["row `c/` is no package of pkg"]
