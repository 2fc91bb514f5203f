"""RDKit helpers: parsing, canonical SMILES, properties (QED, logP, SA, penalized logP), drawing.

Validity follows MOSES (Polykovskiy et al. 2020, ``get_mol``): a string is a molecule when it
is not empty, RDKit parses it and sanitisation succeeds. RDKit's own log of parse errors is
silenced while vaekit parses: an invalid generated string is an expected outcome, counted by
the metrics, not a message to print.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import math
import pickle
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Sequence

from vaekit.apps.molecules.requirements import require
from vaekit.errors import DataError

__all__ = ["canonical_smiles", "draw_grid", "logp", "penalized_logp", "qed", "quiet_rdkit",
           "sa_score", "to_mol"]

# Penalized logP as in JT-VAE's code (Jin et al., ICML 2018; the normalisation of Kusner et al.'s
# grammar VAE): each term is standardised by its mean and standard deviation over ZINC250k.
_LOGP_MEAN, _LOGP_STD = 2.4570953396190123, 1.434324401111988
_SA_MEAN, _SA_STD = -3.0525811293166134, 0.8335207024513095
_CYCLE_MEAN, _CYCLE_STD = -0.0485696876403053, 0.2860212110245455
_SASCORER = []  # the loaded scorer module, once


@contextmanager
def quiet_rdkit():
    """Silence RDKit's error log inside the block (parse failures are counted, not printed)."""
    rdbase = require("rdkit.RDLogger")
    rdbase.DisableLog("rdApp.*")
    try:
        yield
    finally:
        rdbase.EnableLog("rdApp.*")


def to_mol(smiles):
    """The sanitised RDKit molecule of a SMILES string, or None when it is not a molecule."""
    chem = require("rdkit.Chem")
    if not isinstance(smiles, str) or not smiles:
        return None
    with quiet_rdkit():
        mol = chem.MolFromSmiles(smiles)
        if mol is None:
            return None
        try:
            chem.SanitizeMol(mol)
        except ValueError:  # RDKit's sanitisation errors derive from ValueError
            return None
    return mol


def canonical_smiles(smiles: str) -> Optional[str]:
    """RDKit's canonical SMILES of a string, or None when it is not a molecule."""
    mol = to_mol(smiles)
    return None if mol is None else require("rdkit.Chem").MolToSmiles(mol)


def qed(mol) -> float:
    """Quantitative estimate of drug-likeness (Bickerton et al., Nat. Chem. 2012), in [0, 1]."""
    return float(require("rdkit.Chem.QED").qed(mol))


def logp(mol) -> float:
    """Crippen's octanol-water logP (Wildman & Crippen, J. Chem. Inf. Comput. Sci. 1999)."""
    return float(require("rdkit.Chem.Crippen").MolLogP(mol))


def _sascorer():
    """RDKit's Contrib SA scorer with its fragment table loaded without running pickle code.

    ``sascorer.readFragmentScores`` calls ``pickle.load`` on ``fpscores.pkl.gz``; the table
    is plain lists of numbers, so a pickle reader that refuses every global (no class can be
    named, nothing can be called) reads it completely and can execute nothing.
    """
    if _SASCORER:
        return _SASCORER[0]
    folder = Path(require("rdkit.RDConfig").RDContribDir) / "SA_Score"
    if not (folder / "sascorer.py").is_file():
        raise DataError(f"RDKit's SA_Score contrib is not in {folder}; the SA score and penalized logP need it")
    # The contrib folder is not a package: load its module by path, without touching sys.path.
    spec = importlib.util.spec_from_file_location("vaekit_rdkit_sascorer", folder / "sascorer.py")
    sascorer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sascorer)
    with gzip.open(folder / "fpscores.pkl.gz", "rb") as f:
        table = _NoGlobalsUnpickler(io.BytesIO(f.read())).load()
    sascorer._fscores = {fragment: float(row[0]) for row in table for fragment in row[1:]}
    _SASCORER.append(sascorer)
    return sascorer


class _NoGlobalsUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise DataError(f"refusing to load {module}.{name} from a data table that should hold only numbers")


def sa_score(mol) -> float:
    """Synthetic accessibility, 1 (easy) to 10 (hard) (Ertl & Schuffenhauer, J. Cheminf. 2009)."""
    return float(_sascorer().calculateScore(mol))


def _largest_ring_penalty(mol) -> int:
    """Ring atoms beyond six in the largest ring of a cycle basis of the molecular graph."""
    networkx = require("networkx")  # a torch dependency; JT-VAE's cycle_basis, for like-for-like values
    adjacency = require("rdkit.Chem.rdmolops").GetAdjacencyMatrix(mol)
    cycles = networkx.cycle_basis(networkx.Graph(adjacency))
    largest = max((len(c) for c in cycles), default=0)
    return max(largest - 6, 0)


def penalized_logp(mol, normalized: bool = True) -> float:
    """logP - SA - (ring atoms beyond six in the largest ring) (Gomez-Bombarelli et al. 2018;
    Kusner et al. 2017; Jin et al. 2018).

    ``normalized`` standardises each term by its ZINC250k mean and standard deviation, as in
    JT-VAE's code (the convention of its Table 2); ``normalized=False`` is the raw sum used by
    later work (e.g. GCPN, You et al. 2018).
    """
    log_p, sa, cycle = logp(mol), -sa_score(mol), -float(_largest_ring_penalty(mol))
    if not normalized:
        return log_p + sa + cycle
    return ((log_p - _LOGP_MEAN) / _LOGP_STD + (sa - _SA_MEAN) / _SA_STD
            + (cycle - _CYCLE_MEAN) / _CYCLE_STD)


def draw_grid(smiles: Sequence[str], path, legends: Optional[Sequence[str]] = None,
              per_row: int = 6, size: int = 250) -> Path:
    """Draw molecules in a grid to a PNG, each labelled with ``legends`` or else its canonical
    SMILES (aromatic, the shortest to read); an invalid string is drawn as an empty cell and
    labelled ``invalid``. A label longer than the cell holds is cut and ends in ``...``."""
    draw = require("rdkit.Chem.Draw")
    if not smiles:
        raise DataError("no molecules to draw")
    chem = require("rdkit.Chem")
    mols = [to_mol(s) for s in smiles]
    labels = list(legends) if legends is not None else \
        [chem.MolToSmiles(m) if m is not None else s for m, s in zip(mols, smiles)]
    labels = [str(lab) if m is not None else f"invalid: {lab}" for m, lab in zip(mols, labels)]
    mols = [m if m is not None else chem.Mol() for m in mols]
    fits = max(size // 7, 8)  # characters of the legend's font across a cell
    image = draw.MolsToGridImage(mols, molsPerRow=min(per_row, len(mols)), subImgSize=(size, size),
                                 legends=[lab if len(lab) <= fits else lab[:fits - 3] + "..." for lab in labels])
    path = Path(path)
    image.save(str(path))
    return path


def sa_available() -> bool:
    """Whether the SA scorer is available (RDKit's Contrib folder ships with the wheel)."""
    try:
        _sascorer()
    except (DataError, ImportError):
        return False
    return math.isfinite(sa_score(to_mol("CCO")))
