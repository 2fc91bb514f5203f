"""Training throughput on MNIST, side by side in one process (issue 4).

The canonical pytorch/examples VAE (784-400-20 MLP, Bernoulli, batch 128, Adam 1e-3), one epoch,
trained by (a) a reference loop written as the pytorch example writes it (torchvision MNIST +
DataLoader + ToTensor), (b) pythae 0.1.2 with the same networks, (c) vaekit's trainer. Also the
arithmetic limit (the model's FLOPs per sample against a dense matmul measured in this run),
vaekit's conv architecture, and the time to evaluate the test ELBO.

Run with a venv holding pythae (not vaekit's own venv):
    VAEKIT_DATA_DIR=/work/shared/datasets /work/venv-speed/bin/python bench/throughput.py [--rounds 2]
Writes bench/results/throughput.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import vaekit
from vaekit import Config
from vaekit.data import load_dataset
from vaekit.measure.diagnostics import PosteriorCollapseWarning
from vaekit.training.runtime import (autocast_dtype, cpu_has_amx, cpu_has_native_bf16, dense_on_amx,
                                     float32_matmul_precision)
from vaekit.training.setup import eval_inputs, resolve_config

from settings import machine  # bench/settings.py, beside this script
from throughput_contenders import BATCH, D, HIDDEN, LATENT, LR, mnist_root, run_pythae, run_reference
from throughput_limits import FLOPS_PER_SAMPLE, MACS, linear_gflops, matmul_gflops, step_floor

DEVICE = torch.device("cpu")  # every contender's device; main() sets it from --device




# --- (c) vaekit ----------------------------------------------------------------------------------
def vaekit_config(arch: str = "mlp", binarize: str = "auto", compile="auto", precision: str = "auto",
                  matmul_precision: str = "highest") -> Config:
    cfg = Config()
    cfg.training.compile, cfg.training.precision = compile, precision
    cfg.training.matmul_precision = matmul_precision
    cfg.data.name, cfg.data.binarize = "mnist", binarize
    # grey values keep the Bernoulli likelihood (cross-entropy on grey values, as the reference and pythae
    # train), not the Gaussian one that binarize="none" otherwise picks
    cfg.model.likelihood = "bernoulli"
    cfg.model.arch, cfg.model.hidden, cfg.model.latent_dim = arch, (HIDDEN,), LATENT
    cfg.training.epochs, cfg.training.batch_size, cfg.training.lr, cfg.training.progress = 1, BATCH, LR, False
    cfg.training.device = DEVICE.type
    return cfg


def run_vaekit(arch: str = "mlp", binarize: str = "auto", epochs: int = 1, compile="auto",
               precision: str = "auto", matmul_precision: str = "highest") -> tuple[float, object, object, Config]:
    """samples/s of the last epoch (with compile=True: of the second, after the compilation), model, data, config.
    compile="auto" (the CLI's default) lets the run choose, as `vaekit train` does."""
    cfg = vaekit_config(arch, binarize, compile, precision, matmul_precision)
    cfg.training.epochs = 2 if compile is True and epochs == 1 else epochs
    data = load_dataset(cfg.data)
    resolve_config(cfg, data)
    torch.manual_seed(0)
    model = vaekit.VAE(cfg.model, data.shape).to(DEVICE)
    history = vaekit.train(model, data, cfg)
    return history[-1]["samples_per_s"], model, data, cfg


# vaekit's rows: (label, run_vaekit keyword arguments); compile rows report the 2nd epoch
VAEKIT_ROWS = [
    ("vaekit", {}),
    ("vaekit (binarize=none)", {"binarize": "none"}),
    ("vaekit (precision=fp32)", {"precision": "fp32"}),
    ("vaekit (precision=fp32, binarize=none)", {"precision": "fp32", "binarize": "none"}),
    ("vaekit (precision=fp32, matmul_precision=medium)", {"precision": "fp32", "matmul_precision": "medium"}),
    ("vaekit (precision=fp32, binarize=none, matmul_precision=medium)",
     {"precision": "fp32", "binarize": "none", "matmul_precision": "medium"}),
    ("vaekit (compile)", {"compile": True}),
    ("vaekit (compile, binarize=none)", {"compile": True, "binarize": "none"}),
    ("vaekit (compile, precision=fp32)", {"compile": True, "precision": "fp32"}),
    ("vaekit (compile, precision=fp32, binarize=none, matmul_precision=medium)",
     {"compile": True, "precision": "fp32", "binarize": "none", "matmul_precision": "medium"}),
]


# The note under the table ({auto}: what precision=auto means on this machine)
NOTE = ("vaekit uses dynamic binarisation (a fresh Bernoulli draw per image, the MNIST default); the reference "
        "and pythae train on grey values; the `binarize=none` rows are the like-for-like ones. The compile rows run two "
        "epochs and report the second (the first includes torch.compile's compilation). matmul_precision=medium runs the "
        "float32 matmuls with reduced-precision inputs and float32 accumulation (bf16 through oneDNN on CPUs with AMX or AVX-512 bf16; "
        "TF32 or bf16 tensor cores on a GPU), everything "
        "else in float32; the pythae row of that name sets the same torch option around pythae's loop. The rows without "
        "precision=fp32 use vaekit's default precision=auto, which here means {auto}. Every share of the limit is against the float32 matmul rate. The test ELBO is "
        "that of the last round's model, in float32, on the 10,000 test images of the kind it trained on (a fixed "
        "binarisation, or grey values for the binarize=none rows, whose figure is a cross-entropy and not comparable "
        "with the others); compare rows with the same epochs.")


def held_out_elbo(model, data, cfg: Config) -> float:
    """The test ELBO (nats, float32) of a trained model, on test images of the kind it trained on."""
    return vaekit.elbo_breakdown(model, eval_inputs(data, "test", cfg), batch_size=cfg.training.eval_batch_size)["elbo"]


def auto_meaning(gpu) -> str:
    """What precision=auto means for the MLP and the conv net on this device, in words."""
    def meaning(arch: str) -> str:
        cfg = vaekit_config(arch)
        model = vaekit.VAE(cfg.model, (1, 28, 28))
        if dense_on_amx("auto", DEVICE, "image", model):
            return "float32 with bf16 matmuls (matmul_precision=medium)"
        return "float32" if autocast_dtype("auto", DEVICE, "image", model) is None else "bf16 autocast"

    mlp, conv = meaning("mlp"), meaning("conv")
    said = mlp if mlp == conv else f"{mlp} for the MLP and {conv} for the conv net"
    return said + ("" if gpu else " (this CPU has AMX)" if cpu_has_amx() else " (this CPU multiplies bf16 natively)"
                   if cpu_has_native_bf16() else " (this CPU has no native bf16)")


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=2, help="repeat the MLP contenders this many times, interleaved")
    p.add_argument("--no-compile", action="store_true", help="leave out the torch.compile rows")
    p.add_argument("--later-epoch", type=int, default=5, help="also time pythae and vaekit in epoch N of N (0: skip)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where every contender trains")
    p.add_argument("--out", help="default: bench/results/throughput.md, on a GPU throughput-<gpu name>.md")
    return p.parse_args()


