"""The M1+M2 job (Kingma et al. 2014, section 3.1.3): ``vaekit train --model m2 --labels 100 --m1 RUN``
(or ``--model adgm`` / ``sdgm``: the auxiliary-variable models of Maaløe et al. 2016 in M2's place).

M1 is a finished run of an unsupervised VAE (``vaekit train --model vae``). This job reads the
data as M1 did (its data section, with this run's ``data.labels`` and ``data.label_seed``),
encodes every split to M1's posterior means, and trains M2 (or the ADGM, SDGM) on those codes with
the standard loop and :class:`~vaekit.runs.jobs.RunWriter`, as :class:`vaekit.VAEClassifier` (``m1=True``) does with
an array. Like the tabular and sequence jobs it prepares its own data and model and reuses the
rest. The folder is a standard run folder whose model is :class:`vaekit.core.m2.M1M2`, the two
networks as one model over x: config.json's spec holds M1's spec and settings and
model.safetensors both networks' weights (the folder stands alone, without M1's); its config is
M2's settings with M1's data section and ``model.m1`` naming M1's folder; the ``"app"`` section
records where M1 came from. So ``vaekit eval`` (test error), ``vaekit sample --label``, the
pictures and :func:`vaekit.load` work on it as on any M2 run, and ``--resume`` continues it here.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, Optional

import torch

from vaekit.config import Config
from vaekit.core.m2 import CODES_LIKELIHOOD, M1M2
from vaekit.core.models import VAE
from vaekit.core.registry import config_model_class, either_of, semi_supervised_models
from vaekit.data.splits import DataSplits
from vaekit.errors import ConfigError
from vaekit.measure.evaluation import posterior_means
from vaekit.runs import folder
from vaekit.runs.jobs import RunWriter, data_info, default_run_dir, finish_run, load_job_data
from vaekit.training import distributed
from vaekit.training.loop import eval_inputs, train
from vaekit.training.runtime import autocast_dtype, pick_device
from vaekit.training.setup import resolve_config

# data settings the M1+M2 run chooses itself; every other one is M1's
OWN_DATA = ("labels", "label_seed", "data_dir", "download")


def is_m1m2_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a run folder of this job (config.json names the class M1M2)."""
    path = Path(run_dir) / folder.CONFIG
    return path.is_file() and folder.read_run(run_dir).get("class") == "M1M2"


def m1m2_config(cfg: Config, m1_cfg: Config) -> Config:
    """The run's Config: ``cfg`` (M2's settings, model=m2, adgm or sdgm) with M1's data section, except the
    settings in ``OWN_DATA``; ConfigError for data settings that contradict M1's, and for what M2
    cannot do on codes (conv networks, a Bernoulli likelihood)."""
    cfg = copy.deepcopy(cfg)
    kinds = semi_supervised_models()
    if cfg.model.model not in kinds:
        raise ConfigError(f"--m1 RUN trains M2 on the codes of RUN: use it with --model {either_of(kinds)}")
    if cfg.model.arch != "mlp":
        raise ConfigError("M2 on M1's codes is an MLP (the codes are vectors): drop --arch conv (M1 may be conv)")
    if cfg.model.likelihood not in ("auto", CODES_LIKELIHOOD, "gaussian"):
        raise ConfigError(f"M1's codes are real vectors: likelihood {cfg.model.likelihood} does not fit them; "
                          f"use {CODES_LIKELIHOOD}")
    given, defaults, m1_data = dataclasses.asdict(cfg.data), dataclasses.asdict(Config().data), m1_cfg.data
    clash = [f"data.{k}" for k, v in given.items()
             if k not in OWN_DATA and v != defaults[k] and v != getattr(m1_data, k)]
    if clash:
        raise ConfigError(f"--m1 RUN fixes the data as RUN read it; {', '.join(clash)} differ from RUN's")
    own = {k: given[k] for k in OWN_DATA}
    cfg.data = dataclasses.replace(m1_data, **{**own, "data_dir": own["data_dir"] or m1_data.data_dir})
    if cfg.model.likelihood == "auto":
        cfg.model.likelihood = CODES_LIKELIHOOD
    return cfg


