"""The arithmetic limit bench/throughput.py compares every trainer with: the model's FLOPs per
sample, and the rates of a dense float32 matmul, of the first layer, and of a step's matmuls and
Adam update alone, measured on the device at hand."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from throughput_contenders import BATCH, D, HIDDEN, LATENT, LR, sync


def matmul_gflops(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def linear_gflops(device: torch.device, repeats: int = 300) -> float:
    x, w = torch.randn(BATCH, D, device=device), torch.randn(HIDDEN, D, device=device)
    for _ in range(20):
        F.linear(x, w)
    sync(device)
    t = time.perf_counter()
    for _ in range(repeats):
        F.linear(x, w)
    sync(device)
    return 2 * BATCH * D * HIDDEN * repeats / (time.perf_counter() - t) / 1e9


def step_floor(device: torch.device, repeats: int = 200) -> tuple[float, float]:
    """(ms, ms): one training step's matmuls alone (float32, under the current matmul precision), and
    the fused Adam update alone, for this model at batch 128. The matmuls: the 4 forward products, the
    4 weight gradients, and the input gradients of the 3 layers that have one (not the first: x needs
    none), at the shapes the step uses."""
    shapes = [(D, HIDDEN), (HIDDEN, 2 * LATENT), (LATENT, HIDDEN), (HIDDEN, D)]  # (in, out) per layer
    xs = [torch.randn(BATCH, i, device=device) for i, _ in shapes]
    ws = [torch.randn(o, i, device=device) for i, o in shapes]
    gs = [torch.randn(BATCH, o, device=device) for _, o in shapes]

    def matmuls():
        for j, (x, w, g) in enumerate(zip(xs, ws, gs)):
            F.linear(x, w)  # forward
            g.t() @ x  # weight gradient
            if j:
                g @ w  # input gradient

    params = [nn.Parameter(w.clone()) for w in ws] + [nn.Parameter(torch.zeros(o, device=device)) for _, o in shapes]
    for q in params:
        q.grad = torch.randn_like(q)
    opt = torch.optim.Adam(params, lr=LR, fused=True)
    out = []
    for fn in (matmuls, opt.step):
        for _ in range(20):
            fn()
        sync(device)
        t = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync(device)
        out.append((time.perf_counter() - t) / repeats * 1e3)
    return out[0], out[1]


MACS = D * HIDDEN + HIDDEN * 2 * LATENT + LATENT * HIDDEN + HIDDEN * D  # forward multiply-adds per sample
FLOPS_PER_SAMPLE = 3 * 2 * MACS  # forward + backward taken as 3x the forward
