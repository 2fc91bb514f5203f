"""The training loop as a user meets it: early stopping on by default with the best epoch's
weights kept, huge models refused up front, small tables trained with a capped batch, a line per
epoch without the bar, runs without a validation split, any model kind, one step for every path."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import small_config
from safetensors.torch import load_file
from torch import nn

import vaekit
from vaekit.core.distributions import DiagonalGaussian, Gaussian
from vaekit.core.models import VAEOutput
from vaekit.core.objectives import kl_term
from vaekit.data import load_dataset
from vaekit.errors import ConfigError
from vaekit.runs import folder
from vaekit.training import loop
from vaekit.training.loop import train
from vaekit.training.setup import resolve_config

WALL_TIME = ("epoch_time_s", "samples_per_s")


def _weights(run):
    return load_file(str(run / "model.safetensors"))


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _strip(records):
    return [{k: v for k, v in r.items() if k not in WALL_TIME} for r in records]


# lr=0.05 overfits digits' small network within a few epochs, so the best epoch comes before the last
OVERFIT = dict(lr=0.05, early_stopping=3)


def test_early_stopping_is_on_by_default():
    assert vaekit.Config().training.early_stopping > 0


def test_early_stopping_keeps_the_best_epochs_weights(tmp_path):
    run = vaekit.train_run(small_config(epochs=40, **OVERFIT), out=tmp_path / "stopped")
    records = folder.read_metrics(run)
    last, best = records[-1], min(records, key=lambda r: r["val_loss"])
    assert last["epoch"] < 40  # it stopped by itself
    assert last["best_epoch"] == best["epoch"] < last["epoch"]  # the metrics say which epoch was best
    assert [r["epoch"] for r in records if r["best_epoch"] == r["epoch"]][-1] == best["epoch"]
    assert last["epoch"] - best["epoch"] == 3  # the patience
    # model.safetensors holds the best epoch's weights: those of the same run stopped there
    there = vaekit.train_run(small_config(epochs=best["epoch"], lr=0.05, early_stopping=0), out=tmp_path / "there")
    assert _same(_weights(run), _weights(there))
    # and the model the pictures were drawn from is that one (the loop leaves it loaded)
    state = folder.load_resume(run)
    assert int(state["epoch"]) == last["epoch"] and int(state["best_epoch"]) == best["epoch"]
    assert not _same(state["model"], _weights(run))  # resume.pt keeps the current state


def test_train_returns_the_model_holding_the_best_weights():
    cfg = small_config(epochs=40, **OVERFIT)
    data = load_dataset(cfg.data)
    resolve_config(cfg, data)
    torch.manual_seed(0)
    model = vaekit.VAE(cfg.model, data.shape)
    history = train(model, data, cfg)
    best = history[-1]["best_epoch"]
    assert best < history[-1]["epoch"]
    cfg.training.epochs, cfg.training.early_stopping = best, 0
    torch.manual_seed(0)
    reference = vaekit.VAE(cfg.model, data.shape)
    train(reference, data, cfg)
    assert _same(model.state_dict(), reference.state_dict())


def test_resume_with_early_stopping_ends_bit_identical(tmp_path):
    full = vaekit.train_run(small_config(epochs=40, **OVERFIT), out=tmp_path / "full")
    stop = folder.read_metrics(full)[-1]
    part = vaekit.train_run(small_config(epochs=stop["best_epoch"] + 1, **OVERFIT), out=tmp_path / "part")
    vaekit.resume_run(part, epochs=40)
    assert _same(_weights(full), _weights(part))
    assert _strip(folder.read_metrics(full)) == _strip(folder.read_metrics(part))


def test_a_model_too_large_for_memory_is_refused_before_allocating(tmp_path):
    cfg = small_config(epochs=1)
    cfg.model.latent_dim = 100_000_000  # 32 billion weights in the encoder's last layer alone
    with pytest.raises(ConfigError, match=r"parameters.*needs about .* (GB|TB).*latent_dim") as info:
        vaekit.train_run(cfg, out=tmp_path / "huge")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "huge").exists()


def _wine_csv(tmp_path):
    datasets = pytest.importorskip("sklearn.datasets")
    path = tmp_path / "wine.csv"
    datasets.load_wine(as_frame=True).frame.to_csv(path, index=False)
    return path


def test_a_small_table_trains_with_the_batch_capped_at_its_split(tmp_path, capsys):
    cfg = small_config(epochs=1, batch_size=128)
    cfg.data.name = str(_wine_csv(tmp_path))
    run = vaekit.train_run(cfg, out=tmp_path / "wine")
    err = capsys.readouterr().err
    rows = json.loads((run / "config.json").read_text())["data"]["sizes"]["train"]
    assert rows < 128
    assert json.loads((run / "config.json").read_text())["config"]["training"]["batch_size"] == rows
    warnings = [line for line in err.splitlines() if "batch_size=128" in line]
    assert len(warnings) == 1 and f"using batch_size={rows}" in warnings[0]
    assert len(folder.read_metrics(run)) == 1


def test_without_the_bar_a_line_per_epoch_is_printed(tmp_path, capsys):
    vaekit.train_run(small_config(epochs=3, progress=False), out=tmp_path / "r")
    out = capsys.readouterr().out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("epoch ")] == ["1", "2", "3"]


def test_a_long_run_prints_about_twenty_lines(capsys):
    cfg = small_config(epochs=60, batch_size=1000, early_stopping=0, progress=False)
    data = load_dataset(cfg.data)
    resolve_config(cfg, data)
    train(vaekit.VAE(cfg.model, data.shape), data, cfg)
    epochs = [int(line.split()[1]) for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert epochs[0] == 1 and epochs[-1] == 60 and 15 <= len(epochs) <= 22


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path, capsys):
    vaekit.train_run(small_config(epochs=2, progress=True), out=tmp_path / "r")  # pytest's stderr is no tty
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "batch/s" not in captured.err
    assert sum(line.startswith("epoch ") for line in captured.out.splitlines()) == 2


def test_verbose_false_is_silent(capsys):
    cfg = small_config(epochs=2, verbose=False)
    data = load_dataset(cfg.data)
    resolve_config(cfg, data)
    train(vaekit.VAE(cfg.model, data.shape), data, cfg)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_no_validation_split_trains_and_says_so_once(tmp_path, capsys):
    cfg = small_config(epochs=3)
    cfg.data.val_fraction = 0.0
    run = vaekit.train_run(cfg, out=tmp_path / "r")
    err = capsys.readouterr().err
    assert sum("no validation split" in line for line in err.splitlines()) == 1
    records = folder.read_metrics(run)
    assert len(records) == 3 and not any(k.startswith("val_") for r in records for k in r)
    assert [r["best_epoch"] for r in records] == [1, 2, 3]  # the last epoch's weights are kept
    assert _same(_weights(run), folder.load_resume(run)["model"])


class TinyAutoencoder(nn.Module):
    """Not a vaekit.VAE: a model kind of its own, with just the duck-typed interface the loop uses."""

    def __init__(self, data_shape, latent_dim: int = 2):
        super().__init__()
        self.latent_dim, self.data_shape = latent_dim, tuple(data_shape)
        size = int(torch.tensor(data_shape).prod())
        self.enc, self.dec = nn.Linear(size, 2 * latent_dim), nn.Linear(latent_dim, size)

    @property
    def prior(self):
        return DiagonalGaussian.standard(self.latent_dim)

    def encode(self, x, y=None):
        mean, logvar = self.enc(x.flatten(1)).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def decode(self, z, y=None):
        return Gaussian(self.dec(z).reshape(*z.shape[:-1], *self.data_shape), 0.5, len(self.data_shape))

    def forward(self, x, y=None, generator=None):
        q = self.encode(x, y)
        z = q.rsample(generator=generator)
        return VAEOutput(q, z, self.decode(z, y))


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_another_model_kind_trains_through_the_same_loop(objective):
    cfg = small_config(epochs=3, objective=objective, num_samples=2, precision="bf16")
    data = load_dataset(cfg.data)
    resolve_config(cfg, data)
    model = TinyAutoencoder(data.shape)
    history = train(model, data, cfg)
    assert len(history) == 3 and history[-1]["train_loss"] < history[0]["train_loss"]


@pytest.mark.parametrize("option", [{}, {"objective": "iwae", "num_samples": 2}, {"trim": 0.1, "trim_start": 0.0}])
def test_every_path_goes_through_the_one_step(monkeypatch, option):
    calls = []
    real = loop.step
    monkeypatch.setattr(loop, "step", lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg = small_config(epochs=2, **option)
    data = load_dataset(cfg.data)
    resolve_config(cfg, data)
    history = train(vaekit.VAE(cfg.model, data.shape), data, cfg)
    assert len(calls) == history[-1]["step"] == 2 * -(-data.train.shape[0] // cfg.training.batch_size)


def test_resolve_config_runs_once_per_train_run(tmp_path, monkeypatch):
    import vaekit.runs.jobs as jobs
    import vaekit.training.setup as setup

    calls = []
    real = setup.resolve_config
    counting = lambda *a, **k: calls.append(1) or real(*a, **k)  # noqa: E731
    monkeypatch.setattr(jobs, "resolve_config", counting)
    monkeypatch.setattr(loop, "resolve_config", counting)
    vaekit.train_run(small_config(epochs=1), out=tmp_path / "r")
    assert len(calls) == 1


def test_num_samples_is_the_config_name_and_old_files_still_read():
    with pytest.raises(ConfigError, match="training.num_samples must be >= 1"):
        small_config(num_samples=0).validate()
    old = vaekit.Config.from_dict({"training": {"objective": "iwae", "iw_samples": 5}})
    assert old.training.num_samples == 5


def test_free_bits_of_a_slice_decided_by_the_global_mean():
    """kl_term with the global mean of a one-slice batch is plain free bits, in value and gradient;
    with another global mean it penalises the dimensions that mean puts above the floor."""
    kl = torch.tensor([[0.1, 2.0, 0.5], [0.3, 1.0, 0.7]], requires_grad=True)
    plain, _ = kl_term(kl, 0.5)
    (grad_plain,) = torch.autograd.grad(plain, kl)
    sliced, _ = kl_term(kl, 0.5, global_mean=kl.mean(0).detach())
    (grad_sliced,) = torch.autograd.grad(sliced, kl)
    assert torch.equal(plain, sliced) and torch.equal(grad_plain, grad_sliced)
    other, _ = kl_term(kl, 0.5, global_mean=torch.tensor([1.0, 0.0, 1.0]))
    assert other.item() == pytest.approx(0.2 + 0.5 + 0.6)
