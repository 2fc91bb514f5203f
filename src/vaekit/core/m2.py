"""M2, the semi-supervised VAE of Kingma, Rezende, Mohamed & Welling (2014, section 3.1.2).

The generative model is p(y) p(z) p(x|y, z): a class y ~ Cat(1/K), a "style" z ~ N(0, I) and the
example drawn given both. Inference has two parts: q(z|x, y), the CVAE's encoder, and a
classifier q(y|x), which is what M2 is trained for. Where y is known the model is a CVAE;
where it is not, y is a latent variable and the bound sums over its K values
(:func:`vaekit.core.semisupervised.m2_loss`). So :class:`M2` is the CVAE of
:class:`vaekit.core.models.VAE` (the same encoder, decoder and likelihoods, y one-hot into both)
plus a classifier with the encoder's body (:func:`vaekit.core.networks.build_classifier`).

M1+M2 (Kingma et al. 2014, section 3.1.3) is this model on the latent codes of an unsupervised
M1 VAE, a table with a Gaussian likelihood (``CODES_LIKELIHOOD``). :class:`M1M2` joins the two into
one model over x, which both :class:`vaekit.VAEClassifier` (``m1=True``) and ``vaekit train --model
m2 --m1 RUN`` (:mod:`vaekit.apps.semisupervised_job`) keep; only its M2 part is trained there.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

import torch

from vaekit.config import Config, ModelConfig
from vaekit.core.models import VAE, BaseVAE
from vaekit.core.networks import build_classifier
from vaekit.core.registry import config_model_class
from vaekit.errors import ConfigError

# p(z1|y, z2) of M2 on M1's codes: the codes are real vectors without a natural scale, so a
# Gaussian whose per-dimension scale is learned (Kingma et al. 2014 use a diagonal Gaussian)
CODES_LIKELIHOOD = "gaussian-learned"


class M2(VAE):
    """A CVAE with a classifier q(y|x); ``y = -1`` marks an unlabelled example in training batches."""

    semi_supervised = True  # the training step uses the M2 bound (vaekit.training.step.objective_for)

    def __init__(self, config: ModelConfig, data_shape: tuple[int, ...], num_classes: int = 0):
        if num_classes < 2:
            raise ConfigError("model=m2 needs data with at least two classes (an image set with classes, "
                              "or data.label_column for a table)")
        # the CVAE of models.VAE is M2's q(z|x, y) and p(x|y, z); its own model name is kept below
        super().__init__(dataclasses.replace(config, model="cvae"), data_shape, num_classes)
        self.config = config
        self.classifier = build_classifier(self.data_shape, config, self.num_classes, self._classifier_condition_dim())

    def _classifier_condition_dim(self) -> int:
        """The length of the vector q(y|x, ...) sees beside x: none for M2."""
        return 0

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of q(y|x), shape (batch, num_classes)."""
        self.check_shape(x)
        return self.classifier(x)

    def log_prior_y(self) -> float:
        """log p(y) = -log K for every class: the uniform prior over the labels."""
        return -math.log(self.num_classes)

    @classmethod
    def from_spec(cls, spec: dict[str, Any], config: Optional[Config] = None) -> "M2":
        if config is None:
            raise ConfigError("an M2 model is rebuilt from its spec and the Config it trained under; pass config")
        return cls(config.model, tuple(spec["data_shape"]), int(spec["num_classes"]))


@torch.no_grad()
def predict_classes(model, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """argmax_y q(y|x) for every row of ``x``, in batches (int64, on the CPU); ``model``: any model
    with ``classify`` (the logits of q(y|x)), M2 or M1+M2."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = [model.classify(x[i : i + batch_size].to(device)).argmax(-1).cpu() for i in range(0, x.shape[0], batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


class M1M2(BaseVAE):
    """M1+M2 (Kingma et al. 2014, section 3.1.3) as one model over x: an unsupervised VAE ``m1``
    whose posterior means z1 = E_q[z1|x] are the data of an M2 ``m2`` (or of its subclasses, the
    ADGM and SDGM of :mod:`vaekit.core.adgm`, whose auxiliary variable is then taken at its mean).

    ``classify(x)`` is M2's q(y|z1) at M1's code of x; ``encode(x, y)`` M2's q(z|z1, y); ``decode(z,
    y)`` M1's p(x|z1) at the mean of M2's p(z1|y, z), so that ``sample(n, y)`` draws class y through
    both decoders. Kingma et al. draw z1 from q(z1|x) in training; using the means keeps the features
    fixed. The ELBO of this model (what ``vaekit eval`` reports) is a bound on log p(x) of the model
    it samples from (z1 decoded at its mean), not the bound on M1's codes that M2 was trained on.
    """

    semi_supervised = True  # classify, log_prior_y and the M2 bound apply as they do to M2

    def __init__(self, m1: VAE, m2: M2):
        super().__init__()
        if type(m1) is not VAE or m1.conditional:
            raise ConfigError("M1 of M1+M2 must be an unconditional VAE (a run trained with --model vae)")
        if m2.data_shape != (m1.latent_dim,):
            raise ConfigError(f"M2 learns on M1's {m1.latent_dim} latent dimensions, not on shape {m2.data_shape}")
        self.m1, self.m2 = m1, m2
        self.data_shape, self.num_classes = m1.data_shape, m2.num_classes

    @property
    def latent_dim(self) -> int:
        return self.m2.latent_dim

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """M2's data: M1's posterior means E_q[z1|x]."""
        return self.m1.encode(x).mean

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.m2.classify(self.codes(x))

    def log_prior_y(self) -> float:
        return self.m2.log_prior_y()

    def encode(self, x: torch.Tensor, y: Optional[torch.Tensor] = None):
        return self.m2.encode(self.codes(x), y)

    def decode(self, z: torch.Tensor, y: Optional[torch.Tensor] = None):
        return self.m1.decode(self.m2.decode(z, y).mean)

    def spec(self) -> dict[str, Any]:
        """M2's spec (its settings are the run's ``config.model``) and M1's whole: its spec and settings."""
        return {"m1": {**self.m1.spec(), "model": dataclasses.asdict(self.m1.config)}, "m2": self.m2.spec()}

    @classmethod
    def from_spec(cls, spec: dict[str, Any], config: Optional[Config] = None) -> "M1M2":
        if config is None:
            raise ConfigError("an M1+M2 model is rebuilt from its spec and the Config it trained under; pass config")
        m1_config = Config.from_dict({"model": spec["m1"]["model"]}).model
        inner = config_model_class(config.model.model)  # M2, or the ADGM or SDGM in its place
        return cls(VAE(m1_config, tuple(spec["m1"]["data_shape"])), inner.from_spec(spec["m2"], config))
