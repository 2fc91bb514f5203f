"""VAEAnomalyDetector: scikit-learn's estimator checks, PyOD's conventions, and that it finds outliers."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import check_estimator

import vaekit
from vaekit import VAEAnomalyDetector


def _data(seed=0, n=300, n_out=15, d=5):
    plane = np.random.default_rng(123).normal(size=(2, d))
    rng = np.random.default_rng(seed)
    normal = rng.normal(size=(n, 2)) @ plane + 0.05 * rng.normal(size=(n, d))  # near a 2-d plane in d dimensions
    outliers = rng.normal(scale=3.0, size=(n_out, d))
    return normal, outliers


def test_passes_sklearn_estimator_checks():
    check_estimator(VAEAnomalyDetector())


@pytest.mark.parametrize("method", ["nll", "elbo", "recon"])
def test_scores_rank_outliers_above_normal_rows(method):
    normal, outliers = _data()
    det = VAEAnomalyDetector(method=method, epochs=60, random_state=0).fit(normal)
    test_normal, test_out = _data(seed=1)
    scores = det.decision_function(np.vstack([test_normal, test_out]))
    labels = np.r_[np.zeros(len(test_normal)), np.ones(len(test_out))]
    assert roc_auc_score(labels, scores) > 0.9  # higher decision_function = more anomalous
    np.testing.assert_allclose(det.score_samples(test_out), -det.decision_function(test_out))


def test_pyod_attributes_and_predict():
    normal, outliers = _data()
    x = np.vstack([normal, outliers])
    det = VAEAnomalyDetector(contamination=0.05, epochs=30, random_state=0).fit(x)
    assert det.decision_scores_.shape == (len(x),)
    assert set(np.unique(det.labels_)) <= {0, 1}
    assert det.labels_.mean() == pytest.approx(0.05, abs=0.01)
    np.testing.assert_array_equal(det.predict(x), det.labels_)
    assert det.threshold_ == pytest.approx(np.percentile(det.decision_scores_, 95))


def test_same_seed_same_scores_and_batch_independent():
    normal, outliers = _data()
    a = VAEAnomalyDetector(epochs=5, random_state=3).fit(normal)
    b = VAEAnomalyDetector(epochs=5, random_state=3).fit(normal)
    np.testing.assert_array_equal(a.decision_function(outliers), b.decision_function(outliers))
    whole = a.decision_function(np.vstack([normal, outliers]))[-len(outliers):]
    np.testing.assert_allclose(whole, a.decision_function(outliers), rtol=1e-10)


@pytest.mark.parametrize("kwargs", [{"contamination": 0.7}, {"method": "mse"}, {"num_samples": 0}])
def test_bad_settings_raise_vaekit_errors(kwargs):
    normal, _ = _data()
    with pytest.raises(vaekit.ConfigError):
        VAEAnomalyDetector(epochs=1, **kwargs).fit(normal)
