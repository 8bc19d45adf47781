"""The diagonal Gaussian posterior ``models.encode`` returns, its KL to the prior and its samples.

Private: used through ``models`` (which re-exports ``Gaussian`` and ``kl_divergence``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


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


def reparameterize(key: jax.Array, q: Gaussian, shape=()) -> jax.Array:
    """``mean + std * eps`` with ``eps ~ N(0, I)`` of shape ``shape + mean.shape``, in q's dtype."""
    eps = jax.random.normal(key, shape + q.mean.shape, q.mean.dtype)
    mean, std = (jnp.broadcast_to(a, eps.shape) for a in (q.mean, jnp.exp(0.5 * q.log_var)))
    return mean + std * eps


def log_normal(z, mean, log_var):
    """Log N(z; mean, diag(exp(log_var))), summed over the last axis."""
    return jnp.sum(-0.5 * (jnp.log(2 * jnp.pi) + log_var + (z - mean) ** 2 * jnp.exp(-log_var)), axis=-1)
