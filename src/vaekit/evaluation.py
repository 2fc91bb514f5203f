"""Measuring a trained model: the ELBO breakdown and importance-sampled log-likelihood.

Everything is in nats per example. Evaluation is seeded, so the same model and data give the
same numbers.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from .objectives import elbo_loss, iwae_bound, log_importance_weights


def _model_device(model) -> torch.device:
    return next(model.parameters()).device


def _batches(x: torch.Tensor, y: Optional[torch.Tensor], batch_size: int):
    for start in range(0, x.shape[0], batch_size):
        yield x[start : start + batch_size], (None if y is None else y[start : start + batch_size])


@torch.no_grad()
def elbo_breakdown(
    model, x: torch.Tensor, y: Optional[torch.Tensor] = None, beta: float = 1.0,
    batch_size: int = 1000, seed: int = 0,
) -> dict[str, float]:
    """Mean ``loss`` (recon + beta*KL), ``recon``, ``kl`` and ``elbo`` over ``x``, nats per example.

    One reparameterised draw per example, from a generator seeded with ``seed``.
    """
    device = _model_device(model)
    g = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    for xb, yb in _batches(x, y, batch_size):
        xb = xb.to(device)
        yb = None if yb is None else yb.to(device)
        terms = elbo_loss(xb, model(xb, yb, generator=g))
        sums += torch.stack([terms["recon"], terms["kl"], -terms["elbo"]]).double() * xb.shape[0]
    model.train(was_training)
    recon, kl, nelbo = (sums / max(x.shape[0], 1)).tolist()
    return {"loss": recon + beta * kl, "recon": recon, "kl": kl, "elbo": -nelbo}


@torch.no_grad()
def log_likelihood(
    model, x: torch.Tensor, num_samples: int = 1000, y: Optional[torch.Tensor] = None,
    batch_size: int = 100, max_elements: int = 2**24, seed: int = 0,
) -> torch.Tensor:
    """Importance-sampled log p(x) per example (Burda et al. 2015, eq. 8 with q(z|x) as proposal).

    log p(x) ~= log (1/k) sum_k p(x|z_k) p(z_k) / q(z_k|x). The encoder runs once per example;
    samples are drawn in chunks so that no decoder output holds more than ``max_elements``
    numbers, whatever ``num_samples`` is. Returns a float64 tensor of shape ``(batch,)`` on the CPU.
    """
    device = _model_device(model)
    g = torch.Generator(device=device).manual_seed(seed)
    data_size = int(math.prod(x.shape[1:]))
    out = []
    for xb, yb in _batches(x, y, batch_size):
        xb = xb.to(device)
        yb = None if yb is None else yb.to(device)
        q = model.encode(xb, yb)
        chunk = max(1, min(num_samples, max_elements // (xb.shape[0] * data_size)))
        log_w = []
        for start in range(0, num_samples, chunk):
            k = min(chunk, num_samples - start)
            log_w.append(log_importance_weights(model, xb, k, yb, g, posterior=q).double())
        out.append(iwae_bound(torch.cat(log_w, dim=0)).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


@torch.no_grad()
def posterior_means(model, x: torch.Tensor, y: Optional[torch.Tensor] = None, batch_size: int = 1000) -> torch.Tensor:
    """E_q[z|x] for every example (an embedding), on the CPU."""
    device = _model_device(model)
    return torch.cat(
        [model.encode(xb.to(device), None if yb is None else yb.to(device)).mean.cpu() for xb, yb in _batches(x, y, batch_size)]
    )
