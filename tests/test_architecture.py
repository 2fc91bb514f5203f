"""The shape of the package, checked: layers import only downward, small modules and functions,
one place that draws noise. These are the rules docs/architecture.md states."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "vaekit"
MODULES = sorted(SRC.rglob("*.py"))


def test_layers_contract_holds():
    lint = shutil.which("lint-imports") or (str(Path(sys.executable).parent / "lint-imports"))
    if not Path(lint).exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]' installs it)")
    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_modules_are_small(path):
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= 300, f"{path.relative_to(SRC)} has {lines} lines; split it by concept"


def _functions(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_functions_are_short(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    long = [f"{f.name} ({f.end_lineno - f.lineno + 1} lines)" for f in _functions(tree) if f.end_lineno - f.lineno + 1 > 60]
    assert not long, f"{path.relative_to(SRC)}: {', '.join(long)}"


def test_noise_is_drawn_in_one_module():
    drawing = [p.relative_to(SRC).as_posix() for p in MODULES if "torch.randn(" in p.read_text(encoding="utf-8")]
    assert drawing == ["core/distributions.py"]


def test_importing_the_package_loads_no_torch():
    code = "import sys, vaekit, vaekit.errors, vaekit.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_every_public_name_resolves():
    import vaekit

    missing = [name for name in vaekit.__all__ if not hasattr(vaekit, name)]
    assert not missing
