import pytest
import torch

from vaekit import VAE, DataError, DiagonalGaussian, ModelConfig
from vaekit.errors import ConfigError


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 7, 9)])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian-learned"])
def test_shapes_round_trip(arch, shape, likelihood):
    model = VAE(ModelConfig(arch=arch, hidden=(16,), channels=(4, 8), latent_dim=5, likelihood=likelihood), shape)
    x = torch.rand(3, *shape)
    q = model.encode(x)
    assert isinstance(q, DiagonalGaussian) and q.mean.shape == (3, 5) and q.stddev.shape == (3, 5)
    lik = model.decode(q.rsample())
    assert lik.mean.shape == (3, *shape)
    assert lik.log_prob(x).shape == (3,)
    out = model(x)
    assert out.z.shape == (3, 5)
    assert model.sample(4).shape == (4, *shape)
    assert model.prior.kl().item() == 0.0
    # leading sample dimensions pass through decode
    assert model.decode(q.rsample(2)).log_prob(x).shape == (2, 3)


def test_mlp_on_tables():
    model = VAE(ModelConfig(hidden=(8, 8), latent_dim=2, likelihood="gaussian-learned"), (6,))
    assert model.decode(model.encode(torch.randn(4, 6)).mean).mean.shape == (4, 6)


def test_learned_scale_respects_floor():
    model = VAE(ModelConfig(hidden=(8,), latent_dim=2, likelihood="gaussian-learned", scale_floor=0.05), (4,))
    with torch.no_grad():
        model.raw_scale.fill_(-1e4)
    assert torch.allclose(model.decode(torch.zeros(1, 2)).scale, torch.full((1, 4), 0.05))


def test_conditional_model_needs_and_uses_labels():
    model = VAE(ModelConfig(model="cvae", hidden=(16,), latent_dim=2, likelihood="bernoulli"), (1, 8, 8), num_classes=3)
    x = torch.rand(4, 1, 8, 8)
    with pytest.raises(DataError):
        model.encode(x)
    y = torch.tensor([0, 1, 2, 0])
    z = model.encode(x, y).mean
    assert not torch.equal(model.decode(z, torch.zeros(4)).mean, model.decode(z, torch.ones(4)).mean)
    assert model.sample(5, y=torch.tensor(2)).shape == (5, 1, 8, 8)
    with pytest.raises(DataError):
        model.encode(x, torch.tensor([0, 1, 2, 3]))


def test_wrong_shapes_and_bad_configs_are_clear_errors():
    model = VAE(ModelConfig(hidden=(8,), latent_dim=2, likelihood="bernoulli"), (1, 8, 8))
    with pytest.raises(DataError, match="expects examples of shape"):
        model.encode(torch.rand(2, 1, 28, 28))
    with pytest.raises(ConfigError, match="arch=conv"):
        VAE(ModelConfig(arch="conv", likelihood="bernoulli"), (10,))
    with pytest.raises(ConfigError, match="too many"):
        VAE(ModelConfig(arch="conv", channels=(4, 4, 4, 4), likelihood="bernoulli"), (1, 8, 8))
    with pytest.raises(ConfigError, match="auto"):
        VAE(ModelConfig(), (1, 8, 8))
