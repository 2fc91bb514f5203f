"""The molecule commands: ``vaekit train --model sequence`` and, on a sequence run, ``sample``,
``interpolate``, ``encode`` and ``optimize`` (the image/table commands hand a sequence run here).

Drawing molecules, checking validity and scoring properties need RDKit (``pip install
'vaekit[chem]'``); without it those commands say so in one line. Sampling to a CSV and encoding
need only the tokenizer.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from vaekit.apps.molecules import chemistry
from vaekit.apps.molecules.corpus import read_lines, read_molecules, skip_line
from vaekit.apps.molecules.evaluate import evaluate_sequence_run
from vaekit.apps.molecules.generate import encode_smiles, interpolate_smiles, sample_smiles
from vaekit.apps.molecules.jobs import load_vocabulary, resume_sequence_run, sequence_config, train_sequence_run
from vaekit.apps.molecules.optimize import optimize_property
from vaekit.apps.molecules.requirements import available, require
from vaekit.cli.console import progress_wanted
from vaekit.cli.output import eval_lines, out_path
from vaekit.data.molecules import read_smiles
from vaekit.errors import ConfigError
from vaekit.runs import folder
from vaekit.training.console import warn

__all__ = ["encode", "evaluate", "interpolate", "not_for_sequences", "optimize", "resume", "sample", "train"]


def train(args, config_from_args) -> int:
    """``vaekit train --model sequence``: the flags applied to :func:`sequence_config`'s defaults."""
    if getattr(args, "data.name") is None:
        setattr(args, "data.name", "moses")
    cfg = config_from_args(args, base=sequence_config())
    max_molecules = -1 if args.max_molecules is None else (None if args.max_molecules == 0 else args.max_molecules)
    train_sequence_run(cfg, args.out, tokens=args.tokens or "smiles", max_molecules=max_molecules,
                       embed_dim=args.embed_dim or 64, bidirectional=args.bidirectional,
                       word_dropout=args.word_dropout or 0.0, max_len=args.max_len, max_minutes=args.max_minutes)
    return 0


def resume(args, epochs) -> int:
    resume_sequence_run(args.resume, epochs=epochs)
    return 0


def _run(args):
    return folder.load(args.run), load_vocabulary(args.run)


def _molecules_only(vocab, command: str) -> None:
    if vocab.kind == "chars":
        raise ConfigError(f"{command} scores or draws molecules; this run models lines of text (--tokens chars)")


def _validity(smiles, vocab) -> str:
    if vocab.kind == "chars":
        return "lines of text"
    if not available("rdkit"):
        return "validity not checked: RDKit is not installed"
    valid = sum(chemistry.to_mol(s) is not None for s in smiles)
    return f"{valid / max(len(smiles), 1):.3f} valid"


def sample(args) -> int:
    """``vaekit sample RUN -n N --out gen.csv``: SMILES from the prior, one per line under a SMILES header
    (a .png draws a grid of them with RDKit)."""
    model, vocab = _run(args)
    out = out_path(args, "samples.csv")
    if out.suffix not in (".csv", ".txt", ".smi", ".png"):
        raise ConfigError(f"--out {out}: a sequence run writes SMILES to a .csv, .txt or .smi file, or draws a .png")
    if out.suffix == ".png":
        _molecules_only(vocab, "a .png")
        require("rdkit.Chem")
    bar = tqdm(total=args.n, disable=not (progress_wanted(args) and sys.stderr.isatty()), unit="mol", desc="sampling")
    counts = {}
    smiles = sample_smiles(model, vocab, args.n, seed=args.seed, temperature=args.temperature, progress=bar.update,
                           grammar=args.grammar, redraw=args.redraw, counts=counts)
    bar.close()
    if out.suffix == ".png":
        chemistry.draw_grid(smiles[:48], out)
    else:
        _write_smiles(out, smiles)
    drawn = f"; {counts['drawn']} strings drawn, {counts['rejected']} set aside as malformed" if counts["rejected"] else ""
    left = f", {counts['unchecked']} of them returned to make up {len(smiles)}" if counts["unchecked"] else ""
    print(f"wrote {out} ({len(smiles)} molecules, seed {args.seed}; {_validity(smiles, vocab)}{drawn}{left})")
    return 0


