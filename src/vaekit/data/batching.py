"""Minibatches from tensors that stay on the training device, or stream from a memory map.

No DataLoader, no per-example Python: one ``randperm`` per epoch and batched indexing. Dynamic
binarisation (a fresh Bernoulli draw each time an image is used, as in Burda et al. 2015)
happens on the device, from the same seeded generator as everything else in the run. It is
drawn as ``uniform < p`` with 16-bit uniforms, four from each 64-bit draw of the generator
(see :func:`bernoulli_draw`): on the CPU ``bernoulli_`` runs one element at a time and ``rand``
spends one generator call per pixel, and at batch 128 the draw was the costliest step of an
MNIST MLP step after the matmuls and Adam.

Data larger than memory (a :class:`~vaekit.data.mapped.MappedRows` view of a memory-mapped
``.npy`` table, or any NumPy array) is streamed: each batch reads just its rows, in sorted
order, from the file, and only then moves them to the device. The permutation is still one
seeded ``randperm`` per epoch (8 bytes per row), so a streamed run sees exactly the batches of
an in-memory run with the same seed.
"""

from __future__ import annotations

import math
from typing import Iterator, Optional

import numpy as np
import torch

from .mapped import MappedRows


def _is_streamed(x) -> bool:
    return isinstance(x, (MappedRows, np.ndarray))


class Batches:
    """Iterate over ``(x, y)`` minibatches of ``x`` (and labels ``y``, or None).

    ``x`` is a tensor (moved to ``device`` once), or a :class:`MappedRows` / NumPy array /
    memory map (rows are read per batch, so it never has to fit in memory).

    With ``world_size > 1`` every rank draws the same permutation and takes its own slice of
    each global batch of ``batch_size * world_size`` examples, so N ranks with batch b see
    exactly the batches one process with batch N*b would. Random draws made per batch (the
    binarisation noise) are drawn for the whole global batch and sliced, so the shared
    generator advances identically on every rank and in the one-process run.
    """

    def __init__(
        self,
        x,
        y: Optional[torch.Tensor] = None,
        batch_size: int = 128,
        shuffle: bool = True,
        binarize: bool = False,
        generator: Optional[torch.Generator] = None,
        device: torch.device | str | None = None,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.streamed = _is_streamed(x)
        if device is not None:
            self.device = torch.device(device)
        else:
            self.device = torch.device("cpu") if self.streamed else x.device
        self.row_shape = tuple(x.shape[1:])
        if self.streamed:  # rows of any shape are read as flat rows of a 2-D view
            self.x = x if isinstance(x, MappedRows) else MappedRows(np.reshape(x, (x.shape[0], -1)))
        else:
            self.x = x.to(self.device)
        self.y = None if y is None else torch.as_tensor(y).to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.binarize = binarize
        self.generator = generator
        self.rank, self.world_size = rank, world_size
        self.span = (0, 0, 0)

    def __len__(self) -> int:
        global_batch = self.batch_size * self.world_size
        return -(-self.x.shape[0] // global_batch)

    def _rows(self, idx: torch.Tensor) -> torch.Tensor:
        if not self.streamed:  # index_select: half the time of x[idx] for random rows of MNIST
            return torch.index_select(self.x, 0, idx)
        # MappedRows.read reads the file in sorted order (page cache friendly) and returns the
        # rows in the order drawn, so a streamed and an in-memory run see identical batches.
        rows = torch.from_numpy(self.x.read(idx.cpu().numpy())).view(-1, *self.row_shape)
        return rows.to(self.device, non_blocking=True)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, Optional[torch.Tensor]]]:
        n = self.x.shape[0]
        perm_device = torch.device("cpu") if self.streamed else self.device
        if self.shuffle:
            gen_device = self.generator.device if self.generator is not None else perm_device
            order = torch.randperm(n, generator=self.generator, device=gen_device).to(perm_device)
        else:
            order = torch.arange(n, device=perm_device)
        global_batch = self.batch_size * self.world_size
        for start in range(0, n, global_batch):
            chunk = order[start : start + global_batch]
            # Split the global batch evenly across ranks (the last one may be short).
            per_rank = -(-chunk.shape[0] // self.world_size)
            lo, hi = self.rank * per_rank, min((self.rank + 1) * per_rank, chunk.shape[0])
            idx = chunk[lo:hi]
            self.span = (lo, hi, chunk.shape[0])  # this rank's rows of the current global batch
            xb = self._rows(idx)
            if self.binarize:
                u = uniform16((chunk.shape[0], *xb.shape[1:]), self.generator,
                              self.generator.device if self.generator is not None else xb.device)
                xb = bernoulli_draw(xb, u[lo:hi].to(xb.device))
            yield xb, (None if self.y is None else torch.index_select(self.y, 0, idx.to(self.y.device)))


def uniform16(shape: tuple[int, ...], generator: Optional[torch.Generator], device) -> torch.Tensor:
    """Independent uniform integers in [-32768, 32767] (int16) of ``shape``: every 64-bit draw of the
    generator gives four of them (a quarter of the generator calls of ``torch.rand``)."""
    n = math.prod(shape)
    words = torch.empty(-(-n // 4), dtype=torch.int64, device=device).random_(-(2**63), None, generator=generator)
    return words.view(torch.int16)[:n].view(shape)


def bernoulli_draw(p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """0/1 (in p's dtype) with P(1) = p, from :func:`uniform16` integers ``u``: 1 where u + 32768 < 65536 p.

    That is exactly 0 at p = 0 and 1 at p = 1, and ceil(65536 p) / 65536 in between: within
    1/65536 of p (MNIST's grey levels are multiples of 1/255).
    """
    # the comparison writes p's dtype directly (out=): a bool result converted after it was several
    # times slower (bench/results/choices.md)
    return torch.lt(u, p.float().mul(65536.0).sub_(32768.0), out=torch.empty_like(p))


def binarize_fixed(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One seeded Bernoulli draw of grey images in [0, 1]: a fixed binarised evaluation set."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    return torch.bernoulli(x, generator=g)
