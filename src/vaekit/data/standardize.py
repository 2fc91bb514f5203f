"""The one standardiser: z = (x - mean) / scale per column, with a training set's statistics.

Tables read by the registry, the memory-mapped ``.npy`` tables, the scikit-learn front ends and
the anomaly detector's asinh transform all fit and apply it here. A run folder stores it as the
``preprocessing`` record ``{"columns", "mean", "std"}`` of ``config.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from vaekit.errors import DataError


@dataclass(frozen=True)
class Standardizer:
    """Column means and scales (float64, shape (d,)); ``apply`` standardises, ``invert`` undoes it."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> "Standardizer":
        """The columns' means and (population) standard deviations, accumulated in float64."""
        return cls.from_moments(np.mean(x, axis=0, dtype=np.float64), np.std(x, axis=0, dtype=np.float64))

    @classmethod
    def from_moments(cls, mean: np.ndarray, std: np.ndarray) -> "Standardizer":
        """From means and standard deviations; a constant column (std 0) is centred, not blown up."""
        return cls(np.asarray(mean, dtype=np.float64), np.where(std > 0, std, 1.0))

    @classmethod
    def pixels(cls, x: np.ndarray) -> "Standardizer":
        """One offset and one scale for every column: the least value and the range of all of x.

        For images, whose pixels share one unit: the pixels are mapped to [0, 1] together (uint8
        images are divided by their range, pixels already in [0, 1] stay as they are), instead of
        each pixel by its own spread, which would blow up a rarely-inked border pixel by a factor
        of a hundred when a stroke reaches it.
        """
        lo, hi = (float(np.min(x)), float(np.max(x))) if x.size else (0.0, 1.0)
        d = x.shape[1]
        return cls(np.full(d, lo), np.full(d, hi - lo if hi > lo else 1.0))

    @classmethod
    def identity(cls, d: int) -> "Standardizer":
        """The standardiser that changes nothing (data already in [0, 1], or standardize=False)."""
        return cls(np.zeros(d), np.ones(d))

    @classmethod
    def from_record(cls, preprocessing: dict, d: Optional[int] = None) -> "Standardizer":
        """From a stored ``preprocessing`` record (without "mean": the identity over ``d`` columns)."""
        mean = np.asarray(preprocessing.get("mean", [0.0] * (d or 0)), dtype=np.float64)
        return cls(mean, np.asarray(preprocessing.get("std", [1.0] * len(mean)), dtype=np.float64))

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.scale

    def invert(self, z: np.ndarray) -> np.ndarray:
        return z * self.scale + self.mean

    def record(self, columns: Sequence[str]) -> dict:
        """The ``preprocessing`` record a run folder stores."""
        return {"columns": list(columns), "mean": [float(v) for v in self.mean],
                "std": [float(v) for v in self.scale]}


def fit_standardizer(train: np.ndarray, columns: Sequence[str], identity: bool = False) -> dict:
    """The preprocessing record of the TRAIN split: column names, mean and std (0 -> 1)."""
    return (Standardizer.identity(train.shape[1]) if identity else Standardizer.fit(train)).record(columns)


def apply_standardizer(x: np.ndarray, preprocessing: dict, name: str) -> np.ndarray:
    """(x - mean) / std with the stored statistics, as float32; a DataError names a column whose
    standardised values would leave float32's range, or a column count that does not match."""
    standardizer = Standardizer.from_record(preprocessing, x.shape[1])
    if standardizer.mean.shape != (x.shape[1],) or standardizer.scale.shape != (x.shape[1],):
        raise DataError(
            f"{name} has {x.shape[1]} features but the stored preprocessing has {standardizer.mean.size}; "
            "use data with the columns the model was trained on"
        )
    z = standardizer.apply(x)
    beyond = np.abs(z) > np.finfo(np.float32).max  # would become +-inf in float32 (NaN, a missing cell, passes)
    if beyond.any():
        i, k = np.argwhere(beyond)[0]
        columns = preprocessing.get("columns", [])
        column = columns[k] if k < len(columns) else k
        raise DataError(
            f"{name}: column {column!r} holds {x[i, k]:.6g}, which the training rows' mean and standard deviation "
            f"turn into {z[i, k]:.3g}, beyond float32's range (about 3.4e38); rescale that column or drop its extreme rows"
        )
    return z.astype(np.float32)
