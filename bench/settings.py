"""``--set KEY=VALUE`` options of the bench scripts, as keyword arguments (shared by anomaly.py and tabular.py)."""

from __future__ import annotations

import json


def parse_set(items: list[str] | None) -> dict:
    """``["trim=0.1", "hidden=[64,64]", "method=nll"]`` -> ``{"trim": 0.1, "hidden": [64, 64], "method": "nll"}``:
    each VALUE read as JSON where it parses (numbers, lists, true/false/null), else kept as text."""
    options = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--set {item!r} is not of the form key=value")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value.strip()
    return options
