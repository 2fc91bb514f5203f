"""What training.compile=auto decides, and what compiling costs and gains on this machine.

For the default `vaekit train --data mnist` model (784-400-20 MLP, dynamic binarisation), trains
three epochs eagerly and three compiled (training.compile=true), alternated, and reports each
epoch's samples/s: the first compiled epoch carries the compilation. Then prints auto's choice for
the default runs (digits, MNIST) and for a long MNIST run, with this machine's precision and, for
comparison, as a CPU with native bf16 would decide.

    VAEKIT_DATA_DIR=/work/shared/datasets python bench/compile_choice.py [--epochs 3]
Writes bench/results/compile.md.
"""

from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path

import torch

import vaekit
from vaekit import Config
from vaekit.data import load_dataset
from vaekit.training import compiling
from vaekit.training.loop import train
from vaekit.training.runtime import autocast_dtype
from vaekit.training.setup import resolve_config

from settings import machine  # bench/settings.py, beside this script


def config(name: str, compile, epochs=None) -> Config:
    cfg = Config()
    cfg.data.name, cfg.training.compile, cfg.training.epochs = name, compile, epochs
    cfg.training.progress, cfg.training.verbose = False, False
    return cfg


def timed(cfg: Config, data) -> list[float]:
    torch.manual_seed(0)
    model = vaekit.VAE(cfg.model, data.shape)
    return [r["samples_per_s"] for r in train(model, data, cfg)]


def choice_rows(amp_here) -> list[str]:
    rows = []
    for label, name, epochs in (("digits, defaults", "digits", None), ("MNIST, defaults", "mnist", None),
                                ("MNIST, 200 epochs", "mnist", 200)):
        cfg = config(name, "auto", epochs)
        data = load_dataset(cfg.data)
        resolve_config(cfg, data)
        model = vaekit.VAE(cfg.model, data.shape)
        steps = cfg.training.epochs * -(-data.train.shape[0] // cfg.training.batch_size)
        here = compiling.auto_compile(model, cfg.training, amp_here, steps, data.train[:1])
        cpp = compiling.has_cpp_compiler
        compiling.has_cpp_compiler = lambda: True  # what a bf16 CPU with a compiler would choose
        bf16 = compiling.auto_compile(model, cfg.training, torch.bfloat16, steps, data.train[:1])
        compiling.has_cpp_compiler = cpp
        rows.append(f"| {label} | {steps:,} | {'on' if here[0] else 'off'}: {here[1]} | "
                    f"{'on' if bf16[0] else 'off'}: {bf16[1]} |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "compile.md"))
    args = p.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    amp = autocast_dtype("auto", torch.device("cpu"), "image")
    data = load_dataset(config("mnist", False).data)
    rates = {}
    for mode in (False, True, False, True):
        cfg = config("mnist", mode, args.epochs)
        resolve_config(cfg, data)
        t0 = time.perf_counter()
        per_epoch = timed(cfg, data)
        rates.setdefault(mode, []).append((per_epoch, time.perf_counter() - t0))
    lines = [f"# training.compile on this machine, and what compile=auto chooses", "",
             f"Machine: {machine()}; precision=auto here means {'bf16' if amp else 'float32'}. "
             f"Run {started:%Y-%m-%d %H:%M} UTC, `python bench/compile_choice.py --epochs {args.epochs}`.", "",
             "MNIST, the default model (784-400-20 MLP, dynamic binarisation, batch 128), samples/s per epoch, "
             "two runs of each, alternated:", "",
             "| training.compile | run | samples/s per epoch | wall s |", "| --- | ---: | --- | ---: |"]
    for mode, runs in rates.items():
        for i, (per_epoch, wall) in enumerate(runs, 1):
            lines.append(f"| {str(mode).lower()} | {i} | {', '.join(f'{r:,.0f}' for r in per_epoch)} | {wall:.1f} |")
    lines += ["", "The first compiled epoch carries the compilation (torch's cache may hold it from an earlier run).", "",
              "compile=auto's choice (training/compiling.py):", "",
              "| run | steps | here | on a CPU with native bf16 and a C++ compiler |", "| --- | ---: | --- | --- |"]
    lines += choice_rows(amp)
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
