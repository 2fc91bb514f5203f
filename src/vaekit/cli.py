"""The ``vaekit`` command. Arguments are parsed here; the work is done by library functions.

Problems with the user's input end with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from .errors import ConfigError, DataError, VaekitError

# Command-line flags of `vaekit train` and the config keys they set (None: not given).
TRAIN_FLAGS = [
    ("--data", "data.name", "digits | mnist | fashion-mnist | binarized-mnist | PATH (.csv, .npy, image folder)"),
    ("--data-dir", "data.data_dir", "where datasets live (default $VAEKIT_DATA_DIR or the user cache)"),
    ("--binarize", "data.binarize", "auto | none | dynamic | threshold"),
    ("--label-column", "data.label_column", "table column holding class labels"),
    ("--model", "model.model", "vae | cvae (conditioned on the label)"),
    ("--arch", "model.arch", "mlp | conv"),
    ("--hidden", "model.hidden", "hidden widths, e.g. 400 or 200,200"),
    ("--channels", "model.channels", "conv channels, e.g. 32,64"),
    ("--latent-dim", "model.latent_dim", "latent dimensions"),
    ("--likelihood", "model.likelihood", "auto | bernoulli | gaussian | gaussian-learned"),
    ("--epochs", "training.epochs", "passes over the training split"),
    ("--batch-size", "training.batch_size", "minibatch size"),
    ("--lr", "training.lr", "Adam learning rate"),
    ("--beta", "training.beta", "KL weight (beta-VAE)"),
    ("--warmup-steps", "training.warmup_steps", "KL warm-up from 0 to beta over this many steps"),
    ("--free-bits", "training.free_bits", "free bits per latent dimension, nats"),
    ("--objective", "training.objective", "elbo | iwae"),
    ("--iw-samples", "training.iw_samples", "importance samples for --objective iwae"),
    ("--early-stopping", "training.early_stopping", "patience in epochs on validation loss (0: off)"),
    ("--seed", "training.seed", "random seed"),
    ("--device", "training.device", "auto | cpu | cuda"),
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        self.exit(2, f"vaekit: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vaekit", description="Train, measure and use variational autoencoders.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a VAE and write a run folder")
    t.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. training.lr=3e-4")
    t.add_argument("--config", help="a .json or .yaml config file")
    t.add_argument("--out", help="run folder (default runs/<date-time>)")
    t.add_argument("--resume", metavar="RUN", help="continue a run from its last checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bar or per-epoch lines")
    for flag, key, text in TRAIN_FLAGS:
        t.add_argument(flag, dest=key, default=None, help=text)

    s = sub.add_parser("sample", help="draw new examples from the prior")
    s.add_argument("run")
    s.add_argument("-n", type=int, default=64, help="how many")
    s.add_argument("--out", help=".png grid or .npy array (default RUN/sample.png)")
    s.add_argument("--label", help="conditional runs: the class to draw (index or name)")
    s.add_argument("--seed", type=int, default=0)

    r = sub.add_parser("reconstruct", help="inputs beside their reconstructions")
    r.add_argument("run")
    r.add_argument("-n", type=int, default=16)
    r.add_argument("--data", help="a file of inputs (default: the run's test split)")
    r.add_argument("--out", help=".png (default RUN/reconstruct.png) or .npy")

    i = sub.add_parser("interpolate", help="decode the path between two inputs' latents")
    i.add_argument("run")
    i.add_argument("--pair", default=None, help="two test-split indices, e.g. 3,17 (default: random)")
    i.add_argument("--method", default="both", choices=["linear", "spherical", "both"])
    i.add_argument("--steps", type=int, default=10)
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--out", help=".png (default RUN/interpolate.png)")

    v = sub.add_parser("traverse", help="vary one latent dimension at a time")
    v.add_argument("run")
    v.add_argument("--dims", help="latent dimensions, e.g. 0,1,2 (default: all)")
    v.add_argument("--index", type=int, default=None, help="test example to start from (default: the prior mean)")
    v.add_argument("--steps", type=int, default=9)
    v.add_argument("--span", type=float, default=3.0)
    v.add_argument("--out", help=".png (default RUN/traverse.png)")

    e = sub.add_parser("encode", help="write posterior means of data")
    e.add_argument("run")
    e.add_argument("--data", help="a .csv/.npy/image folder, or a split name train|val|test (default test)")
    e.add_argument("--out", help=".npy or .csv (default RUN/encoded.npy)")

    ev = sub.add_parser("eval", help="ELBO, reconstruction and KL on the test split")
    ev.add_argument("run")
    ev.add_argument("--split", default="test", choices=["train", "val", "test"])
    ev.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def _train(args) -> int:
    from .config import Config, apply_overrides, load_config_file
    from .runs import resume_run, train_run

    if args.resume:
        if args.config or args.overrides or any(getattr(args, key) is not None for _, key, _ in TRAIN_FLAGS if key != "training.epochs"):
            raise ConfigError("--resume continues a run with its own config; only --epochs may be given with it")
        epochs = getattr(args, "training.epochs")
        resume_run(args.resume, epochs=None if epochs is None else _int(epochs, "--epochs"))
        return 0
    cfg = load_config_file(args.config) if args.config else Config()
    overrides = [f"{key}={getattr(args, key)}" for _, key, _ in TRAIN_FLAGS if getattr(args, key) is not None]
    apply_overrides(cfg, overrides + list(args.overrides))
    if args.no_progress:
        cfg.training.progress = False
    train_run(cfg, out=args.out)
    return 0


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {text!r}") from None


def _out(args, default_name: str) -> Path:
    return Path(args.out) if args.out else Path(args.run) / default_name


def _save_array_or_grid(x: torch.Tensor, path: Path, nrow: int = 8, image: bool = True) -> None:
    from . import plots

    if path.suffix == ".npy":
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, x.numpy())
    elif path.suffix == ".png" and image:
        plots.save_grid(x, path, nrow=nrow)
    else:
        raise ConfigError(f"--out {path}: use a .png or .npy file" if image else f"--out {path}: tables are written as .npy")
    print(f"wrote {path}")


def _label_index(label: str, model, class_names) -> int:
    if not model.conditional:
        raise ConfigError("--label needs a conditional run (train with --model cvae)")
    if class_names and label in class_names:
        return class_names.index(label)
    idx = _int(label, "--label")
    if not 0 <= idx < model.num_classes:
        raise ConfigError(f"--label {label}: classes are 0..{model.num_classes - 1}")
    return idx


def _sample(args) -> int:
    from . import checkpoint

    if args.n < 1:
        raise ConfigError("-n must be at least 1")
    doc = checkpoint.read_run(args.run)
    model = checkpoint.load(args.run)
    g = torch.Generator().manual_seed(args.seed)
    y = None
    if args.label is not None:
        y = torch.full((args.n,), _label_index(args.label, model, doc.get("data", {}).get("class_names")))
    elif model.conditional:
        y = torch.arange(args.n) % model.num_classes
    x = model.sample(args.n, y=y, generator=g)
    _save_array_or_grid(x, _out(args, "sample.png"), image=len(model.data_shape) == 3)
    return 0


def _inputs(args, run_data_tuple, default_split: str = "test"):
    """The inputs a command works on: a split of the run's data, or a file given with --data."""
    from .data import load_array
    from .training import eval_inputs

    model, cfg, data = run_data_tuple
    source = getattr(args, "data", None) or default_split
    if source in ("train", "val", "test"):
        x = eval_inputs(data, source, cfg)
        y = getattr(data, f"{source}_labels")
        return x, (y if model.conditional else None)
    x, y = load_array(source, data.preprocessing, cfg.data.label_column)
    model.check_shape(x)
    if model.conditional and y is None:
        raise DataError(f"{source}: a conditional run needs labels with the inputs")
    return x, (y if model.conditional else None)


