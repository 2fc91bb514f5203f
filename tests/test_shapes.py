"""The dSprites-like shapes: deterministic, binary, every factor visible in the image."""

import numpy as np
import pytest

from vaekit.data.shapes import FACTOR_SIZES, all_factors, make_shapes, render


def test_the_full_grid_is_every_combination_once_and_repeatable():
    images, factors = make_shapes(seed=3)
    assert images.shape == (int(np.prod(FACTOR_SIZES)), 1, 32, 32) and images.dtype == np.float32
    assert len(np.unique(factors, axis=0)) == len(factors)
    again, factors_again = make_shapes(seed=3)
    assert np.array_equal(images, again) and np.array_equal(factors, factors_again)
    assert set(np.unique(images)) == {0.0, 1.0}


def test_random_draws_follow_the_seed():
    a, fa = make_shapes(n=50, size=28, seed=1)
    _, fb = make_shapes(n=50, size=28, seed=2)
    assert a.shape == (50, 1, 28, 28) and not np.array_equal(fa, fb)
    assert (fa >= 0).all() and (fa < np.array(FACTOR_SIZES)).all()


def test_sprites_stay_inside_the_frame_and_are_never_empty():
    images = render(all_factors())
    border = np.concatenate([images[:, 0, 0], images[:, 0, -1], images[:, 0, :, 0], images[:, 0, :, -1]], axis=1)
    assert border.sum() == 0
    assert images.sum(axis=(1, 2, 3)).min() > 3


def test_each_factor_changes_the_image():
    base = np.array([[1, 3, 2, 4, 4]])
    for k, size in enumerate(FACTOR_SIZES):
        other = base.copy()
        other[0, k] = (base[0, k] + 1) % size
        assert not np.array_equal(render(base), render(other)), f"factor {k} left the image unchanged"


def test_scale_grows_the_area_and_position_moves_the_centre():
    small, large = render(np.array([[0, 0, 0, 4, 4], [0, 3, 0, 4, 4]]))
    assert large.sum() > 2 * small.sum()
    left, right = render(np.array([[1, 2, 0, 0, 4], [1, 2, 0, 7, 4]]))
    cols = np.arange(32)
    assert (right[0].sum(0) * cols).sum() / right.sum() > (left[0].sum(0) * cols).sum() / left.sum() + 10


def test_bad_factors_are_refused():
    with pytest.raises(ValueError):
        render(np.array([[3, 0, 0, 0, 0]]))
    with pytest.raises(ValueError):
        render(np.zeros((2, 4), dtype=int))
