"""Measuring a trained model: the ELBO breakdown, importance-sampled log-likelihood and the ELBO gap.

Latent diagnostics (KL per dimension, active units, mutual information) are in :mod:`vaekit.diagnostics`.

Everything is in nats per example. Evaluation is seeded, so the same model and data give the
same numbers.
"""

from __future__ import annotations

import math
import warnings
from typing import Optional

import torch
from tqdm.auto import tqdm

from vaekit.core.distributions import DiagonalGaussian
from vaekit.errors import ConfigError
from vaekit.core.objectives import elbo_loss, log_importance_weights_at


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


def _chunk_size(num_samples: int, largest: int) -> int:
    """Samples per chunk: at most ``largest``, in equal chunks (5000 samples, at most 668 per
    chunk: 8 chunks of 625, not 7 of 668 and one of 324), so a compiled chunk keeps one shape."""
    chunks = math.ceil(num_samples / max(1, min(num_samples, largest)))
    return math.ceil(num_samples / chunks)


def _chunk_log_weights(model, compile: bool):
    """log w of one chunk as a function of (x, y, posterior mean, log-variance, noise).

    The noise comes in as an argument, drawn by the caller from the seeded generator with
    :meth:`DiagonalGaussian.noise`, exactly as ``rsample`` would draw it, so the compiled and
    eager forms consume the same random numbers and differ only by float rounding.
    ``torch.compile`` fuses the passes over the decoder's output (the Bernoulli or Gaussian
    log-density and its sums) into one kernel beside the matmuls; on a CPU that removes most of
    the time outside the matmuls.
    """
    def log_weights(x, y, mean, logvar, eps):
        q = DiagonalGaussian(mean, logvar)
        return log_importance_weights_at(model, x, q, q.reparameterize(eps), y)

    if not compile:
        return log_weights
    compiled = torch.compile(log_weights)

    def guarded(*args):
        nonlocal compiled
        if compiled is None:
            return log_weights(*args)
        try:
            return compiled(*args)
        except Exception as err:  # no C++ compiler, an unsupported op, ...: warn once, go on eagerly
            first = str(err).splitlines()[0] if str(err) else ""
            warnings.warn(f"torch.compile failed ({type(err).__name__}: {first}); evaluating without it",
                          RuntimeWarning, stacklevel=2)
            compiled = None
            return log_weights(*args)

    return guarded


