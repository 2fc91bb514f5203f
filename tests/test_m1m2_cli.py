"""M1+M2 from the command line: `vaekit train --model m2 --labels N --m1 RUN` trains M2 on the
posterior means of the VAE run RUN; eval, sample --label, vaekit.load and --resume work on the run;
VAEClassifier(m1=True) keeps the same composition (core.m2.M1M2)."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import vaekit
from vaekit.apps.classifier import VAEClassifier
from vaekit.cli.main import main
from vaekit.config import Config
from vaekit.core.m2 import M1M2, predict_classes
from vaekit.errors import ConfigError
from vaekit.measure.evaluation import posterior_means
from vaekit.runs import folder
from vaekit.runs.evaluate import run_data
from vaekit.runs.jobs import train_run
from vaekit.training.loop import eval_inputs

M2_FLAGS = ["--model", "m2", "--labels", "30", "--hidden", "32", "--latent-dim", "2", "--batch-size", "64",
            "--early-stopping", "0", "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("m1m2")
    m1, run = root / "m1", root / "m1m2"
    assert main(["train", "--epochs", "3", "--hidden", "32", "--latent-dim", "6", "--out", str(m1), "--no-progress"]) == 0
    assert main(["train", *M2_FLAGS, "--m1", str(m1), "--epochs", "3", "--out", str(run)]) == 0
    return m1, run


def test_the_run_records_m1_and_keeps_m1s_data_and_weights(runs):
    m1, run = runs
    doc, m1_doc = (json.loads((p / "config.json").read_text()) for p in (run, m1))
    assert doc["class"] == "M1M2" and doc["config"]["model"]["m1"] == str(m1)
    assert doc["app"]["m1"]["run"] == str(m1.resolve())
    assert {k: v for k, v in doc["config"]["data"].items() if k not in ("labels", "label_seed")} == \
        {k: v for k, v in m1_doc["config"]["data"].items() if k not in ("labels", "label_seed")}
    assert doc["config"]["data"]["labels"] == 30 and len(doc["data"]["labelled"]["indices"]) == 30
    model = vaekit.load(run)
    assert isinstance(model, M1M2) and model.data_shape == (1, 8, 8) and model.m2.data_shape == (6,)
    # M1 is not trained again: the run's copy of it is M1's weights exactly
    m1_weights, weights = load_file(m1 / "model.safetensors"), load_file(run / "model.safetensors")
    assert all(torch.equal(weights[f"m1.{k}"], v) for k, v in m1_weights.items())
    records = folder.read_metrics(run)
    assert len(records) == 3 and all(0 <= r["val_error"] <= 1 for r in records)


def test_eval_reports_the_test_error_of_m2_on_m1s_codes(runs, capsys):
    m1, run = runs
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    model, cfg, data = run_data(run)
    x, labels = eval_inputs(data, "test", cfg), data.test_labels
    # composed independently: M1's posterior means (from M1's own run folder), then M2's classifier
    codes = posterior_means(vaekit.load(m1), x)
    with torch.no_grad():
        predicted = model.m2.classify(codes).argmax(-1)
    assert torch.equal(predicted, predict_classes(model, x))
    assert result["error"] == pytest.approx((predicted != labels).double().mean().item(), abs=1e-12)
    assert result["examples"] == len(labels) and np.isfinite(result["elbo"]) and np.isfinite(result["elbo_unlabelled"])


def test_sample_with_a_label_decodes_m2s_codes_through_m1(runs, tmp_path):
    m1, run = runs
    out = tmp_path / "three.npy"
    assert main(["sample", str(run), "--label", "3", "-n", "5", "--seed", "7", "--out", str(out)]) == 0
    drawn = np.load(out)
    model, m1_model = vaekit.load(run), vaekit.load(m1)
    z = model.m2.sample_latent(5, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = m1_model.decode(model.m2.decode(z, torch.full((5,), 3)).mean).mean
    assert drawn.shape == (5, 1, 8, 8)
    np.testing.assert_allclose(drawn, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_resume_continues_exactly(runs, tmp_path):
    m1, run = runs
    part = tmp_path / "part"
    assert main(["train", *M2_FLAGS, "--m1", str(m1), "--epochs", "2", "--out", str(part)]) == 0
    assert main(["train", "--resume", str(part), "--epochs", "3"]) == 0
    whole, resumed = load_file(run / "model.safetensors"), load_file(part / "model.safetensors")
    assert whole.keys() == resumed.keys() and all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert [r["val_loss"] for r in folder.read_metrics(part)] == [r["val_loss"] for r in folder.read_metrics(run)]


def test_bad_uses_of_m1_are_one_line_errors(runs, tmp_path, capsys):
    m1, run = runs
    capsys.readouterr()
    assert main(["train", "--m1", str(m1), "--epochs", "1", "--out", str(tmp_path / "a")]) == 2  # not --model m2
    assert main(["train", *M2_FLAGS, "--m1", str(run), "--epochs", "1", "--out", str(tmp_path / "b")]) == 2  # not a VAE
    assert main(["train", *M2_FLAGS, "--m1", str(m1), "--data", "mnist", "--epochs", "1",
                 "--out", str(tmp_path / "c")]) == 2  # other data than M1's
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "--model m2" in err[0] and "M1M2" in err[1] and "data.name" in err[2]
    assert not any((tmp_path / name).exists() for name in "abc")
    cfg = Config()
    cfg.model.model, cfg.model.m1 = "m2", str(m1)
    with pytest.raises(ConfigError, match="train_m1m2_run"):
        train_run(cfg, tmp_path / "d")


def test_the_classifier_keeps_the_same_composition():
    x = np.random.default_rng(0).normal(size=(60, 5))
    y = np.where(np.arange(60) % 3 == 0, np.arange(60) % 2, -1)
    clf = VAEClassifier(m1=True, epochs=2, m1_epochs=2, random_state=0).fit(x, y)
    assert isinstance(clf.model_, M1M2) and clf.model_.m1 is clf.m1_.model_
    codes = torch.from_numpy(clf.m1_.transform(x))
    with torch.no_grad():
        expected = torch.softmax(clf.model_.m2.classify(codes), -1).numpy()
    np.testing.assert_allclose(clf.predict_proba(x), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["adgm", "sdgm"])
def test_the_auxiliary_models_train_on_m1s_codes_too(runs, tmp_path, kind, capsys):
    """--model adgm|sdgm --m1 RUN: the ADGM or SDGM in M2's place, rebuilt by vaekit.load as trained."""
    from vaekit.core.adgm import ADGM, SDGM

    m1, _ = runs
    run = tmp_path / kind
    flags = [f if f != "m2" else kind for f in M2_FLAGS]
    assert main(["train", *flags, "--aux-dim", "3", "--m1", str(m1), "--epochs", "2", "--out", str(run)]) == 0
    model = vaekit.load(run)
    assert isinstance(model, M1M2) and type(model.m2) is {"adgm": ADGM, "sdgm": SDGM}[kind]
    assert model.m2.aux_dim == 3 and model.m2.data_shape == (6,)
    weights = load_file(run / "model.safetensors")
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    _, cfg, data = run_data(run)
    x = eval_inputs(data, "test", cfg)
    with torch.no_grad():  # q(y|E[a|z1], z1) at M1's codes, composed by hand
        codes = posterior_means(vaekit.load(m1), x)
        predicted = model.m2.classifier(codes, model.m2.aux_posterior(codes).mean).argmax(-1)
    assert result["error"] == pytest.approx((predicted != data.test_labels).double().mean().item(), abs=1e-12)
    assert np.isfinite(result["elbo_unlabelled"])


def test_the_smoothing_term_trains_m2_on_m1s_codes_from_the_command_line(runs, tmp_path, capsys):
    """`training.vat=W` on the command line: recorded in config.json, eps auto resolved from M1's
    training codes and said on stderr, and the run differs from the same run without it."""
    m1, plain = runs
    run = tmp_path / "vat"
    capsys.readouterr()
    assert main(["train", *M2_FLAGS, "--m1", str(m1), "--epochs", "3", "--out", str(run), "training.vat=10"]) == 0
    err = capsys.readouterr().err
    assert "virtual adversarial smoothing: eps" in err
    doc = json.loads((run / "config.json").read_text())
    assert doc["config"]["training"]["vat"] == 10 and doc["config"]["training"]["vat_eps"] == "auto"
    a, b = load_file(run / "model.safetensors"), load_file(plain / "model.safetensors")
    assert not torch.equal(a["m2.classifier.net.0.weight"], b["m2.classifier.net.0.weight"])
