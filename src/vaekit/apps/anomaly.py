"""Anomaly detection with a VAE, as a scikit-learn estimator in PyOD's conventions.

    det = vaekit.VAEAnomalyDetector(contamination=0.05).fit(X_train)
    det.decision_function(X)   # anomaly score: HIGHER = MORE ANOMALOUS (PyOD's convention)
    det.score_samples(X)       # its negative: higher = more normal (scikit-learn's convention)
    det.predict(X)             # 0 = normal, 1 = outlier (PyOD's convention)

After ``fit``: ``decision_scores_`` (the training rows' anomaly scores), ``threshold_`` (their
``1 - contamination`` quantile) and ``labels_`` (``decision_scores_ > threshold_`` as 0/1).

Scores (``method=``, default ``"elbo"``), all in nats or squared standardised units per example:

- ``"nll"``: -log p(x), importance-sampled with ``num_samples`` draws from q(z|x)
  (Burda et al. 2015, eq. 8; the estimator of :func:`vaekit.log_likelihood`);
- ``"elbo"``: the negative ELBO, -E_q[log p(x|z)] + KL(q(z|x) || p(z)) (An & Cho 2015 score
  anomalies by reconstruction probability, its first term);
- ``"recon"``: squared error between x and the decoded posterior mean, in the standardised space.

``n_estimators > 1`` fits that many VAEs on the same rows, from different seeds (drawn from
``random_state``), and averages their scores: one VAE's ranking of the rare rows varies from
seed to seed, and the average has less of that variance (a bagging-free seed ensemble, as in
Lakshminarayanan et al. 2017). ``scale_floor`` is the least standard deviation, in standardised
units, that ``likelihood="gaussian-learned"`` may learn for a column: a column the decoder can
predict almost exactly would otherwise get a tiny scale and dominate every row's score
(``"auto"``: 0.3 for table columns, 0.1 for pixels).
``preprocess="asinh"`` maps each standardised column through asinh and standardises the result
again (statistics of the training rows): heavy tails and rare large values (count-like or
nearly constant columns) are compressed to a logarithmic scale, so that no single column's
outliers dominate the likelihood; ``"none"`` leaves the standardised columns as they are. With
``standardize=False`` (e.g. pixels in [0, 1] under a Bernoulli likelihood) nothing is applied.
Images: pass them with their shape, (n, H, W) or (n, C, H, W). With the default
``standardize="auto"`` their pixels are mapped to [0, 1] together, not standardised one by one: a
pixel that is almost always blank has a tiny spread, so per-pixel standardisation turns any stroke
through it into a value of tens of standard units, and the score of a normal image with one stray
stroke swamps that of a real anomaly (on one-class MNIST validation splits of the training images
this cost several AUROC points; see bench/results/anomaly_why.md). Such images also get a lower
scale floor (0.1) and a wider network (one hidden layer of 512) than table columns: on one-class
Fashion-MNIST validation splits that kept more of the detail that tells a shirt from a T-shirt
(bench/results/anomaly_wide.md), and they are blurred before the VAE sees them (``blur="auto"``: a
Gaussian of 1 pixel; ``pool`` averages pool x pool blocks, off by default): the per-pixel likelihood
charges a normal image for its own texture as much as an anomaly for its shape, and at a coarser
scale the shape weighs more (Fashion-MNIST validation mean 92.5 -> 93.3, MNIST 96.9 -> 97.3:
bench/results/anomaly_scale.md). ``blur`` and ``pool`` apply to images given with their shape only.
Rows (a 2-D array) are standardised column by column, as tables need.
``trim`` (in [0, 1)) is trimmed-loss training for contaminated training rows (the unsupervised
protocol: the anomalies are among the rows the VAE is fit to, and a VAE partly learns them).
After a warm-up of the first quarter of the optimiser steps, each batch's loss averages only
its examples whose negative ELBO is not among the worst ``floor(trim * batch)``, so those get no
gradient (see :func:`vaekit.core.objectives.elbo_loss`; the idea of robust deep autoencoders, Zhou &
Paffenroth 2017, and of self-paced learning, Kumar et al. 2010); 0 trains on every row. The
default 0.1 is a fixed fraction (the default ``contamination``; it does not follow ``contamination``).
Defaults: ``method="elbo"``, ``n_estimators=3``, ``scale_floor="auto"`` (0.3 for tables), ``preprocess="none"``,
``blur="auto"``, ``pool="auto"`` (images kept as pixels: 1 and 1; otherwise 0 and 1),
``trim=0.1`` (chosen on ADBench sets that ``bench/anomaly.py`` does not report; see ``METHOD`` below).
``member_scores(X)`` gives each member's scores, whose mean is ``decision_function(X)``.

The draws eps ~ N(0, I) are the same for every example (common random numbers, seeded), so
an example's score does not depend on the rest of its batch and repeated calls agree.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from vaekit.apps.estimators import VAEEstimatorBase, count_param, is_images
from vaekit.core.device import device_of
from vaekit.core.distributions import standard_normal
from vaekit.core.objectives import iwae_bound, log_importance_weights_at
from vaekit.data.coarsen import blur_fits, coarsen
from vaekit.data.standardize import Standardizer
from vaekit.errors import ConfigError
from vaekit.measure.evaluation import log_likelihood

SCORES = ("nll", "elbo", "recon")
# Defaults chosen on a development group of ADBench tables kept apart from those bench/anomaly.py
# reports, the comparisons in bench/results/anomaly_tables_dev.md: the method (the ELBO against the
# importance-sampled NLL), the scale floor (against 0.01, 0.1 and 1.0) and the number of seeds.
METHOD = "elbo"
N_ESTIMATORS = 3
SCALE_FLOOR = 0.3
# Images given with their shape, as pixels in [0, 1] (standardize="auto"): a lower floor, a pixel's
# scale rather than a standardised column's, and a wider network than the table sizes' cap of 256
# units, chosen on one-class validation splits of Fashion-MNIST and MNIST training images
# (bench/results/anomaly_wide.md; the rule in bench/results/choices.md)
IMAGE_SCALE_FLOOR = 0.1
IMAGE_HIDDEN = (512,)
# Images kept as pixels, seen at a coarser scale (blur sigma in pixels, then pool x pool averaging):
# data/coarsen.py says why. Chosen on one-class validation splits of Fashion-MNIST training images,
# MNIST's held at 96.0 or more (bench/results/anomaly_scale.md; the rule in bench/results/choices.md):
# blur 1 93.33, blur 1 + pool 2 93.32 (three times faster), pool 2 93.10, neither 92.48
IMAGE_BLUR = 1.0
IMAGE_POOL = 1
# asinh helped on the development group but not on the reported one
# (bench/results/anomaly_tables_dev_asinh.md, anomaly_tables_asinh.md): an option, not the default.
PREPROCESS = "none"
PREPROCESSINGS = ("asinh", "none")
# Trimmed-loss training (the worst tenth of each batch left out of the loss after a warm-up): chosen
# on the development group, where 0.05, 0.1 and 0.2 sat in a flat range and 0.1 is the default
# contamination (bench/results/anomaly_tables_dev.md, its trim section).
TRIM = 0.1


class VAEAnomalyDetector(VAEEstimatorBase):
    """Unsupervised outlier detector: fit a VAE to (mostly normal) data, score how badly it explains x.

    ``decision_function`` is the anomaly score (higher = more anomalous); ``score_samples`` is
    its negative (higher = more normal), as in scikit-learn's outlier detectors; ``predict``
    returns 0 (normal) / 1 (outlier). Network, latent size and epochs default to choices made
    from the data's size (see :mod:`vaekit.apps.estimators`).
    """

    _val_rows = 256  # rows for the per-epoch log only; its latent diagnostics cost O(rows^2) per epoch

    def __init__(
        self, contamination: float = 0.1, method: str = METHOD, num_samples: int = 16,
        latent_dim: Optional[int] = None, hidden: Optional[tuple] = None, epochs: Optional[int] = None,
        batch_size: int = 128, lr: float = 1e-3, beta: float = 1.0, likelihood: str = "gaussian-learned",
        standardize="auto", random_state=None, n_estimators: int = N_ESTIMATORS,
        scale_floor="auto", preprocess: str = PREPROCESS, trim: float = TRIM, blur="auto", pool="auto",
    ):
        super().__init__(latent_dim=latent_dim, hidden=hidden, epochs=epochs, batch_size=batch_size, lr=lr,
                         beta=beta, likelihood=likelihood, standardize=standardize, random_state=random_state)
        self.contamination = contamination
        self.method = method
        self.num_samples = num_samples
        self.n_estimators = n_estimators
        self.scale_floor = scale_floor
        self.preprocess = preprocess  # (not "transform": scikit-learn takes that name for a method)
        self.trim = trim
        self.blur = blur
        self.pool = pool

    def _preprocess(self, z: np.ndarray, fit: bool = False) -> np.ndarray:
        """Images: blurred and pooled (``blur``, ``pool``); standardised columns: asinh, standardised
        again (see the module docstring)."""
        if getattr(self, "image_shape_", None) is not None:
            z = coarsen(z, self.image_shape_, *self._scale())
        if self.preprocess == "none" or not self._per_column():  # pixels: nothing to compress
            return z
        a = np.arcsinh(z)
        if fit:
            self.asinh_standardizer_ = Standardizer.fit(a)
        return self.asinh_standardizer_.apply(a)

    def _pixels(self) -> bool:
        """Whether the fitted rows are images kept as pixels (given with their shape, not standardised per pixel)."""
        return getattr(self, "image_shape_", None) is not None and not self._per_column()

    def _scale(self) -> tuple[float, int]:
        """(blur, pool) for images; "auto": the image choice for images kept as pixels, none for images
        standardised pixel by pixel."""
        pixels = self._pixels()
        auto_blur = IMAGE_BLUR if pixels and blur_fits(self.image_shape_, IMAGE_BLUR) else 0.0  # tiny images: none
        return (float(self.blur) if self.blur != "auto" else auto_blur,
                int(self.pool) if self.pool != "auto" else IMAGE_POOL if pixels else 1)

    def _config(self, n_samples: int, n_features: int):
        cfg = super()._config(n_samples, n_features)
        if self.scale_floor == "auto":
            cfg.model.scale_floor = IMAGE_SCALE_FLOOR if self._pixels() else SCALE_FLOOR
        else:
            cfg.model.scale_floor = float(self.scale_floor)
        if self.hidden is None and self._pixels():
            cfg.model.hidden = IMAGE_HIDDEN
        cfg.training.trim = float(self.trim)
        return cfg.validate()

    def fit(self, X, y=None) -> "VAEAnomalyDetector":
        """Train on X (y is ignored); set ``decision_scores_``, ``threshold_`` and ``labels_``."""
        if not isinstance(self.contamination, (int, float)) or not 0 < self.contamination <= 0.5:
            raise ConfigError(f"contamination must be in (0, 0.5], not {self.contamination!r}")
        if self.method not in SCORES:
            raise ConfigError(f"method must be one of {', '.join(SCORES)}, not {self.method!r}")
        count_param("num_samples", self.num_samples)
        count_param("n_estimators", self.n_estimators)
        if self.preprocess not in PREPROCESSINGS:
            raise ConfigError(f"preprocess must be one of {', '.join(PREPROCESSINGS)}, not {self.preprocess!r}")
        floor = self.scale_floor
        auto = isinstance(floor, str) and floor == "auto"
        positive = isinstance(floor, (int, float)) and not isinstance(floor, bool) and floor > 0
        if not (auto or positive):
            raise ConfigError(f"scale_floor must be 'auto' or > 0, not {floor!r}")
        if isinstance(self.trim, bool) or not isinstance(self.trim, (int, float)) or not 0 <= self.trim < 1:
            raise ConfigError(f"trim must be in [0, 1), not {self.trim!r}")
        self._check_scale(X)
        self._fit_vae(X)
        # The other members: the same settings and rows, seeds drawn after this one's.
        rng = np.random.RandomState(self.seed_)
        params = {**self.get_params(), "n_estimators": 1}
        self.estimators_ = [self]
        for _ in range(int(self.n_estimators) - 1):
            member = VAEAnomalyDetector(**{**params, "random_state": int(rng.randint(0, 2**31 - 1))})
            self.estimators_.append(member._fit_vae(X))  # each member validates X as the first did
        self.decision_scores_ = self._anomaly_scores(self._inputs(X))
        self.threshold_ = float(np.percentile(self.decision_scores_, 100 * (1 - self.contamination)))
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    def _check_scale(self, X) -> None:
        """``blur`` and ``pool``: "auto", or a number; other than "auto", 0 and 1 only for images."""
        blur, pool = self.blur, self.pool
        if not (blur == "auto" or (_number(blur) and blur >= 0)):
            raise ConfigError(f"blur must be 'auto' or a number >= 0 (a standard deviation in pixels), not {blur!r}")
        if not (pool == "auto" or (_number(pool) and int(pool) == pool and pool >= 1)):
            raise ConfigError(f"pool must be 'auto' or a whole number >= 1, not {pool!r}")
        if not is_images(X) and (blur not in ("auto", 0) or pool not in ("auto", 1)):
            raise ConfigError("blur and pool apply to images given with their shape, (n, H, W) or (n, C, H, W)")

    def _member_score_list(self, x: torch.Tensor) -> list[np.ndarray]:
        """Each member's scores of the standardised rows x (they share the standardisation)."""
        members = getattr(self, "estimators_", [self])
        return [m._member_scores(x, self.method, int(self.num_samples)) for m in members]

    def _anomaly_scores(self, x: torch.Tensor) -> np.ndarray:
        """The mean over the ensemble's members of their scores."""
        scores = self._member_score_list(x)
        return scores[0] if len(scores) == 1 else np.mean(scores, axis=0)

    @torch.no_grad()
    def _member_scores(self, x: torch.Tensor, method: str, num_samples: int, batch_size: int = 1024) -> np.ndarray:
        """One fitted VAE's scores of the standardised rows x (the member's own model and seed)."""
        model = self.model_
        g = torch.Generator().manual_seed(self.seed_)
        # the same eps for every example (common random numbers): (num_samples, 1, latent_dim)
        eps = standard_normal((num_samples, 1, model.latent_dim), g, dtype=torch.float64)
        rows = max(1, batch_size // max(1, num_samples // 4))
        out = []
        for start in range(0, len(x), rows):
            xb = x[start : start + rows]
            q = model.encode(xb)
            if method == "recon":
                out.append(((model.decode(q.mean).mean - xb) ** 2).sum(dim=-1))
            elif method == "elbo":
                out.append(-model.decode(q.reparameterize(eps)).log_prob(xb).mean(dim=0) + q.kl())
            else:
                out.append(-iwae_bound(log_importance_weights_at(model, xb, q, q.reparameterize(eps))))
        return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)

    def member_scores(self, X) -> np.ndarray:
        """Each ensemble member's anomaly scores of the rows of X, shape (n_estimators, n_rows);
        ``decision_function`` is their mean over the members."""
        return np.stack(self._member_score_list(self._inputs(X)))

    def decision_function(self, X) -> np.ndarray:
        """Anomaly score of each row: higher = more anomalous (PyOD's convention)."""
        return self._anomaly_scores(self._inputs(X))

    def score_samples(self, X) -> np.ndarray:
        """The negative anomaly score: higher = more normal (scikit-learn's convention)."""
        return -self.decision_function(X)

    def predict(self, X) -> np.ndarray:
        """0 for normal rows, 1 for outliers (score above ``threshold_``)."""
        check_is_fitted(self, "threshold_")
        return (self.decision_function(X) > self.threshold_).astype(int)


