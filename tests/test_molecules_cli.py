"""The molecule commands on a tiny sequence run: train, sample, interpolate, encode, optimize, resume."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from vaekit.apps.molecules.generate import DEFAULT_TEMPERATURE, reconstruction_rate, sample_smiles
from vaekit.apps.molecules.jobs import load_vocabulary
from vaekit.cli.main import main
from vaekit.runs import folder

pytestmark = pytest.mark.filterwarnings("ignore::vaekit.measure.diagnostics.PosteriorCollapseWarning")

SMILES = ["CCO", "c1ccccc1", "CC(=O)O", "CCN(CC)CC", "Clc1ccccc1", "CC(C)Cc1ccccc1", "O=C=O", "CCOC(=O)C",
          "C1CCCCC1", "CC(C)O", "c1ccncc1", "CCCCCC", "BrCCBr", "CC#N", "C=CC=C", "OCC(O)CO", "CCCl", "NCCO"]


def _lines(capsys) -> tuple[list[str], str]:
    captured = capsys.readouterr()
    return captured.out.strip().splitlines(), captured.err


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mol")
    data = tmp / "mols.csv"
    data.write_text("name,SMILES\n" + "".join(f"m{i},{s}\n" for i, s in enumerate(SMILES * 4)))
    out = tmp / "run"
    code = main(["train", "--model", "sequence", "--data", str(data), "--hidden", "32", "--latent-dim", "4",
                 "--embed-dim", "8", "--epochs", "8", "--batch-size", "8", "--lr", "0.005", "--warmup-steps", "10",
                 "--out", str(out), "--no-progress", "data.test_fraction=0.1", "training.verbose=false"])
    assert code == 0
    return out


def test_train_writes_a_run_with_its_vocabulary(run):
    assert (run / "vocabulary.json").is_file() and (run / folder.RESUME).is_file()
    doc = folder.read_run(run)
    assert doc["class"] == "SequenceVAE" and doc["config"]["model"]["model"] == "sequence"
    vocab = load_vocabulary(run)
    assert "Cl" in vocab.tokens and "Br" in vocab.tokens  # multi-letter atoms are single tokens


def test_sample_is_seeded_and_batched(run, tmp_path, capsys):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    assert main(["sample", str(run), "-n", "30", "--out", str(a), "--seed", "3"]) == 0
    assert main(["sample", str(run), "-n", "30", "--out", str(b), "--seed", "3"]) == 0
    assert main(["sample", str(run), "-n", "30", "--out", str(c), "--seed", "4"]) == 0
    rows = list(csv.reader(a.open()))
    assert rows[0] == ["SMILES"] and len(rows) == 31
    assert a.read_text() == b.read_text() and a.read_text() != c.read_text()
    model, vocab = folder.load(run), load_vocabulary(run)
    small = sample_smiles(model, vocab, 30, seed=3, batch_size=7)  # five batches, one generator
    assert len(small) == 30 and small == sample_smiles(model, vocab, 30, seed=3, batch_size=7)


def test_sample_with_the_grammar_mask_and_redrawing(run, tmp_path, capsys):
    masked, plain, redrawn = tmp_path / "m.csv", tmp_path / "p.csv", tmp_path / "r.csv"
    assert main(["sample", str(run), "-n", "200", "--out", str(masked), "--seed", "3", "--grammar"]) == 0
    assert main(["sample", str(run), "-n", "200", "--out", str(plain), "--seed", "3", "--no-redraw"]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "200", "--out", str(redrawn), "--seed", "3"]) == 0  # the default redraws
    lines, _ = _lines(capsys)
    model, vocab = folder.load(run), load_vocabulary(run)
    written = {p: [row[0] for row in list(csv.reader(p.open()))[1:]] for p in (masked, plain, redrawn)}
    assert written[masked] == sample_smiles(model, vocab, 200, seed=3, grammar=True)
    assert written[plain] == sample_smiles(model, vocab, 200, seed=3, redraw=False) != written[masked]
    assert written[redrawn] == sample_smiles(model, vocab, 200, seed=3) == sample_smiles(model, vocab, 200, seed=3, redraw=True)
    # this barely trained model leaves branches open as it draws, never with the mask, and none is kept when redrawing
    assert all(s.count("(") == s.count(")") for s in written[masked])
    assert not all(s.count("(") == s.count(")") for s in written[plain])
    assert all(s.count("(") == s.count(")") for s in written[redrawn])
    malformed = sum(s.count("(") != s.count(")") for s in written[plain])
    assert "set aside as malformed" in lines[-1] and int(lines[-1].split(" strings drawn")[0].split()[-1]) >= 200 + malformed


def test_sample_temperature_default_and_bad_values(run, tmp_path, capsys):
    model, vocab = folder.load(run), load_vocabulary(run)
    default = sample_smiles(model, vocab, 100, seed=5)
    assert default == sample_smiles(model, vocab, 100, seed=5, temperature=DEFAULT_TEMPERATURE)
    cold = sample_smiles(model, vocab, 100, seed=5, temperature=0.05)
    assert cold != sample_smiles(model, vocab, 100, seed=5, temperature=5.0)
    assert len(set(cold)) < len(set(default))  # nearly greedy: far fewer distinct strings
    out = tmp_path / "t.csv"
    assert main(["sample", str(run), "-n", "100", "--out", str(out), "--seed", "5"]) == 0
    assert [row[0] for row in list(csv.reader(out.open()))[1:]] == default
    capsys.readouterr()
    for bad in ("0", "-1"):
        assert main(["sample", str(run), "-n", "10", "--out", str(out), "--temperature", bad]) != 0
        _, err = _lines(capsys)
        assert "temperature must be above 0" in err and len(err.strip().splitlines()) == 1


def test_interpolate_prints_and_draws_the_path(run, tmp_path, capsys):
    pytest.importorskip("rdkit", reason="drawing molecules needs RDKit")
    out = tmp_path / "path.png"
    assert main(["interpolate", str(run), "--pair", "CCO", "c1ccccc1", "--steps", "5", "--out", str(out)]) == 0
    lines, _ = _lines(capsys)
    assert [line.split()[0] for line in lines[:5]] == ["0.00", "0.25", "0.50", "0.75", "1.00"]
    assert out.stat().st_size > 1000


def test_encode_a_smiles_file(run, tmp_path, capsys):
    data = tmp_path / "in.txt"
    data.write_text("CCO\nc1ccccc1\nCC[Si](C)C\n")  # [Si] never appeared in training
    npy, table = tmp_path / "z.npy", tmp_path / "z.csv"
    assert main(["encode", str(run), str(data), "--out", str(npy)]) == 0
    assert np.load(npy).shape == (2, 4)
    _, err = _lines(capsys)
    assert "1 molecules of" in err and "unknown token" in err
    assert main(["encode", str(run), "--data", str(data), "--out", str(table)]) == 0
    rows = list(csv.reader(table.open()))
    assert rows[0] == ["SMILES", "z0", "z1", "z2", "z3"] and [r[0] for r in rows[1:]] == ["CCO", "c1ccccc1"]
    assert np.allclose(np.array(rows[1:])[:, 1:].astype(float), np.load(npy), atol=1e-5)


def test_optimize_counts_oracle_calls_within_the_budget(run, tmp_path, capsys):
    pytest.importorskip("rdkit", reason="scoring molecules needs RDKit")
    assert main(["optimize", str(run), "--property", "qed", "--budget", "15", "--labelled", "40", "--starts", "5",
                 "--steps", "20", "--out", str(tmp_path / "top.png")]) == 0
    lines, _ = _lines(capsys)
    search = next(line for line in lines if line.startswith("search:"))
    calls = int(search.split()[1])
    assert 0 <= calls <= 15


def test_oracle_counts_each_distinct_molecule_once():
    pytest.importorskip("rdkit", reason="scoring molecules needs RDKit")
    from vaekit.apps.molecules.optimize import Oracle

    oracle = Oracle("logp")
    assert oracle("CCO") == oracle("OCC")  # one molecule, two spellings: one call
    assert oracle("C1CC") is None  # not a molecule: not scored
    oracle("c1ccccc1")
    assert (oracle.calls, oracle.invalid) == (2, 1)


def test_eval_of_a_sequence_run(run, capsys):
    assert main(["eval", str(run), "--nll-samples", "16", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["examples"] > 0 and result["elbo"] == pytest.approx(-(result["recon"] + result["kl"]), abs=1e-3)
    assert -result["nll"] >= result["elbo_k"] - 1e-6  # the k-sample estimate sits above the ELBO's mean
    assert result["latent_dim"] == 4


def test_reconstruction_rate_is_a_fraction(run):
    rate = reconstruction_rate(folder.load(run), load_vocabulary(run), SMILES)
    assert 0.0 <= rate <= 1.0


def test_resume_continues_a_sequence_run(run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    assert main(["train", "--resume", str(copy), "--epochs", "9"]) == 0
    assert [r["epoch"] for r in folder.read_metrics(copy)] == list(range(1, 10))


@pytest.mark.parametrize("argv, message", [
    (lambda r, t: ["interpolate", r, "--pair", "CCO"], "two molecules"),
    (lambda r, t: ["interpolate", r, "--pair", "CCO", "CC[Si]C"], "unknown_token"),
    (lambda r, t: ["interpolate", r, "--pair", "CCO", "C" * 500], "too_long"),
    (lambda r, t: ["sample", r, "-n", "3", "--out", str(t / "x.npy")], "SMILES"),
    (lambda r, t: ["encode", r, str(t / "empty.txt")], "holds no SMILES"),
    (lambda r, t: ["encode", r], "give a file of SMILES"),
    (lambda r, t: ["reconstruct", r], "for a sequence run use"),
    (lambda r, t: ["score", r], "for a sequence run use"),
    (lambda r, t: ["serve", r, "--port", "0"], "vaekit serve explores image and table runs"),
    (lambda r, t: ["train", "--data", "digits", "--word-dropout", "0.1"], "--model sequence only"),
    (lambda r, t: ["train", "--model", "sequence", "--data", str(t / "empty.txt"), "--word-dropout", "0.1",
                   "training.objective=iwae", "training.num_samples=2"], "applies to objective=elbo"),
    (lambda r, t: ["train", "--model", "sequence", "--data", str(t / "empty.txt"), "--out", str(t / "r")],
     "holds no SMILES"),
])
def test_bad_inputs_are_one_line_errors(run, tmp_path, capsys, argv, message):
    pytest.importorskip("rdkit", reason="interpolate needs RDKit")
    (tmp_path / "empty.txt").write_text("\n")
    assert main(argv(str(run), tmp_path)) == 2
    _, err = _lines(capsys)
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_without_rdkit_a_molecule_command_says_so_in_one_line(run, capsys, monkeypatch):
    from vaekit.apps.molecules import requirements

    real = requirements.importlib.import_module

    def no_rdkit(name, *args):
        if name.split(".")[0] == "rdkit":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(requirements.importlib, "import_module", no_rdkit)
    assert main(["optimize", str(run), "--property", "qed"]) == 2
    _, err = _lines(capsys)
    assert "pip install 'vaekit[chem]'" in err and len(err.strip().splitlines()) == 1


def test_lines_of_text_train_with_character_tokens(tmp_path, capsys):
    lines = ["the cat sat on the mat", "a dog ran in the park", "the sun is hot", "we like green tea",
             "it is a red car", "my old hat is blue"] * 6
    data = tmp_path / "lines.txt"
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "text-run"
    assert main(["train", "--model", "sequence", "--tokens", "chars", "--data", str(data), "--hidden", "16",
                 "--latent-dim", "2", "--epochs", "2", "--batch-size", "8", "--out", str(out), "--no-progress",
                 "training.verbose=false"]) == 0
    vocab = load_vocabulary(out)
    assert vocab.kind == "chars" and " " in vocab.tokens and vocab.max_len == max(map(len, lines))
    assert vocab.decode(vocab.encode(["the cat sat on the mat"]).ids) == ["the cat sat on the mat"]
    assert main(["sample", str(out), "-n", "5", "--out", str(tmp_path / "s.txt")]) == 0
    assert len((tmp_path / "s.txt").read_text().splitlines()) == 5
    capsys.readouterr()
    assert main(["interpolate", str(out), "--pair", "the sun is hot", "a dog ran in the park", "--steps", "3"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert main(["optimize", str(out), "--property", "qed"]) == 2
    assert "lines of text" in capsys.readouterr().err


def test_train_run_refuses_a_sequence_config_in_one_line(tmp_path):
    import vaekit
    from vaekit.errors import ConfigError

    cfg = vaekit.Config()
    cfg.model.model = "sequence"
    with pytest.raises(ConfigError, match="train_sequence_run"):
        vaekit.train_run(cfg, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_tokenising_is_announced_before_training_and_counted_after(tmp_path, capsys):
    """Without a terminal there is no bar, so a long tokenisation says what it does and what it made."""
    data = tmp_path / "mols.csv"
    data.write_text("SMILES\n" + "\n".join(SMILES * 2) + "\n")
    assert main(["train", "--model", "sequence", "--data", str(data), "--hidden", "8", "--latent-dim", "2",
                 "--embed-dim", "4", "--epochs", "1", "--batch-size", "8", "--out", str(tmp_path / "r"),
                 "--no-progress", "data.test_fraction=0.1"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "tokenis" in line]
    assert len(err) == 2 and err[0].startswith("vaekit: tokenising 36 molecules of") and "(smiles)" in err[0]
    counts = [int(word.replace(",", "")) for word in err[1].split(" in ")[0].split() if word.replace(",", "").isdigit()]
    assert len(counts) == 3 and sum(counts) == 2 * len(SMILES) and counts[0] > counts[1] > 0


def test_property_head_is_ridge_where_the_property_is_linear_in_a_few_noisy_codes():
    """Few rows, many dimensions, a linear property: the MLP can fit noise; the ridge head is kept,
    its held-out R^2 near the truth's (signal variance over total: 1 / 1.25 = 0.8)."""
    from vaekit.apps.molecules.optimize import _fit_head

    g = torch.Generator().manual_seed(0)
    z = torch.randn(600, 128, generator=g)
    y = z[:, :8].sum(1) / 8**0.5 + 0.5 * torch.randn(600, generator=g)
    head, r2, kind = _fit_head(z, y, seed=0)
    assert kind == "ridge" and 0.65 < r2 < 0.9
    assert not any(p.requires_grad for p in head.parameters())


