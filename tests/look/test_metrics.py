"""Embedding metrics against scikit-learn and numpy brute force."""

import numpy as np
import pytest
from sklearn.manifold import trustworthiness as sk_trustworthiness

from latentjax.errors import InputError
from latentjax.look import metrics


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
    d = np.linalg.norm(a[:, None] - a[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1)[:, :k]


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


@pytest.mark.parametrize(
    "call",
    [
        lambda: metrics.trustworthiness(np.zeros((10, 3)), np.zeros((9, 2))),
        lambda: metrics.trustworthiness(np.zeros((10, 3)), np.zeros((10, 2)), k=5),
        lambda: metrics.knn_recall(np.zeros(10), np.zeros((10, 2))),
        lambda: metrics.knn_accuracy(np.zeros((10, 2)), np.zeros(9)),
    ],
)
def test_bad_input(call):
    with pytest.raises(InputError, match="metrics"):
        call()
