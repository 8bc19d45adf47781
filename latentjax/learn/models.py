"""Autoencoders and VAEs as Flax NNX modules, used through single-example pure functions.

A model is an ``nnx.Module`` (a pytree in flax 0.12); every function here takes one example
(an image ``(h, w, c)`` in [0, 1] or a latent ``(latent_dim,)``) and works under ``jax.jit``,
``jax.vmap`` and ``jax.grad``. Batch with ``jax.vmap(fn, in_axes=(None, 0))``. The conv layers'
fast CPU forms live in ``learn/_conv.py``.

Inputs are checked first (``learn/_inputs.py``): an image must be a float ``(h, w, c)`` (uint8
images raise; convert them with ``to_float``) and a latent ``(latent_dim,)``, also under ``jit``;
NaN/inf and image values outside [0, 1] raise ``InputError`` in eager calls (traced values are not
inspected; see DEVELOPERS.md, "Validation"). dtypes: models compute in float32, their parameters'
dtype (or ``Config.compute_dtype`` inside the layers), by design: float64 inputs with JAX's x64
enabled give float32 results. Every parameter is a strongly typed float32, so a user's jitted
step compiles once.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.typing import ArrayLike

from latentjax import _checks, data
from latentjax.errors import InputError
from latentjax.learn import _inputs, _networks
from latentjax.learn import _xla as xla
from latentjax.learn._config import (  # noqa: F401  (re-exported: models.Config, models.compute_dtype)
    ACTIVATIONS,
    ARCHS,
    KINDS,
    LIKELIHOODS,
    PRECISIONS,
    Config,
    burgess_config,
    compute_dtype,
)
from latentjax.learn._gaussian import Gaussian, kl_divergence  # noqa: F401  (re-exported)
from latentjax.learn._gaussian import log_normal as _log_normal
from latentjax.learn._gaussian import reparameterize as _reparameterize


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
        elif cfg.conv_net == "burgess":
            self.encoder = _networks.BurgessEncoder(cfg, out_dim, rngs=rngs)
            self.decoder = _networks.BurgessDecoder(cfg, rngs=rngs)
        else:
            self.encoder = _networks.ConvEncoder(cfg, out_dim, rngs=rngs)
            self.decoder = _networks.ConvDecoder(cfg, rngs=rngs)
        # float32 given explicitly: a weakly typed scalar would turn strong after the first optimizer
        # update and make a jitted step compile again.
        self.log_scale = nnx.Param(jnp.full((), -2.0, jnp.float32)) if cfg.likelihood == "gaussian" else None
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


def _image(model: AutoEncoder, x, name: str, fn: str) -> jax.Array:
    return _inputs.image(x, model.config.image_shape, name, where=f"learn.models.{fn}")


def _latent(model: AutoEncoder, z, name: str, fn: str) -> jax.Array:
    return _inputs.latent(z, model.config.latent_dim, name, where=f"learn.models.{fn}")


def _encode(model: AutoEncoder, x: jax.Array) -> Gaussian:
    out = model.encoder(x.astype(model.config.compute_dtype)).astype(jnp.float32)
    if model.config.kind == "ae":
        return Gaussian(out, None)
    mean, log_var = jnp.split(out, 2)
    return Gaussian(mean, log_var)


def _decode_logits(model: AutoEncoder, z: jax.Array) -> jax.Array:
    return model.decoder(z.astype(model.config.compute_dtype)).astype(jnp.float32)


def encode(model: AutoEncoder, x: ArrayLike) -> Gaussian:
    """q(z|x) for one image.

    Args:
      model: the model.
      x: one float image ``(h, w, c)`` in [0, 1].

    Returns:
      ``Gaussian(mean, log_var)``, each ``(latent_dim,)`` (``log_var`` None for an autoencoder).

    Raises:
      InputError: ``x`` of another shape, not float, or (eager) with NaN or values outside [0, 1].

    Examples:
      >>> model = create(jax.random.key(0), Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8))
      >>> encode(model, jnp.zeros((8, 8, 1))).mean.shape
      (2,)
    """
    return _encode(model, _image(model, x, "x", "encode"))


@xla.lazy_jit
def _encode_means(model: AutoEncoder, images: jax.Array) -> jax.Array:
    x = to_float(images) if images.dtype == jnp.uint8 else images.astype(jnp.float32)
    return jax.vmap(lambda xi: _encode(model, xi).mean)(x)


def encode_images(model: AutoEncoder, images: ArrayLike, *, batch_size: int = 1000):
    """Posterior means of images ``(n, h, w, c)`` as a numpy array ``(n, latent_dim)``.

    Chunks of ``batch_size`` (the last one padded) go through one jitted ``vmap`` of ``encode``,
    so it compiles once per model and chunk shape, however often it is called.

    Args:
      model: the model.
      images: ``(n, h, w, c)`` of the model's image shape, uint8 in [0, 255] or float in [0, 1].
      batch_size: images per compiled chunk.

    Returns:
      float32 numpy ``(n, latent_dim)``.

    Raises:
      DataError: ``images`` of another shape or dtype, empty, or with NaN or values out of range.
      InputError: ``batch_size`` not a positive integer.

    Examples:
      >>> model = create(jax.random.key(0), Config(image_shape=(8, 8, 1), latent_dim=3, hidden=8))
      >>> encode_images(model, np.zeros((5, 8, 8, 1), np.uint8)).shape
      (5, 3)
    """
    where = "learn.models.encode_images"
    batch_size = _checks.index(batch_size, "batch_size", where=where, minimum=1)
    images = data.validate_images(images, what=f"{where}: images", image_shape=model.config.image_shape)
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

    Raises:
      InputError: ``z`` of another shape, not real, or (eager) with NaN/inf.

    Examples:
      >>> model = create(jax.random.key(0), Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8))
      >>> decode_logits(model, jnp.zeros(2)).shape
      (8, 8, 1)
    """
    return _decode_logits(model, _latent(model, z, "z", "decode_logits"))


