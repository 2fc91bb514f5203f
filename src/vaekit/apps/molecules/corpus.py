"""Molecules as training data for a sequence VAE: SMILES read, checked, tokenised and split.

``--data moses`` takes the MOSES training split (a seeded draw of ``max_molecules`` of it for
training, the next molecules for validation) and its test split as the test set; any other
``--data`` is a user file (:func:`vaekit.data.molecules.read_smiles`), split by
``data.val_fraction`` / ``data.test_fraction``. Strings RDKit cannot parse (user files, when
RDKit is installed), with tokens the vocabulary lacks or longer than its maximum are left out
and counted, with one warning line; an empty file is a one-line DataError.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from vaekit.apps.molecules.kekule_codec import smiles_to_kekule
from vaekit.apps.molecules.requirements import available
from vaekit.apps.molecules.selfies_codec import smiles_to_selfies
from vaekit.apps.molecules.tokenizer import Encoded, Vocabulary, build_vocabulary
from vaekit.config import Config
from vaekit.data.molecules import load_moses, read_smiles, read_user_text
from vaekit.data.registry import data_dir
from vaekit.data.splits import DataSplits, split_indices
from vaekit.errors import DataError
from vaekit.training.console import warn

__all__ = ["MAX_VAL", "MOSES", "encode_all", "molecule_splits", "read_lines", "read_molecules", "skip_line"]

MOSES = "moses"
MAX_VAL = 10_000  # validation molecules: the loop scores all of them after every epoch
CHUNK = 20_000  # molecules per progress-bar step while tokenising


def _bar(items=None, progress: bool = True, **kw) -> tqdm:
    """A progress bar on stderr, drawn only when stderr is a terminal (as the training loop's)."""
    return tqdm(items, disable=not (progress and sys.stderr.isatty()), mininterval=1, unit="mol", **kw)


def _parses(smiles: Sequence[str], progress: bool) -> tuple[list[str], int]:
    """The strings RDKit parses as molecules, and how many it did not (all kept without RDKit)."""
    if not available("rdkit"):
        return list(smiles), 0
    from vaekit.apps.molecules.chemistry import to_mol  # local: RDKit only when it is installed

    kept = [s for s in _bar(smiles, progress, desc="checking SMILES") if to_mol(s) is not None]
    return kept, len(smiles) - len(kept)


def read_lines(path) -> list[str]:
    """The non-blank lines of a text file, whole (``kind="chars"``: text, not SMILES); a .csv is
    read as :func:`~vaekit.data.molecules.read_smiles` reads it."""
    if ".csv" in [x.lower() for x in Path(path).suffixes]:
        return read_smiles(path)
    path = Path(path).expanduser()
    text = read_user_text(path, "a text file, one example per line")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path} holds no lines of text")
    return lines


def read_molecules(cfg: Config, max_molecules: Optional[int], progress: bool = True, kind: str = "smiles"
                   ) -> tuple[list[str], list[str], list[str], dict[str, int]]:
    """(train, val, test) strings of ``cfg.data.name`` and the counts of what was left out: SMILES,
    checked by RDKit when it is installed, or (``kind="chars"``) whole lines of a text file."""
    name, seed = str(cfg.data.name), cfg.data.split_seed
    skipped: dict[str, int] = {}
    if name.lower() == MOSES:
        root = data_dir(cfg.data)
        train_all = load_moses("train", root, download=cfg.data.download)
        test = load_moses("test", root, download=cfg.data.download)
        order = np.random.default_rng(seed).permutation(len(train_all))
        wanted = len(train_all) if max_molecules is None else min(max_molecules, len(train_all))
        # the validation molecules are held out of MOSES's training file, also when every molecule is asked for
        n_val = 0 if cfg.data.val_fraction == 0 else min(MAX_VAL, max(1, int(cfg.data.val_fraction * wanted)))
        n_train = min(wanted, len(train_all) - n_val)
        train = [train_all[i] for i in order[:n_train]]
        val = [train_all[i] for i in order[n_train:n_train + n_val]]
        return train, val, test, skipped
    if kind == "chars":  # text, not molecules: nothing for RDKit to check
        smiles, bad = read_lines(name), 0
    else:  # DataError for an empty or unreadable file
        smiles, bad = _parses(read_smiles(name), progress)
    if bad:
        skipped["unparseable"] = bad
    if not smiles:
        raise DataError(f"{name} holds no molecule RDKit can parse ({bad} lines)")
    tr, va, te = split_indices(len(smiles), cfg.data.val_fraction, cfg.data.test_fraction, seed, name)
    if max_molecules is not None:
        tr = tr[:max_molecules]
    return [smiles[i] for i in tr], [smiles[i] for i in va], [smiles[i] for i in te], skipped


