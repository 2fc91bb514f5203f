"""training.compile=auto: the choice (on, off, fallback) without compiling anything."""

import pytest
import torch
from conftest import small_config

import vaekit
from vaekit.config import Config
from vaekit.data import load_dataset
from vaekit.errors import ConfigError
from vaekit.training import compiling
from vaekit.training.loop import train
from vaekit.training.setup import resolve_config


def _model(**training):
    cfg = small_config(epochs=1, **training)
    data = load_dataset(cfg.data)
    resolve_config(cfg, data)
    torch.manual_seed(0)
    return vaekit.VAE(cfg.model, data.shape), cfg, data


def test_auto_is_the_default_and_parses():
    assert Config().training.compile == "auto"
    cfg = Config()
    for text, value in (("true", True), ("off", False), ("auto", "auto")):
        vaekit.config.apply_overrides(cfg, [f"training.compile={text}"])
        assert cfg.training.compile == value
    with pytest.raises(ConfigError, match="true, false, auto"):
        vaekit.config.apply_overrides(cfg, ["training.compile=maybe"])


def test_training_flops_count_the_mlp_products():
    """The 784-400-20 MLP: 651,200 multiply-adds forward (784*400 + 400*40 + 20*400 + 400*784),
    2 FLOPs each, and three passes' worth for forward plus backward."""
    cfg = Config()
    cfg.model.likelihood, cfg.model.hidden, cfg.model.latent_dim = "bernoulli", (400,), 20
    model = vaekit.VAE(cfg.model, (1, 28, 28))
    per_example, per_step = compiling.training_flops(model, torch.rand(3, 1, 28, 28))
    assert per_example == pytest.approx(3 * 2 * 651_200, rel=0.01)
    assert per_step == 0


def test_training_flops_count_a_vampprior_s_pseudo_inputs_once_a_step():
    """The VampPrior encodes its K pseudo-inputs once a step: per step, K times the encoder's
    products (784*400 + 400*40 multiply-adds each); per example, what the standard prior costs."""
    cfg = Config()
    cfg.model.likelihood, cfg.model.hidden, cfg.model.latent_dim = "bernoulli", (400,), 20
    standard = compiling.training_flops(vaekit.VAE(cfg.model, (1, 28, 28)), torch.rand(3, 1, 28, 28))
    cfg.model.prior, cfg.model.pseudo_inputs = "vamp", 50
    per_example, per_step = compiling.training_flops(vaekit.VAE(cfg.model, (1, 28, 28)), torch.rand(3, 1, 28, 28))
    encoder = 2 * (784 * 400 + 400 * 40)
    assert per_step == pytest.approx(3 * 50 * encoder, rel=0.02)
    assert per_example == pytest.approx(standard[0], rel=0.02)


def _steps_for(model, cfg, x, seconds: float) -> int:
    """Steps whose estimated eager time on the CPU is about ``seconds``."""
    per_example, fixed = compiling.training_flops(model, x)
    per_step = ((per_example * cfg.training.batch_size + fixed) / compiling.EAGER_FLOPS["cpu"]
                + compiling.STEP_OVERHEAD_S["cpu"])
    return int(seconds / per_step)


def test_a_cpu_compiles_a_long_run_only_and_float32_needs_a_longer_one(monkeypatch):
    monkeypatch.setattr(compiling, "has_cpp_compiler", lambda: True)
    model, cfg, _ = _model()
    x = torch.rand(1, 1, 8, 8)
    repay = {amp: compiling.COLD_COMPILE_S / compiling.GAIN[key]
             for amp, key in ((torch.bfloat16, "bf16"), (None, "float32-cpu"))}
    assert repay[None] > repay[torch.bfloat16]  # a smaller gain takes a longer run to repay
    for amp, seconds in repay.items():
        on, why = compiling.auto_compile(model, cfg.training, amp, _steps_for(model, cfg, x, 1.1 * seconds), x)
        assert on and "long run" in why, (amp, why)
        on, why = compiling.auto_compile(model, cfg.training, amp, _steps_for(model, cfg, x, 0.9 * seconds), x)
        assert not on and "short run" in why, (amp, why)
    monkeypatch.setattr(compiling, "has_cpp_compiler", lambda: False)
    on, why = compiling.auto_compile(model, cfg.training, torch.bfloat16, _steps_for(model, cfg, x, 1e6), x)
    assert not on and "C++" in why


def test_the_default_runs_stay_eager_on_a_cpu(monkeypatch):
    """digits' and MNIST's default runs are too short to repay a compilation, whatever the precision."""
    monkeypatch.setattr(compiling, "has_cpp_compiler", lambda: True)
    for name, rows in (("digits", 1294), ("mnist", 54000)):
        cfg = Config()
        cfg.data.name = name
        shape = (1, 8, 8) if name == "digits" else (1, 28, 28)
        cfg.model.likelihood = "bernoulli"
        cfg.training.epochs = 398 if name == "digits" else 10
        model = vaekit.VAE(cfg.model, shape)
        steps = cfg.training.epochs * -(-rows // cfg.training.batch_size)
        for amp in (None, torch.bfloat16):
            on, why = compiling.auto_compile(model, cfg.training, amp, steps, torch.rand(1, *shape))
            assert not on and "short run" in why, (name, amp, why)


@pytest.mark.parametrize("option", [{"objective": "iwae", "num_samples": 2}, {"trim": 0.1}])
def test_paths_compile_does_not_cover_stay_eager(option):
    model, cfg, _ = _model(**option)
    assert not compiling.supports_compile(model, cfg.training)


def test_the_autoencoder_resolves_auto_to_off():
    cfg = small_config(epochs=1)
    cfg.model.model = "ae"
    resolve_config(cfg, load_dataset(cfg.data))
    assert cfg.training.compile is False


def _forced_run(monkeypatch, capsys, compile_fn):
    """Train one epoch with auto's choice forced on and torch.compile replaced by ``compile_fn``."""
    monkeypatch.setattr("vaekit.training.step.auto_compile", lambda *a, **k: (True, "forced"))
    monkeypatch.setattr("vaekit.training.step.require_cpp_compiler", lambda: None)
    monkeypatch.setattr(torch, "compile", compile_fn)
    model, cfg, data = _model(seed=5)
    history = train(model, data, cfg)
    return history, model, capsys.readouterr().err


def _eager_run():
    model, cfg, data = _model(seed=5, compile=False)
    return train(model, data, cfg), model


def test_a_failing_compile_falls_back_to_the_eager_run_with_one_line(monkeypatch, capsys):
    def broken(fn):
        def call(*args):
            raise RuntimeError("inductor could not build the kernel\nlong traceback")
        return call

    history, model, err = _forced_run(monkeypatch, capsys, broken)
    eager_history, eager_model = _eager_run()
    assert err.count("compiling failed (inductor could not build the kernel)") == 1
    assert history[0]["train_loss"] == eager_history[0]["train_loss"]  # the generator was rewound
    for (k, v), w in zip(model.state_dict().items(), eager_model.state_dict().values()):
        assert torch.equal(v, w), k


def test_the_compiled_path_reports_its_time_and_follows_the_eager_run(monkeypatch, capsys):
    history, model, err = _forced_run(monkeypatch, capsys, lambda fn: fn)  # "compiled" = the same function
    eager_history, _ = _eager_run()
    assert "compiling the training step (forced)" in err and "compiled the training step in" in err
    assert history[0]["train_loss"] == pytest.approx(eager_history[0]["train_loss"], rel=1e-6)
    assert history[0]["val_loss"] == pytest.approx(eager_history[0]["val_loss"], rel=1e-6)
