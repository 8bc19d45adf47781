"""transport point clouds: Sinkhorn divergence against exact W2 (POT), the OT map, barycenters."""

import numpy as np
import pytest

from latentjax import transport
from latentjax.errors import InputError


def test_ot_distance_matches_exact_w2():
    ot = pytest.importorskip("ot")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    y = rng.normal(size=(50, 2)) * 0.5 + [2.0, -1.0]
    exact = ot.emd2(np.full(40, 1 / 40), np.full(50, 1 / 50), ot.dist(x, y))
    got = float(transport.ot_distance(x, y, epsilon=1e-3))
    assert abs(got - exact) / exact < 0.02
    assert abs(float(transport.ot_distance(x, x, epsilon=1e-2))) < 1e-3


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


def test_point_cloud_barycenter(key):
    rng = np.random.default_rng(2)
    c = rng.normal(size=(2, 128, 3)) * 0.3
    c[1] += [2.0, 0.0, 0.0]
    z = np.asarray(transport.point_cloud_barycenter(key, c, num_points=64, weights=[0.25, 0.75]))
    np.testing.assert_allclose(z.mean(0), [1.5, 0.0, 0.0], atol=0.15)
    assert z.shape == (64, 3)
    with pytest.raises(InputError, match="transport.point_cloud_barycenter: clouds"):
        transport.point_cloud_barycenter(key, c[0], num_points=8)


def test_bad_clouds_raise_input_error():
    with pytest.raises(InputError, match="transport.ot_distance: x and y have different dimensions"):
        transport.ot_distance(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(InputError, match="transport.transport_points: x_source must be a \\(n, d\\)"):
        transport.transport_points(np.zeros(3), np.zeros((3, 3)))
    with pytest.raises(InputError, match="non-finite"):
        transport.ot_distance(np.full((3, 2), np.nan), np.zeros((3, 2)))
    with pytest.raises(TypeError):
        transport.transport_points(np.zeros((3, 2)), np.ones((3, 2)), epsilon=1e-2)  # relative_epsilon
