"""Exact kNN against brute-force numpy."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse

from latentjax.errors import InputError
from latentjax.look import neighbors, tsne, umap


def _brute(x, q=None, k=5):
    self_query = q is None
    q = x if self_query else q
    d = np.linalg.norm(q[:, None, :].astype(np.float64) - x[None].astype(np.float64), axis=-1)
    if self_query:
        np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, axis=1)


@pytest.mark.parametrize("block_size", [7, 64, 1024])
def test_knn_self_equals_brute_force(block_size):
    x = np.random.default_rng(0).normal(size=(203, 6)).astype(np.float32)
    nb = neighbors.knn(x, k=9, block_size=block_size)
    idx, dist = _brute(x, k=9)
    assert nb.indices.dtype == jnp.int32 and nb.distances.dtype == jnp.float32
    assert nb.indices.shape == (203, 9)
    np.testing.assert_array_equal(np.asarray(nb.indices), idx)
    np.testing.assert_allclose(np.asarray(nb.distances), dist, rtol=1e-5, atol=1e-5)
    assert not np.any(np.asarray(nb.indices) == np.arange(203)[:, None])


def test_knn_queries_equal_brute_force():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(150, 4)).astype(np.float32)
    q = rng.normal(size=(37, 4)).astype(np.float32)
    nb = neighbors.knn(x, k=150, queries=q, block_size=16)
    idx, dist = _brute(x, q, k=150)
    np.testing.assert_array_equal(np.asarray(nb.indices), idx)
    np.testing.assert_allclose(np.asarray(nb.distances), dist, rtol=1e-5, atol=1e-5)


def test_knn_query_on_data_includes_self_at_distance_zero():
    x = np.random.default_rng(2).normal(size=(50, 3)).astype(np.float32) * 100
    nb = neighbors.knn(x, k=1, queries=x)
    np.testing.assert_array_equal(np.asarray(nb.indices[:, 0]), np.arange(50))
    np.testing.assert_array_equal(np.asarray(nb.distances[:, 0]), 0.0)


def test_knn_doctest_example():
    nb = neighbors.knn(jnp.array([[0.0], [1.0], [3.0]]), k=1)
    assert nb.indices.ravel().tolist() == [1, 0, 1]
    assert nb.distances.ravel().tolist() == [1.0, 1.0, 2.0]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(x=np.zeros((5, 2)), k=5),
        dict(x=np.zeros((5, 2)), k=0),
        dict(x=np.zeros(5), k=1),
        dict(x=np.zeros((5, 2)), k=1, queries=np.zeros((3, 3))),
    ],
)
def test_knn_bad_input(kwargs):
    with pytest.raises(InputError, match="knn"):
        neighbors.knn(**kwargs)


def test_laplacian_eigenmaps_span_the_dense_eigenvectors():
    x = np.random.default_rng(0).normal(size=(150, 5)).astype(np.float32)
    g = umap.fuzzy_graph(x, n_neighbors=10)
    y = np.asarray(neighbors.laplacian_eigenmaps(g, num_components=2))
    w = scipy.sparse.csr_matrix(
        (np.asarray(g.weights), (np.asarray(g.rows), np.asarray(g.cols))), shape=(150, 150)
    )
    dinv = 1 / np.sqrt(np.asarray(w.sum(1)).ravel())
    lap = np.eye(150) - dinv[:, None] * w.toarray() * dinv[None, :]
    vals, vecs = np.linalg.eigh(lap)
    # Same subspace as the 2nd and 3rd eigenvectors of the normalised Laplacian.
    proj = vecs[:, 1:3] @ vecs[:, 1:3].T @ y
    np.testing.assert_allclose(proj, y, atol=2e-3)


@pytest.mark.parametrize(
    "build", [lambda x: tsne.affinities(x, perplexity=5.0), lambda x: umap.fuzzy_graph(x)]
)
def test_tsne_and_umap_build_the_same_kind_of_graph(build):
    x = np.random.default_rng(3).normal(size=(80, 4)).astype(np.float32)
    g = build(x)
    assert isinstance(g, neighbors.Graph) and g.num_points == 80
    rows, cols, w = (np.asarray(a) for a in g)
    assert rows.dtype == cols.dtype == np.int32 and w.dtype == np.float32
    order = np.lexsort((cols, rows))
    np.testing.assert_array_equal(order, np.arange(rows.size))  # sorted by row, then column
    dense = np.zeros((80, 80))
    dense[rows, cols] = w
    np.testing.assert_array_equal(dense, dense.T)  # symmetric
    assert np.all(w > 0) and not np.any(rows == cols)
