import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vaekit.cli.main import main

QUICK = ["--epochs", "2", "--hidden", "32", "--latent-dim", "3", "--no-progress"]


def test_train_writes_a_run_and_every_subcommand_uses_it(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *QUICK]) == 0
    assert "run folder" in capsys.readouterr().out
    assert main(["sample", str(run), "-n", "9", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    assert main(["sample", str(run), "-n", "9", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (9, 1, 8, 8)
    assert main(["reconstruct", str(run), "--out", str(tmp_path / "r.png")]) == 0
    assert main(["interpolate", str(run), "--pair", "0,1", "--method", "spherical", "--out", str(tmp_path / "i.png")]) == 0
    assert main(["traverse", str(run), "--dims", "0,2", "--index", "3", "--out", str(tmp_path / "t.png")]) == 0
    capsys.readouterr()
    assert main(["traverse", str(run), "--out", str(tmp_path / "t-default.png")]) == 0
    said = capsys.readouterr().out
    assert ("active latent dimensions" in said or "no latent dimension is active" in said) and (tmp_path / "t-default.png").stat().st_size > 0
    assert main(["encode", str(run), "--out", str(tmp_path / "z.npy")]) == 0
    z = np.load(tmp_path / "z.npy")
    assert z.shape[1] == 3 and np.isfinite(z).all()
    assert main(["encode", str(run), "--out", str(tmp_path / "z.csv")]) == 0
    assert (tmp_path / "z.csv").read_text().splitlines()[0] == "z0,z1,z2"
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["split"] == "test" and result["examples"] > 0
    # elbo = -(recon + kl), up to float32 rounding of numbers near 50 (one ulp there is 4e-6)
    assert result["elbo"] == pytest.approx(-(result["recon"] + result["kl"]), rel=1e-6)
    assert main(["eval", str(run)]) == 0
    assert "ELBO" in capsys.readouterr().out


def test_config_file_and_overrides(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  latent_dim: 2\n  hidden: [16, 16]\ntraining:\n  epochs: 1\n  progress: false\n")
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(run), "training.lr=3e-3", "seed=5"]) == 0
    doc = json.loads((run / "config.json").read_text())["config"]
    assert doc["model"]["latent_dim"] == 2 and doc["model"]["hidden"] == [16, 16]
    assert doc["training"]["lr"] == 3e-3 and doc["training"]["seed"] == 5
    # a run's own config.json is a valid config file
    from vaekit import load_config_file
    assert load_config_file(run / "config.json").model.latent_dim == 2


def test_resume_from_cli(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *QUICK]) == 0
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3


def test_traverse_of_a_table_run_is_a_one_line_error(tmp_path, capsys):
    table = tmp_path / "rows.csv"
    table.write_text("a,b,c\n" + "".join(f"{i % 7},{i % 5},{i % 3}\n" for i in range(200)))
    run = tmp_path / "table-run"
    assert main(["train", "--data", str(table), "--epochs", "1", "--latent-dim", "2", "--no-progress", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["traverse", str(run)]) == 2
    assert "trained on a table; traverse draws images" in capsys.readouterr().err


def _bad_table(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1,2\n3,nan\n4,5\n")
    return p


def _not_a_run(tmp_path):
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


BAD = {
    "unknown dataset": (lambda t: ["train", "--data", "mnsit"], "unknown dataset"),
    "unknown option": (lambda t: ["train", "--bogus", "1"], "unrecognized"),
    "unknown key": (lambda t: ["train", "model.depth=3"], "unknown config key"),
    "wrong type": (lambda t: ["train", "--latent-dim", "two"], "integer"),
    "impossible value": (lambda t: ["train", "--latent-dim", "0"], "latent_dim"),
    "negative beta": (lambda t: ["train", "--beta", "-1"], "beta"),
    "latent space too large for memory": (lambda t: ["train", "--latent-dim", "100000000"], "parameters"),
    "missing config file": (lambda t: ["train", "--config", str(t / "nope.yaml")], "does not exist"),
    "corrupt config file": (lambda t: ["train", "--config", str(_write(t / "c.json", "{oops"))], "not valid"),
    "NaN in a table": (lambda t: ["train", "--data", str(_bad_table(t))], "NaN"),
    "missing data file": (lambda t: ["train", "--data", str(t / "missing.csv")], "does not exist"),
    "not a run": (lambda t: ["eval", str(_not_a_run(t))], "not a vaekit run"),
    "no such run": (lambda t: ["sample", str(t / "nowhere")], "not a folder"),
}


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gives_one_line_error_and_exit_2(tmp_path, capsys, case):
    make_args, expected = BAD[case]
    args = make_args(tmp_path)
    if args[0] == "train":
        args = [*args, "--no-progress", "--out", str(tmp_path / "run")]
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert expected.lower() in err.lower()
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_tampered_weights_are_refused(tmp_path, digits_run, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    (run / "model.safetensors").write_bytes(b"\x80\x04not a safetensors file")
    assert main(["sample", str(run)]) == 2
    assert "not a valid safetensors" in capsys.readouterr().err
    save_file({"encoder.net.0.weight": torch.zeros(3, 3)}, str(run / "model.safetensors"))
    assert main(["sample", str(run)]) == 2
    assert "does not match" in capsys.readouterr().err


def test_model_applied_to_data_of_the_wrong_shape(tmp_path, digits_run, capsys):
    p = tmp_path / "x.npy"
    np.save(p, np.random.rand(5, 1, 28, 28).astype(np.float32))
    assert main(["encode", str(digits_run), "--data", str(p), "--out", str(tmp_path / "z.npy")]) == 2
    assert "shape" in capsys.readouterr().err


def test_console_script_entry_point(tmp_path):
    out = subprocess.run([sys.executable, "-m", "vaekit", "eval", str(tmp_path)], capture_output=True, text=True,
                         env={**os.environ})
    assert out.returncode == 2 and out.stderr.startswith("vaekit: error:")


def test_iw_samples_flag_sets_the_config_num_samples(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *QUICK, "--objective", "iwae", "--iw-samples", "3", "--epochs", "1"]) == 0
    training = json.loads((run / "config.json").read_text())["config"]["training"]
    assert training["objective"] == "iwae" and training["num_samples"] == 3
