"""The auxiliary deep generative model (ADGM) of Maaløe, Sønderby, Sønderby & Winther (ICML 2016).

M2 (:mod:`vaekit.core.m2`) with an auxiliary latent variable a that the generative model explains
but does not need: p(y) p(z) p(x|y, z) p(a|x, y, z), inferred by

    q(a|x) q(y|a, x) q(z|a, x, y).

The marginal q(z, y|x) = E_q(a|x)[q(y|a, x) q(z|a, x, y)] is a continuous mixture, more flexible
than M2's, and the classifier q(y|a, x) sees a draw of a beside x. The bound on log p(x, y) (a
label known) or log p(x) (y summed over) gains the terms log p(a|x, y, z) - log q(a|x)
(:func:`vaekit.core.semisupervised.adgm_loss`). Everything else is M2's: the CVAE decoder
p(x|y, z), the uniform p(y), the alpha-weighted classification term, ``y = -1`` for an
unlabelled row.

Outside training, a is taken at the mean of q(a|x): ``classify(x)`` is q(y|E[a|x], x) and
``encode(x, y)`` is q(z|E[a|x], x, y) (a valid proposal, so the ELBO and the importance-sampled
log-likelihood of ``vaekit eval`` stay bounds on log p(x|y)); Maaløe et al. averaged q(y|a, x)
over 100 draws of a instead.

:class:`SDGM`, the skip deep generative model of the same paper, moves a into the generative
model: p(a|y, z) p(x|a, y, z).
"""

from __future__ import annotations

from typing import Optional

import torch

from vaekit.config import ModelConfig
from vaekit.core.distributions import DiagonalGaussian
from vaekit.core.m2 import M2
from vaekit.core.models import VAEOutput
from vaekit.core.networks import MLPEncoder, build_encoder


class ADGM(M2):
    """M2 with an auxiliary variable a of ``config.aux_dim`` dimensions (default: ``latent_dim``)."""

    def __init__(self, config: ModelConfig, data_shape: tuple[int, ...], num_classes: int = 0):
        super().__init__(config, data_shape, num_classes)
        self.aux_encoder = build_encoder(self.data_shape, config, 2 * self.aux_dim)  # q(a|x)
        self.aux_decoder = self._aux_network(config)

    def _aux_network(self, config: ModelConfig) -> torch.nn.Module:
        """p(a|x, y, z): x with the one-hot label and z as the conditioning vector."""
        return build_encoder(self.data_shape, config, 2 * self.aux_dim, cond_dim=self.num_classes + config.latent_dim)

    @property
    def aux_dim(self) -> int:
        return int(self.config.aux_dim or self.config.latent_dim)

    def _encoder_condition_dim(self) -> int:  # q(z|a, x, y): the one-hot label and a
        return self.num_classes + self.aux_dim

    def _classifier_condition_dim(self) -> int:  # q(y|a, x)
        return self.aux_dim

    def aux_posterior(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(a|x)."""
        self.check_shape(x)
        mean, logvar = self.aux_encoder(x).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def aux_likelihood(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> DiagonalGaussian:
        """p(a|x, y, z)."""
        cond = torch.cat([self._condition(y, x.shape[0]), z.to(x.dtype)], dim=-1)
        mean, logvar = self.aux_decoder(x, cond).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def _aux(self, x: torch.Tensor, a: Optional[torch.Tensor]) -> torch.Tensor:
        return self.aux_posterior(x).mean if a is None else a

    def classify(self, x: torch.Tensor, a: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The logits of q(y|a, x), shape (batch, num_classes); a: the mean of q(a|x) unless given."""
        self.check_shape(x)
        return self.classifier(x, self._aux(x, a))

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None, a: Optional[torch.Tensor] = None
               ) -> DiagonalGaussian:
        """q(z|a, x, y); a: the mean of q(a|x) unless given."""
        self.check_shape(x)
        cond = torch.cat([self._condition(y, x.shape[0]), self._aux(x, a).to(x.dtype)], dim=-1)
        mean, logvar = self.encoder(x, cond).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def likelihood_given(self, z: torch.Tensor, y: torch.Tensor, a: torch.Tensor):
        """p(x|...) in the bound at the draws z and a: p(x|y, z) for the ADGM, where a plays no part."""
        return self.decode(z, y)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                generator: Optional[torch.Generator] = None) -> VAEOutput:
        """a drawn from q(a|x), then z from q(z|a, x, y) and p(x|y, z) there: the output's ELBO is a
        bound on log p(x|y), since q(z|a, x, y) is a proposal for z whatever a is."""
        a = self.aux_posterior(x).rsample(generator=generator)
        posterior = self.encode(x, y, a)
        return self.output_at(posterior, posterior.rsample(generator=generator), y)


