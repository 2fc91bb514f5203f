"""A VAE with 10 latent units, trained on data made from 3 factors, leaves about 3 active.

The data: x = A f + 0.2 tanh(A f) + noise in 20 dimensions, f ~ N(0, I_3), A a fixed random
20 x 3 matrix, noise N(0, 0.1^2). The KL term charges every latent unit that carries
information, so the ELBO's optimum uses as many units as the data have degrees of freedom and
switches the rest off (their posterior stays at the prior). Two readings of "active":
Burda et al. 2015's covariance test, Cov_x(E_q[z_d | x]) > 0.01, and a KL of more than 0.05
nats per unit.

    python examples/active_units.py [--out DIR] [--quick]
"""

from __future__ import annotations

import numpy as np
import torch

import vaekit

try:
    from examples._common import parse_args, quiet_config, save, splits
except ImportError:  # run as a script: examples/ is on sys.path
    from _common import parse_args, quiet_config, save, splits

NUM_FACTORS, DATA_DIM, LATENT_DIM = 3, 20, 10
KL_ACTIVE = 0.05  # nats


def make_data(n: int, seed: int = 0) -> np.ndarray:
    """n examples of the 3-factor data; the mixing matrix A is the same for every n and seed."""
    mixing = np.random.default_rng(1234).normal(size=(DATA_DIM, NUM_FACTORS))
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(n, NUM_FACTORS)) @ mixing.T
    return (signal + 0.2 * np.tanh(signal) + 0.1 * rng.normal(size=signal.shape)).astype(np.float32)


def run(quick: bool = True, seed: int = 0) -> dict:
    n, epochs = (2000, 40) if quick else (10000, 60)
    x = make_data(n + 2000, seed)
    data = splits(x[:n], x[n:n + 1000], x[n + 1000:], "three-factors")
    cfg = quiet_config(epochs=epochs, batch_size=100, seed=seed, lr=2e-3)
    cfg.model.hidden, cfg.model.latent_dim = (64, 64), LATENT_DIM
    cfg.model.likelihood = "gaussian-learned"
    torch.manual_seed(seed)
    model = vaekit.VAE(cfg.model, data.shape)
    history = vaekit.train(model, data, cfg)
    diag = vaekit.latent_diagnostics(model, data.test)
    kl = np.array(diag["kl_per_dim"])
    return {
        "kl_per_dim": kl.tolist(), "activity": diag["activity"],
        "active_covariance": diag["active_units"], "active_kl": int((kl > KL_ACTIVE).sum()),
        "kl": diag["kl"], "test_recon": float(history[-1]["val_recon"]),
    }


def draw(result: dict, out: str):
    import matplotlib.pyplot as plt

    kl = np.array(result["kl_per_dim"])
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(range(LATENT_DIM), kl, color=["tab:blue" if v > KL_ACTIVE else "tab:gray" for v in kl])
    ax.axhline(KL_ACTIVE, color="k", lw=0.8, ls="--")
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_xticks(range(LATENT_DIM))
    ax.set_xlabel("latent dimension")
    ax.set_ylabel("KL (nats, test set)")
    ax.set_title(f"3 factors, 10 units: {result['active_kl']} with KL > {KL_ACTIVE}, "
                 f"{result['active_covariance']} by Burda's test", fontsize=9)
    return save(fig, out, "active_units.png")


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0])
    result = run(quick=args.quick, seed=args.seed)
    print("KL per dimension (nats):", " ".join(f"{v:.3f}" for v in result["kl_per_dim"]))
    print("Cov_x(E[z|x]) per dimension:", " ".join(f"{v:.3f}" for v in result["activity"]))
    print(f"active units: {result['active_covariance']} (Burda's covariance > 0.01), "
          f"{result['active_kl']} (KL > {KL_ACTIVE} nats); total KL {result['kl']:.2f} nats")
    print("picture:", draw(result, args.out))
