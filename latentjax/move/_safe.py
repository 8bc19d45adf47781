"""Square roots and quotients with finite gradients where their argument is zero.

``jnp.sqrt`` has an infinite derivative at 0 and ``x / 0`` a NaN one, and ``jnp.where`` does not stop
a NaN gradient of the branch it discards; the inner ``where`` feeds that branch a harmless 1 instead
(the "double where" of the JAX FAQ, "Gradients contain NaN where using where").
"""

import jax
import jax.numpy as jnp


def _safe_sqrt(sq: jax.Array, *, at_zero: float = 0.0) -> jax.Array:
    """``sqrt(sq)`` where ``sq > 0``, else ``at_zero``; the gradient is 0 there, not inf or NaN."""
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), at_zero)


def _safe_norm(x: jax.Array, *, at_zero: float = 1.0) -> jax.Array:
    """The Euclidean norm of ``x``, ``at_zero`` (1, a safe divisor) for the zero vector."""
    return _safe_sqrt(jnp.sum(x * x), at_zero=at_zero)


def _safe_divide(num: jax.Array, den: jax.Array) -> jax.Array:
    """``num / den`` where ``den > 0``, else 0, with finite gradients."""
    positive = den > 0
    return jnp.where(positive, num / jnp.where(positive, den, 1.0), 0.0)