def run_rounds(args, rows, root: Path, x_train: torch.Tensor, tmp: str):
    """(samples/s per contender and round, the last round's test ELBO per vaekit row, the float32
    matmul rates measured before the rounds and after each)."""
    # the float32 matmul rate is measured before the rounds and after each one, and the limit is the
    # best of them: on a shared host the rate drifts, and a limit taken at a slow moment flatters every share
    gflops_seen = [matmul_gflops(DEVICE)]
    rates: dict[str, list[float]] = {"reference": [], "pythae": [], "pythae (matmul precision medium)": []}
    rates.update({k: [] for k, _ in rows})
    quality: dict[str, tuple[float, int]] = {}  # vaekit row: (test ELBO in nats, epochs trained)
    run_vaekit(epochs=1)  # warm-up: data load and first-call costs
    for r in range(args.rounds):
        rates["reference"].append(run_reference(root, DEVICE))
        rates["pythae"].append(run_pythae(x_train, Path(tmp) / "pythae", DEVICE))
        with float32_matmul_precision("medium"):  # torch's setting around pythae's loop
            rates["pythae (matmul precision medium)"].append(run_pythae(x_train, Path(tmp) / "pythae", DEVICE))
        for k, kw in rows:
            rate, model, data, cfg = run_vaekit(**kw)
            rates[k].append(rate)
            if r == args.rounds - 1:  # what the last round's model learnt: does a faster option cost quality?
                quality[k] = (held_out_elbo(model, data, cfg), cfg.training.epochs)
        gflops_seen.append(matmul_gflops(DEVICE))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rates.items()), flush=True)
    return rates, quality, gflops_seen


