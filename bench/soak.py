"""Soak test: train, resume, evaluate and sample again and again, watching memory and file handles.

Each iteration trains a small VAE on digits into a fresh run folder, resumes it for one more
epoch, evaluates it, loads it, estimates log p(x) by importance sampling, and deletes the
folder. After every iteration the resident memory (VmRSS) and the number of open file
descriptors (/proc/self/fd) are recorded. After a warm-up, memory must stay flat (growth under
--max-growth-mb from the warm-up level to the end) and the fd count must not rise.

    flock /tmp/vaekit-cpu.lock python bench/soak.py --minutes 10 --out bench/results/soak.md
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from settings import cpu_name  # bench/settings.py, beside this script


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def one_iteration(root: Path, i: int) -> dict:
    import torch

    import vaekit

    cfg = vaekit.Config()
    cfg.model.hidden = (64,)
    cfg.model.latent_dim = 4
    cfg.training.epochs = 2
    cfg.training.batch_size = 64
    cfg.training.progress = False
    cfg.training.seed = i
    run = root / f"run{i}"
    with contextlib.redirect_stdout(io.StringIO()):  # the runs print their summaries
        vaekit.train_run(cfg, out=run)
        vaekit.resume_run(run, epochs=3)
    result = vaekit.evaluate_run(run)
    model = vaekit.load(run)
    x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(i))
    ll = vaekit.log_likelihood(model, x, num_samples=64)
    shutil.rmtree(run)
    return {"elbo": result["elbo"], "ll": float(ll.mean())}


def iterate(minutes: float, warmup: int, start: float) -> list[dict]:
    """Iterations until ``minutes`` have passed (and at least ``warmup + 1``), each measured."""
    root = Path(tempfile.mkdtemp(prefix="vaekit-soak-"))
    samples = []
    deadline = start + minutes * 60
    i = 0
    try:
        while time.perf_counter() < deadline or i <= warmup:
            t0 = time.perf_counter()
            out = one_iteration(root, i)
            gc.collect()
            samples.append({"iteration": i, "t_s": round(time.perf_counter() - start, 1),
                            "seconds": round(time.perf_counter() - t0, 2), "rss_mb": round(rss_mb(), 1),
                            "fds": open_fds(), **out})
            print(json.dumps(samples[-1]), flush=True)
            i += 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return samples


def rss_slope(post: list[dict]) -> float:
    """Least-squares slope of RSS over the given iterations, MB per 100 iterations."""
    n = len(post)
    mx = sum(s["iteration"] for s in post) / n
    my = sum(s["rss_mb"] for s in post) / n
    var = sum((s["iteration"] - mx) ** 2 for s in post)
    return 100 * sum((s["iteration"] - mx) * (s["rss_mb"] - my) for s in post) / var if var else 0.0


def report(args, samples: list[dict], start: float) -> tuple[str, str]:
    """(the Markdown report, its verdict PASS/FAIL)."""
    import torch

    import vaekit

    base = samples[args.warmup]
    end = samples[-1]
    growth = end["rss_mb"] - base["rss_mb"]
    peak = max(s["rss_mb"] for s in samples[args.warmup:])
    fd_growth = end["fds"] - base["fds"]
    slope = rss_slope(samples[args.warmup:])
    ok_mem, ok_fd = growth <= args.max_growth_mb, fd_growth <= 0
    verdict = "PASS" if ok_mem and ok_fd else "FAIL"
    lines = [
        "# Soak: repeated train / resume / evaluate / load / log-likelihood",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"torch {torch.__version__}, vaekit {vaekit.__version__}; torch threads {torch.get_num_threads()}.",
        "",
        f"Command: `python bench/soak.py --minutes {args.minutes:g}` (run under `flock /tmp/vaekit-cpu.lock`).",
        "",
        "Each iteration: train digits (MLP 64, latent 4, 2 epochs), resume to 3 epochs, `evaluate_run`, "
        "`load`, `log_likelihood` (k=64, 32 inputs), delete the folder.",
        "",
        "| | value |",
        "| --- | --- |",
        f"| duration | {(time.perf_counter() - start) / 60:.1f} min, {len(samples)} iterations |",
        f"| RSS after warm-up (iteration {args.warmup}) | {base['rss_mb']:.1f} MB |",
        f"| RSS at the end | {end['rss_mb']:.1f} MB (growth {growth:+.1f} MB, limit {args.max_growth_mb:g} MB) |",
        f"| RSS peak after warm-up | {peak:.1f} MB |",
        f"| RSS trend after warm-up | {slope:+.2f} MB per 100 iterations |",
        f"| open fds after warm-up / at the end | {base['fds']} / {end['fds']} |",
        f"| seconds per iteration (median) | {sorted(s['seconds'] for s in samples)[len(samples) // 2]:.2f} |",
        f"| verdict | **{verdict}** |",
        "",
        "RSS and fds every tenth iteration:",
        "",
        "| iteration | t (s) | RSS (MB) | fds |",
        "| --- | --- | --- | --- |",
        *[f"| {s['iteration']} | {s['t_s']} | {s['rss_mb']} | {s['fds']} |" for s in samples[:: max(1, len(samples) // 20)]],
        "",
    ]
    return "\n".join(lines), verdict


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--warmup", type=int, default=5, help="iterations before the baseline is taken")
    p.add_argument("--max-growth-mb", type=float, default=20.0)
    p.add_argument("--out", default=None, help="write a Markdown report here")
    args = p.parse_args(argv)
    os.environ.setdefault("VAEKIT_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    import torch  # noqa: F401  (imported before the clock starts: the first iteration's time is its own)

    start = time.perf_counter()
    samples = iterate(args.minutes, args.warmup, start)
    text, verdict = report(args, samples, start)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
