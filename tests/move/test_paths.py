"""move paths: lerp and slerp against closed forms and a float64 numpy slerp, piecewise paths, diagnostics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from jax.test_util import check_grads

from latentjax import move
from latentjax.errors import InputError

floats = st.floats(-10.0, 10.0, allow_nan=False, width=32)
vec3 = hnp.arrays(np.float32, (3,), elements=floats)
EPS32 = float(np.finfo(np.float32).eps)


def _slerp64(z0, z1, t):
    """The reference in float64: White's great-circle formula on the directions, the norm linear."""
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    u0, u1 = z0 / n0, z1 / n1
    w = 2.0 * np.arctan2(np.linalg.norm(u0 - u1), np.linalg.norm(u0 + u1))
    u = (np.sin((1 - t) * w) * u0 + np.sin(t * w) * u1) / np.sin(w)
    return ((1 - t) * n0 + t * n1) * u


def _pair(angle, rotation, norms=(1.0, 1.0)):
    """Two float32 vectors at ``angle`` in the plane of the first two columns of ``rotation``."""
    z0 = norms[0] * rotation[:, 0]
    z1 = norms[1] * (np.cos(angle) * rotation[:, 0] + np.sin(angle) * rotation[:, 1])
    return z0.astype(np.float32), z1.astype(np.float32)


def _angle64(z0, z1):
    u0 = np.asarray(z0, np.float64) / np.linalg.norm(np.asarray(z0, np.float64))
    u1 = np.asarray(z1, np.float64) / np.linalg.norm(np.asarray(z1, np.float64))
    return 2.0 * np.arctan2(np.linalg.norm(u0 - u1), np.linalg.norm(u0 + u1))


@settings(max_examples=30, deadline=None)
@given(vec3, vec3)
def test_lerp_slerp_endpoints(z0, z1):
    for f in (move.lerp, move.slerp):
        np.testing.assert_allclose(f(z0, z1, 0.0), z0, atol=1e-5 * (1 + np.abs(z0).max()))
        np.testing.assert_allclose(f(z0, z1, 1.0), z1, atol=1e-5 * (1 + np.abs(z1).max()))


def test_slerp_is_rotation_in_the_plane():
    # Closed form: between unit vectors at angle w, slerp(t) is the first one rotated by t*w.
    w = 2.0
    z0, z1 = jnp.array([1.0, 0.0]), jnp.array([np.cos(w), np.sin(w)])
    for t in np.linspace(0, 1, 7):
        np.testing.assert_allclose(move.slerp(z0, z1, t), [np.cos(t * w), np.sin(t * w)], atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, (2, 5), elements=st.floats(-1, 1)))
def test_slerp_unit_vectors_stay_on_sphere_at_constant_speed(x):
    norms = np.linalg.norm(x, axis=1)
    assume(norms.min() > 1e-2)
    u = (x / norms[:, None]).astype(np.float32)
    angle = np.arccos(np.clip(u[0] @ u[1], -1, 1))
    assume(0.05 < angle < np.pi - 0.05)
    ts = jnp.linspace(0.0, 1.0, 9)
    pts = np.asarray(jax.vmap(move.slerp, in_axes=(None, None, 0))(u[0], u[1], ts), np.float64)
    np.testing.assert_allclose(np.linalg.norm(pts, axis=1), 1.0, atol=2e-6)
    steps = np.arccos(np.clip(np.sum(pts[1:] * pts[:-1], axis=1), -1, 1))
    np.testing.assert_allclose(steps, angle / 8, atol=2e-3)


def test_slerp_matches_float64_numpy_away_from_the_cut():
    rng = np.random.default_rng(0)
    for _ in range(40):
        z0, z1 = rng.normal(size=(2, 6)).astype(np.float32) * rng.uniform(0.1, 3.0, size=(2, 1))
        assert 1e-2 < _angle64(z0, z1) < np.pi - 1e-2
        for t in (0.0, 0.2, 0.5, 0.9, 1.0):
            ref = _slerp64(z0, z1, t)
            np.testing.assert_allclose(move.slerp(z0, z1, t), ref, rtol=1e-5, atol=2e-6 * np.abs(ref).max())
    # Equal norms: exactly White's formula on the vectors themselves.
    z0, z1 = _pair(2.5, np.eye(3), norms=(2.0, 2.0))
    w = 2.5
    white = (np.sin(0.7 * w) * z0 + np.sin(0.3 * w) * z1) / np.sin(w)
    np.testing.assert_allclose(move.slerp(z0, z1, 0.3), white, atol=1e-5)


