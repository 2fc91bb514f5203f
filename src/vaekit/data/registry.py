"""The dataset registry: a name or a path in, train/validation/test tensors out.

Built-in names: ``digits`` (scikit-learn's 8x8 digits, embedded), ``mnist``, ``fashion-mnist``
and ``binarized-mnist`` (files under :func:`data_dir`, downloaded with checksums). Anything else
is a path: a ``.csv`` table, a ``.npy`` array or a folder of images.

Splits: official ones where the data has them (MNIST's 60k/10k, binarized MNIST's
50k/10k/10k); otherwise ``test_fraction`` and ``val_fraction`` of the whole set, chosen by a
permutation from ``numpy.random.default_rng(split_seed)``, so the same seed gives the same
split on every machine. MNIST's validation set is ``val_fraction`` of its 60k training images.

A 2-D ``.npy`` table is never loaded: it is memory-mapped and its splits are
:class:`~vaekit.data.mapped.MappedRows` views of the file (rows are read, standardised, when a
batch or an evaluation asks for them), so a table larger than memory trains in bounded memory.
The checks (finite values), the 0/1 test and the standardisation statistics are one pass over
the file in blocks.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DataError
from .idx import MNIST_FAMILY, load_binarized_mnist, load_mnist_family
from .images import IMAGE_SUFFIXES, is_image_file, read_image_folder, read_images
from .mapped import MappedRows, NpyMap, scan_table
from .tables import apply_standardizer, fit_standardizer, read_csv_table, read_npy

BUILTIN = ("digits", "mnist", "fashion-mnist", "binarized-mnist")
_CHOICES = "choose digits, mnist, fashion-mnist, binarized-mnist or a path to a .csv, .npy or image folder"


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

    def __repr__(self) -> str:
        sizes = f"{len(self.train)}/{len(self.val)}/{len(self.test)}"
        return (f"DataSplits(name={self.name!r}, kind={self.kind!r}, shape={self.shape}, "
                f"train/val/test={sizes}, binary={self.binary}, num_classes={self.num_classes})")


def data_dir(cfg: Optional[DataConfig] = None) -> Path:
    """Where dataset files live: cfg.data_dir, else $VAEKIT_DATA_DIR, else the user cache."""
    if cfg is not None and cfg.data_dir:
        return Path(cfg.data_dir).expanduser()
    if os.environ.get("VAEKIT_DATA_DIR"):
        return Path(os.environ["VAEKIT_DATA_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    return (Path(cache).expanduser() if cache else Path.home() / ".cache") / "vaekit"


def load_dataset(cfg: DataConfig) -> DataSplits:
    """Load the dataset ``cfg.name`` and split it as ``cfg`` says."""
    for fraction, key in ((cfg.val_fraction, "val_fraction"), (cfg.test_fraction, "test_fraction")):
        if not 0 <= fraction < 1:
            raise DataError(f"data.{key} must be in [0, 1), not {fraction}")
    name = str(cfg.name).strip()
    key = name.lower().replace("_", "-")
    if key in ("digits", "mnist", "fashion-mnist", "fashionmnist", "binarized-mnist", "binarizedmnist"):
        if key == "digits":
            return _digits(cfg)
        if key == "binarized-mnist" or key == "binarizedmnist":
            return _binarized_mnist(cfg)
        return _mnist(cfg, "mnist" if key == "mnist" else "fashion-mnist")
    path = Path(name).expanduser()
    looks_like_path = os.sep in name or "/" in name or path.suffix.lower() in (".csv", ".npy", ".npz")
    if not path.exists():
        if looks_like_path:
            raise DataError(f"dataset file or folder {name!r} does not exist; {_CHOICES}")
        close = difflib.get_close_matches(key, BUILTIN, n=1)
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        raise DataError(f"unknown dataset {name!r}{guess}; {_CHOICES}")
    return _from_path(name, path, cfg)


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


def _is_binary(x: np.ndarray) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def _tensor(a: Optional[np.ndarray], dtype: torch.dtype) -> Optional[torch.Tensor]:
    return None if a is None else torch.from_numpy(np.ascontiguousarray(a)).to(dtype)


def _make(name: str, kind: str, parts: tuple, labels: tuple, class_names: Optional[list[str]],
          preprocessing: dict, binary: Optional[bool] = None) -> DataSplits:
    """Build DataSplits from (train, val, test) arrays and matching label arrays (or Nones)."""
    train, val, test = (_tensor(p, torch.float32) for p in parts)
    if binary is None:
        binary = all(_is_binary(p) for p in parts)
    return DataSplits(
        name=name, kind=kind, shape=tuple(train.shape[1:]), train=train, val=val, test=test,
        train_labels=_tensor(labels[0], torch.int64), val_labels=_tensor(labels[1], torch.int64),
        test_labels=_tensor(labels[2], torch.int64), binary=bool(binary),
        num_classes=len(class_names) if class_names else 0, class_names=class_names,
        preprocessing=preprocessing,
    )


def _split_whole(name: str, kind: str, x: np.ndarray, y: Optional[np.ndarray], cfg: DataConfig,
                 class_names: Optional[list[str]], columns: Optional[list[str]] = None) -> DataSplits:
    """Split a set with no official split; standardise tables with the train statistics."""
    idx = split_indices(len(x), cfg.val_fraction, cfg.test_fraction, cfg.split_seed, name)
    parts = tuple(x[i] for i in idx)
    labels = tuple(None if y is None else y[i] for i in idx)
    preprocessing: dict = {}
    if kind == "table":
        assert columns is not None
        # Data that are all 0/1 are left as they are, so that a Bernoulli likelihood still fits.
        identity = not cfg.standardize or _is_binary(x)
        preprocessing = fit_standardizer(parts[0], columns, identity=identity)
        parts = tuple(apply_standardizer(p, preprocessing, name) for p in parts)
        if class_names is not None:
            preprocessing["label_column"] = cfg.label_column
            preprocessing["class_names"] = list(class_names)
    return _make(name, kind, parts, labels, class_names, preprocessing)


def _digits(cfg: DataConfig) -> DataSplits:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images.astype(np.float32) / np.float32(16.0))[:, None]  # (1797, 1, 8, 8), 0..16 -> [0, 1]
    y = digits.target.astype(np.int64)
    return _split_whole("digits", "image", x, y, cfg, [str(d) for d in range(10)])


def _mnist(cfg: DataConfig, key: str) -> DataSplits:
    raw = load_mnist_family(data_dir(cfg), key, cfg.download)
    train_x, train_y = raw["train_images"], raw["train_labels"]
    tr, va, _ = split_indices(len(train_x), cfg.val_fraction, 0.0, cfg.split_seed, key)

    def scale(a: np.ndarray) -> np.ndarray:
        return (a.astype(np.float32) / np.float32(255.0))[:, None]

    parts = (scale(train_x[tr]), scale(train_x[va]), scale(raw["test_images"]))
    labels = (train_y[tr], train_y[va], raw["test_labels"])
    return _make(key, "image", parts, labels, list(MNIST_FAMILY[key]["classes"]), {})


def _binarized_mnist(cfg: DataConfig) -> DataSplits:
    raw = load_binarized_mnist(data_dir(cfg), cfg.download)
    parts = tuple(raw[s].reshape(-1, 1, 28, 28) for s in ("train", "valid", "test"))
    return _make("binarized-mnist", "image", parts, (None, None, None), None, {}, binary=True)


def _read_path(path: Path, label_column: Optional[str], preprocessing: dict, require_label: bool):
    """(x, labels, class_names, kind, columns) of any supported file or folder."""
    if path.is_dir():
        if label_column is not None and require_label:
            raise DataError(f"data.label_column is for tables; the labels of image folder {path} are its subfolders")
        x, y, names = read_image_folder(path, preprocessing.get("class_names"))
        return x, y, names, "image", None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = read_csv_table(path, label_column, preprocessing.get("columns"),
                               preprocessing.get("class_names"), require_label)
        return table.x, table.labels, table.class_names, "table", table.columns
    if suffix == ".npy":
        if label_column is not None and require_label:
            raise DataError(f"data.label_column names a CSV column; {path.name} is a .npy array without columns")
        arr = read_npy(path)
        if arr.ndim == 2:  # read by _npy_table / _npy_table_array, in blocks
            raise AssertionError("2-D .npy tables are read by _npy_table")
        return _npy_images(arr, path), None, None, "image", None
    if suffix in IMAGE_SUFFIXES and is_image_file(path):
        return read_images([path]), None, None, "image", None
    raise DataError(f"cannot read {path.name}: unsupported file type {suffix or '(none)'}; {_CHOICES}")


def _npy_images(arr: np.ndarray, path: Path) -> np.ndarray:
    """(N, H, W) or (N, C, H, W) -> float32 in [0, 1]; channels-last (N, H, W, 1|3|4) is moved."""
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.shape[1] not in (1, 3, 4) and arr.shape[3] in (1, 3, 4):
        arr = np.moveaxis(arr, 3, 1)
    if arr.dtype == np.uint8:
        return np.asarray(arr, dtype=np.float32) / np.float32(255.0)
    x = np.asarray(arr, dtype=np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"{path.name} holds NaN or infinite values; images must be finite")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise DataError(
            f"{path.name} image values span [{lo:g}, {hi:g}]; save images as uint8 0..255 or floats in [0, 1], "
            "or as a 2-D (N, D) table"
        )
    return x


def _is_npy_table(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".npy" and len(read_npy(path).shape) == 2


def _npy_columns(path: Path, d: int, preprocessing: dict, label_column: Optional[str], require_label: bool) -> list[str]:
    if label_column is not None and require_label:
        raise DataError(f"data.label_column names a CSV column; {path.name} is a .npy array without columns")
    columns = preprocessing.get("columns") or [f"x{j}" for j in range(d)]
    if len(columns) != d:
        raise DataError(f"{path.name} has {d} columns but the model was trained on {len(columns)}")
    return list(columns)


def _npy_table(name: str, path: Path, cfg: DataConfig) -> DataSplits:
    """A 2-D .npy table as memory-mapped splits: nothing is copied but the split indices."""
    source = NpyMap(path)
    n, d = source.shape
    columns = _npy_columns(path, d, {}, cfg.label_column, True)
    train, val, test = split_indices(n, cfg.val_fraction, cfg.test_fraction, cfg.split_seed, name)
    binary, mean, std = scan_table(source, train, path.name, columns)
    # As for CSV tables: data that are all 0/1 are left as they are (a Bernoulli likelihood fits).
    identity = not cfg.standardize or binary
    if identity:
        mean, std = np.zeros(d), np.ones(d)
    std = np.where(std > 0, std, 1.0)  # a constant column is centred, not blown up
    preprocessing = {"columns": columns, "mean": [float(v) for v in mean], "std": [float(v) for v in std]}
    stats = (None, None) if identity else (mean, std)
    train_x, val_x, test_x = (MappedRows(source, idx, *stats) for idx in (train, val, test))
    return DataSplits(
        name=name, kind="table", shape=(d,), train=train_x, val=val_x, test=test_x,
        train_labels=None, val_labels=None, test_labels=None, binary=binary, num_classes=0,
        class_names=None, preprocessing=preprocessing,
    )


def _npy_table_array(path: Path, preprocessing: dict, label_column: Optional[str], require_label: bool) -> torch.Tensor:
    """A whole 2-D .npy table as one float32 tensor (standardised with the stored statistics),
    filled block by block: no float64 copy of the file."""
    source = NpyMap(path)
    columns = _npy_columns(path, source.shape[1], preprocessing, label_column, require_label)
    scan_table(source, np.zeros(0, dtype=np.int64), path.name, columns)  # finite values only
    stats = (None, None)
    if "mean" in preprocessing:
        mean = np.asarray(preprocessing["mean"], dtype=np.float64)
        std = np.asarray(preprocessing.get("std", [1.0] * len(mean)), dtype=np.float64)
        stats = (mean, std)
    return MappedRows(source, None, *stats).materialize()


def _from_path(name: str, path: Path, cfg: DataConfig) -> DataSplits:
    if _is_npy_table(path):
        return _npy_table(name, path, cfg)
    x, y, class_names, kind, columns = _read_path(path, cfg.label_column, {}, True)
    return _split_whole(name, kind, x, y, cfg, class_names, columns)


def load_array(path, preprocessing: Optional[dict] = None,
               label_column: Optional[str] = None) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Read new data (a .csv, .npy, image file or image folder) as a float32 tensor (N, *shape).

    With the ``preprocessing`` of a training set, table columns are taken by name in the stored
    order (extra columns are ignored) and standardised with the stored mean/std; labels are
    mapped with the stored class names. ``label_column`` defaults to the stored one; when it is
    only the stored one and the file lacks it, labels come back as None.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist; give a .csv, .npy, image file or image folder")
    pre = dict(preprocessing or {})
    column = label_column if label_column is not None else pre.get("label_column")
    if _is_npy_table(path):
        return _npy_table_array(path, pre, column, require_label=label_column is not None), None
    x, y, _, kind, _ = _read_path(path, column, pre, require_label=label_column is not None)
    if kind == "table" and "mean" in pre:
        x = apply_standardizer(x, pre, path.name)
    return torch.from_numpy(np.array(x, dtype=np.float32)), _tensor(y, torch.int64)
