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
from typing import Any, Optional

import torch
import torch.distributed as dist
from torch import nn

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


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over all ranks in place (identity for one process); returns ``t``."""
    if rank_and_world()[1] > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


class GlobalBatchObjective(nn.Module):
    """The training objective of one rank's slice of a global batch, as a module DDP can wrap.

    ``forward(x, y, generator, span, beta, free_bits, objective, iw_samples)`` encodes the
    slice, reparameterises with noise drawn for the *whole* global batch and sliced
    (``span = (lo, hi, n)``), decodes and returns the objective's terms plus ``scaled_loss``,
    the loss rescaled by ``len(slice) * world / n`` so that DDP's gradient average equals the
    gradient of the global batch mean even when the last global batch splits unevenly.

    Every term is a mean over examples, so the slices' means weighted by their sizes give the
    global batch's, with one exception handled here: free bits penalise
    ``max(free_bits, E_batch KL_d)`` per latent dimension, a non-linear function of the
    *global* batch mean. Each rank therefore all-reduces the per-dimension KL means (no
    gradient) and decides from the global mean which dimensions are above the floor; below it
    the term is the constant ``free_bits``, above it the rank's own slice mean, whose weighted
    gradients sum to the gradient of the global mean.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x, y, generator, span, beta: float, free_bits: float, objective: str = "elbo",
                iw_samples: int = 1) -> dict[str, torch.Tensor]:
        from vaekit.core.models import VAEOutput
        from vaekit.core.objectives import elbo_loss, iwae_loss_at

        lo, hi, n = span
        q = self.model.encode(x, y)
        k = iw_samples if objective == "iwae" else None
        shape = (n, *q.mean.shape[1:]) if k is None else (k, n, *q.mean.shape[1:])
        eps = torch.randn(shape, generator=generator, device=q.mean.device, dtype=q.mean.dtype)
        # DiagonalGaussian.rsample with the global batch's noise (the same numbers, in the same
        # order, as the one-process run draws for the doubled batch).
        z = q.reparameterize(eps[lo:hi] if k is None else eps[:, lo:hi])
        if objective == "iwae":
            terms = iwae_loss_at(self.model, x, q, z, y)
        else:
            terms = elbo_loss(x, VAEOutput(q, z, self.model.decode(z, y)), beta, 0.0)
            if free_bits > 0:
                per_dim = q.kl_per_dim().mean(dim=0)  # this slice's mean KL per latent dimension
                global_mean = all_reduce_sum(per_dim.detach() * ((hi - lo) / n))
                penalised = torch.where(global_mean >= free_bits, per_dim, torch.full_like(per_dim, free_bits)).sum()
                terms["loss"] = terms["recon"] + beta * penalised
        world = rank_and_world()[1]
        return {**terms, "scaled_loss": terms["loss"] * ((hi - lo) * world / n)}


def wrap(model: nn.Module) -> nn.Module:
    """DDP around the global-batch objective of ``model`` (on the model's device)."""
    device = next(model.parameters()).device
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(GlobalBatchObjective(model), device_ids=ids)


def follow_run(config=None, resume: Optional[str] = None, epochs: Optional[int] = None) -> None:
    """What ranks other than 0 do for ``vaekit train``: the same training, no files written.

    Rank 0 runs :func:`vaekit.runs.train_run` / :func:`~vaekit.runs.resume_run` (run folder,
    checkpoints, pictures); the others build the same model from the same seed (or the same
    resume checkpoint) and take part in every collective step.
    """
    import copy

    from vaekit.runs import folder
    from vaekit.data import load_dataset
    from vaekit.core.models import VAE
    from vaekit.training.loop import pick_device, resolve_config, train

    state: Optional[dict[str, Any]] = None
    if resume is not None:
        doc = folder.read_run(resume)
        cfg = folder.run_config(doc)
        if epochs is not None:
            cfg.training.epochs = epochs
            cfg.validate()
        state = folder.load_resume(resume)
        data = load_dataset(cfg.data)
        model = folder.build_model(doc).to(pick_device(cfg.training.device))
    else:
        cfg = copy.deepcopy(config)
        cfg.validate()
        data = load_dataset(cfg.data)
        resolve_config(cfg, data)
        torch.manual_seed(cfg.training.seed)
        model = VAE(cfg.model, data.shape, data.num_classes).to(pick_device(cfg.training.device))
    cfg.training.progress = False
    train(model, data, cfg, None, resume=state)
