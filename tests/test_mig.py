"""MIG (Chen et al. 2018) with binned mutual information (Locatello et al. 2019): near 1 for a
code that is the factors, low for the same factors rotated together, and the pieces it is made of."""

import math

import numpy as np
import pytest

from vaekit.measure.disentanglement import (
    discrete_mutual_info,
    discretize,
    entropy,
    mig,
)


def _factors(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, 8, n), rng.integers(0, 5, n), rng.integers(0, 3, n)], axis=1)


def test_a_perfectly_disentangled_code_scores_near_one():
    factors = _factors()
    codes = factors + 0.01 * np.random.default_rng(1).normal(size=factors.shape)
    result = mig(codes, factors)
    assert result["mig"] > 0.9
    assert result["best_dims"] == [0, 1, 2]


def test_an_entangled_code_scores_low():
    rng = np.random.default_rng(0)
    factors = np.stack([rng.integers(0, 6, 4000) for _ in range(3)], axis=1)
    standard = (factors - factors.mean(0)) / factors.std(0)
    # an orthogonal matrix whose every entry is 1/3 or 2/3 in size: each code dimension mixes all three factors
    rotation = np.array([[-1, 2, 2], [2, -1, 2], [2, 2, -1]]) / 3.0
    assert np.allclose(rotation @ rotation.T, np.eye(3))
    assert mig(standard @ rotation.T, factors)["mig"] < 0.1
    assert mig(standard, factors)["mig"] > 0.9


def test_an_unused_code_dimension_changes_nothing_and_a_duplicate_ruins_the_gap():
    factors = _factors()
    codes = factors.astype(float)
    noise = np.random.default_rng(3).normal(size=(len(codes), 1))
    assert mig(np.hstack([codes, noise]), factors)["mig"] == pytest.approx(mig(codes, factors)["mig"], abs=0.02)
    duplicated = np.hstack([codes, codes[:, :1]])  # factor 0 now has two equally good dimensions
    assert mig(duplicated, factors)["gaps"][0] < 0.01


def test_entropy_and_mutual_information_by_hand():
    labels = np.array([0, 0, 1, 1])
    assert entropy(labels) == pytest.approx(math.log(2))
    assert discrete_mutual_info(labels, labels) == pytest.approx(math.log(2))
    assert discrete_mutual_info(labels, np.array([0, 1, 0, 1])) == pytest.approx(0.0)


def test_discretize_bins_each_column_over_its_range():
    values = np.array([[0.0, 5.0], [0.5, 5.0], [1.0, 5.0]])
    bins = discretize(values, bins=2)
    assert bins[:, 0].tolist() == [0, 1, 1] and bins[:, 1].tolist() == [0, 0, 0]


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        mig(np.zeros((10, 1)), np.zeros((10, 2), dtype=int))
    with pytest.raises(ValueError):
        mig(np.zeros((10, 3)), np.zeros((9, 2), dtype=int))
