"""A finished run, read back: its model and data, and its evaluation on a split (``vaekit eval``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch

from vaekit.core.m2 import predict_classes
from vaekit.core.semisupervised import UNLABELLED, loss_for
from vaekit.data import load_array, load_dataset
from vaekit.errors import ConfigError, DataError
from vaekit.measure.diagnostics import latent_diagnostics
from vaekit.measure.evaluation import bits_per_dim, class_marginal_report, elbo_breakdown, likelihood_report
from vaekit.runs import folder
from vaekit.training.loop import eval_inputs


def run_data(run_dir: str | Path):
    """(model, config, data) of a run: the model on the CPU in eval mode and its dataset, split as in training."""
    doc = folder.read_run(run_dir)
    cfg = folder.run_config(doc)
    model = folder.load(run_dir)
    return model, cfg, load_dataset(cfg.data)


def run_inputs(model, cfg, data, source: Optional[str | Path] = None):
    """(x, y) a run's model works on: a split of its data (``train``, ``val``, ``test``; default
    test) or a .csv/.npy/image file preprocessed as in training. ``y`` (the labels) is None
    unless the model is conditional."""
    source = source or "test"
    if str(source) in ("train", "val", "test"):
        x = eval_inputs(data, str(source), cfg)
        y = getattr(data, f"{source}_labels")
        return x, (y if model.conditional else None)
    x, y = load_array(source, data.preprocessing, cfg.data.label_column)
    model.check_shape(x)
    if model.conditional and y is None:
        raise DataError(f"{source}: a conditional run needs labels with the inputs")
    return x, (y if model.conditional else None)


def evaluate_run(run_dir: str | Path, split: str = "test", num_samples: int = 0, limit: Optional[int] = None,
                 compile: bool = False, progress: bool = False) -> dict[str, Any]:
    """ELBO, reconstruction, KL and latent diagnostics on a split, in nats per example.

    ``elbo``, ``recon`` and ``kl`` are estimated with one posterior draw per example (so
    elbo = -(recon + kl)). ``num_samples=k > 0`` adds the importance-sampled ``nll`` (k samples
    per example), ``elbo_k`` (the ELBO averaged over the same k draws: a finer estimate of the
    same bound), ``elbo_gap`` = -nll - elbo_k (log p(x) - ELBO >= 0, the KL from q(z|x) to the
    true posterior) and, for discrete data, ``nll_bits_per_dim``. ``limit``
    evaluates only the first ``limit`` examples of the split. ``compile`` and ``progress`` go
    to :func:`vaekit.likelihood_report`. A conditional run is scored given the split's labels
    (``given: "y"``: every figure is of p(x|y)); a semi-supervised one adds ``log_px_marginal``, log p(x)
    with the class summed over (:func:`~vaekit.measure.evaluation.class_marginal_report`).
    """
    model, cfg, data = run_data(run_dir)
    if split not in ("train", "val", "test"):
        raise ConfigError(f"unknown split {split!r}; choose train, val or test")
    if num_samples < 0:
        raise ConfigError(f"num_samples (--nll-samples) must be >= 0, not {num_samples}")
    x = eval_inputs(data, split, cfg)
    y = getattr(data, f"{split}_labels") if model.conditional else None
    if limit is not None:
        x, y = x[:limit], None if y is None else y[:limit]
    result = elbo_breakdown(model, x, y, beta=cfg.training.beta, batch_size=cfg.training.eval_batch_size, seed=0)
    # a conditional run is scored given the split's labels: its ELBO and log-likelihood are of p(x|y)
    result = {"split": split, "examples": int(x.shape[0]), **({"given": "y"} if y is not None else {}), **result}
    discrete = cfg.model.likelihood == "bernoulli"
    if discrete:
        result["bits_per_dim"] = bits_per_dim(-result["elbo"], x[0].numel())
    if num_samples > 0:
        # a semi-supervised model also gets log p(x), the class summed over
        score = class_marginal_report if getattr(model, "semi_supervised", False) else likelihood_report
        report = score(model, x, num_samples, y, seed=0, compile=compile, progress=progress)
        result.update(report)
        if discrete:
            result["nll_bits_per_dim"] = bits_per_dim(report["nll"], x[0].numel())
    diagnostics = latent_diagnostics(model, x, y, batch_size=cfg.training.eval_batch_size)
    diagnostics.pop("kl")  # the same closed-form KL as result["kl"]
    result.update(diagnostics)
    if getattr(model, "semi_supervised", False):
        result.update(classifier_report(model, x, getattr(data, f"{split}_labels")[: x.shape[0]], cfg))
    return result


@torch.no_grad()
def classifier_report(model, x: torch.Tensor, labels: torch.Tensor, cfg) -> dict[str, Any]:
    """A semi-supervised (M2) run on a split: ``error``, the classifier's error rate against the
    split's labels, and ``elbo_unlabelled``, the bound on log p(x) with the labels hidden (the class
    summed over, Kingma et al. 2014 eq. 7), nats per example; the ELBO above is given the labels."""
    wrong = (predict_classes(model, x, cfg.training.eval_batch_size) != labels.cpu()).sum().item()
    g = torch.Generator().manual_seed(0)
    batch = max(1, cfg.training.eval_batch_size // model.num_classes)  # each row runs once per class
    total = sum(loss_for(model)(model, xb, torch.full((xb.shape[0],), UNLABELLED), alpha=0.0, generator=g)["elbo"].item()
                * xb.shape[0] for xb in x.split(batch))
    return {"error": wrong / max(x.shape[0], 1), "elbo_unlabelled": total / max(x.shape[0], 1)}
