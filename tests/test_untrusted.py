"""Untrusted files: nothing vaekit reads may execute code.

Weights load through safetensors, configs through JSON or YAML's safe loader, resume state with
``torch.load(weights_only=True)``, and ``.npy`` arrays with ``allow_pickle=False``. Each test
plants a file whose unpickling would create a marker file, and checks that it is refused with a
clear error and that the marker never appears.
"""

from __future__ import annotations

import ast
import importlib
import io
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import vaekit
from vaekit.cli.main import main
from vaekit.config import load_config_file
from vaekit.data import load_array
from vaekit.errors import ConfigError, DataError, RunError
from vaekit.runs import folder as checkpoint

SRC = Path(vaekit.__file__).resolve().parent


class _Bomb:
    """Unpickling this object calls Path.touch on the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _pickle_bomb(marker: Path) -> bytes:
    return pickle.dumps({"model": _Bomb(marker)}, protocol=2)


def _torch_bomb(marker: Path) -> bytes:
    """A real torch.save file (zip with data.pkl) holding the bomb next to tensors."""
    buf = io.BytesIO()
    torch.save({"model": {"w": torch.zeros(2)}, "epoch": 1, "evil": _Bomb(marker)}, buf)
    return buf.getvalue()


@pytest.fixture
def run(tmp_path, digits_run) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(digits_run, copy)
    return copy


def _cli(argv, capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_the_bomb_works_when_unpickled(tmp_path):
    """Control: the marker does appear when the payload is unpickled, so the tests below mean something."""
    marker = tmp_path / "marker"
    pickle.loads(_pickle_bomb(marker))  # noqa: S301 - deliberately, once, to prove the payload is live
    assert marker.exists()


@pytest.mark.parametrize("make", [_pickle_bomb, _torch_bomb], ids=["plain pickle", "torch.save pickle"])
def test_pickle_disguised_as_weights_is_refused(run, tmp_path, capsys, make):
    marker = tmp_path / "marker"
    (run / "model.safetensors").write_bytes(make(marker))
    with pytest.raises(RunError, match="not a valid safetensors"):
        vaekit.load(run)
    code, err = _cli(["sample", run, "--out", tmp_path / "s.npy"], capsys)
    assert code == 2 and "not a valid safetensors" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()


@pytest.mark.parametrize("make", [_pickle_bomb, _torch_bomb], ids=["plain pickle", "torch.save pickle"])
def test_pickle_disguised_as_resume_file_is_refused(run, tmp_path, capsys, make):
    marker = tmp_path / "marker"
    (run / "resume.pt").write_bytes(make(marker))
    weights = (run / "model.safetensors").read_bytes()
    with pytest.raises(RunError, match="resume"):
        checkpoint.load_resume(run)
    code, err = _cli(["train", "--resume", run, "--epochs", "9", "--no-progress"], capsys)
    assert code == 2 and "resume.pt" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()
    assert (run / "model.safetensors").read_bytes() == weights  # nothing was trained or written


def test_both_files_replaced_by_pickles(run, tmp_path, capsys):
    marker = tmp_path / "marker"
    (run / "model.safetensors").write_bytes(_pickle_bomb(marker))
    (run / "resume.pt").write_bytes(_torch_bomb(marker))
    for argv in (["eval", run], ["encode", run], ["train", "--resume", run, "--no-progress"]):
        code, err = _cli(argv, capsys)
        assert code == 2, err
    assert not marker.exists()


def test_safetensors_with_wrong_shapes_or_extra_tensors_are_refused(run):
    good = checkpoint._state_dict(vaekit.load(run))
    wrong_shape = {**good, next(iter(good)): torch.zeros(1, 2, 3)}
    extra = {**good, "__import__('os')": torch.zeros(1)}
    missing = dict(list(good.items())[1:])
    for state, expected in ((wrong_shape, "has shape"), (extra, "unexpected"), (missing, "missing")):
        save_file(state, str(run / "model.safetensors"))
        with pytest.raises(RunError, match=expected):
            vaekit.load(run)
    save_file(good, str(run / "model.safetensors"))
    vaekit.load(run)  # the untouched weights still load


def test_safetensors_with_a_lying_header_is_refused(run):
    data = (run / "model.safetensors").read_bytes()
    # Claim a header far longer than the file.
    (run / "model.safetensors").write_bytes((10**12).to_bytes(8, "little") + data[8:])
    with pytest.raises(RunError, match="not a valid safetensors"):
        vaekit.load(run)


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:pathlib.Path.touch [['{marker}']]",
    "!!python/object/new:pathlib.Path ['{marker}']",
    "!!python/name:os.system",
])
def test_yaml_with_python_tags_is_refused(tmp_path, capsys, tag):
    marker = tmp_path / "marker"
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  latent_dim: " + tag.format(marker=marker) + "\n")
    with pytest.raises(ConfigError, match="not valid"):
        load_config_file(path)
    code, err = _cli(["train", "--config", path, "--out", tmp_path / "r", "--no-progress"], capsys)
    assert code == 2 and "not valid" in err
    assert not marker.exists() and not (tmp_path / "r").exists()


def test_npy_with_pickled_objects_is_refused(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "x.npy"
    np.save(path, np.array([_Bomb(marker), _Bomb(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="never unpickles"):
        load_array(path)
    assert not marker.exists()


def _refusing_unpicklers(path, code: str) -> list:
    """The pickle readers a module may hold: pickle.Unpickler subclasses whose find_class only
    raises, so no class can be named and nothing called (e.g. for a third-party table of numbers).
    Any other use of the pickle module fails the guard."""
    tree = ast.parse(code)
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and getattr(n.value, "id", None) == "pickle"}
    assert used == {"Unpickler"}, (path, used)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(ast.unparse(b) == "pickle.Unpickler" for b in node.bases):
            methods = {m.name: m for m in node.body if isinstance(m, ast.FunctionDef)}
            body = [st for st in methods["find_class"].body if not isinstance(st, ast.Expr)] if "find_class" in methods else []
            assert len(body) == 1 and isinstance(body[0], ast.Raise), (path, node.name)
            names.append(node.name)
    module = importlib.import_module(".".join(path.relative_to(SRC.parent).with_suffix("").parts))
    return [getattr(module, name) for name in names]


def test_source_never_unpickles(tmp_path):
    """A guard against regressions: every loader in the package is a safe one."""
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        code = "\n".join(line.split("#")[0] for line in text.splitlines())
        assert not re.search(r"^\s*(from pickle|import pickle\s*(as|,)|import dill|import joblib)", code, re.M), path
        if re.search(r"^\s*import pickle", code, re.M):
            for reader in _refusing_unpicklers(path, code):  # and each one refuses a pickle that runs code
                marker = tmp_path / "marker"
                with pytest.raises(Exception):  # noqa: B017 (whatever it raises, the code must not run)
                    reader(io.BytesIO(pickle.dumps(_Bomb(marker)))).load()
                assert not marker.exists(), path
        for call in re.findall(r"torch\.load\([^)]*\)", code):
            assert "weights_only=True" in call, (path, call)
        assert not re.search(r"yaml\.(unsafe_)?load\(", code), path  # only yaml.safe_load
        assert "allow_pickle=True" not in code, path
