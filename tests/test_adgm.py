"""The auxiliary and skip deep generative models (Maaløe et al. 2016): their objectives against a
hand computation, their contracts, training from a few labels, the run folder and the estimator."""

import math

import numpy as np
import pytest
import torch

import vaekit
from vaekit.apps.classifier import VAEClassifier
from vaekit.config import ModelConfig
from vaekit.core.adgm import ADGM, SDGM
from vaekit.core.distributions import standard_normal
from vaekit.core.semisupervised import adgm_loss, loss_for, m2_loss
from vaekit.runs import folder

from conftest import small_config

K, D, LATENT, AUX = 3, 5, 2, 4


def _tiny_model(likelihood="gaussian-learned", kind=ADGM):
    torch.manual_seed(0)
    cfg = ModelConfig(model=kind.__name__.lower(), hidden=(7,), latent_dim=LATENT, aux_dim=AUX, likelihood=likelihood)
    return kind(cfg, (D,), K).double()


def _neg_bound(model, x, c, a, eps):
    """-L(x, y=c) at the auxiliary draw a and z = mean + stddev * eps of q(z|a, x, y), by hand:
    -log p(x|y,z) + KL(q(z|a,x,y) || p(z)) - log p(y) - log p(a|x,y,z) + log q(a|x) for the ADGM;
    for the SDGM p(x|a,y,z) and p(a|y,z), written out from its networks here."""
    y = torch.tensor([c])
    q = model.encode(x[None], y, a[None])
    z = q.mean + q.stddev * eps[None]
    onehot = torch.nn.functional.one_hot(y, K).double()
    if isinstance(model, SDGM):
        means = model.decoder.net(torch.cat([z, onehot, a[None]], -1))
        scale = model.config.scale_floor + torch.nn.functional.softplus(model.raw_scale)
        recon = -torch.distributions.Normal(means, scale).log_prob(x[None]).sum()
        pa_mean, pa_logvar = model.aux_decoder.net(torch.cat([z, onehot], -1)).chunk(2, -1)
        pa = torch.distributions.Normal(pa_mean, (0.5 * pa_logvar).exp())
    else:
        recon = -model.decode(z, y).log_prob(x[None])[0]
        pa = model.aux_likelihood(x[None], y, z)
    kl = 0.5 * (q.mean**2 + q.stddev**2 - 1 - 2 * q.stddev.log()).sum()
    qa = model.aux_posterior(x[None])
    log_q_a = torch.distributions.Normal(qa.mean, qa.stddev).log_prob(a[None]).sum()
    log_p_a = torch.distributions.Normal(pa.mean, pa.stddev).log_prob(a[None]).sum()
    return recon + kl + math.log(K) - log_p_a + log_q_a


