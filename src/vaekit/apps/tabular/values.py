"""A table column's values in and out of the transform: numbers from a column (dates as seconds
since 1970), JSON-able category values, missing values, and values cast back to the column's
original dtype (dates in their original form). :mod:`vaekit.apps.tabular.transform` uses these.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from vaekit.apps.tabular.types import DATETIME, require_pandas
from vaekit.errors import DataError

EPOCH_UNITS = (86400.0, 3600.0, 60.0, 1.0)  # a datetime column is rounded to the coarsest that fits
MISSING = "__vaekit_missing__"  # the category standing for a missing categorical value


def seconds_since_epoch(series, spec: dict) -> np.ndarray:
    """A datetime column as float seconds since 1970-01-01 (UTC for zone-aware values), NaN where missing."""
    pd = require_pandas()
    values = series
    if not pd.api.types.is_datetime64_any_dtype(values):
        bad = None
        try:
            values = pd.to_datetime(series, format=spec.get("format"), errors="coerce")
        except (TypeError, ValueError) as exc:
            bad = str(exc).splitlines()[0][:80]
        if bad is None:
            unparsed = values.isna() & series.notna()
            bad = repr(series[unparsed].iloc[0]) if unparsed.any() else None
        if bad is not None:
            raise DataError(f"datetime column {spec['name']!r} holds {bad}, which does not read as a date"
                            + (f" in format {spec['format']!r}" if spec.get("format") else ""))
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return ((values - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)).to_numpy(dtype=float, na_value=np.nan)


def column_numbers(df, spec: dict) -> np.ndarray:
    """The column of a numeric kind as floats, NaN where missing."""
    if spec["kind"] == DATETIME:
        return seconds_since_epoch(df[spec["name"]], spec)
    return df[spec["name"]].to_numpy(dtype=float, na_value=np.nan)


def decimals(values: np.ndarray) -> Optional[int]:
    """The fewest decimals (0..6) that reproduce every value, or None (keep full precision)."""
    for d in range(7):
        if np.allclose(np.round(values, d), values, rtol=0, atol=1e-9 * max(1.0, float(np.abs(values).max()))):
            return d
    return None


def json_value(v: Any) -> Any:
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return float(v)
    return str(v)


def same_value(a: Any, b: Any) -> bool:
    """Whether a user's value names a stored one: equal, or the same text up to surrounding
    spaces (numbers given as text, Adult's " >50K" as ">50K")."""
    return a == b or str(a).strip() == str(b).strip()


def is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is require_pandas().NA or v is require_pandas().NaT


def cast_datetime(pd, seconds: np.ndarray, spec: dict):
    """Seconds since 1970 back to the column's form: text in its format, else its datetime dtype."""
    stamps = pd.Series(pd.to_datetime(np.round(seconds * 1e6), unit="us"))  # NaN -> NaT
    if spec.get("tz"):
        stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(spec["tz"])
    if spec.get("format"):
        text = stamps.dt.strftime(spec["format"]).astype(object).where(stamps.notna(), np.nan)
        return cast_column(pd, text.to_numpy(dtype=object), spec)
    try:
        return stamps.astype(spec["dtype"])
    except (TypeError, ValueError):
        return stamps


def cast_column(pd, values: np.ndarray, spec: dict):
    """A Series of the column's original dtype (floats where an integer column has missing values)."""
    s = pd.Series(values)
    dtype = spec["dtype"]
    try:
        if s.isna().any() and ("int" in dtype.lower() or dtype == "bool"):
            if dtype[:1].isupper() or dtype == "boolean":  # pandas' nullable types keep NA
                return s.astype(dtype)
            return s.astype(float) if "int" in dtype else s
        return s.astype(dtype)
    except (TypeError, ValueError):
        return s
