"""The tabular VAE's network, :class:`TabularModel`: a vaekit VAE over transformed rows,
conditional on a CTGAN-style condition vector ``y``, with a latent mixture for sampling and an
optional target head (its likelihood: :mod:`vaekit.apps.tabular.likelihood`).

The SDV-shaped front end that fits it to a DataFrame is :class:`vaekit.apps.tabular.synthesizer.TabularVAE`;
a run folder records it as the registry's ``"TabularModel"`` (:mod:`vaekit.core.registry`).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from vaekit.apps.tabular.likelihood import MixedTabular, TargetLast
from vaekit.config import Config
from vaekit.core.distributions import DiagonalGaussian, standard_normal
from vaekit.core.mixture import fit_gaussian_mixture
from vaekit.core.models import BaseVAE
from vaekit.core.networks import mlp
from vaekit.errors import DataError

HEAD_HIDDEN, HEAD_DROPOUT = 64, 0.5  # the target head of TargetLast (see TabularModel)


class TabularModel(BaseVAE):
    """A VAE over transformed table rows; ``decode(z, y)`` returns a MixedTabular likelihood (a
    TargetLast with a target block). ``y`` is the condition vector: one one-hot block per
    categorical column, zeros where the column is not given (None: nothing given).

    The training loop passes no labels (``num_classes`` is 0, so to it this is an unconditional
    model): in training, :meth:`forward` builds each row's condition vector from the row itself.
    """

    def __init__(self, layout: dict, latent_dim: int = 32, hidden: tuple[int, ...] = (256, 256),
                 scale_floor: float = 0.05, p_condition: float = 0.5, latent_components: int = 0,
                 target_block: Optional[tuple[int, int]] = None, head_levels: Optional[list] = None):
        super().__init__()
        self.layout = dict(layout)
        self.n_cont, self.missing_of = int(layout["n_cont"]), tuple(layout["missing_of"])
        self.cat_sizes = tuple(layout["cat_sizes"])
        self.width = self.n_cont + len(self.missing_of) + sum(self.cat_sizes)
        self.cond_dim = sum(self.cat_sizes)
        self.data_shape = (self.width,)
        self.latent_dim, self.hidden = int(latent_dim), tuple(hidden)
        self.scale_floor, self.p_condition = float(scale_floor), float(p_condition)
        n_params = 2 * self.n_cont + len(self.missing_of) + self.cond_dim
        self.encoder = mlp([self.width + self.cond_dim, *self.hidden, 2 * self.latent_dim])
        self.decoder = mlp([self.latent_dim + self.cond_dim, *reversed(self.hidden), n_params])
        # (offset in a row, size) of the block modelled last, by a head over the rest of the row
        self.target_block = None if target_block is None else (int(target_block[0]), int(target_block[1]))
        # (continuous column, number of edges, its atom block's "other value" entry, its missing flag;
        # -1 where none) of the columns whose values the head also sees one-hot (see head_features)
        self.head_levels = [tuple(int(v) for v in level) for level in (head_levels or [])]
        if self.target_block is not None:
            # A small classifier with dropout: wider heads without dropout overfit on Adult (the head
            # variants of bench/results/tabular-adult-validation.md); TabularVAE.fit also stops it early.
            n_in = self.width + sum(level[1] + 1 for level in self.head_levels)
            self.head = nn.Sequential(nn.Linear(n_in, HEAD_HIDDEN), nn.ReLU(), nn.Dropout(HEAD_DROPOUT),
                                      nn.Linear(HEAD_HIDDEN, self.target_block[1]))
            if self.head_levels:  # a buffer only when used: a model without levels has no edges to save
                self.register_buffer("head_edges", torch.zeros(sum(level[1] for level in self.head_levels)))
        # The latent density used for sampling (not for the ELBO, whose prior stays N(0, I)):
        # a Gaussian mixture fitted to the codes of the training rows after training. K = 0: N(0, I).
        self.latent_components = int(latent_components)
        k, d = self.latent_components, self.latent_dim
        if k > 0:  # no buffers at all for K = 0: the prior is the sampling density
            self.register_buffer("mix_logits", torch.zeros(k))
            self.register_buffer("mix_means", torch.zeros(k, d))
            self.register_buffer("mix_chol", torch.eye(d).repeat(k, 1, 1))
            # log p(component | category) for each category of the condition vector (its rows' mean
            # responsibilities): conditional samples draw z from the components of rows like them.
            self.register_buffer("mix_cond", torch.zeros(self.cond_dim, k))

    def head_features(self, rest: torch.Tensor) -> torch.Tensor:
        """The target head's input: the row, and for each column of ``head_levels`` a one-hot of the
        value it stands for (which of its levels, between consecutive ``head_edges``).

        A continuous column holds a number on the quantile-normal scale, on which a value taken by
        many rows (a tie) is a whole interval. Where a column takes few distinct values the label can
        depend on each of them separately (Adult's capital-gain: 119 values, some almost always
        >50K, their neighbours not), which an MLP's smooth function of the number misses and a
        tree's splits catch. A one-hot per value lets the head learn one weight per value, which
        brings the head alone to the level of gradient boosting on the raw columns (measured in
        bench/results/tabular-adult-validation.md, second round). Rows whose number stands for no
        value (an atom's or a missing value's constant 0) get an all-zero one-hot.
        """
        if not self.head_levels:
            return rest
        parts, offset = [rest], 0
        for j, k, other, flag in self.head_levels:
            level = torch.bucketize(rest[..., j].contiguous(), self.head_edges[offset : offset + k])
            onehot = torch.nn.functional.one_hot(level, k + 1).to(rest.dtype)
            if other >= 0:
                onehot = onehot * rest[..., other : other + 1]
            if flag >= 0:
                onehot = onehot * (1.0 - rest[..., flag : flag + 1])
            parts.append(onehot)
            offset += k
        return torch.cat(parts, -1)

    def target_logits(self, rest: torch.Tensor) -> torch.Tensor:
        """The head's logits of p(target | rest of the row), from a row whose target block is zeroed."""
        return self.head(self.head_features(rest))

    def target_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(target | rest of the row) for rows ``x`` (batch, width): the head's term of TargetLast."""
        return TargetLast(None, self.target_logits, x.shape[:-1], *self.target_block).target_log_prob(x)

    def check_shape(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.data_shape:
            raise DataError(f"the model expects rows of width {self.width}, got {tuple(x.shape[1:])}")

    def _condition(self, y: Optional[torch.Tensor], batch: int, like: torch.Tensor) -> torch.Tensor:
        """The condition vectors of ``batch`` rows (one vector given for all, or one per row)."""
        if y is None:
            return like.new_zeros(batch, self.cond_dim)
        return y.to(like.dtype).expand(batch, -1) if y.shape[0] == 1 else y.to(like.dtype)

    def training_condition(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Each row's own category for one random column (a fraction p_condition of rows), else empty."""
        cond = torch.zeros(x.shape[0], self.cond_dim, device=x.device, dtype=x.dtype)
        if not self.cat_sizes:
            return cond
        r = torch.rand(x.shape[0], generator=generator, device=x.device)
        col = torch.randint(len(self.cat_sizes), (x.shape[0],), generator=generator, device=x.device)
        start, onehot = 0, x[:, self.width - self.cond_dim :]
        for j, size in enumerate(self.cat_sizes):
            keep = ((col == j) & (r < self.p_condition)).to(x.dtype).unsqueeze(1)
            cond[:, start : start + size] = onehot[:, start : start + size] * keep
            start += size
        return cond

    def train(self, mode: bool = True) -> "TabularModel":
        """As nn.Module.train, except that a frozen target head (no parameter needing a gradient, as
        while the VAE trains after the head's own fit) stays in eval mode: its dropout would only add
        noise to the loss's constant head term, and time (bench/results/tabular-adult-validation.md,
        sixth round)."""
        super().train(mode)
        if self.target_block is not None and not any(p.requires_grad for p in self.head.parameters()):
            self.head.eval()
        return self

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DiagonalGaussian:
        self.check_shape(x)
        mean, logvar = self.encoder(torch.cat([x, self._condition(y, x.shape[0], x)], -1)).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def decode(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> MixedTabular | TargetLast:
        """p(x|z, y); ``z`` may carry leading sample dimensions, e.g. (k, batch, latent_dim)."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, self.latent_dim)
        cond = self._condition(y, lead[-1] if lead else 1, flat)
        if len(lead) > 1:
            cond = cond.expand(*lead, -1).reshape(-1, self.cond_dim)
        params = self.decoder(torch.cat([flat, cond], -1)).reshape(*lead, -1)
        base = MixedTabular(params, self.n_cont, self.missing_of, self.cat_sizes, self.scale_floor)
        return base if self.target_block is None else TargetLast(base, self.target_logits, z.shape[:-1], *self.target_block)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                generator: Optional[torch.Generator] = None):
        """As :meth:`BaseVAE.forward`; in training without ``y``, each row conditions on its own
        category of one random column (:meth:`training_condition`)."""
        if y is None and self.training:
            y = self.training_condition(x, generator)
        return super().forward(x, y, generator)

    @torch.no_grad()
    def fit_latent_mixture(self, x: torch.Tensor, seed: int = 0, batch_size: int = 10_000, max_codes: int = 50_000) -> None:
        """Fit the sampling density to the aggregate posterior q(z) = mean_i q(z|x_i) of rows ``x``.

        With beta < 1 (or a finite decoder) q(z) does not fill N(0, I): prior draws that land where
        no training code lies decode to blurred rows ("prior holes"). Fitting a density to the
        codes after training and sampling from it is the ex-post density estimation of Ghosh et
        al. 2020 (sec. 4) and the second stage of Dai & Wipf 2019; here one draw z_i ~ q(z|x_i)
        per row and a full-covariance Gaussian mixture with ``latent_components`` components.
        EM (:func:`vaekit.core.mixture.fit_gaussian_mixture`, float64) runs on at most ``max_codes``
        codes, a seeded random subset, so that a large table's fit stays bounded; the category
        weights ``mix_cond`` use every row. The cap is set above Adult's size because a subset
        smaller than the table cost F1 and AUC there (bench/results/tabular-adult-validation.md,
        third round).
        """
        if self.latent_components == 0:
            return
        g = torch.Generator(device=x.device).manual_seed(seed)
        codes = torch.cat([self.encode(b).rsample(generator=g) for b in x.split(batch_size)]).double().cpu()
        subset = torch.as_tensor(np.random.default_rng(seed).permutation(len(codes))[:max_codes]) if len(codes) > max_codes else slice(None)
        gm = fit_gaussian_mixture(codes[subset], self.latent_components, reg_covar=1e-4, max_iter=200, seed=seed)
        like = self.mix_means
        self.mix_logits.copy_(gm.weights.clamp(min=1e-12).log().to(like.dtype))
        self.mix_means.copy_(gm.means.to(like.dtype))
        self.mix_chol.copy_(torch.linalg.cholesky(gm.covariances).to(like.dtype))
        onehot = x[:, self.width - self.cond_dim :].double().cpu()
        by_category = onehot.T @ gm.responsibilities(codes) / onehot.sum(0).clamp(min=1.0)[:, None]
        self.mix_cond.copy_(by_category.clamp(min=1e-12).log().to(like.dtype))

    def sample_latent(self, n: int, y: Optional[torch.Tensor] = None,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``n`` latent draws from the sampling density (the fitted mixture, else the prior).

        Under conditions ``y`` the mixture's weights become p(k | y) ∝ p(k) prod_j p(y_j | k), i.e.
        sum_j log p(k | y_j) - (m - 1) log p(k) for m given categories (Bayes' rule, with the given
        categories independent given the component).
        """
        if self.latent_components == 0:
            return super().sample_latent(n, y, generator)
        log_w = torch.log_softmax(self.mix_logits, 0)
        if y is None:
            k = torch.multinomial(log_w.exp(), n, replacement=True, generator=generator)
        else:
            y = y.to(log_w.dtype).expand(n, -1)
            logits = y @ self.mix_cond - (y.sum(-1, keepdim=True) - 1) * log_w
            k = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)[:, 0]
        eps = standard_normal((n, self.latent_dim, 1), generator, k.device, self.mix_means.dtype)
        return self.mix_means[k] + (self.mix_chol[k] @ eps)[..., 0]

    def sample(self, n: int, y: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
               mean: bool = False, argmax_categories: bool = False) -> torch.Tensor:
        """``n`` rows drawn from the model (a draw from p(x|z, y) by default, as a synthesizer wants);
        ``argmax_categories``: each block's most probable category instead of a draw."""
        return super().sample(n, y, generator, mean, argmax_categories=argmax_categories)

    def spec(self) -> dict[str, Any]:
        return {"layout": self.layout, "latent_dim": self.latent_dim, "hidden": list(self.hidden),
                "scale_floor": self.scale_floor, "p_condition": self.p_condition,
                "latent_components": self.latent_components,
                "target_block": None if self.target_block is None else list(self.target_block),
                "head_levels": [list(level) for level in self.head_levels]}

    @classmethod
    def from_spec(cls, spec: dict[str, Any], config: Optional[Config] = None) -> "TabularModel":
        """The untrained model of ``spec`` (from :meth:`spec`); the spec holds every setting, ``config`` is not used."""
        return cls(spec["layout"], spec["latent_dim"], tuple(spec["hidden"]), spec["scale_floor"], spec["p_condition"],
                   spec["latent_components"], spec["target_block"], spec["head_levels"])
