"""move.on_data_diagnostics against a numpy brute force and scipy's Laplacian; move.data_path on a ring."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

from latentjax import move
from latentjax.errors import InputError


def test_on_data_diagnostics_matches_numpy(key):
    k1, k2 = jax.random.split(key)
    train = np.asarray(jax.random.uniform(k1, (50, 6, 5, 2)) * 255).astype(np.uint8)
    frames = np.array(jax.random.uniform(k2, (7, 6, 5, 2)), np.float32)
    frames[0] = train[3] / 255.0  # an endpoint on the data
    d = move.on_data_diagnostics(frames, train, margin=0.2)
    t = train.reshape(50, -1).astype(np.float64) / 255.0
    f = frames.reshape(7, -1).astype(np.float64)
    dist = np.sqrt(((f[:, None, :] - t[None]) ** 2).mean(-1))
    np.testing.assert_array_equal(d.nearest, dist.argmin(1))
    np.testing.assert_allclose(d.distance, dist.min(1), atol=1e-5)
    assert float(d.distance[0]) < 1e-5
    # scipy's 5-point Laplacian (its sign is the opposite of ours; the magnitude is what counts).
    lap = np.stack([[scipy.ndimage.laplace(x[..., c].astype(np.float64)) for c in range(2)] for x in frames])
    sharp = np.abs(lap[:, :, 1:-1, 1:-1]).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(d.sharpness, sharp, rtol=1e-5)
    np.testing.assert_allclose(d.saturation, ((f <= 0.2) | (f >= 0.8)).mean(1), rtol=1e-6)
    np.testing.assert_allclose(d.excess, dist.min(1).max() - max(dist.min(1)[0], dist.min(1)[-1]), atol=1e-5)
    np.testing.assert_allclose(d.sharpness_ratio, sharp[1:-1].mean() / sharp[[0, -1]].mean(), rtol=1e-5)
    np.testing.assert_allclose(d.mean_distance, dist.min(1).mean(), atol=1e-5)


def test_on_data_diagnostics_bad_arguments():
    train = np.zeros((4, 5, 5, 1), np.uint8)
    with pytest.raises(InputError, match="on_data_diagnostics: frames must hold a path of at least 2"):
        move.on_data_diagnostics(np.zeros((1, 5, 5, 1), np.float32), train)
    with pytest.raises(InputError, match="margin must be in"):
        move.on_data_diagnostics(np.zeros((3, 5, 5, 1), np.float32), train, margin=0.0)
    with pytest.raises(ValueError, match="train_images"):
        move.on_data_diagnostics(np.zeros((3, 5, 5, 1), np.float32), np.zeros((4, 6, 5, 1), np.uint8))


def test_data_path_goes_round_a_ring_of_centres():
    """Centres on a circle: the shortest chain between opposite points follows the circle (scipy's
    Dijkstra on the same k-NN graph gives the same chain), resampled at equal arc length."""
    import scipy.sparse.csgraph

    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    c = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    u = move.Uncertainty(jnp.asarray(c), jnp.ones(16), jnp.ones((16, 1)), jnp.array(1.0), jnp.zeros(1))
    z0, z1 = jnp.asarray(c[0] * 1.1), jnp.asarray(c[6] * 1.1)
    p = np.asarray(move.data_path(u, z0, z1, num_points=25, num_neighbors=2))
    np.testing.assert_allclose(p[[0, -1]], np.stack([z0, z1]))
    r = np.linalg.norm(p[1:-1], axis=1)
    assert r.min() > 0.9  # round the ring, not across it
    d2 = ((c[:, None] - c[None]) ** 2).sum(-1)
    kth = np.sort(d2, 1)[:, 2]
    graph = np.where((d2 <= kth[:, None]) | (d2 <= kth[None, :]), d2, 0.0)
    _, pred = scipy.sparse.csgraph.dijkstra(graph, indices=0, return_predecessors=True)
    chain, j = [6], 6
    while j != 0:
        j = pred[j]
        chain.append(j)
    for centre in c[chain[::-1]]:  # every centre of scipy's chain lies on the path
        assert np.min(np.linalg.norm(p - centre, axis=1)) < 0.15
    steps = np.linalg.norm(np.diff(p, axis=0), axis=1)  # equal arc length along the chain: a chord
    np.testing.assert_allclose(steps, steps.max(), rtol=0.05)  # across one of its corners is shorter
