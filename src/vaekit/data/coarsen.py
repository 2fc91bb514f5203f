"""Images seen at a coarser scale: a Gaussian blur, then average pooling, on rows of pixels.

Used by :class:`vaekit.VAEAnomalyDetector` for images kept as pixels: a VAE's per-pixel likelihood
charges a normal image for its own texture pixel by pixel as much as an anomaly for its shape, and
at a coarser scale the shape weighs more (bench/results/anomaly_scale.md).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from vaekit.errors import ConfigError


def _radius(blur: float) -> int:
    """The blur kernel's half-width in pixels: 3 sigma, at least 1."""
    return max(1, math.ceil(3 * blur))


def blur_fits(shape: tuple, blur: float) -> bool:
    """Whether images of ``shape`` ((H, W) or (C, H, W)) are larger than the blur kernel's half-width
    (3 sigma, at least 1 pixel), as reflecting their edges needs."""
    return blur == 0 or _radius(blur) < min(shape[-2:])


def coarsen(rows: np.ndarray, shape: tuple, blur: float = 0.0, pool: int = 1) -> np.ndarray:
    """Rows of flattened images of ``shape`` ((H, W) or (C, H, W)), each channel blurred with a Gaussian
    of standard deviation ``blur`` pixels (0: none; the kernel reaches 3 sigma, edges reflected, as
    torchvision's ``gaussian_blur``) and then averaged over ``pool`` x ``pool`` blocks (1: none; a
    block cut by the edge averages the pixels it holds). Returns rows again, in ``rows``' dtype."""
    if blur < 0 or int(pool) != pool or pool < 1:
        raise ConfigError(f"blur must be >= 0 and pool a whole number >= 1, not {blur!r} and {pool!r}")
    if len(shape) not in (2, 3):
        raise ConfigError(f"an image shape is (H, W) or (C, H, W), not {shape!r}")
    if blur == 0 and pool == 1:
        return rows
    c, h, w = (1, *shape) if len(shape) == 2 else shape
    x = torch.from_numpy(np.ascontiguousarray(rows)).reshape(-1, c, h, w)
    if blur > 0:
        radius = _radius(blur)
        if not blur_fits(shape, blur):
            raise ConfigError(f"blur={blur} needs images larger than {radius} pixels, not {h}x{w}")
        from torchvision.transforms.v2.functional import gaussian_blur  # 1.3 s to import: only when used

        x = gaussian_blur(x, [2 * radius + 1] * 2, [float(blur)] * 2)
    if pool > 1:
        x = F.avg_pool2d(x, int(pool), ceil_mode=True)
    return x.reshape(len(rows), -1).numpy()
