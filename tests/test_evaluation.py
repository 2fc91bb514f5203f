"""Log-likelihood estimation against a closed form, the ELBO gap, IWAE, and `vaekit eval`/`sweep`."""

import json
import math

import pytest
import torch
from torch import nn

import vaekit
from vaekit import VAE, ModelConfig, elbo_loss, iwae_loss, log_likelihood
from vaekit.cli.main import main
from vaekit.core.distributions import Bernoulli
from vaekit.errors import ConfigError
from vaekit.measure.evaluation import likelihood_report

D, LATENT, SCALE = 6, 2, 0.5


class _LinearDecoder(nn.Module):
    """x = W z + b (the likelihood adds N(0, s^2 I)): probabilistic PCA."""

    def __init__(self, w: torch.Tensor, b: torch.Tensor):
        super().__init__()
        self.lin = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            self.lin.weight.copy_(w)
            self.lin.bias.copy_(b)

    def forward(self, z, c=None):
        return self.lin(z)


class _LinearEncoder(nn.Module):
    """q(z|x) = N(A (x - b), diag(exp(logvar))), the same variance for every x."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, logvar: torch.Tensor):
        super().__init__()
        self.a, self.b, self.logvar = nn.Parameter(a), nn.Parameter(b), nn.Parameter(logvar)

    def forward(self, x, c=None):
        mean = (x.flatten(1) - self.b) @ self.a.T
        return torch.cat([mean, self.logvar.expand_as(mean)], dim=-1)


def _ppca(perturb: float = 0.0):
    """A linear-Gaussian VAE whose W has orthogonal columns, so the exact posterior is diagonal.

    p(x) = N(b, W W^T + s^2 I); p(z|x) = N(M^-1 W^T (x - b), s^2 M^-1) with M = W^T W + s^2 I.
    ``perturb`` moves the encoder away from the exact posterior.
    """
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(D, LATENT, generator=g))
    w = q * torch.tensor([2.0, 1.0])  # orthogonal columns of lengths 2 and 1
    b = torch.randn(D, generator=g)
    m_diag = (w**2).sum(0) + SCALE**2  # M is diagonal
    a = (w / m_diag).T  # M^-1 W^T
    logvar = torch.log(SCALE**2 / m_diag)
    a = a * (1 + perturb)
    logvar = logvar + 2 * perturb
    model = VAE(ModelConfig(likelihood="gaussian", gaussian_scale=SCALE, latent_dim=LATENT, hidden=(4,)), (D,))
    model.encoder = _LinearEncoder(a, b.clone(), logvar)
    model.decoder = _LinearDecoder(w, b)
    exact = torch.distributions.MultivariateNormal(b.double(), (w @ w.T).double() + SCALE**2 * torch.eye(D, dtype=torch.float64))
    torch.manual_seed(1)
    x = exact.sample((20,)).float()
    return model.eval(), x, exact.log_prob(x.double())


def test_exact_posterior_gives_the_closed_form_with_any_k():
    model, x, exact = _ppca()
    for k in (1, 7):
        est = log_likelihood(model, x, num_samples=k)
        assert torch.allclose(est, exact, atol=1e-3), (est - exact).abs().max()


def test_estimate_converges_to_the_closed_form_and_the_bound_grows_with_k():
    model, x, exact = _ppca(perturb=0.4)
    errors, means = [], []
    for k in (1, 10, 100, 3000):
        est = log_likelihood(model, x, num_samples=k, seed=1)
        errors.append(float((est - exact).abs().mean()))
        means.append(float(est.mean()))
    assert means[0] < means[1] < means[2] < means[3]  # the importance-weighted bound rises with k
    assert means[2] <= float(exact.mean()) + 0.01  # ... and stays below log p(x) (up to MC error)
    assert errors[-1] < 0.05 and errors[-1] < errors[0] / 20
    assert abs(means[-1] - float(exact.mean())) < 0.01


def test_elbo_gap_is_the_kl_to_the_true_posterior():
    model, x, exact = _ppca(perturb=0.4)
    report = likelihood_report(model, x, num_samples=3000, seed=2)
    assert report["elbo_gap"] > 0.05
    assert report["nll"] == pytest.approx(-float(exact.mean()), abs=0.02)
    exact_model, _, _ = _ppca()
    assert likelihood_report(exact_model, x, num_samples=50)["elbo_gap"] == pytest.approx(0.0, abs=1e-3)


def test_iwae_bound_is_above_the_elbo_on_the_same_model():
    model, x, _ = _ppca(perturb=0.4)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        elbo = torch.stack([elbo_loss(x, model(x, generator=g))["elbo"] for _ in range(300)]).mean()
        iwae = torch.stack([iwae_loss(model, x, 50, generator=g)["elbo"] for _ in range(20)]).mean()
    assert iwae > elbo + 0.05
    assert iwae_loss(model, x, 1, generator=g)["loss"].requires_grad  # a trainable objective


@pytest.mark.parametrize("shape", [(1, 28, 28), (97,), (3, 5, 7)])
def test_grouped_bernoulli_log_prob_and_its_backward_match_torch(shape):
    """The grouped-product Bernoulli log-likelihood (its own backward) against torch's
    binary_cross_entropy_with_logits and autograd, for binary and grey x, broadcast over a
    leading sample dim, with logits up to +-40 (where a naive log(sigmoid) underflows)."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    for scale in (4.0, 40.0):
        logits = (scale * torch.randn(5, 3, *shape, generator=g, dtype=torch.float64)).requires_grad_()
        for x in (torch.bernoulli(torch.full((3, *shape), 0.3, dtype=torch.float64), generator=g),
                  torch.rand(3, *shape, generator=g, dtype=torch.float64)):
            ref = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").flatten(2).sum(-1)
            ours = Bernoulli(logits, len(shape)).log_prob(x)
            assert torch.allclose(ours, ref, rtol=1e-9, atol=1e-7)
            w = torch.randn(5, 3, generator=g, dtype=torch.float64)
            (grad_ref,) = torch.autograd.grad((ref * w).sum(), logits)
            (grad_ours,) = torch.autograd.grad((ours * w).sum(), logits)
            assert torch.allclose(grad_ours, grad_ref, rtol=1e-9, atol=1e-9)
    single = torch.randn(2, *shape, generator=g)  # float32: within float rounding of the sum
    xs = torch.rand(2, *shape, generator=g)
    ref32 = -F.binary_cross_entropy_with_logits(single, xs, reduction="none").flatten(1).sum(-1)
    assert torch.allclose(Bernoulli(single, len(shape)).log_prob(xs), ref32, rtol=1e-5, atol=1e-3)


