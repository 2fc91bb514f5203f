"""VAEAnomalyDetector: scikit-learn's estimator checks, PyOD's conventions, and that it finds outliers."""

import numpy as np
import pytest
import torch
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


def test_ensemble_averages_its_members_scores():
    normal, outliers = _data()
    x = np.vstack([normal, outliers])
    det = VAEAnomalyDetector(n_estimators=3, epochs=5, random_state=0).fit(normal)
    assert len(det.estimators_) == 3 and det.estimators_[0] is det
    assert len({m.seed_ for m in det.estimators_}) == 3  # distinct seeds, hence distinct fits
    assert not torch.equal(det.estimators_[1].model_.raw_scale, det.estimators_[2].model_.raw_scale)
    for method in ("nll", "elbo", "recon"):  # set_params after fit reaches every member
        det.set_params(method=method)
        single = det.member_scores(x)
        assert single.shape == (3, len(x))
        assert not np.array_equal(single[1], single[2])
        np.testing.assert_allclose(det.decision_function(x), single.mean(axis=0), rtol=1e-12)
    # the first member is the one-model fit with the same random_state
    one = VAEAnomalyDetector(n_estimators=1, method="nll", epochs=5, random_state=0).fit(normal)
    np.testing.assert_array_equal(one.decision_function(x), det.set_params(method="nll").member_scores(x)[0])
    again = VAEAnomalyDetector(n_estimators=3, method="nll", epochs=5, random_state=0).fit(normal)
    np.testing.assert_array_equal(again.decision_function(x), det.set_params(method="nll").decision_function(x))


# The variants differ from the default only in n_estimators and trim; their API checks need no long
# fits (5 epochs: ~1 s against ~15-50 s with the epochs chosen from the data), while the default,
# epochs included, goes through check_estimator above.
def test_single_model_passes_sklearn_estimator_checks():
    check_estimator(VAEAnomalyDetector(n_estimators=1, epochs=5))


def test_untrimmed_training_passes_sklearn_estimator_checks():  # the default trims (trim=0.1)
    check_estimator(VAEAnomalyDetector(n_estimators=1, trim=0.0, epochs=5))


def test_trim_reaches_the_training_config_and_changes_the_fit():
    normal, outliers = _data()
    x = np.vstack([normal, outliers])
    plain = VAEAnomalyDetector(n_estimators=1, epochs=20, random_state=0, trim=0.0).fit(x)
    trimmed = VAEAnomalyDetector(n_estimators=1, epochs=20, random_state=0).fit(x)  # the default, trim=0.1
    assert plain.config_["training"]["trim"] == 0.0 and trimmed.config_["training"]["trim"] == 0.1
    assert not np.array_equal(plain.decision_scores_, trimmed.decision_scores_)
    # the contaminated rows (5% here) are still ranked far above the normal ones
    labels = np.r_[np.zeros(len(normal)), np.ones(len(outliers))]
    assert roc_auc_score(labels, trimmed.decision_scores_) > 0.95


@pytest.mark.parametrize("floor", [0.01, 0.3])
def test_learned_scales_respect_scale_floor(floor):
    normal, _ = _data()
    normal = np.c_[normal, np.round(normal[:, 0])]  # a column the decoder can learn almost exactly
    det = VAEAnomalyDetector(scale_floor=floor, epochs=30, random_state=0).fit(normal)
    z = torch.zeros(4, det.model_.latent_dim, dtype=torch.float64)
    scale = det.model_.decode(z).scale
    assert det.model_.config.scale_floor == floor
    assert (scale >= floor).all()
    torch.testing.assert_close(scale[0], floor + torch.nn.functional.softplus(det.model_.raw_scale))


@pytest.mark.parametrize("kwargs", [{"contamination": 0.7}, {"method": "mse"}, {"num_samples": 0},
                                    {"n_estimators": 0}, {"n_estimators": 1.5}, {"n_estimators": True},
                                    {"n_estimators": "3"}, {"num_samples": 2.5}, {"scale_floor": 0.0}, {"trim": 1.0},
                                    {"trim": -0.1}, {"trim": "0.1"}])
def test_bad_settings_raise_vaekit_errors(kwargs):
    normal, _ = _data()
    with pytest.raises(vaekit.ConfigError):
        VAEAnomalyDetector(epochs=1, **kwargs).fit(normal)


