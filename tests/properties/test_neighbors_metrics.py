"""Properties of look.neighbors.knn and look.metrics: exact for any float32 data, invariant to
translation (offsets up to 1e4), scaling (1e-3..1e3) and permutation, against float64 references
(brute force on the very float32 array the library gets, and sklearn's trustworthiness)."""

import jax
import jax.numpy as jnp
import numpy as np
import sklearn.manifold
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from latentjax.look import metrics, neighbors

PROPS = settings.get_profile("latentjax-properties")
N, D, E, K = 40, 3, 2, 5
seeds = st.integers(0, 2**32 - 1)


@st.composite
def affine(draw, dim, *, mild=False):
    """``(scale, offset)``: scale in 1e-3..1e3, an offset of norm up to 1e4.

    ``mild`` caps the offset at 1e3 times the data's spread (unit before scaling), so float32 keeps
    about 13 bits of it; without the cap, scale 1e-3 at offset 1e4 leaves one or two float32 steps
    across the data, and only exactness on the rounded array is a property there.
    """
    scale = 10.0 ** draw(st.floats(-3, 3))
    direction = draw(hnp.arrays(np.float64, dim, elements=st.floats(-1, 1, allow_subnormal=False)))
    norm = draw(st.floats(0, 1e4))
    if mild:
        norm = min(norm, 1e3 * scale)
    size = np.linalg.norm(direction)
    offset = direction / size * norm if size > 0 else direction
    return scale, offset


def _moved(x, scale, offset):
    return (np.asarray(x, np.float64) * scale + offset).astype(np.float32)


def _gaussian(seed, shape):
    return np.random.default_rng(seed).normal(size=shape)


@settings(PROPS, max_examples=15)
@given(
    x=hnp.arrays(np.float32, (N, D), elements=st.floats(-1e3, 1e3, width=32, allow_subnormal=False)),
    k=st.integers(1, K),
)
def test_knn_is_exact_on_any_float32_data(ref, x, k):
    # Repeated points, zeros, tiny and large values together: whatever hypothesis finds.
    nb = neighbors.knn(x, k=k)
    ref.assert_exact_knn(x, nb.indices, nb.distances, k)


@settings(PROPS, max_examples=10)
@given(seed=seeds, size=st.integers(2, N), spread=st.floats(0, 6))
@example(seed=0, size=30, spread=5.0)  # 30 of 40 points within 1e-5: more than k + margin candidates
def test_knn_is_exact_on_data_with_a_tight_cluster(ref, seed, size, spread):
    # Near-duplicates: `size` points within 10**-spread of each other among unit-spread data.
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D))
    x[:size] = x[0] + 10.0**-spread * rng.normal(size=(size, D))
    x = x.astype(np.float32)
    nb = neighbors.knn(x, k=K)
    ref.assert_exact_knn(x, nb.indices, nb.distances, K)


@settings(PROPS, max_examples=12)
@given(seed=seeds, moved=affine(D))
def test_knn_is_exact_after_translation_and_scaling(ref, seed, moved):
    x = _moved(_gaussian(seed, (N, D)), *moved)
    nb = neighbors.knn(x, k=K)
    ref.assert_exact_knn(x, nb.indices, nb.distances, K)


@settings(PROPS, max_examples=8)
@given(seed=seeds, moved=affine(D))
def test_knn_with_queries_is_exact_after_translation_and_scaling(ref, seed, moved):
    data = _gaussian(seed, (N + 7, D))
    x, q = _moved(data[:N], *moved), _moved(data[N:], *moved)
    nb = neighbors.knn(x, k=K, queries=q)
    ref.assert_exact_knn(x, nb.indices, nb.distances, K, queries=q)


@settings(PROPS, max_examples=10)
@given(seed=seeds, moved=affine(D, mild=True))
def test_knn_indices_do_not_change_when_the_data_moves(ref, seed, moved):
    x0 = _gaussian(seed, (N, D)).astype(np.float32)
    x = _moved(x0, *moved)
    # No near-ties among the first K + 1 (rounding to float32 at the offset may swap those).
    assume(ref.relative_gap(x0, range(K)) > 1e-3)
    np.testing.assert_array_equal(neighbors.knn(x, k=K).indices, neighbors.knn(x0, k=K).indices)


@settings(PROPS, max_examples=10)
@given(seed=seeds, perm=st.permutations(range(N)))
def test_knn_is_permutation_equivariant(ref, seed, perm):
    x = _gaussian(seed, (N, D)).astype(np.float32)
    assume(ref.relative_gap(x, range(K)) > 1e-5)
    p = np.asarray(perm)
    inverse = np.argsort(p)
    got = neighbors.knn(x[p], k=K)
    base = neighbors.knn(x, k=K)
    np.testing.assert_array_equal(got.indices, inverse[np.asarray(base.indices)[p]])
    np.testing.assert_allclose(got.distances, np.asarray(base.distances)[p], rtol=1e-6)


def _embedding_pair(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D))
    y = x[:, :E] + 0.3 * rng.normal(size=(N, E))
    return x, y


def _unit(n, k):
    """One rank unit of trustworthiness's penalty sum."""
    return 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))


