"""Molecule strings as token ids: a SMILES (or SELFIES) tokenizer and its vocabulary.

SMILES tokens follow the grammar's atoms rather than its characters (as in the SMILES-based
VAEs of Gomez-Bombarelli et al. 2018 and MOSES's CharRNN, but with whole atoms): a bracket atom
(``[nH]``, ``[C@@H]``, ``[O-]``, ``[NH3+]``) is one token, so is a two-letter organic-subset
atom (``Cl``, ``Br``) and a two-digit ring-bond number (``%10``); every other character (bonds,
branches, one-digit ring numbers, aromatic atoms) is a token of its own. Any character the
pattern does not name still becomes a token, so ``"".join(tokenize(s)) == s`` for every string.

With ``kind="selfies"`` the vocabulary takes and gives SMILES but works on their SELFIES
(Krenn et al., Mach. Learn.: Sci. Technol. 2020): every token sequence decodes to a valid
molecule. With ``kind="kekule"`` it works on their Kekulé form (``C1=CC=CC=C1`` for
``c1ccccc1``; :mod:`~vaekit.apps.molecules.kekule_codec`), tokenised as SMILES.
``kind="chars"`` takes any text, one token per character (lines of text, not molecules).
The vocabulary is saved as JSON (no pickles) beside a model's weights.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import torch

from vaekit.apps.molecules.kekule_codec import smiles_to_kekule
from vaekit.apps.molecules.selfies_codec import selfies_to_smiles, smiles_to_selfies, split_selfies
from vaekit.errors import DataError

__all__ = ["SPECIAL_TOKENS", "Encoded", "Vocabulary", "build_vocabulary", "tokenize"]

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)
KINDS = ("smiles", "kekule", "selfies", "chars")  # chars: one token per character, for lines of any text
# what a kind's tokens spell, made from a SMILES (None: the SMILES has no such form)
_WRITTEN = {"kekule": (smiles_to_kekule, "not_encodable in Kekulé form"),
            "selfies": (smiles_to_selfies, "not_encodable as SELFIES")}
_FORMAT = "vaekit-vocabulary"

# Longest alternatives first: a bracket atom, the two-letter halogens, %NN ring bonds, then any
# single character (which keeps the tokenisation lossless for strings outside the grammar).
_SMILES_TOKEN = re.compile(r"\[[^\[\]]*\]|Br|Cl|%\d\d|.", re.DOTALL)


def tokenize(text: str, kind: str = "smiles") -> list[str]:
    """The tokens of one SMILES string (also a Kekulé one, ``kind="kekule"``), of one SELFIES
    string when ``kind="selfies"``, or its characters when ``kind="chars"`` (a line of any text)."""
    if kind == "selfies":
        return split_selfies(text)
    if kind == "chars":
        return list(text)
    return _SMILES_TOKEN.findall(text)


@dataclass
class Encoded:
    """A batch of token ids: ``ids`` (N, max_len + 2), ``<bos>`` first, ``<eos>`` after the last
    token, ``<pad>`` after that; ``lengths`` (N,) counts the tokens including ``<bos>`` and
    ``<eos>``; ``kept`` are the input positions of the rows; ``skipped`` counts the inputs left
    out, by reason (``unknown_token``, ``too_long``, ``not_encodable``)."""

    ids: torch.Tensor
    lengths: torch.Tensor
    kept: list[int]
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass
class Vocabulary:
    """Token strings and their ids (the position in ``tokens``; the four special tokens first).

    ``max_len`` is the longest token sequence (without ``<bos>``/``<eos>``) a model accepts.
    """

    tokens: list[str]
    max_len: int
    kind: str = "smiles"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise DataError(f"unknown tokenizer kind {self.kind!r}; choose smiles, kekule, selfies or chars")
        if tuple(self.tokens[:4]) != SPECIAL_TOKENS or len(set(self.tokens)) != len(self.tokens):
            raise DataError("a vocabulary starts with <pad>, <bos>, <eos>, <unk> and lists each token once")
        if self.max_len < 1:
            raise DataError(f"a vocabulary's max_len must be at least 1, not {self.max_len}")
        self.index = {t: i for i, t in enumerate(self.tokens)}

    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, smiles: Iterable[str], on_error: str = "skip") -> Encoded:
        """Token ids of SMILES strings (converted to SELFIES or Kekulé SMILES first for such a vocabulary).

        A string with a token unseen in training, longer than ``max_len`` tokens, or (SELFIES,
        Kekulé) that cannot be converted is left out and counted under ``skipped`` with
        ``on_error="skip"``; with ``on_error="raise"`` it is a one-line DataError.
        """
        if on_error not in ("skip", "raise"):
            raise DataError(f"on_error must be skip or raise, not {on_error!r}")
        rows, kept, skipped = [], [], Counter()
        for position, text in enumerate(smiles):
            tokens, reason = self._tokens_of(text)
            if reason is not None:
                if on_error == "raise":
                    raise DataError(f"cannot encode molecule {position} ({text!r}): {reason}")
                skipped[reason.split(" ")[0]] += 1
                continue
            rows.append([self.bos_id] + [self.index[t] for t in tokens] + [self.eos_id])
            kept.append(position)
        ids = torch.full((len(rows), self.max_len + 2), self.pad_id, dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
        lengths = torch.tensor([len(row) for row in rows], dtype=torch.long)
        return Encoded(ids, lengths, kept, dict(skipped))

    def _tokens_of(self, text: str) -> tuple[list[str], Optional[str]]:
        """(tokens, None), or ([], reason) when the string cannot be encoded."""
        if self.kind in _WRITTEN:
            convert, reason = _WRITTEN[self.kind]
            text = convert(text)
            if text is None:
                return [], reason
        tokens = tokenize(text, self.kind)
        unknown = [t for t in tokens if t not in self.index or self.index[t] < len(SPECIAL_TOKENS)]
        if unknown:
            return [], f"unknown_token {unknown[0]!r} (not in the training vocabulary)"
        if len(tokens) > self.max_len:
            return [], f"too_long ({len(tokens)} tokens, the maximum is {self.max_len})"
        return tokens, None

    def decode(self, ids) -> list[str]:
        """SMILES strings of rows of token ids (a LongTensor (N, T) or lists of ints).

        Reading stops at the first ``<eos>`` or ``<pad>``; ``<bos>`` is skipped and ``<unk>``
        dropped. A SELFIES vocabulary returns the SMILES of the decoded SELFIES.
        """
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        texts = ["".join(self.tokens[i] for i in self.read(row)) for row in ids]
        if self.kind == "selfies":
            texts = [selfies_to_smiles(t) for t in texts]
        return texts

    def read(self, row: Sequence[int]) -> list[int]:
        """The ids of one row that make its string: up to the first ``<eos>`` or ``<pad>``, with
        ``<bos>``, ``<unk>`` and stray ids dropped (how :meth:`decode` reads a row)."""
        kept = []
        for i in row:
            if i in (self.eos_id, self.pad_id):
                break
            if len(SPECIAL_TOKENS) <= i < len(self.tokens):
                kept.append(i)
        return kept

    def to_json(self) -> dict:
        return {"format": _FORMAT, "version": 1, "kind": self.kind, "max_len": self.max_len,
                "tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, record: dict) -> "Vocabulary":
        if not isinstance(record, dict) or record.get("format") != _FORMAT:
            raise DataError("not a vaekit vocabulary (the JSON lacks format: vaekit-vocabulary)")
        try:
            tokens, max_len, kind = record["tokens"], int(record["max_len"]), str(record["kind"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"vocabulary JSON is incomplete or malformed ({exc})") from None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise DataError("vocabulary JSON: tokens must be a list of strings")
        return cls(tokens=tokens, max_len=max_len, kind=kind)

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path) -> "Vocabulary":
        try:
            record = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise DataError(f"cannot read vocabulary {path}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise DataError(f"vocabulary {path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
        return cls.from_json(record)


def build_vocabulary(smiles: Iterable[str], kind: str = "smiles", max_len: Optional[int] = None,
                     min_count: int = 1) -> Vocabulary:
    """The vocabulary of training SMILES: tokens seen at least ``min_count`` times, sorted by
    decreasing count (ties by string, so the ids do not depend on the order of the data).

    ``max_len`` defaults to the longest training sequence. SMILES that SELFIES (Kekulé SMILES)
    cannot express are left out of a SELFIES (Kekulé) vocabulary.
    """
    if kind not in KINDS:
        raise DataError(f"unknown tokenizer kind {kind!r}; choose smiles, kekule, selfies or chars")
    counts, longest, seen = Counter(), 0, 0
    for text in smiles:
        if kind in _WRITTEN:
            text = _WRITTEN[kind][0](text)
            if text is None:
                continue
        tokens = tokenize(text, kind)
        counts.update(tokens)
        longest = max(longest, len(tokens))
        seen += 1
    if seen == 0:
        raise DataError("cannot build a vocabulary from no molecules")
    kept = sorted((t for t, c in counts.items() if c >= min_count and t not in SPECIAL_TOKENS),
                  key=lambda t: (-counts[t], t))
    return Vocabulary(tokens=list(SPECIAL_TOKENS) + kept, max_len=max_len or longest, kind=kind)
