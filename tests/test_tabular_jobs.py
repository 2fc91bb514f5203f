"""The table job: train_table_run reads its settings from a Config, writes a run folder of the one
format with its pictures, and refuses settings it would ignore."""

from __future__ import annotations

import json

import pytest

pd = pytest.importorskip("pandas")

from vaekit import ConfigError, TabularVAE  # noqa: E402
from vaekit.apps.tabular.jobs import table_config, train_table_run, unused_settings  # noqa: E402
from vaekit.config import apply_overrides  # noqa: E402
from test_tabular import make_table  # noqa: E402


def test_table_config_holds_the_tabular_vae_defaults():
    cfg, defaults = table_config(), TabularVAE()
    assert (tuple(cfg.model.hidden), cfg.model.latent_dim) == (defaults.hidden, defaults.latent_dim)
    t = cfg.training
    assert (t.epochs, t.batch_size, t.lr, t.beta, t.weight_decay, t.seed, t.device) == (
        defaults.epochs, defaults.batch_size, defaults.lr, defaults.beta, defaults.weight_decay, defaults.seed,
        defaults.device)
    assert unused_settings(cfg) == []


def test_train_table_run_writes_a_run_folder_from_a_config(tmp_path):
    csv = tmp_path / "table.csv"
    make_table(300).to_csv(csv, index=False)
    cfg = apply_overrides(table_config(), [f"data.name={csv}", "model.hidden=16", "model.latent_dim=3",
                                           "training.epochs=2", "training.batch_size=64", "training.seed=4",
                                           "training.progress=false"])
    model = train_table_run(cfg, tmp_path / "run", target="group")
    assert (model.hidden, model.latent_dim, model.epochs, model.batch_size, model.seed, model.target) == (
        (16,), 3, 2, 64, 4, "group")
    assert len(model.history_) == 2
    doc = json.loads((tmp_path / "run" / "config.json").read_text())
    assert doc["class"] == "TabularModel" and doc["config"]["data"]["name"] == str(csv)
    assert doc["config"]["model"]["hidden"] == [16] and doc["config"]["training"]["epochs"] == 2
    assert {"curves.png", "columns.png", "model.safetensors", "metrics.jsonl"} <= {p.name for p in (tmp_path / "run").iterdir()}
    again = TabularVAE.load(tmp_path / "run")
    pd.testing.assert_frame_equal(again.sample(100, seed=1), model.sample(100, seed=1))
    with pytest.raises(ConfigError, match="already holds a run"):
        train_table_run(cfg, tmp_path / "run")


def test_settings_a_table_run_would_ignore_are_refused(tmp_path):
    cfg = apply_overrides(table_config(), [f"data.name={tmp_path / 'none.csv'}", "training.warmup_steps=10",
                                           "model.arch=conv"])
    with pytest.raises(ConfigError, match="does not use model.arch, training.warmup_steps;"):
        train_table_run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
