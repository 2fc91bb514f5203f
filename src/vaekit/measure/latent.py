"""Moving around the latent space: reconstruction, interpolation and traversals.

Each function takes a model and tensors and returns decoded means (the expected x under
p(x|z)); pictures are drawn by :mod:`vaekit.runs.plots`.
"""

from __future__ import annotations

from typing import Literal, Optional, Sequence

import torch

from vaekit.core.device import as_model_input, device_of
from vaekit.errors import ConfigError


@torch.no_grad()
def reconstruct(model, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Decode the posterior mean of each example: E[x | z = E_q[z|x]], on the CPU.

    ``x`` (a tensor or an array) is moved to the model's device and dtype first.
    """
    x = as_model_input(model, x)
    return model.decode(model.encode(x, y).mean, y).mean.cpu()


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for latent spaces).

    Under a N(0, I) prior, norms concentrate near sqrt(latent_dim); the straight line between
    two latents passes through the low-norm, low-probability centre, the great circle does not.
    Falls back to the straight line when a and b are (nearly) parallel.
    """
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    cos = ((a * b).sum(-1, keepdim=True) / (na * nb).clamp_min(eps)).clamp(-1 + eps, 1 - eps)
    omega = torch.acos(cos)
    so = torch.sin(omega)
    if bool((so.abs() < 1e-4).all()):
        return lerp(a, b, t)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / so


@torch.no_grad()
def interpolate(
    model, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 10,
    method: Literal["linear", "spherical"] = "linear", y: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Decode ``steps`` points on the path between the posterior means of x_a and x_b.

    ``x_a``, ``x_b``: batches of the same size (pairs); returns (pairs, steps, *data_shape).
    """
    if steps < 2:
        raise ConfigError("interpolation needs at least 2 steps")
    device = device_of(model)
    za = model.encode(x_a.to(device), y).mean
    zb = model.encode(x_b.to(device), y).mean
    t = torch.linspace(0, 1, steps, device=device).view(1, steps, 1)
    path_fn = {"linear": lerp, "spherical": slerp}.get(method)
    if path_fn is None:
        raise ConfigError(f"unknown interpolation {method!r}; choose linear or spherical")
    z = path_fn(za[:, None], zb[:, None], t)  # (pairs, steps, latent_dim)
    y_rep = None if y is None else torch.as_tensor(y).reshape(-1, 1).expand(-1, steps).reshape(-1)
    out = model.decode(z.reshape(-1, z.shape[-1]), y_rep).mean
    return out.reshape(z.shape[0], steps, *out.shape[1:]).cpu()


@torch.no_grad()
def traverse(
    model, x: Optional[torch.Tensor] = None, dims: Optional[Sequence[int]] = None,
    steps: int = 9, span: float = 3.0, y: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Vary one latent dimension at a time over [-span, span] around a base point.

    The base is the posterior mean of the single example ``x`` (shape (1, ...)), or the prior
    mean 0 when ``x`` is None. Returns (len(dims), steps, *data_shape).
    """
    device = device_of(model)
    dims = list(range(model.latent_dim)) if dims is None else list(dims)
    bad = [d for d in dims if not 0 <= d < model.latent_dim]
    if bad:
        raise ConfigError(f"latent dimensions {bad} do not exist; the model has {model.latent_dim} (0..{model.latent_dim - 1})")
    base = torch.zeros(model.latent_dim, device=device) if x is None else model.encode(x[:1].to(device), y).mean[0]
    values = torch.linspace(-span, span, steps, device=device)
    z = base.repeat(len(dims), steps, 1)
    for i, d in enumerate(dims):
        z[i, :, d] = base[d] + values
    y_rep = None if y is None else torch.as_tensor(y).reshape(-1)[:1].expand(len(dims) * steps)
    out = model.decode(z.reshape(-1, model.latent_dim), y_rep).mean
    return out.reshape(len(dims), steps, *out.shape[1:]).cpu()
