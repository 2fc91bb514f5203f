"""The training loop: plain, top to bottom, in the order it runs.

``train(model, data, cfg, run_dir)`` runs Adam on minibatches (zero_grad, forward, backward,
clip, step), evaluates on the validation split after every epoch, and, given a run folder,
writes a metrics line, the weights and a resume checkpoint after every epoch. Metrics are
accumulated on the device so the loop does not wait on the host each step.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from pathlib import Path
from typing import Any, Optional

import torch
from tqdm.auto import tqdm

from vaekit.runs import folder

from vaekit.training import distributed
from vaekit.config import Config
from vaekit.data.batching import Batches, binarize_fixed
from vaekit.errors import ConfigError, TrainingError
from vaekit.measure.diagnostics import PosteriorCollapseWarning, collapse_message, latent_diagnostics
from vaekit.measure.evaluation import elbo_breakdown
from vaekit.core.models import VAE
from vaekit.core.objectives import beta_at, elbo_loss, iwae_loss, trim_at


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device=cuda but no CUDA GPU is available; use device=cpu or auto")
    return torch.device(name)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX-512 BF16 or AMX), where oneDNN's bf16 matmuls
    beat float32 ones; without either, bf16 autocast only adds conversions. False when torch cannot tell."""
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(torch.cpu, name, None)
        try:
            if check is not None and check():
                return True
        except Exception:  # a torch build that cannot query the CPU: float32, the safe choice
            pass
    return False


def autocast_dtype(precision: str, device: torch.device, kind: str = "image") -> Optional[torch.dtype]:
    """torch.bfloat16 where training.precision asks for bf16 autocast on ``device``, else None.

    ``auto`` is bf16 on a CUDA GPU that supports it (tensor cores take bf16 at several times the
    float32 rate), and for image data on a CPU with native bf16 (:func:`cpu_has_native_bf16`): on
    an AVX-512 BF16 host the MNIST MLP trained 1.2-1.6x faster per epoch and the conv net 1.3-1.6x,
    to the same test ELBO (``bench/results/throughput-amd-epyc.md``). Elsewhere, and for tables,
    ``auto`` is float32: on a 10-column table bf16 was no faster there and 0.07 nats worse.
    ``bf16`` on a CPU without native bf16 runs, but slower than float32.
    """
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if precision == "auto":
        cpu_bf16 = device.type == "cpu" and kind == "image" and cpu_has_native_bf16()
        return torch.bfloat16 if cuda_bf16 or cpu_bf16 else None
    if precision == "bf16" and device.type == "cuda" and not cuda_bf16:
        raise ConfigError("training.precision=bf16 but this GPU has no bfloat16; use precision=fp32")
    return torch.bfloat16 if precision == "bf16" else None


def resolve_config(cfg: Config, data) -> Config:
    """Replace the ``auto`` choices by what suits ``data`` (a DataSplits); returns ``cfg``."""
    if cfg.data.binarize == "auto":  # MNIST is binarised dynamically by convention (Burda et al. 2015)
        cfg.data.binarize = "dynamic" if data.name == "mnist" else "none"
    if cfg.data.binarize != "none" and data.kind != "image":
        raise ConfigError(f"data.binarize={cfg.data.binarize} applies to images in [0, 1], not to tables; use binarize=none")
    if cfg.model.likelihood == "auto":
        cfg.model.likelihood = "bernoulli" if data.binary or cfg.data.binarize != "none" else "gaussian-learned"
    if cfg.model.likelihood == "bernoulli" and not data.binary and cfg.data.binarize == "none":
        lo, hi = float(data.train.min()), float(data.train.max())
        if lo < 0 or hi > 1:
            raise ConfigError(
                f"likelihood=bernoulli needs data in [0, 1], these range over [{lo:.3g}, {hi:.3g}]; use likelihood=gaussian-learned"
            )
    if cfg.training.epochs is None:
        cfg.training.epochs = min(1000, max(10, math.ceil(500_000 / data.train.shape[0])))
    if cfg.model.model == "cvae" and data.num_classes < 1:
        raise ConfigError("model=cvae needs labelled data: an image set with classes, or data.label_column for a table")
    if cfg.training.compile and (cfg.training.objective != "elbo" or distributed.rank_and_world()[1] > 1):
        raise ConfigError("training.compile applies to objective=elbo in one process; "
                          "turn it off for objective=iwae or under torchrun")
    if cfg.training.trim > 0 and (cfg.training.compile or cfg.training.objective != "elbo"
                                  or distributed.rank_and_world()[1] > 1):
        raise ConfigError("training.trim applies to objective=elbo in one process without training.compile; "
                          "set trim=0 for objective=iwae, compile or torchrun")
    if cfg.training.batch_size > data.train.shape[0]:
        raise ConfigError(f"training.batch_size={cfg.training.batch_size} is larger than the {data.train.shape[0]} training examples")
    return cfg.validate()