def _reconstruct(args) -> int:
    from .latent import reconstruct
    from .runs import run_data

    model, cfg, data = rd = run_data(args.run)
    x, y = _inputs(args, rd)
    x, y = x[: args.n], None if y is None else y[: args.n]
    r = reconstruct(model, x, y)
    out = _out(args, "reconstruct.png")
    if out.suffix == ".npy":
        _save_array_or_grid(r, out)
    else:
        rows = [t for i in range(0, x.shape[0], 8) for t in (x[i : i + 8], r[i : i + 8])]
        _save_array_or_grid(torch.cat(rows), out)
    return 0


def _interpolate(args) -> int:
    from .latent import interpolate
    from .plots import save_rows
    from .runs import run_data

    model, cfg, data = rd = run_data(args.run)
    x, y = _inputs(args, rd)
    if args.pair:
        parts = args.pair.split(",")
        if len(parts) != 2:
            raise ConfigError("--pair takes two indices, e.g. 3,17")
        a, b = (_int(p, "--pair") for p in parts)
    else:
        a, b = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(args.seed))[:2].tolist()
    if not (0 <= a < x.shape[0] and 0 <= b < x.shape[0]):
        raise ConfigError(f"--pair indices must lie in 0..{x.shape[0] - 1}")
    methods = ["linear", "spherical"] if args.method == "both" else [args.method]
    ya = None if y is None else y[a : a + 1]
    rows = torch.cat([interpolate(model, x[a : a + 1], x[b : b + 1], args.steps, m, ya) for m in methods])
    out = _out(args, "interpolate.png")
    save_rows(rows, out)
    print(f"wrote {out} ({', '.join(methods)}; examples {a} -> {b})")
    return 0


