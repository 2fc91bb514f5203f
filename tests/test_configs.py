"""The recipes shipped in configs/ load as the CLI reads them and build a model that trains."""

from pathlib import Path

import pytest
import torch

import vaekit
from vaekit.config import load_config_file
from vaekit.core.objectives import elbo_loss

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_the_recipes_are_there():
    assert {p.name for p in CONFIGS} >= {"mnist-nll.yaml", "mnist-nll-static.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_a_recipe_builds_its_model_and_takes_a_step(path):
    cfg = load_config_file(path)
    assert cfg.data.name in ("mnist", "binarized-mnist")
    torch.manual_seed(0)
    model = vaekit.VAE(cfg.model, (1, 28, 28))
    x = torch.bernoulli(torch.full((4, 1, 28, 28), 0.3))
    loss = elbo_loss(x, model(x))["loss"]
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_the_static_recipe_uses_the_vampprior():
    cfg = load_config_file(next(p for p in CONFIGS if p.name == "mnist-nll-static.yaml"))
    assert (cfg.model.prior, cfg.model.pseudo_inputs) == ("vamp", 500)
    assert vaekit.VAE(cfg.model, (1, 28, 28)).learned_prior() is not None
