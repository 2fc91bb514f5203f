"""The epoch's running sums, kept on the device, and the check that the loss stays finite.

The loop never waits for the host except every :data:`CHECK_EVERY` steps, when it looks at the
sums for NaN/inf; a NaN found then is located at its exact step from a window of the last steps.
"""

from __future__ import annotations

import math

import torch

from vaekit.errors import TrainingError
from vaekit.training import distributed

# How often (in optimiser steps) the loop looks at the running sums for NaN/inf. Looking means a
# host synchronisation; the sums carry a NaN forward, so none is missed. Each step's (recon, kl,
# loss) also goes into a device-side window of this many rows, so a NaN found at a look is located
# at its exact step. On the CPU each look costs ~10 us of op overhead, on a GPU a pipeline stall.
CHECK_EVERY = 50


class EpochSums:
    """Sums of recon, kl and loss (each times the batch size) over an epoch's steps, on ``device``."""

    def __init__(self, device: torch.device, first_step: int):
        self.sums = torch.zeros(3, device=device)
        self.window = torch.zeros(CHECK_EVERY, 3, device=device)
        self.seen, self.checked = 0, first_step  # examples added; the last step looked at

    def add(self, terms: dict[str, torch.Tensor], n: int, step: int) -> bool:
        """Add step ``step``'s terms (counted from 1) for ``n`` examples; True when this step was a look."""
        values = self.window[step % CHECK_EVERY]  # written in place: one op fewer per step than stack, then copy
        torch.stack([terms["recon"].detach(), terms["kl"].detach(), terms["loss"].detach()], out=values)
        self.sums.add_(values, alpha=n)
        self.seen += n
        if step % CHECK_EVERY:
            return False
        if not torch.isfinite(self.sums).all():  # a NaN since the last look stays in the sums
            check_finite(self.window, self.checked + 1, step)
        self.checked = step
        return True

    def means(self) -> tuple[float, float, float]:
        """(recon, kl, loss) per example so far, on this rank."""
        recon, kl, loss = (self.sums / max(self.seen, 1)).tolist()
        return recon, kl, loss

    def total(self, step: int, epoch: int) -> tuple[float, float, float, int]:
        """(recon, kl, loss) per example over the epoch on every rank, and the examples seen; a
        TrainingError naming the step when a term is not finite."""
        both = distributed.all_reduce_sum(torch.cat([self.sums, self.sums.new_tensor([self.seen])]))
        recon, kl, loss, seen = both.tolist()
        recon, kl, loss = (v / max(seen, 1) for v in (recon, kl, loss))
        if not all(map(math.isfinite, (loss, recon, kl))):
            check_finite(self.window, self.checked + 1, step)
            raise TrainingError(f"the training loss became {loss} on another process in epoch {epoch}; "
                                "lower training.lr or keep training.grad_clip on")
        return recon, kl, loss, int(seen)


def check_finite(window: torch.Tensor, first_step: int, last_step: int) -> None:
    """Raise a TrainingError naming the first step in ``first_step..last_step`` whose terms were
    not finite, and which terms; ``window[s % CHECK_EVERY]`` holds step s's (recon, kl, loss)."""
    for s in range(first_step, last_step + 1):
        row = window[s % CHECK_EVERY]
        if torch.isfinite(row).all():
            continue
        terms = dict(zip(("recon", "kl", "loss"), row.tolist()))
        bad = [k for k in ("recon", "kl") if not math.isfinite(terms[k])] or ["loss"]
        raise TrainingError(
            f"the {' and '.join(bad)} term became {terms[bad[0]]} at step {s}; "
            "lower training.lr, keep training.grad_clip on, or use a Gaussian likelihood with a larger scale_floor"
        )