def eval_inputs(data, split: str, cfg: Config) -> torch.Tensor:
    """The evaluation copy of a split: one fixed, seeded binarisation when training binarises."""
    x = getattr(data, split)
    if cfg.data.binarize == "dynamic":
        return binarize_fixed(x, seed=cfg.data.split_seed)
    if cfg.data.binarize == "threshold":
        return (x > 0.5).to(x.dtype)
    return x


def _labels(model, data, split: str) -> Optional[torch.Tensor]:
    return getattr(data, f"{split}_labels") if getattr(model, "conditional", False) else None


# How often (in optimiser steps) the loop looks at the running sums for NaN/inf. Looking means a
# host synchronisation; the sums carry a NaN forward, so none is missed. Each step's (recon, kl,
# loss) also goes into a device-side window of this many rows, so a NaN found at a look is located
# at its exact step. On the CPU each look costs ~10 us of op overhead, on a GPU a pipeline stall.
CHECK_EVERY = 50


def _check_finite(window: torch.Tensor, first_step: int, last_step: int, epoch: int, run_dir: Optional[Path]) -> None:
    """Raise a TrainingError naming the first step in ``first_step..last_step`` whose terms were
    not finite, and which terms; ``window[s % CHECK_EVERY]`` holds step s's (recon, kl, loss)."""
    for s in range(first_step, last_step + 1):
        row = window[s % CHECK_EVERY]
        if torch.isfinite(row).all():
            continue
        terms = dict(zip(("recon", "kl", "loss"), row.tolist()))
        bad = [k for k in ("recon", "kl") if not math.isfinite(terms[k])] or ["loss"]
        kept = f"; the last good checkpoint (end of epoch {epoch}) is kept in {run_dir}" if run_dir and epoch > 0 else ""
        raise TrainingError(
            f"the {' and '.join(bad)} term became {terms[bad[0]]} at step {s}{kept}; "
            "lower training.lr, keep training.grad_clip on, or use a Gaussian likelihood with a larger scale_floor"
        )


def compiled_elbo(model: torch.nn.Module, free_bits: float):
    """``torch.compile`` of the ELBO terms as a function of (x, y, noise, beta), for training.compile.

    The reparameterisation noise comes in as an argument (drawn by the loop from the run's
    generator, as ``model.forward`` would draw it), so a compiled run consumes the random
    stream exactly as an eager one and differs from it only by float rounding; beta is a
    tensor so that a warm-up does not recompile every step. The backward pass is compiled with
    it (AOTAutograd). One process and objective=elbo only (see :func:`resolve_config`).
    """
    from vaekit.core.models import VAEOutput

    def terms(x, y, eps, beta):
        q = model.encode(x, y)
        z = q.reparameterize(eps)  # DiagonalGaussian.rsample with the given noise
        return elbo_loss(x, VAEOutput(q, z, model.decode(z, y)), beta, free_bits)

    if next(model.parameters()).device.type == "cpu":
        _require_cpp_compiler()
    return torch.compile(terms)


