"""SMILES <-> SELFIES with the ``selfies`` package (Krenn et al., "Self-referencing embedded
strings (SELFIES): a 100% robust molecular string representation", Mach. Learn.: Sci. Technol.
2020).

Every sequence of SELFIES tokens from the semantically robust alphabet decodes to a valid
molecule, so a decoder that emits SELFIES tokens cannot produce an invalid SMILES. A SMILES
that SELFIES cannot express (e.g. an atom over its default valence) comes back as None from
:func:`smiles_to_selfies`, for the tokenizer to count and skip.
"""

from __future__ import annotations

import functools
from typing import Optional

from vaekit.apps.molecules.requirements import require

__all__ = ["robust_alphabet", "selfies_to_smiles", "smiles_to_selfies", "split_selfies"]

# Building a vocabulary and then encoding converts every training SMILES twice; the conversion is the
# slow part (about 6,000 a second, 4 minutes for MOSES's 1.58M), so the second pass reads it from
# here. corpus.molecule_splits empties it once the splits are encoded.
CACHE_SIZE = 1 << 21


@functools.lru_cache(maxsize=CACHE_SIZE)
def smiles_to_selfies(smiles: str) -> Optional[str]:
    """The SELFIES of a SMILES, or None when it cannot be expressed (remembered; see CACHE_SIZE)."""
    sf = require("selfies")
    try:
        return sf.encoder(smiles)
    except sf.EncoderError:
        return None


def selfies_to_smiles(selfies: str) -> str:
    """The SMILES of a SELFIES string; an empty or undecodable string gives ``""``."""
    sf = require("selfies")
    try:
        return sf.decoder(selfies) or ""
    except sf.DecoderError:
        return ""


def split_selfies(selfies: str) -> list[str]:
    """The tokens of a SELFIES string (``[C]``, ``[=O]``, ``[Branch1]``, ...)."""
    sf = require("selfies")
    return list(sf.split_selfies(selfies))


def robust_alphabet() -> list[str]:
    """The SELFIES tokens whose every sequence decodes to a valid molecule, sorted."""
    sf = require("selfies")
    return sorted(sf.get_semantic_robust_alphabet())
