"""Settings: one dataclass per concern, with every default visible here.

A run is described completely by a :class:`Config` (``model``, ``data``, ``training``). It is
written to ``config.json`` in the run folder and is enough to rebuild the model. Files
(``.json``/``.yaml``) and ``key=value`` overrides are checked against the dataclass types:
unknown keys, wrong types and impossible values raise :class:`~vaekit.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

from vaekit.errors import ConfigError
from vaekit.values import coerce


@dataclass
class ModelConfig:
    """The networks, the latent space and the likelihood p(x|z)."""

    # cvae: encoder and decoder also see the label; ae: the same networks without KL term or sampling
    # (sequence: the GRU VAE over tokens of apps/molecules/jobs.py)
    # m2: semi-supervised, a classifier q(y|x) inside a CVAE, y a latent where unknown (Kingma et al. 2014)
    # adgm: M2 with an auxiliary variable a (Maaloe et al. 2016): q(a|x), q(y|a, x), q(z|a, x, y), p(a|x, y, z)
    # sdgm: the skip deep generative model of the same paper: p(a|y, z) p(x|a, y, z) instead
    model: Literal["vae", "cvae", "ae", "sequence", "m2", "adgm", "sdgm"] = "vae"
    arch: Literal["mlp", "conv"] = "mlp"
    hidden: tuple[int, ...] = (400,)  # MLP widths, encoder order; the decoder mirrors them
    channels: tuple[int, ...] = (32, 64)  # conv: channels of the stride-2 layers
    latent_dim: int = 20
    # auto: bernoulli for binary or binarised data, gaussian-learned otherwise
    likelihood: Literal["auto", "bernoulli", "gaussian", "gaussian-learned"] = "auto"
    gaussian_scale: float = 0.1  # the fixed standard deviation of likelihood=gaussian
    # Floor on a learned Gaussian scale. As sigma -> 0 the density at the reconstruction grows
    # without bound, so the maximum-likelihood problem is ill-posed; the floor keeps it finite.
    scale_floor: float = 0.01
    # model=m2: M1+M2 (Kingma et al. 2014): the run folder of an unsupervised VAE (M1) on whose posterior
    # means M2 learns, with M1's data (apps/semisupervised_job.py); none: M2 on the data itself
    m1: Optional[str] = None
    # p(z): standard N(0, I), or vamp, the VampPrior (Tomczak & Welling 2018): a mixture of the encoder's
    # posteriors at pseudo_inputs learned pseudo-inputs (model=vae; the ELBO's KL becomes a one-draw estimate)
    aux_dim: Optional[int] = None  # model=adgm or sdgm: dimensions of the auxiliary variable a (None: latent_dim)
    prior: Literal["standard", "vamp"] = "standard"
    pseudo_inputs: int = 500


@dataclass
class DataConfig:
    """Which data, where it lives and how it is split."""

    name: str = "digits"  # digits | mnist | fashion-mnist | binarized-mnist | path to .csv/.npy/folder
    data_dir: Optional[str] = None  # default: $VAEKIT_DATA_DIR, else the user cache folder
    val_fraction: float = 0.1  # taken from the training split, by a seeded permutation
    test_fraction: float = 0.2  # only for data without an official test split
    split_seed: int = 0
    # auto: dynamic for mnist (the convention of Burda et al. 2015), none otherwise
    binarize: Literal["auto", "none", "dynamic", "threshold"] = "auto"
    label_column: Optional[str] = None  # tables: the column holding class labels (not a feature)
    standardize: bool = True  # tables: scale features to zero mean, unit variance (train stats)
    download: bool = True  # fetch missing files from the official mirrors
    # model=m2: keep the labels of this many training rows drawn per class with label_seed (others: -1)
    labels: Optional[int] = None
    label_seed: int = 0


@dataclass
class TrainingConfig:
    """The optimisation: objective, schedule and bookkeeping."""

    # None: enough passes to see about 500k examples, between 10 and 1000 (digits 398, MNIST 10)
    epochs: Optional[int] = None
    batch_size: int = 128
    lr: float = 1e-3
    # constant, or cosine: the rate falls along a half cosine from lr to 0 over the run's steps
    # (a resume to a new total of epochs stretches the curve to the new total)
    lr_schedule: Literal["constant", "cosine"] = "constant"
    weight_decay: float = 0.0
    grad_clip: float = 100.0  # max global gradient norm; 0 turns clipping off
    beta: float = 1.0  # weight of the KL term (beta-VAE, Higgins et al. 2017)
    warmup_steps: int = 0  # KL weight grows linearly from 0 to beta over this many steps
    # Cyclical annealing (Fu et al. 2019): the run's steps fall into this many cycles, in each the KL
    # weight rises linearly from 0 to beta over the first half and then holds (0: off; >0 replaces warmup_steps)
    kl_cycles: int = 0
    free_bits: float = 0.0  # nats per latent dimension below which KL is not penalised
    objective: Literal["elbo", "iwae"] = "elbo"
    # Trimmed-loss training (objective=elbo, one process, no compile): after the first trim_start
    # fraction of the steps, each batch's trim fraction of examples with the worst negative ELBO
    # is left out of the loss (robust to contaminated training data; see objectives.elbo_loss)
    trim: float = 0.0
    trim_start: float = 0.25
    num_samples: int = 1  # importance samples K for objective=iwae
    alpha: float = 10.0  # model=m2: weight of -log q(y|x) on labelled rows (core/semisupervised.py)
    labelled_weight: float = 1.0  # model=m2: weight of a labelled row's bound against an unlabelled row's
    # model=m2, adgm, sdgm: weight of the virtual adversarial loss of q(y|x) on the unlabelled rows (0: off)
    # and the length of its change of x, in the units of the model's input; auto: a quarter of the median
    # distance from a training row to its 10th nearest neighbour (core/smoothing.py)
    vat: float = 0.0
    vat_eps: Union[float, Literal["auto"]] = "auto"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Stop after this many epochs without a better validation loss (0: off), keeping the best epoch's
    # weights (as scikit-learn's MLP and Keras' EarlyStopping do). 20: the default digits run went at
    # most 6 epochs without a new best while still improving, so 20 stops on a plateau, not on noise
    early_stopping: int = 20
    eval_batch_size: int = 1000
    progress: bool = True  # a progress bar, drawn only when stderr is a terminal
    verbose: bool = True  # a line per epoch on stdout (about 20 for a long run); false: nothing at all
    # torch.compile the training step; auto: where it pays (a GPU, or a CPU in bf16) on a run long
    # enough to repay the compilation, else eager (training/compiling.py)
    compile: Union[bool, Literal["auto"]] = "auto"
    # bf16: the networks' matmuls and convolutions run under bf16 autocast (the distributions,
    # losses and optimiser stay float32); auto: bf16 for image data on a CUDA GPU that has it or a
    # CPU that multiplies bf16 natively (AVX-512 BF16, AMX), else fp32; on a CPU with AMX a network
    # without convolutions is fp32 with bf16 matmuls instead (see training.runtime.dense_on_amx)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # torch.set_float32_matmul_precision for the run: highest = float32; high allows TF32 on a GPU;
    # medium bf16 inputs with float32 accumulation (tensor cores, or oneDNN with AMX / AVX-512 bf16);
    # left at highest, precision=auto may still pick medium (training.runtime.matmul_precision_for)
    matmul_precision: Literal["highest", "high", "medium"] = "highest"


# Keys that config files written by earlier versions may hold, and their names now.
RENAMED = {"training.iw_samples": "training.num_samples"}


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            name: {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(section).items()}
            for name, section in self.sections().items()
        }

    def sections(self) -> dict[str, Any]:
        return {"model": self.model, "data": self.data, "training": self.training}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        if not isinstance(d, dict):
            raise ConfigError("a config must be a mapping with sections model, data, training")
        cfg = cls()
        for section, values in d.items():
            if section not in cfg.sections():
                raise ConfigError(f"unknown config section {section!r}; expected one of model, data, training")
            if not isinstance(values, dict):
                raise ConfigError(f"config section {section!r} must be a mapping")
            for key, value in values.items():
                set_value(cfg, RENAMED.get(f"{section}.{key}", f"{section}.{key}"), value)
        cfg.validate()
        return cfg

    def validate(self) -> "Config":
        """Raise ConfigError for values no run could use."""
        m, d, t = self.model, self.data, self.training
        _require(m.latent_dim >= 1, "model.latent_dim must be at least 1")
        _require(len(m.hidden) >= 1 and all(h >= 1 for h in m.hidden), "model.hidden must be positive widths, e.g. 400 or 200,200")
        _require(len(m.channels) >= 1 and all(c >= 1 for c in m.channels), "model.channels must be positive, e.g. 32,64")
        _require(m.gaussian_scale > 0, "model.gaussian_scale must be > 0")
        _require(m.aux_dim is None or m.aux_dim >= 1, "model.aux_dim must be at least 1 (or none: latent_dim)")
        _require(m.pseudo_inputs >= 1, "model.pseudo_inputs must be at least 1")
        _require(m.prior == "standard" or m.model == "vae", "model.prior=vamp is for model=vae (unconditional)")
        _require(m.prior == "standard" or t.free_bits == 0,
                 "training.free_bits needs the KL per dimension, which a VampPrior does not have; use prior=standard")
        _require(m.scale_floor > 0, "model.scale_floor must be > 0 (a zero floor makes the likelihood unbounded)")
        _require(0 <= d.val_fraction < 1, "data.val_fraction must be in [0, 1)")
        _require(0 <= d.test_fraction < 1, "data.test_fraction must be in [0, 1)")
        _require(d.val_fraction + d.test_fraction < 1, "data.val_fraction + data.test_fraction must be < 1")
        _require(t.epochs is None or t.epochs >= 0, "training.epochs must be >= 0")
        _require(t.batch_size >= 1, "training.batch_size must be >= 1")
        _require(t.lr > 0, "training.lr must be > 0")
        _require(t.weight_decay >= 0, "training.weight_decay must be >= 0")
        _require(t.grad_clip >= 0, "training.grad_clip must be >= 0 (0 turns clipping off)")
        _require(t.beta >= 0, "training.beta must be >= 0")
        _require(t.warmup_steps >= 0, "training.warmup_steps must be >= 0")
        _require(t.kl_cycles >= 0, "training.kl_cycles must be >= 0 (0 turns cyclical annealing off)")
        _require(t.free_bits >= 0, "training.free_bits must be >= 0")
        _require(0 <= t.trim < 1, "training.trim must be in [0, 1) (0 turns trimming off)")
        _require(0 <= t.trim_start <= 1, "training.trim_start must be in [0, 1] (a fraction of the steps)")
        _require(t.num_samples >= 1, "training.num_samples must be >= 1")
        _require(t.alpha >= 0, "training.alpha must be >= 0")
        _require(t.labelled_weight > 0, "training.labelled_weight must be > 0")
        _require(t.vat >= 0, "training.vat must be >= 0 (0 turns virtual adversarial smoothing off)")
        _require(t.vat_eps == "auto" or t.vat_eps > 0, "training.vat_eps must be > 0 or auto")
        _require(d.labels is None or d.labels >= 1, "data.labels must be at least 1 (or none: keep every label)")
        _require(t.early_stopping >= 0, "training.early_stopping must be >= 0")
        _require(t.eval_batch_size >= 1, "training.eval_batch_size must be >= 1")
        return self


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _field_types(section: Any) -> dict[str, Any]:
    return typing.get_type_hints(type(section))


def _resolve_key(cfg: Config, key: str) -> tuple[Any, str]:
    """``training.lr`` or the unambiguous short form ``lr`` -> (section object, field name)."""
    sections = cfg.sections()
    if "." in key:
        section_name, name = key.split(".", 1)
        if section_name not in sections:
            raise ConfigError(f"unknown config key {key!r}: no section {section_name!r} (model, data, training)")
        section = sections[section_name]
        if name not in _field_types(section):
            raise ConfigError(f"unknown config key {key!r}; {section_name} has {', '.join(_field_types(section))}")
        return section, name
    owners = [s for s in sections.values() if key in _field_types(s)]
    if not owners:
        raise ConfigError(f"unknown config key {key!r}")
    if len(owners) > 1:
        raise ConfigError(f"config key {key!r} is ambiguous; write it with its section")
    return owners[0], key


def set_value(cfg: Config, key: str, value: Any) -> None:
    section, name = _resolve_key(cfg, key)
    full = f"{[k for k, s in cfg.sections().items() if s is section][0]}.{name}"
    setattr(section, name, coerce(value, _field_types(section)[name], full))


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply ``key=value`` strings (``training.lr=3e-4`` or ``lr=3e-4``) and re-validate."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        set_value(cfg, key.strip(), value.strip())
    return cfg.validate()


def load_config_file(path: str | Path) -> Config:
    """Read a ``.json`` or ``.yaml`` config (safe loaders only); a run's ``config.json`` works too."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # JSON or YAML syntax errors of any kind
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"config file {str(path)!r} is not valid {path.suffix.lstrip('.') or 'JSON'}: {first}") from None
    if isinstance(data, dict) and "config" in data and "spec" in data:
        data = data["config"]  # a run's config.json: reuse its settings
    return Config.from_dict(data or {})
