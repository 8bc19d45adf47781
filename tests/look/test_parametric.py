"""look.parametric: the losses vs numpy, map quality vs the non-parametric maps, held-out points, decoder."""

import gzip
import os
import pathlib

import jax
import numpy as np
import pytest
import scipy.sparse

from latentjax.errors import CheckpointError, InputError
from latentjax.look import _parametric_losses, _parametric_train, maps, metrics, parametric, pca, tsne, umap

# Sized for CI (2 cores): 1,000 points to fit on, 500 held out; short trainings with small batches.
N_FIT, N_NEW = 1000, 500
# The parametric maps' trustworthiness (k = 10) may trail the non-parametric ones' by at most this
# at 1,000 points (measured: 0.975 vs 0.983 for UMAP, 0.982 vs 0.989 for t-SNE; the issue asks 0.02
# at 10,000 points, where full-length training measured 0.981 vs 0.983 for UMAP and, with
# fit_tsne's default widths of 256, 0.984 vs 0.995 for t-SNE).
TRUST_TOL = 0.02


@pytest.fixture(scope="module")
def points():
    """Fashion-MNIST PCA-50 (fitted on the first 1,000 images); without the data, 10 clusters in 50-D."""
    root = pathlib.Path(
        os.environ.get("LATENTJAX_DATA_DIR", pathlib.Path(__file__).parents[3] / "shared/data")
    )
    n = N_FIT + N_NEW
    if (root / "fashion_mnist").is_dir():
        raw = gzip.open(root / "fashion_mnist" / "train-images-idx3-ubyte.gz").read()
        x = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784)[:n].astype(np.float32) / 255
        z = np.array(pca.transform(pca.fit(x[:N_FIT], num_components=50), x), np.float32)
    else:
        rng = np.random.default_rng(0)
        centres = rng.normal(scale=3.0, size=(10, 50))
        z = (centres[rng.integers(0, 10, n)] + rng.normal(size=(n, 50))).astype(np.float32)
    return z[:N_FIT], z[N_FIT:]


def _numpy_umap_loss(y_to, y_from, y_neg_from, a, b, eps=1e-4):
    # umap-learn's parametric_umap.umap_loss: norms, 1 / (1 + a d^(2b)), clipped logs, one mean.
    r = len(y_neg_from) // len(y_to)
    d = np.concatenate(
        [np.linalg.norm(y_to - y_from, axis=1), np.linalg.norm(np.repeat(y_to, r, 0) - y_neg_from, axis=1)]
    )
    q = 1.0 / (1.0 + a * d ** (2 * b))
    p = np.concatenate([np.ones(len(y_to)), np.zeros(len(y_neg_from))])
    ce = -p * np.log(np.clip(q, eps, 1.0)) - (1 - p) * np.log(np.clip(1 - q, eps, 1.0))
    return ce.mean()


def test_umap_loss_matches_numpy():
    rng = np.random.default_rng(0)
    y_to, y_from = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    y_from[0] = y_to[0]  # a coincident pair: q = 1
    neg = rng.normal(scale=3.0, size=(18, 2))
    neg[1] = y_to[0]  # a coincident negative: 1 - q clipped to eps
    a, b = umap.find_ab(min_dist=0.1)
    got = _parametric_losses.umap_cross_entropy(
        *(np.float32(v) for v in (y_to, y_from, neg)), a=np.float32(a), b=np.float32(b)
    )
    np.testing.assert_allclose(float(got), _numpy_umap_loss(y_to, y_from, neg, a, b), rtol=1e-5)
    grads = jax.grad(lambda u: _parametric_losses.umap_cross_entropy(u, y_from, neg, a=a, b=b))(y_to)
    assert np.all(np.isfinite(np.asarray(grads)))  # also at the coincident pair


def test_tsne_batch_kl_matches_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    graph = tsne.affinities(x, perplexity=5.0)
    dense = scipy.sparse.coo_matrix(
        (np.asarray(graph.weights, np.float64), (np.asarray(graph.rows), np.asarray(graph.cols))), (40, 40)
    ).toarray()
    idx = np.array([3, 17, 4, 39, 0, 22, 8, 11, 30, 5])
    p_ref = dense[np.ix_(idx, idx)] / dense[np.ix_(idx, idx)].sum()
    p = np.asarray(_parametric_losses.batch_affinities(idx, *_parametric_losses.padded_rows(graph, 40)))
    np.testing.assert_allclose(p, p_ref, rtol=1e-5, atol=1e-8)
    y = rng.normal(size=(10, 2))
    num = 1.0 / (1.0 + ((y[:, None] - y[None]) ** 2).sum(-1))
    np.fill_diagonal(num, 0.0)
    q = num / num.sum()
    mask = p_ref > 0
    kl_ref = np.sum(p_ref[mask] * np.log(p_ref[mask] / q[mask]))
    got = _parametric_losses.tsne_batch_kl(np.float32(y), np.float32(p_ref))
    np.testing.assert_allclose(float(got), kl_ref, rtol=1e-5)


