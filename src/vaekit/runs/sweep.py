"""A beta sweep: one run per KL weight, and the rate-distortion curve they trace.

For a beta-VAE (Higgins et al. 2017) the rate is R = E_x KL(q(z|x) || p(z)) and the distortion
D = E_x E_q[-log p(x|z)], both in nats per example; training with weight beta minimises
D + beta R, so sweeping beta walks along the model's rate-distortion frontier (Alemi et al. 2018).
The ELBO is -(D + R) whatever beta was used.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any, Sequence

import torch

from vaekit.runs import folder

from vaekit.runs import plots
from vaekit.config import Config
from vaekit.errors import ConfigError
from vaekit.runs.evaluate import evaluate_run
from vaekit.runs.jobs import train_run


def parse_betas(text: str) -> list[float]:
    """'0.25,0.5,1' -> [0.25, 0.5, 1.0]; ConfigError for anything that is not a list of betas >= 0."""
    try:
        betas = [float(part) for part in str(text).replace(" ", "").split(",") if part != ""]
    except ValueError:
        raise ConfigError(f"--beta takes comma-separated numbers, e.g. 0.25,0.5,1,2,4,8; got {text!r}") from None
    if not betas or any(not math.isfinite(b) or b < 0 for b in betas):
        raise ConfigError(f"--beta takes one or more finite numbers >= 0, e.g. 0.25,0.5,1,2,4,8; got {text!r}")
    if len(set(betas)) != len(betas):
        raise ConfigError(f"--beta lists a value twice: {text!r}")
    return betas


def _run_name(beta: float) -> str:
    return f"beta-{beta:g}"


def sweep(config: Config, betas: Sequence[float], out: str | Path, split: str = "test", seed: int = 0) -> dict[str, Any]:
    """Train one run per beta under ``out/beta-<b>/`` and write ``sweep.json``, ``rate_distortion.png``
    and (for images) ``samples_by_beta.png`` with one row of prior samples per beta.

    Each run is an ordinary run folder made by :func:`vaekit.train_run`. Returns the summary
    written to ``sweep.json``: per beta its run folder, rate, distortion, ELBO and active units.
    """
    betas = [float(b) for b in betas]
    if not betas or any(b < 0 for b in betas):
        raise ConfigError("a sweep needs one or more betas >= 0")
    out = Path(out)
    taken = [str(out / _run_name(b)) for b in betas if (out / _run_name(b) / folder.CONFIG).exists()]
    if taken:
        raise ConfigError(f"{taken[0]} already holds a run; choose another --out for the sweep")
    points, rows = [], []
    for beta in betas:
        cfg = copy.deepcopy(config)
        cfg.training.beta = beta
        run = train_run(cfg, out=out / _run_name(beta))
        result = evaluate_run(run, split)
        points.append({
            "beta": beta, "run": str(run), "rate": result["kl"], "distortion": result["recon"],
            "elbo": result["elbo"], "active_units": result["active_units"], "mutual_info": result["mutual_info"],
        })
        model = folder.load(run)
        if len(model.data_shape) == 3 and not model.conditional:
            rows.append(model.sample(10, generator=torch.Generator().manual_seed(seed)))
    summary = {"split": split, "units": "nats per example", "points": points}
    out.mkdir(parents=True, exist_ok=True)
    folder.atomic_write(out / "sweep.json", json.dumps(summary, indent=2) + "\n")
    plots.save_rate_distortion(points, out / "rate_distortion.png")
    if rows:  # one row per beta, named on its left
        plots.save_labelled_rows(torch.stack(rows), out / "samples_by_beta.png", [f"beta {b:g}" for b in betas])
    print(f"sweep: {len(points)} runs in {out}")
    for p in points:
        print(f"  beta {p['beta']:<6g} rate {p['rate']:8.3f}  distortion {p['distortion']:9.3f}  "
              f"ELBO {p['elbo']:9.3f}  active units {p['active_units']}")
    print(f"  {out / 'sweep.json'}, {out / 'rate_distortion.png'}" + (f", {out / 'samples_by_beta.png'}" if rows else ""))
    return summary
