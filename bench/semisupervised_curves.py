"""Validation error by epoch of semi-supervised runs (their metrics.jsonl), one line per run, as a PNG.

    python bench/semisupervised_curves.py --out bench/results/semisupervised_sdgm.png LABEL=RUN [LABEL=RUN ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from vaekit.runs.folder import read_metrics  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", metavar="LABEL=RUN")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for item in args.runs:
        label, _, run = item.partition("=")
        history = [r for r in read_metrics(Path(run)) if r.get("val_error") is not None]
        ax.plot([r["epoch"] for r in history], [100 * r["val_error"] for r in history], label=label)
    ax.set(xlabel="epoch", ylabel="validation error, % (6,000 images)", yscale="log",
           title="MNIST, 100 labels: classifier error on the validation images")
    ax.set_yticks([1, 2, 3, 5, 10, 20, 30], labels=["1", "2", "3", "5", "10", "20", "30"])
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.axhline(2.5, color="grey", linestyle=":", linewidth=1)  # the goal at 100 labels
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
