"""Virtual adversarial smoothing (core/smoothing.py): the categorical KL against torch's, the
adversarial direction against the closed form of a linear classifier, the loss's gradient path
and its seeding."""

import numpy as np
import pytest
import torch

from vaekit.core.distributions import categorical_kl
from vaekit.core.smoothing import adversarial_direction, unit_rows, virtual_adversarial_loss


def test_categorical_kl_matches_torch_and_is_zero_on_equal_logits():
    g = torch.Generator().manual_seed(0)
    p, q = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    ours = categorical_kl(p, q)
    ref = torch.distributions.kl_divergence(torch.distributions.Categorical(logits=p),
                                            torch.distributions.Categorical(logits=q))
    assert torch.allclose(ours, ref, atol=1e-6)
    assert torch.allclose(categorical_kl(p, p), torch.zeros(6), atol=1e-7)


def test_unit_rows_have_length_one_per_row():
    d = torch.randn(3, 2, 4, 4)
    assert torch.allclose(unit_rows(d).flatten(1).norm(dim=1), torch.ones(3), atol=1e-6)


def test_the_direction_of_a_linear_classifier_is_its_weight_difference():
    """For logits W x + b the KL's curvature at r = 0 is W^T (diag(p) - p p^T) W, whose top
    eigenvector is what one power-iteration step approximates; with two classes it has rank one,
    along w_1 - w_0, so one step finds it exactly (up to sign)."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(5, 2).double()
    x = torch.randn(4, 5, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    direction = adversarial_direction(lin, x, lin(x), 1e-4, generator=g)
    w = lin.weight[1] - lin.weight[0]
    cos = (direction @ w.detach()) / w.detach().norm()
    assert torch.allclose(cos.abs(), torch.ones(4, dtype=torch.float64), atol=1e-6)


def test_the_adversarial_change_moves_q_more_than_random_changes_of_the_same_length():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).double()
    x = torch.randn(32, 8, dtype=torch.float64)
    eps = 0.5
    vat = virtual_adversarial_loss(net, x, eps, generator=torch.Generator().manual_seed(0), xi=1e-4)
    with torch.no_grad():
        logits = net(x)
        random_kl = torch.stack([categorical_kl(logits, net(x + eps * unit_rows(torch.randn_like(x)))).mean()
                                 for _ in range(20)])
    assert vat.item() > 3 * random_kl.mean().item() > 0


def test_a_constant_classifier_is_perfectly_smooth():
    class Constant(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.tensor([0.3, -1.0, 2.0]))

        def forward(self, x):
            return self.bias.expand(x.shape[0], 3) + 0 * x.sum(-1, keepdim=True)

    loss = virtual_adversarial_loss(Constant(), torch.randn(5, 4), eps=2.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)


def test_gradient_reaches_the_classifier_through_the_perturbed_branch_only():
    torch.manual_seed(0)
    net = torch.nn.Linear(6, 3)
    x = torch.randn(10, 6)
    logits = net(x)  # as the bound computes them, with a graph
    loss = virtual_adversarial_loss(net, x, eps=1.0, logits=logits, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert net.weight.grad is not None and net.weight.grad.abs().sum() > 0
    # the target q(y|x) is held fixed: the same loss with fresh, detached logits gives the same gradient
    grad = net.weight.grad.clone()
    net.zero_grad()
    virtual_adversarial_loss(net, x, eps=1.0, logits=net(x).detach(),
                             generator=torch.Generator().manual_seed(0)).backward()
    assert torch.allclose(net.weight.grad, grad)


def test_seeded_and_empty_batches():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = torch.randn(7, 4)
    a = virtual_adversarial_loss(net, x, 1.0, generator=torch.Generator().manual_seed(3))
    b = virtual_adversarial_loss(net, x, 1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert virtual_adversarial_loss(net, x[:0], 1.0).item() == 0.0


def _digits_fifty_labels():
    from sklearn.datasets import load_digits

    from vaekit.data.splits import draw_labelled

    x, y = load_digits(return_X_y=True)
    x = x[:600] / 16.0
    keep = draw_labelled(y[:600], 50, 10, seed=0)
    y_semi = np.full(600, -1)
    y_semi[keep] = y[keep]
    return x, y_semi


def test_m2_trained_with_the_term_is_smoother_around_its_unlabelled_rows():
    """The same M2, seed and rows with and without vat: the virtual adversarial loss of the trained
    q(y|x), measured on the unlabelled rows, is lower with the term (it is what the term minimises)."""
    from vaekit.apps.classifier import VAEClassifier

    x, y_semi = _digits_fifty_labels()
    eps = 2.0
    lds = []
    for vat in (0.0, 10.0):
        clf = VAEClassifier(m1=False, epochs=30, likelihood="bernoulli", standardize=False, vat=vat, vat_eps=eps,
                            random_state=0).fit(x, y_semi)
        assert clf.config_["training"]["vat"] == vat
        xs = torch.from_numpy(x[y_semi == -1])
        lds.append(virtual_adversarial_loss(clf.model_.classify, xs, eps,
                                            generator=torch.Generator().manual_seed(0)).item())
    assert lds[1] < 0.5 * lds[0]


@pytest.mark.parametrize("key,value", [("vat", -1.0), ("vat_eps", 0.0)])
def test_bad_settings_are_one_line_errors(key, value):
    from vaekit.config import Config
    from vaekit.errors import ConfigError

    with pytest.raises(ConfigError, match=f"training.{key}"):
        Config.from_dict({"training": {key: value}}).validate()


def test_automatic_eps_is_a_quarter_of_the_median_distance_to_the_tenth_neighbour():
    """Points at the integers 0..99 on a line: every point from 5 to 94 has its 10 nearest others
    within 5 (five on each side), so the median distance to the 10th is 5 and eps is 1.25."""
    from vaekit.core.smoothing import automatic_eps, neighbour_distance

    x = torch.arange(100.0).reshape(100, 1)
    assert neighbour_distance(x, [x]) == 5.0
    assert neighbour_distance(x, [x[:30], x[30:], x[:0]]) == 5.0  # the same, read in chunks
    assert automatic_eps(x) == 1.25
    assert automatic_eps(torch.cat([x, torch.zeros(100, 3)], 1) * 2) == 2.5  # lengths scale with the data
    with pytest.raises(ValueError, match="10-th neighbour"):
        neighbour_distance(x[:10], [x[:10]])


def test_auto_eps_is_the_eps_of_the_training_rows():
    """Training with eps auto and with eps given as automatic_eps of the training rows gives the same model."""
    from vaekit.apps.classifier import VAEClassifier
    from vaekit.config import Config
    from vaekit.core.smoothing import automatic_eps

    assert Config.from_dict({"training": {"vat_eps": "auto"}}).validate().training.vat_eps == "auto"
    x, y_semi = _digits_fifty_labels()
    eps = automatic_eps(torch.from_numpy(x.astype(np.float32)))
    assert 0.2 < eps < 2.0  # digits scaled to [0, 1], 64 pixels
    probs = []
    for setting in ("auto", eps, 2 * eps):
        clf = VAEClassifier(m1=False, epochs=2, likelihood="bernoulli", standardize=False, vat=5.0, vat_eps=setting,
                            random_state=0).fit(x, y_semi)
        probs.append(clf.predict_proba(x))
    assert np.array_equal(probs[0], probs[1]) and not np.allclose(probs[0], probs[2])


def test_the_default_probe_finds_in_float32_the_direction_float64_finds():
    """A probe of XI_FRACTION * eps survives float32 rounding: one power-iteration step in float32
    gives the direction of the same step in float64, on rows of length about 5."""
    from vaekit.core.distributions import categorical_kl
    from vaekit.core.smoothing import XI_FRACTION

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    x = torch.randn(200, 32, dtype=torch.float64)
    d = unit_rows(torch.randn(200, 32, dtype=torch.float64))

    def one_step(model, x, xi):
        probe = (xi * d.to(x.dtype)).requires_grad_(True)
        (grad,) = torch.autograd.grad(categorical_kl(model(x).detach(), model(x + probe)).sum(), probe)
        return unit_rows(grad).double()

    exact = one_step(net.double(), x, 1e-6)
    ours = one_step(net.float(), x.float(), XI_FRACTION * 0.75)
    assert (ours * exact).sum(1).mean() > 0.99


def test_automatic_eps_from_a_sample_of_queries_read_in_chunks_finds_the_same_scale():
    """More rows than SCALE_ROWS, searched CHUNK rows at a time: a regular lattice keeps its
    10th-neighbour distance (each query passed over as its own nearest)."""
    from vaekit.core import smoothing

    x = torch.arange(1000.0).reshape(1000, 1)
    small = dict(SCALE_ROWS=37, REFERENCE_ROWS=1000, CHUNK=128)
    old = {k: getattr(smoothing, k) for k in small}
    try:
        for k, v in small.items():
            setattr(smoothing, k, v)
        assert smoothing.automatic_eps(x) == 1.25
    finally:
        for k, v in old.items():
            setattr(smoothing, k, v)
