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
import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from vaekit.config import DataConfig
from vaekit.data.idx import MNIST_FAMILY, load_binarized_mnist, load_mnist_family
from vaekit.data.images import IMAGE_SUFFIXES, is_image_file, read_image_folder, read_images
from vaekit.data.mapped import MappedRows, NpyMap, scan_table
from vaekit.data.splits import DataSplits, as_tensor, make_splits, split_indices, split_whole
from vaekit.data.standardize import Standardizer, apply_standardizer
from vaekit.data.tables import read_csv_table, read_npy
from vaekit.errors import DataError

__all__ = ["DataSplits", "data_dir", "load_array", "load_dataset", "split_indices"]

BUILTIN = ("digits", "mnist", "fashion-mnist", "binarized-mnist")
_CHOICES = "choose digits, mnist, fashion-mnist, binarized-mnist or a path to a .csv, .npy or image folder"


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


def _digits(cfg: DataConfig) -> DataSplits:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images.astype(np.float32) / np.float32(16.0))[:, None]  # (1797, 1, 8, 8), 0..16 -> [0, 1]
    y = digits.target.astype(np.int64)
    return split_whole("digits", "image", x, y, cfg, [str(d) for d in range(10)])


def _mnist(cfg: DataConfig, key: str) -> DataSplits:
    raw = load_mnist_family(data_dir(cfg), key, cfg.download)
    train_x, train_y = raw["train_images"], raw["train_labels"]
    tr, va, _ = split_indices(len(train_x), cfg.val_fraction, 0.0, cfg.split_seed, key)

    def scale(a: np.ndarray) -> np.ndarray:
        return (a.astype(np.float32) / np.float32(255.0))[:, None]

    parts = (scale(train_x[tr]), scale(train_x[va]), scale(raw["test_images"]))
    labels = (train_y[tr], train_y[va], raw["test_labels"])
    return make_splits(key, "image", parts, labels, list(MNIST_FAMILY[key]["classes"]), {})


def _binarized_mnist(cfg: DataConfig) -> DataSplits:
    raw = load_binarized_mnist(data_dir(cfg), cfg.download)
    parts = tuple(raw[s].reshape(-1, 1, 28, 28) for s in ("train", "valid", "test"))
    return make_splits("binarized-mnist", "image", parts, (None, None, None), None, {}, binary=True)


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
    standardizer = Standardizer.identity(d) if identity else Standardizer.from_moments(mean, std)
    preprocessing = standardizer.record(columns)
    train_x, val_x, test_x = (MappedRows(source, idx, None if identity else standardizer) for idx in (train, val, test))
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
    standardizer = Standardizer.from_record(preprocessing) if "mean" in preprocessing else None
    return MappedRows(source, None, standardizer).materialize()


def _from_path(name: str, path: Path, cfg: DataConfig) -> DataSplits:
    if _is_npy_table(path):
        return _npy_table(name, path, cfg)
    x, y, class_names, kind, columns = _read_path(path, cfg.label_column, {}, True)
    return split_whole(name, kind, x, y, cfg, class_names, columns)


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
    return torch.from_numpy(np.array(x, dtype=np.float32)), as_tensor(y, torch.int64)
