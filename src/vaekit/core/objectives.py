"""Training objectives and schedules, as pure functions.

Normalisation (the same everywhere, so beta means one thing): sum over data and latent
dimensions, mean over the batch. Every value is in nats per example.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from vaekit.core.distributions import DiagonalGaussian


def beta_at(step: int, beta: float, warmup_steps: int = 0, cycles: int = 0, total_steps: int = 0) -> float:
    """KL weight at optimiser step ``step``: linear warm-up from 0 to ``beta`` over ``warmup_steps``
    (Bowman et al. 2016), or, with ``cycles`` > 0, cyclical annealing (Fu et al. 2019): the
    ``total_steps`` of the run fall into ``cycles`` equal cycles, and in each the weight rises
    linearly from 0 to ``beta`` over the first half (their R = 0.5) and holds at ``beta`` after."""
    if cycles > 0 and total_steps > 0:
        period = total_steps / cycles
        return beta * min(1.0, (step % period) / (period / 2))
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, step / warmup_steps)


def kl_term(
    kl_per_dim: torch.Tensor, free_bits: float = 0.0, weights: Optional[torch.Tensor] = None,
    global_mean: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(penalised KL, true KL), both means over the batch of the KL to the prior, in nats, from the
    (batch, latent_dim) KL of each example and dimension (``DiagonalGaussian.kl_per_dim``), or
    the (batch, 1) estimate of a learned prior (:meth:`vaekit.core.models.VAEOutput.kl_columns`).

    Free bits (Kingma et al. 2016, eq. 15): each latent dimension's batch-mean KL is penalised
    only above ``free_bits`` nats, sum_d max(lambda, E_batch[KL_d]), so the optimiser gains
    nothing by pushing a dimension's rate below lambda and posterior collapse is discouraged.
    ``weights`` (summing to 1 over the batch) replace the plain mean, e.g. for trimmed training.
    ``global_mean``: when this batch is one slice of a larger batch (data-parallel training), that
    batch's per-dimension mean KL (no gradient); it decides which dimensions are above the floor,
    and there this slice's own mean carries the gradient.
    """
    per_dim = kl_per_dim.mean(dim=0) if weights is None else (weights[:, None] * kl_per_dim).sum(dim=0)  # (latent_dim,)
    kl = per_dim.sum()
    if free_bits > 0 and global_mean is not None:
        return torch.where(global_mean >= free_bits, per_dim, torch.full_like(per_dim, free_bits)).sum(), kl
    if free_bits > 0:
        return per_dim.clamp(min=free_bits).sum(), kl
    return kl, kl


def trim_at(step: int, trim: float, total_steps: int, start: float = 0.25) -> float:
    """The trimmed fraction at optimiser step ``step``: 0 for the first ``start`` fraction of the
    ``total_steps`` (a warm-up in which the model learns the bulk of the data), ``trim`` after it."""
    return trim if trim > 0 and step >= start * total_steps else 0.0


def trim_mask(per_example: torch.Tensor, trim: float) -> torch.Tensor:
    """0/1 weights (float, no gradient) that leave out the ``floor(trim * batch)`` largest values.

    Ties are broken by position (``torch.topk``), so exactly that many examples are left out;
    a batch smaller than ``1 / trim`` keeps every example.
    """
    keep = torch.ones_like(per_example)
    drop = int(trim * per_example.shape[0])
    if drop > 0:
        keep[torch.topk(per_example.detach(), drop).indices] = 0.0
    return keep


def elbo_loss(
    x: torch.Tensor, output, beta: float = 1.0, free_bits: float = 0.0, trim: float = 0.0
) -> dict[str, torch.Tensor]:
    """The negative beta-ELBO (Kingma & Welling 2014, eq. 3; Higgins et al. 2017, eq. 4).

    ``loss = E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z))`` with a single reparameterised draw.
    Returns 0-dim tensors: ``loss`` (what is minimised), ``recon`` (-log p(x|z)), ``kl`` (true
    KL) and ``elbo`` (= -(recon + kl), the bound on log p(x) whatever beta is).

    ``trim > 0``: trimmed-loss training. The ``floor(trim * batch)`` examples of the batch with the
    largest negative ELBO (``recon + kl`` of the example, whatever beta is) are left out, and every
    term above (free bits included) is the mean over the kept examples only, so the left-out ones
    get no gradient. On contaminated data the worst-explained rows are mostly the anomalies, which
    the model then learns less of: a trimmed (least-trimmed-squares-like) estimator, as in robust
    deep autoencoders (Zhou & Paffenroth 2017) and self-paced learning (Kumar et al. 2010).
    """
    recon_i = -output.likelihood.log_prob(x)  # (batch,)
    kl_d = output.kl_columns()  # (batch, latent_dim), or (batch, 1) under a learned prior
    weights = None
    if trim > 0:
        if not trim < 1:
            raise ValueError(f"trim must be in [0, 1), not {trim}")
        weights = trim_mask(recon_i + kl_d.sum(dim=-1), trim)
        weights = weights / weights.sum()
    recon = recon_i.mean() if weights is None else (weights * recon_i).sum()
    penalised, kl = kl_term(kl_d, free_bits, weights)
    return {"loss": recon + beta * penalised, "recon": recon, "kl": kl, "elbo": -(recon + kl)}


