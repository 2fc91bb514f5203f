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
import gzip
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import vaekit
from vaekit import Config
from vaekit.data import load_dataset
from vaekit.measure.evaluation import elbo_breakdown
from vaekit.training.loop import autocast_dtype, cpu_has_native_bf16, eval_inputs, float32_matmul_precision, resolve_config, train

from settings import machine  # bench/settings.py, beside this script

BATCH, LR, HIDDEN, LATENT, D = 128, 1e-3, 400, 20, 784
DEVICE = torch.device("cpu")  # every contender's device; main() sets it from --device


def sync() -> None:
    """Wait for the GPU's queued work, so that a wall-clock time covers it (nothing to wait for on a CPU)."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


# --- the arithmetic limit ------------------------------------------------------------------
def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, device=DEVICE), torch.randn(n, n, device=DEVICE)
    for _ in range(3):
        a @ b
    sync()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def linear_gflops(repeats: int = 300) -> float:
    x, w = torch.randn(BATCH, D, device=DEVICE), torch.randn(HIDDEN, D, device=DEVICE)
    for _ in range(20):
        F.linear(x, w)
    sync()
    t = time.perf_counter()
    for _ in range(repeats):
        F.linear(x, w)
    sync()
    return 2 * BATCH * D * HIDDEN * repeats / (time.perf_counter() - t) / 1e9


def step_floor(repeats: int = 200) -> tuple[float, float]:
    """(ms, ms): one training step's matmuls alone (float32, under the current matmul precision), and
    the fused Adam update alone, for this model at batch 128. The matmuls: the 4 forward products, the
    4 weight gradients, and the input gradients of the 3 layers that have one (not the first: x needs
    none), at the shapes the step uses."""
    shapes = [(D, HIDDEN), (HIDDEN, 2 * LATENT), (LATENT, HIDDEN), (HIDDEN, D)]  # (in, out) per layer
    xs = [torch.randn(BATCH, i, device=DEVICE) for i, _ in shapes]
    ws = [torch.randn(o, i, device=DEVICE) for i, o in shapes]
    gs = [torch.randn(BATCH, o, device=DEVICE) for _, o in shapes]

    def matmuls():
        for j, (x, w, g) in enumerate(zip(xs, ws, gs)):
            F.linear(x, w)  # forward
            g.t() @ x  # weight gradient
            if j:
                g @ w  # input gradient

    params = [nn.Parameter(w.clone()) for w in ws] + [nn.Parameter(torch.zeros(o, device=DEVICE)) for _, o in shapes]
    for q in params:
        q.grad = torch.randn_like(q)
    opt = torch.optim.Adam(params, lr=LR, fused=True)
    out = []
    for fn in (matmuls, opt.step):
        for _ in range(20):
            fn()
        sync()
        t = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync()
        out.append((time.perf_counter() - t) / repeats * 1e3)
    return out[0], out[1]


MACS = D * HIDDEN + HIDDEN * 2 * LATENT + LATENT * HIDDEN + HIDDEN * D  # forward multiply-adds per sample
FLOPS_PER_SAMPLE = 3 * 2 * MACS  # forward + backward taken as 3x the forward


# --- (a) the pytorch/examples loop -------------------------------------------------------------
class ExampleVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(D, HIDDEN), nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)
        self.fc3, self.fc4 = nn.Linear(LATENT, HIDDEN), nn.Linear(HIDDEN, D)

    def forward(self, x):
        h = F.relu(self.fc1(x.view(-1, D)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def example_loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, D), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def mnist_root(data_dir: Path, tmp: Path) -> Path:
    """torchvision wants MNIST/raw/ decompressed: copy the .gz files and decompress in a temp dir."""
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for gz in (data_dir / "MNIST" / "raw").glob("*.gz"):
        with gzip.open(gz) as src, open(raw / gz.name[:-3], "wb") as dst:
            shutil.copyfileobj(src, dst)
    return tmp


def run_reference(root: Path) -> float:
    from torchvision import datasets, transforms

    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(
        datasets.MNIST(str(root), train=True, download=False, transform=transforms.ToTensor()),
        batch_size=BATCH, shuffle=True)
    model = ExampleVAE().to(DEVICE)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    model.train()
    t, n = time.perf_counter(), 0
    for x, _ in loader:
        x = x.to(DEVICE)  # as the example does with --accel
        opt.zero_grad()
        recon, mu, logvar = model(x)
        loss = example_loss(recon, x, mu, logvar)
        loss.backward()
        opt.step()
        n += x.shape[0]
    sync()
    return n / (time.perf_counter() - t)


# --- (b) pythae 0.1.2 ------------------------------------------------------------------------
def run_pythae(x: torch.Tensor, out_dir: Path, epochs: int = 1) -> float:
    """samples/s of pythae's epoch loop in its last of ``epochs`` epochs (pythae has no matmul precision
    setting of its own: main() sets torch's around the call for the medium row)."""
    from pythae.data.preprocessors import DataProcessor
    from pythae.models import VAE as PVAE
    from pythae.models import VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    class Enc(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc21, self.fc22 = nn.Linear(D, HIDDEN), nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)

        def forward(self, x):
            h = F.relu(self.fc1(x.reshape(-1, D)))
            return ModelOutput(embedding=self.fc21(h), log_covariance=self.fc22(h))

    class Dec(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.fc3, self.fc4 = nn.Linear(LATENT, HIDDEN), nn.Linear(HIDDEN, D)

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.fc4(F.relu(self.fc3(z)))).reshape(-1, 1, 28, 28))

    torch.manual_seed(0)
    model = PVAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce"), encoder=Enc(), decoder=Dec())
    dataset = DataProcessor.to_dataset(DataProcessor().process_data(x))
    cfg = BaseTrainerConfig(output_dir=str(out_dir), num_epochs=1, learning_rate=LR, per_device_train_batch_size=BATCH,
                            no_cuda=DEVICE.type != "cuda", optimizer_cls="Adam")
    trainer = BaseTrainer(model, dataset, training_config=cfg)
    trainer.prepare_training()  # what train() does first: optimiser, callbacks, output folder
    for epoch in range(1, epochs + 1):
        t = time.perf_counter()
        trainer.train_step(epoch)  # the epoch loop only: no eval, no saving
        sync()
        seconds = time.perf_counter() - t
    return len(dataset) / seconds


