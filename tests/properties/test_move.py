"""Properties of latentjax.move: endpoints, slerp on the sphere and continuous near opposite
endpoints (against a float64 great-circle reference), vmap equal to a Python loop, float dtypes
kept, and integer dimensions of any integer type."""

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

PROPS = settings.get_profile("latentjax-properties")
D, B = 4, 5
vectors = hnp.arrays(np.float32, D, elements=st.floats(-100, 100, width=32, allow_subnormal=False))
batches = hnp.arrays(np.float32, (B, D), elements=st.floats(-100, 100, width=32, allow_subnormal=False))
times = st.floats(0, 1, allow_subnormal=False)


def _slerp64(z0, z1, t):
    """slerp in float64, as documented: the great circle between the directions (White's
    weights, Kahan's angle) with the norm interpolated linearly; for angles away from 0 and pi."""
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    with np.errstate(invalid="ignore", divide="ignore"):  # degenerate angles: the callers assume them away
        u0, u1 = z0 / n0, z1 / n1
        angle = 2.0 * np.arctan2(np.linalg.norm(u0 - u1), np.linalg.norm(u0 + u1))
        u = (np.sin((1 - t) * angle) * u0 + np.sin(t * angle) * u1) / np.sin(angle)
    return ((1 - t) * n0 + t * n1) * u, angle


@settings(PROPS, max_examples=10)
@given(z0=vectors, z1=vectors)
def test_lerp_and_slerp_hit_their_endpoints(z0, z1):
    np.testing.assert_array_equal(move.lerp(z0, z1, 0.0), z0)
    np.testing.assert_array_equal(move.lerp(z0, z1, 1.0), z1)
    tol = 1e-5 * max(np.abs(z0).max(), np.abs(z1).max()) + 1e-30
    np.testing.assert_allclose(move.slerp(z0, z1, 0.0), z0, rtol=1e-5, atol=tol)
    np.testing.assert_allclose(move.slerp(z0, z1, 1.0), z1, rtol=1e-5, atol=tol)


@st.composite
def unit_pairs(draw, *, min_gap):
    """Two unit float32 vectors whose angle is at most pi - min_gap."""
    a = draw(hnp.arrays(np.float64, D, elements=st.floats(-1, 1, allow_subnormal=False)))
    b = draw(hnp.arrays(np.float64, D, elements=st.floats(-1, 1, allow_subnormal=False)))
    assume(np.linalg.norm(a) > 1e-2 and np.linalg.norm(b) > 1e-2)
    u0 = (a / np.linalg.norm(a)).astype(np.float32)
    u1 = (b / np.linalg.norm(b)).astype(np.float32)
    assume(_slerp64(u0, u1, 0.5)[1] <= np.pi - min_gap)
    return u0, u1


@settings(PROPS, max_examples=15)
@given(pair=unit_pairs(min_gap=1e-3), t=times)
def test_slerp_keeps_unit_vectors_on_the_sphere(pair, t):
    norm = float(jnp.linalg.norm(move.slerp(*pair, t)))
    assert abs(norm - 1.0) < 1e-3, norm


@settings(PROPS, max_examples=15)
@given(seed=st.integers(0, 2**32 - 1), gap=st.floats(-4, -2).map(lambda e: 10.0**e), t=times)
def test_slerp_follows_the_great_circle_near_opposite_endpoints(seed, gap, t):
    # z1 at angle pi - gap from z0: across the old 1e-3 cut-off slerp jumped by 1.0 at t = 0.5.
    rng = np.random.default_rng(seed)
    e, w = np.linalg.qr(rng.normal(size=(D, 2)))[0].T
    z0 = e.astype(np.float32)
    z1 = (np.cos(np.pi - gap) * e + np.sin(np.pi - gap) * w).astype(np.float32)
    want, angle = _slerp64(z0, z1, t)
    # float32 inputs pin the angle to ~1e-7, so the plane of the circle to ~1e-7 / gap.
    np.testing.assert_allclose(move.slerp(z0, z1, t), want, atol=1e-4 + 1e-6 / (np.pi - angle))


@settings(PROPS, max_examples=10)
@given(z0=vectors, z1=vectors, t=times)
def test_slerp_matches_float64_away_from_the_degenerate_angles(z0, z1, t):
    assume(np.linalg.norm(z0) > 1e-3 and np.linalg.norm(z1) > 1e-3)
    want, angle = _slerp64(z0, z1, t)
    assume(1e-2 < angle < np.pi - 1e-2)
    scale = max(np.linalg.norm(z0), np.linalg.norm(z1))
    np.testing.assert_allclose(move.slerp(z0, z1, t), want, atol=1e-4 * scale)


@settings(PROPS, max_examples=6)
@given(
    z0=batches,
    z1=batches,
    t=hnp.arrays(np.float32, B, elements=st.floats(0, 1, width=32, allow_subnormal=False)),
)
def test_lerp_and_slerp_vmap_equal_a_loop(z0, z1, t):
    for fn in (move.lerp, move.slerp):
        loop = np.stack([np.asarray(fn(a, b, s)) for a, b, s in zip(z0, z1, t)])
        np.testing.assert_allclose(jax.vmap(fn)(z0, z1, t), loop, rtol=1e-6, atol=1e-5)
        over_t = np.stack([np.asarray(fn(z0[0], z1[0], s)) for s in t])
        np.testing.assert_allclose(jax.vmap(fn, in_axes=(None, None, 0))(z0[0], z1[0], t), over_t, atol=1e-5)


