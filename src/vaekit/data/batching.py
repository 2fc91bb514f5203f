"""Minibatches from tensors that stay on the training device.

No DataLoader, no per-example Python: one ``randperm`` per epoch and batched indexing. Dynamic
binarisation (a fresh Bernoulli draw each time an image is used, as in Burda et al. 2015)
happens on the device, from the same seeded generator as everything else in the run.
"""

from __future__ import annotations

from typing import Iterator, Optional

import torch


class Batches:
    """Iterate over ``(x, y)`` minibatches of ``x`` (and labels ``y``, or None).

    With ``world_size > 1`` every rank draws the same permutation and takes its own slice of
    each global batch of ``batch_size * world_size`` examples, so N ranks with batch b see
    exactly the batches one process with batch N*b would.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: Optional[torch.Tensor] = None,
        batch_size: int = 128,
        shuffle: bool = True,
        binarize: bool = False,
        generator: Optional[torch.Generator] = None,
        device: torch.device | str | None = None,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.device = torch.device(device) if device is not None else x.device
        self.x = x.to(self.device)
        self.y = None if y is None else y.to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.binarize = binarize
        self.generator = generator
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        global_batch = self.batch_size * self.world_size
        return -(-self.x.shape[0] // global_batch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, Optional[torch.Tensor]]]:
        n = self.x.shape[0]
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        global_batch = self.batch_size * self.world_size
        for start in range(0, n, global_batch):
            chunk = order[start : start + global_batch]
            # Split the global batch evenly across ranks (the last one may be short).
            per_rank = -(-chunk.shape[0] // self.world_size)
            idx = chunk[self.rank * per_rank : (self.rank + 1) * per_rank]
            xb = self.x[idx]
            if self.binarize:
                xb = torch.bernoulli(xb, generator=self.generator)
            yield xb, (None if self.y is None else self.y[idx])


def binarize_fixed(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One seeded Bernoulli draw of grey images in [0, 1]: a fixed binarised evaluation set."""
    g = torch.Generator(device=x.device).manual_seed(seed)
    return torch.bernoulli(x, generator=g)
