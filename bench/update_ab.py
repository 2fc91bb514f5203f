"""The optimiser update of a step, side by side: ``optimizer.zero_grad`` + ``optimizer.step()`` against
vaekit's :class:`vaekit.training.update.Update` (the same fused Adam kernel, its lists built once), in
vaekit's own training step on the default MNIST model (784-400-20 MLP, dynamic binarisation, batch 128,
the default precision). Both arms share one model, optimiser and batch stream and alternate in blocks
of 25 steps, so a slow spell of a shared host hits both; the block medians are compared pairwise.

    VAEKIT_DATA_DIR=/work/shared/datasets python bench/update_ab.py [--passes 4]
Writes bench/results/update_ab.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

import vaekit
from vaekit.data import load_dataset
from vaekit.data.batching import Batches
from vaekit.training.runtime import runtime_for
from vaekit.training.setup import resolve_config
from vaekit.training.step import objective_for, step

from settings import machine  # bench/settings.py, beside this script
from throughput import vaekit_config

BLOCK = 25


class PlainUpdate:
    """What the step did before: the optimiser's own zero_grad and step()."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    def clear(self):
        self.optimizer.zero_grad(set_to_none=True)

    def apply(self):
        self.optimizer.step()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--passes", type=int, default=4, help="passes over the training split (the first is warm-up)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "update_ab.md"))
    args = p.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cfg = vaekit_config()
    data = load_dataset(cfg.data)
    resolve_config(cfg, data)
    torch.manual_seed(0)
    model = vaekit.VAE(cfg.model, data.shape)
    rt = runtime_for(model, cfg.training, data.kind)
    g = torch.Generator().manual_seed(0)
    batches = Batches(data.train, None, cfg.training.batch_size, shuffle=True, binarize=True, generator=g)
    objective = objective_for(model, cfg.training, args.passes * len(batches), batches, rt.matmul_dtype)
    arms = {"optimizer.step()": PlainUpdate(rt.optimizer), "Update": rt.update}
    blocks: dict[str, list[float]] = {k: [] for k in arms}
    number = 0
    for pass_index in range(args.passes):
        it, done = iter(batches), False
        while not done:
            for name, update in arms.items():
                rt.update, times = update, []
                for _ in range(BLOCK):
                    try:
                        x, y = next(it)
                    except StopIteration:
                        done = True
                        break
                    t = time.perf_counter()
                    step(objective, x, y, g, 1.0, number, rt)
                    times.append(time.perf_counter() - t)
                    number += 1
                if pass_index > 0 and len(times) == BLOCK:
                    blocks[name].append(statistics.median(times))
    a, b = (blocks[k] for k in arms)
    pairs = [x / y for x, y in zip(a, b)]
    q1, _, q3 = statistics.quantiles(pairs, n=4)
    lines = [
        "# The optimiser update inside vaekit's step: optimizer.step() against training/update.py",
        "",
        f"Machine: {machine()}. Run {started}, `python bench/update_ab.py --passes {args.passes}` "
        f"(first pass warm-up; {len(pairs)} pairs of {BLOCK}-step blocks).",
        "",
        "| arm | median of block medians, ms per step |",
        "| --- | ---: |",
        *(f"| {k} | {statistics.median(v) * 1e3:.3f} |" for k, v in blocks.items()),
        "",
        f"Pairwise ratio (optimizer.step() / Update), median over pairs: {statistics.median(pairs):.3f} "
        f"(quartiles {q1:.3f}, {q3:.3f}); "
        f"Update faster in {sum(r > 1 for r in pairs)} of {len(pairs)} pairs.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
