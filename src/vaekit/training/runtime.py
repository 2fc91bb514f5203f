"""Runtime settings of a training run: device, precision, optimiser, gradient clipping, the
subnormal sweep. Everything here is about *how* the arithmetic runs, none of it about *what* is
computed (that is :mod:`vaekit.core.objectives`), so a run's numbers do not depend on this module
beyond float rounding.
"""

from __future__ import annotations

import contextlib
import math
import typing
from dataclasses import dataclass
from typing import Any, Optional

import torch

from vaekit.config import TrainingConfig
from vaekit.core.device import device_of
from vaekit.errors import ConfigError
from vaekit.training.update import Update


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device=cuda but no CUDA GPU is available; use device=cpu or auto")
    return torch.device(name)


def _cpu_supports(name: str) -> bool:
    """torch.cpu's check ``name``; False when this torch build has none or cannot query the CPU."""
    check = getattr(torch.cpu, name, None)
    try:
        return bool(check is not None and check())
    except Exception:  # float32, the safe choice
        return False


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX-512 BF16 or AMX), where oneDNN's bf16 matmuls
    beat float32 ones; without either, bf16 autocast only adds conversions. False when torch cannot tell."""
    return _cpu_supports("_is_avx512_bf16_supported") or cpu_has_amx()


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (Intel Xeon since Sapphire Rapids); False when torch cannot tell."""
    return _cpu_supports("_is_amx_tile_supported")


def dense_on_amx(precision: str, device: torch.device, kind: str, model: Optional[torch.nn.Module]) -> bool:
    """``precision=auto``'s one exception on the CPU: an image model without convolutions, on a CPU
    with AMX, trains in float32 with bf16 matmuls (float32 accumulation, as ``matmul_precision=medium``)
    instead of under bf16 autocast. On Intel Xeon hosts with AMX the MNIST MLP ran 6-24% faster that
    way in each of four runs (best of their rounds; in every round of the two runs with rounds shown),
    to the same test ELBO (-128.10 against -128.11), while the conv net ran faster under autocast in
    three runs of four; on an AVX-512 BF16 host without AMX autocast was the faster for both
    (``bench/results/throughput-intel-amx.md``, ``throughput-amd-epyc.md``). Autocast casts each weight to bf16 and its gradient back every step,
    which the float32 step with bf16 matmuls does not."""
    return (precision == "auto" and device.type == "cpu" and kind == "image" and model is not None
            and not has_conv2d(model) and cpu_has_amx())


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bf16 natively: a CUDA GPU with bf16, or a CPU with
    :func:`cpu_has_native_bf16`."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()


def autocast_dtype(precision: str, device: torch.device, kind: str = "image",
                   model: Optional[torch.nn.Module] = None) -> Optional[torch.dtype]:
    """torch.bfloat16 where training.precision asks for bf16 autocast on ``device``, else None.

    ``auto`` is bf16 for image data on a CUDA GPU that supports it (tensor cores take bf16 at several
    times the float32 rate) and on a CPU with native bf16 (:func:`cpu_has_native_bf16`): on
    an AVX-512 BF16 host the MNIST MLP trained 1.2-1.6x faster per epoch and the conv net 1.3-1.6x,
    to the same test ELBO (``bench/results/throughput-amd-epyc.md``). Elsewhere, and for tables,
    ``auto`` is float32: on a 10-column table bf16 was no faster there and 0.07 nats worse. Given the
    ``model``, an image model without convolutions on a CPU with AMX is float32 too, with bf16
    matmuls (:func:`dense_on_amx`, :func:`matmul_precision_for`).
    ``bf16`` on a CPU without native bf16 runs, but slower than float32.
    """
    if dense_on_amx(precision, device, kind, model):
        return None
    if precision == "auto":
        # tables stay float32 (and the tabular likelihood keeps its parameters' dtype)
        return torch.bfloat16 if kind == "image" and native_bf16(device) else None
    if precision == "bf16" and device.type == "cuda" and not native_bf16(device):
        raise ConfigError("training.precision=bf16 but this GPU has no bfloat16; use precision=fp32")
    return torch.bfloat16 if precision == "bf16" else None


def matmul_precision_for(t, device: torch.device, kind: str, model: Optional[torch.nn.Module]) -> str:
    """The float32 matmul precision a run trains under: ``training.matmul_precision``, or ``medium``
    where ``precision=auto`` picks float32 with bf16 matmuls (:func:`dense_on_amx`) and the setting is
    left at its default."""
    if t.matmul_precision == "highest" and dense_on_amx(t.precision, device, kind, model):
        return "medium"
    return t.matmul_precision


