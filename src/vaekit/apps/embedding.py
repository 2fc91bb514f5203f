"""VAE embeddings as a scikit-learn transformer.

    emb = vaekit.VAETransformer(latent_dim=10).fit(X)
    Z = emb.transform(X)            # posterior means E_q[z|x], shape (n, latent_dim)
    X_hat = emb.inverse_transform(Z)  # decoded means E[x|z], in the units of X

Works inside a :class:`sklearn.pipeline.Pipeline` (e.g. before a k-NN classifier). Features are
standardised with the training statistics unless ``standardize=False`` (then use
``likelihood="bernoulli"`` for data in [0, 1] such as pixel intensities).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from vaekit.apps.estimators import VAEEstimatorBase


class VAETransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, VAEEstimatorBase):
    """Fit a VAE; ``transform`` gives posterior means, ``inverse_transform`` decodes them."""

    def __init__(
        self, latent_dim: Optional[int] = 2, hidden: Optional[tuple] = None, epochs: Optional[int] = None,
        batch_size: int = 128, lr: float = 1e-3, beta: float = 1.0, likelihood: str = "gaussian-learned",
        standardize: bool = True, random_state=None,
    ):
        super().__init__(latent_dim=latent_dim, hidden=hidden, epochs=epochs, batch_size=batch_size, lr=lr,
                         beta=beta, likelihood=likelihood, standardize=standardize, random_state=random_state)

    def fit(self, X, y=None) -> "VAETransformer":
        """Train the VAE on X (y is ignored)."""
        self._fit_vae(X)
        self._n_features_out = self.model_.latent_dim
        return self

    def transform(self, X) -> np.ndarray:
        """Posterior means E_q[z|x], float64 of shape (n, latent_dim)."""
        return self._posterior_means(self._inputs(X)).astype(np.float64)

    def inverse_transform(self, X) -> np.ndarray:
        """Decoded means E[x|z] for latents Z (n, latent_dim), in the units of the training data."""
        check_is_fitted(self, "model_")
        Z = check_array(X, dtype=np.float64)
        if Z.shape[1] != self.model_.latent_dim:
            raise ValueError(f"inverse_transform expects an array of shape (n, {self.model_.latent_dim}), got {Z.shape}")
        return self._decode_means(torch.from_numpy(np.ascontiguousarray(Z))).astype(np.float64)
