"""Synthetic tables: a VAE over mixed-type rows with SDV's shape of API.

``TabularVAE().fit(df)``, ``.sample(n)``, ``.sample(n, conditions={"income": ">50K"})``,
``.save(path)`` / ``TabularVAE.load(path)`` (a folder: ``config.json`` + ``model.safetensors``),
``.loss_values`` (one row per epoch). The model is an ordinary vaekit VAE: ``encode`` returns a
DiagonalGaussian, ``decode`` a :class:`~vaekit.distributions.MixedTabular` (a :class:`TargetLast`
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
from torch import nn

from .distributions import DiagonalGaussian, MixedTabular
from .errors import ConfigError, DataError, RunError
from .models import VAEOutput
from .networks import mlp
from .tabular_transform import TableTransformer, read_column_metadata

KIND = "vaekit-tabular"
HEAD_HIDDEN, HEAD_DROPOUT = 64, 0.5  # the target head of TargetLast (see TabularModel)


class TargetLast:
    """p(x|z, c) with one categorical column t modelled last: p(x_-t | z, c) p(t | x_-t).

    Given z the decoder's columns are independent, so whatever ties the target to the other
    columns must pass through z, and a VAE's z carries only part of it: on Adult even rows
    rebuilt from their own codes lose much of p(income | features) (HistGradientBoosting trained
    on them: ROC AUC 0.90, against 0.926 on the real rows). Here a head sees the row's other
    values, so p(t | x_-t) is modelled directly. It does not see z: the encoder sees t, so z
    carries t, and a head given z leans on it (measured on Adult: AUC 0.893 with z, 0.909
    without). ``log_prob`` is the MixedTabular term of the other columns (the target's block
    zeroed drops its term) plus the head's; ``sample`` draws the other columns, then t.
    """

    def __init__(self, base: MixedTabular, head: nn.Module, lead: torch.Size, start: int, size: int):
        self.base, self.head, self.lead, self.start, self.size = base, head, lead, start, size  # lead: z's leading dims

    def _without_target(self, x: torch.Tensor) -> torch.Tensor:
        x = x.expand(*self.lead, x.shape[-1]).clone()
        x[..., self.start : self.start + self.size] = 0.0
        return x

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        rest = self._without_target(x)
        target = x[..., self.start : self.start + self.size]
        return self.base.log_prob(rest) + (torch.log_softmax(self.head(rest), -1) * target).sum(-1)

    @property
    def mean(self) -> torch.Tensor:
        rest = self._without_target(self.base.mean)
        rest[..., self.start : self.start + self.size] = torch.softmax(self.head(rest), -1)
        return rest

    def sample(self, generator: Optional[torch.Generator] = None, argmax_categories: bool = False) -> torch.Tensor:
        rest = self._without_target(self.base.sample(generator=generator, argmax_categories=argmax_categories))
        logits = self.head(rest)
        if argmax_categories:
            idx = logits.argmax(-1)
        else:
            flat = torch.softmax(logits, -1).reshape(-1, self.size)
            idx = torch.multinomial(flat, 1, generator=generator).reshape(logits.shape[:-1])
        rest[..., self.start : self.start + self.size] = torch.nn.functional.one_hot(idx, self.size).to(rest.dtype)
        return rest


class TabularModel(nn.Module):
    """A VAE over transformed table rows; ``decode(z)`` returns a MixedTabular likelihood."""

    # The condition vector is derived from the row itself (its one-hot blocks), so the training
    # loop passes no labels: to it this is an unconditional model.
    conditional = False
    num_classes = 0

    def __init__(self, layout: dict, latent_dim: int = 32, hidden: tuple[int, ...] = (256, 256),
                 scale_floor: float = 0.05, p_condition: float = 0.5, latent_components: int = 0,
                 target_block: Optional[tuple[int, int]] = None):
        super().__init__()
        self.layout = dict(layout)
        self.n_cont, self.missing_of = int(layout["n_cont"]), tuple(layout["missing_of"])
        self.cat_sizes = tuple(layout["cat_sizes"])
        self.width = self.n_cont + len(self.missing_of) + sum(self.cat_sizes)
        self.cond_dim = sum(self.cat_sizes)
        self.data_shape = (self.width,)
        self.latent_dim, self.hidden = int(latent_dim), tuple(hidden)
        self.scale_floor, self.p_condition = float(scale_floor), float(p_condition)
        n_params = 2 * self.n_cont + len(self.missing_of) + self.cond_dim
        self.encoder = mlp([self.width + self.cond_dim, *self.hidden, 2 * self.latent_dim])
        self.decoder = mlp([self.latent_dim + self.cond_dim, *reversed(self.hidden), n_params])
        # (offset in a row, size) of the block modelled last, by a head over the rest of the row
        self.target_block = None if target_block is None else (int(target_block[0]), int(target_block[1]))
        if self.target_block is not None:
            # A small classifier with dropout: it trains as long as the VAE and overfits without
            # (on Adult, 256 units and no dropout: AUC 0.95 on the training rows, 0.89 on held-out ones).
            self.head = nn.Sequential(nn.Linear(self.width, HEAD_HIDDEN), nn.ReLU(), nn.Dropout(HEAD_DROPOUT),
                                      nn.Linear(HEAD_HIDDEN, self.target_block[1]))
        # The latent density used for sampling (not for the ELBO, whose prior stays N(0, I)):
        # a Gaussian mixture fitted to the codes of the training rows after training. K = 0: N(0, I).
        self.latent_components = int(latent_components)
        k, d = self.latent_components, self.latent_dim
        if k > 0:  # no buffers at all for K = 0, so folders saved before the mixture existed still load
            self.register_buffer("mix_logits", torch.zeros(k))
            self.register_buffer("mix_means", torch.zeros(k, d))
            self.register_buffer("mix_chol", torch.eye(d).repeat(k, 1, 1))
            # log p(component | category) for each category of the condition vector (its rows' mean
            # responsibilities): conditional samples draw z from the components of rows like them.
            self.register_buffer("mix_cond", torch.zeros(self.cond_dim, k))

    @property
    def prior(self) -> DiagonalGaussian:
        p = next(self.parameters())
        return DiagonalGaussian.standard(self.latent_dim, device=p.device, dtype=p.dtype)

    def check_shape(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.data_shape:
            raise DataError(f"the model expects rows of width {self.width}, got {tuple(x.shape[1:])}")

    def _cond(self, c: Optional[torch.Tensor], batch: int, like: torch.Tensor) -> torch.Tensor:
        if c is None:
            return like.new_zeros(batch, self.cond_dim)
        return c.to(like.dtype).expand(batch, -1) if c.shape[0] == 1 else c.to(like.dtype)

    def training_condition(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Each row's own category for one random column (a fraction p_condition of rows), else empty."""
        cond = torch.zeros(x.shape[0], self.cond_dim, device=x.device, dtype=x.dtype)
        if not self.cat_sizes:
            return cond
        r = torch.rand(x.shape[0], generator=generator, device=x.device)
        col = torch.randint(len(self.cat_sizes), (x.shape[0],), generator=generator, device=x.device)
        start, onehot = 0, x[:, self.width - self.cond_dim :]
        for j, size in enumerate(self.cat_sizes):
            keep = ((col == j) & (r < self.p_condition)).to(x.dtype).unsqueeze(1)
            cond[:, start : start + size] = onehot[:, start : start + size] * keep
            start += size
        return cond

    def encode(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> DiagonalGaussian:
        self.check_shape(x)
        mean, logvar = self.encoder(torch.cat([x, self._cond(c, x.shape[0], x)], -1)).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def decode(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> MixedTabular:
        """p(x|z, c); ``z`` may carry leading sample dimensions, e.g. (k, batch, latent_dim)."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, self.latent_dim)
        cond = self._cond(c, lead[-1] if lead else 1, flat)
        if len(lead) > 1:
            cond = cond.expand(*lead, -1).reshape(-1, self.cond_dim)
        params = self.decoder(torch.cat([flat, cond], -1)).reshape(*lead, -1)
        base = MixedTabular(params, self.n_cont, self.missing_of, self.cat_sizes, self.scale_floor)
        return base if self.target_block is None else TargetLast(base, self.head, z.shape[:-1], *self.target_block)

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None,
                generator: Optional[torch.Generator] = None) -> VAEOutput:
        if c is None and self.training:
            c = self.training_condition(x, generator)
        posterior = self.encode(x, c)
        z = posterior.rsample(generator=generator)
        return VAEOutput(posterior, z, self.decode(z, c))

    @torch.no_grad()
    def fit_latent_mixture(self, x: torch.Tensor, seed: int = 0, batch_size: int = 10_000) -> None:
        """Fit the sampling density to the aggregate posterior q(z) = mean_i q(z|x_i) of rows ``x``.

        With beta < 1 (or a finite decoder) q(z) does not fill N(0, I): prior draws that land where
        no training code lies decode to blurred rows ("prior holes"). Fitting a density to the
        codes after training and sampling from it is the ex-post density estimation of Ghosh et
        al. 2020 (sec. 4) and the second stage of Dai & Wipf 2019; here one draw z_i ~ q(z|x_i)
        per row and a full-covariance Gaussian mixture with ``latent_components`` components.
        """
        from sklearn.mixture import GaussianMixture

        if self.latent_components == 0:
            return
        g = torch.Generator(device=x.device).manual_seed(seed)
        codes = torch.cat([self.encode(b).rsample(generator=g) for b in x.split(batch_size)]).double().cpu().numpy()
        gm = GaussianMixture(self.latent_components, covariance_type="full", reg_covar=1e-4, max_iter=200,
                             random_state=seed).fit(codes)
        like = self.mix_means
        self.mix_logits.copy_(torch.as_tensor(np.log(np.maximum(gm.weights_, 1e-12)), dtype=like.dtype))
        self.mix_means.copy_(torch.as_tensor(gm.means_, dtype=like.dtype))
        self.mix_chol.copy_(torch.linalg.cholesky(torch.as_tensor(gm.covariances_)).to(like.dtype))
        onehot = x[:, self.width - self.cond_dim :].double().cpu().numpy()
        by_category = onehot.T @ gm.predict_proba(codes) / np.maximum(onehot.sum(0), 1.0)[:, None]
        self.mix_cond.copy_(torch.as_tensor(np.log(np.maximum(by_category, 1e-12)), dtype=like.dtype))

    def sample_latent(self, n: int, generator: Optional[torch.Generator] = None,
                      c: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``n`` latent draws from the sampling density (the fitted mixture, else the prior).

        Under conditions ``c`` the mixture's weights become p(k | c) ∝ p(k) prod_j p(c_j | k), i.e.
        sum_j log p(k | c_j) - (m - 1) log p(k) for m given categories.
        """
        if self.latent_components == 0:
            return self.prior.rsample(n, generator=generator)[:, 0]
        log_w = torch.log_softmax(self.mix_logits, 0)
        if c is None:
            k = torch.multinomial(log_w.exp(), n, replacement=True, generator=generator)
        else:
            c = c.to(log_w.dtype).expand(n, -1)
            logits = c @ self.mix_cond - (c.sum(-1, keepdim=True) - 1) * log_w
            k = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)[:, 0]
        eps = torch.randn(n, self.latent_dim, 1, generator=generator, device=k.device, dtype=self.mix_means.dtype)
        return self.mix_means[k] + (self.mix_chol[k] @ eps)[..., 0]

    @torch.no_grad()
    def sample(self, n: int, c: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
               mean: bool = False, argmax_categories: bool = False) -> torch.Tensor:
        z = self.sample_latent(n, generator, c)
        likelihood = self.decode(z, c)
        return likelihood.mean if mean else likelihood.sample(generator=generator, argmax_categories=argmax_categories)

    def spec(self) -> dict:
        return {"layout": self.layout, "latent_dim": self.latent_dim, "hidden": list(self.hidden),
                "scale_floor": self.scale_floor, "p_condition": self.p_condition,
                "latent_components": self.latent_components,
                "target_block": None if self.target_block is None else list(self.target_block)}


class TabularVAE:
    """A synthesizer for mixed-type tables, shaped like SDV's ``TVAESynthesizer``.

    Constructor arguments are stored untouched; learned state ends in ``_``. ``metadata`` is a
    path or dict (CTGAN's ``{"columns": [{"name", "type"}]}`` or SDV's sdtype mapping) that
    overrides the inferred column types. ``epochs=None`` picks about 1.5M row visits (58
    epochs on Adult's 26k rows, never more than 300). ``target`` names a categorical column
    (a label that downstream models will predict): it is then modelled last, given the rest of
    the row (:class:`TargetLast`), which keeps p(target | other columns) far better than the
    joint decoder does.

    Defaults (beta 0.2, a 10-component latent mixture for sampling) were chosen on Adult with a
    validation split carved from the training rows (``bench/tabular.py --validation``).
    """

    def __init__(self, metadata: Any = None, epochs: Optional[int] = None, batch_size: int = 500,
                 latent_dim: int = 32, hidden: tuple[int, ...] = (256, 256), lr: float = 2e-3,
                 beta: float = 0.2, weight_decay: float = 0.0, enforce_min_max_values: bool = True,
                 enforce_rounding: bool = True, categories: str = "sample", p_condition: float = 0.5,
                 scale_floor: float = 0.05, latent_components: int = 10, point_mass: Optional[float] = None,
                 target: Optional[str] = None, seed: int = 0, verbose: bool = True, device: str = "cpu"):
        self.metadata, self.epochs, self.batch_size = metadata, epochs, batch_size
        self.latent_dim, self.hidden, self.lr, self.beta = latent_dim, hidden, lr, beta
        self.weight_decay = weight_decay
        self.enforce_min_max_values, self.enforce_rounding = enforce_min_max_values, enforce_rounding
        self.categories = categories  # "sample": draw from p(x|z); "argmax": its most probable category
        self.p_condition, self.scale_floor = p_condition, scale_floor
        self.latent_components, self.point_mass = latent_components, point_mass
        self.target = target  # a categorical column modelled last, given the rest of the row (TargetLast)
        self.seed, self.verbose, self.device = seed, verbose, device

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, data) -> "TabularVAE":
        from .config import Config
        from .data.registry import DataSplits
        from .training import train

        kinds, formats = read_column_metadata(self.metadata) if self.metadata is not None else (None, None)
        self.transformer_ = TableTransformer(kinds, formats=formats, point_mass=self.point_mass).fit(data)
        target_block = None
        if self.target is not None:
            if self.target not in {c["name"] for c in self.transformer_.categorical}:
                raise ConfigError(f"target {self.target!r} must name a categorical or boolean column of the table")
            start, spec = self.transformer_.cat_offset(self.target)
            target_block = (start, len(spec["categories"]))
        g = np.random.default_rng(self.seed)
        rows = torch.from_numpy(self.transformer_.transform(data, rng=g))
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
                                   self.latent_components, target_block).to(self.device)
        self.history_ = train(self.model_, splits, cfg)
        self.model_.eval()
        self.model_.fit_latent_mixture(rows.to(self.device), seed=self.seed)
        self.num_rows_ = int(n)
        return self

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
            if names[name]["kind"] not in ("categorical", "boolean"):
                raise DataError(f"conditions on {name!r} ({names[name]['kind']}) are not supported; condition on categorical or boolean columns")
            start, spec = tr.cat_offset(name)
            i = tr.category_index(spec, value)
            cond[0, start - offset0 + i] = 1.0
            fixed[name] = spec["categories"][i]
        return cond, fixed

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
                                                "target", "seed")}
        params["hidden"] = list(params["hidden"])
        return params

    def save(self, path: str | Path) -> Path:
        """Write a folder: ``config.json`` (settings, column specs, losses) + ``model.safetensors``."""
        from . import checkpoint

        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        doc = {"kind": KIND, "params": self.get_params(), "spec": self.model_.spec(),
               "transformer": self.transformer_.state(), "history": self.history_, "num_rows": self.num_rows_,
               "environment": checkpoint.environment()}
        checkpoint.atomic_write(path / checkpoint.CONFIG, json.dumps(doc, indent=1) + "\n")
        checkpoint.save_weights(path, self.model_)
        checkpoint.write_metrics(path, self.history_)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "TabularVAE":
        from . import checkpoint

        path = Path(path)
        doc = read_tabular_doc(path)
        try:
            self = cls(**doc["params"], verbose=False, device=device)
            spec = doc["spec"]
            self.model_ = TabularModel(spec["layout"], spec["latent_dim"], tuple(spec["hidden"]),
                                       spec["scale_floor"], spec["p_condition"], spec.get("latent_components", 0),
                                       spec.get("target_block"))
            self.transformer_ = TableTransformer.from_state(doc["transformer"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{path / checkpoint.CONFIG} cannot rebuild a TabularVAE: {exc}") from None
        checkpoint.load_weights_into(self.model_, path / checkpoint.WEIGHTS)
        self.model_.to(device).eval()
        self.history_, self.num_rows_ = doc.get("history", []), int(doc.get("num_rows", 0))
        return self


def read_tabular_doc(path: str | Path) -> dict:
    """The config.json of a saved TabularVAE folder, or RunError."""
    from .checkpoint import CONFIG

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