def log_weights_given(log_px: torch.Tensor, prior: DiagonalGaussian, proposal: DiagonalGaussian,
                      z: torch.Tensor) -> torch.Tensor:
    """log w = log p(x|z) + log p(z) - log q(z) at draws z from the proposal q, given log p(x|z).

    The one importance weight (Burda et al. 2015, eq. 8, with q(z|x) as the proposal): the
    log-likelihood, the IWAE bound, the anomaly scores and imputation (whose ``log_px`` is the
    likelihood of the observed cells only, and whose proposal may be fitted) all compute it here.
    """
    return log_px + prior.log_prob(z) - proposal.log_prob(z)


def _weighted_terms_at(model, x, q: DiagonalGaussian, z: torch.Tensor, y=None, prior=None):
    """(log p(x|z), log w) at given draws z (k, batch, latent_dim) from q: each (k, batch);
    ``prior``: the model's p(z) when the caller already holds it (a VampPrior costs an encoder pass)."""
    log_px = model.decode(z, y).log_prob(x)
    return log_px, log_weights_given(log_px, model.prior if prior is None else prior, q, z)


def _weighted_terms(model, x, num_samples, y=None, generator=None, posterior=None):
    q = model.encode(x, y) if posterior is None else posterior
    z = q.rsample(num_samples, generator=generator)  # (k, batch, latent_dim)
    return (q, *_weighted_terms_at(model, x, q, z, y))


def log_importance_weights(
    model, x: torch.Tensor, num_samples: int, y: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None, posterior: Optional[DiagonalGaussian] = None,
) -> torch.Tensor:
    """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x), z_k ~ q(z|x); shape (num_samples, batch).

    The encoder runs once per example (pass ``posterior`` to reuse it across chunks of samples);
    the decoder runs on all ``num_samples * batch`` latents at once.
    """
    return _weighted_terms(model, x, num_samples, y, generator, posterior)[2]


def log_importance_weights_at(model, x: torch.Tensor, q: DiagonalGaussian, z: torch.Tensor, y=None) -> torch.Tensor:
    """:func:`log_importance_weights` at given draws z (k, batch, latent_dim) from the posterior q."""
    return _weighted_terms_at(model, x, q, z, y)[1]


def sample_chunks(num_samples: int, largest: int, equal: bool = True) -> list[int]:
    """The sizes of the chunks in which ``num_samples`` importance samples are drawn, none above
    ``largest`` (and at least 1), so that memory does not grow with ``num_samples``.

    ``equal=True``: as few chunks as ``largest`` allows, all but the last of the smallest size
    that covers ``num_samples`` in that many (5000 samples, at most 668 per chunk: 8 chunks of
    625, not 7 of 668 and one of 324), so a compiled chunk mostly keeps one shape;
    ``equal=False``: chunks of ``largest`` and the remainder. The sizes decide which draws the
    seeded generator gives, so a caller keeps its rule to keep its numbers.
    """
    chunk = max(1, min(num_samples, largest))
    if equal:
        chunk = math.ceil(num_samples / math.ceil(num_samples / chunk))
    return [min(chunk, num_samples - start) for start in range(0, num_samples, chunk)]


class RunningLogSumExp:
    """log sum_k exp(log w_k) per example, over samples that arrive in chunks of shape (k, batch).

    The one running log-sum-exp of the importance-sampled log-likelihood (Burda et al. 2015,
    eq. 8) and of the self-normalised weights of imputation: memory is one chunk's whatever the
    number of samples, and the total is accumulated in float64 (the weights stay in the model's
    dtype until they are added).
    """

    def __init__(self, batch: int, device=None):
        self.total = torch.full((batch,), -math.inf, dtype=torch.float64, device=device)

    def add(self, log_w: torch.Tensor) -> torch.Tensor:
        """Add one chunk of log-weights (k, batch); returns the new total (batch,), float64."""
        self.total = torch.logaddexp(self.total, torch.logsumexp(log_w.double(), dim=0))
        return self.total


def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """The importance-weighted bound log (1/K) sum_k w_k per example (Burda et al. 2015, eq. 8)."""
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def iwae_loss(model, x: torch.Tensor, num_samples: int, y=None, generator=None) -> dict[str, torch.Tensor]:
    """Negative IWAE bound with K samples (Burda et al. 2015), mean over the batch; K=1 is the ELBO.

    ``recon`` and ``kl`` are reported as in the ELBO (mean over the K draws, closed-form KL under
    N(0, I), the draws' estimate under a learned prior), so
    the curves stay comparable; ``elbo`` holds the K-sample bound being maximised.
    """
    q = model.encode(x, y)
    return iwae_loss_at(model, x, q, q.rsample(num_samples, generator=generator), y)


def iwae_loss_at(model, x: torch.Tensor, q: DiagonalGaussian, z: torch.Tensor, y=None) -> dict[str, torch.Tensor]:
    """:func:`iwae_loss` at given draws z (k, batch, latent_dim) from the posterior q (e.g. from
    noise drawn for a whole global batch under torchrun)."""
    prior = model.prior
    log_px, log_w = _weighted_terms_at(model, x, q, z, y, prior)
    bound = iwae_bound(log_w).mean()
    # the closed form under N(0, I); under a learned prior the draws' mean of log q(z|x) - log p(z)
    kl = q.kl().mean() if isinstance(prior, DiagonalGaussian) else (log_px - log_w).mean()
    return {"loss": -bound, "recon": -log_px.mean(), "kl": kl, "elbo": bound}
