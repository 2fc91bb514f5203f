"""p(x|z) for a table row: :class:`MixedTabular` (every column given z) and :class:`TargetLast`
(one categorical column modelled last, given the rest of the row).

Both are built from the shared densities of :mod:`vaekit.core.distributions` (the Gaussian,
Bernoulli and categorical terms and the one noise draw), so no formula is written here again.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

from vaekit.core.distributions import (
    bernoulli_log_prob, categorical_log_prob, categorical_sample, normal_log_prob, standard_normal,
)


class MixedTabular:
    """p(x|z) for a table row: Gaussian continuous parts, Bernoulli missing flags, categoricals.

    A row ``x`` is laid out as ``[continuous (n_cont) | missing flags | one-hot blocks]``; the
    decoder's ``params`` as ``[means (n_cont) | raw scales (n_cont) | flag logits | category
    logits]``. ``missing_of[j]`` is the continuous column whose missing flag is flag ``j``: where
    that flag is 1 the value is absent and its Gaussian term is left out (the flag's Bernoulli
    term models the missingness). ``log_prob`` sums all parts: one number per row, in nats.
    Scales are ``scale_floor + softplus(raw)``: without a floor a Gaussian whose mean hits a tied
    value exactly has unbounded density (see ``vaekit.core.distributions.Gaussian``).
    """

    def __init__(self, params: torch.Tensor, n_cont: int, missing_of: tuple[int, ...], cat_sizes: tuple[int, ...],
                 scale_floor: float = 0.05):
        self.params, self.n_cont = params, int(n_cont)
        self.missing_of, self.cat_sizes = tuple(missing_of), tuple(cat_sizes)
        c, m = self.n_cont, len(self.missing_of)
        # One split (its backward is one concatenation) rather than a slice per block, whose
        # backwards each fill a params-sized zero tensor and add it (timed in
        # bench/results/tabular-adult-validation.md, sixth round).
        self.loc, raw_scale, self.flag_logits, *self.cat_blocks = params.split([c, c, m, *self.cat_sizes], dim=-1)
        self.scale = scale_floor + F.softplus(raw_scale)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        c, m = self.n_cont, len(self.missing_of)
        xc, flags, onehot = x[..., :c], x[..., c : c + m], x[..., c + m :]
        gauss = normal_log_prob(xc, self.loc, scale=self.scale)
        if m:
            observed = torch.ones_like(gauss)
            observed[..., list(self.missing_of)] = 1.0 - flags.expand_as(self.flag_logits)
            gauss = gauss * observed
        lp = gauss.sum(-1)
        if m:
            lp = lp + bernoulli_log_prob(self.flag_logits, flags.expand_as(self.flag_logits), 0).sum(-1)
        for logits, target in zip(self.cat_blocks, onehot.split(self.cat_sizes, dim=-1)):
            lp = lp + categorical_log_prob(logits, target)
        return lp

    @property
    def mean(self) -> torch.Tensor:
        probs = [torch.softmax(b, dim=-1) for b in self.cat_blocks]
        return torch.cat([self.loc, torch.sigmoid(self.flag_logits), *probs], dim=-1)

    def sample(self, generator: Optional[torch.Generator] = None, argmax_categories: bool = False) -> torch.Tensor:
        """One draw per row: Gaussian values, 0/1 flags and one-hot categories (the most probable
        category of each block with ``argmax_categories``, as TVAE does when it samples)."""
        eps = standard_normal(self.loc.shape, generator, self.loc.device, self.loc.dtype)
        flags = torch.bernoulli(torch.sigmoid(self.flag_logits), generator=generator)
        parts = [self.loc + self.scale * eps, flags]
        parts += [categorical_sample(logits, generator, argmax_categories) for logits in self.cat_blocks]
        return torch.cat(parts, dim=-1)


class TargetLast:
    """p(x|z, y) with one categorical column t modelled last: p(x_-t | z, y) p(t | x_-t).

    Given z the decoder's columns are independent, so whatever ties the target to the other
    columns must pass through z, and a VAE's z carries only part of it (rows rebuilt from their
    own codes lose much of p(target | features): bench/results/tabular-adult-validation.md,
    first round's diagnostics). Here a head sees the row's other values, so p(t | x_-t) is
    modelled directly. It does not see z: the encoder sees t, so z carries t, and a head given z
    leans on it (the same file's table: "target head over (z, rest of row)" against "over the
    rest of the row only"). ``log_prob`` is the MixedTabular term of the other columns (the
    target's block zeroed drops its term) plus the head's; ``sample`` draws the other columns,
    then t. ``head`` maps a row with the target's block zeroed to the target's logits
    (:meth:`vaekit.apps.tabular.model.TabularModel.target_logits`).
    """

    def __init__(self, base: Optional[MixedTabular], head: Callable[[torch.Tensor], torch.Tensor],
                 lead: torch.Size, start: int, size: int):
        self.base, self.head, self.lead, self.start, self.size = base, head, lead, start, size  # lead: z's leading dims

    def _without_target(self, x: torch.Tensor) -> torch.Tensor:
        x = x.expand(*self.lead, x.shape[-1]).clone()
        x[..., self.start : self.start + self.size] = 0.0
        return x

    def _head_term(self, rest: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return categorical_log_prob(self.head(rest), x[..., self.start : self.start + self.size])

    def target_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(t | x_-t), the head's term alone (``base`` is not used)."""
        return self._head_term(self._without_target(x), x)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        rest = self._without_target(x)
        return self.base.log_prob(rest) + self._head_term(rest, x)

    @property
    def mean(self) -> torch.Tensor:
        rest = self._without_target(self.base.mean)
        rest[..., self.start : self.start + self.size] = torch.softmax(self.head(rest), -1)
        return rest

    def sample(self, generator: Optional[torch.Generator] = None, argmax_categories: bool = False) -> torch.Tensor:
        rest = self._without_target(self.base.sample(generator=generator, argmax_categories=argmax_categories))
        onehot = categorical_sample(self.head(rest), generator, argmax_categories)
        rest[..., self.start : self.start + self.size] = onehot.to(rest.dtype)
        return rest