def decode(model: AutoEncoder, z: ArrayLike) -> jax.Array:
    """The mean image for one latent.

    Args:
      model: the model.
      z: one latent ``(latent_dim,)``.

    Returns:
      ``(h, w, c)`` in [0, 1].

    Raises:
      InputError: ``z`` of another shape, not real, or (eager) with NaN/inf.

    Examples:
      >>> model = create(jax.random.key(0), Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8))
      >>> float(decode(model, jnp.zeros(2)).max()) <= 1.0
      True
    """
    return jax.nn.sigmoid(_decode_logits(model, _latent(model, z, "z", "decode")))


def reconstruct(model: AutoEncoder, x: ArrayLike) -> jax.Array:
    """Decodes the posterior mean of one image.

    Args:
      model: the model.
      x: one float image ``(h, w, c)`` in [0, 1].

    Returns:
      The reconstruction ``(h, w, c)`` in [0, 1].

    Examples:
      >>> model = create(jax.random.key(0), Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8))
      >>> reconstruct(model, jnp.zeros((8, 8, 1))).shape
      (8, 8, 1)
    """
    x = _image(model, x, "x", "reconstruct")
    return jax.nn.sigmoid(_decode_logits(model, _encode(model, x).mean))


def log_likelihood(model: AutoEncoder, x: ArrayLike, z: ArrayLike) -> jax.Array:
    """Log p(x|z), summed over pixels.

    Bernoulli: the cross-entropy of sigmoid(logits) against pixel intensities in [0, 1] (the
    usual choice for MNIST-like data; a proper likelihood for binarised pixels). Gaussian:
    Normal(sigmoid(logits), exp(log_scale)) per pixel.

    Args:
      model: the model.
      x: one float image ``(h, w, c)`` in [0, 1].
      z: one latent ``(latent_dim,)``.

    Returns:
      A scalar.

    Examples:
      >>> model = create(jax.random.key(0), Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8))
      >>> float(log_likelihood(model, jnp.zeros((8, 8, 1)), jnp.zeros(2))) < 0
      True
    """
    return _log_likelihood(
        model, _image(model, x, "x", "log_likelihood"), _latent(model, z, "z", "log_likelihood")
    )


def _log_likelihood(model: AutoEncoder, x: jax.Array, z: jax.Array) -> jax.Array:
    logits = _decode_logits(model, z)
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


def elbo(model: AutoEncoder, key: jax.Array, x: ArrayLike, *, beta: float = 1.0) -> jax.Array:
    """The (beta-weighted) evidence lower bound of one image: E_q[log p(x|z)] - beta KL(q || p).

    One reparameterised sample of z (Kingma & Welling 2014, eq. 7; beta as in Higgins et al.
    2017). For an autoencoder (``kind="ae"``) it is log p(x|z) at the deterministic code.

    Args:
      model: the model.
      key: draws z.
      x: one float image ``(h, w, c)`` in [0, 1].
      beta: the KL weight.

    Returns:
      A scalar (higher is better).

    Examples:
      >>> model = create(jax.random.key(0), Config(latent_dim=2, hidden=32))
      >>> elbo(model, jax.random.key(1), jnp.zeros((28, 28, 1))).shape
      ()
    """
    x = _image(model, x, "x", "elbo")
    q = _encode(model, x)
    if model.config.kind == "ae":
        return _log_likelihood(model, x, q.mean)
    z = _reparameterize(key, q)
    return _log_likelihood(model, x, z) - beta * kl_divergence(q)


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
    z = temperature * jax.random.normal(key, (model.config.latent_dim,), jnp.float32)
    return jax.nn.sigmoid(_decode_logits(model, z))


def iwae_bound(model: AutoEncoder, key: jax.Array, x: ArrayLike, *, num_samples: int) -> jax.Array:
    """The importance-weighted bound L_k of one image (Burda et al. 2016, eq. 8).

    ``log (1/k) sum_i p(x, z_i) / q(z_i|x)`` with ``z_i ~ q(z|x)``; L_1 is the ELBO with
    beta = 1 and ``L_k`` increases with ``k`` towards log p(x).

    Args:
      model: a VAE.
      key: draws the ``num_samples`` latents.
      x: one float image ``(h, w, c)`` in [0, 1].
      num_samples: ``k``.

    Returns:
      A scalar.

    Raises:
      InputError: ``model`` is not a VAE, ``num_samples`` is not a positive concrete integer (it
        fixes a shape: keep it static under ``jit``), or a bad ``x`` (see ``encode``).

    Examples:
      >>> model = create(jax.random.key(0), Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8))
      >>> iwae_bound(model, jax.random.key(1), jnp.zeros((8, 8, 1)), num_samples=4).shape
      ()
    """
    if model.config.kind != "vae":
        raise InputError("learn.models.iwae_bound: model must be a VAE (kind='vae')")
    num_samples = _checks.index(num_samples, "num_samples", where="learn.models.iwae_bound", minimum=1)
    x = _image(model, x, "x", "iwae_bound")
    q = _encode(model, x)
    z = _reparameterize(key, q, (num_samples,))
    log_px = jax.vmap(lambda zi: _log_likelihood(model, x, zi))(z)
    mean, log_var = (jnp.broadcast_to(a, z.shape) for a in (q.mean, q.log_var))
    log_w = log_px + _log_normal(z, jnp.zeros_like(z), jnp.zeros_like(z)) - _log_normal(z, mean, log_var)
    return jax.nn.logsumexp(log_w) - math.log(num_samples)
