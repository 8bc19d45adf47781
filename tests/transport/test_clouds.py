"""transport point clouds: Sinkhorn divergence against exact W2 (POT) at any offset and scale, the OT
map, barycenters against their exact mean and POT's exact free-support barycenter."""

import jax
import numpy as np
import pytest

from latentjax import transport
from latentjax.errors import InputError


def _clouds():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 2)), rng.normal(size=(50, 2)) * 0.5 + [2.0, -1.0]


def test_ot_distance_matches_exact_w2():
    ot = pytest.importorskip("ot")
    x, y = _clouds()
    exact = ot.emd2(np.full(40, 1 / 40), np.full(50, 1 / 50), ot.dist(x, y))
    got = float(transport.ot_distance(x, y, epsilon=1e-3))
    assert abs(got - exact) / exact < 0.02  # the entropic bias at this epsilon: 1.3 %
    assert abs(float(transport.ot_distance(x, x, epsilon=1e-2))) < 1e-3


@pytest.mark.parametrize("offset", [0.0, 1e2, 1e4])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_ot_distance_invariant_to_translation_and_scale(offset, scale):
    """float32 ``|x|^2 + |y|^2 - 2 x.y`` loses a unit spread at an offset of 1e4; the clouds are
    centred first. The divergence scales by ``s^2`` (epsilon with it), against POT's exact W2 on
    the moved clouds in float64."""
    ot = pytest.importorskip("ot")
    x, y = _clouds()
    base = float(transport.ot_distance(x, y, epsilon=1e-3))
    xs, ys = scale * (x + offset), scale * (y + offset)
    exact = ot.emd2(np.full(40, 1 / 40), np.full(50, 1 / 50), ot.dist(xs, ys))
    got = float(transport.ot_distance(xs, ys, epsilon=1e-3 * scale**2))
    assert abs(got - exact) / exact < 0.02
    np.testing.assert_allclose(got / scale**2, base, rtol=1e-4)
    # float32 clouds: only the rounding of the inputs themselves (1e-3 at 1e4) is left.
    got32 = float(
        transport.ot_distance(xs.astype(np.float32), ys.astype(np.float32), epsilon=1e-3 * scale**2)
    )
    np.testing.assert_allclose(got32 / scale**2, base, rtol=1e-3)


def test_transport_points_matches_target_distribution():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 2))
    y = rng.normal(size=(200, 2)) * [3.0, 0.5] + [4.0, 0.0]
    moved = np.asarray(transport.transport_points(x, y, relative_epsilon=1e-3))
    # OT matches the spread of the target, a mean shift keeps the source's.
    np.testing.assert_allclose(moved.mean(0), y.mean(0), atol=0.05)
    np.testing.assert_allclose(moved.std(0), y.std(0), rtol=0.1)
    shifted = x + (y.mean(0) - x.mean(0))
    assert transport.ot_distance(moved, y) < 0.2 * transport.ot_distance(shifted, y)
    # Translating both clouds translates the map.
    far = np.asarray(transport.transport_points(x + 1e4, y + 1e4, relative_epsilon=1e-3), np.float64)
    np.testing.assert_allclose(far - 1e4, moved, atol=2e-3)


def test_point_cloud_barycenter(key):
    rng = np.random.default_rng(2)
    c = rng.normal(size=(2, 128, 3)) * 0.3
    c[1] += [2.0, 0.0, 0.0]
    z = np.asarray(transport.point_cloud_barycenter(key, c, num_points=64, weights=[0.25, 0.75]), np.float64)
    assert z.shape == (64, 3)
    # Each barycenter point is the weighted mean of its barycentric projections, so the mean is
    # exactly the weighted mean of the inputs' means, up to Sinkhorn's marginal tolerance (1e-3).
    np.testing.assert_allclose(z.mean(0), 0.25 * c[0].mean(0) + 0.75 * c[1].mean(0), atol=2e-3)
    for offset, scale in ((1e4, 1.0), (0.0, 1e-3), (0.0, 1e3), (1e4, 1e3)):
        moved = transport.point_cloud_barycenter(
            key, scale * (c + offset), num_points=64, weights=[0.25, 0.75], epsilon=1e-2 * scale**2
        )
        np.testing.assert_allclose(np.asarray(moved, np.float64) / scale - offset, z, atol=2e-3)
    with pytest.raises(InputError, match="transport.point_cloud_barycenter: clouds"):
        transport.point_cloud_barycenter(key, c[0], num_points=8)


def test_point_cloud_barycenter_near_pots_exact_one(key):
    """POT's exact free-support barycenter (from our points) sets the objective to beat."""
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(2)
    c = rng.normal(size=(2, 128, 3)) * 0.3
    c[1] += [2.0, 0.0, 0.0]
    w = np.array([0.25, 0.75])
    z = np.asarray(transport.point_cloud_barycenter(key, c, num_points=64, weights=w), np.float64)
    exact = ot.lp.free_support_barycenter(list(c), [np.full(128, 1 / 128)] * 2, z.copy(), weights=w)

    def objective(p):
        a = np.full(len(p), 1 / len(p))
        return sum(wk * ot.emd2(a, np.full(128, 1 / 128), ot.dist(p, ck)) for wk, ck in zip(w, c))

    assert objective(z) <= 1.01 * objective(exact)


def test_bad_clouds_raise_input_error(key):
    with pytest.raises(InputError, match="transport.ot_distance: x and y have different dimensions"):
        transport.ot_distance(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(InputError, match="transport.transport_points: x_source must be a \\(n, d\\)"):
        transport.transport_points(np.zeros(3), np.zeros((3, 3)))
    with pytest.raises(InputError, match="transport.ot_distance: x contains 2 NaN"):
        transport.ot_distance(np.full((1, 2), np.nan), np.zeros((3, 2)))
    with pytest.raises(InputError, match="transport.point_cloud_barycenter: clouds contains"):
        transport.point_cloud_barycenter(key, np.full((2, 4, 2), np.inf), num_points=2)
    with pytest.raises(InputError, match="transport.point_cloud_barycenter: num_points must be"):
        transport.point_cloud_barycenter(key, np.zeros((2, 4, 2)), num_points=2.5)
    with pytest.raises(TypeError):
        transport.transport_points(np.zeros((3, 2)), np.ones((3, 2)), epsilon=1e-2)  # relative_epsilon
    assert jax.numpy.zeros(1).dtype == np.float32  # nothing switched x64 on
