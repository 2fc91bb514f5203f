"""The scikit-learn base shared by :class:`~vaekit.VAEAnomalyDetector` and :class:`~vaekit.VAETransformer`.

``fit`` builds a :class:`vaekit.VAE` from a ModelConfig, wraps the array in an in-memory
:class:`vaekit.data.DataSplits` and calls :func:`vaekit.train`: the loss and the loop are
the core's, nothing is re-implemented here. Constructor arguments are stored untouched
(scikit-learn's rule); the choices left at ``None`` are resolved in ``fit`` from the data size,
so that the tiny arrays of scikit-learn's estimator checks train in a fraction of a second.

Rows are a 2-D array (n, features). An array of images, (n, H, W) or (n, C, H, W), is flattened to
rows and remembered as images (``image_shape_``): ``standardize="auto"`` then maps all its pixels to
[0, 1] together (:meth:`Standardizer.pixels`) instead of standardising each pixel by its own spread.

After ``fit``, ``standardizer_`` holds the training rows' column standardisation
(:class:`vaekit.data.standardize.Standardizer`) and the model is kept in float64: scores and embeddings of an example then do not
depend on which other examples share its batch (float32 matrix products can differ in the last
bits with the batch size), which scikit-learn's subset-invariance checks require.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from vaekit.config import Config
from vaekit.core.models import VAE
from vaekit.data.splits import DataSplits
from vaekit.data.standardize import Standardizer
from vaekit.errors import ConfigError, DataError
from vaekit.training.loop import train


def auto_hidden(n_features: int) -> tuple[int, ...]:
    """A small one-layer MLP: twice the input width, between 16 and 256 units."""
    return (int(min(256, max(16, 2 * n_features))),)


def auto_latent_dim(n_features: int) -> int:
    """About a third of the input width, between 1 and 20 dimensions."""
    return int(max(1, min(20, n_features // 3)))


def auto_epochs(n_samples: int, batch_size: int) -> int:
    """About 5000 optimiser steps, between 10 and 100 passes."""
    steps_per_epoch = math.ceil(n_samples / batch_size)
    return int(max(10, min(100, math.ceil(5000 / steps_per_epoch))))


def count_param(name: str, value) -> int:
    """An estimator's count parameter (``n_estimators``, ``num_samples``): a Python or NumPy integer
    of at least 1; a bool, a float or a string is a one-line ConfigError, as scikit-learn's own
    parameter checks refuse them."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be an integer of at least 1, not {value!r}")
    return int(value)


def is_images(X) -> bool:
    """Whether X is an array of images, (n, H, W) or (n, C, H, W), rather than rows."""
    return len(getattr(X, "shape", ())) >= 3


def as_rows(X) -> tuple:
    """(X as rows, the image shape or None): an array of images (n, H, W) or (n, C, H, W) is flattened."""
    if is_images(X):
        X = np.asarray(X)
        return X.reshape(len(X), -1), tuple(int(v) for v in X.shape[1:])
    return X, None


