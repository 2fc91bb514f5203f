"""The training loop: plain, top to bottom, in the order it runs.

``train(model, data, cfg)`` runs Adam on minibatches (:func:`vaekit.training.step.step`: the
objective's terms, backward, clip, update), evaluates on the validation split after every epoch,
stops early when the validation loss has not improved for ``training.early_stopping`` epochs, and
leaves the model holding the best validation epoch's weights. It writes no files: a caller that
keeps a run folder passes ``on_epoch(record, state)``, called after every epoch with the metrics
record and the resume state (see :mod:`vaekit.runs.jobs`).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch

from vaekit.config import Config
from vaekit.core.m2 import predict_classes
from vaekit.core.objectives import beta_at
from vaekit.data.batching import Batches
from vaekit.measure.diagnostics import PosteriorCollapseWarning, collapse_message, latent_diagnostics
from vaekit.measure.evaluation import elbo_breakdown
from vaekit.training import distributed
from vaekit.training.monitor import EpochSums
from vaekit.training.progress import Progress
from vaekit.training.runtime import float32_matmul_precision, precision_record, runtime_for
from vaekit.training.schedule import lr_at
from vaekit.training.setup import eval_inputs, needs_resolving, resolve_config
from vaekit.training.step import objective_for, step

__all__ = ["train", "eval_inputs", "TrainState"]

OnEpoch = Callable[[dict[str, Any], dict[str, Any]], None]


@dataclass
class TrainState:
    """Where a run stands between epochs; what the resume file holds besides the optimiser."""

    epoch: int = 0  # epochs finished
    step: int = 0  # optimiser steps taken
    best_val: float = math.inf
    bad_epochs: int = 0  # epochs since the best validation loss
    best_epoch: int = 0  # 0: none yet
    best_model: Optional[dict[str, torch.Tensor]] = None  # the best epoch's weights, on the CPU
    history: list = field(default_factory=list)


def train(model: torch.nn.Module, data, cfg: Config, on_epoch: Optional[OnEpoch] = None,
          resume: Optional[dict[str, Any]] = None, history: Optional[list] = None) -> list[dict[str, Any]]:
    """Train ``model`` (any model kind with ``encode``/``decode``/``forward``) on ``data`` (a
    DataSplits) as ``cfg.training`` says; returns one metrics dict per epoch.

    ``cfg`` is resolved against ``data`` here unless the caller did it (:func:`resolve_config`).
    ``resume``: a state that ``on_epoch`` was given (read back from a run folder), with
    ``history`` the records of its epochs: model, optimiser, random-generator state and counters
    continue exactly where it stopped.
    """
    if needs_resolving(cfg):
        resolve_config(cfg, data)
    t = cfg.training
    rt = runtime_for(model, t, data.kind, kept=(resume or {}).get("precision"))
    rank, world = distributed.rank_and_world()
    g = torch.Generator(device=rt.device).manual_seed(t.seed)  # the same stream on every rank
    state = _start(model, rt, g, resume, history)
    dynamic = cfg.data.binarize == "dynamic"
    batches = Batches(data.train if dynamic else eval_inputs(data, "train", cfg), _labels(model, data, "train"),
                      t.batch_size, shuffle=True, binarize=dynamic, generator=g, device=rt.device, rank=rank,
                      world_size=world)
    total_steps = t.epochs * len(batches)
    with float32_matmul_precision(t.matmul_precision):  # compile=auto's FLOP count runs the model once
        objective = objective_for(model, t, total_steps, batches, rt.matmul_dtype)
    val = (eval_inputs(data, "val", cfg), _labels(model, data, "val"))
    # the matmul precision for this run only: training.matmul_precision throughout, and the steps under
    # the one the run picked (precision=auto may give them bf16 matmuls); the bar closed however the loop ends
    with float32_matmul_precision(t.matmul_precision), Progress(t, state.epoch, len(batches), rank == 0) as shown:
        while state.epoch < t.epochs:
            shown.start_epoch(state.epoch)
            with float32_matmul_precision(rt.matmul_precision):
                record = _train_epoch(model, batches, objective, rt, g, state, t, shown, total_steps)
            record.update(_validate(model, val, t))
            stopping = _keep_best(model, record, state, t)
            state.history.append(record)
            shown.end_epoch(record, stopping)
            if on_epoch is not None:
                on_epoch(record, _resume_state(model, rt, g, state))
            if stopping:
                shown.say(f"early stopping: no better validation loss for {state.bad_epochs} epochs; "
                          f"keeping epoch {state.best_epoch} (val loss {state.best_val:.3f})")
                break
    if state.best_model is not None and state.best_epoch != state.epoch:
        model.load_state_dict(state.best_model)  # the best validation epoch's weights
    if rank == 0:  # one warning, from rank 0, as for every other message of the run
        _warn_if_collapsed(state)
    return state.history


def _start(model, rt, g: torch.Generator, resume: Optional[dict[str, Any]], history) -> TrainState:
    """A fresh state, or the one ``resume`` holds loaded into the model, optimiser and generator."""
    if resume is None:
        return TrainState()
    model.load_state_dict(resume["model"])
    rt.optimizer.load_state_dict(resume["optimizer"])
    g.set_state(resume["rng"])
    epoch = int(resume["epoch"])
    return TrainState(epoch=epoch, step=int(resume["step"]), best_val=float(resume["best_val"]),
                      bad_epochs=int(resume["bad_epochs"]), best_epoch=int(resume.get("best_epoch", 0)),
                      best_model=resume.get("best_model"), history=list(history or [])[:epoch])


def _train_epoch(model, batches, objective, rt, g, state: TrainState, t, shown: Progress,
                 total_steps: int) -> dict[str, Any]:
    """One pass over the training split; the epoch's metrics record (training terms, speed)."""
    model.train()
    sums, started, beta = EpochSums(rt.device, state.step), time.perf_counter(), t.beta
    for x, y in batches:
        if t.warmup_steps > 0 or t.kl_cycles > 0:  # a KL warm-up or cyclical annealing
            beta = beta_at(state.step, t.beta, t.warmup_steps, t.kl_cycles, total_steps)
        if t.lr_schedule != "constant":
            for group in rt.optimizer.param_groups:
                group["lr"] = lr_at(state.step, t.lr, t.lr_schedule, total_steps)
        if rt.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        terms = step(objective, x, y, g, beta, state.step, rt)
        state.step += 1
        looked = sums.add(terms, x.shape[0], state.step)
        shown.update(sums.means() if looked and shown.shows_bar else None)
    recon, kl, loss, seen = sums.total(state.step, state.epoch + 1)
    seconds = time.perf_counter() - started
    state.epoch += 1
    # beta: the KL weight of the epoch's last step (not the next one's: a cycle ending here would read 0)
    return {"epoch": state.epoch, "step": state.step, "beta": beta, "lr": rt.optimizer.param_groups[0]["lr"],
            "train_loss": loss, "train_recon": recon, "train_kl": kl,
            "epoch_time_s": seconds, "samples_per_s": seen / max(seconds, 1e-9)}


