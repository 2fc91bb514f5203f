"""All MOSES metrics of a generated set in one call (Polykovskiy et al., Front. Pharmacol. 2020).

The order follows MOSES's ``get_all_metrics``: validity on the raw strings; every other metric
on the canonical SMILES of the valid ones (duplicates kept); unique@k on the first k of those;
FCD/SNN/Frag/Scaf against the test set (and the scaffold-test set when given); IntDiv and
IntDiv2 (p = 2) among the generated molecules; filters; novelty against the training set.

RDKit work is split over ``n_jobs`` processes (chunks of molecules, module-level functions);
the Tanimoto products and ChemNet run in torch on ``device``.
"""

from __future__ import annotations

import time
from collections import Counter
from contextlib import contextmanager
from multiprocessing import get_context
from typing import Callable, Optional, Sequence

import numpy as np

from vaekit.apps.molecules import fcd as fcd_module
from vaekit.apps.molecules import metrics as m
from vaekit.apps.molecules.filters import passes_filters
from vaekit.errors import DataError

__all__ = ["moses_metrics", "reference_stats"]


def _passing(smiles: Sequence[str]) -> list[bool]:
    return [passes_filters(s) for s in smiles]


def _parallel(fn: Callable, items: Sequence, n_jobs: int):
    """``fn`` over ``n_jobs`` contiguous chunks of ``items``, results joined in order (lists
    and arrays concatenated, Counters added)."""
    if n_jobs <= 1 or len(items) < 2 * n_jobs:
        return fn(list(items))
    bounds = np.linspace(0, len(items), n_jobs + 1).astype(int)
    chunks = [list(items[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    with get_context("fork").Pool(n_jobs) as pool:
        parts = pool.map(fn, chunks)
    if isinstance(parts[0], Counter):
        return sum(parts, Counter())
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    return [x for part in parts for x in part]


@contextmanager
def _timed(timings: Optional[dict], key: str):
    start = time.perf_counter()
    yield
    if timings is not None:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - start


def reference_stats(smiles: Sequence[str], n_jobs: int = 1, device: str = "cpu",
                    with_fcd: bool = True, timings: Optional[dict] = None) -> dict:
    """What the test-set metrics need of a reference set: fingerprints, BRICS fragment counts,
    scaffold counts and ChemNet statistics (computed once, reusable across generated sets)."""
    stats = {}
    with _timed(timings, "reference_fps"):
        stats["fps"] = _parallel(m.fingerprints, smiles, n_jobs)
    with _timed(timings, "reference_frag"):
        stats["frag"] = _parallel(m.fragment_counts, smiles, n_jobs)
    with _timed(timings, "reference_scaf"):
        stats["scaf"] = _parallel(m.scaffold_counts, smiles, n_jobs)
    if with_fcd:
        with _timed(timings, "reference_fcd"):
            stats["fcd"] = fcd_module.fcd_stats(list(smiles), device=device)
    return stats


def _against(prefix: str, valid: list[str], fps: np.ndarray, ref: dict, n_jobs: int, device: str,
             timings: Optional[dict]) -> dict:
    """FCD/SNN/Frag/Scaf of the valid generated molecules against one reference set."""
    out = {}
    if "fcd" in ref:
        with _timed(timings, "FCD"):
            out[f"FCD/{prefix}"] = fcd_module.fcd_from_stats(fcd_module.fcd_stats(valid, device=device), ref["fcd"])
    with _timed(timings, "SNN"):
        out[f"SNN/{prefix}"] = m.snn(valid, ref["fps"], device=device, fps=fps)
    with _timed(timings, "Frag"):
        out[f"Frag/{prefix}"] = m.cosine_similarity(_parallel(m.fragment_counts, valid, n_jobs), ref["frag"])
    with _timed(timings, "Scaf"):
        out[f"Scaf/{prefix}"] = m.cosine_similarity(_parallel(m.scaffold_counts, valid, n_jobs), ref["scaf"])
    return out


def moses_metrics(generated: Sequence[str], train: Optional[Sequence[str]], test, test_scaffolds=None,
                  n_jobs: int = 1, device: str = "cpu", k: Sequence[int] = (1000, 10000),
                  timings: Optional[dict] = None) -> dict:
    """The MOSES table's metrics of ``generated`` SMILES.

    ``test`` and ``test_scaffolds`` are lists of SMILES or the output of
    :func:`reference_stats` (a reference without ``"fcd"`` skips FCD); ``train`` may be None to
    skip novelty. Keys: ``valid``, ``unique@K``, ``FCD/Test``, ``SNN/Test``, ``Frag/Test``,
    ``Scaf/Test`` (and ``.../TestSF``), ``IntDiv``, ``IntDiv2``, ``Filters``, ``Novelty``.
    ``timings``, when given, receives the seconds each step took.
    """
    if len(generated) == 0:
        raise DataError("no generated molecules to measure")
    with _timed(timings, "valid"):
        valid = _parallel(m.valid_canonical, generated, n_jobs)
    out = {"valid": len(valid) / len(generated)}
    if not valid:
        raise DataError("none of the generated strings is a valid molecule; only validity (0) can be measured")
    with _timed(timings, "unique"):
        for kk in k:
            out[f"unique@{kk}"] = m.unique_at_k(valid, kk, canonical=True)
    with _timed(timings, "fps"):
        fps = _parallel(m.fingerprints, valid, n_jobs)
    for prefix, ref in (("Test", test), ("TestSF", test_scaffolds)):
        if ref is None:
            continue
        ref = ref if isinstance(ref, dict) else reference_stats(ref, n_jobs, device, timings=timings)
        out.update(_against(prefix, valid, fps, ref, n_jobs, device, timings))
    with _timed(timings, "IntDiv"):
        out["IntDiv"] = m.internal_diversity(valid, p=1, device=device, fps=fps)
        out["IntDiv2"] = m.internal_diversity(valid, p=2, device=device, fps=fps)
    with _timed(timings, "Filters"):
        passes_filters("C")  # builds the PAINS catalog once, before the workers fork
        out["Filters"] = float(np.mean(_parallel(_passing, valid, n_jobs)))
    if train is not None:
        with _timed(timings, "Novelty"):
            out["Novelty"] = m.novelty(valid, train, canonical=True)
    return out
