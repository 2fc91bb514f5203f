"""Whether the aromatic atoms of a written molecule can be kekulised, as RDKit requires to read it.

Aromatic SMILES (``c1ccccc1``) leave the bond orders of a ring to the reader, who must find a Kekulé
structure: every aromatic atom with a valence left over after its bonds (aromatic bonds counted as
single) takes exactly one double bond, to an aromatic neighbour that needs one too; atoms such as
``[nH]``, ``o`` or ``s`` in a five-membered ring have none left and take none. That is a perfect
matching of the atoms that need a double bond, over the aromatic bonds between them; when there is
none (a pyridine-like ``n`` that should have been ``[nH]``, an odd chain of ``c``) RDKit refuses the
molecule ("Can't kekulize"). An aromatic atom outside every ring is refused as well.

A SMILES string is a tree of bonds (the chain and its branches) plus one bond per ring closure, so
an atom is in a ring exactly when it lies on the tree path between the two ends of a ring closure.
"""

from __future__ import annotations

from typing import Optional, Sequence

__all__ = ["AROMATIC_BOND", "kekulisable"]

AROMATIC_BOND = 0  # the order recorded for a bond between two aromatic atoms with no bond symbol (or ':')


def kekulisable(valence: Sequence[Optional[int]], parents: Sequence[Optional[int]],
                edges: Sequence[tuple[int, int, int]], closures: Sequence[tuple[int, int]]) -> bool:
    """``valence[i]``: what aromatic atom i fills with its bonds (None: not aromatic); ``parents[i]``:
    the atom i was bonded to when written (None: the first of a molecule); ``edges``: (a, b, order),
    ``AROMATIC_BOND`` for an aromatic one; ``closures``: the (a, b) of each ring-closure bond."""
    aromatic = [i for i, v in enumerate(valence) if v is not None]
    if not aromatic:
        return True
    rings = _ring_atoms(parents, closures)
    if any(i not in rings for i in aromatic):
        return False
    used = [0] * len(valence)
    neighbours: dict[int, list[int]] = {i: [] for i in aromatic}
    for a, b, order in edges:
        used[a] += order or 1
        used[b] += order or 1
        if order == AROMATIC_BOND:
            neighbours[a].append(b)
            neighbours[b].append(a)
    needy = {i for i in aromatic if valence[i] - used[i] >= 1}
    return _perfect_matching(needy, neighbours)


def _ring_atoms(parents: Sequence[Optional[int]], closures: Sequence[tuple[int, int]]) -> set[int]:
    depth = []
    for p in parents:
        depth.append(0 if p is None else depth[p] + 1)
    inside: set[int] = set()
    for a, b in closures:
        path = {a, b}
        while a != b and a is not None and b is not None:
            if depth[a] >= depth[b]:
                a = parents[a]
            else:
                b = parents[b]
            path |= {x for x in (a, b) if x is not None}
        if a is not None and a == b:  # the two ends meet: a ring (ends in two molecules joined by '.' do not)
            inside |= path
    return inside


def _perfect_matching(needy: set[int], neighbours: dict[int, list[int]]) -> bool:
    """Whether the atoms in ``needy`` pair up along ``neighbours``: the atom with the fewest
    partners left is matched first, each choice undone if the rest cannot pair."""
    left = set(needy)

    def solve() -> bool:
        if not left:
            return True
        a = min(left, key=lambda i: sum(j in left for j in neighbours[i]))
        for b in neighbours[a]:
            if b in left and b != a:
                left.difference_update((a, b))
                if solve():
                    return True
                left.update((a, b))
        return False

    return solve()
