import json
import math
import shutil

import pytest
import torch
from conftest import crash_after, small_config
from safetensors.torch import load_file

import vaekit
from vaekit.runs import folder as checkpoint
from vaekit.data import load_dataset
from vaekit.errors import ConfigError
from vaekit.training.loop import train
from vaekit.training.setup import resolve_config


def _weights(run_dir):
    return load_file(str(run_dir / "model.safetensors"))


def test_loss_falls_on_digits(tmp_path):
    run = vaekit.train_run(small_config(epochs=5), out=tmp_path / "r")
    history = checkpoint.read_metrics(run)
    assert len(history) == 5
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 5
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    for key in ("train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl", "epoch_time_s", "samples_per_s"):
        assert key in history[0]


def test_run_folder_is_self_describing(digits_run):
    names = {p.name for p in digits_run.iterdir()}
    assert {"config.json", "model.safetensors", "metrics.jsonl", "resume.pt", "samples.png",
            "reconstructions.png", "interpolation.png", "curves.png", "kl_per_dim.png"} <= names
    doc = json.loads((digits_run / "config.json").read_text())
    assert doc["spec"]["data_shape"] == [1, 8, 8]
    assert doc["config"]["model"]["likelihood"] != "auto"
    assert {"python", "torch", "vaekit", "device"} <= doc["environment"].keys()


def test_save_load_round_trip_gives_identical_outputs(digits_run):
    model = vaekit.load(digits_run)
    assert not model.training and next(model.parameters()).device.type == "cpu"
    again = vaekit.load(digits_run)
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(model.encode(x).mean, again.encode(x).mean)
    assert torch.equal(model.decode(model.encode(x).mean).mean, again.decode(again.encode(x).mean).mean)
    saved = _weights(digits_run)
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key])


def test_same_seed_gives_identical_weights(tmp_path):
    a = vaekit.train_run(small_config(epochs=2, seed=7), out=tmp_path / "a")
    b = vaekit.train_run(small_config(epochs=2, seed=7), out=tmp_path / "b")
    c = vaekit.train_run(small_config(epochs=2, seed=8), out=tmp_path / "c")
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert checkpoint.read_metrics(a) == [
        {**r, "epoch_time_s": m["epoch_time_s"], "samples_per_s": m["samples_per_s"]}
        for r, m in zip(checkpoint.read_metrics(b), checkpoint.read_metrics(a))
    ]


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    full = vaekit.train_run(small_config(epochs=4, warmup_steps=30), out=tmp_path / "full")
    part = vaekit.train_run(small_config(epochs=2, warmup_steps=30), out=tmp_path / "part")
    vaekit.resume_run(part, epochs=4)
    wf, wp = _weights(full), _weights(part)
    assert all(torch.equal(wf[k], wp[k]) for k in wf)
    assert [r["train_loss"] for r in checkpoint.read_metrics(full)] == [r["train_loss"] for r in checkpoint.read_metrics(part)]


def test_resume_goes_on_in_the_precision_auto_chose_at_the_start(tmp_path, monkeypatch):
    """precision=auto decides once per run: resumed where auto would now choose otherwise (a newer
    vaekit, another CPU), a run goes on as it started and ends with the uninterrupted run's weights;
    without the record the resume file keeps, the same resume ends elsewhere."""
    from vaekit.training import runtime

    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)  # else a kept bf16 is dropped (slow here)
    monkeypatch.setattr(runtime, "autocast_dtype", lambda *args: torch.bfloat16)  # auto chose bf16 autocast
    full = vaekit.train_run(small_config(epochs=3), out=tmp_path / "full")
    part = vaekit.train_run(small_config(epochs=2), out=tmp_path / "part")
    bare = tmp_path / "bare"
    shutil.copytree(part, bare)
    state = torch.load(bare / "resume.pt", weights_only=True)
    assert state.pop("precision")["autocast"] == "bfloat16"
    torch.save(state, bare / "resume.pt")
    monkeypatch.setattr(runtime, "autocast_dtype", lambda *args: None)  # auto now says float32
    for run in (part, bare):
        vaekit.resume_run(run, epochs=3)
    wf, wp, wb = _weights(full), _weights(part), _weights(bare)
    assert all(torch.equal(wf[k], wp[k]) for k in wf)
    assert not all(torch.equal(wf[k], wb[k]) for k in wf)
    assert json.loads((part / "config.json").read_text())["environment"]["autocast"] == "bfloat16"
    assert json.loads((bare / "config.json").read_text())["environment"]["autocast"] == "none"