def code_splits(m1: VAE, data: DataSplits, cfg: Config) -> DataSplits:
    """M2's data: each split of ``data`` (as M1 evaluates it: one fixed binarisation where M1
    binarised dynamically) encoded to M1's posterior means, a table with the same labels."""
    codes = {s: posterior_means(m1, eval_inputs(data, s, cfg), batch_size=cfg.training.eval_batch_size)
             for s in ("train", "val", "test")}
    return dataclasses.replace(data, name=f"{data.name} (M1's codes)", kind="table", shape=(m1.latent_dim,),
                               binary=False, preprocessing={}, **codes)


def training_config(cfg: Config) -> Config:
    """The Config the loop trains M2 under: the run's, with the codes neither binarised nor read as images."""
    out = copy.deepcopy(cfg)
    out.data.binarize = "none"
    return out


def train_m1m2_run(cfg: Config, out: Optional[str | Path] = None) -> Path:
    """Train M2 on the codes of the VAE run ``cfg.model.m1`` (M1+M2) and write the run folder ``out``."""
    if cfg.model.m1 is None:
        raise ConfigError("an M1+M2 run needs model.m1 (--m1 RUN): the run folder of an unsupervised VAE")
    if distributed.launched():  # M2 trains in one process (training/step.py); every rank would write the folder
        raise ConfigError("an M1+M2 run trains in one process: start it without torchrun")
    run_dir = Path(out) if out is not None else default_run_dir()
    if (run_dir / folder.CONFIG).exists():
        raise ConfigError(f"{run_dir} already holds a run; choose another --out")
    m1_doc = folder.read_run(cfg.model.m1)
    if m1_doc.get("class") != "VAE":
        raise ConfigError(f"--m1 {cfg.model.m1}: M1 must be a run of --model vae, not of class {m1_doc.get('class')}")
    cfg = m1m2_config(cfg, folder.run_config(m1_doc))
    device = pick_device(cfg.training.device)
    m1 = folder.load(cfg.model.m1, device)
    data = load_job_data(cfg)
    codes = code_splits(m1, data, cfg)
    trained = resolve_config(training_config(cfg), codes)
    cfg.model, cfg.training = trained.model, trained.training  # the resolved settings are recorded
    torch.manual_seed(cfg.training.seed)  # M2's weight initialisation
    m2 = config_model_class(cfg.model.model)(cfg.model, codes.shape, codes.num_classes)  # M2, ADGM, SDGM
    model = M1M2(m1, m2).to(device)
    app = {"m1": {"run": str(Path(cfg.model.m1).resolve()), "data": m1_doc.get("data", {}).get("name")}}
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    writer = RunWriter(run_dir, model)
    try:
        folder.save_config(run_dir, cfg, model, data_info(data), device,
                           autocast_dtype(cfg.training.precision, device, codes.kind), app=app)
        history = train(model.m2, codes, trained, on_epoch=writer)
    except BaseException:
        writer.close()
        if not (run_dir / folder.RESUME).exists():  # nothing worth keeping before the first epoch
            folder.discard_unstarted(run_dir, remove_folder=created)
        raise
    writer.close()
    finish_run(run_dir, model, data, cfg, history)
    return run_dir


def resume_m1m2_run(run_dir: str | Path, epochs: Optional[int] = None) -> Path:
    """Continue an M1+M2 run from its last checkpoint (to ``epochs`` in all, if given): M1's weights
    from the folder, M2, its optimiser and the random state from the resume file."""
    run_dir = Path(run_dir)
    folder.remove_temporary_files(run_dir)
    doc = folder.read_run(run_dir)
    cfg = folder.run_config(doc)
    if epochs is not None:
        cfg.training.epochs = epochs
        cfg.validate()
    device = pick_device(cfg.training.device)
    model = folder.load(run_dir, device)  # M1 as trained; M2's current weights come from the state
    state: dict[str, Any] = folder.load_resume(run_dir)
    folder.check_resume_state(state, model.m2, run_dir)
    data = load_job_data(cfg)
    history = folder.read_metrics(run_dir)[: int(state["epoch"])]
    folder.write_metrics(run_dir, history)  # lines past the checkpoint would be written again
    folder.save_config(run_dir, cfg, model, doc.get("data", data_info(data)), device,
                       autocast_dtype(cfg.training.precision, device, "table"), app=doc.get("app", {}))
    writer = RunWriter(run_dir, model, saved_epoch=len(history))
    try:
        history = train(model.m2, code_splits(model.m1, data, cfg), training_config(cfg), on_epoch=writer,
                        resume=state, history=history)
    finally:
        writer.close()
    finish_run(run_dir, model, data, cfg, history)
    return run_dir