# --- (c) vaekit ----------------------------------------------------------------------------------
def vaekit_config(arch: str = "mlp", binarize: str = "auto", compile: bool = False, precision: str = "auto",
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


def run_vaekit(arch: str = "mlp", binarize: str = "auto", epochs: int = 1, compile: bool = False,
               precision: str = "auto", matmul_precision: str = "highest") -> tuple[float, object, object, Config]:
    """samples/s of the last epoch (with compile=True: of the second, after the compilation), model, data, config."""
    cfg = vaekit_config(arch, binarize, compile, precision, matmul_precision)
    cfg.training.epochs = 2 if compile and epochs == 1 else epochs
    data = load_dataset(cfg.data)
    resolve_config(cfg, data)
    torch.manual_seed(0)
    model = vaekit.VAE(cfg.model, data.shape).to(DEVICE)
    history = train(model, data, cfg)
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


def held_out_elbo(model, data, cfg: Config) -> float:
    """The test ELBO (nats, float32) of a trained model, on test images of the kind it trained on."""
    return elbo_breakdown(model, eval_inputs(data, "test", cfg), batch_size=cfg.training.eval_batch_size)["elbo"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=2, help="repeat the MLP contenders this many times, interleaved")
    p.add_argument("--no-compile", action="store_true", help="leave out the torch.compile rows")
    p.add_argument("--later-epoch", type=int, default=5, help="also time pythae and vaekit in epoch N of N (0: skip)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where every contender trains")
    p.add_argument("--out", help="default: bench/results/throughput.md, on a GPU throughput-<gpu name>.md")
    args = p.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    gpu = torch.cuda.get_device_name() if DEVICE.type == "cuda" else None
    auto = ("float32" if autocast_dtype("auto", DEVICE, "image") is None else "bf16 autocast") + (
        "" if gpu else " (this CPU multiplies bf16 natively)" if cpu_has_native_bf16() else " (this CPU has no native bf16)")
    if args.out is None:
        slug = "" if gpu is None else "-" + "-".join(gpu.lower().replace("nvidia", "").split())
        args.out = str(Path(__file__).parent / "results" / f"throughput{slug}.md")
    data_dir = Path(os.environ.get("VAEKIT_DATA_DIR", "/work/shared/datasets"))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"# Training throughput, MNIST, one epoch, batch {BATCH}", "", f"Machine: {machine()}"
             + (f"; every contender on the GPU: {gpu}" if gpu else ""), ""]

    # the float32 matmul rate is measured before the rounds and after each one, and the limit is the
    # best of them: on a shared host the rate drifts, and a limit taken at a slow moment flatters every share
    gflops_seen = [matmul_gflops()]
    rows = [(k, kw) for k, kw in VAEKIT_ROWS if not (args.no_compile and kw.get("compile"))]
    rates: dict[str, list[float]] = {"reference": [], "pythae": [], "pythae (matmul precision medium)": []}
    rates.update({k: [] for k, _ in rows})
    quality: dict[str, tuple[float, int]] = {}  # vaekit row: (test ELBO in nats, epochs trained)
    with tempfile.TemporaryDirectory() as tmp:
        root = mnist_root(data_dir, Path(tmp))
        from torchvision import datasets

        x_train = datasets.MNIST(str(root), train=True, download=False).data.float().div(255).unsqueeze(1)
        run_vaekit(epochs=1)  # warm-up: data load and first-call costs
        for r in range(args.rounds):
            rates["reference"].append(run_reference(root))
            rates["pythae"].append(run_pythae(x_train, Path(tmp) / "pythae"))
            with float32_matmul_precision("medium"):  # torch's setting around pythae's loop
                rates["pythae (matmul precision medium)"].append(run_pythae(x_train, Path(tmp) / "pythae"))
            for k, kw in rows:
                rate, model, data, cfg = run_vaekit(**kw)
                rates[k].append(rate)
                if r == args.rounds - 1:  # what the last round's model learnt: does a faster option cost quality?
                    quality[k] = (held_out_elbo(model, data, cfg), cfg.training.epochs)
            gflops_seen.append(matmul_gflops())
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rates.items()), flush=True)

    gflops, lin = max(gflops_seen), linear_gflops()
    with float32_matmul_precision("medium"):
        gflops_medium = matmul_gflops()
    limit = gflops * 1e9 / FLOPS_PER_SAMPLE
    lines += [f"- 2048x2048 float32 matmul: {gflops:.1f} GFLOP/s, the best of {len(gflops_seen)} measurements in this run "
              f"({', '.join(f'{v:.0f}' for v in gflops_seen)}; before the rounds and after each); "
              f"{BATCH}x{D}x{HIDDEN} linear: {lin:.1f} GFLOP/s",
              f"- model: {MACS:,} forward multiply-adds/sample, {FLOPS_PER_SAMPLE / 1e6:.2f} MFLOP/sample for forward+backward (3x)",
              f"- arithmetic limit at the float32 matmul rate: {limit:,.0f} samples/s ({BATCH / limit * 1e3:.2f} ms per step of {BATCH}); "
              "the \"of limit\" column below is against this one",
              f"- the same 2048x2048 float32 matmul under matmul_precision=medium (bf16 inputs, float32 accumulation): "
              f"{gflops_medium:.1f} GFLOP/s, an arithmetic limit of {gflops_medium * 1e9 / FLOPS_PER_SAMPLE:,.0f} samples/s at that rate"]
    for precision in ("highest", "medium"):
        with float32_matmul_precision(precision):
            mm_ms, adam_ms = step_floor()
        floor_ms = mm_ms + adam_ms
        lines.append(f"- floor of a step with matmul_precision={precision}, measured: its 11 matmuls alone {mm_ms:.2f} ms, "
                     f"the fused Adam update alone {adam_ms:.2f} ms; a step doing nothing else would run at "
                     f"{BATCH / floor_ms * 1e3:,.0f} samples/s, {BATCH / floor_ms * 1e3 / limit:.0%} of the float32 limit")
    lines += [f"- 70% of the float32 limit needs {BATCH / (0.7 * limit) * 1e3:.2f} ms per step", ""]

    best = {k: max(v) for k, v in rates.items()}
    lines += ["| trainer | samples/s (best of rounds) | all rounds | vs pythae | vs pythae, median of rounds | vs reference "
              "| of float32 limit | test ELBO, nats (epochs) |",
              "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    for k, v in rates.items():
        # each round's rate against pythae's in the same round: drift between rounds cancels out
        per_round = statistics.median(a / b for a, b in zip(v, rates["pythae"]))
        lines.append(f"| {k} | {best[k]:,.0f} | {', '.join(f'{r:,.0f}' for r in v)} | {best[k] / best['pythae']:.2f}x | "
                     f"{per_round:.2f}x | {best[k] / best['reference']:.2f}x | {best[k] / limit:.0%} | "
                     + (f"{quality[k][0]:.2f} ({quality[k][1]}) |" if k in quality else " |"))
    lines += ["", "vaekit uses dynamic binarisation (a fresh Bernoulli draw per image, the MNIST default); the reference "
              "and pythae train on grey values; the `binarize=none` rows are the like-for-like ones. The compile rows run two "
              "epochs and report the second (the first includes torch.compile's compilation). matmul_precision=medium runs the "
              "float32 matmuls with reduced-precision inputs and float32 accumulation (bf16 through oneDNN on CPUs with AMX or AVX-512 bf16; "
              "TF32 or bf16 tensor cores on a GPU), everything "
              "else in float32; the pythae row of that name sets the same torch option around pythae's loop. The rows without "
              "precision=fp32 use vaekit's default precision=auto, which here means " + auto + ". Every share of the limit is against the float32 matmul rate. The test ELBO is "
              "that of the last round's model, in float32, on the 10,000 test images of the kind it trained on (a fixed "
              "binarisation, or grey values for the binarize=none rows, whose figure is a cross-entropy and not comparable "
              "with the others); compare rows with the same epochs.", ""]

    if args.later_epoch > 1:
        n = args.later_epoch
        with tempfile.TemporaryDirectory() as tmp:
            later_pythae = run_pythae(x_train, Path(tmp) / "pythae", epochs=n)
        later = {"vaekit": run_vaekit(epochs=n), "vaekit binarize=none": run_vaekit(binarize="none", epochs=n),
                 "vaekit precision=fp32": run_vaekit(precision="fp32", epochs=n)}
        lines += [f"Epoch {n} of {n} (one run each, after the rounds above): pythae {later_pythae:,.0f} samples/s, "
                  + ", ".join(f"{k} {v[0]:,.0f} ({v[0] / later_pythae:.2f}x, test ELBO {held_out_elbo(*v[1:]):.2f})"
                              for k, v in later.items()) + ".", ""]

    conv = {name: run_vaekit(arch="conv", **kw) for name, kw in
            (("defaults", {}), ("precision=fp32", {"precision": "fp32"}),
             ("precision=fp32, matmul_precision=medium", {"precision": "fp32", "matmul_precision": "medium"}))}
    _, model, data, cfg = run_vaekit(precision="fp32", epochs=1)
    x_test = eval_inputs(data, "test", cfg)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        result = elbo_breakdown(model, x_test, batch_size=cfg.training.eval_batch_size)
        times.append(time.perf_counter() - t)
    lines += [f"- vaekit conv architecture (channels {cfg.model.channels}, hidden {HIDDEN}, latent {LATENT}), one epoch: "
              + "; ".join(f"{k} {v[0]:,.0f} samples/s (test ELBO {held_out_elbo(*v[1:]):.2f})" for k, v in conv.items()),
              f"- test ELBO of the 1-epoch float32 MLP on {x_test.shape[0]} test images: {result['elbo']:.2f} nats, evaluated in "
              f"{min(times) * 1e3:.0f} ms (best of 3; {x_test.shape[0] / min(times):,.0f} examples/s)",
              f"- run {started} to {time.strftime('%H:%M UTC', time.gmtime())}", ""]
    text = "\n".join(lines)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
