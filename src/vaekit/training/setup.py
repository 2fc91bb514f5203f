"""Before the first step: the ``auto`` choices resolved against the data, the settings no run
could use refused, and the model's size checked against memory before it is allocated."""

from __future__ import annotations

import math
import os
from typing import Callable, Optional

import torch

from vaekit.config import Config
from vaekit.data.batching import binarize_fixed
from vaekit.errors import ConfigError
from vaekit.training import distributed
from vaekit.training.console import warn


def notice(message: str) -> None:
    """A one-line warning on stderr, from rank 0 only (under torchrun every rank resolves the config)."""
    if distributed.is_main():
        warn(message)


def needs_resolving(cfg: Config) -> bool:
    """Whether ``cfg`` still holds a choice that :func:`resolve_config` makes (an ``auto``, no epochs)."""
    return "auto" in (cfg.data.binarize, cfg.model.likelihood) or cfg.training.epochs is None


def resolve_config(cfg: Config, data) -> Config:
    """Replace the ``auto`` choices by what suits ``data`` (a DataSplits), fit the batch to the
    training split, and refuse combinations no run could use; returns ``cfg``."""
    if cfg.data.binarize == "auto":  # MNIST is binarised dynamically by convention (Burda et al. 2015)
        cfg.data.binarize = "dynamic" if data.name == "mnist" else "none"
    if cfg.data.binarize != "none" and data.kind != "image":
        raise ConfigError(f"data.binarize={cfg.data.binarize} applies to images in [0, 1], not to tables; use binarize=none")
    if cfg.model.likelihood == "auto":
        cfg.model.likelihood = "bernoulli" if data.binary or cfg.data.binarize != "none" else "gaussian-learned"
    if cfg.model.likelihood == "bernoulli" and not data.binary and cfg.data.binarize == "none":
        lo, hi = float(data.train.min()), float(data.train.max())
        if lo < 0 or hi > 1:
            raise ConfigError(
                f"likelihood=bernoulli needs data in [0, 1], these range over [{lo:.3g}, {hi:.3g}]; use likelihood=gaussian-learned"
            )
    if cfg.training.epochs is None:
        cfg.training.epochs = min(1000, max(10, math.ceil(500_000 / data.train.shape[0])))
    if cfg.model.model == "cvae" and data.num_classes < 1:
        raise ConfigError("model=cvae needs labelled data: an image set with classes, or data.label_column for a table")
    if cfg.model.model == "ae":
        _as_autoencoder(cfg)
    _check_objective(cfg)
    _fit_batch(cfg, data.train.shape[0])
    if data.val.shape[0] == 0:
        stopping = " and no early stopping" if cfg.training.early_stopping else ""
        notice(f"no validation split (data.val_fraction={cfg.data.val_fraction:g} of {data.name}): "
               f"no validation metrics{stopping}; the last epoch's weights are kept")
    return cfg.validate()


def _as_autoencoder(cfg: Config) -> None:
    """model=ae trains -log p(x|z) alone: beta is 0, and the settings that shape a KL term are refused."""
    t = cfg.training
    if t.warmup_steps or t.kl_cycles or t.free_bits or t.objective != "elbo" or t.compile is True:
        raise ConfigError("model=ae has no KL term and draws no z: warmup_steps, kl_cycles, free_bits, objective=iwae "
                          "and compile do not apply; drop them")
    t.beta = 0.0
    t.compile = False if t.compile == "auto" else t.compile


def _check_objective(cfg: Config) -> None:
    t, world = cfg.training, distributed.rank_and_world()[1]
    if t.compile is True and (t.objective != "elbo" or world > 1):
        raise ConfigError("training.compile applies to objective=elbo in one process; "
                          "turn it off for objective=iwae or under torchrun")
    if t.trim > 0 and (t.compile is True or t.objective != "elbo" or world > 1):
        raise ConfigError("training.trim applies to objective=elbo in one process without training.compile; "
                          "set trim=0 for objective=iwae, compile or torchrun")


def _fit_batch(cfg: Config, rows: int) -> None:
    """A batch larger than the training split becomes the whole split, as scikit-learn's MLP does
    (``batch_size = min(batch_size, n_samples)``): a small table trains with the defaults instead
    of being refused, and the user is told once."""
    if rows < 1:
        raise ConfigError("the training split is empty; use more data or a smaller data.val_fraction / test_fraction")
    if cfg.training.batch_size > rows:
        notice(f"training.batch_size={cfg.training.batch_size} is larger than the {rows} training examples; "
               f"using batch_size={rows} (the whole split)")
        cfg.training.batch_size = rows


def eval_inputs(data, split: str, cfg: Config) -> torch.Tensor:
    """The evaluation copy of a split: one fixed, seeded binarisation when training binarises."""
    x = getattr(data, split)
    if cfg.data.binarize == "dynamic":
        return binarize_fixed(x, seed=cfg.data.split_seed)
    if cfg.data.binarize == "threshold":
        return (x > 0.5).to(x.dtype)
    return x


# Bytes per parameter that training holds at once in float32: the weights, their gradients, Adam's
# two moments, and the best epoch's weights kept for early stopping.
TRAINING_BYTES_PER_PARAMETER = 5 * 4


def available_memory(device: torch.device) -> Optional[int]:
    """Free bytes on ``device`` (a GPU's free memory, the host's MemAvailable), None when unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(build: Callable[[], torch.nn.Module], device: torch.device, what: str = "the model") -> int:
    """Count the parameters of the model ``build()`` makes without allocating it (on the meta
    device) and refuse with a ConfigError when training it needs more memory than ``device`` has
    free (a 100-million-dimensional latent space asks for hundreds of GB; torch would fail
    mid-allocation with a traceback). Returns the parameter count."""
    with torch.device("meta"):
        count = sum(p.numel() for p in build().parameters())
    need, free = count * TRAINING_BYTES_PER_PARAMETER, available_memory(device)
    if free is not None and need > free:
        raise ConfigError(
            f"{what} has {count:,} parameters; training it needs about {_size(need)} ({TRAINING_BYTES_PER_PARAMETER} bytes "
            f"per parameter: weights, gradients, Adam's moments, best weights) but {device} has {_size(free)} free; "
            "use a smaller model.latent_dim, model.hidden or model.channels"
        )
    return count


def _size(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    return ""  # pragma: no cover
