"""A semi-supervised VAE classifier for scikit-learn: M2, or M1+M2 (Kingma et al. 2014).

    clf = vaekit.VAEClassifier().fit(X, y)   # y == -1 marks an unlabelled row
    clf.predict(X_new); clf.predict_proba(X_new); clf.score(X_test, y_test)

``sklearn.semi_supervised``'s convention: every row of X is used, and the rows whose label is -1
train the generative part only (the M2 bound sums over their possible classes). With ``m1=True``
an unsupervised VAE (M1, :class:`vaekit.VAETransformer`) is fitted on all rows first and M2 learns
on its posterior means, a table with a Gaussian likelihood (Kingma et al.'s M1+M2, which used
draws from q(z1|x) where this uses the means, so that the features are fixed); ``model_`` is then
:class:`vaekit.core.m2.M1M2`, the composition ``vaekit train --model m2 --m1 RUN`` keeps too. Images go in as
flat rows; for pixels in [0, 1] use ``likelihood="bernoulli", standardize=False``.

The M2 model is :class:`vaekit.core.m2.M2`, its objective :func:`vaekit.core.semisupervised.m2_loss`,
trained by :func:`vaekit.train`; nothing of the maths is written here. Fitted models are kept in
float64, so that a row's probabilities do not depend on the rows beside it in a batch.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from vaekit.apps.embedding import VAETransformer
from vaekit.apps.estimators import auto_epochs, auto_hidden, auto_latent_dim, count_param
from vaekit.config import Config
from vaekit.core.m2 import CODES_LIKELIHOOD, M1M2, M2
from vaekit.core.registry import config_model_class, either_of, semi_supervised_models
from vaekit.core.semisupervised import UNLABELLED
from vaekit.data.splits import DataSplits
from vaekit.data.standardize import Standardizer
from vaekit.errors import ConfigError, DataError
from vaekit.training.loop import train


def encode_labels(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes, y as indices into classes with -1 on unlabelled rows) of a semi-supervised target.

    -1 marks an unlabelled row (the integer -1 in a numeric or object array); a DataError, one line,
    for targets that are not class labels, for no labelled row, and for a single labelled class.
    """
    y = np.asarray(y)
    if y.dtype.kind == "O":
        unlabelled = np.array([not isinstance(v, str) and v == UNLABELLED for v in y], dtype=bool)
    elif y.dtype.kind in "iufb":
        unlabelled = y == UNLABELLED
    else:
        unlabelled = np.zeros(len(y), dtype=bool)
    kind = type_of_target(y[~unlabelled]) if (~unlabelled).any() else "none"
    if kind not in ("binary", "multiclass", "none"):
        raise DataError(f"Unknown label type: {kind}; y must hold class labels (integers or strings), "
                        "with -1 marking an unlabelled row")
    if unlabelled.all():
        raise DataError("every row is unlabelled (y == -1); semi-supervised training needs at least one "
                        "labelled row of each class")
    classes, indices = np.unique(y[~unlabelled], return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"the labelled rows hold one class ({classes[0]!r}); a classifier needs labelled rows "
                        "of at least two classes")
    codes = np.full(len(y), UNLABELLED, dtype=np.int64)
    codes[~unlabelled] = indices
    return classes, codes


