"""Fréchet ChemNet Distance (Preuer et al., J. Chem. Inf. Model. 2018) with the ``fcd`` package.

FCD compares two sets of molecules by the Gaussians fitted to their ChemNet activations (the
penultimate layer of a network trained to predict bioactivities from SMILES):
``d^2 = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))`` (the Fréchet distance of
Dowson & Landau 1982, as in FID, Heusel et al. 2017).

The ChemNet weights ship inside ``fcd`` as ``ChemNet_v0.13_pretrained.pt``, a torch pickle
of plain containers and tensors. ``fcd.load_ref_model`` reads it with a bare ``torch.load``
(which is only safe because torch >= 2.6 defaults to ``weights_only=True``, and which an
environment variable can switch off); vaekit reads it with ``weights_only=True`` stated, so no
code in the file can run, and builds the network with ``fcd``'s layer table.
"""

from __future__ import annotations

from importlib import resources
from typing import Optional, Sequence

import numpy as np
import torch

from vaekit.apps.molecules.requirements import require
from vaekit.errors import DataError

__all__ = ["chemnet", "chemnet_activations", "fcd", "fcd_from_stats", "fcd_stats", "frechet_distance"]

_WEIGHTS = "ChemNet_v0.13_pretrained.pt"
_PAD_LEN = 350  # ChemNet's input length; fcd warns that other lengths change the scores
_MODEL = []  # the loaded network, once


def chemnet() -> torch.nn.Module:
    """ChemNet in eval mode on the CPU, its weights read without unpickling code."""
    if not _MODEL:
        fcd_utils = require("fcd.utils")
        with resources.as_file(resources.files("fcd") / _WEIGHTS) as path:
            layers = torch.load(path, map_location="cpu", weights_only=True)
        _MODEL.append(fcd_utils.load_imported_model(layers).eval())
    return _MODEL[0]


def chemnet_activations(smiles: Sequence[str], batch_size: int = 256, device: str = "cpu") -> np.ndarray:
    """ChemNet's penultimate activations (N, 512) of SMILES strings (fcd's one-hot input)."""
    if len(smiles) == 0:
        raise DataError("FCD needs at least two molecules in each set")
    fcd_utils = require("fcd.utils")
    pad_len = max(_PAD_LEN, max(len(s) for s in smiles) + 1)
    model = chemnet().to(device)
    # filled in place: ChemNet's output is a view into its last LSTM's whole sequence (46 MB a
    # batch of 256), so keeping the batches' outputs would hold ~30 GB for the MOSES test split
    out = None
    with torch.no_grad():
        for i in range(0, len(smiles), batch_size):
            # one-hot scaled by 1/vocabulary size, (batch, length, vocab) -> (batch, vocab, length)
            onehot = np.stack([fcd_utils.get_one_hot(s, pad_len=pad_len) for s in smiles[i:i + batch_size]])
            x = torch.from_numpy(onehot / onehot.shape[2]).float().transpose(1, 2).to(device)
            y = model(x).float().cpu().numpy()
            if out is None:
                out = np.empty((len(smiles), y.shape[1]), dtype=np.float32)
            out[i:i + len(y)] = y
    model.to("cpu")
    return out


def fcd_stats(smiles: Sequence[str], batch_size: int = 256, device: str = "cpu") -> dict:
    """Mean and covariance of ChemNet activations: the statistics FCD compares."""
    if len(smiles) < 2:
        raise DataError("FCD needs at least two molecules in each set")
    act = chemnet_activations(smiles, batch_size, device).astype(np.float64)
    return {"mean": act.mean(0), "cov": np.cov(act, rowvar=False)}


def frechet_distance(mean1, cov1, mean2, cov2, eps: float = 1e-6) -> float:
    """Fréchet distance of two Gaussians. The matrix square root of S_1 S_2 is taken with
    scipy; when it is not finite (near-singular covariances) both are offset by eps * I."""
    linalg = require("scipy.linalg")
    diff = mean1 - mean2
    root = linalg.sqrtm(cov1 @ cov2)
    if not np.isfinite(root).all():
        offset = np.eye(len(cov1)) * eps
        root = linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    if np.iscomplexobj(root):
        if np.abs(np.diagonal(root).imag).max() > 1e-3:
            raise DataError("FCD: the covariance product has a complex square root (too few molecules?)")
        root = root.real
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(root))


def fcd_from_stats(a: dict, b: dict) -> float:
    return frechet_distance(a["mean"], a["cov"], b["mean"], b["cov"])


def fcd(smiles: Sequence[str], reference: Sequence[str], batch_size: int = 256, device: str = "cpu",
        reference_stats: Optional[dict] = None) -> float:
    """FCD between two sets of SMILES (MOSES passes the canonical SMILES of the valid molecules)."""
    ref = reference_stats if reference_stats is not None else fcd_stats(reference, batch_size, device)
    return fcd_from_stats(fcd_stats(smiles, batch_size, device), ref)
