"""move.fit_uncertainty and the variance-aware metric: the RBF precision network against numpy and
scipy's optimiser, Lloyd's k-means against sklearn, the expected metric against numpy finite
differences, and the variance-aware geodesic that goes round a hole in the data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from sklearn.cluster import KMeans

from latentjax import move
from latentjax.errors import InputError
from latentjax.move import _uncertainty


def _rbf_std(z, centers, bandwidths, weights, floor):
    """numpy: ``(W^T v(z) + floor)^-1/2`` with ``v_k = exp(-lambda_k |z - c_k|^2)``; z ``(m, d)``."""
    d2 = ((z[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
    return 1.0 / np.sqrt(np.exp(-bandwidths[None, :] * d2) @ weights + floor)


@pytest.fixture(scope="module")
def line_fit():
    """1-D latents in [-1, 1], a decoder whose residual grows linearly from 0.05 to 0.25."""
    z = np.linspace(-1.0, 1.0, 200, dtype=np.float32)[:, None]
    resid = (0.15 + 0.1 * z).astype(np.float32)  # (200, 1)

    def decode(z):
        return jnp.stack([jnp.sin(z[0]), 0.5 * z[0]])

    targets = np.concatenate([np.sin(z), 0.5 * z], axis=1) + np.concatenate([resid, -resid], axis=1)
    u = move.fit_uncertainty(
        decode, jax.random.key(0), z, targets, num_centers=6, num_steps=400, max_std=2.0, min_std=0.01
    )
    return z, targets, np.asarray(targets - np.concatenate([np.sin(z), 0.5 * z], axis=1)), u


def test_rbf_precision_formula_and_growth_off_the_data(line_fit):
    z, _, resid, u = line_fit
    c, lam, w, floor = (np.asarray(a, np.float64) for a in u[:4])
    # The bandwidths from the clusters' mean distances to their centres (numpy assignment).
    a = np.argmin(np.abs(z - c[:, 0][None, :]), axis=1)
    spread = np.array([np.mean(np.abs(z[a == k, 0] - c[k, 0])) for k in range(len(c))])
    np.testing.assert_allclose(lam, 0.5 / spread**2, rtol=1e-4)
    assert float(floor) == pytest.approx(0.25)  # max_std 2
    grid = np.linspace(-4.0, 4.0, 81, dtype=np.float32)[:, None]
    std = np.stack([np.asarray(move.uncertainty_std(u, g)) for g in grid])
    np.testing.assert_allclose(std, _rbf_std(grid.astype(np.float64), c, lam, w, float(floor)), rtol=1e-4)
    # On the data the std is of the residuals' size (0.05 .. 0.25, growing left to right; between
    # the RBF centres it rises somewhat, as the construction does) and far below max_std.
    on = np.stack([np.asarray(move.uncertainty_std(u, zz)) for zz in z])[:, 0]
    assert 0.04 < on.min() and on.max() < 0.6  # the largest at the data's edge, z = 1
    assert on[:66].mean() < on[-66:].mean()
    right = std[grid[:, 0] >= 1.0, 0]
    left = std[grid[:, 0] <= -1.0, 0]
    assert np.all(np.diff(right) >= -1e-6) and np.all(np.diff(left) <= 1e-6)  # grows away from the data
    np.testing.assert_allclose(std[[0, -1]], 2.0, rtol=1e-3)


def test_weights_maximise_the_likelihood_like_scipy(line_fit):
    """The minorise-maximise updates reach the optimum L-BFGS-B finds for the same concave problem."""
    z, _, resid, u = line_fit
    c, lam, w, floor = (np.asarray(a, np.float64) for a in u[:4])
    v = np.exp(-lam[None, :] * (z.astype(np.float64) - c[:, 0][None, :]) ** 2)  # (n, K)
    sq = resid.astype(np.float64) ** 2 + 1e-4

    def neg_ll(wp, p):
        beta = v @ wp + floor
        return -np.mean(0.5 * np.log(beta) - 0.5 * beta * sq[:, p])

    trace = np.asarray(u.log_likelihoods)
    assert np.all(np.diff(trace) >= -1e-6 * np.abs(trace[:-1]))  # each update increases it
    for p in range(2):
        ref = scipy.optimize.minimize(
            neg_ll, np.ones(len(c)), args=(p,), method="L-BFGS-B", bounds=[(0, None)] * len(c)
        )
        assert neg_ll(w[:, p], p) <= ref.fun + 1e-4 * abs(ref.fun)


def test_lloyd_matches_sklearn(key):
    x = np.array(jax.random.normal(key, (300, 3)))
    x[:100] += 4.0
    x[100:200] -= 4.0
    start = x[[0, 150, 250, 251]]
    ours = np.asarray(_uncertainty._lloyd(jnp.asarray(x), jnp.asarray(start), 30))
    ref = KMeans(4, init=start, n_init=1, max_iter=30, tol=0.0, algorithm="lloyd").fit(x).cluster_centers_
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_expected_metric_matches_numpy_finite_differences(key):
    ka, kb, kz = jax.random.split(key, 3)
    a = np.asarray(jax.random.normal(ka, (2, 5)), np.float64)
    b = np.asarray(jax.random.normal(kb, (5,)), np.float64)

    def decode(z):
        return jax.nn.sigmoid(z @ a.astype(np.float32) + b.astype(np.float32))

    zs = np.asarray(jax.random.normal(kz, (60, 2)))
    targets = np.asarray(jax.vmap(decode)(zs)) + 0.1 * np.sin(7 * zs[:, :1])
    u = move.fit_uncertainty(decode, jax.random.key(3), zs, targets, num_centers=5, num_steps=50)
    c, lam, w, floor = (np.asarray(t, np.float64) for t in u[:4])

    def f(z):  # numpy float64: (mu, sigma)
        mu = 1.0 / (1.0 + np.exp(-(z @ a + b)))
        return np.concatenate([mu, _rbf_std(z[None], c, lam, w, float(floor))[0]])

    metric = jax.jit(lambda z: move.expected_metric(decode, u, z))
    for z in (np.array([0.3, -0.2]), np.array([1.5, 1.0]), np.array([-2.5, 0.5])):
        h = 1e-6
        jac = np.stack([(f(z + h * e) - f(z - h * e)) / (2 * h) for e in np.eye(2)], axis=1)
        ref = jac.T @ jac
        got = np.asarray(metric(jnp.asarray(z, jnp.float32)))
        np.testing.assert_allclose(got, ref, rtol=2e-3, atol=2e-4 * np.abs(ref).max())


# A toy with a hole: 8x8 images of a wedge pointing in the latent's direction, dimming to a flat
# grey towards z = 0 (the decoder's "blur"); the training latents lie on the unit circle only.
_YX = np.stack(np.meshgrid(np.arange(8) - 3.5, np.arange(8) - 3.5, indexing="ij"), -1).reshape(64, 2)
_DIRS = (_YX / np.linalg.norm(_YX, axis=1, keepdims=True)).astype(np.float32)


def _wedge(z):
    return jax.nn.sigmoid(8.0 * (_DIRS @ z[::-1] - 0.5)).reshape(8, 8, 1)


@pytest.fixture(scope="module")
def hole():
    angles = np.linspace(0.0, 2 * np.pi, 240, endpoint=False)
    z = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    images = np.asarray(jax.vmap(_wedge)(jnp.asarray(z)))
    u = move.fit_uncertainty(_wedge, jax.random.key(0), z, images, num_centers=24, num_steps=100)
    z0, z1 = jnp.array([1.0, 0.0]), jnp.array([np.cos(2.4), np.sin(2.4)], jnp.float32)
    kw = dict(num_points=14, num_steps=500, learning_rate=2e-2, key=jax.random.key(1), init_noise=0.05)
    plain = move.geodesic(_wedge, z0, z1, **kw)
    aware = move.geodesic(_wedge, z0, z1, uncertainty=u, **kw)
    return images, u, z0, z1, plain, aware


def test_variance_aware_geodesic_is_a_minimiser(hole):
    """Started on the data path plus noise, its energy ends below the straight line's and the data
    path's under the same metric, and the reported energy is numpy's (n - 1) sum |d mu|^2 +
    |d sigma|^2 of the returned points."""
    _, u, z0, z1, _, aware = hole
    line = move.path(jnp.stack([z0, z1]), num_points=14)
    decode = move.variance_aware(_wedge, u)
    e_line = float(move.curve_energy(decode, line))
    e_data = float(move.curve_energy(decode, move.data_path(u, z0, z1, num_points=14)))
    e_best = float(aware.energies.min())
    assert e_best < 0.5 * e_line  # the line crosses the hole; the geodesic does not
    assert e_best < 0.9 * e_data and float(aware.energies[0]) > e_data  # noise on the start
    c, lam, w, floor = (np.asarray(t, np.float64) for t in u[:4])
    pts = np.asarray(aware.points, np.float64)
    mu = np.stack([np.asarray(_wedge(jnp.asarray(p, jnp.float32))).ravel() for p in pts]).astype(np.float64)
    sigma = _rbf_std(pts, c, lam, w, float(floor))
    ref = 13 * (np.sum(np.diff(mu, axis=0) ** 2) + np.sum(np.diff(sigma, axis=0) ** 2))
    np.testing.assert_allclose(e_best, ref, rtol=1e-3)


def test_variance_aware_geodesic_stays_on_the_data(hole):
    images, _, _, _, plain, aware = hole
    frames = {k: np.asarray(jax.vmap(_wedge)(g.points)) for k, g in (("plain", plain), ("aware", aware))}
    d = {k: move.on_data_diagnostics(f, images) for k, f in frames.items()}
    # The plain geodesic cuts through the dim centre; the variance-aware one goes round the circle.
    assert float(d["plain"].excess) > 0.1
    assert float(d["aware"].excess) < 0.25 * float(d["plain"].excess)
    assert float(d["aware"].mean_distance) < 0.5 * float(d["plain"].mean_distance)
    radius = {
        k: np.linalg.norm(np.asarray(g.points), axis=1) for k, g in (("plain", plain), ("aware", aware))
    }
    assert radius["plain"].min() < 0.5 < 0.7 < radius["aware"].min()  # the data: radius 1


def test_bad_arguments():
    z = np.zeros((4, 2), np.float32)
    with pytest.raises(InputError, match="fit_uncertainty: targets must be floats"):
        move.fit_uncertainty(lambda z: z, jax.random.key(0), z, np.zeros((4, 2), np.uint8))
    with pytest.raises(InputError, match="num_centers must be at most the 4"):
        move.fit_uncertainty(lambda z: z, jax.random.key(0), z, z, num_centers=5)
    with pytest.raises(InputError, match=r"targets must be \(n, \*decode's output shape\)"):
        move.fit_uncertainty(lambda z: z, jax.random.key(0), z, np.zeros((4, 3), np.float32), num_centers=2)
    with pytest.raises(InputError, match="max_std must be positive"):
        move.fit_uncertainty(lambda z: z, jax.random.key(0), z, z, num_centers=2, max_std=0.0)
