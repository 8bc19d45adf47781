"""Properties of look.pca, look.tsne.affinities and look.umap.fuzzy_graph: invariant to translation
and scaling (against float64 references computed on the very float32 array the library gets),
equivariant under permutations, pca.transform's vmap equal to a loop, float dtypes kept."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from latentjax.look import pca, tsne, umap

PROPS = settings.get_profile("latentjax-properties")
N, D = 40, 4
PERPLEXITY, N_NEIGHBORS = 5.0, 8
seeds = st.integers(0, 2**32 - 1)


@st.composite
def affine(draw, dim):
    """``(scale, offset)``: scale in 1e-3..1e3, offset up to 1e4 but at most 1e3 x the data's spread."""
    scale = 10.0 ** draw(st.floats(-3, 3))
    direction = draw(hnp.arrays(np.float64, dim, elements=st.floats(-1, 1, allow_subnormal=False)))
    norm = min(draw(st.floats(0, 1e4)), 1e3 * scale)
    size = np.linalg.norm(direction)
    return scale, (direction / size * norm if size > 0 else direction)


def _moved(x, scale, offset):
    return (np.asarray(x, np.float64) * scale + offset).astype(np.float32)


def _spectral_data(seed):
    """Gaussian data with well-separated variances (4, 2, 1, 0.5) along random orthogonal axes."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(D, D)))
    return (rng.normal(size=(N, D)) * np.array([2.0, 1.4, 1.0, 0.7])) @ rotation


def _dense(graph, n):
    m = np.zeros((n, n))
    m[np.asarray(graph.rows), np.asarray(graph.cols)] = np.asarray(graph.weights, np.float64)
    return m


def _tsne_p_reference(ref, x, perplexity):
    """t-SNE's P in float64: exact 3*perplexity neighbours, bisection on every row's log(beta)."""
    n = x.shape[0]
    k = min(n - 1, int(3 * perplexity))
    idx, dist = ref.knn(x, k)
    d2 = (dist**2 - dist[:, :1] ** 2) / np.mean(dist**2, axis=1, keepdims=True)  # shifted, scaled
    lo, hi = np.full((n, 1), -80.0), np.full((n, 1), 80.0)  # log(beta) brackets, scaled units
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        w = np.exp(-np.exp(mid) * d2)
        p = w / w.sum(axis=1, keepdims=True)
        entropy = -np.sum(p * np.log(np.maximum(p, 1e-300)), axis=1, keepdims=True)
        lo, hi = (
            np.where(entropy > np.log(perplexity), mid, lo),
            np.where(entropy > np.log(perplexity), hi, mid),
        )
    p_cond = np.zeros((n, n))
    np.put_along_axis(p_cond, idx, p, axis=1)
    return (p_cond + p_cond.T) / (2 * n)


def _umap_graph_reference(ref, x, n_neighbors):
    """UMAP's fuzzy union in float64 (umap-learn's smooth_knn_dist solved to convergence)."""
    n = x.shape[0]
    idx, dist = ref.knn(x, n_neighbors - 1)
    positive = dist > 0
    rho = np.where(positive.any(axis=1), dist[np.arange(n), np.argmax(positive, axis=1)], 0.0)[:, None]
    excess = dist - rho
    lo, hi = np.full((n, 1), -80.0), np.full((n, 1), 80.0)  # log(sigma)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        s = np.sum(
            np.where(excess > 0, np.exp(-np.maximum(excess, 0) / np.exp(mid)), 1.0), axis=1, keepdims=True
        )
        big = s > np.log2(n_neighbors)
        lo, hi = np.where(big, lo, mid), np.where(big, mid, hi)
    floor = 1e-3 * np.where(
        rho > 0, dist.sum(axis=1, keepdims=True) / n_neighbors, dist.sum() / (n * n_neighbors)
    )
    sigma = np.maximum(np.exp(mid), floor)
    p = np.zeros((n, n))
    np.put_along_axis(p, idx, np.where(excess > 0, np.exp(-np.maximum(excess, 0) / sigma), 1.0), axis=1)
    return p + p.T - p * p.T


def _aligned(a, b):
    """|cos| between matching rows: 1 when the components agree up to sign."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(np.sum(a * b, axis=1)) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@settings(PROPS, max_examples=10)
