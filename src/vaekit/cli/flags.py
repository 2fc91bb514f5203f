"""The flags of ``vaekit train`` (and ``sweep``): each sets one config key, and its help shows the
key's default as :mod:`vaekit.config` defines it, so the help and the code cannot disagree.

This module imports only the standard library and :mod:`vaekit.config` (no torch), so that
``vaekit --help`` and an argument error answer at once.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Literal, NamedTuple

from vaekit.config import Config

# (flag, config key, metavar, help); the default is appended from the config dataclasses
_TABLE = [
    ("--data", "data.name", "NAME|PATH", "digits | mnist | fashion-mnist | binarized-mnist, or a .csv, .npy or image "
     "folder (--model sequence: moses, or a .csv/.txt of SMILES)"),
    ("--data-dir", "data.data_dir", "DIR", "where datasets live"),
    ("--binarize", "data.binarize", None, "how images become 0/1 (auto: dynamic for MNIST)"),
    ("--label-column", "data.label_column", "COLUMN", "table column holding class labels (not a feature)"),
    ("--labels", "data.labels", "N", "--model m2, adgm or sdgm: keep the labels of N training rows, drawn per class with "
     "data.label_seed (recorded in config.json); the other rows are unlabelled"),
    ("--model", "model.model", "{vae,cvae,ae,m2,adgm,sdgm,tabular,sequence}",
     "vae; cvae: conditioned on the label; ae: the same networks without the KL term (the contrast); "
     "m2: semi-supervised, a classifier inside a CVAE (with --labels); adgm: M2 with an auxiliary variable "
     "(Maaloe et al. 2016); sdgm: the ADGM with the auxiliary variable in the generative model; tabular: a TabularVAE on a .csv; "
     "sequence: a GRU VAE over SMILES (--data moses or a SMILES file)"),
    ("--m1", "model.m1", "RUN", "--model m2, adgm or sdgm: M1+M2, M2 (or the ADGM, SDGM) learning on the posterior "
     "means of the VAE run RUN (its data and split; the new run keeps M1's weights)"),
    ("--aux-dim", "model.aux_dim", "N", "--model adgm or sdgm: dimensions of the auxiliary variable (default: --latent-dim)"),
    ("--arch", "model.arch", None, "encoder and decoder networks"),
    ("--hidden", "model.hidden", "WIDTHS", "MLP hidden widths, comma-separated, e.g. 200,200"),
    ("--channels", "model.channels", "CHANNELS", "conv channels, comma-separated, e.g. 32,64"),
    ("--latent-dim", "model.latent_dim", "N", "latent dimensions"),
    ("--likelihood", "model.likelihood", None, "p(x|z) (auto: bernoulli for binary data, else gaussian-learned)"),
    ("--prior", "model.prior", None, "p(z): standard N(0, I), or vamp (Tomczak & Welling 2018: the mixture of the "
     "posteriors at learned pseudo-inputs)"),
    ("--pseudo-inputs", "model.pseudo_inputs", "K", "the VampPrior's pseudo-inputs (components)"),
    ("--epochs", "training.epochs", "N", "passes over the training split"),
    ("--batch-size", "training.batch_size", "N", "minibatch size"),
    ("--lr", "training.lr", "RATE", "Adam learning rate"),
    ("--lr-schedule", "training.lr_schedule", None, "learning rate over the run (cosine: from --lr down to 0)"),
    ("--beta", "training.beta", "BETA", "KL weight (beta-VAE)"),
    ("--warmup-steps", "training.warmup_steps", "STEPS", "KL weight grows from 0 to beta over this many steps"),
    ("--kl-cycles", "training.kl_cycles", "N", "cyclical KL annealing: N cycles, the weight rising over each one's first half"),
    ("--free-bits", "training.free_bits", "NATS", "free bits per latent dimension"),
    ("--objective", "training.objective", None, "training objective"),
    # the config says num_samples, the package's word for every count of importance samples; the
    # flag keeps the readable name of what it counts for
    ("--iw-samples", "training.num_samples", "K", "importance samples per example for --objective iwae"),
    ("--early-stopping", "training.early_stopping", "EPOCHS", "stop after this many epochs without a better "
     "validation loss (0: off)"),
    ("--seed", "training.seed", "SEED", "random seed (weights, batches, noise)"),
    ("--device", "training.device", None, "where to train (auto: cuda when there is one)"),
]

# Defaults that are None in the config mean "decided at run time"; say how.
_DEFAULT_TEXT = {
    "data.data_dir": "$VAEKIT_DATA_DIR, else ~/.cache/vaekit",
    "training.epochs": "enough to see about 500k examples, 10 to 1000: digits 398, MNIST 10",
    "data.label_column": "none",
}


class Flag(NamedTuple):
    flag: str
    key: str  # the config key it sets, e.g. training.lr
    metavar: str
    help: str


def _field(key: str) -> dataclasses.Field:
    section, name = key.split(".")
    return {f.name: f for f in dataclasses.fields(getattr(Config(), section))}[name]


def default_text(key: str) -> str:
    """The default of a config key as the help shows it: 0.001, 400, 32,64, auto, ..."""
    if key in _DEFAULT_TEXT:
        return _DEFAULT_TEXT[key]
    section, name = key.split(".")
    value = getattr(getattr(Config(), section), name)
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _choices_metavar(key: str) -> str:
    """'{a,b,c}' for a Literal config field."""
    section, name = key.split(".")
    hints = typing.get_type_hints(type(getattr(Config(), section)))
    tp = hints[name]
    if typing.get_origin(tp) is not Literal:
        raise TypeError(f"{key} has no fixed choices; give its flag a metavar")
    return "{" + ",".join(typing.get_args(tp)) + "}"


def train_flags() -> list[Flag]:
    """Every flag of ``vaekit train`` that sets a config key, with metavar and help (default included)."""
    flags = []
    for flag, key, metavar, text in _TABLE:
        _field(key)  # fails loudly if the config lost the key
        flags.append(Flag(flag, key, metavar or _choices_metavar(key), f"{text} (default: {default_text(key)})"))
    return flags


TRAIN_FLAGS = train_flags()
