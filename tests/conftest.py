"""Shared fixtures. Tests never download: the data folder is the offline copy beside the repo."""

import contextlib
import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
os.environ.setdefault("VAEKIT_DATA_DIR", str(SHARED))
torch.set_num_threads(min(2, torch.get_num_threads()))

# The fuzz tests try the same inputs on every run, so a test run's verdict does not depend on luck;
# HYPOTHESIS_PROFILE=explore draws fresh random inputs (and pins what it finds as an @example).
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return Path(os.environ["VAEKIT_DATA_DIR"])


@contextlib.contextmanager
def crash_after(calls: int):
    """Inside the block, the training step's loss raises RuntimeError("simulated crash") from its
    ``calls + 1``-th call on (digits at batch 64: 20 steps per epoch); restored on leaving."""
    from vaekit.training import step as training

    real, made = training.elbo_loss, {"n": 0}

    def flaky(*args, **kwargs):
        made["n"] += 1
        if made["n"] > calls:
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    training.elbo_loss = flaky
    try:
        yield
    finally:
        training.elbo_loss = real


def moses_draw(split: str, n: int, seed: int) -> list:
    """A seeded draw of ``n`` SMILES from the shared MOSES ``split`` (train or test); the calling test
    skips when the shared files are absent."""
    import random

    from vaekit.data.molecules import load_moses, moses_folder

    root = Path(os.environ["VAEKIT_DATA_DIR"])
    if not (moses_folder(root) / f"{split}.csv.gz").is_file():
        pytest.skip("shared MOSES files absent")
    return random.Random(seed).sample(load_moses(split, root), n)


def small_config(**training):
    """A config that trains on digits in about a second."""
    from vaekit import Config

    cfg = Config()
    cfg.model.hidden = (64,)
    cfg.model.latent_dim = 4
    cfg.training.epochs = 2
    cfg.training.batch_size = 64
    cfg.training.progress = False
    for key, value in training.items():
        setattr(cfg.training, key, value)
    return cfg


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """One small trained run on digits, shared by the tests that only read it."""
    from vaekit import train_run

    return train_run(small_config(epochs=3), out=tmp_path_factory.mktemp("runs") / "digits")
