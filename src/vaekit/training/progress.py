"""What a run shows while it trains: a progress bar on a terminal, and a line per epoch.

The bar is drawn only when stderr is a terminal (in a log file its ``\\r`` redraws would pile up
to hundreds of kB), and only with ``training.progress``. The epoch lines go to stdout with or
without the bar, one per epoch up to 20 epochs, then about 20 in all (the first, every n-th, the
last and the early-stopping epoch), like Keras' ``verbose=2``; ``training.verbose=false`` silences
both. metrics.jsonl holds every epoch either way.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from tqdm.auto import tqdm


class Progress:
    def __init__(self, t, first_epoch: int, steps_per_epoch: int, main: bool):
        self.lines = bool(getattr(t, "verbose", True)) and main
        bar = self.lines and t.progress and sys.stderr.isatty()
        self.bar = tqdm(total=(t.epochs - first_epoch) * steps_per_epoch, disable=not bar, unit="batch",
                        dynamic_ncols=True)
        self.shows_bar = bar
        self.first, self.epochs = first_epoch, t.epochs
        self.schedule = getattr(t, "lr_schedule", "constant")
        self.every = max(1, math.ceil((t.epochs - first_epoch) / 20))

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()

    def start_epoch(self, epoch: int) -> None:
        self.bar.set_description(f"epoch {epoch + 1}/{self.epochs}")

    def update(self, means=None) -> None:
        """One step done; ``means`` (recon, kl, loss so far) when the loop has them at hand."""
        if means is not None and self.shows_bar:
            recon, kl, loss = means
            self.bar.set_postfix(loss=f"{loss:.2f}", recon=f"{recon:.2f}", kl=f"{kl:.2f}", refresh=False)
        self.bar.update(1)

    def end_epoch(self, record: dict[str, Any], stopping: bool) -> None:
        epoch = record["epoch"]
        if not self.lines or not (epoch == self.first + 1 or epoch % self.every == 0 or epoch == self.epochs or stopping):
            return
        val = f"  val loss {record['val_loss']:8.3f}" if "val_loss" in record else ""
        if "val_error" in record:  # a model with a classifier (M2): its validation error
            val += f"  val error {record['val_error']:6.2%}"
        if self.schedule != "constant":  # where the rate is on its curve
            val += f"  lr {record['lr']:.2e}"
        self.say(f"epoch {epoch:>3}  train loss {record['train_loss']:8.3f} (recon {record['train_recon']:8.3f}, "
                 f"kl {record['train_kl']:7.3f}){val}  {record['samples_per_s']:,.0f} samples/s")

    def say(self, line: str) -> None:
        if self.lines:
            self.bar.write(line, file=sys.stdout)
            sys.stdout.flush()
