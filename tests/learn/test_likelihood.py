"""Importance-sampled log p(x): against probabilistic PCA's closed form, Burda's theorem 1, and
``models.iwae_bound``."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from jax.scipy.stats import multivariate_normal

from latentjax.errors import InputError
from latentjax.learn import likelihood, models

D, d, SIGMA = 6, 3, 0.5
WIDEN = 1.5  # the proposal's covariance: WIDEN x the posterior's, mean shifted by SHIFT posterior stds
SHIFT = 0.3


@pytest.fixture(scope="module")
def ppca():
    """x = W z + mu + sigma eps: W, mu, 8 examples, the exact log p(x) (scipy, float64), and the
    posterior N(m(x), S) of each example."""
    rng = np.random.default_rng(0)
    w, mu = rng.normal(size=(D, d)), rng.normal(size=D)
    z = rng.normal(size=(8, d))
    x = z @ w.T + mu + SIGMA * rng.normal(size=(8, D))
    exact = scipy.stats.multivariate_normal(mu, w @ w.T + SIGMA**2 * np.eye(D)).logpdf(x)
    m_inv = np.linalg.inv(w.T @ w + SIGMA**2 * np.eye(d))
    post_mean = (x - mu) @ w @ m_inv.T
    post_cov = SIGMA**2 * m_inv
    return w, mu, x, exact, post_mean, post_cov


def _estimator(ppca):
    w, mu, _, _, _, post_cov = ppca
    w, mu = jnp.asarray(w, jnp.float32), jnp.asarray(mu, jnp.float32)
    q_cov = jnp.asarray(WIDEN * post_cov, jnp.float32)
    chol = jnp.linalg.cholesky(q_cov)
    shift = SHIFT * jnp.sqrt(jnp.diag(jnp.asarray(post_cov, jnp.float32)))

    def q_mean(x):  # the posterior mean, in jnp so it is traced with x
        m = jnp.asarray(np.linalg.inv(ppca[0].T @ ppca[0] + SIGMA**2 * np.eye(d)), jnp.float32)
        return m @ w.T @ (x - mu) + shift

    def estimate(key, x, num_samples, chunk_size=5000):
        return likelihood.importance_log_likelihood(
            key,
            x,
            sample_proposal=lambda k, x, n: q_mean(x)[None] + jax.random.normal(k, (n, d)) @ chol.T,
            log_proposal=lambda x, z: multivariate_normal.logpdf(z, q_mean(x), q_cov),
            log_joint=lambda x, z: (
                multivariate_normal.logpdf(z, jnp.zeros(d), jnp.eye(d))
                + jnp.sum(jax.scipy.stats.norm.logpdf(x, w @ z + mu, SIGMA))
            ),
            num_samples=num_samples,
            chunk_size=chunk_size,
        )

    return estimate, q_mean, q_cov


@pytest.mark.accelerator
def test_converges_to_the_closed_form(ppca):
    estimate, _, _ = _estimator(ppca)
    x, exact = jnp.asarray(ppca[2], jnp.float32), ppca[3]
    keys = jax.random.split(jax.random.key(0), len(x))
    with jax.default_matmul_precision("highest"):  # no TF32 dots on a GPU: 0.01 nats is tight
        est = jax.jit(jax.vmap(lambda k, xi: estimate(k, xi, 200_000)))(keys, x)
    np.testing.assert_array_less(np.abs(np.asarray(est) - exact), 0.01)


def test_biased_low_and_increasing_with_k(ppca):
    """E[L_k] increases with k and stays below log p(x) (Burda et al. 2016, theorem 1), and E[L_1] is
    log p(x) - KL(q || p(z|x)) in closed form."""
    estimate, q_mean, q_cov = _estimator(ppca)
    x, exact = jnp.asarray(ppca[2][0], jnp.float32), ppca[3][0]
    post_mean, post_cov = ppca[4][0], ppca[5]
    reps = 4000
    keys = jax.random.split(jax.random.key(1), reps)
    means, sems = [], []
    for k in (1, 4, 32):
        est = np.asarray(jax.jit(jax.vmap(lambda key, k=k: estimate(key, x, k, 8)))(keys))
        means.append(est.mean())
        sems.append(est.std() / math.sqrt(reps))
    assert means[0] < means[1] < means[2] < exact
    assert means[1] - means[0] > 5 * math.hypot(sems[0], sems[1])
    assert exact - means[2] > 0
    # KL(N(a, A) || N(b, B)) in float64
    a, big_a = np.asarray(q_mean(x), np.float64), np.asarray(q_cov, np.float64)
    b_inv = np.linalg.inv(post_cov)
    kl = 0.5 * (
        np.trace(b_inv @ big_a)
        + (post_mean - a) @ b_inv @ (post_mean - a)
        - d
        + np.linalg.slogdet(post_cov)[1]
        - np.linalg.slogdet(big_a)[1]
    )
    assert abs(means[0] - (exact - kl)) < 4 * sems[0]


def test_chunks_stream_one_logsumexp(ppca):
    """k = 10 in chunks of 4 (the last one partial): the log-mean-exp of the 10 weights drawn with
    the documented keys."""
    estimate, q_mean, q_cov = _estimator(ppca)
    x = jnp.asarray(ppca[2][1], jnp.float32)
    key = jax.random.key(2)
    w, mu = jnp.asarray(ppca[0], jnp.float32), jnp.asarray(ppca[1], jnp.float32)
    chol = jnp.linalg.cholesky(q_cov)
    z = jnp.concatenate(
        [q_mean(x)[None] + jax.random.normal(jax.random.fold_in(key, c), (4, d)) @ chol.T for c in range(3)]
    )[:10]
    log_w = [
        scipy.stats.multivariate_normal(np.zeros(d), np.eye(d)).logpdf(zi)
        + scipy.stats.norm(w @ zi + mu, SIGMA).logpdf(x).sum()
        - scipy.stats.multivariate_normal(q_mean(x), q_cov).logpdf(zi)
        for zi in np.asarray(z, np.float64)
    ]
    ref = scipy.special.logsumexp(log_w) - math.log(10)
    assert float(estimate(key, x, 10, 4)) == pytest.approx(ref, abs=1e-4)


@pytest.fixture(scope="module")
def vae():
    cfg = models.Config(image_shape=(8, 8, 1), latent_dim=3, hidden=16)
    model = models.create(jax.random.key(0), cfg)
    images = (np.random.default_rng(0).random((5, 8, 8, 1)) > 0.5).astype(np.float32)
    return model, images


@pytest.mark.accelerator
def test_vae_equals_the_iwae_bound_at_the_documented_keys(vae):
    model, images = vae
    key = jax.random.key(3)
    est = likelihood.log_likelihood(model, key, images, num_samples=7, chunk_size=8, batch_size=2)
    ref = [
        models.iwae_bound(model, jax.random.fold_in(jax.random.fold_in(key, i), 0), x, num_samples=7)
        for i, x in enumerate(images)
    ]
    np.testing.assert_allclose(np.asarray(est), np.asarray(ref), rtol=1e-5)
    uint8 = likelihood.log_likelihood(model, key, (images * 255).astype(np.uint8), num_samples=7)
    np.testing.assert_allclose(np.asarray(uint8), np.asarray(est), rtol=1e-5)


def test_vae_estimate_is_above_the_elbo_whatever_the_chunking(vae):
    """At k = 1,000, in chunks of 300 (a partial last chunk) or one chunk, at other keys: each
    image's estimate is above its mean ELBO (200 draws), and the two agree to sampling noise."""
    model, images = vae
    a = likelihood.log_likelihood(model, jax.random.key(4), images, num_samples=1000, chunk_size=300)
    b = likelihood.log_likelihood(model, jax.random.key(5), images, num_samples=1000, chunk_size=1000)
    elbo = jax.vmap(lambda k: jax.vmap(models.elbo, in_axes=(None, None, 0))(model, k, images))(
        jax.random.split(jax.random.key(6), 200)
    ).mean(0)
    assert np.all(np.asarray(a) > np.asarray(elbo) + 0.5)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=0.3)


