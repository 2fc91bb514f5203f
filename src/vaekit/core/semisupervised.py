"""The semi-supervised objective of M2 (Kingma, Rezende, Mohamed & Welling 2014, eqs. 6-9), a pure function.

For a labelled pair (x, y) the bound is the CVAE's ELBO with the class prior added (eq. 6):

    -L(x, y) = -log p(x|y, z) + KL(q(z|x, y) || p(z)) - log p(y)

and for an unlabelled x the class is a latent variable, summed over exactly (eq. 7):

    -U(x) = sum_y q(y|x) (-L(x, y)) - H(q(y|x))
          = E_q(y|x)[-log p(x|y, z) + KL_z] + KL(q(y|x) || p(y))

(the second line because -log p(y) - H(q) = KL(q(y|x) || p(y)) for a uniform p(y)). The bound
alone never trains q(y|x) on the labels, so the classification loss is added with weight alpha
(eq. 9). Normalisation as everywhere in vaekit: the bound is a mean over the rows of the batch,
the classification term a mean over its labelled rows, so

    loss = mean_rows(-L or -U) + alpha * mean_labelled(-log q(y|x)).

The labelled rows are few and appear in every batch (training/step.py appends them), so in a batch
of 128 unlabelled rows and the 100 labelled ones they hold 44% of the bound, where they are 0.2% of
the data. ``labelled_weight`` w weighs each labelled row's bound against an unlabelled row's, the
mean taken with those weights: sum(w (-L)) + sum(-U) over w n_l + n_u. w = 1 is the plain mean.

Kingma et al. sum J over the N training examples and add alpha E[-log q(y|x)] with alpha = 0.1 N;
divided by N that is alpha = 0.1 in the form above. ``y = -1`` marks an unlabelled row, as in
``sklearn.semi_supervised``.
"""

from __future__ import annotations

from typing import Optional

import torch

from vaekit.core.distributions import categorical_log_prob

UNLABELLED = -1  # sklearn.semi_supervised's mark of a row without a label
# q(y|x) below this counts as exactly 0 in an unlabelled row's sum over classes (see _semi_supervised_terms)
Q_FLOOR = 1e-20


