"""Columns that are a function of a categorical column, found in the training table.

Tables often hold the same fact twice: Adult's ``education-num`` is a code for ``education``
(16 values each, one to one), a product code has its label, a region its country. A decoder
that draws the columns independently given z breaks such pairs (in many synthetic Adult rows
before this: bench/results/tabular-adult-validation.md, second and fourth rounds), which costs
the pair-trend score and every model trained on the rows. A column that is constant within each value of a
categorical column of the training table is therefore not modelled: it is read off its parent
when rows are decoded, so the pair holds in every synthetic row and the model has one column
less to learn (SDV calls the user-declared version of this a FixedCombinations constraint).

A parent must hold at most one value per ``MIN_ROWS_PER_VALUE`` rows on average: with many
rare values (an identifier, say) every column would look like a function of it by chance.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import numpy as np
import pandas as pd

MIN_ROWS_PER_VALUE = 20
SCREEN_ROWS = 2000  # rows on which a pair is tried first


def _codes(series) -> tuple[np.ndarray, list]:
    """Integer codes of a column's values, a missing value being a value of its own, and the values."""
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    return codes, list(uniques)


def find_derived(df, parents: Iterable[str], children: Iterable[str]) -> dict[str, tuple[str, list]]:
    """{child: (parent, [(parent value, child value), ...])} for each column of ``children`` that
    takes one value per value of a column of ``parents`` in ``df``.

    Columns are looked at from the last to the first, so of two columns that determine each
    other the earlier one is kept; a derived column is never a parent, and a parent is never
    derived. A column with a single value is left alone (the transform handles it as it is).
    """
    parents, n = [str(p) for p in parents], len(df)
    coded = {p: _codes(df[p]) for p in parents}
    coded = {p: c for p, c in coded.items() if 1 < len(c[1]) <= n / MIN_ROWS_PER_VALUE}
    derived: dict[str, tuple[str, list]] = {}
    used: set[str] = set()
    for child in reversed([str(c) for c in children]):
        if child in used:
            continue
        child_codes, child_values = _codes(df[child])
        if len(child_values) < 2:
            continue
        for parent, (codes, values) in coded.items():
            if parent == child or parent in derived or len(values) < len(child_values):
                continue
            if _child_of(codes[:SCREEN_ROWS], child_codes[:SCREEN_ROWS], len(values)) is None:
                continue  # most pairs fail on the first rows: the full check is for the rest
            child_of = _child_of(codes, child_codes, len(values))
            if child_of is None:
                continue
            derived[child] = (parent, [(values[i], child_values[c]) for i, c in enumerate(child_of)])
            used.add(parent)
            break
    return derived



def _child_of(parent_codes: np.ndarray, child_codes: np.ndarray, n_values: int) -> Optional[np.ndarray]:
    """The child code of each parent code (-1 for a code absent from these rows) if every parent
    code meets a single child code, else None (O(rows), no sorting)."""
    child_of = np.full(n_values, -1)
    child_of[parent_codes] = child_codes  # one of each parent value's child codes
    return child_of if np.array_equal(child_of[parent_codes], child_codes) else None


def derive(parent_values, mapping: list[tuple[Any, Any]]) -> np.ndarray:
    """The child column's values (object array) for the given parent values, by ``mapping``."""
    table = {value_key(p): c for p, c in mapping}
    return np.array([table.get(value_key(v)) for v in parent_values], dtype=object)


def value_key(v: Any) -> Any:
    """One key for every spelling of a missing value, and numbers compared by value."""
    if v is None or (isinstance(v, float) and v != v) or v is pd.NA or v is pd.NaT:
        return None
    return v.item() if isinstance(v, np.generic) else v
