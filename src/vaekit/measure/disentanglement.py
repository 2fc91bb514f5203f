"""Disentanglement: the mutual information gap (MIG) between a code and known factors.

MIG (Chen et al. 2018, "Isolating sources of disentanglement in VAEs", eq. 6): for each ground
truth factor v_k, the gap between the largest and the second largest mutual information
I(z_j; v_k) over the code dimensions j, divided by the factor's entropy H(v_k), then averaged
over the factors:

    MIG = (1/K) sum_k (I(z_{j_k}; v_k) - max_{j != j_k} I(z_j; v_k)) / H(v_k),  j_k = argmax_j I(z_j; v_k).

It lies in [0, 1]: 1 when each factor is captured by one dimension alone, near 0 when the
factors are spread over (or shared between) dimensions. The mutual information is estimated as
Locatello et al. 2019 do ("Challenging common assumptions...", disentanglement_lib): the code
(e.g. posterior means) is discretised into equal-width bins per dimension and the plug-in
estimate of the discrete mutual information is taken. Numbers are in nats; numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def discretize(values: np.ndarray, bins: int = 20) -> np.ndarray:
    """Each column of ``values`` (N, D) as integer bin indices 0..bins-1 over its own range
    (equal-width bins, as disentanglement_lib's histogram discretiser); a constant column is all 0."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must be (examples, dims), got shape {values.shape}")
    out = np.zeros(values.shape, dtype=np.int64)
    for j in range(values.shape[1]):
        column = values[:, j]
        lo, hi = column.min(), column.max()
        if hi > lo:
            edges = np.linspace(lo, hi, bins + 1)[1:-1]  # inner edges: bins-1 of them
            out[:, j] = np.digitize(column, edges)
    return out


def entropy(labels: np.ndarray) -> float:
    """Plug-in entropy H(v) = -sum_v p(v) log p(v) of integer labels, in nats."""
    _, counts = np.unique(labels, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def discrete_mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in I(a; b) = sum p(a, b) log(p(a, b) / (p(a) p(b))) of two integer label arrays, in nats."""
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= joint.sum()
    outer = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    nonzero = joint > 0
    return float((joint[nonzero] * np.log(joint[nonzero] / outer[nonzero])).sum())


def mutual_info_matrix(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """I(z_j; v_k) for every code dimension j and factor k: shape (D, K), in nats; both arguments
    integer labels, (N, D) and (N, K)."""
    return np.array([[discrete_mutual_info(codes[:, j], factors[:, k]) for k in range(factors.shape[1])]
                     for j in range(codes.shape[1])])


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> dict[str, Any]:
    """The mutual information gap of continuous ``codes`` (N, D), e.g. posterior means, against
    integer ``factors`` (N, K), each code dimension discretised into ``bins`` bins.

    Returns ``mig`` (the mean over factors), ``gaps`` (per factor, normalised by H(v_k)),
    ``best_dims`` (the j_k) and ``mutual_info`` (the (D, K) matrix, nats). Needs D >= 2."""
    codes, factors = np.asarray(codes), np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or codes.shape[0] != factors.shape[0]:
        raise ValueError(f"codes (N, D) and factors (N, K) must have the same N; got {codes.shape} and {factors.shape}")
    if codes.shape[1] < 2:
        raise ValueError("MIG needs at least two code dimensions (it is a gap between the top two)")
    info = mutual_info_matrix(discretize(codes, bins), factors.astype(np.int64))
    ranked = np.sort(info, axis=0)[::-1]  # each column largest first
    entropies = np.array([entropy(factors[:, k]) for k in range(factors.shape[1])])
    gaps = (ranked[0] - ranked[1]) / np.maximum(entropies, 1e-12)
    return {"mig": float(gaps.mean()), "gaps": [float(g) for g in gaps],
            "best_dims": [int(j) for j in info.argmax(axis=0)], "mutual_info": info}
