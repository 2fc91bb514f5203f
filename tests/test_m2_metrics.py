"""An M2 run records its classifier's validation error every epoch (metrics.jsonl, the epoch line,
curves.png), and the best epoch is still the one with the lowest validation loss; `vaekit eval` gives
its log p(x) with the class summed over."""

import json
import math

import pytest
import torch

from vaekit.cli.main import main
from vaekit.core.m2 import predict_classes
from vaekit.measure.evaluation import class_marginal_report, log_likelihood
from vaekit.runs import folder, plots
from vaekit.runs.evaluate import evaluate_run
from vaekit.runs.jobs import load_job_data
from vaekit.training.loop import eval_inputs


@pytest.fixture(scope="module")
def m2_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("m2") / "run"
    assert main(["train", "--model", "m2", "--labels", "30", "--epochs", "4", "--hidden", "32", "--latent-dim", "4",
                 "--batch-size", "64", "--early-stopping", "0", "--out", str(run), "--no-progress"]) == 0
    return run


def test_each_epoch_records_the_validation_error_of_the_classifier(m2_run):
    records = folder.read_metrics(m2_run)
    assert len(records) == 4
    assert all(0.0 <= r["val_error"] <= 1.0 for r in records)
    # the saved weights are the best validation-loss epoch's: its recorded error is the one the
    # classifier gives here, predicted afresh on the validation split
    cfg = folder.run_config(folder.read_run(m2_run))
    data = load_job_data(cfg)
    x, labels = eval_inputs(data, "val", cfg), data.val_labels
    assert (labels >= 0).all() and len(labels) > 100  # the validation labels are all known
    model = folder.load(m2_run)
    best = next(r for r in records if r["epoch"] == records[-1]["best_epoch"])
    accuracy = (predict_classes(model, x) == labels).double().mean().item()
    assert best["val_error"] == pytest.approx(1 - accuracy, abs=1e-12)
    # the errors change over the epochs: they are measured, not a constant
    assert len({r["val_error"] for r in records}) > 1


def test_the_best_epoch_follows_the_validation_loss_not_the_error(m2_run):
    records = folder.read_metrics(m2_run)
    best_loss = min(records, key=lambda r: r["val_loss"])
    assert records[-1]["best_epoch"] == best_loss["epoch"]


def test_a_run_without_a_classifier_records_no_error(tmp_path):
    run = tmp_path / "vae"
    assert main(["train", "--epochs", "1", "--hidden", "16", "--latent-dim", "2", "--out", str(run),
                 "--no-progress"]) == 0
    assert "val_error" not in folder.read_metrics(run)[0]


def test_the_epoch_line_and_the_curves_show_the_error(m2_run, tmp_path, capsys):
    run = tmp_path / "again"
    assert main(["train", "--model", "m2", "--labels", "30", "--epochs", "1", "--hidden", "16", "--latent-dim", "2",
                 "--out", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    error = folder.read_metrics(run)[0]["val_error"]
    assert f"val error {error:6.2%}" in out and f"classifier error {error:.2%}" in out
    records = folder.read_metrics(m2_run)
    with_error = plots.save_curves(records, tmp_path / "with.png")
    without = plots.save_curves([{k: v for k, v in r.items() if k != "val_error"} for r in records],
                                tmp_path / "without.png")
    from PIL import Image

    assert Image.open(with_error).size[0] > Image.open(without).size[0]  # the fourth panel
    assert json.loads((m2_run / "config.json").read_text())["class"] == "M2"


def test_eval_gives_log_p_x_with_the_class_summed_over(m2_run, capsys):
    """log p(x) = log sum_c p(c) p(x|c): with the same seed the per-class estimates are
    log_likelihood's given y = c, their log-sum-exp under the uniform p(y) is the reported figure,
    it is above log p(x|y) + log p(y) for the true label (a sum above one of its terms), and it sits
    above the bound with the labels hidden (in expectation it must: Jensen over q(y|x), then k >= 1)."""
    cfg = folder.run_config(folder.read_run(m2_run))
    data = load_job_data(cfg)
    model = folder.load(m2_run)
    x, labels = eval_inputs(data, "test", cfg)[:60], data.test_labels[:60]
    report = class_marginal_report(model, x, 8, labels)
    per_class = torch.stack([log_likelihood(model, x, 8, y=torch.full((60,), c)) for c in range(model.num_classes)])
    marginal = torch.logsumexp(per_class - math.log(model.num_classes), dim=0)
    assert report["log_px_marginal"] == pytest.approx(float(marginal.mean()), abs=1e-9)
    assert report["nll"] == pytest.approx(-float(per_class.gather(0, labels.long()[None])[0].mean()), abs=1e-9)
    assert (marginal >= per_class.gather(0, labels.long()[None])[0] - math.log(model.num_classes) - 1e-9).all()
    result = evaluate_run(m2_run, num_samples=8, limit=60)
    assert result["log_px_marginal"] == pytest.approx(report["log_px_marginal"], abs=1e-9)
    assert result["log_px_marginal"] > result["elbo_unlabelled"] - 2 * result["log_px_marginal_stderr"]
    assert main(["eval", str(m2_run), "--nll-samples", "8", "--limit", "60"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "the labels summed over" in line)
    assert float(line.split()[-1]) == pytest.approx(result["log_px_marginal"], abs=1e-3)
