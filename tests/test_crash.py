"""Crash safety: SIGKILL at random moments, Ctrl-C, and failures in the middle of training.

A run folder must never be corrupt: every file is written atomically, at most the epoch in
progress is lost, and resuming (``vaekit train --resume RUN``) ends with exactly the weights of
an uninterrupted run with the same seed (CPU).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import vaekit
from vaekit.runs import folder as checkpoint
from vaekit.training import step as training
from vaekit.errors import RunError, RunInterrupted

from conftest import crash_after, small_config

ARGS = ["--data", "digits", "--hidden", "32", "--latent-dim", "2", "--batch-size", "64", "--seed", "3", "--no-progress"]
EPOCHS = 30


def _start(*argv: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # same arithmetic in every process
    # A caller that ignores SIGINT (nohup, a shell's background job) passes that on, and Python then installs
    # no KeyboardInterrupt handler: give the run the default disposition, as a terminal's Ctrl-C meets it.
    return subprocess.Popen([sys.executable, "-m", "vaekit", "train", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=None if sys.platform == "win32" else _default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _metric_lines(run: Path) -> int:
    try:
        return (run / "metrics.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _wait(proc: subprocess.Popen, ready, timeout: float = 300.0) -> None:
    # generous: a busy 2-core machine can take a minute to import torch and write the first epoch
    end = time.monotonic() + timeout
    while not ready() and proc.poll() is None:
        assert time.monotonic() < end, "training made no progress"
        time.sleep(0.01)


def _assert_consistent(run: Path, lines_seen: int) -> int:
    """The folder is a valid run (or a resumable stub); returns the checkpoint's epoch."""
    # a kill mid-write may leave a hidden ".name.XXXX.tmp" (removed on resume); never a real-named one
    assert not [p for p in run.glob("*.tmp") if not p.name.startswith(".")], "a temporary file has a real name"
    doc = checkpoint.read_run(run)  # config.json is complete JSON
    assert doc["environment"]["torch"] == torch.__version__
    raw = (run / "metrics.jsonl").read_text() if (run / "metrics.jsonl").exists() else ""
    records = [json.loads(line) for line in raw.splitlines()]  # no torn line
    assert raw == "" or raw.endswith("\n")
    assert [r["epoch"] for r in records] == list(range(1, len(records) + 1))
    if not (run / "resume.pt").exists():
        assert len(records) <= 1  # killed before the first checkpoint was complete
        return 0
    state = checkpoint.load_resume(run)
    model = vaekit.load(run)  # the weights match the config
    checkpoint.check_resume_state(state, model, run)
    epoch = int(state["epoch"])
    # Metrics are written just before the resume file: at most one line ahead of it.
    assert epoch <= len(records) <= epoch + 1
    assert epoch >= lines_seen - 1, "more than the epoch in progress was lost"
    for tensor in load_file(str(run / "model.safetensors")).values():
        assert torch.isfinite(tensor).all()
    return epoch


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_weights(tmp_path):
    rng = random.Random(1234)
    reference = tmp_path / "reference"
    killed = tmp_path / "killed"
    ref = _start(*ARGS, "--epochs", str(EPOCHS), "--out", str(reference))  # runs beside the kills below

    # 1st kill: as soon as the folder appears, before the first checkpoint is complete.
    proc = _start(*ARGS, "--epochs", str(EPOCHS), "--out", str(killed))
    _wait(proc, lambda: (killed / "config.json").exists())
    time.sleep(rng.uniform(0.0, 0.05))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    epoch = _assert_consistent(killed, _metric_lines(killed))
    kills = 1
    # Later kills: after some progress, at a random moment (mid-epoch, mid-checkpoint, ...).
    for _ in range(3):
        proc = _start("--resume", str(killed))
        before = _metric_lines(killed)
        target = min(before, epoch) + rng.randint(1, 6)
        _wait(proc, lambda: _metric_lines(killed) >= target)
        time.sleep(rng.uniform(0.0, 0.06))
        lines_seen = _metric_lines(killed)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        new_epoch = _assert_consistent(killed, lines_seen)
        assert new_epoch >= epoch  # resuming never goes backwards
        epoch = new_epoch
    assert kills >= 3
    last = _start("--resume", str(killed))
    err = last.communicate(timeout=300)[1]
    assert last.returncode == 0, err
    assert _assert_consistent(killed, EPOCHS) == EPOCHS

    ref_err = ref.communicate(timeout=300)[1]
    assert ref.returncode == 0, ref_err
    want, got = load_file(str(reference / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want), "resumed weights differ from the uninterrupted run"
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ("epoch_time_s", "samples_per_s")} for r in rs]
    assert strip(checkpoint.read_metrics(reference)) == strip(checkpoint.read_metrics(killed))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig, status, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
                         ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_saves_and_exits_with_a_resumable_folder(tmp_path, sig, status, word):
    run = tmp_path / "run"
    proc = _start(*ARGS, "--epochs", "500", "--out", str(run))
    # Line 3 of metrics.jsonl is written after epoch 2's checkpoint is complete (each epoch writes
    # weights, then its metrics line, then the resume file), so at least epoch 2 is saved.
    _wait(proc, lambda: _metric_lines(run) >= 3)
    proc.send_signal(sig)
    err = proc.communicate(timeout=300)[1]
    assert proc.returncode == status, err
    assert word in err and "--resume" in err and "Traceback" not in err
    epoch = _assert_consistent(run, _metric_lines(run))
    assert 2 <= epoch < 500
    vaekit.resume_run(run, epochs=epoch + 1)  # continues from the checkpoint
    assert len(checkpoint.read_metrics(run)) == epoch + 1


