"""The MOSES metrics and the RDKit helpers against values computed by hand or independently."""

import io
import math
import os
import pickle
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import moses_draw

pytest.importorskip("rdkit", reason="the molecule metrics need RDKit: pip install 'vaekit[chem]'")

from rdkit import Chem, DataStructs  # noqa: E402
from rdkit.Chem import rdFingerprintGenerator  # noqa: E402

from vaekit.apps.molecules import chemistry, metrics  # noqa: E402
from vaekit.apps.molecules.filters import fraction_passes_filters, mcf_smarts, passes_filters  # noqa: E402
from vaekit.apps.molecules.moses import moses_metrics, reference_stats  # noqa: E402
from vaekit.errors import DataError  # noqa: E402

ASPIRIN, CAFFEINE = "CC(=O)Oc1ccccc1C(=O)O", "Cn1cnc2c1c(=O)n(C)c(=O)n2C"


def independent_tanimoto(a: str, b: str) -> float:
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    fa, fb = (generator.GetFingerprint(Chem.MolFromSmiles(s)) for s in (a, b))
    return DataStructs.TanimotoSimilarity(fa, fb)


@pytest.fixture(scope="module")
def moses_test():
    return moses_draw("test", 1000, seed=0)


def test_validity_counts_invalid_strings():
    smiles = ["CCO", "c1ccccc1", "C1CC", "xyz", "", "C(C)(C)(C)(C)C", ASPIRIN, "c1cccc1"]
    # invalid: unclosed ring, not SMILES, empty, five-valent carbon, non-kekulisable ring
    assert metrics.fraction_valid(smiles) == 3 / 8
    assert chemistry.to_mol("") is None and chemistry.canonical_smiles("OCC") == "CCO"


def test_uniqueness_on_canonical_valid_molecules():
    smiles = ["CCO", "OCC", "xyz", "c1ccccc1", "C1=CC=CC=C1"]
    assert metrics.unique_at_k(smiles) == 2 / 4
    assert metrics.unique_at_k(smiles, k=2) == 1 / 2
    assert metrics.unique_at_k(smiles, k=3) == 2 / 3


def test_novelty():
    generated = ["CCO", "OCC", "c1ccccc1", "CCN", "bad"]
    assert metrics.novelty(generated, ["CCO"]) == 2 / 3
    assert metrics.novelty(generated, ["OCC"]) == 1.0  # compared as strings: train is not canonical
    assert metrics.novelty(generated, ["OCC"], canonicalize_train=True) == 2 / 3


def test_internal_diversity_of_two_known_molecules():
    t = independent_tanimoto(ASPIRIN, CAFFEINE)
    assert 0 < t < 1
    pair = [ASPIRIN, CAFFEINE]
    assert metrics.internal_diversity(pair, include_self=False) == pytest.approx(1 - t, abs=1e-6)
    # MOSES's definition averages over all |G|^2 ordered pairs, each molecule with itself too
    assert metrics.internal_diversity(pair) == pytest.approx(1 - (2 + 2 * t) / 4, abs=1e-6)
    assert metrics.internal_diversity(pair, p=2) == pytest.approx(1 - math.sqrt((2 + 2 * t * t) / 4), abs=1e-6)
    with pytest.raises(DataError):
        metrics.internal_diversity([ASPIRIN], include_self=False)


def test_snn_and_tanimoto():
    t = independent_tanimoto(ASPIRIN, CAFFEINE)
    reference = metrics.fingerprints([ASPIRIN, CAFFEINE, "xyz"])
    assert reference.shape == (2, 1024)
    assert metrics.snn([ASPIRIN], reference) == pytest.approx(1.0)
    assert metrics.snn([CAFFEINE, "CCO"], metrics.fingerprints([ASPIRIN])) == pytest.approx(
        (t + independent_tanimoto("CCO", ASPIRIN)) / 2, abs=1e-6)
    empty = torch.zeros(2, 8)
    assert metrics.tanimoto_matrix(empty, empty).eq(1).all()


def test_cosine_fragments_and_scaffolds():
    a, b = Counter(x=1, y=2), Counter(y=2, z=2)
    assert metrics.cosine_similarity(a, b) == pytest.approx(4 / (math.sqrt(5) * math.sqrt(8)))
    assert math.isnan(metrics.cosine_similarity(a, Counter()))
    assert metrics.scaffold_of(Chem.MolFromSmiles("Cc1ccccc1")) is None  # one ring: not counted
    assert metrics.scaffold_of(Chem.MolFromSmiles("CCc1ccc(-c2ccccc2)cc1")) == "c1ccc(-c2ccccc2)cc1"
    assert sorted(metrics.fragments_of(Chem.MolFromSmiles("CCOC(=O)c1ccccc1"))) != ["CCOC(=O)c1ccccc1"]
    drugs = [ASPIRIN, CAFFEINE, "CCN(CC)CC(=O)Nc1c(C)cccc1C"]
    assert metrics.fragment_similarity(drugs, metrics.fragment_counts(drugs)) == pytest.approx(1.0)
    assert metrics.fragment_similarity(drugs[:1], metrics.fragment_counts(drugs[1:])) < 1.0