class SDGM(ADGM):
    """The skip deep generative model (Maaløe et al. 2016, section 2.3): the ADGM with the auxiliary
    variable inside the generative model, p(y) p(z) p(a|y, z) p(x|a, y, z); inference is the ADGM's,
    q(a|x) q(y|a, x) q(z|a, x, y). The decoder sees a beside y and z, so a must carry something
    about x, and the classifier q(y|a, x) reads it.

    The bound's terms are the ADGM's with p(x|a, y, z) at the drawn a and p(a|y, z) in place of
    p(a|x, y, z). Outside training (``decode``, ``vaekit eval``) a is taken at the mean
    of p(a|y, z), so the model that ``vaekit eval`` scores is x ~ p(x|E[a|y, z], y, z), and its ELBO
    is a bound on that model's log p(x|y); ``sample`` draws a from p(a|y, z) as the model generates.
    """

    def _aux_network(self, config: ModelConfig) -> torch.nn.Module:
        """p(a|y, z): an MLP over z with the one-hot label."""
        return MLPEncoder((config.latent_dim,), config, self.num_classes, out_features=2 * self.aux_dim)

    def _decoder_condition_dim(self) -> int:  # p(x|a, y, z): the one-hot label and a
        return self.num_classes + self.aux_dim

    def aux_prior(self, z: torch.Tensor, y: Optional[torch.Tensor]) -> DiagonalGaussian:
        """p(a|y, z) for a batch of z."""
        return self._aux_at(z, self._condition(y, z.shape[0]))

    def _aux_at(self, z: torch.Tensor, onehot: torch.Tensor) -> DiagonalGaussian:
        mean, logvar = self.aux_decoder(z, onehot).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def aux_likelihood(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> DiagonalGaussian:
        """p(a|y, z) (x, the ADGM's extra condition, is not used)."""
        return self.aux_prior(z.to(x.dtype), y)

    @torch.no_grad()
    def sample(self, n: int, y: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
               mean: bool = True, **draw) -> torch.Tensor:
        """The generative model in order: z ~ p(z), a ~ p(a|y, z), then the mean of p(x|a, y, z) (or a
        draw if mean=False)."""
        z = self.sample_latent(n, y, generator)
        likelihood = self.decode(z, y, self.aux_prior(z, y).rsample(generator=generator))
        return likelihood.mean if mean else likelihood.sample(generator=generator, **draw)

    def decode(self, z: torch.Tensor, y: Optional[torch.Tensor] = None, a: Optional[torch.Tensor] = None):
        """p(x|a, y, z); ``z`` may carry leading sample dimensions; a: the mean of p(a|y, z) unless given."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, self.latent_dim)
        c = self._flat_condition(y, lead)
        a = self._aux_at(flat, c).mean if a is None else a.reshape(-1, self.aux_dim)
        out = self.decoder(flat, torch.cat([c, a.to(flat.dtype)], dim=-1))
        return self.likelihood_at(out.reshape(*lead, *self.data_shape))

    def likelihood_given(self, z: torch.Tensor, y: torch.Tensor, a: torch.Tensor):
        """p(x|a, y, z) at the drawn a."""
        return self.decode(z, y, a)
