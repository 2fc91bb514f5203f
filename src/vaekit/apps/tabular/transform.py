"""The reversible transform between a DataFrame and the rows a VAE models; the column kinds it
works with are found by :mod:`vaekit.apps.tabular.types`; a column's values go in and
out through :mod:`vaekit.apps.tabular.values`.

Continuous columns go through a **quantile transform to a standard normal** (the empirical CDF
on ``n_quantiles`` levels, then the normal quantile function). Why this and not TVAE's
mode-specific normalisation (a BayesianGaussianMixture per column, Xu et al. 2019): it is
exact for any marginal (multi-modal, skewed, heavy point masses such as capital-gain's 92%
zeros all map back exactly, because the inverse is flat over a tie), it takes milliseconds
instead of tens of seconds per column, its state is two short arrays (JSON-friendly), and its
inverse never leaves the training range, so min/max hold by construction.

Categorical, ordinal and boolean columns are one-hot blocks; missing categories are a category
of their own. A continuous column with missing values gets a 0/1 "missing" flag (its value is
then 0 and left out of the likelihood), so missingness is modelled and reproduced at its rate.
Integer columns and floats with few decimals are rounded back to the precision seen in training.

Datetime columns (``datetime64`` columns, text columns whose values all parse with one date
format, or metadata sdtype ``datetime`` with an optional ``datetime_format``) are modelled as
numbers, seconds since 1970, through the same quantile transform; they come back in their
original dtype, text in the original format, rounded to the coarsest unit (day, hour, minute,
second) that every training value is a multiple of.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
from scipy.special import ndtr, ndtri

from vaekit.apps.tabular.dependencies import derive, find_derived
from vaekit.apps.tabular.types import (
    BOOLEAN, CATEGORICAL, CONTINUOUS, DATETIME, DERIVED, ID, NUMERIC_KINDS, guess_date_format, infer_kind, require_pandas,
)
from vaekit.apps.tabular.values import (
    EPOCH_UNITS, MISSING, cast_column, cast_datetime, column_numbers, decimals, is_missing, json_value, same_value,
    seconds_since_epoch,
)
from vaekit.errors import DataError



def _probit(u: np.ndarray) -> np.ndarray:
    return ndtri(np.clip(u, 1e-7, 1 - 1e-7))


class TableTransformer:
    """fit(df) learns one spec per column; transform(df) -> float32 rows; inverse(rows) -> df."""

    def __init__(self, metadata: Optional[dict[str, str]] = None, n_quantiles: int = 1000,
                 formats: Optional[dict[str, str]] = None, point_mass: Optional[float] = None,
                 derive: bool = True, keep: tuple[str, ...] = ()):
        self.metadata, self.n_quantiles, self.formats = metadata or {}, n_quantiles, formats or {}
        self.point_mass = point_mass
        # derive: columns that are a function of a categorical column are read off it instead of
        # modelled (tabular.dependencies); ``keep`` names columns that must stay modelled.
        self.derive, self.keep = derive, tuple(keep)

    def _fit_numbers(self, v: np.ndarray) -> dict[str, Any]:
        """Quantiles of a numeric column's values; values holding a share >= point_mass are atoms,
        modelled by a one-hot block of their own (the quantiles then cover the other values)."""
        atoms: list[float] = []
        if self.point_mass:
            values, counts = np.unique(v, return_counts=True)
            atoms = values[counts >= self.point_mass * len(v)].tolist()
        rest = v[~np.isin(v, atoms)] if atoms else v
        rest = rest if len(rest) else v
        refs = np.linspace(0, 1, min(self.n_quantiles, len(rest)))
        return {"quantiles": np.quantile(rest, refs).tolist(), "atoms": atoms, "min": float(v.min()), "max": float(v.max())}

    def fit(self, df) -> "TableTransformer":
        pd = require_pandas()
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"expected a pandas DataFrame, got {type(df).__name__}")
        if len(df) < 2:
            raise DataError(f"the table has {len(df)} row(s); a synthesizer needs at least 2 (and many more to be useful)")
        unknown = sorted(set(self.metadata) - set(map(str, df.columns)))
        if unknown:
            raise DataError(f"metadata names columns the table lacks: {', '.join(unknown[:5])}")
        kinds = {}
        for name in df.columns:
            if df[name].isna().all():
                raise DataError(f"column {name!r} is entirely missing; drop it before fitting")
            kinds[name] = self.metadata.get(str(name)) or infer_kind(df[name])
        derived = {}
        if self.derive:
            parents = [c for c, k in kinds.items() if k in (CATEGORICAL, BOOLEAN)]
            children = [c for c, k in kinds.items() if k in (CONTINUOUS, CATEGORICAL, BOOLEAN) and str(c) not in self.keep]
            derived = find_derived(df, parents, children)
        self.columns_ = []
        for name in df.columns:
            s, kind = df[name], kinds[name]
            spec: dict[str, Any] = {"name": str(name), "kind": kind, "dtype": str(s.dtype), "missing": float(s.isna().mean())}
            if str(name) in derived:
                parent, mapping = derived[str(name)]
                spec.update(kind=DERIVED, of_kind=kind, parent=parent,
                            mapping=[[None if is_missing(v) else json_value(v) for v in pair] for pair in mapping])
            elif kind == DATETIME:
                spec["tz"] = str(s.dt.tz) if getattr(getattr(s, "dt", None), "tz", None) is not None else None
                if not pd.api.types.is_datetime64_any_dtype(s):
                    spec["format"] = self.formats.get(str(name)) or guess_date_format(s.astype(object))
                v = seconds_since_epoch(s, spec)
                v = v[~np.isnan(v)]
                unit = next((u for u in EPOCH_UNITS if np.all(np.mod(v, u) == 0)), None)
                spec.update(self._fit_numbers(v), unit_s=unit)
            elif kind == CONTINUOUS:
                try:
                    v = s.dropna().to_numpy(dtype=float)
                except (TypeError, ValueError):
                    raise DataError(f"column {name!r} is declared continuous but holds non-numbers, e.g. {s.dropna().iloc[0]!r}") from None
                spec.update(self._fit_numbers(v), decimals=decimals(v), integer=pd.api.types.is_integer_dtype(s) or bool(np.all(np.mod(v, 1) == 0)))
            elif kind == ID:
                pass
            else:
                cats = [json_value(c) for c in pd.unique(s.dropna())]
                cats = sorted(cats, key=lambda c: (str(type(c)), c))
                if s.isna().any():
                    cats.append(MISSING)
                spec["categories"] = cats
            self.columns_.append(spec)
        return self

    # -- layout --------------------------------------------------------------------------
    @property
    def continuous(self) -> list[dict]:
        return [c for c in self.columns_ if c["kind"] in NUMERIC_KINDS]

    @property
    def categorical(self) -> list[dict]:
        return [c for c in self.columns_ if c["kind"] in (CATEGORICAL, BOOLEAN)]

    @property
    def missing_of(self) -> tuple[int, ...]:
        return tuple(i for i, c in enumerate(self.continuous) if c["missing"] > 0)

    @property
    def atom_columns(self) -> list[tuple[int, dict]]:
        """(index among the continuous columns, spec) of those with atoms; each has a one-hot block
        [atom 1, ..., atom k, other value] after the categorical blocks."""
        return [(i, c) for i, c in enumerate(self.continuous) if c.get("atoms")]

    def atom_block_starts(self) -> dict[int, int]:
        """{index among the continuous columns: offset in a row of its atom block} (see atom_columns)."""
        start = len(self.continuous) + len(self.missing_of) + sum(len(c["categories"]) for c in self.categorical)
        starts = {}
        for i, spec in self.atom_columns:
            starts[i] = start
            start += len(spec["atoms"]) + 1
        return starts

    @property
    def cat_sizes(self) -> tuple[int, ...]:
        """Sizes of the one-hot blocks: the categorical columns', then the atom blocks."""
        return tuple(len(c["categories"]) for c in self.categorical) + tuple(len(c["atoms"]) + 1 for _, c in self.atom_columns)

    @property
    def width(self) -> int:
        return len(self.continuous) + len(self.missing_of) + sum(self.cat_sizes)

    def cat_offset(self, name: str) -> tuple[int, dict]:
        """(offset of the column's one-hot block in a row, its spec)."""
        start = len(self.continuous) + len(self.missing_of)
        for c in self.categorical:
            if c["name"] == name:
                return start, c
            start += len(c["categories"])
        raise KeyError(name)

    def category_index(self, spec: dict, value: Any) -> int:
        """Index of ``value`` among the column's categories (also matching numbers given as text and
        values differing only in surrounding spaces, e.g. ">50K" for Adult's " >50K")."""
        cats = spec["categories"]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            value = MISSING
        for i, c in enumerate(cats):
            if same_value(c, value):
                return i
        shown = ", ".join(repr(c) for c in cats[:8]) + (" ..." if len(cats) > 8 else "")
        raise DataError(f"{value!r} was never seen in column {spec['name']!r}; its values are {shown}")

    # -- forward and back -------------------------------------------------------------------
    def transform(self, df, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """Rows for the model. Tied values (a point mass, integers) cover a range of quantile levels:
        with ``rng`` each row gets a uniform draw from its range (a randomised probability integral
        transform, so the column becomes exactly N(0, 1) and the decoder need not fit a spike);
        without, the middle of the range. The inverse maps the whole range back to the tied value."""
        n = len(df)
        cont, flags, blocks, atom_blocks = [], [], [], []
        for spec in self.continuous:
            v = column_numbers(df, spec)
            missing = np.isnan(v)
            q = np.asarray(spec["quantiles"])
            refs = np.linspace(0, 1, len(q))
            filled = np.where(missing, q[0], v)
            # np.interp over repeated knots gives the last level from one side and the first from
            # the other (scikit-learn's QuantileTransformer averages the two).
            hi, lo = np.interp(filled, q, refs), -np.interp(-filled, -q[::-1], -refs[::-1])
            u = lo + (hi - lo) * (0.5 if rng is None else rng.random(n))
            absent = missing.copy()
            if spec.get("atoms"):  # an atom's row: its block says which, the number is a constant 0
                atoms = np.asarray(spec["atoms"])
                which = np.where(missing, -1, np.searchsorted(atoms, filled).clip(max=len(atoms) - 1))
                which = np.where((which >= 0) & (atoms[which.clip(min=0)] == filled), which, len(atoms))
                block = np.zeros((n, len(atoms) + 1))
                block[np.arange(n), which] = 1.0
                block[missing] = 0.0  # a missing value has no mode: the block is left out of the likelihood
                atom_blocks.append(block)
                absent |= which < len(atoms)
            cont.append(np.where(absent, 0.0, _probit(u)))
            if spec["missing"] > 0:
                flags.append(missing.astype(float))
        for spec in self.categorical:
            lookup = {c: i for i, c in enumerate(spec["categories"])}
            onehot = np.zeros((n, len(spec["categories"])))
            values = df[spec["name"]]
            idx = [lookup.get(MISSING if is_missing(v) else json_value(v), -1) for v in values]
            bad = [v for v, i in zip(values, idx) if i < 0]
            if bad:
                raise DataError(f"column {spec['name']!r} holds {bad[0]!r}, a value not seen when fitting")
            onehot[np.arange(n), idx] = 1.0
            blocks.append(onehot)
        parts = [np.stack(cont, 1) if cont else np.zeros((n, 0))]
        parts += [np.stack(flags, 1)] if flags else []
        return np.concatenate(parts + blocks + atom_blocks, axis=1).astype(np.float32)

    def inverse(self, rows: np.ndarray, enforce_min_max: bool = True, enforce_rounding: bool = True):
        pd = require_pandas()
        n, out = rows.shape[0], {}
        n_cont, miss = len(self.continuous), self.missing_of
        atom_of = {i: rows[:, start : start + len(self.continuous[i]["atoms"]) + 1].argmax(1)
                   for i, start in self.atom_block_starts().items()}
        for i, spec in enumerate(self.continuous):
            q = np.asarray(spec["quantiles"])
            u = ndtr(rows[:, i].astype(float))
            u = np.where(u >= 1 - 2e-7, 1.0, np.where(u <= 2e-7, 0.0, u))  # the clipped ends are the min and max
            v = np.interp(u, np.linspace(0, 1, len(q)), q)
            if i in atom_of:
                atoms = np.asarray(spec["atoms"] + [np.nan])
                v = np.where(atom_of[i] < len(spec["atoms"]), atoms[atom_of[i]], v)
            if enforce_min_max:
                v = np.clip(v, spec["min"], spec["max"])
            if enforce_rounding and spec.get("decimals") is not None:
                v = np.round(v, spec["decimals"])
            if enforce_rounding and spec.get("unit_s"):
                v = np.round(v / spec["unit_s"]) * spec["unit_s"]
            if i in miss:
                v = np.where(rows[:, n_cont + miss.index(i)] > 0.5, np.nan, v)
            out[spec["name"]] = cast_datetime(pd, v, spec) if spec["kind"] == DATETIME else cast_column(pd, v, spec)
        start = n_cont + len(miss)
        for spec in self.categorical:
            size = len(spec["categories"])
            idx = rows[:, start : start + size].argmax(1)
            start += size
            values = [spec["categories"][j] for j in idx]
            out[spec["name"]] = cast_column(pd, np.array([np.nan if v == MISSING else v for v in values], dtype=object), spec)
        for spec in self.columns_:
            if spec["kind"] == ID:
                out[spec["name"]] = pd.Series(np.arange(n), dtype="int64")
            elif spec["kind"] == DERIVED:
                out[spec["name"]] = cast_column(pd, derive(out[spec["parent"]], spec["mapping"]), spec)
        return pd.DataFrame({spec["name"]: out[spec["name"]] for spec in self.columns_})

    def state(self) -> dict:
        return {"columns": self.columns_, "n_quantiles": self.n_quantiles, "point_mass": self.point_mass,
                "derive": self.derive, "keep": list(self.keep)}

    @classmethod
    def from_state(cls, state: dict) -> "TableTransformer":
        t = cls(n_quantiles=state["n_quantiles"], point_mass=state.get("point_mass"),
                derive=state.get("derive", False), keep=tuple(state.get("keep", ())))
        t.columns_ = state["columns"]
        return t
