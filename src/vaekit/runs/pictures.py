"""The pictures of a run folder: samples, reconstructions, interpolations, curves, KL per
dimension, latent maps, and samples by class for conditional models."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch

from vaekit.core.device import device_of
from vaekit.config import Config
from vaekit.core.m2 import predict_classes
from vaekit.errors import ConfigError
from vaekit.measure.diagnostics import latent_plane, pca_2d
from vaekit.measure.evaluation import posterior_means
from vaekit.measure.latent import interpolate, reconstruct, traverse
from vaekit.runs import plots
from vaekit.training.loop import eval_inputs

# The pictures' file names, the same in a run folder and as the defaults of the subcommands
SAMPLES, RECONSTRUCTIONS, INTERPOLATION, TRAVERSE = "samples.png", "reconstructions.png", "interpolation.png", "traverse.png"


def make_pictures(run_dir: str | Path, model, data, cfg: Config, history=None, seed: int = 0) -> list[Path]:
    """The pictures of a run: samples, reconstructions, interpolations, training curves and the KL
    per latent dimension; for a conditional image model also samples_by_class.png, one row of
    samples per class."""
    run_dir = Path(run_dir)
    model = model.eval()
    device = device_of(model)
    g = torch.Generator(device=device).manual_seed(seed)
    written = []
    # 64 samples make the image grid; for tables 2,000 against at most 2,000 test rows make the
    # histograms (enough for the shapes, and one bounded read of a memory-mapped table).
    n = 64 if data.kind == "image" else 2_000
    y_samples = torch.arange(n, device=device) % model.num_classes if model.conditional else None
    samples = model.sample(n, y=y_samples, generator=g).cpu()
    if data.kind == "image":
        split = "test" if data.test.shape[0] else "train"  # no test split: the training images stand in
        x = eval_inputs(data, split, cfg)[:16]
        y = getattr(data, f"{split}_labels")[:16] if model.conditional else None
        written.append(plots.save_grid(samples, run_dir / SAMPLES, nrow=8))
        written.append(save_reconstructions(model, x, y, run_dir / RECONSTRUCTIONS))
        ya = None if y is None else y[:1]
        written.append(save_interpolation(model, x[:1], x[1:2] if x.shape[0] > 1 else x[:1],
                                          run_dir / INTERPOLATION, y=ya))
        if model.conditional:
            written.append(_samples_by_class(run_dir, model, data, g))
    else:
        columns = (data.preprocessing or {}).get("columns")
        real = data.test[:n]
        if real.shape[0] == 0:  # no test split: the training rows stand in
            real = data.train[:n]
        written.append(plots.save_histograms(real.cpu(), samples, run_dir / "histograms.png", columns))
    if getattr(model, "semi_supervised", False):
        written += classifier_pictures(run_dir, model, data, cfg, g)
    if history:
        written.append(plots.save_curves(history, run_dir / "curves.png"))
        if any(r.get("val_kl_per_dim") for r in history):
            written.append(plots.save_kl_per_dim(history, run_dir / "kl_per_dim.png"))
    written += _latent_maps(run_dir, model, data, cfg)
    return written


def sample_examples(model, n: int, label: Optional[int] = None, grid: bool = False,
                    seed: int = 0) -> tuple[torch.Tensor, int]:
    """(n draws from the model, images per row for a picture of them). A conditional model draws
    class ``label``, or with ``grid`` one row per class of n // classes draws each, or else the
    classes in turn; an unconditional model takes neither."""
    if (label is not None or grid) and not model.conditional:
        raise ConfigError("a class label or a grid of classes needs a conditional run (train with --model cvae)")
    if grid and label is not None:
        raise ConfigError("a grid shows every class; give no label with it")
    if n < 1:
        raise ConfigError("the number of samples must be at least 1")
    y, nrow = None, 8
    if grid:
        nrow = max(1, n // model.num_classes)
        y = torch.arange(model.num_classes).repeat_interleave(nrow)
    elif label is not None:
        y = torch.full((n,), label)
    elif model.conditional:
        y = torch.arange(n) % model.num_classes
    count = n if y is None else y.numel()
    return model.sample(count, y=y, generator=torch.Generator().manual_seed(seed)), nrow


def save_reconstructions(model, x: torch.Tensor, y, path: str | Path) -> Path:
    """Inputs above their reconstructions, in rows of up to 8 named 'input' and 'reconstruction'
    (so that fewer than 16 inputs still make a labelled picture)."""
    x, r = x.cpu(), reconstruct(model, x, y)
    k = max(1, min(8, x.shape[0] // 2))  # rows of k: inputs, their reconstructions, inputs, ...
    pairs = x.shape[0] // k if x.shape[0] >= 2 * k else 1
    rows = [t for i in range(pairs) for t in (x[i * k : (i + 1) * k], r[i * k : (i + 1) * k])]
    return plots.save_labelled_rows(torch.stack(rows), path, ["input", "reconstruction"] * pairs)


def save_interpolation(model, xa: torch.Tensor, xb: torch.Tensor, path: str | Path, steps: int = 10,
                       methods: Sequence[str] = ("linear", "spherical"), y=None) -> Path:
    """One row per method (named on its left): the decoded path from the latent of ``xa`` to that of ``xb``."""
    rows = torch.cat([interpolate(model, xa, xb, steps, m, y) for m in methods])
    return plots.save_labelled_rows(rows, path, list(methods))


def save_traverse(model, dims: Sequence[int], path: str | Path, x=None, y=None, steps: int = 9, span: float = 3.0,
                  kl_per_dim: Optional[Sequence[float]] = None) -> Path:
    """One row per latent dimension (named 'z6  KL 2.76' when ``kl_per_dim`` is given), each varying
    that dimension over [-span, span] around the start; the offsets are labelled under the columns."""
    rows = traverse(model, x, dims, steps, span, y)  # checks that the dims exist
    names = [f"z{d}" + (f"  KL {kl_per_dim[d]:.2f}" if kl_per_dim is not None else "") for d in dims]
    offsets = torch.linspace(-span, span, steps).tolist()
    title = "z_d (the other dimensions at 0, the prior mean)" if x is None else \
        "z_d minus the input's posterior mean of it (the other dimensions at their posterior means)"
    values = ["0" if abs(v) < 1e-9 else f"{v:+.2g}" for v in offsets]
    return plots.save_labelled_rows(rows, path, names, column_names=values, column_title=title)


def _samples_by_class(run_dir: Path, model, data, generator: torch.Generator, per_class: int = 10) -> Path:
    """samples_by_class.png: a conditional image model's samples, one row per class (named on the left)."""
    device = device_of(model)
    y = torch.arange(model.num_classes, device=device).repeat_interleave(per_class)
    x = model.sample(len(y), y=y, generator=generator).cpu()
    names = data.class_names if data.class_names and len(data.class_names) == model.num_classes else None
    names = names or [str(c) for c in range(model.num_classes)]
    return plots.save_labelled_rows(x.reshape(model.num_classes, per_class, *x.shape[1:]), run_dir / "samples_by_class.png", names)


