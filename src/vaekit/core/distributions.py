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
        return torch.randn(shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)

    def reparameterize(self, eps: torch.Tensor) -> torch.Tensor:
        """mean + stddev * eps for standard-normal noise drawn by the caller (e.g. one draw for a
        whole global batch, sliced per process); broadcasts over leading sample dims."""
        return self.mean + self.stddev * eps

    sample = rsample

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; mean, var), summed over the event dims; broadcasts over leading sample dims."""
        lp = -0.5 * (LOG_2PI + self.logvar + (z - self.mean) ** 2 * torch.exp(-self.logvar))
        return _sum_event(lp, self.event_dims)

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


def _group_size(d: int, largest: int = 120) -> int:
    """The largest divisor of ``d`` that is at most ``largest``."""
    return next(g for g in range(min(d, largest), 0, -1) if d % g == 0)


class _BernoulliLogProb(torch.autograd.Function):
    """sum_i log Bern(x_i; sigmoid(l_i)) over the last dim, with a hand-written backward.

    log Bern(x; sigmoid(l)) = x l - softplus(l), and softplus(l) = relu(l) - log sigmoid(|l|), so

        log p(x) = sum_i (x_i l_i - relu(l_i)) + sum_groups log prod_{i in group} sigmoid(|l_i|).

    Every factor sigmoid(|l|) lies in [1/2, 1], so a product of at most 120 of them stays above
    2^-120, a normal float32: one log per group of pixels instead of a log1p(exp) per pixel (on
    the CPU those transcendentals cost about as much as the decoder's last matmul). The first
    sum is taken per element (x l - relu(l) is exact where x is 0 or 1, and small), so large
    logits do not cancel. The gradient is d/dl = x - sigmoid(l), from the sigmoid of the forward
    pass; d/dx = l (only when x requires a gradient).
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        d = logits.shape[-1]
        sig = torch.sigmoid(logits)
        s = (sig - 0.5).abs_().add_(0.5)  # sigmoid(|l|), from sigmoid(l) (no second exp)
        tail = s.view(*logits.shape[:-1], d // _group_size(d), -1).prod(-1).log_().sum(-1)
        neg_linear = torch.addcmul(torch.relu(logits), x, logits, value=-1.0).sum(-1)  # sum relu(l) - x l
        ctx.save_for_backward(sig, x, logits if ctx.needs_input_grad[1] else None)
        return tail - neg_linear

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        sig, x, logits = ctx.saved_tensors
        g = grad.unsqueeze(-1)
        grad_logits = (x - sig).mul_(g) if ctx.needs_input_grad[0] else None
        if grad_logits is not None and grad_logits.shape != sig.shape:
            grad_logits = grad_logits.sum_to_size(sig.shape)
        grad_x = (logits * g).sum_to_size(x.shape) if ctx.needs_input_grad[1] else None
        return grad_logits, grad_x


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor, event_dims: int) -> torch.Tensor:
    """log Bern(x; sigmoid(logits)) summed over the last ``event_dims`` dims (0: per element).

    ``x`` (0/1 or grey values in [0, 1]) broadcasts against ``logits``, e.g. one batch of
    images against logits with a leading sample dim ``(k, batch, ...)``. float32/float64 use
    :class:`_BernoulliLogProb` (the distributions hold bf16/fp16 logits as float32, since a
    product of 120 factors can underflow in half precision); per-element results use
    ``binary_cross_entropy_with_logits``.
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
    if torch.is_grad_enabled() and (logits.requires_grad or x.requires_grad):
        return _BernoulliLogProb.apply(flat_l, flat_x)
    return _bernoulli_log_prob_no_grad(flat_l, flat_x)


def _bernoulli_log_prob_no_grad(flat_l: torch.Tensor, flat_x: torch.Tensor) -> torch.Tensor:
    """The same sum with nothing kept for a backward pass (evaluation, importance sampling).

    x l - relu(l) = (x - 1/2) l - |l| / 2, so log p(x) = sum (x - 1/2) l - sum |l| / 2 +
    sum_groups log prod sigmoid(|l|): the first sum is one batched matrix-vector product when x
    broadcasts over leading sample dims (logits (k, batch, d), x (batch, d)), and |l| is formed
    once and turned into sigmoid(|l|) in place. Fewer passes over the logits than the
    autograd form, which must keep sigmoid(l) for its backward.
    """
    centred = flat_x - 0.5
    if flat_x.dim() == 2 and flat_l.dim() == 3 and flat_l.shape[1:] == flat_x.shape:
        xl = torch.einsum("kbd,bd->kb", flat_l, centred)
    else:
        xl = (flat_l * centred).sum(-1)
    a = flat_l.abs()
    abs_sum = a.sum(-1)
    d = flat_l.shape[-1]
    tail = a.sigmoid_().view(*flat_l.shape[:-1], d // _group_size(d), -1).prod(-1).log_().sum(-1)
    return xl - 0.5 * abs_sum + tail


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
        lp = -0.5 * (((x - self.mean) / self.scale) ** 2 + LOG_2PI) - torch.log(self.scale)
        return _sum_event(lp, self.event_dims)

    def sample(self, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.scale * eps

    def to_torch(self) -> torch.distributions.Distribution:
        return torch.distributions.Independent(torch.distributions.Normal(self.mean, self.scale), self.event_dims)