def test_asinh_preprocessing_compresses_heavy_tails_and_is_refitted_on_training_rows():
    from vaekit.errors import ConfigError

    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=300), rng.standard_cauchy(300)]  # one heavy-tailed column
    det = VAEAnomalyDetector(epochs=2, n_estimators=1, random_state=0, preprocess="asinh").fit(X)
    z = det._inputs(X).numpy()
    assert np.allclose(z.mean(0), 0, atol=1e-9) and np.allclose(z.std(0), 1)  # standardised again after asinh
    assert np.abs(z[:, 1]).max() < np.abs((X[:, 1] - X[:, 1].mean()) / X[:, 1].std()).max()  # tail compressed
    plain = VAEAnomalyDetector(epochs=2, n_estimators=1, random_state=0, preprocess="none").fit(X)
    assert np.allclose(plain._inputs(X).numpy(), (X - X.mean(0)) / X.std(0))
    raw = VAEAnomalyDetector(epochs=2, n_estimators=1, random_state=0, standardize=False, preprocess="asinh").fit(X)
    assert np.allclose(raw._inputs(X).numpy(), X)  # no transform without standardisation
    with pytest.raises(ConfigError, match="preprocess"):
        VAEAnomalyDetector(preprocess="log").fit(X)


def _digit_images(n=240):
    from sklearn.datasets import load_digits

    x = load_digits().images[:n] / 16.0  # (n, 8, 8), pixels in [0, 1]
    assert x.min() == 0 and x.max() == 1
    return x


def test_images_keep_their_shape_and_are_scaled_together_not_per_pixel():
    from vaekit.data.standardize import Standardizer

    images = _digit_images()
    flat = images.reshape(len(images), -1)
    kw = dict(epochs=2, n_estimators=2, random_state=0)
    # standardize="auto": pixels to [0, 1] together (the blur that images get by default is tested below)
    as_images = VAEAnomalyDetector(blur=0, **kw).fit(images)
    assert as_images.image_shape_ == (8, 8) and as_images.n_features_in_ == 64
    # already in [0, 1]: the same inputs; images get the pixel floor and the wider network, rows must ask
    as_rows = VAEAnomalyDetector(standardize=False, scale_floor=0.1, hidden=(512,), **kw).fit(flat)
    np.testing.assert_array_equal(as_images.decision_function(images), as_rows.decision_function(flat))
    np.testing.assert_array_equal(as_images.decision_function(flat), as_images.decision_function(images))
    # uint8-like pixels (0..255) are divided by their range: the same model inputs up to rounding
    as_bytes = VAEAnomalyDetector(**kw).fit(np.round(images * 255).astype(np.uint8)[:, None])  # (n, 1, 8, 8)
    assert as_bytes.image_shape_ == (1, 8, 8)
    np.testing.assert_allclose(as_bytes.standardizer_.apply(np.round(flat * 255)), np.round(flat * 255) / 255)
    # a 2-D array is a table: "auto" standardises each column, exactly as standardize=True
    per_column = VAEAnomalyDetector(standardize=True, **kw).fit(flat)
    auto_rows = VAEAnomalyDetector(**kw).fit(flat)
    np.testing.assert_array_equal(auto_rows.decision_function(flat), per_column.decision_function(flat))
    assert np.allclose(auto_rows.standardizer_.mean, flat.mean(0))
    # a constant image set is centred, not divided by zero
    const = Standardizer.pixels(np.full((3, 4), 7.0))
    assert np.array_equal(const.apply(np.full((1, 4), 7.0)), np.zeros((1, 4)))


