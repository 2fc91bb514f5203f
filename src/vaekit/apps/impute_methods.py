"""The three ways :func:`vaekit.impute` fills missing cells, by iterating a trained model.

- pseudo-Gibbs (Rezende et al. 2014, sec. 5.2): z ~ q(z | x), then the missing cells <- E[x_m | z];
  repeat. Simple, but not a true sampler of p(x_m | x_o), and with a Gaussian decoder it can
  diverge (a RuntimeWarning says so).
- Metropolis-within-Gibbs (Mattei & Frellsen 2018, "Leveraging the exact likelihood of deep
  latent variable models", Algorithm 1): a chain on z with q(z | x) as the proposal; propose
  z' ~ q(z | x_t) and accept with probability
      min(1, p(x_o | z') p(z') q(z_t | x_t) / (p(x_o | z_t) p(z_t) q(z' | x_t))) = min(1, w(z') / w(z_t)),
  then x_m ~ p(x_m | z_t). Its stationary law is the model's p(z, x_m | x_o). The answer is the
  mean of E[x_m | z_t] over the second half of the chain.
- importance (the single imputation of Mattei & Frellsen 2019, MIWAE, eq. 9): the conditional
  mean E[x_m | x_o] = E_{p(z|x_o)}[E[x_m | z]], estimated by self-normalised importance
  sampling, sum_k w_k E[x_m | z_k] with z_k ~ r(z) and w_k proportional to p(x_o | z_k) p(z_k) / r(z_k).
  The conditional mean is the fill with the least expected squared error under the model. The
  proposal r is fitted to each example's observed cells (:func:`fit_observed_posterior`): the
  encoder has only seen complete inputs, and its posterior of a filled-in input is confident
  about the fill, so weights from it rest on a few draws near one completion (the estimate is
  then closer to one sample of p(x_m | x_o) than to its mean). The fit starts at the encoder's
  posterior of the input after some pseudo-Gibbs sweeps, and its scales are widened by
  ``PROPOSAL_WIDEN`` (a variational fit under-covers the posterior it fits).

Every weight is :func:`vaekit.core.objectives.log_weights_given` with the likelihood of the
observed cells only.
"""

from __future__ import annotations

import math
import warnings
from typing import Optional

import torch
from tqdm.auto import tqdm

from vaekit.core.distributions import Bernoulli, DiagonalGaussian, Gaussian
from vaekit.core.objectives import RunningLogSumExp, log_weights_given, sample_chunks
from vaekit.errors import ConfigError

# The per-example fit of the importance fill (fit_observed_posterior): Adam steps, learning rate,
# samples per step, examples fitted at once; and the factor on its scales for the proposal. Chosen
# on MNIST test images that bench/impute.py does not score (bench/results/choices.md).
FIT_STEPS, FIT_LR, FIT_NUM_SAMPLES, FIT_ROWS = 200, 0.05, 4, 1024
PROPOSAL_WIDEN = 1.5


def _elementwise_log_prob(likelihood, x: torch.Tensor) -> torch.Tensor:
    """log p(x_i | z) per cell (not summed): the likelihood's own formula with no event dimensions.

    Not through ``torch.distributions``: its Bernoulli refuses grey-level pixels in [0, 1]
    (e.g. MNIST with a model trained on dynamically binarised images), for which the Bernoulli
    log-likelihood x log p + (1 - x) log(1 - p) is still the quantity the model was fit with.
    """
    if isinstance(likelihood, Bernoulli):
        return Bernoulli(likelihood.logits, event_dims=0).log_prob(x)
    if isinstance(likelihood, Gaussian):
        return Gaussian(likelihood.mean, likelihood.scale, event_dims=0).log_prob(x)
    raise ConfigError(f"imputation supports Bernoulli and Gaussian likelihoods, not {type(likelihood).__name__}")


