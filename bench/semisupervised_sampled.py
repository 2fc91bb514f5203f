"""M2 on M1's posterior means against M2 on codes drawn from M1's posterior (validation images only).

    VAEKIT_DATA_DIR=/work/shared/datasets OMP_NUM_THREADS=1 python bench/semisupervised_sampled.py m1 --cache codes.npz
    ... python bench/semisupervised_sampled.py m2 --cache codes.npz --draws 0 --epochs 20   # the means
    ... python bench/semisupervised_sampled.py m2 --cache codes.npz --draws 10 --epochs 6   # ten draws per image

``m1`` trains bench/semisupervised.py's MLP M1 (one hidden layer of 500, z 50, 30 epochs, dynamic binarisation)
and caches the posterior means and log-variances of every split. ``m2`` trains M2 (the chosen setting of
bench/semisupervised.py, ``--epochs`` passes) with the seed-0 draw of 100 labels, on the means (``--draws 0``) or
on ``--draws`` codes per image drawn once from M1's posterior (every unlabelled and labelled image repeated with
its draws), and prints the error on the validation images' means. Results: bench/results/semisupervised.md.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from semisupervised import SETTINGS, fit_m1, m2_error  # beside this script
from vaekit.data.splits import draw_labelled
from vaekit.training.setup import eval_inputs


def m1(cache: str) -> None:
    model, data, cfg, _, seconds = fit_m1()
    print(f"M1 trained in {seconds:.0f} s", flush=True)
    out = {}
    with torch.no_grad():
        for split in ("train", "val", "test"):
            x = eval_inputs(data, split, cfg)
            q = [model.encode(x[i:i + 1000]) for i in range(0, len(x), 1000)]
            out[split] = torch.cat([p.mean for p in q]).numpy()
            out[f"{split}_logvar"] = torch.cat([p.logvar for p in q]).numpy()
            out[f"{split}_labels"] = getattr(data, f"{split}_labels").numpy()
    np.savez(cache, **out)


def m2(cache: str, draws: int, epochs: int) -> None:
    z = np.load(cache)
    x, labels = z["train"], z["train_labels"]
    picked = draw_labelled(labels, 100, 10, 0)
    if draws:  # every image repeated with its draws; the labelled ones keep their label in each copy
        rng = np.random.default_rng(0)
        std = np.exp(0.5 * z["train_logvar"])
        x = np.concatenate([z["train"] + std * rng.standard_normal(std.shape) for _ in range(draws)])
        picked = np.concatenate([picked + k * len(labels) for k in range(draws)])
        labels = np.tile(labels, draws)
    error, seconds = m2_error(x.astype(np.float32), labels, picked, z["val"], z["val_labels"],
                              {**SETTINGS["chosen"], "epochs": epochs})
    print(json.dumps({"draws": draws, "epochs": epochs, "val_error_%": round(100 * error, 2), "seconds": round(seconds)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("phase", choices=["m1", "m2"])
    p.add_argument("--cache", default="runs/m1-codes-logvar.npz")
    p.add_argument("--draws", type=int, default=0)
    p.add_argument("--epochs", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(1)
    m1(args.cache) if args.phase == "m1" else m2(args.cache, args.draws, args.epochs)


if __name__ == "__main__":
    main()
