"""Helpers shared by the bench scripts: ``--set KEY=VALUE`` options as keyword arguments (anomaly.py,
tabular.py) and the description of the machine a result was measured on (every script)."""

from __future__ import annotations

import json
import os
import platform


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def machine() -> str:
    """One line: the CPU, the cores, torch's version and threads, Python's version."""
    import torch

    return (f"{cpu_name()}, {os.cpu_count()} cores visible, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}")


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
