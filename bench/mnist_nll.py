"""Test NLL on MNIST by the protocol of Burda et al. 2015 (Table 1), and evaluation speed vs pythae.

Protocol: train a VAE (ELBO) and IWAEs (k=5, k=50) on dynamically binarised MNIST (or on the
statically binarised set of Larochelle & Murray), then estimate -log p(x) on the test images by
importance sampling with k=5000 samples from q(z|x). Burda et al. train for 3280 epochs; this
script takes --epochs so that it fits a small budget, and says so in its output.

Speed: vaekit.log_likelihood against pythae 0.1.2's VAE.get_nll on the same trained network
(our encoder/decoder wrapped as pythae BaseEncoder/BaseDecoder), on --speed-limit test images,
with the arithmetic limit = decoder FLOPs x k x N / (dense-matmul FLOP/s measured in this run).

    VAEKIT_DATA_DIR=/work/shared/datasets python bench/mnist_nll.py --data dynamic --epochs 5 \
        --iwae-epochs 2 --test-limit 1000 --compare-pythae --out bench/results/mnist_nll_dynamic.json

Needs pythae only with --compare-pythae (pip install pythae==0.1.2 into a separate venv).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch

import vaekit
from vaekit.data import load_dataset
from vaekit.runs.folder import read_metrics
from vaekit.training.setup import eval_inputs, resolve_config

from settings import cpu_name  # bench/settings.py, beside this script

PUBLISHED = {  # test NLL in nats, k=5000 (Burda et al. 2015 Table 1 / App. D; Rezende & Mohamed 2015)
    ("dynamic", "vae"): 86.76, ("dynamic", "iwae50"): 84.78,
    ("static", "vae"): 89.9, ("static", "iwae50"): 87.1,
}


def machine() -> dict:
    return {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "vaekit": vaekit.__version__}


def matmul_flops(rows: int = 4096, inner: int = 400, cols: int = 784, repeats: int = 20) -> float:
    """Dense float32 matmul FLOP/s at the decoder's output-layer shape, measured now."""
    a, b = torch.randn(rows, inner), torch.randn(inner, cols)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * rows * inner * cols * repeats / (time.perf_counter() - start)


def decoder_flops(model) -> int:
    """Multiply-adds x 2 of the decoder's Linear layers for one latent sample."""
    return sum(2 * m.in_features * m.out_features for m in model.decoder.modules() if isinstance(m, torch.nn.Linear))


def config_for(data: str, objective: str, k: int, epochs: int, hidden: tuple[int, ...], latent: int, seed: int):
    cfg = vaekit.Config()
    cfg.data.name = "mnist" if data == "dynamic" else "binarized-mnist"
    cfg.data.binarize = "dynamic" if data == "dynamic" else "none"
    cfg.model.hidden, cfg.model.latent_dim, cfg.model.likelihood = hidden, latent, "bernoulli"
    cfg.model.arch = "mlp"
    cfg.training.epochs, cfg.training.objective, cfg.training.num_samples = epochs, objective, k
    cfg.training.batch_size, cfg.training.lr, cfg.training.seed = 100, 1e-3, seed
    cfg.training.progress, cfg.training.device = False, "cpu"
    return cfg


def pythae_nll(model, x: torch.Tensor, k: int) -> float:
    """pythae 0.1.2's get_nll on our trained networks (returns mean log p(x); we report -that)."""
    from pythae.models import VAE as PVAE
    from pythae.models import VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Enc(BaseEncoder):
        def __init__(self, net):
            BaseEncoder.__init__(self)
            self.net = net

        def forward(self, x):
            mean, logvar = self.net(x).chunk(2, dim=-1)
            return ModelOutput(embedding=mean, log_covariance=logvar)

    class Dec(BaseDecoder):
        def __init__(self, net):
            BaseDecoder.__init__(self)
            self.net = net

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    pmodel = PVAE(VAEConfig(input_dim=tuple(model.data_shape), latent_dim=model.latent_dim, reconstruction_loss="bce"),
                  encoder=Enc(model.encoder), decoder=Dec(model.decoder)).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        return -float(pmodel.get_nll(x, n_samples=k, batch_size=100))


