"""Single-fit pilots for one-class Fashion-MNIST on validation splits of the training images (no test image is read).

    python bench/anomaly_fashion_pilot.py DIGIT [--arch mlp|conv] [--latent 20] [--hidden 512] [--beta 1] [--epochs 100]

One VAE fitted as one member of VAEAnomalyDetector() fits images kept as pixels (gaussian-learned likelihood, scale
floor 0.1, trim 0.1, batch 128, seed 0) on the 80% split of bench/anomaly_why.py; printed: the AUROC of the one-draw
ELBO score with 16 draws (the detector's default score) and, as probes, of scores read from the latent space (the
KL term alone, the squared error of the decoded posterior mean, the Mahalanobis distance and the mean distance to
the 5 nearest training codes, the squared norm of the posterior mean). Use it to screen a change on the hardest
classes (shirt 6, bag 8, pullover 2, coat 4) before a full three-seed arm of bench/anomaly_why.py.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from anomaly import ADBENCH  # bench/anomaly.py: where the image sets live
from anomaly_why import split
from sklearn.covariance import EmpiricalCovariance
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from vaekit.apps.anomaly import IMAGE_SCALE_FLOOR, score_examples
from vaekit.config import Config
from vaekit.core.models import VAE
from vaekit.data.idx import load_mnist_family
from vaekit.data.splits import DataSplits
from vaekit.training.loop import train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("digit", type=int)
    p.add_argument("--arch", choices=("mlp", "conv"), default="mlp")
    p.add_argument("--latent", type=int, default=20)
    p.add_argument("--hidden", default="512", help="comma-separated widths")
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(1)
    raw = load_mnist_family(ADBENCH.parents[1], "fashion-mnist", download=False)
    images, labels = raw["train_images"].reshape(-1, 784).astype(np.float32) / 255.0, raw["train_labels"]
    x_fit, x_val, y_val = split(images, labels, a.digit)
    cfg = Config()
    cfg.model.arch, cfg.model.latent_dim = a.arch, a.latent
    cfg.model.hidden = tuple(int(h) for h in a.hidden.split(","))
    cfg.model.likelihood, cfg.model.scale_floor = "gaussian-learned", IMAGE_SCALE_FLOOR
    t = cfg.training
    t.epochs, t.batch_size, t.seed, t.beta, t.trim = a.epochs, 128, a.seed, a.beta, 0.1
    t.device, t.progress, t.verbose, t.early_stopping = "cpu", False, False, 0
    cfg.data.binarize = "none"
    cfg.validate()
    shape = (1, 28, 28) if a.arch == "conv" else (784,)
    xs = torch.from_numpy(x_fit).reshape(-1, *shape)
    data = DataSplits(name="array", kind="image" if a.arch == "conv" else "table", shape=shape, train=xs,
                      val=xs[:1024], test=xs[:0], train_labels=None, val_labels=None, test_labels=None, binary=False,
                      num_classes=0, class_names=None, preprocessing={})
    torch.manual_seed(a.seed)
    model = VAE(cfg.model, shape)
    started = time.perf_counter()
    train(model, data, cfg)
    fit_s = time.perf_counter() - started
    model = model.double().eval()
    xv = torch.from_numpy(x_val).double().reshape(-1, *shape)
    elbo = score_examples(model, xv, method="elbo", num_samples=16, seed=a.seed).numpy()
    with torch.no_grad():
        q = model.encode(xv)
        codes = q.mean.numpy()
        fit_codes = model.encode(torch.from_numpy(x_fit).double().reshape(-1, *shape)).mean.numpy()
        probes = {"kl": q.kl().numpy(), "recon": ((model.decode(q.mean).mean - xv) ** 2).flatten(1).sum(-1).numpy()}
    probes["mahalanobis"] = EmpiricalCovariance().fit(fit_codes).mahalanobis(codes)
    probes["knn5"] = NearestNeighbors(n_neighbors=5).fit(fit_codes).kneighbors(codes)[0].mean(1)
    probes["|mu|^2"] = (codes ** 2).sum(1)
    print(f"digit {a.digit} arch {a.arch} z {a.latent} hidden {cfg.model.hidden} beta {a.beta} epochs {a.epochs} "
          f"seed {a.seed}: ELBO AUROC {100 * roc_auc_score(y_val, elbo):.2f}, fit {fit_s:.0f} s; probes: "
          + ", ".join(f"{k} {100 * roc_auc_score(y_val, v):.2f}" for k, v in probes.items()), flush=True)


if __name__ == "__main__":
    main()
