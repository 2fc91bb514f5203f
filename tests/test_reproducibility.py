"""Reproducibility: the same seed gives bitwise identical weights and metrics on the CPU, and a
run folder records what produced it (Python, torch, vaekit, device)."""

from __future__ import annotations

import json
import platform

import torch
from safetensors.torch import load_file

import vaekit
from vaekit.runs import folder as checkpoint

from conftest import small_config

WALL_TIME = ("epoch_time_s", "samples_per_s")


def _without_wall_time(records):
    return [{k: v for k, v in r.items() if k not in WALL_TIME} for r in records]


def test_same_seed_twice_gives_bitwise_identical_weights_metrics_and_pictures(tmp_path):
    runs = [vaekit.train_run(small_config(epochs=2, seed=11, warmup_steps=10), out=tmp_path / name) for name in "ab"]
    a, b = (load_file(str(r / "model.safetensors")) for r in runs)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (runs[0] / "model.safetensors").read_bytes() == (runs[1] / "model.safetensors").read_bytes()
    ma, mb = (checkpoint.read_metrics(r) for r in runs)
    assert len(ma) == 2 and _without_wall_time(ma) == _without_wall_time(mb)
    for picture in ("samples.png", "reconstructions.png", "interpolation.png"):
        assert (runs[0] / picture).read_bytes() == (runs[1] / picture).read_bytes()
    ea, eb = (vaekit.evaluate_run(r) for r in runs)
    assert ea == eb
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    ma_, mb_ = (vaekit.load(r) for r in runs)
    assert torch.equal(vaekit.log_likelihood(ma_, x, num_samples=16), vaekit.log_likelihood(mb_, x, num_samples=16))


def test_a_different_seed_gives_different_weights(tmp_path):
    a = vaekit.train_run(small_config(epochs=1, seed=1), out=tmp_path / "a")
    b = vaekit.train_run(small_config(epochs=1, seed=2), out=tmp_path / "b")
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert not all(torch.equal(wa[k], wb[k]) for k in wa)


def test_run_folder_records_the_environment(digits_run):
    doc = json.loads((digits_run / "config.json").read_text())
    env = doc["environment"]
    assert env["python"] == platform.python_version()
    assert env["torch"] == torch.__version__
    assert env["vaekit"] == vaekit.__version__
    assert env["device"] == "cpu"
    assert doc["config"]["training"]["seed"] == 0  # the seed that reproduces it
    assert doc["config"]["data"]["split_seed"] == 0
