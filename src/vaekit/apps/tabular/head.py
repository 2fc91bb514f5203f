"""The target head's fit: which numbers it also sees one-hot (:func:`level_edges`) and its own
training, by log-loss with early stopping (:func:`fit_target_head`), before the VAE trains.

The head models p(target | rest of the row) for :class:`vaekit.apps.tabular.likelihood.TargetLast`;
its network lives in :class:`vaekit.apps.tabular.model.TabularModel`.
"""

from __future__ import annotations

import numpy as np
import torch

from vaekit.apps.tabular.model import TabularModel
from vaekit.apps.tabular.transform import TableTransformer
from vaekit.apps.tabular.values import column_numbers

# The target head sees a one-hot of the value of each continuous column with at most this many
# distinct values (TabularModel.head_features): Adult's capital-gain has 119, age 73.
HEAD_MAX_LEVELS = 128
# The head's own fit: the share of rows it holds out for early stopping, its epoch limit and
# patience (its best epochs on Adult: bench/results/tabular-adult-validation.md, second round).
HEAD_HOLDOUT, HEAD_MAX_EPOCHS, HEAD_PATIENCE = 0.1, 200, 10


def level_edges(transformer: TableTransformer, data, rows: np.ndarray,
                max_levels: int = HEAD_MAX_LEVELS) -> tuple[list[list[int]], np.ndarray]:
    """([column, number of edges, "other value" entry, missing flag], edges) of the continuous
    columns with 2..``max_levels`` distinct values, for
    :meth:`~vaekit.apps.tabular.model.TabularModel.head_features` (-1: the column has no atoms, or no
    missing values).

    The edges lie on the scale of the transformed ``rows``: a tied value covers an interval there
    (rows get random points in it), and each edge is halfway between one value's highest row and
    the next value's lowest, so a number maps to the value that the inverse transform gives it.
    Missing values and atoms (whose number is a constant 0) are left out.
    """
    levels, edges = [], []
    n_cont, missing_of = len(transformer.continuous), transformer.missing_of
    # each atom block ends with its "other value" entry
    other_of = {j: start + len(transformer.continuous[j]["atoms"]) for j, start in transformer.atom_block_starts().items()}
    for j, spec in enumerate(transformer.continuous):
        v = column_numbers(data, spec)
        keep = ~np.isnan(v)
        if spec.get("atoms"):
            keep &= ~np.isin(v, spec["atoms"])
        values = np.unique(v[keep])
        if not 2 <= len(values) <= max_levels:
            continue
        x = rows[keep, j].astype(np.float64)
        order = np.lexsort((x, v[keep]))
        which = np.searchsorted(values, v[keep][order])
        starts = np.searchsorted(which, np.arange(len(values)))
        low, high = x[order][starts], np.maximum.reduceat(x[order], starts)
        flag = n_cont + missing_of.index(j) if j in missing_of else -1
        levels.append([j, len(values) - 1, other_of.get(j, -1), flag])
        edges.append((high[:-1] + low[1:]) / 2)
    return levels, (np.concatenate(edges) if edges else np.zeros(0))


def fit_target_head(model: TabularModel, rows: torch.Tensor, lr: float, batch_size: int, seed: int) -> list[dict]:
    """Fit the target head alone, by log-loss, keeping the epoch with the best held-out log-loss.

    The head is a classifier of p(target | rest of the row), and it overfits long before the VAE
    has converged (on Adult its held-out log-loss is best after a fraction of the VAE's epochs:
    bench/results/tabular-adult-validation.md, second round); early stopping on a held-out share of ``rows`` (``HEAD_HOLDOUT``) fits it as a classifier
    should be fitted, which the ELBO's single loop over all parameters cannot. Returns one
    {epoch, train_loss, val_loss} per epoch (nats per row).
    """
    g = torch.Generator(device=rows.device).manual_seed(seed)
    perm = torch.randperm(rows.shape[0], generator=g, device=rows.device)
    n_val = max(1, int(HEAD_HOLDOUT * rows.shape[0]))
    val, fit_rows = rows[perm[:n_val]], rows[perm[n_val:]]
    opt = torch.optim.Adam(model.head.parameters(), lr=lr)
    best, best_epoch, best_state, history = float("inf"), 0, None, []
    for epoch in range(HEAD_MAX_EPOCHS):
        model.head.train()
        total = 0.0
        for idx in torch.randperm(fit_rows.shape[0], generator=g, device=rows.device).split(batch_size):
            loss = -model.target_log_prob(fit_rows[idx]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        model.head.eval()
        with torch.no_grad():
            val_loss = float(-model.target_log_prob(val).mean())
        history.append({"epoch": epoch + 1, "train_loss": total / fit_rows.shape[0], "val_loss": val_loss})
        if val_loss < best:
            best, best_epoch = val_loss, epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.head.state_dict().items()}
        elif epoch + 1 - best_epoch >= HEAD_PATIENCE:
            break
    model.head.load_state_dict(best_state)
    return history
