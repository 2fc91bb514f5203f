"""A full-covariance Gaussian mixture fitted by EM, in torch (float64).

The algorithm of scikit-learn's ``GaussianMixture(covariance_type="full", init_params="kmeans")``:
responsibilities start as the one-hot labels of one k-means run (scikit-learn's ``KMeans``), and
EM stops when the mean log-likelihood per point changes by less than ``tol`` between E-steps.
Each E-step here is one (n, d) x (d, K d) product for all components at once, where
scikit-learn loops over the components in single-threaded numpy, which made its fit a large
share of a TabularVAE fit on Adult's latent codes (timed in
bench/results/tabular-adult-validation.md, sixth round).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vaekit.core.distributions import LOG_2PI

BLOCK = 2048  # rows per block of the E- and M-steps' products


@dataclass
class GaussianMixture:
    """weights (K,), means (K, d), covariances (K, d, d); ``n_iter`` EM iterations, ``converged``."""

    weights: torch.Tensor
    means: torch.Tensor
    covariances: torch.Tensor
    n_iter: int = 0
    converged: bool = False

    def _precision_cholesky(self) -> torch.Tensor:
        """U_k (upper triangular) with U_k U_k^T = inverse covariance of component k."""
        lower = torch.linalg.cholesky(self.covariances)
        eye = torch.eye(lower.shape[-1], dtype=lower.dtype, device=lower.device).expand_as(lower)
        return torch.linalg.solve_triangular(lower, eye, upper=False).transpose(-1, -2)

    def joint_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log w_k + log N(x_n; mu_k, Sigma_k) for every point and component, (n, K)."""
        u = self._precision_cholesky()
        k, d = self.means.shape
        # ||U_k^T (x - mu_k)||^2 from x U_k - mu_k U_k: all components in one product, in blocks of
        # rows so that the (rows, K, d) intermediate stays in cache
        u_all = u.transpose(0, 1).reshape(d, k * d)
        shift = torch.einsum("kd,kde->ke", self.means, u).reshape(1, k * d)
        sq = torch.cat([torch.addmm(shift, xb, u_all, beta=-1).square_().view(-1, k, d).sum(-1)
                        for xb in x.split(BLOCK)])
        log_det = torch.diagonal(u, dim1=-2, dim2=-1).log().sum(-1)  # log |U_k| = -0.5 log |Sigma_k|
        return -0.5 * (d * LOG_2PI + sq) + log_det + self.weights.log()

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        """p(k | x_n), (n, K)."""
        return torch.softmax(self.joint_log_prob(x.to(self.means.dtype)), dim=-1)

    def score(self, x: torch.Tensor) -> float:
        """Mean log-likelihood per point, in nats."""
        return float(torch.logsumexp(self.joint_log_prob(x.to(self.means.dtype)), dim=-1).mean())


def _m_step(x: torch.Tensor, resp: torch.Tensor, reg_covar: float) -> GaussianMixture:
    n, d = x.shape
    k = resp.shape[1]
    nk = resp.sum(0) + 10 * torch.finfo(resp.dtype).eps  # no empty component divides by 0
    means = (resp.T @ x) / nk[:, None]
    # Sigma_k = sum_n r_nk x_n x_n^T / n_k - mu_k mu_k^T (+ reg), the weighted second moments of all
    # components as one (K d, rows) x (rows, d) product per block of rows
    second = torch.zeros(k * d, d, dtype=x.dtype, device=x.device)
    for xb, rb in zip(x.split(BLOCK), resp.split(BLOCK)):
        second.addmm_((rb[:, :, None] * xb[:, None, :]).view(-1, k * d).T, xb)
    covariances = second.view(k, d, d) / nk[:, None, None] - means[:, :, None] * means[:, None, :]
    covariances += reg_covar * torch.eye(d, dtype=x.dtype, device=x.device)
    return GaussianMixture(nk / n, means, covariances)


def fit_gaussian_mixture(x, components: int, reg_covar: float = 1e-6, max_iter: int = 100, tol: float = 1e-3,
                         seed: int = 0) -> GaussianMixture:
    """EM for a ``components``-component full-covariance mixture of the rows of ``x`` (n, d).

    ``reg_covar`` is added to every covariance's diagonal; ``seed`` seeds the k-means start.
    """
    from sklearn.cluster import KMeans

    x = torch.as_tensor(x, dtype=torch.float64)
    labels = KMeans(components, n_init=1, random_state=seed).fit(x.numpy()).labels_
    resp = torch.nn.functional.one_hot(torch.as_tensor(labels, dtype=torch.long), components).to(x.dtype)
    mixture = _m_step(x, resp, reg_covar)
    bound, converged, iteration = -math.inf, False, 0
    for iteration in range(1, max_iter + 1):
        joint = mixture.joint_log_prob(x)
        norm = torch.logsumexp(joint, dim=-1)
        mixture = _m_step(x, torch.exp(joint - norm[:, None]), reg_covar)
        previous, bound = bound, float(norm.mean())
        if abs(bound - previous) < tol:
            converged = True
            break
    mixture.n_iter, mixture.converged = iteration, converged
    return mixture
