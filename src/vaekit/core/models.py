"""The model kinds of the core: :class:`BaseVAE` (what every VAE shares) and :class:`VAE`.

``encode(x) -> DiagonalGaussian`` (q(z|x)), ``decode(z) -> likelihood`` (p(x|z)), ``prior``
(N(0, I)), ``forward(x) -> VAEOutput`` and ``sample(n)``; ``spec()`` and ``from_spec(spec)``
rebuild a model untrained, which is how a run folder records it (:mod:`vaekit.core.registry`).
Models know nothing about optimisers, files or the command line; the loss is in
:mod:`vaekit.core.objectives`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.config import Config, ModelConfig
from vaekit.core.distributions import Bernoulli, DiagonalGaussian, Gaussian
from vaekit.core.networks import build_networks
from vaekit.core.priors import GaussianMixturePrior, init_pseudo_inputs, pseudo_input_values
from vaekit.errors import ConfigError, DataError

Likelihood = Union[Bernoulli, Gaussian]


@dataclass
class VAEOutput:
    posterior: DiagonalGaussian  # q(z|x)
    z: torch.Tensor  # a reparameterised draw from q(z|x)
    likelihood: Likelihood  # p(x|z) at that draw
    prior: Optional[GaussianMixturePrior] = None  # a learned p(z); None: N(0, I)

    def kl_columns(self) -> torch.Tensor:
        """KL(q(z|x) || p(z)) of each example in columns that sum to it: (batch, latent_dim), one per
        dimension in closed form, for the N(0, I) prior; (batch, 1), the single-draw estimate
        log q(z|x) - log p(z) at ``z``, for a learned prior (unbiased, and exact in expectation)."""
        if self.prior is None:
            return self.posterior.kl_per_dim()
        return (self.posterior.log_prob(self.z) - self.prior.log_prob(self.z))[:, None]


class BaseVAE(nn.Module):
    """What every model kind shares: the N(0, I) prior, the reparameterised forward pass, sampling
    and the shape check. A kind supplies ``encode``, ``decode``, ``latent_dim``, ``data_shape``,
    ``spec()`` and ``from_spec()``; ``y`` is its conditioning input (None: unconditional).
    """

    num_classes = 0  # labels the training loop passes as y (0: none)
    data_shape: tuple[int, ...]
    latent_dim: int

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def prior(self) -> Union[DiagonalGaussian, GaussianMixturePrior]:
        """p(z): N(0, I), or the kind's learned prior (:meth:`learned_prior`)."""
        learned = self.learned_prior()
        if learned is not None:
            return learned
        p = next(self.parameters())
        return DiagonalGaussian.standard(self.latent_dim, device=p.device, dtype=p.dtype)

    def learned_prior(self) -> Optional[GaussianMixturePrior]:
        """The prior when the model learns one (a VampPrior), None for N(0, I)."""
        return None

    def output_at(self, posterior: DiagonalGaussian, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> VAEOutput:
        """The :class:`VAEOutput` of a draw z from q(z|x): p(x|z) there, and the prior to measure the KL against."""
        return VAEOutput(posterior, z, self.decode(z, y), self.learned_prior())

    def check_shape(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.data_shape:
            raise DataError(
                f"the model expects examples of shape {self.data_shape}, got {tuple(x.shape[1:])}; "
                "use data of the kind the model was trained on"
            )

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DiagonalGaussian:
        raise NotImplementedError

    def decode(self, z: torch.Tensor, y: Optional[torch.Tensor] = None):
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, y: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None
    ) -> VAEOutput:
        """q(z|x), one reparameterised draw z from it (Kingma & Welling 2014, eq. 10) and p(x|z) there."""
        posterior = self.encode(x, y)
        return self.output_at(posterior, posterior.rsample(generator=generator), y)

    def sample_latent(self, n: int, y: Optional[torch.Tensor] = None,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``n`` draws of z to decode when sampling: from the prior here (a kind may fit another density)."""
        return self.prior.rsample(n, generator=generator)[:, 0]

    @torch.no_grad()
    def sample(self, n: int, y: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
               mean: bool = True, **draw: Any) -> torch.Tensor:
        """Draw n examples from the model: z from :meth:`sample_latent`, then the mean of p(x|z)
        (or a draw if mean=False; ``draw`` holds options of the likelihood's ``sample``)."""
        likelihood = self.decode(self.sample_latent(n, y, generator), y)
        return likelihood.mean if mean else likelihood.sample(generator=generator, **draw)

    def spec(self) -> dict[str, Any]:
        """A JSON-able dict from which :meth:`from_spec` rebuilds this model, untrained."""
        raise NotImplementedError

    @classmethod
    def from_spec(cls, spec: dict[str, Any], config: Optional[Config] = None) -> "BaseVAE":
        """The untrained model that ``spec`` describes. ``config`` is the Config the model trained
        under: a kind built from settings the user chose (``config.model``) keeps only what the
        data fixed in its spec, so the run's settings are written once."""
        raise NotImplementedError


class VAE(BaseVAE):
    """A VAE with a N(0, I) prior; conditional (a CVAE, Sohn et al. 2015) when ``num_classes > 0``.

    ``config.likelihood`` must be resolved (not ``"auto"``); see :func:`vaekit.training.resolve_config`.
    """

    def __init__(self, config: ModelConfig, data_shape: tuple[int, ...], num_classes: int = 0):
        super().__init__()
        if config.likelihood == "auto":
            raise ConfigError("model.likelihood is 'auto'; resolve it against the data before building the model")
        if config.model == "cvae" and num_classes < 1:
            raise ConfigError("model=cvae needs labelled data (an image set with classes, or data.label_column for a table)")
        self.config = config
        self.data_shape = tuple(int(s) for s in data_shape)
        self.num_classes = int(num_classes) if config.model == "cvae" else 0
        self.encoder, self.decoder = build_networks(self.data_shape, config, cond_dim=self._decoder_condition_dim(),
                                                    encoder_cond_dim=self._encoder_condition_dim())
        if config.prior == "vamp":
            if self.num_classes or config.model != "vae":
                raise ConfigError("model.prior=vamp is for model=vae (unconditional); use prior=standard")
            # Tomczak & Welling 2018: K pseudo-inputs in data space, learned with the rest
            self.pseudo_inputs = nn.Parameter(init_pseudo_inputs(config.pseudo_inputs, self.data_shape, self._bounded))
        if config.likelihood == "gaussian-learned":
            # One learned scale per data dimension, shared across examples (as in sigma-VAE,
            # Rybkin et al. 2021); scale = floor + softplus(raw) keeps it above the floor.
            self.raw_scale = nn.Parameter(torch.zeros(self.data_shape))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def _encoder_condition_dim(self) -> int:
        """The length of the vector q(z|x, ...) is conditioned on beside x: the one-hot label of a CVAE."""
        return self.num_classes

    def _decoder_condition_dim(self) -> int:
        """The length of the vector p(x|z, ...) is conditioned on beside z: the one-hot label of a CVAE."""
        return self.num_classes

    @property
    def _bounded(self) -> bool:
        """Whether inputs are probabilities in [0, 1] (a Bernoulli likelihood's pixels)."""
        return self.config.likelihood == "bernoulli"

    def learned_prior(self) -> Optional[GaussianMixturePrior]:
        """The VampPrior (1/K) sum_k q(z|u_k) at the pseudo-inputs u_k (model.prior=vamp)."""
        if self.config.prior != "vamp":
            return None
        return GaussianMixturePrior(self.encode(pseudo_input_values(self.pseudo_inputs, self._bounded)))

    def _condition(self, y: Optional[torch.Tensor], batch: int) -> Optional[torch.Tensor]:
        if not self.conditional:
            return None
        if y is None:
            raise DataError("this is a conditional model: pass labels (y) for every example")
        y = torch.as_tensor(y, device=next(self.parameters()).device).long().reshape(-1)
        if y.numel() == 1 and batch > 1:
            y = y.expand(batch)
        if y.numel() != batch:
            raise DataError(f"got {y.numel()} labels for {batch} examples")
        if (y < 0).any() or (y >= self.num_classes).any():
            raise DataError(f"labels must lie in 0..{self.num_classes - 1}")
        return F.one_hot(y, self.num_classes).float()

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DiagonalGaussian:
        self.check_shape(x)
        h = self.encoder(x, self._condition(y, x.shape[0]))
        mean, logvar = h.chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def decode(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> Likelihood:
        """p(x|z); ``z`` may carry leading sample dimensions, e.g. (k, batch, latent_dim)."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, self.latent_dim)
        return self.likelihood_at(self.decoder(flat, self._flat_condition(y, lead)).reshape(*lead, *self.data_shape))

    def _flat_condition(self, y: Optional[torch.Tensor], lead: tuple[int, ...]) -> Optional[torch.Tensor]:
        """The one-hot labels for latents with leading dimensions ``lead`` (batch last), one row per
        latent as ``z.reshape(-1, latent_dim)`` lays them out; None for an unconditional model."""
        c = self._condition(y, lead[-1] if lead else 1)
        if c is not None and len(lead) > 1:
            c = c.expand(*lead, -1).reshape(-1, self.num_classes)
        return c

    def likelihood_at(self, out: torch.Tensor) -> Likelihood:
        """p(x|z) from the decoder's output ``out`` (the likelihood's parameters, shaped as the data)."""
        event_dims = len(self.data_shape)
        if self.config.likelihood == "bernoulli":
            return Bernoulli(out, event_dims)
        if self.config.likelihood == "gaussian":
            return Gaussian(out, self.config.gaussian_scale, event_dims)
        return Gaussian(out, self.config.scale_floor + F.softplus(self.raw_scale), event_dims)

    def spec(self) -> dict[str, Any]:
        """What the data fixed (the example shape, the number of classes); the rest is ``config.model``."""
        return {"data_shape": list(self.data_shape), "num_classes": self.num_classes}

    @classmethod
    def from_spec(cls, spec: dict[str, Any], config: Optional[Config] = None) -> "VAE":
        """The untrained VAE of ``spec`` (from :meth:`spec`) with ``config.model``'s networks."""
        if config is None:
            raise ConfigError("a VAE is rebuilt from its spec and the Config it trained under; pass config")
        return cls(config.model, tuple(spec["data_shape"]), int(spec.get("num_classes", 0)))


class Autoencoder(VAE):
    """The contrast to a VAE: the same networks, no KL term and no sampling (``model.model=ae``).

    The code of x is the encoder's mean, decoded as it is; training minimises -log p(x|z) alone
    (:func:`vaekit.training.setup.resolve_config` sets beta to 0). Nothing pulls the codes towards
    N(0, I), so decoding draws from N(0, I) (:meth:`sample`) shows what a VAE's KL term buys.
    ``encode`` returns N(mean, I): the point code, widened into a proposal so that importance
    sampling (``vaekit.log_likelihood``) still estimates log p(x) of the decoder under the N(0, I)
    prior; its KL to the prior is then |mean|^2 / 2, how far the codes sit from the prior's scale.
    """

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DiagonalGaussian:
        mean = super().encode(x, y).mean
        return DiagonalGaussian(mean, torch.zeros_like(mean))

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                generator: Optional[torch.Generator] = None) -> VAEOutput:
        """The deterministic code z = mean and p(x|z) there; no noise is drawn."""
        posterior = self.encode(x, y)
        return VAEOutput(posterior, posterior.mean, self.decode(posterior.mean, y))