def test_bad_arguments_raise(vae):
    model, images = vae
    with pytest.raises(InputError, match="num_samples"):
        likelihood.log_likelihood(model, jax.random.key(0), images, num_samples=0)
    with pytest.raises(InputError, match="batch_size"):
        likelihood.log_likelihood(model, jax.random.key(0), images, batch_size=0)
    ae = models.create(jax.random.key(0), models.Config(kind="ae", image_shape=(8, 8, 1), hidden=8))
    with pytest.raises(InputError, match="VAE"):
        likelihood.log_likelihood(ae, jax.random.key(0), images)


def test_memory_is_bounded_by_the_chunk_not_the_sample_count(ppca):
    """XLA's buffer assignment for k = 10,000 and k = 1,000,000 in chunks of 1,000: about the same
    temporary memory (the scan keeps one chunk; measured 74 and 78 kB), however many samples."""
    estimate, _, _ = _estimator(ppca)
    x = jnp.asarray(ppca[2][0], jnp.float32)

    def temp_bytes(k):
        fn = jax.jit(lambda key, x: estimate(key, x, k, 1000))
        return fn.lower(jax.random.key(0), x).compile().memory_analysis().temp_size_in_bytes

    small, large = temp_bytes(10_000), temp_bytes(1_000_000)
    assert large < 1.2 * small
    assert large < 1_000_000 * 4 / 10  # a tenth of one float per sample
