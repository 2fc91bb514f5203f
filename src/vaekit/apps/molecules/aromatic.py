"""Whether the aromatic atoms of a written molecule can be kekulised, as RDKit requires to read it.

Aromatic SMILES (``c1ccccc1``) leave the bond orders of a ring to the reader, who must find a Kekulé
structure. A bond written without a symbol (or ``:``) between two aromatic atoms is aromatic when it
lies in a ring (between two rings, as in ``c1ccccc1c1ccccc1``, it is single). Every aromatic atom
with an aromatic bond and a valence left over after its bonds (aromatic ones counted as single;
sulfur and phosphorus may rise to their higher valences, 4 and 6, or 5, as their bonds require)
takes exactly one double bond, to an aromatic neighbour that needs one too; ``[nH]``, ``o`` or
``s`` in a five-membered ring have none left and take none. That is a perfect matching of the atoms
that need a double bond, over the aromatic bonds between them; when there is none (a pyridine-like
``n`` that should have been ``[nH]``, an odd ring of ``c``) RDKit refuses the molecule ("Can't
kekulize"). An aromatic atom outside every ring is refused as well.

A SMILES string is a tree of bonds (the chain and its branches) plus one bond per ring closure, so
a bond is in a ring exactly when it is a ring closure or lies on the tree path between the two ends
of one.
"""

from __future__ import annotations

from typing import Optional, Sequence

__all__ = ["AROMATIC_BOND", "kekulisable"]

AROMATIC_BOND = 0  # the order recorded for a bond between two aromatic atoms with no bond symbol (or ':')


def kekulisable(valences: Sequence[Optional[tuple[int, ...]]], parents: Sequence[Optional[int]],
                edges: Sequence[tuple[int, int, int]], closures: Sequence[tuple[int, int]]) -> bool:
    """``valences[i]``: the valences aromatic atom i may fill with its bonds, smallest first (None: not
    aromatic); ``parents[i]``: the atom i was bonded to when written (None: the first of a molecule);
    ``edges``: (a, b, order), ``AROMATIC_BOND`` where no symbol (or ':') joins two aromatic atoms;
    ``closures``: the (a, b) of each ring-closure bond."""
    aromatic = [i for i, v in enumerate(valences) if v is not None]
    if not aromatic:
        return True
    ring_bonds = _ring_bonds(parents, closures)
    in_ring = {a for bond in ring_bonds for a in bond}
    if any(i not in in_ring for i in aromatic):
        return False
    used = [0] * len(valences)
    neighbours: dict[int, list[int]] = {i: [] for i in aromatic}
    for a, b, order in edges:
        used[a] += order or 1
        used[b] += order or 1
        if order == AROMATIC_BOND and frozenset((a, b)) in ring_bonds:
            neighbours[a].append(b)
            neighbours[b].append(a)
    needy = {i for i in aromatic if neighbours[i] and _left(valences[i], used[i]) >= 1}
    return _perfect_matching(needy, neighbours)


def _left(valences: tuple[int, ...], used: int) -> int:
    """What an atom has left for a double bond: its smallest valence that holds its bonds, less them."""
    return next((v for v in valences if v >= used), valences[-1]) - used


def _ring_bonds(parents: Sequence[Optional[int]], closures: Sequence[tuple[int, int]]) -> set[frozenset]:
    depth = []
    for p in parents:
        depth.append(0 if p is None else depth[p] + 1)
    inside: set[frozenset] = set()
    for a, b in closures:
        path = [frozenset((a, b))]
        while a != b:  # climb from the deeper end until the two meet
            if depth[a] < depth[b]:
                a, b = b, a
            if parents[a] is None:  # two molecules joined by '.': no ring
                break
            path.append(frozenset((a, parents[a])))
            a = parents[a]
        if a == b:
            inside.update(path)
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
