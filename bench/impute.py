"""Completion: vaekit.impute beside mean imputation, KNNImputer and IterativeImputer, in one process.

    python bench/impute.py [--parts mnist,credit] [--mnist-epochs 30] [--mnist-test 1000]
                           [--knn-fit 10000] [--iterative-fit 5000] [--iters 50]

mnist: a VAE (``vaekit train --data mnist``: 784-400-20 MLP, Bernoulli likelihood, dynamic
binarisation) fit on the training images; the first --mnist-test test images with their bottom
half (rows 14-27) hidden; error on the hidden pixels in [0, 1] (the 0-255 grey levels / 255).
KNNImputer and IterativeImputer are fit on the first --knn-fit / --iterative-fit training images
(784 columns make them slow on all 60000); every method fills the same test images.

credit: UCI "default of credit card clients" (30000 x 23 features; the ID and the target column
dropped), a random 80/20 row split (seed 0), columns standardised with the training rows' mean and
std; 10%, 30%, 50% of the test cells hidden uniformly at random (seed 0); error on the hidden cells
in standardised units (MSE of a column = its mean squared error / its training variance). The VAE
is vaekit.VAETransformer(latent_dim=8, hidden=(128,), epochs=80), fit on the standardised training rows.

The VAEs' sizes (30 MNIST epochs instead of 10; latent 8 and hidden 128 for credit instead of
VAETransformer's size-based latent 2 and hidden 46, 80 epochs) were chosen on rows this script
does not score: MNIST test images 9000-9499 (10 epochs: 0.0462, 30: 0.0451, KNNImputer 0.0456),
and credit training rows 20000-23999 with 30% hidden, the VAE fit on the first 20000 (size-based
defaults 0.5297, latent 8 / hidden 128 0.4271, with 80 epochs 0.4071; KNNImputer 0.4749).

Every method is fit on complete training data and fills the test rows. Writes bench/results/impute.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
import vaekit  # noqa: E402
from vaekit.data.idx import load_mnist_family  # noqa: E402
from vaekit.apps.impute_methods import FIT_STEPS, PROPOSAL_WIDEN  # noqa: E402
from vaekit.runs.folder import read_metrics  # noqa: E402

from settings import machine  # noqa: E402  (bench/settings.py, beside this script)

DATA_DIR = Path(os.environ.get("VAEKIT_DATA_DIR", ROOT.parent / "shared" / "datasets"))
CREDIT = DATA_DIR / "tabular" / "credit-default" / "UCI_Credit_Card.csv"
CREDIT_VAE = {"latent_dim": 8, "hidden": (128,), "epochs": 80}  # chosen on unscored rows (see the docstring)


def timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def sklearn_fill(imputer, train: np.ndarray, holes: np.ndarray):
    """Fit on complete training rows, fill the NaN cells of ``holes``; (filled, seconds)."""
    return timed(lambda: imputer.fit(train).transform(holes))


METHODS = ("pseudo-gibbs", "metropolis", "importance")


def vaekit_fill(model, holes: np.ndarray, method: str, iters: int):
    # importance: 10 pseudo-Gibbs sweeps start the per-row proposal fit (FIT_STEPS), then 1000 weighted draws
    n_iter = 10 if method == "importance" else iters
    filled, seconds = timed(lambda: vaekit.impute(model, torch.from_numpy(holes), num_iter=n_iter, method=method, seed=0))
    return filled.double().numpy(), seconds


def _settings(method: str, args) -> str:
    return f"num_iter=10, fit_steps={FIT_STEPS}, num_samples=1000" if method == "importance" else f"num_iter={args.iters}"


def mse(filled: np.ndarray, truth: np.ndarray, hidden: np.ndarray) -> float:
    return float(((filled - truth)[hidden] ** 2).mean())


def run_mnist(args) -> tuple[list[str], list[tuple]]:
    os.environ.setdefault("VAEKIT_DATA_DIR", str(DATA_DIR))
    raw = load_mnist_family(DATA_DIR, "mnist", download=False)
    xtr = raw["train_images"].reshape(-1, 784).astype(np.float64) / 255.0
    xte = raw["test_images"][: args.mnist_test].reshape(-1, 784).astype(np.float64) / 255.0
    hidden = np.zeros((28, 28), dtype=bool)
    hidden[14:, :] = True
    hidden = np.broadcast_to(hidden.reshape(1, 784), xte.shape)
    holes = np.where(hidden, np.nan, xte)

    if args.mnist_run:
        run, train_s = Path(args.mnist_run), float("nan")
    else:
        cfg = vaekit.Config()
        cfg.data.name = "mnist"
        cfg.training.epochs = args.mnist_epochs
        cfg.training.progress = False
        run, train_s = timed(lambda: vaekit.train_run(cfg, out=Path(tempfile.mkdtemp(prefix="vaekit-impute-")) / "mnist"))
    model = vaekit.load(run)
    images = lambda a: a.reshape(-1, 1, 28, 28)  # noqa: E731  the model takes (N, 1, 28, 28)

    rows = []
    filled, s = sklearn_fill(SimpleImputer(strategy="mean"), xtr, holes)
    rows.append(("mean imputation (all 60000 training images)", mse(filled, xte, hidden), s))
    filled, s = sklearn_fill(KNNImputer(n_neighbors=5), xtr[: args.knn_fit], holes)
    rows.append((f"KNNImputer(n_neighbors=5), fit on {args.knn_fit} training images", mse(filled, xte, hidden), s))
    print(rows[-1], flush=True)
    filled, s = sklearn_fill(IterativeImputer(n_nearest_features=args.iterative_features, random_state=0),
                             xtr[: args.iterative_fit], holes)
    rows.append((f"IterativeImputer(BayesianRidge, n_nearest_features={args.iterative_features}, max_iter=10), "
                 f"fit on {args.iterative_fit} training images", mse(filled, xte, hidden), s))
    print(rows[-1], flush=True)
    for method in METHODS:
        filled, s = vaekit_fill(model, images(holes), method, args.iters)
        rows.append((f"vaekit.impute(method='{method}', {_settings(method, args)})", mse(filled.reshape(-1, 784), xte, hidden), s))
        print(rows[-1], flush=True)
    last = read_metrics(run)[-1]
    notes = [f"VAE: `vaekit train --data mnist --epochs {last['epoch']}` (784-400-20 MLP, Bernoulli, dynamic binarisation, "
             f"seed 0), final validation loss {last['val_loss']:.2f} nats per image"
             + ("" if np.isnan(train_s) else f", trained in {train_s:.0f} s") + "."]
    return notes, rows


def read_credit():
    with open(CREDIT, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        values = np.array([[float(v) for v in row] for row in reader])
    keep = [j for j, h in enumerate(header) if h not in ("ID", "default.payment.next.month")]
    return values[:, keep], [header[j] for j in keep]


def run_credit(args) -> tuple[list[str], list[tuple]]:
    x, columns = read_credit()
    order = np.random.default_rng(0).permutation(len(x))
    n_train = int(0.8 * len(x))
    train, test = x[order[:n_train]], x[order[n_train:]]
    mean, std = train.mean(0), train.std(0)
    train, test = (train - mean) / std, (test - mean) / std

    det, train_s = timed(lambda: vaekit.VAETransformer(random_state=0, **CREDIT_VAE).fit(train))
    model = det.model_  # the fitted VAE (float64, standardised inputs: standardize=True is a no-op here)
    rows = []
    for fraction in (0.1, 0.3, 0.5):
        hidden = np.random.default_rng(0).random(test.shape) < fraction
        holes = np.where(hidden, np.nan, test)
        holes_model = det.standardizer_.apply(holes)
        results = []
        for name, make in (("mean imputation", lambda: SimpleImputer(strategy="mean")),
                           ("KNNImputer(n_neighbors=5)", lambda: KNNImputer(n_neighbors=5)),
                           ("IterativeImputer(BayesianRidge, max_iter=10)", lambda: IterativeImputer(random_state=0))):
            filled, s = sklearn_fill(make(), train, holes)
            results.append((name, mse(filled, test, hidden), s))
        for method in METHODS:
            filled, s = vaekit_fill(model, holes_model, method, args.iters)
            filled = det.standardizer_.invert(filled)
            results.append((f"vaekit.impute(method='{method}', {_settings(method, args)})", mse(filled, test, hidden), s))
        for r in results:
            print(fraction, r, flush=True)
        rows.append((fraction, int(hidden.sum()), results))
    cfg = det.config_
    options = ", ".join(f"{k}={v}" for k, v in CREDIT_VAE.items())
    notes = [f"VAE: `vaekit.VAETransformer(random_state=0, {options})` (hidden {tuple(cfg['model']['hidden'])}, "
             f"latent_dim {cfg['model']['latent_dim']}, {cfg['training']['epochs']} epochs, gaussian-learned likelihood) fit on the "
             f"{n_train} standardised training rows in {train_s:.0f} s; columns: {', '.join(columns)}."]
    return notes, rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--parts", default="mnist,credit")
    p.add_argument("--mnist-epochs", type=int, default=30)
    p.add_argument("--mnist-run", default=None, help="use this trained mnist run instead of training one")
    p.add_argument("--mnist-test", type=int, default=1000)
    p.add_argument("--knn-fit", type=int, default=10000)
    p.add_argument("--iterative-fit", type=int, default=5000)
    p.add_argument("--iterative-features", type=int, default=100)
    p.add_argument("--iters", type=int, default=50)
    args = p.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    started = time.perf_counter()
    parts = args.parts.split(",")
    lines = ["# Completion: squared error of filled-in values", "", f"Machine: {machine()}", "",
             "Command: `python bench/impute.py " + " ".join(sys.argv[1:]) + "`" if len(sys.argv) > 1 else
             "Command: `python bench/impute.py`", "",
             "Every method is fit on complete training data and fills the same hidden cells of the same test rows; "
             "the error is measured on the hidden cells only. Seconds are fit + fill on 2 shared cores (jobs run one at a "
             "time). vaekit.impute: pseudo-Gibbs (Rezende et al. 2014: z ~ q(z|x), missing cells <- E[x_m|z], repeat; the "
             "last iterate) and Metropolis-within-Gibbs (Mattei & Frellsen 2018: the mean of E[x_m|z_t] over the second "
             "half of the chain); importance (Mattei & Frellsen 2019: the conditional mean E[x_m|x_o] by self-normalised "
             f"importance sampling, 1000 draws from a diagonal Gaussian fitted to each row's observed cells by {FIT_STEPS} Adam "
             "steps on their ELBO, started at the encoder's posterior after 10 pseudo-Gibbs sweeps, its standard deviations "
             f"widened {PROPOSAL_WIDEN}x); all start the missing cells at 0."]
    if "mnist" in parts:
        notes, rows = run_mnist(args)
        best = min(r[1] for r in rows)
        lines += ["", f"## MNIST, bottom half hidden ({args.mnist_test} test images, {args.mnist_test * 392} hidden pixels)", "",
                  "The first " f"{args.mnist_test} test images; rows 14-27 of each 28x28 image hidden. Error: mean squared "
                  "error per hidden pixel, pixels in [0, 1].", ""] + notes + ["",
                  "| method | MSE per hidden pixel | seconds |", "| --- | --- | --- |"]
        for name, err, s in rows:
            lines.append(f"| {name} | {'**' if err == best else ''}{err:.4f}{'**' if err == best else ''} | {s:.1f} |")
    if "credit" in parts:
        notes, rows = run_credit(args)
        lines += ["", "## Credit default table, cells hidden at random", "",
                  "30000 rows x 23 features (ID and the target dropped), 80/20 row split (seed 0), 6000 test rows; each test "
                  "cell hidden independently with the given probability (seed 0). Error: mean squared error per hidden cell "
                  "in units of the column's training standard deviation (columns standardised with the training mean and std).",
                  ""] + notes + [""]
        names = [r[0] for r in rows[0][2]]
        lines += ["| method | " + " | ".join(f"{int(100 * f)}% hidden ({n} cells)" for f, n, _ in rows) + " | seconds (10/30/50%) |",
                  "| --- | " + " | ".join("---" for _ in rows) + " | --- |"]
        for i, name in enumerate(names):
            cells = []
            for _, _, results in rows:
                best = min(r[1] for r in results)
                err = results[i][1]
                cells.append(f"**{err:.4f}**" if err == best else f"{err:.4f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " | " + " / ".join(f"{r[2][i][2]:.1f}" for r in rows) + " |")
    lines += ["", f"Total wall time: {time.perf_counter() - started:.0f} s."]
    text = "\n".join(lines) + "\n"
    out = ROOT / "bench" / "results" / "impute.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