def _latent_maps(run_dir: Path, model, data, cfg: Config, max_points: int = 2000) -> list[Path]:
    """latent.png: test posterior means coloured by label (PCA to 2-D when latent_dim > 2), for
    labelled data; latent_plane.png: decoded images over the latent plane, for 2-D image models."""
    written = []
    if data.test_labels is not None and data.test.shape[0] > 1:
        x = eval_inputs(data, "test", cfg)[:max_points]
        labels = data.test_labels[:max_points]
        z = posterior_means(model, x, labels if model.conditional else None)
        points, explained = pca_2d(z)
        names = ("z0", "z1") if z.shape[1] <= 2 else tuple(f"PC{i + 1} ({e:.0%} of variance)" for i, e in enumerate(explained))
        if points.shape[1] == 2:
            written.append(plots.save_latent_scatter(points, labels, run_dir / "latent.png", data.class_names, names))
    if data.kind == "image" and model.latent_dim == 2 and not model.conditional:
        written.append(plots.save_rows(latent_plane(model), run_dir / "latent_plane.png"))
    return written


def classifier_pictures(run_dir: Path, model, data, cfg: Config, generator: torch.Generator,
                        rows: int = 8) -> list[Path]:
    """A semi-supervised (M2) run's pictures: confusion.png, its classifier on the test split (the
    labelled training rows without one), and for images, after Kingma et al. (2014), Figure 1:
    style_by_class.png (each row one style z ~ p(z), decoded as every class) and analogies.png
    (each row a test image, its style inferred with the class the classifier gives it, decoded as
    every class)."""
    split = "test" if data.test.shape[0] else "train"
    x, labels = eval_inputs(data, split, cfg), getattr(data, f"{split}_labels")
    known = labels >= 0  # the training split of a semi-supervised run marks unlabelled rows with -1
    names = data.class_names if data.class_names and len(data.class_names) == model.num_classes else None
    names = names or [str(c) for c in range(model.num_classes)]
    confusion = torch.zeros(model.num_classes, model.num_classes, dtype=torch.long)
    confusion.index_put_((labels[known], predict_classes(model, x[known])), torch.tensor(1), accumulate=True)
    written = [save_confusion(confusion, run_dir / "confusion.png", names, split)]
    if data.kind == "image":
        device, k = device_of(model), model.num_classes
        with torch.no_grad():
            z = model.sample_latent(rows, generator=generator)
            written.append(_style_rows(model, z, None, run_dir / "style_by_class.png", names))
            xs = x[known][:rows].to(device)
            z = model.encode(xs, model.classify(xs).argmax(-1)).mean  # the style given the predicted class
            written.append(_style_rows(model, z, xs, run_dir / "analogies.png", names))
    return written


def _style_rows(model, z: torch.Tensor, inputs, path: Path, names) -> Path:
    """One row per z, decoded (the mean of p(x|y, z)) as each class in turn; the input first, if given."""
    k, n = model.num_classes, z.shape[0]
    y = torch.arange(k, device=z.device).repeat(n)
    images = model.decode(z.repeat_interleave(k, 0), y).mean.reshape(n, k, *model.data_shape).cpu()
    columns = list(names)
    if inputs is not None:
        images, columns = torch.cat([inputs.cpu()[:, None], images], dim=1), ["input", *columns]
    row_names = [f"z{i + 1}" if inputs is None else f"x{i + 1}" for i in range(n)]
    return plots.save_labelled_rows(images, path, row_names, column_names=columns,
                                    column_title="class y (the style z fixed along each row)")


def save_confusion(confusion: torch.Tensor, path: Path, names, split: str) -> Path:
    """The confusion matrix (rows: true class, columns: predicted), counts in the cells, the error in the title."""
    plt = plots._matplotlib()
    k, total = confusion.shape[0], int(confusion.sum())
    error = 1 - confusion.diagonal().sum().item() / max(total, 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * k, 0.8 + 0.45 * k))
    ax.imshow(confusion.numpy(), cmap="Blues")
    for (i, j), count in zip(torch.cartesian_prod(torch.arange(k), torch.arange(k)).tolist(), confusion.flatten().tolist()):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                    color="white" if count > confusion.max().item() / 2 else "black")
    ax.set_xticks(range(k), names, fontsize=7)
    ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{split}: {total} examples, error {error:.2%}", fontsize=9)
    return plots._save(fig, path)
