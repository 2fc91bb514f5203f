"""The VampPrior (model.prior=vamp): its mixture density against an independent computation, its
draws, the KL estimate, training, evaluation and the run folder round trip."""

import math

import pytest
import torch

import vaekit
from vaekit import VAE, ModelConfig
from vaekit.core.distributions import DiagonalGaussian
from vaekit.core.models import VAEOutput
from vaekit.core.objectives import iwae_loss
from vaekit.core.priors import GaussianMixturePrior
from vaekit.data import load_dataset
from vaekit.errors import ConfigError
from vaekit.runs import folder as checkpoint

from conftest import small_config


def _mixture(k=5, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    mean, logvar = torch.randn(k, d, generator=g, dtype=torch.float64), torch.randn(k, d, generator=g, dtype=torch.float64)
    return GaussianMixturePrior(DiagonalGaussian(mean, logvar)), mean, logvar


def test_mixture_log_prob_matches_a_direct_mixture_computation():
    prior, mean, logvar = _mixture()
    z = torch.randn(4, 7, 3, dtype=torch.float64)  # leading sample dims pass through
    direct = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.ones(5, dtype=torch.float64)),
        torch.distributions.Independent(torch.distributions.Normal(mean, torch.exp(0.5 * logvar)), 1))
    assert prior.log_prob(z).shape == (4, 7)
    torch.testing.assert_close(prior.log_prob(z), direct.log_prob(z), rtol=1e-10, atol=1e-10)


def test_one_standard_component_is_the_standard_prior():
    prior = GaussianMixturePrior(DiagonalGaussian(torch.zeros(1, 4), torch.zeros(1, 4)))
    z = torch.randn(10, 4)
    torch.testing.assert_close(prior.log_prob(z), DiagonalGaussian.standard(4).log_prob(z))


def test_draws_are_seeded_and_have_the_mixture_moments():
    prior, mean, logvar = _mixture(k=3, d=2)
    draws = lambda seed: prior.rsample(200_000, generator=torch.Generator().manual_seed(seed))
    z = draws(1)
    assert z.shape == (200_000, 1, 2) and torch.equal(z, draws(1)) and not torch.equal(z, draws(2))
    z = z[:, 0]
    # the mixture's mean and variance with equal weights
    m = mean.mean(0)
    v = (torch.exp(logvar) + mean**2).mean(0) - m**2
    torch.testing.assert_close(z.mean(0), m, atol=0.03, rtol=0)
    torch.testing.assert_close(z.var(0), v, rtol=0.03, atol=0)


def test_kl_estimate_is_unbiased_against_the_closed_form():
    """With one Gaussian component the mixture's KL has a closed form; the one-draw estimate
    log q(z|x) - log p(z) averages to it."""
    q = DiagonalGaussian(torch.tensor([[0.3, -1.0]]), torch.tensor([[-0.5, 0.4]]))
    p = DiagonalGaussian(torch.tensor([[1.0, 0.5]]), torch.tensor([[0.2, -0.3]]))
    z = q.rsample(400_000, generator=torch.Generator().manual_seed(0))[:, 0]
    out = VAEOutput(q.__class__(q.mean.expand(len(z), -1), q.logvar.expand(len(z), -1)), z, None,
                    GaussianMixturePrior(p))
    assert out.kl_columns().shape == (len(z), 1)
    assert out.kl_columns().mean().item() == pytest.approx(q.kl(p).item(), abs=0.01)
    # the standard prior keeps the closed form, one column per dimension
    assert VAEOutput(q, z[:1], None).kl_columns().shape == (1, 2)


