"""Binarised images: each pixel a Bernoulli draw with its intensity as probability.

Burda et al. (2016) and most likelihood tables on MNIST train on binarised digits. Two ways:
*fixed* (one draw of the data set, ``binarize``) and *dynamic* (a fresh draw at every visit,
``binarize_batch`` inside the training step; ``train.fit(binarize="dynamic")``). Test images are
binarised once: ``binarize(jax.random.key(BINARIZED_TEST_SEED), test_images)``, the set every
evaluation of a binarised run reads (the trainers' per-epoch evaluation, ``experiments/burda_nll.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from latentjax.data._images import validate_images
from latentjax.errors import InputError

BINARIZE = ("none", "fixed", "dynamic")
# The one fixed binarisation of test images (a data set's definition, like its split).
BINARIZED_TEST_SEED = 0
_CHUNK = 4096


@jax.jit
def _draw(key, first, images):
    def one(i, image):
        p = image.astype(jnp.float32) / 255.0
        return jax.random.bernoulli(jax.random.fold_in(key, i), p).astype(jnp.uint8) * 255

    return jax.vmap(one)(first + jnp.arange(images.shape[0], dtype=jnp.int32), images)


def binarize(key: jax.Array, images: ArrayLike) -> np.ndarray:
    """One Bernoulli draw of uint8 images: pixel ``v`` becomes 255 with probability ``v / 255``, else 0.

    Image ``i`` draws with ``jax.random.fold_in(key, i)``, so its draw does not depend on the
    other images (a prefix of a data set binarises as the whole set's prefix) and chunks of
    ``4096`` images bound the memory.

    Args:
      key: the draw's key.
      images: uint8 ``(n, h, w, c)``.

    Returns:
      uint8 numpy ``(n, h, w, c)`` of 0s and 255s.

    Raises:
      DataError: ``images`` not uint8 ``(n, h, w, c)``.

    Examples:
      >>> x = binarize(jax.random.key(0), np.full((2, 4, 4, 1), 128, np.uint8))
      >>> sorted(np.unique(x).tolist())
      [0, 255]
    """
    images = validate_images(images, what="data.binarize: images", dtype="uint8")
    parts = [
        np.asarray(_draw(key, jnp.int32(i), images[i : i + _CHUNK])) for i in range(0, len(images), _CHUNK)
    ]
    return np.concatenate(parts)


def binarize_batch(keys: jax.Array, x: jax.Array) -> jax.Array:
    """A fresh draw of each float image of a batch (traceable: the training step calls it).

    Args:
      keys: one key per image ``(b,)``.
      x: float ``(b, h, w, c)`` in [0, 1].

    Returns:
      float32 ``(b, h, w, c)`` of 0s and 1s; pixel ``(i, ...)`` is 1 with probability ``x[i, ...]``.

    Examples:
      >>> x = jnp.full((3, 2, 2, 1), 0.5)
      >>> sorted(np.unique(binarize_batch(jax.random.split(jax.random.key(0), 3), x)).tolist())
      [0.0, 1.0]
    """
    return jax.vmap(lambda k, xi: jax.random.bernoulli(k, xi).astype(jnp.float32))(keys, x)


def check_binarize(binarize: str, *, where: str) -> str:
    """``binarize`` if it is one of ``BINARIZE``, else ``InputError``.

    Examples:
      >>> check_binarize("dynamic", where="train.fit")
      'dynamic'
    """
    if binarize not in BINARIZE:
        raise InputError(f"{where}: binarize must be one of {BINARIZE}, got {binarize!r}")
    return binarize
