"""The reparameterisation trick against the score-function (REINFORCE) estimator: the variance of
their gradients of the same ELBO, measured.

For q(z|x) = N(mean, diag(exp(logvar))) the ELBO's expected reconstruction term
E_q[log p(x|z)] has two unbiased single-draw gradient estimators with respect to the encoder's
outputs (mean, logvar):

* reparameterisation (Kingma & Welling 2014, eq. 10): z = mean + stddev * eps, and the gradient
  of log p(x|z) flows through z: d/dmean = g, d/dlogvar = g * stddev * eps / 2, g = d log p(x|z)/dz;
* score function (REINFORCE, Williams 1992; Paisley et al. 2012): log p(x|z) * d log q(z|x),
  with d log q/dmean = eps / stddev and d log q/dlogvar = (eps^2 - 1) / 2, z held fixed.

The KL term's gradient is closed form and the same for both, so it adds no variance and is left
out. At a fixed model (a VAE trained briefly on digits) and a fixed batch, each estimator is drawn
many times; the variance of each gradient coordinate over the draws, summed over coordinates
(the trace of the estimator's covariance), is compared. Also shown: REINFORCE with a baseline
(the mean of log p(x|z) over the draws subtracted, a common variance reduction).

    python examples/gradient_variance.py [--out DIR] [--quick]
"""

from __future__ import annotations

import numpy as np
import torch

from vaekit.core.distributions import standard_normal

try:
    from examples._common import digits_vae, parse_args, save
except ImportError:  # run as a script: examples/ is on sys.path
    from _common import digits_vae, parse_args, save


def trained_model(seed: int, epochs: int):
    model, data = digits_vae((128,), 8, epochs, seed)
    return model.eval(), data.test[:32]


def gradient_draws(model, x: torch.Tensor, num_samples: int, seed: int) -> dict[str, torch.Tensor]:
    """Per-draw gradients (num_samples, batch, 2 * latent_dim) of each estimator w.r.t. (mean, logvar)."""
    with torch.no_grad():
        q = model.encode(x)
    mean, stddev = q.mean, q.stddev
    eps = standard_normal((num_samples, *mean.shape), generator=torch.Generator().manual_seed(seed))
    z = (mean + stddev * eps).requires_grad_(True)
    log_px = model.decode(z).log_prob(x)  # (num_samples, batch): each draw's term depends on its z only
    (g,) = torch.autograd.grad(log_px.sum(), z)  # so this is the per-draw gradient
    log_px = log_px.detach()[..., None]
    reparam = torch.cat([g, g * stddev * eps / 2], dim=-1)
    score = torch.cat([eps / stddev, (eps**2 - 1) / 2], dim=-1)
    baseline = log_px.mean(dim=0, keepdim=True)
    return {"reparameterisation": reparam, "reinforce": log_px * score,
            "reinforce with baseline": (log_px - baseline) * score}


def run(quick: bool = True, seed: int = 0) -> dict:
    num_samples, epochs = (2000, 3) if quick else (20000, 30)
    model, x = trained_model(seed, epochs)
    draws = gradient_draws(model, x, num_samples, seed)
    result = {"num_samples": num_samples, "batch": x.shape[0]}
    for name, d in draws.items():
        # mean over the batch of the summed per-coordinate variance: one example's gradient noise
        result[name] = {"variance": float(d.var(dim=0).sum(dim=-1).mean()),
                        "per_coordinate": d.var(dim=0).mean(dim=0).tolist(),
                        "mean_abs_gradient": float(d.mean(dim=0).abs().mean())}
    result["ratio"] = result["reinforce"]["variance"] / result["reparameterisation"]["variance"]
    result["ratio_baseline"] = result["reinforce with baseline"]["variance"] / result["reparameterisation"]["variance"]
    return result


def draw(result: dict, out: str):
    import matplotlib.pyplot as plt

    names = ("reparameterisation", "reinforce with baseline", "reinforce")
    fig, ax = plt.subplots(figsize=(6, 3))
    latent_dim = len(result["reparameterisation"]["per_coordinate"]) // 2
    width = 0.27
    for i, name in enumerate(names):
        values = result[name]["per_coordinate"]
        ax.bar(np.arange(len(values)) + (i - 1) * width, values, width, label=f"{name}: {result[name]['variance']:.3g}")
    ax.set_yscale("log")
    ax.set_xticks(range(2 * latent_dim))
    ax.set_xticklabels([f"m{j}" for j in range(latent_dim)] + [f"lv{j}" for j in range(latent_dim)], fontsize=7)
    ax.set_ylabel("gradient variance")
    ax.set_title(f"d ELBO / d(mean, logvar), {result['num_samples']} draws: REINFORCE / reparam. = "
                 f"{result['ratio']:.0f}", fontsize=9)
    ax.legend(fontsize=7)
    return save(fig, out, "gradient_variance.png")


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0])
    result = run(quick=args.quick, seed=args.seed)
    for name in ("reparameterisation", "reinforce with baseline", "reinforce"):
        print(f"{name:>24}: variance {result[name]['variance']:.4g} (summed over 2 x latent_dim coordinates, "
              f"mean over {result['batch']} examples)")
    print(f"REINFORCE / reparameterisation: {result['ratio']:.0f}x; with a baseline: {result['ratio_baseline']:.0f}x")
    print("picture:", draw(result, args.out))
