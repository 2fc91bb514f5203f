"""Learned priors: the VampPrior of Tomczak & Welling (AISTATS 2018) and the mixture it is.

The VampPrior is the mixture of the encoder's posteriors at K learned pseudo-inputs u_k:

    p(z) = (1/K) sum_k q(z | u_k)

It approximates the aggregate posterior, the prior that maximises the ELBO on average over the
data, with K points the model learns by gradient (the pseudo-inputs are parameters in data space).
Its KL to q(z|x) has no closed form, so the ELBO uses the single-draw estimate
log q(z|x) - log p(z) at the reparameterised z (:meth:`vaekit.core.models.VAEOutput.kl_columns`);
importance sampling needs only ``log_prob``, and sampling picks a component, then draws from it.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from vaekit.core.distributions import LOG_2PI, DiagonalGaussian, standard_normal

__all__ = ["GaussianMixturePrior", "init_pseudo_inputs", "pseudo_input_values"]


class GaussianMixturePrior:
    """(1/K) sum_k N(z; mean_k, diag(exp(logvar_k))), the components given as one
    :class:`DiagonalGaussian` with ``mean`` and ``logvar`` of shape (K, latent_dim)."""

    def __init__(self, components: DiagonalGaussian):
        self.components = components

    @property
    def num_components(self) -> int:
        return self.components.mean.shape[0]

    def component_log_probs(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; mean_k, var_k) for every component: shape ``(*z.shape[:-1], K)``.

        The quadratic form is expanded into two products with the (K, d) tables, so the memory is
        that of the result, not of a (..., K, d) difference:
        sum_d (z_d - m_kd)^2 / v_kd = z^2 . (1/v_k) - 2 z . (m_k / v_k) + sum_d m_kd^2 / v_kd.
        """
        mean, logvar = self.components.mean, self.components.logvar
        precision = torch.exp(-logvar)  # (K, d)
        z = z.to(mean.dtype)
        quadratic = (z * z) @ precision.T - 2.0 * z @ (mean * precision).T + (mean * mean * precision).sum(-1)
        return -0.5 * (quadratic + logvar.sum(-1) + mean.shape[-1] * LOG_2PI)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z), one value per row of z (any leading dims)."""
        return torch.logsumexp(self.component_log_probs(z), dim=-1) - math.log(self.num_components)

    def rsample(self, num_samples: Optional[int] = None, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draws of shape ``(num_samples, 1, latent_dim)`` (the shape of a draw from the standard prior,
        whose mean has one row): a component chosen uniformly, then its reparameterised draw."""
        n = 1 if num_samples is None else num_samples
        mean, std = self.components.mean, self.components.stddev
        pick = torch.randint(self.num_components, (n,), generator=generator, device=generator.device
                             if generator is not None else mean.device).to(mean.device)
        eps = standard_normal((n, mean.shape[-1]), generator, mean.device, mean.dtype)
        z = (mean[pick] + std[pick] * eps)[:, None, :]
        return z if num_samples is not None else z[0]


def init_pseudo_inputs(num: int, data_shape: tuple[int, ...], bounded: bool) -> torch.Tensor:
    """Initial pseudo-inputs: Tomczak & Welling's N(0.5, 0.01^2)-like start inside [0, 1] for
    pixel probabilities (``bounded``), small values around 0 for standardised data."""
    noise = 0.01 * standard_normal((num, *data_shape))
    return noise + 0.5 if bounded else noise


def pseudo_input_values(raw: torch.Tensor, bounded: bool) -> torch.Tensor:
    """What the encoder sees of the pseudo-input parameters: clipped to [0, 1] for pixel
    probabilities (the paper's hard tanh), as they are for standardised data (a copy: module hooks,
    such as torch's FLOP counter under no_grad, refuse a parameter itself as a module's input)."""
    return torch.nn.functional.hardtanh(raw, 0.0, 1.0) if bounded else raw.clone()
