"""Bad input through every entry point: the command line and the Python API.

Each case must give a one-line error that names the problem, exit status 2 on the command line
(argparse's own errors raise SystemExit(2)), a specific vaekit.errors class in Python, and
leave nothing half-made behind (a failed ``vaekit train`` writes no run folder).
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import vaekit
from vaekit.runs import folder as checkpoint
from vaekit.cli.main import main
from vaekit.config import Config, DataConfig, apply_overrides, load_config_file
from vaekit.data import load_array, load_dataset
from vaekit.data.download import read_maybe_gzip
from vaekit.data.idx import parse_idx
from vaekit.errors import ChecksumError, ConfigError, DataError, RunError, VaekitError

from conftest import SHARED

MNIST_RAW = SHARED / "MNIST" / "raw"
needs_mnist = pytest.mark.skipif(not MNIST_RAW.is_dir(), reason="shared MNIST files absent")


# ----------------------------------------------------------------------------- file makers


def _write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _csv(t: Path, text, name="t.csv") -> str:
    return str(_write(t / name, text))


def _npy(t: Path, array, name="x.npy") -> str:
    path = t / name
    np.save(path, array)
    return str(path)


def _images(t: Path, specs) -> str:
    """A folder of PNGs; specs: [(mode, (w, h)), ...]."""
    from PIL import Image

    folder = t / "imgs"
    folder.mkdir()
    for i, (mode, size) in enumerate(specs):
        Image.new(mode, size).save(folder / f"{i}.png")
    return str(folder)


def _mnist_dir(t: Path, damage) -> str:
    """A copy of the MNIST folder (links to the real files) with one file damaged."""
    raw = t / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in MNIST_RAW.glob("*.gz"):
        (raw / f.name).symlink_to(f)
    target = raw / "t10k-labels-idx1-ubyte.gz"
    data = (MNIST_RAW / target.name).read_bytes()
    target.unlink()
    if damage is not None:
        target.write_bytes(damage(data))
    return str(t / "data")


def _flip_byte(data: bytes) -> bytes:
    return data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]


# ------------------------------------------------------------------- `vaekit train` cases

# name -> (argv maker, substring of the message). Every case adds --out t/run and checks it is absent.
TRAIN = {
    "unknown dataset": (lambda t: ["--data", "fashon-mnist"], "did you mean"),
    "missing data file": (lambda t: ["--data", str(t / "missing.csv")], "does not exist"),
    "unknown option": (lambda t: ["--epocs", "3"], "unrecognized"),
    "unknown config key": (lambda t: ["training.epocs=3"], "unknown config key"),
    "unknown config section": (lambda t: ["optim.lr=3"], "no section"),
    "override without =": (lambda t: ["latent_dim"], "key=value"),
    "wrong type": (lambda t: ["--epochs", "three"], "integer"),
    "float for an int": (lambda t: ["--latent-dim", "2.5"], "integer"),
    "negative epochs": (lambda t: ["--epochs", "-1"], "epochs"),
    "latent_dim 0": (lambda t: ["--latent-dim", "0"], "latent_dim"),
    "negative beta": (lambda t: ["--beta", "-0.5"], "beta"),
    "non-finite lr": (lambda t: ["--lr", "nan"], "finite"),
    "unknown choice": (lambda t: ["--likelihood", "poisson"], "must be one of"),
    "a latent space too large for memory": (lambda t: ["--latent-dim", "100000000"], "parameters"),
    "hidden layers too large for memory": (lambda t: ["--hidden", "2000000000"], "parameters"),
    "fractions leave no training data": (lambda t: ["data.val_fraction=0.5", "data.test_fraction=0.5"], "< 1"),
    "missing config file": (lambda t: ["--config", str(t / "nope.yaml")], "does not exist"),
    "config file is a folder": (lambda t: ["--config", str((t / "d.json").mkdir() or t / "d.json")], "cannot read"),
    "config file not JSON": (lambda t: ["--config", str(_write(t / "c.json", "{oops"))], "not valid"),
    "config with an unknown key": (
        lambda t: ["--config", str(_write(t / "c.json", json.dumps({"model": {"depth": 3}})))], "unknown config key"),
    "config that is a list": (lambda t: ["--config", str(_write(t / "c.yaml", "- 1\n- 2\n"))], "mapping"),
    "config with a python tag": (
        lambda t: ["--config", str(_write(t / "c.yaml", f"model: !!python/object/apply:os.system ['touch {t}/x']\n"))],
        "not valid"),
    "CSV with NaN": (lambda t: ["--data", _csv(t, "a,b\n1,2\n3,nan\n4,5\n")], "not finite"),
    "CSV with inf": (lambda t: ["--data", _csv(t, "a,b\n1,2\n3,inf\n4,5\n")], "not finite"),
    "CSV with text in a numeric column": (lambda t: ["--data", _csv(t, "a,b\n1,2\n3,red\n4,5\n")], "not a number"),
    "CSV with an empty cell": (lambda t: ["--data", _csv(t, "a,b\n1,2\n3,\n4,5\n")], "missing value"),
    "CSV ragged rows": (lambda t: ["--data", _csv(t, "a,b\n1,2\n3,4,5\n4,5\n")], "row 3 has 3 values"),
    "CSV empty file": (lambda t: ["--data", _csv(t, "")], "empty"),
    "CSV with no rows": (lambda t: ["--data", _csv(t, "a,b\n")], "no data rows"),
    "CSV with one row": (lambda t: ["--data", _csv(t, "a,b\n1,2\n")], "only 1 data row"),
    "CSV duplicate header": (lambda t: ["--data", _csv(t, "a,a\n1,2\n3,4\n5,6\n")], "appears twice"),
    "CSV empty header name": (lambda t: ["--data", _csv(t, "a,,c\n1,2,3\n3,4,5\n5,6,7\n")], "no name"),
    "CSV not UTF-8": (lambda t: ["--data", _csv(t, b"a,b\n1,2\n\xff\xfe,3\n4,5\n")], "not UTF-8"),
    "CSV semicolon separated": (lambda t: ["--data", _csv(t, "a;b\n1;2\n3;4\n5;6\n")], "semicolons"),
    "CSV missing label column": (lambda t: ["--data", _csv(t, "a,b\n1,2\n3,4\n5,6\n"), "--label-column", "y"], "label column"),
    "CSV empty label": (lambda t: ["--data", _csv(t, "a,y\n1,x\n3,\n5,z\n"), "--label-column", "y"], "label is empty"),
    "npy of strings": (lambda t: ["--data", _npy(t, np.array([["a", "b"], ["c", "d"]]))], "dtype"),
    "npy of complex numbers": (lambda t: ["--data", _npy(t, np.ones((4, 2), dtype=np.complex64))], "dtype"),
    "npy of objects": (lambda t: ["--data", _npy(t, np.array([[{"a": 1}], [None]], dtype=object))], "objects"),
    "npy 1-D": (lambda t: ["--data", _npy(t, np.ones(10, dtype=np.float32))], "reshape(-1, 1)"),
    "npy 5-D": (lambda t: ["--data", _npy(t, np.ones((2, 1, 1, 2, 2), dtype=np.float32))], "expected (N, D)"),
    "npy empty": (lambda t: ["--data", _npy(t, np.ones((0, 3), dtype=np.float32))], "no values"),
    "npy truncated": (lambda t: ["--data", str(_write(t / "x.npy", b"\x93NUMPY\x01\x00v\x00{'descr'"))], ".npy"),
    "npy table with NaN": (lambda t: ["--data", _npy(t, np.array([[1.0, np.nan], [2, 3], [4, 5]]))], "not finite"),
    "npy images out of range": (lambda t: ["--data", _npy(t, np.full((4, 8, 8), 7.0, np.float32))], "span"),
    "images of mixed sizes": (lambda t: ["--data", _images(t, [("L", (8, 8)), ("L", (9, 8))])], "differ in size"),
    "images of mixed modes": (lambda t: ["--data", _images(t, [("L", (8, 8)), ("RGB", (8, 8))])], "differ in mode"),
    "16-bit images": (lambda t: ["--data", _images(t, [("I;16", (8, 8)), ("I;16", (8, 8))])], "16-bit"),
    "corrupt image": (lambda t: ["--data", str(_write(t / "imgs" / "a.png", b"\x89PNG\r\n\x1a\nbroken").parent)],
                      "cannot read image"),
    "folder without images": (lambda t: ["--data", str((t / "e").mkdir() or t / "e")], "holds no images"),
    "unsupported file type": (lambda t: ["--data", str(_write(t / "x.txt", "1 2\n"))], "unsupported file type"),
    "cvae without labels": (lambda t: ["--data", _csv(t, "a,b\n1,2\n3,4\n5,6\n"), "--model", "cvae"], "labelled"),
    "bernoulli on unbounded data": (
        lambda t: ["--data", _csv(t, "a,b\n1,2\n3,4\n5,6\n7,8\n9,1\n"), "--likelihood", "bernoulli", "data.standardize=false"],
        "needs data in [0, 1]"),
    "binarize a table": (lambda t: ["--data", _csv(t, "a,b\n1,2\n3,4\n5,6\n"), "--binarize", "dynamic"], "applies to images"),
}

MNIST_TRAIN = {
    "MNIST checksum mismatch": (_flip_byte, ChecksumError, "MD5"),
    "MNIST truncated gzip": (lambda d: d[: len(d) // 2], ChecksumError, "corrupt or incomplete"),
    "MNIST file missing": (None, DataError, "files not found"),
}


def _run_cli(argv, capsys) -> tuple[int, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    return code, capsys.readouterr().err


def _assert_one_line_error(code: int, err: str, expected: str) -> None:
    assert code == 2, err
    assert expected.lower() in err.lower(), err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("vaekit: error:") and "Traceback" not in err


@pytest.mark.parametrize("case", sorted(TRAIN))
def test_bad_train_input(tmp_path, capsys, case):
    make_args, expected = TRAIN[case]
    out = tmp_path / "run"
    code, err = _run_cli(["train", *make_args(tmp_path), "--no-progress", "--out", out], capsys)
    _assert_one_line_error(code, err, expected)
    assert not out.exists(), "a failed train left a run folder behind"
    assert not (tmp_path / "x").exists()  # nothing in a config file was executed


@needs_mnist
@pytest.mark.parametrize("case", sorted(MNIST_TRAIN))
def test_bad_mnist_files(tmp_path, capsys, case):
    damage, error, expected = MNIST_TRAIN[case]
    root = _mnist_dir(tmp_path, damage)
    out = tmp_path / "run"
    code, err = _run_cli(["train", "--data", "mnist", "--data-dir", root, "data.download=false",
                          "--no-progress", "--out", out], capsys)
    _assert_one_line_error(code, err, expected)
    assert not out.exists()
    with pytest.raises(error, match=expected):
        load_dataset(DataConfig(name="mnist", data_dir=root, download=False))


def test_corrupt_gzip_and_idx_are_data_errors(tmp_path):
    good = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x03abc")
    assert parse_idx(read_maybe_gzip(_write(tmp_path / "ok.gz", good)), tmp_path / "ok") .tolist() == [97, 98, 99]
    with pytest.raises(DataError, match="corrupt"):
        read_maybe_gzip(_write(tmp_path / "cut.gz", good[: len(good) // 2]))
    with pytest.raises(DataError, match="corrupt"):
        read_maybe_gzip(_write(tmp_path / "junk.gz", b"not gzip at all"))
    for data, expected in [
        (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "needs 5 bytes"),  # truncated data
        (b"\x00\x00\x08\x02\x00\x00", "truncated"),  # truncated header
        (b"\x01\x02\x08\x01", "magic"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01a", "type code"),
        (b"\x00\x00\x08\x00", "zero dimensions"),
        (b"", "magic"),
    ]:
        with pytest.raises(DataError, match=expected):
            parse_idx(data, tmp_path / "f")


# ---------------------------------------------------------------- commands on a run folder


def _copy_run(digits_run, t: Path) -> Path:
    run = t / "run"
    shutil.copytree(digits_run, run)
    return run


def _damage_run(run: Path, how: str) -> None:
    if how == "no config":
        (run / "config.json").unlink()
    elif how == "truncated config":
        data = (run / "config.json").read_bytes()
        (run / "config.json").write_bytes(data[: len(data) // 2])
    elif how == "config not a run":
        (run / "config.json").write_text('{"hello": 1}')
    elif how == "config with an impossible value":
        doc = json.loads((run / "config.json").read_text())
        doc["config"]["model"]["latent_dim"] = -3
        (run / "config.json").write_text(json.dumps(doc))
    elif how == "config tampered (other architecture)":
        doc = json.loads((run / "config.json").read_text())
        doc["config"]["model"]["latent_dim"] = 7
        (run / "config.json").write_text(json.dumps(doc))
    elif how == "no weights":
        (run / "model.safetensors").unlink()
    elif how == "truncated weights":
        data = (run / "model.safetensors").read_bytes()
        (run / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif how == "weights of the wrong shape":
        state = checkpoint._state_dict(vaekit.load(run))
        key = sorted(state)[0]
        state[key] = torch.zeros(*(s + 1 for s in state[key].shape))
        save_file(state, str(run / "model.safetensors"))
    elif how == "weights with an extra tensor":
        state = checkpoint._state_dict(vaekit.load(run))
        state["evil"] = torch.zeros(1)
        save_file(state, str(run / "model.safetensors"))
    elif how == "weights of another dtype":
        state = {k: v.double() for k, v in checkpoint._state_dict(vaekit.load(run)).items()}
        save_file(state, str(run / "model.safetensors"))
    else:  # pragma: no cover
        raise AssertionError(how)


RUN_DAMAGE = {
    "no config": "not a vaekit run",
    "truncated config": "corrupt",
    "config not a run": "missing 'config'",
    "config with an impossible value": "latent_dim",
    "config tampered (other architecture)": "the config needs",
    "no weights": "has no model.safetensors",
    "truncated weights": "not a valid safetensors",
    "weights of the wrong shape": "has shape",
    "weights with an extra tensor": "unexpected ['evil']",
    "weights of another dtype": "float64",
}


@pytest.mark.parametrize("how", sorted(RUN_DAMAGE))
def test_damaged_run_folder_is_refused(tmp_path, capsys, digits_run, how):
    run = _copy_run(digits_run, tmp_path)
    _damage_run(run, how)
    before = sorted(p.name for p in run.iterdir())
    for argv in (["sample", run, "--out", tmp_path / "s.png"], ["eval", run]):
        code, err = _run_cli(argv, capsys)
        _assert_one_line_error(code, err, RUN_DAMAGE[how])
    with pytest.raises(RunError, match=RUN_DAMAGE[how].replace("(", r"\(").replace("[", r"\[")):
        vaekit.load(run)
    assert not (tmp_path / "s.png").exists()
    assert sorted(p.name for p in run.iterdir()) == before  # nothing written into a damaged run


RESUME_DAMAGE = {
    "missing resume file (after an epoch)": (lambda r: (r / "resume.pt").unlink(), "cannot be resumed"),
    "truncated resume file": (
        lambda r: (r / "resume.pt").write_bytes((r / "resume.pt").read_bytes()[:200]), "corrupt"),
    "resume file of another model": (
        lambda r: torch.save({"model": {"w": torch.zeros(2)}, "optimizer": {}, "rng": torch.zeros(3, dtype=torch.uint8),
                              "epoch": 1, "step": 1, "best_val": 1.0, "bad_epochs": 0}, r / "resume.pt"),
        "does not fit"),
    "resume file without counters": (lambda r: torch.save({"model": {}}, r / "resume.pt"), "missing"),
    "resume file with an unknown precision": (
        lambda r: torch.save({**torch.load(r / "resume.pt", weights_only=True),
                              "precision": {"device": "cpu", "autocast": "float8", "matmul": "highest"}}, r / "resume.pt"),
        "unknown precision record"),
}


@pytest.mark.parametrize("how", sorted(RESUME_DAMAGE))
def test_damaged_resume_file_is_refused(tmp_path, capsys, digits_run, how):
    run = _copy_run(digits_run, tmp_path)
    damage, expected = RESUME_DAMAGE[how]
    damage(run)
    weights = (run / "model.safetensors").read_bytes()
    code, err = _run_cli(["train", "--resume", run, "--epochs", "5", "--no-progress"], capsys)
    _assert_one_line_error(code, err, expected)
    assert (run / "model.safetensors").read_bytes() == weights


OTHER_COMMANDS = {
    "resume a folder that does not exist": (lambda t, r: ["train", "--resume", t / "nope"], "not a folder"),
    "resume with other settings": (lambda t, r: ["train", "--resume", r, "--lr", "1"], "only --epochs"),
    "resume with a bad epoch count": (lambda t, r: ["train", "--resume", r, "--epochs", "-2"], "epochs"),
    "train into an existing run": (lambda t, r: ["train", "--out", r, "--no-progress"], "already holds a run"),
    "sample zero": (lambda t, r: ["sample", r, "-n", "0"], "at least 1"),
    "sample to an unknown format": (lambda t, r: ["sample", r, "--out", t / "s.gif2"], "use a .png or .npy"),
    "label on an unconditional run": (lambda t, r: ["sample", r, "--label", "3"], "conditional"),
    "encode data of the wrong shape": (
        lambda t, r: ["encode", r, "--data", _npy(t, np.random.rand(5, 1, 28, 28).astype(np.float32))], "shape"),
    "encode a missing file": (lambda t, r: ["encode", r, "--data", t / "none.npy"], "does not exist"),
    "encode to an unknown format": (lambda t, r: ["encode", r, "--out", t / "z.txt"], "use a .npy or .csv"),
    "interpolate bad pair": (lambda t, r: ["interpolate", r, "--pair", "1,100000"], "must lie in"),
    "interpolate malformed pair": (lambda t, r: ["interpolate", r, "--pair", "1"], "two indices"),
    "traverse a latent that does not exist": (lambda t, r: ["traverse", r, "--dims", "0,99"], "do not exist"),
    "traverse non-integer dims": (lambda t, r: ["traverse", r, "--dims", "a"], "integer"),
    "eval unknown split": (lambda t, r: ["eval", r, "--split", "dev"], "invalid choice"),
    "interpolate one step": (lambda t, r: ["interpolate", r, "--steps", "1"], "at least 2"),
}


@pytest.mark.parametrize("case", sorted(OTHER_COMMANDS))
def test_bad_use_of_a_run(tmp_path, capsys, digits_run, case):
    run = _copy_run(digits_run, tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    make_args, expected = OTHER_COMMANDS[case]
    code, err = _run_cli(make_args(tmp_path, run), capsys)
    _assert_one_line_error(code, err, expected)
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before


# ------------------------------------------------------------------------- the Python API


def test_python_api_raises_specific_errors(tmp_path, digits_run):
    model = vaekit.load(digits_run)
    cases = [
        (lambda: model.encode(torch.zeros(3, 5)), DataError, "expects examples of shape"),
        (lambda: model.encode(torch.zeros(3, 1, 28, 28)), DataError, "expects examples of shape"),
        (lambda: vaekit.log_likelihood(model, torch.zeros(2, 64), num_samples=2), DataError, "shape"),
        (lambda: vaekit.load(tmp_path / "nowhere"), RunError, "not a folder"),
        (lambda: load_config_file(tmp_path / "none.yaml"), ConfigError, "does not exist"),
        (lambda: Config.from_dict({"model": {"latent_dim": 0}}), ConfigError, "latent_dim"),
        (lambda: Config.from_dict({"training": {"epochs": "many"}}), ConfigError, "integer"),
        (lambda: Config.from_dict({"training": {"beta": -1}}), ConfigError, "beta"),
        (lambda: Config.from_dict({"training": {"batch_size": True}}), ConfigError, "integer"),
        (lambda: Config.from_dict({"model": {"hidden": [64, -1]}}), ConfigError, "hidden"),
        (lambda: Config.from_dict({"model": 3}), ConfigError, "mapping"),
        (lambda: Config.from_dict([1, 2]), ConfigError, "mapping"),
        (lambda: apply_overrides(Config(), ["lr=fast"]), ConfigError, "number"),
        (lambda: apply_overrides(Config(), ["seed"]), ConfigError, "key=value"),
        (lambda: load_dataset(DataConfig(name="nope")), DataError, "unknown dataset"),
        (lambda: load_dataset(DataConfig(name="digits", val_fraction=1.5)), DataError, "val_fraction"),
        (lambda: load_array(tmp_path / "none.csv"), DataError, "does not exist"),
        (lambda: vaekit.train_run(_cfg(latent_dim=0), out=tmp_path / "r"), ConfigError, "latent_dim"),
        (lambda: vaekit.train_run(_cfg(latent_dim=100_000_000), out=tmp_path / "r"), ConfigError, "parameters"),
        (lambda: vaekit.resume_run(tmp_path / "none"), RunError, "not a folder"),
        (lambda: vaekit.evaluate_run(digits_run, "dev"), ConfigError, "unknown split"),
        (lambda: vaekit.interpolate(model, torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), method="cubic"),
         ConfigError, "unknown interpolation"),
        (lambda: vaekit.traverse(model, dims=[-1]), ConfigError, "do not exist"),
    ]
    for call, error, expected in cases:
        with pytest.raises(error, match=expected) as info:
            call()
        assert isinstance(info.value, VaekitError)
        assert "\n" not in str(info.value)
    assert not (tmp_path / "r").exists()


def _cfg(**model_or_training):
    from conftest import small_config

    cfg = small_config(epochs=1)
    for key, value in model_or_training.items():
        setattr(cfg.model if hasattr(cfg.model, key) else cfg.training, key, value)
    return cfg


def test_table_model_rejects_data_of_the_wrong_columns(tmp_path, capsys):
    rng = np.random.default_rng(0)
    table = tmp_path / "t.csv"
    table.write_text("a,b,c\n" + "".join(f"{x:.3f},{y:.3f},{z:.3f}\n" for x, y, z in rng.normal(size=(40, 3))))
    run = tmp_path / "run"
    code, err = _run_cli(["train", "--data", table, "--epochs", "1", "--batch-size", "8", "--hidden", "8",
                          "--latent-dim", "2", "--no-progress", "--out", run], capsys)
    assert code == 0, err
    other = _csv(tmp_path, "a,c\n1,2\n3,4\n", name="other.csv")
    code, err = _run_cli(["encode", run, "--data", other, "--out", tmp_path / "z.npy"], capsys)
    _assert_one_line_error(code, err, "lacks the column")
    nan = _csv(tmp_path, "a,b,c\n1,2,3\nnan,4,5\n", name="nan.csv")
    code, err = _run_cli(["encode", run, "--data", nan, "--out", tmp_path / "z.npy"], capsys)
    _assert_one_line_error(code, err, "not finite")
    assert not (tmp_path / "z.npy").exists()


@pytest.mark.parametrize("name, inside", [("mnist", "MNIST/raw"), ("binarized-mnist", "BinarizedMNIST")])
def test_missing_dataset_files_name_both_ways_to_point_at_a_copy(tmp_path, capsys, name, inside):
    code, err = _run_cli(["train", "--data", name, "--data-dir", tmp_path, "data.download=false",
                          "--no-progress", "--out", tmp_path / "run"], capsys)
    _assert_one_line_error(code, err, "files not found")
    assert "--data-dir" in err and "$VAEKIT_DATA_DIR" in err and f"DIR/{inside}" in err


def test_a_failed_download_names_both_ways_to_point_at_a_copy(tmp_path):
    from vaekit.data.download import ensure_files

    folder = tmp_path / "MNIST" / "raw"
    with pytest.raises(DataError, match="cannot download") as info:  # a mirror that does not answer
        ensure_files(folder, ["x.gz"], [(tmp_path / "no-mirror").as_uri()], what="MNIST", download=True, root=tmp_path)
    assert "--data-dir" in str(info.value) and "$VAEKIT_DATA_DIR" in str(info.value) and "DIR/MNIST/raw" in str(info.value)


@pytest.mark.parametrize("rows", [178, 20])
def test_a_table_smaller_than_the_default_batch_trains_on_the_whole_split(tmp_path, capsys, rows):
    """scikit-learn's wine table (178 rows) left 124 training rows under the default batch of 128."""
    rng = np.random.default_rng(0)
    table = _csv(tmp_path, "a,b,c\n" + "".join(f"{x:.3f},{y:.3f},{z:.3f}\n" for x, y, z in rng.normal(size=(rows, 3))))
    run = tmp_path / "run"
    code, err = _run_cli(["train", "--data", table, "--epochs", "1", "--hidden", "8", "--latent-dim", "2",
                          "--no-progress", "--out", run], capsys)
    assert code == 0, err
    notices = [line for line in err.splitlines() if "batch_size" in line]
    assert len(notices) == 1 and notices[0].startswith("vaekit: warning: training.batch_size=128 is larger than")
    doc = json.loads((run / "config.json").read_text())
    assert doc["config"]["training"]["batch_size"] < 128
