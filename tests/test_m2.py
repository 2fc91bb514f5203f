"""M2 (Kingma et al. 2014): the objective against a hand computation, the label draw, and the
command line (train --model m2 --labels, eval's test error, sample --label, the pictures)."""

import json
import math

import numpy as np
import pytest
import torch

from vaekit.cli.main import main
from vaekit.config import ModelConfig
from vaekit.core.distributions import standard_normal
from vaekit.core.m2 import M2
from vaekit.core.objectives import elbo_loss
from vaekit.core.semisupervised import Q_FLOOR, m2_loss
from vaekit.data.splits import draw_labelled, per_class_counts
from vaekit.errors import DataError

K, D, LATENT = 3, 5, 2


def _tiny_model(likelihood="gaussian-learned"):
    torch.manual_seed(0)
    cfg = ModelConfig(model="m2", hidden=(7,), latent_dim=LATENT, likelihood=likelihood)
    return M2(cfg, (D,), K).double()


def _neg_elbo(model, x, c, eps):
    """-L(x, y=c) = -log p(x|y,z) + KL(q(z|x,y) || p(z)) - log p(y) at z = mean + stddev * eps, by hand."""
    y = torch.tensor([c])
    q = model.encode(x[None], y)
    z = q.mean + q.stddev * eps[None]
    recon = -model.decode(z, y).log_prob(x[None])[0]
    kl = 0.5 * (q.mean**2 + q.stddev**2 - 1 - 2 * q.stddev.log()).sum()
    return recon + kl + math.log(K)


@pytest.mark.parametrize("w", [1.0, 0.1])
def test_unlabelled_rows_sum_over_classes_as_the_enumerated_expectation(w):
    model = _tiny_model()
    x = torch.randn(5, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.tensor([2, -1, 0, -1, -1])
    alpha = 0.7
    terms = m2_loss(model, x, y, alpha, generator=torch.Generator().manual_seed(3), labelled_weight=w)
    # the noise of the one batched pass: labelled rows first, then the unlabelled rows once per class, class-major
    labelled, unlabelled = [0, 2], [1, 3, 4]
    eps = standard_normal((2 + K * 3, LATENT), torch.Generator().manual_seed(3), dtype=torch.float64)
    bounds, ce = [], []
    with torch.no_grad():
        for i, row in enumerate(labelled):
            bounds.append(_neg_elbo(model, x[row], int(y[row]), eps[i]))
            ce.append(-torch.log_softmax(model.classify(x[row][None])[0], -1)[y[row]])
        for j, row in enumerate(unlabelled):
            q = torch.softmax(model.classify(x[row][None])[0], -1)
            per_class = [_neg_elbo(model, x[row], c, eps[2 + c * 3 + j]) for c in range(K)]
            # -U(x) = sum_y q(y|x) (-L(x, y)) - H(q(y|x))
            bounds.append(sum(q[c] * per_class[c] for c in range(K)) + (q * q.log()).sum())
    # the labelled rows' bounds (the first two) weighed by w against the unlabelled rows'
    weights = torch.tensor([w, w, 1.0, 1.0, 1.0], dtype=torch.float64)
    expected = (weights * torch.stack(bounds)).sum() / weights.sum() + alpha * torch.stack(ce).mean()
    torch.testing.assert_close(terms["loss"].detach(), expected)
    torch.testing.assert_close(terms["elbo"].detach(), -torch.stack(bounds).mean())  # reported: the plain mean
    torch.testing.assert_close(terms["elbo"], -(terms["recon"] + terms["kl"]))


def test_a_class_the_classifier_rules_out_gets_no_gradient_and_the_bound_barely_moves():
    """q(y|x) below Q_FLOOR counts as 0 in an unlabelled row's sum: that row's pass for the class gets an
    exactly zero gradient (kept, it would be q times the terms' gradient, subnormal floats that the CPU
    computes slowly), and the bound differs from the exact sum by less than Q_FLOOR times its terms."""
    model = _tiny_model().float()
    with torch.no_grad():  # a classifier sure of class 0: q(1|x) ~ e^-60 (normal), q(2|x) ~ e^-92 (subnormal)
        last = [m for m in model.classifier.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.0, -60.0, -92.0]))
    x = torch.randn(4, D, generator=torch.Generator().manual_seed(1))
    y = torch.full((4,), -1)
    q = torch.softmax(model.classify(x), -1)
    assert (q[:, 1:] < Q_FLOOR).all() and (q[:, 2] > 0).all() and (q[:, 2] < torch.finfo(torch.float32).tiny).all()
    x_all = x.repeat(K, 1).requires_grad_(True)  # the enumerated rows, class-major, as m2_loss builds them
    rows = {"n": 0}

    def forward(xs, ys, generator=None):  # the model's pass on the enumerated rows, with x_all put in for xs
        rows["n"] += 1
        return type(model).forward(model, x_all, ys, generator=generator)

    model.forward = forward
    terms = m2_loss(model, x, y, alpha=1.0, generator=torch.Generator().manual_seed(3))
    terms["loss"].backward()
    grad = x_all.grad.reshape(K, 4, D)
    assert rows["n"] == 1 and grad[0].abs().sum() > 0
    assert torch.equal(grad[1:], torch.zeros_like(grad[1:]))  # exactly 0: no subnormal gradient left to compute
    del model.forward
    with torch.no_grad():  # the exact sum over all classes, q unfloored
        g = torch.Generator().manual_seed(3)
        out = model(x.repeat(K, 1), torch.arange(K).repeat_interleave(4), generator=g)
        per_class = (-out.likelihood.log_prob(x.repeat(K, 1)) + out.posterior.kl()).reshape(K, 4).T
        exact = ((q * per_class).sum(-1) + (q * q.clamp_min(1e-45).log()).sum(-1) + math.log(K)).mean()
    assert abs(-terms["elbo"].item() - exact.item()) <= 1e-4 * abs(exact.item())