def test_failure_before_the_first_epoch_leaves_no_folder(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "elbo_loss", boom)
    with pytest.raises(RunInterrupted) as info:
        vaekit.train_run(small_config(epochs=3), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert info.value.run_dir is None
    # An existing folder given as --out keeps its other files.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(KeyboardInterrupt):
        vaekit.train_run(small_config(epochs=3), out=tmp_path / "mine")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_failure_after_some_epochs_keeps_a_resumable_folder(tmp_path):
    with crash_after(50), pytest.raises(RuntimeError, match="simulated"):  # in epoch 3
        vaekit.train_run(small_config(epochs=4), out=tmp_path / "run")
    assert _assert_consistent(tmp_path / "run", 2) == 2
    vaekit.resume_run(tmp_path / "run")
    full = vaekit.train_run(small_config(epochs=4), out=tmp_path / "full")
    want, got = load_file(str(full / "model.safetensors")), load_file(str(tmp_path / "run" / "model.safetensors"))
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_every_run_file_is_written_atomically(tmp_path, monkeypatch):
    """Every file of a run folder goes through atomic_write (temporary file + rename)."""
    written = []
    real = checkpoint.atomic_write

    def spy(path, data):
        written.append(Path(path).name)
        return real(path, data)

    monkeypatch.setattr(checkpoint, "atomic_write", spy)
    import vaekit.runs.plots as plots

    monkeypatch.setattr(plots, "atomic_write", spy)
    run = vaekit.train_run(small_config(epochs=2), out=tmp_path / "run")
    files = {p.name for p in run.iterdir() if p.is_file()}
    assert files <= set(written), f"not written atomically: {files - set(written)}"
    assert {"config.json", "model.safetensors", "metrics.jsonl", "resume.pt", "samples.png"} <= files


def test_stale_temporary_files_are_cleaned_on_resume(tmp_path, digits_run):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    (run / ".model.safetensors.abc123.tmp").write_bytes(b"half a file")
    vaekit.resume_run(run)
    assert not list(run.glob(".*.tmp"))


def test_resume_of_a_folder_without_checkpoint_but_many_epochs_is_refused(tmp_path, digits_run):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    (run / "resume.pt").unlink()
    with pytest.raises(RunError, match="cannot be resumed"):
        vaekit.resume_run(run)


# ------------------------------------------------------------------------ numerical faults


def test_nan_loss_stops_with_a_diagnosis_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    real, calls = training.elbo_loss, {"n": 0}

    def poisoned(*args, **kwargs):
        terms = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] > 45:  # step 46: in epoch 3 (20 steps per epoch)
            terms = {**terms, "recon": terms["recon"] * float("nan"), "loss": terms["loss"] * float("nan")}
        return terms

    monkeypatch.setattr(training, "elbo_loss", poisoned)
    run = tmp_path / "run"
    with pytest.raises(vaekit.TrainingError) as info:
        vaekit.train_run(small_config(epochs=5), out=run)
    message = str(info.value)
    # The loop looks at the loss only every training.CHECK_EVERY steps, yet names the exact step.
    found = re.search(r"the (.+) term became nan at step (\d+)", message)
    assert found and "recon" in found.group(1), message
    assert int(found.group(2)) == 46
    assert "epoch 2" in message and str(run) in message
    assert "\n" not in message
    assert _assert_consistent(run, 2) == 2  # weights on disk are the finite ones of epoch 2
    assert len(checkpoint.read_metrics(run)) == 2
    monkeypatch.setattr(training, "elbo_loss", real)
    vaekit.resume_run(run)
    assert _assert_consistent(run, 5) == 5
    # The same through the command line: exit 2, one line.
    monkeypatch.setattr(training, "elbo_loss", poisoned)
    calls["n"] = 0
    from vaekit.cli.main import main

    code = main(["train", "--hidden", "64", "--latent-dim", "4", "--epochs", "5", "--batch-size", "64",
                 "--no-progress", "--out", str(tmp_path / "cli")])
    err = capsys.readouterr().err
    assert code == 2 and "recon" in err and "became nan" in err and len(err.strip().splitlines()) == 1


