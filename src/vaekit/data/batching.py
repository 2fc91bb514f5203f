"""Minibatches from tensors that stay on the training device, or stream from a memory map.

No DataLoader, no per-example Python: one ``randperm`` per epoch and batched indexing. Dynamic
binarisation (a fresh Bernoulli draw each time an image is used, as in Burda et al. 2015)
happens on the device, from the same seeded generator as everything else in the run. It is
drawn as ``uniform < p``: the same distribution as ``torch.bernoulli(p)``, about four times
faster on the CPU (``bernoulli_`` with a generator runs one element at a time there).

Data larger than memory (a NumPy memory map, ``numpy.load(path, mmap_mode='r')``) is streamed:
each batch reads its rows in sorted order from the file and only then moves them to the
device, so resident memory stays bounded by the page cache the OS is willing to give back.
"""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np
import torch


def _is_memmap(x) -> bool:
    return isinstance(x, np.ndarray)


class Batches:
    """Iterate over ``(x, y)`` minibatches of ``x`` (and labels ``y``, or None).

    ``x`` is a tensor (moved to ``device`` once) or a NumPy array / memory map (rows are read
    per batch, so it never has to fit in memory).

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
        self.streamed = _is_memmap(x)
        if device is not None:
            self.device = torch.device(device)
        else:
            self.device = torch.device("cpu") if self.streamed else x.device
        self.x = x if self.streamed else x.to(self.device)
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
        if not self.streamed:
            return self.x[idx]
        # Sorted indices read the memory map front to back (page cache friendly); the order
        # within a batch does not matter to a mean over the batch, but keep it as drawn so that
        # a streamed run and an in-memory run see identical batches.
        host = idx.cpu().numpy()
        order = np.argsort(host, kind="stable")
        rows = np.empty((len(host), *self.x.shape[1:]), dtype=np.float32)
        rows[order] = self.x[host[order]]
        return torch.from_numpy(rows).to(self.device, non_blocking=True)

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
                u = torch.rand((chunk.shape[0], *xb.shape[1:]), generator=self.generator,
                               device=self.generator.device if self.generator is not None else xb.device)
                xb = (u[lo:hi].to(xb.device) < xb).to(xb.dtype)
            yield xb, (None if self.y is None else self.y[idx.to(self.y.device)])


def binarize_fixed(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One seeded Bernoulli draw of grey images in [0, 1]: a fixed binarised evaluation set."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    return torch.bernoulli(x, generator=g)
