"""``vaekit eval`` of a sequence run: the ELBO split and the latent diagnostics on a split of its molecules."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from vaekit.apps.molecules.corpus import molecule_splits
from vaekit.apps.molecules.jobs import load_vocabulary
from vaekit.errors import ConfigError
from vaekit.measure.diagnostics import latent_diagnostics
from vaekit.measure.evaluation import elbo_breakdown, likelihood_report
from vaekit.runs import folder


def evaluate_sequence_run(run_dir: str | Path, split: str = "test", num_samples: int = 0,
                          limit: Optional[int] = None, progress: bool = False) -> dict[str, Any]:
    """As :func:`vaekit.runs.evaluate.evaluate_run`, for a sequence run: the run's molecules are
    read and tokenised with its vocabulary (MOSES: ``test`` is the MOSES test split), then the
    same measures (nats per molecule) are taken."""
    if split not in ("train", "val", "test"):
        raise ConfigError(f"unknown split {split!r}; choose train, val or test")
    if num_samples < 0:
        raise ConfigError(f"num_samples (--nll-samples) must be >= 0, not {num_samples}")
    doc = folder.read_run(run_dir)
    cfg, model = folder.run_config(doc), folder.load(run_dir)
    data, _ = molecule_splits(cfg, vocab=load_vocabulary(run_dir), progress=progress,
                              max_molecules=doc.get("app", {}).get("max_molecules"))
    x = getattr(data, split)[:limit]
    result = {"split": split, "examples": int(x.shape[0]),
              **elbo_breakdown(model, x, beta=cfg.training.beta, batch_size=cfg.training.eval_batch_size, seed=0)}
    if num_samples > 0:
        result.update(likelihood_report(model, x, num_samples, seed=0, progress=progress))
    diagnostics = latent_diagnostics(model, x, None, batch_size=cfg.training.eval_batch_size)
    diagnostics.pop("kl")  # the same closed-form KL as result["kl"]
    return {**result, **diagnostics}
