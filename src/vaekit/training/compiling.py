"""``training.compile=auto``: compile the training step where it pays, and fall back where it cannot.

``torch.compile`` fuses the step's elementwise work (reparameterisation, the likelihood's terms,
bf16 casts) into a few kernels, at the price of a compilation before the first step. What the
rule below rests on (``bench/results/compile.md``):

- a CPU that multiplies bf16 natively (AVX-512 BF16), MNIST MLP: compiled 35-46k samples/s
  against 26-35k for the eager step (``bench/results/throughput-amd-epyc.md``), about a fifth
  of the time saved; on an Intel Xeon with AMX, where the MLP's matmuls take bf16 inputs in float32
  (``training.runtime.dense_on_amx``), compiled 56.2k against 46.3k eager
  (``bench/results/throughput-intel-amx.md``, run 5), about a sixth saved;
- a CPU without it (the step stays float32): on a quiet 2-core EPYC compiled epochs ran at most
  a few percent faster than eager ones after the compilation (medians 19.3k against 18.5k
  samples/s, within the run-to-run spread; ``bench/results/compile.md``), so 5% is assumed;
- the compilation itself: 26-34 s for the MNIST MLP's step from a cold cache on a 2-core EPYC,
  4-5 s once torch's cache holds it.

So ``auto`` compiles when (1) the step is one compile supports (the plain VAE, objective=elbo,
one process, no trimming), (2) a C++ compiler is there for CPU kernels, and (3) the run is long
enough that the expected saving repays a cold compilation: its eager training time, estimated
from the model's FLOPs, is at least :data:`COLD_COMPILE_S` divided by the share of time compiling
saved on such a device (:data:`GAIN`): 150 s on a GPU or a CPU whose matmuls take bf16 (autocast, or
matmul_precision=medium), 600 s on a float32 CPU.
The choice depends on the machine and the settings only, never on timings, so two runs with the
same seed on one machine take the same path.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

import torch

from vaekit.core.models import VAE
from vaekit.errors import ConfigError
from vaekit.training import distributed
from vaekit.training.runtime import require_cpp_compiler

COLD_COMPILE_S = 30.0  # the MNIST MLP step's cold compilation, measured 26-34 s (see above)
# the share of the eager time compiling saved (see above); a GPU is assumed to save at least what
# a bf16 CPU did (its eager steps are launch-bound, which is what compiling removes)
GAIN = {"bf16": 0.2, "float32-cpu": 0.05, "cuda": 0.2}
# What an eager step reaches, for the estimate only: about half the float32 matmul rate of a
# 2-core EPYC (bench/results/throughput-layered.md: 50% of 127.6 GFLOP/s), and on a GPU a launch
# bound of about a millisecond per step for small models, whatever their FLOPs
EAGER_FLOPS = {"cpu": 60e9, "cuda": 20e12}
STEP_OVERHEAD_S = {"cpu": 0.3e-3, "cuda": 1e-3}


def supports_compile(model: torch.nn.Module, t) -> bool:
    """Whether the compiled step (``training.step.compiled_elbo``) computes this run's objective."""
    return (type(model) is VAE and t.objective == "elbo" and t.trim == 0
            and distributed.rank_and_world()[1] == 1)


def has_cpp_compiler() -> bool:
    """Whether :func:`~vaekit.training.runtime.require_cpp_compiler` finds a compiler for CPU kernels."""
    try:
        require_cpp_compiler()
    except ConfigError:
        return False
    return True


def training_flops(model: torch.nn.Module, example: torch.Tensor, y=None) -> tuple[float, float]:
    """FLOPs of training: (per example, per step), each three times the forward pass's (forward,
    and the backward's two products per layer), counted by ``torch.utils.flop_counter`` on one and
    on two examples. The per-step part is what a batch pays once whatever its size, such as a
    VampPrior encoding its pseudo-inputs; counting it per example overstated a K=500 VampPrior
    run's time 270-fold."""
    from torch.utils.flop_counter import FlopCounterMode  # local: needed only when the choice is open

    def forward_flops(n: int) -> int:
        rows = example[:1].expand(n, *example.shape[1:])
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(rows, None if y is None else y[:1].expand(n, *y.shape[1:]))
        return counter.get_total_flops()

    one, two = forward_flops(1), forward_flops(2)
    return 3.0 * (two - one), 3.0 * (2 * one - two)


def estimated_eager_s(flops: tuple[float, float], examples: int, steps: int, device: torch.device) -> float:
    """Seconds of eager training for ``flops`` = (per example, per step) of :func:`training_flops`."""
    kind = "cuda" if device.type == "cuda" else "cpu"
    per_example, per_step = flops
    return (per_example * examples + per_step * steps) / EAGER_FLOPS[kind] + steps * STEP_OVERHEAD_S[kind]


def auto_compile(model: torch.nn.Module, t, matmul_dtype: Optional[torch.dtype], total_steps: int,
                 example: torch.Tensor, y=None) -> tuple[bool, str]:
    """training.compile=auto's choice for this run, and why, in words."""
    device = next(model.parameters()).device
    if not supports_compile(model, t):
        return False, "this model kind or objective runs eagerly"
    if device.type == "cpu" and not has_cpp_compiler():
        return False, "no C++ compiler for torch.compile (install g++ to compile)"
    estimate = estimated_eager_s(training_flops(model, example, y), total_steps * t.batch_size, total_steps, device)
    gain = GAIN["cuda" if device.type == "cuda" else "bf16" if matmul_dtype == torch.bfloat16 else "float32-cpu"]
    if estimate * gain < COLD_COMPILE_S:
        return False, f"a short run (about {estimate:.0f} s eager) does not repay a compilation"
    return True, f"a long run (about {estimate / 60:.0f} min eager)"


def with_fallback(compiled: Callable, eager: Callable, say: Callable[[str], None]) -> Callable:
    """``compiled`` with its first call timed and reported; if it fails, ``eager`` from then on,
    with one line saying why. Both draw the same noise from the run's generator, so the steps
    that follow are the eager run's (up to float rounding)."""
    state = {"fn": None}

    def terms(x, y, g, beta, number):
        if state["fn"] is not None:
            return state["fn"](x, y, g, beta, number)
        started, rng = time.perf_counter(), g.get_state()
        try:
            out = compiled(x, y, g, beta, number)
        except Exception as exc:  # inductor or a missing toolchain: the run goes on eagerly
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            say(f"training.compile=auto: compiling failed ({first}); training eagerly")
            g.set_state(rng)
            state["fn"] = eager
            return eager(x, y, g, beta, number)
        say(f"training.compile=auto: compiled the training step in {time.perf_counter() - started:.1f} s")
        state["fn"] = compiled
        return out

    return terms
