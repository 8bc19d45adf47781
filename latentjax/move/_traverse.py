"""Which latent dimension does what: traversals around one latent, and sensitivity to known factors."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.move._edits import _latents
from latentjax.move._paths import _float_dtype
from latentjax.move._safe import _safe_divide, _safe_sqrt


class Sensitivity(NamedTuple):
    """Which latent dimension moves which known factor, from `factor_sensitivity`.

    Attributes:
        correlation: ``(latent_dim, num_factors)`` absolute Pearson correlation between each
            latent-mean coordinate and each factor (0 where either is constant).
        best_dim: ``(num_factors,)`` the latent dimension most correlated with each factor.

    Examples:
        >>> z = jnp.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]])
        >>> s = factor_sensitivity(z, jnp.array([0.0, 1.0, 2.0]))
        >>> s.correlation.shape, s.best_dim
        ((2, 1), Array([0], dtype=int32))
    """

    correlation: jax.Array
    best_dim: jax.Array


def traverse(z: ArrayLike, dim_or_direction: int | ArrayLike, values: ArrayLike) -> jax.Array:
    """Latents ``z + values[i] * direction`` around one point (one latent dimension or a direction).

    Args:
        z: ``(d,)`` latent to start from.
        dim_or_direction: an integer dimension (move along that coordinate; a Python, numpy or
            JAX integer, negative counting from the end, also traced: ``jax.vmap`` over
            dimensions works) or a ``(d,)`` direction (e.g. a principal direction or an attribute
            vector), used as given (not normalised).
        values: ``(m,)`` offsets.

    Returns:
        ``(m, d)`` latents to decode, in the float dtype of ``z``. A traced dimension out of
        range cannot be refused, so it gives NaN latents.

    Raises:
        InputError: the dimension is out of range (concrete) or not an integer, the direction's
            shape is not ``z``'s, or (eager calls) NaN/inf in an argument.

    Examples:
        >>> traverse(jnp.zeros(2), 1, jnp.array([-1.0, 1.0]))
        Array([[ 0., -1.],
               [ 0.,  1.]], dtype=float32)
        >>> jax.vmap(traverse, in_axes=(None, 0, None))(jnp.zeros(2), jnp.arange(2), jnp.ones(1))
        Array([[[1., 0.]],
        <BLANKLINE>
               [[0., 1.]]], dtype=float32)

    References:
        Higgins et al. 2017, "beta-VAE", Fig. 1 (latent traversals).
    """
    where = "move.traverse"
    z = _checks.array(z, "z", where=where, ndim=1)
    values = _checks.array(values, "values", where=where, ndim=1)
    d = z.shape[0]
    dt = _float_dtype(z)
    z, values = jnp.asarray(z, dt), jnp.asarray(values, dt)
    v = dim_or_direction
    if isinstance(v, (bool, np.bool_)) or getattr(v, "dtype", None) == np.bool_:
        raise InputError(f"{where}: dim_or_direction must be an integer or a direction, got a bool")
    if jnp.ndim(v) == 0 and jnp.issubdtype(jnp.result_type(v), jnp.integer):
        if _checks.is_traced(v):
            ok = (v >= -d) & (v < d)
            direction = jnp.where(ok, jax.nn.one_hot(v % d, d, dtype=dt), jnp.nan)
        else:
            i = _checks.index(v, "dim_or_direction", where=where)
            if not -d <= i < d:
                raise InputError(f"{where}: dim_or_direction {i} out of range for a latent of size {d}")
            direction = jax.nn.one_hot(i % d, d, dtype=dt)
    else:
        direction = _checks.array(v, "dim_or_direction", where=where)
        if tuple(direction.shape) != (d,):
            raise InputError(
                f"{where}: dim_or_direction must be an integer dimension or a direction of the latent's "
                f"shape ({d},), got shape {tuple(direction.shape)}"
            )
        direction = jnp.asarray(direction, dt)
    return z[None, :] + values[:, None] * direction[None, :]


def factor_sensitivity(z: ArrayLike, factors: ArrayLike) -> Sensitivity:
    """Absolute correlation between every latent coordinate and every known generative factor.

    On a data set with known factors (sprites: shape, scale, rotation, x, y) this tells which
    latent dimension moves which factor; a disentangled model has one large entry per column.
    Pass periodic factors (rotation) as cos/sin columns, since correlation is linear.

    Args:
        z: ``(n, d)`` latents (encoder means).
        factors: ``(n, f)`` factor values (categorical ones as codes or one-hot columns), or ``(n,)``
            for one factor.

    Returns:
        `Sensitivity` with ``correlation (d, f)`` and ``best_dim (f,)``.

    Raises:
        InputError: ``z`` and ``factors`` have different numbers of rows, or (eager calls) hold
            NaN/inf.

    Examples:
        >>> z = jnp.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]])
        >>> factor_sensitivity(z, jnp.array([[0.0], [2.0], [4.0]])).best_dim
        Array([0], dtype=int32)

    References:
        Higgins et al. 2017, "beta-VAE" (dSprites factors); Ridgeway & Mozer 2018, "Learning Deep
        Disentangled Embeddings with the F-Statistic Loss" (modularity from latent-factor statistics).
    """
    where = "move.factor_sensitivity"
    f = _checks.array(factors, "factors", where=where, ndim=(1, 2))
    z = _latents(z, f.shape[0], where, "factors")
    f = jnp.asarray(f, z.dtype)
    if f.ndim == 1:
        f = f[:, None]
    zc = z - z.mean(axis=0, keepdims=True)
    fc = f - f.mean(axis=0, keepdims=True)
    zs = _safe_sqrt(jnp.sum(zc * zc, axis=0))
    fs = _safe_sqrt(jnp.sum(fc * fc, axis=0))
    corr = _safe_divide(jnp.abs(zc.T @ fc), zs[:, None] * fs[None, :])
    return Sensitivity(correlation=corr, best_dim=jnp.argmax(corr, axis=0).astype(jnp.int32))
