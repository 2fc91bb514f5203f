"""Whole jobs, one call each: train a run folder, resume it, draw its pictures, evaluate it.

These are what the command line calls; Python users call them directly.
"""

from __future__ import annotations

import copy
import datetime
from pathlib import Path
from typing import Any, Optional

import torch

from . import checkpoint, plots
from .config import Config
from .data import load_dataset
from .errors import ConfigError, RunError
from .evaluation import elbo_breakdown
from .latent import interpolate, reconstruct
from .models import VAE
from .training import eval_inputs, pick_device, resolve_config, train


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
    if (run_dir / checkpoint.CONFIG).exists():
        raise ConfigError(f"{run_dir} already holds a run; choose another --out, or continue it with --resume {run_dir}")
    data = load_dataset(cfg.data)
    resolve_config(cfg, data)
    device = pick_device(cfg.training.device)
    torch.manual_seed(cfg.training.seed)  # weight initialisation
    model = VAE(cfg.model, data.shape, data.num_classes).to(device)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint.save_config(run_dir, cfg, model, data_info(data), device)
    history = train(model, data, cfg, run_dir)
    _finish(run_dir, model, data, cfg, history)
    return run_dir


def resume_run(run_dir: str | Path, epochs: Optional[int] = None) -> Path:
    """Continue a run from its last checkpoint (optionally to a new total of ``epochs``)."""
    run_dir = Path(run_dir)
    doc = checkpoint.read_run(run_dir)
    cfg = checkpoint.run_config(doc)
    if epochs is not None:
        cfg.training.epochs = epochs
        cfg.validate()
    state = checkpoint.load_resume(run_dir)
    data = load_dataset(cfg.data)
    device = pick_device(cfg.training.device)
    model = checkpoint.build_model(doc).to(device)
    checkpoint.save_config(run_dir, cfg, model, doc.get("data", data_info(data)), device)
    history = train(model, data, cfg, run_dir, resume=state)
    _finish(run_dir, model, data, cfg, history)
    return run_dir


def run_data(run_dir: str | Path):
    """(model, config, data) of a run: the model on the CPU in eval mode and its dataset, split as in training."""
    doc = checkpoint.read_run(run_dir)
    cfg = checkpoint.run_config(doc)
    model = checkpoint.load(run_dir)
    return model, cfg, load_dataset(cfg.data)


def evaluate_run(run_dir: str | Path, split: str = "test") -> dict[str, Any]:
    """ELBO, reconstruction and KL on a split, in nats per example (and bits/dim for discrete data)."""
    model, cfg, data = run_data(run_dir)
    if split not in ("train", "val", "test"):
        raise ConfigError(f"unknown split {split!r}; choose train, val or test")
    x = eval_inputs(data, split, cfg)
    y = getattr(data, f"{split}_labels") if model.conditional else None
    result = elbo_breakdown(model, x, y, beta=cfg.training.beta, batch_size=cfg.training.eval_batch_size, seed=0)
    result = {"split": split, "examples": int(x.shape[0]), **result}
    if cfg.model.likelihood == "bernoulli":
        result["bits_per_dim"] = -result["elbo"] / (x[0].numel() * 0.6931471805599453)
    return result


def make_pictures(run_dir: str | Path, model, data, cfg: Config, history=None, seed: int = 0) -> list[Path]:
    """The pictures of a run: samples, reconstructions, interpolations and training curves."""
    run_dir = Path(run_dir)
    model = model.eval()
    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    written = []
    x = eval_inputs(data, "test", cfg)[:16]
    y = data.test_labels[:16] if model.conditional else None
    y_samples = torch.arange(64, device=device) % model.num_classes if model.conditional else None
    samples = model.sample(64, y=y_samples, generator=g).cpu()
    if data.kind == "image":
        written.append(plots.save_grid(samples, run_dir / "samples.png", nrow=8))
        x, r = x.cpu(), reconstruct(model, x, y)  # rows: inputs, their reconstructions, inputs, ...
        written.append(plots.save_grid(torch.cat([x[:8], r[:8], x[8:16], r[8:16]]), run_dir / "reconstructions.png", nrow=8))
        ya = None if y is None else y[:1]
        strips = [interpolate(model, x[i : i + 1], x[i + 1 : i + 2], 10, m, ya) for i, m in ((0, "linear"), (0, "spherical"))]
        written.append(plots.save_rows(torch.cat(strips), run_dir / "interpolation.png"))
    else:
        columns = (data.preprocessing or {}).get("columns")
        written.append(plots.save_histograms(data.test.cpu(), samples, run_dir / "histograms.png", columns))
    if history:
        written.append(plots.save_curves(history, run_dir / "curves.png"))
    return written


def _finish(run_dir: Path, model, data, cfg: Config, history) -> None:
    history = checkpoint.read_metrics(run_dir) or history
    pictures = make_pictures(run_dir, model, data, cfg, history)
    last = history[-1] if history else None
    print(f"run folder: {run_dir}")
    if last:
        print(f"  validation: loss {last['val_loss']:.3f}, recon {last['val_recon']:.3f}, kl {last['val_kl']:.3f} nats/example")
    print(f"  {checkpoint.CONFIG}, {checkpoint.WEIGHTS}, {checkpoint.METRICS}, {checkpoint.RESUME}")
    print("  pictures: " + ", ".join(p.name for p in pictures))
    print(f"  next: vaekit eval {run_dir}  |  vaekit sample {run_dir} -n 64 --out samples.png")


def is_run(path: str | Path) -> bool:
    try:
        checkpoint.read_run(path)
        return True
    except RunError:
        return False
