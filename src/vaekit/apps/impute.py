"""Completing and denoising data with a trained VAE.

``impute(model, x, mask)`` fills the cells where ``mask`` is False and keeps the observed ones
fixed, by iterating the model:

- ``method="pseudo-gibbs"`` (Rezende et al. 2014, sec. 5.2): z ~ q(z | x), then the missing
  cells <- E[x_m | z]; repeat. Simple, but not a true sampler of p(x_m | x_o), and with a
  Gaussian decoder it can diverge (a RuntimeWarning says so).
- ``method="metropolis"`` (Mattei & Frellsen 2018, "Leveraging the exact likelihood of deep
  latent variable models", Algorithm 1): a Metropolis-within-Gibbs chain on z with q(z | x) as
  the proposal; propose z' ~ q(z | x_t) and accept with probability
      min(1, p(x_o | z') p(z') q(z_t | x_t) / (p(x_o | z_t) p(z_t) q(z' | x_t))),
  then x_m ~ p(x_m | z_t). Its stationary law is the model's p(z, x_m | x_o). The answer is the
  mean of E[x_m | z_t] over the second half of the chain.
- ``method="importance"`` (the single imputation of Mattei & Frellsen 2019, MIWAE, eq. 9): the
  conditional mean E[x_m | x_o] = E_{p(z|x_o)}[E[x_m | z]], estimated by self-normalised
  importance sampling, sum_k w_k E[x_m | z_k] with z_k ~ r(z) and
      w_k proportional to p(x_o | z_k) p(z_k) / r(z_k).
  The conditional mean is the fill with the least expected squared error under the model. The
  proposal r is fitted to each example's observed cells (:func:`fit_observed_posterior`): the
  encoder has only seen complete inputs, and its posterior of a filled-in input is confident
  about the fill, so weights from it rest on a few draws near one completion (the estimate is
  then closer to one sample of p(x_m | x_o) than to its mean). The fit starts at the encoder's
  posterior of the input after ``num_iter`` pseudo-Gibbs sweeps, and its standard deviations are
  widened by ``PROPOSAL_WIDEN`` (a variational fit under-covers the posterior it fits).

``denoise(model, x)`` is the decoded posterior mean E[x | z = E_q[z | x]] of noisy inputs.
"""

from __future__ import annotations

import math
from typing import Literal, Optional

import torch
from tqdm.auto import tqdm

from vaekit.core.distributions import Bernoulli, DiagonalGaussian, Gaussian
from vaekit.errors import ConfigError, DataError

Method = Literal["pseudo-gibbs", "metropolis", "importance"]
METHODS = ("pseudo-gibbs", "metropolis", "importance")
# The per-example fit of method="importance" (fit_observed_posterior): Adam steps, learning rate, draws per
# step, examples fitted at once; and the factor on its standard deviations for the proposal. Chosen on MNIST
# test images 9000-9499 (bench/impute.py scores the first 1000) with bottom halves hidden: 50 / 100 / 200 / 400
# steps gave squared errors 0.0482 / 0.0468 / 0.0464 / 0.0462 per pixel; widening by 1.0 / 1.5 / 2.0, 0.0466 /
# 0.0464 / 0.0492 (the encoder's own posterior as the proposal: 0.0860; mean imputation 0.0776).
FIT_STEPS, FIT_LR, FIT_DRAWS, FIT_ROWS = 200, 0.05, 4, 1024
PROPOSAL_WIDEN = 1.5


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _as_model_input(model, x) -> torch.Tensor:
    """``x`` as a tensor on the model's device, in its floating dtype (float32, or float64 for
    the fitted models of the scikit-learn front ends)."""
    p = next(model.parameters())
    return torch.as_tensor(x).to(device=p.device, dtype=p.dtype)


def _elementwise_log_prob(likelihood, x: torch.Tensor) -> torch.Tensor:
    """log p(x_i | z) per cell (not summed): the likelihood's own formula with no event dimensions.

    Not through ``torch.distributions``: its Bernoulli refuses grey-level pixels in [0, 1]
    (e.g. MNIST with a model trained on dynamically binarised images), for which the Bernoulli
    log-likelihood x log p + (1 - x) log(1 - p) is still the quantity the model was fit with.
    """
    if isinstance(likelihood, Bernoulli):
        return Bernoulli(likelihood.logits, event_dims=0).log_prob(x)
    if isinstance(likelihood, Gaussian):
        return Gaussian(likelihood.mean, likelihood.scale, event_dims=0).log_prob(x)
    raise ConfigError(f"imputation supports Bernoulli and Gaussian likelihoods, not {type(likelihood).__name__}")