def test_only_auto_keeps_its_choice_and_only_on_the_same_kind_of_device(monkeypatch):
    from types import SimpleNamespace

    from vaekit.training import runtime

    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    cpu, auto = torch.device("cpu"), SimpleNamespace(precision="auto", matmul_precision="highest")
    kept = runtime.precision_record(torch.bfloat16, "high", cpu)
    assert kept == {"device": "cpu", "autocast": "bfloat16", "matmul": "high"}
    assert runtime.run_precision(auto, cpu, "table", None) == (None, "highest")  # a table: float32
    assert runtime.run_precision(auto, cpu, "table", None, kept) == (torch.bfloat16, "high")
    fp32 = SimpleNamespace(precision="fp32", matmul_precision="highest")
    assert runtime.run_precision(fp32, cpu, "table", None, kept) == (None, "highest")  # as asked
    on_gpu = runtime.precision_record(torch.bfloat16, "high", torch.device("cuda"))
    assert runtime.run_precision(auto, cpu, "table", None, on_gpu) == (None, "highest")
    gpu_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()  # without it, bf16 is not kept
    assert runtime.run_precision(auto, torch.device("cuda"), "table", None, on_gpu) == (
        (torch.bfloat16, "high") if gpu_bf16 else (None, "highest"))
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)  # bf16 would be emulated here
    assert runtime.run_precision(auto, cpu, "table", None, kept) == (None, "highest")


def test_cosine_learning_rate_falls_from_lr_to_zero():
    from vaekit.training.schedule import lr_at

    assert lr_at(0, 1e-3, "cosine", 100) == pytest.approx(1e-3)
    assert lr_at(50, 1e-3, "cosine", 100) == pytest.approx(5e-4)
    assert lr_at(100, 1e-3, "cosine", 100) == pytest.approx(0.0, abs=1e-15)
    rates = [lr_at(s, 1e-3, "cosine", 100) for s in range(101)]
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert lr_at(37, 1e-3, "constant", 100) == 1e-3
    with pytest.raises(ValueError, match="schedule"):
        lr_at(0, 1e-3, "linear", 100)


def test_cosine_schedule_is_recorded_and_a_crashed_run_resumes_on_the_same_curve(tmp_path):
    from vaekit.training.schedule import lr_at

    cfg = dict(epochs=4, lr_schedule="cosine", early_stopping=0)
    full = vaekit.train_run(small_config(**cfg), out=tmp_path / "full")
    history = checkpoint.read_metrics(full)
    steps = history[-1]["step"]
    # each epoch records the rate of its last step: down the half cosine, to about 0 at the end
    assert [r["lr"] for r in history] == pytest.approx([lr_at(r["step"] - 1, 1e-3, "cosine", steps) for r in history])
    assert history[0]["lr"] > history[1]["lr"] > history[2]["lr"] > history[3]["lr"] >= 0
    assert history[-1]["lr"] < 1e-5
    with crash_after(50), pytest.raises(RuntimeError, match="simulated"):  # in epoch 3
        vaekit.train_run(small_config(**cfg), out=tmp_path / "run")
    vaekit.resume_run(tmp_path / "run")
    want, got = _weights(full), _weights(tmp_path / "run")
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert [r["lr"] for r in checkpoint.read_metrics(tmp_path / "run")] == [r["lr"] for r in history]


def test_cyclical_annealing_sets_the_recorded_kl_weight(tmp_path):
    run = vaekit.train_run(small_config(epochs=4, kl_cycles=2, beta=1.0, early_stopping=0), out=tmp_path / "r")
    steps = checkpoint.read_metrics(run)[0]["step"]  # steps per epoch: 2 epochs per cycle
    assert [r["beta"] for r in checkpoint.read_metrics(run)] == pytest.approx(
        [vaekit.beta_at(e * steps - 1, 1.0, 0, 2, 4 * steps) for e in range(1, 5)])
    assert [r["beta"] for r in checkpoint.read_metrics(run)][1] == 1.0  # a cycle's last step holds the full weight


