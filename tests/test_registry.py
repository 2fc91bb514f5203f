"""One save/load protocol for every model kind: config.json names the class (a registry name) and
its spec, model.safetensors holds the weights; unknown names are refused before anything is imported."""

from __future__ import annotations

import json
import sys

import pytest
import torch

import vaekit
from vaekit.config import Config, ModelConfig
from vaekit.core import registry
from vaekit.core.distributions import Gaussian
from vaekit.core.models import VAE, BaseVAE
from vaekit.core.networks import mlp
from vaekit.errors import RunError
from vaekit.runs import folder


def save_run(run_dir, model, config=None):
    """A run folder of ``model`` as a job writes it (config.json, then the weights)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    folder.save_config(run_dir, config or Config(), model, {"name": "test"})
    folder.save_weights(run_dir, model)
    return run_dir


VAE_VARIANTS = {
    "mlp-bernoulli": (dict(likelihood="bernoulli", hidden=(16,), latent_dim=3), (1, 8, 8), 0),
    "conv-learned-scale": (dict(arch="conv", likelihood="gaussian-learned", channels=(4, 8), latent_dim=2), (1, 8, 8), 0),
    "cvae": (dict(model="cvae", likelihood="gaussian", hidden=(16, 8), latent_dim=2), (5,), 3),
}


@pytest.mark.parametrize("variant", sorted(VAE_VARIANTS))
def test_vae_round_trip_through_the_registry(tmp_path, variant):
    settings, shape, classes = VAE_VARIANTS[variant]
    cfg = Config(model=ModelConfig(**settings))
    torch.manual_seed(0)
    model = VAE(cfg.model, shape, classes)
    with torch.no_grad():  # weights unlike any fresh initialisation, so a rebuilt-but-unloaded model differs
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    run = save_run(tmp_path / "run", model, cfg)
    doc = json.loads((run / "config.json").read_text())
    assert doc["class"] == "VAE" and doc["spec"] == {"data_shape": list(shape), "num_classes": classes}

    loaded = vaekit.load(run)
    assert type(loaded) is VAE and not loaded.training and next(loaded.parameters()).device.type == "cpu"
    model.eval()
    x = torch.rand(4, *shape)
    y = torch.arange(4) % 3 if classes else None
    z = torch.randn(4, settings["latent_dim"])
    assert torch.equal(loaded.encode(x, y).mean, model.encode(x, y).mean)
    assert torch.equal(loaded.decode(z, y).mean, model.decode(z, y).mean)
    assert torch.equal(loaded.decode(z, y).log_prob(x), model.decode(z, y).log_prob(x))


def tabular_model():
    from vaekit.apps.tabular.model import TabularModel

    torch.manual_seed(0)
    layout = {"n_cont": 2, "missing_of": [1], "cat_sizes": [3, 2]}
    model = TabularModel(layout, latent_dim=3, hidden=(8,), latent_components=2, target_block=(3, 3),
                         head_levels=[[0, 2, -1, 2]])
    with torch.no_grad():  # as after a fit: buffers away from their initial values
        model.head_edges.copy_(torch.tensor([-0.5, 0.5]))
        model.mix_logits.copy_(torch.tensor([0.3, -0.3]))
        model.mix_means.copy_(torch.randn(2, 3))
        model.mix_cond.copy_(torch.randn(5, 2))
    return model.eval()


def test_tabular_model_round_trip_through_the_registry(tmp_path):
    from vaekit.apps.tabular.model import TabularModel

    model = tabular_model()
    run = save_run(tmp_path / "run", model)
    assert json.loads((run / "config.json").read_text())["class"] == "TabularModel"
    loaded = vaekit.load(run)
    assert type(loaded) is TabularModel and not loaded.training
    assert loaded.spec() == model.spec()
    x = torch.tensor([[0.2, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0], [1.5, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0]])
    z = torch.randn(2, 3)
    assert torch.equal(loaded.decode(z).log_prob(x), model.decode(z).log_prob(x))
    draws = [m.sample(50, generator=torch.Generator().manual_seed(1)) for m in (model, loaded)]
    assert torch.equal(*draws)


@pytest.mark.parametrize("name", ["vaekit_probe_module:Thing", "vaekit_probe_module", "os:system", "vae", 42, None])
def test_unknown_class_is_refused_before_anything_is_imported(tmp_path, monkeypatch, name):
    # a module that would leave a mark if imported, importable from sys.path
    probe = tmp_path / "vaekit_probe_module.py"
    marker = tmp_path / "imported"
    probe.write_text(f"open({str(marker)!r}, 'w').close()\nclass Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    imported = []
    monkeypatch.setattr(registry.importlib, "import_module", lambda *a, **k: imported.append(a))

    model = VAE(ModelConfig(likelihood="bernoulli", hidden=(4,), latent_dim=2), (3,))
    run = save_run(tmp_path / "run", model)
    doc = json.loads((run / "config.json").read_text())
    doc["class"] = name
    (run / "config.json").write_text(json.dumps(doc))
    with pytest.raises(RunError, match="does not know") as info:
        folder.load(run)  # not vaekit.load: the package face imports through the patched importlib
    assert "\n" not in str(info.value)
    assert not imported and not marker.exists() and "vaekit_probe_module" not in sys.modules


def test_a_config_without_class_is_a_vae(tmp_path):
    """Run folders written by vaekit train before config.json named a class still load."""
    cfg = Config(model=ModelConfig(likelihood="bernoulli", hidden=(4,), latent_dim=2))
    model = VAE(cfg.model, (3,))
    run = save_run(tmp_path / "run", model, cfg)
    doc = json.loads((run / "config.json").read_text())
    del doc["class"]
    (run / "config.json").write_text(json.dumps(doc))
    x = torch.rand(2, 3)
    assert torch.equal(vaekit.load(run).encode(x).mean, model.eval().encode(x).mean)


@pytest.mark.parametrize("damage, expected", [
    (lambda spec: spec.pop("layout"), "KeyError"),
    (lambda spec: spec.update(latent_dim=-3), "RuntimeError"),
    (lambda spec: spec.update(hidden="wide"), "TypeError"),
])
def test_a_spec_that_cannot_rebuild_its_class_is_a_run_error(tmp_path, damage, expected):
    run = save_run(tmp_path / "run", tabular_model())
    doc = json.loads((run / "config.json").read_text())
    damage(doc["spec"])
    (run / "config.json").write_text(json.dumps(doc))
    with pytest.raises(RunError, match=f"cannot rebuild a TabularModel: {expected}") as info:
        vaekit.load(run)
    assert "\n" not in str(info.value)


def test_every_registered_kind_resolves_to_a_model_with_spec_and_from_spec():
    for kind in registry.MODELS:
        cls = registry.model_class(kind)
        assert issubclass(cls, BaseVAE) and cls.from_spec.__func__ is not BaseVAE.from_spec.__func__
        assert cls.spec is not BaseVAE.spec


def test_an_unregistered_class_cannot_be_saved(tmp_path):
    class Unlisted(VAE):
        pass

    model = Unlisted(ModelConfig(likelihood="bernoulli", hidden=(4,), latent_dim=2), (3,))
    with pytest.raises(RunError, match="not a registered model kind"):
        folder.save_config(tmp_path, Config(), model, {})
    assert not (tmp_path / "config.json").exists()


class TinyAutoencoder(BaseVAE):
    """A model kind defined outside vaekit: a class with spec/from_spec, and one registry line."""

    def __init__(self, width: int, latent_dim: int):
        super().__init__()
        self.data_shape, self.latent_dim = (width,), latent_dim
        self.encoder, self.decoder = mlp([width, 2 * latent_dim]), mlp([latent_dim, width])

    def encode(self, x, y=None):
        mean, logvar = self.encoder(x).chunk(2, dim=-1)
        return vaekit.DiagonalGaussian(mean, logvar)

    def decode(self, z, y=None):
        return Gaussian(self.decoder(z), 0.1)

    def spec(self):
        return {"width": self.data_shape[0], "latent_dim": self.latent_dim}

    @classmethod
    def from_spec(cls, spec, config=None):
        return cls(spec["width"], spec["latent_dim"])


def test_a_new_model_kind_needs_only_its_class_and_a_registry_line(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.MODELS, "TinyAutoencoder", f"{__name__}:TinyAutoencoder")
    torch.manual_seed(0)
    model = TinyAutoencoder(5, 2).eval()
    run = save_run(tmp_path / "run", model)
    loaded = vaekit.load(run)
    x = torch.randn(3, 5)
    assert type(loaded).__name__ == "TinyAutoencoder"
    assert torch.equal(loaded(x, generator=torch.Generator().manual_seed(0)).likelihood.mean,
                       model(x, generator=torch.Generator().manual_seed(0)).likelihood.mean)
