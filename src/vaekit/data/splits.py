"""Datasets split three ways: :class:`DataSplits`, the seeded split and the tables' standardisation.

Splits: ``test_fraction`` and ``val_fraction`` of the whole set, chosen by a permutation from
``numpy.random.default_rng(split_seed)``, so the same seed gives the same split on every
machine. Tables are standardised with the statistics of their training split only.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from vaekit.config import DataConfig
from vaekit.data.mapped import MappedRows
from vaekit.data.standardize import apply_standardizer, fit_standardizer
from vaekit.errors import DataError


@dataclass(repr=False)
class DataSplits:
    """A dataset split three ways: float32 tensors resident in memory, or, for a ``.npy``
    table, :class:`~vaekit.data.mapped.MappedRows` views of the memory-mapped file (same
    ``shape``/``len``; indexing returns tensors of the rows asked for)."""

    name: str  # "digits", "mnist", ..., or the path given
    kind: str  # "image" or "table"
    shape: tuple[int, ...]  # per-example shape: (C, H, W) for images, (D,) for tables
    train: torch.Tensor | MappedRows  # float32 (N, *shape); images scaled to [0, 1]
    val: torch.Tensor | MappedRows
    test: torch.Tensor | MappedRows
    train_labels: Optional[torch.Tensor]  # int64 class indices, or None
    val_labels: Optional[torch.Tensor]
    test_labels: Optional[torch.Tensor]
    binary: bool  # every value is exactly 0 or 1
    num_classes: int  # 0 when there are no labels
    class_names: Optional[list[str]]
    preprocessing: dict  # tables: {"columns", "mean", "std"} (+ "label_column", "class_names"); images: {}
    labelled: Optional[dict] = None  # semi-supervised: which training labels were kept (see keep_labels)

    def __repr__(self) -> str:
        sizes = f"{len(self.train)}/{len(self.val)}/{len(self.test)}"
        return (f"DataSplits(name={self.name!r}, kind={self.kind!r}, shape={self.shape}, "
                f"train/val/test={sizes}, binary={self.binary}, num_classes={self.num_classes})")


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int,
                  name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted (train, val, test) indices of a seeded permutation of ``range(n)``.

    Each fraction is of the whole set; a positive fraction gives at least one example.
    """
    def count(fraction: float) -> int:
        return 0 if fraction <= 0 else max(1, math.floor(n * fraction + 0.5))

    n_test, n_val = count(test_fraction), count(val_fraction)
    if n - n_test - n_val < 1:
        raise DataError(
            f"{name} has {n} examples, too few to split into train/validation/test "
            f"(val_fraction={val_fraction}, test_fraction={test_fraction}); add data or lower the fractions"
        )
    perm = np.random.default_rng(seed).permutation(n)
    test, val, train = perm[:n_test], perm[n_test:n_test + n_val], perm[n_test + n_val:]
    return np.sort(train), np.sort(val), np.sort(test)


def is_binary(x: np.ndarray) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def as_tensor(a: Optional[np.ndarray], dtype: torch.dtype) -> Optional[torch.Tensor]:
    return None if a is None else torch.from_numpy(np.ascontiguousarray(a)).to(dtype)


def make_splits(name: str, kind: str, parts: tuple, labels: tuple, class_names: Optional[list[str]],
          preprocessing: dict, binary: Optional[bool] = None) -> DataSplits:
    """Build DataSplits from (train, val, test) arrays and matching label arrays (or Nones)."""
    train, val, test = (as_tensor(p, torch.float32) for p in parts)
    if binary is None:
        binary = all(is_binary(p) for p in parts)
    return DataSplits(
        name=name, kind=kind, shape=tuple(train.shape[1:]), train=train, val=val, test=test,
        train_labels=as_tensor(labels[0], torch.int64), val_labels=as_tensor(labels[1], torch.int64),
        test_labels=as_tensor(labels[2], torch.int64), binary=bool(binary),
        num_classes=len(class_names) if class_names else 0, class_names=class_names,
        preprocessing=preprocessing,
    )


def split_whole(name: str, kind: str, x: np.ndarray, y: Optional[np.ndarray], cfg: DataConfig,
                 class_names: Optional[list[str]], columns: Optional[list[str]] = None) -> DataSplits:
    """Split a set with no official split; standardise tables with the train statistics."""
    idx = split_indices(len(x), cfg.val_fraction, cfg.test_fraction, cfg.split_seed, name)
    parts = tuple(x[i] for i in idx)
    labels = tuple(None if y is None else y[i] for i in idx)
    preprocessing: dict = {}
    if kind == "table":
        assert columns is not None
        # Data that are all 0/1 are left as they are, so that a Bernoulli likelihood still fits.
        identity = not cfg.standardize or is_binary(x)
        preprocessing = fit_standardizer(parts[0], columns, identity=identity)
        parts = tuple(apply_standardizer(p, preprocessing, name) for p in parts)
        if class_names is not None:
            preprocessing["label_column"] = cfg.label_column
            preprocessing["class_names"] = list(class_names)
    return make_splits(name, kind, parts, labels, class_names, preprocessing)


def per_class_counts(count: int, num_classes: int) -> list[int]:
    """``count`` labels shared as evenly as they go over the classes (the first classes take the remainder)."""
    if count < num_classes:
        raise DataError(f"data.labels={count} leaves {num_classes - count} of the {num_classes} classes without a "
                        f"labelled row; keep at least {num_classes} labels (one per class)")
    return [count // num_classes + (c < count % num_classes) for c in range(num_classes)]


def draw_labelled(labels: np.ndarray, count: int, num_classes: int, seed: int) -> np.ndarray:
    """Sorted indices of ``count`` rows of ``labels`` drawn per class (:func:`per_class_counts`)
    without replacement by ``numpy.random.default_rng(seed)``, class by class in order."""
    rng = np.random.default_rng(seed)
    chosen = []
    for c, n in enumerate(per_class_counts(count, num_classes)):
        rows = np.flatnonzero(labels == c)
        if len(rows) < n:
            raise DataError(f"data.labels={count} asks for {n} labelled rows of class {c}, "
                            f"but the training split has {len(rows)}; keep fewer labels")
        chosen.append(rng.choice(rows, n, replace=False))
    return np.sort(np.concatenate(chosen))


def keep_labels(data: DataSplits, count: int, seed: int) -> DataSplits:
    """A copy of ``data`` whose training split keeps ``count`` labels drawn per class with ``seed``
    (:func:`draw_labelled`); the other training labels become -1 (sklearn.semi_supervised's mark of
    an unlabelled row). Validation and test labels are kept. ``labelled`` records the draw."""
    if data.train_labels is None or data.num_classes < 2:
        raise DataError(f"{data.name} has no class labels to keep; semi-supervised training needs a labelled set")
    labels = data.train_labels.numpy()
    keep = draw_labelled(labels, count, data.num_classes, seed)
    masked = np.full_like(labels, -1)
    masked[keep] = labels[keep]
    info = {"count": int(count), "seed": int(seed), "per_class": per_class_counts(count, data.num_classes),
            "indices": keep.tolist()}
    return dataclasses.replace(data, train_labels=torch.from_numpy(masked), labelled=info)
