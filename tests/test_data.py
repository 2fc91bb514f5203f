"""Tests of the data layer: built-in datasets, files, splits, checksums and error messages.

The real MNIST-family files are read from the shared datasets folder ($VAEKIT_DATA_DIR, else
../shared/datasets beside the repository); those tests skip when it is absent. Nothing here
touches the network: downloads are tested with ``file://`` mirrors.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vaekit.config import DataConfig
from vaekit.data import DataSplits, data_dir, load_array, load_dataset, split_indices
from vaekit.data import download as download_mod
from vaekit.data import idx as idx_mod
from vaekit.data.standardize import Standardizer
from vaekit.errors import ChecksumError, DataError

SHARED = (
    Path(os.environ["VAEKIT_DATA_DIR"]) if os.environ.get("VAEKIT_DATA_DIR")
    else Path(__file__).resolve().parents[2] / "shared" / "datasets"
)
needs_mnist = pytest.mark.skipif(not (SHARED / "MNIST" / "raw").is_dir(), reason="shared MNIST files absent")
needs_binarized = pytest.mark.skipif(not (SHARED / "BinarizedMNIST").is_dir(), reason="shared binarized MNIST absent")


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if anything tries to download."""
    def refuse(url, part):
        raise AssertionError(f"tried to download {url}")
    monkeypatch.setattr(download_mod, "_download", refuse)


def raises_one_line(exc_type, match, fn, *args, **kwargs):
    """Assert ``fn`` raises ``exc_type`` with a one-line message matching ``match``."""
    with pytest.raises(exc_type, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)
    return info.value


def load(name, **kwargs) -> DataSplits:
    return load_dataset(DataConfig(name=str(name), **kwargs))