def framework_ms(precision: str, tmp: str) -> float:
    """ms per step of vaekit's default training loop (precision as given, eager) on a model too small to
    compute anything: 16 binary inputs, hidden 8, latent 2, batch 128. What remains is the step's cost
    beside its arithmetic (Python, dispatch, autograd, the loop's bookkeeping), which an eager step of
    the MNIST model pays on top of its matmuls and Adam update."""
    path = Path(tmp) / "tiny.npy"
    if not path.exists():
        rows = torch.rand(60000, 1, 4, 4, generator=torch.Generator().manual_seed(0)) > 0.5
        np.save(path, rows.float().numpy())
    cfg = vaekit_config(precision=precision, compile=False)
    cfg.data.name, cfg.data.binarize = str(path), "dynamic"
    cfg.model.hidden, cfg.model.latent_dim, cfg.training.epochs = (8,), 2, 2
    data = load_dataset(cfg.data)
    resolve_config(cfg, data)
    with warnings.catch_warnings():  # such a model learns nothing, and is told so
        warnings.simplefilter("ignore", PosteriorCollapseWarning)
        history = vaekit.train(vaekit.VAE(cfg.model, data.shape).to(DEVICE), data, cfg)
    return BATCH / history[-1]["samples_per_s"] * 1e3


def limit_lines(gflops_seen: list[float], tmp: str) -> tuple[list[str], float]:
    """(the lines on the arithmetic limit and the step's floor, the limit in samples/s)."""
    gflops, lin = max(gflops_seen), linear_gflops(DEVICE)
    with float32_matmul_precision("medium"):
        gflops_medium = matmul_gflops(DEVICE)
    limit = gflops * 1e9 / FLOPS_PER_SAMPLE
    lines = [f"- 2048x2048 float32 matmul: {gflops:.1f} GFLOP/s, the best of {len(gflops_seen)} measurements in this run "
             f"({', '.join(f'{v:.0f}' for v in gflops_seen)}; before the rounds and after each); "
             f"{BATCH}x{D}x{HIDDEN} linear: {lin:.1f} GFLOP/s",
             f"- model: {MACS:,} forward multiply-adds/sample, {FLOPS_PER_SAMPLE / 1e6:.2f} MFLOP/sample for forward+backward (3x)",
             f"- arithmetic limit at the float32 matmul rate: {limit:,.0f} samples/s ({BATCH / limit * 1e3:.2f} ms per step of {BATCH}); "
             "the \"of limit\" column below is against this one",
             f"- the same 2048x2048 float32 matmul under matmul_precision=medium (bf16 inputs, float32 accumulation): "
             f"{gflops_medium:.1f} GFLOP/s, an arithmetic limit of {gflops_medium * 1e9 / FLOPS_PER_SAMPLE:,.0f} samples/s at that rate"]
    floors = {}
    for precision in ("highest", "medium"):
        with float32_matmul_precision(precision):
            mm_ms, adam_ms = step_floor(DEVICE)
        floor_ms = floors[precision] = mm_ms + adam_ms
        lines.append(f"- floor of a step with matmul_precision={precision}, measured: its 11 matmuls alone {mm_ms:.2f} ms, "
                     f"the fused Adam update alone {adam_ms:.2f} ms; a step doing nothing else would run at "
                     f"{BATCH / floor_ms * 1e3:,.0f} samples/s, {BATCH / floor_ms * 1e3 / limit:.0%} of the float32 limit")
    if DEVICE.type == "cpu":
        fw = {p: framework_ms(p, tmp) for p in ("bf16", "fp32")}
        best = min(floors.values()) + min(fw.values())
        lines.append(f"- the eager step's cost beside its arithmetic, measured (vaekit's loop on a 16-8-2 model, batch {BATCH}): "
                     f"{fw['bf16']:.2f} ms under bf16 autocast, {fw['fp32']:.2f} ms in float32; with the lower of "
                     f"the floors above an eager step takes at least {best:.2f} ms, at most {BATCH / best * 1e3:,.0f} samples/s, "
                     f"{BATCH / best * 1e3 / limit:.0%} of the float32 limit")
    return lines + [f"- 70% of the float32 limit needs {BATCH / (0.7 * limit) * 1e3:.2f} ms per step", ""], limit


