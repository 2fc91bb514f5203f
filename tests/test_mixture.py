import numpy as np
import pytest
import torch

from vaekit.core.mixture import fit_gaussian_mixture


def _clusters(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 1.0], [0.0, 7.0, -3.0]])
    covs = np.array([np.diag([1.0, 0.5, 2.0]), [[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 0.3]], np.eye(3) * 0.2])
    weights = np.array([0.5, 0.3, 0.2])
    k = rng.choice(3, size=n, p=weights)
    x = np.stack([rng.multivariate_normal(means[j], covs[j]) for j in k])
    return x, weights, means, covs


def test_mixture_recovers_known_components():
    x, weights, means, covs = _clusters()
    gm = fit_gaussian_mixture(x, 3, seed=0)
    order = np.argsort(-gm.weights.numpy())  # the weights differ: 0.5, 0.3, 0.2
    assert gm.converged
    np.testing.assert_allclose(gm.weights.numpy()[order], weights, atol=0.03)
    np.testing.assert_allclose(gm.means.numpy()[order], means, atol=0.15)
    np.testing.assert_allclose(gm.covariances.numpy()[order], covs, atol=0.2)
    resp = gm.responsibilities(torch.from_numpy(x))
    assert resp.shape == (len(x), 3) and torch.allclose(resp.sum(-1), torch.ones(len(x), dtype=resp.dtype))


def test_mixture_equals_scikit_learns_em():
    """Same start (one k-means run), same updates and stopping rule as GaussianMixture(full)."""
    from sklearn.mixture import GaussianMixture

    x, *_ = _clusters(2000, seed=1)
    x = np.concatenate([x, np.random.default_rng(2).normal(size=(500, 3)) * 4])  # overlap: EM takes steps
    ours = fit_gaussian_mixture(x, 4, reg_covar=1e-4, max_iter=200, seed=3)
    ref = GaussianMixture(4, covariance_type="full", reg_covar=1e-4, max_iter=200, random_state=3).fit(x)
    assert ours.n_iter == ref.n_iter_ and ours.n_iter > 2
    a, b = np.argsort(ours.weights.numpy()), np.argsort(ref.weights_)
    np.testing.assert_allclose(ours.weights.numpy()[a], ref.weights_[b], atol=1e-9)
    np.testing.assert_allclose(ours.means.numpy()[a], ref.means_[b], atol=1e-8)
    np.testing.assert_allclose(ours.covariances.numpy()[a], ref.covariances_[b], atol=1e-8)
    assert ours.score(torch.from_numpy(x)) == pytest.approx(ref.score(x), abs=1e-9)
    np.testing.assert_allclose(ours.responsibilities(torch.from_numpy(x)).numpy()[:, a], ref.predict_proba(x)[:, b], atol=1e-8)
