"""Completion and denoising: observed cells stay fixed, filled cells beat the column mean."""

import numpy as np
import pytest
import torch

import vaekit
from vaekit.cli.main import main
from vaekit.apps.impute import denoise, impute

from conftest import small_config


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    cfg = small_config(epochs=40)
    cfg.model.hidden = (128,)
    cfg.model.latent_dim = 8
    run = vaekit.train_run(cfg, out=tmp_path_factory.mktemp("imp") / "run")
    return run, *vaekit.run_data(run)


@pytest.mark.parametrize("method", ["pseudo-gibbs", "metropolis", "importance"])
def test_fills_hidden_halves_better_than_the_mean(digits_model, method):
    _, model, _, data = digits_model
    x = data.test
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[..., 4:, :] = False  # hide the bottom half of every image
    filled = impute(model, x, mask, num_iter=30, method=method)
    assert torch.equal(filled[mask], x[mask])  # observed pixels never change
    err = ((filled - x)[~mask] ** 2).mean()
    mean_fill = data.train.mean(0, keepdim=True).expand_as(x)
    assert err < ((mean_fill - x)[~mask] ** 2).mean()


def test_nan_means_missing_and_denoise_helps(digits_model):
    _, model, _, data = digits_model
    x = data.test[:50].clone()
    holes = x.clone()
    holes[:, :, 2, :] = float("nan")
    filled = impute(model, holes)
    assert not torch.isnan(filled).any()
    noisy = (x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert ((denoise(model, noisy) - x) ** 2).mean() < ((noisy - x) ** 2).mean()


def test_cli_impute_and_score(digits_model, tmp_path):
    run, model, _, data = digits_model
    x = data.test[:20].numpy().copy()
    x[:, :, :3, :] = np.nan
    np.save(tmp_path / "holes.npy", x)
    assert main(["impute", str(run), "--data", str(tmp_path / "holes.npy"), "--out", str(tmp_path / "f.npy"), "--iters", "5"]) == 0
    filled = np.load(tmp_path / "f.npy")
    assert filled.shape == x.shape and np.isfinite(filled).all()
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the picture of holes and fills
    assert main(["score", str(run), "--data", "test", "--num-samples", "10", "--out", str(tmp_path / "s.csv")]) == 0
    scores = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
    assert scores.shape == (len(data.test),) and np.isfinite(scores).all()
    assert main(["impute", str(run), "--data", str(tmp_path / "missing.npy")]) == 2


def test_cli_impute_table_with_empty_cells(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 1))
    table = np.hstack([z, 2 * z, -z]) + 0.05 * rng.normal(size=(300, 3))
    np.savetxt(tmp_path / "t.csv", table, delimiter=",", header="a,b,c", comments="")
    cfg = small_config(epochs=30)
    cfg.data.name = str(tmp_path / "t.csv")
    cfg.model.latent_dim = 1
    run = vaekit.train_run(cfg, out=tmp_path / "run")
    lines = (tmp_path / "t.csv").read_text().splitlines()
    lines[1] = ",".join(lines[1].split(",")[:1] + ["", "NA"])  # b and c of the first row are missing
    (tmp_path / "holes.csv").write_text("\n".join(lines) + "\n")
    assert main(["impute", str(run), "--data", str(tmp_path / "holes.csv"), "--out", str(tmp_path / "f.csv")]) == 0
    filled = np.loadtxt(tmp_path / "f.csv", delimiter=",", skiprows=1)
    assert filled.shape == table.shape
    np.testing.assert_allclose(filled[1:], table[1:], rtol=1e-5, atol=1e-5)
    a = table[0, 0]
    assert abs(filled[0, 1] - 2 * a) < 0.5 * abs(2 * a) + 0.5  # b follows a through the model


def test_importance_fill_is_the_exact_conditional_mean_of_a_linear_gaussian_model():
    """Probabilistic PCA: x ~ N(b, W W^T + s^2 I), so E[x_m | x_o] = b_m + S_mo S_oo^-1 (x_o - b_o)
    in closed form. The importance-sampled conditional mean converges to it, with an encoder
    that is not the exact posterior (the weights correct the proposal)."""
    from test_evaluation import SCALE, _ppca

    model, x, _ = _ppca(perturb=0.3)
    model = model.double()
    x = x.double()
    w, b = model.decoder.lin.weight.detach(), model.decoder.lin.bias.detach()
    cov = w @ w.T + SCALE**2 * torch.eye(x.shape[1], dtype=torch.float64)
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[:, :3] = True  # the first three cells observed, the last three missing
    o, m = mask[0], ~mask[0]
    exact = b[m] + (x[:, o] - b[o]) @ torch.linalg.solve(cov[o][:, o], cov[o][:, m])
    filled = impute(model, torch.where(mask, x, torch.nan), num_iter=3, method="importance", num_samples=20_000)  # NaN: missing
    assert torch.equal(filled[:, o], x[:, o])
    assert torch.allclose(filled[:, m], exact, atol=0.03)
    rough = impute(model, x, mask, num_iter=3, method="importance", num_samples=5)
    assert ((rough[:, m] - exact) ** 2).mean() > ((filled[:, m] - exact) ** 2).mean()  # more draws, closer