def _validate(model, val, t) -> dict[str, Any]:
    """The validation metrics of an epoch (none without a validation split): the ELBO terms and
    latent diagnostics on up to 2000 examples (their cost grows with the square of the count),
    and for a model with a classifier q(y|x) (M2) its error on the split's labels."""
    x, y = val
    if x.shape[0] == 0:
        return {}
    terms = elbo_breakdown(model, x, y, beta=t.beta, batch_size=t.eval_batch_size, seed=t.seed)
    d = latent_diagnostics(model, x[:2000], None if y is None else y[:2000], batch_size=t.eval_batch_size, seed=t.seed)
    return {"val_loss": terms["loss"], "val_recon": terms["recon"], "val_kl": terms["kl"], "val_elbo": terms["elbo"],
            "val_active_units": d["active_units"], "val_mutual_info": d["mutual_info"], "val_kl_per_dim": d["kl_per_dim"],
            **_classifier_error(model, x, y, t.eval_batch_size)}


def _classifier_error(model, x: torch.Tensor, y: Optional[torch.Tensor], batch_size: int) -> dict[str, float]:
    """``val_error``: the fraction of the labelled validation rows (y >= 0) that the model's
    classifier (``classify``, the logits of q(y|x)) gets wrong; nothing for a model without one.
    It is recorded only: the best epoch and early stopping stay on ``val_loss`` (:func:`_keep_best`),
    the bound the run optimises, whatever the error does."""
    if not callable(getattr(model, "classify", None)) or y is None:
        return {}
    known = y >= 0  # -1 marks an unlabelled row (a semi-supervised split)
    if not bool(known.any()):
        return {}
    wrong = predict_classes(model, x[known], batch_size) != y[known].cpu()
    return {"val_error": wrong.double().mean().item()}


def _keep_best(model, record: dict[str, Any], state: TrainState, t) -> bool:
    """Track the best validation epoch (its weights kept on the CPU) and record it; True when early
    stopping says stop. Without a validation split every epoch counts as the best so far."""
    val = record.get("val_loss")
    if val is None:  # the weights kept are the last epoch's: nothing to copy
        state.best_epoch, state.best_model = record["epoch"], None
    elif state.best_epoch == 0 or val < state.best_val - 1e-6:
        state.best_val, state.best_epoch, state.bad_epochs = val, record["epoch"], 0
        state.best_model = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    else:
        state.bad_epochs += 1
    record["best_epoch"] = state.best_epoch
    return val is not None and bool(t.early_stopping) and state.bad_epochs >= t.early_stopping


def _resume_state(model, rt, g: torch.Generator, state: TrainState) -> dict[str, Any]:
    """What resumes the run exactly from the end of this epoch (the current weights, not the best)."""
    current = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {"model": current, "optimizer": rt.optimizer.state_dict(), "rng": g.get_state(), "epoch": state.epoch,
            "step": state.step, "best_val": state.best_val, "bad_epochs": state.bad_epochs,
            "best_epoch": state.best_epoch, "precision": precision_record(rt.amp, rt.matmul_precision, rt.device),
            # the same tensors as "model" when this epoch is the best: torch.save stores them once
            "best_model": current if state.best_epoch == state.epoch else state.best_model}


def _labels(model, data, split: str) -> Optional[torch.Tensor]:
    return getattr(data, f"{split}_labels") if getattr(model, "conditional", False) else None


def _warn_if_collapsed(state: TrainState) -> None:
    """Warn, naming the remedies, when the last epoch's posterior has collapsed onto the prior."""
    last = state.history[-1] if state.history else None
    if last and "val_active_units" in last:
        message = collapse_message(last["val_kl"], last["val_active_units"], len(last["val_kl_per_dim"]))
        if message:
            warnings.warn(message, PosteriorCollapseWarning, stacklevel=3)
