"""t-SNE against references: openTSNE's affinities, the closed-form KL gradient, exact vs FFT
repulsion, a Python loop of steps, and openTSNE's trustworthiness on real Fashion-MNIST."""

import gzip

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax.errors import InputError
from latentjax.look import metrics, neighbors, tsne


def _blobs(n=300, d=10, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(5, d)) * 4
    return (centers[rng.integers(0, 5, n)] + rng.normal(size=(n, d))).astype(np.float32)


def test_calibration_hits_target_entropy():
    x = _blobs(400)
    nb = neighbors.knn(x, k=45)
    p = np.asarray(tsne.calibrate(nb.distances, perplexity=15.0), np.float64)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    entropy = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=1)
    np.testing.assert_allclose(entropy, np.log(15.0), atol=2e-4)


def test_calibration_with_tied_distances_is_uniform_and_finite():
    p = np.asarray(tsne.calibrate(np.ones((3, 4), np.float32), perplexity=2.0))
    np.testing.assert_allclose(p, 0.25, atol=1e-6)


def test_affinities_equal_opentsne_exact():
    openTSNE = pytest.importorskip("openTSNE")
    x = _blobs(300)
    ours = tsne.affinities(x, perplexity=10.0)
    ref = openTSNE.affinity.PerplexityBasedNN(x.astype(np.float64), perplexity=10.0, method="exact").P
    dense = np.zeros((300, 300))
    dense[np.asarray(ours.rows), np.asarray(ours.cols)] = np.asarray(ours.weights)
    np.testing.assert_allclose(dense, dense.T, atol=1e-9)
    np.testing.assert_allclose(dense.sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(dense, ref.toarray(), atol=2e-6, rtol=2e-3)


def _dense_kl(y, p_dense):
    d2 = jnp.sum((y[:, None, :] - y[None, :, :]) ** 2, axis=-1)
    w = jnp.where(jnp.eye(y.shape[0], dtype=bool), 0.0, 1.0 / (1.0 + d2))
    q = w / jnp.sum(w)
    mask = p_dense > 0
    return jnp.sum(
        jnp.where(
            mask, p_dense * (jnp.log(jnp.where(mask, p_dense, 1.0)) - jnp.log(jnp.where(mask, q, 1.0))), 0.0
        )
    )


def test_gradient_and_kl_equal_autodiff_of_dense_kl():
    x = _blobs(120)
    p = tsne.affinities(x, perplexity=8.0)
    dense = jnp.zeros((120, 120)).at[p.rows, p.cols].set(p.weights)
    y = jax.random.normal(jax.random.key(3), (120, 2)) * 3
    kl_ref, grad_ref = jax.value_and_grad(_dense_kl)(y, dense)
    grad, z = tsne.gradient(y, p, method="exact")
    # openTSNE's convention: the gradient without the constant factor 4.
    np.testing.assert_allclose(4 * np.asarray(grad), np.asarray(grad_ref), rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(float(tsne.kl_divergence(p, y)), float(kl_ref), rtol=1e-4)


# Default grid (boxes of side <= 1) on a dense map; a sparser map needs finer boxes for 1 %
# (openTSNE's default grid errs by about 4 % there, as ours).
@pytest.mark.parametrize("n, scale, num_boxes", [(2000, 3.0, None), (3000, 8.0, 128)])
def test_fft_repulsion_agrees_with_exact(n, scale, num_boxes):
    x = _blobs(n, seed=1)
    p = tsne.affinities(x, perplexity=30.0)
    y = jax.random.normal(jax.random.key(4), (n, 2)) * scale
    g_exact, z_exact = tsne.gradient(y, p, method="exact")
    g_fft, z_fft = tsne.gradient(y, p, method="fft", num_boxes=num_boxes)
    err = float(jnp.linalg.norm(g_fft - g_exact) / jnp.linalg.norm(g_exact))
    assert err < 0.01, err
    np.testing.assert_allclose(float(z_fft), float(z_exact), rtol=2e-3)


def test_optimize_chunks_equal_a_loop_of_steps():
    x = _blobs(150)
    p = tsne.affinities(x, perplexity=10.0)
    y0 = tsne.initialize(jax.random.key(0), x)
    got = tsne.optimize(p, y0, num_steps=30, early_exaggeration_steps=10, chunk_size=7, method="exact")
    s = tsne.init(p, y0)
    for i in range(30):
        exag = 12.0 if i < 10 else 1.0
        s = tsne.step(s, learning_rate=max(150 / exag, 50.0), exaggeration=exag, momentum=0.8, method="exact")
    assert int(got.step) == 30 and int(s.step) == 30
    np.testing.assert_allclose(np.asarray(got.embedding), np.asarray(s.embedding), rtol=1e-4, atol=1e-5)


def test_initialize_pca_scale_and_random():
    x = _blobs(200)
    y0 = np.asarray(tsne.initialize(jax.random.key(0), x))
    np.testing.assert_allclose(y0[:, 0].std(), 1e-4, rtol=1e-3)
    r = np.asarray(tsne.initialize(jax.random.key(0), x, method="random"))
    assert r.shape == (200, 2) and 0.5e-4 < r.std() < 2e-4


def test_embed_separates_blobs():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 8)) * 10
    labels = rng.integers(0, 4, 400)
    x = (centers[labels] + rng.normal(size=(400, 8))).astype(np.float32)
    y = tsne.embed(jax.random.key(0), x, perplexity=20.0, num_steps=300)
    assert y.shape == (400, 2) and bool(jnp.all(jnp.isfinite(y)))
    assert float(metrics.knn_accuracy(y, labels, k=5)) > 0.99


