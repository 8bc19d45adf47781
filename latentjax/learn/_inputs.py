"""The argument checks of ``models``' single-example functions: one image, one latent.

Private: ``models`` calls these first. Static facts (shape, dtype kind) are checked always, also
under ``jit``/``vmap``; value facts (NaN/inf, the [0, 1] range) only when the argument is concrete
(DEVELOPERS.md, "Validation"). Both return float32 (models compute in float32 by design).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from latentjax import _checks
from latentjax.errors import InputError


def _as_array(x, name: str, where: str):
    # rank and values are checked below, per argument; this refuses None and ragged lists
    return _checks.array(x, name, where=where, kind=None, check_finite=False)


def image(x, image_shape: tuple[int, ...], name: str, *, where: str) -> jax.Array:
    """One float image of ``image_shape`` with values in [0, 1], as float32.

    Raises:
      InputError: another shape, a non-float dtype (uint8 0..255 would be read 255 times too
        bright), or (when concrete) NaN/inf or values outside [0, 1].

    Examples:
      >>> image(np.zeros((2, 2, 1), np.uint8), (2, 2, 1), "x", where="learn.models.encode")
      Traceback (most recent call last):
      ...
      latentjax.errors.InputError: learn.models.encode: x must be a float image in [0, 1], got dtype ...
    """
    x = _as_array(x, name, where)
    shape = tuple(image_shape)
    if tuple(x.shape) != shape:
        raise InputError(
            f"{where}: {name} must be one image of shape {shape}, got shape {tuple(x.shape)} "
            "(batch with jax.vmap)"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise InputError(
            f"{where}: {name} must be a float image in [0, 1], got dtype {x.dtype} "
            "(convert uint8 images with models.to_float)"
        )
    if not _checks.is_traced(x):
        _checks.finite(x, name, where=where)
        a = np.asarray(x, np.float32)
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 1.0:
            raise InputError(f"{where}: {name} must lie in [0, 1], got values in [{lo:g}, {hi:g}]")
    return jnp.asarray(x).astype(jnp.float32)


def latent(z, latent_dim: int, name: str, *, where: str) -> jax.Array:
    """One latent ``(latent_dim,)`` of real numbers (finite when concrete), as float32.

    Raises:
      InputError: another shape, a non-real dtype, or (when concrete) NaN/inf.

    Examples:
      >>> latent(np.zeros(3), 2, "z", where="learn.models.decode")
      Traceback (most recent call last):
      ...
      latentjax.errors.InputError: learn.models.decode: z must be one latent of shape (2,), got shape ...
    """
    z = _as_array(z, name, where)
    if tuple(z.shape) != (latent_dim,):
        raise InputError(
            f"{where}: {name} must be one latent of shape ({latent_dim},), got shape {tuple(z.shape)} "
            "(batch with jax.vmap)"
        )
    if not (jnp.issubdtype(z.dtype, jnp.floating) or jnp.issubdtype(z.dtype, jnp.integer) or z.dtype == bool):
        raise InputError(f"{where}: {name} must be a real array, got dtype {z.dtype}")
    _checks.finite(z, name, where=where)
    return jnp.asarray(z).astype(jnp.float32)