@torch.no_grad()
def impute(
    model, x: torch.Tensor, mask: Optional[torch.Tensor] = None, num_iter: int = 50,
    method: Method = "importance", y: Optional[torch.Tensor] = None, seed: int = 0,
    num_samples: int = 1000, fit_steps: int = FIT_STEPS, progress: bool = False,
) -> torch.Tensor:
    """``x`` with its missing cells filled in; ``mask`` is True where a value is observed.

    Without ``mask``, NaN cells are the missing ones. Missing cells start at 0 (the column
    mean of standardised tables) and observed cells never change. ``num_samples``: the draws
    of ``method="importance"``; ``fit_steps``: the Adam steps of its per-example proposal fit
    (0: the encoder's posterior of the pseudo-Gibbs fill, widened); ``progress``: progress bars
    over that fit and over the draws. The default method is the conditional mean (the least squared error of the three on
    MNIST halves and on the credit table, see ``bench/results/impute.md``). Returns a tensor on the CPU.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if num_iter < 1:
        raise ConfigError("num_iter must be at least 1")
    if num_samples < 1:
        raise ConfigError("num_samples must be at least 1")
    if fit_steps < 0:
        raise ConfigError("fit_steps must be at least 0")
    x = _as_model_input(model, x)
    model.check_shape(x)
    mask = ~torch.isnan(x) if mask is None else torch.as_tensor(mask, dtype=torch.bool, device=x.device)
    if mask.shape != x.shape:
        raise DataError(f"mask has shape {tuple(mask.shape)}, the data {tuple(x.shape)}; they must match")
    if torch.isnan(x[mask]).any():
        raise DataError("observed cells (mask True) must not be NaN")
    g = torch.Generator(device=x.device).manual_seed(seed)
    was_training = model.training
    model.eval()
    current = torch.where(mask, x, torch.zeros_like(x))
    if method in ("pseudo-gibbs", "importance"):
        for _ in range(num_iter):
            z = model.encode(current, y).rsample(generator=g)
            current = torch.where(mask, x, model.decode(z, y).mean)
        if method == "pseudo-gibbs":
            _warn_if_diverged(current, x, mask)
        if method == "importance":
            fitted = fit_observed_posterior(model, x, mask, current, y, steps=fit_steps, generator=g, progress=progress)
            proposal = DiagonalGaussian(fitted.mean, fitted.logvar + 2 * math.log(PROPOSAL_WIDEN))
            current = torch.where(mask, x, _conditional_mean(model, x, mask, proposal, y, num_samples, g, progress=progress))
        model.train(was_training)
        return current.cpu()
    # Metropolis-within-Gibbs (Mattei & Frellsen 2018, Algorithm 1)
    z = model.encode(current, y).rsample(generator=g)
    total, kept = torch.zeros_like(x), 0
    for t in range(num_iter):
        q = model.encode(current, y)
        proposal = q.rsample(generator=g)
        lik_new, lik_old = model.decode(proposal, y), model.decode(z, y)
        log_ratio = (_observed_log_prob(lik_new, current, mask) + model.prior.log_prob(proposal) + q.log_prob(z)
                     - _observed_log_prob(lik_old, current, mask) - model.prior.log_prob(z) - q.log_prob(proposal))
        accept = torch.rand(log_ratio.shape, generator=g, device=x.device).log() < log_ratio
        z = torch.where(accept[:, None], proposal, z)
        lik = model.decode(z, y)
        current = torch.where(mask, x, lik.sample(generator=g))
        if t >= num_iter // 2:
            total += torch.where(mask, x, lik.mean)
            kept += 1
    model.train(was_training)
    return (total / kept).cpu()


def _warn_if_diverged(filled: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, factor: float = 10.0) -> None:
    """Warn when pseudo-Gibbs fills have run away: beyond ``factor`` times the largest observed magnitude.

    The chain has no accept step, and with a Gaussian decoder the encoder-decoder loop of ReLU
    networks can amplify itself (seen on the credit table with a latent of 8: fills of 1e5 standard
    deviations after 50 sweeps); Metropolis-within-Gibbs and the importance fill do not.
    """
    import warnings

    limit = factor * float(x[mask].abs().max()) if bool(mask.any()) else float("inf")
    worst = float(filled[~mask].abs().max()) if bool((~mask).any()) else 0.0
    if not worst <= limit:  # also a NaN
        warnings.warn(f"pseudo-Gibbs fills diverged (largest {worst:.3g}, observed values at most {limit / factor:.3g}); "
                      "use method='importance' (the default) or 'metropolis'", RuntimeWarning, stacklevel=3)


def _observed_log_prob(likelihood, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log p(x_o | z): the likelihood of the observed cells only, one number per (sample, example)."""
    # the missing cells (NaN in x) are scored at 0 and then weighted by 0; multiplying by the mask is
    # 13x faster than torch.where with the mask broadcast over the sample dimension
    lp = _elementwise_log_prob(likelihood, torch.where(mask, x, 0.0))
    return (lp * mask.to(lp.dtype)).flatten(-len(x.shape) + 1).sum(-1)


