"""Batches: every example once per epoch, rank slices partition global batches, memmap streaming."""

import numpy as np
import pytest
import torch

from vaekit.data.batching import Batches


def _epoch(b):
    return [(xb.clone(), None if yb is None else yb.clone()) for xb, yb in b]


@pytest.mark.parametrize("n,batch", [(10, 3), (64, 8), (7, 7)])
def test_each_example_once_per_epoch_and_reshuffled(n, batch):
    x = torch.arange(n, dtype=torch.float32)[:, None]
    b = Batches(x, torch.arange(n), batch, generator=torch.Generator().manual_seed(0))
    first, second = _epoch(b), _epoch(b)
    assert len(first) == len(b) == -(-n // batch)
    for epoch in (first, second):
        seen = torch.cat([xb[:, 0] for xb, _ in epoch])
        assert sorted(seen.tolist()) == list(range(n))
        assert all(torch.equal(xb[:, 0].long(), yb) for xb, yb in epoch)  # labels follow their rows
    if n > batch:
        assert not torch.equal(torch.cat([xb for xb, _ in first]), torch.cat([xb for xb, _ in second]))


@pytest.mark.parametrize("world", [2, 3])
def test_rank_slices_are_the_one_process_global_batches(world):
    n, batch = 50, 4
    x = torch.rand(n, 1, 2, 2)
    one = _epoch(Batches(x, None, batch * world, binarize=True, generator=torch.Generator().manual_seed(1)))
    ranks = [_epoch(Batches(x, None, batch, binarize=True, generator=torch.Generator().manual_seed(1),
                            rank=r, world_size=world)) for r in range(world)]
    assert all(len(r) == len(one) for r in ranks)
    for i, (xb, _) in enumerate(one):
        assert torch.equal(torch.cat([r[i][0] for r in ranks]), xb)  # same rows, same binarisation draws


def test_dynamic_binarisation_is_bernoulli():
    x = torch.full((4000, 1, 2, 2), 0.3)
    b = Batches(x, None, 1000, binarize=True, generator=torch.Generator().manual_seed(0))
    draws = torch.cat([xb for xb, _ in b])
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    assert abs(draws.mean().item() - 0.3) < 0.01
    assert not torch.equal(torch.cat([xb for xb, _ in b]), draws)  # fresh draws each epoch


def test_sixteen_bit_draws_are_exact_at_the_ends_and_unbiased_between():
    from vaekit.data.batching import bernoulli_draw, uniform16

    g = torch.Generator().manual_seed(0)
    p = torch.tensor([0.0, 1 / 255, 0.5, 254 / 255, 1.0]).repeat(100_000, 1)
    u = uniform16(tuple(p.shape), g, "cpu")
    assert u.dtype == torch.int16 and u.min() == -32768 and u.max() == 32767
    b = bernoulli_draw(p, u)
    assert b[:, 0].sum() == 0 and b[:, 4].sum() == len(b)  # never on at p=0, always at p=1
    se = (p[0, 1:4] * (1 - p[0, 1:4]) / len(b)).sqrt()
    assert ((b[:, 1:4].mean(0) - p[0, 1:4]).abs() < 4 * se).all()
    # the four 16-bit parts of each 64-bit draw are independent of each other
    parts = u.reshape(-1, 4).float()
    corr = torch.corrcoef(parts.T)
    assert (corr - torch.eye(4)).abs().max() < 0.01


def test_memmap_streams_the_same_batches_as_memory(tmp_path):
    data = np.random.default_rng(0).random((101, 5), dtype=np.float32)
    np.save(tmp_path / "t.npy", data)
    mm = np.load(tmp_path / "t.npy", mmap_mode="r")
    streamed = Batches(mm, None, 16, generator=torch.Generator().manual_seed(3))
    resident = Batches(torch.from_numpy(data), None, 16, generator=torch.Generator().manual_seed(3))
    assert streamed.streamed and not resident.streamed
    for (a, _), (b, _) in zip(streamed, resident):
        assert torch.equal(a, b)


def test_mapped_rows_and_image_memmaps_stream_the_same_batches_as_memory(tmp_path):
    from vaekit.data.mapped import MappedRows

    rng = np.random.default_rng(1)
    table = rng.random((200, 3), dtype=np.float32)
    np.save(tmp_path / "t.npy", table)
    images = rng.random((50, 1, 2, 3), dtype=np.float32)
    np.save(tmp_path / "i.npy", images)
    cases = [(MappedRows.open(tmp_path / "t.npy"), table, 32), (np.load(tmp_path / "i.npy", mmap_mode="r"), images, 8)]
    for source, data, batch in cases:
        streamed = Batches(source, None, batch, generator=torch.Generator().manual_seed(5))
        resident = Batches(torch.from_numpy(data), None, batch, generator=torch.Generator().manual_seed(5))
        assert streamed.streamed and len(streamed) == len(resident)
        for _ in range(2):  # reshuffled each epoch, identically
            for (a, _), (b, _) in zip(streamed, resident):
                assert a.shape == b.shape and torch.equal(a, b)
