"""M2, the semi-supervised VAE of Kingma, Rezende, Mohamed & Welling (2014, section 3.1.2).

The generative model is p(y) p(z) p(x|y, z): a class y ~ Cat(1/K), a "style" z ~ N(0, I) and the
example drawn given both. Inference has two parts: q(z|x, y), the CVAE's encoder, and a
classifier q(y|x), which is what M2 is trained for. Where y is known the model is a CVAE;
where it is not, y is a latent variable and the bound sums over its K values
(:func:`vaekit.core.semisupervised.m2_loss`). So :class:`M2` is the CVAE of
:class:`vaekit.core.models.VAE` (the same encoder, decoder and likelihoods, y one-hot into both)
plus a classifier with the encoder's body (:func:`vaekit.core.networks.build_classifier`).

M1+M2 (Kingma et al. 2014, section 3.1.3) is this model on the latent codes of an unsupervised
M1 VAE, a table with a Gaussian likelihood: see :class:`vaekit.VAEClassifier` (``m1=True``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

import torch

from vaekit.config import Config, ModelConfig
from vaekit.core.models import VAE
from vaekit.core.networks import build_classifier
from vaekit.errors import ConfigError


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
        self.classifier = build_classifier(self.data_shape, config, self.num_classes)

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
