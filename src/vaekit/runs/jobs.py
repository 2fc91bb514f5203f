"""Whole jobs, one call each: train a run folder, resume it, and what both share.

These are what the command line calls; Python users call them directly. The training loop
(:func:`vaekit.training.loop.train`) writes no files: :class:`RunWriter` is the hook it calls
after every epoch, and it writes the run folder through :mod:`vaekit.runs.folder`.
"""

from __future__ import annotations

import copy
import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from vaekit.config import Config
from vaekit.core.registry import CONFIG_MODELS, config_model_class, either_of, semi_supervised_models
from vaekit.data import load_dataset
from vaekit.data.splits import keep_labels
from vaekit.errors import ConfigError, RunInterrupted, TrainingError
from vaekit.runs import folder
from vaekit.runs.pictures import make_pictures
from vaekit.training.loop import train
from vaekit.training.runtime import pick_device, run_precision
from vaekit.training.setup import check_fits, resolve_config


def default_run_dir() -> Path:
    return Path("runs") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def data_info(data) -> dict[str, Any]:
    return {
        "name": data.name, "kind": data.kind, "shape": list(data.shape), "binary": data.binary,
        "num_classes": data.num_classes, "class_names": data.class_names, "preprocessing": data.preprocessing,
        "sizes": {"train": data.train.shape[0], "val": data.val.shape[0], "test": data.test.shape[0]},
        # semi-supervised runs: which training rows kept their labels (indices into the training split)
        **({"labelled": data.labelled} if getattr(data, "labelled", None) else {}),
    }


def load_job_data(cfg: Config):
    """The run's data; with ``data.labels`` (model=m2) only that many training labels are kept,
    drawn per class with ``data.label_seed`` (:func:`vaekit.data.splits.keep_labels`)."""
    data = load_dataset(cfg.data)
    if cfg.data.labels is None:
        return data
    kinds = semi_supervised_models()
    if cfg.model.model not in kinds:
        raise ConfigError("data.labels (--labels) keeps a few labels for semi-supervised training: use it with "
                          f"--model {either_of(kinds)}")
    return keep_labels(data, cfg.data.labels, cfg.data.label_seed)


@dataclass
class Job:
    """A model ready to train: its resolved config, data, device, and (resuming) the state to continue from."""

    cfg: Config
    data: Any
    model: torch.nn.Module
    device: torch.device
    state: Optional[dict[str, Any]] = None  # a resume state; None: from the first epoch
    history: list = field(default_factory=list)  # the metrics of the epochs before ``state``


def new_job(config: Optional[Config]) -> Job:
    """The data, resolved config and freshly initialised model of a new run (every rank alike)."""
    cfg = copy.deepcopy(config) if config is not None else Config()
    cfg.validate()
    if cfg.model.model not in CONFIG_MODELS:  # model=sequence tokenises its data first
        raise ConfigError(f"model={cfg.model.model} is trained by vaekit.apps.molecules.jobs.train_sequence_run "
                          "(vaekit train --model sequence), not train_run")
    if cfg.model.m1 is not None:  # M2 on the codes of another run: the application's job prepares them
        raise ConfigError("model.m1 (M1+M2) is trained by vaekit.apps.semisupervised_job.train_m1m2_run "
                          "(vaekit train --model m2 --m1 RUN), not train_run")
    data = load_job_data(cfg)
    resolve_config(cfg, data)
    kind = config_model_class(cfg.model.model)  # core/registry.py: one line per model kind
    return Job(cfg, data, *_build(lambda: kind(cfg.model, data.shape, data.num_classes), cfg))


def resumed_job(run_dir: str | Path, epochs: Optional[int] = None) -> tuple[Job, dict[str, Any]]:
    """The job that continues ``run_dir`` from its last checkpoint (to ``epochs`` in all, if given),
    and the run's config.json. Reads the folder and changes nothing in it."""
    run_dir = Path(run_dir)
    doc = folder.read_run(run_dir)
    cfg = folder.run_config(doc)
    if cfg.model.m1 is not None:
        raise ConfigError(f"{run_dir} is an M1+M2 run: continue it with "
                          "vaekit.apps.semisupervised_job.resume_m1m2_run (vaekit train --resume RUN)")
    if epochs is not None:
        cfg.training.epochs = epochs
        cfg.validate()
    # A run killed before its first checkpoint was complete holds config.json (and at most the
    # first epoch's weights and metrics line) but no resume file: start it again from scratch,
    # with the same seed, so it ends with the same weights as an uninterrupted run.
    fresh = not (run_dir / folder.RESUME).exists() and (
        not (run_dir / folder.WEIGHTS).exists() or len(folder.read_metrics(run_dir)) <= 1
    )
    state = None if fresh else folder.load_resume(run_dir)
    data = load_job_data(cfg)
    model, device = _build(lambda: folder.build_model(doc), cfg)
    if state is not None:
        folder.check_resume_state(state, model, run_dir)
    history = [] if state is None else folder.read_metrics(run_dir)[: int(state["epoch"])]
    return Job(cfg, data, model, device, state, history), doc


def _build(make, cfg: Config) -> tuple[torch.nn.Module, torch.device]:
    """The model ``make()`` builds, seeded by the run's seed, on the run's device; refused up front
    (ConfigError) when training it would not fit in that device's memory."""
    device = pick_device(cfg.training.device)
    check_fits(make, device)
    torch.manual_seed(cfg.training.seed)  # weight initialisation
    return make().to(device), device


