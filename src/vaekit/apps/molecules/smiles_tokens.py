"""SMILES tokens as the decoding grammar sees them: each token's class (atom, bond, branch, ring-bond
label, end) and its number (an atom's bond capacity, a bond's order, a ring bond's label).

An atom's capacity is the largest normal valence of its element (of the isoelectronic element for a
charged bracket atom: N+ as C, O- as F) less its written hydrogens; an organic-subset atom takes
implicit hydrogens for the rest. Used by :class:`~vaekit.apps.molecules.valence.ValenceGrammar`.
"""

from __future__ import annotations

import re
from typing import Optional

from vaekit.apps.molecules.tokenizer import EOS, SPECIAL_TOKENS

__all__ = ["ATOM", "BOND", "CLOSE", "DOT", "END", "NEVER", "OPEN", "RING", "START", "aromatic_valence", "atom_capacity",
           "token_kind"]

ATOM, BOND, OPEN, CLOSE, RING, END, NEVER, START, DOT = range(9)
_BOND_ORDER = {"-": 1, "=": 2, "#": 3, "$": 4, ":": 1, "/": 1, "\\": 1}
_RING = re.compile(r"\d|%\d\d")
# the largest normal valence of each element as RDKit checks it (OpenSMILES's organic subset and
# the usual charged atoms); elements outside it get no limit
_VALENCE = {"H": 1, "B": 3, "C": 4, "N": 3, "O": 2, "F": 1, "Si": 4, "P": 5, "S": 6, "Cl": 1, "Se": 6,
            "Br": 1, "I": 5, "As": 5, "Te": 6}
_ELEMENTS = ["H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar",
             "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br",
             "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te",
             "I", "Xe"]
_NO_LIMIT = 8
_BRACKET = re.compile(r"\[(\d*)([A-Z][a-z]?|[a-z][a-z]?)(@*)(?:H(\d*))?([+-]*)(\d*)(?::\d+)?\]")
_ORGANIC = {"B", "C", "N", "O", "P", "S", "F", "Cl", "Br", "I", "b", "c", "n", "o", "p", "s"}


def _bracket_atom(m: re.Match) -> tuple[Optional[str], int]:
    """(the isoelectronic element of a bracket atom: N+ as C, O- as F; None outside the table, its
    written hydrogens)."""
    _, symbol, _, hydrogens, signs, digits = m.groups()
    symbol = symbol.capitalize()
    charge = (int(digits) if digits else len(signs)) * (1 if signs[0] == "+" else -1) if signs else 0
    number = _ELEMENTS.index(symbol) - charge if symbol in _ELEMENTS else -1
    h = (int(hydrogens) if hydrogens else 1) if hydrogens is not None else 0
    return (_ELEMENTS[number] if 0 <= number < len(_ELEMENTS) else None), h


def atom_capacity(token: str) -> Optional[int]:
    """The most bond order an atom token can carry (None: the token is not an atom)."""
    if token in _ORGANIC:
        return _VALENCE[token.capitalize()]
    m = _BRACKET.fullmatch(token)
    if m is None:
        return None
    if m.group(2).capitalize() not in _ELEMENTS:
        return _NO_LIMIT
    like, h = _bracket_atom(m)
    return max(_VALENCE.get(like, _NO_LIMIT) - h, 0)


# the normal valences, smallest first, of the elements that are written aromatic: what an aromatic atom
# fills with its bonds (one of them double, when one is left) as RDKit kekulises
_AROMATIC_VALENCES = {"B": (3,), "C": (4,), "N": (3,), "O": (2,), "P": (3, 5), "S": (2, 4, 6), "Se": (2, 4, 6),
                      "Te": (2, 4, 6), "As": (3, 5), "Si": (4,)}


def aromatic_valence(token: str) -> Optional[tuple[int, ...]]:
    """The valences an aromatic atom token may fill with its bonds, smallest first: its element's
    normal valences (of the isoelectronic element when charged: n+ as c, o+ as n) less its written
    hydrogens; None for a token that is not an aromatic atom."""
    if token in _ORGANIC:
        return _AROMATIC_VALENCES[token.capitalize()] if token.islower() else None
    m = _BRACKET.fullmatch(token)
    if m is None or not m.group(2)[0].islower():
        return None
    like, h = _bracket_atom(m)
    return tuple(v - h for v in _AROMATIC_VALENCES.get(like, (_NO_LIMIT,)))


def token_kind(token: str) -> tuple[int, int]:
    """(class, number) of one vocabulary token: an atom's capacity, a bond's order, a ring label."""
    if token == EOS:
        return END, 0
    if token in SPECIAL_TOKENS:
        return NEVER, 0
    if token == "(":
        return OPEN, 0
    if token == ")":
        return CLOSE, 0
    if token in _BOND_ORDER:
        return BOND, _BOND_ORDER[token]
    if token == ".":
        return DOT, 0
    if _RING.fullmatch(token):
        return RING, int(token.lstrip("%"))
    capacity = atom_capacity(token)
    return (ATOM, capacity) if capacity is not None else (NEVER, 0)
