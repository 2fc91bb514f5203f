"""The learning rate at each optimiser step: constant, or a half cosine from ``lr`` down to 0 over
the run's steps (Loshchilov & Hutter 2017, without restarts). A pure function of the step, so a
resumed run continues on the same curve with nothing more saved."""

from __future__ import annotations

import math

__all__ = ["lr_at"]


def lr_at(step: int, lr: float, schedule: str, total_steps: int) -> float:
    """Learning rate for optimiser step ``step`` (counted from 0) of a run of ``total_steps``."""
    if schedule == "constant" or total_steps <= 0:
        return lr
    if schedule == "cosine":
        done = min(max(step, 0), total_steps) / total_steps
        return 0.5 * lr * (1.0 + math.cos(math.pi * done))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}")
