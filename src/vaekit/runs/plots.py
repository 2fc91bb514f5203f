"""Pictures: image grids, strips, training curves and histograms of table columns.

Functions take tensors or metric records and a path, and write a PNG. They compute no metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import io

import torch

from vaekit.runs.folder import atomic_write


def _format(path: Path) -> str:
    """The image format a file name asks for (PNG when it names none)."""
    suffix = Path(path).suffix.lower().lstrip(".")
    return {"jpg": "jpeg", "": "png"}.get(suffix, suffix)


def _matplotlib():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _upscale(images: torch.Tensor, min_side: int = 48) -> torch.Tensor:
    """Nearest-neighbour upscaling so that tiny images (8x8 digits) stay visible."""
    side = min(images.shape[-2:])
    factor = max(1, -(-min_side // side))
    return images.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1) if factor > 1 else images


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8) -> Path:
    """Save (N, C, H, W) images in [0, 1] as one PNG grid, ``nrow`` images per row."""
    from torchvision.utils import save_image

    images = _upscale(images.detach().float().cpu().clamp(0, 1))
    path = Path(path)
    buf = io.BytesIO()  # drawn in memory, then written atomically (no torn PNG after a crash)
    save_image(images, buf, nrow=nrow, padding=2, pad_value=1.0, format=_format(path))
    atomic_write(path, buf.getvalue())
    return path


def save_rows(rows: torch.Tensor, path: str | Path) -> Path:
    """Save (rows, columns, C, H, W) images as a grid with one row per leading index."""
    return save_grid(rows.flatten(0, 1), path, nrow=rows.shape[1])


def save_labelled_rows(rows: torch.Tensor, path: str | Path, row_names: Sequence[str],
                       column_names: Optional[Sequence[str]] = None, column_title: Optional[str] = None) -> Path:
    """Save (rows, columns, C, H, W) images in [0, 1] as one grid, each row named on its left
    (e.g. a conditional model's samples, one row per class); ``column_names`` (e.g. the values a
    latent traversal runs through) go under the columns, above ``column_title``."""
    from torchvision.utils import make_grid

    if len(row_names) != rows.shape[0]:
        raise ValueError(f"{rows.shape[0]} rows but {len(row_names)} row names")
    if column_names is not None and len(column_names) != rows.shape[1]:
        raise ValueError(f"{rows.shape[1]} columns but {len(column_names)} column names")
    plt = _matplotlib()
    images = _upscale(rows.flatten(0, 1).detach().float().cpu().clamp(0, 1))
    pad = 2
    grid = make_grid(images, nrow=rows.shape[1], padding=pad, pad_value=1.0)  # (3, H, W)
    height, width = grid.shape[1:]
    below = 0.0 if column_names is None else 0.55  # inches under the grid for the column axis
    fig = plt.figure(figsize=(1.0 + width / 100, height / 100 + below))
    total_w, total_h = 1.0 + width / 100, height / 100 + below
    ax = fig.add_axes([1.0 / total_w, below / total_h, width / 100 / total_w, height / 100 / total_h])
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_xticks([])
    _name_cells(ax, row_names, images.shape[-2] + pad, pad, axis="y")
    if column_names is not None:
        _name_cells(ax, column_names, images.shape[-1] + pad, pad, axis="x")
        if column_title:
            ax.set_xlabel(column_title, fontsize=8)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return _save(fig, path, dpi=100)


def _name_cells(ax, names: Sequence[str], cell: int, pad: int, axis: str) -> None:
    """Tick labels at the centres of a grid's rows (axis='y') or columns (axis='x'); ``cell`` is the
    size of one cell in pixels, padding included."""
    at = [pad + i * cell + (cell - pad) / 2 for i in range(len(names))]
    if axis == "y":
        ax.set_yticks(at)
        ax.set_yticklabels([str(n) for n in names], fontsize=9)
    else:
        ax.set_xticks(at)
        ax.set_xticklabels([str(n) for n in names], fontsize=8)
    ax.tick_params(length=0)


def save_completion(holes: torch.Tensor, filled: torch.Tensor, path: str | Path, truth: Optional[torch.Tensor] = None,
                    n: int = 16) -> Path:
    """The first ``n`` images with holes (missing pixels, NaN, painted red) above their fills, and the
    true images below them when ``truth`` is given; images (N, C, H, W) in [0, 1]."""
    holes, filled = holes[:n].detach().float().cpu(), filled[:n].detach().float().cpu()
    missing = torch.isnan(holes).any(dim=1, keepdim=True)  # (n, 1, H, W)

    def rgb(images: torch.Tensor) -> torch.Tensor:
        images = torch.nan_to_num(images).clamp(0, 1)
        return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images[:, :3]

    shown = torch.where(missing, torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1), rgb(holes))
    rows, names = [shown, rgb(filled)], ["input", "filled"]
    if truth is not None:
        rows.append(rgb(truth[:n].detach().float().cpu()))
        names.append("truth")
    return save_labelled_rows(torch.stack(rows), path, names)


def save_curves(history: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Loss, reconstruction and KL per epoch, training and validation, in nats per example; a
    fourth panel with the classifier's validation error where the records hold ``val_error`` (M2)."""
    plt = _matplotlib()
    epochs = [r["epoch"] for r in history]
    errors = [(r["epoch"], r["val_error"]) for r in history if "val_error" in r]
    fig, axes = plt.subplots(1, 4 if errors else 3, figsize=(16 if errors else 12, 3.4))
    for ax, key, title in zip(axes, ("loss", "recon", "kl"), ("loss (-ELBO with beta)", "reconstruction  -log p(x|z)", "KL(q(z|x) || p(z))")):
        ax.plot(epochs, [r[f"train_{key}"] for r in history], label="train")
        if all(f"val_{key}" in r for r in history):  # a run without a validation split has none
            ax.plot(epochs, [r[f"val_{key}"] for r in history], label="validation")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per example")
        ax.grid(alpha=0.3)
    axes[0].legend()
    if errors:
        _error_panel(axes[3], errors)
    fig.tight_layout()
    return _save(fig, path)