@pytest.mark.parametrize("option", [{"beta": 4.0}, {"free_bits": 0.5}, {"objective": "iwae", "num_samples": 3},
                                    {"trim": 0.1, "trim_start": 0.0}])
def test_training_variants_run_and_record(tmp_path, option):
    cfg = small_config(epochs=1, **option)
    history = vaekit.train_run(cfg, out=tmp_path / "r")
    assert len(checkpoint.read_metrics(history)) == 1


@pytest.mark.parametrize("option", [{"compile": True}, {"objective": "iwae", "num_samples": 2}])
def test_trim_is_refused_where_the_loop_would_not_apply_it(option):
    cfg = small_config(epochs=1, trim=0.1, **option)
    with pytest.raises(ConfigError, match="training.trim"):
        resolve_config(cfg, load_dataset(cfg.data))


def test_compiled_training_follows_the_eager_run(tmp_path):
    """training.compile draws the same noise from the same generator, so it differs from the eager run
    only by float rounding (inductor's fused kernels sum in other orders)."""
    from vaekit.training.runtime import require_cpp_compiler

    try:
        require_cpp_compiler()
    except ConfigError:
        pytest.skip("no C++ compiler for torch.compile on this machine")
    runs = {}
    for compile in (False, True):
        cfg = small_config(epochs=2, compile=compile, seed=3)
        runs[compile] = vaekit.train_run(cfg, out=tmp_path / f"compile-{compile}")
    eager, compiled = (checkpoint.read_metrics(runs[c]) for c in (False, True))
    for e, c in zip(eager, compiled):
        assert c["train_loss"] == pytest.approx(e["train_loss"], rel=1e-5)
        assert c["val_loss"] == pytest.approx(e["val_loss"], rel=1e-5)
    we, wc = _weights(runs[False]), _weights(runs[True])
    assert we.keys() == wc.keys()
    for k in we:
        torch.testing.assert_close(wc[k], we[k], rtol=0, atol=1e-5)  # here 6e-8; another seed: 0.95


def test_compile_without_a_cpp_compiler_is_a_config_error(monkeypatch):
    inductor_config = pytest.importorskip("torch._inductor.config")
    monkeypatch.setattr(inductor_config.cpp, "cxx", (None, "/nonexistent/g++"))
    cfg = small_config(epochs=1, compile=True)
    data = load_dataset(cfg.data)
    model = vaekit.VAE(resolve_config(cfg, data).model, data.shape)
    with pytest.raises(ConfigError, match="C\\+\\+ compiler"):
        train(model, data, cfg)


@pytest.mark.parametrize("value", [-0.1, 1.0])
def test_trim_outside_its_range_is_a_config_error(value):
    with pytest.raises(ConfigError, match="training.trim"):
        small_config(epochs=1, trim=value).validate()


def test_beta_trades_rate_for_distortion(tmp_path):
    cfg = small_config(epochs=6)
    data = load_dataset(cfg.data)
    kls = []
    for beta in (0.25, 4.0):
        c = small_config(epochs=6, beta=beta)
        resolve_config(c, data)
        torch.manual_seed(0)
        model = vaekit.VAE(c.model, data.shape)
        kls.append(train(model, data, c)[-1]["val_kl"])
    assert kls[0] > kls[1]


def test_early_stopping_stops(tmp_path):
    cfg = small_config(epochs=50, early_stopping=1, lr=0.5)
    run = vaekit.train_run(cfg, out=tmp_path / "r")
    assert len(checkpoint.read_metrics(run)) < 50


