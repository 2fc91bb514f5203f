"""KL per dimension, active units, mutual information, collapse warnings and latent maps."""

import json
import math
import warnings

import pytest
import torch
from conftest import small_config

import vaekit
from vaekit import VAE
from vaekit import ModelConfig
from vaekit.runs import folder as checkpoint
from vaekit.measure.diagnostics import (
    PosteriorCollapseWarning, active_units, collapse_message, dims_by_kl, kl_per_dim, latent_diagnostics, latent_plane,
    mutual_information, pca_2d,
)


def test_kl_per_dim_sums_to_the_models_kl():
    torch.manual_seed(0)
    model = VAE(ModelConfig(likelihood="bernoulli", hidden=(16,), latent_dim=5), (1, 8, 8)).eval()
    x = torch.rand(40, 1, 8, 8)
    d = latent_diagnostics(model, x, batch_size=7)
    with torch.no_grad():
        kl = model.encode(x).kl().mean()
    assert len(d["kl_per_dim"]) == 5 and all(v >= 0 for v in d["kl_per_dim"])
    assert d["kl"] == pytest.approx(float(kl), rel=1e-5)
    assert -0.05 <= d["mutual_info"] <= d["mutual_info_max"] + 1e-9  # an MC estimate: may dip below 0


def test_active_units_count_dimensions_whose_means_move():
    g = torch.Generator().manual_seed(0)
    mean = torch.zeros(500, 4, dtype=torch.float64)
    mean[:, 0] = torch.randn(500, generator=g)  # variance ~1: active
    mean[:, 1] = 0.2 * torch.randn(500, generator=g)  # variance ~0.04: active
    mean[:, 2] = 0.03 * torch.randn(500, generator=g)  # variance ~0.001: inactive
    count, activity = active_units(mean)
    assert count == 2 and activity.shape == (4,) and activity[3] == 0


def test_mutual_information_between_its_limits():
    n, g = 400, torch.Generator().manual_seed(0)
    # q(z|x) identical for every x: z carries nothing about x
    same = mutual_information(torch.zeros(n, 2, dtype=torch.float64), torch.zeros(n, 2, dtype=torch.float64), g)
    assert abs(same) < 1e-9
    # tiny, far-apart posteriors: z identifies x, so I = log N
    spread = torch.randn(n, 3, generator=g, dtype=torch.float64) * 10
    sharp = mutual_information(spread, torch.full((n, 3), -12.0, dtype=torch.float64), g)
    assert sharp == pytest.approx(math.log(n), abs=0.01)
    # in between, I <= E_x KL(q(z|x) || p(z)) (Hoffman & Johnson 2016)
    mean, logvar = torch.randn(n, 3, generator=g, dtype=torch.float64), torch.full((n, 3), -1.0, dtype=torch.float64)
    mi = mutual_information(mean, logvar, g)
    assert 0 < mi < float(kl_per_dim(mean, logvar).sum())


def test_mutual_information_equals_the_pairwise_sum():
    """The product form of log q(z_n|x_m) gives the estimate of the term-by-term definition."""
    n, g = 300, torch.Generator().manual_seed(1)
    mean = torch.randn(n, 5, generator=g, dtype=torch.float64) * 2
    logvar = torch.rand(n, 5, generator=g, dtype=torch.float64) * 6 - 8  # variances 3e-4 to 0.14
    mi = mutual_information(mean, logvar, torch.Generator().manual_seed(7))
    eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    z = mean + (0.5 * logvar).exp() * eps
    own = torch.distributions.Normal(mean, (0.5 * logvar).exp()).log_prob(z).sum(-1)
    pairwise = torch.distributions.Normal(mean[None], (0.5 * logvar[None]).exp()).log_prob(z[:, None]).sum(-1)
    expected = float((own - (torch.logsumexp(pairwise, dim=1) - math.log(n))).mean())
    assert mi == pytest.approx(expected, abs=1e-9)
    assert 0 < mi < math.log(n)


