"""One optimiser step, the same for every path: the objective's terms for a batch, backward,
gradient clipping, the optimiser's update.

What differs between the eager ELBO, the compiled ELBO, IWAE and data-parallel training is only
how the terms of a batch are computed; :func:`objective_for` picks that once per run, as a
function ``terms(x, y, generator, beta, step)``, and :func:`step` calls it. The random numbers
each path draws come from the run's generator in the same order, so the paths differ only by
float rounding.
"""

from __future__ import annotations

from typing import Callable

import torch

from vaekit.core.device import device_of
from vaekit.core.distributions import standard_normal
from vaekit.core.objectives import elbo_loss, iwae_loss, trim_at
from vaekit.core.semisupervised import UNLABELLED, loss_for
from vaekit.core.smoothing import automatic_eps, virtual_adversarial_loss
from vaekit.data.batching import bernoulli_draw, uniform16
from vaekit.errors import ConfigError
from vaekit.training import distributed
from vaekit.training.compiling import auto_compile, with_fallback
from vaekit.training.console import tell
from vaekit.training.runtime import SUBNORMAL_SWEEP, Runtime, clear_tiny_moments, clip_gradients, require_cpp_compiler

Terms = dict[str, torch.Tensor]
Objective = Callable[[torch.Tensor, object, torch.Generator, float, int], Terms]


def step(objective: Objective, x: torch.Tensor, y, generator: torch.Generator, beta: float, number: int,
         rt: Runtime) -> Terms:
    """Optimiser step ``number`` (counted from 0) on the batch (x, y); returns the objective's terms."""
    with rt.autocast():
        terms = objective(x, y, generator, beta, number)
    rt.update.clear()
    terms.get("scaled_loss", terms["loss"]).backward()
    if rt.grad_clip > 0:
        clip_gradients(rt.params, rt.grad_clip)
    rt.update.apply()
    if rt.sweep_moments and (number + 1) % SUBNORMAL_SWEEP == 0:
        clear_tiny_moments(rt.optimizer)
    return terms


def objective_for(model: torch.nn.Module, t, total_steps: int, batches, matmul_dtype=None) -> Objective:
    """The terms of a batch for the training settings ``t``: the ELBO (eager or compiled), IWAE,
    or either on this rank's slice of a global batch under torchrun (``batches`` gives the slice);
    for a semi-supervised model (M2), its bound with the labelled rows appended to every batch."""
    if getattr(model, "semi_supervised", False):  # Kingma et al. 2014
        return _semi_supervised_objective(model, t, batches)
    if distributed.rank_and_world()[1] > 1:
        net = distributed.wrap(model, t.objective, t.num_samples, t.free_bits)
        return lambda x, y, g, beta, number: net(x, y, distributed.GlobalSlice(*batches.span, g), beta)
    if t.objective == "iwae":  # Burda et al. 2015
        return lambda x, y, g, beta, number: iwae_loss(model, x, t.num_samples, y, g)
    if t.compile is True:
        return _compiled_objective(model, t.free_bits)
    eager = _eager_objective(model, t, total_steps)
    if t.compile == "auto":  # training/compiling.py: where compiling pays, with a fallback to eager
        first = torch.zeros(1, dtype=torch.long, device=batches.device)
        on, why = auto_compile(model, t, matmul_dtype, total_steps, batches._rows(first),
                               None if batches.y is None else batches.y[:1])
        if on:
            tell(t, f"training.compile=auto: compiling the training step ({why})")
            return with_fallback(_compiled_objective(model, t.free_bits), eager, lambda m: tell(t, m))
    return eager


def _eager_objective(model: torch.nn.Module, t, total_steps: int) -> Objective:
    if t.trim > 0:
        return lambda x, y, g, beta, number: elbo_loss(
            x, model(x, y, generator=g), beta, t.free_bits, trim_at(number, t.trim, total_steps, t.trim_start))
    return lambda x, y, g, beta, number: elbo_loss(x, model(x, y, generator=g), beta, t.free_bits)