def fit_observed_posterior(
    model, x: torch.Tensor, mask: torch.Tensor, start: torch.Tensor, y: Optional[torch.Tensor] = None,
    steps: int = FIT_STEPS, lr: float = FIT_LR, draws: int = FIT_DRAWS, generator: Optional[torch.Generator] = None,
    progress: bool = False,
) -> DiagonalGaussian:
    """A diagonal Gaussian over z for each example, fitted to its observed cells only.

    Maximises E_r[log p(x_o | z) + log p(z)] + H[r], the ELBO of the observed cells (its optimum is
    the diagonal Gaussian closest to p(z | x_o) in KL(r || p)), by ``steps`` Adam steps on each
    example's mean and log standard deviation with ``draws`` reparameterised draws per step, started
    at the encoder's posterior of ``start`` (per-example stochastic variational inference, as in the
    semi-amortised refinement of Kim et al. 2018). Examples are fitted independently (Adam's update is
    elementwise), ``FIT_ROWS`` at a time; the model's parameters get no gradient.
    """
    q = model.encode(start, y)
    means, logvars = [], []
    bar = tqdm(total=steps * -(-x.shape[0] // FIT_ROWS), desc="fitting each row's posterior", unit="step",
               disable=not progress, leave=False)
    for lo in range(0, x.shape[0], FIT_ROWS):
        rows = slice(lo, lo + FIT_ROWS)
        yb = None if y is None else y[rows]
        mean = q.mean[rows].detach().clone().requires_grad_(True)
        log_std = (0.5 * q.logvar[rows]).detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([mean, log_std], lr=lr)
        with torch.enable_grad():
            for _ in range(steps):
                eps = torch.randn((draws, *mean.shape), generator=generator, device=mean.device, dtype=mean.dtype)
                z = mean + log_std.exp() * eps
                fit = (_observed_log_prob(model.decode(z, yb), x[rows], mask[rows]) + model.prior.log_prob(z)).mean(0)
                mean.grad, log_std.grad = torch.autograd.grad(-(fit + log_std.sum(-1)).sum(), [mean, log_std])
                opt.step()
                bar.update(1)
        means.append(mean.detach())
        logvars.append(2 * log_std.detach())
    bar.close()
    return DiagonalGaussian(torch.cat(means), torch.cat(logvars))


def _conditional_mean(model, x, mask, proposal: DiagonalGaussian, y, num_samples: int, g,
                      max_elements: int = 2**22, progress: bool = False) -> torch.Tensor:
    """sum_k w_k E[x | z_k], z_k ~ ``proposal``, self-normalised weights (see the module docstring).

    Chunks of samples keep every decoder output under ``max_elements`` numbers; the chunks are
    combined by a running log-sum-exp, so memory does not grow with ``num_samples``.
    """
    chunk = max(1, min(num_samples, max_elements // max(1, x[0].numel() * x.shape[0])))
    log_total = torch.full((x.shape[0],), -torch.inf, dtype=torch.float64, device=x.device)
    weighted = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    shape = (-1, *[1] * (x.dim() - 1))
    for done in tqdm(range(0, num_samples, chunk), desc=f"averaging over {num_samples} draws", unit="chunk",
                     disable=not progress, leave=False):
        z = proposal.rsample(min(chunk, num_samples - done), generator=g)  # (k, batch, latent_dim)
        lik = model.decode(z, y)
        log_w = (_observed_log_prob(lik, x, mask) + model.prior.log_prob(z) - proposal.log_prob(z)).double()
        new_total = torch.logaddexp(log_total, torch.logsumexp(log_w, 0))
        # rescale what is summed so far to the new normaliser, then add this chunk's share
        weighted *= torch.exp(log_total - new_total).view(shape)
        share = torch.exp(log_w - new_total)  # (k, batch)
        weighted += (share.to(lik.mean.dtype).view(*share.shape, *[1] * (x.dim() - 1)) * lik.mean).sum(0)
        log_total = new_total
    return weighted.to(x.dtype)


@torch.no_grad()
def denoise(model, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
    """E[x | z = E_q[z | x]]: the model's clean version of (noisy) inputs, on the CPU."""
    x = _as_model_input(model, x)
    return model.decode(model.encode(x, y).mean, y).mean.cpu()


_MISSING = {"", "na", "n/a", "nan", "null", "none", "?", "-", "missing"}


def read_with_missing(path, preprocessing: Optional[dict] = None):
    """(x, columns) of a .npy or .csv whose missing values are NaN or empty/NA cells.

    Tables are standardised with the run's stored statistics (NaN stays NaN); the training data
    layer rejects missing values, this reader is for imputation only.
    """
    import numpy as np
    from pathlib import Path

    from vaekit.data.tables import apply_standardizer, read_csv_cells

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
        header, rows, lines = read_csv_cells(path)
        index = {name: j for j, name in enumerate(header)}
        columns = pre.get("columns") or [h for h in header if h != pre.get("label_column")]
        absent = [c for c in columns if c not in index]
        if absent:
            raise DataError(f"{path.name} lacks the column(s) {', '.join(map(repr, absent))} the model was trained on")
        x = np.empty((len(rows), len(columns)))
        for i, (row, line) in enumerate(zip(rows, lines)):
            for k, c in enumerate(columns):
                cell = row[index[c]].strip()
                if cell.lower() in _MISSING:
                    x[i, k] = np.nan
                    continue
                try:
                    x[i, k] = float(cell)
                except ValueError:
                    raise DataError(f"{path.name} row {line}, column {c!r}: {cell!r} is not a number") from None
    else:
        raise DataError(f"cannot impute {path.name}: use a .csv or .npy file")
    if columns is not None and "mean" in pre:
        x = apply_standardizer(x, pre, path.name).astype(np.float64)
    return x, columns


def impute_file(run, data, out=None, method: Method = "importance", num_iter: int = 50, seed: int = 0,
                progress: bool = False):
    """``vaekit impute``: fill the missing cells of a .csv/.npy file with a run's model.

    Returns (the path written, the picture's path or None): for images, a picture of the first 16
    inputs (missing pixels in red) above their fills goes beside it, with the same name and ``.png``."""
    import numpy as np
    from pathlib import Path

    from vaekit.runs import folder

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
        filled = filled * np.asarray(pre["std"]) + np.asarray(pre["mean"])
    out = Path(out) if out else Path(run) / ("imputed" + Path(data).suffix.lower())
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        if columns is None:
            raise ConfigError(f"--out {out}: images are written as .npy")
        np.savetxt(out, filled, delimiter=",", header=",".join(columns), comments="", fmt="%.6g")
    elif out.suffix == ".npy":
        np.save(out, filled.astype(np.float32))
    else:
        raise ConfigError(f"--out {out}: use a .csv or .npy file")
    picture = None
    if len(model.data_shape) == 3 and x.ndim == 4:  # images: a picture of the first ones, holes in red
        from vaekit.runs.plots import save_completion

        picture = save_completion(torch.from_numpy(x), torch.from_numpy(filled), out.with_suffix(".png"))
    return out, picture
