"""The autoencoder contrast (model.model=ae): the same networks, no KL term, no sampling."""

import pytest
import torch

import vaekit
from vaekit.core.models import Autoencoder
from vaekit.errors import ConfigError

from conftest import small_config


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    cfg = small_config(epochs=3)
    cfg.model.model = "ae"
    return vaekit.train_run(cfg, out=tmp_path_factory.mktemp("ae") / "run")


def test_ae_trains_on_the_reconstruction_alone_and_draws_no_noise(ae_run):
    model = vaekit.load(ae_run)
    assert type(model) is Autoencoder
    x = torch.rand(5, *model.data_shape)
    a = model(x, generator=torch.Generator().manual_seed(0))
    b = model(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.z, b.z) and torch.equal(a.z, model.encode(x).mean)
    records = [__import__("json").loads(line) for line in (ae_run / "metrics.jsonl").read_text().splitlines()]
    assert all(r["beta"] == 0.0 for r in records)
    assert all(r["train_loss"] == pytest.approx(r["train_recon"], rel=1e-6) for r in records)
    assert all(r["train_kl"] > 0 for r in records)  # reported (|mean|^2 / 2), never paid
    assert records[-1]["train_loss"] < records[0]["train_loss"]


def test_ae_proposal_gives_a_finite_log_likelihood(ae_run):
    model = vaekit.load(ae_run)
    x = torch.rand(4, *model.data_shape)
    ll = vaekit.log_likelihood(model, x, num_samples=64)
    assert ll.shape == (4,) and torch.isfinite(ll).all()


@pytest.mark.parametrize("setting", [("free_bits", 0.5), ("warmup_steps", 10), ("objective", "iwae")])
def test_ae_refuses_settings_of_a_kl_term(tmp_path, setting):
    cfg = small_config(epochs=1)
    cfg.model.model = "ae"
    setattr(cfg.training, *setting)
    with pytest.raises(ConfigError, match="model=ae"):
        vaekit.train_run(cfg, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
