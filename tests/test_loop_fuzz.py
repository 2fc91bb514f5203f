"""Every config the validation accepts either trains or is refused up front with a one-line
VaekitError: hypothesis draws configs within the validated ranges (small networks, one epoch on
digits) and runs each through the whole job, run folder and pictures included."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from conftest import small_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vaekit
from vaekit.errors import VaekitError
from vaekit.runs import folder


@st.composite
def configs(draw):
    cfg = small_config(epochs=1)
    m, d, t = cfg.model, cfg.data, cfg.training
    m.latent_dim = draw(st.integers(1, 4))
    m.hidden = (draw(st.integers(1, 16)),)
    m.arch = draw(st.sampled_from(["mlp", "mlp", "conv"]))
    m.channels = (draw(st.integers(1, 4)),)
    m.likelihood = draw(st.sampled_from(["auto", "bernoulli", "gaussian", "gaussian-learned"]))
    m.model = draw(st.sampled_from(["vae", "vae", "cvae"]))
    d.val_fraction = draw(st.sampled_from([0.0, 0.0, 0.001, 0.1, 0.5]))
    d.test_fraction = draw(st.sampled_from([0.0, 0.2, 0.45]))
    d.binarize = draw(st.sampled_from(["auto", "none", "dynamic", "threshold"]))
    t.batch_size = draw(st.sampled_from([1, 2, 17, 128, 100_000]))
    t.beta = draw(st.sampled_from([0.0, 0.5, 1.0, 4.0]))
    t.free_bits = draw(st.sampled_from([0.0, 0.0, 0.25, 2.0]))
    t.warmup_steps = draw(st.sampled_from([0, 0, 1, 30]))
    t.objective = draw(st.sampled_from(["elbo", "iwae"]))
    t.num_samples = draw(st.integers(1, 3))
    t.trim = draw(st.sampled_from([0.0, 0.0, 0.3]))
    t.grad_clip = draw(st.sampled_from([0.0, 100.0]))
    t.early_stopping = draw(st.sampled_from([0, 1, 20]))
    t.eval_batch_size = draw(st.sampled_from([1, 1000]))
    return cfg


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_every_valid_config_trains_or_is_refused_up_front(cfg):
    cfg.validate()  # drawn within the validated ranges
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        try:
            run = vaekit.train_run(cfg, out=out)
        except VaekitError as exc:
            assert str(exc) and "\n" not in str(exc)
            assert not out.exists()  # refused before anything was written
            return
        records = folder.read_metrics(run)
        assert len(records) == 1 and math.isfinite(records[0]["train_loss"])
        val_rows = folder.read_run(run)["data"]["sizes"]["val"]
        assert ("val_loss" in records[0]) == (val_rows > 0)  # validation metrics exactly when there is a split
        vaekit.load(run)