def _vamp(k=4, likelihood="bernoulli", shape=(1, 8, 8), arch="mlp"):
    torch.manual_seed(0)
    return VAE(ModelConfig(arch=arch, hidden=(16,), channels=(4, 8), latent_dim=3, likelihood=likelihood,
                           prior="vamp", pseudo_inputs=k), shape)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_vamp_prior_is_the_mixture_of_the_posteriors_at_the_pseudo_inputs(arch):
    model = _vamp(arch=arch)
    assert model.pseudo_inputs.shape == (4, 1, 8, 8)
    z = torch.randn(6, 3)
    q = model.encode(model.pseudo_inputs.clamp(0, 1))
    by_hand = torch.logsumexp(torch.stack([q.log_prob(z_i[None].expand(4, -1)) for z_i in z]), dim=1) - math.log(4)
    torch.testing.assert_close(model.prior.log_prob(z), by_hand)
    assert model.sample(5).shape == (5, 1, 8, 8)
    # the ELBO's KL is the one-draw estimate, and the pseudo-inputs get gradients through it
    out = model(torch.rand(2, 1, 8, 8).bernoulli())
    assert out.kl_columns().shape == (2, 1)
    out.kl_columns().sum().backward()
    assert model.pseudo_inputs.grad is not None and model.pseudo_inputs.grad.abs().sum() > 0


def test_iwae_reports_the_kl_against_the_learned_prior():
    """IWAE's reported KL under a VampPrior is the draws' mean of log q(z|x) - log p(z), not the
    closed form against N(0, I)."""
    model = _vamp()
    x = torch.rand(3, 1, 8, 8).bernoulli()
    terms = iwae_loss(model, x, 50, generator=torch.Generator().manual_seed(0))
    q = model.encode(x)
    z = q.rsample(50, generator=torch.Generator().manual_seed(0))
    by_hand = (q.log_prob(z) - model.prior.log_prob(z)).mean()
    torch.testing.assert_close(terms["kl"], by_hand)
    assert abs(terms["kl"].item() - q.kl().mean().item()) > 1e-3


@pytest.mark.parametrize("bad", [
    {"model": "cvae"}, {"free_bits": 0.5},
])
def test_vamp_prior_refuses_what_it_cannot_do(bad):
    cfg = small_config()
    cfg.model.prior = "vamp"
    if "model" in bad:
        cfg.model.model = bad["model"]
    else:
        cfg.training.free_bits = bad["free_bits"]
    with pytest.raises(ConfigError, match="vamp|VampPrior") as info:
        cfg.validate()
    assert "\n" not in str(info.value)


def test_vamp_run_trains_evaluates_and_round_trips(tmp_path):
    cfg = small_config(epochs=3, seed=1)
    cfg.model.prior, cfg.model.pseudo_inputs = "vamp", 20
    run = vaekit.train_run(cfg, out=tmp_path / "vamp")
    history = checkpoint.read_metrics(run)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    model = vaekit.load(run)
    assert model.pseudo_inputs.shape[0] == 20
    x = load_dataset(cfg.data).test[:20]
    # importance sampling under the learned prior: more samples tighten the bound, never beyond noise
    ll = [vaekit.log_likelihood(model, x, num_samples=k, seed=0).mean().item() for k in (1, 10, 200)]
    assert ll[0] <= ll[1] + 0.5 and ll[1] <= ll[2] + 0.5
    again = vaekit.load(run)
    z = torch.randn(5, model.latent_dim)
    torch.testing.assert_close(again.prior.log_prob(z), model.prior.log_prob(z))


def test_compiled_elbo_under_a_vamp_prior_matches_the_eager_terms_and_gradients():
    """The compiled training step (training.compile) builds the same terms, pseudo-inputs included:
    the loss and every gradient of one batch agree with the eager ELBO to float rounding."""
    from vaekit.core.objectives import elbo_loss
    from vaekit.training.runtime import require_cpp_compiler
    from vaekit.training.step import compiled_elbo

    try:
        require_cpp_compiler()
    except ConfigError:
        pytest.skip("no C++ compiler for torch.compile on this machine")
    model = _vamp(k=6)
    x = torch.rand(16, 1, 8, 8).bernoulli()
    eps = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    grads = []
    for compiled in (False, True):
        model.zero_grad()
        if compiled:
            terms = compiled_elbo(model, 0.0)(x, None, eps, torch.tensor(1.0))
        else:
            q = model.encode(x)
            terms = elbo_loss(x, model.output_at(q, q.reparameterize(eps)), 1.0)
        terms["loss"].backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        if not compiled:
            eager_loss = terms["loss"].item()
    assert terms["loss"].item() == pytest.approx(eager_loss, rel=1e-6)
    assert grads[0]["pseudo_inputs"].abs().sum() > 0
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-6)