def speed(model, x: torch.Tensor, k: int, compare: bool) -> dict:
    flops = matmul_flops()
    limit_s = decoder_flops(model) * k * x.shape[0] / flops
    t0 = time.perf_counter()
    a = vaekit.log_likelihood(model, x, num_samples=k, seed=0)
    ours_s = time.perf_counter() - t0
    # compile=True: the one-off compile is timed on its own (one image), then the whole set;
    # both figures are reported, and the ratio to the limit with the compile included
    t0 = time.perf_counter()
    vaekit.log_likelihood(model, x[:1], num_samples=k, seed=0, compile=True)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    c = vaekit.log_likelihood(model, x, num_samples=k, seed=0, compile=True)
    compiled_s = time.perf_counter() - t0
    b = vaekit.log_likelihood(model, x, num_samples=k, seed=1)
    # Monte Carlo error of the mean estimate (the examples are the same in both runs, so only
    # the sampling noise is left in their difference)
    mc_err = float((a - b).std() / math.sqrt(2 * x.shape[0]))
    out = {"images": int(x.shape[0]), "k": k, "matmul_gflops": flops / 1e9, "decoder_flops_per_sample": decoder_flops(model),
           "limit_s": limit_s, "vaekit_s": ours_s, "vaekit_over_limit": ours_s / limit_s,
           "vaekit_compiled_s": compiled_s, "compile_s": compile_s, "vaekit_compiled_over_limit": compiled_s / limit_s,
           "vaekit_compiled_with_compile_over_limit": (compiled_s + compile_s) / limit_s,
           "vaekit_compiled_nll": -float(c.mean()), "compiled_max_abs_difference": float((a - c).abs().max()),
           "vaekit_nll": -float(a.mean()), "vaekit_nll_seed1": -float(b.mean()), "mc_error": mc_err}
    if compare:
        t0 = time.perf_counter()
        out["pythae_nll"] = pythae_nll(model, x, k)
        out["pythae_s"] = time.perf_counter() - t0
        out["speedup_vs_pythae"] = out["pythae_s"] / ours_s
        out["speedup_compiled_vs_pythae"] = out["pythae_s"] / (compiled_s + compile_s)
        out["nll_difference"] = out["vaekit_nll"] - out["pythae_nll"]
    return out


def to_markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"## MNIST test NLL, {r['data']} binarisation ({r['architecture']}, k={r['eval_samples']})", "",
             f"Machine: {m['cpu']}, {m['threads']} threads, torch {m['torch']}, vaekit {m['vaekit']}.", "",
             "| model | epochs | train s | test images | NLL (nats) | +- stderr | k-sample ELBO | eval s | published (3280 epochs) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in r["models"]:
        pub = "" if row["published"] is None else f"{row['published']:.2f}"
        lines.append(f"| {row['model']} | {row['epochs']} | {row['train_s']:.0f} | {row['test_images']} | {row['nll']:.2f} | "
                     f"{row['nll_stderr']:.2f} | {row['elbo']:.2f} | {row['eval_s']:.1f} | {pub} |")
    sp = r.get("speed")
    if sp:
        lines += ["", f"### Evaluation speed, {sp['images']} test images x k={sp['k']} (VAE above)", "",
                  f"- dense matmul measured in this run: {sp['matmul_gflops']:.0f} GFLOP/s; decoder {sp['decoder_flops_per_sample']:,} FLOP per sample",
                  f"- arithmetic limit (decoder FLOPs x k x N / matmul FLOP/s): {sp['limit_s']:.2f} s",
                  f"- vaekit.log_likelihood: {sp['vaekit_s']:.2f} s = {sp['vaekit_over_limit']:.2f}x the limit; NLL {sp['vaekit_nll']:.3f} "
                  f"(seed 1: {sp['vaekit_nll_seed1']:.3f}; Monte Carlo error of the mean {sp['mc_error']:.3f})"]
        if "vaekit_compiled_s" in sp:
            lines += [f"- vaekit.log_likelihood(compile=True): {sp['vaekit_compiled_s']:.2f} s = {sp['vaekit_compiled_over_limit']:.2f}x the limit, "
                      f"plus a one-off compile of {sp['compile_s']:.1f} s (with it: {sp['vaekit_compiled_with_compile_over_limit']:.2f}x); "
                      f"NLL {sp['vaekit_compiled_nll']:.3f} on the same draws (largest difference per image {sp['compiled_max_abs_difference']:.1e})"]
        if "pythae_s" in sp:
            per_image = 10000 / sp["images"]
            lines += [f"- pythae 0.1.2 VAE.get_nll on the same networks: {sp['pythae_s']:.2f} s; NLL {sp['pythae_nll']:.3f} "
                      f"(difference {sp['nll_difference']:+.3f})",
                      f"- **speed-up vs pythae: {sp['speedup_vs_pythae']:.2f}x** (compiled, compile included: "
                      f"{sp.get('speedup_compiled_vs_pythae', float('nan')):.2f}x)",
                      f"- extrapolated to all 10000 test images (linear in N): vaekit {sp['vaekit_s'] * per_image / 60:.1f} min, "
                      f"pythae {sp['pythae_s'] * per_image / 60:.1f} min, limit {sp['limit_s'] * per_image / 60:.1f} min"]
    return "\n".join(lines) + "\n"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=["dynamic", "static"], default="dynamic")
    p.add_argument("--models", default="vae,iwae5,iwae50", help="comma-separated: vae, iwae5, iwae50")
    p.add_argument("--epochs", type=int, default=5, help="epochs of the VAE")
    p.add_argument("--iwae-epochs", type=int, default=None, help="epochs of the IWAEs (default --epochs)")
    p.add_argument("--hidden", default="400")
    p.add_argument("--latent-dim", type=int, default=20)
    p.add_argument("--eval-samples", type=int, default=5000)
    p.add_argument("--test-limit", type=int, default=1000, help="test images for the NLL (10000: all)")
    p.add_argument("--compare-pythae", action="store_true")
    p.add_argument("--speed-limit", type=int, default=200, help="test images for the speed comparison")
    p.add_argument("--runs", default="bench/runs", help="where the trained run folders go")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help=".json file for the results")
    p.add_argument("--merge", action="store_true", help="keep the other models' rows already in --out")
    return p.parse_args()


