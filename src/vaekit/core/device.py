"""Where a model lives: the device of its parameters, and inputs moved there.

A vaekit model keeps all its parameters on one device and in one floating dtype (float32, or
float64 for the fitted models of the scikit-learn front ends), so its first parameter says both.
"""

from __future__ import annotations

import torch
from torch import nn


def device_of(model: nn.Module) -> torch.device:
    """The device that ``model``'s parameters are on."""
    return next(model.parameters()).device


def as_model_input(model: nn.Module, x) -> torch.Tensor:
    """``x`` (a tensor or an array) as a tensor on ``model``'s device, in its floating dtype."""
    p = next(model.parameters())
    return torch.as_tensor(x).to(device=p.device, dtype=p.dtype)
