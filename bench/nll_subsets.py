"""Why a log-likelihood on the first test images is not one on all of them: ink per test subset.

Prints, for statically binarised MNIST (Larochelle's test file) and for MNIST's test images under
dynamic binarisation, the mean number of "on" pixels (expected, for dynamic) among the first 500,
the first 1000 and all 10000 test images. A Bernoulli model's -log p(x) grows with the ink of x
(every on pixel costs nats), so a subset with more ink than the whole set reads worse.

    python bench/nll_subsets.py        # needs VAEKIT_DATA_DIR (or ../shared/datasets) with both sets
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from vaekit.data.idx import load_binarized_mnist, load_mnist_family

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VAEKIT_DATA_DIR", ROOT.parent / "shared" / "datasets"))
SUBSETS = (500, 1000, 10000)


def ink(x: np.ndarray) -> list[float]:
    """Mean on pixels per image among the first n, for each n of SUBSETS."""
    per_image = x.reshape(len(x), -1).sum(axis=1)
    return [float(per_image[:n].mean()) for n in SUBSETS]


def main() -> None:
    static = load_binarized_mnist(DATA, download=False)["test"].astype(np.float64)
    dynamic = load_mnist_family(DATA, "mnist", download=False)["test_images"].astype(np.float64) / 255.0
    print("| test set | first 500 | first 1000 | all 10000 |")
    print("| --- | ---: | ---: | ---: |")
    for name, x in (("static (Larochelle), on pixels", static), ("MNIST, dynamic: expected on pixels", dynamic)):
        print(f"| {name} | " + " | ".join(f"{v:.1f}" for v in ink(x)) + " |")


if __name__ == "__main__":
    sys.exit(main())
