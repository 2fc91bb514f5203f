"""What the command line prints: warnings and interrupts as one line, eval's numbers that add up,
the same picture names as a run folder, and no progress bars in a log."""

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from conftest import small_config

import vaekit
import vaekit.cli.train as cli_train
from vaekit.cli.main import main
from vaekit.errors import RunInterrupted
from vaekit.measure.diagnostics import PosteriorCollapseWarning

QUICK = ["--epochs", "1", "--hidden", "16", "--latent-dim", "2", "--no-progress"]


def _fake_train(action):
    def train_run(cfg, out=None):
        return action(out)
    return train_run


def test_a_warning_prints_as_one_line_and_python_keeps_its_format(tmp_path, monkeypatch, capsys):
    def warn(out):
        warnings.warn("posterior collapse: KL 0.01 nats per example", PosteriorCollapseWarning)
        return out

    before = warnings.showwarning
    monkeypatch.setattr(cli_train, "train_run", _fake_train(warn))
    assert main(["train", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err == "vaekit: warning: posterior collapse: KL 0.01 nats per example\n"
    assert warnings.showwarning is before  # the Python API's display is back after the command


def test_a_real_collapse_warning_shows_no_source_line(tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["train", "--out", str(tmp_path / "run"), *QUICK, "--beta", "200"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "collapse" in line]
    assert lines and all(line.startswith("vaekit: warning: posterior collapse") for line in lines), err
    assert "train(" not in err and ".py:" not in err


@pytest.mark.parametrize("exc, expected", [
    (RunInterrupted(Path("runs/x")), "the last complete epoch is saved in runs/x (continue with 'vaekit train --resume runs/x')"),
    (RunInterrupted(None), "no epoch had finished, so no run folder was kept"),
    (KeyboardInterrupt(), "stopped before it finished"),
])
def test_interrupt_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys, exc, expected):
    def interrupt(out):
        raise exc

    monkeypatch.setattr(cli_train, "train_run", _fake_train(interrupt))
    assert main(["train", "--out", str(tmp_path / "run"), "--no-progress"]) == 130
    assert capsys.readouterr().err == f"vaekit: interrupted; {expected}\n"


def _printed(text: str, label: str) -> float:
    line = next(line for line in text.splitlines() if line.strip().startswith(label))
    return float(line.split()[-1])


def test_eval_gap_is_the_difference_of_the_printed_numbers(digits_run, capsys):
    args = ["eval", str(digits_run), "--nll-samples", "20", "--limit", "40"]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["elbo_gap"] == pytest.approx(-result["nll"] - result["elbo_k"], abs=1e-9)
    assert result["elbo"] == pytest.approx(-(result["recon"] + result["kl"]), rel=1e-6)
    assert main(args) == 0
    text = capsys.readouterr().out
    log_px, nll = _printed(text, "log p(x)"), _printed(text, "NLL = -log p(x)")
    elbo_k, gap = _printed(text, "ELBO (mean over the same k=20"), _printed(text, "ELBO gap")
    assert log_px == -nll
    assert gap == pytest.approx(log_px - elbo_k, abs=1e-9)  # exactly, at the printed precision
    assert gap == pytest.approx(result["elbo_gap"], abs=1.5e-3)  # and it is the JSON's gap
    one_draw, recon, kl = _printed(text, "ELBO (one draw"), _printed(text, "reconstruction"), _printed(text, "KL(q")
    assert one_draw == pytest.approx(-(recon + kl), abs=2e-3)
    assert re.search(r"signs: ELBO <= log p\(x\).*loss = -ELBO", text)


def test_eval_of_a_conditional_run_says_every_figure_is_given_the_labels(tmp_path, capsys):
    """A CVAE is scored given each example's label: its bound and log-likelihood are of p(x|y), and
    the table says so (and nothing in it claims log p(x)); an unconditional run keeps log p(x)."""
    cfg = small_config(epochs=1)
    cfg.model.model = "cvae"
    run = vaekit.train_run(cfg, out=tmp_path / "cvae")
    assert main(["eval", str(run), "--nll-samples", "5", "--limit", "20"]) == 0
    text = capsys.readouterr().out
    for label in ("reconstruction -log p(x|y,z)", "KL(q(z|x,y) || p(z))", "log p(x|y), k=5", "NLL = -log p(x|y)",
                  "ELBO gap = log p(x|y) - ELBO"):
        assert label in text
    assert "log p(x)" not in text and "p(x|z)" not in text and "q(z|x)" not in text
    assert "signs: ELBO <= log p(x|y);" in text
    assert main(["eval", str(run), "--limit", "20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["given"] == "y"


def test_subcommands_write_the_run_folders_picture_names(digits_run, tmp_path, capsys):
    from vaekit.runs.pictures import INTERPOLATION, RECONSTRUCTIONS, SAMPLES, TRAVERSE

    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    made_by_training = {p.name for p in run.glob("*.png")}
    assert {SAMPLES, RECONSTRUCTIONS, INTERPOLATION} <= made_by_training
    for name in (SAMPLES, RECONSTRUCTIONS, INTERPOLATION):
        (run / name).unlink()
    for command in ("sample", "reconstruct", "interpolate", "traverse"):
        assert main([command, str(run)]) == 0
    assert {p.name for p in run.glob("*.png")} == made_by_training | {TRAVERSE}
    said = capsys.readouterr().out
    for name in (SAMPLES, RECONSTRUCTIONS, INTERPOLATION, TRAVERSE):
        assert str(run / name) in said


def test_no_progress_is_accepted_by_every_subcommand(digits_run, tmp_path):
    run = str(digits_run)
    for argv in (["sample", run, "--out", str(tmp_path / "s.npy")], ["encode", run, "--out", str(tmp_path / "z.npy")],
                 ["score", run, "--method", "recon", "--out", str(tmp_path / "s.csv")],
                 ["eval", run, "--limit", "10", "--json"]):
        assert main([*argv, "--no-progress"]) == 0


def test_without_a_terminal_no_carriage_return_bars(tmp_path, digits_run):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    runs = [["train", "--epochs", "2", "--hidden", "16", "--latent-dim", "2", "--out", str(tmp_path / "run")],
            ["eval", str(digits_run), "--nll-samples", "5", "--limit", "50"]]
    for argv in runs:  # stderr is a pipe here, not a terminal, and --no-progress is not given
        out = subprocess.run([sys.executable, "-m", "vaekit", *argv], capture_output=True, text=True, env=env, timeout=600)
        assert out.returncode == 0, out.stderr
        assert "\r" not in out.stderr and "\r" not in out.stdout


def test_sample_examples_is_the_library_side_of_vaekit_sample(digits_run):
    import torch

    from vaekit.errors import ConfigError
    from vaekit.runs.folder import load
    from vaekit.runs.pictures import sample_examples

    model = load(digits_run)
    x, nrow = sample_examples(model, 5, seed=1)
    assert x.shape == (5, 1, 8, 8) and nrow == 8
    assert torch.equal(x, sample_examples(model, 5, seed=1)[0])  # seeded
    for kwargs in ({"label": 3}, {"grid": True}):
        with pytest.raises(ConfigError, match="conditional"):
            sample_examples(model, 5, **kwargs)