def evaluate_model(args, name: str, hidden: tuple[int, ...]):
    """(the results row of model ``name``, the model, its test inputs): trained unless its run
    folder exists, then its importance-sampled NLL on the first --test-limit test images."""
    k = 1 if name == "vae" else int(name.removeprefix("iwae"))
    epochs = args.epochs if name == "vae" else (args.iwae_epochs or args.epochs)
    cfg = config_for(args.data, "elbo" if name == "vae" else "iwae", k, epochs, hidden, args.latent_dim, args.seed)
    run_dir = Path(args.runs) / f"{args.data}-{name}-{epochs}ep"
    t0 = time.perf_counter()
    if not (run_dir / "model.safetensors").exists():
        vaekit.train_run(cfg, out=run_dir)
        train_s = time.perf_counter() - t0
    else:
        train_s = float("nan")  # reused an earlier run folder
    model = vaekit.load(run_dir)
    data = load_dataset(cfg.data)
    resolve_config(cfg, data)
    x = eval_inputs(data, "test", cfg)[: args.test_limit]
    t0 = time.perf_counter()
    report = vaekit.likelihood_report(model, x, num_samples=args.eval_samples, seed=0)
    eval_s = time.perf_counter() - t0
    row = {"model": name, "epochs": epochs, "train_s": train_s, "eval_s": eval_s, "test_images": int(x.shape[0]),
           "nll": report["nll"], "nll_stderr": report["nll_stderr"], "elbo": report["elbo_k"],
           "published": PUBLISHED.get((args.data, name)),
           "final_val_loss": read_metrics(run_dir)[-1]["val_loss"]}
    return row, model, x


def merge_earlier(results: dict, out: Path) -> None:
    """Several invocations (one model each) build one results file: rows of other models are kept."""
    old = json.loads(out.read_text())
    if old.get("data") == results["data"] and old.get("architecture") == results["architecture"]:
        names = {row["model"] for row in results["models"]}
        results["models"] = [row for row in old["models"] if row["model"] not in names] + results["models"]
        order = {"vae": 0, "iwae5": 1, "iwae50": 2}
        results["models"].sort(key=lambda row: order.get(row["model"], 9))
        if "speed" not in results and "speed" in old:
            results["speed"] = old["speed"]


def main() -> None:
    args = parse_args()
    torch.set_num_threads(torch.get_num_threads())
    hidden = tuple(int(h) for h in args.hidden.split(","))
    results = {"machine": machine(), "data": args.data, "architecture": f"784-{'-'.join(map(str, hidden))}-{args.latent_dim}",
               "eval_samples": args.eval_samples, "models": []}
    print(json.dumps(results["machine"]))
    for name in args.models.split(","):
        row, model, x = evaluate_model(args, name, hidden)
        results["models"].append(row)
        print(json.dumps(row), flush=True)
        if args.compare_pythae and name == "vae":
            results["speed"] = speed(model, x[: args.speed_limit], args.eval_samples, compare=True)
            print(json.dumps(results["speed"]), flush=True)
    if args.out and args.merge and Path(args.out).exists():
        merge_earlier(results, Path(args.out))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        Path(args.out).with_suffix(".md").write_text(to_markdown(results))


if __name__ == "__main__":
    main()
