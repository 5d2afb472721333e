"""A test that cannot run here (a server, a tool, root missing) skips locally and fails on CI,
always through ``tests.servers.unavailable``: a hand-written skip is how CI ends up green while
skipping. A plain skip is allowed only where the reason is not something CI provides."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO

#: file -> why a plain skip is right there.
PLAIN_SKIPS = {
    "tests/servers.py": "the helper itself",
    "tests/reliability/test_disk_full.py": "no tmpfs mount: the page_limit variant covers it",
    "tests/unit/test_paths.py": "the XDG rules are Linux's",
}


def plain_skips(path: Path) -> list[int]:
    """Lines calling ``pytest.skip``/``pytest.mark.skipif``/``pytest.importorskip`` in ``path``."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        target = node.func if isinstance(node, ast.Call) else node
        if (
            isinstance(target, ast.Attribute)
            and target.attr in ("skip", "skipif", "importorskip")
            and _is_pytest(target.value)
        ):
            lines.append(node.lineno)
    return sorted(set(lines))


def _is_pytest(node: ast.expr) -> bool:
    """``pytest`` or ``pytest.mark`` (not some other object's ``.skip``, e.g. a parsed note's)."""
    if isinstance(node, ast.Attribute) and node.attr == "mark":
        node = node.value
    return isinstance(node, ast.Name) and node.id == "pytest"


def test_tests_skip_only_through_unavailable() -> None:
    found = {
        str(path.relative_to(REPO)): plain_skips(path)
        for path in sorted((REPO / "tests").rglob("*.py"))
    }
    offenders = {f: lines for f, lines in found.items() if lines and f not in PLAIN_SKIPS}
    assert offenders == {}, "use tests.servers.unavailable (skips here, fails on CI)"
    assert all(found[f] for f in PLAIN_SKIPS), "an allowed skip is gone: drop it from the list"


def test_the_scan_sees_each_kind_of_skip(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import pytest\n"
        "@pytest.mark.skipif(True, reason='x')\n"
        "def test_a():\n"
        "    pytest.skip('no tool')\n"
        "yaml = pytest.importorskip('yaml')\n"
        "if note.skip is not None:\n"
        "    pass\n",
        encoding="utf-8",
    )
    assert plain_skips(sample) == [2, 4, 5]  # not line 6: a note's own .skip