@given(seed=seeds, moved=affine(D))
def test_pca_matches_float64_after_translation_and_scaling(seed, moved):
    x = _moved(_spectral_data(seed), *moved)
    xd = x.astype(np.float64)
    xc = xd - xd.mean(axis=0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    var = s**2 / (N - 1)
    fitted = pca.fit(x, num_components=3)
    assert np.all(_aligned(fitted.components, vt[:3]) > 1 - 1e-4)
    np.testing.assert_allclose(fitted.explained_variance_ratio, var[:3] / var.sum(), rtol=1e-3)
    np.testing.assert_allclose(fitted.explained_variance, var[:3], rtol=1e-3)
    np.testing.assert_allclose(fitted.mean, xd.mean(axis=0), rtol=1e-6, atol=1e-6 * moved[0])


@settings(PROPS, max_examples=6)
@given(seed=seeds, perm=st.permutations(range(N)))
def test_pca_is_invariant_under_a_permutation_of_rows(seed, perm):
    x = _spectral_data(seed).astype(np.float32)
    a, b = pca.fit(x, num_components=3), pca.fit(x[np.asarray(perm)], num_components=3)
    assert np.all(_aligned(a.components, b.components) > 1 - 1e-5)
    np.testing.assert_allclose(a.explained_variance_ratio, b.explained_variance_ratio, rtol=1e-4)


@settings(PROPS, max_examples=6)
@given(
    seed=seeds,
    batch=hnp.arrays(np.float32, (5, D), elements=st.floats(-1e3, 1e3, width=32, allow_subnormal=False)),
)
def test_pca_transform_vmap_equals_a_loop(seed, batch):
    fitted = pca.fit(_spectral_data(seed).astype(np.float32), num_components=2)
    loop = np.stack([np.asarray(pca.transform(fitted, b)) for b in batch])
    vmapped = jax.vmap(functools.partial(pca.transform, fitted))(batch)
    want = (batch.astype(np.float64) - np.asarray(fitted.mean)) @ np.asarray(fitted.components, np.float64).T
    np.testing.assert_allclose(vmapped, loop, rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(pca.transform(fitted, batch), loop, rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(loop, want, rtol=1e-5, atol=1e-3)


@settings(PROPS, max_examples=3)
@given(seed=seeds)
def test_pca_keeps_the_float_dtype(seed):
    x = _spectral_data(seed)
    fitted = pca.fit(x.astype(np.float32), num_components=2)
    assert fitted.components.dtype == jnp.float32
    assert pca.transform(fitted, x[0].astype(np.float32)).dtype == jnp.float32
    assert pca.fit(np.round(x * 10).astype(np.int32), num_components=2).components.dtype == jnp.float32
    with jax.enable_x64(True):
        fitted = pca.fit(jnp.asarray(x, jnp.float64), num_components=2)
        assert fitted.components.dtype == jnp.float64
        assert fitted.explained_variance.dtype == jnp.float64
        z = pca.transform(fitted, jnp.asarray(x[:3], jnp.float64))
        assert z.dtype == jnp.float64
        assert pca.inverse_transform(fitted, z).dtype == jnp.float64


@settings(PROPS, max_examples=8)
@given(seed=seeds, moved=affine(D))
def test_tsne_affinities_match_float64_after_translation_and_scaling(ref, seed, moved):
    x = _moved(np.random.default_rng(seed).normal(size=(N, D)), *moved)
    k = int(3 * PERPLEXITY)
    assume(ref.relative_gap(x, [k - 1]) > 1e-4)  # the k-th neighbour is not a near-tie
    got = _dense(tsne.affinities(x, perplexity=PERPLEXITY), N)
    want = _tsne_p_reference(ref, x, PERPLEXITY)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * want.max())


@settings(PROPS, max_examples=6)
@given(seed=seeds, perm=st.permutations(range(N)))
def test_tsne_affinities_are_permutation_equivariant(ref, seed, perm):
    x = np.random.default_rng(seed).normal(size=(N, D)).astype(np.float32)
    assume(ref.relative_gap(x, [int(3 * PERPLEXITY) - 1]) > 1e-5)
    p = np.asarray(perm)
    base = _dense(tsne.affinities(x, perplexity=PERPLEXITY), N)
    got = _dense(tsne.affinities(x[p], perplexity=PERPLEXITY), N)
    np.testing.assert_allclose(got, base[np.ix_(p, p)], rtol=1e-5, atol=1e-8)


@settings(PROPS, max_examples=8)
@given(seed=seeds, moved=affine(D))
def test_umap_fuzzy_graph_matches_float64_after_translation_and_scaling(ref, seed, moved):
    x = _moved(np.random.default_rng(seed).normal(size=(N, D)), *moved)
    assume(ref.relative_gap(x, [N_NEIGHBORS - 2]) > 1e-4)
    got = _dense(umap.fuzzy_graph(x, n_neighbors=N_NEIGHBORS), N)
    np.testing.assert_allclose(got, _umap_graph_reference(ref, x, N_NEIGHBORS), atol=2e-4)


@settings(PROPS, max_examples=6)
@given(seed=seeds, perm=st.permutations(range(N)))
def test_umap_fuzzy_graph_is_permutation_equivariant(ref, seed, perm):
    x = np.random.default_rng(seed).normal(size=(N, D)).astype(np.float32)
    assume(ref.relative_gap(x, [N_NEIGHBORS - 2]) > 1e-5)
    p = np.asarray(perm)
    base = _dense(umap.fuzzy_graph(x, n_neighbors=N_NEIGHBORS), N)
    got = _dense(umap.fuzzy_graph(x[p], n_neighbors=N_NEIGHBORS), N)
    np.testing.assert_allclose(got, base[np.ix_(p, p)], rtol=1e-5, atol=1e-7)
