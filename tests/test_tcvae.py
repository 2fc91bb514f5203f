"""The beta-TCVAE decomposition (Chen et al. 2018): its parts sum to the KL term's estimate,
minibatch-weighted sampling is exact when the batch is the whole data set, and the total
correlation sees dependence between latent dimensions."""

import math

import pytest
import torch

from vaekit.core.distributions import DiagonalGaussian
from vaekit.core.tcvae import kl_decomposition, log_densities, tcvae_penalty


def _batch(n=64, d=5, seed=0, correlated=False):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(n, d, generator=g, dtype=torch.float64)
    if correlated:  # every dimension's mean is the same number: a strongly dependent aggregate
        mean = mean[:, :1].expand(n, d).clone()
    logvar = torch.full((n, d), -3.0, dtype=torch.float64) + 0.1 * torch.randn(n, d, generator=g, dtype=torch.float64)
    z = mean + torch.exp(0.5 * logvar) * torch.randn(n, d, generator=g, dtype=torch.float64)
    return z, mean, logvar


def test_parts_sum_to_the_kl_estimate():
    z, mean, logvar = _batch()
    parts = kl_decomposition(z, mean, logvar, dataset_size=1000)
    q = DiagonalGaussian(mean, logvar)
    direct = (q.log_prob(z) - DiagonalGaussian.standard(5, dtype=torch.float64).log_prob(z)).mean()
    total = parts["mutual_info"] + parts["total_correlation"] + parts["dimwise_kl"]
    assert torch.allclose(total, parts["kl"], atol=1e-10)
    assert torch.allclose(parts["kl"], direct, atol=1e-10)


def test_kl_estimate_matches_the_closed_form_on_average():
    z, mean, logvar = _batch(n=4000, d=3, seed=1)
    parts = kl_decomposition(z, mean, logvar, dataset_size=4000)
    closed = DiagonalGaussian(mean, logvar).kl().mean()
    assert abs(float(parts["kl"] - closed)) < 0.1 * float(closed)


def test_minibatch_weighting_on_the_whole_data_set_is_the_aggregate_less_log_m():
    z, mean, logvar = _batch(n=50, d=4, seed=2)
    log_qz = log_densities(z, mean, logvar, dataset_size=50)["log_qz"]
    # log (1/N) sum_n q(z_i | x_n), term by term
    per_pair = torch.stack([DiagonalGaussian(mean, logvar).log_prob(z[i:i + 1].expand(50, 4)) for i in range(50)])
    exact = torch.logsumexp(per_pair, dim=1) - math.log(50)
    # Chen et al.'s normalisation log(N M): exact up to the constant log M (see the module's note)
    assert torch.allclose(log_qz, exact - math.log(50), atol=1e-10)


def test_total_correlation_sees_dependent_dimensions():
    independent = kl_decomposition(*_batch(n=500, d=4, seed=3), dataset_size=500)
    dependent = kl_decomposition(*_batch(n=500, d=4, seed=3, correlated=True), dataset_size=500)
    assert float(dependent["total_correlation"]) > float(independent["total_correlation"]) + 2.0


def test_penalty_weights_only_the_total_correlation():
    parts = {"mutual_info": torch.tensor(1.0), "total_correlation": torch.tensor(2.0), "dimwise_kl": torch.tensor(3.0)}
    assert float(tcvae_penalty(parts, beta=1.0)) == pytest.approx(6.0)
    assert float(tcvae_penalty(parts, beta=5.0)) == pytest.approx(1.0 + 10.0 + 3.0)


def test_gradients_flow_and_a_small_data_set_is_refused():
    z, mean, logvar = _batch(n=8, d=2)
    mean.requires_grad_(True)
    tcvae_penalty(kl_decomposition(z, mean, logvar, dataset_size=100), beta=4.0).backward()
    assert torch.isfinite(mean.grad).all() and mean.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        kl_decomposition(z, mean, logvar, dataset_size=4)