def _require_cpp_compiler() -> None:
    """Raise a ConfigError when torch.compile has no C++ compiler for CPU kernels (it would fail at the
    first step with a long traceback)."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError:  # another torch layout: let torch.compile report for itself
        return
    try:
        get_cpp_compiler()
    except Exception:
        raise ConfigError("training.compile on the CPU needs a C++ compiler (g++ or clang++ on PATH, or $CXX); "
                          "install one or set training.compile=false") from None


@contextlib.contextmanager
def float32_matmul_precision(name: str):
    """``torch.set_float32_matmul_precision(name)`` inside the block; the previous setting after it."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(name)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def clip_gradients(params, max_norm: float) -> None:
    """Scale the gradients so that their global L2 norm is at most ``max_norm``.

    On a GPU this is ``clip_grad_norm_`` (no host synchronisation). On the CPU, where reading a
    scalar back costs nothing, the squared norm is a sum of BLAS dot products (a quarter of the
    time of ``torch.linalg.vector_norm`` per tensor here) and the gradients are rescaled only
    when the norm is above the bound, instead of multiplied by 1 every step.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    if grads[0].device.type != "cpu":
        torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)
        return
    # in full float32 whatever training.matmul_precision says: oneDNN's bf16 dot is 12x slower here
    with float32_matmul_precision("highest"):
        norm = math.sqrt(sum(float(torch.dot(g.reshape(-1), g.reshape(-1))) for g in grads))
    if norm > max_norm:  # a NaN norm is left alone: the loss check reports it
        torch._foreach_mul_(grads, max_norm / (norm + 1e-6))


SUBNORMAL_SWEEP = 50  # steps between sweeps of Adam's moments (see clear_tiny_moments)


@torch.no_grad()
def clear_tiny_moments(optimizer: torch.optim.Optimizer, below: float = 1e-30) -> None:
    """Set Adam's moment entries smaller than ``below`` in magnitude to exactly 0.

    The first moment of a gradient that has been zero for many steps (a first-layer weight of a pixel
    that is almost never lit, as near MNIST's borders: after 4 epochs 18% of that layer's moments)
    decays by beta1 each step into the subnormal range, below 1.2e-38, and then stays at the
    smallest subnormal for good; x86 arithmetic on subnormals is slow, and an MNIST MLP's fifth
    epoch ran 15-22% slower than its first. Flush-to-zero
    (``torch.set_flush_denormal``) is a per-thread setting that the intra-op worker threads do not
    all get. At beta1 = 0.9 an entry takes 173 steps to fall from 1e-30 to 1.2e-38, so a sweep every
    ``SUBNORMAL_SWEEP`` steps keeps every entry normal or zero; 1e-30 is far below anything Adam's
    update can see (it divides by sqrt(v) + 1e-8).
    """
    for state in optimizer.state.values():
        for key in ("exp_avg", "exp_avg_sq"):
            moment = state.get(key)
            if moment is not None:
                moment.masked_fill_(moment.abs() < below, 0.0)


def make_optimizer(params, t, device: torch.device) -> torch.optim.Optimizer:
    """Adam with the fused kernel where torch has one for the device (CPU and CUDA): one op
    updates every parameter, instead of ~10 small ops per parameter tensor."""
    if device.type in ("cpu", "cuda"):
        try:
            return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay, fused=True)
        except (RuntimeError, TypeError, ValueError):  # an older torch without a fused kernel here
            pass
    return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)


def _diagnostics_record(model, val_x, val_y, t) -> dict[str, Any]:
    """Latent diagnostics on (up to 2000 examples of) the validation split, for metrics.jsonl."""
    d = latent_diagnostics(model, val_x[:2000], None if val_y is None else val_y[:2000], batch_size=t.eval_batch_size, seed=t.seed)
    return {"val_active_units": d["active_units"], "val_mutual_info": d["mutual_info"], "val_kl_per_dim": d["kl_per_dim"]}


def _warn_if_collapsed(history: list[dict[str, Any]], model) -> None:
    """Warn, naming the remedies, when the last epoch's posterior has collapsed onto the prior."""
    last = history[-1] if history else None
    if last and "val_active_units" in last:
        message = collapse_message(last["val_kl"], last["val_active_units"], len(last["val_kl_per_dim"]))
        if message:
            warnings.warn(message, PosteriorCollapseWarning, stacklevel=3)