def test_scale_floor_and_network_auto_choices_for_images_and_rows():
    from vaekit.apps.anomaly import IMAGE_HIDDEN, IMAGE_SCALE_FLOOR, SCALE_FLOOR
    from vaekit.apps.estimators import auto_hidden

    images = _digit_images(60)
    kw = dict(epochs=1, n_estimators=2, random_state=0)
    det = VAEAnomalyDetector(**kw).fit(images)
    for member in det.estimators_:  # every member makes the same choice
        assert member.model_.config.scale_floor == IMAGE_SCALE_FLOOR == 0.1
        assert tuple(member.model_.config.hidden) == IMAGE_HIDDEN == (512,)
    rows = VAEAnomalyDetector(**kw).fit(images.reshape(60, -1))  # a table: the table defaults
    assert rows.model_.config.scale_floor == SCALE_FLOOR == 0.3 and tuple(rows.model_.config.hidden) == auto_hidden(64)
    per_pixel = VAEAnomalyDetector(standardize=True, **kw).fit(images)  # standardised per pixel: table units
    assert per_pixel.model_.config.scale_floor == SCALE_FLOOR
    chosen = VAEAnomalyDetector(scale_floor=0.05, hidden=(32,), **kw).fit(images)  # explicit values win
    assert chosen.model_.config.scale_floor == 0.05 and tuple(chosen.model_.config.hidden) == (32,)
    for bad in ("high", True, -1.0):
        with pytest.raises(vaekit.ConfigError, match="scale_floor must be 'auto' or > 0"):
            VAEAnomalyDetector(scale_floor=bad, epochs=1, n_estimators=1).fit(images)


def test_images_of_another_shape_and_bad_standardize_are_one_line_errors():
    from vaekit.errors import ConfigError, DataError

    images = _digit_images(60)
    det = VAEAnomalyDetector(epochs=1, n_estimators=1, random_state=0).fit(images)
    with pytest.raises(DataError, match=r"images of shape \(4, 16\).*fitted on images of shape \(8, 8\)"):
        det.decision_function(images.reshape(-1, 4, 16))
    with pytest.raises(ConfigError, match="standardize must be True, False or 'auto'"):
        VAEAnomalyDetector(standardize="pixels").fit(images)


def test_blur_and_pool_coarsen_images_before_the_vae_and_only_images():
    from vaekit.apps.anomaly import IMAGE_BLUR, IMAGE_POOL
    from vaekit.data.coarsen import coarsen

    images = _digit_images(80)
    flat = images.reshape(80, -1)
    kw = dict(epochs=2, n_estimators=2, random_state=0)
    det = VAEAnomalyDetector(blur=1.0, pool=2, **kw).fit(images)
    for member in det.estimators_:  # the VAE sees 4x4 images: 16 inputs
        assert tuple(member.model_.data_shape) == (16,)
    assert det.n_features_in_ == 64  # the user's rows are still 8x8 images
    np.testing.assert_array_equal(det.decision_function(flat), det.decision_function(images))
    # the same as fitting plain rows that were coarsened by hand, with the image settings asked for
    by_hand = coarsen(flat, (8, 8), 1.0, 2)
    rows = VAEAnomalyDetector(standardize=False, scale_floor=0.1, hidden=(512,), **kw).fit(by_hand)
    np.testing.assert_allclose(det.decision_function(images), rows.decision_function(by_hand), rtol=1e-10)
    # "auto": the image choice for pixels, nothing for images standardised pixel by pixel
    auto = VAEAnomalyDetector(epochs=1, n_estimators=1, random_state=0).fit(images)
    assert auto._scale() == (IMAGE_BLUR, IMAGE_POOL) == (1.0, 1)
    per_pixel = VAEAnomalyDetector(standardize=True, epochs=1, n_estimators=1, random_state=0).fit(images)
    assert per_pixel._scale() == (0.0, 1) and tuple(per_pixel.model_.data_shape) == (64,)
    # images too small for the blur's kernel (3 sigma each side): "auto" leaves them sharp, an explicit blur says why
    tiny = np.random.default_rng(0).random((40, 3, 3))
    assert VAEAnomalyDetector(epochs=1, n_estimators=1, random_state=0).fit(tiny)._scale() == (0.0, 1)
    with pytest.raises(vaekit.ConfigError, match="blur=1.0 needs images larger than 3 pixels, not 3x3"):
        VAEAnomalyDetector(blur=1.0, epochs=1, n_estimators=1).fit(tiny)
    # rows are not images: asking to blur or pool them is a one-line error; the neutral values are allowed
    with pytest.raises(vaekit.ConfigError, match="blur and pool apply to images given with their shape"):
        VAEAnomalyDetector(pool=2, epochs=1).fit(flat)
    VAEAnomalyDetector(blur=0, pool=1, epochs=1, n_estimators=1).fit(flat)
    for bad in ({"blur": -1.0}, {"blur": "soft"}, {"pool": 0}, {"pool": 1.5}, {"pool": True}):
        with pytest.raises(vaekit.ConfigError, match="must be 'auto' or a"):
            VAEAnomalyDetector(epochs=1, **bad).fit(images)