def test_filters():
    assert passes_filters("CCO") and passes_filters(CAFFEINE)
    for smiles in ["C[N+](C)(C)C", "C1CCCCCCC1", "CCP(C)C", "S=C1SC(=Cc2ccccc2)C(=O)N1", "bad"]:
        assert not passes_filters(smiles), smiles  # charge, 8-ring, phosphorus, PAINS ene_rhod, invalid
    assert fraction_passes_filters(["CCO", "C1CCCCCCC1", "bad"]) == 1 / 2
    assert fraction_passes_filters(["CCO", "CCN"], extra_smarts=["[NX3;H2]"]) == 1 / 2
    with pytest.raises(DataError, match="SMARTS"):
        fraction_passes_filters(["CCO"], extra_smarts=["[unclosed"])


def test_the_mcf_alerts_reject_reactive_groups():
    """Molecules that break only an MCF alert (aldehyde, epoxide, hydrazine, disulfide, alkyl
    halide, more than 3 Cl); the parent molecules without the group pass."""
    for smiles in ["CCCC=O", "CC1OC1C", "CCNNCC", "CCSSCC", "CCCCCl", "Clc1cc(Cl)c(Cl)cc1Cl"]:
        assert not passes_filters(smiles), smiles
    for smiles in ["CCCCO", "CC1CCC1C", "CCSCC", "Cc1ccccc1"]:
        assert passes_filters(smiles), smiles
    assert len(mcf_smarts()) == 22


def test_the_moses_test_molecules_pass_the_filters_they_were_chosen_by(moses_test):
    """MOSES kept only molecules passing these rules, so its own test split must pass them all."""
    assert fraction_passes_filters(moses_test[:2000]) == 1.0


def test_properties_and_penalized_logp():
    mol = Chem.MolFromSmiles(ASPIRIN)
    assert 0 < chemistry.qed(mol) < 1
    assert chemistry.sa_score(mol) == pytest.approx(1.58, abs=0.01)  # Ertl & Schuffenhauer's scale
    raw = chemistry.penalized_logp(mol, normalized=False)
    assert raw == pytest.approx(chemistry.logp(mol) - chemistry.sa_score(mol))
    assert chemistry._largest_ring_penalty(Chem.MolFromSmiles("C1CCCCCCCC1")) == 3
    big = Chem.MolFromSmiles("C1CCCCCCCC1")
    expected = ((chemistry.logp(big) - 2.4570953396190123) / 1.434324401111988
                + (-chemistry.sa_score(big) + 3.0525811293166134) / 0.8335207024513095
                + (-3 + 0.0485696876403053) / 0.2860212110245455)
    assert chemistry.penalized_logp(big) == pytest.approx(expected)


def test_sa_table_loader_refuses_code():
    payload = pickle.dumps(os.getcwd)  # names a global: a real pickle would look it up and could call it
    with pytest.raises(DataError, match="refusing"):
        chemistry._NoGlobalsUnpickler(io.BytesIO(payload)).load()


def test_draw_grid_writes_png(tmp_path, monkeypatch):
    path = chemistry.draw_grid([ASPIRIN, CAFFEINE, "bad"], tmp_path / "grid.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from rdkit.Chem import Draw

    seen = {}
    draw = Draw.MolsToGridImage
    monkeypatch.setattr(Draw, "MolsToGridImage", lambda mols, **kw: seen.update(kw) or draw(mols, **kw))
    kekule, long = "CC(=O)OC1=CC=CC=C1C(O)=O", "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCO"
    chemistry.draw_grid([kekule, long, "bad"], tmp_path / "labels.png", size=250)
    aspirin, cut, invalid = seen["legends"]
    assert aspirin == Chem.MolToSmiles(Chem.MolFromSmiles(ASPIRIN))  # canonical, aromatic
    assert cut == long[:32] + "..." and len(cut) == 250 // 7
    assert invalid == "invalid: bad"


def test_frechet_distance_closed_form():
    fcd = pytest.importorskip("vaekit.apps.molecules.fcd")
    # diagonal Gaussians: ||m1 - m2||^2 + sum (s1 - s2)^2 with s the standard deviations
    mean1, mean2 = np.array([0.0, 1.0]), np.array([1.0, 3.0])
    cov1, cov2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    expected = 1 + 4 + (1 - 3) ** 2 + (2 - 1) ** 2
    assert fcd.frechet_distance(mean1, cov1, mean2, cov2) == pytest.approx(expected)


def test_fcd_of_a_set_against_itself_is_zero(moses_test):
    pytest.importorskip("fcd", reason="FCD needs the fcd package: pip install 'vaekit[chem]'")
    from vaekit.apps.molecules import fcd

    sample = moses_test[:500]
    assert abs(fcd.fcd(sample, sample)) < 1e-3
    assert fcd.fcd(sample[:250], ["CCO", "CCN", "c1ccccc1", "CC(C)O"] * 10) > 10


def test_moses_metrics_on_a_small_set(moses_test):
    generated = moses_test[:200] + ["bad"] * 10 + moses_test[:10]
    ref = reference_stats(moses_test[500:800], with_fcd=False)
    timings = {}
    out = moses_metrics(generated, train=moses_test[:100], test=ref, k=(100,), timings=timings, n_jobs=2)
    assert out["valid"] == pytest.approx(210 / 220)
    assert out["unique@100"] == 1.0
    assert out["Novelty"] == pytest.approx(100 / 200)
    assert out["Filters"] == 1.0 and 0.8 < out["IntDiv"] < 0.95 and out["IntDiv2"] < out["IntDiv"]
    assert 0.2 < out["SNN/Test"] < 1 and out["Frag/Test"] > 0.9 and "FCD/Test" not in out
    assert {"valid", "SNN", "Filters"} <= set(timings)
    with pytest.raises(DataError, match="none of the generated"):
        moses_metrics(["bad"], None, ref)
