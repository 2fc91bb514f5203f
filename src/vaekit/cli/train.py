"""``vaekit train`` and ``vaekit sweep``: a Config from the flags, then one training job."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from vaekit.apps.semisupervised_job import is_m1m2_run, resume_m1m2_run, train_m1m2_run
from vaekit.apps.tabular.jobs import table_config, train_table_run
from vaekit.apps.molecules.jobs import is_sequence_run
from vaekit.cli import molecules
from vaekit.cli.console import progress_wanted
from vaekit.cli.flags import TRAIN_FLAGS
from vaekit.cli.output import int_arg
from vaekit.config import Config, apply_overrides, load_config_file
from vaekit.errors import ConfigError
from vaekit.runs import folder
from vaekit.runs.follow import follow_run
from vaekit.runs.jobs import default_run_dir, resume_run, train_run
from vaekit.runs.sweep import parse_betas
from vaekit.runs.sweep import sweep as run_sweep
from vaekit.training import distributed


def config_from_args(args, skip: tuple[str, ...] = (), base: Optional[Config] = None) -> Config:
    """The Config that --config (else ``base``, else the defaults), the flags and the KEY=VALUE
    overrides describe, in that order."""
    cfg = load_config_file(args.config) if args.config else (base or Config())
    flags = [f"{f.key}={getattr(args, f.key)}" for f in TRAIN_FLAGS if f.key not in skip and getattr(args, f.key) is not None]
    apply_overrides(cfg, flags + list(args.overrides))
    cfg.training.progress = cfg.training.progress and progress_wanted(args)
    return cfg


# the flags of --model sequence (cli/parser.py), None or False when not given
SEQUENCE_FLAGS = ("tokens", "max_molecules", "embed_dim", "bidirectional", "word_dropout", "max_len", "max_minutes")


def train(args) -> int:
    if args.resume:
        return _resume(args)
    if getattr(args, "model.model") == "tabular":
        return _train_tabular(args)
    if getattr(args, "model.model") == "sequence":
        return molecules.train(args, config_from_args)
    if any(getattr(args, name) not in (None, False) for name in SEQUENCE_FLAGS):
        raise ConfigError("--tokens, --max-molecules, --embed-dim, --bidirectional, --word-dropout, --max-len and "
                          "--max-minutes apply to --model sequence only")
    if args.metadata or args.target or args.model_every_column:
        raise ConfigError("--metadata, --target and --model-every-column apply to --model tabular only")
    cfg = config_from_args(args)
    if cfg.model.m1 is not None:  # M1+M2: M2 on the codes of a VAE run
        train_m1m2_run(cfg, out=args.out)
        return 0
    follower = _join_torchrun(cfg.training.device)
    if follower:  # ranks > 0 under torchrun: train alongside rank 0, write nothing
        follow_run(cfg)
    else:
        train_run(cfg, out=args.out)
    return _leave_torchrun()


def _resume(args) -> int:
    given = [f.flag for f in TRAIN_FLAGS if f.key != "training.epochs" and getattr(args, f.key) is not None]
    if args.config or args.overrides or given:
        raise ConfigError("--resume continues a run with its own config; only --epochs may be given with it")
    epochs = getattr(args, "training.epochs")
    epochs = None if epochs is None else int_arg(epochs, "--epochs")
    if is_sequence_run(args.resume):
        return molecules.resume(args, epochs)
    if is_m1m2_run(args.resume):
        resume_m1m2_run(args.resume, epochs=epochs)
        return 0
    device = folder.run_config(folder.read_run(args.resume)).training.device if distributed.launched() else None
    follower = _join_torchrun(device)
    if follower:
        follow_run(resume=args.resume, epochs=epochs)
    else:
        resume_run(args.resume, epochs=epochs)
    return _leave_torchrun()


def _leave_torchrun() -> int:
    """Under torchrun, leave the process group and end every rank here, without the interpreter's
    teardown (distributed.leave: there, now and then after a clean run, a gloo thread aborted the
    process and torchrun reported the whole job failed); outside it, nothing to do."""
    if distributed.launched():
        distributed.leave(0)
    return 0


def _join_torchrun(device: Optional[str]) -> bool:
    """Under torchrun, join the process group; True on the ranks other than 0."""
    if not distributed.launched():
        return False
    distributed.setup(device)
    return not distributed.is_main()


def sweep(args) -> int:
    cfg = config_from_args(args, skip=("training.beta",))
    run_sweep(cfg, parse_betas(args.betas), args.out)
    return 0


def _train_tabular(args) -> int:
    """`vaekit train --data table.csv --model tabular`: the same flags as any run, read into a Config
    holding the TabularVAE's defaults; the table job refuses the settings it does not use."""
    if getattr(args, "data.name") is None:
        raise ConfigError("--model tabular needs --data TABLE.csv")
    cfg = config_from_args(args, skip=("model.model",), base=table_config())
    out = Path(args.out) if args.out else default_run_dir()
    model = train_table_run(cfg, out, metadata=args.metadata, target=args.target,
                            derive_columns=not args.model_every_column)
    _print_table_run(out, model.history_)
    return 0


def _print_table_run(out: Path, history) -> None:
    last = history[-1] if history else None
    print(f"run folder: {out}" + (f"  (validation loss {last['val_loss']:.3f} nats/row)" if last else "")
          + "\n  pictures: curves.png (losses per epoch), columns.png (each column, real against synthetic)")
    print(f"  next: vaekit synth {out} -n 10000 --out synthetic.csv")
