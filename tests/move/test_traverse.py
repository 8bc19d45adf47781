"""move traversals (any integer dimension, traced too) against a loop over Python ints, and factor
sensitivity against numpy's correlation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax import move
from latentjax.errors import InputError


def test_traverse_dimension_and_direction():
    z = jnp.array([1.0, 2.0, 3.0])
    t = move.traverse(z, 1, jnp.array([-1.0, 0.0, 2.0]))
    np.testing.assert_allclose(t, [[1, 1, 3], [1, 2, 3], [1, 4, 3]])
    t2 = move.traverse(z, jnp.array([1.0, 0.0, 1.0]), jnp.array([1.0]))
    np.testing.assert_allclose(t2, [[2, 2, 4]])


def test_factor_sensitivity_against_numpy(key):
    n = 500
    f = jax.random.uniform(key, (n, 3))
    noise = jax.random.normal(jax.random.fold_in(key, 1), (n, 4)) * 0.1
    # dim 2 encodes factor 0, dim 0 encodes factor 2, dims 1 and 3 are noise.
    z = noise + jnp.stack([f[:, 2], jnp.zeros(n), -f[:, 0], jnp.zeros(n)], axis=1)
    s = move.factor_sensitivity(z, f)
    ref = np.abs(np.corrcoef(np.asarray(z).T, np.asarray(f).T)[:4, 4:])
    np.testing.assert_allclose(s.correlation, ref, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(s.best_dim)[[0, 2]], [2, 0])


def test_traverse_takes_numpy_jax_and_traced_integers(key):
    """The audit: a numpy int, a JAX int scalar (e.g. ``factor_sensitivity(...).best_dim[0]``) and
    ``vmap`` over dimensions all failed; each now equals the Python-int traversal."""
    z = jax.random.normal(key, (5,))
    values = jnp.array([-2.0, 0.5, 3.0])
    loop = np.stack([np.asarray(move.traverse(z, d, values)) for d in range(5)])
    # The reference by hand: coordinate d replaced by z_d + value.
    ref = np.repeat(np.repeat(np.asarray(z)[None, None], 5, 0), 3, 1)
    for d in range(5):
        ref[d, :, d] += np.asarray(values)
    np.testing.assert_allclose(loop, ref, atol=1e-6)
    for d in range(-5, 5):
        for dim in (np.int64(d), np.int32(d), jnp.asarray(d), jnp.asarray(d, jnp.int8)):
            np.testing.assert_allclose(move.traverse(z, dim, values), loop[d], atol=1e-6)
    dims = jnp.arange(5)
    np.testing.assert_allclose(
        jax.vmap(move.traverse, in_axes=(None, 0, None))(z, dims, values), loop, atol=1e-6
    )
    np.testing.assert_allclose(jax.jit(move.traverse)(z, jnp.asarray(-2), values), loop[3], atol=1e-6)
    best = move.factor_sensitivity(jnp.stack([z, 2 * z, -z], axis=1).T, jnp.array([1.0, 2.0, -1.0])).best_dim[
        0
    ]
    assert move.traverse(z, best, values).shape == (3, 5)


def test_traverse_bad_dimensions():
    z, values = jnp.zeros(3), jnp.zeros(2)
    for dim in (3, -4, np.int64(7), jnp.asarray(5)):
        with pytest.raises(InputError, match="move.traverse: dim_or_direction .* out of range"):
            move.traverse(z, dim, values)
    with pytest.raises(InputError, match="move.traverse: dim_or_direction must be an integer .*bool"):
        move.traverse(z, True, values)
    with pytest.raises(InputError, match="move.traverse: dim_or_direction must be an integer dimension or"):
        move.traverse(z, 1.0, values)
    with pytest.raises(InputError, match="move.traverse: dim_or_direction must be an integer dimension or"):
        move.traverse(z, jnp.ones(4), values)
    with pytest.raises(InputError, match="move.traverse: values contains"):
        move.traverse(z, 0, jnp.array([jnp.nan]))
    # A traced dimension cannot be refused: out of range it gives NaN, never another coordinate.
    out = jax.vmap(move.traverse, in_axes=(None, 0, None))(z, jnp.array([1, 3, -4]), values)
    assert np.all(np.isfinite(out[0])) and np.all(np.isnan(out[1:]))


def test_factor_sensitivity_rejects_nan():
    with pytest.raises(InputError, match="move.factor_sensitivity: factors contains"):
        move.factor_sensitivity(jnp.zeros((3, 2)), jnp.array([0.0, jnp.nan, 1.0]))
