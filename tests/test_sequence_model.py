"""The GRU sequence VAE (core/sequence.py) and the molecule job that trains it (apps/molecules/jobs.py)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import vaekit
from vaekit.apps.molecules.jobs import (VOCABULARY, load_vocabulary, resume_sequence_run, sequence_config,
                                        train_sequence_run)
from vaekit.core.objectives import elbo_loss, iwae_loss
from vaekit.core.registry import kind_of
from vaekit.core.sequence import SequenceVAE
from vaekit.errors import ConfigError, DataError
from vaekit.runs import folder

SMILES = ["CCO", "c1ccccc1", "CC(=O)O", "CCN(CC)CC", "Clc1ccccc1", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "O=C=O",
          "CCOC(=O)C", "C1CCCCC1", "CC(C)O", "c1ccncc1", "CCCCCC", "BrCCBr", "CC#N", "C=CC=C", "OCC(O)CO"]


def tiny_model(word_dropout: float = 0.0, seed: int = 0) -> SequenceVAE:
    torch.manual_seed(seed)
    return SequenceVAE(vocab_size=9, max_len=6, latent_dim=3, embed_dim=4, hidden=5, word_dropout=word_dropout)


def batch() -> torch.Tensor:
    # bos=1, eos=2, pad=0; tokens 4..8; rows of different lengths (the last fills max_len)
    return torch.tensor([[1, 4, 5, 2, 0, 0, 0, 0],
                         [1, 6, 2, 0, 0, 0, 0, 0],
                         [1, 7, 8, 4, 5, 6, 7, 2]])


def test_shapes_and_sample_dims():
    m, x = tiny_model(), batch()
    q = m.encode(x)
    assert q.mean.shape == (3, 3) and q.logvar.shape == (3, 3)
    assert m.decode(q.mean).log_prob(x).shape == (3,)
    z = q.rsample(4, generator=torch.Generator().manual_seed(0))  # (k, batch, latent)
    lp = m.decode(z).log_prob(x)
    assert lp.shape == (4, 3)
    assert torch.allclose(lp[1], m.decode(z[1]).log_prob(x), atol=1e-5)  # draw 1 alone gives the same
    assert iwae_loss(m, x, 5, generator=torch.Generator().manual_seed(0))["loss"].isfinite()
    ids = m.sample(7)
    assert ids.shape == (7, 8) and ids.dtype == torch.long and (ids[:, 0] == 1).all()


@torch.no_grad()
def _by_hand(m: SequenceVAE, z: torch.Tensor, row: torch.Tensor) -> float:
    """sum_t log p(x_t | x_<t, z), one token at a time through the decoder GRU, up to eos."""
    h, total = m._initial_state(z[None]), 0.0
    for t in range(1, row.shape[0]):
        feed = torch.cat([m.embed(row[t - 1 : t])[None], z[None, None]], dim=-1)
        out, h = m.decoder(feed, h)
        total += float(torch.log_softmax(m.to_logits(out[0, 0]), -1)[row[t]])
        if int(row[t]) == m.eos_id:
            break
    return total


def test_teacher_forced_log_prob_is_the_sum_of_token_log_probs_with_pads_masked():
    m, x = tiny_model().eval(), batch()
    z = torch.randn(3, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        lp = m.decode(z).log_prob(x)
    for i in range(3):
        assert lp[i].item() == pytest.approx(_by_hand(m, z[i], x[i]), abs=1e-4)
    # a row's value does not depend on the longer rows beside it (pads are masked, not scored)
    with torch.no_grad():
        assert m.decode(z[:2]).log_prob(x[:2]).tolist() == pytest.approx(lp[:2].tolist(), abs=1e-5)


def test_word_dropout_applies_in_training_only():
    m, x = tiny_model(word_dropout=0.5), batch()
    z = torch.zeros(3, 3)
    m.eval()
    assert torch.equal(m.decode(z).log_prob(x), m.decode(z).log_prob(x))
    dropped = m.drop_words(x[:, :-1], torch.Generator().manual_seed(0))
    assert (dropped[:, 0] == 1).all() and (dropped == 3).any()  # bos kept, some tokens turned to unk
    assert ((dropped == 3) <= (x[:, :-1] != 0)).all()  # pads never replaced
    m.train()
    a = m(x, generator=torch.Generator().manual_seed(0)).likelihood.log_prob(x)
    b = m(x, generator=torch.Generator().manual_seed(0)).likelihood.log_prob(x)
    assert torch.equal(a, b)  # seeded by the run's generator


def test_greedy_is_deterministic_and_sampling_is_seeded():
    m = tiny_model()
    z = torch.randn(20, 3, generator=torch.Generator().manual_seed(2))
    assert torch.equal(m.decode(z).mean, m.decode(z).mean)
    s1 = m.decode(z).sample(generator=torch.Generator().manual_seed(5))
    s2 = m.decode(z).sample(generator=torch.Generator().manual_seed(5))
    s3 = m.decode(z).sample(generator=torch.Generator().manual_seed(6))
    assert torch.equal(s1, s2) and not torch.equal(s1, s3)
    ends = (s1 == 2).int().argmax(1)  # after the first eos only pads
    for row, end in zip(s1, ends):
        if (row == 2).any():
            assert (row[end + 1 :] == 0).all()


def test_bad_ids_are_one_line_errors():
    m = tiny_model()
    with pytest.raises(DataError, match="integer token ids"):
        m.encode(batch().float())
    with pytest.raises(DataError, match="0..8"):
        m.encode(batch() + 20)
    with pytest.raises(DataError, match="shape"):
        m.encode(batch()[:, :5])


def test_spec_round_trip_and_registry():
    m = tiny_model(word_dropout=0.25)
    again = SequenceVAE.from_spec(m.spec())
    assert again.spec() == m.spec() and kind_of(m) == "SequenceVAE"
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in m.state_dict().items()}


def tiny_config(path, epochs: int = 2):
    cfg = sequence_config()
    cfg.data.name, cfg.data.val_fraction, cfg.data.test_fraction = str(path), 0.125, 0.125
    cfg.model.hidden, cfg.model.latent_dim = (24,), 4
    t = cfg.training
    t.epochs, t.batch_size, t.warmup_steps, t.free_bits, t.lr, t.progress, t.verbose = epochs, 4, 4, 0.0, 3e-3, False, False
    return cfg


@pytest.fixture
def smiles_file(tmp_path):
    path = tmp_path / "mols.txt"
    path.write_text("\n".join(SMILES * 3) + "\n")
    return path


@pytest.mark.filterwarnings("ignore::vaekit.measure.diagnostics.PosteriorCollapseWarning")
def test_training_lowers_the_loss_and_writes_a_loadable_run(smiles_file, tmp_path):
    run = train_sequence_run(tiny_config(smiles_file, epochs=6), tmp_path / "run", embed_dim=8)
    history = folder.read_metrics(run)
    assert len(history) == 6 and history[-1]["train_loss"] < history[0]["train_loss"] - 3
    assert (run / VOCABULARY).is_file() and load_vocabulary(run).kind == "smiles"
    model = vaekit.load(run)
    assert isinstance(model, SequenceVAE) and not model.training
    doc = folder.read_run(run)
    assert doc["class"] == "SequenceVAE" and doc["app"]["tokens"] == "smiles"
    ids = load_vocabulary(run).encode(["CCO"]).ids
    assert elbo_loss(ids, model(ids))["loss"].isfinite()


@pytest.mark.filterwarnings("ignore::vaekit.measure.diagnostics.PosteriorCollapseWarning")
def test_resume_is_exact(smiles_file, tmp_path):
    whole = train_sequence_run(tiny_config(smiles_file, epochs=3), tmp_path / "whole", embed_dim=8, word_dropout=0.2)
    part = train_sequence_run(tiny_config(smiles_file, epochs=1), tmp_path / "part", embed_dim=8, word_dropout=0.2)
    resume_sequence_run(part, epochs=3)
    a, b = folder.load_resume(whole)["model"], folder.load_resume(part)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_file(whole / folder.WEIGHTS).keys() == load_file(part / folder.WEIGHTS).keys()
    assert [r["train_loss"] for r in folder.read_metrics(whole)] == [r["train_loss"] for r in folder.read_metrics(part)]


def test_bad_molecule_files(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="holds no SMILES"):
        train_sequence_run(tiny_config(empty), tmp_path / "r0")
    with pytest.raises(ConfigError, match="does not use"):
        cfg = tiny_config(empty)
        cfg.model.arch = "conv"
        train_sequence_run(cfg, tmp_path / "r1")


@pytest.mark.filterwarnings("ignore::vaekit.measure.diagnostics.PosteriorCollapseWarning")
def test_unparseable_and_too_long_lines_are_counted_skips(tmp_path, capsys):
    pytest.importorskip("rdkit", reason="checking SMILES needs RDKit")
    path = tmp_path / "mixed.txt"
    path.write_text("\n".join(SMILES * 2 + ["C1CC", "not((a smiles", "C" * 40]) + "\n")
    cfg = tiny_config(path, epochs=1)
    run = train_sequence_run(cfg, tmp_path / "r", embed_dim=8, max_len=30)
    err = capsys.readouterr().err
    assert "2 molecules of" in err and "2 unparseable" in err
    assert "too long" in err  # the 40-carbon chain exceeds max_len=30 wherever it fell
    assert load_vocabulary(run).max_len == 30


@pytest.mark.filterwarnings("ignore::vaekit.measure.diagnostics.PosteriorCollapseWarning")
def test_a_selfies_run_decodes_only_valid_molecules(smiles_file, tmp_path):
    pytest.importorskip("selfies", reason="SELFIES tokens need the selfies package")
    pytest.importorskip("rdkit", reason="checking validity needs RDKit")
    from vaekit.apps.molecules.chemistry import to_mol
    from vaekit.apps.molecules.generate import sample_smiles

    run = train_sequence_run(tiny_config(smiles_file, epochs=1), tmp_path / "run", tokens="selfies", embed_dim=8)
    vocab = load_vocabulary(run)
    assert vocab.kind == "selfies" and all(t.startswith("[") for t in vocab.tokens[4:])
    smiles = sample_smiles(vaekit.load(run), vocab, 200, seed=0)
    assert all(to_mol(s) is not None for s in smiles if s)  # every non-empty decoding is a molecule
