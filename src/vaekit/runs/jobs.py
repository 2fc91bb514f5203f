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
from vaekit.runs.pictures import make_pictures
from vaekit.core.models import VAE
from vaekit.training.loop import autocast_dtype, pick_device, resolve_config, train


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
