"""The MOSES "filters" metric: the share of molecules a medicinal chemist would keep.

MOSES (Polykovskiy et al. 2020, section 2) built its data set with, and scores generated sets
by, these rules: only the atoms C, N, S, O, F, Cl, Br, H; no formal charge; no ring of eight
atoms or more; no match of the PAINS alerts (Baell & Holloway, J. Med. Chem. 2010) or of the
MOSES authors' medicinal-chemistry filters (MCF, a list of SMARTS shipped as ``mcf.csv`` with
the MOSES code).

PAINS here is RDKit's FilterCatalog (the same 480 alerts, families A, B and C). The MCF list is
not part of RDKit and is not reproduced here, so this metric applies every MOSES rule except
the MCF alerts: it can only read higher than MOSES's own figure, never lower. Callers who
have the MCF SMARTS can pass them as ``extra_smarts``.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

from vaekit.apps.molecules.chemistry import to_mol
from vaekit.apps.molecules.requirements import require
from vaekit.errors import DataError

__all__ = ["ALLOWED_ATOMS", "fraction_passes_filters", "passes_filters"]

ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
_CATALOG = []  # RDKit's PAINS catalog, built once


def _pains():
    if not _CATALOG:
        fc = require("rdkit.Chem.FilterCatalog")
        params = fc.FilterCatalogParams()
        params.AddCatalog(fc.FilterCatalogParams.FilterCatalogs.PAINS)
        _CATALOG.append(fc.FilterCatalog(params))
    return _CATALOG[0]


def compile_smarts(smarts: Iterable[str]) -> list:
    """RDKit query molecules of SMARTS patterns; a pattern RDKit cannot read is a DataError."""
    chem = require("rdkit.Chem")
    queries = []
    for pattern in smarts:
        query = chem.MolFromSmarts(pattern)
        if query is None:
            raise DataError(f"cannot read the SMARTS filter {pattern!r}")
        queries.append(query)
    return queries


def passes_filters(smiles: str, extra: Optional[Sequence] = None) -> bool:
    """Whether a SMILES is a molecule that passes the MOSES rules listed above (MCF excepted
    unless its compiled SMARTS are given as ``extra``, see :func:`compile_smarts`)."""
    mol = to_mol(smiles)
    if mol is None:
        return False
    if any(len(ring) >= 8 for ring in mol.GetRingInfo().AtomRings()):
        return False
    atoms = mol.GetAtoms()
    if any(a.GetFormalCharge() != 0 for a in atoms) or any(a.GetSymbol() not in ALLOWED_ATOMS for a in atoms):
        return False
    if _pains().HasMatch(mol):
        return False
    if extra:
        with_h = require("rdkit.Chem").AddHs(mol)  # MOSES matches its SMARTS with explicit hydrogens
        if any(with_h.HasSubstructMatch(q) for q in extra):
            return False
    return True


def fraction_passes_filters(smiles: Sequence[str], extra_smarts: Optional[Iterable[str]] = None) -> float:
    """Share of the valid molecules that pass the filters (MOSES scores valid molecules only)."""
    extra = compile_smarts(extra_smarts) if extra_smarts else None
    valid = [s for s in smiles if to_mol(s) is not None]
    if not valid:
        raise DataError("the filters metric needs at least one valid molecule")
    return sum(passes_filters(s, extra) for s in valid) / len(valid)