def test_chunking_batching_and_seeds():
    torch.manual_seed(0)
    model = VAE(ModelConfig(likelihood="bernoulli", hidden=(16,), latent_dim=3), (1, 8, 8)).eval()
    x = torch.bernoulli(torch.full((9, 1, 8, 8), 0.4))
    a = log_likelihood(model, x, num_samples=500, seed=5)
    assert torch.equal(a, log_likelihood(model, x, num_samples=500, seed=5))
    assert not torch.equal(a, log_likelihood(model, x, num_samples=500, seed=6))
    tiny = log_likelihood(model, x, num_samples=500, seed=5, batch_size=2, max_elements=64 * 3)  # 3 samples per chunk
    assert tiny.shape == (9,) and tiny.dtype == torch.float64
    assert torch.allclose(a, tiny, atol=0.5)
    with pytest.raises(ConfigError):
        log_likelihood(model, x, num_samples=0)
    assert log_likelihood(model, x[:0], num_samples=10).shape == (0,)


def test_chunks_are_equal_and_never_larger_than_asked():
    from vaekit.core.objectives import sample_chunks

    for k, largest in [(5000, 668), (5000, 5000), (7, 3), (1, 10), (10, 1), (100, 0)]:
        for equal in (True, False):
            sizes = sample_chunks(k, largest, equal=equal)
            assert sum(sizes) == k and all(1 <= c <= max(1, min(k, largest)) for c in sizes)
            assert len(sizes) == math.ceil(k / max(1, min(k, largest)))  # no more chunks than needed
        sizes = sample_chunks(k, largest)
        assert len(set(sizes[:-1])) <= 1 and sizes[-1] <= sizes[0]  # one size, the last no larger
        assert sizes[0] == math.ceil(k / len(sizes))  # the smallest size for that many chunks
    assert sample_chunks(5000, 668) == [625] * 8
    assert sample_chunks(5000, 668, equal=False) == [668] * 7 + [324]


