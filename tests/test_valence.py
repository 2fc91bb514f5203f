"""The SMILES grammar-and-valence mask: it forbids what no molecule can be and allows every real one."""

import pytest
import torch
from conftest import moses_draw

from vaekit.apps.molecules.generate import decode_codes, sample_smiles
from vaekit.apps.molecules.tokenizer import Vocabulary, build_vocabulary, tokenize
from vaekit.apps.molecules.smiles_tokens import atom_capacity
from vaekit.apps.molecules.valence import ValenceGrammar, constraint_for
from vaekit.core.sequence import SequenceVAE

KEKULE = ["CC1=CC=C(C=C1)C(=O)NCC#N", "O=C1NC2=CC=CC=C2S1", "CN1C=NC2=C1C(=O)N(C)C(=O)N2C", "FC(F)(F)C1CCCCC1",
          "CS(=O)(=O)N1CCC(Br)CC1", "ClC1=CC=C2C=CC=CC2=C1", "C=CCOC1=CC=CC=C1", "N#CC1(CC1)C(=O)O"]


def vocabulary(strings, kind="kekule"):
    """A vocabulary of ``strings`` as they are (Kekulé or SMILES), as long as the longest of them or 40 tokens."""
    return Vocabulary(tokens=build_vocabulary(strings).tokens, max_len=max(40, *map(len, map(tokenize, strings))),
                      kind=kind)


def allowed_after(grammar, vocab, prefix, left=30):
    """The tokens the mask allows after the SMILES ``prefix`` (a string)."""
    state = grammar.start(1)
    for token in tokenize(prefix):
        grammar.advance(state, torch.tensor([vocab.index[token]]))
    mask = grammar.allowed(state, left)[0]
    return {t for t, ok in zip(vocab.tokens, mask.tolist()) if ok}


def accepts(vocab, strings) -> list[str]:
    """The strings of which the mask forbids some token (an empty list when it takes them all)."""
    grammar = ValenceGrammar(vocab)
    state = grammar.start(len(strings))
    rows = [tokenize(s) + ["<eos>"] for s in strings]
    bad = set()
    for step in range(max(map(len, rows))):
        tokens = torch.tensor([vocab.index[r[step]] if step < len(r) else vocab.eos_id for r in rows])
        ok = grammar.allowed(state, vocab.max_len + 1 - step)[torch.arange(len(rows)), tokens]
        bad |= {strings[i] for i in (~ok).nonzero().flatten().tolist()}
        grammar.advance(state, tokens)
    return sorted(bad)


@pytest.mark.parametrize("token, capacity", [
    ("C", 4), ("c", 4), ("N", 3), ("O", 2), ("S", 6), ("Cl", 1), ("Br", 1), ("F", 1),
    ("[NH+]", 3), ("[N+]", 4), ("[O-]", 1), ("[nH]", 2), ("[NH3+]", 1), ("[C@@H]", 3), ("[S-]", 1), ("=", None),
])
def test_atom_capacity(token, capacity):
    assert atom_capacity(token) == capacity


def test_valence_is_tracked_through_bonds_branches_and_ring_bonds():
    vocab = vocabulary(KEKULE)
    g = ValenceGrammar(vocab)
    assert allowed_after(g, vocab, "C") >= {"C", "=", "#", "(", "1", "<eos>"}
    assert not allowed_after(g, vocab, "CF") & {"=", "#", "(", "1", "C", "N"}  # fluorine is full
    assert allowed_after(g, vocab, "CF") == {"<eos>"}
    assert "#" not in allowed_after(g, vocab, "C=C") and "=" in allowed_after(g, vocab, "C=C")
    # the atoms that can take a double bond; a ring bond from here would leave no valence to reach its other end
    assert allowed_after(g, vocab, "C=C=") == {"C", "N", "O", "S"}
    assert allowed_after(g, vocab, "CC#") == {"C", "N", "S"}  # O and the halogens cannot take a triple bond
    # a ring bond never closes onto the atom that opened it or onto a neighbour of the current atom
    assert "1" not in allowed_after(g, vocab, "C1")
    assert "1" not in allowed_after(g, vocab, "C1C") and "1" in allowed_after(g, vocab, "C1CC")
    # a carbon with three bonds and an open ring bond keeps its last valence for the closure
    after = allowed_after(g, vocab, "C1CC(C)(C)")
    assert "=" not in after and "C" in after
    # open branches and ring bonds must be closed before the end
    assert "<eos>" not in allowed_after(g, vocab, "C1CC") and "<eos>" not in allowed_after(g, vocab, "CC(C")
    assert ")" not in allowed_after(g, vocab, "CC") and ")" in allowed_after(g, vocab, "CC(C")


def test_a_second_molecule_after_a_dot():
    strings = ["CC(=O)[O-].[Na+]", "CCO", "C1CC1"]
    vocab = vocabulary(strings, "smiles")
    g = ValenceGrammar(vocab)
    assert "." in allowed_after(g, vocab, "CCO") and "." not in allowed_after(g, vocab, "C1CC")
    assert allowed_after(g, vocab, "CCO.") <= {"C", "O", "[O-]", "[Na+]"}  # an atom, unbonded to the first