def _tensorboard(run_dir: Optional[Path]):
    if run_dir is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def train(
    model: torch.nn.Module, data, cfg: Config, run_dir: Optional[str | Path] = None,
    resume: Optional[dict[str, Any]] = None,
) -> list[dict[str, Any]]:
    """Train ``model`` on ``data`` (a DataSplits) as ``cfg.training`` says; returns one dict per epoch.

    ``resume`` is a state read by :func:`vaekit.folder.load_resume`: the model, optimiser,
    random-generator state and counters continue exactly where that checkpoint stopped.
    """
    t = resolve_config(cfg, data).training
    run_dir = Path(run_dir) if run_dir is not None else None
    device = next(model.parameters()).device
    rank, world = distributed.rank_and_world()
    main = rank == 0  # only rank 0 shows progress and writes files
    run_dir = run_dir if main else None
    g = torch.Generator(device=device).manual_seed(t.seed)  # the same stream on every rank
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(params, t, device)
    # One process: the model itself. Under torchrun: DDP around the global-batch objective.
    net = distributed.wrap(model) if world > 1 else model
    compiled = compiled_elbo(model, t.free_bits) if t.compile else None
    # bf16 autocast for the image/table VAE's networks (the distributions upcast their
    # parameters, so losses and the optimiser stay float32); channels_last for conv nets on a GPU,
    # the layout its convolution kernels are fastest in.
    amp = autocast_dtype(t.precision, device, data.kind) if isinstance(model, VAE) else None
    channels_last = isinstance(model, VAE) and model.config.arch == "conv" and device.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)

    epoch0, step, best, bad_epochs, history = 0, 0, math.inf, 0, []
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        g.set_state(resume["rng"])
        epoch0, step = int(resume["epoch"]), int(resume["step"])
        best, bad_epochs = float(resume["best_val"]), int(resume["bad_epochs"])
        history = folder.read_metrics(run_dir)[:epoch0] if run_dir else []

    dynamic = cfg.data.binarize == "dynamic"
    batches = Batches(
        data.train if dynamic else eval_inputs(data, "train", cfg), _labels(model, data, "train"),
        t.batch_size, shuffle=True, binarize=dynamic, generator=g, device=device, rank=rank, world_size=world,
    )
    val_x, val_y = eval_inputs(data, "val", cfg), _labels(model, data, "val")
    writer = _tensorboard(run_dir)
    show = t.progress and main
    bar = tqdm(total=(t.epochs - epoch0) * len(batches), disable=not show, unit="batch", dynamic_ncols=True)
    constant_beta = t.warmup_steps <= 0
    # a line per epoch, or about 20 lines for a long run (metrics.jsonl and curves.png hold every epoch)
    report_every = max(1, math.ceil((t.epochs - epoch0) / 20))
    beta_tensor = None  # beta as a tensor for the compiled step (made once when beta is constant)
    # the matmul precision for this run only; the bar and the writer closed however the loop ends
    with float32_matmul_precision(t.matmul_precision), bar, (writer or contextlib.nullcontext()):
        for epoch in range(epoch0, t.epochs):
            model.train()
            bar.set_description(f"epoch {epoch + 1}/{t.epochs}")
            # Running sums of loss, recon, kl (each times the batch size) and examples seen, kept
            # on the device: the loop never waits for the host except every CHECK_EVERY steps.
            sums = torch.zeros(4, device=device)
            window = torch.zeros(CHECK_EVERY, 3, device=device)
            seen, checked, started = 0, step, time.perf_counter()
            beta = t.beta
            for xb, yb in batches:
                if not constant_beta:
                    beta = beta_at(step, t.beta, t.warmup_steps)
                if channels_last and xb.dim() == 4:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
                    if world > 1:
                        terms = net(xb, yb, g, batches.span, beta, t.free_bits, t.objective, t.iw_samples)
                    elif t.objective == "iwae":
                        terms = iwae_loss(model, xb, t.iw_samples, yb, g)
                    elif compiled is not None:
                        # The noise is drawn here, from g, exactly as model.forward would draw it.
                        eps = torch.randn((xb.shape[0], model.latent_dim), generator=g, device=device, dtype=params[0].dtype)
                        if beta_tensor is None or not constant_beta:
                            beta_tensor = torch.tensor(beta, device=device)
                        terms = compiled(xb, yb, eps, beta_tensor)
                    else:
                        terms = elbo_loss(xb, model(xb, yb, generator=g), beta, t.free_bits,
                                          trim_at(step, t.trim, t.epochs * len(batches), t.trim_start))
                opt.zero_grad(set_to_none=True)
                terms.get("scaled_loss", terms["loss"]).backward()
                if t.grad_clip > 0:
                    clip_gradients(params, t.grad_clip)
                opt.step()
                step += 1
                if step % SUBNORMAL_SWEEP == 0 and device.type == "cpu":
                    clear_tiny_moments(opt)
                n = xb.shape[0]
                seen += n
                values = torch.stack([terms["recon"].detach(), terms["kl"].detach(), terms["loss"].detach()])
                window[step % CHECK_EVERY] = values
                sums[:3].add_(values, alpha=n)
                if step % CHECK_EVERY == 0:
                    if not torch.isfinite(sums[:3]).all():  # a NaN since the last look stays in the sums
                        _check_finite(window, checked + 1, step, epoch, run_dir)
                    checked = step
                    if show:
                        recon, kl, loss = (sums[:3] / seen).tolist()
                        bar.set_postfix(loss=f"{loss:.2f}", recon=f"{recon:.2f}", kl=f"{kl:.2f}", refresh=False)
                bar.update(1)
            sums[3] = seen
            recon, kl, loss, total = distributed.all_reduce_sum(sums).tolist()
            recon, kl, loss = (v / max(total, 1) for v in (recon, kl, loss))
            if not all(map(math.isfinite, (loss, recon, kl))):
                _check_finite(window, checked + 1, step, epoch, run_dir)
                raise TrainingError(f"the training loss became {loss} on another process in epoch {epoch + 1}; "
                                    "lower training.lr or keep training.grad_clip on")
            seen = int(total)
            seconds = time.perf_counter() - started
            val = elbo_breakdown(model, val_x, val_y, beta=t.beta, batch_size=t.eval_batch_size, seed=t.seed)
            record = {
                "epoch": epoch + 1, "step": step, "beta": beta_at(step, t.beta, t.warmup_steps),
                "train_loss": loss, "train_recon": recon, "train_kl": kl,
                "val_loss": val["loss"], "val_recon": val["recon"], "val_kl": val["kl"], "val_elbo": val["elbo"],
                "epoch_time_s": seconds, "samples_per_s": seen / max(seconds, 1e-9),
            }
            record.update(_diagnostics_record(model, val_x, val_y, t))
            history.append(record)
            if val["loss"] < best - 1e-6:
                best, bad_epochs = val["loss"], 0
            else:
                bad_epochs += 1
            stopping = bool(t.early_stopping) and bad_epochs >= t.early_stopping
            if show and (epoch == epoch0 or (epoch + 1) % report_every == 0 or epoch + 1 == t.epochs or stopping):
                bar.write(
                    f"epoch {epoch + 1:>3}  train loss {loss:8.3f} (recon {recon:8.3f}, kl {kl:7.3f})  "
                    f"val loss {val['loss']:8.3f}  {record['samples_per_s']:,.0f} samples/s"
                )
            if run_dir is not None:
                folder.save_weights(run_dir, model)
                folder.append_metrics(run_dir, record)
                folder.save_resume(run_dir, {
                    "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    "optimizer": opt.state_dict(), "rng": g.get_state(), "epoch": epoch + 1, "step": step,
                    "best_val": best, "bad_epochs": bad_epochs,
                })
                if writer is not None:
                    for key, value in record.items():
                        if key not in ("epoch", "step") and isinstance(value, (int, float)):
                            writer.add_scalar(key.replace("_", "/", 1), value, epoch + 1)
                    writer.flush()
            if stopping:
                if show:
                    bar.write(f"early stopping: no better validation loss for {bad_epochs} epochs")
                break
    if main:  # one warning, from rank 0, as for every other message of the run
        _warn_if_collapsed(history, model)
    return history