@settings(PROPS, max_examples=6)
@given(
    z=batches,
    v=vectors,
    strengths=hnp.arrays(np.float32, B, elements=st.floats(-10, 10, width=32, allow_subnormal=False)),
)
def test_apply_and_chain_vmap_equal_a_loop(z, v, strengths):
    loop = np.stack([np.asarray(move.apply(a, v, s)) for a, s in zip(z, strengths)])
    np.testing.assert_allclose(jax.vmap(move.apply, in_axes=(0, None, 0))(z, v, strengths), loop, atol=1e-4)
    np.testing.assert_allclose(loop, z + strengths[:, None] * v, rtol=1e-6, atol=1e-4)
    vs = np.stack([v, z[0]])
    chained = functools.partial(move.chain, vectors=vs, orthogonalize=True)
    loop = np.stack([np.asarray(chained(a, strengths=strengths[:2])) for a in z])
    np.testing.assert_allclose(jax.vmap(lambda a: chained(a, strengths=strengths[:2]))(z), loop, atol=1e-4)


@settings(PROPS, max_examples=6)
@given(
    z=batches,
    dim=st.integers(-D, D - 1),
    values=hnp.arrays(np.float32, 3, elements=st.floats(-5, 5, width=32, allow_subnormal=False)),
)
def test_traverse_vmap_equals_a_loop_and_takes_any_integer_type(z, dim, values):
    loop = np.stack([np.asarray(move.traverse(a, dim, values)) for a in z])
    np.testing.assert_allclose(jax.vmap(lambda a: move.traverse(a, dim, values))(z), loop, atol=1e-5)
    want = z[0][None, :] + values[:, None] * np.eye(D, dtype=np.float32)[dim][None, :]
    np.testing.assert_allclose(loop[0], want, rtol=1e-6, atol=1e-5)
    for same in (np.int64(dim), np.int32(dim), jnp.int32(dim), jnp.asarray(dim)):
        np.testing.assert_array_equal(move.traverse(z[0], same, values), loop[0])


@settings(PROPS, max_examples=6)
@given(dim=st.floats(-D, D), wrapper=st.sampled_from([float, np.float32, jnp.float32]))
def test_traverse_refuses_a_dimension_that_is_not_an_integer(dim, wrapper):
    assume(not float(dim).is_integer())
    with pytest.raises(InputError, match="dim"):
        move.traverse(np.zeros(D, np.float32), wrapper(dim), np.ones(2, np.float32))


@settings(PROPS, max_examples=5)
@given(points=hnp.arrays(np.float32, (B, 3, D), elements=st.floats(-10, 10, width=32, allow_subnormal=False)))
def test_path_vmap_equals_a_loop(points):
    for method in ("lerp", "slerp"):
        fn = functools.partial(move.path, num_points=5, method=method)
        loop = np.stack([np.asarray(fn(p)) for p in points])
        np.testing.assert_allclose(jax.vmap(fn)(points), loop, atol=1e-5)
        np.testing.assert_allclose(loop[:, ::2], points, rtol=1e-5, atol=1e-5)  # 5 points hit all 3
    np.testing.assert_array_equal(
        move.path(points[0], num_points=np.int64(5)), move.path(points[0], num_points=5)
    )


def _dtypes_of(z0, z1, values_dtype):
    """The output dtype of every array function of ``move``, from ``jax.eval_shape`` (no compiling)."""
    ones = np.ones(2, values_dtype)

    def outputs(z0, z1):
        zs = jnp.stack([z0, z1, z0 + z1])
        return {
            "lerp": move.lerp(z0, z1, 0.3),
            "slerp": move.slerp(z0, z1, 0.3),
            "apply": move.apply(z0, z1, 0.5),
            "chain": move.chain(z0, zs[:2], ones),
            "traverse": move.traverse(z0, 1, ones),
            "traverse(direction)": move.traverse(z0, z1, ones),
            "path": move.path(zs, num_points=4),
            "gram_schmidt": move.gram_schmidt(zs[:2]),
            "attribute_vector": move.attribute_vector(zs, np.array([True, False, True])),
            "regression_vector": move.regression_vector(zs, np.array([0.0, 1.0, 2.0], values_dtype)),
            "geodesic": move.geodesic(jnp.tanh, z0, z1, num_points=3, num_steps=1).points,
        }

    return {k: v.dtype for k, v in jax.eval_shape(outputs, z0, z1).items()}


def test_move_keeps_float32_and_float64():
    z0, z1 = np.array([1.0, 2.0, 0.5, -1.0], np.float32), np.array([0.0, -1.0, 2.0, 1.0], np.float32)
    got = _dtypes_of(z0, z1, np.float32)
    assert got == dict.fromkeys(got, jnp.float32), got
    assert move.slerp(z0, z1, 0.5).dtype == move.lerp(z0, z1, 0.5).dtype == jnp.float32  # eager too
    with jax.enable_x64(True):
        a, b = z0.astype(np.float64), z1.astype(np.float64)
        got = _dtypes_of(a, b, np.float64)
        assert got == dict.fromkeys(got, jnp.float64), got
        assert move.slerp(a, b, 0.5).dtype == move.lerp(a, b, 0.5).dtype == jnp.float64


def test_integer_latents_become_the_default_float():
    z0, z1 = np.arange(D), np.arange(D)[::-1].copy()
    got = _dtypes_of(z0, z1, np.float32)
    assert got == dict.fromkeys(got, jnp.float32), got


def test_path_in_float64_keeps_float64_precision():
    with jax.enable_x64(True):
        pts = jnp.asarray([[0.0], [1e-9]], jnp.float64)
        mid = move.path(pts, num_points=3)[1, 0]
        assert mid.dtype == jnp.float64 and abs(float(mid) - 5e-10) < 1e-20
        mid = move.slerp(jnp.asarray([1.0, 0.0]), jnp.asarray([1.0, 1e-9]), 0.5)
        np.testing.assert_allclose(np.asarray(mid), [1.0, 5e-10], rtol=1e-9)