def _traverse(args) -> int:
    from .latent import traverse
    from .plots import save_rows
    from .runs import run_data

    model, cfg, data = rd = run_data(args.run)
    dims = None if not args.dims else [_int(d, "--dims") for d in args.dims.split(",")]
    x = y = None
    if args.index is not None:
        xs, ys = _inputs(args, rd)
        if not 0 <= args.index < xs.shape[0]:
            raise ConfigError(f"--index must lie in 0..{xs.shape[0] - 1}")
        x, y = xs[args.index : args.index + 1], None if ys is None else ys[args.index : args.index + 1]
    elif model.conditional:
        y = torch.zeros(1, dtype=torch.long)
    rows = traverse(model, x, dims, args.steps, args.span, y)
    out = _out(args, "traverse.png")
    save_rows(rows, out)
    print(f"wrote {out}")
    return 0


def _encode(args) -> int:
    from .evaluation import posterior_means
    from .runs import run_data

    rd = run_data(args.run)
    x, y = _inputs(args, rd)
    z = posterior_means(rd[0], x, y).numpy()
    out = _out(args, "encoded.npy")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        header = ",".join(f"z{i}" for i in range(z.shape[1]))
        np.savetxt(out, z, delimiter=",", header=header, comments="", fmt="%.6g")
    elif out.suffix == ".npy":
        np.save(out, z)
    else:
        raise ConfigError(f"--out {out}: use a .npy or .csv file")
    print(f"wrote {out} ({z.shape[0]} x {z.shape[1]} posterior means)")
    return 0


def _eval(args) -> int:
    from .runs import evaluate_run

    result = evaluate_run(args.run, args.split)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.run}: {result['examples']} {result['split']} examples, nats per example")
    for key, text in (("elbo", "ELBO"), ("recon", "reconstruction -log p(x|z)"), ("kl", "KL(q(z|x) || p(z))"),
                      ("loss", "loss (recon + beta KL)"), ("bits_per_dim", "-ELBO in bits/dim")):
        if key in result:
            print(f"  {text:<30} {result[key]:>10.3f}")
    return 0


COMMANDS = {"train": _train, "sample": _sample, "reconstruct": _reconstruct, "interpolate": _interpolate,
            "traverse": _traverse, "encode": _encode, "eval": _eval}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except VaekitError as exc:
        print(f"vaekit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vaekit: interrupted; the last complete epoch is saved (continue with 'vaekit train --resume RUN')", file=sys.stderr)
        return 130