def write_csv(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# ---------------------------------------------------------------- digits and splits


def test_digits_shapes_ranges_labels():
    d = load("digits")
    assert (d.kind, d.shape, d.num_classes, d.binary) == ("image", (1, 8, 8), 10, False)
    assert d.class_names == [str(i) for i in range(10)]
    assert len(d.train) + len(d.val) + len(d.test) == 1797
    assert (len(d.test), len(d.val)) == (359, 180)  # 20% and 10% of the whole
    for x, y in ((d.train, d.train_labels), (d.val, d.val_labels), (d.test, d.test_labels)):
        assert x.dtype == torch.float32 and x.shape[1:] == (1, 8, 8)
        assert 0 <= x.min() and x.max() <= 1
        assert y.dtype == torch.int64 and len(y) == len(x)
        assert set(y.tolist()) <= set(range(10))
    assert d.train.max() == 1 and d.preprocessing == {}


def test_digits_split_reproducible_and_seed_dependent():
    a, b, c = load("digits", split_seed=3), load("digits", split_seed=3), load("digits", split_seed=4)
    assert torch.equal(a.train, b.train) and torch.equal(a.test_labels, b.test_labels)
    assert not torch.equal(a.train, c.train)


@pytest.mark.parametrize("n,val,test", [(1797, 0.1, 0.2), (10, 0.1, 0.1), (7, 0.3, 0.0)])
def test_split_indices_disjoint_and_cover(n, val, test):
    train, va, te = split_indices(n, val, test, seed=0, name="x")
    joined = np.concatenate([train, va, te])
    assert sorted(joined.tolist()) == list(range(n))  # disjoint and covering
    assert len(te) == (round(n * test) if test else 0) and len(train) > 0


def test_digits_splits_are_rows_of_the_whole_set():
    from sklearn.datasets import load_digits

    whole = torch.from_numpy(load_digits().images.astype(np.float32) / 16)[:, None]
    d = load("digits", split_seed=7)
    train, val, test = split_indices(len(whole), 0.1, 0.2, seed=7, name="digits")
    assert torch.equal(d.train, whole[train]) and torch.equal(d.val, whole[val]) and torch.equal(d.test, whole[test])


def test_too_small_to_split(tmp_path):
    np.save(tmp_path / "tiny.npy", np.ones((2, 3), dtype=np.float32))
    raises_one_line(DataError, "too few to split", load, tmp_path / "tiny.npy")


# ---------------------------------------------------------------- names and folders


def test_unknown_dataset_name():
    err = raises_one_line(DataError, "unknown dataset 'mnsit'", load, "mnsit")
    assert "did you mean 'mnist'" in str(err) and "binarized-mnist" in str(err)


def test_missing_path(tmp_path):
    raises_one_line(DataError, "does not exist", load, tmp_path / "nope.csv")


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("VAEKIT_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_dir(DataConfig()) == tmp_path / "cache" / "vaekit"
    monkeypatch.setenv("VAEKIT_DATA_DIR", str(tmp_path / "env"))
    assert data_dir(DataConfig()) == tmp_path / "env"
    assert data_dir(DataConfig(data_dir=str(tmp_path / "cfg"))) == tmp_path / "cfg"


# ---------------------------------------------------------------- MNIST family


@needs_mnist
def test_mnist_loads_with_checksums(monkeypatch, no_network):
    checked = []
    real = idx_mod.check_md5
    monkeypatch.setattr(idx_mod, "check_md5", lambda path, md5: (checked.append(path.name), real(path, md5)))
    d = load("mnist", data_dir=str(SHARED), download=False)
    assert sorted(checked) == sorted(idx_mod.MNIST_FAMILY["mnist"]["md5"])
    assert (len(d.train), len(d.val), len(d.test)) == (54000, 6000, 10000)
    assert d.shape == (1, 28, 28) and d.train.dtype == torch.float32 and not d.binary
    assert float(d.train.min()) == 0.0 and float(d.train.max()) == 1.0
    assert d.num_classes == 10 and sorted(d.test_labels.unique().tolist()) == list(range(10))
    assert torch.bincount(d.test_labels).tolist()[:2] == [980, 1135]  # MNIST's published test counts


@needs_binarized
def test_binarized_mnist_official_splits(no_network):
    d = load("binarized-mnist", data_dir=str(SHARED), download=False)
    assert (len(d.train), len(d.val), len(d.test)) == (50000, 10000, 10000)
    assert d.binary and d.shape == (1, 28, 28) and d.train_labels is None and d.num_classes == 0
    assert set(torch.unique(d.test).tolist()) == {0.0, 1.0}
    assert 0.1 < float(d.train.mean()) < 0.16  # about 13% of pixels are on


@needs_mnist
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_mnist_file_is_refused_without_download(tmp_path, no_network, damage):
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(SHARED / "MNIST" / "raw", raw)
    target = raw / "train-images-idx3-ubyte.gz"
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[5000] ^= 0xFF
    target.write_bytes(bytes(data))
    err = raises_one_line(ChecksumError, "corrupt", load, "mnist", data_dir=str(tmp_path), download=False)
    assert "delete it" in str(err) and target.name in str(err)


def test_missing_mnist_without_download_names_folder(tmp_path, no_network):
    err = raises_one_line(DataError, "files not found", load, "fashion-mnist", data_dir=str(tmp_path), download=False)
    assert str(tmp_path / "FashionMNIST" / "raw") in str(err) and "data.download" in str(err)


def test_idx_parser_rejects_bad_bytes(tmp_path):
    good = bytes([0, 0, 8, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes(range(6))
    assert idx_mod.parse_idx(good, tmp_path / "f").tolist() == [[0, 1, 2], [3, 4, 5]]
    raises_one_line(DataError, "needs 6 bytes", idx_mod.parse_idx, good[:-1], tmp_path / "f")
    raises_one_line(DataError, "magic", idx_mod.parse_idx, b"\x01" + good[1:], tmp_path / "f")
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    raises_one_line(DataError, "corrupt.*delete it", idx_mod.read_idx, tmp_path / "bad.gz")


def test_amat_parser_handles_any_spacing(tmp_path):
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, size=(3, 784)).astype(np.uint8)
    text = "\n".join(" ".join(map(str, row)) for row in bits).encode() + b"\n"
    assert np.array_equal(idx_mod.parse_amat(text, tmp_path / "a", 3), bits)
    assert np.array_equal(idx_mod.parse_amat(text.replace(b" ", b"  \t"), tmp_path / "a", 3), bits)
    raises_one_line(DataError, "whole number", idx_mod.parse_amat, text[:-4], tmp_path / "a")
    raises_one_line(DataError, "other than 0, 1", idx_mod.parse_amat, text.replace(b"1", b"2", 1), tmp_path / "a")


def test_fetch_checks_checksum_and_removes_bad_file(tmp_path):
    source = tmp_path / "mirror"
    source.mkdir()
    (source / "f.bin").write_bytes(b"hello")
    md5 = "5d41402abc4b2a76b9719d911017c592"
    dest = tmp_path / "cache" / "f.bin"
    download_mod.fetch([source.as_uri() + "/f.bin"], dest, md5=md5)
    assert dest.read_bytes() == b"hello"
    bad = tmp_path / "cache" / "g.bin"
    raises_one_line(ChecksumError, "checksum", download_mod.fetch, [source.as_uri() + "/f.bin"], bad, md5="0" * 32)
    assert not bad.exists() and not list((tmp_path / "cache").glob("*.part"))


def test_download_failure_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.setitem(idx_mod.MNIST_FAMILY["mnist"], "mirrors", [(tmp_path / "offline").as_uri()])
    err = raises_one_line(DataError, "cannot download", load, "mnist", data_dir=str(tmp_path), download=True)
    assert str(tmp_path / "MNIST" / "raw") in str(err)


# ---------------------------------------------------------------- CSV tables

CSV = "a,b,label\n" + "".join(f"{i},{(i * 7) % 5 + 0.5},{'cat' if i % 3 else 'dog'}\n" for i in range(20))


def test_csv_table_with_labels_and_standardisation(tmp_path):
    d = load(write_csv(tmp_path / "t.csv", CSV), label_column="label")
    assert (d.kind, d.shape, d.num_classes, d.class_names) == ("table", (2,), 2, ["cat", "dog"])
    assert (len(d.train), len(d.val), len(d.test)) == (14, 2, 4)
    assert torch.allclose(d.train.mean(0), torch.zeros(2), atol=1e-6)
    assert torch.allclose(d.train.std(0, unbiased=False), torch.ones(2), atol=1e-5)
    assert d.preprocessing["columns"] == ["a", "b"] and d.preprocessing["class_names"] == ["cat", "dog"]
    json.dumps(d.preprocessing)
    raw = load(tmp_path / "t.csv", label_column="label", standardize=False)
    assert raw.preprocessing["mean"] == [0.0, 0.0] and raw.preprocessing["std"] == [1.0, 1.0]
    assert sorted(torch.cat([raw.train, raw.val, raw.test])[:, 0].tolist()) == [float(i) for i in range(20)]


def test_binary_csv_stays_binary(tmp_path):
    d = load(write_csv(tmp_path / "b.csv", "x,y\n" + "0,1\n1,0\n1,1\n0,0\n" * 5))
    assert d.binary and set(torch.unique(d.train).tolist()) <= {0.0, 1.0}


BAD_CSVS = {
    "not utf-8": (b"a,b\n1,2\n3,\xff\xfe\n", r"row 3 is not UTF-8"),
    "empty": (b"", "is empty"),
    "header only": (b"a,b\n", "no data rows"),
    "one row": (b"a,b\n1,2\n", "only 1 data row"),
    "ragged": (b"a,b\n1,2\n3,4,5\n6,7\n", "row 3 has 3 values but the header has 2"),
    "duplicate header": (b"a,a\n1,2\n3,4\n", "'a' appears twice"),
    "empty header": (b"a,\n1,2\n3,4\n", "column 2 has no name"),
    "not a number": (b"age,h\n1,2\n3,4\n5,6\n7,8\n9,1\nabc,2\n", r"row 7, column 'age': 'abc' is not a number"),
    "missing cell": (b"a,b\n1,2\n3,\n5,6\n", r"row 3, column 'b' is empty.*impute"),
    "nan": (b"a,b\n1,2\n3,nan\n5,6\n", r"row 3, column 'b' is 'nan'.*impute.*drop"),
    "inf": (b"a,b\n1,inf\n3,4\n5,6\n", r"row 2, column 'b' is 'inf'"),
    "semicolons": (b"a;b\n1;2\n3;4\n", "semicolons"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_bad_csv_gives_one_line_data_error(tmp_path, case):
    content, message = BAD_CSVS[case]
    raises_one_line(DataError, message, load, write_csv(tmp_path / "bad.csv", content))


def test_unknown_label_column_lists_columns(tmp_path):
    err = raises_one_line(DataError, "label column 'y' is not in", load, write_csv(tmp_path / "t.csv", CSV), label_column="y")
    assert "a, b, label" in str(err)


def test_load_array_applies_stored_preprocessing(tmp_path):
    d = load(write_csv(tmp_path / "t.csv", CSV), label_column="label", split_seed=1)
    x, y = load_array(tmp_path / "t.csv", d.preprocessing)
    train, val, test = split_indices(20, 0.1, 0.2, seed=1, name="t")
    assert torch.equal(x[train], d.train) and torch.equal(x[test], d.test)
    assert torch.equal(y[val], d.val_labels)
    # columns found by name: another order and an extra column give the same features
    reordered = "extra,label,b,a\n" + "".join(
        f"x,{'cat' if i % 3 else 'dog'},{(i * 7) % 5 + 0.5},{i}\n" for i in range(20))
    x2, y2 = load_array(write_csv(tmp_path / "new.csv", reordered), json.loads(json.dumps(d.preprocessing)))
    assert torch.equal(x2, x) and torch.equal(y2, y)
    raises_one_line(DataError, "lacks the column", load_array,
                    write_csv(tmp_path / "short.csv", "a,label\n1,cat\n2,dog\n"), d.preprocessing)


# ---------------------------------------------------------------- NumPy arrays


def test_npy_table_and_images(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "t.npy", rng.normal(size=(30, 4)).astype(np.float32))
    t = load(tmp_path / "t.npy")
    assert (t.kind, t.shape, len(t.train) + len(t.val) + len(t.test)) == ("table", (4,), 30)
    x, _ = load_array(tmp_path / "t.npy", t.preprocessing)
    assert x.shape == (30, 4) and abs(float(x.mean())) < 0.5
    np.save(tmp_path / "i.npy", rng.integers(0, 256, size=(20, 6, 5), dtype=np.uint8))
    im = load(tmp_path / "i.npy")
    assert (im.kind, im.shape) == ("image", (1, 6, 5)) and 0 <= float(im.train.min()) and float(im.train.max()) <= 1
    np.save(tmp_path / "c.npy", rng.random(size=(20, 3, 4, 4)).astype(np.float32))
    assert load(tmp_path / "c.npy").shape == (3, 4, 4)


@pytest.mark.parametrize("array,message", [
    (np.array([[1, "a"]], dtype=object), "Python objects"),
    (np.array([["a", "b"], ["c", "d"]]), "dtype <U1"),
    (np.ones((4, 2), dtype=np.complex64), "dtype complex64"),
    (np.ones(10), r"shape \(10,\)"),
    (np.ones((2, 2, 2, 2, 2)), "shape"),
    (np.array([[1.0, np.nan], [2.0, 3.0], [1.0, 1.0]]), r"row 0, column 'x1' is nan"),
    (np.full((10, 4, 4), 3.0), r"image values span"),
])
def test_bad_npy(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array, allow_pickle=True)
    raises_one_line(DataError, message, load, tmp_path / "bad.npy")


# ---------------------------------------------------------------- memory-mapped .npy tables


def _table(tmp_path, rows=3000, cols=6, seed=0) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(rows, cols)) * np.arange(1, cols + 1) + np.arange(cols)).astype(np.float32)
    np.save(tmp_path / "big.npy", x)
    return tmp_path / "big.npy", x


def test_npy_table_splits_are_views_of_the_memory_map_equal_to_the_eager_reading(tmp_path, monkeypatch):
    from vaekit.data import mapped
    from vaekit.data.splits import split_whole

    path, x = _table(tmp_path)
    monkeypatch.setattr(mapped, "CHUNK_BYTES", 8 * 6 * 128)  # 128-row blocks: many blocks, merged statistics
    d = load(path)
    assert all(isinstance(p, mapped.MappedRows) for p in (d.train, d.val, d.test))
    assert isinstance(d.train.source, mapped.NpyMap) and d.train.source.path == path
    assert (len(d.train), len(d.val), len(d.test), d.shape, d.binary) == (2100, 300, 600, (6,), False)
    eager = split_whole("t", "table", x.astype(np.float64), None, DataConfig(name="t"), None, [f"x{j}" for j in range(6)])
    np.testing.assert_allclose(d.preprocessing["mean"], eager.preprocessing["mean"], rtol=1e-12)
    np.testing.assert_allclose(d.preprocessing["std"], eager.preprocessing["std"], rtol=1e-12)
    for split in ("train", "val", "test"):
        torch.testing.assert_close(getattr(d, split)[:], getattr(eager, split), rtol=0, atol=1e-6)
    rows = torch.tensor([7, 3, 3, 2000])
    assert torch.equal(d.train[rows], d.train[:][rows]) and torch.equal(d.train[-1], d.train[:][-1])
    assert torch.equal(d.test[:, 2], d.test[:][:, 2])
    assert float(d.train.min()) == float(d.train[:].min()) and float(d.train.max()) == float(d.train[:].max())
    x_new, _ = load_array(path, d.preprocessing)  # new data: one float32 tensor, standardised alike
    train_idx = split_indices(3000, 0.1, 0.2, seed=0, name="t")[0]
    assert torch.equal(x_new[train_idx], d.train[:])


def test_npy_table_nan_in_a_later_block_is_located(tmp_path, monkeypatch):
    from vaekit.data import mapped

    path, x = _table(tmp_path)
    x[2500, 4] = np.inf
    np.save(path, x)
    monkeypatch.setattr(mapped, "CHUNK_BYTES", 8 * 6 * 128)
    raises_one_line(DataError, r"row 2500, column 'x4' is inf", load, path)


def test_training_on_a_memory_mapped_table_reads_only_batches_and_blocks(tmp_path, monkeypatch):
    """Structural: every read of the file is a batch, an evaluation chunk or a scan block;
    nothing reads a whole split, and every read gives its pages back."""
    import vaekit
    from vaekit import Config
    from vaekit.data import mapped

    path, _ = _table(tmp_path, rows=25_000)  # train/val/test 17,500/2,500/5,000 rows
    monkeypatch.setattr(mapped, "CHUNK_BYTES", 8 * 6 * 50)  # 50-row blocks
    reads, releases = [], [0]
    real_read, real_release = mapped.MappedRows.read, mapped.NpyMap.release
    monkeypatch.setattr(mapped.MappedRows, "read", lambda self, pos: reads.append(np.size(pos)) or real_read(self, pos))
    monkeypatch.setattr(mapped.NpyMap, "release", lambda self: releases.__setitem__(0, releases[0] + 1) or real_release(self))
    cfg = Config()
    cfg.data.name = str(path)
    cfg.model.hidden, cfg.model.latent_dim = (16,), 2
    cfg.training.epochs, cfg.training.batch_size, cfg.training.eval_batch_size = 2, 256, 500
    cfg.training.progress = False
    run = vaekit.train_run(cfg, out=tmp_path / "run")  # training, validation, diagnostics and pictures
    assert (run / "histograms.png").exists()
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 2 and all(np.isfinite(r["train_loss"]) and np.isfinite(r["val_loss"]) for r in history)
    assert reads.count(256) >= 2 * (17_500 // 256)  # the training batches came from the file
    # Batches (256), validation chunks (500), the 2,000 rows the diagnostics look at, scan
    # blocks (50): no read of a whole split.
    assert 0 < max(reads) <= 2000
    assert releases[0] >= len(reads)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RssFile from /proc (Linux)")
def test_scanning_a_mapped_table_does_not_keep_its_pages_resident(tmp_path):
    from vaekit.data.mapped import MappedRows

    def rss_file_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssFile:"):
                return int(line.split()[1]) / 1024
        pytest.skip("no RssFile in /proc/self/status")

    rows = 2**18  # 64 MB of float32
    np.lib.format.open_memmap(tmp_path / "t.npy", mode="w+", dtype=np.float32, shape=(rows, 64)).flush()
    table = MappedRows.open(tmp_path / "t.npy")
    before = rss_file_mb()
    total = sum(float(block.sum()) for _, block in table.blocks(max_bytes=2**20))  # every page of the file
    table.read(np.random.default_rng(0).integers(0, rows, 4096))
    assert total == 0.0
    assert rss_file_mb() - before < 16  # the 64 MB were mapped in and given back


# ---------------------------------------------------------------- image folders


def _png(path: Path, size=(5, 4), mode="L", value=0):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 0, 255)).save(path)


def test_image_folder_with_class_subfolders(tmp_path):
    for cls, value in (("cat", 255), ("dog", 0)):
        for i in range(6):
            _png(tmp_path / "imgs" / cls / f"{i}.png", value=value)
    (tmp_path / "imgs" / "notes.txt").write_text("ignored")
    d = load(tmp_path / "imgs")
    assert (d.kind, d.shape, d.class_names, d.num_classes, d.binary) == ("image", (1, 4, 5), ["cat", "dog"], 2, True)
    x, y = load_array(tmp_path / "imgs")
    assert x.shape == (12, 1, 4, 5) and torch.equal(x[y == 0], torch.ones(6, 1, 4, 5))


def test_image_folder_flat_rgb(tmp_path):
    for i in range(5):
        _png(tmp_path / f"{i}.png", size=(3, 3), mode="RGB", value=51 * i)
    d = load(tmp_path, val_fraction=0.2)
    assert d.shape == (3, 3, 3) and d.train_labels is None and d.num_classes == 0


@pytest.mark.parametrize("odd,message", [(dict(size=(6, 4)), "differ in size"), (dict(mode="RGB"), "differ in mode")])
def test_image_folder_mixed(tmp_path, odd, message):
    for i in range(4):
        _png(tmp_path / f"{i}.png")
    _png(tmp_path / "z.png", **odd)
    err = raises_one_line(DataError, message, load, tmp_path)
    assert "0.png" in str(err) and "z.png" in str(err)


def test_scattered_rows_are_read_exactly_without_the_map(tmp_path, monkeypatch):
    """Shuffled batches are copied with pread (runs of consecutive rows), not through the memory
    map (a page fault there maps a whole page-cache folio around each row): same values, in the
    order asked for, repeats included."""
    from vaekit.data import mapped

    a = np.random.default_rng(0).standard_normal((5_000, 7)).astype(np.float32)
    np.save(tmp_path / "t.npy", a)
    rows = mapped.MappedRows.open(tmp_path / "t.npy")
    monkeypatch.setattr(rows.source, "array", None)  # any read through the map would fail now
    positions = np.concatenate([np.random.default_rng(1).integers(0, 5_000, 300), [10, 11, 12, 12, 4_999, 0]])
    assert np.array_equal(rows.read(positions), a[positions])
    view = mapped.MappedRows(rows.source, np.arange(100, 5_000, 3), Standardizer(np.ones(7), np.full(7, 2.0)))
    assert np.allclose(view[torch.tensor([0, 5, 5, 2])].numpy(), (a[[100, 115, 115, 106]] - 1.0) / 2.0, atol=1e-6)


def test_a_value_beyond_float32_after_standardising_is_a_data_error(tmp_path):
    """A test row that the training rows' statistics put beyond float32's range would become -inf."""
    path = tmp_path / "extreme.csv"
    path.write_text("a\n0\n3.4028235677973366e+38\n")
    with pytest.raises(DataError, match="beyond float32's range"):
        load_dataset(DataConfig(name=str(path), val_fraction=0.0, test_fraction=0.2))


def test_one_standardizer_fits_applies_inverts_and_records():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 3))
    x[:, 2] = 7.0  # a constant column is centred, not divided by 0
    st = Standardizer.fit(x)
    z = st.apply(x)
    np.testing.assert_allclose(z[:, :2].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(z[:, :2].std(0), 1, rtol=1e-12)
    assert np.array_equal(z[:, 2], np.zeros(50)) and st.scale[2] == 1.0
    np.testing.assert_allclose(st.invert(z), x, rtol=1e-12)
    record = st.record(["a", "b", "c"])
    assert record["columns"] == ["a", "b", "c"] and record["std"][2] == 1.0
    again = Standardizer.from_record(record)
    assert np.array_equal(again.mean, st.mean) and np.array_equal(again.scale, st.scale)
    assert np.array_equal(Standardizer.identity(3).apply(x), x)
