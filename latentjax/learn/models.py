"""Autoencoders and VAEs as Flax NNX modules, used through single-example pure functions.

A model is an ``nnx.Module`` (a pytree in flax 0.12); every function here takes one example
(an image ``(h, w, c)`` in [0, 1] or a latent ``(latent_dim,)``) and works under ``jax.jit``,
``jax.vmap`` and ``jax.grad``. Batch with ``jax.vmap(fn, in_axes=(None, 0))``. The conv layers'
fast CPU forms live in ``learn/_conv.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.typing import ArrayLike

from latentjax.errors import InputError
from latentjax.learn import _networks
from latentjax.learn import _xla as xla
from latentjax.learn._config import (  # noqa: F401  (re-exported: models.Config, models.compute_dtype)
    ACTIVATIONS,
    ARCHS,
    KINDS,
    LIKELIHOODS,
    PRECISIONS,
    Config,
    compute_dtype,
)


class Gaussian(NamedTuple):
    """A diagonal Gaussian posterior q(z|x), what ``encode`` returns.

    Attributes:
      mean: ``(latent_dim,)``.
      log_var: ``(latent_dim,)``, or None for a plain autoencoder (``kind="ae"``).

    Examples:
      >>> float(kl_divergence(Gaussian(jnp.zeros(3), jnp.zeros(3))))
      0.0
    """

    mean: jax.Array
    log_var: jax.Array | None


class AutoEncoder(nnx.Module):
    """An encoder, a decoder and (for the Gaussian likelihood) one learned log-scale.

    Build one with ``create``; use it through this module's single-example functions.

    Args:
      cfg: the model's ``Config`` (validated; kept as ``self.config``).
      rngs: initialises the parameters.

    Examples:
      >>> model = AutoEncoder(Config(latent_dim=2, hidden=8), rngs=nnx.Rngs(params=0))
      >>> model.config.latent_dim
      2
    """

    def __init__(self, cfg: Config, *, rngs: nnx.Rngs):
        cfg = cfg.validate()
        out_dim = 2 * cfg.latent_dim if cfg.kind == "vae" else cfg.latent_dim
        if cfg.arch == "mlp":
            self.encoder = _networks.MLPEncoder(cfg, out_dim, rngs=rngs)
            self.decoder = _networks.MLPDecoder(cfg, rngs=rngs)
        else:
            self.encoder = _networks.ConvEncoder(cfg, out_dim, rngs=rngs)
            self.decoder = _networks.ConvDecoder(cfg, rngs=rngs)
        self.log_scale = nnx.Param(jnp.full((), -2.0)) if cfg.likelihood == "gaussian" else None
        self.config = cfg


def create(key: jax.Array, config: Config) -> AutoEncoder:
    """Builds a model with parameters initialised from ``key``.

    Args:
      key: initialises the parameters.
      config: the model.

    Returns:
      An ``AutoEncoder``.

    Raises:
      InputError: an invalid ``config``.

    Examples:
      >>> model = create(jax.random.key(0), Config(latent_dim=2, hidden=32))
      >>> decode(model, jnp.zeros(2)).shape
      (28, 28, 1)
    """
    return AutoEncoder(config, rngs=nnx.Rngs(params=key))


def to_float(images: ArrayLike) -> jax.Array:
    """uint8 images in [0, 255] -> float32 in [0, 1] (any leading shape).

    Args:
      images: uint8 array of any shape.

    Returns:
      float32, the same shape.

    Examples:
      >>> to_float(np.array([0, 255], np.uint8)).tolist()
      [0.0, 1.0]
    """
    return jnp.asarray(images).astype(jnp.float32) / 255.0


def _check_image(model: AutoEncoder, x: jax.Array) -> jax.Array:
    x = jnp.asarray(x)
    if x.shape != tuple(model.config.image_shape):
        raise InputError(
            f"models: expected one image of shape {tuple(model.config.image_shape)}, got {x.shape} "
            "(batch with jax.vmap)"
        )
    return x.astype(jnp.float32)


def _check_latent(model: AutoEncoder, z: jax.Array) -> jax.Array:
    z = jnp.asarray(z)
    if z.shape != (model.config.latent_dim,):
        raise InputError(
            f"models: expected one latent of shape ({model.config.latent_dim},), got {z.shape} "
            "(batch with jax.vmap)"
        )
    return z


def encode(model: AutoEncoder, x: ArrayLike) -> Gaussian:
    """q(z|x) for one image.

    Args:
      model: the model.
      x: one image ``(h, w, c)`` in [0, 1].

    Returns:
      ``Gaussian(mean, log_var)``, each ``(latent_dim,)`` (``log_var`` None for an autoencoder).

    Examples:
      >>> model = create(jax.random.key(0), Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8))
      >>> encode(model, jnp.zeros((8, 8, 1))).mean.shape
      (2,)
    """
    x = _check_image(model, x)
    out = model.encoder(x.astype(model.config.compute_dtype)).astype(jnp.float32)
    if model.config.kind == "ae":
        return Gaussian(out, None)
    mean, log_var = jnp.split(out, 2)
    return Gaussian(mean, log_var)


@xla.lazy_jit
def _encode_means(model: AutoEncoder, images: jax.Array) -> jax.Array:
    return jax.vmap(lambda x: encode(model, x).mean)(to_float(images))


def encode_images(model: AutoEncoder, images: ArrayLike, *, batch_size: int = 1000):
    """Posterior means of uint8 images ``(n, h, w, c)`` as a numpy array ``(n, latent_dim)``.

    Chunks of ``batch_size`` (the last one padded) go through one jitted ``vmap`` of ``encode``,
    so it compiles once per model and chunk shape, however often it is called.

    Args:
      model: the model.
      images: uint8 ``(n, h, w, c)``.
      batch_size: images per compiled chunk.

    Returns:
      float32 numpy ``(n, latent_dim)``.

    Examples:
      >>> model = create(jax.random.key(0), Config(image_shape=(8, 8, 1), latent_dim=3, hidden=8))
      >>> encode_images(model, np.zeros((5, 8, 8, 1), np.uint8)).shape
      (5, 3)
    """
    images = np.asarray(images)
    n = len(images)
    bs = max(1, min(batch_size, n))
    pad = (-n) % bs
    if pad:
        images = np.concatenate([images, np.zeros((pad,) + images.shape[1:], images.dtype)])
    parts = [np.asarray(_encode_means(model, images[i : i + bs])) for i in range(0, len(images), bs)]
    return np.concatenate(parts)[:n].astype(np.float32)


def decode_logits(model: AutoEncoder, z: ArrayLike) -> jax.Array:
    """The decoder's pre-sigmoid output for one latent.

    Args:
      model: the model.
      z: one latent ``(latent_dim,)``.

    Returns:
      float32 logits of shape ``image_shape``.

    Examples:
      >>> model = create(jax.random.key(0), Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8))
      >>> decode_logits(model, jnp.zeros(2)).shape
      (8, 8, 1)
    """
    z = _check_latent(model, z)
    return model.decoder(z.astype(model.config.compute_dtype)).astype(jnp.float32)


def decode(model: AutoEncoder, z: ArrayLike) -> jax.Array:
    """The mean image for one latent.

    Args:
      model: the model.
      z: one latent ``(latent_dim,)``.

    Returns:
      ``(h, w, c)`` in [0, 1].

    Examples:
      >>> model = create(jax.random.key(0), Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8))
      >>> float(decode(model, jnp.zeros(2)).max()) <= 1.0
      True
    """
    return jax.nn.sigmoid(decode_logits(model, z))


def reconstruct(model: AutoEncoder, x: ArrayLike) -> jax.Array:
    """Decodes the posterior mean of one image.

    Args:
      model: the model.
      x: one image ``(h, w, c)`` in [0, 1].

    Returns:
      The reconstruction ``(h, w, c)`` in [0, 1].

    Examples:
      >>> model = create(jax.random.key(0), Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8))
      >>> reconstruct(model, jnp.zeros((8, 8, 1))).shape
      (8, 8, 1)
    """
    return decode(model, encode(model, x).mean)


def log_likelihood(model: AutoEncoder, x: ArrayLike, z: ArrayLike) -> jax.Array:
    """Log p(x|z), summed over pixels.

    Bernoulli: the cross-entropy of sigmoid(logits) against pixel intensities in [0, 1] (the
    usual choice for MNIST-like data; a proper likelihood for binarised pixels). Gaussian:
    Normal(sigmoid(logits), exp(log_scale)) per pixel.

    Args:
      model: the model.
      x: one image ``(h, w, c)`` in [0, 1].
      z: one latent ``(latent_dim,)``.

    Returns:
      A scalar.

    Examples:
      >>> model = create(jax.random.key(0), Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8))
      >>> float(log_likelihood(model, jnp.zeros((8, 8, 1)), jnp.zeros(2))) < 0
      True
    """
    x = _check_image(model, x)
    logits = decode_logits(model, z)
    # Flat pixels: for (h, w, 1) images XLA:CPU would otherwise loop over a trailing axis of
    # size 1 and not vectorise (MLP VAE at batch 128 on 2 cores: the softplus fusion 218 -> 110 us).
    x, logits = x.reshape(-1), logits.reshape(-1)
    if model.config.likelihood == "bernoulli":
        # = x log s(l) + (1 - x) log s(-l), with one softplus per pixel instead of two log-sigmoids
        # (18-38 % faster MLP steps on CPU, same values).
        return jnp.sum(x * logits - jax.nn.softplus(logits))
    mean = jax.nn.sigmoid(logits)
    log_scale = model.log_scale[...]
    return jnp.sum(-0.5 * ((x - mean) * jnp.exp(-log_scale)) ** 2 - log_scale - 0.5 * jnp.log(2 * jnp.pi))


def kl_divergence(q: Gaussian) -> jax.Array:
    """KL(q || N(0, I)) in closed form (Kingma & Welling 2014, appendix B).

    Args:
      q: a ``Gaussian`` with ``log_var``.

    Returns:
      A scalar >= 0.

    Examples:
      >>> float(kl_divergence(Gaussian(jnp.zeros(2), jnp.zeros(2))))
      0.0
    """
    return 0.5 * jnp.sum(jnp.exp(q.log_var) + q.mean**2 - 1.0 - q.log_var)


def _reparameterize(key: jax.Array, q: Gaussian, shape=()) -> jax.Array:
    eps = jax.random.normal(key, shape + q.mean.shape)
    mean, std = (jnp.broadcast_to(a, eps.shape) for a in (q.mean, jnp.exp(0.5 * q.log_var)))
    return mean + std * eps


def elbo(model: AutoEncoder, key: jax.Array, x: ArrayLike, *, beta: float = 1.0) -> jax.Array:
    """The (beta-weighted) evidence lower bound of one image: E_q[log p(x|z)] - beta KL(q || p).

    One reparameterised sample of z (Kingma & Welling 2014, eq. 7; beta as in Higgins et al.
    2017). For an autoencoder (``kind="ae"``) it is log p(x|z) at the deterministic code.

    Args:
      model: the model.
      key: draws z.
      x: one image ``(h, w, c)`` in [0, 1].
      beta: the KL weight.

    Returns:
      A scalar (higher is better).

    Examples:
      >>> model = create(jax.random.key(0), Config(latent_dim=2, hidden=32))
      >>> elbo(model, jax.random.key(1), jnp.zeros((28, 28, 1))).shape
      ()
    """
    q = encode(model, x)
    if model.config.kind == "ae":
        return log_likelihood(model, x, q.mean)
    z = _reparameterize(key, q)
    return log_likelihood(model, x, z) - beta * kl_divergence(q)


def sample(model: AutoEncoder, key: jax.Array, *, temperature: float = 1.0) -> jax.Array:
    """Draws z ~ N(0, temperature^2 I) and decodes it to a mean image.

    Args:
      model: the model.
      key: draws z.
      temperature: the prior's scale.

    Returns:
      ``(h, w, c)`` in [0, 1].

    Examples:
      >>> model = create(jax.random.key(0), Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8))
      >>> sample(model, jax.random.key(1)).shape
      (8, 8, 1)
    """
    z = temperature * jax.random.normal(key, (model.config.latent_dim,))
    return decode(model, z)


def _log_normal(z, mean, log_var):
    return jnp.sum(-0.5 * (jnp.log(2 * jnp.pi) + log_var + (z - mean) ** 2 * jnp.exp(-log_var)), axis=-1)


def iwae_bound(model: AutoEncoder, key: jax.Array, x: ArrayLike, *, num_samples: int) -> jax.Array:
    """The importance-weighted bound L_k of one image (Burda et al. 2016, eq. 8).

    ``log (1/k) sum_i p(x, z_i) / q(z_i|x)`` with ``z_i ~ q(z|x)``; L_1 is the ELBO with
    beta = 1 and ``L_k`` increases with ``k`` towards log p(x).

    Args:
      model: a VAE.
      key: draws the ``num_samples`` latents.
      x: one image ``(h, w, c)`` in [0, 1].
      num_samples: ``k``.

    Returns:
      A scalar.

    Raises:
      InputError: ``model`` is not a VAE.

    Examples:
      >>> model = create(jax.random.key(0), Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8))
      >>> iwae_bound(model, jax.random.key(1), jnp.zeros((8, 8, 1)), num_samples=4).shape
      ()
    """
    if model.config.kind != "vae":
        raise InputError("models.iwae_bound: model must be a VAE (kind='vae')")
    q = encode(model, x)
    z = _reparameterize(key, q, (num_samples,))
    log_px = jax.vmap(lambda zi: log_likelihood(model, x, zi))(z)
    mean, log_var = (jnp.broadcast_to(a, z.shape) for a in (q.mean, q.log_var))
    log_w = log_px + _log_normal(z, jnp.zeros_like(z), jnp.zeros_like(z)) - _log_normal(z, mean, log_var)
    return jax.nn.logsumexp(log_w) - jnp.log(num_samples)
