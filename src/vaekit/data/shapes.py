"""A dSprites-like set of binary shape images with known generative factors, made here.

dSprites (Matthey et al. 2017) renders a white sprite on black from five independent factors;
it is the usual test bed for disentanglement. This module draws the same kind of images with
numpy, deterministically and without a download: factor indices on a grid, a shape rendered by
testing each pixel centre against the shape's implicit equation in the sprite's own frame.

Factors (``FACTOR_NAMES``, ``FACTOR_SIZES``): shape (square, ellipse, heart), scale (4 values
from 0.5 to 1), rotation (8 values in [0, 90) degrees: a square repeats every 90 degrees, so a
wider range would make the factor unidentifiable from the image), x and y position (8 each).
"""

from __future__ import annotations

import numpy as np

FACTOR_NAMES = ("shape", "scale", "rotation", "x", "y")
FACTOR_SIZES = (3, 4, 8, 8, 8)
SHAPE_NAMES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, FACTOR_SIZES[1])
ROTATIONS = np.linspace(0.0, np.pi / 2, FACTOR_SIZES[2], endpoint=False)


def _inside(shape: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether the points (u, v), in the sprite's frame (unit size), lie in each sprite's shape."""
    square = np.maximum(np.abs(u), np.abs(v)) <= 0.8
    ellipse = u**2 + (v / 0.5) ** 2 <= 1.0
    # The heart curve (x^2 + y^2 - 1)^3 = x^2 y^3, y pointing up (image rows point down),
    # shrunk by 0.85 so that its area is close to the square's and the ellipse's.
    hu, hv = u / 0.85, -v / 0.85 + 0.1
    heart = (hu**2 + hv**2 - 1.0) ** 3 - hu**2 * hv**3 <= 0.0
    return np.choose(shape, [square, ellipse, heart])


def render(factors: np.ndarray, size: int = 32) -> np.ndarray:
    """Images (N, 1, size, size), float32 in {0, 1}, of integer ``factors`` (N, 5) as in
    ``FACTOR_NAMES``; the largest sprite fits at every position and rotation."""
    factors = np.asarray(factors, dtype=np.int64)
    if factors.ndim != 2 or factors.shape[1] != len(FACTOR_SIZES):
        raise ValueError(f"factors must be (N, {len(FACTOR_SIZES)}), got shape {factors.shape}")
    if (factors < 0).any() or (factors >= np.array(FACTOR_SIZES)).any():
        raise ValueError(f"factor indices must lie in 0..size-1 for sizes {FACTOR_SIZES}")
    radius = 0.2 * size  # of the largest sprite, in pixels
    margin = 1.2 * radius * 0.8 * np.sqrt(2)  # a rotated square's corner stays inside
    positions = np.linspace(margin, size - 1 - margin, FACTOR_SIZES[3])
    pixels = np.arange(size) + 0.0
    rows, cols = np.meshgrid(pixels, pixels, indexing="ij")  # (size, size)
    images = np.empty((factors.shape[0], 1, size, size), dtype=np.float32)
    for start in range(0, factors.shape[0], 1024):  # bounded memory for large sets
        f = factors[start:start + 1024]
        scale = (radius * SCALES[f[:, 1]])[:, None, None]
        angle = ROTATIONS[f[:, 2]][:, None, None]
        dx = cols[None] - positions[f[:, 3]][:, None, None]
        dy = rows[None] - positions[f[:, 4]][:, None, None]
        # rotate the pixel offsets by -angle into the sprite's frame, then scale to unit size
        u = (np.cos(angle) * dx + np.sin(angle) * dy) / scale
        v = (-np.sin(angle) * dx + np.cos(angle) * dy) / scale
        shape = np.broadcast_to(f[:, 0][:, None, None], u.shape)
        images[start:start + 1024, 0] = _inside(shape, u, v)
    return images


def all_factors() -> np.ndarray:
    """Every combination of factor indices, (prod(FACTOR_SIZES), 5), in row-major order."""
    grids = np.meshgrid(*[np.arange(s) for s in FACTOR_SIZES], indexing="ij")
    return np.stack([g.reshape(-1) for g in grids], axis=1)


def make_shapes(n: int | None = None, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 1, size, size) float32 in {0, 1}, factors (N, 5) int64).

    ``n=None``: the full grid of every factor combination (6144 images), shuffled by ``seed``;
    otherwise ``n`` factor combinations drawn independently and uniformly with ``seed``.
    The factors are independent either way, as MIG assumes."""
    rng = np.random.default_rng(seed)
    if n is None:
        factors = all_factors()[rng.permutation(int(np.prod(FACTOR_SIZES)))]
    else:
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        factors = np.stack([rng.integers(0, s, size=n) for s in FACTOR_SIZES], axis=1)
    return render(factors, size), factors
