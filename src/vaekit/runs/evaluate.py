"""A finished run, read back: its model and data, and its evaluation on a split (``vaekit eval``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from vaekit.data import load_dataset
from vaekit.errors import ConfigError
from vaekit.measure.diagnostics import latent_diagnostics
from vaekit.measure.evaluation import bits_per_dim, elbo_breakdown, likelihood_report
from vaekit.runs import folder
from vaekit.training.loop import eval_inputs


def run_data(run_dir: str | Path):
    """(model, config, data) of a run: the model on the CPU in eval mode and its dataset, split as in training."""
    doc = folder.read_run(run_dir)
    cfg = folder.run_config(doc)
    model = folder.load(run_dir)
    return model, cfg, load_dataset(cfg.data)


def evaluate_run(run_dir: str | Path, split: str = "test", nll_samples: int = 0, limit: Optional[int] = None,
                 compile: bool = False, progress: bool = False) -> dict[str, Any]:
    """ELBO, reconstruction, KL and latent diagnostics on a split, in nats per example.

    ``nll_samples=k > 0`` adds the importance-sampled ``nll`` (k samples per example), the
    ``elbo_gap`` (log p(x) - ELBO) and, for discrete data, ``nll_bits_per_dim``. ``limit``
    evaluates only the first ``limit`` examples of the split. ``compile`` and ``progress`` go
    to :func:`vaekit.likelihood_report`.
    """
    model, cfg, data = run_data(run_dir)
    if split not in ("train", "val", "test"):
        raise ConfigError(f"unknown split {split!r}; choose train, val or test")
    if nll_samples < 0:
        raise ConfigError(f"--nll-samples must be >= 0, not {nll_samples}")
    x = eval_inputs(data, split, cfg)
    y = getattr(data, f"{split}_labels") if model.conditional else None
    if limit is not None:
        x, y = x[:limit], None if y is None else y[:limit]
    result = elbo_breakdown(model, x, y, beta=cfg.training.beta, batch_size=cfg.training.eval_batch_size, seed=0)
    result = {"split": split, "examples": int(x.shape[0]), **result}
    discrete = cfg.model.likelihood == "bernoulli"
    if discrete:
        result["bits_per_dim"] = bits_per_dim(-result["elbo"], x[0].numel())
    if nll_samples > 0:
        report = likelihood_report(model, x, nll_samples, y, seed=0, compile=compile, progress=progress)
        result.update(report)
        if discrete:
            result["nll_bits_per_dim"] = bits_per_dim(report["nll"], x[0].numel())
    diagnostics = latent_diagnostics(model, x, y, batch_size=cfg.training.eval_batch_size)
    diagnostics.pop("kl")  # the same closed-form KL as result["kl"]
    result.update(diagnostics)
    return result
