"""The MOSES "filters" metric: the share of molecules a medicinal chemist would keep.

MOSES (Polykovskiy et al. 2020, section 2) built its data set with, and scores generated sets
by, these rules: only the atoms C, N, S, O, F, Cl, Br, H; no formal charge; no ring of eight
atoms or more; no match of the PAINS alerts (Baell & Holloway, J. Med. Chem. 2010) or of the
MOSES authors' medicinal-chemistry filters (MCF, a list of SMARTS shipped as ``mcf.csv`` with
the MOSES code).

PAINS here is RDKit's FilterCatalog (the same 480 alerts, families A, B and C). The 22 MCF
alerts (aldehydes, epoxides, Michael acceptors, azides, ...) are data shipped beside this module
as ``mcf.json``, with their source and license; as in MOSES they are matched against the
molecule with explicit hydrogens. Callers may add SMARTS of their own as ``extra_smarts``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Optional, Sequence

from vaekit.apps.molecules.chemistry import to_mol
from vaekit.apps.molecules.requirements import require
from vaekit.errors import DataError

__all__ = ["ALLOWED_ATOMS", "fraction_passes_filters", "mcf_smarts", "passes_filters"]

ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
MCF_FILE = Path(__file__).with_name("mcf.json")
_CATALOG = []  # RDKit's PAINS catalog, built once
_MCF = []  # the MCF alerts as RDKit queries, read once


def mcf_smarts() -> list[str]:
    """The MOSES medicinal-chemistry filters (MCF) as SMARTS strings, in their file's order."""
    return [row["smarts"] for row in json.loads(MCF_FILE.read_text())["filters"]]


def _mcf():
    if not _MCF:
        _MCF.append(compile_smarts(mcf_smarts()))
    return _MCF[0]


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
    """Whether a SMILES is a molecule that passes the MOSES rules listed above, and none of the
    compiled SMARTS in ``extra`` (see :func:`compile_smarts`)."""
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
    with_h = require("rdkit.Chem").AddHs(mol)  # MOSES matches its SMARTS with explicit hydrogens
    return not any(with_h.HasSubstructMatch(q) for q in [*_mcf(), *(extra or ())])


def fraction_passes_filters(smiles: Sequence[str], extra_smarts: Optional[Iterable[str]] = None) -> float:
    """Share of the valid molecules that pass the filters (MOSES scores valid molecules only)."""
    extra = compile_smarts(extra_smarts) if extra_smarts else None
    valid = [s for s in smiles if to_mol(s) is not None]
    if not valid:
        raise DataError("the filters metric needs at least one valid molecule")
    return sum(passes_filters(s, extra) for s in valid) / len(valid)
