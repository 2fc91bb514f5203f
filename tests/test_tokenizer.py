"""SMILES/SELFIES tokenizer: lossless tokens, a JSON vocabulary, padded ids, counted skips."""

import json

import pytest
import torch
from conftest import moses_draw

from vaekit.apps.molecules.tokenizer import SPECIAL_TOKENS, Vocabulary, build_vocabulary, tokenize
from vaekit.errors import DataError


@pytest.fixture(scope="module")
def moses_sample():
    return moses_draw("train", 2000, seed=0)


@pytest.mark.parametrize("smiles, tokens", [
    ("c1ccc(Cl)cc1Br", ["c", "1", "c", "c", "c", "(", "Cl", ")", "c", "c", "1", "Br"]),
    ("C[C@@H](N)C(=O)[O-]", ["C", "[C@@H]", "(", "N", ")", "C", "(", "=", "O", ")", "[O-]"]),
    ("c1cc[nH]c1", ["c", "1", "c", "c", "[nH]", "c", "1"]),
    ("C%10CC%10", ["C", "%10", "C", "C", "%10"]),
    ("CC#N.[Na+]", ["C", "C", "#", "N", ".", "[Na+]"]),
])
def test_multi_character_tokens(smiles, tokens):
    assert tokenize(smiles) == tokens


def test_round_trip_on_moses_training_strings(moses_sample):
    vocab = build_vocabulary(moses_sample)
    assert all("".join(tokenize(s)) == s for s in moses_sample)
    encoded = vocab.encode(moses_sample, on_error="raise")
    assert encoded.skipped == {} and encoded.kept == list(range(len(moses_sample)))
    assert vocab.decode(encoded.ids) == moses_sample
    assert {"Cl", "Br", "[nH]"} <= set(vocab.tokens)


def test_padded_ids_and_lengths():
    vocab = build_vocabulary(["CCO", "c1ccccc1"], max_len=10)
    enc = vocab.encode(["CCO", "c1ccccc1"])
    assert enc.ids.dtype == torch.long and enc.ids.shape == (2, 12)
    assert enc.lengths.tolist() == [5, 10]
    assert enc.ids[0, 0] == vocab.bos_id and enc.ids[0, 4] == vocab.eos_id
    assert (enc.ids[0, 5:] == vocab.pad_id).all()
    # reading stops at <eos>; what follows is ignored
    row = enc.ids[0].clone()
    row[6] = vocab.index["c"]
    assert vocab.decode(row[None]) == ["CCO"]


def test_vocabulary_order_does_not_depend_on_data_order():
    data = ["CCO", "CCN", "c1ccccc1Cl"]
    assert build_vocabulary(data).tokens == build_vocabulary(data[::-1]).tokens
    assert build_vocabulary(data).tokens[:4] == list(SPECIAL_TOKENS)


def test_unknown_token_and_too_long_are_counted_or_one_line_errors():
    vocab = build_vocabulary(["CCO", "CCCC"], max_len=4)
    enc = vocab.encode(["CCl", "CCO", "CCCCC", "C<unk>"])
    assert enc.kept == [1]
    assert enc.skipped == {"unknown_token": 2, "too_long": 1}
    with pytest.raises(DataError, match=r"unknown_token 'Cl'") as info:
        vocab.encode(["CCO", "CCl"], on_error="raise")
    assert "\n" not in str(info.value) and "molecule 1" in str(info.value)
    with pytest.raises(DataError, match="too_long"):
        vocab.encode(["CCCCC"], on_error="raise")
    with pytest.raises(DataError, match="on_error"):
        vocab.encode(["CCO"], on_error="ignore")


def test_json_round_trip_and_bad_files(tmp_path):
    vocab = build_vocabulary(["CC(=O)O", "c1ccccc1Br"], max_len=20)
    path = tmp_path / "vocabulary.json"
    vocab.save(path)
    record = json.loads(path.read_text())
    assert record["format"] == "vaekit-vocabulary" and record["tokens"] == vocab.tokens
    again = Vocabulary.load(path)
    assert again.tokens == vocab.tokens and again.max_len == 20 and again.kind == "smiles"
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        Vocabulary.load(path)
    path.write_text(json.dumps({"format": "vaekit-vocabulary", "kind": "smiles", "max_len": 3,
                                "tokens": ["C", "<pad>"]}))
    with pytest.raises(DataError, match="starts with <pad>"):
        Vocabulary.load(path)
    with pytest.raises(DataError, match="no molecules"):
        build_vocabulary([])


