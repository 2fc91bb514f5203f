"""SMILES in Kekulé form: aromatic rings written with explicit alternating single and double bonds.

MOSES's SMILES write aromatic atoms in lower case (``c1ccccc1``); RDKit must then find a Kekulé
structure for every aromatic ring, and a generated ring that has none (a five-membered ring of
``c`` and ``n`` without its ``[nH]``) is an invalid molecule. Most of the invalid strings of the
2-hour SMILES run failed that way (bench/results/moses.md: 1,324 of 2,215). With
``--tokens kekule`` the model reads and writes RDKit's Kekulé SMILES (``C1=CC=CC=C1``), which
leave nothing to kekulise: RDKit perceives aromaticity again when it parses them, so the
molecules, their canonical SMILES and every metric are the same as for aromatic SMILES.
"""

from __future__ import annotations

import functools
from typing import Optional

from vaekit.apps.molecules.chemistry import quiet_rdkit
from vaekit.apps.molecules.requirements import require

__all__ = ["smiles_to_kekule"]

# As for SELFIES (selfies_codec.CACHE_SIZE): building the vocabulary and then encoding converts each
# training string twice; about 6,800 conversions a second, 4 minutes for MOSES's 1.58M.
CACHE_SIZE = 1 << 21


@functools.lru_cache(maxsize=CACHE_SIZE)
def smiles_to_kekule(smiles: str) -> Optional[str]:
    """RDKit's canonical Kekulé SMILES of a SMILES (no aromatic atoms or bonds), or None when RDKit
    cannot parse it or find a Kekulé structure (remembered; see CACHE_SIZE)."""
    chem = require("rdkit.Chem")
    # not chemistry.to_mol: its second sanitisation and per-call log switch make MOSES's 1.58M
    # conversions 1.7x slower (3.7 s against 2.2 s per 20,000 here), and MolFromSmiles sanitises already
    with quiet_rdkit():
        mol = chem.MolFromSmiles(smiles)
        if mol is None:
            return None
        try:
            chem.Kekulize(mol, clearAromaticFlags=True)
        except ValueError:  # RDKit's KekulizeException derives from ValueError
            return None
    return chem.MolToSmiles(mol, kekuleSmiles=True)