def _number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


@torch.no_grad()
def score_examples(model, x: torch.Tensor, y: Optional[torch.Tensor] = None, method: str = "nll",
                   num_samples: int = 100, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """Anomaly scores of a trained model (e.g. ``vaekit.load(run)``), higher = more anomalous, float64 on the CPU.

    ``nll``: -:func:`vaekit.log_likelihood` with ``num_samples``; ``elbo``: the one-draw negative
    ELBO (seeded); ``recon``: squared error of the decoded posterior mean.
    """
    if method not in SCORES:
        raise ConfigError(f"method must be one of {', '.join(SCORES)}, not {method!r}")
    if num_samples < 1:
        raise ConfigError("num_samples must be at least 1")
    if method == "nll":
        return -log_likelihood(model, x, num_samples=num_samples, y=y, seed=seed)
    device = device_of(model)
    g = torch.Generator(device=device).manual_seed(seed)
    out = []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size].to(device)
        yb = None if y is None else y[start : start + batch_size].to(device)
        q = model.encode(xb, yb)
        if method == "recon":
            out.append(((model.decode(q.mean, yb).mean - xb) ** 2).flatten(1).sum(1))
        else:
            drawn = model.output_at(q, q.rsample(generator=g), yb)  # the KL against the model's prior
            out.append(-drawn.likelihood.log_prob(xb) + drawn.kl_columns().sum(-1))
    return torch.cat(out).double().cpu() if out else torch.zeros(0, dtype=torch.float64)
