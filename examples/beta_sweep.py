"""Beta trades rate for distortion: as beta grows the KL (rate) falls, the reconstruction
error (distortion) rises, and samples blur.

The beta-VAE loss is D + beta R, with distortion D = E_q[-log p(x|z)] and rate
R = KL(q(z|x) || p(z)) (Higgins et al. 2017; Alemi et al. 2018, "Fixing a broken ELBO"). Each
beta picks the point of the rate-distortion curve where its slope is -beta, so a larger beta
buys a smaller rate with a larger distortion: the points move monotonically along the curve.
One vaekit.train run per beta on scikit-learn's 8x8 digits (Bernoulli likelihood, a
cross-entropy on the [0, 1] intensities); rate and distortion on the test split.

    python examples/beta_sweep.py [--out DIR] [--quick]
"""

from __future__ import annotations

import torch

import vaekit

try:
    from examples._common import digits_vae, parse_args, save
except ImportError:  # run as a script: examples/ is on sys.path
    from _common import digits_vae, parse_args, save

BETAS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
QUICK_BETAS = (0.5, 2.0, 8.0)


def run(quick: bool = True, seed: int = 0) -> dict:
    betas, epochs = (QUICK_BETAS, 10) if quick else (BETAS, 60)
    result = {"beta": [], "rate": [], "distortion": [], "samples": []}
    for beta in betas:
        model, data = digits_vae((256,), 16, epochs, seed, beta)
        test = vaekit.elbo_breakdown(model, data.test, beta=beta, seed=seed)
        samples = model.eval().sample(8, generator=torch.Generator().manual_seed(seed))
        result["beta"].append(beta)
        result["rate"].append(test["kl"])
        result["distortion"].append(test["recon"])
        result["samples"].append(samples.squeeze(1).numpy())
    return result


def draw(result: dict, out: str):
    import matplotlib.pyplot as plt

    n = len(result["beta"])
    fig = plt.figure(figsize=(9, 0.9 * n + 0.5))
    curve = fig.add_axes([0.07, 0.12, 0.38, 0.8])
    curve.plot(result["rate"], result["distortion"], "o-")
    for i, (b, r, d) in enumerate(zip(result["beta"], result["rate"], result["distortion"])):
        # alternate sides: the largest betas sit at nearly the same point once the KL is ~0
        curve.annotate(f"beta {b:g}", (r, d), textcoords="offset points", xytext=(6, -12 if i % 2 else 4), fontsize=8)
    curve.set(xlabel="rate: KL (nats)", ylabel="distortion: -log p(x|z) (nats)", title="digits, test split")
    for row, (beta, samples) in enumerate(zip(result["beta"], result["samples"])):
        for col, image in enumerate(samples):
            ax = fig.add_axes([0.52 + col * 0.058, 0.9 - (row + 1) * 0.8 / n, 0.055, 0.8 / n * 0.95])
            ax.imshow(image, cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(f"beta {beta:g}", fontsize=8)
    return save(fig, out, "beta_sweep.png")


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0])
    result = run(quick=args.quick, seed=args.seed)
    for beta, rate, distortion in zip(result["beta"], result["rate"], result["distortion"]):
        print(f"beta {beta:5g}: rate {rate:6.2f} nats, distortion {distortion:6.2f} nats")
    print("picture:", draw(result, args.out))
