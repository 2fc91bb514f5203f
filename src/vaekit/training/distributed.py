"""Data-parallel training under ``torchrun``: process group, DDP wrapper, rank-0-only output.

``torchrun --nproc_per_node=N -m vaekit train ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR/PORT`` set. :func:`setup` joins them into one
process group (NCCL when training on CUDA, gloo on the CPU), pins each process to its GPU, and
the training loop then:

* gives every rank the same seeded permutation and its slice of each global batch
  (:class:`vaekit.data.batching.Batches`), reshuffled every epoch;
* draws the random numbers of a step (binarisation, reparameterisation and importance-sampling
  noise) for the whole global batch from the shared generator and lets each rank take its
  slice, so N ranks with batch b follow the one-process run with batch N*b up to float
  rounding, for the ELBO, KL warm-up, free bits and IWAE (see :class:`GlobalBatchObjective`);
* averages gradients with :class:`~torch.nn.parallel.DistributedDataParallel`, and sums the
  epoch metrics across ranks;
* writes the progress bar, logs and checkpoints from rank 0 only.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import NoReturn

import torch
import torch.distributed as dist
from torch import nn

from vaekit.core.device import device_of
from vaekit.core.distributions import standard_normal
from vaekit.core.objectives import elbo_loss, iwae_loss_at, kl_term
from vaekit.errors import ConfigError


def launched() -> bool:
    """True inside a multi-process launch (``torchrun`` sets WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return rank_and_world()[0] == 0


def setup(device: str = "auto") -> None:
    """Join the process group torchrun describes (no-op for a single process or if joined)."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return
    if not dist.is_available():
        raise ConfigError("this torch build has no torch.distributed; run a single process")
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if device == "cuda" and not use_cuda:
        raise ConfigError("training.device=cuda but no CUDA GPU is available; use device=cpu or auto")
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")


def finish() -> None:
    """Leave the process group together (no-op for a single process): a barrier first, so that
    no rank tears down its connections while another still works (rank 0 writing the run folder),
    then the group is destroyed before the interpreter exits."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def leave(code: int = 0) -> NoReturn:
    """End one process of a multi-process launch: :func:`finish`, flush the output, then exit with
    ``code`` without the interpreter's teardown. There, a gloo worker thread may still be releasing
    the tensors of the last collectives (the final barrier keeps the work that was in flight), which
    needs the GIL a finalising interpreter no longer hands out: the thread then aborts the process
    (SIGABRT, "terminate called without an active exception") after a clean run, on any rank, about
    once in 40 two-rank runs on a 2-core host. Everything a run writes is closed before this."""
    finish()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over all ranks in place (identity for one process); returns ``t``."""
    if rank_and_world()[1] > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


@dataclass
class GlobalSlice:
    """This rank's part of a global batch: rows ``lo:hi`` of the ``n`` rows that all ranks
    together hold (:attr:`vaekit.data.batching.Batches.span`), and the run's shared generator."""

    lo: int
    hi: int
    n: int
    generator: torch.Generator


class GlobalBatchObjective(nn.Module):
    """The training objective of one rank's slice of a global batch, as a module DDP can wrap.

    ``forward(x, y, part, beta)`` encodes the slice, reparameterises with noise drawn for the
    *whole* global batch and sliced (``part``: a :class:`GlobalSlice`), decodes and returns the
    objective's terms plus ``scaled_loss``, the loss rescaled by ``len(slice) * world / n`` so that
    DDP's gradient average equals the gradient of the global batch mean even when the last global
    batch splits unevenly.

    Every term is a mean over examples, so the slices' means weighted by their sizes give the
    global batch's, with one exception: free bits penalise ``max(free_bits, E_batch KL_d)`` per
    latent dimension, a non-linear function of the *global* batch mean. Each rank therefore
    all-reduces the per-dimension KL means (no gradient) and hands the global mean to
    :func:`~vaekit.core.objectives.kl_term`, which decides from it which dimensions are above the
    floor; above it the rank's own slice mean carries the gradient, and the weighted gradients of
    the slices sum to the gradient of the global mean.
    """

    def __init__(self, model: nn.Module, objective: str = "elbo", num_samples: int = 1, free_bits: float = 0.0):
        super().__init__()
        self.model = model
        self.objective, self.num_samples, self.free_bits = objective, num_samples, free_bits

    def forward(self, x: torch.Tensor, y, part: GlobalSlice, beta: float) -> dict[str, torch.Tensor]:
        q = self.model.encode(x, y)
        k = self.num_samples if self.objective == "iwae" else None
        shape = (part.n, *q.mean.shape[1:]) if k is None else (k, part.n, *q.mean.shape[1:])
        # the same numbers, in the same order, as the one-process run draws for the whole batch
        eps = standard_normal(shape, part.generator, q.mean.device, q.mean.dtype)
        z = q.reparameterize(eps[part.lo:part.hi] if k is None else eps[:, part.lo:part.hi])
        if k is not None:
            terms = iwae_loss_at(self.model, x, q, z, y)
        else:
            terms = elbo_loss(x, self.model.output_at(q, z, y), beta, 0.0)
            if self.free_bits > 0:
                per_dim = q.kl_per_dim()
                global_mean = all_reduce_sum(per_dim.mean(dim=0).detach() * ((part.hi - part.lo) / part.n))
                penalised, _ = kl_term(per_dim, self.free_bits, global_mean=global_mean)
                terms["loss"] = terms["recon"] + beta * penalised
        world = rank_and_world()[1]
        return {**terms, "scaled_loss": terms["loss"] * ((part.hi - part.lo) * world / part.n)}


def wrap(model: nn.Module, objective: str = "elbo", num_samples: int = 1, free_bits: float = 0.0) -> nn.Module:
    """DDP around the global-batch objective of ``model`` (on the model's device)."""
    device = device_of(model)
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(GlobalBatchObjective(model, objective, num_samples, free_bits), device_ids=ids)