class VAEEstimatorBase(BaseEstimator):
    """Fitting and encoding shared by the scikit-learn front ends (not used on its own)."""

    _val_rows = 1024  # training rows evaluated after each epoch for ``history_`` (nothing else reads them)

    def __init__(
        self, latent_dim: Optional[int] = None, hidden: Optional[tuple] = None, epochs: Optional[int] = None,
        batch_size: int = 128, lr: float = 1e-3, beta: float = 1.0, likelihood: str = "gaussian-learned",
        standardize: bool = True, random_state=None,
    ):
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.beta = beta
        self.likelihood = likelihood
        self.standardize = standardize
        self.random_state = random_state

    # -- fitting ------------------------------------------------------------------------
    def _config(self, n_samples: int, n_features: int) -> Config:
        cfg = Config()
        cfg.model.latent_dim = int(self.latent_dim) if self.latent_dim is not None else auto_latent_dim(n_features)
        hidden = auto_hidden(n_features) if self.hidden is None else self.hidden
        cfg.model.hidden = (int(hidden),) if np.isscalar(hidden) else tuple(int(h) for h in hidden)
        if self.likelihood not in ("bernoulli", "gaussian", "gaussian-learned"):
            raise ConfigError(f"likelihood must be bernoulli, gaussian or gaussian-learned, not {self.likelihood!r}")
        cfg.model.likelihood = self.likelihood
        if int(self.batch_size) < 1:
            raise ConfigError("batch_size must be at least 1")
        batch = min(int(self.batch_size), n_samples)
        cfg.training.batch_size = batch
        cfg.training.epochs = auto_epochs(n_samples, batch) if self.epochs is None else int(self.epochs)
        cfg.training.lr = float(self.lr)
        cfg.training.beta = float(self.beta)
        cfg.training.seed = self.seed_
        cfg.training.device = "cpu"
        cfg.training.progress = cfg.training.verbose = False  # an estimator's fit prints nothing
        # the validation rows are a slice of the training rows (a log only): no early stopping on them
        cfg.training.early_stopping = 0
        cfg.training.eval_batch_size = 4096
        cfg.data.binarize = "none"
        return cfg.validate()

    def _standardizer(self, x: np.ndarray) -> Standardizer:
        """True: each column by its own mean and spread; False: none; "auto": all pixels together for
        images (see :meth:`Standardizer.pixels`), each column for rows."""
        mode = self.standardize
        if not (isinstance(mode, (bool, np.bool_)) or (isinstance(mode, str) and mode == "auto")):
            raise ConfigError(f"standardize must be True, False or 'auto', not {mode!r}")
        if self._per_column():
            return Standardizer.fit(x)
        return Standardizer.pixels(x) if isinstance(mode, str) else Standardizer.identity(x.shape[1])

    def _per_column(self) -> bool:
        """Whether the fitted rows were standardised column by column (not left alone, not as pixels)."""
        if isinstance(self.standardize, str):  # "auto"
            return getattr(self, "image_shape_", None) is None
        return bool(self.standardize)

    def _fit_vae(self, X) -> "VAEEstimatorBase":
        X, self.image_shape_ = as_rows(X)
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=1)
        x = np.asarray(X, dtype=np.float64)
        self.seed_ = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        self.standardizer_ = self._standardizer(x)
        xs = torch.from_numpy(self._preprocess(self.standardizer_.apply(x), fit=True).astype(np.float32))
        cfg = self._config(*xs.shape)  # the rows the VAE sees (a detector may coarsen images)
        # The validation split only feeds the per-epoch log; a slice of the training rows keeps it cheap
        # (the log's latent diagnostics cost grows with the square of its size).
        val = xs[: min(len(xs), self._val_rows)]
        data = DataSplits(
            name="array", kind="table", shape=(xs.shape[1],), train=xs, val=val, test=val[:0],
            train_labels=None, val_labels=None, test_labels=None,
            binary=bool(((xs == 0) | (xs == 1)).all()), num_classes=0, class_names=None, preprocessing={},
        )
        with torch.random.fork_rng(devices=[]):  # seed the weight initialisation without touching the caller's RNG
            torch.manual_seed(self.seed_)
            model = VAE(cfg.model, (xs.shape[1],))
        self.history_ = train(model, data, cfg)
        self.model_ = model.double().eval()
        self.config_ = cfg.to_dict()
        return self

    # -- using the fitted model -----------------------------------------------------------
    def _inputs(self, X) -> torch.Tensor:
        check_is_fitted(self, "model_")
        X, shape = as_rows(X)
        fitted = getattr(self, "image_shape_", None)
        if shape is not None and fitted is not None and shape != fitted:
            raise DataError(f"images of shape {shape}, but this estimator was fitted on images of shape {fitted}")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return torch.from_numpy(self._preprocess(self.standardizer_.apply(np.asarray(X, dtype=np.float64))))

    def _preprocess(self, z: np.ndarray, fit: bool = False) -> np.ndarray:
        """A further transform of the standardised rows (none here; ``fit``: learn it from them)."""
        return z

    @torch.no_grad()
    def _posterior_means(self, x: torch.Tensor, batch_size: int = 4096) -> np.ndarray:
        out = [self.model_.encode(x[i : i + batch_size]).mean for i in range(0, len(x), batch_size)]
        return torch.cat(out).numpy() if out else np.zeros((0, self.model_.latent_dim))

    @torch.no_grad()
    def _decode_means(self, z: torch.Tensor, batch_size: int = 4096) -> np.ndarray:
        out = [self.model_.decode(z[i : i + batch_size]).mean for i in range(0, len(z), batch_size)]
        x = torch.cat(out).numpy() if out else np.zeros((0, len(self.standardizer_.mean)))
        return self.standardizer_.invert(x)
