import math

import pytest
import torch

from vaekit import Bernoulli, DiagonalGaussian, Gaussian


def _gauss(batch=5, dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return DiagonalGaussian(torch.randn(batch, dim, generator=g), torch.randn(batch, dim, generator=g))


def test_kl_of_prior_to_itself_is_zero():
    prior = DiagonalGaussian.standard(7)
    assert torch.equal(prior.kl(), torch.zeros(1))
    assert torch.equal(prior.kl(DiagonalGaussian.standard(7)), torch.zeros(1))


def test_kl_to_prior_matches_torch_and_general_form():
    q = _gauss()
    expected = torch.distributions.kl_divergence(q.to_torch(), DiagonalGaussian.standard(3).to_torch())
    assert torch.allclose(q.kl(), expected, atol=1e-5)
    # the general two-Gaussian formula agrees with the N(0, I) special case
    zeros = torch.zeros_like(q.mean)
    assert torch.allclose(q.kl(DiagonalGaussian(zeros, zeros)), q.kl(), atol=1e-6)
    p = _gauss(seed=1)
    assert torch.allclose(q.kl(p), torch.distributions.kl_divergence(q.to_torch(), p.to_torch()), atol=1e-4)


def test_closed_form_kl_matches_monte_carlo():
    q = _gauss(batch=4, dim=3)
    g = torch.Generator().manual_seed(1)
    z = q.rsample(200_000, generator=g)
    mc = (q.log_prob(z) - DiagonalGaussian.standard(3).log_prob(z)).mean(0)
    assert torch.allclose(mc, q.kl(), atol=0.05 * q.kl().abs().max().item() + 0.02)


def test_log_probs_match_torch_distributions():
    q = _gauss()
    z = torch.randn(5, 3)
    assert torch.allclose(q.log_prob(z), q.to_torch().log_prob(z), atol=1e-5)
    logits = torch.randn(5, 1, 4, 4)
    x = torch.bernoulli(torch.full((5, 1, 4, 4), 0.3))
    b = Bernoulli(logits)
    assert b.log_prob(x).shape == (5,)
    assert torch.allclose(b.log_prob(x), b.to_torch().log_prob(x), atol=1e-5)
    mean, x = torch.randn(5, 6), torch.randn(5, 6)
    for scale in (0.3, torch.rand(6) + 0.1):
        lik = Gaussian(mean, scale)
        assert torch.allclose(lik.log_prob(x), lik.to_torch().log_prob(x), atol=1e-5)


def test_rsample_shapes_and_gradients():
    mean = torch.zeros(2, 3, requires_grad=True)
    logvar = torch.zeros(2, 3, requires_grad=True)
    q = DiagonalGaussian(mean, logvar)
    assert q.rsample().shape == (2, 3)
    z = q.rsample(5)
    assert z.shape == (5, 2, 3)
    assert q.log_prob(z).shape == (5, 2)
    z.sum().backward()
    assert mean.grad is not None and logvar.grad is not None


def test_rsample_is_seeded():
    q = _gauss()
    a = q.rsample(generator=torch.Generator().manual_seed(3))
    b = q.rsample(generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_logvar_clamp_keeps_values_finite():
    q = DiagonalGaussian(torch.zeros(1, 2), torch.tensor([[-1e4, 1e4]]))
    assert torch.isfinite(q.kl()).all() and torch.isfinite(q.rsample()).all()


def test_keeps_dtype_and_reduces_all_event_dims():
    x = torch.zeros(3, 2, 4, dtype=torch.float64)
    q = DiagonalGaussian(x, x)
    assert q.log_prob(x).shape == (3,) and q.log_prob(x).dtype == torch.float64
    assert math.isclose(q.log_prob(x)[0].item(), -0.5 * 8 * math.log(2 * math.pi), rel_tol=1e-9)


@pytest.mark.parametrize("scale", [1e-3, 1.0])
def test_gaussian_sample_has_requested_scale(scale):
    lik = Gaussian(torch.zeros(20000, 1), scale)
    s = lik.sample(generator=torch.Generator().manual_seed(0))
    assert abs(s.std().item() - scale) < 0.05 * scale


def test_gaussians_share_one_log_density_and_one_noise_draw():
    """DiagonalGaussian (logvar) and Gaussian (scale) give the same log-density for the same
    sigma, and their draws are standard_normal's numbers from the same generator."""
    from vaekit.core.distributions import normal_log_prob, standard_normal

    q = _gauss(batch=4, dim=6)
    lik = Gaussian(q.mean, q.stddev)
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(q.log_prob(x), lik.log_prob(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(q.log_prob(x), normal_log_prob(x, q.mean, logvar=q.logvar).sum(-1), rtol=0, atol=0)
    eps = standard_normal((4, 6), torch.Generator().manual_seed(4))
    assert torch.equal(q.rsample(generator=torch.Generator().manual_seed(4)), q.mean + q.stddev * eps)
    assert torch.equal(lik.sample(torch.Generator().manual_seed(4)), q.mean + lik.scale * eps)
    assert torch.equal(q.noise(3, torch.Generator().manual_seed(4)), standard_normal((3, 4, 6), torch.Generator().manual_seed(4)))