def run_precision(t, device: torch.device, kind: str, model: Optional[torch.nn.Module],
                  kept: Optional[dict] = None) -> tuple[Optional[torch.dtype], str]:
    """The autocast dtype (None: float32) and float32 matmul precision a run trains under
    (:func:`autocast_dtype`, :func:`matmul_precision_for`). ``kept``: the :func:`precision_record`
    of the run being resumed. With ``precision=auto`` on the same kind of device, the run keeps
    what it started with, so that resuming stays exact where auto would now choose otherwise (a
    newer vaekit, another CPU); but not bf16 autocast where this device has no native bf16."""
    amp, matmul = autocast_dtype(t.precision, device, kind, model), matmul_precision_for(t, device, kind, model)
    if t.precision != "auto" or not kept or kept["device"] != device.type:
        return amp, matmul
    kept_amp = None if kept["autocast"] == "none" else getattr(torch, kept["autocast"])
    if kept_amp is not None and not native_bf16(device):  # emulated: far slower (a CPU), or refused (a GPU)
        return amp, matmul
    return kept_amp, kept["matmul"]


def dtype_name(amp: Optional[torch.dtype]) -> str:
    """How a run's record names its autocast dtype: ``bfloat16``, or ``none`` for float32."""
    return "none" if amp is None else str(amp).removeprefix("torch.")


def precision_record(amp: Optional[torch.dtype], matmul: str, device: torch.device) -> dict[str, str]:
    """What a resume file keeps of a run's precision, for :func:`run_precision`."""
    return {"device": device.type, "autocast": dtype_name(amp), "matmul": matmul}


MATMUL_PRECISIONS = typing.get_args(typing.get_type_hints(TrainingConfig)["matmul_precision"])


def is_precision_record(kept: Any) -> bool:
    """Whether ``kept`` is a record :func:`precision_record` can have written (a resume file may be damaged)."""
    return (isinstance(kept, dict) and isinstance(kept.get("device"), str)
            and kept.get("autocast") in (dtype_name(None), dtype_name(torch.bfloat16))
            and kept.get("matmul") in MATMUL_PRECISIONS)


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
        norm = math.sqrt(sum(float(torch.dot(v, v)) for v in (g.reshape(-1) for g in grads)))
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


def require_cpp_compiler() -> None:
    """Raise a ConfigError when torch.compile has no C++ compiler for CPU kernels (it would fail at the
    first step with a long traceback)."""
    try:
        # local: torch._inductor is heavy and only needed when training.compile is on
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError:  # another torch layout: let torch.compile report for itself
        return
    try:
        get_cpp_compiler()
    except Exception:
        raise ConfigError("training.compile on the CPU needs a C++ compiler (g++ or clang++ on PATH, or $CXX); "
                          "install one or set training.compile=false") from None


def has_conv2d(model: torch.nn.Module) -> bool:
    """Whether ``model`` holds 2-D convolutions (whatever kind of model it is)."""
    return any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


@dataclass
class Runtime:
    """How one run's steps execute: made once by :func:`runtime_for`, read by every step."""

    device: torch.device
    params: list  # the trainable parameters
    optimizer: torch.optim.Optimizer
    grad_clip: float  # max global gradient norm; 0: no clipping
    amp: Optional[torch.dtype]  # the autocast dtype of the networks, None: float32
    matmul_precision: str  # torch's float32 matmul precision for the run (matmul_precision_for)
    channels_last: bool  # conv nets on a GPU: the layout its convolution kernels are fastest in
    sweep_moments: bool  # clear Adam's tiny moments every SUBNORMAL_SWEEP steps (x86 CPUs)
    update: Update  # the optimiser's gradient clearing and update (training/update.py)

    @property
    def matmul_dtype(self) -> Optional[torch.dtype]:
        """bf16 where the networks' matmuls take bf16 inputs: under autocast, or in float32 with
        matmul_precision=medium on a CPU that multiplies bf16 natively; None: float32 matmuls (or a
        GPU's TF32). What compile=auto weighs (training/compiling.py)."""
        if self.amp is not None:
            return self.amp
        medium = self.device.type == "cpu" and self.matmul_precision == "medium" and cpu_has_native_bf16()
        return torch.bfloat16 if medium else None

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp or torch.bfloat16, enabled=self.amp is not None)


def runtime_for(model: torch.nn.Module, t, kind: str, kept: Optional[dict] = None) -> Runtime:
    """The runtime of training ``model`` (already on its device) under the training settings ``t``
    on data of ``kind`` (``image`` or ``table``); ``kept``: the precision record of a resumed run
    (:func:`run_precision`). Any model kind: nothing here asks what it is."""
    device = device_of(model)
    params = [p for p in model.parameters() if p.requires_grad]
    channels_last = device.type == "cuda" and has_conv2d(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(params, t, device)
    amp, matmul = run_precision(t, device, kind, model, kept)
    return Runtime(
        device=device, params=params, optimizer=optimizer, grad_clip=t.grad_clip, amp=amp,
        matmul_precision=matmul, channels_last=channels_last,
        sweep_moments=device.type == "cpu", update=Update(optimizer),
    )