def test_property_head_is_the_mlp_where_the_property_is_not_linear():
    from vaekit.apps.molecules.optimize import _fit_head

    g = torch.Generator().manual_seed(0)
    z = torch.randn(2000, 4, generator=g)
    y = (z[:, :2] ** 2).sum(1)  # no linear trend: ridge explains ~nothing
    _, r2, kind = _fit_head(z, y, seed=0)
    assert kind == "mlp" and r2 > 0.8


def test_ridge_head_matches_scikit_learn():
    from sklearn.linear_model import Ridge

    from vaekit.apps.molecules.optimize import _ridge_head

    g = torch.Generator().manual_seed(1)
    x, x_held = torch.randn(200, 10, generator=g), torch.randn(50, 10, generator=g)
    w = torch.randn(10, generator=g)
    t, t_held = x @ w + 3.0 + torch.randn(200, generator=g), x_held @ w + 3.0
    layer, r2 = _ridge_head(x, t, x_held, t_held, penalties=(5.0,))
    ref = Ridge(alpha=5.0).fit(x.numpy(), t.numpy())
    assert np.allclose(layer.weight.detach().numpy()[0], ref.coef_, atol=1e-4)
    assert abs(float(layer.bias) - ref.intercept_) < 1e-4
    assert abs(r2 - ref.score(x_held.numpy(), t_held.numpy())) < 1e-4


