"""Exact kNN against brute-force numpy and sklearn, at any offset and scale, with ties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse
from sklearn.neighbors import NearestNeighbors

from latentjax.errors import InputError
from latentjax.look import neighbors, tsne, umap

OFFSETS = [0.0, 1e2, 1e3, 1e4]
SCALES = [1e-3, 1.0, 1e3]


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


@pytest.mark.parametrize("k", [1, 12, 40])
def test_knn_segmented_search_equals_brute_force(k):
    # Enough points that the candidates come from segment maxima (neighbors._best's two-stage
    # path), in tight clusters with exact duplicates (ties go to the smaller index), and a block
    # size that leaves a padded last block.
    rng = np.random.default_rng(5)
    centres = rng.normal(scale=4.0, size=(20, 8))
    x = (centres[rng.integers(0, 20, 2500)] + 0.05 * rng.normal(size=(2500, 8))).astype(np.float32)
    x[1000:1100] = x[:100]
    n_seg = -(-2500 // 16)
    assert n_seg > 2 * (k + 4 + k // 8 + 1)  # the two-stage path, whatever segment size it picks
    nb = neighbors.knn(x, k=k, block_size=300)
    idx, dist = _brute(x, k=k)
    np.testing.assert_allclose(np.asarray(nb.distances), dist, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(nb.indices), idx)
    q = x[::7] + np.float32(0.01)
    nb = neighbors.knn(x, k=k, queries=q, block_size=300)
    idx, dist = _brute(x, q, k=k)
    np.testing.assert_array_equal(np.asarray(nb.indices), idx)


def test_knn_query_on_data_includes_self_at_distance_zero():
    x = np.random.default_rng(2).normal(size=(50, 3)).astype(np.float32) * 100
    nb = neighbors.knn(x, k=1, queries=x)
    np.testing.assert_array_equal(np.asarray(nb.indices[:, 0]), np.arange(50))
    np.testing.assert_array_equal(np.asarray(nb.distances[:, 0]), 0.0)


def test_knn_doctest_example():
    nb = neighbors.knn(jnp.array([[0.0], [1.0], [3.0]]), k=1)
    assert nb.indices.ravel().tolist() == [1, 0, 1]
    assert nb.distances.ravel().tolist() == [1.0, 1.0, 2.0]


def _exact(q, x):
    """float64 distances; ``x - x[0]`` first, an exact translation of float32 data in float64."""
    q, x = (np.asarray(a, np.float64) - np.asarray(x, np.float64)[0] for a in (q, x))
    return np.sqrt(np.sum((q[:, None, :] - x[None]) ** 2, axis=-1))


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("offset", OFFSETS)
def test_knn_equals_sklearn_at_any_offset_and_scale(offset, scale):
    # The expansion |q|^2 + |x|^2 - 2 q.x without centring changed 53 % of the neighbours at +1e3.
    g = np.random.default_rng(4).normal(size=(400, 6))
    x = (g * scale + offset).astype(np.float32)
    nb = neighbors.knn(x, k=10, block_size=128)
    ref_dist, ref_idx = NearestNeighbors(n_neighbors=10).fit(x.astype(np.float64) - x[0]).kneighbors()
    ours = np.asarray(nb.indices)
    # Our neighbours are at exactly the reference distances (a k-nearest set, up to ties) ...
    np.testing.assert_allclose(np.take_along_axis(_exact(x, x), ours, axis=1), ref_dist, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(nb.distances), ref_dist, rtol=1e-6, atol=0)
    # ... and the same indices wherever no two of the k + 1 nearest distances tie (at 1e4 and
    # scale 1e-3, float32 holds only a few values per coordinate: most rows tie).
    d = np.sort(_exact(x, x) + np.diag(np.full(400, np.inf)), axis=1)[:, :11]
    untied = np.all(np.diff(d, axis=1) > 0, axis=1)
    if offset <= scale * 1e3:
        assert untied.mean() > 0.95
    np.testing.assert_array_equal(ours[untied], ref_idx[untied])


@pytest.mark.parametrize("offset", [1e3, 1e4])
def test_knn_queries_at_an_offset_equal_sklearn(offset):
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(300, 3)) + offset).astype(np.float32)
    q = (rng.normal(size=(40, 3)) + offset).astype(np.float32)
    nb = neighbors.knn(x, k=7, queries=q, block_size=16)
    nn = NearestNeighbors(n_neighbors=7).fit(x.astype(np.float64) - x[0])
    ref_dist, ref_idx = nn.kneighbors(q.astype(np.float64) - x[0])
    np.testing.assert_array_equal(np.asarray(nb.indices), ref_idx)
    np.testing.assert_allclose(np.asarray(nb.distances), ref_dist, rtol=1e-6)


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_knn_breaks_ties_by_index_on_an_integer_grid(offset):
    # Every point of a grid has 4 neighbours at distance 1, 4 at sqrt 2, ...: ties go to the
    # smaller index, as a stable sort of the float64 distances.
    grid = np.stack(np.meshgrid(np.arange(9), np.arange(7), indexing="ij"), -1).reshape(-1, 2)
    x = (grid + offset).astype(np.float32)
    nb = neighbors.knn(x, k=12, block_size=10)
    d = _exact(x, x) + np.diag(np.full(len(x), np.inf))
    idx = np.argsort(d, axis=1, kind="stable")[:, :12]
    np.testing.assert_array_equal(np.asarray(nb.indices), idx)
    np.testing.assert_allclose(np.asarray(nb.distances), np.take_along_axis(d, idx, axis=1), rtol=1e-7)


def test_knn_keeps_float64_under_x64_and_promotes_ints():
    x = np.random.default_rng(6).normal(size=(120, 5)) * 1e-3 + 1e6
    with jax.enable_x64(True):
        nb = neighbors.knn(x, k=4)
        assert nb.distances.dtype == jnp.float64
        d = _exact(x, x) + np.diag(np.full(120, np.inf))
        idx = np.argsort(d, axis=1, kind="stable")[:, :4]
        np.testing.assert_array_equal(np.asarray(nb.indices), idx)
        np.testing.assert_allclose(np.asarray(nb.distances), np.take_along_axis(d, idx, axis=1), rtol=1e-9)
        assert neighbors.knn(x.astype(np.float32), k=4).distances.dtype == jnp.float32
    ints = np.array([[0, 0], [3, 4], [6, 8], [0, 1]])
    nb = neighbors.knn(ints, k=1)
    assert nb.distances.dtype == jnp.float32
    assert nb.indices.ravel().tolist() == [3, 3, 1, 0]
    np.testing.assert_array_equal(
        np.asarray(nb.distances).ravel(), [1.0, np.sqrt(18.0).astype(np.float32), 5.0, 1.0]
    )


def test_knn_under_jit_equals_eager():
    x = np.random.default_rng(7).normal(size=(60, 3)).astype(np.float32) + 500.0
    jitted = jax.jit(lambda a: neighbors.knn(a, k=5).indices)(x)
    np.testing.assert_array_equal(np.asarray(jitted), np.asarray(neighbors.knn(x, k=5).indices))


def _with_nan(shape, at):
    a = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    a[at] = np.nan
    return a


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(x=np.zeros((5, 2)), k=5), "k"),
        (dict(x=np.zeros((5, 2)), k=0), "k"),
        (dict(x=np.zeros((5, 2)), k=2.0), "k"),
        (dict(x=np.zeros((5, 2)), k=6, queries=np.zeros((3, 2))), "k"),
        (dict(x=np.zeros((5, 2)), k=1, block_size=0), "block_size"),
        (dict(x=np.zeros(5), k=1), "x"),
        (dict(x=np.zeros((5, 2, 1)), k=1), "x"),
        (dict(x=np.zeros((5, 2)), k=1, queries=np.zeros((3, 3))), "queries"),
        (dict(x=np.zeros((5, 2)), k=1, queries=np.zeros(2)), "queries"),
        (dict(x=_with_nan((20, 3), (4, 1)), k=3), "x"),
        (dict(x=np.zeros((5, 2)), k=1, queries=np.array([[0.0, np.inf]])), "queries"),
        (dict(x=np.array([["a", "b"]]), k=1), "x"),
    ],
)
def test_knn_bad_input(kwargs, name):
    with pytest.raises(InputError, match=rf"look\.neighbors\.knn: {name} "):
        neighbors.knn(**kwargs)


def test_knn_accepts_numpy_integers_for_k():
    x = np.random.default_rng(8).normal(size=(30, 2)).astype(np.float32)
    np.testing.assert_array_equal(
        np.asarray(neighbors.knn(x, k=np.int64(3)).indices), np.asarray(neighbors.knn(x, k=3).indices)
    )


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