def _write_smiles(out: Path, smiles, extra: dict | None = None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if out.suffix == ".csv":
            writer.writerow(["SMILES", *(extra or {})])
        for i, s in enumerate(smiles):
            writer.writerow([s, *(column[i] for column in (extra or {}).values())])


def interpolate(args) -> int:
    """``vaekit interpolate RUN --pair SMILES_A SMILES_B``: the molecules along the path between the
    two posterior means, printed and drawn to a PNG grid."""
    if not args.pair or len(args.pair) != 2:
        raise ConfigError('a sequence run interpolates between two molecules: --pair "SMILES_A" "SMILES_B"')
    model, vocab = _run(args)
    text = vocab.kind == "chars"
    if not text:
        require("rdkit.Chem")
    method = "linear" if args.method == "both" else args.method
    path = interpolate_smiles(model, vocab, args.pair[0], args.pair[1], args.steps, method)
    for t, smiles in enumerate(path):
        print(f"{t / (len(path) - 1):.2f}  {smiles}{'' if text or chemistry.to_mol(smiles) else '  (invalid)'}")
    if text:
        return 0
    out = out_path(args, "interpolation.png")
    chemistry.draw_grid(path, out, legends=[f"t={t / (len(path) - 1):.2f}" for t in range(len(path))], per_row=len(path))
    print(f"wrote {out} ({method} path, {len(path)} steps)")
    return 0


def encode(args) -> int:
    """``vaekit encode RUN smiles.csv``: posterior means to .npy (means only) or .csv (SMILES and z columns)."""
    source = args.inputs or args.data
    if not source:
        raise ConfigError("give a file of SMILES to encode: vaekit encode RUN smiles.csv")
    model, vocab = _run(args)
    smiles = read_lines(source) if vocab.kind == "chars" else read_smiles(source)
    z, kept, skipped = encode_smiles(model, vocab, smiles)
    line = skip_line(skipped, str(source))
    if line:
        warn(line)
    if not kept:
        raise ConfigError(f"no molecule of {source} could be encoded with this run's vocabulary")
    out = out_path(args, "encoded.npy")
    if out.suffix == ".npy":
        np.save(out, z.numpy())
    elif out.suffix == ".csv":
        columns = {f"z{d}": [f"{v:.6g}" for v in z[:, d].tolist()] for d in range(z.shape[1])}
        _write_smiles(out, [smiles[i] for i in kept], columns)
    else:
        raise ConfigError(f"--out {out}: use a .npy or .csv file")
    print(f"wrote {out} ({z.shape[0]} x {z.shape[1]} posterior means of {len(smiles)} molecules)")
    return 0


def optimize(args) -> int:
    """``vaekit optimize RUN --property qed|logp|plogp``: latent-space search within an oracle budget."""
    model, vocab = _run(args)
    _molecules_only(vocab, "vaekit optimize")
    require("rdkit.Chem")
    doc = folder.read_run(args.run)
    cfg = folder.run_config(doc)
    train_smiles = read_molecules(cfg, doc.get("app", {}).get("max_molecules"), progress=False)[0]
    result = optimize_property(model, vocab, train_smiles, args.property, budget=args.budget, labelled=args.labelled,
                               starts=args.starts, steps=args.steps, seed=args.seed)
    print(f"{args.property}: {result.head_kind} head fitted on {result.labelled} scored training molecules (held-out R^2 "
          f"{result.head_r2:.2f}); best of them {result.best_labelled[1]:.3f} ({result.best_labelled[0]})")
    print(f"search: {result.oracle_calls} oracle calls (RDKit evaluations, budget {args.budget}), "
          f"{result.invalid} invalid decodings, {len(result.found)} new molecules")
    top = result.found[:3]
    for rank, (smiles, value) in enumerate(top, 1):
        print(f"  {rank}. {value:.3f}  {smiles}")
    if top:
        out = out_path(args, f"optimize-{args.property}.png")
        chemistry.draw_grid([s for s, _ in top], out, legends=[f"{args.property} {v:.3f}" for _, v in top])
        print(f"wrote {out}")
    return 0


def evaluate(args) -> int:
    """``vaekit eval RUN`` of a sequence run."""
    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    result = evaluate_sequence_run(args.run, args.split, args.nll_samples, args.limit,
                                   progress=progress_wanted(args) and not args.json)
    print(json.dumps(result, indent=2) if args.json else "\n".join(eval_lines(args.run, result)))
    return 0


def not_for_sequences(command: str) -> None:
    """A one-line ConfigError: ``command`` draws images or scores tables, not molecules."""
    raise ConfigError(f"{command} works on image and table runs; for a sequence run use vaekit sample, interpolate, "
                      "encode, eval or optimize")
