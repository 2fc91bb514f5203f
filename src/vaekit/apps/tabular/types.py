"""Column kinds of a table: what metadata may call them, and how they are inferred from the values.

Kinds: continuous, categorical (also ordinal), boolean, id, datetime, and derived (a column read
off another one, :mod:`vaekit.apps.tabular.dependencies`). Metadata is CTGAN/SDGym's JSON column list
(``{"columns": [{"name", "type"}]}``, e.g. ``adult.json``) or SDV's sdtype mapping. Without it,
numbers are continuous unless integral with at most ``MAX_INT_CATEGORIES`` values, text whose
every value parses as a date with one format is a datetime, and other text is categorical.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np

from vaekit.errors import DataError

CONTINUOUS, CATEGORICAL, BOOLEAN, ID, DATETIME = "continuous", "categorical", "boolean", "id", "datetime"
DERIVED = "derived"  # a column read off another one (tabular.dependencies), not modelled
NUMERIC_KINDS = (CONTINUOUS, DATETIME)  # modelled as one real number each
# Metadata spellings accepted (CTGAN/SDGym's adult.json list, SDV's sdtypes) -> our five kinds.
_ALIASES = {
    "continuous": CONTINUOUS, "numerical": CONTINUOUS, "numeric": CONTINUOUS, "integer": CONTINUOUS, "float": CONTINUOUS,
    "categorical": CATEGORICAL, "ordinal": CATEGORICAL, "discrete": CATEGORICAL,
    "boolean": BOOLEAN, "bool": BOOLEAN, "id": ID, "datetime": DATETIME, "date": DATETIME, "timestamp": DATETIME,
}
MAX_INT_CATEGORIES = 20  # integer columns with at most this many distinct values are inferred categorical


def require_pandas():
    """pandas, or a DataError saying how to install it."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency of the tabular feature
        raise DataError("synthetic tables need pandas: pip install pandas") from None
    return pd


def read_metadata(source: str | Path | dict) -> dict[str, str]:
    """{column: kind} from a JSON file or dict: ``{"columns": [{"name", "type"}]}`` or SDV's
    ``{"columns": {name: {"sdtype": ...}}}``."""
    return read_column_metadata(source)[0]


def read_column_metadata(source: str | Path | dict) -> tuple[dict[str, str], dict[str, str]]:
    """({column: kind}, {column: strftime format}) from metadata as :func:`read_metadata` reads it;
    formats come from a datetime column's ``datetime_format`` (SDV) or ``format`` key."""
    if not isinstance(source, dict):
        try:
            source = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"cannot read metadata {str(source)!r}: {type(exc).__name__}") from None
    columns = source.get("columns") if isinstance(source, dict) else None
    if isinstance(columns, dict):
        columns = [{**(v or {}), "name": k, "type": (v or {}).get("sdtype", (v or {}).get("type"))} for k, v in columns.items()]
    if not isinstance(columns, list) or not all(isinstance(e, dict) for e in columns):
        raise DataError("metadata must hold 'columns': a list of {name, type} or a mapping name -> {sdtype}")
    kinds, formats = {}, {}
    for entry in columns:
        name, kind = entry.get("name"), str(entry.get("type", "")).lower()
        if kind not in _ALIASES:
            raise DataError(f"metadata: column {name!r} has unknown type {kind!r}; use {', '.join(sorted(set(_ALIASES)))}")
        kinds[str(name)] = _ALIASES[kind]
        fmt = entry.get("datetime_format", entry.get("format"))
        if fmt is not None:
            if kinds[str(name)] != DATETIME or not isinstance(fmt, str) or "%" not in fmt:
                raise DataError(f"metadata: column {name!r} has format {fmt!r}; formats are strftime "
                                "patterns such as '%Y-%m-%d' and belong to datetime columns")
            formats[str(name)] = fmt
    return kinds, formats


def guess_date_format(series) -> Optional[str]:
    """The strftime format of a text column whose every value is a date (with at least a year and a
    month or day, so codes such as '2020' or '12' stay categorical), else None."""
    pd = require_pandas()
    from pandas.tseries.api import guess_datetime_format

    values = series.dropna()
    if not len(values) or not all(isinstance(v, str) for v in values.iloc[:100]):
        return None
    import warnings

    with warnings.catch_warnings():  # pandas warns when a guessed format puts the day first
        warnings.simplefilter("ignore", UserWarning)
        guesses = [guess_datetime_format(str(values.iloc[0]), dayfirst=first) for first in (False, True)]
    for fmt in dict.fromkeys(guesses):  # month first, then day first (the same format once)
        if fmt is None or not any(c in fmt for c in ("%Y", "%y")) or not any(c in fmt for c in ("%m", "%b", "%B", "%d")):
            continue
        try:
            if not pd.to_datetime(values, format=fmt, errors="coerce").isna().any():
                return fmt
        except (TypeError, ValueError):
            continue
    return None


def infer_kind(series) -> str:
    """The kind of a column from its values, when metadata does not name it."""
    pd = require_pandas()
    values = series.dropna()
    if pd.api.types.is_datetime64_any_dtype(series):
        return DATETIME
    if pd.api.types.is_bool_dtype(series) or (len(values) and set(values.unique()) <= {True, False} and values.dtype == object):
        return BOOLEAN
    if pd.api.types.is_numeric_dtype(series):
        integral = len(values) > 0 and bool(np.all(np.mod(values.to_numpy(dtype=float), 1) == 0))
        if integral and values.nunique() <= MAX_INT_CATEGORIES:
            return CATEGORICAL
        return CONTINUOUS
    if guess_date_format(series) is not None:
        return DATETIME
    return CATEGORICAL