def _error_panel(ax, errors: Sequence[tuple[int, float]]) -> None:
    """The validation error of q(y|x) per epoch, in percent, the lowest marked."""
    at, values = zip(*errors)
    ax.plot(at, [100 * e for e in values], color="C2", label="validation")
    best = min(range(len(values)), key=values.__getitem__)
    ax.plot([at[best]], [100 * values[best]], "o", color="C2", label=f"lowest {values[best]:.2%}")
    ax.legend(fontsize=8)
    ax.set_title("classifier error q(y|x)", fontsize=10)
    ax.set_xlabel("epoch")
    ax.set_ylabel("% of labelled rows")
    ax.grid(alpha=0.3)


def save_kl_per_dim(history: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """The validation KL of each latent dimension: at the last epoch (bars) and over the epochs
    (a heat map), from the ``val_kl_per_dim`` of the metric records. Active dimensions stand out;
    a dimension that stays dark has collapsed onto the prior."""
    plt = _matplotlib()
    rows = [r for r in history if r.get("val_kl_per_dim")]
    if not rows:
        raise ValueError("no metric record holds val_kl_per_dim")
    kl = torch.tensor([r["val_kl_per_dim"] for r in rows], dtype=torch.float64)  # (epochs, dims)
    epochs, dims = [r["epoch"] for r in rows], kl.shape[1]
    fig, (bars, heat) = plt.subplots(1, 2, figsize=(12, 3.4), gridspec_kw={"width_ratios": [1, 2]})
    bars.bar(range(dims), kl[-1].numpy(), color="C0")
    active = rows[-1].get("val_active_units")
    bars.set_title(f"KL per latent dimension, epoch {epochs[-1]}"
                   + (f" ({active} of {dims} active)" if active is not None else ""), fontsize=10)
    bars.set_xlabel("latent dimension")
    bars.set_ylabel("nats per example")
    bars.grid(alpha=0.3, axis="y")
    image = heat.imshow(kl.T.numpy(), aspect="auto", origin="lower", interpolation="nearest", cmap="viridis",
                        extent=(epochs[0] - 0.5, epochs[-1] + 0.5, -0.5, dims - 0.5))
    heat.set_title("KL per latent dimension over training (validation)", fontsize=10)
    heat.set_xlabel("epoch")
    heat.set_ylabel("latent dimension")
    fig.colorbar(image, ax=heat, label="nats per example")
    from matplotlib.ticker import MaxNLocator

    for axis in (bars.xaxis, heat.yaxis, heat.xaxis):
        axis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return _save(fig, path)


def save_histograms(
    real: torch.Tensor, generated: torch.Tensor, path: str | Path,
    columns: Optional[Sequence[str]] = None, max_columns: int = 12,
) -> Path:
    """Per-column histograms of real and generated table rows (tensors), overlaid."""
    import pandas as pd

    names = list(columns) if columns else [f"column {j}" for j in range(real.shape[1])]
    frames = [pd.DataFrame(t[:, :max_columns].double().numpy(), columns=names[:max_columns]) for t in (real, generated)]
    return save_table_columns(*frames, path, max_columns=max_columns, labels=("real", "generated"))


def save_table_columns(real, synthetic, path: str | Path, max_columns: int = 16, top: int = 8,
                       labels: tuple[str, str] = ("real", "synthetic")) -> Path:
    """Each column of a table, real rows against synthetic ones (two DataFrames with the same
    columns): overlaid histograms for numbers, side-by-side bars of the ``top`` most frequent
    values for the rest; each title gives the missing share of both where either has one."""
    import pandas as pd

    plt = _matplotlib()
    names = list(real.columns)[:max_columns]
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.5 * rows), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        r, s = real[name], synthetic[name]
        title = str(name)
        if r.isna().any() or s.isna().any():
            title += f"  (missing {r.isna().mean():.0%} / {s.isna().mean():.0%})"
        r, s = r.dropna(), s.dropna()
        numeric = all(pd.api.types.is_numeric_dtype(c) and not pd.api.types.is_bool_dtype(c) for c in (r, s))
        both = pd.concat([r, s])
        if numeric and both.nunique() > top:  # a few values (codes, flags) get bars instead
            lo, hi = float(both.min()), float(both.max())
            ax.hist(r, bins=30, range=(lo, hi + 1e-9), alpha=0.5, density=True, label=labels[0])
            ax.hist(s, bins=30, range=(lo, hi + 1e-9), alpha=0.5, density=True, label=labels[1])
            ax.tick_params(axis="x", labelsize=7)
        else:
            shares = pd.DataFrame({"real": r.astype(str).value_counts(normalize=True),
                                   "synthetic": s.astype(str).value_counts(normalize=True)}).fillna(0.0)
            shares = shares.sort_values("real", ascending=False).head(top)
            at = range(len(shares))
            ax.bar([i - 0.2 for i in at], shares["real"], width=0.4, label=labels[0])
            ax.bar([i + 0.2 for i in at], shares["synthetic"], width=0.4, label=labels[1])
            ax.set_xticks(list(at), [v.strip()[:10] for v in shares.index], rotation=45, ha="right", fontsize=6)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str | Path, dpi: int = 110) -> Path:
    plt = _matplotlib()
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format=_format(path))
    atomic_write(path, buf.getvalue())
    plt.close(fig)
    return path