def test_nan_loss_stops_with_a_diagnosis(tmp_path):
    cfg = small_config(epochs=2)
    data = load_dataset(cfg.data)
    data.train[0, 0, 0, 0] = float("nan")
    resolve_config(cfg, data)
    model = vaekit.VAE(cfg.model, data.shape)
    with pytest.raises(vaekit.TrainingError, match="step"):
        train(model, data, cfg)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_bf16_autocast_trains_close_to_fp32_and_keeps_float32_weights(tmp_path, arch):
    from vaekit.training.runtime import autocast_dtype

    assert autocast_dtype("fp32", torch.device("cpu")) is None
    assert autocast_dtype("bf16", torch.device("cpu")) is torch.bfloat16
    runs = {}
    for precision in ("fp32", "bf16"):
        cfg = small_config(epochs=4, precision=precision)
        cfg.model.arch, cfg.model.channels = arch, (8, 16)
        runs[precision] = checkpoint.read_metrics(vaekit.train_run(cfg, out=tmp_path / precision))
        assert all(w.dtype == torch.float32 for w in _weights(tmp_path / precision).values())
    fp32, bf16 = runs["fp32"], runs["bf16"]
    assert bf16[-1]["train_loss"] < bf16[0]["train_loss"] - 5  # it learns
    assert bf16[-1]["val_loss"] != fp32[-1]["val_loss"]  # the matmuls really ran in bf16
    assert abs(bf16[-1]["val_loss"] - fp32[-1]["val_loss"]) < 0.05 * abs(fp32[-1]["val_loss"])


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_for_images_on_a_cpu_with_native_bf16_only(tmp_path, monkeypatch, native):
    from vaekit.training import runtime as training

    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(training, "cpu_has_amx", lambda: False)  # AMX's exception: the test below
    cpu = torch.device("cpu")
    assert training.autocast_dtype("auto", cpu, "image") is (torch.bfloat16 if native else None)
    assert training.autocast_dtype("auto", cpu, "table") is None  # small networks: casts cost more than they save
    assert training.autocast_dtype("fp32", cpu, "image") is None
    # the run folder says what the networks trained under, and a bf16 run's matmuls really ran in bf16
    seen, decode = set(), vaekit.VAE.decode

    def recording_decode(self, z, y=None):
        if torch.is_grad_enabled():  # the training steps (validation runs in float32 under no_grad)
            seen.add(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
        return decode(self, z, y)

    monkeypatch.setattr(vaekit.VAE, "decode", recording_decode)
    vaekit.train_run(small_config(epochs=1), out=tmp_path / "run")
    assert checkpoint.read_run(tmp_path / "run")["environment"]["autocast"] == ("bfloat16" if native else "none")
    assert seen == {torch.bfloat16 if native else None}


@pytest.mark.parametrize("amx", [True, False])
def test_auto_precision_on_a_cpu_with_amx_is_float32_with_bf16_matmuls_for_dense_image_models(tmp_path, monkeypatch,
                                                                                             amx):
    from vaekit.training import runtime as training

    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(training, "cpu_has_amx", lambda: amx)
    cpu, t = torch.device("cpu"), small_config().training
    cfg = small_config()
    data = load_dataset(cfg.data)
    dense = vaekit.VAE(resolve_config(cfg, data).model, data.shape)
    cfg.model.arch, cfg.model.channels = "conv", (8, 16)
    conv = vaekit.VAE(cfg.model, data.shape)
    assert training.autocast_dtype("auto", cpu, "image", dense) is (None if amx else torch.bfloat16)
    assert training.matmul_precision_for(t, cpu, "image", dense) == ("medium" if amx else "highest")
    assert training.autocast_dtype("auto", cpu, "image", conv) is torch.bfloat16  # convolutions: autocast
    assert training.matmul_precision_for(t, cpu, "image", conv) == "highest"
    assert training.autocast_dtype("auto", cpu, "table", dense) is None
    assert training.matmul_precision_for(t, cpu, "table", dense) == "highest"
    for precision in ("fp32", "bf16"):  # set by hand, either is what it says
        t.precision = precision
        assert training.matmul_precision_for(t, cpu, "image", dense) == "highest"
        assert training.autocast_dtype(precision, cpu, "image", dense) is (torch.bfloat16 if precision == "bf16" else None)
    t.precision, t.matmul_precision = "auto", "high"  # a matmul precision set by hand is kept
    assert training.matmul_precision_for(t, cpu, "image", dense) == "high"
    # a run of the MLP: its steps ran as chosen (its validation in float32), and config.json says so
    seen, validated, decode = set(), set(), vaekit.VAE.decode

    def recording_decode(self, z, y=None):
        if torch.is_grad_enabled():
            seen.add((torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None,
                      torch.get_float32_matmul_precision()))
        else:
            validated.add(torch.get_float32_matmul_precision())
        return decode(self, z, y)

    monkeypatch.setattr(vaekit.VAE, "decode", recording_decode)
    vaekit.train_run(small_config(epochs=1), out=tmp_path / "run")
    env = checkpoint.read_run(tmp_path / "run")["environment"]
    assert (env["autocast"], env["matmul_precision"]) == (("none", "medium") if amx else ("bfloat16", "highest"))
    assert seen == ({(None, "medium")} if amx else {(torch.bfloat16, "highest")})
    assert validated == {"highest"}
    assert torch.get_float32_matmul_precision() == "highest"


@pytest.mark.parametrize("native", [True, False])
def test_compile_auto_weighs_bf16_matmuls_as_bf16_arithmetic(monkeypatch, native):
    """Runtime.matmul_dtype, what compile=auto weighs: bf16 under autocast, and in float32 with
    matmul_precision=medium where the CPU multiplies bf16 (elsewhere medium changes nothing on a CPU)."""
    from vaekit.training import runtime as training

    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: native)
    cfg = small_config()
    data = load_dataset(cfg.data)
    model = vaekit.VAE(resolve_config(cfg, data).model, data.shape)
    rt = training.runtime_for(model, cfg.training, "image")
    for amp, matmul, expected in ((None, "highest", None), (torch.bfloat16, "highest", torch.bfloat16),
                                  (None, "medium", torch.bfloat16 if native else None)):
        rt.amp, rt.matmul_precision = amp, matmul
        assert rt.matmul_dtype is expected


