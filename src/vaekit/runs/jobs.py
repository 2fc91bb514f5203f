"""Whole jobs, one call each: train a run folder, resume it, draw its pictures, evaluate it.

These are what the command line calls; Python users call them directly.
"""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any, Optional

import torch

from vaekit.runs import folder

from vaekit.runs import plots
from vaekit.config import Config
from vaekit.data import load_dataset
from vaekit.errors import ConfigError, RunError
from vaekit.measure.diagnostics import latent_diagnostics, latent_plane, pca_2d
from vaekit.measure.evaluation import bits_per_dim, elbo_breakdown, likelihood_report, posterior_means
from vaekit.measure.latent import interpolate, reconstruct
from vaekit.core.models import VAE
from vaekit.training.loop import autocast_dtype, eval_inputs, pick_device, resolve_config, train


def default_run_dir() -> Path:
    return Path("runs") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def data_info(data) -> dict[str, Any]:
    return {
        "name": data.name, "kind": data.kind, "shape": list(data.shape), "binary": data.binary,
        "num_classes": data.num_classes, "class_names": data.class_names, "preprocessing": data.preprocessing,
        "sizes": {"train": data.train.shape[0], "val": data.val.shape[0], "test": data.test.shape[0]},
    }


def train_run(config: Optional[Config] = None, out: Optional[str | Path] = None) -> Path:
    """Train a new run on ``config`` (default: the defaults, i.e. digits) and write its folder."""
    cfg = copy.deepcopy(config) if config is not None else Config()
    cfg.validate()
    run_dir = Path(out) if out is not None else default_run_dir()
    if (run_dir / folder.CONFIG).exists():
        raise ConfigError(f"{run_dir} already holds a run; choose another --out, or continue it with --resume {run_dir}")
    data = load_dataset(cfg.data)
    resolve_config(cfg, data)
    device = pick_device(cfg.training.device)
    torch.manual_seed(cfg.training.seed)  # weight initialisation
    model = VAE(cfg.model, data.shape, data.num_classes).to(device)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        folder.save_config(run_dir, cfg, model, data_info(data), device,
                               autocast_dtype(cfg.training.precision, device, data.kind))
        history = train(model, data, cfg, run_dir)
    except BaseException as exc:
        # A run that never finished an epoch has nothing worth keeping: remove what this call
        # wrote, so no half-made run folder is left behind. After an epoch the folder holds a
        # consistent checkpoint and is kept: `vaekit train --resume RUN` continues it.
        kept = (run_dir / folder.RESUME).exists()
        if not kept:
            folder.discard_unstarted(run_dir, remove_folder=created)
        exc.vaekit_run_dir = run_dir if kept else None  # for the command line's message
        raise
    _finish(run_dir, model, data, cfg, history)
    return run_dir


def resume_run(run_dir: str | Path, epochs: Optional[int] = None) -> Path:
    """Continue a run from its last checkpoint (optionally to a new total of ``epochs``)."""
    run_dir = Path(run_dir)
    doc = folder.read_run(run_dir)
    cfg = folder.run_config(doc)
    if epochs is not None:
        cfg.training.epochs = epochs
        cfg.validate()
    folder.remove_temporary_files(run_dir)  # left by a crash in the middle of a write
    # A run killed before its first checkpoint was complete holds config.json (and at most the
    # first epoch's weights and metrics line) but no resume file: start it again from scratch,
    # with the same seed, so it ends with the same weights as an uninterrupted run.
    fresh = not (run_dir / folder.RESUME).exists() and (
        not (run_dir / folder.WEIGHTS).exists() or len(folder.read_metrics(run_dir)) <= 1
    )
    state = None if fresh else folder.load_resume(run_dir)
    data = load_dataset(cfg.data)
    device = pick_device(cfg.training.device)
    torch.manual_seed(cfg.training.seed)  # weight initialisation, as in train_run
    model = folder.build_model(doc).to(device)
    if state is not None:
        folder.check_resume_state(state, model, run_dir)
    # Metrics lines beyond the checkpoint's epoch (a crash between writing them and the resume
    # file) would be written again; drop them so every epoch appears once.
    folder.write_metrics(run_dir, folder.read_metrics(run_dir)[: 0 if state is None else int(state["epoch"])])
    folder.save_config(run_dir, cfg, model, doc.get("data", data_info(data)), device,
                           autocast_dtype(cfg.training.precision, device, data.kind))
    try:
        history = train(model, data, cfg, run_dir, resume=state)
    except BaseException as exc:
        exc.vaekit_run_dir = run_dir  # for the command line's message
        raise
    _finish(run_dir, model, data, cfg, history)
    return run_dir


def run_data(run_dir: str | Path):
    """(model, config, data) of a run: the model on the CPU in eval mode and its dataset, split as in training."""
    doc = folder.read_run(run_dir)
    cfg = folder.run_config(doc)
    model = folder.load(run_dir)
    return model, cfg, load_dataset(cfg.data)


