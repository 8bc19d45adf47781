"""move edits: attribute, regression and class vectors, chains, traversals, factor sensitivity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax import move
from latentjax.errors import InputError


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_attribute_vector_recovers_planted_direction(key):
    d = 16
    direction = jax.random.normal(key, (d,))
    labels = jax.random.bernoulli(jax.random.fold_in(key, 1), 0.4, (2000,))
    z = jax.random.normal(jax.random.fold_in(key, 2), (2000, d)) + 2.0 * labels[:, None] * direction[None, :]
    v = move.attribute_vector(z, labels)
    assert _cos(v, direction) > 0.99
    np.testing.assert_allclose(
        v, z[np.asarray(labels)].mean(0) - z[~np.asarray(labels)].mean(0), rtol=1e-4, atol=1e-5
    )
    # The 0/1 regression (mean shift) is exactly the same vector.
    np.testing.assert_allclose(move.regression_vector(z, labels.astype(jnp.float32)), v, atol=1e-4)


def test_regression_vector_units_and_direction(key):
    d, n = 12, 3000
    direction = jax.random.normal(key, (d,))
    y = jax.random.uniform(jax.random.fold_in(key, 1), (n,), minval=1.0, maxval=4.0)
    z = jax.random.normal(jax.random.fold_in(key, 2), (n, d)) * 0.3 + y[:, None] * direction[None, :]
    v = move.regression_vector(z, y)
    assert _cos(v, direction) > 0.99
    np.testing.assert_allclose(v, direction, atol=0.05)  # one unit of y = one `direction`
    w = move.regression_vector(z, y, kind="predictor")
    assert _cos(w, direction) > 0.99
    # A unit step along w raises the least-squares prediction of y by exactly one unit.
    zn, yn = np.asarray(z, np.float64), np.asarray(y, np.float64)
    coef = np.linalg.lstsq(zn - zn.mean(0), yn - yn.mean(), rcond=None)[0]
    np.testing.assert_allclose(coef @ np.asarray(w, np.float64), 1.0, rtol=1e-3)


def test_class_vector_and_apply_sweep(key):
    z = jax.random.normal(key, (30, 3))
    labels = jnp.arange(30) % 3
    v = move.class_vector(z, labels, source=0, target=2)
    np.testing.assert_allclose(v, z[2::3].mean(0) - z[0::3].mean(0), atol=1e-6)
    strengths = jnp.array([-1.0, 0.0, 0.5, 2.0])
    sweep = jax.vmap(jax.vmap(move.apply, in_axes=(None, None, 0)), in_axes=(0, None, None))(
        z[:4], v, strengths
    )
    assert sweep.shape == (4, 4, 3)
    for i in range(4):
        for j, s in enumerate(strengths):
            np.testing.assert_allclose(sweep[i, j], z[i] + s * v, atol=1e-6)


def test_chain_orthogonalize_keeps_first_edit(key):
    v1 = jnp.array([1.0, 0.0, 0.0])
    v2 = jnp.array([1.0, 1.0, 0.0])  # correlated with v1: would double the first edit
    z = jax.random.normal(key, (3,))
    plain = move.chain(z, jnp.stack([v1, v2]), jnp.array([1.0, 1.0]))
    ortho = move.chain(z, jnp.stack([v1, v2]), jnp.array([1.0, 1.0]), orthogonalize=True)
    np.testing.assert_allclose(plain - z, [2.0, 1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(ortho - z, [1.0, 1.0, 0.0], atol=1e-6)
    vs = jax.random.normal(key, (4, 6))
    gs = np.asarray(move.gram_schmidt(vs), np.float64)
    off = gs @ gs.T - np.diag(np.diag(gs @ gs.T))
    np.testing.assert_allclose(off, 0.0, atol=1e-4)
    q, _ = np.linalg.qr(np.asarray(vs, np.float64).T)  # same nested spans as QR
    np.testing.assert_allclose(np.abs(gs / np.linalg.norm(gs, axis=1, keepdims=True)), np.abs(q.T), atol=1e-4)


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


def test_bad_input_raises_input_error():
    with pytest.raises(InputError, match="move.attribute_vector: .*positives and negatives"):
        move.attribute_vector(jnp.zeros((3, 2)), jnp.array([True, True, True]))
    with pytest.raises(InputError, match="move.class_vector: .*class 7"):
        move.class_vector(jnp.zeros((3, 2)), jnp.array([0, 1, 1]), source=0, target=7)
    with pytest.raises(TypeError):
        move.class_vector(jnp.zeros((3, 2)), jnp.array([0, 1, 1]), 0, 1)  # hyperparameters by keyword
    with pytest.raises(InputError, match="move.regression_vector: kind"):
        move.regression_vector(jnp.zeros((3, 2)), jnp.arange(3.0), kind="ridge")
    with pytest.raises(InputError, match="3 latents but 2"):
        move.regression_vector(jnp.zeros((3, 2)), jnp.arange(2.0))
    with pytest.raises(InputError, match="move.chain"):
        move.chain(jnp.zeros(2), jnp.zeros((2, 2)), jnp.zeros(3))
    with pytest.raises(InputError, match="move.traverse: dimension 5"):
        move.traverse(jnp.zeros(2), 5, jnp.zeros(3))