def test_the_loop_gives_compile_auto_the_dtype_its_matmuls_take(monkeypatch):
    from vaekit.training import runtime as training
    from vaekit.training import step as steps

    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(training, "cpu_has_amx", lambda: True)
    seen = []

    def choice(model, t, matmul_dtype, *args, **kwargs):
        seen.append(matmul_dtype)
        return False, "recorded by the test"

    monkeypatch.setattr(steps, "auto_compile", choice)
    cfg = small_config(epochs=1)
    data = load_dataset(cfg.data)
    train(vaekit.VAE(resolve_config(cfg, data).model, data.shape), data, cfg)
    assert seen == [torch.bfloat16]  # float32 weights with bf16 matmuls weigh as bf16 arithmetic, not as float32


def test_matmul_precision_holds_for_the_run_only_and_trains_close_to_full_float32(tmp_path):
    cfg = small_config(epochs=4, precision="fp32")  # auto may pick medium by itself (a CPU with AMX)
    data = load_dataset(cfg.data)
    resolve_config(cfg, data)
    losses = {}
    for name in ("highest", "medium"):
        cfg.training.matmul_precision = name
        torch.manual_seed(0)
        model = vaekit.VAE(cfg.model, data.shape)
        seen = set()
        model.register_forward_pre_hook(lambda *_: seen.add(torch.get_float32_matmul_precision()))
        history = train(model, data, cfg)
        assert seen == {name}  # every forward pass of the run (training and validation) ran under it
        assert torch.get_float32_matmul_precision() == "highest"  # and the process's setting is back
        assert history[-1]["train_loss"] < history[0]["train_loss"] - 5
        losses[name] = history[-1]["val_loss"]
    assert abs(losses["medium"] - losses["highest"]) < 0.05 * abs(losses["highest"])


def test_matmul_precision_is_restored_when_training_fails():
    cfg = small_config(epochs=2, matmul_precision="medium")
    data = load_dataset(cfg.data)
    data.train[0, 0, 0, 0] = float("nan")
    model = vaekit.VAE(resolve_config(cfg, data).model, data.shape)
    with pytest.raises(vaekit.TrainingError):
        train(model, data, cfg)
    assert torch.get_float32_matmul_precision() == "highest"