def evaluate_run(run_dir: str | Path, split: str = "test", nll_samples: int = 0, limit: Optional[int] = None,
                 compile: bool = False, progress: bool = False) -> dict[str, Any]:
    """ELBO, reconstruction, KL and latent diagnostics on a split, in nats per example.

    ``nll_samples=k > 0`` adds the importance-sampled ``nll`` (k samples per example), the
    ``elbo_gap`` (log p(x) - ELBO) and, for discrete data, ``nll_bits_per_dim``. ``limit``
    evaluates only the first ``limit`` examples of the split. ``compile`` and ``progress`` go
    to :func:`vaekit.likelihood_report`.
    """
    model, cfg, data = run_data(run_dir)
    if split not in ("train", "val", "test"):
        raise ConfigError(f"unknown split {split!r}; choose train, val or test")
    if nll_samples < 0:
        raise ConfigError(f"--nll-samples must be >= 0, not {nll_samples}")
    x = eval_inputs(data, split, cfg)
    y = getattr(data, f"{split}_labels") if model.conditional else None
    if limit is not None:
        x, y = x[:limit], None if y is None else y[:limit]
    result = elbo_breakdown(model, x, y, beta=cfg.training.beta, batch_size=cfg.training.eval_batch_size, seed=0)
    result = {"split": split, "examples": int(x.shape[0]), **result}
    discrete = cfg.model.likelihood == "bernoulli"
    if discrete:
        result["bits_per_dim"] = bits_per_dim(-result["elbo"], x[0].numel())
    if nll_samples > 0:
        report = likelihood_report(model, x, nll_samples, y, seed=0, compile=compile, progress=progress)
        result.update(report)
        if discrete:
            result["nll_bits_per_dim"] = bits_per_dim(report["nll"], x[0].numel())
    diagnostics = latent_diagnostics(model, x, y, batch_size=cfg.training.eval_batch_size)
    diagnostics.pop("kl")  # the same closed-form KL as result["kl"]
    result.update(diagnostics)
    return result


def make_pictures(run_dir: str | Path, model, data, cfg: Config, history=None, seed: int = 0) -> list[Path]:
    """The pictures of a run: samples, reconstructions, interpolations, training curves and the KL
    per latent dimension; for a conditional image model also samples_by_class.png, one row of
    samples per class."""
    run_dir = Path(run_dir)
    model = model.eval()
    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    written = []
    # 64 samples make the image grid; for tables 2,000 against at most 2,000 test rows make the
    # histograms (enough for the shapes, and one bounded read of a memory-mapped table).
    n = 64 if data.kind == "image" else 2_000
    y_samples = torch.arange(n, device=device) % model.num_classes if model.conditional else None
    samples = model.sample(n, y=y_samples, generator=g).cpu()
    if data.kind == "image":
        x = eval_inputs(data, "test", cfg)[:16]
        y = data.test_labels[:16] if model.conditional else None
        written.append(plots.save_grid(samples, run_dir / "samples.png", nrow=8))
        x, r = x.cpu(), reconstruct(model, x, y)
        k = max(1, min(8, x.shape[0] // 2))  # rows of k: inputs, their reconstructions, inputs, ...
        pairs = 2 if x.shape[0] >= 2 * k else 1
        rows = [t for i in range(pairs) for t in (x[i * k : (i + 1) * k], r[i * k : (i + 1) * k])]
        written.append(plots.save_labelled_rows(torch.stack(rows), run_dir / "reconstructions.png",
                                                ["input", "reconstruction"] * pairs))
        ya = None if y is None else y[:1]
        strips = [interpolate(model, x[:1], x[1:2] if x.shape[0] > 1 else x[:1], 10, m, ya) for m in ("linear", "spherical")]
        written.append(plots.save_labelled_rows(torch.cat(strips), run_dir / "interpolation.png", ["linear", "spherical"]))
        if model.conditional:
            written.append(_samples_by_class(run_dir, model, data, g))
    else:
        columns = (data.preprocessing or {}).get("columns")
        real = data.test[:n]
        if real.shape[0] == 0:  # no test split: the training rows stand in
            real = data.train[:n]
        written.append(plots.save_histograms(real.cpu(), samples, run_dir / "histograms.png", columns))
    if history:
        written.append(plots.save_curves(history, run_dir / "curves.png"))
        if any(r.get("val_kl_per_dim") for r in history):
            written.append(plots.save_kl_per_dim(history, run_dir / "kl_per_dim.png"))
    written += _latent_maps(run_dir, model, data, cfg)
    return written


def _samples_by_class(run_dir: Path, model, data, generator: torch.Generator, per_class: int = 10) -> Path:
    """samples_by_class.png: a conditional image model's samples, one row per class (named on the left)."""
    device = next(model.parameters()).device
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


def _finish(run_dir: Path, model, data, cfg: Config, history) -> None:
    history = folder.read_metrics(run_dir) or history
    pictures = make_pictures(run_dir, model, data, cfg, history)
    last = history[-1] if history else None
    print(f"run folder: {run_dir}")
    if last:
        print(f"  validation: loss {last['val_loss']:.3f}, recon {last['val_recon']:.3f}, kl {last['val_kl']:.3f} nats/example")
    print(f"  {folder.CONFIG}, {folder.WEIGHTS}, {folder.METRICS}, {folder.RESUME}")
    print("  pictures: " + ", ".join(p.name for p in pictures))
    print(f"  next: vaekit eval {run_dir}  |  vaekit sample {run_dir} -n 64 --out samples.png")


def train_table_run(data: str | Path, out: str | Path, **options):
    """Fit a :class:`vaekit.TabularVAE` (``options`` are its arguments) to the table file ``data``
    and save it as the run folder ``out``, with curves.png (the losses per epoch) and columns.png
    (each column of up to 2,000 training rows against 2,000 synthetic rows); returns the model."""
    from vaekit.apps.tabular.synthesizer import TabularVAE, read_table

    table = read_table(data)
    model = TabularVAE(**options).fit(table)
    out = Path(out)
    model.save(out)
    if model.history_:
        plots.save_curves(model.history_, out / "curves.png")
    real = table.sample(min(len(table), 2_000), random_state=0)
    plots.save_table_columns(real, model.sample(2_000, seed=0), out / "columns.png")
    return model


def is_run(path: str | Path) -> bool:
    try:
        folder.read_run(path)
        return True
    except RunError:
        return False
