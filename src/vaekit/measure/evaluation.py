"""Measuring a trained model: the ELBO breakdown, importance-sampled log-likelihood and the ELBO gap.

Latent diagnostics (KL per dimension, active units, mutual information) are in :mod:`vaekit.measure.diagnostics`.

Everything is in nats per example. Evaluation is seeded, so the same model and data give the
same numbers.
"""

from __future__ import annotations

import math
import warnings
from typing import Optional

import torch
from tqdm.auto import tqdm

from vaekit.core.device import device_of
from vaekit.core.distributions import DiagonalGaussian
from vaekit.core.objectives import RunningLogSumExp, elbo_loss, log_importance_weights_at, sample_chunks
from vaekit.errors import ConfigError


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
    device = device_of(model)
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


def _chunk_log_weights(model, compile: bool):
    """log w of one chunk as a function of (x, y, posterior mean, log-variance, noise).

    The noise comes in as an argument, drawn by the caller from the seeded generator with
    :meth:`DiagonalGaussian.noise`, exactly as ``rsample`` would draw it, so the compiled and
    eager forms consume the same random numbers and differ only by float rounding.
    ``torch.compile`` fuses the passes over the decoder's output (the Bernoulli or Gaussian
    log-density and its sums) into one kernel beside the matmuls; on a CPU that removes most of
    the time outside the matmuls (bench/results/mnist_nll_speed.md).
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
    log_sum_w = RunningLogSumExp(xb.shape[0], xb.device)
    sum_log_w = torch.zeros(xb.shape[0], dtype=torch.float64, device=xb.device)
    for size in sample_chunks(num_samples, per_block // xb.shape[0]):
        log_w = log_weights(xb, yb, q.mean, q.logvar, q.noise(size, generator=g)).double()
        log_sum_w.add(log_w)
        sum_log_w += log_w.sum(dim=0)
    return log_sum_w.total - math.log(num_samples), sum_log_w / num_samples


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
    device = device_of(model)
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


# Decoder outputs per chunk of importance samples: small enough that a chunk's temporaries stay
# in cache rather than each taking fresh pages from the allocator (measured against 2^20 in
# bench/results/choices.md); memory stays bounded either way.
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
    seconds, then less time on a CPU, see bench/results/mnist_nll_speed.md; the same numbers up
    to float rounding, and a warning and the eager path where compiling fails); ``progress=True`` shows a progress
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
    return _summary(log_px, elbo, num_samples)


def _mean_and_stderr(values: torch.Tensor) -> tuple[float, float]:
    """The mean of per-example figures and its standard error (nan where there are too few)."""
    mean = float(values.mean()) if values.numel() else math.nan
    stderr = float(values.std() / math.sqrt(values.numel())) if values.numel() > 1 else math.nan
    return mean, stderr


def _summary(log_px: torch.Tensor, elbo: torch.Tensor, num_samples: int) -> dict[str, float]:
    """likelihood_report's figures from the per-example estimates."""
    log_px_mean, stderr = _mean_and_stderr(log_px)
    mean_elbo = float(elbo.mean()) if elbo.numel() else math.nan
    return {"nll": -log_px_mean, "nll_stderr": stderr, "nll_samples": int(num_samples), "elbo_k": mean_elbo,
            "elbo_gap": log_px_mean - mean_elbo}


def class_marginal_report(
    model, x: torch.Tensor, num_samples: int = 1000, labels: Optional[torch.Tensor] = None,
    batch_size: Optional[int] = None, max_elements: int = MAX_ELEMENTS, seed: int = 0, compile: bool = False,
    progress: bool = False,
) -> dict[str, float]:
    """For a model with the class in its generative model, p(y) p(z) p(x|y, z) (M2 and its kin), called
    as :func:`likelihood_report` is: its report of log p(x|y) at ``labels`` (required), and ``log_px_marginal`` (with its
    ``..._stderr``), log p(x) = log sum_c p(c) p(x|c) with each p(x|c) importance-sampled as
    :func:`log_likelihood` samples it (``num_samples`` draws from q(z|x, c), the same seed for every
    class). The sum of unbiased estimates of p(x|c) is one of p(x), so its log is a stochastic lower
    bound on log p(x) that rises to it with k, as for one class. It costs one pass per class."""
    if labels is None:
        raise ConfigError("class_marginal_report needs the examples' labels (for log p(x|y))")
    per_class = []
    with torch.inference_mode():
        for c in range(model.num_classes):
            y = torch.full((x.shape[0],), c, dtype=torch.long)
            per_class.append(_importance_sampling(model, x, num_samples, y, batch_size, max_elements, seed,
                                                  compile, progress))
    log_px = torch.stack([p for p, _ in per_class])  # (classes, examples)
    at = labels.long().cpu().unsqueeze(0)
    report = _summary(log_px.gather(0, at)[0], torch.stack([e for _, e in per_class]).gather(0, at)[0], num_samples)
    marginal = torch.logsumexp(log_px + model.log_prior_y(), dim=0)
    report["log_px_marginal"], report["log_px_marginal_stderr"] = _mean_and_stderr(marginal)
    return report


def bits_per_dim(nats_per_example: float, dims: int) -> float:
    """Nats per example -> bits per data dimension (for discrete data)."""
    return nats_per_example / (dims * math.log(2.0))


@torch.no_grad()
def posterior_means(model, x: torch.Tensor, y: Optional[torch.Tensor] = None, batch_size: int = 1000) -> torch.Tensor:
    """E_q[z|x] for every example (an embedding), on the CPU."""
    device = device_of(model)
    return torch.cat(
        [model.encode(xb.to(device), None if yb is None else yb.to(device)).mean.cpu() for xb, yb in _batches(x, y, batch_size)]
    )