def encode_all(vocab: Vocabulary, smiles: Sequence[str], progress: bool = True, what: str = "tokenising") -> Encoded:
    """``vocab.encode`` of many strings in chunks, with a progress bar; skips counted, not raised."""
    parts, kept, skipped = [], [], Counter()
    bar = _bar(None, progress, total=len(smiles), desc=what)
    for start in range(0, len(smiles), CHUNK):
        enc = vocab.encode(smiles[start:start + CHUNK])
        parts.append(enc.ids)
        kept += [start + i for i in enc.kept]
        skipped.update(enc.skipped)
        bar.update(min(CHUNK, len(smiles) - start))
    bar.close()
    ids = torch.cat(parts) if parts else torch.zeros(0, vocab.max_len + 2, dtype=torch.long)
    return Encoded(ids, (ids != vocab.pad_id).sum(dim=1), kept, dict(skipped))


def skip_line(counts: dict[str, int], where: str) -> Optional[str]:
    """One line saying how many molecules were left out and why, or None when none were."""
    counts = {k: v for k, v in counts.items() if v}
    if not counts:
        return None
    reasons = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(counts.items()))
    return f"{sum(counts.values())} molecules of {where} left out ({reasons})"


def molecule_splits(cfg: Config, kind: str = "smiles", max_molecules: Optional[int] = None,
                    vocab: Optional[Vocabulary] = None, max_len: Optional[int] = None,
                    progress: bool = True, say: Optional[Callable[[str], None]] = None
                    ) -> tuple[DataSplits, Vocabulary]:
    """The DataSplits of token ids (int64, ``(N, max_len + 2)``) of ``cfg.data.name`` and the
    vocabulary (built from the training molecules unless ``vocab`` is given, e.g. when resuming);
    ``say`` hears one line once the strings are read, before the (long) tokenising."""
    kind = kind if vocab is None else vocab.kind
    train, val, test, skipped = read_molecules(cfg, max_molecules, progress, kind)
    if say is not None:
        say(f"tokenising {len(train) + len(val) + len(test):,} molecules of {cfg.data.name} ({kind})")
    line = skip_line(skipped, str(cfg.data.name))
    if line:
        warn(line)
    if vocab is None:
        vocab = build_vocabulary(_bar(train, progress, desc="vocabulary"), kind=kind)
        if max_len is not None and max_len < vocab.max_len:
            vocab = Vocabulary(vocab.tokens, max_len, vocab.kind)
    encoded = {}
    for split, smiles in (("train", train), ("val", val), ("test", test)):
        enc = encode_all(vocab, smiles, progress, f"tokenising {split}")
        line = skip_line(enc.skipped, f"the {split} split")
        if line:
            warn(line)
        encoded[split] = enc.ids
    # the SELFIES or Kekulé SMILES of the training strings were kept only for the encoding above
    smiles_to_selfies.cache_clear()
    smiles_to_kekule.cache_clear()
    if encoded["train"].shape[0] == 0:
        raise DataError(f"no training molecule of {cfg.data.name} could be tokenised")
    data = DataSplits(
        name=str(cfg.data.name), kind="sequence", shape=(vocab.max_len + 2,), train=encoded["train"],
        val=encoded["val"], test=encoded["test"], train_labels=None, val_labels=None, test_labels=None,
        binary=False, num_classes=0, class_names=None, preprocessing={})
    return data, vocab
