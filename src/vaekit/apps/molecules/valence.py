"""SMILES grammar and valence while decoding: a mask of the tokens that keep a molecule writable.

A sequence VAE writes SMILES one token at a time and can write a string no molecule has: a ring
bond or a branch left open, a bond with no atom after it, a fifth bond on a carbon, a ring bond
closed onto an atom it is already bonded to. :class:`ValenceGrammar` is a decoding constraint
for :meth:`~vaekit.core.sequence.SequenceVAE.generate`: before each token it allows only those
after which the string is still well formed, every atom is within its valence, and every open
branch and ring bond can still be closed in the positions left. Drawing from the model's
distribution renormalised over the allowed tokens is constrained decoding as in the grammar VAE
(Kusner et al., ICML 2017) and the syntax-directed VAE (Dai et al., ICLR 2018), which also checks
valence; here the rules are SMILES's own, followed token by token.

Valence is exact in Kekulé form (``--tokens kekule``), where every bond order is written out.
In aromatic SMILES a bond between two aromatic atoms counts as single here, so the mask catches
less: a ring RDKit cannot kekulise shows only once it is written, and :meth:`ValenceGrammar.accepts`
checks that at the end (:mod:`~vaekit.apps.molecules.aromatic`). Each atom's capacity comes from
:mod:`~vaekit.apps.molecules.smiles_tokens`.

The rules, for a token after the ones written so far (``cur`` is the atom the next bond leaves):
- an atom: bonded to ``cur`` by the bond written before it (single if none) when there is a
  ``cur``; both atoms need that much free valence;
- a bond: after an atom, a ring bond, ``(`` or ``)``, when ``cur`` has that much free valence;
- ``(``: after an atom, a ring bond or ``)``, when ``cur`` has a free valence;
- ``)``: inside a branch, after an atom, a ring bond or ``)``;
- a ring-bond label: after an atom or a ring bond, or a bond written there. An open label closes onto its atom when
  that is neither ``cur`` nor bonded to it, the two bond orders agree and both atoms have the
  valence; otherwise it opens, reserving the bond on ``cur``;
- ``<eos>``, or ``.`` and another molecule: with no branch or ring bond open, after an atom, a
  ring bond or ``)``.
While a ring bond is open some atom on the way back (``cur`` or one where a branch opened) must
keep a free valence, else it could never close; and every token must leave room for the fewest
tokens that finish the string. A row that is left with no allowed token (rare) may only end, and
the strings made that way are counted in :attr:`ValenceGrammar.dead_ends`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from vaekit.apps.molecules.aromatic import AROMATIC_BOND, kekulisable
from vaekit.apps.molecules.smiles_tokens import (ATOM, BOND, CLOSE, DOT, END, NEVER, OPEN, RING, START,
                                                 aromatic_valence, token_kind)
from vaekit.apps.molecules.tokenizer import EOS, Vocabulary

__all__ = ["ValenceGrammar", "constraint_for"]

NO_BOND = -1  # no bond symbol written: the bond is single, or aromatic between aromatic atoms


@dataclass
class _Row:
    """One partial string: its atoms' free valence and bonds, where the next bond leaves from."""

    free: list = field(default_factory=list)  # free valence of each atom written so far
    bonded: list = field(default_factory=list)  # set of neighbours of each atom
    cur: Optional[int] = None
    prev: int = START
    bond: int = NO_BOND  # the token id of a bond just written
    branches: list = field(default_factory=list)  # the atom each open branch leaves from
    rings: dict = field(default_factory=dict)  # open label -> (atom, the bond token written at the opening or NO_BOND)
    ring_ok: bool = False  # a ring-bond label may come next: right after an atom or a ring bond, or a bond there
    ended: bool = False
    # the molecule as written, for the aromatic check at its end (aromatic.py)
    atoms: list = field(default_factory=list)  # token id of each atom
    parents: list = field(default_factory=list)  # the atom each one was bonded to when written
    edges: list = field(default_factory=list)  # (a, b, order or AROMATIC_BOND)
    closures: list = field(default_factory=list)  # (a, b) of each ring-closure bond