def compiled_elbo(model: torch.nn.Module, free_bits: float):
    """``torch.compile`` of the ELBO terms as a function of (x, y, noise, beta), for training.compile.

    The reparameterisation noise comes in as an argument (drawn from the run's generator, as
    ``model.forward`` would draw it), so a compiled run consumes the random stream exactly as an
    eager one and differs from it only by float rounding; beta is a tensor so that a warm-up does
    not recompile every step. The backward pass is compiled with it (AOTAutograd). One process and
    objective=elbo only (see :func:`vaekit.training.setup.resolve_config`).
    """
    def terms(x, y, eps, beta):
        q = model.encode(x, y)
        z = q.reparameterize(eps)  # DiagonalGaussian.rsample with the given noise
        return elbo_loss(x, model.output_at(q, z, y), beta, free_bits)

    if device_of(model).type == "cpu":
        require_cpp_compiler()
    return torch.compile(terms)


def _compiled_objective(model: torch.nn.Module, free_bits: float) -> Objective:
    compiled = compiled_elbo(model, free_bits)
    param = next(model.parameters())
    betas: dict[float, torch.Tensor] = {}  # one tensor per beta value: a constant beta makes one

    def terms(x, y, g, beta, number):
        # the noise of model.forward's rsample, drawn here from the same generator in the same order
        eps = standard_normal((x.shape[0], model.latent_dim), g, param.device, param.dtype)
        if beta not in betas:
            betas.clear()
            betas[beta] = torch.tensor(beta, device=param.device)
        return compiled(x, y, eps, betas[beta])

    return terms


def _semi_supervised_objective(model: torch.nn.Module, t, batches) -> Objective:
    """M2's bound (:func:`vaekit.core.semisupervised.m2_loss`, or the ADGM's) on each batch, with up to
    ``batch_size`` labelled rows drawn from the run's generator appended to it: with 100 labels in
    54,000 rows a plain batch of 128 holds a labelled row one step in four, and the classifier,
    the one part of M2 that the labels train, would hardly learn. Kingma et al. (2014) likewise
    draw labelled and unlabelled minibatches separately. Binarised like the batch when it is."""
    if distributed.rank_and_world()[1] > 1 or t.objective != "elbo" or t.compile is True or t.trim > 0:
        raise ConfigError("model=m2, adgm and sdgm train with objective=elbo in one process, without compile or trim")
    y_all = batches.y
    rows = (y_all != UNLABELLED).nonzero().squeeze(1) if y_all is not None else torch.zeros(0, dtype=torch.long)
    x_l = batches._rows(rows.to(batches.device)) if len(rows) else None  # in memory or read from a memory map
    y_l = y_all[rows] if len(rows) else None
    size = min(len(rows), t.batch_size)
    loss = loss_for(model)  # M2's bound, or the ADGM's
    vat_eps = t.vat_eps
    if t.vat and vat_eps == "auto":
        vat_eps = automatic_eps(lambda idx: batches._rows(idx.to(batches.device)), batches.x.shape[0])
        tell(t, f"virtual adversarial smoothing: eps {vat_eps:.3g} (a quarter of the median distance to the "
                "10th nearest training row)")

    def terms(x, y, g, beta, number):
        if size:
            pick = torch.randperm(len(rows), generator=g, device=g.device)[:size].to(x_l.device)
            xb = x_l[pick]
            if batches.binarize:
                xb = bernoulli_draw(xb, uniform16(tuple(xb.shape), g, g.device).to(xb.device))
            x, y = torch.cat([x, xb.to(x.dtype)]), torch.cat([y, y_l[pick]])
        out = loss(model, x, y, t.alpha, beta, g, t.labelled_weight)
        if t.vat:  # q(y|x) kept smooth around the unlabelled rows (Miyato et al.; core/smoothing.py)
            out["vat"] = virtual_adversarial_loss(model.classify, x[y == UNLABELLED], vat_eps, generator=g)
            out["loss"] = out["loss"] + t.vat * out["vat"]
        return out

    return terms
