"""``training.compile=auto``: compile the training step where it pays, and fall back where it cannot.

``torch.compile`` fuses the step's elementwise work (reparameterisation, the likelihood's terms,
bf16 casts) into a few kernels, at the price of a compilation before the first step. What the
rule below rests on (``bench/results/compile.md``):

- a CPU that multiplies bf16 natively (AVX-512 BF16), MNIST MLP: compiled 35-46k samples/s
  against 26-35k for the eager step (``bench/results/throughput-amd-epyc.md``), about a fifth
  of the time saved;
- a CPU without it (the step stays float32): compiled 12.4-13.1k against eager 14.2-14.5k,
  slower, so ``auto`` leaves it off there;
- the compilation itself: 26-34 s for the MNIST MLP's step from a cold cache on a 2-core EPYC,
  4-5 s once torch's cache holds it.

So ``auto`` compiles when (1) the step is one compile supports (the plain VAE, objective=elbo,
one process, no trimming), (2) the device is a CUDA GPU, or a CPU running the networks in bf16,
(3) a C++ compiler is there for CPU kernels, and (4) the run is long enough to repay a cold
compilation: its eager training time, estimated from the model's FLOPs, is at least
:data:`REPAY_S`. The choice depends on the machine and the settings only, never on timings, so
two runs with the same seed on one machine take the same path.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional

import torch

from vaekit.core.models import VAE
from vaekit.training import distributed

COLD_COMPILE_S = 30.0  # the MNIST MLP step's cold compilation, measured 26-34 s (see above)
GAIN = 0.2  # the share of the eager time compiling saved where it helped (bf16 CPU, see above)
REPAY_S = COLD_COMPILE_S / GAIN  # eager seconds from which the saving repays a cold compilation
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
    try:
        # local: torch._inductor is heavy and only needed when compiling is considered
        from torch._inductor.cpp_builder import get_cpp_compiler
        get_cpp_compiler()
    except Exception:
        return False
    return True


def training_flops(model: torch.nn.Module, example: torch.Tensor, y=None) -> float:
    """FLOPs of one training example: three times its forward pass (forward, and the backward's two
    products per layer), counted by ``torch.utils.flop_counter`` on one example."""
    from torch.utils.flop_counter import FlopCounterMode  # local: needed only when the choice is open

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example[:1], None if y is None else y[:1])
    return 3.0 * counter.get_total_flops()


def estimated_eager_s(flops_per_example: float, examples: int, steps: int, device: torch.device) -> float:
    kind = "cuda" if device.type == "cuda" else "cpu"
    return flops_per_example * examples / EAGER_FLOPS[kind] + steps * STEP_OVERHEAD_S[kind]


def auto_compile(model: torch.nn.Module, t, amp: Optional[torch.dtype], total_steps: int,
                 example: torch.Tensor, y=None) -> tuple[bool, str]:
    """training.compile=auto's choice for this run, and why, in words."""
    device = next(model.parameters()).device
    if not supports_compile(model, t):
        return False, "this model kind or objective runs eagerly"
    if device.type != "cuda" and amp != torch.bfloat16:
        return False, "float32 on a CPU: compiled steps measured slower than eager ones"
    if device.type == "cpu" and not has_cpp_compiler():
        return False, "no C++ compiler for torch.compile (install g++ to compile)"
    estimate = estimated_eager_s(training_flops(model, example, y), total_steps * t.batch_size, total_steps, device)
    if estimate < REPAY_S:
        return False, f"a short run (about {estimate:.0f} s eager) does not repay a compilation"
    return True, f"a long run (about {estimate / 60:.0f} min eager)"


def tell(t, message: str) -> None:
    """One line on stderr from rank 0, unless the run is silent (``training.verbose=false``)."""
    if t.verbose and distributed.is_main():
        sys.stderr.write(f"vaekit: {message}\n")
        sys.stderr.flush()


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
