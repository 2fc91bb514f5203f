"""Encoder and decoder backbones, built from a ModelConfig and the data's shape.

Encoders map x (and optionally a conditioning vector y, e.g. a one-hot label) to
``2 * latent_dim`` numbers (mean and log-variance); decoders map z (and y) to one raw parameter
per data element (Bernoulli logits or Gaussian means). All sizes are derived from the config and
the data shape; nothing is hard-coded. Losses live elsewhere.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from vaekit.config import ModelConfig
from vaekit.errors import ConfigError


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _with_condition(h: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
    """The features h with the conditioning vector y appended (h itself without one)."""
    return h if y is None else torch.cat([h, y.to(h.dtype)], dim=-1)


class MLPEncoder(nn.Module):
    """x (and y) -> ``out_features`` numbers: 2 * latent_dim (mean, log-variance) by default, or
    the logits of a classifier (semi-supervised models)."""

    def __init__(self, data_shape: tuple[int, ...], cfg: ModelConfig, cond_dim: int = 0,
                 out_features: Optional[int] = None):
        super().__init__()
        in_features = int(torch.Size(data_shape).numel())
        self.net = mlp([in_features + cond_dim, *cfg.hidden, out_features or 2 * cfg.latent_dim])

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.net(_with_condition(x.flatten(1), y))


class MLPDecoder(nn.Module):
    def __init__(self, data_shape: tuple[int, ...], cfg: ModelConfig, cond_dim: int = 0):
        super().__init__()
        self.data_shape = tuple(data_shape)
        out_features = int(torch.Size(data_shape).numel())
        self.net = nn.Sequential(
            *mlp([cfg.latent_dim + cond_dim, *reversed(cfg.hidden), out_features]), nn.Unflatten(1, self.data_shape)
        )

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.net(_with_condition(z, y))


def _conv_sizes(data_shape: tuple[int, ...], channels: tuple[int, ...]) -> list[tuple[int, int]]:
    """Spatial sizes after each stride-2, kernel-4, padding-1 convolution: s -> floor(s / 2)."""
    if len(data_shape) != 3:
        raise ConfigError(f"arch=conv needs images of shape (C, H, W), but the data have shape {tuple(data_shape)}; use arch=mlp")
    sizes = [tuple(data_shape[1:])]
    for _ in channels:
        h, w = sizes[-1]
        if h < 2 or w < 2:
            raise ConfigError(f"{len(channels)} conv layers are too many for {data_shape[1]}x{data_shape[2]} images; use fewer model.channels")
        sizes.append((h // 2, w // 2))
    return sizes


class ConvEncoder(nn.Module):
    """As :class:`MLPEncoder`, with stride-2 convolutions before the MLP head."""

    def __init__(self, data_shape: tuple[int, ...], cfg: ModelConfig, cond_dim: int = 0,
                 out_features: Optional[int] = None):
        super().__init__()
        sizes = _conv_sizes(data_shape, cfg.channels)
        layers: list[nn.Module] = []
        for c_in, c_out in zip((data_shape[0], *cfg.channels[:-1]), cfg.channels):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1), nn.ReLU()]
        self.conv = nn.Sequential(*layers, nn.Flatten(1))
        flat = cfg.channels[-1] * sizes[-1][0] * sizes[-1][1]
        self.head = mlp([flat + cond_dim, *cfg.hidden, out_features or 2 * cfg.latent_dim])

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.head(_with_condition(self.conv(x), y))


class ConvDecoder(nn.Module):
    def __init__(self, data_shape: tuple[int, ...], cfg: ModelConfig, cond_dim: int = 0):
        super().__init__()
        sizes = _conv_sizes(data_shape, cfg.channels)
        h, w = sizes[-1]
        flat = cfg.channels[-1] * h * w
        self.head = nn.Sequential(
            mlp([cfg.latent_dim + cond_dim, *reversed(cfg.hidden), flat]), nn.ReLU(), nn.Unflatten(1, (cfg.channels[-1], h, w))
        )
        outs = (*reversed(cfg.channels[:-1]), data_shape[0])
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(reversed(cfg.channels), outs)):
            (h_in, w_in), (h_out, w_out) = sizes[-1 - i], sizes[-2 - i]
            # ConvTranspose2d(k=4, s=2, p=1) gives 2*s + output_padding; pad by one where the
            # encoder rounded an odd size down (e.g. 7 -> 3 on 28x28 with three layers).
            layers.append(
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, output_padding=(h_out - 2 * h_in, w_out - 2 * w_in))
            )
            if i < len(outs) - 1:
                layers.append(nn.ReLU())
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.deconv(self.head(_with_condition(z, y)))


def build_networks(data_shape: tuple[int, ...], cfg: ModelConfig, cond_dim: int = 0,
                   encoder_cond_dim: Optional[int] = None) -> tuple[nn.Module, nn.Module]:
    """The encoder and decoder for ``cfg.arch``; both see a conditioning vector of ``cond_dim``
    numbers, or the encoder one of ``encoder_cond_dim`` when it is given (a model whose q(z|x, ...)
    is conditioned on more than p(x|z, ...) is)."""
    enc_dim = cond_dim if encoder_cond_dim is None else encoder_cond_dim
    if cfg.arch == "mlp":
        return MLPEncoder(data_shape, cfg, enc_dim), MLPDecoder(data_shape, cfg, cond_dim)
    if cfg.arch == "conv":
        return ConvEncoder(data_shape, cfg, enc_dim), ConvDecoder(data_shape, cfg, cond_dim)
    raise ConfigError(f"unknown model.arch {cfg.arch!r}; choose mlp or conv")


def build_encoder(data_shape: tuple[int, ...], cfg: ModelConfig, out_features: int, cond_dim: int = 0) -> nn.Module:
    """A network x (and a conditioning vector of ``cond_dim``) -> ``out_features`` numbers with the
    encoder's body for ``cfg.arch``: a classifier's logits, or the mean and log-variance of another
    Gaussian over a variable than z."""
    if cfg.arch == "mlp":
        return MLPEncoder(data_shape, cfg, cond_dim, out_features=out_features)
    if cfg.arch == "conv":
        return ConvEncoder(data_shape, cfg, cond_dim, out_features=out_features)
    raise ConfigError(f"unknown model.arch {cfg.arch!r}; choose mlp or conv")


def build_classifier(data_shape: tuple[int, ...], cfg: ModelConfig, num_classes: int, cond_dim: int = 0) -> nn.Module:
    """A classifier x (and a conditioning vector) -> ``num_classes`` logits with the encoder's body for
    ``cfg.arch`` (q(y|x) of M2)."""
    return build_encoder(data_shape, cfg, num_classes, cond_dim)
