"""The beta-TCVAE decomposition of the KL term, as pure functions of a batch.

Chen et al. 2018 ("Isolating sources of disentanglement in VAEs", eq. 2) split the average KL
term of the ELBO, E_x KL(q(z|x) || p(z)) = E_{q(z,x)}[log q(z|x) - log p(z)], into three parts:

    index-code MI      E[log q(z|x) - log q(z)]            = I_q(x; z)
    total correlation  E[log q(z) - sum_j log q(z_j)]      = KL(q(z) || prod_j q(z_j))
    dimension-wise KL  E[sum_j log q(z_j) - log p(z)]      = sum_j KL(q(z_j) || p(z_j))

where q(z) = (1/N) sum_n q(z|x_n) is the aggregate posterior over the N training examples.
beta-TCVAE weights the total correlation alone by beta. The aggregate densities need the whole
data set; here they are estimated on a minibatch of M examples by minibatch-weighted sampling
(Chen et al. 2018, section 3.1 and appendix C.1):

    log q(z_i) ~= logsumexp_j log q(z_i | x_j) - log(N M),   j over the minibatch,

and the same per dimension for log q(z_ij). The estimator is biased: even when the minibatch is
the whole data set (M = N) it is the exact log q(z_i) minus log M, so the total correlation
estimate carries an offset of about (D - 1) log M. The offsets are constants, so the gradients
and the comparison of two models on the same batch size are unaffected. No training state: the functions take draws z,
the posterior parameters and N, and return tensors (nats per example, means over the batch).
"""

from __future__ import annotations

import math

import torch

from vaekit.core.distributions import normal_log_prob


def pairwise_log_density(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log q(z_ij | x_k) for every draw i, example k and dimension j: shape (M, M, latent_dim),
    from draws z and posterior parameters mean, logvar, each (M, latent_dim)."""
    return normal_log_prob(z[:, None, :], mean[None, :, :], logvar=logvar[None, :, :])


def log_densities(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
                  dataset_size: int) -> dict[str, torch.Tensor]:
    """Per-draw log densities, each of shape (M,): ``log_qz_x`` (log q(z_i|x_i)), ``log_qz``
    (log q(z_i), minibatch-weighted), ``log_qz_product`` (sum_j log q(z_ij), minibatch-weighted
    per dimension) and ``log_pz`` (log N(z_i; 0, I))."""
    m = z.shape[0]
    if dataset_size < m:
        raise ValueError(f"dataset_size ({dataset_size}) is smaller than the batch ({m})")
    pairwise = pairwise_log_density(z, mean, logvar)  # (M, M, D)
    log_nm = math.log(dataset_size * m)
    # The diagonal k = i is log q(z_i | x_i), the density each draw came from.
    log_qz_x = torch.diagonal(pairwise, dim1=0, dim2=1).sum(dim=0)
    log_qz = torch.logsumexp(pairwise.sum(dim=-1), dim=1) - log_nm
    log_qz_product = (torch.logsumexp(pairwise, dim=1) - log_nm).sum(dim=-1)
    log_pz = normal_log_prob(z, torch.zeros_like(z), logvar=torch.zeros_like(z)).sum(dim=-1)
    return {"log_qz_x": log_qz_x, "log_qz": log_qz, "log_qz_product": log_qz_product, "log_pz": log_pz}


def kl_decomposition(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
                     dataset_size: int) -> dict[str, torch.Tensor]:
    """The three parts of the KL term (Chen et al. 2018, eq. 2), means over the batch (0-dim):
    ``mutual_info``, ``total_correlation``, ``dimwise_kl``, and ``kl``, the single-sample estimate
    E[log q(z|x) - log p(z)] they sum to exactly (the log q(z) terms cancel in pairs)."""
    d = log_densities(z, mean, logvar, dataset_size)
    return {
        "mutual_info": (d["log_qz_x"] - d["log_qz"]).mean(),
        "total_correlation": (d["log_qz"] - d["log_qz_product"]).mean(),
        "dimwise_kl": (d["log_qz_product"] - d["log_pz"]).mean(),
        "kl": (d["log_qz_x"] - d["log_pz"]).mean(),
    }


def tcvae_penalty(parts: dict[str, torch.Tensor], beta: float, alpha: float = 1.0,
                  gamma: float = 1.0) -> torch.Tensor:
    """alpha * MI + beta * TC + gamma * dimension-wise KL (Chen et al. 2018, eq. 4): the term that
    replaces beta * KL in the beta-VAE loss; beta-TCVAE keeps alpha = gamma = 1."""
    return alpha * parts["mutual_info"] + beta * parts["total_correlation"] + gamma * parts["dimwise_kl"]