def table_lines(rates: dict, quality: dict, limit: float, auto: str) -> list[str]:
    best = {k: max(v) for k, v in rates.items()}
    lines = ["| trainer | samples/s (best of rounds) | all rounds | vs pythae | vs pythae, median of rounds | vs reference "
             "| of float32 limit | test ELBO, nats (epochs) |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for k, v in rates.items():
        # each round's rate against pythae's in the same round: drift between rounds cancels out
        per_round = statistics.median(a / b for a, b in zip(v, rates["pythae"]))
        lines.append(f"| {k} | {best[k]:,.0f} | {', '.join(f'{r:,.0f}' for r in v)} | {best[k] / best['pythae']:.2f}x | "
                     f"{per_round:.2f}x | {best[k] / best['reference']:.2f}x | {best[k] / limit:.0%} | "
                     + (f"{quality[k][0]:.2f} ({quality[k][1]}) |" if k in quality else " |"))
    return lines + ["", NOTE.format(auto=auto), ""]


def later_epoch_lines(n: int, x_train: torch.Tensor) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        later_pythae = run_pythae(x_train, Path(tmp) / "pythae", DEVICE, epochs=n)
    later = {"vaekit": run_vaekit(epochs=n), "vaekit binarize=none": run_vaekit(binarize="none", epochs=n),
             "vaekit precision=fp32": run_vaekit(precision="fp32", epochs=n)}
    return [f"Epoch {n} of {n} (one run each, after the rounds above): pythae {later_pythae:,.0f} samples/s, "
            + ", ".join(f"{k} {v[0]:,.0f} ({v[0] / later_pythae:.2f}x, test ELBO {held_out_elbo(*v[1:]):.2f})"
                        for k, v in later.items()) + ".", ""]


def conv_and_eval_lines(started: str) -> list[str]:
    conv = {name: run_vaekit(arch="conv", **kw) for name, kw in
            (("defaults", {}), ("precision=fp32", {"precision": "fp32"}),
             ("precision=fp32, matmul_precision=medium", {"precision": "fp32", "matmul_precision": "medium"}))}
    _, model, data, cfg = run_vaekit(precision="fp32", epochs=1)
    x_test = eval_inputs(data, "test", cfg)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        result = vaekit.elbo_breakdown(model, x_test, batch_size=cfg.training.eval_batch_size)
        times.append(time.perf_counter() - t)
    return [f"- vaekit conv architecture (channels {cfg.model.channels}, hidden {HIDDEN}, latent {LATENT}), one epoch: "
            + "; ".join(f"{k} {v[0]:,.0f} samples/s (test ELBO {held_out_elbo(*v[1:]):.2f})" for k, v in conv.items()),
            f"- test ELBO of the 1-epoch float32 MLP on {x_test.shape[0]} test images: {result['elbo']:.2f} nats, evaluated in "
            f"{min(times) * 1e3:.0f} ms (best of 3; {x_test.shape[0] / min(times):,.0f} examples/s)",
            f"- run {started} to {time.strftime('%H:%M UTC', time.gmtime())}", ""]


def main() -> None:
    args = parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    gpu = torch.cuda.get_device_name() if DEVICE.type == "cuda" else None
    auto = auto_meaning(gpu)
    if args.out is None:
        slug = "" if gpu is None else "-" + "-".join(gpu.lower().replace("nvidia", "").split())
        args.out = str(Path(__file__).parent / "results" / f"throughput{slug}.md")
    data_dir = Path(os.environ.get("VAEKIT_DATA_DIR", "/work/shared/datasets"))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"# Training throughput, MNIST, one epoch, batch {BATCH}", "", f"Machine: {machine()}"
             + (f"; every contender on the GPU: {gpu}" if gpu else ""), ""]
    rows = [(k, kw) for k, kw in VAEKIT_ROWS if not (args.no_compile and kw.get("compile") is True)]
    with tempfile.TemporaryDirectory() as tmp:
        from torchvision import datasets  # only in the venv that holds the other contenders

        root = mnist_root(data_dir, Path(tmp))
        x_train = datasets.MNIST(str(root), train=True, download=False).data.float().div(255).unsqueeze(1)
        rates, quality, gflops_seen = run_rounds(args, rows, root, x_train, tmp)
        limits, limit = limit_lines(gflops_seen, tmp)
    lines += limits + table_lines(rates, quality, limit, auto)
    if args.later_epoch > 1:
        lines += later_epoch_lines(args.later_epoch, x_train)
    lines += conv_and_eval_lines(started)
    text = "\n".join(lines)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
