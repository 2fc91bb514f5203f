"""Molecules as text: the MOSES benchmark split and any user file of SMILES.

MOSES (Polykovskiy et al., "Molecular Sets (MOSES): a benchmarking platform for molecular
generation models", Front. Pharmacol. 2020) ships three gzip-compressed CSV files with one
column, ``SMILES``: ``train`` (1,584,663 molecules), ``test`` (176,074) and ``test_scaffolds``
(176,225, molecules whose Bemis-Murcko scaffolds are absent from train). They are looked for in
``<data_dir>/molecules/moses/`` (see :func:`vaekit.data.registry.data_dir`), downloaded from the
MOSES repository's files when absent and allowed, and always checked against the MD5s recorded
with the shared copy (``molecules/MD5SUMS``) before they are read.

A user's own molecules are a CSV with a SMILES column (``smiles``, ``SMILES`` or a named one)
or a text file of one SMILES per line. Parsing chemistry (is a string a molecule?) is not this
layer's business: it needs RDKit, which lives with the molecules application.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Optional

from vaekit.data.download import check_md5, ensure_files, read_maybe_gzip
from vaekit.errors import DataError

__all__ = ["MOSES_MD5", "MOSES_SPLITS", "load_moses", "moses_folder", "read_smiles"]

MOSES_SPLITS = ("train", "test", "test_scaffolds")

# The files of the MOSES repository (molecularsets/moses, moses/dataset/data/), byte-identical
# to the ``molsets`` package's copies; the MD5s are those of molecules/MD5SUMS.
MOSES_MD5 = {
    "train.csv.gz": "712ffb13b3c0e4c24ab3faab75f5eb9e",
    "test.csv.gz": "67c1f90c86ff795e47485b2d615dc1c8",
    "test_scaffolds.csv.gz": "463b155c93d85d6806c6d448dcd476b7",
}
MOSES_MIRRORS = [
    "https://raw.githubusercontent.com/molecularsets/moses/master/moses/dataset/data/",
    "https://media.githubusercontent.com/media/molecularsets/moses/master/moses/dataset/data/",
]
_SMILES_COLUMNS = ("smiles", "smile", "canonical_smiles")


def moses_folder(root: Path) -> Path:
    """Where the MOSES files live inside the data folder ``root``."""
    return Path(root) / "molecules" / "moses"


def load_moses(split: str, root: Path, download: bool = False, limit: Optional[int] = None) -> list[str]:
    """The SMILES of one MOSES split (``train``, ``test`` or ``test_scaffolds``), in file order.

    The file is fetched when absent and ``download`` is true, and its MD5 is checked before
    it is parsed, so a truncated or altered copy is a ChecksumError, never a short data set.
    ``limit`` keeps the first ``limit`` molecules.
    """
    if split not in MOSES_SPLITS:
        raise DataError(f"unknown MOSES split {split!r}; choose one of {', '.join(MOSES_SPLITS)}")
    folder = moses_folder(root)
    name = f"{split}.csv.gz"
    ensure_files(folder, [name], MOSES_MIRRORS, what="MOSES", download=download, md5=MOSES_MD5)
    path = folder / name
    check_md5(path, MOSES_MD5[name])
    text = read_maybe_gzip(path).decode("utf-8")
    smiles = _csv_smiles(text, path, column=None)
    return smiles if limit is None else smiles[:limit]


def read_user_text(path, expected: str) -> str:
    """The UTF-8 text of a user's file (gzip or not); a one-line DataError that asks for
    ``expected`` when it is missing or not text."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file; give {expected}")
    try:
        return read_maybe_gzip(path).decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; give {expected}") from None


def read_smiles(path, column: Optional[str] = None) -> list[str]:
    """The SMILES strings of a user file, in order, blank lines skipped.

    A ``.csv`` (or ``.csv.gz``) file is read as a table: the column ``column``, else the first
    column named like ``smiles``. Any other file is read as text, one SMILES per line (a line's
    first whitespace-separated field, so ``SMILES name`` .smi files work too).
    """
    path = Path(path).expanduser()
    text = read_user_text(path, "a CSV with a SMILES column or a text file")
    suffixes = [s.lower() for s in path.suffixes]
    if ".csv" in suffixes:
        smiles = _csv_smiles(text, path, column)
    else:
        smiles = [line.split()[0] for line in text.splitlines() if line.strip()]
    if not smiles:
        raise DataError(f"{path} holds no SMILES")
    return smiles


def _csv_smiles(text: str, path: Path, column: Optional[str]) -> list[str]:
    """The SMILES column of a CSV text."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise DataError(f"{path} is empty")
    names = [h.strip() for h in header]
    if column is not None:
        if column not in names:
            raise DataError(f"{path} has no column {column!r} (columns: {', '.join(names)})")
        index = names.index(column)
    else:
        found = [i for i, n in enumerate(names) if n.lower() in _SMILES_COLUMNS]
        if not found:
            raise DataError(f"{path} has no SMILES column (columns: {', '.join(names)}); name it SMILES or pass its name")
        index = found[0]
    smiles = []
    for row in reader:
        if len(row) > index and row[index].strip():
            smiles.append(row[index].strip())
    return smiles
