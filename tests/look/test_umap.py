"""UMAP against umap-learn: kernel fit, fuzzy graph, sampling schedule, layout update, quality."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse

from latentjax.errors import InputError
from latentjax.look import _umap_kernels, neighbors, umap


def _umap_learn():
    return pytest.importorskip("umap.umap_")


def _trust(x, y, k=10):
    from sklearn.manifold import trustworthiness

    return trustworthiness(np.asarray(x), np.asarray(y), n_neighbors=k)


def _blobs(n=300, d=8, centers=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % centers
    means = rng.normal(scale=6.0, size=(centers, d))
    return (means[labels] + rng.normal(size=(n, d))).astype(np.float32), labels


@pytest.mark.parametrize("spread, min_dist", [(1.0, 0.1), (1.0, 0.0), (1.0, 0.5), (2.0, 0.3)])
def test_find_ab_equals_umap_learn(spread, min_dist):
    a, b = umap.find_ab(spread=spread, min_dist=min_dist)
    ra, rb = _umap_learn().find_ab_params(spread, min_dist)
    np.testing.assert_allclose([a, b], [ra, rb], rtol=1e-6)


def _umap_learn_graph(x, nb, n_neighbors):
    # umap-learn's kNN lists the point itself first, at distance 0.
    n = x.shape[0]
    idx = np.concatenate([np.arange(n)[:, None], np.asarray(nb.indices)], axis=1).astype(np.int64)
    dist = np.concatenate([np.zeros((n, 1)), np.asarray(nb.distances)], axis=1).astype(np.float32)
    graph, sigmas, rhos = _umap_learn().fuzzy_simplicial_set(
        x, n_neighbors, np.random.RandomState(0), "euclidean", knn_indices=idx, knn_dists=dist
    )
    return graph.tocsr(), sigmas, rhos


def test_fuzzy_graph_matches_umap_learn():
    x, _ = _blobs(n=200, d=5)
    x[7] = x[3]  # a duplicate point: rho must skip the zero distance
    k = 10
    nb = neighbors.knn(x, k=k - 1)
    g = umap.fuzzy_graph_from_knn(nb.indices, nb.distances, n_neighbors=k)
    c = umap.calibrate(nb.distances, n_neighbors=k)
    ref, sigmas, rhos = _umap_learn_graph(x, nb, k)
    np.testing.assert_allclose(c.rho, rhos, rtol=1e-6)
    np.testing.assert_allclose(c.sigma, sigmas, rtol=1e-4)
    ours = scipy.sparse.csr_matrix(
        (np.asarray(g.weights), (np.asarray(g.rows), np.asarray(g.cols))), shape=ref.shape
    )
    assert ours.nnz == ref.nnz
    np.testing.assert_allclose(ours.toarray(), ref.toarray(), atol=1e-5)
    assert np.all(np.diff(np.asarray(g.rows)) >= 0)
    # The end-to-end constructor gives the same graph.
    g2 = umap.fuzzy_graph(x, n_neighbors=k)
    np.testing.assert_array_equal(g2.cols, g.cols)


def test_calibration_hits_log2_k_and_vmap_equals_loop():
    x, _ = _blobs(n=120, d=6, seed=1)
    k = 15
    nb = neighbors.knn(x, k=k - 1)
    d = jnp.asarray(nb.distances)
    mean_all = jnp.sum(d) / (d.shape[0] * k)
    g = umap.calibrate(nb.distances, n_neighbors=k)
    psum = np.sum(
        np.where(d - g.rho[:, None] > 0, np.exp(-(d - g.rho[:, None]) / g.sigma[:, None]), 1.0), axis=1
    )
    np.testing.assert_allclose(psum, np.log2(k), atol=1e-3)
    one = jax.jit(
        lambda row: _umap_kernels.smooth_knn_dist(
            row, mean_all, target=jnp.log2(jnp.float32(k)), n_neighbors=k
        )
    )
    loop = np.array([one(d[i]) for i in range(5)])
    batched = np.array(jax.vmap(one)(d[:5])).T
    np.testing.assert_allclose(batched, loop, rtol=1e-6)


def test_schedule_fires_like_umap_learn():
    rng = np.random.default_rng(0)
    w = rng.uniform(0.01, 1.0, 500)
    w[0] = 1.0
    n_epochs = 200
    # umap-learn's loop (optimize_layout_euclidean): fire when epoch_of_next_sample <= n.
    eps = _umap_learn().make_epochs_per_sample(w, n_epochs)
    nxt = eps.copy()
    ref = np.zeros((n_epochs, w.size), bool)
    for n in range(n_epochs):
        ref[n] = nxt <= n
        nxt[ref[n]] += eps[ref[n]]
    rate = jnp.asarray(w / w.max(), jnp.float32)
    ours = np.array([_umap_kernels._fires(rate, jnp.int32(n)) for n in range(n_epochs)])
    assert np.mean(ours == ref) > 0.999
    np.testing.assert_allclose(ours.sum(0), ref.sum(0), atol=1)


def test_step_equals_parallel_move_other_update():
    """All edges firing, no repulsion: twice the head attraction = umap-learn's move_other."""
    x, _ = _blobs(n=60, d=4)
    g = umap.fuzzy_graph(x, n_neighbors=6)
    rng = np.random.default_rng(0)
    y = rng.uniform(0, 3, size=(60, 2)).astype(np.float32)
    a, b, alpha = 1.58, 0.9, 0.7
    sched = _umap_kernels.Schedule(g.rows, g.cols, jnp.ones_like(g.weights), jnp.zeros((60, 1), jnp.float32))
    state = umap.State(jnp.asarray(y), jnp.int32(3), jax.random.key(0), sched)
    out = umap.step(state, a=a, b=b, num_steps=10, learning_rate=alpha / 0.7)
    ref = y.astype(np.float64).copy()
    for j, k in zip(np.asarray(g.rows), np.asarray(g.cols)):
        diff = y[j].astype(np.float64) - y[k]
        d2 = diff @ diff
        coeff = -2 * a * b * d2 ** (b - 1) / (1 + a * d2**b)
        grad = np.clip(coeff * diff, -4, 4) * alpha
        ref[j] += grad
        ref[k] -= grad
    np.testing.assert_allclose(np.asarray(out.embedding), ref, rtol=1e-4, atol=1e-4)
    assert int(out.step) == 4


