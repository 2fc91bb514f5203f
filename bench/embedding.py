"""Embeddings: k-NN accuracy on MNIST from vaekit.VAETransformer's posterior means vs PCA of the same size.

    python bench/embedding.py [--train 10000] [--epochs 20]

Both embeddings are fit on the first --train MNIST training images (pixels in [0, 1]); a 5-NN
classifier is fit on those embeddings and scored on all 10000 test images. Writes
bench/results/embedding.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from vaekit import VAETransformer  # noqa: E402
from vaekit.data.idx import load_mnist_family  # noqa: E402

from settings import machine  # noqa: E402  (bench/settings.py, beside this script)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--train", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    raw = load_mnist_family(Path(os.environ.get("VAEKIT_DATA_DIR", ROOT.parent / "shared" / "datasets")), "mnist", download=False)
    xtr = raw["train_images"][: args.train].reshape(-1, 784).astype(np.float64) / 255.0
    ytr = raw["train_labels"][: args.train]
    xte = raw["test_images"].reshape(-1, 784).astype(np.float64) / 255.0
    yte = raw["test_labels"]
    rows = []
    for dim in (2, 10, 20):
        result = {}
        for name, make in (
            ("vaekit", lambda: VAETransformer(latent_dim=dim, hidden=(400,), likelihood="bernoulli", standardize=False,
                                              epochs=args.epochs, random_state=0)),
            ("PCA", lambda: PCA(n_components=dim, random_state=0)),
        ):
            started = time.perf_counter()
            emb = make().fit(xtr)
            knn = KNeighborsClassifier(5).fit(emb.transform(xtr), ytr)
            result[name] = (knn.score(emb.transform(xte), yte), time.perf_counter() - started)
        rows.append((dim, result))
        print(dim, result, flush=True)
    lines = ["# k-NN (k=5) accuracy on MNIST test images from embeddings", "", f"Machine: {machine()}", "",
             f"Embeddings fit on the first {args.train} training images (pixels in [0, 1]); 5-NN fit on their embeddings, "
             f"scored on the 10000 test images. vaekit: VAETransformer(latent_dim=d, hidden=(400,), likelihood='bernoulli', "
             f"standardize=False, epochs={args.epochs}, random_state=0), posterior means. PCA: sklearn PCA(n_components=d).", "",
             "| dim | vaekit accuracy | PCA accuracy | vaekit - PCA | vaekit fit s | PCA fit s |", "| --- | --- | --- | --- | --- | --- |"]
    for dim, r in rows:
        lines.append(f"| {dim} | {r['vaekit'][0]:.4f} | {r['PCA'][0]:.4f} | {r['vaekit'][0] - r['PCA'][0]:+.4f} | "
                     f"{r['vaekit'][1]:.1f} | {r['PCA'][1]:.1f} |")
    text = "\n".join(lines) + "\n"
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "embedding.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
