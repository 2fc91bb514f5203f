"""The autoencoder contrast, measured: what the KL term buys.

Trains a VAE and an autoencoder (``--model ae``: the same networks without the KL term and without
sampling) with the same settings and seed, then asks a classifier trained on the real training
images how it sees (a) draws z ~ N(0, I) decoded by each model, (b) the midpoints of linear paths
between test examples of different classes. Also measures the scale of each model's codes and how
large they get against the prior's. Writes bench/results/ae_contrast.md and
bench/results/ae_contrast.png.

    python bench/ae_contrast.py                 # MNIST, 10 epochs each
    python bench/ae_contrast.py --data digits   # quick
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import vaekit  # noqa: E402
from vaekit.data import load_dataset  # noqa: E402
from settings import machine  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def classifier(x: torch.Tensor, y: torch.Tensor, classes: int, epochs: int = 5, seed: int = 0) -> torch.nn.Module:
    """A small MLP trained on the real training images: the judge of what decoded samples look like."""
    torch.manual_seed(seed)
    d = x[0].numel()
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(d, 256), torch.nn.ReLU(), torch.nn.Linear(256, classes))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(128):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    return net.eval()


@torch.no_grad()
def judged(net, images: torch.Tensor, sure: float = 0.9) -> tuple[float, float]:
    """(mean top-class probability, share of images whose top class has probability > ``sure``)."""
    top = torch.softmax(net(images), -1).max(-1).values
    return float(top.mean()), float((top > sure).float().mean())


@torch.no_grad()
def measure(model, net, data, n: int = 2000, seed: int = 0) -> dict[str, float]:
    n = min(n, data.test.shape[0])
    g = torch.Generator().manual_seed(seed)
    prior = model.sample(n, generator=g)
    codes = model.encode(data.test[:n]).mean
    pair = torch.randperm(n, generator=g)
    a, b = data.test[:n], data.test[pair]
    differ = data.test_labels[:n] != data.test_labels[pair]
    mid = model.decode(0.5 * (model.encode(a).mean + model.encode(b).mean)).mean[differ]
    conf, share = judged(net, prior)
    mid_conf, mid_share = judged(net, mid)
    return {"prior_conf": conf, "prior_share": share, "mid_conf": mid_conf, "mid_share": mid_share,
            "code_std": float(codes.std(0).mean()), "code_max": float(codes.abs().max())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="mnist")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    results, models, times = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("vae", "ae"):
            cfg = vaekit.Config()
            cfg.data.name, cfg.model.model = args.data, kind
            cfg.training.epochs, cfg.training.seed, cfg.training.progress = args.epochs, args.seed, False
            cfg.training.early_stopping = 0  # the same number of epochs for both
            started = time.perf_counter()
            models[kind] = vaekit.load(vaekit.train_run(cfg, out=Path(tmp) / kind))
            times[kind] = time.perf_counter() - started
    data = load_dataset(cfg.data)
    net = classifier(data.train, data.train_labels, data.num_classes, epochs=5 if args.data != "digits" else 60)
    real = judged(net, data.test[:2000])
    test_acc = float((net(data.test).argmax(-1) == data.test_labels).float().mean())
    for kind, model in models.items():
        results[kind] = measure(model, net, data, seed=args.seed)
    lines = [f"# The autoencoder contrast ({args.data}, {args.epochs} epochs each, seed {args.seed})", "",
             f"{datetime.date.today()}, {machine()}. Command: `python bench/ae_contrast.py --data {args.data} "
             f"--epochs {args.epochs}`. Same networks (the defaults: MLP, latent 20), data and seed; the AE is "
             "`--model ae` (no KL term, z = encoder mean).", "",
             f"Judge: an MLP trained on the real training images (test accuracy {test_acc:.3f}); on 2000 real test "
             f"images its mean top-class probability is {real[0]:.3f} and it is sure (p > 0.9) of {real[1]:.1%}.", "",
             "| | VAE | AE |", "| --- | ---: | ---: |"]
    rows = [("decoded N(0, I) draws: mean top-class probability", "prior_conf", "{:.3f}"),
            ("decoded N(0, I) draws: share the judge is sure of (p > 0.9)", "prior_share", "{:.1%}"),
            ("midpoints between test pairs of different classes: mean top-class probability", "mid_conf", "{:.3f}"),
            ("midpoints: share the judge is sure of", "mid_share", "{:.1%}"),
            ("scale of the codes (mean per-dimension std of test posterior means)", "code_std", "{:.2f}"),
            ("largest |code| over test examples (N(0, I) puts 99.7% within 3)", "code_max", "{:.1f}")]
    for text, key, fmt in rows:
        lines.append(f"| {text} | {fmt.format(results['vae'][key])} | {fmt.format(results['ae'][key])} |")
    lines += ["", f"Training time: VAE {times['vae']:.0f} s, AE {times['ae']:.0f} s.", "",
              "![VAE and AE samples from N(0, I)](ae_contrast.png)"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ae_contrast.md").write_text("\n".join(lines) + "\n")
    picture(models, data, RESULTS / "ae_contrast.png", args.seed)
    print("\n".join(lines))


@torch.no_grad()
def picture(models, data, path: Path, seed: int) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(10, 8), gridspec_kw={"width_ratios": [1.2, 1]})
    for row, (kind, model) in enumerate(models.items()):
        x = model.sample(32, generator=torch.Generator().manual_seed(seed))
        side = x.shape[-1]
        grid = x.reshape(4, 8, side, side).permute(0, 2, 1, 3).reshape(4 * side, 8 * side)
        axes[row, 0].imshow(grid, cmap="gray")
        axes[row, 0].set_title(f"{kind.upper()}: z ~ N(0, I) decoded")
        axes[row, 0].axis("off")
        z = model.encode(data.test[:2000]).mean
        centred = z - z.mean(0)
        basis = torch.linalg.svd(centred, full_matrices=False).Vh[:2].T
        pts = centred @ basis
        axes[row, 1].scatter(pts[:, 0], pts[:, 1], c=data.test_labels[:2000], cmap="tab10", s=3)
        axes[row, 1].set_title(f"{kind.upper()}: test codes, first two principal axes")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