def test_the_string_fits_in_the_positions_left():
    vocab = vocabulary(KEKULE)
    g = ValenceGrammar(vocab)
    # "1)" then <eos> fits; ")" cannot be followed by a ring bond, and a new atom after it would need four tokens
    assert allowed_after(g, vocab, "C1CC(C", left=3) == {"1"}
    assert allowed_after(g, vocab, "C1CCC", left=2) == {"1"}
    assert allowed_after(g, vocab, "CCC", left=1) == {"<eos>"}


def test_every_training_string_is_allowed():
    vocab = vocabulary(KEKULE)
    assert accepts(vocab, KEKULE) == []
    aromatic = ["c1ccccc1", "Cc1ccc(-c2ccc[nH]2)cc1", "O=C(Nc1cccnc1)c1ccco1", "C[C@@H](N)C(=O)[O-]", "C[NH+]1CCCC1",
                "CC(=O)[O-].[Na+]", "F/C=C/F"]
    assert accepts(vocabulary(aromatic, "smiles"), aromatic) == []


@pytest.fixture(scope="module")
def moses_sample():
    return moses_draw("train", 3000, seed=1)


def test_every_moses_string_is_allowed_aromatic_and_kekule(moses_sample):
    assert accepts(vocabulary(moses_sample, "smiles"), moses_sample) == []
    pytest.importorskip("rdkit")
    from vaekit.apps.molecules.kekule_codec import smiles_to_kekule
    kekule = [smiles_to_kekule(s) for s in moses_sample]
    assert accepts(vocabulary(kekule), kekule) == []


def test_untrained_model_samples_are_well_formed_and_seeded():
    vocab = vocabulary(KEKULE)
    torch.manual_seed(0)
    model = SequenceVAE(vocab_size=len(vocab.tokens), max_len=vocab.max_len, latent_dim=4, hidden=16, embed_dim=8)
    masked = sample_smiles(model, vocab, 300, seed=3, grammar=True)
    plain = sample_smiles(model, vocab, 300, seed=3, redraw=False)  # the decoder as it is
    assert masked == sample_smiles(model, vocab, 300, seed=3, grammar=True)

    def well_formed(s):
        tokens = tokenize(s)
        depth = 0
        for t in tokens:
            depth += (t == "(") - (t == ")")
            if depth < 0:
                return False
        labels = [t for t in tokens if t.isdigit()]
        return bool(tokens) and depth == 0 and all(labels.count(x) % 2 == 0 for x in labels)

    assert sum(map(well_formed, masked)) >= 295  # a random decoder: only a rare dead end may stay open
    assert sum(map(well_formed, plain)) < 200  # without the mask most of its strings are not SMILES
    pytest.importorskip("rdkit")
    from vaekit.apps.molecules.chemistry import to_mol
    assert sum(to_mol(s) is not None for s in masked) >= 290
    greedy = decode_codes(model, vocab, torch.randn(50, 4, generator=torch.Generator().manual_seed(0)), grammar=True)
    assert all(to_mol(s) is not None for s in greedy if well_formed(s))


def test_selfies_and_text_have_no_mask():
    assert constraint_for(Vocabulary(tokens=["<pad>", "<bos>", "<eos>", "<unk>", "[C]"], max_len=5, kind="selfies")) is None
    assert constraint_for(Vocabulary(tokens=["<pad>", "<bos>", "<eos>", "<unk>", "a"], max_len=5, kind="chars")) is None
    assert constraint_for(vocabulary(KEKULE), constrained=False) is None


def ids_of(vocab, strings):
    """Rows of token ids as the decoder writes them: bos, the tokens, eos, then padding."""
    rows = torch.full((len(strings), vocab.max_len + 2), vocab.pad_id, dtype=torch.long)
    for r, s in enumerate(strings):
        tokens = [vocab.bos_id, *(vocab.index[t] for t in tokenize(s)), vocab.eos_id]
        rows[r, :len(tokens)] = torch.tensor(tokens)
    return rows


def test_accepts_is_the_mask_on_finished_strings(moses_sample):
    vocab = vocabulary(moses_sample, "smiles")
    grammar = ValenceGrammar(vocab)
    assert grammar.accepts(ids_of(vocab, moses_sample)).all()
    kekule = vocabulary(KEKULE)
    broken = ["CC1=CC=C(C=C1C(=O)NCC#N",  # a branch left open
              "O=C1NC2=CC=CC=C2S",  # ring bond 1 left open
              "CF(C)C",  # a second bond on fluorine
              "C=C#C",  # five bonds on the middle carbon
              "CC1CC1C1"]  # ring bond 1 opened again and never closed
    ok = ValenceGrammar(kekule).accepts(ids_of(kekule, KEKULE + broken)).tolist()
    assert ok == [True] * len(KEKULE) + [False] * len(broken)
    rows = ids_of(kekule, ["CCO", "CCO", "CCO"])
    rows[0, 4] = kekule.index["C"]  # eos overwritten by an atom: read up to the padding, "CCOC"
    rows[1, 2] = kekule.unk_id  # an <unk> is dropped, as the string returned drops it: "CO"
    rows[2, 1:] = kekule.index["C"]  # max_len + 1 atoms and no end: longer than the model's strings
    assert ValenceGrammar(kekule).accepts(rows).tolist() == [True, True, False]
    assert kekule.decode(rows[:2]) == ["CCOC", "CO"]


