"""What a user's ``conditions`` ({column: value}) mean for the tabular model.

Conditioning is a CVAE's (Sohn et al. 2015) with CTGAN's per-column condition vector (Xu et al.
2019): the model's ``y`` holds one one-hot block per categorical column, all zeros where the
column is not given. :func:`condition_vector` sets the requested columns' blocks, so conditions
shape the whole row through the model; :func:`set_conditioned_columns` then gives the
conditioned columns exactly the requested values in the sampled rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vaekit.apps.tabular.dependencies import value_key
from vaekit.apps.tabular.transform import TableTransformer
from vaekit.apps.tabular.types import BOOLEAN, CATEGORICAL, DERIVED
from vaekit.apps.tabular.values import same_value
from vaekit.errors import DataError


def condition_vector(transformer: TableTransformer, cond_dim: int,
                     conditions: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
    """(y of shape (1, cond_dim), {categorical column: its stored value}) for ``conditions``."""
    y = torch.zeros(1, cond_dim)
    fixed: dict[str, Any] = {}
    offset0 = transformer.width - cond_dim
    names = {c["name"]: c for c in transformer.columns_}
    for name, value in conditions.items():
        if name not in names:
            raise DataError(f"conditions name {name!r}, which is not a column of the fitted table")
        if names[name]["kind"] == DERIVED:  # read off its parent: condition on the parent's value
            name, value = parent_condition(names[name], value)
        if names[name]["kind"] not in (CATEGORICAL, BOOLEAN):
            raise DataError(f"conditions on {name!r} ({names[name]['kind']}) are not supported; "
                            "condition on categorical or boolean columns")
        start, spec = transformer.cat_offset(name)
        i = transformer.category_index(spec, value)
        if fixed.get(name, spec["categories"][i]) != spec["categories"][i]:
            raise DataError(f"the conditions ask for two values of {name!r} ({fixed[name]!r} and {spec['categories'][i]!r})")
        y[0, start - offset0 + i] = 1.0
        fixed[name] = spec["categories"][i]
    return y, fixed


def parent_condition(spec: dict, value: Any) -> tuple[str, Any]:
    """(parent, parent value) standing for ``spec[name] == value`` on a derived column."""
    parents = [p for p, c in spec["mapping"] if value_key(c) == value_key(value) or same_value(c, value)]
    if len(parents) != 1:
        seen = "was never seen" if not parents else f"comes with {len(parents)} values of {spec['parent']!r}"
        raise DataError(f"{value!r} in column {spec['name']!r} {seen}; {spec['name']!r} is read off "
                        f"{spec['parent']!r}, so condition on {spec['parent']!r} instead")
    return spec["parent"], parents[0]


def set_conditioned_columns(rows: np.ndarray, transformer: TableTransformer, fixed: dict[str, Any]) -> None:
    """Give each conditioned column of the transformed ``rows`` (in place) its requested value."""
    for name, value in fixed.items():
        start, spec = transformer.cat_offset(name)
        block = rows[:, start : start + len(spec["categories"])]
        block[:] = 0.0
        block[:, spec["categories"].index(value)] = 1.0