def observed_log_prob(likelihood, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log p(x_o | z): the likelihood of the observed cells only, one number per (sample, example)."""
    # the missing cells (NaN in x) are scored at 0 and then weighted by 0; multiplying by the mask
    # is much faster than torch.where with the mask broadcast over the sample dimension
    # (bench/results/choices.md)
    lp = _elementwise_log_prob(likelihood, torch.where(mask, x, 0.0))
    return (lp * mask.to(lp.dtype)).flatten(-len(x.shape) + 1).sum(-1)


def pseudo_gibbs(model, x: torch.Tensor, mask: torch.Tensor, current: torch.Tensor, y, num_iter: int,
                 generator: torch.Generator) -> torch.Tensor:
    """``num_iter`` sweeps of z ~ q(z | current), missing cells <- E[x_m | z], from ``current``."""
    for _ in range(num_iter):
        z = model.encode(current, y).rsample(generator=generator)
        current = torch.where(mask, x, model.decode(z, y).mean)
    return current


def warn_if_diverged(filled: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, factor: float = 10.0) -> None:
    """Warn when pseudo-Gibbs fills have run away: beyond ``factor`` times the largest observed magnitude.

    The chain has no accept step, and with a Gaussian decoder the encoder-decoder loop of ReLU
    networks can amplify itself (seen on the credit table with a latent of 8, bench/results/impute.md);
    Metropolis-within-Gibbs and the importance fill do not. The warning points at the caller of
    :func:`vaekit.impute`.
    """
    limit = factor * float(x[mask].abs().max()) if bool(mask.any()) else float("inf")
    worst = float(filled[~mask].abs().max()) if bool((~mask).any()) else 0.0
    if not worst <= limit:  # also a NaN
        warnings.warn(f"pseudo-Gibbs fills diverged (largest {worst:.3g}, observed values at most {limit / factor:.3g}); "
                      "use method='importance' (the default) or 'metropolis'", RuntimeWarning, stacklevel=3)


def metropolis(model, x: torch.Tensor, mask: torch.Tensor, current: torch.Tensor, y, num_iter: int,
               generator: torch.Generator) -> torch.Tensor:
    """Metropolis-within-Gibbs (Mattei & Frellsen 2018, Algorithm 1): the mean of E[x | z_t] over
    the second half of the chain, observed cells kept."""
    z = model.encode(current, y).rsample(generator=generator)
    total, kept = torch.zeros_like(x), 0
    for t in range(num_iter):
        q = model.encode(current, y)
        proposal = q.rsample(generator=generator)
        lik_new, lik_old = model.decode(proposal, y), model.decode(z, y)
        log_ratio = (log_weights_given(observed_log_prob(lik_new, current, mask), model.prior, q, proposal)
                     - log_weights_given(observed_log_prob(lik_old, current, mask), model.prior, q, z))
        accept = torch.rand(log_ratio.shape, generator=generator, device=x.device).log() < log_ratio
        z = torch.where(accept[:, None], proposal, z)
        lik = model.decode(z, y)
        current = torch.where(mask, x, lik.sample(generator=generator))
        if t >= num_iter // 2:
            total += torch.where(mask, x, lik.mean)
            kept += 1
    return total / kept


def fit_observed_posterior(
    model, x: torch.Tensor, mask: torch.Tensor, start: torch.Tensor, y: Optional[torch.Tensor] = None,
    steps: int = FIT_STEPS, lr: float = FIT_LR, num_samples: int = FIT_NUM_SAMPLES,
    generator: Optional[torch.Generator] = None, progress: bool = False,
) -> DiagonalGaussian:
    """A diagonal Gaussian over z for each example, fitted to its observed cells only.

    Maximises E_r[log p(x_o | z) + log p(z)] + H[r], the ELBO of the observed cells (its optimum is
    the diagonal Gaussian closest to p(z | x_o) in KL(r || p)), by ``steps`` Adam steps on each
    example's mean and log scale with ``num_samples`` reparameterised draws per step, started at
    the encoder's posterior of ``start`` (per-example stochastic variational inference, as in the
    semi-amortised refinement of Kim et al. 2018). Examples are fitted independently (Adam's update
    is elementwise), ``FIT_ROWS`` at a time; the model's parameters get no gradient.
    """
    q = model.encode(start, y)
    means, logvars = [], []
    bar = tqdm(total=steps * -(-x.shape[0] // FIT_ROWS), desc="fitting each row's posterior", unit="step",
               disable=not progress, leave=False)
    for lo in range(0, x.shape[0], FIT_ROWS):
        rows = slice(lo, lo + FIT_ROWS)
        yb = None if y is None else y[rows]
        mean = q.mean[rows].detach().clone().requires_grad_(True)
        log_scale = (0.5 * q.logvar[rows]).detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([mean, log_scale], lr=lr)
        with torch.enable_grad():
            for _ in range(steps):
                z = DiagonalGaussian(mean, 2 * log_scale).rsample(num_samples, generator=generator)
                fit = (observed_log_prob(model.decode(z, yb), x[rows], mask[rows]) + model.prior.log_prob(z)).mean(0)
                # the entropy of r is sum_d log scale_d up to a constant
                mean.grad, log_scale.grad = torch.autograd.grad(-(fit + log_scale.sum(-1)).sum(), [mean, log_scale])
                opt.step()
                bar.update(1)
        means.append(mean.detach())
        logvars.append(2 * log_scale.detach())
    bar.close()
    return DiagonalGaussian(torch.cat(means), torch.cat(logvars))


def conditional_mean(model, x, mask, proposal: DiagonalGaussian, y, num_samples: int, g,
                     max_elements: int = 2**22, progress: bool = False) -> torch.Tensor:
    """sum_k w_k E[x | z_k], z_k ~ ``proposal``, self-normalised weights (see the module docstring).

    Chunks of samples keep every decoder output under ``max_elements`` numbers; the chunks are
    combined by a running log-sum-exp, so memory does not grow with ``num_samples``.
    """
    log_sum_w = RunningLogSumExp(x.shape[0], x.device)
    weighted = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    shape = (-1, *[1] * (x.dim() - 1))
    sizes = sample_chunks(num_samples, max_elements // max(1, x[0].numel() * x.shape[0]), equal=False)
    for size in tqdm(sizes, desc=f"averaging over {num_samples} draws", unit="chunk", disable=not progress, leave=False):
        z = proposal.rsample(size, generator=g)  # (k, batch, latent_dim)
        lik = model.decode(z, y)
        log_w = log_weights_given(observed_log_prob(lik, x, mask), model.prior, proposal, z).double()
        old_total = log_sum_w.total
        new_total = log_sum_w.add(log_w)
        # rescale what is summed so far to the new normaliser, then add this chunk's share
        weighted *= torch.exp(old_total - new_total).view(shape)
        share = torch.exp(log_w - new_total)  # (k, batch)
        weighted += (share.to(lik.mean.dtype).view(*share.shape, *[1] * (x.dim() - 1)) * lik.mean).sum(0)
    return weighted.to(x.dtype)


def importance_fill(model, x: torch.Tensor, mask: torch.Tensor, current: torch.Tensor, y, num_samples: int,
                    fit_steps: int, generator: torch.Generator, progress: bool = False) -> torch.Tensor:
    """The conditional mean E[x_m | x_o] from a proposal fitted to the observed cells, started at
    the encoder's posterior of ``current``, its scales widened by ``PROPOSAL_WIDEN``."""
    fitted = fit_observed_posterior(model, x, mask, current, y, steps=fit_steps, generator=generator, progress=progress)
    proposal = DiagonalGaussian(fitted.mean, fitted.logvar + 2 * math.log(PROPOSAL_WIDEN))
    return torch.where(mask, x, conditional_mean(model, x, mask, proposal, y, num_samples, generator, progress=progress))
