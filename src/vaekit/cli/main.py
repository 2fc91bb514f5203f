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

from vaekit.errors import ConfigError, DataError, VaekitError

# Command-line flags of `vaekit train` and the config keys they set (None: not given).
TRAIN_FLAGS = [
    ("--data", "data.name", "digits | mnist | fashion-mnist | binarized-mnist | PATH (.csv, .npy, image folder)"),
    ("--data-dir", "data.data_dir", "where datasets live (default $VAEKIT_DATA_DIR or the user cache)"),
    ("--binarize", "data.binarize", "auto | none | dynamic | threshold"),
    ("--label-column", "data.label_column", "table column holding class labels"),
    ("--model", "model.model", "vae | cvae (conditioned on the label) | tabular (a TabularVAE on a .csv)"),
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
    t.add_argument("--metadata", help="--model tabular: a JSON column list ({columns: [{name, type}]}) overriding inferred types")
    t.add_argument("--target", help="--model tabular: a categorical column to model last, given the rest of the row "
                                    "(e.g. the label a classifier will learn from the synthetic rows)")
    t.add_argument("--model-every-column", action="store_true",
                   help="--model tabular: also model columns that are a function of a categorical column (read off it by default)")
    for flag, key, text in TRAIN_FLAGS:
        t.add_argument(flag, dest=key, default=None, help=text)

    s = sub.add_parser("sample", help="draw new examples from the prior")
    s.add_argument("run")
    s.add_argument("-n", type=int, default=64, help="how many")
    s.add_argument("--out", help=".png grid or .npy array (default RUN/sample.png)")
    s.add_argument("--label", help="conditional runs: the class to draw (index or name)")
    s.add_argument("--grid", action="store_true", help="conditional runs: one row per class, n // classes per row")
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
    v.add_argument("--dims", help="latent dimensions, e.g. 0,1,2, or 'all' "
                   "(default: the active ones on the test split, the largest KL first)")
    v.add_argument("--index", type=int, default=None, help="test example to start from (default: the prior mean)")
    v.add_argument("--steps", type=int, default=9, help="images per row (default 9)")
    v.add_argument("--span", type=float, default=3.0, help="each row runs from -SPAN to +SPAN around the start (default 3)")
    v.add_argument("--out", help=".png (default RUN/traverse.png)")

    e = sub.add_parser("encode", help="write posterior means of data")
    e.add_argument("run")
    e.add_argument("--data", help="a .csv/.npy/image folder, or a split name train|val|test (default test)")
    e.add_argument("--out", help=".npy or .csv (default RUN/encoded.npy)")

    sc = sub.add_parser("score", help="anomaly scores of data (higher = more anomalous)")
    sc.add_argument("run")
    sc.add_argument("--data", help="a .csv/.npy/image folder, or a split name train|val|test (default test)")
    sc.add_argument("--method", default="nll", choices=["nll", "elbo", "recon"])
    sc.add_argument("--num-samples", type=int, default=100, help="importance samples for --method nll")
    sc.add_argument("--out", help=".csv or .npy (default RUN/scores.csv)")

    im = sub.add_parser("impute", help="fill missing values (NaN or empty cells) with the model")
    im.add_argument("run")
    im.add_argument("--data", required=True, help="a .csv or .npy with NaN / empty cells where values are missing")
    im.add_argument("--method", default="importance", choices=["importance", "pseudo-gibbs", "metropolis"],
                    help="importance: the conditional mean E[x_m | x_o] (least squared error); pseudo-gibbs / metropolis: "
                         "iterate the model")
    im.add_argument("--iters", type=int, default=50, help="sweeps (for importance: pseudo-Gibbs sweeps before its fit)")
    im.add_argument("--seed", type=int, default=0)
    im.add_argument("--out", help=".csv or .npy (default RUN/imputed.<same as --data>)")

    ev = sub.add_parser("eval", help="ELBO, reconstruction and KL on the test split")
    ev.add_argument("run")
    ev.add_argument("--split", default="test", choices=["train", "val", "test"])
    ev.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ev.add_argument("--nll-samples", type=int, default=0, metavar="K",
                    help="add the importance-sampled NLL with K samples per example, e.g. 5000 (default 0: off)")
    ev.add_argument("--limit", type=int, default=None, help="evaluate only the first N examples of the split")
    ev.add_argument("--compile", action="store_true",
                    help="torch.compile the NLL's inner loop: a one-off compile of some seconds, then faster (long evaluations)")

    sw = sub.add_parser("sweep", help="train one run per beta and plot distortion against rate")
    sw.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, as for train")
    sw.add_argument("--beta", dest="betas", required=True, help="comma-separated KL weights, e.g. 0.25,0.5,1,2,4,8")
    sw.add_argument("--out", required=True, help="folder for the runs, sweep.json and the plots")
    sw.add_argument("--config", help="a .json or .yaml config file")
    sw.add_argument("--no-progress", action="store_true")
    for flag, key, text in TRAIN_FLAGS:
        if key != "training.beta":
            sw.add_argument(flag, dest=key, default=None, help=text)

    sy = sub.add_parser("synth", help="synthetic rows from a tabular run (vaekit train --model tabular)")
    sy.add_argument("run")
    sy.add_argument("-n", type=int, default=1000, help="how many rows")
    sy.add_argument("--out", help=".csv (default RUN/synthetic.csv)")
    sy.add_argument("--condition", action="append", default=[], metavar="COLUMN=VALUE",
                    help="only rows with this value (categorical columns; repeatable)")
    sy.add_argument("--seed", type=int, default=0)
    return p


def _train(args) -> int:
    from vaekit.config import Config, apply_overrides, load_config_file
    from vaekit.runs.jobs import resume_run, train_run

    if args.resume:
        if args.config or args.overrides or any(getattr(args, key) is not None for _, key, _ in TRAIN_FLAGS if key != "training.epochs"):
            raise ConfigError("--resume continues a run with its own config; only --epochs may be given with it")
        epochs = getattr(args, "training.epochs")
        epochs = None if epochs is None else _int(epochs, "--epochs")
        if _join_torchrun(args):  # ranks > 0 under torchrun: train alongside rank 0, write nothing
            from vaekit.training.distributed import follow_run

            follow_run(resume=args.resume, epochs=epochs)
            return 0
        resume_run(args.resume, epochs=epochs)
        return 0
    if getattr(args, "model.model") == "tabular":
        return _train_tabular(args)
    if args.metadata or args.target or args.model_every_column:
        raise ConfigError("--metadata, --target and --model-every-column apply to --model tabular only")
    cfg = load_config_file(args.config) if args.config else Config()
    overrides = [f"{key}={getattr(args, key)}" for _, key, _ in TRAIN_FLAGS if getattr(args, key) is not None]
    apply_overrides(cfg, overrides + list(args.overrides))
    if args.no_progress:
        cfg.training.progress = False
    if _join_torchrun(args, cfg.training.device):
        from vaekit.training.distributed import follow_run

        follow_run(cfg)
        return 0
    train_run(cfg, out=args.out)
    return 0


def _join_torchrun(args, device: Optional[str] = None) -> bool:
    """Under torchrun, join the process group; True on the ranks other than 0."""
    from vaekit.training import distributed

    if not distributed.launched():
        return False
    if device is None:  # --resume: the run's own device setting
        from vaekit.runs import folder

        device = folder.run_config(folder.read_run(args.resume)).training.device
    distributed.setup(device)
    return not distributed.is_main()


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {text!r}") from None


def _out(args, default_name: str) -> Path:
    return Path(args.out) if args.out else Path(args.run) / default_name


def _save_array_or_grid(x: torch.Tensor, path: Path, nrow: int = 8, image: bool = True) -> None:
    from vaekit.runs import plots

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
    from vaekit.runs import folder

    if args.n < 1:
        raise ConfigError("-n must be at least 1")
    doc = folder.read_run(args.run)
    model = folder.load(args.run)
    g = torch.Generator().manual_seed(args.seed)
    y, n, nrow = None, args.n, 8
    if args.grid:
        if not model.conditional or args.label is not None:
            raise ConfigError("--grid needs a conditional run (--model cvae) and no --label")
        nrow = max(1, args.n // model.num_classes)  # one row per class
        y = torch.arange(model.num_classes).repeat_interleave(nrow)
        n = y.numel()
    elif args.label is not None:
        y = torch.full((args.n,), _label_index(args.label, model, doc.get("data", {}).get("class_names")))
    elif model.conditional:
        y = torch.arange(args.n) % model.num_classes
    x = model.sample(n, y=y, generator=g)
    _save_array_or_grid(x, _out(args, "sample.png"), nrow=nrow, image=len(model.data_shape) == 3)
    return 0


def _inputs(args, run_data_tuple, default_split: str = "test"):
    """The inputs a command works on: a split of the run's data, or a file given with --data."""
    from vaekit.data import load_array
    from vaekit.training.loop import eval_inputs

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
    from vaekit.measure.latent import reconstruct
    from vaekit.runs.evaluate import run_data

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
    from vaekit.measure.latent import interpolate
    from vaekit.runs.plots import save_labelled_rows
    from vaekit.runs.evaluate import run_data

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
    save_labelled_rows(rows, out, methods)
    print(f"wrote {out} ({', '.join(methods)}; examples {a} -> {b})")
    return 0


def _traverse(args) -> int:
    from vaekit.measure.diagnostics import dims_by_kl, latent_diagnostics
    from vaekit.measure.latent import traverse
    from vaekit.runs.plots import save_labelled_rows
    from vaekit.runs.evaluate import run_data

    model, cfg, data = rd = run_data(args.run)
    if data.kind != "image":
        raise ConfigError(f"{args.run} was trained on a table; traverse draws images (for a table's latents "
                          "use 'vaekit encode', and 'vaekit eval' for the KL per dimension)")
    xs, ys = _inputs(args, rd)
    diagnostics = latent_diagnostics(model, xs[:2000], None if ys is None else ys[:2000], seed=cfg.training.seed)
    if not args.dims:
        dims = dims_by_kl(diagnostics)
        chosen = (f"the {len(dims)} active latent dimensions, the largest KL first (--dims all: every one)"
                  if diagnostics["active_units"] else "no latent dimension is active: all of them, the largest KL first")
    elif args.dims.strip() == "all":
        dims, chosen = list(range(model.latent_dim)), "every latent dimension"
    else:
        dims, chosen = [_int(d, "--dims") for d in args.dims.split(",")], "the dimensions asked for"
    x = y = None
    if args.index is not None:
        if not 0 <= args.index < xs.shape[0]:
            raise ConfigError(f"--index must lie in 0..{xs.shape[0] - 1}")
        x, y = xs[args.index : args.index + 1], None if ys is None else ys[args.index : args.index + 1]
    elif model.conditional:
        y = torch.zeros(1, dtype=torch.long)
    rows = traverse(model, x, dims, args.steps, args.span, y)  # checks that the dims exist
    out = _out(args, "traverse.png")
    kl = diagnostics["kl_per_dim"]
    save_labelled_rows(rows, out, [f"z{d}  KL {kl[d]:.2f}" for d in dims])
    print(f"wrote {out} (rows: {chosen}; KL in nats per test example)")
    return 0


def _write_columns(out: Path, values: np.ndarray, names: list[str]) -> Path:
    """Write an array as .npy (as it is) or as .csv with one named column per feature."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        np.savetxt(out, values.reshape(len(values), -1), delimiter=",", header=",".join(names), comments="", fmt="%.6g")
    elif out.suffix == ".npy":
        np.save(out, values)
    else:
        raise ConfigError(f"--out {out}: use a .npy or .csv file")
    return out


def _encode(args) -> int:
    from vaekit.measure.evaluation import posterior_means
    from vaekit.runs.evaluate import run_data

    rd = run_data(args.run)
    x, y = _inputs(args, rd)
    z = posterior_means(rd[0], x, y).numpy()
    out = _write_columns(_out(args, "encoded.npy"), z, [f"z{i}" for i in range(z.shape[1])])
    print(f"wrote {out} ({z.shape[0]} x {z.shape[1]} posterior means)")
    return 0


def _score(args) -> int:
    from vaekit.apps.anomaly import score_examples
    from vaekit.runs.evaluate import run_data

    rd = run_data(args.run)
    x, y = _inputs(args, rd)
    scores = score_examples(rd[0], x, y, method=args.method, num_samples=args.num_samples).numpy()
    out = _write_columns(_out(args, "scores.csv"), scores, ["anomaly_score"])
    print(f"wrote {out} ({scores.shape[0]} {args.method} anomaly scores; higher = more anomalous)")
    return 0


def _impute(args) -> int:
    from vaekit.apps.impute import impute_file

    out, picture = impute_file(args.run, args.data, args.out, method=args.method, num_iter=args.iters, seed=args.seed,
                               progress=True)
    shown = f"; picture: {picture}" if picture else ""
    print(f"wrote {out} (missing cells filled by method={args.method}{shown})")
    return 0


def _eval(args) -> int:
    from vaekit.runs.evaluate import evaluate_run

    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    result = evaluate_run(args.run, args.split, nll_samples=args.nll_samples, limit=args.limit,
                          compile=args.compile, progress=not args.json and sys.stderr.isatty())
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.run}: {result['examples']} {result['split']} examples, nats per example")
    for key, text in (("elbo", "ELBO"), ("recon", "reconstruction -log p(x|z)"), ("kl", "KL(q(z|x) || p(z))"),
                      ("loss", "loss (recon + beta KL)"), ("bits_per_dim", "-ELBO in bits/dim"),
                      ("nll", f"NLL, k={result.get('nll_samples')}"), ("nll_stderr", "  standard error over examples"),
                      ("nll_bits_per_dim", "NLL in bits/dim"), ("elbo_gap", "ELBO gap log p(x) - ELBO"),
                      ("mutual_info", f"I_q(x;z) (ceiling log N={result['mutual_info_max']:.2f})")):
        if key in result:
            print(f"  {text:<30} {result[key]:>10.3f}")
    print(f"  {'active units':<30} {result['active_units']:>6} of {result['latent_dim']}")
    print("  KL per dimension: " + " ".join(f"{v:.2f}" for v in result["kl_per_dim"]))
    return 0


def _sweep(args) -> int:
    from vaekit.config import Config, apply_overrides, load_config_file
    from vaekit.runs.sweep import parse_betas, sweep

    cfg = load_config_file(args.config) if args.config else Config()
    overrides = [f"{key}={getattr(args, key)}" for _, key, _ in TRAIN_FLAGS
                 if key != "training.beta" and getattr(args, key) is not None]
    apply_overrides(cfg, overrides + list(args.overrides))
    if args.no_progress:
        cfg.training.progress = False
    sweep(cfg, parse_betas(args.betas), args.out)
    return 0


def _train_tabular(args) -> int:
    """`vaekit train --data table.csv --model tabular`: fit a TabularVAE and save it as a run folder."""
    import datetime

    from vaekit.runs.jobs import train_table_run

    allowed = {"data.name", "model.model", "model.hidden", "model.latent_dim", "training.epochs",
               "training.batch_size", "training.lr", "training.beta", "training.seed", "training.device"}
    given = [flag for flag, key, _ in TRAIN_FLAGS if getattr(args, key) is not None and key not in allowed]
    if given or args.config or args.overrides or args.resume:
        raise ConfigError("--model tabular takes --data, --metadata, --target, --hidden, --latent-dim, --epochs, --batch-size, "
                          f"--lr, --beta, --seed, --device, --out (not {', '.join(given) or '--config/--resume/overrides'})")
    if getattr(args, "data.name") is None:
        raise ConfigError("--model tabular needs --data TABLE.csv")
    out = Path(args.out) if args.out else Path("runs") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    if (out / "config.json").exists():
        raise ConfigError(f"{out} already holds a run; choose another --out")
    options = {"metadata": args.metadata, "target": args.target, "verbose": not args.no_progress,
               "derive_columns": not args.model_every_column}
    for key, name, convert in (("model.hidden", "hidden", lambda v: tuple(_int(h, "--hidden") for h in v.split(","))),
                               ("model.latent_dim", "latent_dim", lambda v: _int(v, "--latent-dim")),
                               ("training.epochs", "epochs", lambda v: _int(v, "--epochs")),
                               ("training.batch_size", "batch_size", lambda v: _int(v, "--batch-size")),
                               ("training.lr", "lr", float), ("training.beta", "beta", float),
                               ("training.seed", "seed", lambda v: _int(v, "--seed")), ("training.device", "device", str)):
        if getattr(args, key) is not None:
            try:
                options[name] = convert(getattr(args, key))
            except ValueError:
                raise ConfigError(f"{key}: {getattr(args, key)!r} is not a valid value") from None
    model = train_table_run(getattr(args, "data.name"), out, **options)
    last = model.history_[-1] if model.history_ else None
    print(f"run folder: {out}" + (f"  (validation loss {last['val_loss']:.3f} nats/row)" if last else "")
          + "\n  pictures: curves.png (losses per epoch), columns.png (each column, real against synthetic)")
    print(f"  next: vaekit synth {out} -n 10000 --out synthetic.csv")
    return 0


def _synth(args) -> int:
    from vaekit.apps.tabular.synthesizer import TabularVAE

    if args.n < 1:
        raise ConfigError("-n must be at least 1")
    conditions = {}
    for item in args.condition:
        if "=" not in item:
            raise ConfigError(f"--condition {item!r} is not of the form COLUMN=VALUE")
        key, value = item.split("=", 1)
        conditions[key] = value
    model = TabularVAE.load(args.run)
    table = model.sample(args.n, conditions=conditions or None, seed=args.seed)
    out = _out(args, "synthetic.csv")
    if out.suffix != ".csv":
        raise ConfigError(f"--out {out}: synthetic tables are written as .csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(f"wrote {out} ({len(table)} rows x {table.shape[1]} columns)")
    return 0


COMMANDS = {"synth": _synth, "train": _train, "sample": _sample, "reconstruct": _reconstruct, "interpolate": _interpolate,
            "traverse": _traverse, "encode": _encode, "eval": _eval, "sweep": _sweep,
            "score": _score, "impute": _impute}


def _say(line: str) -> None:
    """One line to stderr in a single write: under torchrun every process may say it, and separate
    writes of the text and its newline interleave into one garbled line."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except VaekitError as exc:
        _say(f"vaekit: error: {exc}")
        return 2
    except KeyboardInterrupt as exc:
        if hasattr(exc, "vaekit_run_dir"):  # set by train_run / resume_run
            run = exc.vaekit_run_dir
            message = (f"the last complete epoch is saved in {run} (continue with 'vaekit train --resume {run}')"
                       if run is not None else "no epoch had finished, so no run folder was kept")
        else:
            message = "stopped before it finished"
        _say(f"vaekit: interrupted; {message}")
        return 130
