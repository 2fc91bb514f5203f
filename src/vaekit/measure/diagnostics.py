"""Latent diagnostics: KL per dimension, active units, mutual information, posterior collapse.

All values are in nats. They read the encoder only (no decoder), so they are cheap enough to
compute after every epoch.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch

from vaekit.core.device import device_of
from vaekit.core.distributions import LOG_2PI, DiagonalGaussian, standard_normal

ACTIVE_THRESHOLD = 0.01  # Burda et al. 2015, section 5.2
# nats: a traversal row of a dimension with less KL than this looks unchanging (vaekit traverse, the report)
TRAVERSE_KL = 0.1


def _encode_all(model, x: torch.Tensor, y: Optional[torch.Tensor], batch_size: int):
    device = device_of(model)
    means, logvars = [], []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size].to(device)
        yb = None if y is None else y[start : start + batch_size].to(device)
        q = model.encode(xb, yb)
        means.append(q.mean.double())
        logvars.append(q.logvar.double())
    return torch.cat(means), torch.cat(logvars)


def kl_per_dim(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """E_x KL(q(z_d|x) || N(0, 1)) for each latent dimension d, shape (latent_dim,), from the
    encoder's (already clamped) means and log-variances of each example."""
    return DiagonalGaussian(mean, logvar).kl_per_dim().mean(dim=0)


def active_units(mean: torch.Tensor, threshold: float = ACTIVE_THRESHOLD) -> tuple[int, torch.Tensor]:
    """(count, per-dimension activity) where activity A_d = Cov_x(E_q[z_d|x]) (Burda et al. 2015, eq. 19).

    Dimension d is active when A_d > ``threshold``: a unit whose posterior mean does not move
    with the input carries no information about it.
    """
    activity = mean.var(dim=0, unbiased=True) if mean.shape[0] > 1 else torch.zeros(mean.shape[1], dtype=mean.dtype)
    return int((activity > threshold).sum()), activity