def test_redraw_keeps_the_decoders_strings_and_drops_only_malformed_ones(monkeypatch):
    import vaekit.apps.molecules.generate as generate

    vocab = vocabulary(KEKULE)
    torch.manual_seed(0)
    model = SequenceVAE(vocab_size=len(vocab.tokens), max_len=vocab.max_len, latent_dim=4, hidden=16, embed_dim=8)
    grammar = ValenceGrammar(vocab)
    plain = sample_smiles(model, vocab, 200, seed=1, redraw=False)
    passed = grammar.accepts(ids_of(vocab, plain)).tolist()
    counts = {}
    redrawn = sample_smiles(model, vocab, 200, seed=1, redraw=True, counts=counts)
    kept = [s for s, ok in zip(plain, passed) if ok]
    assert 0 < len(kept) < 200  # a random decoder: some strings are well formed, most are not
    assert redrawn[:len(kept)] == kept  # the first round is the plain draw, malformed strings left out
    assert len(redrawn) == 200 and counts["drawn"] == 200 + counts["rejected"] and counts["unchecked"] == 0
    assert grammar.accepts(ids_of(vocab, redrawn)).all()
    assert redrawn == sample_smiles(model, vocab, 200, seed=1, redraw=True)  # seeded
    # out of draws: the rejected strings make up the number asked for, and are counted
    monkeypatch.setattr(generate, "MAX_DRAWS", 1)
    counts = {}
    short = sample_smiles(model, vocab, 200, seed=1, redraw=True, counts=counts)
    assert short[:len(kept)] == kept and len(short) == 200
    assert counts == {"drawn": 200, "rejected": 200 - len(kept), "unchecked": 200 - len(kept)}
    # the grammar mask needs no redrawing: its strings come from one round
    counts = {}
    sample_smiles(model, vocab, 50, seed=1, grammar=True, redraw=True, counts=counts)
    assert counts["drawn"] == 50


KEKULISABLE = {  # aromatic SMILES -> whether RDKit can kekulise (read) it
    "c1ccccc1": True, "c1ccc2ccccc2c1": True, "c1cc[nH]c1": True, "Cn1cccc1": True, "c1ccoc1": True,
    "c1ccsc1": True, "O=c1cc[nH]cc1": True, "C[n+]1ccccc1": True, "c1ccncc1": True, "c1ccc(-c2ccccc2)cc1": True,
    "Cc1nc2ccccc2[nH]1": True, "c1ccc2[nH]ccc2c1": True, "O=C(Nc1ccccn1)c1cccs1": True,
    "c1ccccc1c1ccccc1": True,  # the bond between the rings is single: no double bond across it
    "C1CCCCc1": True,  # an aromatic atom without an aromatic bond takes no double bond
    "c1cc[se]c1": True, "c1ccccc1.c1ccncc1": True, "CC1=CC=CC=C1c1ccccc1": True,
    "Cs1cccc1": False,  # sulfur with three bonds rises to valence 4 and needs a double bond: five atoms
    "c1ccc-c1c1ccccc1": False,  # a five-membered ring with one single bond: its five atoms cannot pair
    "c1ccnc1": False,  # pyrrole written without its H: five atoms that need a double bond
    "c1cccc1": False, "c1ccccc1c": False,  # an aromatic atom outside the ring
    "c1ccccC1": False, "Cc1cccc2c1cccn2": True, "c1cnc2c(c1)ccc2": False, "c1ccc2ncccc2c1C=c1": False,
}


def test_the_check_refuses_aromatic_rings_without_a_kekule_structure():
    strings = list(KEKULISABLE)
    vocab = vocabulary(strings, "smiles")
    passed = ValenceGrammar(vocab).accepts(ids_of(vocab, strings)).tolist()
    assert dict(zip(strings, passed)) == KEKULISABLE
    pytest.importorskip("rdkit")
    from vaekit.apps.molecules.chemistry import to_mol
    assert {s: to_mol(s) is not None for s in strings} == KEKULISABLE  # the truth table is RDKit's


def test_the_kekule_check_accepts_every_moses_string(moses_sample):
    vocab = vocabulary(moses_sample, "smiles")
    assert ValenceGrammar(vocab).accepts(ids_of(vocab, moses_sample)).all()
