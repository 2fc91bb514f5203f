"""What the examples share: the command line, wrapping arrays as vaekit data, a quiet config,
and a small training loop for the examples that need their own objective."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import vaekit
from vaekit.data import DataSplits

IMAGES = Path(__file__).resolve().parent / "images"


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=str(IMAGES), help="folder for the picture (default: examples/images)")
    parser.add_argument("--quick", action="store_true", help="the small version the test runs (seconds)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # The examples are meant for a laptop's CPU; one thread each keeps a shared machine usable.
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    return args


def splits(train: np.ndarray, val: np.ndarray, test: np.ndarray, name: str, kind: str = "table") -> DataSplits:
    """Three arrays (N, *shape) as the DataSplits that vaekit.train takes."""
    train, val, test = (torch.as_tensor(np.asarray(a, dtype=np.float32)) for a in (train, val, test))
    binary = all(bool(((a == 0) | (a == 1)).all()) for a in (train, val, test))
    return DataSplits(name=name, kind=kind, shape=tuple(train.shape[1:]), train=train, val=val, test=test,
                      train_labels=None, val_labels=None, test_labels=None, binary=binary, num_classes=0,
                      class_names=None, preprocessing={})


def quiet_config(**training) -> vaekit.Config:
    """A Config with fp32, no progress bar, and the given training settings."""
    cfg = vaekit.Config()
    cfg.training.progress = False
    cfg.training.precision = "fp32"
    cfg.training.device = "cpu"
    for key, value in training.items():
        setattr(cfg.training, key, value)
    return cfg


def digits_vae(hidden: tuple[int, ...], latent_dim: int, epochs: int, seed: int, beta: float = 1.0):
    """(model, data): a Bernoulli VAE trained with vaekit.train on scikit-learn's digits."""
    from vaekit.data import load_dataset

    cfg = quiet_config(epochs=epochs, batch_size=64, seed=seed, beta=beta)
    cfg.data.name = "digits"
    cfg.model.hidden, cfg.model.latent_dim, cfg.model.likelihood = hidden, latent_dim, "bernoulli"
    data = load_dataset(cfg.data)
    torch.manual_seed(seed)
    model = vaekit.VAE(cfg.model, data.shape)
    vaekit.train(model, data, cfg)
    return model, data


def fit(model: torch.nn.Module, x: torch.Tensor, loss_fn: Callable, steps: int, batch_size: int = 64,
        lr: float = 1e-3, seed: int = 0, record: Callable | None = None, every: int = 50,
        optimizer: torch.optim.Optimizer | None = None) -> list[dict]:
    """Adam (or ``optimizer``) on ``loss_fn(model, xb, step, generator) -> dict with 'loss'`` for ``steps`` steps of
    shuffled minibatches; ``record(step)`` (every ``every`` steps and at the end) returns a dict
    of numbers kept in the returned history."""
    g = torch.Generator().manual_seed(seed)
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    history, order, at = [], torch.randperm(x.shape[0], generator=g), 0
    for step in range(steps):
        if at + batch_size > x.shape[0]:
            order, at = torch.randperm(x.shape[0], generator=g), 0
        xb = x[order[at:at + batch_size]]
        at += batch_size
        terms = loss_fn(model, xb, step, g)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        if record is not None and ((step + 1) % every == 0 or step + 1 == steps):
            history.append({"step": step + 1, **record(step + 1, terms)})
    return history


def save(fig, out: str, name: str) -> Path:
    """Save a matplotlib figure as ``out/name`` (a small PNG) and close it."""
    import matplotlib.pyplot as plt  # kept off the import path of run(), which draws nothing

    path = Path(out) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path