class VAEClassifier(ClassifierMixin, BaseEstimator):
    """M2 (``m1=False``) or M1+M2 (``m1=True``): a VAE classifier that learns from a few labels.

    ``latent_dim``, ``hidden``, ``epochs``: M2's style dimensions, MLP widths and passes over the rows
    (None: chosen from the data size, as the other estimators do); ``m1_latent_dim``, ``m1_hidden``,
    ``m1_epochs`` the same for M1 (its latent_dim: the number of features, between 2 and 50). ``alpha``
    weighs the classification loss against the bound, ``labelled_weight`` a labelled row's bound against
    an unlabelled row's (see :mod:`vaekit.core.semisupervised`). ``likelihood`` and ``standardize`` describe the input
    rows (M1's, or M2's without M1); M2 on M1's codes uses a learned Gaussian. ``model="adgm"``
    replaces M2 by the auxiliary deep generative model (Maaløe et al. 2016, :mod:`vaekit.core.adgm`),
    with ``aux_dim`` auxiliary dimensions (None: ``latent_dim``); ``model="sdgm"`` by its skip variant
    (the auxiliary variable in the generative model too). ``n_estimators`` M2s (or ADGMs) are trained on
    the same rows (and the same M1) from different seeds, and ``predict_proba`` averages their q(y|x);
    ``model_`` is the first, ``ensemble_`` holds them all. ``vat`` > 0 adds that weight of the virtual
    adversarial loss of q(y|x) (Miyato et al., :mod:`vaekit.core.smoothing`) on the unlabelled rows, changes
    of length ``vat_eps`` in the units M2 sees (M1's codes, or the standardised rows; "auto": a quarter of
    the median distance from a row to its 10th nearest neighbour).
    """

    def __init__(
        self, m1: bool = True, latent_dim: Optional[int] = None, hidden: Optional[tuple] = None,
        epochs: Optional[int] = None, m1_latent_dim: Optional[int] = None, m1_hidden: Optional[tuple] = None,
        m1_epochs: Optional[int] = None, alpha: float = 10.0, batch_size: int = 128, lr: float = 1e-3,
        likelihood: str = "gaussian-learned", standardize: bool = True, model: str = "m2",
        aux_dim: Optional[int] = None, labelled_weight: float = 1.0, n_estimators: int = 1, vat: float = 0.0,
        vat_eps="auto", random_state=None,
    ):
        self.m1 = m1
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.epochs = epochs
        self.m1_latent_dim = m1_latent_dim
        self.m1_hidden = m1_hidden
        self.m1_epochs = m1_epochs
        self.alpha = alpha
        self.labelled_weight = labelled_weight
        self.batch_size = batch_size
        self.lr = lr
        self.likelihood = likelihood
        self.standardize = standardize
        self.model = model
        self.aux_dim = aux_dim
        self.n_estimators = n_estimators
        self.vat = vat
        self.vat_eps = vat_eps
        self.random_state = random_state

    def fit(self, X, y) -> "VAEClassifier":
        """Fit on every row of X; the rows with ``y == -1`` are unlabelled."""
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], y_numeric=False)
        count_param("n_estimators", self.n_estimators)
        self.classes_, codes = encode_labels(y)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(0, 2**31 - 1))
        x = np.asarray(X, dtype=np.float64)
        if self.m1:
            # M1's codes are all M2 sees: as many dimensions as features, up to Kingma et al.'s 50
            m1_dim = int(self.m1_latent_dim) if self.m1_latent_dim is not None else min(50, max(2, x.shape[1]))
            self.m1_ = VAETransformer(latent_dim=m1_dim,
                                      hidden=self.m1_hidden, epochs=self.m1_epochs, batch_size=self.batch_size,
                                      lr=self.lr, likelihood=self.likelihood, standardize=self.standardize,
                                      random_state=seed).fit(x)
            self.standardizer_ = None  # M1 standardises its inputs; its codes go to M2 as they are
            features = self.m1_.transform(x)
        else:
            self.m1_ = None
            self.standardizer_ = Standardizer.fit(x) if self.standardize else Standardizer.identity(x.shape[1])
            features = self.standardizer_.apply(x)
        features, codes = torch.from_numpy(features.astype(np.float32)), torch.from_numpy(codes)
        seeds = [seed] + [int(rng.randint(0, 2**31 - 1)) for _ in range(int(self.n_estimators) - 1)]
        others = [self._fit_m2(features, codes, s) for s in seeds[1:]]
        first = self._fit_m2(features, codes, seeds[0])  # trained last, so that history_ and config_ are its own
        # with M1: one model over the (standardised) rows, classifying through M1's codes
        self.ensemble_ = [M1M2(self.m1_.model_, m2) if self.m1_ is not None else m2 for m2 in [first, *others]]
        self.model_ = self.ensemble_[0]
        return self

    def _config(self, n_samples: int, n_features: int, seed: int) -> Config:
        cfg = Config()
        kinds = semi_supervised_models()
        if self.model not in kinds:
            raise ConfigError(f"model must be {either_of(kinds)}, not {self.model!r}")
        cfg.model.model = self.model
        cfg.model.aux_dim = None if self.aux_dim is None else int(self.aux_dim)
        cfg.model.latent_dim = int(self.latent_dim) if self.latent_dim is not None else auto_latent_dim(n_features)
        hidden = auto_hidden(n_features) if self.hidden is None else self.hidden
        cfg.model.hidden = (int(hidden),) if np.isscalar(hidden) else tuple(int(h) for h in hidden)
        likelihood = CODES_LIKELIHOOD if self.m1 else self.likelihood
        if likelihood not in ("bernoulli", "gaussian", "gaussian-learned"):
            raise ConfigError(f"likelihood must be bernoulli, gaussian or gaussian-learned, not {likelihood!r}")
        cfg.model.likelihood = likelihood
        if int(self.batch_size) < 1:
            raise ConfigError("batch_size must be at least 1")
        t = cfg.training
        t.batch_size = min(int(self.batch_size), n_samples)
        t.epochs = auto_epochs(n_samples, t.batch_size) if self.epochs is None else int(self.epochs)
        t.lr, t.alpha, t.seed, t.device = float(self.lr), float(self.alpha), seed, "cpu"
        t.labelled_weight, t.vat = float(self.labelled_weight), float(self.vat)
        t.vat_eps = self.vat_eps if self.vat_eps == "auto" else float(self.vat_eps)
        t.progress = t.verbose = False  # an estimator's fit prints nothing
        t.early_stopping = 0  # no validation rows: every row is training data
        cfg.data.binarize = "none"
        return cfg.validate()

    def _fit_m2(self, xs: torch.Tensor, codes: torch.Tensor, seed: int) -> M2:
        cfg = self._config(xs.shape[0], xs.shape[1], seed)
        empty = xs[:0]
        data = DataSplits(
            name="array", kind="table", shape=(xs.shape[1],), train=xs, val=empty, test=empty,
            train_labels=codes, val_labels=codes[:0], test_labels=codes[:0],
            binary=bool(((xs == 0) | (xs == 1)).all()), num_classes=len(self.classes_), class_names=None,
            preprocessing={},
        )
        with torch.random.fork_rng(devices=[]):  # seed the weight initialisation without touching the caller's RNG
            torch.manual_seed(seed)
            model = config_model_class(cfg.model.model)(cfg.model, (xs.shape[1],), len(self.classes_))
        self.history_ = train(model, data, cfg)
        self.config_ = cfg.to_dict()
        return model.double().eval()

    def _inputs(self, X) -> torch.Tensor:
        """The rows as ``model_`` takes them: standardised (by M1's statistics when there is M1)."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        x = np.asarray(X, dtype=np.float64)
        return self.m1_._inputs(x) if self.m1_ is not None else torch.from_numpy(self.standardizer_.apply(x))

    @torch.no_grad()
    def predict_proba(self, X) -> np.ndarray:
        """q(y|x) for every row (the mean over ``ensemble_``), columns in the order of ``classes_``."""
        x = self._inputs(X)
        out = [torch.stack([torch.softmax(m.classify(x[i : i + 4096]), -1) for m in self.ensemble_]).mean(0)
               for i in range(0, len(x), 4096)]
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.classes_)))

    def predict(self, X) -> np.ndarray:
        """The most probable class under q(y|x)."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]
