"""move edits: attribute, regression and class vectors, apply and chains, against numpy."""

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


def test_bad_input_raises_input_error():
    with pytest.raises(InputError, match="move.attribute_vector: .*positives and negatives"):
        move.attribute_vector(jnp.zeros((3, 2)), jnp.array([True, True, True]))
    with pytest.raises(InputError, match="move.class_vector: .*class 7"):
        move.class_vector(jnp.zeros((3, 2)), jnp.array([0, 1, 1]), source=0, target=7)
    with pytest.raises(TypeError):
        move.class_vector(jnp.zeros((3, 2)), jnp.array([0, 1, 1]), 0, 1)  # hyperparameters by keyword
    with pytest.raises(InputError, match="move.regression_vector: kind"):
        move.regression_vector(jnp.zeros((3, 2)), jnp.arange(3.0), kind="ridge")
    with pytest.raises(InputError, match="move.regression_vector: z has 3 latents but values has 2"):
        move.regression_vector(jnp.zeros((3, 2)), jnp.arange(2.0))
    with pytest.raises(InputError, match="move.chain"):
        move.chain(jnp.zeros(2), jnp.zeros((2, 2)), jnp.zeros(3))
    # Labels: 0/1 or bool only (a 2 used to count as positive), never floats; NaN latents refused.
    z = jnp.zeros((3, 2))
    with pytest.raises(InputError, match="move.attribute_vector: labels must be below 2, got 2 at index 1"):
        move.attribute_vector(z, np.array([0, 2, 1]))
    with pytest.raises(InputError, match="move.attribute_vector: labels must be non-negative integers"):
        move.attribute_vector(z, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(InputError, match="move.attribute_vector: z contains 1 NaN"):
        move.attribute_vector(z.at[1, 0].set(jnp.nan), np.array([0, 1, 1]))
    with pytest.raises(InputError, match="move.regression_vector: values contains 1 NaN"):
        move.regression_vector(z, jnp.array([0.0, jnp.nan, 1.0]))
    with pytest.raises(InputError, match="move.regression_vector: z contains"):
        move.regression_vector(z.at[0, 0].set(jnp.inf), jnp.arange(3.0))
    with pytest.raises(InputError, match="move.class_vector: labels must be non-negative"):
        move.class_vector(z, np.array([0, -1, 1]), source=0, target=1)
    # apply: no silent broadcasting, a scalar strength (vmap over strengths).
    for other in (jnp.ones(1), jnp.ones(4)):
        with pytest.raises(InputError, match="move.apply: z has shape \\(3,\\) but vector"):
            move.apply(jnp.zeros(3), other, 1.0)
    with pytest.raises(InputError, match="move.apply: strength must be a scalar"):
        move.apply(jnp.zeros(3), jnp.ones(3), jnp.ones(3))
    with pytest.raises(InputError, match="move.apply: vector contains"):
        move.apply(jnp.zeros(3), jnp.array([1.0, jnp.nan, 0.0]), 1.0)


def test_labels_traced_under_jit_are_checked_for_dtype_only(key):
    z = jax.random.normal(key, (10, 3))
    labels = jnp.arange(10) % 2
    eager = move.attribute_vector(z, labels)
    np.testing.assert_allclose(jax.jit(move.attribute_vector)(z, labels), eager, atol=1e-6)
    np.testing.assert_allclose(jax.jit(move.attribute_vector)(z, labels.astype(bool)), eager, atol=1e-6)
    with pytest.raises(
        InputError, match="move.attribute_vector: labels must be a vector of integers or bools"
    ):
        jax.jit(move.attribute_vector)(z, labels.astype(jnp.float32))


def test_float64_stays_float64():
    rng = np.random.default_rng(0)
    z, vs, ss = rng.normal(size=4), rng.normal(size=(3, 4)), rng.normal(size=3)
    with jax.enable_x64(True):
        out = move.chain(z, vs, ss)
        assert out.dtype == jnp.float64
        np.testing.assert_allclose(out, z + ss @ vs, rtol=1e-14)
        gs = np.asarray(move.gram_schmidt(vs))
        assert gs.dtype == np.float64
        np.testing.assert_allclose(gs @ gs.T - np.diag(np.diag(gs @ gs.T)), 0.0, atol=1e-13)
        assert move.apply(z, vs[0], 0.5).dtype == jnp.float64
        labels = np.array([0, 1, 1, 0])
        zz = rng.normal(size=(4, 2))
        v = move.attribute_vector(zz, labels)
        assert v.dtype == jnp.float64
        np.testing.assert_allclose(v, zz[1:3].mean(0) - zz[[0, 3]].mean(0), rtol=1e-14)
