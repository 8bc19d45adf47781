"""The kNN candidate kernel (``_knn_native``) against float64 numpy; knn's two paths against each other."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax.look import _distances, _knn_native, neighbors

pytestmark = pytest.mark.skipif(
    not _knn_native.available("cpu") or jax.default_backend() != "cpu",
    reason=f"no kNN kernel: {_knn_native.unavailable_reason()}",
)


def _candidates(x, q, count, skip=None):
    x_c, q_c = _distances.frame(jnp.asarray(x), jnp.asarray(q))
    skip = jnp.full(q.shape[0], -1, jnp.int32) if skip is None else jnp.asarray(skip, jnp.int32)
    idx, d2 = _knn_native.candidates(q_c, x_c, jnp.sum(x_c * x_c, axis=1), skip, count)
    return np.asarray(idx), np.asarray(d2), np.asarray(x_c, np.float64), np.asarray(q_c, np.float64)


@pytest.mark.parametrize(
    ("n", "m", "d", "count"), [(1, 1, 1, 1), (33, 65, 3, 7), (300, 130, 50, 40), (97, 5, 130, 96)]
)
def test_candidates_are_the_smallest_distances_in_order(n, m, d, count):
    # n and m not multiples of the kernel's 32-point tiles or 64-query blocks: padding never chosen
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, d)).astype(np.float32)
    q = rng.normal(size=(m, d)).astype(np.float32)
    idx, d2, x_c, q_c = _candidates(x, q, count)
    exact = ((q_c[:, None, :] - x_c[None]) ** 2).sum(-1)
    want = np.argsort(exact, axis=1, kind="stable")[:, :count]
    assert idx.shape == (m, count) and idx.dtype == np.int32
    assert np.all(np.diff(d2, axis=1) >= 0)
    np.testing.assert_allclose(d2, np.take_along_axis(exact, idx, axis=1), atol=1e-5, rtol=1e-5)
    # the same sets (random data: no near ties at the boundary)
    np.testing.assert_array_equal(np.sort(idx, axis=1), np.sort(want, axis=1))


def test_candidates_skip_the_given_point_and_can_take_all_others():
    x = np.random.default_rng(3).normal(size=(70, 4)).astype(np.float32)
    idx, _, _, _ = _candidates(x, x, 69, skip=np.arange(70))
    for i in range(70):
        assert sorted(idx[i]) == [j for j in range(70) if j != i]


def test_candidates_break_ties_by_index():
    # an integer grid: many exactly equal distances (exact in the dyadic frame)
    g = np.stack(np.meshgrid(np.arange(9), np.arange(9)), -1).reshape(-1, 2).astype(np.float32)
    idx, d2, x_c, q_c = _candidates(g, g[::7], 12)
    exact = ((q_c[:, None, :] - x_c[None]) ** 2).sum(-1)
    want = np.lexsort((np.broadcast_to(np.arange(81), exact.shape), exact), axis=1)[:, :12]
    np.testing.assert_array_equal(idx, want)


@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_knn_with_and_without_the_kernel_agree(offset, monkeypatch):
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(700, 20)) + offset).astype(np.float32)
    x[50] = x[51]  # a duplicate: a zero distance and a tie
    q = (rng.normal(size=(90, 20)) + offset).astype(np.float32)
    fast = [neighbors.knn(x, k=12), neighbors.knn(x, k=5, queries=q)]
    monkeypatch.setattr(_knn_native, "available", lambda backend=None: False)
    jax.clear_caches()
    slow = [neighbors.knn(x, k=12), neighbors.knn(x, k=5, queries=q)]
    jax.clear_caches()
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(np.asarray(a.indices), np.asarray(b.indices))
        np.testing.assert_allclose(np.asarray(a.distances), np.asarray(b.distances), rtol=1e-6, atol=1e-6)


def test_rounding_bound_holds_for_the_kernel():
    # the kernel's d2 minus float64's, relative to |q|^2 + |x|^2, within _knn_native.rounding
    rng = np.random.default_rng(7)
    for d in (2, 50, 300):
        x = rng.normal(size=(200, d)).astype(np.float32) + 3.0
        idx, d2, x_c, q_c = _candidates(x, x[:40], 200)
        exact = ((q_c[:, None, :] - x_c[None]) ** 2).sum(-1)
        scale = (q_c**2).sum(1)[:, None] + (x_c**2).sum(1)[idx]
        err = np.abs(d2 - np.take_along_axis(exact, idx, axis=1)) / scale
        assert err.max() <= _knn_native.rounding(d)


def test_a_tight_cluster_is_searched_directly_and_equals_brute_force():
    # 300 points within 1e-6 of each other far from the rest: the expansion cannot order them
    # (every row unsure), the direct search must, as float64 does.
    rng = np.random.default_rng(9)
    x = np.concatenate([rng.normal(size=(500, 8)), 5.0 + 1e-6 * rng.normal(size=(300, 8))]).astype(np.float32)
    q = x[::7] + np.float32(1e-7)
    for nb, queries in ((neighbors.knn(x, k=6), None), (neighbors.knn(x, k=6, queries=q), q)):
        qq = x if queries is None else queries
        d = ((qq[:, None, :].astype(np.float64) - x[None].astype(np.float64)) ** 2).sum(-1)
        if queries is None:
            np.fill_diagonal(d, np.inf)
        # float32 differences decide (as the XLA path): compare the chosen distances, not indices
        want = np.sort(d, axis=1)[:, :6]
        got = np.take_along_axis(d, np.asarray(nb.indices), axis=1)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-16)
        if queries is None:
            assert not np.any(np.asarray(nb.indices) == np.arange(len(x))[:, None])


@pytest.mark.parametrize("n", [3, 20, 97])
def test_small_sets_with_k_up_to_n_minus_1_equal_brute_force(n):
    # With few points the candidate count reaches the points a query may choose (n - 1 when each
    # query is a point): asking the kernel for n once filled a slot with point 0, a duplicate.
    x = np.random.default_rng(n).normal(size=(n, 3)).astype(np.float32)
    for k in sorted({1, n // 2, n - 2, n - 1} - {0}):
        nb = neighbors.knn(x, k=k)
        d = ((x[:, None, :].astype(np.float64) - x[None]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        np.testing.assert_array_equal(np.asarray(nb.indices), np.argsort(d, axis=1, kind="stable")[:, :k])
        assert all(len(set(row)) == k for row in np.asarray(nb.indices).tolist())
    nb = neighbors.knn(jnp.array([[0.0], [1.0], [3.0]]), k=2)
    assert nb.indices.tolist() == [[1, 2], [0, 2], [1, 0]]
