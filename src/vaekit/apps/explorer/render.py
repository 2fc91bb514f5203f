"""Turning decoded means into what the page shows: a PNG data URI for an image, named values for
a table row (in the units of the training file)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import torch
from PIL import Image


def image_data_uri(image: torch.Tensor) -> str:
    """A (C, H, W) image with values in [0, 1] (C = 1 or 3) as a ``data:image/png;base64,...`` URI.

    The PNG keeps the data's own resolution (8 x 8 for digits); the page enlarges it with
    nearest-neighbour scaling, so every pixel the model produced stays visible.
    """
    pixels = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    # uint8 (H, W) reads as greyscale, (H, W, 3) as RGB
    picture = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else np.ascontiguousarray(pixels[:3].transpose(1, 2, 0)))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def table_row(values: torch.Tensor, preprocessing: dict[str, Any]) -> dict[str, list]:
    """A decoded row (standardised, as the model sees it) in the units of the training file:
    x * std + mean with the stored training statistics, named by the stored column names."""
    row = values.detach().double().cpu().numpy().reshape(-1)
    mean = np.asarray(preprocessing.get("mean", np.zeros_like(row)), dtype=np.float64)
    std = np.asarray(preprocessing.get("std", np.ones_like(row)), dtype=np.float64)
    if mean.shape == row.shape and std.shape == row.shape:
        row = row * std + mean
    columns = list(preprocessing.get("columns") or [f"x{i}" for i in range(row.size)])
    return {"columns": columns, "values": [float(v) for v in row]}


def decoded(mean: torch.Tensor, kind: str, preprocessing: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON the page draws for one decoded mean: ``{"image": uri}`` or ``{"table": row}``."""
    if kind == "image":
        return {"image": image_data_uri(mean)}
    return {"table": table_row(mean, preprocessing or {})}