def test_collapse_message_names_the_remedies():
    assert collapse_message(kl=12.0, active=3, latent_dim=4) is None
    for message in (collapse_message(kl=0.01, active=0, latent_dim=4), collapse_message(kl=5.0, active=0, latent_dim=4)):
        assert "warm-up" in message and "free bits" in message and "decoder" in message
    assert "no latent unit is active" in collapse_message(kl=5.0, active=0, latent_dim=4)
    # Units above the activity threshold but (almost) no KL: the message says which test fired.
    low_kl = collapse_message(kl=0.05, active=2, latent_dim=2)
    assert "below 0.1" in low_kl and "2 of 2 units pass" in low_kl and "no latent unit" not in low_kl


def test_training_logs_diagnostics_and_warns_on_collapse(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = vaekit.train_run(small_config(epochs=2, beta=200.0), out=tmp_path / "collapsed")
    records = checkpoint.read_metrics(run)
    assert {"val_active_units", "val_mutual_info", "val_kl_per_dim"} <= records[0].keys()
    assert len(records[-1]["val_kl_per_dim"]) == 4
    assert records[-1]["val_active_units"] == 0
    assert any(issubclass(w.category, PosteriorCollapseWarning) for w in caught)


def test_healthy_run_does_not_warn(digits_run):
    records = checkpoint.read_metrics(digits_run)
    assert records[-1]["val_active_units"] > 0
    json.dumps(records)  # every value is plain JSON


def test_pca_and_latent_plane_shapes():
    z = torch.randn(100, 5) * torch.tensor([5.0, 2.0, 0.1, 0.1, 0.1])
    points, explained = pca_2d(z)
    assert points.shape == (100, 2) and explained[0] > explained[1] > 0.01
    torch.manual_seed(0)
    model = VAE(ModelConfig(likelihood="bernoulli", hidden=(16,), latent_dim=2), (1, 8, 8)).eval()
    grid = latent_plane(model, steps=5)
    assert grid.shape == (5, 5, 1, 8, 8) and grid.min() >= 0 and grid.max() <= 1


def test_run_pictures_include_latent_maps(tmp_path, digits_run):
    assert (digits_run / "latent.png").is_file()
    cfg = small_config(epochs=1)
    cfg.model.latent_dim = 2
    run = vaekit.train_run(cfg, out=tmp_path / "two")
    assert (run / "latent.png").is_file() and (run / "latent_plane.png").is_file()


def test_dims_by_kl_keeps_the_active_dimensions_largest_kl_first():
    d = {"kl_per_dim": [0.5, 0.01, 2.0, 1.0], "activity": [0.4, 0.001, 0.9, 0.02]}
    assert dims_by_kl(d) == [2, 3, 0]  # dimension 1 is inactive (activity below 0.01)
    collapsed = {"kl_per_dim": [0.001, 0.003, 0.002], "activity": [0.0, 0.0, 0.0]}
    assert dims_by_kl(collapsed) == [1, 2, 0]  # none active: every one, still by KL


def test_dims_by_kl_on_a_model_puts_the_informative_dimension_first():
    """A latent dimension that the encoder ignores has no activity and drops out of the ranking."""
    torch.manual_seed(0)
    model = VAE(ModelConfig(likelihood="bernoulli", hidden=(16,), latent_dim=3), (1, 8, 8)).eval()
    head = model.encoder.net[-1]  # the Linear producing (mean, logvar)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.weight[0].fill_(0.5)  # only z0's mean depends on x
    d = latent_diagnostics(model, torch.rand(200, 1, 8, 8))
    assert dims_by_kl(d) == [0]


def test_kl_per_dim_picture_needs_the_per_dimension_records(tmp_path):
    from vaekit.runs import plots

    records = [{"epoch": e, "val_kl_per_dim": [0.1 * e, 0.0, 1.0], "val_active_units": 2} for e in (1, 2, 3)]
    path = plots.save_kl_per_dim(records, tmp_path / "kl.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000
    with pytest.raises(ValueError, match="val_kl_per_dim"):
        plots.save_kl_per_dim([{"epoch": 1, "val_loss": 3.0}], tmp_path / "none.png")
