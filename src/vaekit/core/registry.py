"""Model kinds: the name a run folder's ``config.json`` gives its model class, and where that class lives.

A run folder records ``"class": NAME`` and ``"spec": model.spec()``; loading it looks NAME up
here, imports the class and calls ``from_spec(spec)``. Only the names listed in ``MODELS`` are
ever imported: run folders can come from strangers, and a "module:Class" read from a file could
name any importable code. Adding a model kind is its class (with ``spec()`` and
``from_spec()``) and one line here; the run format, the training loop and the CLI do not change.
The classes are imported only when a run of their kind is loaded, so this table costs nothing
and names application classes without importing them (the layers stay one-way).
"""

from __future__ import annotations

import importlib

from vaekit.errors import RunError

# kind name (written into config.json) -> "module:Class"
MODELS = {
    "VAE": "vaekit.core.models:VAE",
    "TabularModel": "vaekit.apps.tabular.model:TabularModel",
    "Autoencoder": "vaekit.core.models:Autoencoder",
    "M2": "vaekit.core.m2:M2",
    "ADGM": "vaekit.core.adgm:ADGM",  # M2 with an auxiliary variable (Maaløe et al. 2016)
    "SDGM": "vaekit.core.adgm:SDGM",  # the ADGM with a in the generative model (the same paper)
    "M1M2": "vaekit.core.m2:M1M2",  # M2 on the codes of an M1 VAE (apps/semisupervised_job.py writes its runs)
    "SequenceVAE": "vaekit.core.sequence:SequenceVAE",
}
# model.model in a Config -> the kind that `vaekit train` builds for it
CONFIG_MODELS = {"vae": "VAE", "cvae": "VAE", "ae": "Autoencoder", "m2": "M2", "adgm": "ADGM", "sdgm": "SDGM"}
DEFAULT_KIND = "VAE"  # the kind of a config.json without "class" (run folders written before this table)


def model_class(kind: object) -> type:
    """The class registered as ``kind``; RunError (nothing imported) for any other value."""
    if not isinstance(kind, str) or kind not in MODELS:
        known = ", ".join(sorted(MODELS))
        raise RunError(f"config.json names the model class {str(kind)[:80]!r}, which vaekit does not know "
                       f"(known: {known}); the folder was written by another program or a newer vaekit")
    module, _, name = MODELS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def config_model_class(model: str) -> type:
    """The class that trains ``model.model`` of a config (``"m2"`` -> M2, ``"cvae"`` -> VAE, ...)."""
    return model_class(CONFIG_MODELS[model])


def semi_supervised_models() -> list[str]:
    """The ``model.model`` names whose kind learns from a few labels (its class sets ``semi_supervised``),
    in the order of ``CONFIG_MODELS``; imports those kinds' classes (all in vaekit.core)."""
    return [name for name, kind in CONFIG_MODELS.items() if getattr(model_class(kind), "semi_supervised", False)]


def either_of(names: list[str]) -> str:
    """'a, b or c' for an error message."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def kind_of(model: object) -> str:
    """The registered name of ``model``'s class (torch.compile and DDP wrappers looked through)."""
    inner = getattr(model, "_orig_mod", model)
    inner = getattr(inner, "module", inner)
    where = f"{type(inner).__module__}:{type(inner).__qualname__}"
    for kind, path in MODELS.items():
        if path == where:
            return kind
    raise RunError(f"{type(inner).__name__} is not a registered model kind, so a run folder cannot record it; "
                   "add it to vaekit.core.registry.MODELS")