@pytest.mark.parametrize("norms", [(1.0, 1.0), (1.0, 2.0), (300.0, 0.5)])
def test_slerp_continuous_up_to_opposite_directions(norms):
    """The audit's jump: at pi - 1.2e-3 slerp(0.5) was (0.0006, 0.9999), at pi - 0.8e-3 lerp (0, 0.0004).

    Over angles pi - 1e-2 .. pi - 1e-6 in 8-D (a random plane, so every coordinate is rounded), the
    error against the float64 formula on the same float32 inputs stays within the conditioning of
    the problem, eps / (pi - angle) (the great circle's direction depends on 1 / (pi - angle) of the
    inputs' rounding): no jump beyond what the exact answer does between neighbouring angles.
    """
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(8, 8)))[0]
    scale = max(norms)
    prev = prev_ref = None
    for delta in np.geomspace(1e-2, 1e-6, 300):
        z0, z1 = _pair(np.pi - delta, rotation, norms)
        gap = np.pi - _angle64(z0, z1)  # of the rounded inputs
        for t in (0.25, 0.5):
            got = np.asarray(move.slerp(z0, z1, t), np.float64)
            ref = _slerp64(z0, z1, t)
            assert np.abs(got - ref).max() <= scale * (2 * EPS32 / gap + 4 * EPS32), (delta, t)
        if prev is not None:  # t = 0.5
            jump, ref_jump = np.abs(got - prev).max(), np.abs(ref - prev_ref).max()
            assert jump <= ref_jump + scale * 4 * EPS32 / gap
        prev, prev_ref = got, ref
    # The norm is interpolated linearly all the way (White's weights on these would diverge).
    np.testing.assert_allclose(np.linalg.norm(got), np.mean(norms), rtol=1e-5)


def test_slerp_exactly_opposite_follows_the_fixed_axis():
    """No unique great circle: the documented limit through the axis least aligned with z0."""
    z0 = np.array([0.6, 0.0, -0.8], np.float32)
    ts = np.linspace(0.0, 1.0, 5)
    got = np.asarray(jax.vmap(move.slerp, in_axes=(None, None, 0))(z0, -2.0 * z0, ts))
    axis = np.array([0.0, 1.0, 0.0])  # |z0_1| is the smallest coordinate
    ref = [((1 - t) * 1.0 + t * 2.0) * (np.cos(np.pi * t) * z0 + np.sin(np.pi * t) * axis) for t in ts]
    np.testing.assert_allclose(got, ref, atol=1e-6)
    # It is the limit from the side of that axis.
    near = np.asarray(move.slerp(z0, -2.0 * z0 + 1e-4 * axis.astype(np.float32), 0.5))
    np.testing.assert_allclose(near, got[2], atol=1e-3)


def test_slerp_zero_or_one_dimensional_endpoints_give_lerp():
    z = jnp.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(move.slerp(z, jnp.zeros(3), 0.3), 0.7 * z, atol=1e-6)
    np.testing.assert_allclose(move.slerp(jnp.zeros(3), z, 0.3), 0.3 * z, atol=1e-6)
    np.testing.assert_allclose(move.slerp(jnp.zeros(3), jnp.zeros(3), 0.3), 0.0)
    np.testing.assert_allclose(move.slerp(jnp.array([2.0]), jnp.array([-1.0]), 0.5), [0.5])


# Jitted once per shape: the parametrised cases below share the compilations.
_grad_loss = jax.jit(jax.grad(lambda a, b, s: jnp.sum(jnp.sin(move.slerp(a, b, s))), argnums=(0, 1, 2)))
_jac = jax.jit(jax.jacfwd(move.slerp, argnums=(0, 1, 2)))
_hess_t = jax.jit(jax.hessian(move.slerp, argnums=2))


