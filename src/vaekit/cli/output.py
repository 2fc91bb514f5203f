"""Writing what a command made: arrays, pictures and tables to the file the user named, and
``vaekit eval``'s table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaekit.errors import ConfigError
from vaekit.runs import plots


def int_arg(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {text!r}") from None


def out_path(args, default_name: str) -> Path:
    """--out, or the default file name inside the run folder."""
    return Path(args.out) if args.out else Path(args.run) / default_name


def save_array_or_grid(x: torch.Tensor, path: Path, nrow: int = 8, image: bool = True) -> Path:
    """Images as a .png grid or any array as .npy, as the file name asks."""
    if path.suffix == ".npy":
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, x.numpy())
    elif path.suffix == ".png" and image:
        plots.save_grid(x, path, nrow=nrow)
    else:
        raise ConfigError(f"--out {path}: use a .png or .npy file" if image else f"--out {path}: tables are written as .npy")
    return path


def write_columns(out: Path, values: np.ndarray, names: list[str]) -> Path:
    """Write an array as .npy (as it is) or as .csv with one named column per feature."""
    if out.suffix not in (".csv", ".npy"):
        raise ConfigError(f"--out {out}: use a .npy or .csv file")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        np.savetxt(out, values.reshape(len(values), -1), delimiter=",", header=",".join(names), comments="", fmt="%.6g")
    else:
        np.save(out, values)
    return out


SIGNS = ("signs: ELBO <= {px}; both are positive where a density on continuous data in [0, 1] exceeds 1, "
         "negative for binary data; loss = -ELBO at beta = 1")


def eval_lines(run: str, result: dict[str, Any]) -> list[str]:
    """``vaekit eval``'s table: every number follows from the ones printed beside it (elbo = -(recon
    + kl) for the one-draw estimate; gap = log p(x) - the k-draw ELBO printed above it). For a run
    given the labels (``result["given"] == "y"``: a CVAE, M2 and its kin) every row is conditional
    on them, and says so: log p(x|y), p(x|y,z), q(z|x,y)."""
    given = result.get("given") == "y"
    px = "log p(x|y)" if given else "log p(x)"
    rows = [("elbo", "ELBO (one draw per example)"), ("recon", f"reconstruction -log p(x|{'y,z' if given else 'z'})"),
            ("kl", f"KL(q(z|{'x,y' if given else 'x'}) || p(z))"), ("loss", "loss (recon + beta KL)"),
            ("bits_per_dim", "-ELBO in bits/dim")]
    if "nll" in result:
        k = result["nll_samples"]
        rows += [("log_px", f"{px}, k={k} importance samples"), ("nll", f"NLL = -{px}"),
                 ("nll_stderr", "  standard error over examples"), ("nll_bits_per_dim", "NLL in bits/dim"),
                 ("elbo_k", f"ELBO (mean over the same k={k} draws)"), ("elbo_gap", f"ELBO gap = {px} - ELBO (k draws)")]
        # the gap as the difference of the two numbers printed above it, to the printed precision
        log_px = -result["nll"]
        result = {**result, "log_px": log_px, "elbo_gap": round(log_px, 3) - round(result["elbo_k"], 3)}
    rows.append(("mutual_info", f"I_q(x;z) (ceiling log N={result['mutual_info_max']:.2f})"))
    lines = [f"{run}: {result['examples']} {result['split']} examples, nats per example"]
    lines += [f"  {text:<38} {result[key]:>10.3f}" for key, text in rows if key in result]
    lines.append(f"  {'active units':<38} {result['active_units']:>6} of {result['latent_dim']}")
    lines.append("  KL per dimension: " + " ".join(f"{v:.2f}" for v in result["kl_per_dim"]))
    lines.append("  " + SIGNS.format(px=px))
    return lines