def _subset_trust(x, y, size, seed=0):
    i = np.random.default_rng(seed).choice(len(x), size, replace=False)
    return float(metrics.trustworthiness(x[i], y[i], k=10))


@pytest.mark.parametrize("method", ["umap", "tsne"])
def test_quality_vs_the_non_parametric_map(points, method):
    x, x_new = points
    key = jax.random.key(0)
    if method == "umap":
        ref = umap.embed(key, x)
        m = parametric.fit_umap(key, x, num_steps=2000, batch_size=256, decoder=True)
    else:
        ref = tsne.embed(key, x, num_steps=500)
        m = parametric.fit_tsne(key, x, num_steps=600, batch_size=250, decoder=True)
    y = np.asarray(parametric.transform(m, x))
    trust, trust_ref = (float(metrics.trustworthiness(x, v, k=10)) for v in (y, np.asarray(ref)))
    assert trust >= trust_ref - TRUST_TOL, (trust, trust_ref)
    # New points map like the training ones: the held-out 500's trustworthiness within 0.03 of
    # that of 500 training points (same size: trustworthiness depends on n). Measured: 0.964 vs
    # 0.972 (UMAP), 0.963 vs 0.979 (t-SNE, whose network fits its 1,000 points more closely).
    y_new = np.asarray(maps.transform(m, jax.random.key(1), x_new))
    trust_new = float(metrics.trustworthiness(x_new, y_new, k=10))
    assert trust_new >= _subset_trust(x, y, N_NEW) - 0.03
    # The decoder: held-out reconstructions beat the mean and PCA's 2-D inverse (fitted on x).
    rec = np.asarray(maps.inverse_transform(m, jax.random.key(2), y_new))
    mse = np.mean((rec - x_new) ** 2)
    p2 = pca.fit(x, num_components=2)
    mse_pca = np.mean((np.asarray(pca.inverse_transform(p2, pca.transform(p2, x_new))) - x_new) ** 2)
    assert mse < 0.5 * np.mean((x_new - x.mean(0)) ** 2) and mse < mse_pca, (mse, mse_pca)


@pytest.fixture(scope="module")
def tiny():
    x = np.random.default_rng(2).normal(size=(60, 4)).astype(np.float32)
    hyper = {"n_neighbors": 6, "num_steps": 30, "batch_size": 32, "widths": (16, 16)}
    return x, hyper, parametric.fit_umap(jax.random.key(0), x, decoder=True, **hyper)


def test_deterministic_for_a_key_and_save_load_round_trip(tiny, tmp_path):
    x, hyper, m = tiny
    compiled = _parametric_train._chunk._cache_size()
    again = parametric.fit_umap(jax.random.key(0), x, decoder=True, **hyper)
    assert _parametric_train._chunk._cache_size() == compiled  # the step compiled once for this shape
    y = np.asarray(parametric.transform(m, x))
    np.testing.assert_array_equal(np.asarray(parametric.transform(again, x)), y)
    other = parametric.fit_umap(jax.random.key(1), x, decoder=True, **hyper)
    assert not np.allclose(np.asarray(parametric.transform(other, x)), y)
    path = maps.save(m, tmp_path / "pmap")
    back = maps.load(path)
    assert isinstance(back, maps.ParametricMap) and back.method == "umap" and back.a == m.a
    np.testing.assert_array_equal(np.asarray(maps.transform(back, jax.random.key(5), x)), y)
    np.testing.assert_array_equal(
        np.asarray(maps.inverse_transform(back, jax.random.key(5), y)),
        np.asarray(parametric.inverse_transform(m, y)),
    )
    # A forward pass: one matrix product per layer, as numpy does it.
    h = (x - np.asarray(m.shift)) / float(m.scale)
    for i, layer in enumerate(m.encoder.layers):
        h = h @ np.asarray(layer.kernel[...]) + np.asarray(layer.bias[...])
        h = np.maximum(h, 0) if i < len(m.encoder.layers) - 1 else h
    np.testing.assert_allclose(y, h, rtol=1e-4, atol=1e-5)
    path.write_bytes(path.read_bytes()[:-7] + b"corrupt")
    with pytest.raises(CheckpointError):
        maps.load(path)


def test_bad_arguments_raise(tiny):
    x, hyper, m = tiny
    no_decoder = parametric.fit_tsne(
        jax.random.key(0), x, perplexity=5.0, num_steps=2, batch_size=8, widths=(4,)
    )
    with pytest.raises(InputError, match="no decoder"):
        parametric.inverse_transform(no_decoder, np.zeros((2, 2)))
    with pytest.raises(InputError, match="x must be"):
        parametric.transform(m, np.zeros((2, 5)))
    with pytest.raises(InputError, match="NaN"):
        parametric.transform(m, np.full((2, 4), np.nan))
    with pytest.raises(InputError, match="batch_size"):
        parametric.fit_tsne(jax.random.key(0), x, perplexity=5.0, batch_size=100)
    with pytest.raises(InputError, match="unknown options"):
        maps.transform(m, jax.random.key(0), x, num_steps=3)
    with pytest.raises(InputError, match="ParametricMap"):
        parametric.transform(maps.TSNEMap(x, x[:, :2]), x)
