"""Synthetic tables: a VAE over mixed-type rows with SDV's shape of API.

``TabularVAE().fit(df)``, ``.sample(n)``, ``.sample(n, conditions={"income": ">50K"})``,
``.save(path)`` / ``TabularVAE.load(path)`` (a folder: ``config.json`` + ``model.safetensors``),
``.loss_values`` (one row per epoch). The model is an ordinary vaekit VAE: ``encode`` returns a
DiagonalGaussian, ``decode`` a :class:`~vaekit.distributions.MixedTabular` (a
:class:`~vaekit.tabular_model.TargetLast`
when a ``target`` column is named), and it is trained by
:func:`vaekit.training.train` with the usual ELBO, so nothing here re-implements the loss.

Conditioning (a CVAE, Sohn et al. 2015, with CTGAN's per-column condition vector, Xu et al.
2019): encoder and decoder also see a vector holding one one-hot block per categorical column,
all zeros where the column is not given. In training each row's vector is built from its own
values: empty for half of the rows (the unconditional model), and for the other half one
categorical column chosen at random. At sampling time the requested columns' blocks are set,
so ``conditions`` shape the whole row through the model rather than by rejection alone; the
conditioned columns are then set to the requested values exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from vaekit.errors import ConfigError, DataError, RunError
from vaekit.apps.tabular.model import TabularModel
from vaekit.apps.tabular.transform import TableTransformer, column_numbers, same_value
from vaekit.apps.tabular.types import read_column_metadata

KIND = "vaekit-tabular"
# The target head sees a one-hot of the value of each continuous column with at most this many
# distinct values (TabularModel.head_features): Adult's capital-gain has 119, age 73.
HEAD_MAX_LEVELS = 128
# The head's own fit (fit_target_head): the share of rows it holds out for early stopping, its
# epoch limit and patience (on Adult it stops after about 20 epochs, best near 10-17).
HEAD_HOLDOUT, HEAD_MAX_EPOCHS, HEAD_PATIENCE = 0.1, 200, 10
# What "auto" means for point_mass and latent_components, without and with a target column.
# With a target the head reads single values of the numbers, so the synthetic rows must give
# them exactly: atoms (one categorical likelihood per value held by >= 1% of rows) do, where a
# Gaussian over a tied value's interval spills into its neighbours (Adult: education-num agrees
# with education in 70% of synthetic rows without atoms, 83% with). Measured on Adult's
# validation split (bench/results/tabular-adult-validation.md): F1 / AUC of seeds 0, 1, 2 are
# 0.680 / 0.675 / 0.675 and 0.914 / 0.914 / 0.910 with atoms and 10 components, 0.693 / 0.674 /
# 0.674 and 0.919 / 0.913 / 0.915 with 20; without a target, atoms cost F1 (0.633 vs 0.652).
AUTO = {False: {"point_mass": None, "latent_components": 10}, True: {"point_mass": 0.01, "latent_components": 20}}
ROWS_PER_COMPONENT = 40  # the least rows per component of the "auto" latent mixture


class TabularVAE:
    """A synthesizer for mixed-type tables, shaped like SDV's ``TVAESynthesizer``.

    Constructor arguments are stored untouched; learned state ends in ``_``. ``metadata`` is a
    path or dict (CTGAN's ``{"columns": [{"name", "type"}]}`` or SDV's sdtype mapping) that
    overrides the inferred column types. ``epochs=None`` picks about 1.5M row visits (58
    epochs on Adult's 26k rows, never more than 300). ``target`` names a categorical column
    (a label that downstream models will predict): it is then modelled last, given the rest of
    the row (:class:`~vaekit.tabular_model.TargetLast`), which keeps p(target | other columns) far better than the
    joint decoder does. ``derive_columns`` (default on): a column that takes one value per value
    of a categorical column in the training rows (Adult's education-num of education) is not
    modelled but read off that column, so every synthetic row keeps the pair
    (:mod:`vaekit.tabular_dependencies`); the target is always modelled.

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
        # columns that are a function of a categorical column are read off it (tabular_dependencies)
        self.derive_columns = derive_columns
        self.seed, self.verbose, self.device = seed, verbose, device

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, data) -> "TabularVAE":
        from vaekit.config import Config
        from vaekit.data.registry import DataSplits
        from vaekit.training.loop import train

        kinds, formats = read_column_metadata(self.metadata) if self.metadata is not None else (None, None)
        point_mass, components = self._setting("point_mass"), self._setting("latent_components")
        keep = () if self.target is None else (self.target,)
        self.transformer_ = TableTransformer(kinds, formats=formats, point_mass=point_mass,
                                             derive=self.derive_columns, keep=keep).fit(data)
        target_block = None
        if self.target is not None:
            if self.target not in {c["name"] for c in self.transformer_.categorical}:
                raise ConfigError(f"target {self.target!r} must name a categorical or boolean column of the table")
            start, spec = self.transformer_.cat_offset(self.target)
            target_block = (start, len(spec["categories"]))
        if self.latent_components == "auto":
            components = min(components, len(data) // ROWS_PER_COMPONENT)
        elif components > len(data):
            raise ConfigError(f"latent_components={components} needs at least as many rows; this table has "
                              f"{len(data)} (use fewer, 'auto', or 0 to sample from N(0, I))")
        g = np.random.default_rng(self.seed)
        rows = torch.from_numpy(self.transformer_.transform(data, rng=g))
        head_levels, head_edges = level_edges(self.transformer_, data, rows.numpy()) if self.target else ([], None)
        n = rows.shape[0]
        # A small held-out slice only for the per-epoch validation loss (monitoring).
        n_val = min(500, n // 10) if n >= 50 else 0
        perm = g.permutation(n)
        val = rows[perm[:n_val]] if n_val else rows
        train_rows = rows[perm[n_val:]] if n_val else rows
        cfg = Config()
        cfg.data.name = "table"
        cfg.model.likelihood = "gaussian"  # unused: the model's decoder returns MixedTabular
        t = cfg.training
        t.epochs = self.epochs if self.epochs is not None else int(min(300, max(10, round(1.5e6 / n))))
        t.batch_size = min(self.batch_size, train_rows.shape[0])
        t.lr, t.beta, t.weight_decay, t.seed = self.lr, self.beta, self.weight_decay, self.seed
        t.progress, t.device = self.verbose, self.device
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
                                                 t.batch_size, self.seed)
            self.model_.head.requires_grad_(False)
        self.history_ = train(self.model_, splits, cfg)
        if target_block is not None:
            self.model_.head.requires_grad_(True)
        self.model_.eval()
        self.model_.fit_latent_mixture(rows.to(self.device), seed=self.seed)
        self.num_rows_ = int(n)
        return self

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
        import pandas as pd

        self._check_fitted()
        keys = ["epoch", "train_loss", "train_recon", "train_kl", "val_loss", "epoch_time_s"]
        return pd.DataFrame([{k: r[k] for k in keys} for r in self.history_])

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ConfigError("this TabularVAE is not fitted yet; call fit(df) or TabularVAE.load(path) first")

    # -- sampling -----------------------------------------------------------------------------
    def _condition_vector(self, conditions: dict) -> tuple[torch.Tensor, dict[str, Any]]:
        tr = self.transformer_
        cond = torch.zeros(1, self.model_.cond_dim)
        fixed = {}
        offset0 = tr.width - self.model_.cond_dim
        names = {c["name"]: c for c in tr.columns_}
        for name, value in conditions.items():
            if name not in names:
                raise DataError(f"conditions name {name!r}, which is not a column of the fitted table")
            if names[name]["kind"] == "derived":  # read off its parent: condition on the parent's value
                name, value = self._parent_condition(names[name], value)
            if names[name]["kind"] not in ("categorical", "boolean"):
                raise DataError(f"conditions on {name!r} ({names[name]['kind']}) are not supported; condition on categorical or boolean columns")
            start, spec = tr.cat_offset(name)
            i = tr.category_index(spec, value)
            if fixed.get(name, spec["categories"][i]) != spec["categories"][i]:
                raise DataError(f"the conditions ask for two values of {name!r} ({fixed[name]!r} and {spec['categories'][i]!r})")
            cond[0, start - offset0 + i] = 1.0
            fixed[name] = spec["categories"][i]
        return cond, fixed

    def _parent_condition(self, spec: dict, value: Any) -> tuple[str, Any]:
        """(parent, parent value) standing for ``spec[name] == value`` on a derived column."""
        from vaekit.apps.tabular.dependencies import value_key

        parents = [p for p, c in spec["mapping"] if value_key(c) == value_key(value) or same_value(c, value)]
        if len(parents) != 1:
            seen = "was never seen" if not parents else f"comes with {len(parents)} values of {spec['parent']!r}"
            raise DataError(f"{value!r} in column {spec['name']!r} {seen}; {spec['name']!r} is read off "
                            f"{spec['parent']!r}, so condition on {spec['parent']!r} instead")
        return spec["parent"], parents[0]

    def sample(self, num_rows: int, conditions: Optional[dict] = None, seed: Optional[int] = None,
               batch_size: int = 10_000):
        """``num_rows`` synthetic rows (a DataFrame), optionally all meeting ``conditions``."""
        self._check_fitted()
        if int(num_rows) < 1:
            raise ConfigError("num_rows must be at least 1")
        g = torch.Generator(device=self.device).manual_seed(self.seed if seed is None else seed)
        cond, fixed = self._condition_vector(conditions) if conditions else (None, {})
        chunks = []
        for start in range(0, int(num_rows), batch_size):
            n = min(batch_size, int(num_rows) - start)
            if self.categories not in ("sample", "argmax"):
                raise ConfigError(f"categories must be 'sample' or 'argmax', not {self.categories!r}")
            c = None if cond is None else cond.to(self.device)
            chunks.append(self.model_.sample(n, c, generator=g, argmax_categories=self.categories == "argmax").cpu())
        rows = torch.cat(chunks).numpy()
        tr = self.transformer_
        for name, value in fixed.items():  # the conditioned columns take exactly the requested value
            start, spec = tr.cat_offset(name)
            block = rows[:, start : start + len(spec["categories"])]
            block[:] = 0.0
            block[:, spec["categories"].index(value)] = 1.0
        return tr.inverse(rows, self.enforce_min_max_values, self.enforce_rounding)

    # -- files --------------------------------------------------------------------------------
    def get_params(self) -> dict:
        params = {k: getattr(self, k) for k in ("epochs", "batch_size", "latent_dim", "hidden", "lr", "beta",
                                                "weight_decay", "enforce_min_max_values", "enforce_rounding", "categories",
                                                "p_condition", "scale_floor", "latent_components", "point_mass",
                                                "target", "derive_columns", "seed")}
        params["hidden"] = list(params["hidden"])
        return params

    def save(self, path: str | Path) -> Path:
        """Write a folder: ``config.json`` (settings, column specs, losses) + ``model.safetensors``."""
        from vaekit.runs import folder

        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        doc = {"kind": KIND, "params": self.get_params(), "spec": self.model_.spec(),
               "transformer": self.transformer_.state(), "history": self.history_, "num_rows": self.num_rows_,
               "environment": folder.environment()}
        folder.atomic_write(path / folder.CONFIG, json.dumps(doc, indent=1) + "\n")
        folder.save_weights(path, self.model_)
        folder.write_metrics(path, self.history_)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "TabularVAE":
        from vaekit.runs import folder

        path = Path(path)
        doc = read_tabular_doc(path)
        try:
            self = cls(**doc["params"], verbose=False, device=device)
            spec = doc["spec"]
            self.model_ = TabularModel(spec["layout"], spec["latent_dim"], tuple(spec["hidden"]),
                                       spec["scale_floor"], spec["p_condition"], spec.get("latent_components", 0),
                                       spec.get("target_block"), spec.get("head_levels"))
            self.transformer_ = TableTransformer.from_state(doc["transformer"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{path / folder.CONFIG} cannot rebuild a TabularVAE: {exc}") from None
        folder.load_weights_into(self.model_, path / folder.WEIGHTS)
        self.model_.to(device).eval()
        self.history_, self.num_rows_ = doc.get("history", []), int(doc.get("num_rows", 0))
        return self


def level_edges(transformer: TableTransformer, data, rows: np.ndarray,
                max_levels: int = HEAD_MAX_LEVELS) -> tuple[list[list[int]], np.ndarray]:
    """([column, number of edges, "other value" entry, missing flag], edges) of the continuous
    columns with 2..``max_levels`` distinct values, for
    :meth:`~vaekit.tabular_model.TabularModel.head_features` (-1: the column has no atoms, or no
    missing values).

    The edges lie on the scale of the transformed ``rows``: a tied value covers an interval there
    (rows get random points in it), and each edge is halfway between one value's highest row and
    the next value's lowest, so a number maps to the value that the inverse transform gives it.
    Missing values and atoms (whose number is a constant 0) are left out.
    """
    levels, edges = [], []
    n_cont, missing_of = len(transformer.continuous), transformer.missing_of
    # each atom block ends with its "other value" entry
    other_of = {j: start + len(transformer.continuous[j]["atoms"]) for j, start in transformer.atom_block_starts().items()}
    for j, spec in enumerate(transformer.continuous):
        v = column_numbers(data, spec)
        keep = ~np.isnan(v)
        if spec.get("atoms"):
            keep &= ~np.isin(v, spec["atoms"])
        values = np.unique(v[keep])
        if not 2 <= len(values) <= max_levels:
            continue
        x = rows[keep, j].astype(np.float64)
        order = np.lexsort((x, v[keep]))
        which = np.searchsorted(values, v[keep][order])
        starts = np.searchsorted(which, np.arange(len(values)))
        low, high = x[order][starts], np.maximum.reduceat(x[order], starts)
        flag = n_cont + missing_of.index(j) if j in missing_of else -1
        levels.append([j, len(values) - 1, other_of.get(j, -1), flag])
        edges.append((high[:-1] + low[1:]) / 2)
    return levels, (np.concatenate(edges) if edges else np.zeros(0))


def fit_target_head(model: TabularModel, rows: torch.Tensor, lr: float, batch_size: int, seed: int) -> list[dict]:
    """Fit the target head alone, by log-loss, keeping the epoch with the best held-out log-loss.

    The head is a classifier of p(target | rest of the row), and it overfits long before the VAE
    has converged (on Adult its held-out log-loss is best after 10-17 epochs of the VAE's 72);
    early stopping on a held-out share of ``rows`` (``HEAD_HOLDOUT``) fits it as a classifier
    should be fitted, which the ELBO's single loop over all parameters cannot. Returns one
    {epoch, train_loss, val_loss} per epoch (nats per row).
    """
    g = torch.Generator(device=rows.device).manual_seed(seed)
    perm = torch.randperm(rows.shape[0], generator=g, device=rows.device)
    n_val = max(1, int(HEAD_HOLDOUT * rows.shape[0]))
    val, fit_rows = rows[perm[:n_val]], rows[perm[n_val:]]
    opt = torch.optim.Adam(model.head.parameters(), lr=lr)
    best, best_epoch, best_state, history = float("inf"), 0, None, []
    for epoch in range(HEAD_MAX_EPOCHS):
        model.head.train()
        total = 0.0
        for idx in torch.randperm(fit_rows.shape[0], generator=g, device=rows.device).split(batch_size):
            loss = -model.target_log_prob(fit_rows[idx]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        model.head.eval()
        with torch.no_grad():
            val_loss = float(-model.target_log_prob(val).mean())
        history.append({"epoch": epoch + 1, "train_loss": total / fit_rows.shape[0], "val_loss": val_loss})
        if val_loss < best:
            best, best_epoch = val_loss, epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.head.state_dict().items()}
        elif epoch + 1 - best_epoch >= HEAD_PATIENCE:
            break
    model.head.load_state_dict(best_state)
    return history


def read_tabular_doc(path: str | Path) -> dict:
    """The config.json of a saved TabularVAE folder, or RunError."""
    from vaekit.runs.folder import CONFIG

    path = Path(path)
    try:
        doc = json.loads((path / CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{str(path)!r} is not a saved TabularVAE: it has no {CONFIG}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{path / CONFIG} is unreadable or corrupt ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise RunError(f"{str(path)!r} is not a saved TabularVAE (config.json has no kind {KIND!r})")
    return doc


def is_tabular_run(path: str | Path) -> bool:
    try:
        read_tabular_doc(path)
        return True
    except RunError:
        return False


def read_table(path: str | Path):
    """A CSV file as a DataFrame (strings kept as they are, empty cells missing)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"table {str(path)!r} does not exist")
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {str(path)!r} as CSV: {str(exc).splitlines()[0][:120]}") from None