def test_nan_in_the_first_epoch_leaves_no_folder(tmp_path, monkeypatch):
    real = training.elbo_loss
    monkeypatch.setattr(training, "elbo_loss",
                        lambda *a, **k: {**(t := real(*a, **k)), "kl": t["kl"] * float("inf"), "loss": t["loss"] * float("inf")})
    with pytest.raises(vaekit.TrainingError, match=r"kl term became (inf|nan) (at|between) step 1\b"):
        vaekit.train_run(small_config(epochs=2), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_learned_gaussian_scale_never_falls_below_the_floor():
    from vaekit.config import ModelConfig
    from vaekit.core.distributions import Gaussian

    cfg = ModelConfig(likelihood="gaussian-learned", hidden=(8,), latent_dim=2, scale_floor=0.05)
    model = vaekit.VAE(cfg, (3,))
    with torch.no_grad():
        model.raw_scale.fill_(-1e6)  # as if training had pushed sigma towards 0
    x = torch.randn(4, 3)
    p = model.decode(model.encode(x).mean)
    assert torch.all(p.scale >= 0.05 - 1e-9)
    perfect = Gaussian(p.mean, p.scale, 1).log_prob(p.mean)  # the best case: an exact reconstruction
    assert torch.isfinite(perfect).all()
    assert torch.all(perfect <= 3 * (-0.5 * torch.log(torch.tensor(2 * torch.pi)) - torch.log(torch.tensor(0.05))) + 1e-4)
    with pytest.raises(vaekit.ConfigError, match="scale_floor"):
        vaekit.Config.from_dict({"model": {"scale_floor": 0}})


def test_posterior_log_variance_is_clamped():
    from vaekit.core.distributions import LOGVAR_MAX, LOGVAR_MIN, DiagonalGaussian

    q = DiagonalGaussian(torch.zeros(2, 3), torch.tensor([[-1e4, 0.0, 1e4], [-1e30, 5.0, 1e30]]))
    assert q.logvar.min() >= LOGVAR_MIN and q.logvar.max() <= LOGVAR_MAX
    for value in (q.kl(), q.rsample(generator=torch.Generator().manual_seed(0)), q.log_prob(torch.zeros(2, 3)), q.stddev):
        assert torch.isfinite(value).all()