@settings(PROPS, max_examples=10)
@given(seed=seeds, mx=affine(D, mild=True), my=affine(E, mild=True))
def test_trustworthiness_matches_sklearn_after_translation_and_scaling(seed, mx, my):
    x0, y0 = _embedding_pair(seed)
    x, y = _moved(x0, *mx), _moved(y0, *my)
    want = sklearn.manifold.trustworthiness(x.astype(np.float64), y.astype(np.float64), n_neighbors=K)
    got = float(metrics.trustworthiness(x, y, k=K))
    # Two rank units for near-ties that float32 rounding may order either way; a broken
    # translation costs dozens (0.676 vs 0.667 at an offset of 1000).
    assert abs(got - want) <= 2 * _unit(N, K) + 1e-6, (got, want)


@settings(PROPS, max_examples=6)
@given(seed=seeds, size=st.integers(2, N), spread=st.floats(0, 5))
@example(seed=0, size=30, spread=5.0)
def test_trustworthiness_matches_sklearn_on_data_with_a_tight_cluster(seed, size, spread):
    # Spread at most 1e-5 at unit magnitude: float32 still separates the points (no exact ties).
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D))
    x[:size] = x[0] + 10.0**-spread * rng.normal(size=(size, D))
    y = x[:, :E] + 10.0**-spread * rng.normal(size=(N, E))
    x, y = x.astype(np.float32), y.astype(np.float32)
    want = sklearn.manifold.trustworthiness(x.astype(np.float64), y.astype(np.float64), n_neighbors=K)
    got = float(metrics.trustworthiness(x, y, k=K))
    assert abs(got - want) <= 2 * _unit(N, K) + 1e-6, (got, want)


@settings(PROPS, max_examples=8)
@given(seed=seeds, perm=st.permutations(range(N)))
def test_trustworthiness_is_invariant_under_a_joint_permutation(seed, perm):
    x, y = (a.astype(np.float32) for a in _embedding_pair(seed))
    p = np.asarray(perm)
    np.testing.assert_allclose(
        float(metrics.trustworthiness(x[p], y[p], k=K)), float(metrics.trustworthiness(x, y, k=K)), atol=1e-6
    )


@settings(PROPS, max_examples=10)
@given(seed=seeds, mx=affine(D), my=affine(E))
def test_knn_recall_matches_brute_force_after_translation_and_scaling(ref, seed, mx, my):
    x0, y0 = _embedding_pair(seed)
    x, y = _moved(x0, *mx), _moved(y0, *my)
    assume(ref.relative_gap(x, [K - 1]) > 1e-4 and ref.relative_gap(y, [K - 1]) > 1e-4)
    a, b = ref.knn(x, K)[0], ref.knn(y, K)[0]
    want = np.mean([len(set(r) & set(s)) for r, s in zip(a.tolist(), b.tolist())]) / K
    np.testing.assert_allclose(float(metrics.knn_recall(x, y, k=K)), want, atol=1e-6)


def _knn_accuracy_reference(ref, y, labels, k):
    idx = ref.knn(y, k)[0]
    votes = np.stack([np.bincount(labels[r], minlength=labels.max() + 1) for r in idx])
    return float(np.mean(np.argmax(votes, axis=1) == labels))  # ties: the smallest label


@settings(PROPS, max_examples=10)
@given(seed=seeds, moved=affine(E))
def test_knn_accuracy_matches_brute_force_after_translation_and_scaling(ref, seed, moved):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, N)
    y = _moved(rng.normal(size=(N, E)) + labels[:, None], *moved)
    assume(ref.relative_gap(y, [K - 1]) > 1e-4)
    got = float(metrics.knn_accuracy(y, labels, k=K))
    np.testing.assert_allclose(got, _knn_accuracy_reference(ref, y, labels, K), atol=1e-6)


@settings(PROPS, max_examples=8)
@given(seed=seeds, perm=st.permutations(range(N)))
def test_knn_accuracy_and_recall_are_invariant_under_a_joint_permutation(ref, seed, perm):
    x, y = (a.astype(np.float32) for a in _embedding_pair(seed))
    assume(ref.relative_gap(x, [K - 1]) > 1e-5 and ref.relative_gap(y, [K - 1]) > 1e-5)
    labels = (x[:, 0] > 0).astype(np.int32)
    p = np.asarray(perm)
    np.testing.assert_allclose(
        float(metrics.knn_accuracy(y[p], labels[p], k=K)),
        float(metrics.knn_accuracy(y, labels, k=K)),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        float(metrics.knn_recall(x[p], y[p], k=K)), float(metrics.knn_recall(x, y, k=K)), atol=1e-6
    )


def test_knn_keeps_the_float_dtype(ref):
    x = _gaussian(0, (N, D))
    nb = neighbors.knn(x.astype(np.float32), k=K)
    assert nb.distances.dtype == jnp.float32 and nb.indices.dtype == jnp.int32
    with jax.enable_x64(True):
        nb = neighbors.knn(jnp.asarray(x, jnp.float64), k=K)
        assert nb.distances.dtype == jnp.float64
        # float64 precision, not float32 rounding carried in a float64 array.
        np.testing.assert_allclose(nb.distances, ref.knn(x, K)[1], rtol=1e-12)