def test_selfies_random_token_sequences_decode_to_valid_molecules():
    pytest.importorskip("selfies", reason="SELFIES needs the selfies package: pip install 'vaekit[chem]'")
    pytest.importorskip("rdkit", reason="validity needs RDKit: pip install 'vaekit[chem]'")
    from vaekit.apps.molecules.chemistry import to_mol
    from vaekit.apps.molecules.selfies_codec import robust_alphabet

    alphabet = robust_alphabet()
    vocab = Vocabulary(tokens=list(SPECIAL_TOKENS) + alphabet, max_len=40, kind="selfies")
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(len(SPECIAL_TOKENS), len(vocab), (300, 40), generator=generator)
    ids[:, 0] = vocab.bos_id
    smiles = vocab.decode(ids)
    assert all(s and to_mol(s) is not None for s in smiles)
    assert len(set(smiles)) > 250  # random sequences give different molecules, not one fallback


def test_selfies_vocabulary_round_trip(moses_sample):
    pytest.importorskip("selfies", reason="SELFIES needs the selfies package: pip install 'vaekit[chem]'")
    pytest.importorskip("rdkit", reason="comparing molecules needs RDKit: pip install 'vaekit[chem]'")
    from vaekit.apps.molecules.chemistry import canonical_smiles

    sample = moses_sample[:300]
    vocab = build_vocabulary(sample, kind="selfies")
    enc = vocab.encode(sample, on_error="raise")
    decoded = vocab.decode(enc.ids)
    assert [canonical_smiles(s) for s in decoded] == [canonical_smiles(s) for s in sample]
    assert Vocabulary.from_json(vocab.to_json()).kind == "selfies"


def test_selfies_conversion_done_once_per_string(moses_sample):
    """Building the vocabulary and encoding read each SMILES's SELFIES once, not twice."""
    pytest.importorskip("selfies", reason="SELFIES needs the selfies package: pip install 'vaekit[chem]'")
    from vaekit.apps.molecules.selfies_codec import smiles_to_selfies

    sample = list(dict.fromkeys(moses_sample[:200]))
    smiles_to_selfies.cache_clear()
    vocab = build_vocabulary(sample, kind="selfies")
    vocab.encode(sample, on_error="raise")
    info = smiles_to_selfies.cache_info()
    assert info.misses == len(sample) and info.hits == len(sample)


def test_kekule_vocabulary_round_trip(moses_sample):
    """Kekulé tokens spell the same molecules, with no aromatic atom or bond left to kekulise."""
    pytest.importorskip("rdkit", reason="Kekulé SMILES need RDKit: pip install 'vaekit[chem]'")
    from vaekit.apps.molecules.chemistry import canonical_smiles

    sample = moses_sample[:500]
    vocab = build_vocabulary(sample, kind="kekule")
    aromatic = {"c", "n", "o", "s", "p", ":", "[nH]"}
    assert not aromatic & set(vocab.tokens)
    assert {"=", "C", "N"} <= set(vocab.tokens)
    enc = vocab.encode(sample, on_error="raise")
    decoded = vocab.decode(enc.ids)
    assert [canonical_smiles(s) for s in decoded] == [canonical_smiles(s) for s in sample]
    assert sum(s.count("=") for s in decoded) > sum(s.count("=") for s in sample)
    assert Vocabulary.from_json(vocab.to_json()).kind == "kekule"


def test_kekule_skips_what_rdkit_cannot_kekulise():
    pytest.importorskip("rdkit", reason="Kekulé SMILES need RDKit: pip install 'vaekit[chem]'")
    from vaekit.apps.molecules.kekule_codec import smiles_to_kekule

    assert smiles_to_kekule("c1ccccc1") in ("C1=CC=CC=C1", "C1C=CC=CC=1")
    assert smiles_to_kekule("c1cccc1") is None  # an aromatic five-ring of carbons: no Kekulé form
    assert smiles_to_kekule("not a molecule") is None
    vocab = build_vocabulary(["c1ccccc1", "CCO"], kind="kekule")
    enc = vocab.encode(["c1ccccc1", "c1cccc1", "OCC"])
    assert enc.kept == [0, 2] and enc.skipped == {"not_encodable": 1}
    with pytest.raises(DataError, match="Kekulé"):
        vocab.encode(["c1cccc1"], on_error="raise")