def test_negative_weights_match_umap_rate():
    x, _ = _blobs(n=100, d=4)
    g = umap.fuzzy_graph(x, n_neighbors=8)
    s = _umap_kernels.schedule(g, num_steps=200, negative_sample_rate=5)
    per_vertex = np.bincount(np.asarray(s.head), weights=np.asarray(s.rate), minlength=100)
    np.testing.assert_allclose(np.asarray(s.negative_weight).sum(1), 5 * per_vertex, rtol=1e-5)


def test_embed_separates_clusters_and_is_deterministic():
    x, labels = _blobs(n=300, d=8, centers=4)
    y = umap.embed(jax.random.key(0), x, num_steps=150)
    assert y.shape == (300, 2) and bool(jnp.all(jnp.isfinite(y)))
    nb = neighbors.knn(y, k=5)
    assert np.mean(labels[np.asarray(nb.indices)] == labels[:, None]) > 0.99
    assert _trust(x, y) > 0.9
    np.testing.assert_array_equal(y, umap.embed(jax.random.key(0), x, num_steps=150))


def test_disconnected_graph_falls_back(monkeypatch):
    x, _ = _blobs(n=80, d=3, centers=2)
    x[40:] += 1000.0
    g = umap.fuzzy_graph(x, n_neighbors=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y0 = umap.initialize(jax.random.key(0), g)
    assert any("disconnected" in str(w.message) for w in caught)
    assert y0.shape == (80, 2) and float(y0.min()) >= 0.0 and float(y0.max()) <= 10.0


def test_bad_input():
    with pytest.raises(InputError, match="x must be"):
        umap.fuzzy_graph(np.zeros(5), n_neighbors=3)
    with pytest.raises(InputError, match="n_neighbors"):
        umap.fuzzy_graph(np.zeros((5, 2)), n_neighbors=9)
    with pytest.raises(InputError, match="min_dist"):
        umap.find_ab(spread=1.0, min_dist=2.0)
    g = umap.fuzzy_graph(np.random.default_rng(0).normal(size=(20, 2)), n_neighbors=4)
    with pytest.raises(InputError, match="y0"):
        umap.optimize(jax.random.key(0), g, np.zeros((19, 2)), num_steps=5, a=1.0, b=1.0)
    with pytest.raises(InputError, match="num_steps"):
        umap.optimize(jax.random.key(0), g, np.zeros((20, 2)), num_steps=0, a=1.0, b=1.0)
    with pytest.raises(InputError, match="method"):
        umap.initialize(jax.random.key(0), g, method="tsvd")


@pytest.mark.slow
def test_fashion_mnist_trustworthiness_matches_umap_learn(data_dir):
    """2,000 real images, PCA-50: trustworthiness@10 within 0.01 of umap-learn's."""
    umap_pkg = pytest.importorskip("umap")
    from sklearn.decomposition import PCA

    from latentjax import data

    ds = data.load("fashion_mnist", data_dir=data_dir, limit=2000)
    x = ds.train_images[:2000].reshape(2000, -1).astype(np.float32) / 255.0
    x = PCA(50, random_state=0).fit_transform(x).astype(np.float32)
    ours = _trust(x, umap.embed(jax.random.key(0), x))
    ref = _trust(x, umap_pkg.UMAP(random_state=0).fit_transform(x))
    assert ours >= ref - 0.01, (ours, ref)
    assert ours > 0.97
