"""Images at a coarser scale (vaekit.data.coarsen): pooling and blurring against hand computations."""

import numpy as np
import pytest

from vaekit.data.coarsen import blur_fits, coarsen
from vaekit.errors import ConfigError


def test_pooling_averages_blocks_and_a_cut_block_averages_what_it_holds():
    img = np.arange(16, dtype=np.float64).reshape(4, 4)
    out = coarsen(img.reshape(1, -1), (4, 4), pool=2)
    np.testing.assert_allclose(out, [[(0 + 1 + 4 + 5) / 4, (2 + 3 + 6 + 7) / 4, (8 + 9 + 12 + 13) / 4, (10 + 11 + 14 + 15) / 4]])
    odd = np.arange(9, dtype=np.float64).reshape(3, 3)  # the right column and bottom row are cut blocks
    out = coarsen(odd.reshape(1, -1), (3, 3), pool=2).reshape(2, 2)
    np.testing.assert_allclose(out, [[(0 + 1 + 3 + 4) / 4, (2 + 5) / 2], [(6 + 7) / 2, 8]])
    # channels are pooled one by one, and the rows keep their order
    two = np.stack([img, 10 * img])[None].repeat(3, 0) * np.arange(1, 4)[:, None, None, None]
    out = coarsen(two.reshape(3, -1), (2, 4, 4), pool=2).reshape(3, 2, 2, 2)
    np.testing.assert_allclose(out[2, 1], 3 * 10 * coarsen(img.reshape(1, -1), (4, 4), pool=2).reshape(2, 2))


def test_blur_keeps_constants_and_spreads_a_point_as_a_normalised_gaussian():
    const = np.full((2, 64), 0.7)
    np.testing.assert_allclose(coarsen(const, (8, 8), blur=1.0), const)
    point = np.zeros((15, 15))
    point[7, 7] = 1.0
    out = coarsen(point.reshape(1, -1), (15, 15), blur=1.0).reshape(15, 15)
    assert out.sum() == pytest.approx(1.0)  # nothing reaches the edges, so nothing is reflected
    one_d = np.exp(-np.arange(-3, 4) ** 2 / 2.0)
    one_d /= one_d.sum()
    np.testing.assert_allclose(out[4:11, 4:11], np.outer(one_d, one_d), atol=1e-7)
    np.testing.assert_allclose(out, out.T, atol=1e-12)
    blurred_then_pooled = coarsen(point.reshape(1, -1), (15, 15), blur=1.0, pool=3)
    np.testing.assert_allclose(blurred_then_pooled, coarsen(out.reshape(1, -1), (15, 15), pool=3), atol=1e-7)


def test_nothing_to_do_returns_the_rows_and_bad_settings_are_errors():
    rows = np.random.default_rng(0).random((3, 16))
    assert coarsen(rows, (4, 4)) is rows
    for blur, pool in ((-1.0, 1), (0.0, 0), (0.0, 1.5)):
        with pytest.raises(ConfigError, match="blur must be >= 0 and pool a whole number"):
            coarsen(rows, (4, 4), blur, pool)
    with pytest.raises(ConfigError, match="needs images larger than 5 pixels"):  # a kernel reaching 3 sigma
        coarsen(rows, (4, 4), blur=1.5)
    with pytest.raises(ConfigError, match=r"an image shape is \(H, W\) or \(C, H, W\)"):
        coarsen(rows, (16,), pool=2)


def test_blur_fits_is_the_reflection_limit():
    assert blur_fits((4, 4), 1.0) and not blur_fits((3, 3), 1.0) and not blur_fits((1, 3, 40), 1.0)
    assert blur_fits((2, 2), 0.0) and blur_fits((2, 2), 0.2)  # a kernel of at least one pixel each side