def _estimate(log_weights, xb, yb, q, num_samples: int, per_block: int, g) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(x) estimate, mean log-weight) of one block of examples, float64."""
    chunk = _chunk_size(num_samples, per_block // xb.shape[0])
    # Running log-sum-exp over chunks of samples (memory does not grow with num_samples); the
    # weights stay in the model's dtype, the accumulation is float64.
    acc = torch.full((xb.shape[0],), -math.inf, dtype=torch.float64, device=xb.device)
    sum_log_w = torch.zeros(xb.shape[0], dtype=torch.float64, device=xb.device)
    for start in range(0, num_samples, chunk):
        eps = q.noise(min(chunk, num_samples - start), generator=g)
        log_w = log_weights(xb, yb, q.mean, q.logvar, eps).double()
        acc = torch.logaddexp(acc, torch.logsumexp(log_w, dim=0))
        sum_log_w += log_w.sum(dim=0)
    return acc - math.log(num_samples), sum_log_w / num_samples


def _importance_sampling(
    model, x: torch.Tensor, num_samples: int, y: Optional[torch.Tensor], batch_size: Optional[int],
    max_elements: int, seed: int, compile: bool = False, progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(x) estimate, mean log-weight) per example, both float64 on the CPU.

    The mean of the log-weights is an unbiased k-sample estimate of the ELBO, so the ELBO gap
    log p(x) - ELBO comes from the same draws at no extra cost.
    """
    if num_samples < 1:
        raise ConfigError(f"num_samples must be at least 1, not {num_samples}")
    device = _model_device(model)
    g = torch.Generator(device=device).manual_seed(seed)
    n = x.shape[0]
    data_size = int(math.prod(x.shape[1:]))
    # Work in blocks of (samples x examples) whose decoder output holds at most max_elements
    # numbers. With many samples per example it pays to put all of them into one decoder call
    # (a tall matmul) and take fewer examples per block.
    per_block = max(1, max_elements // data_size)  # decoder rows per block
    if batch_size is None:
        batch_size = max(1, min(n, per_block // min(num_samples, per_block)))
    log_weights = _chunk_log_weights(model, compile)
    log_px_out, elbo_out = [], []
    was_training = model.training
    model.eval()
    bar = tqdm(total=n, disable=not progress, unit="example", desc=f"log p(x), k={num_samples}", dynamic_ncols=True)
    try:
        for xe, ye in _batches(x, y, max(batch_size, 1000)):
            xe = xe.to(device)
            ye = None if ye is None else ye.to(device)
            qe = model.encode(xe, ye)  # the encoder runs once per example, in large batches
            for lo in range(0, xe.shape[0], batch_size):
                hi = lo + batch_size
                xb, yb = xe[lo:hi], None if ye is None else ye[lo:hi]
                q = DiagonalGaussian(qe.mean[lo:hi], qe.logvar[lo:hi])
                log_px, elbo = _estimate(log_weights, xb, yb, q, num_samples, per_block, g)
                log_px_out.append(log_px.cpu())
                elbo_out.append(elbo.cpu())
                bar.update(xb.shape[0])
    finally:
        bar.close()
        model.train(was_training)
    if not log_px_out:
        empty = torch.zeros(0, dtype=torch.float64)
        return empty, empty
    return torch.cat(log_px_out), torch.cat(elbo_out)


# Decoder outputs per chunk of importance samples. 2^19 float32 numbers (2 MB per tensor) ran
# about 20% faster than 2^20 on a 2-core CPU (the larger chunk's temporaries each take fresh
# pages from the allocator and fall out of cache); memory stays bounded either way.
MAX_ELEMENTS = 2**19


def log_likelihood(
    model, x: torch.Tensor, num_samples: int = 1000, y: Optional[torch.Tensor] = None,
    batch_size: Optional[int] = None, max_elements: int = MAX_ELEMENTS, seed: int = 0, compile: bool = False,
    progress: bool = False,
) -> torch.Tensor:
    """Importance-sampled log p(x) per example (Burda et al. 2015, eq. 8 with q(z|x) as proposal).

    log p(x) ~= log (1/k) sum_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x): a stochastic lower
    bound whose expectation rises to log p(x) as k grows. The encoder runs once per example;
    samples are drawn in chunks so that no decoder output holds more than ``max_elements``
    numbers, whatever ``num_samples`` is, and the chunks are combined by a running
    log-sum-exp. ``batch_size`` examples share a chunk (default: as many as fit beside all
    their samples). Seeded: the same ``seed``, chunking and model give the same numbers.
    ``compile=True`` runs each chunk through ``torch.compile`` (a one-off compile of some
    seconds, then about a third less time on a CPU; the same numbers up to float rounding,
    and a warning and the eager path where compiling fails); ``progress=True`` shows a progress
    bar over the examples. Returns a float64 tensor of shape ``(batch,)`` on the CPU, in nats.
    """
    with torch.inference_mode():
        log_px = _importance_sampling(model, x, num_samples, y, batch_size, max_elements, seed, compile, progress)[0]
    return log_px.clone()  # an ordinary tensor, usable outside inference mode


def likelihood_report(
    model, x: torch.Tensor, num_samples: int = 1000, y: Optional[torch.Tensor] = None,
    batch_size: Optional[int] = None, max_elements: int = MAX_ELEMENTS, seed: int = 0, compile: bool = False,
    progress: bool = False,
) -> dict[str, float]:
    """Mean ``nll`` (-log p(x), importance-sampled), ``elbo`` (k-sample mean), their ``elbo_gap``
    (= E KL(q(z|x) || p(z|x)) >= 0 up to Monte Carlo error) and the ``nll_stderr`` over examples.

    Bits per dimension are added by callers that know the data are discrete.
    """
    with torch.inference_mode():
        log_px, elbo = _importance_sampling(model, x, num_samples, y, batch_size, max_elements, seed, compile, progress)
    n = max(int(log_px.numel()), 1)
    nll = -float(log_px.mean()) if log_px.numel() else math.nan
    stderr = float(log_px.std() / math.sqrt(n)) if log_px.numel() > 1 else math.nan
    mean_elbo = float(elbo.mean()) if elbo.numel() else math.nan
    return {"nll": nll, "nll_stderr": stderr, "nll_samples": int(num_samples), "elbo_k": mean_elbo,
            "elbo_gap": -nll - mean_elbo}


def bits_per_dim(nats_per_example: float, dims: int) -> float:
    """Nats per example -> bits per data dimension (for discrete data)."""
    return nats_per_example / (dims * math.log(2.0))


@torch.no_grad()
def posterior_means(model, x: torch.Tensor, y: Optional[torch.Tensor] = None, batch_size: int = 1000) -> torch.Tensor:
    """E_q[z|x] for every example (an embedding), on the CPU."""
    device = _model_device(model)
    return torch.cat(
        [model.encode(xb.to(device), None if yb is None else yb.to(device)).mean.cpu() for xb, yb in _batches(x, y, batch_size)]
    )
