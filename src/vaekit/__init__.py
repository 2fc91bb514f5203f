"""vaekit: train, measure and use variational autoencoders.

The public API is flat (``vaekit.train``, ``vaekit.load``, ``vaekit.VAE``, ...), but nothing
heavy is imported until a name is used: ``import vaekit`` (and so ``vaekit --help``) does not
load torch, scikit-learn or matplotlib. Each name lives in one layer of the package; see
``docs/architecture.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it (imported on first use, PEP 562)
_EXPORTS = {
    "vaekit.errors": ["VaekitError", "ConfigError", "DataError", "ChecksumError", "RunError", "TrainingError"],
    "vaekit.config": ["Config", "ModelConfig", "DataConfig", "TrainingConfig", "apply_overrides", "load_config_file"],
    "vaekit.core.distributions": ["DiagonalGaussian", "Bernoulli", "Gaussian"],
    "vaekit.core.models": ["VAE", "VAEOutput"],
    "vaekit.core.objectives": ["elbo_loss", "iwae_loss", "iwae_bound", "log_importance_weights", "beta_at"],
    "vaekit.measure.evaluation": ["elbo_breakdown", "log_likelihood", "likelihood_report", "posterior_means"],
    "vaekit.measure.diagnostics": ["latent_diagnostics"],
    "vaekit.measure.latent": ["reconstruct", "interpolate", "slerp", "traverse"],
    "vaekit.training.loop": ["train"],
    "vaekit.runs.folder": ["load"],
    "vaekit.runs.jobs": ["train_run", "resume_run"],
    "vaekit.runs.evaluate": ["run_data", "evaluate_run"],
    "vaekit.runs.pictures": ["make_pictures"],
    "vaekit.runs.sweep": ["sweep"],
    "vaekit.apps.anomaly": ["VAEAnomalyDetector"],
    "vaekit.apps.embedding": ["VAETransformer"],
    "vaekit.apps.classifier": ["VAEClassifier"],
    "vaekit.apps.impute": ["impute", "denoise"],
    "vaekit.apps.tabular.synthesizer": ["TabularVAE"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["__version__", *_WHERE]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'vaekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