def test_a_labelled_batch_is_the_cvae_objective_plus_the_classification_term():
    model = _tiny_model("bernoulli")
    x = (torch.rand(6, D, generator=torch.Generator().manual_seed(2)) > 0.5).double()
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    terms = m2_loss(model, x, y, alpha=2.5, generator=torch.Generator().manual_seed(4))
    weighed = m2_loss(model, x, y, alpha=2.5, generator=torch.Generator().manual_seed(4), labelled_weight=0.1)
    torch.testing.assert_close(weighed["loss"], terms["loss"])  # all rows labelled: the weight cancels
    cvae = elbo_loss(x, model(x, y, generator=torch.Generator().manual_seed(4)))  # the CVAE: the same networks, y given
    ce = torch.nn.functional.cross_entropy(model.classify(x), y)
    torch.testing.assert_close(terms["loss"], cvae["loss"] + math.log(K) + 2.5 * ce)  # log K: -log p(y), uniform
    torch.testing.assert_close(terms["classification"], ce)
    assert terms["kl"].item() == pytest.approx(cvae["kl"].item() + math.log(K))


def test_without_labels_the_classification_term_is_zero_and_the_classifier_still_learns_from_the_bound():
    model = _tiny_model()
    x = torch.randn(4, D, dtype=torch.float64)
    terms = m2_loss(model, x, torch.full((4,), -1), alpha=10.0, generator=torch.Generator().manual_seed(0))
    assert terms["classification"].item() == 0.0 and terms["loss"].item() == pytest.approx(-terms["elbo"].item())
    terms["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.classifier.parameters())


def test_labels_are_drawn_per_class_with_the_seed():
    labels = np.repeat(np.arange(10), 30)
    a, b = draw_labelled(labels, 25, 10, seed=0), draw_labelled(labels, 25, 10, seed=1)
    assert per_class_counts(25, 10) == [3] * 5 + [2] * 5
    assert np.bincount(labels[a], minlength=10).tolist() == [3] * 5 + [2] * 5
    assert np.array_equal(a, draw_labelled(labels, 25, 10, seed=0)) and not np.array_equal(a, b)
    with pytest.raises(DataError, match="without a labelled row") as err:
        draw_labelled(labels, 5, 10, seed=0)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="class 0"):
        draw_labelled(labels, 400, 10, seed=0)


def test_cli_trains_m2_with_few_labels_and_reports_test_error(tmp_path, capsys):
    run = tmp_path / "m2"
    assert main(["train", "--model", "m2", "--labels", "50", "--epochs", "25", "--hidden", "128", "--latent-dim", "8",
                 "--batch-size", "64", "data.label_seed=1", "--out", str(run), "--no-progress"]) == 0
    doc = json.loads((run / "config.json").read_text())
    assert doc["class"] == "M2" and doc["config"]["data"]["labels"] == 50
    drawn = doc["data"]["labelled"]
    assert drawn["seed"] == 1 and drawn["per_class"] == [5] * 10 and len(drawn["indices"]) == 50
    for name in ("samples_by_class.png", "style_by_class.png", "confusion.png"):
        assert (run / name).is_file()
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["error"] < 0.5  # 50 labels of 1437 rows; chance is 0.9
    assert main(["eval", str(run)]) == 0
    assert "test error" in capsys.readouterr().out
    assert main(["sample", str(run), "--label", "3", "-n", "5", "--out", str(tmp_path / "three.npy")]) == 0
    assert np.load(tmp_path / "three.npy").shape == (5, 1, 8, 8)


def test_cli_refuses_labels_without_m2_and_too_few_labels(tmp_path, capsys):
    assert main(["train", "--labels", "50", "--epochs", "1", "--out", str(tmp_path / "a")]) == 2
    assert main(["train", "--model", "m2", "--labels", "4", "--epochs", "1", "--out", str(tmp_path / "b")]) == 2
    assert main(["train", "--model", "m2", "--labels", "50", "--epochs", "1", "training.labelled_weight=0",
                 "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "--model m2" in err[0] and "one per class" in err[1] and "labelled_weight" in err[2]