@pytest.mark.parametrize(
    "call",
    [
        lambda: tsne.affinities(np.zeros((10, 3)), perplexity=30.0),
        lambda: tsne.affinities(np.zeros(10), perplexity=3.0),
        lambda: tsne.calibrate(np.ones((5, 4)), perplexity=9.0),
        lambda: tsne.initialize(jax.random.key(0), np.zeros((10, 3)), method="umap"),
        lambda: tsne.optimize(tsne.affinities(_blobs(40), perplexity=5.0), np.zeros((40, 2)), method="bh"),
        lambda: tsne.optimize(tsne.affinities(_blobs(40), perplexity=5.0), np.zeros((40, 2)), num_steps=5),
        lambda: tsne.kl_divergence(tsne.affinities(_blobs(40), perplexity=5.0), np.zeros((30, 2))),
    ],
)
def test_bad_input(call):
    with pytest.raises(InputError, match="tsne"):
        call()


def _fashion(data_dir, n):
    raw = gzip.open(data_dir / "fashion_mnist" / "train-images-idx3-ubyte.gz", "rb").read()
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784)[:n]
    return images.astype(np.float32) / 255.0


@pytest.mark.slow
def test_fashion_mnist_trustworthiness_matches_opentsne(data_dir):
    openTSNE = pytest.importorskip("openTSNE")
    from latentjax.look import pca

    x = _fashion(data_dir, 2000)
    x50 = np.asarray(pca.transform(pca.fit(x, num_components=50), x))
    ref = np.asarray(openTSNE.TSNE(random_state=0, n_jobs=2).fit(x50.astype(np.float64)))
    ours = tsne.embed(jax.random.key(0), x50)
    t_ref = float(metrics.trustworthiness(x50, ref, k=10))
    t_ours = float(metrics.trustworthiness(x50, ours, k=10))
    assert t_ours >= t_ref - 0.01, (t_ours, t_ref)
    p = tsne.affinities(x50)
    # The 2 % KL target is the benchmark's, at n = 10,000 (benchmarks/dimred.py). At n = 2,000 one run
    # of each library spreads by a few percent: seen here 0.893 vs 0.869 (+2.7 %) in one full-suite run
    # and within 2 % in others, so this check allows 5 %.
    assert float(tsne.kl_divergence(p, ours)) <= 1.05 * float(tsne.kl_divergence(p, ref))
