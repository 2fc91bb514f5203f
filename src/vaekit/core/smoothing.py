"""Virtual adversarial smoothing of a classifier q(y|x) (Miyato, Maeda, Koyama & Ishii, "Distributional
smoothing with virtual adversarial training", ICLR 2016; TPAMI 2018), as pure functions.

The virtual adversarial loss at x is how far q(y|x) moves under the worst small change of x:

    LDS(x) = KL(q(y|x) || q(y|x + r_adv)),   r_adv = argmax_{||r|| <= eps} KL(q(y|x) || q(y|x + r))

with q(y|x) held fixed (no gradient flows through it). r_adv is found by one step of power iteration
on the KL's curvature at r = 0: from a random unit direction d, r_adv = eps * g / ||g|| with g the
gradient of KL(q(y|x) || q(y|x + xi d)) in d, xi small (Miyato et al., eq. 8; see XI_FRACTION). No
label takes part, so every unlabelled row teaches the classifier to stay constant around the data,
where M2's bound alone trains q(y|x) only through how well each class explains x. Lengths are
Euclidean over each row's elements (all dims but the first).
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

import torch

from vaekit.core.distributions import categorical_kl, standard_normal

# length of the probe d of the power iteration, as a fraction of eps. Miyato et al. use 1e-6 whatever
# eps is; in float32 a probe that short is lost to rounding in rows of length about 1 (one step's
# direction agreed with float64's at cosine 0.43 on M1's codes), while at 1e-3 of eps it agrees at 0.999
XI_FRACTION = 1e-3
# eps = EPS_FRACTION * the median distance from a row to its NEIGHBOUR-th nearest other row: Hu et al.'s
# IMSAT (2017) sets each row's eps so (a quarter of its distance to the 10th neighbour); one eps for all
# rows here: the median over up to SCALE_ROWS rows, their neighbours among up to REFERENCE_ROWS, CHUNK at a time
EPS_FRACTION, NEIGHBOUR, SCALE_ROWS, REFERENCE_ROWS, CHUNK = 0.25, 10, 2000, 100_000, 8192


def unit_rows(d: torch.Tensor) -> torch.Tensor:
    """``d`` with each row (all dims but the first) scaled to Euclidean length 1."""
    norms = d.flatten(1).norm(dim=1).clamp_min(1e-12)
    return d / norms.reshape(-1, *([1] * (d.dim() - 1)))


def adversarial_direction(classify: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                          logits: torch.Tensor, xi: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """The unit direction per row in which q(y|x) changes fastest (one power-iteration step from a
    random direction, probed at length ``xi``)."""
    d = (xi * unit_rows(standard_normal(x.shape, generator, x.device, x.dtype))).requires_grad_(True)
    kl = categorical_kl(logits.detach(), classify(x.detach() + d)).sum()
    (grad,) = torch.autograd.grad(kl, d)
    return unit_rows(grad.detach())


def virtual_adversarial_loss(classify: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: float,
                             logits: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
                             xi: Optional[float] = None) -> torch.Tensor:
    """The mean over the rows of ``x`` of LDS(x) (the module's docstring), a 0-dim tensor whose
    gradient reaches ``classify``'s parameters through q(y|x + r_adv) only. ``logits``: q(y|x)'s
    logits at ``x`` when already computed (detached here); ``classify`` maps a batch to logits; ``xi``:
    the probe's length (None: XI_FRACTION * eps)."""
    if x.shape[0] == 0:
        return x.new_zeros(())
    if logits is None:
        with torch.no_grad():
            logits = classify(x)
    r = eps * adversarial_direction(classify, x, logits, XI_FRACTION * eps if xi is None else xi, generator)
    return categorical_kl(logits.detach(), classify(x.detach() + r)).mean()


def neighbour_distance(queries: torch.Tensor, chunks: Iterable[torch.Tensor], k: int = NEIGHBOUR) -> float:
    """The median over ``queries`` of the Euclidean distance to their ``k``-th nearest other row among
    the rows of ``chunks`` (read a chunk at a time), which hold the queries themselves: each query's
    nearest, at distance 0, is itself and is passed over."""
    q = queries.flatten(1).double()
    nearest = None  # (queries, up to k + 1) smallest distances so far
    for chunk in chunks:
        d = torch.cdist(q, chunk.flatten(1).double())
        nearest = d if nearest is None else torch.cat([nearest, d], 1)
        nearest = nearest.topk(min(k + 1, nearest.shape[1]), dim=1, largest=False).values
    if nearest is None or nearest.shape[1] < k + 1:
        raise ValueError(f"the distance to the {k}-th neighbour needs more than {k} rows")
    return float(nearest[:, k].median())


def automatic_eps(rows: Callable[[torch.Tensor], torch.Tensor] | torch.Tensor, n: Optional[int] = None) -> float:
    """vaekit's default eps for a set of ``n`` rows (``rows``: the rows, or a function from indices to
    rows): EPS_FRACTION of the median distance from a row to its NEIGHBOUR-th nearest other row, over up
    to SCALE_ROWS evenly spaced rows, their neighbours looked for among up to REFERENCE_ROWS."""
    if isinstance(rows, torch.Tensor):
        rows, n = rows.__getitem__, rows.shape[0]
    spaced = lambda m: torch.linspace(0, n - 1, min(m, n)).round().long()
    queries = spaced(SCALE_ROWS)
    reference = torch.unique(torch.cat([spaced(REFERENCE_ROWS), queries]))  # the queries among them
    chunks = (rows(reference[i : i + CHUNK]) for i in range(0, len(reference), CHUNK))
    return EPS_FRACTION * neighbour_distance(rows(queries), chunks, min(NEIGHBOUR, n - 1))