def test_bad_matmul_precision_is_a_config_error():
    from vaekit.config import apply_overrides

    with pytest.raises(ConfigError, match="matmul_precision"):
        apply_overrides(vaekit.Config(), ["training.matmul_precision=low"])


def test_distributions_hold_half_precision_parameters_as_float32():
    from vaekit import Bernoulli, DiagonalGaussian, Gaussian

    m = torch.randn(3, 4).bfloat16()
    q = DiagonalGaussian(m, m)
    assert q.mean.dtype == q.logvar.dtype == torch.float32
    assert q.kl().dtype == torch.float32 and torch.allclose(q.kl(), DiagonalGaussian(m.float(), m.float()).kl())
    assert Bernoulli(m.half()).logits.dtype == torch.float32
    assert Gaussian(m, 0.5).log_prob(m.float()).dtype == torch.float32


def test_clip_gradients_matches_torch_and_leaves_small_gradients_alone():
    from vaekit.training.runtime import clip_gradients

    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(30, 20)), torch.nn.Parameter(torch.randn(20)), torch.nn.Parameter(torch.randn(5))]
    for p in params:
        p.grad = torch.randn_like(p) * 10
    expected = [p.grad.clone() for p in params]
    reference = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for r, e in zip(reference, expected):
        r.grad = e.clone()
    total = torch.nn.utils.clip_grad_norm_(reference, 5.0)
    assert total > 5.0
    clip_gradients(params, 5.0)
    for p, r in zip(params, reference):
        torch.testing.assert_close(p.grad, r.grad)
    assert abs(math.sqrt(sum(float((p.grad ** 2).sum()) for p in params)) - 5.0) < 1e-4
    for p, e in zip(params, expected):  # the same under bf16 matmuls, whose dot products would round
        p.grad = e.clone()
    from vaekit.training.runtime import float32_matmul_precision
    with float32_matmul_precision("medium"):
        clip_gradients(params, 5.0)
        assert torch.get_float32_matmul_precision() == "medium"
    for p, r in zip(params, reference):
        torch.testing.assert_close(p.grad, r.grad)
    before = [p.grad.clone() for p in params]
    clip_gradients(params, 1000.0)  # below the bound: untouched
    for p, b in zip(params, before):
        assert torch.equal(p.grad, b)


def test_adam_moments_never_stay_subnormal():
    """An always-zero gradient's first moment decays into the subnormal range (slow on x86); the loop's
    sweep sets tiny moments to 0 and leaves the rest alone."""
    from vaekit.training.runtime import SUBNORMAL_SWEEP, clear_tiny_moments

    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([w], lr=1e-3)
    w.grad = torch.tensor([1.0, 0.0, 1e-3])
    opt.step()
    for _ in range(900):  # the first moment of entry 1 falls 0.9x per step: subnormal after ~800 steps
        w.grad = torch.tensor([1.0, 0.0, 0.0])
        opt.step()
    m = opt.state[w]["exp_avg"]
    assert 0 < m[2] < 1.18e-38  # subnormal without the sweep
    before = m.clone()
    clear_tiny_moments(opt)
    assert m[2] == 0 and m[1] == 0 and m[0] == before[0]
    assert SUBNORMAL_SWEEP < math.log(1e-30 / 1.18e-38) / -math.log(0.9)  # sweeps come before an entry gets there

    # in the training loop: no subnormal moments after ~900 steps on digits (without the sweep: 82)
    captured = []
    import vaekit.training.runtime as training

    make = training.make_optimizer
    training.make_optimizer = lambda *a: captured.append(make(*a)) or captured[-1]
    try:
        cfg = small_config(epochs=10, batch_size=16)
        data = load_dataset(cfg.data)
        resolve_config(cfg, data)
        train(vaekit.VAE(cfg.model, data.shape), data, cfg)
    finally:
        training.make_optimizer = make
    moments = [v for st in captured[0].state.values() for k, v in st.items() if k.startswith("exp_avg")]
    assert sum(int(((v != 0) & (v.abs() < 1.18e-38)).sum()) for v in moments) == 0