def mutual_information(
    mean: torch.Tensor, logvar: torch.Tensor, generator: Optional[torch.Generator] = None
) -> float:
    """Monte Carlo estimate of I_q(x; z) under the encoder's joint q(x, z) = p_data(x) q(z|x).

    Hoffman & Johnson (2016): E_x KL(q(z|x) || p(z)) = I_q(x; z) + KL(q(z) || p(z)), so
    I_q(x; z) = E_{x, z~q(z|x)}[log q(z|x) - log q(z)], with the aggregate posterior
    q(z) = (1/N) sum_n q(z|x_n) over the N examples given. One draw z_n per example; the
    estimate lies in [0, log N] (the data are N points), so use a few hundred examples or more.
    """
    n, d = mean.shape
    if n < 2:
        return 0.0
    var = logvar.exp()
    eps = standard_normal(mean.shape, generator, dtype=mean.dtype)
    z = mean + var.sqrt() * eps  # (n, d): z_n ~ q(z|x_n)
    # log q(z_n|x_n), written in eps = (z_n - mu_n) / sigma_n, which is exact here
    log_q_own = (-0.5 * (LOG_2PI + logvar + eps**2)).sum(-1)
    # log q(z_n|x_m) for all pairs, as two (n, d) x (d, n) products: the squared distance
    # sum_d (z_nd - mu_md)^2 / v_md expands to z^2 . (1/v) - 2 z . (mu/v) + sum_d mu_md^2 / v_md
    # (in float64; an (n, n, d) tensor of the terms was much slower, every epoch: bench/results/choices.md)
    inv = torch.exp(-logvar)
    per_m = -0.5 * (d * LOG_2PI + logvar.sum(-1) + (mean.square() * inv).sum(-1))  # (n,)
    scaled = (mean * inv).T
    block = max(1, 2**22 // n)  # rows of z at a time: at most ~4M pairs (32 MB) in memory
    log_agg = torch.cat([
        torch.logsumexp(torch.addmm(per_m[None, :], zb.square(), inv.T, alpha=-0.5).addmm_(zb, scaled), dim=1)
        for zb in z.split(block)
    ]) - math.log(n)
    return float((log_q_own - log_agg).mean())


@torch.no_grad()
def latent_diagnostics(
    model, x: torch.Tensor, y: Optional[torch.Tensor] = None, batch_size: int = 1000,
    mi_examples: int = 1000, threshold: float = ACTIVE_THRESHOLD, seed: int = 0,
) -> dict[str, Any]:
    """KL per latent dimension, active units and I_q(x; z) of ``model`` on ``x`` (nats).

    Returns ``kl_per_dim`` (list), ``kl`` (their sum), ``active_units``, ``activity`` (list of
    Cov_x(E_q[z_d])) and ``mutual_info`` (estimated on the first ``mi_examples`` examples, whose
    ceiling ``log(mi_examples)`` is also returned as ``mutual_info_max``).
    """
    was_training = model.training
    model.eval()
    try:
        mean, logvar = _encode_all(model, x, y, batch_size)
    finally:
        model.train(was_training)
    mean, logvar = mean.cpu(), logvar.cpu()
    per_dim = kl_per_dim(mean, logvar)
    count, activity = active_units(mean, threshold)
    m = min(mi_examples, mean.shape[0])
    g = torch.Generator().manual_seed(seed)
    return {
        "kl": float(per_dim.sum()),
        "kl_per_dim": [float(v) for v in per_dim],
        "active_units": count,
        "latent_dim": int(mean.shape[1]),
        "activity": [float(v) for v in activity],
        "mutual_info": mutual_information(mean[:m], logvar[:m], g),
        "mutual_info_max": math.log(m) if m > 0 else 0.0,
    }


def dims_by_kl(diagnostics: dict[str, Any], threshold: float = ACTIVE_THRESHOLD, kl_threshold: float = 0.0) -> list[int]:
    """The active latent dimensions of :func:`latent_diagnostics`' result, the largest KL first
    (every dimension, in the same order, when none is active).

    Active: Cov_x(E_q[z_d]) > ``threshold`` (Burda et al.'s test) and, with ``kl_threshold`` > 0,
    a KL above it too; the covariance test alone keeps dimensions whose posterior means wander a
    little while their KL (< 0.1 nats) is too small to change a decoded image."""
    kl, activity = diagnostics["kl_per_dim"], diagnostics["activity"]
    active = [d for d, a in enumerate(activity) if a > threshold and kl[d] > kl_threshold] or list(range(len(kl)))
    return sorted(active, key=lambda d: -kl[d])


def collapse_message(kl: float, active: int, latent_dim: int, kl_floor: float = 0.1) -> Optional[str]:
    """A warning naming the remedies when the posterior has collapsed onto the prior, else None.

    Collapse: no active unit, or a total KL below ``kl_floor`` nats per example (the latents
    then carry almost no information about x; Bowman et al. 2016).
    """
    if active > 0 and kl >= kl_floor:
        return None
    if active == 0:
        what = (f"posterior collapse: no latent unit is active (0 of {latent_dim} have Cov_x(E_q[z_d]) > 0.01), "
                f"KL {kl:.3g} nats per example")
    else:
        what = (f"posterior collapse: KL {kl:.3g} nats per example (below {kl_floor:g}), so z carries almost no "
                f"information about x, although {active} of {latent_dim} units pass the activity threshold")
    return (
        f"{what}; the decoder ignores z. Remedies: KL warm-up (--warmup-steps 5000), free bits (--free-bits 0.5), "
        "a smaller beta, or a weaker decoder (fewer/narrower layers)"
    )


def pca_basis(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """(centre, basis, explained) of the rows of ``z``: their mean (d,), the first two principal
    directions as rows (min(d, 2), d; the identity when d <= 2) and their fractions of the
    variance, in float64. A point p of the plane maps back to the latent vector centre + p @ basis."""
    centre = z.double().mean(dim=0)
    if z.shape[1] <= 2:
        return centre, torch.eye(z.shape[1], dtype=torch.float64), [1.0] * z.shape[1]
    _, s, v = torch.linalg.svd(z.double() - centre, full_matrices=False)
    explained = (s**2 / (s**2).sum()).tolist()
    return centre, v[:2], explained[:2]


def pca_2d(z: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """(the first two principal components of the rows of ``z``, their fractions of the variance)."""
    centre, basis, explained = pca_basis(z)
    return ((z.double() - centre) @ basis.T).float(), explained


@torch.no_grad()
def latent_plane(model, steps: int = 15, low: float = 0.03, high: float = 0.97) -> torch.Tensor:
    """Decoded means over a 2-D latent plane: (steps, steps, *data_shape), rows top to bottom.

    The grid points are prior quantiles Phi^-1(u) for u evenly spaced in [low, high], so they
    cover the prior's mass evenly (as in Kingma & Welling 2014, fig. 4). Needs latent_dim = 2.
    """
    if model.latent_dim != 2:
        raise ValueError("latent_plane needs a model with latent_dim = 2")
    device = device_of(model)
    u = torch.linspace(low, high, steps, dtype=torch.float64)
    q = (torch.special.ndtri(u)).float().to(device)
    z1, z0 = torch.meshgrid(q.flip(0), q, indexing="ij")  # z1 grows upwards
    z = torch.stack([z0.reshape(-1), z1.reshape(-1)], dim=-1)
    images = model.decode(z).mean.cpu()
    return images.reshape(steps, steps, *images.shape[1:])


class PosteriorCollapseWarning(UserWarning):
    """Training ended with (almost) no information in the latent code."""
