"""Embedding metrics against scikit-learn and numpy brute force, at any offset and scale, with ties."""

from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sklearn.manifold
from sklearn.manifold import trustworthiness as sk_trustworthiness

from latentjax.errors import InputError
from latentjax.look import metrics

OFFSETS = [0.0, 1e2, 1e3, 1e4]
SCALES = [1e-3, 1.0, 1e3]
_argsort = np.argsort


def _xy(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12)).astype(np.float32)
    y = (x[:, :2] + 0.3 * rng.normal(size=(n, 2))).astype(np.float32)
    return x, y


@pytest.mark.parametrize("k", [1, 5, 10, 30])
def test_trustworthiness_equals_sklearn(k):
    x, y = _xy()
    ours = float(metrics.trustworthiness(x, y, k=k, block_size=64))
    np.testing.assert_allclose(ours, sk_trustworthiness(x, y, n_neighbors=k), rtol=1e-5)


def test_trustworthiness_of_isometry_is_one():
    x, _ = _xy(100)
    rot = np.linalg.qr(np.random.default_rng(1).normal(size=(12, 12)))[0].astype(np.float32)
    np.testing.assert_allclose(float(metrics.trustworthiness(x, x @ rot + 5.0, k=7)), 1.0, atol=1e-6)


def _brute_knn(a, k):
    """Stable float64 brute force (ties to the smaller index); ``a - a[0]`` is exact in float64."""
    a = np.asarray(a, np.float64) - np.asarray(a, np.float64)[0]
    d = np.sqrt(np.sum((a[:, None] - a[None]) ** 2, axis=-1))
    np.fill_diagonal(d, np.inf)
    return _argsort(d, axis=1, kind="stable")[:, :k]


class _StableNeighbors:
    """``NearestNeighbors(n_neighbors).fit(y).kneighbors(return_distance=False)`` by `_brute_knn`."""

    def __init__(self, n_neighbors):
        self.k = n_neighbors

    def fit(self, y):
        self.y = y
        return self

    def kneighbors(self, return_distance=False):
        return _brute_knn(self.y, self.k)


def _sk_stable(x, y, k, *, stable_embedding=True):
    """sklearn's trustworthiness with ties ranked by index.

    sklearn ranks with numpy's default argsort, whose order among ties is unspecified (the SIMD
    sort on this machine does not keep the index order), and finds the embedding's neighbours
    with a k-d tree, whose order among ties is unspecified too. With a stable argsort (and the
    embedding's neighbours from a stable brute force) the ranking is well defined.
    """
    x = np.asarray(x, np.float64) - np.asarray(x, np.float64)[0]  # exact translation: no cancellation
    stable = mock.patch.object(np, "argsort", lambda a, axis=-1, **kw: _argsort(a, axis=axis, kind="stable"))
    with stable, mock.patch.object(sklearn.manifold._t_sne, "NearestNeighbors", _StableNeighbors):
        return sk_trustworthiness(x, y, n_neighbors=k)


def _rank_unit(n, k):
    """The change of T for one rank: float32 may order two near-equal distances otherwise."""
    return 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("offset", OFFSETS)
def test_trustworthiness_equals_sklearn_at_any_offset_and_scale(offset, scale):
    # Without centring, +1e3 gave 0.676 against sklearn's 0.667.
    x, y = _xy(300, seed=2)
    x, y = (np.asarray(a, np.float64) * scale + offset for a in (x, y))
    x, y = x.astype(np.float32), y.astype(np.float32)
    ours = float(metrics.trustworthiness(x, y, k=10, block_size=64))
    np.testing.assert_allclose(ours, _sk_stable(x, y, 10), rtol=0, atol=1.01 * _rank_unit(300, 10))


def _grid_and_embedding(offset=0.0):
    rng = np.random.default_rng(0)
    g = np.stack(np.meshgrid(np.arange(12), np.arange(12), np.arange(3), indexing="ij"), -1).reshape(-1, 3)
    y = g[:, :2] @ rng.normal(size=(2, 2)) + 0.5 * rng.normal(size=(len(g), 2))
    return (g + offset).astype(np.float32), y.astype(np.float32)


@pytest.mark.parametrize("offset", [0.0, 1e4])
@pytest.mark.parametrize("k", [1, 5, 10, 30])
def test_trustworthiness_ranks_ties_as_sklearn(k, offset):
    # Integer grid: each point has up to 26 others at one distance. Ranking a tie by the number of
    # strictly smaller distances gave 0.830 where sklearn gives 0.784.
    x, y = _grid_and_embedding(offset)
    ours = float(metrics.trustworthiness(x, y, k=k))
    ref = _sk_stable(x, y, k)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-7)  # float32 rounding of T itself
    # sklearn as shipped differs from it only by the (unspecified) order among ties.
    np.testing.assert_allclose(ours, sk_trustworthiness(x, y, n_neighbors=k), atol=1e-3)


def test_trustworthiness_keeps_float64_under_x64():
    x, y = _xy(200, seed=3)
    x, y = x.astype(np.float64) + 1e6, y.astype(np.float64)
    with jax.enable_x64(True):
        t = metrics.trustworthiness(x, y, k=7)
        assert t.dtype == jnp.float64
    np.testing.assert_allclose(float(t), _sk_stable(x, y, 7), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("offset", "scale"), [(0.0, 1.0), (1e4, 1e-3), (1e4, 1.0), (1e3, 1e3)])
