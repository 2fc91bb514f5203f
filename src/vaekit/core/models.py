"""The VAE and its conditional variant.

``encode(x) -> DiagonalGaussian`` (q(z|x)), ``decode(z) -> Bernoulli | Gaussian`` (p(x|z)),
``prior`` (N(0, I)), ``forward(x) -> VAEOutput`` and ``sample(n)``. Models know nothing about
optimisers, files or the command line; the loss is in :mod:`vaekit.objectives`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.config import ModelConfig
from vaekit.core.distributions import Bernoulli, DiagonalGaussian, Gaussian
from vaekit.errors import ConfigError, DataError
from vaekit.core.networks import build_networks

Likelihood = Union[Bernoulli, Gaussian]


@dataclass
class VAEOutput:
    posterior: DiagonalGaussian  # q(z|x)
    z: torch.Tensor  # a reparameterised draw from q(z|x)
    likelihood: Likelihood  # p(x|z) at that draw


class VAE(nn.Module):
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
        self.encoder, self.decoder = build_networks(self.data_shape, config, cond_dim=self.num_classes)
        if config.likelihood == "gaussian-learned":
            # One learned scale per data dimension, shared across examples (as in sigma-VAE,
            # Rybkin et al. 2021); scale = floor + softplus(raw) keeps it above the floor.
            self.raw_scale = nn.Parameter(torch.zeros(self.data_shape))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def prior(self) -> DiagonalGaussian:
        p = next(self.parameters())
        return DiagonalGaussian.standard(self.latent_dim, device=p.device, dtype=p.dtype)

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

    def check_shape(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.data_shape:
            raise DataError(
                f"the model expects examples of shape {self.data_shape}, got {tuple(x.shape[1:])}; "
                "use data of the kind the model was trained on"
            )

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DiagonalGaussian:
        self.check_shape(x)
        h = self.encoder(x, self._condition(y, x.shape[0]))
        mean, logvar = h.chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def decode(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> Likelihood:
        """p(x|z); ``z`` may carry leading sample dimensions, e.g. (k, batch, latent_dim)."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, self.latent_dim)
        c = self._condition(y, lead[-1] if lead else 1)
        if c is not None and len(lead) > 1:
            c = c.expand(*lead, -1).reshape(-1, self.num_classes)
        out = self.decoder(flat, c).reshape(*lead, *self.data_shape)
        event_dims = len(self.data_shape)
        if self.config.likelihood == "bernoulli":
            return Bernoulli(out, event_dims)
        if self.config.likelihood == "gaussian":
            return Gaussian(out, self.config.gaussian_scale, event_dims)
        return Gaussian(out, self.config.scale_floor + F.softplus(self.raw_scale), event_dims)

    def forward(
        self, x: torch.Tensor, y: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None
    ) -> VAEOutput:
        posterior = self.encode(x, y)
        z = posterior.rsample(generator=generator)
        return VAEOutput(posterior, z, self.decode(z, y))

    @torch.no_grad()
    def sample(
        self, n: int, y: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None, mean: bool = True
    ) -> torch.Tensor:
        """Draw n examples from the model: z ~ p(z), then the mean of p(x|z) (or a draw if mean=False)."""
        z = self.prior.rsample(n, generator=generator)[:, 0]
        likelihood = self.decode(z, y)
        return likelihood.mean if mean else likelihood.sample(generator=generator)

    def spec(self) -> dict:
        """What, besides the config, is needed to rebuild this model (saved in config.json)."""
        return {"data_shape": list(self.data_shape), "num_classes": self.num_classes}
