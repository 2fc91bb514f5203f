"""Peak memory of training (issue 4): MNIST in memory, and a memory-mapped table as rows grow.

Each case runs in a fresh subprocess and reports VmHWM (peak resident set) from /proc/self/status.
    VAEKIT_DATA_DIR=/work/shared/datasets /work/venv/bin/python bench/memory.py
Writes bench/results/memory.md. The .npy tables are generated in /tmp and deleted afterwards.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

COLS, STEPS, BATCH = 64, 100, 512


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_mnist() -> None:
    import torch

    import vaekit
    from vaekit import Config
    from vaekit.data import load_dataset
    from vaekit.training import resolve_config, train

    cfg = Config()
    cfg.data.name, cfg.training.epochs, cfg.training.progress, cfg.training.device = "mnist", 1, False, "cpu"
    data = load_dataset(cfg.data)
    resolve_config(cfg, data)
    torch.manual_seed(0)
    train(vaekit.VAE(cfg.model, data.shape), data, cfg)
    print(peak_mb())


def child_memmap(path: str) -> None:
    """STEPS Adam steps of a 64-20 MLP VAE on batches streamed from the memory map."""
    import torch

    import vaekit
    from vaekit.config import ModelConfig
    from vaekit.data.batching import Batches
    from vaekit.objectives import elbo_loss

    x = np.load(path, mmap_mode="r")
    g = torch.Generator().manual_seed(0)
    model = vaekit.VAE(ModelConfig(hidden=(128,), latent_dim=8, likelihood="gaussian"), (COLS,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i, (xb, _) in enumerate(Batches(x, None, BATCH, generator=g)):
        if i == STEPS:
            break
        loss = elbo_loss(xb, model(xb, generator=g))["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    print(peak_mb())


def run(*args: str) -> float:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True, timeout=400)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    import torch

    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "unknown")
    lines = ["# Peak memory (VmHWM) while training", "",
             f"Machine: CPU {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, Python {platform.python_version()}", ""]
    mnist = run("mnist")
    lines += [f"- MNIST, 784-400-20 MLP, one epoch, data resident as float32 tensors: peak RSS {mnist:,.0f} MB "
              f"(target <= 1,500 MB)", "",
              f"Memory-mapped float32 tables ({COLS} columns), {STEPS} steps of batch {BATCH} streamed by "
              "`Batches` (sorted row reads per batch); file pages the OS maps in count towards RSS:", "",
              "| rows | file size | peak RSS |", "| ---: | ---: | ---: |"]
    for rows in (1_000_000, 3_000_000, 10_000_000):
        with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
            path = Path(tmp) / "table.npy"
            mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, COLS))
            rng = np.random.default_rng(0)
            for start in range(0, rows, 500_000):
                stop = min(rows, start + 500_000)
                mm[start:stop] = rng.standard_normal((stop - start, COLS), dtype=np.float32)
            mm.flush()
            del mm
            peak = run("memmap", str(path))
            lines.append(f"| {rows:,} | {rows * COLS * 4 / 2**20:,.0f} MB | {peak:,.0f} MB |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(__file__).parent / "results" / "memory.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "mnist":
        child_mnist()
    elif len(sys.argv) > 2 and sys.argv[1] == "memmap":
        child_memmap(sys.argv[2])
    else:
        main()
