"""The molecule job: tokenise SMILES, train a :class:`~vaekit.core.sequence.SequenceVAE` with the
standard loop, and keep it as a standard run folder (``vaekit train --model sequence`` calls it).

The generic job (:mod:`vaekit.runs.jobs`) loads data by name and builds a model from the data's
shape; a sequence run needs a vocabulary first, which is the molecules application's business,
so this job (like the tabular one) prepares data and model itself and reuses the rest: the loop,
:class:`~vaekit.runs.jobs.RunWriter` (weights, metrics.jsonl, resume.pt after every epoch) and
:mod:`vaekit.runs.folder`. The folder also holds ``vocabulary.json`` and an ``"app"`` section
in config.json (the token kind, how many molecules were drawn), which is what resuming needs.

Defaults for a 2-core CPU (:func:`sequence_config`): a one-layer GRU of 256 units on each side,
z of 64 dimensions, batch 128, two passes over a seeded draw of 250,000 MOSES training molecules
(about 200 molecules a second on one thread: some 40 minutes), KL warm-up over the first 2,000
steps and free bits of 0.1 nats per latent dimension against posterior collapse.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import torch

from vaekit.apps.molecules.corpus import MOSES, molecule_splits
from vaekit.apps.molecules.tokenizer import Vocabulary
from vaekit.config import Config
from vaekit.core.sequence import SequenceVAE
from vaekit.errors import ConfigError, RunError
from vaekit.runs import folder
from vaekit.runs.jobs import RunWriter, default_run_dir
from vaekit.training.console import tell
from vaekit.training.loop import train
from vaekit.training.runtime import pick_device
from vaekit.training.setup import check_fits, resolve_config

VOCABULARY = "vocabulary.json"
MOSES_MOLECULES = 250_000  # training molecules drawn from MOSES by default (two passes: ~40 min on one CPU thread)
# The settings a sequence run reads from its Config; every other one must keep sequence_config()'s value.
USED = ("data.name", "data.data_dir", "data.val_fraction", "data.test_fraction", "data.split_seed", "data.download",
        "model.model", "model.hidden", "model.latent_dim", "training.epochs", "training.batch_size", "training.lr",
        "training.weight_decay", "training.lr_schedule", "training.grad_clip", "training.beta", "training.warmup_steps", "training.kl_cycles",
        "training.free_bits", "training.objective", "training.num_samples", "training.seed", "training.device",
        "training.early_stopping", "training.eval_batch_size", "training.progress", "training.verbose",
        "training.precision", "training.matmul_precision")


def sequence_config() -> Config:
    """A Config holding a sequence run's defaults (see the module's docstring)."""
    cfg = Config()
    cfg.data.name = MOSES
    cfg.data.binarize = "none"
    cfg.model.model, cfg.model.hidden, cfg.model.latent_dim = "sequence", (256,), 64
    # no likelihood to choose: p(x|z) is the decoder's categorical over tokens; recorded as resolved
    cfg.model.likelihood = "gaussian-learned"
    t = cfg.training
    t.epochs, t.batch_size, t.lr, t.warmup_steps, t.free_bits, t.early_stopping = 2, 128, 1e-3, 2000, 0.1, 5
    t.eval_batch_size = 500
    return cfg


def unused_settings(cfg: Config) -> list[str]:
    given, defaults = cfg.to_dict(), sequence_config().to_dict()
    return [f"{section}.{key}" for section, values in given.items() for key, value in values.items()
            if f"{section}.{key}" not in USED and value != defaults[section][key]]


def build_sequence_model(cfg: Config, vocab: Vocabulary, embed_dim: int, bidirectional: bool,
                         word_dropout: float) -> SequenceVAE:
    hidden = tuple(cfg.model.hidden)
    if len(set(hidden)) != 1:
        raise ConfigError(f"a sequence model's GRU layers share one width: --hidden 256 or 256,256, not {hidden}")
    return SequenceVAE(len(vocab), vocab.max_len, latent_dim=cfg.model.latent_dim, embed_dim=embed_dim,
                       hidden=hidden[0], layers=len(hidden), bidirectional=bidirectional, word_dropout=word_dropout,
                       pad_id=vocab.pad_id, bos_id=vocab.bos_id, eos_id=vocab.eos_id, unk_id=vocab.unk_id)


def _time_box(writer: RunWriter, cfg: Config, max_minutes: Optional[float]):
    """The loop's ``on_epoch``: the writer, then, past ``max_minutes`` of training, no further epoch
    (the loop reads ``cfg.training.epochs`` before each epoch; config.json keeps the planned count)."""
    start = time.perf_counter()

    def on_epoch(record: dict[str, Any], state: dict[str, Any]) -> None:
        writer(record, state)
        if max_minutes is not None and time.perf_counter() - start > 60 * max_minutes:
            cfg.training.epochs = record["epoch"]

    return on_epoch


def train_sequence_run(cfg: Config, out: Optional[str | Path] = None, tokens: str = "smiles",
                       max_molecules: Optional[int] = -1, embed_dim: int = 64, bidirectional: bool = False,
                       word_dropout: float = 0.0, max_len: Optional[int] = None,
                       max_minutes: Optional[float] = None) -> Path:
    """Train a sequence VAE on the molecules ``cfg.data.name`` (``moses`` or a file of SMILES) and
    write the run folder ``out``; returns its path. ``max_molecules``: training molecules used
    (-1: 250,000 for MOSES, all of a file; None: all); ``max_len``: longest token sequence kept
    (default: the longest training one); ``max_minutes``: no new epoch after this much training."""
    cfg.validate()
    ignored = unused_settings(cfg)
    if ignored:
        raise ConfigError(f"a sequence run does not use {', '.join(ignored)}; it reads {', '.join(USED)}")
    if word_dropout > 0 and cfg.training.objective != "elbo":  # IWAE's draws would not come from the run's generator
        raise ConfigError("--word-dropout applies to objective=elbo; drop one of them")
    run_dir = Path(out) if out is not None else default_run_dir()
    if (run_dir / folder.CONFIG).exists():
        raise ConfigError(f"{run_dir} already holds a run; choose another --out, or continue it with --resume {run_dir}")
    if max_molecules == -1:
        max_molecules = MOSES_MOLECULES if str(cfg.data.name).lower() == MOSES else None
    source = Path(str(cfg.data.name)).expanduser()
    if str(cfg.data.name).lower() != MOSES and source.is_file():
        cfg.data.name = str(source.resolve())  # resume and optimize re-read it from any working folder
    started = time.perf_counter()
    data, vocab = molecule_splits(cfg, tokens, max_molecules, max_len=max_len, progress=cfg.training.progress,
                                  say=lambda message: tell(cfg.training, message))
    tell(cfg.training, f"{data.train.shape[0]:,} training, {data.val.shape[0]:,} validation and {data.test.shape[0]:,} "
                       f"test molecules read and tokenised in {time.perf_counter() - started:.0f} s ({len(vocab.tokens)} tokens, "
                       f"at most {vocab.max_len} a molecule)")
    resolve_config(cfg, data)
    model, device = _build(lambda: build_sequence_model(cfg, vocab, embed_dim, bidirectional, word_dropout), cfg)
    app = {"tokens": vocab.kind, "max_molecules": max_molecules, "max_len": vocab.max_len, "vocabulary": VOCABULARY}
    run_dir.mkdir(parents=True, exist_ok=True)
    vocab.save(run_dir / VOCABULARY)
    folder.save_config(run_dir, cfg, model, _data_info(data), device, None, app=app)
    writer = RunWriter(run_dir, model)
    try:
        history = train(model, data, cfg, on_epoch=_time_box(writer, cfg, max_minutes))
    finally:
        writer.close()
    _report(run_dir, history)
    return run_dir


def resume_sequence_run(run_dir: str | Path, epochs: Optional[int] = None) -> Path:
    """Continue a sequence run from its resume file (to ``epochs`` in all, if given): the same
    molecules, vocabulary, weights, optimiser and random stream, so the result is the one an
    uninterrupted run would have reached."""
    run_dir = Path(run_dir)
    folder.remove_temporary_files(run_dir)
    doc = folder.read_run(run_dir)
    cfg, app = folder.run_config(doc), doc.get("app", {})
    if epochs is not None:
        cfg.training.epochs = epochs
        cfg.validate()
    vocab = load_vocabulary(run_dir)
    data, _ = molecule_splits(cfg, vocab.kind, app.get("max_molecules"), vocab=vocab, progress=cfg.training.progress)
    model, device = _build(lambda: folder.build_model(doc), cfg)
    state = folder.load_resume(run_dir)
    folder.check_resume_state(state, model, run_dir)
    history = folder.read_metrics(run_dir)[: int(state["epoch"])]
    folder.write_metrics(run_dir, history)
    folder.save_config(run_dir, cfg, model, doc.get("data"), device, None, app=app)
    writer = RunWriter(run_dir, model, saved_epoch=len(history))
    try:
        history = train(model, data, cfg, on_epoch=writer, resume=state, history=history)
    finally:
        writer.close()
    _report(run_dir, history)
    return run_dir


def load_vocabulary(run_dir: str | Path) -> Vocabulary:
    path = Path(run_dir) / VOCABULARY
    if not path.is_file():
        raise RunError(f"{run_dir} has no {VOCABULARY}; it is not a sequence run made by 'vaekit train --model sequence'")
    return Vocabulary.load(path)


def is_sequence_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir``'s config.json names a sequence model (reads only the JSON)."""
    try:
        return json.loads((Path(run_dir) / folder.CONFIG).read_text(encoding="utf-8")).get("class") == "SequenceVAE"
    except (OSError, ValueError, AttributeError):
        return False


def _build(make, cfg: Config) -> tuple[torch.nn.Module, torch.device]:
    device = pick_device(cfg.training.device)
    check_fits(make, device)
    torch.manual_seed(cfg.training.seed)  # weight initialisation
    return make().to(device), device


def _data_info(data) -> dict[str, Any]:
    return {"name": data.name, "kind": data.kind, "shape": list(data.shape), "binary": False, "num_classes": 0,
            "class_names": None, "preprocessing": {},
            "sizes": {"train": data.train.shape[0], "val": data.val.shape[0], "test": data.test.shape[0]}}


def _report(run_dir: Path, history) -> None:
    last = history[-1] if history else None
    print(f"run folder: {run_dir}")
    if last and "val_loss" in last:
        print(f"  validation (epoch {last['epoch']}): loss {last['val_loss']:.3f}, recon {last['val_recon']:.3f}, "
              f"kl {last['val_kl']:.3f} nats/molecule, {last['val_active_units']} active units")
    print(f"  {folder.CONFIG}, {folder.WEIGHTS}, {folder.METRICS}, {folder.RESUME}, {VOCABULARY}")
    print(f"  next: vaekit sample {run_dir} -n 30000 --out generated.csv")
