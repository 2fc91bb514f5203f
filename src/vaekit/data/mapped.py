"""Tables larger than memory: the rows of a ``.npy`` file, read from its memory map on demand.

:class:`MappedRows` stands in for a float32 tensor ``(N, D)`` in a :class:`~vaekit.data.DataSplits`:
it has ``shape``, ``len``, ``dtype``, and indexing it (a slice, an integer, an array of
positions, ``[:, column]``) returns a tensor of just those rows, read in file order and
standardised on the way out. Nothing ever reads the whole file at once: statistics and scans
go through :meth:`MappedRows.blocks` in chunks of about :data:`CHUNK_BYTES`.

Reads go through the OS page cache. Pages a process touches through a memory map count in its
resident set until it unmaps them, so after every read the mapping's pages are dropped from
this process (``madvise(MADV_DONTNEED)``; the page cache keeps them, a later read maps them
again). Without that, one epoch over a file leaves all of it resident.

Scattered rows (a shuffled batch) are not read through the map at all but with ``os.pread``,
one call per run of consecutive rows: a page fault maps a whole page-cache folio (up to 2 MB on
recent kernels) around the row it needs, so one shuffled batch of small rows read through a map
can put a whole file of hundreds of MB into the resident set at once (bench/results/choices.md).
``pread`` copies just the bytes asked for.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from vaekit.data.standardize import Standardizer
from vaekit.data.tables import check_finite_table, read_npy

CHUNK_BYTES = 16 * 2**20  # rows read per block by scans, as float64 working copies


class NpyMap:
    """A read-only memory map of a 2-D ``.npy`` file (validated, never unpickled) as ``array``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        header = read_npy(self.path)  # np.load(mmap_mode="r", allow_pickle=False) plus vaekit's checks
        self.shape, self.dtype = tuple(header.shape), header.dtype
        order = "F" if header.flags.f_contiguous and not header.flags.c_contiguous else "C"
        offset = int(header.offset)
        del header
        with open(self.path, "rb") as f:
            self._mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.array = np.ndarray(self.shape, self.dtype, buffer=self._mmap, offset=offset, order=order)
        self._offset, self._c_order = offset, order == "C"
        self._fd = os.open(self.path, os.O_RDONLY)

    def __del__(self):
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)
            self._fd = None

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The rows at sorted positions ``rows`` (repeats allowed), copied with ``os.pread``:
        one call per run of consecutive rows, nothing mapped into this process."""
        if not self._c_order or rows.size == 0 or not hasattr(os, "preadv"):  # (no preadv on Windows)
            return np.array(self.array[rows])
        row_bytes = self.dtype.itemsize * int(np.prod(self.shape[1:]))
        unique, inverse = np.unique(rows, return_inverse=True)
        breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        out = np.empty((unique.size, *self.shape[1:]), dtype=self.dtype)
        buf = memoryview(out.reshape(-1).view(np.uint8))
        done = 0
        for run in np.split(unique, breaks):
            size = run.size * row_bytes
            got = os.preadv(self._fd, [buf[done : done + size]], self._offset + int(run[0]) * row_bytes)
            if got != size:
                raise OSError(f"short read from {self.path} ({got} of {size} bytes): was the file truncated?")
            done += size
        return out[inverse.reshape(-1)]

    def release(self) -> None:
        """Unmap the pages this process touched (the data stay in the page cache)."""
        if hasattr(self._mmap, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
            self._mmap.madvise(mmap.MADV_DONTNEED)


class _InMemory:
    """The :class:`NpyMap` interface over an array that is already an ndarray (or a user's memmap)."""

    def __init__(self, array: np.ndarray):
        self.array, self.shape, self.dtype = array, tuple(array.shape), array.dtype

    def take(self, rows: np.ndarray) -> np.ndarray:
        return self.array[rows]

    def release(self) -> None:
        pass


class MappedRows:
    """Rows ``index`` (sorted positions in the file; None: all rows) of a 2-D table, as float32.

    With a ``standardizer`` the rows come out standardised, computed in float64 as
    :func:`vaekit.data.standardize.apply_standardizer` does.
    """

    dtype = torch.float32
    device = torch.device("cpu")
    ndim = 2

    def __init__(self, source, index: Optional[np.ndarray] = None, standardizer: Optional[Standardizer] = None):
        if not hasattr(source, "release"):
            source = _InMemory(np.asarray(source))
        if len(source.shape) != 2:
            raise ValueError(f"MappedRows needs a 2-D array, not shape {source.shape}")
        self.source, self.index = source, index
        self.standardizer = standardizer
        n = source.shape[0] if index is None else len(index)
        self.shape = torch.Size((n, source.shape[1]))

    @classmethod
    def open(cls, path: str | Path) -> "MappedRows":
        """Every row of the ``.npy`` file ``path``, as it is (no standardisation)."""
        return cls(NpyMap(path))

    def __len__(self) -> int:
        return self.shape[0]

    def dim(self) -> int:
        return 2

    def size(self, dim: Optional[int] = None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return self.shape.numel()

    def cpu(self) -> "MappedRows":
        return self  # already host data, as Tensor.cpu() of a CPU tensor returns itself

    def __repr__(self) -> str:
        where = getattr(self.source, "path", "an array")
        return f"MappedRows({self.shape[0]} x {self.shape[1]} rows of {where})"

    # -- reading ---------------------------------------------------------------------------
    def _convert(self, block: np.ndarray) -> np.ndarray:
        """A new float32 array (never a view of the map: its pages are about to be released)."""
        if self.standardizer is None:
            return np.array(block, dtype=np.float32, copy=True)
        return self.standardizer.apply(block).astype(np.float32)

    def read(self, positions) -> np.ndarray:
        """float32 rows at ``positions`` (into this view, any order, repeats allowed), as drawn.

        The file is read in sorted order (front to back through the page cache) and the rows
        are put back in the order asked for.
        """
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        rows = positions if self.index is None else self.index[positions]
        if rows.size > 1 and not np.all(rows[1:] >= rows[:-1]):
            order = np.argsort(rows, kind="stable")
            out = np.empty((rows.size, self.shape[1]), dtype=np.float32)
            out[order] = self._convert(self.source.take(rows[order]))
        else:
            out = self._convert(self.source.take(rows))
        self.source.release()
        return out

    def read_range(self, start: int, stop: int) -> np.ndarray:
        """float32 rows ``start:stop`` of this view (a contiguous read when it covers whole files)."""
        if self.index is None:
            out = self._convert(self.source.array[start:stop])
            self.source.release()
            return out
        return self.read(np.arange(start, stop))

    def blocks(self, max_bytes: Optional[int] = None) -> Iterator[tuple[int, np.ndarray]]:
        """(start, float32 rows start:start+k) over the whole view, k rows of about ``max_bytes``
        (default :data:`CHUNK_BYTES`, read when called) as float64."""
        max_bytes = CHUNK_BYTES if max_bytes is None else max_bytes
        step = max(1, max_bytes // (8 * max(self.shape[1], 1)))
        for start in range(0, self.shape[0], step):
            yield start, self.read_range(start, min(start + step, self.shape[0]))

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, tuple):  # x[rows, columns]: read rows in blocks, keep the columns asked for
            rows, cols = key[0], key[1:] if len(key) > 2 else key[1]
            if isinstance(rows, slice) and rows == slice(None):
                parts = [torch.from_numpy(block)[:, cols] for _, block in self.blocks()]
                return torch.cat(parts) if parts else torch.from_numpy(self.read_range(0, 0))[:, cols]
            return self[rows][(slice(None), cols) if not isinstance(cols, tuple) else (slice(None), *cols)]
        if isinstance(key, (int, np.integer)):
            i = int(key) + (self.shape[0] if key < 0 else 0)
            if not 0 <= i < self.shape[0]:
                raise IndexError(f"index {int(key)} is out of bounds for {self.shape[0]} rows")
            return torch.from_numpy(self.read_range(i, i + 1))[0]
        if isinstance(key, slice):
            start, stop, stride = key.indices(self.shape[0])
            if stride == 1:
                return torch.from_numpy(self.read_range(start, max(start, stop)))
            return torch.from_numpy(self.read(np.arange(start, stop, stride)))
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        key = np.asarray(key)
        if key.dtype == bool:
            key = np.flatnonzero(key)
        return torch.from_numpy(self.read(key))

    def materialize(self) -> torch.Tensor:
        """The whole view as one float32 tensor (it must fit in memory)."""
        out = torch.empty(tuple(self.shape), dtype=torch.float32)
        for start, block in self.blocks():
            out[start : start + block.shape[0]] = torch.from_numpy(block)
        return out

    def min(self) -> torch.Tensor:
        return torch.tensor(min((float(b.min()) for _, b in self.blocks() if b.size), default=float("nan")))

    def max(self) -> torch.Tensor:
        return torch.tensor(max((float(b.max()) for _, b in self.blocks() if b.size), default=float("nan")))


def scan_table(source, train: np.ndarray, name: str, columns: list[str],
               max_bytes: Optional[int] = None) -> tuple[bool, np.ndarray, np.ndarray]:
    """One pass over a 2-D table in blocks: (all values 0/1, train mean, train std), float64.

    Raises the DataError of :func:`~vaekit.data.tables.check_finite_table` at the first NaN or
    infinite cell. ``train`` holds the sorted rows whose mean and (population) standard
    deviation are wanted; blocks are merged with Chan et al.'s pairwise update, so the result
    matches ``numpy.mean``/``numpy.std`` of those rows to rounding.
    """
    n_rows, d = source.shape
    max_bytes = CHUNK_BYTES if max_bytes is None else max_bytes
    step = max(1, max_bytes // (8 * max(d, 1)))
    binary, count = True, 0
    mean, m2 = np.zeros(d), np.zeros(d)
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        block = np.asarray(source.array[start:stop], dtype=np.float64)
        source.release()
        check_finite_table(block, name, columns, row_offset=start, whole=start == 0 and stop == n_rows)
        binary = binary and bool(((block == 0) | (block == 1)).all())
        lo, hi = np.searchsorted(train, [start, stop])
        if hi > lo:
            rows = block[train[lo:hi] - start]
            k = rows.shape[0]
            block_mean = rows.mean(axis=0)
            delta = block_mean - mean
            total = count + k
            mean = mean + delta * (k / total)
            m2 = m2 + ((rows - block_mean) ** 2).sum(axis=0) + delta**2 * (count * k / total)
            count = total
    std = np.sqrt(m2 / max(count, 1))
    return binary, mean, std
