"""Peak memory of training (issue 4): MNIST in memory, and a memory-mapped table as rows grow.

Each case runs in a fresh subprocess and reports VmHWM (peak resident set) from /proc/self/status.
    VAEKIT_DATA_DIR=/work/shared/datasets python bench/memory.py
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

COLS, BATCH = 64, 4096


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
    from vaekit.training.setup import resolve_config

    cfg = Config()
    cfg.data.name, cfg.training.epochs, cfg.training.progress, cfg.training.device = "mnist", 1, False, "cpu"
    data = load_dataset(cfg.data)
    resolve_config(cfg, data)
    torch.manual_seed(0)
    vaekit.train(vaekit.VAE(cfg.model, data.shape), data, cfg)
    print(0.0)
    print(peak_mb())


def child_memmap(path: str) -> None:
    """One whole ``vaekit.train_run`` on the .npy file: the scan and standardisation statistics,
    an epoch of batches streamed from the memory map, validation, diagnostics and the pictures."""
    import tempfile
    import time

    import vaekit
    from vaekit import Config

    cfg = Config()
    cfg.data.name = path
    cfg.model.hidden, cfg.model.latent_dim = (128,), 8
    cfg.training.epochs, cfg.training.batch_size, cfg.training.progress = 1, BATCH, False
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        vaekit.train_run(cfg, out=Path(tmp) / "run")
    print(f"{time.perf_counter() - started:.1f}")
    print(peak_mb())


def run(*args: str) -> list[float]:
    """The numbers the child printed, one per line (the last one: its peak RSS in MB)."""
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True, timeout=1800)
    return [float(v) for v in out.stdout.strip().splitlines()[-2:]]


def main() -> None:
    import torch

    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "unknown")
    lines = ["# Peak memory (VmHWM) while training", "",
             f"Machine: CPU {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, Python {platform.python_version()}", ""]
    mnist = run("mnist")[-1]
    lines += [f"- MNIST, 784-400-20 MLP, one epoch, data resident as float32 tensors: peak RSS {mnist:,.0f} MB "
              f"(target <= 1,500 MB)", "",
              f"Memory-mapped float32 `.npy` tables ({COLS} columns of standard normals): one whole "
              f"`vaekit.train_run` each (data.name = the file; 64-128-8 MLP, Gaussian likelihood, one epoch of batch "
              f"{BATCH}, validation, diagnostics and pictures; 70/10/20 split). The splits are views of the "
              "memory map, each batch reads just its rows, and pages are handed back after every read:", "",
              "| rows | file size | peak RSS | wall s |", "| ---: | ---: | ---: | ---: |"]
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
            seconds, peak = run("memmap", str(path))
            lines.append(f"| {rows:,} | {rows * COLS * 4 / 2**20:,.0f} MB | {peak:,.0f} MB | {seconds:,.0f} |")
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