@pytest.mark.parametrize(
    "z1",
    [
        np.array([1.0, 2.0, 3.0], np.float32),  # identical
        np.array([1.0, 2.0, 3.0 + 1e-5], np.float32),  # near-collinear
        np.array([2.0, 4.0, 6.0], np.float32),  # collinear, other norm
        np.array([-1.0, -2.0, -3.0], np.float32),  # opposite
        np.array([-2.0, -4.0, -6.0], np.float32),  # opposite, other norm
        np.array([-1.0, -2.0 + 1e-4, -3.0], np.float32),  # nearly opposite
        np.array([-1.0, -2.0 + 1e-6, -3.0], np.float32),  # more nearly opposite
        np.zeros(3, np.float32),  # zero vector
        np.array([0.5, -1.0, 2.0], np.float32),  # generic
    ],
)
@pytest.mark.parametrize("t", [0.0, 0.3, 1.0])
def test_slerp_derivatives_finite(z1, t):
    z0, z1, t = jnp.array([1.0, 2.0, 3.0]), jnp.asarray(z1), jnp.asarray(t, jnp.float32)
    for g in (*_grad_loss(z0, z1, t), *_jac(z0, z1, t), _hess_t(z0, z1, t)):
        assert np.all(np.isfinite(g))


def test_slerp_gradients_match_finite_differences():
    z0, z1 = jnp.array([1.0, 0.2, -0.5]), jnp.array([-0.3, 1.0, 0.4])
    f = jax.jit(lambda a, b: move.slerp(a, b, 0.3))
    check_grads(f, (z0, z1), order=1, modes=["rev"], atol=2e-2, rtol=2e-2)
    # Near opposite directions too (pi - 0.05), in float64 so finite differences resolve it.
    with jax.enable_x64(True):
        z0, z1 = _pair(np.pi - 0.05, np.eye(3), norms=(1.0, 1.5))
        args = (jnp.asarray(z0, jnp.float64), jnp.asarray(z1, jnp.float64), jnp.asarray(0.4, jnp.float64))
        check_grads(jax.jit(move.slerp), args, order=1, modes=["fwd", "rev"])


def test_slerp_time_derivative_is_the_angular_speed():
    # |d slerp / dt| = w for unit vectors (constant speed); d^2/dt^2 = -w^2 slerp (a circle).
    w = np.pi - 1e-3
    z0, z1 = _pair(w, np.linalg.qr(np.random.default_rng(2).normal(size=(5, 5)))[0])
    speed, acceleration = jax.jit(jax.jacfwd(move.slerp, argnums=2)), _hess_t
    for t in (0.1, 0.5, 0.9):
        v, acc = speed(z0, z1, jnp.float32(t)), acceleration(z0, z1, jnp.float32(t))
        np.testing.assert_allclose(np.linalg.norm(v), w, rtol=1e-4)
        np.testing.assert_allclose(acc, -(w**2) * move.slerp(z0, z1, t), atol=1e-3)


def test_vmap_equals_loop(key):
    k0, k1, k2 = jax.random.split(key, 3)
    z0 = jax.random.normal(k0, (6, 4))
    z1 = jax.random.normal(k1, (6, 4))
    t = jax.random.uniform(k2, (6,))
    for f in (move.lerp, move.slerp, move.apply):
        batched = jax.vmap(f)(z0, z1, t)
        looped = jnp.stack([f(z0[i], z1[i], t[i]) for i in range(6)])
        np.testing.assert_allclose(batched, looped, rtol=1e-6, atol=1e-6)
    jitted = jax.jit(jax.vmap(move.slerp))(z0, z1, t)
    np.testing.assert_allclose(jitted, jax.vmap(move.slerp)(z0, z1, t), atol=1e-6)


def test_float64_stays_float64():
    with jax.enable_x64(True):
        z0, z1 = np.array([1.0, 1e-12, 0.0]), np.array([0.0, 1.0, 1.0])
        for f in (move.lerp, move.slerp):
            assert f(z0, z1, 0.5).dtype == jnp.float64
        np.testing.assert_allclose(move.slerp(z0, z1, 0.3), _slerp64(z0, z1, 0.3), rtol=1e-13)
        # A 1e-9 step: float32 rounds its midpoint to the endpoint.
        p = move.path(np.array([[1.0], [1.0 + 1e-9]]), num_points=3)
        assert p.dtype == jnp.float64
        np.testing.assert_allclose(p[1, 0] - 1.0, 5e-10, rtol=1e-6)
        q = move.path(np.array([[1.0, 0.0], [1.0, 1e-9]]), num_points=3, method="slerp")
        assert q.dtype == jnp.float64 and float(q[1, 1]) > 0
    assert move.lerp(np.zeros(2, int), np.ones(2, int), 0.5).dtype == jnp.float32  # ints: default float


