"""The MOSES metrics of a generated set of molecules, computed with RDKit.

Definitions follow MOSES (Polykovskiy et al., Front. Pharmacol. 2020, section 3 and the
reference implementation's conventions), written here from the paper's formulas:

- valid: the fraction of strings that are molecules (:func:`~.chemistry.to_mol`).
- unique@k: the fraction of distinct canonical SMILES among the first k *valid* molecules.
- novelty: the fraction of distinct valid molecules not in the training set (compared as
  strings: MOSES's training SMILES are RDKit-canonical already).
- IntDiv_p = 1 - (1/|G|^2 sum_{m1, m2 in G} T(m1, m2)^p)^(1/p), over all ordered pairs of the
  valid generated molecules *including each molecule with itself* (the paper's |G|^2
  normalisation); ``include_self=False`` averages over distinct pairs instead.
- SNN = 1/|G| sum_{m in G} max_{r in R} T(m, r), R the reference (test) set.
- Frag and Scaf: cosine similarity of the counts of BRICS fragments (Degen et al. 2008) and of
  Bemis-Murcko scaffolds (Bemis & Murcko 1996; only scaffolds with at least two rings count,
  as in MOSES's reference code) between the generated and reference sets.

T is the Tanimoto similarity of Morgan fingerprints (radius 2, 1024 bits, Rogers & Hahn 2010);
two empty fingerprints have similarity 1. Metrics take lists of SMILES; the ``*_counts`` and
``fingerprints`` helpers let :mod:`.moses` reuse a reference set's statistics.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Iterable, Optional, Sequence

import numpy as np
import torch

from vaekit.apps.molecules.chemistry import canonical_smiles, to_mol
from vaekit.apps.molecules.requirements import require
from vaekit.errors import DataError

__all__ = ["cosine_similarity", "fingerprints", "fraction_valid", "fragment_counts",
           "fragment_similarity", "internal_diversity", "novelty", "scaffold_counts",
           "scaffold_similarity", "snn", "tanimoto_matrix", "unique_at_k", "valid_canonical"]

logger = logging.getLogger("vaekit")
FP_RADIUS, FP_BITS = 2, 1024
_CHUNK = 4096


def _nonempty(smiles: Sequence[str], what: str) -> None:
    if len(smiles) == 0:
        raise DataError(f"{what} needs at least one molecule")


def fraction_valid(smiles: Sequence[str]) -> float:
    """Share of the strings that RDKit parses and sanitises."""
    _nonempty(smiles, "validity")
    return sum(to_mol(s) is not None for s in smiles) / len(smiles)


def valid_canonical(smiles: Iterable[str]) -> list[str]:
    """Canonical SMILES of the valid strings, in order, duplicates kept."""
    return [c for c in map(canonical_smiles, smiles) if c is not None]


def unique_at_k(smiles: Sequence[str], k: Optional[int] = None, canonical: bool = False) -> float:
    """Share of distinct molecules among the first ``k`` valid ones (all valid ones if None);
    ``canonical`` says the strings are already the canonical SMILES of valid molecules."""
    valid = list(smiles) if canonical else valid_canonical(smiles)
    _nonempty(valid, "unique@k")
    if k is not None:
        if len(valid) < k:
            logger.warning("unique@%d computed on only %d valid molecules", k, len(valid))
        valid = valid[:k]
    return len(set(valid)) / len(valid)


def novelty(smiles: Sequence[str], train: Iterable[str], canonicalize_train: bool = False,
            canonical: bool = False) -> float:
    """Share of the distinct valid molecules that are not in ``train``.

    ``train`` is compared as given (MOSES's training SMILES are canonical); with
    ``canonicalize_train`` each training string is canonicalised first (about 1.6 ms a molecule).
    ``canonical`` says ``smiles`` are already canonical SMILES of valid molecules.
    """
    generated = set(smiles) if canonical else set(valid_canonical(smiles))
    _nonempty(generated, "novelty")
    reference = set(valid_canonical(train)) if canonicalize_train else set(train)
    return len(generated - reference) / len(generated)


def fingerprints(smiles: Iterable[str]) -> np.ndarray:
    """Morgan fingerprints (radius 2, 1024 bits) of the valid molecules, (N, 1024) uint8."""
    generator = require("rdkit.Chem.rdFingerprintGenerator").GetMorganGenerator(radius=FP_RADIUS, fpSize=FP_BITS)
    rows = [generator.GetFingerprintAsNumPy(m) for m in map(to_mol, smiles) if m is not None]
    return np.asarray(rows, dtype=np.uint8).reshape(len(rows), FP_BITS)


def tanimoto_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """T[i, j] = |a_i & b_j| / |a_i | b_j| of 0/1 rows; 1 where both rows are empty."""
    both = a @ b.T
    union = a.sum(1, keepdim=True) + b.sum(1)[None, :] - both
    return torch.where(union > 0, both / union.clamp_min(1), torch.ones_like(both))


def _tanimoto_reduce(fps: np.ndarray, reference: np.ndarray, reduce: str, power: float = 1.0,
                     device: str = "cpu") -> np.ndarray:
    """Per row of ``fps``: the max, or the sum of T^power, over the rows of ``reference``.

    Chunked so that memory stays at two _CHUNK x _CHUNK blocks for any set sizes."""
    out = torch.zeros(len(fps), dtype=torch.float64)
    ref = torch.from_numpy(reference)
    for i in range(0, len(fps), _CHUNK):
        rows = torch.from_numpy(fps[i:i + _CHUNK]).to(device, torch.float32)
        best = torch.zeros(len(rows), dtype=torch.float64, device=device)
        for j in range(0, len(ref), _CHUNK):
            sim = tanimoto_matrix(rows, ref[j:j + _CHUNK].to(device, torch.float32)).double()
            if reduce == "max":
                best = torch.maximum(best, sim.max(1).values)
            else:
                best += (sim ** power).sum(1)
        out[i:i + len(rows)] = best.cpu()
    return out.numpy()


def internal_diversity(smiles: Sequence[str], p: int = 1, include_self: bool = True,
                       device: str = "cpu", fps: Optional[np.ndarray] = None) -> float:
    """IntDiv_p of the valid molecules (see the module docstring for the pairs it averages)."""
    fps = fingerprints(smiles) if fps is None else fps
    n = len(fps)
    if n == 0 or (n == 1 and not include_self):
        raise DataError("internal diversity needs at least two valid molecules")
    total = float(_tanimoto_reduce(fps, fps, "sum", power=p, device=device).sum())
    if include_self:
        pairs = n * n
    else:
        total -= n  # each molecule's similarity with itself is exactly 1 (also for empty fps)
        pairs = n * (n - 1)
    return 1.0 - (total / pairs) ** (1.0 / p)


def snn(smiles: Sequence[str], reference_fps: np.ndarray, device: str = "cpu",
        fps: Optional[np.ndarray] = None) -> float:
    """Mean over the valid molecules of the Tanimoto similarity to their nearest reference."""
    fps = fingerprints(smiles) if fps is None else fps
    if len(fps) == 0 or len(reference_fps) == 0:
        raise DataError("SNN needs at least one valid generated and one reference molecule")
    return float(_tanimoto_reduce(fps, reference_fps, "max", device=device).mean())


def fragments_of(mol) -> list[str]:
    """SMILES of the BRICS fragments of a molecule (with their dummy-atom attachment points)."""
    chem = require("rdkit.Chem")
    broken = require("rdkit.Chem.rdmolops").FragmentOnBRICSBonds(mol)
    return chem.MolToSmiles(broken).split(".")


def scaffold_of(mol, min_rings: int = 2) -> Optional[str]:
    """Canonical SMILES of the Bemis-Murcko scaffold, or None with fewer than ``min_rings`` rings."""
    chem = require("rdkit.Chem")
    try:
        scaffold = require("rdkit.Chem.Scaffolds.MurckoScaffold").GetScaffoldForMol(mol)
    except (ValueError, RuntimeError):
        return None
    text = chem.MolToSmiles(scaffold)
    if not text or scaffold.GetRingInfo().NumRings() < min_rings:
        return None
    return text


def fragment_counts(smiles: Iterable[str]) -> Counter:
    """How often each BRICS fragment occurs over the valid molecules."""
    counts = Counter()
    for mol in map(to_mol, smiles):
        if mol is not None:
            counts.update(fragments_of(mol))
    return counts


def scaffold_counts(smiles: Iterable[str]) -> Counter:
    """How often each scaffold (two rings or more) occurs over the valid molecules."""
    scaffolds = (scaffold_of(m) for m in map(to_mol, smiles) if m is not None)
    return Counter(s for s in scaffolds if s is not None)


def cosine_similarity(a: Counter, b: Counter) -> float:
    """Cosine of two count vectors indexed by their keys (a missing key counts 0); NaN when
    either is empty, as MOSES reports it."""
    if not a or not b:
        return float("nan")
    keys = sorted(set(a) | set(b))
    u = np.array([a.get(k, 0) for k in keys], dtype=np.float64)
    v = np.array([b.get(k, 0) for k in keys], dtype=np.float64)
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def fragment_similarity(smiles: Sequence[str], reference: Counter) -> float:
    """Frag: cosine similarity of BRICS fragment counts (``reference`` from :func:`fragment_counts`)."""
    return cosine_similarity(fragment_counts(smiles), reference)


def scaffold_similarity(smiles: Sequence[str], reference: Counter) -> float:
    """Scaf: cosine similarity of scaffold counts (``reference`` from :func:`scaffold_counts`)."""
    return cosine_similarity(scaffold_counts(smiles), reference)