def save_latent_scatter(
    points: torch.Tensor, labels: Optional[torch.Tensor], path: str | Path,
    class_names: Optional[Sequence[str]] = None, axis_names: Sequence[str] = ("z0", "z1"),
) -> Path:
    """Scatter of 2-D latent points (posterior means, or their PCA projection), coloured by label."""
    plt = _matplotlib()
    pts = points.detach().float().cpu().numpy()
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    if labels is None:
        ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.6)
    else:
        lab = labels.cpu().numpy()
        for c in sorted(set(lab.tolist())):
            sel = lab == c
            name = class_names[c] if class_names and c < len(class_names) else str(c)
            ax.scatter(pts[sel, 0], pts[sel, 1], s=4, alpha=0.6, label=name)
        ax.legend(fontsize=7, markerscale=3, loc="best", ncol=2)
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title("posterior means", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def save_rate_distortion(points: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Distortion E[-log p(x|z)] against rate KL(q(z|x) || p(z)), one point per beta (nats per example)."""
    plt = _matplotlib()
    pts = sorted(points, key=lambda p: p["rate"])
    rates, dists = [p["rate"] for p in pts], [p["distortion"] for p in pts]
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    ax.plot(rates, dists, "o-")
    for p in pts:
        ax.annotate(f"beta={p['beta']:g}", (p["rate"], p["distortion"]), fontsize=8,
                    textcoords="offset points", xytext=(4, 4))
    lo, hi = min(rates + dists), max(rates + dists)
    # lines of constant ELBO (D + R = const) for reference at the best point
    best = min(pts, key=lambda p: p["rate"] + p["distortion"])
    total = best["rate"] + best["distortion"]
    ax.plot([0, total], [total, 0], ":", color="grey", label=f"D + R = {total:.1f} (best -ELBO)")
    ax.set_xlim(0, max(rates) * 1.15 + 1e-9)
    ax.set_ylim(min(dists) - 0.05 * (hi - lo) - 1e-9, max(dists) + 0.05 * (hi - lo) + 1e-9)
    ax.set_xlabel("rate  KL(q(z|x) || p(z)), nats")
    ax.set_ylabel("distortion  -log p(x|z), nats")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
