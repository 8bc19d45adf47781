"""Labels that are not non-negative integers raise a latentjax error naming ``labels``; integer
arguments take Python, numpy and concrete JAX integers alike (and refuse floats)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from latentjax import move
from latentjax.errors import InputError
from latentjax.learn import models
from latentjax.look import metrics

PROPS = settings.get_profile("latentjax-properties")
N, D = 20, 3
Y = np.random.default_rng(0).normal(size=(N, D)).astype(np.float32)
valid_labels = hnp.arrays(np.int64, N, elements=st.integers(0, 2))


@functools.cache
def _model():
    return models.create(jax.random.key(0), models.Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8))


def _calls(labels):
    """Every public function that takes per-example class labels."""
    return {
        "metrics.knn_accuracy": lambda: metrics.knn_accuracy(Y, labels, k=3),
        "move.class_vector": lambda: move.class_vector(Y, labels, source=0, target=1),
    }


@settings(PROPS, max_examples=5)
@given(labels=valid_labels, at=st.integers(0, N - 1), bad=st.integers(-1000, -1))
def test_negative_labels_raise(labels, at, bad):
    labels = labels.copy()
    labels[at] = bad
    labels[(at + 1) % N], labels[(at + 2) % N] = 0, 1
    for call in _calls(labels).values():
        with pytest.raises(InputError, match="labels"):
            call()


@settings(PROPS, max_examples=5)
@given(labels=valid_labels, offset=st.sampled_from([0.0, 0.5]))
def test_float_labels_raise_even_when_integral(labels, offset):
    # Floats are refused as a dtype (1.0 as well as 0.5): truncation would hide a wrong column.
    labels = labels.copy()
    labels[:2] = [0, 1]
    floats = labels.astype(np.float32) + offset
    for call in _calls(floats).values():
        with pytest.raises(InputError, match="labels"):
            call()


@settings(PROPS, max_examples=4)
@given(
    labels=hnp.arrays(np.int64, N, elements=st.integers(0, 1)),
    at=st.integers(0, N - 1),
    bad=st.integers(2, 9),
)
def test_attribute_labels_must_be_zero_or_one(labels, at, bad):
    labels = labels.copy()
    labels[:2] = [0, 1]
    labels[at] = bad
    with pytest.raises(InputError, match="labels"):
        move.attribute_vector(Y, labels)
    with pytest.raises(InputError, match="labels"):
        move.attribute_vector(Y, labels.astype(np.float32))


@settings(PROPS, max_examples=4)
@given(labels=valid_labels)
def test_labels_of_another_shape_raise(labels):
    for bad in (labels[:-1], labels[:, None], np.stack([labels, labels])):
        for call in _calls(bad).values():
            with pytest.raises(InputError, match="labels"):
                call()


@pytest.mark.parametrize("wrapper", [np.int32, np.int64, jnp.int32, jnp.asarray])
def test_integer_arguments_take_any_concrete_integer(wrapper):
    points = np.random.default_rng(0).normal(size=(2, D)).astype(np.float32)
    np.testing.assert_array_equal(move.path(points, num_points=wrapper(4)), move.path(points, num_points=4))
    x = np.full((8, 8, 1), 0.5, np.float32)
    np.testing.assert_allclose(
        models.iwae_bound(_model(), jax.random.key(1), x, num_samples=wrapper(3)),
        models.iwae_bound(_model(), jax.random.key(1), x, num_samples=3),
        rtol=1e-6,
    )


@settings(PROPS, max_examples=4)
@given(n=st.floats(2, 6), wrapper=st.sampled_from([float, np.float32, jnp.float32]))
def test_integer_arguments_refuse_floats(n, wrapper):
    assume(not float(n).is_integer())
    with pytest.raises(InputError, match="num_points"):
        move.path(np.zeros((2, D), np.float32), num_points=wrapper(n))