class RunWriter:
    """The loop's ``on_epoch``: after every epoch, the weights when the epoch is the best so far
    (so model.safetensors holds the best validation epoch's), the metrics line, then the resume
    file (the current state, so that resuming is exact). Each file is written atomically."""

    def __init__(self, run_dir: Path, model: torch.nn.Module, saved_epoch: int = 0):
        self.run_dir, self.model, self.saved_epoch = run_dir, model, saved_epoch
        self.board = _tensorboard(run_dir)

    def __call__(self, record: dict[str, Any], state: dict[str, Any]) -> None:
        if record.get("best_epoch") == record["epoch"]:
            folder.save_weights(self.run_dir, self.model)
        folder.append_metrics(self.run_dir, record)
        folder.save_resume(self.run_dir, state)
        self.saved_epoch = record["epoch"]
        if self.board is not None:
            for key, value in record.items():
                if key not in ("epoch", "step", "best_epoch") and isinstance(value, (int, float)):
                    self.board.add_scalar(key.replace("_", "/", 1), value, record["epoch"])
            self.board.flush()

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


def _tensorboard(run_dir: Path):
    try:
        # local: tensorboard is optional, and heavy to import
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def train_run(config: Optional[Config] = None, out: Optional[str | Path] = None) -> Path:
    """Train a new run on ``config`` (default: the defaults, i.e. digits) and write its folder."""
    run_dir = Path(out) if out is not None else default_run_dir()
    if (run_dir / folder.CONFIG).exists():
        raise ConfigError(f"{run_dir} already holds a run; choose another --out, or continue it with --resume {run_dir}")
    job = new_job(config)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    writer = RunWriter(run_dir, job.model)
    try:
        folder.save_config(run_dir, job.cfg, job.model, data_info(job.data), job.device,
                           *run_precision(job.cfg.training, job.device, job.data.kind, job.model))
        history = train(job.model, job.data, job.cfg, on_epoch=writer)
    except BaseException as exc:
        # A run that never finished an epoch has nothing worth keeping: remove what this call
        # wrote, so no half-made run folder is left behind. After an epoch the folder holds a
        # consistent checkpoint and is kept: `vaekit train --resume RUN` continues it.
        writer.close()
        kept = (run_dir / folder.RESUME).exists()
        if not kept:
            folder.discard_unstarted(run_dir, remove_folder=created)
        _raise_with_run(exc, run_dir if kept else None, writer.saved_epoch)
    writer.close()
    _finish(run_dir, job, history)
    return run_dir


def resume_run(run_dir: str | Path, epochs: Optional[int] = None) -> Path:
    """Continue a run from its last checkpoint (optionally to a new total of ``epochs``)."""
    run_dir = Path(run_dir)
    folder.remove_temporary_files(run_dir)  # left by a crash in the middle of a write
    job, doc = resumed_job(run_dir, epochs)
    # Metrics lines beyond the checkpoint's epoch (a crash between writing them and the resume
    # file) would be written again; drop them so every epoch appears once.
    folder.write_metrics(run_dir, job.history)
    kept = job.state.get("precision") if job.state else None  # what the run started with
    folder.save_config(run_dir, job.cfg, job.model, doc.get("data", data_info(job.data)), job.device,
                       *run_precision(job.cfg.training, job.device, job.data.kind, job.model, kept))
    writer = RunWriter(run_dir, job.model, saved_epoch=len(job.history))
    try:
        history = train(job.model, job.data, job.cfg, on_epoch=writer, resume=job.state, history=job.history)
    except BaseException as exc:
        writer.close()
        _raise_with_run(exc, run_dir, writer.saved_epoch)
    writer.close()
    _finish(run_dir, job, history)
    return run_dir


def _raise_with_run(exc: BaseException, kept: Optional[Path], epoch: int):
    """Re-raise a failed job's exception saying what was kept: Ctrl-C as RunInterrupted(kept), a
    training failure with the folder holding the last good checkpoint; anything else unchanged."""
    if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, RunInterrupted):
        raise RunInterrupted(kept) from exc
    if isinstance(exc, TrainingError) and kept is not None and epoch > 0:
        raise TrainingError(f"{exc}; the last good checkpoint (end of epoch {epoch}) is kept in {kept}") from exc
    raise exc


def finish_run(run_dir: Path, model: torch.nn.Module, data, cfg: Config, history) -> None:
    """What a finished run ends with (its pictures, then where it stands, printed), for a job that
    builds its own model and data (vaekit.apps.semisupervised_job)."""
    _finish(run_dir, Job(cfg, data, model, torch.device("cpu")), history)


def _finish(run_dir: Path, job: Job, history) -> None:
    history = folder.read_metrics(run_dir) or history
    pictures = make_pictures(run_dir, job.model, job.data, job.cfg, history)
    print(f"run folder: {run_dir}")
    last = history[-1] if history else None
    best = next((r for r in history if r["epoch"] == last.get("best_epoch")), last) if last else None
    if best and "val_loss" in best:
        stopped = "" if last["epoch"] == job.cfg.training.epochs else f", stopped early at epoch {last['epoch']}"
        print(f"  validation (best epoch {best['epoch']}{stopped}): loss {best['val_loss']:.3f}, "
              f"recon {best['val_recon']:.3f}, kl {best['val_kl']:.3f} nats/example"
              + (f"; classifier error {best['val_error']:.2%}" if "val_error" in best else ""))
    elif last:
        print(f"  training (epoch {last['epoch']}, no validation split): loss {last['train_loss']:.3f} nats/example")
    print(f"  {folder.CONFIG} ({folder.WEIGHTS}: the best epoch's weights), {folder.METRICS}, {folder.RESUME}")
    print("  pictures: " + ", ".join(p.name for p in pictures))
    print(f"  next: vaekit eval {run_dir}  |  vaekit sample {run_dir} -n 64 --out samples.png")