def test_running_logsumexp_over_chunks_equals_one_logsumexp():
    from vaekit.core.objectives import RunningLogSumExp

    log_w = 30 * torch.randn(50, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    acc = RunningLogSumExp(4)
    for chunk in log_w.split([7, 20, 1, 22]):
        acc.add(chunk.float())  # the weights may come in the model's dtype; the total is float64
    assert acc.total.dtype == torch.float64
    torch.testing.assert_close(acc.total, torch.logsumexp(log_w.float().double(), dim=0), rtol=0, atol=1e-12)


def test_compiled_evaluation_matches_eager_on_the_same_draws():
    torch.manual_seed(0)
    model = VAE(ModelConfig(likelihood="bernoulli", hidden=(16,), latent_dim=3), (1, 8, 8)).eval()
    x = torch.bernoulli(torch.full((5, 1, 8, 8), 0.4))
    eager = likelihood_report(model, x, num_samples=40, seed=3, max_elements=64 * 10)
    compiled = likelihood_report(model, x, num_samples=40, seed=3, max_elements=64 * 10, compile=True)
    for key in ("nll", "elbo_k", "elbo_gap"):
        assert compiled[key] == pytest.approx(eager[key], abs=1e-4)


def test_compile_failure_falls_back_to_eager_with_a_warning(monkeypatch):
    def broken(fn, **kwargs):
        def call(*args):
            raise RuntimeError("no C++ compiler found\nmore detail")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    torch.manual_seed(0)
    model = VAE(ModelConfig(likelihood="bernoulli", hidden=(16,), latent_dim=3), (1, 8, 8)).eval()
    x = torch.bernoulli(torch.full((4, 1, 8, 8), 0.4))
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler found"):
        fallen_back = log_likelihood(model, x, num_samples=30, seed=2, compile=True)
    assert torch.equal(fallen_back, log_likelihood(model, x, num_samples=30, seed=2))


def test_eval_run_reports_nll_bits_and_gap(digits_run, capsys):
    result = vaekit.evaluate_run(digits_run, num_samples=100, limit=50)
    assert result["examples"] == 50
    for key in ("nll", "nll_stderr", "elbo_gap", "active_units", "mutual_info", "kl_per_dim"):
        assert key in result
    assert result["nll"] < -result["elbo"] + 1.0  # log p(x) >= ELBO, up to MC error
    assert len(result["kl_per_dim"]) == 4 and sum(result["kl_per_dim"]) == pytest.approx(result["kl"], rel=1e-4)
    assert main(["eval", str(digits_run), "--nll-samples", "20", "--limit", "30", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["nll_samples"] == 20 and math.isfinite(out["nll"])
    assert main(["eval", str(digits_run), "--nll-samples", "20", "--limit", "30"]) == 0
    text = capsys.readouterr().out
    assert "NLL" in text and "active units" in text and "ELBO gap" in text
    assert main(["eval", str(digits_run), "--nll-samples", "20", "--limit", "30", "--json", "--compile"]) == 0
    assert json.loads(capsys.readouterr().out)["nll"] == pytest.approx(out["nll"], abs=1e-3)  # the same draws
    assert main(["eval", str(digits_run), "--nll-samples", "-3"]) == 2


def test_sweep_trains_one_run_per_beta_and_plots(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", "--beta", "0.5,4", "--out", str(out), "--epochs", "2", "--hidden", "64",
                 "--latent-dim", "4", "--no-progress"])
    assert code == 0
    summary = json.loads((out / "sweep.json").read_text())
    points = summary["points"]
    assert [p["beta"] for p in points] == [0.5, 4.0]
    assert points[0]["rate"] > points[1]["rate"]  # a larger beta buys a lower rate ...
    assert points[0]["distortion"] < points[1]["distortion"]  # ... with more distortion
    for name in ("rate_distortion.png", "samples_by_beta.png", "beta-0.5/config.json", "beta-4/model.safetensors"):
        assert (out / name).is_file()
    assert main(["sweep", "--beta", "0.5", "--out", str(out), "--epochs", "1"]) == 2  # taken
    assert main(["sweep", "--beta", "1,x", "--out", str(tmp_path / "s2")]) == 2
    assert "error" in capsys.readouterr().err


def test_bernoulli_log_prob_without_grad_equals_the_autograd_form():
    """Evaluation takes a cheaper form of the same sum (no saved tensors); both agree."""
    g = torch.Generator().manual_seed(0)
    for lead, xshape in (((7, 3), (3, 1, 28, 28)), ((3,), (3, 1, 28, 28)), ((4, 3), (4, 3, 1, 28, 28))):
        logits = 8 * torch.randn(*lead, 1, 28, 28, generator=g, dtype=torch.float64)
        x = torch.rand(*xshape, generator=g, dtype=torch.float64)
        with_grad = Bernoulli(logits.clone().requires_grad_(), 3).log_prob(x)
        assert with_grad.requires_grad
        with torch.no_grad():
            without = Bernoulli(logits, 3).log_prob(x)
        assert torch.allclose(with_grad.detach(), without, rtol=1e-10, atol=1e-8)
