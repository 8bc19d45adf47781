"""Properties of latentjax.transport: the point-cloud Sinkhorn divergence is translation and
permutation invariant and scales by s^2 (with epsilon scaled by s^2), the barycentric map is
equivariant, float dtypes are kept, and images of different sizes are refused."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from latentjax import transport
from latentjax.errors import LatentJaxError

PROPS = settings.get_profile("latentjax-properties")
N, M, D = 16, 12, 2
EPS = 0.1
seeds = st.integers(0, 2**32 - 1)
offsets = hnp.arrays(np.float64, D, elements=st.floats(-1e4, 1e4, allow_subnormal=False))


def _clouds(seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, D)), rng.normal(size=(M, D)) + [1.0, 0.5]


def _f32(a):
    return np.asarray(a, np.float64).astype(np.float32)


@settings(PROPS, max_examples=8)
@given(seed=seeds, offset=offsets)
def test_ot_distance_is_translation_invariant(seed, offset):
    x, y = _clouds(seed)
    base = float(transport.ot_distance(_f32(x), _f32(y), epsilon=EPS))
    moved = float(transport.ot_distance(_f32(x + offset), _f32(y + offset), epsilon=EPS))
    # float32 rounds the moved points by up to |offset| * 6e-8; Sinkhorn stops at ott's threshold.
    np.testing.assert_allclose(moved, base, rtol=5e-3, atol=1e-4 + 1e-6 * np.abs(offset).max())


@settings(PROPS, max_examples=2)  # each scale compiles ott's solver for its epsilon (seconds)
@given(seed=seeds, scale=st.sampled_from([1e-3, 1e-1, 10.0, 1e3]))
def test_ot_distance_scales_by_the_square_of_the_scale(seed, scale):
    x, y = _clouds(seed)
    base = float(transport.ot_distance(_f32(x), _f32(y), epsilon=EPS))
    scaled = float(transport.ot_distance(_f32(scale * x), _f32(scale * y), epsilon=EPS * scale**2))
    np.testing.assert_allclose(scaled, scale**2 * base, rtol=2e-2)


@settings(PROPS, max_examples=5)
@given(seed=seeds, px=st.permutations(range(N)), py=st.permutations(range(M)))
def test_ot_distance_is_invariant_under_permutations(seed, px, py):
    x, y = (_f32(a) for a in _clouds(seed))
    np.testing.assert_allclose(
        float(transport.ot_distance(x[np.asarray(px)], y[np.asarray(py)], epsilon=EPS)),
        float(transport.ot_distance(x, y, epsilon=EPS)),
        rtol=1e-3,
        atol=1e-5,
    )


@settings(PROPS, max_examples=6)
@given(seed=seeds, scale=st.floats(-3, 3).map(lambda e: 10.0**e), offset=offsets)
def test_transport_points_is_equivariant_under_translation_and_scaling(seed, scale, offset):
    x, y = _clouds(seed)
    base = np.asarray(transport.transport_points(_f32(x), _f32(y)), np.float64)
    moved = np.asarray(transport.transport_points(_f32(scale * x + offset), _f32(scale * y + offset)))
    # relative_epsilon is scale free, so the map commutes with x -> s x + o.
    np.testing.assert_allclose(
        (moved - offset) / scale, base, atol=1e-2 + 1e-6 * np.abs(offset).max() / scale
    )


@settings(PROPS, max_examples=4)
@given(seed=seeds, px=st.permutations(range(N)), py=st.permutations(range(M)))
def test_transport_points_is_permutation_equivariant(seed, px, py):
    x, y = (_f32(a) for a in _clouds(seed))
    px, py = np.asarray(px), np.asarray(py)
    base = np.asarray(transport.transport_points(x, y))
    np.testing.assert_allclose(transport.transport_points(x[px], y[py]), base[px], atol=1e-3)


def test_point_cloud_functions_keep_float32_and_float64():
    x, y = (_f32(a) for a in _clouds(0))
    assert transport.ot_distance(x, y, epsilon=EPS).dtype == jnp.float32
    assert transport.transport_points(x, y).dtype == jnp.float32
    with jax.enable_x64(True):
        x, y = (a.astype(np.float64) for a in _clouds(0))
        assert transport.ot_distance(x, y, epsilon=EPS).dtype == jnp.float64
        assert transport.transport_points(x, y).dtype == jnp.float64


@settings(PROPS, max_examples=4)
@given(h=st.integers(4, 9), w=st.integers(4, 9), dh=st.integers(0, 2), dw=st.integers(0, 2))
def test_images_of_different_sizes_raise_a_latentjax_error(h, w, dh, dw):
    a, b = np.zeros((h, w)), np.zeros((h + dh, w + dw))
    a[1, 1] = b[2, 2] = 1.0
    if dh == dw == 0:
        b = b[:, :-1]
    with pytest.raises(LatentJaxError, match="image"):
        transport.wasserstein_interpolate([a, b], [0.5, 0.5])
    with pytest.raises(LatentJaxError, match="image"):
        transport.displacement_interpolate(a, b, [0.5])
