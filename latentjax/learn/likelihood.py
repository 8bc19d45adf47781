"""log p(x) by importance sampling: a streaming estimator over any proposal, and a VAE's test NLL.

``importance_log_likelihood`` estimates one example's marginal likelihood from a proposal and a
joint density, streaming a logsumexp over chunks of samples in a ``lax.scan`` (memory O(chunk), not
O(num_samples)); ``log_likelihood`` does it for a VAE's images with q(z|x) as the proposal, in
blocks of images mapped with ``lax.map(batch_size=)``, as Burda et al. (2016, sec. 5) estimate the
test log-likelihood with k = 5,000 samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from latentjax import _checks, data
from latentjax.errors import InputError
from latentjax.learn import _xla as xla
from latentjax.learn import models
from latentjax.learn._gaussian import log_normal as _log_normal
from latentjax.learn._gaussian import reparameterize as _reparameterize


def importance_log_likelihood(
    key: jax.Array,
    x: ArrayLike,
    *,
    sample_proposal: Callable,
    log_proposal: Callable,
    log_joint: Callable,
    num_samples: int,
    chunk_size: int = 1000,
) -> jax.Array:
    """``log (1/k) sum_i p(x, z_i) / q(z_i)`` with ``z_i ~ q``: an estimate of log p(x) for one ``x``.

    The ``k = num_samples`` samples are drawn in chunks of ``chunk_size``; each chunk's log weights
    are folded into a running logsumexp inside a ``lax.scan``, so memory stays O(``chunk_size``)
    whatever ``k``. Chunk ``c`` draws with ``jax.random.fold_in(key, c)``; a last partial chunk is
    drawn whole and its surplus samples get weight zero. The estimate is a lower bound in
    expectation, ``E[estimate] <= log p(x)``, increasing with ``k`` and converging to log p(x) when
    ``p(x, z) / q(z)`` is bounded (Burda et al. 2016, theorem 1); ``jit`` and ``vmap`` it freely.

    Args:
      key: draws the samples.
      x: one example (any shape ``sample_proposal`` and ``log_joint`` accept).
      sample_proposal: ``(key, x, n) -> z``, ``n`` samples ``(n, *z_shape)`` of the proposal.
      log_proposal: ``(x, z) -> scalar``, log q(z) of one sample.
      log_joint: ``(x, z) -> scalar``, log p(x, z) of one sample.
      num_samples: ``k``, the number of importance samples.
      chunk_size: samples per chunk (at most ``k`` are used).

    Returns:
      A float scalar.

    Raises:
      InputError: ``num_samples`` or ``chunk_size`` is not a positive integer.

    Examples:
      >>> from jax.scipy.stats import norm
      >>> est = importance_log_likelihood(  # z ~ N(0, 1), x | z ~ N(z, 1): log p(x) = log N(x; 0, 2)
      ...     jax.random.key(0), 0.5,
      ...     sample_proposal=lambda k, x, n: x / 2 + jax.random.normal(k, (n,)),
      ...     log_proposal=lambda x, z: norm.logpdf(z, x / 2, 1.0),
      ...     log_joint=lambda x, z: norm.logpdf(z) + norm.logpdf(x, z),
      ...     num_samples=20_000, chunk_size=4096)
      >>> round(float(est), 2), round(float(norm.logpdf(0.5, 0.0, 2**0.5)), 2)
      (-1.33, -1.33)

    References:
      Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016, eq. 8 and
      theorem 1.
    """
    where = "learn.likelihood.importance_log_likelihood"
    k = _checks.index(num_samples, "num_samples", where=where, minimum=1)
    chunk = min(_checks.index(chunk_size, "chunk_size", where=where, minimum=1), k)
    num_chunks = -(-k // chunk)

    def body(acc, c):
        z = sample_proposal(jax.random.fold_in(key, c), x, chunk)
        log_w = jax.vmap(lambda zi: log_joint(x, zi) - log_proposal(x, zi))(z)
        if k % chunk:  # only the last chunk has surplus samples: weight zero
            log_w = jnp.where(c * chunk + jnp.arange(chunk) < k, log_w, -jnp.inf)
        return jnp.logaddexp(acc, jax.nn.logsumexp(log_w)), None

    init = jnp.full((), -jnp.inf, jnp.result_type(float))
    acc, _ = jax.lax.scan(body, init, jnp.arange(num_chunks))
    return acc - math.log(k)


def _vae_example(model: models.AutoEncoder, key: jax.Array, x: jax.Array, num_samples: int, chunk_size: int):
    q = models.encode(model, x)  # once per image: the scan's chunks close over it
    return importance_log_likelihood(
        key,
        x,
        sample_proposal=lambda k, x, n: _reparameterize(k, q, (n,)),
        log_proposal=lambda x, z: _log_normal(z, q.mean, q.log_var),
        log_joint=lambda x, z: (
            models.log_likelihood(model, x, z) + _log_normal(z, jnp.zeros_like(z), jnp.zeros_like(z))
        ),
        num_samples=num_samples,
        chunk_size=chunk_size,
    )


@xla.lazy_jit(static_argnames=("num_samples", "chunk_size", "batch_size"))
def _vae_images(model, key, images, index, *, num_samples: int, chunk_size: int, batch_size: int):
    def one(args):
        x, i = args
        x = models.to_float(x) if x.dtype == jnp.uint8 else x.astype(jnp.float32)
        return _vae_example(model, jax.random.fold_in(key, i), x, num_samples, chunk_size)

    return jax.lax.map(one, (images, index), batch_size=batch_size)


def log_likelihood(
    model: models.AutoEncoder,
    key: jax.Array,
    images: ArrayLike,
    *,
    num_samples: int = 5000,
    chunk_size: int = 500,
    batch_size: int = 16,
) -> jax.Array:
    """Each image's log p(x) under a VAE, importance-sampled with q(z|x) as the proposal.

    ``importance_log_likelihood`` with ``z ~ q(z|x)`` (the encoder's Gaussian), log p(x, z) =
    ``models.log_likelihood(model, x, z)`` + log N(z; 0, I), as Burda et al. (2016, sec. 5)
    estimate test log-likelihoods (k = 5,000); the test NLL is ``-mean``. Image ``i`` draws with
    ``jax.random.fold_in(key, i)`` and its chunk ``c`` with ``fold_in`` of that and ``c``, so with
    ``chunk_size >= num_samples`` image ``i``'s estimate equals
    ``models.iwae_bound(model, fold_in(fold_in(key, i), 0), x_i, num_samples=k)``. One jitted call:
    ``lax.map`` over blocks of ``batch_size`` images, each a ``vmap`` of the chunked scan, so at
    most ``batch_size * chunk_size`` decoder passes are in memory at once.

    Args:
      model: a VAE (``kind="vae"``).
      key: draws the samples.
      images: ``(n, h, w, c)`` of the model's image shape, uint8 in [0, 255] or float in [0, 1]
        (Bernoulli models: binarised images give the discrete likelihood papers report).
      num_samples: ``k``, importance samples per image.
      chunk_size: samples per chunk.
      batch_size: images per vmapped block.

    Returns:
      float32 ``(n,)``: log p(x) per image, in nats.

    Raises:
      InputError: ``model`` not a VAE, or a count not a positive integer.
      DataError: ``images`` of another shape, empty, or out of range.

    Examples:
      >>> cfg = models.Config(image_shape=(4, 4, 1), latent_dim=2, hidden=8)
      >>> model = models.create(jax.random.key(0), cfg)
      >>> images = (jax.random.uniform(jax.random.key(1), (3, 4, 4, 1)) > 0.5).astype(jnp.float32)
      >>> log_likelihood(model, jax.random.key(2), images, num_samples=64, chunk_size=16).shape
      (3,)

    References:
      Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016, sec. 5 and
      eq. 8.
    """
    where = "learn.likelihood.log_likelihood"
    if model.config.kind != "vae":
        raise InputError(f"{where}: model must be a VAE (kind='vae'), got kind={model.config.kind!r}")
    num_samples = _checks.index(num_samples, "num_samples", where=where, minimum=1)
    chunk_size = _checks.index(chunk_size, "chunk_size", where=where, minimum=1)
    batch_size = _checks.index(batch_size, "batch_size", where=where, minimum=1)
    images = data.validate_images(images, what=f"{where}: images", image_shape=model.config.image_shape)
    n = len(images)
    return _vae_images(
        model,
        key,
        jnp.asarray(images),
        jnp.arange(n),
        num_samples=num_samples,
        chunk_size=min(chunk_size, num_samples),
        batch_size=min(batch_size, n),
    )
