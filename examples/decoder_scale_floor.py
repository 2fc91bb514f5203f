"""A learned Gaussian decoder scale needs a floor: without one the likelihood has no maximum.

On 20 digit images a VAE's decoder can reproduce every training image almost exactly; a
Gaussian p(x|z) = N(x; mean(z), sigma^2) whose sigma is learned then gains -log sigma nats per
pixel as sigma shrinks, for ever: log N(x; x, sigma^2) -> infinity as sigma -> 0, so the
maximum-likelihood problem is ill-posed (the degenerate solutions of Mattei & Frellsen 2018).
The training log-likelihood climbs without bound while the model gets worse on images it has
not seen. With vaekit's floor (ModelConfig.scale_floor: sigma = floor + softplus(raw)) the
likelihood is bounded by D (-log floor - log(2 pi) / 2) and training settles.

The no-floor case cannot be built from ModelConfig (scale_floor=0 is refused), so it is written
here: the same VAE with a fixed-scale decoder supplies the mean, and this file's likelihood
learns a free log sigma per pixel.

    python examples/decoder_scale_floor.py [--out DIR] [--quick]
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import vaekit
from vaekit.core.distributions import normal_log_prob

try:
    from examples._common import fit, parse_args, save
except ImportError:  # run as a script: examples/ is on sys.path
    from _common import fit, parse_args, save

FLOOR = 0.05
SCALE_LR = 0.03


def digits(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """20 training digits and 500 other digits (flattened, in [0, 1])."""
    from sklearn.datasets import load_digits  # scikit-learn ships the 8x8 digits

    x = load_digits().images.reshape(-1, 64).astype(np.float32) / 16.0
    order = np.random.default_rng(seed).permutation(len(x))
    return torch.from_numpy(x[order[:20]]), torch.from_numpy(x[order[20:520]])


class NoFloorScale(nn.Module):
    """A free log sigma per pixel: the Gaussian likelihood with nothing to stop sigma -> 0."""

    def __init__(self, dim: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(dim))

    def log_prob(self, x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        return normal_log_prob(x, mean, logvar=2 * self.log_scale).sum(dim=-1)

    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()


def make_model(floor: bool, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    likelihood = "gaussian-learned" if floor else "gaussian"
    config = vaekit.ModelConfig(hidden=(128, 128), latent_dim=8, likelihood=likelihood, scale_floor=FLOOR)
    model = vaekit.VAE(config, (64,))
    if not floor:
        model.no_floor = NoFloorScale(64)  # registered, so the optimiser learns it
    return model


def terms(model: nn.Module, x: torch.Tensor, generator=None) -> dict:
    """-ELBO terms (nats per example) under the model's own likelihood, or the no-floor one."""
    out = model(x, generator=generator)
    if hasattr(model, "no_floor"):
        log_lik = model.no_floor.log_prob(x, out.likelihood.mean)
        scale = model.no_floor.scale()
    else:
        log_lik = out.likelihood.log_prob(x)
        scale = out.likelihood.scale
    kl = out.posterior.kl()
    return {"loss": (kl - log_lik).mean(), "log_lik": log_lik.mean(), "elbo": (log_lik - kl).mean(),
            "min_scale": scale.min()}


def train_case(floor: bool, steps: int, seed: int, x: torch.Tensor, held_out: torch.Tensor) -> list[dict]:
    model = make_model(floor, seed)

    def record(step, t):
        with torch.no_grad():
            held = terms(model, held_out, torch.Generator().manual_seed(0))
        return {"log_lik": t["log_lik"].item(), "min_scale": t["min_scale"].item(), "held_out_elbo": held["elbo"].item()}

    # The decoder scale learns at a higher rate than the networks (the same in both cases), so
    # that the quick run shows in seconds where the scale is heading.
    scale_params = [p for name, p in model.named_parameters() if name in ("raw_scale", "no_floor.log_scale")]
    others = [p for name, p in model.named_parameters() if name not in ("raw_scale", "no_floor.log_scale")]
    opt = torch.optim.Adam([{"params": others, "lr": 3e-3}, {"params": scale_params, "lr": SCALE_LR}])
    return fit(model, x, lambda m, xb, step, g: terms(m, xb, g), steps, batch_size=20, seed=seed,
               record=record, every=max(1, steps // 50), optimizer=opt)


def run(quick: bool = True, seed: int = 0) -> dict:
    steps = 600 if quick else 3000
    x, held_out = digits(seed)
    result = {}
    for name, floor in (("no_floor", False), ("floor", True)):
        history = train_case(floor, steps, seed, x, held_out)
        last = history[-1]
        result[name] = {"history": history, "log_lik": last["log_lik"], "min_scale": last["min_scale"],
                        "held_out_elbo": last["held_out_elbo"],
                        "finite": bool(np.isfinite([last["log_lik"], last["min_scale"]]).all())}
    result["floor_value"] = FLOOR
    result["log_lik_bound"] = 64 * (-np.log(FLOOR) - 0.5 * np.log(2 * np.pi))
    return result


def draw(result: dict, out: str):
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
    for name, color in (("no_floor", "tab:red"), ("floor", "tab:blue")):
        steps = [h["step"] for h in result[name]["history"]]
        label = "no floor" if name == "no_floor" else f"floor {result['floor_value']}"
        left.plot(steps, [h["log_lik"] for h in result[name]["history"]], color=color, label=label)
        right.plot(steps, [h["min_scale"] for h in result[name]["history"]], color=color, label=label)
    left.axhline(result["log_lik_bound"], color="k", lw=0.8, ls="--", label="bound with the floor")
    left.set(xlabel="step", ylabel="train log p(x|z) (nats / example)", title="likelihood on 20 digits")
    right.set(xlabel="step", ylabel="smallest decoder scale", yscale="log", title="decoder scale")
    right.axhline(result["floor_value"], color="k", lw=0.8, ls="--")
    left.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, out, "decoder_scale_floor.png")


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0])
    result = run(quick=args.quick, seed=args.seed)
    for name in ("no_floor", "floor"):
        r = result[name]
        print(f"{name:>8}: train log p(x|z) {r['log_lik']:9.1f} nats, smallest scale {r['min_scale']:.2e}, "
              f"held-out ELBO {r['held_out_elbo']:.3g} nats")
    print(f"with the floor the log-likelihood cannot pass {result['log_lik_bound']:.1f} nats")
    print("picture:", draw(result, args.out))