def enumerate_classes(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows of the one batched pass: the labelled rows with their labels, then every unlabelled
    row once per class, class-major (all unlabelled rows with class 0, then with class 1, ...)."""
    labelled = y != UNLABELLED
    x_u = x[~labelled]
    classes = torch.arange(num_classes, device=y.device)
    x_all = torch.cat([x[labelled], x_u.repeat(num_classes, *([1] * (x.dim() - 1)))])
    y_all = torch.cat([y[labelled], classes.repeat_interleave(x_u.shape[0])])
    return x_all, y_all


def m2_loss(model, x: torch.Tensor, y: torch.Tensor, alpha: float, beta: float = 1.0,
            generator: Optional[torch.Generator] = None, labelled_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """The M2 terms of a batch (x, y), ``y == -1`` on the unlabelled rows; 0-dim tensors.

    ``loss`` (minimised: the bound with beta on the z-KL, plus alpha times the classification
    term), ``recon`` (E -log p(x|y, z)), ``kl`` (KL of z, plus KL(q(y|x) || p(y)) on unlabelled
    rows and -log p(y) on labelled ones), ``elbo`` = -(recon + kl) (a bound on log p(x), or on
    log p(x, y) where y is given), ``classification`` (mean -log q(y|x) over the labelled rows, 0
    without any) and ``error`` (the classifier's error on them). The encoder and decoder run once,
    on the rows of :func:`enumerate_classes`, with one reparameterised draw per row from
    ``generator``.
    """
    y = y.to(x.device).long().reshape(-1)
    logits = model.classify(x)  # (batch, K)
    x_all, y_all = enumerate_classes(x, y, model.num_classes)
    out = model(x_all, y_all, generator=generator)
    recon_all = -out.likelihood.log_prob(x_all)  # (n_l + K n_u,)
    return _semi_supervised_terms(model, y, logits, recon_all, out.posterior.kl(), None, alpha, beta,
                                  labelled_weight)


def adgm_loss(model, x: torch.Tensor, y: torch.Tensor, alpha: float, beta: float = 1.0,
              generator: Optional[torch.Generator] = None, labelled_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """The ADGM's terms (Maaløe et al. 2016, eqs. 8-11) of a batch, as :func:`m2_loss` gives M2's.

    One draw a ~ q(a|x) per row; the classifier is q(y|a, x), the encoder q(z|a, x, y), and each
    row's bound for a class y gains the auxiliary terms log p(a|x, y, z) - log q(a|x), counted in
    ``kl`` (beta weighs the KL of z only):

        -L(x, y) = -log p(x|y, z) + KL(q(z|a, x, y) || p(z)) - log p(y) - log p(a|x, y, z) + log q(a|x)

    For the SDGM (:class:`vaekit.core.adgm.SDGM`) p(x|a, y, z) and p(a|y, z) take the places of
    p(x|y, z) and p(a|x, y, z).
    """
    y = y.to(x.device).long().reshape(-1)
    q_a = model.aux_posterior(x)
    a = q_a.rsample(generator=generator)
    logits = model.classify(x, a)
    k = model.num_classes
    x_all, y_all = enumerate_classes(x, y, k)
    a_all, _ = enumerate_classes(a, y, k)  # each row's draw of a, repeated as its x is
    log_q_a, _ = enumerate_classes(q_a.log_prob(a), y, k)
    q_z = model.encode(x_all, y_all, a_all)
    z = q_z.rsample(generator=generator)
    recon_all = -model.likelihood_given(z, y_all, a_all).log_prob(x_all)  # p(x|y, z), or p(x|a, y, z) (SDGM)
    aux_all = log_q_a - model.aux_likelihood(x_all, y_all, z).log_prob(a_all)
    return _semi_supervised_terms(model, y, logits, recon_all, q_z.kl(), aux_all, alpha, beta, labelled_weight)


def _semi_supervised_terms(model, y: torch.Tensor, logits: torch.Tensor, recon_all: torch.Tensor,
                           kl_z_all: torch.Tensor, extra_all: Optional[torch.Tensor], alpha: float,
                           beta: float, labelled_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """The bound's terms from the per-row values of the enumerated rows (:func:`enumerate_classes`):
    ``recon_all`` (-log p(x|y, z)), ``kl_z_all`` (the KL of z) and ``extra_all`` (further terms of
    -L(x, y) counted in the KL and not weighed by beta, e.g. the ADGM's auxiliary ones; None: none).
    Labelled rows take their class's values (eq. 6); an unlabelled row their expectation over
    q(y|x) (the softmax of ``logits``) plus KL(q(y|x) || p(y)) (eq. 7). ``loss`` weighs the labelled
    rows' bounds by ``labelled_weight`` (the module's docstring); the reported terms are plain means."""
    labelled = y != UNLABELLED
    k, n_l, n_u = model.num_classes, int(labelled.sum()), int((~labelled).sum())
    log_py = model.log_prior_y()
    kl_all = kl_z_all if extra_all is None else kl_z_all + extra_all
    # labelled rows (eq. 6)
    recon_l, kl_l = recon_all[:n_l], kl_all[:n_l] - log_py
    # unlabelled rows (eq. 7): the expectation over q(y|x) of the per-class terms, plus KL of y.
    # A class with q(y|x) < Q_FLOOR weighs its row's terms (tens to hundreds of nats) by less than
    # 1e-17 nats and is counted as exactly 0, so no gradient flows to that row's pass for the class.
    # Kept, those gradients (the terms' times q) fall into the subnormal floats as the classifier
    # grows confident, which x86 CPUs compute many times slower: an ADGM on MNIST codes went from 8
    # to 31 s an epoch over 40 epochs, and stayed at 7-9 s with subnormals flushed to zero.
    q_u = torch.softmax(logits[~labelled], dim=-1)  # (n_u, K)
    q_u = torch.where(q_u >= Q_FLOOR, q_u, torch.zeros_like(q_u))
    per_class = lambda t: t[n_l:].reshape(k, n_u).T  # (n_u, K), column c: class c
    recon_u = (q_u * per_class(recon_all)).sum(-1)
    kl_u = (q_u * per_class(kl_all)).sum(-1)
    kl_z_u = (q_u * per_class(kl_z_all)).sum(-1)
    kl_y_u = categorical_log_prob(logits[~labelled], q_u) - log_py  # sum q log q - log p(y)
    kl_z = torch.cat([kl_z_all[:n_l], kl_z_u])
    recon, kl = torch.cat([recon_l, recon_u]), torch.cat([kl_l, kl_u + kl_y_u])
    bound = recon + kl + (beta - 1.0) * kl_z  # beta weighs the KL of z only
    terms = {"recon": recon.mean(), "kl": kl.mean(), "elbo": -(recon + kl).mean()}
    if n_l:
        classification = -categorical_log_prob(logits[labelled], _onehot(y[labelled], k, logits.dtype)).mean()
        error = (logits[labelled].argmax(-1) != y[labelled]).float().mean()
    else:
        classification = error = logits.new_zeros(())
    if labelled_weight == 1.0 or not n_l:
        bound_mean = bound.mean()
    else:
        bound_mean = (labelled_weight * bound[:n_l].sum() + bound[n_l:].sum()) / (labelled_weight * n_l + n_u)
    terms.update(loss=bound_mean + alpha * classification, classification=classification, error=error)
    return terms


def loss_for(model):
    """The semi-supervised objective of ``model``: the ADGM's when it has an auxiliary variable, else M2's."""
    return adgm_loss if hasattr(model, "aux_posterior") else m2_loss


def _onehot(y: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.nn.functional.one_hot(y, num_classes).to(dtype)