@pytest.mark.parametrize("kind", [ADGM, SDGM])
def test_unlabelled_rows_sum_over_classes_as_the_enumerated_expectation(kind):
    model = _tiny_model(kind=kind)
    x = torch.randn(5, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.tensor([2, -1, 0, -1, -1])
    alpha = 0.7
    terms = adgm_loss(model, x, y, alpha, generator=torch.Generator().manual_seed(3))
    # the draws, in the function's order: a for every row, then z for the enumerated rows (labelled
    # rows first, then the unlabelled ones once per class, class-major)
    g = torch.Generator().manual_seed(3)
    qa = model.aux_posterior(x)
    a = qa.mean + qa.stddev * standard_normal((5, AUX), g, dtype=torch.float64)
    eps = standard_normal((2 + K * 3, LATENT), g, dtype=torch.float64)
    labelled, unlabelled = [0, 2], [1, 3, 4]
    bounds, ce = [], []
    with torch.no_grad():
        for i, row in enumerate(labelled):
            bounds.append(_neg_bound(model, x[row], int(y[row]), a[row], eps[i]))
            ce.append(-torch.log_softmax(model.classify(x[row][None], a[row][None])[0], -1)[y[row]])
        for j, row in enumerate(unlabelled):
            q = torch.softmax(model.classify(x[row][None], a[row][None])[0], -1)  # q(y|a, x)
            per_class = [_neg_bound(model, x[row], c, a[row], eps[2 + c * 3 + j]) for c in range(K)]
            bounds.append(sum(q[c] * per_class[c] for c in range(K)) + (q * q.log()).sum())
    expected = torch.stack(bounds).mean() + alpha * torch.stack(ce).mean()
    torch.testing.assert_close(terms["loss"].detach(), expected)
    torch.testing.assert_close(terms["elbo"].detach(), -torch.stack(bounds).mean())
    torch.testing.assert_close(terms["elbo"], -(terms["recon"] + terms["kl"]))


def test_beta_weighs_only_the_kl_of_z():
    model = _tiny_model()
    x = torch.randn(4, D, dtype=torch.float64)
    y = torch.tensor([0, -1, 1, -1])
    one = adgm_loss(model, x, y, 0.0, beta=1.0, generator=torch.Generator().manual_seed(0))
    two = adgm_loss(model, x, y, 0.0, beta=2.0, generator=torch.Generator().manual_seed(0))
    # the difference is the (expected) KL of z alone: positive, and below the whole KL term, which
    # also holds the auxiliary terms and the KL of y
    diff = (two["loss"] - one["loss"]).item()
    assert diff > 0 and two["elbo"].item() == pytest.approx(one["elbo"].item())


def test_the_training_objective_is_chosen_by_the_model():
    assert loss_for(_tiny_model()) is adgm_loss
    from vaekit.core.m2 import M2

    assert loss_for(M2(ModelConfig(model="m2", hidden=(7,), latent_dim=2, likelihood="gaussian"), (D,), K)) is m2_loss


@pytest.mark.parametrize("kind", [ADGM, SDGM])
def test_contracts_outside_training_take_a_at_its_mean(kind):
    model = _tiny_model(kind=kind)
    x = torch.randn(6, D, dtype=torch.float64)
    a = model.aux_posterior(x).mean
    torch.testing.assert_close(model.classify(x), model.classify(x, a))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    torch.testing.assert_close(model.encode(x, y).mean, model.encode(x, y, a).mean)
    assert model.sample(4, y=torch.tensor(1)).shape == (4, D)
    # a drawn a changes the classifier's input: the logits differ from those at the mean
    drawn = model.aux_posterior(x).rsample(generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(model.classify(x, drawn), model.classify(x))
    # decoding: z with leading sample dimensions decodes as each slice does
    z = torch.randn(3, 6, LATENT, dtype=torch.float64)
    torch.testing.assert_close(model.decode(z, y).mean[1], model.decode(z[1], y).mean)
    if kind is SDGM:  # p(x|a, y, z) reads a: the mean of p(a|y, z) unless a is given
        pa = model.aux_likelihood(x, y, z[0]).mean
        torch.testing.assert_close(model.decode(z[0], y).mean, model.decode(z[0], y, pa).mean)
        assert not torch.allclose(model.decode(z[0], y, pa + 1.0).mean, model.decode(z[0], y).mean)
        # sampling draws a from p(a|y, z): seeded, and not the decoding at a's mean
        g = lambda: torch.Generator().manual_seed(5)
        torch.testing.assert_close(model.sample(6, y, generator=g()), model.sample(6, y, generator=g()))
        z0 = model.sample_latent(6, y, g())
        assert not torch.allclose(model.sample(6, y, generator=g()), model.decode(z0, y).mean)


@pytest.mark.parametrize("kind", [ADGM, SDGM])
def test_run_learns_from_a_few_labels_and_round_trips(tmp_path, kind):
    cfg = small_config(epochs=8, seed=0)
    cfg.model.model, cfg.data.labels = kind.__name__.lower(), 100
    run = vaekit.train_run(cfg, out=tmp_path / "run")
    history = folder.read_metrics(run)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_error"] < 0.5  # 10 classes: chance is 0.9
    model = vaekit.load(run)
    assert type(model) is kind
    assert model.sample(3, y=torch.tensor(2)).shape == (3, 1, 8, 8)
    x = torch.rand(5, 1, 8, 8)
    torch.testing.assert_close(vaekit.load(run).classify(x), model.classify(x))


def test_estimator_with_the_auxiliary_model():
    rng = np.random.default_rng(0)
    centres = np.array([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]])
    labels = rng.integers(0, 3, 600)
    X = centres[labels] + 0.5 * rng.standard_normal((600, 3))
    y = np.full(600, -1)
    y[:15] = labels[:15]
    for name, kind in (("adgm", ADGM), ("sdgm", SDGM)):
        clf = VAEClassifier(m1=False, model=name, aux_dim=2, latent_dim=2, hidden=(16,), epochs=20,
                            random_state=0).fit(X, y)
        assert type(clf.model_) is kind
        assert clf.predict_proba(X[:4]).shape == (4, 3)
        assert clf.score(X, labels) > 0.9
    with pytest.raises(vaekit.ConfigError, match="m2, adgm or sdgm"):
        VAEClassifier(model="m3").fit(X, y)