def test_importance_fill_is_seeded_and_memory_bounded_in_chunks(digits_model):
    from vaekit.apps.impute_methods import conditional_mean

    _, model, _, data = digits_model
    x = data.test[:20]
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[..., :, :4] = False
    a = impute(model, x, mask, num_iter=2, method="importance", num_samples=64, seed=3)
    assert torch.equal(a, impute(model, x, mask, num_iter=2, method="importance", num_samples=64, seed=3))
    g = torch.Generator().manual_seed(0)
    start = torch.where(mask, x, torch.zeros_like(x))
    proposal = model.encode(start)
    whole = conditional_mean(model, x, mask, proposal, None, 64, g)
    g = torch.Generator().manual_seed(0)
    chunked = conditional_mean(model, x, mask, proposal, None, 64, g, max_elements=x[0].numel() * x.shape[0] * 5)
    assert torch.allclose(whole, chunked, atol=1e-5)  # chunks of 5 draws combine to the same weighted mean


def test_observed_posterior_fit_reaches_the_closed_form_optimum_of_a_linear_gaussian_model():
    """Probabilistic PCA with three of six cells observed: p(z | x_o) = N(P^-1 W_o^T (x_o - b_o) / s^2, P^-1),
    P = I + W_o^T W_o / s^2, and the diagonal Gaussian closest to it in KL(r || p) has that mean and
    variances 1 / P_ii. The fit starts at an encoder that is not the posterior of x_o (it is given x
    with the missing cells at 0, and perturbed), and must move there; the model gets no gradient."""
    from test_evaluation import SCALE, _ppca
    from vaekit.apps.impute_methods import fit_observed_posterior

    model, x, _ = _ppca(perturb=0.3)
    model, x = model.double(), x.double()
    w, b = model.decoder.lin.weight.detach(), model.decoder.lin.bias.detach()
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[:, :3] = True
    wo = w[:3]
    precision = torch.eye(w.shape[1], dtype=torch.float64) + wo.T @ wo / SCALE**2
    exact_mean = (x[:, :3] - b[:3]) @ wo @ torch.linalg.inv(precision) / SCALE**2
    exact_var = 1 / torch.diagonal(precision)
    start = torch.where(mask, x, torch.zeros_like(x))
    g = torch.Generator().manual_seed(0)
    fitted = fit_observed_posterior(model, x, mask, start, steps=1000, lr=0.01, num_samples=64, generator=g)
    assert all(p.grad is None for p in model.parameters())
    before = (model.encode(start).mean.detach() - exact_mean).abs().max()
    assert (fitted.mean - exact_mean).abs().max() < 0.05 < before  # posterior sds 0.26 and 0.50; the start is 0.53 off
    assert torch.allclose(fitted.variance.mean(0), exact_var, rtol=0.1)


def test_importance_fill_beats_the_encoders_own_proposal(digits_model):
    """The fitted proposal (fit_steps > 0) gives a closer conditional mean than the encoder's posterior of the
    pseudo-Gibbs fill (fit_steps=0) on hidden bottom halves."""
    _, model, _, data = digits_model
    x = data.test[:200]
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[..., 4:, :] = False
    errors = [float(((impute(model, x, mask, num_iter=5, method="importance", num_samples=200, fit_steps=k) - x)[~mask] ** 2).mean())
              for k in (0, 100)]
    assert errors[1] < errors[0]


def test_pseudo_gibbs_warns_when_its_fills_run_away():
    """The divergence check of pseudo-Gibbs: a fill far beyond the observed magnitudes warns, one within them does not."""
    import warnings

    from vaekit.apps.impute_methods import warn_if_diverged

    x = torch.tensor([[1.0, 2.0, 0.0]])
    mask = torch.tensor([[True, True, False]])
    with pytest.warns(RuntimeWarning, match="diverged"):
        warn_if_diverged(torch.tensor([[1.0, 2.0, 1e4]]), x, mask)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_diverged(torch.tensor([[1.0, 2.0, 3.0]]), x, mask)  # within range: silent


def test_completion_picture_paints_the_holes_red(tmp_path):
    from PIL import Image

    from vaekit.runs.plots import save_completion

    holes = torch.full((2, 1, 8, 8), 0.5)
    holes[:, :, 4:, :] = float("nan")
    save_completion(holes, torch.full((2, 1, 8, 8), 0.5), tmp_path / "c.png", truth=torch.zeros(2, 1, 8, 8))
    pixels = np.asarray(Image.open(tmp_path / "c.png").convert("RGB")).reshape(-1, 3).astype(int)
    red = (pixels[:, 0] > 200) & (pixels[:, 1] < 60) & (pixels[:, 2] < 60)
    grey = (np.abs(pixels - 128) < 10).all(axis=1)
    assert red.sum() > 0 and grey.sum() > red.sum()  # the missing halves red; observed halves and fills grey