def test_knn_recall_and_accuracy_at_an_offset_equal_brute_force(offset, scale):
    x, y = _xy(250, seed=4)
    labels = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0.5).astype(int)
    x, y = ((np.asarray(a, np.float64) * scale + offset).astype(np.float32) for a in (x, y))
    a, b = _brute_knn(x, 8), _brute_knn(y, 8)
    recall = np.mean([len(set(a[i]) & set(b[i])) / 8 for i in range(250)])
    np.testing.assert_allclose(float(metrics.knn_recall(x, y, k=8)), recall, rtol=1e-6)
    pred = np.array([np.bincount(labels[b[i]], minlength=4).argmax() for i in range(250)])
    np.testing.assert_allclose(
        float(metrics.knn_accuracy(y, labels, k=8)), np.mean(pred == labels), rtol=1e-6
    )


def test_knn_recall_and_accuracy_with_ties_equal_brute_force():
    x, y = _grid_and_embedding(1e3)
    labels = (x[:, 0] % 3).astype(np.int64)
    a, b = _brute_knn(x, 6), _brute_knn(x[:, [0, 2, 1]], 6)
    recall = np.mean([len(set(a[i]) & set(b[i])) / 6 for i in range(len(x))])
    np.testing.assert_allclose(float(metrics.knn_recall(x, x[:, [0, 2, 1]], k=6)), recall, rtol=1e-6)
    pred = np.array([np.bincount(labels[a[i]], minlength=3).argmax() for i in range(len(x))])
    np.testing.assert_allclose(
        float(metrics.knn_accuracy(x, labels, k=6)), np.mean(pred == labels), rtol=1e-6
    )


def test_knn_recall_equals_brute_force():
    x, y = _xy(300)
    a, b = _brute_knn(x, 10), _brute_knn(y, 10)
    ref = np.mean([len(set(a[i]) & set(b[i])) / 10 for i in range(300)])
    np.testing.assert_allclose(float(metrics.knn_recall(x, y, k=10)), ref, rtol=1e-6)


def test_knn_accuracy_equals_leave_one_out_majority_vote():
    x, y = _xy(300)
    labels = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0.5).astype(int)
    nn = _brute_knn(y, 7)
    pred = np.array([np.bincount(labels[nn[i]], minlength=4).argmax() for i in range(300)])
    np.testing.assert_allclose(
        float(metrics.knn_accuracy(y, labels, k=7)), np.mean(pred == labels), rtol=1e-6
    )


def test_knn_accuracy_ties_go_to_smallest_label():
    y = np.array([[0.0], [0.9], [-1.0], [10.0], [10.5], [11.0]], np.float32)
    labels = np.array([0, 1, 0, 2, 2, 2])
    # Points 0 and 2 see one label-0 and one label-1 neighbour: the tie goes to 0 (right);
    # point 1 sees two label-0 neighbours (wrong). Ties to the larger label would give 3/6.
    assert float(metrics.knn_accuracy(y, labels, k=2)) == pytest.approx(5 / 6)


def _nan(shape, at=(3, 1), value=np.nan):
    a = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    a[at] = value
    return a


X, Y, LABELS = _nan((20, 3), value=0.0), _nan((20, 2), value=0.0), np.arange(20) % 3


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: metrics.trustworthiness(X, Y[:19]), "x"),
        (lambda: metrics.trustworthiness(X, Y, k=10), "k"),
        (lambda: metrics.trustworthiness(X, Y, k=0), "k"),
        (lambda: metrics.trustworthiness(X, Y, k=2.0), "k"),
        (lambda: metrics.trustworthiness(X, Y, k=3, block_size=0), "block_size"),
        (lambda: metrics.trustworthiness(_nan((20, 3)), Y, k=3), "x"),
        (lambda: metrics.trustworthiness(X, _nan((20, 2), value=np.inf), k=3), "y"),
        (lambda: metrics.trustworthiness(X[..., None], Y, k=3), "x"),
        (lambda: metrics.knn_recall(X[:, 0], Y), "x"),
        (lambda: metrics.knn_recall(X, Y[:, 0], k=3), "y"),
        (lambda: metrics.knn_recall(X, _nan((20, 2)), k=3), "y"),
        (lambda: metrics.knn_recall(X, Y[:19], k=3), "x"),
        (lambda: metrics.knn_accuracy(Y, LABELS[:19]), "labels"),
        (lambda: metrics.knn_accuracy(Y, LABELS.astype(float), k=3), "labels"),
        (lambda: metrics.knn_accuracy(Y, np.where(LABELS == 2, -1, LABELS), k=3), "labels"),
        (lambda: metrics.knn_accuracy(Y, LABELS[:, None], k=3), "labels"),
        (lambda: metrics.knn_accuracy(_nan((20, 2)), LABELS, k=3), "y"),
        (lambda: metrics.knn_accuracy(Y, LABELS, k=20), "k"),
        (lambda: metrics.knn_accuracy(Y[:, 0], LABELS, k=3), "y"),
    ],
)
def test_bad_input(call, name):
    with pytest.raises(InputError, match=rf"look\.metrics\.\w+: {name} "):
        call()


def test_trustworthiness_and_recall_under_jit_equal_eager():
    # Value checks are skipped on traced arguments (the policy); the results are the same.
    x, y = _xy(120, seed=5)
    x = x + np.float32(300.0)
    jitted = jax.jit(lambda a, b: (metrics.trustworthiness(a, b, k=5), metrics.knn_recall(a, b, k=5)))(x, y)
    np.testing.assert_allclose(float(jitted[0]), _sk_stable(x, y, 5), rtol=0, atol=1.01 * _rank_unit(120, 5))
    np.testing.assert_allclose(float(jitted[0]), float(metrics.trustworthiness(x, y, k=5)), rtol=1e-6)
    np.testing.assert_allclose(float(jitted[1]), float(metrics.knn_recall(x, y, k=5)), rtol=1e-6)
