"""The MNIST family's files: the IDX format, Larochelle's ``.amat`` text, and where both live.

IDX (LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte magic number ``0 0 TYPE NDIM``,
NDIM big-endian uint32 sizes, then the values in C order, big-endian. MNIST and Fashion-MNIST
ship as gzip-compressed IDX files; they are read straight from the ``.gz`` (never decompressed
into the data folder, which may be read-only) after their MD5 is checked.

Binarized MNIST (Larochelle & Murray 2011) is text: one image per line, 784 space-separated
``0``/``1`` characters. Its checksum is the SHA-256 of that text, so a gzip-compressed copy is
checked after decompression.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .download import check_md5, check_sha256, ensure_files, missing_files, read_maybe_gzip

# type code -> big-endian dtype (the IDX format's table)
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

# Same files, checksums and mirrors as torchvision.datasets.MNIST / FashionMNIST.
MNIST_FAMILY = {
    "mnist": {
        "folder": "MNIST",
        "title": "MNIST",
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
        "md5": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        "classes": [str(d) for d in range(10)],
    },
    "fashion-mnist": {
        "folder": "FashionMNIST",
        "title": "Fashion-MNIST",
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "md5": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        "classes": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    },
}

BINARIZED_MNIST = {
    "folder": "BinarizedMNIST",
    "mirrors": ["http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"],
    "sha256": {
        "binarized_mnist_train.amat": "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
        "binarized_mnist_valid.amat": "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
        "binarized_mnist_test.amat": "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
    },
    "rows": {"train": 50000, "valid": 10000, "test": 10000},
}


def parse_idx(data: bytes, path: Path) -> np.ndarray:
    """Parse the bytes of an IDX file into an array of its declared dtype and shape."""
    fix = "delete it so it is downloaded again"
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number); {fix}")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (unknown type code 0x{code:02x}); {fix}")
    if ndim == 0:
        raise DataError(f"{path} is not an IDX file (zero dimensions); {fix}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated (header cut short); {fix}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(
            f"{path} is corrupt: shape {dims} needs {expected} bytes of data but it holds "
            f"{len(data) - header}; {fix}"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return values.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: Path, md5: str | None = None) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain), checking its MD5 first when one is given."""
    if md5 is not None:
        check_md5(path, md5)
    return parse_idx(read_maybe_gzip(path), path)


def load_mnist_family(root: Path, key: str, download: bool) -> dict[str, np.ndarray]:
    """MNIST or Fashion-MNIST from ``root/<Folder>/raw`` (torchvision's layout).

    Returns ``train_images`` (60000, 28, 28) uint8, ``train_labels`` (60000,) int64,
    ``test_images``, ``test_labels``.
    """
    info = MNIST_FAMILY[key]
    raw = root / info["folder"] / "raw"
    names = list(info["md5"])
    ensure_files(raw, names, info["mirrors"], what=info["title"], download=download, md5=info["md5"], root=root)
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images_path = raw / f"{prefix}-images-idx3-ubyte.gz"
        labels_path = raw / f"{prefix}-labels-idx1-ubyte.gz"
        images = read_idx(images_path, info["md5"][images_path.name])
        labels = read_idx(labels_path, info["md5"][labels_path.name])
        if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1 or len(labels) != len(images):
            raise DataError(
                f"{images_path} and {labels_path} do not hold matching images and labels; "
                "delete them so they are downloaded again"
            )
        out[f"{split}_images"] = images
        out[f"{split}_labels"] = labels.astype(np.int64)
    return out


def parse_amat(data: bytes, path: Path, rows: int | None = None) -> np.ndarray:
    """Parse binarized-MNIST text into a (rows, 784) uint8 array of 0/1.

    Works on the raw bytes instead of tokenising 55 million numbers: in the published files
    every other byte is a digit, so a strided view is the whole parse; other spacing falls
    back to keeping the ``'0'``/``'1'`` bytes after checking the rest are whitespace.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size % 2 == 0 and _all_in(buf[1::2], b" \n") and _all_in(buf[0::2], b"01"):
        bits = buf[0::2] - ord("0")  # the files as published: one digit, one separator, ...
    else:  # any other spacing: classify every byte through a lookup table
        kind = np.full(256, 3, dtype=np.uint8)
        kind[[ord("0"), ord("1")]] = 1
        kind[list(b" \t\r\n")] = 2
        kinds = kind[buf]
        if (kinds == 3).any():
            raise DataError(f"{path} holds characters other than 0, 1 and spaces; delete it so it is downloaded again")
        bits = buf[kinds == 1] - ord("0")
    if bits.size == 0 or bits.size % 784:
        raise DataError(
            f"{path} holds {bits.size} values, not a whole number of 784-pixel images; "
            "delete it so it is downloaded again"
        )
    bits = bits.reshape(-1, 784)
    if rows is not None and len(bits) != rows:
        raise DataError(f"{path} holds {len(bits)} images, expected {rows}; delete it so it is downloaded again")
    return bits


def _all_in(values: np.ndarray, allowed: bytes) -> bool:
    ok = np.zeros(256, dtype=bool)
    ok[list(allowed)] = True
    return bool(ok[values].all())


def load_binarized_mnist(root: Path, download: bool) -> dict[str, np.ndarray]:
    """Larochelle's binarized MNIST from ``root/BinarizedMNIST``: ``train``, ``valid``, ``test``
    arrays of shape (N, 784), uint8 0/1. Reads ``.amat`` or ``.amat.gz`` (plain wins)."""
    info = BINARIZED_MNIST
    folder = root / info["folder"]
    names = list(info["sha256"])
    ensure_files(folder, names, info["mirrors"], what="binarized MNIST", download=download,
                 sha256=info["sha256"], accept_gz=True, root=root)
    out = {}
    for split, rows in info["rows"].items():
        name = f"binarized_mnist_{split}.amat"
        path = folder / name
        if missing_files(folder, [name]):  # only the compressed copy is there
            path = folder / (name + ".gz")
        text = read_maybe_gzip(path)
        check_sha256(text, info["sha256"][name], path)
        out[split] = parse_amat(text, path, rows)
    return out