class ValenceGrammar:
    """SMILES grammar and valence as a decoding constraint (see the module's rules)."""

    def __init__(self, vocab: Vocabulary):
        kinds = [token_kind(t) for t in vocab.tokens]
        self.classes = [k for k, _ in kinds]
        self.values = [v for _, v in kinds]
        self.vocab_size = len(kinds)
        self.end_id = vocab.tokens.index(EOS)
        self.atoms = [(i, v) for i, (k, v) in enumerate(kinds) if k == ATOM]
        self.bonds = [(i, v) for i, (k, v) in enumerate(kinds) if k == BOND]
        self.rings = [(i, v) for i, (k, v) in enumerate(kinds) if k == RING]
        self.opens = [i for i, k in enumerate(self.classes) if k == OPEN]
        self.closes = [i for i, k in enumerate(self.classes) if k == CLOSE]
        self.dots = [i for i, k in enumerate(self.classes) if k == DOT]
        self.maxcap = max((cap for _, cap in self.atoms), default=0)
        self.gain = self.maxcap - 2  # a new atom takes one free valence and brings maxcap - 1
        self.dead_ends = 0
        self.vocab = vocab
        self.aromatic = [aromatic_valence(t) for t in vocab.tokens]  # None for all but aromatic atoms
        self.colon = [t == ":" for t in vocab.tokens]
        # a bond token's order, else 0, and 0 at index NO_BOND (the last): read for a row's pending bond
        self.order = [v if k == BOND else 0 for k, v in kinds] + [0]

    def start(self, n: int, device=None) -> list:
        return [_Row() for _ in range(n)]

    # -- what may come next --------------------------------------------------------------------
    def _finish(self, free_cur: int, here: int, branch_free: int, rings: int, depth: int) -> float:
        """The fewest tokens that end a string: a ')' per open branch, a closure per open ring bond,
        ``<eos>``, and the new atoms the closures need. A ring bond closes right after an atom: on the
        current one for the ``here`` open ring bonds that may close on it (up to its free valence),
        else on new atoms, each hung on a free valence of the current atom or of one where a branch
        opened (inf: no way to close them)."""
        if rings == 0:
            return depth + 1
        best = float("inf")
        sites = min(free_cur, here)
        if sites >= rings:
            return depth + 1 + rings
        if branch_free >= 1:  # close what the current atom can, hang new atoms on a branch atom
            best = self._with_new_atoms(rings - sites)
        if free_cur >= 1:  # or keep one valence of the current atom to hang them on
            best = min(best, self._with_new_atoms(rings - max(sites - 1, 0)))
        return depth + 1 + rings + best

    def _with_new_atoms(self, rings: int) -> float:
        """The fewest new atoms, in a chain, that can close ``rings`` ring bonds: the last one can close
        ``maxcap - 1``, each one before it ``maxcap - 2`` (one valence goes on to the next)."""
        if rings <= 0:
            return 0
        if self.maxcap < 2:
            return float("inf")
        extra = rings - (self.maxcap - 1)
        if extra <= 0:
            return 1
        return float("inf") if self.gain <= 0 else 1 + -(-extra // self.gain)

    @staticmethod
    def _closes(row: _Row, partner: int, opened: int, b: int) -> bool:
        """Whether a ring bond of order ``b`` opened on ``partner`` (with order ``opened``, 0: none
        written) can close on the current atom: another atom, not yet bonded to it, orders that
        agree, and the valence on both ends."""
        return partner != row.cur and partner not in row.bonded[row.cur] and (not opened or opened == b) \
            and row.free[row.cur] >= b and row.free[partner] >= b - (opened or 1)

    def _row_mask(self, row: _Row, left: int) -> np.ndarray:
        mask = np.zeros(self.vocab_size, dtype=bool)
        room = left - 1  # positions after this token
        k, depth = len(row.rings), len(row.branches)
        after_atom = row.prev in (ATOM, RING, CLOSE)
        free_cur = row.free[row.cur] if row.cur is not None else 0
        branch_free = sum(max(row.free[a], 0) for a in row.branches)
        bond = self.order[row.bond]  # the order of a bond just written, 0: none
        order = bond or (1 if row.cur is not None else 0)  # the bond a next atom takes
        # right after '(' (and a bond) the current atom is the branch's: a new bond is taken from its free valence
        on_branch_atom = bool(row.branches) and row.branches[-1] == row.cur
        # open ring bonds that may close on the current atom, and on a new atom bonded to it
        # (one closure per partner atom: two onto the same atom would be one bond written twice)
        partners = {p for p, _ in row.rings.values()}
        here = len(partners - {row.cur} - row.bonded[row.cur]) if row.cur is not None else 0
        here_new = len(partners - {row.cur})
        # an atom
        if free_cur >= order:
            rest = branch_free - on_branch_atom * order
            for i, cap in self.atoms:
                if cap >= order and self._finish(cap - order, here_new, rest, k, depth) <= room:
                    mask[i] = True
        # a bond: an atom must follow (or a ring bond closing)
        if row.cur is not None and (after_atom or row.prev == OPEN) and not bond:
            # the open ring bonds that a bond written here could close: (partner, order at the opening)
            opened = [(p, self.order[written]) for p, written in row.rings.values()] if row.ring_ok else ()
            for i, b in self.bonds:
                if free_cur < b or b > self.maxcap:
                    continue
                cost = 1 + self._finish(self.maxcap - b, here_new, branch_free - on_branch_atom * b, k, depth)
                if any(self._closes(row, p, o, b) for p, o in opened):
                    cost = min(cost, 1 + self._finish(free_cur - b, here - 1, branch_free, k - 1, depth))
                mask[i] = cost <= room
        # a branch: an atom must follow
        if after_atom and free_cur >= 1 \
                and 1 + self._finish(self.maxcap - 1, here_new, branch_free + free_cur - 1, k, depth + 1) <= room:
            mask[self.opens] = True
        if after_atom and depth > 0:
            back = row.branches[-1]
            if self._finish(row.free[back], 0, branch_free - max(row.free[back], 0), k, depth - 1) <= room:
                mask[self.closes] = True
        # a ring bond: closing an open label, or opening one
        if row.cur is not None and row.ring_ok:
            for i, label in self.rings:
                if label in row.rings:
                    partner, written = row.rings[label]
                    opened = self.order[written]
                    b = bond or opened or 1
                    if self._closes(row, partner, opened, b):
                        # the partner is bonded to the current atom now: its other ring bonds close elsewhere
                        mask[i] = self._finish(free_cur - b, here - 1, branch_free, k - 1, depth) <= room
                else:
                    b = bond or 1
                    mask[i] = free_cur >= b and self._finish(free_cur - b, here, branch_free, k + 1, depth) <= room
        if after_atom and depth == 0 and k == 0:
            mask[self.end_id] = True
            if room >= 2:  # '.', then another molecule: an atom and <eos> at least
                mask[self.dots] = True
        return mask

    def allowed(self, state: list, left: int) -> torch.Tensor:
        """Bool (n, vocab): the tokens that may come next with ``left`` positions left (this one included)."""
        masks = np.zeros((len(state), self.vocab_size), dtype=bool)
        for r, row in enumerate(state):
            if row.ended:
                masks[r, self.end_id] = True
                continue
            m = self._row_mask(row, left)
            if not m.any():
                self.dead_ends += 1
                m[self.end_id] = True
            masks[r] = m
        return torch.from_numpy(masks)

    def accepts(self, ids: torch.Tensor) -> torch.Tensor:
        """Bool (n,): which rows of token ids (n, max_len + 2, as
        :meth:`~vaekit.core.sequence.SequenceVAE.generate` writes them) are strings the mask would
        have allowed token by token. A row is read as :meth:`Vocabulary.read` reads it for decoding (up to the
        first ``<eos>`` or ``<pad>``, special tokens dropped), so the check is of the string returned;
        rejected when it needs more than ``max_len`` tokens, breaks a rule, or its aromatic atoms have no
        Kekulé structure (:mod:`~vaekit.apps.molecules.aromatic`). No RDKit."""
        ok = torch.zeros(ids.shape[0], dtype=torch.bool)
        length = ids.shape[1]
        for r, row_ids in enumerate(ids.cpu().tolist()):
            tokens = self.vocab.read(row_ids)
            row, good = _Row(), len(tokens) <= length - 2
            for t, token in enumerate([*tokens, self.end_id] if good else [], start=1):
                if not self._row_mask(row, length - t)[token]:
                    good = False
                    break
                self._write(row, token)
            ok[r] = good and self.kekulisable(row)
        return ok

    # -- writing a token -----------------------------------------------------------------------
    def _edge_order(self, row: _Row, a: int, b: int, bond_id: int) -> int:
        """A bond's order, or AROMATIC_BOND between two aromatic atoms with no bond symbol (or ':')."""
        if (bond_id == NO_BOND or self.colon[bond_id]) and self.aromatic[row.atoms[a]] is not None \
                and self.aromatic[row.atoms[b]] is not None:
            return AROMATIC_BOND
        return self.order[bond_id] or 1

    def kekulisable(self, row: _Row) -> bool:
        """Whether a finished row's aromatic atoms have a Kekulé structure (aromatic.py)."""
        return kekulisable([self.aromatic[t] for t in row.atoms], row.parents, row.edges, row.closures)

    def advance(self, state: list, tokens: torch.Tensor) -> None:
        for row, t in zip(state, tokens.tolist()):
            if not row.ended:
                self._write(row, t)

    def _write(self, row: _Row, t: int) -> None:
        kind, value = self.classes[t], self.values[t]
        if kind == ATOM:
            new = len(row.free)
            row.free.append(value)
            row.bonded.append(set())
            row.atoms.append(t)
            row.parents.append(row.cur)
            if row.cur is not None:
                order = self.order[row.bond] or 1
                row.free[row.cur] -= order
                row.free[new] -= order
                row.bonded[row.cur].add(new)
                row.bonded[new].add(row.cur)
                row.edges.append((row.cur, new, self._edge_order(row, row.cur, new, row.bond)))
            row.cur, row.bond = new, NO_BOND
        elif kind == BOND:
            row.bond = t
        elif kind == OPEN:
            row.branches.append(row.cur)
        elif kind == CLOSE:
            row.cur = row.branches.pop()
        elif kind == DOT:  # a new molecule starts: nothing to bond to
            row.cur = None
        elif kind == RING:
            if value in row.rings:
                partner, written = row.rings.pop(value)
                opened = self.order[written]
                b = self.order[row.bond] or opened or 1
                row.free[row.cur] -= b
                row.free[partner] -= b - (opened or 1)
                row.bonded[row.cur].add(partner)
                row.bonded[partner].add(row.cur)
                order = self._edge_order(row, row.cur, partner, row.bond if row.bond != NO_BOND else written)
                row.edges.append((row.cur, partner, order))
                row.closures.append((row.cur, partner))
            else:
                row.rings[value] = (row.cur, row.bond)
                row.free[row.cur] -= self.order[row.bond] or 1
            row.bond = NO_BOND
        else:  # <eos>, or a token never written
            row.ended = True
        row.ring_ok = kind in (ATOM, RING) or (kind == BOND and row.ring_ok)
        row.prev = kind


def constraint_for(vocab: Vocabulary, constrained: bool = True) -> Optional[ValenceGrammar]:
    """The decoding constraint of a SMILES or Kekulé vocabulary when ``constrained``; None for
    SELFIES (valid by construction) and for lines of text."""
    return ValenceGrammar(vocab) if constrained and vocab.kind in ("smiles", "kekule") else None
