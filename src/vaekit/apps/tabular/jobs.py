"""The table job, one call: read a CSV, fit a :class:`~vaekit.apps.tabular.synthesizer.TabularVAE`,
save it as a run folder and draw its pictures (``vaekit train --model tabular`` calls it).

Its settings come from a :class:`vaekit.config.Config`, like every other job's, so that the
command line parses and checks them once: :func:`table_config` is a Config holding the
TabularVAE's defaults, to which the command line applies the user's flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from vaekit.apps.tabular.synthesizer import TabularVAE, read_table
from vaekit.config import Config
from vaekit.errors import ConfigError
from vaekit.runs import folder, plots
from vaekit.training.runtime import pick_device

# The settings a table run reads from its Config; every other one must keep table_config()'s value.
USED = ("data.name", "model.hidden", "model.latent_dim", "training.epochs", "training.batch_size", "training.lr",
        "training.beta", "training.weight_decay", "training.seed", "training.device", "training.progress")
PICTURE_ROWS = 2_000  # real and synthetic rows drawn in columns.png


def table_config() -> Config:
    """A Config whose settings that a table run reads hold :class:`TabularVAE`'s defaults."""
    defaults = TabularVAE()
    cfg = Config()
    cfg.model.hidden, cfg.model.latent_dim = tuple(defaults.hidden), defaults.latent_dim
    t = cfg.training
    t.epochs, t.batch_size, t.lr, t.beta = defaults.epochs, defaults.batch_size, defaults.lr, defaults.beta
    t.weight_decay, t.seed, t.device = defaults.weight_decay, defaults.seed, defaults.device
    return cfg


def unused_settings(cfg: Config) -> list[str]:
    """The settings of ``cfg`` that a table run does not read but that differ from :func:`table_config`'s."""
    given, defaults = cfg.to_dict(), table_config().to_dict()
    return [f"{section}.{key}" for section, values in given.items() for key, value in values.items()
            if f"{section}.{key}" not in USED and value != defaults[section][key]]


def train_table_run(cfg: Config, out: str | Path, metadata: Any = None, target: Optional[str] = None,
                    derive_columns: bool = True) -> TabularVAE:
    """Fit a TabularVAE to the CSV file ``cfg.data.name`` with the settings of ``cfg`` (see ``USED``)
    and save it as the run folder ``out``, with curves.png (the losses per epoch) and columns.png
    (each column of up to 2,000 training rows against 2,000 synthetic rows); returns the model.
    ``metadata``, ``target`` and ``derive_columns`` are TabularVAE's arguments."""
    ignored = unused_settings(cfg)
    if ignored:
        raise ConfigError(f"a table run does not use {', '.join(ignored)}; it reads {', '.join(USED)}")
    out = Path(out)
    if (out / folder.CONFIG).exists():
        raise ConfigError(f"{out} already holds a run; choose another --out")
    table = read_table(cfg.data.name)
    m, t = cfg.model, cfg.training
    device = str(pick_device(t.device))
    model = TabularVAE(metadata=metadata, epochs=t.epochs, batch_size=t.batch_size, latent_dim=m.latent_dim,
                       hidden=tuple(m.hidden), lr=t.lr, beta=t.beta, weight_decay=t.weight_decay, target=target,
                       derive_columns=derive_columns, seed=t.seed, verbose=t.progress, device=device).fit(table)
    model.config_.data.name = str(cfg.data.name)  # the run folder records the file it was fitted to
    model.save(out)
    if model.history_:
        plots.save_curves(model.history_, out / "curves.png")
    real = table.sample(min(len(table), PICTURE_ROWS), random_state=0)
    plots.save_table_columns(real, model.sample(PICTURE_ROWS, seed=0), out / "columns.png")
    return model
