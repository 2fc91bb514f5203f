"""Synthetic tables: a VAE over mixed-type rows with SDV's shape of API.

``TabularVAE().fit(df)``, ``.sample(n)``, ``.sample(n, conditions={"income": ">50K"})``,
``.save(path)`` / ``TabularVAE.load(path)`` (a run folder, :mod:`vaekit.runs.folder`'s format),
``.loss_values`` (one row per epoch). The model (:class:`~vaekit.apps.tabular.model.TabularModel`)
is an ordinary vaekit VAE: ``encode`` returns a DiagonalGaussian, ``decode`` a
:class:`~vaekit.apps.tabular.likelihood.MixedTabular` (a
:class:`~vaekit.apps.tabular.likelihood.TargetLast` when a ``target`` column is named), and it is
trained by :func:`vaekit.training.loop.train` with the usual ELBO, so nothing here
re-implements the loss.

Conditioning (:mod:`vaekit.apps.tabular.conditions`): encoder and decoder also see a condition
vector ``y`` with one one-hot block per categorical column. In training each row's vector is
built from its own values: empty for half of the rows (the unconditional model), and for the
other half one categorical column chosen at random. At sampling time the requested columns'
blocks are set, so ``conditions`` shape the whole row through the model rather than by
rejection alone; the conditioned columns are then set to the requested values exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from vaekit.apps.tabular.conditions import condition_vector, set_conditioned_columns
from vaekit.apps.tabular.head import fit_target_head, level_edges
from vaekit.apps.tabular.model import TabularModel
from vaekit.apps.tabular.transform import TableTransformer
from vaekit.apps.tabular.types import read_column_metadata, require_pandas
from vaekit.config import Config
from vaekit.data.registry import DataSplits
from vaekit.errors import ConfigError, DataError, RunError
from vaekit.runs import folder
from vaekit.training.loop import train

# What "auto" means for point_mass and latent_components, without and with a target column.
# With a target the head reads single values of the numbers, so the synthetic rows must give
# them exactly: atoms (one categorical likelihood per value held by >= 1% of rows) do, where a
# Gaussian over a tied value's interval spills into its neighbours. Chosen on Adult's validation
# split by the F1 and AUC of a classifier trained on the synthetic rows: with a target, the second
# round of bench/results/tabular-adult-validation.md (atoms and 20 components); without one, its
# first table, where atoms cost F1.
AUTO = {False: {"point_mass": None, "latent_components": 10}, True: {"point_mass": 0.01, "latent_components": 20}}
ROWS_PER_COMPONENT = 40  # the least rows per component of the "auto" latent mixture
PARAMS = ("epochs", "batch_size", "latent_dim", "hidden", "lr", "beta", "weight_decay", "enforce_min_max_values",
          "enforce_rounding", "categories", "p_condition", "scale_floor", "latent_components", "point_mass",
          "target", "derive_columns", "seed")  # the constructor's arguments that a saved model keeps


class TabularVAE:
    """A synthesizer for mixed-type tables, shaped like SDV's ``TVAESynthesizer``.

    Constructor arguments are stored untouched; learned state ends in ``_``. ``metadata`` is a
    path or dict (CTGAN's ``{"columns": [{"name", "type"}]}`` or SDV's sdtype mapping) that
    overrides the inferred column types. ``epochs=None`` picks about 1.5M row visits (58
    epochs on Adult's 26k rows, never more than 300). ``target`` names a categorical column
    (a label that downstream models will predict): it is then modelled last, given the rest of
    the row (:class:`~vaekit.apps.tabular.likelihood.TargetLast`), which keeps p(target | other
    columns) far better than the joint decoder does. ``derive_columns`` (default on): a column
    that takes one value per value of a categorical column in the training rows (Adult's
    education-num of education) is not modelled but read off that column, so every synthetic row
    keeps the pair (:mod:`vaekit.apps.tabular.dependencies`); the target is always modelled.

    Defaults (beta 0.2, a 10-component latent mixture for sampling; with a ``target``, 20
    components and atoms for values held by >= 1% of rows, see ``AUTO``) were chosen on Adult
    with a validation split carved from the training rows (``bench/tabular.py --validation``).
    The ``auto`` mixture has at most one component per ``ROWS_PER_COMPONENT`` rows (a table of
    fewer rows samples from N(0, I)): full-covariance components fitted to a handful of codes each
    sit on those codes, and their samples on the training rows.
    """

    def __init__(self, metadata: Any = None, epochs: Optional[int] = None, batch_size: int = 500,
                 latent_dim: int = 32, hidden: tuple[int, ...] = (256, 256), lr: float = 2e-3,
                 beta: float = 0.2, weight_decay: float = 0.0, enforce_min_max_values: bool = True,
                 enforce_rounding: bool = True, categories: str = "sample", p_condition: float = 0.5,
                 scale_floor: float = 0.05, latent_components: int | str = "auto", point_mass: Optional[float] | str = "auto",
                 target: Optional[str] = None, derive_columns: bool = True, seed: int = 0, verbose: bool = True,
                 device: str = "cpu"):
        self.metadata, self.epochs, self.batch_size = metadata, epochs, batch_size
        self.latent_dim, self.hidden, self.lr, self.beta = latent_dim, hidden, lr, beta
        self.weight_decay = weight_decay
        self.enforce_min_max_values, self.enforce_rounding = enforce_min_max_values, enforce_rounding
        self.categories = categories  # "sample": draw from p(x|z); "argmax": its most probable category
        self.p_condition, self.scale_floor = p_condition, scale_floor
        self.latent_components, self.point_mass = latent_components, point_mass
        self.target = target  # a categorical column modelled last, given the rest of the row (TargetLast)
        # columns that are a function of a categorical column are read off it (tabular.dependencies)
        self.derive_columns = derive_columns
        self.seed, self.verbose, self.device = seed, verbose, device

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, data) -> "TabularVAE":
        target_block = self._fit_transformer(data)
        components = self._components(len(data))
        g = np.random.default_rng(self.seed)
        rows = torch.from_numpy(self.transformer_.transform(data, rng=g))
        head_levels, head_edges = level_edges(self.transformer_, data, rows.numpy()) if self.target else ([], None)
        n = rows.shape[0]
        # A small held-out slice only for the per-epoch validation loss (monitoring).
        n_val = min(500, n // 10) if n >= 50 else 0
        perm = g.permutation(n)
        val = rows[perm[:n_val]] if n_val else rows
        train_rows = rows[perm[n_val:]] if n_val else rows
        self.config_ = self._training_config(n, train_rows.shape[0])
        splits = DataSplits(name="table", kind="table", shape=(rows.shape[1],), train=train_rows, val=val, test=val,
                            train_labels=None, val_labels=None, test_labels=None, binary=False, num_classes=0,
                            class_names=None, preprocessing={})
        tr = self.transformer_
        layout = {"n_cont": len(tr.continuous), "missing_of": list(tr.missing_of), "cat_sizes": list(tr.cat_sizes)}
        torch.manual_seed(self.seed)  # weight initialisation
        self.model_ = TabularModel(layout, self.latent_dim, self.hidden, self.scale_floor, self.p_condition,
                                   components, target_block, head_levels).to(self.device)
        if target_block is not None:
            if head_levels:
                self.model_.head_edges.copy_(torch.as_tensor(head_edges, dtype=self.model_.head_edges.dtype))
            # The head is fitted first, on its own, and frozen: it sees only rows, never z, so the
            # ELBO's gradient for the VAE does not depend on it, and alone it can stop early.
            self.head_history_ = fit_target_head(self.model_, train_rows.to(self.device), self.lr,
                                                 self.config_.training.batch_size, self.seed)
            self.model_.head.requires_grad_(False)
        self.history_ = train(self.model_, splits, self.config_)
        if target_block is not None:
            self.model_.head.requires_grad_(True)
        self.model_.eval()
        self.model_.fit_latent_mixture(rows.to(self.device), seed=self.seed)
        self.num_rows_ = int(n)
        return self

    def _fit_transformer(self, data) -> Optional[tuple[int, int]]:
        """Fit ``transformer_`` to ``data``; the target's (offset, size) in a row, or None without a target."""
        kinds, formats = read_column_metadata(self.metadata) if self.metadata is not None else (None, None)
        keep = () if self.target is None else (self.target,)
        self.transformer_ = TableTransformer(kinds, formats=formats, point_mass=self._setting("point_mass"),
                                             derive=self.derive_columns, keep=keep).fit(data)
        if self.target is None:
            return None
        if self.target not in {c["name"] for c in self.transformer_.categorical}:
            raise ConfigError(f"target {self.target!r} must name a categorical or boolean column of the table")
        start, spec = self.transformer_.cat_offset(self.target)
        return start, len(spec["categories"])

    def _components(self, num_rows: int) -> int:
        """The latent mixture's number of components for a table of ``num_rows`` rows."""
        components = self._setting("latent_components")
        if self.latent_components == "auto":
            return min(components, num_rows // ROWS_PER_COMPONENT)
        if components > num_rows:
            raise ConfigError(f"latent_components={components} needs at least as many rows; this table has "
                              f"{num_rows} (use fewer, 'auto', or 0 to sample from N(0, I))")
        return components

    def _training_config(self, num_rows: int, num_train_rows: int) -> Config:
        """The Config that :func:`vaekit.training.loop.train` runs (and the run folder records)."""
        cfg = Config()
        cfg.data.name = "table"
        cfg.model.likelihood = "gaussian"  # unused: the model's decoder returns MixedTabular
        cfg.model.hidden, cfg.model.latent_dim = tuple(self.hidden), self.latent_dim  # recorded; the spec holds them too
        t = cfg.training
        t.epochs = self.epochs if self.epochs is not None else int(min(300, max(10, round(1.5e6 / num_rows))))
        t.batch_size = min(self.batch_size, num_train_rows)
        t.lr, t.beta, t.weight_decay, t.seed = self.lr, self.beta, self.weight_decay, self.seed
        t.progress, t.verbose, t.device = self.verbose, self.verbose, self.device
        t.early_stopping = 0  # every epoch asked for is trained, as before early stopping became the default
        return cfg

    def _setting(self, name: str):
        """The constructor's value of ``name``, or what "auto" means here (``AUTO``)."""
        value = getattr(self, name)
        if isinstance(value, str):
            if value != "auto":
                raise ConfigError(f"{name} must be a number or 'auto', not {value!r}")
            return AUTO[self.target is not None][name]
        return value

    @property
    def loss_values(self):
        """Per-epoch losses (nats per row) as a DataFrame: epoch, train_loss, val_loss, recon, kl."""
        self._check_fitted()
        keys = ["epoch", "train_loss", "train_recon", "train_kl", "val_loss", "epoch_time_s"]
        return require_pandas().DataFrame([{k: r[k] for k in keys} for r in self.history_])

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ConfigError("this TabularVAE is not fitted yet; call fit(df) or TabularVAE.load(path) first")

    # -- sampling -----------------------------------------------------------------------------
    def sample(self, num_rows: int, conditions: Optional[dict] = None, seed: Optional[int] = None,
               batch_size: int = 10_000):
        """``num_rows`` synthetic rows (a DataFrame), optionally all meeting ``conditions``."""
        self._check_fitted()
        if int(num_rows) < 1:
            raise ConfigError("num_rows must be at least 1")
        if self.categories not in ("sample", "argmax"):
            raise ConfigError(f"categories must be 'sample' or 'argmax', not {self.categories!r}")
        g = torch.Generator(device=self.device).manual_seed(self.seed if seed is None else seed)
        y, fixed = condition_vector(self.transformer_, self.model_.cond_dim, conditions) if conditions else (None, {})
        y = None if y is None else y.to(self.device)
        chunks = []
        for start in range(0, int(num_rows), batch_size):
            n = min(batch_size, int(num_rows) - start)
            chunks.append(self.model_.sample(n, y, generator=g, argmax_categories=self.categories == "argmax").cpu())
        rows = torch.cat(chunks).numpy()
        set_conditioned_columns(rows, self.transformer_, fixed)
        return self.transformer_.inverse(rows, self.enforce_min_max_values, self.enforce_rounding)

    # -- files --------------------------------------------------------------------------------
    def get_params(self) -> dict:
        params = {k: getattr(self, k) for k in PARAMS}
        params["hidden"] = list(params["hidden"])
        return params

    def save(self, path: str | Path) -> Path:
        """Write a run folder: ``config.json`` ("class": "TabularModel", its spec, the Config it trained
        under and an "app" section: the constructor's arguments, the column transform, the number
        of rows), ``model.safetensors`` and ``metrics.jsonl``. ``vaekit.load(path)`` gives the model."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        app = {"params": self.get_params(), "transformer": self.transformer_.state(), "num_rows": self.num_rows_}
        folder.save_config(path, self.config_, self.model_, device=self.device, app=app)
        folder.save_weights(path, self.model_)
        folder.write_metrics(path, self.history_)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "TabularVAE":
        """A TabularVAE saved by :meth:`save`; RunError for any other folder."""
        path = Path(path)
        doc = folder.read_run(path)
        model = folder.build_model(doc)
        if not isinstance(model, TabularModel) or not isinstance(doc.get("app"), dict):
            raise RunError(f"{str(path)!r} holds a {doc['class']} run, not a TabularVAE; load it with vaekit.load(path)")
        folder.load_weights_into(model, path / folder.WEIGHTS)
        app = doc["app"]
        try:
            self = cls(**app["params"], verbose=False, device=device)
            self.transformer_ = TableTransformer.from_state(app["transformer"])
            self.num_rows_ = int(app["num_rows"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{path / folder.CONFIG} cannot rebuild a TabularVAE: {type(exc).__name__} {exc}") from None
        self.model_ = model.to(device).eval()
        self.config_ = folder.run_config(doc)
        self.history_ = folder.read_metrics(path)
        return self


def read_table(path: str | Path):
    """A CSV file as a DataFrame (strings kept as they are, empty cells missing)."""
    pd = require_pandas()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"table {str(path)!r} does not exist")
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {str(path)!r} as CSV: {str(exc).splitlines()[0][:120]}") from None
