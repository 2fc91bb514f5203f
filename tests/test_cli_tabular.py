"""vaekit train --model tabular reads the same flags into a Config as any run and calls the table job;
a setting the table job does not use is a one-line error, not silently ignored."""

import json

import pytest

from vaekit.cli.main import main


def _table(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("a,b,c\n" + "".join(f"{i % 7},{(i * 3) % 5},{i % 3}\n" for i in range(120)))
    return path


def test_flags_and_overrides_reach_the_table_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", "tabular", "--data", str(_table(tmp_path)), "--epochs", "2", "--hidden", "16",
                 "--latent-dim", "3", "training.lr=0.002", "--no-progress", "--out", str(run)]) == 0
    assert "run folder" in capsys.readouterr().out and (run / "columns.png").is_file()
    doc = json.loads((run / "config.json").read_text())
    text = json.dumps(doc)
    assert '"latent_dim": 3' in text and "0.002" in text


@pytest.mark.parametrize("extra, named", [(["--arch", "conv"], "model.arch"), (["training.trim=0.1"], "training.trim")])
def test_a_setting_the_table_run_does_not_use_is_refused(tmp_path, capsys, extra, named):
    out = tmp_path / "run"
    code = main(["train", "--model", "tabular", "--data", str(_table(tmp_path)), *extra, "--no-progress", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and named in err and len(err.strip().splitlines()) == 1
    assert not (out / "config.json").exists()


def test_tabular_needs_data(capsys):
    assert main(["train", "--model", "tabular", "--no-progress"]) == 2
    assert "--data" in capsys.readouterr().err
