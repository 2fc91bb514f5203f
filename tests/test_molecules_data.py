"""MOSES files (found, checked by MD5, refused when corrupt, never downloaded by tests) and
user SMILES files."""

import gzip
import shutil
import urllib.request

import pytest

from vaekit.apps.molecules.requirements import ChemistryUnavailable, available, require
from vaekit.data import download
from vaekit.data import molecules as mol_data
from vaekit.data.molecules import MOSES_MD5, load_moses, moses_folder, read_smiles
from vaekit.errors import ChecksumError, DataError, VaekitError


@pytest.fixture
def moses_root(data_dir):
    if not (moses_folder(data_dir) / "test.csv.gz").is_file():
        pytest.skip("shared MOSES files absent")
    return data_dir


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_recorded_md5s_match_md5sums_and_files(moses_root):
    listed = {}
    for line in (moses_root / "molecules" / "MD5SUMS").read_text().splitlines():
        digest, name = line.split()
        listed[name.split("/")[-1]] = digest
    assert listed == MOSES_MD5
    for name, digest in MOSES_MD5.items():
        assert download.file_digest(moses_folder(moses_root) / name) == digest


def test_loader_reads_shared_files_without_downloading(moses_root, no_network):
    test = load_moses("test", moses_root, download=False)
    scaffolds = load_moses("test_scaffolds", moses_root, download=False, limit=10)
    assert len(test) == 176_074
    assert test[:2] == ["CC1C2CCC(C2)C1CN(CCO)C(=O)c1ccc(Cl)cc1", "COc1ccc(-c2cc(=O)c3c(O)c(OC)c(OC)cc3o2)cc1O"]
    assert len(scaffolds) == 10 and all(s and "," not in s for s in scaffolds)


def test_corrupted_copy_is_refused(moses_root, tmp_path, no_network):
    folder = moses_folder(tmp_path)
    folder.mkdir(parents=True)
    data = bytearray((moses_folder(moses_root) / "test.csv.gz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "test.csv.gz").write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="corrupt"):
        load_moses("test", tmp_path)


def test_missing_file_without_download_names_the_folder(tmp_path, no_network):
    with pytest.raises(DataError, match="MOSES files not found") as info:
        load_moses("train", tmp_path, download=False)
    assert str(moses_folder(tmp_path)) in str(info.value) and "\n" not in str(info.value)


def test_download_checks_the_md5(moses_root, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copy(moses_folder(moses_root) / "test_scaffolds.csv.gz", mirror / "test_scaffolds.csv.gz")
    monkeypatch.setattr(mol_data, "MOSES_MIRRORS", [mirror.as_uri() + "/"])
    got = load_moses("test_scaffolds", tmp_path / "data", download=True, limit=3)
    assert len(got) == 3
    (mirror / "test.csv.gz").write_bytes(gzip.compress(b"SMILES\nCCO\n"))  # wrong bytes
    with pytest.raises(ChecksumError):
        load_moses("test", tmp_path / "data", download=True)
    assert not (moses_folder(tmp_path / "data") / "test.csv.gz").exists()


def test_unknown_split():
    with pytest.raises(DataError, match="unknown MOSES split"):
        load_moses("valid", "/nonexistent")


def test_read_smiles_csv_text_and_smi(tmp_path):
    (tmp_path / "a.csv").write_text("id,SMILES,y\n1,CCO,0\n2,c1ccccc1,1\n3,,1\n")
    (tmp_path / "b.csv").write_text("name,mol\nx,CCN\n")
    (tmp_path / "c.txt").write_text("CCO\n\n  c1ccccc1  \n")
    (tmp_path / "d.smi").write_text("CCO ethanol\nCCN ethylamine\n")
    assert read_smiles(tmp_path / "a.csv") == ["CCO", "c1ccccc1"]
    assert read_smiles(tmp_path / "b.csv", column="mol") == ["CCN"]
    assert read_smiles(tmp_path / "c.txt") == ["CCO", "c1ccccc1"]
    assert read_smiles(tmp_path / "d.smi") == ["CCO", "CCN"]


@pytest.mark.parametrize("name, content, message", [
    ("e.txt", "", "holds no SMILES"),
    ("f.csv", "", "is empty"),
    ("g.csv", "a,b\n1,2\n", "no SMILES column"),
    ("h.txt", b"\xff\xfe\x00", "not UTF-8"),
])
def test_read_smiles_bad_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match=message):
        read_smiles(path)
    with pytest.raises(DataError, match="does not exist"):
        read_smiles(tmp_path / "missing.csv")


def test_missing_chemistry_package_is_one_line():
    with pytest.raises(ChemistryUnavailable, match=r"pip install 'vaekit\[chem\]'") as info:
        require("vaekit_no_such_chemistry_package.sub")
    assert isinstance(info.value, VaekitError) and "\n" not in str(info.value)
    assert not available("vaekit_no_such_chemistry_package") and available("json")


def test_moses_validation_molecules_are_held_out_of_training(monkeypatch, tmp_path):
    """All of MOSES (max_molecules None) still leaves validation molecules, none of them trained on;
    a draw smaller than the file keeps its size."""
    from vaekit.apps.molecules import corpus
    from vaekit.config import Config

    smiles = [f"C{'C' * i}O" for i in range(200)]
    monkeypatch.setattr(corpus, "load_moses", lambda split, root, download=False: smiles if split == "train" else smiles[:5])
    cfg = Config()
    cfg.data.name, cfg.data.data_dir = "moses", str(tmp_path)
    train, val, test, _ = corpus.read_molecules(cfg, None, progress=False)
    assert len(val) == int(cfg.data.val_fraction * 200) and len(train) + len(val) == 200
    assert not set(train) & set(val)
    train, val, _, _ = corpus.read_molecules(cfg, 50, progress=False)
    assert (len(train), len(val)) == (50, 5) and not set(train) & set(val)
    cfg.data.val_fraction = 0.0
    train, val, _, _ = corpus.read_molecules(cfg, None, progress=False)
    assert (len(train), len(val)) == (200, 0)