def test_kekule_tokens_train_sample_and_encode(tmp_path, capsys):
    pytest.importorskip("rdkit", reason="Kekulé SMILES need RDKit: pip install 'vaekit[chem]'")
    data = tmp_path / "mols.csv"
    data.write_text("SMILES\n" + "".join(f"{s}\n" for s in SMILES * 4))
    out = tmp_path / "kekule-run"
    assert main(["train", "--model", "sequence", "--tokens", "kekule", "--data", str(data), "--hidden", "16",
                 "--latent-dim", "2", "--epochs", "2", "--batch-size", "8", "--out", str(out), "--no-progress",
                 "training.verbose=false"]) == 0
    vocab = load_vocabulary(out)
    assert vocab.kind == "kekule" and "c" not in vocab.tokens and "=" in vocab.tokens
    assert folder.read_run(out)["app"]["tokens"] == "kekule"
    assert main(["sample", str(out), "-n", "6", "--out", str(tmp_path / "g.csv")]) == 0
    assert len(list(csv.reader(open(tmp_path / "g.csv")))) == 7  # a header and six rows
    # aromatic SMILES from a user are converted to Kekulé form before they are encoded
    given = tmp_path / "in.txt"
    given.write_text("c1ccccc1\nCCO\n")
    assert main(["encode", str(out), str(given), "--out", str(tmp_path / "z.npy")]) == 0
    assert np.load(tmp_path / "z.npy").shape == (2, 2)