def test_path_passes_through_points_piecewise():
    pts = jnp.array([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]])
    p = move.path(pts, num_points=9)
    np.testing.assert_allclose(p[::4], pts, atol=1e-6)
    np.testing.assert_allclose(p[2], [0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(p[6], [1.0, 1.0], atol=1e-6)
    q = move.path(pts, num_points=9, method="slerp")
    np.testing.assert_allclose(q[::4], pts, atol=1e-6)
    np.testing.assert_allclose(q[6], _slerp64(pts[1], pts[2], 0.5), atol=1e-6)


def test_path_diagnostics_against_numpy(key):
    zs = jax.random.normal(key, (7, 3))
    a = jax.random.normal(jax.random.fold_in(key, 1), (3, 5))

    def decode(z):
        return jnp.tanh(z @ a)

    d = move.path_diagnostics(decode, zs)
    x = np.tanh(np.asarray(zs, np.float64) @ np.asarray(a, np.float64))
    steps = np.linalg.norm(np.diff(x, axis=0), axis=1)
    np.testing.assert_allclose(d.latent_length, np.linalg.norm(np.diff(zs, axis=0), axis=1).sum(), rtol=1e-5)
    np.testing.assert_allclose(d.decoded_length, steps.sum(), rtol=1e-5)
    np.testing.assert_allclose(d.decoded_energy, 6 * np.sum(steps**2), rtol=1e-5)
    np.testing.assert_allclose(d.max_step, steps.max(), rtol=1e-5)
    assert d.decoded_energy >= d.decoded_length**2 * (1 - 1e-6)  # Cauchy-Schwarz


def test_path_diagnostics_gradient_finite_at_repeated_points():
    zs = jnp.array([[0.0, 1.0], [0.0, 1.0], [1.0, 2.0]])  # a zero-length step
    g = jax.grad(lambda z: move.path_diagnostics(jnp.tanh, z).decoded_length)(zs)
    assert np.all(np.isfinite(g))


def test_bad_input_raises_input_error():
    with pytest.raises(InputError, match="move.path: method"):
        move.path(jnp.zeros((2, 3)), num_points=4, method="cubic")
    with pytest.raises(InputError, match="num_points"):
        move.path(jnp.zeros((2, 3)), num_points=1)
    with pytest.raises(InputError, match="move.path: num_points must be a concrete integer"):
        jax.jit(lambda n: move.path(jnp.zeros((2, 3)), num_points=n))(4)
    with pytest.raises(InputError, match="move.path: points contains 1 NaN"):
        move.path(jnp.array([[0.0], [jnp.nan]]), num_points=3)
    with pytest.raises(InputError, match="move.slerp: .*equal shape"):
        move.slerp(jnp.zeros(3), jnp.zeros(4), 0.5)
    with pytest.raises(InputError, match="move.path_diagnostics"):
        move.path_diagnostics(lambda z: z, jnp.zeros((1, 2)))
    # No silent broadcasting: (3,) against (1,) or (4,), or a vector of times (vmap instead).
    for other in (jnp.zeros(1), jnp.zeros(4)):
        with pytest.raises(InputError, match="move.lerp: z0 has shape \\(3,\\) but z1"):
            move.lerp(jnp.zeros(3), other, 0.5)
    for f in (move.lerp, move.slerp):
        with pytest.raises(InputError, match="t must be a scalar"):
            f(jnp.zeros(3), jnp.ones(3), jnp.array([0.2, 0.5, 0.7]))
        with pytest.raises(InputError, match=f"{f.__name__}: z1 contains 1 NaN"):
            f(jnp.zeros(3), jnp.array([0.0, jnp.nan, 1.0]), 0.5)
        with pytest.raises(InputError, match="t contains"):
            f(jnp.zeros(3), jnp.ones(3), jnp.inf)
    # Under jit the values are not inspected (the policy); NaN goes through.
    assert np.isnan(jax.jit(move.lerp)(jnp.zeros(2), jnp.array([jnp.nan, 0.0]), 0.5)[0])
