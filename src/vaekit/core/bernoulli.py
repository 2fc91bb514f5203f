"""The Bernoulli log-likelihood kernel: sum_i log Bern(x_i; sigmoid(l_i)) over the last dim.

:func:`vaekit.core.distributions.bernoulli_log_prob` reshapes the data's event dims into one
and calls :func:`grouped_bernoulli_log_prob`; this file holds only the arithmetic.

log Bern(x; sigmoid(l)) = x l - softplus(l), and softplus(l) = relu(l) - log sigmoid(|l|), so

    log p(x) = sum_i (x_i l_i - relu(l_i)) + sum_groups log prod_{i in group} sigmoid(|l_i|).

Every factor sigmoid(|l|) lies in [1/2, 1], so a product of at most 120 of them stays above
2^-120, a normal float32: one log per group of pixels instead of a log1p(exp) per pixel (on the
CPU those transcendentals cost about as much as the decoder's last matmul). The first sum is
taken per element (x l - relu(l) is exact where x is 0 or 1, and small), so large logits do not
cancel. float32/float64 only: in half precision a product of 120 factors can underflow.
"""

from __future__ import annotations

import torch


def _group_size(d: int, largest: int = 120) -> int:
    """The largest divisor of ``d`` that is at most ``largest``."""
    return next(g for g in range(min(d, largest), 0, -1) if d % g == 0)


def _sum_log_grouped(sigmoid_abs: torch.Tensor) -> torch.Tensor:
    """sum_groups log prod_{i in group} sigmoid(|l_i|) over the last dim, from sigmoid(|l|)."""
    d = sigmoid_abs.shape[-1]
    return sigmoid_abs.view(*sigmoid_abs.shape[:-1], d // _group_size(d), -1).prod(-1).log_().sum(-1)


class _BernoulliLogProb(torch.autograd.Function):
    """The kernel with a hand-written backward: d/dl = x - sigmoid(l), from the sigmoid of the
    forward pass; d/dx = l (only when x requires a gradient)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        sig = torch.sigmoid(logits)
        s = (sig - 0.5).abs_().add_(0.5)  # sigmoid(|l|), from sigmoid(l) (no second exp)
        tail = _sum_log_grouped(s)
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


def _no_grad_form(flat_l: torch.Tensor, flat_x: torch.Tensor) -> torch.Tensor:
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
    return xl - 0.5 * abs_sum + _sum_log_grouped(a.sigmoid_())


def grouped_bernoulli_log_prob(flat_l: torch.Tensor, flat_x: torch.Tensor) -> torch.Tensor:
    """sum over the last dim of log Bern(x; sigmoid(l)), for float32/float64 logits ``flat_l``
    (..., d) and data ``flat_x`` broadcasting against them; autograd form only when a gradient
    is wanted."""
    if torch.is_grad_enabled() and (flat_l.requires_grad or flat_x.requires_grad):
        return _BernoulliLogProb.apply(flat_l, flat_x)
    return _no_grad_form(flat_l, flat_x)
