"""Binarised images: Bernoulli draws whose mean is the grey image's, one draw per image and key.

References: the grey images' mean intensity (the Bernoulli mean), a binomial standard error.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax import data
from latentjax.errors import DataError


def _grey(n=300, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 8, 8, 1), dtype=np.uint8)


def test_fixed_draw_has_the_grey_mean():
    grey = _grey()
    b = data.binarize(jax.random.key(0), grey)
    assert b.dtype == np.uint8 and b.shape == grey.shape and set(np.unique(b)) <= {0, 255}
    p = grey / 255.0
    # each pixel a Bernoulli(p): the total of ones is within 4 standard errors of sum(p)
    ones = np.count_nonzero(b)
    assert abs(ones - p.sum()) < 4 * np.sqrt((p * (1 - p)).sum())
    # black stays black and white stays white
    assert not b[grey == 0].any() and (b[grey == 255] == 255).all()


def test_each_image_draws_alone_and_keys_differ():
    grey = _grey()
    whole = data.binarize(jax.random.key(5), grey)
    assert np.array_equal(data.binarize(jax.random.key(5), grey[:7]), whole[:7])
    assert not np.array_equal(data.binarize(jax.random.key(6), grey), whole)


def test_dynamic_batch_draw_has_the_grey_mean():
    grey = _grey(64)
    x = jnp.asarray(grey, jnp.float32) / 255
    draws = [data.binarize_batch(jax.random.split(jax.random.key(s), 64), x) for s in range(20)]
    mean = np.mean([np.asarray(d) for d in draws], axis=0)
    p = np.asarray(x)
    se = np.sqrt((p * (1 - p)).sum() * 20) / 20
    assert abs(mean.sum() - p.sum()) < 4 * se
    assert not np.array_equal(draws[0], draws[1])


def test_bad_images_raise():
    with pytest.raises(DataError, match="must be uint8"):
        data.binarize(jax.random.key(0), np.zeros((2, 8, 8, 1), np.float32))
