"""VAETransformer: scikit-learn's estimator checks, a Pipeline, and embeddings that keep classes apart."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import check_estimator

from vaekit import VAETransformer


def test_passes_sklearn_estimator_checks():
    check_estimator(VAETransformer())


def test_in_a_pipeline_embeddings_separate_digits():
    x, y = load_digits(return_X_y=True)
    x, y = x[:900], y[:900]
    pipe = make_pipeline(VAETransformer(latent_dim=8, epochs=40, random_state=0), KNeighborsClassifier(5))
    accuracy = cross_val_score(pipe, x, y, cv=3).mean()
    assert accuracy > 0.8  # chance is 0.1


def test_transform_shapes_and_inverse_transform_reconstructs():
    x, _ = load_digits(return_X_y=True)
    emb = VAETransformer(latent_dim=10, epochs=10, random_state=0)
    z = emb.fit_transform(x)
    assert z.shape == (len(x), 10) and z.dtype == np.float64
    np.testing.assert_allclose(z, emb.transform(x))
    back = emb.inverse_transform(z)
    assert back.shape == x.shape
    # reconstructions are closer to their inputs than the column means are
    assert ((back - x) ** 2).mean() < ((x - x.mean(0)) ** 2).mean()
    assert list(emb.get_feature_names_out()) == [f"vaetransformer{i}" for i in range(10)]
