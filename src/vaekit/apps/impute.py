"""Completing and denoising data with a trained VAE, from Python and for ``vaekit impute``.

``impute(model, x, mask)`` fills the cells where ``mask`` is False and keeps the observed ones
fixed, by one of the three methods of :mod:`vaekit.apps.impute_methods` (pseudo-Gibbs,
Metropolis-within-Gibbs, and the default: the conditional mean by importance sampling).
``denoise(model, x)`` is the decoded posterior mean E[x | z = E_q[z | x]] of noisy inputs.
``impute_file`` completes a ``.csv`` or ``.npy`` file with a run's model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch

from vaekit.apps.impute_methods import FIT_STEPS, importance_fill, metropolis, pseudo_gibbs, warn_if_diverged
from vaekit.core.device import as_model_input
from vaekit.data.standardize import Standardizer, apply_standardizer
from vaekit.data.tables import read_csv_with_missing
from vaekit.errors import ConfigError, DataError
from vaekit.measure.latent import reconstruct
from vaekit.runs import folder
from vaekit.runs.plots import save_completion

Method = Literal["pseudo-gibbs", "metropolis", "importance"]
METHODS = ("pseudo-gibbs", "metropolis", "importance")


def _check_options(method: str, num_iter: int, num_samples: int, fit_steps: int) -> None:
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if num_iter < 1:
        raise ConfigError("num_iter must be at least 1")
    if num_samples < 1:
        raise ConfigError("num_samples must be at least 1")
    if fit_steps < 0:
        raise ConfigError("fit_steps must be at least 0")


def _observed(x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """The checked mask, True where a cell is observed (without one: the cells that are not NaN)."""
    mask = ~torch.isnan(x) if mask is None else torch.as_tensor(mask, dtype=torch.bool, device=x.device)
    if mask.shape != x.shape:
        raise DataError(f"mask has shape {tuple(mask.shape)}, the data {tuple(x.shape)}; they must match")
    if torch.isnan(x[mask]).any():
        raise DataError("observed cells (mask True) must not be NaN")
    return mask


@torch.no_grad()
def impute(
    model, x: torch.Tensor, mask: Optional[torch.Tensor] = None, num_iter: int = 50,
    method: Method = "importance", y: Optional[torch.Tensor] = None, seed: int = 0,
    num_samples: int = 1000, fit_steps: int = FIT_STEPS, progress: bool = False,
) -> torch.Tensor:
    """``x`` with its missing cells filled in; ``mask`` is True where a value is observed.

    Without ``mask``, NaN cells are the missing ones. Missing cells start at 0 (the column
    mean of standardised tables) and observed cells never change. ``num_iter``: the sweeps of
    pseudo-Gibbs and Metropolis, and the pseudo-Gibbs sweeps before the importance fill's fit;
    ``num_samples``: the importance samples of ``method="importance"``; ``fit_steps``: the Adam
    steps of its per-example proposal fit (0: the encoder's posterior of the pseudo-Gibbs fill,
    widened); ``progress``: progress bars over that fit and over the samples. The default method
    is the conditional mean (the least squared error of the three on MNIST halves and on the
    credit table, see ``bench/results/impute.md``). Returns a tensor on the CPU.
    """
    _check_options(method, num_iter, num_samples, fit_steps)
    x = as_model_input(model, x)
    model.check_shape(x)
    mask = _observed(x, mask)
    g = torch.Generator(device=x.device).manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        start = torch.where(mask, x, torch.zeros_like(x))
        if method == "metropolis":
            return metropolis(model, x, mask, start, y, num_iter, g).cpu()
        filled = pseudo_gibbs(model, x, mask, start, y, num_iter, g)
        if method == "pseudo-gibbs":
            warn_if_diverged(filled, x, mask)
            return filled.cpu()
        return importance_fill(model, x, mask, filled, y, num_samples, fit_steps, g, progress).cpu()
    finally:
        model.train(was_training)


def denoise(model, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
    """E[x | z = E_q[z | x]]: the model's clean version of (noisy) inputs, on the CPU; the same
    map as :func:`vaekit.reconstruct`, named for this use."""
    return reconstruct(model, x, y)


def read_with_missing(path, preprocessing: Optional[dict] = None):
    """(x, columns) of a .npy or .csv whose missing values are NaN or empty/NA cells.

    Tables are standardised with the run's stored statistics (NaN stays NaN); the training data
    layer rejects missing values, this reader is for imputation only.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist; give a .csv or .npy file")
    pre = dict(preprocessing or {})
    columns = None
    if path.suffix.lower() == ".npy":
        try:
            x = np.load(path, allow_pickle=False).astype(np.float64)
        except ValueError as exc:
            raise DataError(f"{path.name} is not a numeric .npy array ({exc})") from None
        if x.ndim == 2:
            columns = pre.get("columns") or [f"x{j}" for j in range(x.shape[1])]
    elif path.suffix.lower() == ".csv":
        x, columns = read_csv_with_missing(path, pre.get("columns"), pre.get("label_column"))
    else:
        raise DataError(f"cannot impute {path.name}: use a .csv or .npy file")
    if columns is not None and "mean" in pre:
        x = apply_standardizer(x, pre, path.name).astype(np.float64)
    return x, columns


def _write(out: Path, filled: np.ndarray, columns) -> None:
    if out.suffix == ".csv":
        if columns is None:
            raise ConfigError(f"--out {out}: images are written as .npy")
        np.savetxt(out, filled, delimiter=",", header=",".join(columns), comments="", fmt="%.6g")
    elif out.suffix == ".npy":
        np.save(out, filled.astype(np.float32))
    else:
        raise ConfigError(f"--out {out}: use a .csv or .npy file")


def impute_file(run, data, out=None, method: Method = "importance", num_iter: int = 50, seed: int = 0,
                progress: bool = False):
    """``vaekit impute``: fill the missing cells of a .csv/.npy file with a run's model.

    Returns (the path written, the picture's path or None): for images, a picture of the first 16
    inputs (missing pixels in red) above their fills goes beside it, with the same name and ``.png``."""
    doc = folder.read_run(run)
    model = folder.load(run)
    if model.conditional:
        raise ConfigError("imputation with a conditional run is not supported; train with --model vae")
    pre = doc.get("data", {}).get("preprocessing", {}) or {}
    x, columns = read_with_missing(data, pre)
    if x.ndim == 3 and len(model.data_shape) == 3:
        x = x[:, None]
    filled = impute(model, torch.from_numpy(x).float(), num_iter=num_iter, method=method, seed=seed,
                    progress=progress).double().numpy()
    if columns is not None and "mean" in pre:
        filled = Standardizer.from_record(pre).invert(filled)
    out = Path(out) if out else Path(run) / ("imputed" + Path(data).suffix.lower())
    out.parent.mkdir(parents=True, exist_ok=True)
    _write(out, filled, columns)
    picture = None
    if len(model.data_shape) == 3 and x.ndim == 4:  # images: a picture of the first ones, holes in red
        picture = save_completion(torch.from_numpy(x), torch.from_numpy(filled), out.with_suffix(".png"))
    return out, picture
