"""Distribution objects: the posterior q(z|x), the prior p(z) and the likelihoods p(x|z).

Encoders return a :class:`DiagonalGaussian`; decoders return a :class:`Bernoulli` or a
:class:`Gaussian`. Every ``log_prob`` returns one number per example (shape ``(batch,)``), in
nats, summed over all non-batch dimensions, so callers never unpack tuples or reduce by hand.
These objects hold tensors only: no parameters, no training state.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from vaekit.core.bernoulli import grouped_bernoulli_log_prob

LOG_2PI = math.log(2.0 * math.pi)

# Encoder log-variances are clamped to [-30, 20] before use: exp(-30) ~ 1e-13 and exp(20) ~ 5e8
# cover any sensible posterior, while outside that range exp() under- or overflows in float32
# (and in bf16) and the KL and sampling produce inf/NaN.
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


def _full_precision(t: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 parameters (a network run under autocast, training.precision=bf16) as float32:
    the log-densities, KL and their sums need float32's range and resolution, the matmuls do not."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def _sum_event(t: torch.Tensor, event_dims: int) -> torch.Tensor:
    """Sum over the trailing ``event_dims`` dimensions (the per-example data/latent dims)."""
    return t.sum(dim=tuple(range(-event_dims, 0))) if event_dims else t


def standard_normal(shape, generator: Optional[torch.Generator] = None, device=None,
                    dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """eps ~ N(0, I) of ``shape``: the one place vaekit draws Gaussian noise (reparameterisation,
    importance sampling, decoder draws, latent mixtures all come here), so a seeded generator
    fixes every draw."""
    return torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)


def normal_log_prob(x: torch.Tensor, mean: torch.Tensor, logvar: Optional[torch.Tensor] = None,
                    scale: Optional[torch.Tensor] = None) -> torch.Tensor:
    """log N(x; mean, sigma^2) per element, sigma given as ``logvar`` (log sigma^2) or as ``scale``
    (sigma): -1/2 (log 2 pi + log sigma^2 + (x - mean)^2 / sigma^2). The one diagonal-Gaussian
    log-density; callers sum over their event dims."""
    if logvar is not None:
        return -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * torch.exp(-logvar))
    return -0.5 * (((x - mean) / scale) ** 2 + LOG_2PI) - torch.log(scale)


def categorical_log_prob(logits: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """log softmax(logits) at the category that ``onehot`` marks, summed over the last dim
    (0 where ``onehot`` is all zeros)."""
    return (torch.log_softmax(logits, dim=-1) * onehot).sum(-1)


def categorical_kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(p_logits) || softmax(q_logits)) per row, summed over the last dim."""
    log_p, log_q = torch.log_softmax(p_logits, dim=-1), torch.log_softmax(q_logits, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def categorical_sample(logits: torch.Tensor, generator: Optional[torch.Generator] = None,
                       argmax: bool = False) -> torch.Tensor:
    """One category per row of ``logits`` (any leading dims), as a one-hot tensor of the same
    shape: a draw from softmax(logits), or its most probable category with ``argmax``."""
    if argmax:
        idx = logits.argmax(-1)
    else:
        flat = torch.softmax(logits, dim=-1).reshape(-1, logits.shape[-1])
        idx = torch.multinomial(flat, 1, generator=generator).reshape(logits.shape[:-1])
    return F.one_hot(idx, logits.shape[-1]).to(logits.dtype)


class DiagonalGaussian:
    """N(mean, diag(exp(logvar))) over the last ``event_dims`` dimensions (default: all but the first)."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor, event_dims: Optional[int] = None):
        self.mean = mean = _full_precision(mean)
        self.logvar = _full_precision(logvar).clamp(LOGVAR_MIN, LOGVAR_MAX)
        self.event_dims = mean.dim() - 1 if event_dims is None else event_dims

    @classmethod
    def standard(cls, latent_dim: int, device=None, dtype=None) -> "DiagonalGaussian":
        """The N(0, I) prior."""
        zeros = torch.zeros(1, latent_dim, device=device, dtype=dtype)
        return cls(zeros, zeros.clone())

    @property
    def stddev(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    @property
    def variance(self) -> torch.Tensor:
        return torch.exp(self.logvar)

    def mode(self) -> torch.Tensor:
        return self.mean

    def rsample(self, num_samples: Optional[int] = None, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Reparameterised sample z = mean + stddev * eps (Kingma & Welling 2014, eq. 10).

        With ``num_samples=k`` the result has a leading sample dimension: ``(k, *mean.shape)``.
        """
        return self.reparameterize(self.noise(num_samples, generator))

    def noise(self, num_samples: Optional[int] = None, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """The standard-normal eps that :meth:`rsample` draws (same shape, same use of ``generator``),
        for callers that pass it on, e.g. into a compiled function."""
        shape = self.mean.shape if num_samples is None else (num_samples, *self.mean.shape)
        return standard_normal(shape, generator, self.mean.device, self.mean.dtype)

    def reparameterize(self, eps: torch.Tensor) -> torch.Tensor:
        """mean + stddev * eps for standard-normal noise drawn by the caller (e.g. one draw for a
        whole global batch, sliced per process); broadcasts over leading sample dims."""
        return self.mean + self.stddev * eps

    sample = rsample

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; mean, var), summed over the event dims; broadcasts over leading sample dims."""
        return _sum_event(normal_log_prob(z, self.mean, logvar=self.logvar), self.event_dims)

    def kl_per_dim(self, other: Optional["DiagonalGaussian"] = None) -> torch.Tensor:
        """Closed-form KL(self || other) per latent dimension (not summed); other=None is N(0, I).

        KL(N(m1, v1) || N(m2, v2)) = 0.5 * (log v2/v1 + (v1 + (m1 - m2)^2) / v2 - 1)
        (Kingma & Welling 2014, appendix B, for the standard-normal case).
        """
        if other is None:
            return 0.5 * (self.mean**2 + self.variance - 1.0 - self.logvar)
        return 0.5 * (
            other.logvar - self.logvar + (self.variance + (self.mean - other.mean) ** 2) * torch.exp(-other.logvar) - 1.0
        )

    def kl(self, other: Optional["DiagonalGaussian"] = None) -> torch.Tensor:
        """Closed-form KL(self || other), one value per example; other=None is N(0, I)."""
        return _sum_event(self.kl_per_dim(other), self.event_dims)

    def to_torch(self) -> torch.distributions.Distribution:
        return torch.distributions.Independent(torch.distributions.Normal(self.mean, self.stddev), self.event_dims)


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor, event_dims: int) -> torch.Tensor:
    """log Bern(x; sigmoid(logits)) summed over the last ``event_dims`` dims (0: per element).

    ``x`` (0/1 or grey values in [0, 1]) broadcasts against ``logits``, e.g. one batch of
    images against logits with a leading sample dim ``(k, batch, ...)``. float32/float64 use
    :mod:`vaekit.core.bernoulli`'s grouped kernel (the distributions hold bf16/fp16 logits as
    float32, since a product of 120 factors can underflow in half precision); per-element
    results use ``binary_cross_entropy_with_logits``.
    """
    x = x.to(logits.dtype)
    if event_dims < 1 or logits.dtype not in (torch.float32, torch.float64):
        lp = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
        return _sum_event(lp, event_dims)
    event = logits.shape[logits.dim() - event_dims:]
    if x.shape[max(x.dim() - event_dims, 0):] != event:  # x broadcasts within the event: spell it out
        x = x.expand(*torch.broadcast_shapes(x.shape, logits.shape))
    d = event.numel()
    flat_l = logits.reshape(*logits.shape[: logits.dim() - event_dims], d)
    flat_x = x.reshape(*x.shape[: x.dim() - event_dims], d)
    return grouped_bernoulli_log_prob(flat_l, flat_x)


class Bernoulli:
    """Independent Bernoulli pixels parameterised by logits (numerically stable log-likelihood)."""

    def __init__(self, logits: torch.Tensor, event_dims: Optional[int] = None):
        self.logits = logits = _full_precision(logits)
        self.event_dims = logits.dim() - 1 if event_dims is None else event_dims

    @property
    def mean(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """sum_i [x_i log p_i + (1 - x_i) log(1 - p_i)], from logits without forming log(sigmoid).

        ``x`` may be grey values in [0, 1] (the same cross-entropy) and broadcasts against the
        logits' leading sample dims. See :func:`bernoulli_log_prob`.
        """
        return bernoulli_log_prob(self.logits, x, self.event_dims)

    def sample(self, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return torch.bernoulli(self.mean, generator=generator)

    def to_torch(self) -> torch.distributions.Distribution:
        return torch.distributions.Independent(torch.distributions.Bernoulli(logits=self.logits), self.event_dims)


class Gaussian:
    """Independent Gaussian likelihood N(x; mean, scale^2) with a fixed or learned scale.

    ``scale`` broadcasts against ``mean`` (a number, one value per data dimension, or one per
    element). A learned scale must come with a floor (see ``ModelConfig.scale_floor``): as the
    scale goes to 0 the density at a perfect reconstruction diverges, so the likelihood has no
    maximum and training chases sigma -> 0.
    """

    def __init__(self, mean: torch.Tensor, scale: torch.Tensor | float, event_dims: Optional[int] = None):
        self.mean = mean = _full_precision(mean)
        self.scale = torch.as_tensor(scale, dtype=mean.dtype, device=mean.device).expand_as(mean)
        self.event_dims = mean.dim() - 1 if event_dims is None else event_dims

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return _sum_event(normal_log_prob(x, self.mean, scale=self.scale), self.event_dims)

    def sample(self, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return self.mean + self.scale * standard_normal(self.mean.shape, generator, self.mean.device, self.mean.dtype)

    def to_torch(self) -> torch.distributions.Distribution:
        return torch.distributions.Independent(torch.distributions.Normal(self.mean, self.scale), self.event_dims)
