"""Principal component analysis: exact (SVD) or randomized fit, transform and its inverse."""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.look import _distances


class PCA(NamedTuple):
    """A fitted PCA.

    Attributes:
      mean: ``(d,)`` feature means of the training data.
      components: ``(num_components, d)`` orthonormal principal axes, strongest first; each
        sign is fixed so that its largest-magnitude entry is positive.
      explained_variance: ``(num_components,)`` variance along each axis (``ddof=1``).
      explained_variance_ratio: ``(num_components,)`` fraction of the total variance.
      singular_values: ``(num_components,)`` singular values of the centred data.

    Examples:
      >>> fit(jnp.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]]), num_components=1).mean.tolist()
      [2.0, 0.0]
    """

    mean: jax.Array
    components: jax.Array
    explained_variance: jax.Array
    explained_variance_ratio: jax.Array
    singular_values: jax.Array


def _flip_signs(vt):
    # Deterministic signs (sklearn's svd_flip with a components-based decision).
    big = jnp.argmax(jnp.abs(vt), axis=1)
    signs = jnp.sign(jnp.take_along_axis(vt, big[:, None], axis=1))
    return vt * jnp.where(signs == 0, 1.0, signs)


def _randomized_svd(key, xc, num_components, *, oversample=10, power_iters=7):
    # Halko, Martinsson and Tropp (2011), Algorithms 4.4 (power iterations with QR
    # re-orthonormalisation, as sklearn's randomized_svd with power_iteration_normalizer="QR").
    n, d = xc.shape
    width = min(num_components + oversample, n, d)
    q = jax.random.normal(key, (d, width), xc.dtype)
    q, _ = jnp.linalg.qr(xc @ q)
    for _ in range(power_iters):
        q, _ = jnp.linalg.qr(xc.T @ q)
        q, _ = jnp.linalg.qr(xc @ q)
    _, s, vt = jnp.linalg.svd(q.T @ xc, full_matrices=False)
    return s[:num_components], vt[:num_components]


def fit(x: ArrayLike, *, num_components: int, method: str = "auto", key: jax.Array | None = None) -> PCA:
    """Fit PCA to ``x``.

    Args:
      x: ``(n, d)`` data, finite, ``n >= 2``; computed in its float dtype (at least float32,
        float64 under x64).
      num_components: number of axes to keep, ``1 <= num_components <= min(n, d)``.
      method: ``"svd"`` (exact, thin SVD of the centred data), ``"randomized"`` (Halko et al.;
        needs ``key``) or ``"auto"``: randomized when ``key`` is given, both ``n`` and ``d``
        exceed 500 and ``num_components < 0.8 min(n, d)`` (sklearn's rule), else exact.
      key: a ``jax.random.key`` for the randomized method.

    Returns:
      The fitted ``PCA``, in ``x``'s float dtype.

    Raises:
      InputError: ``x`` not a 2-D real array with at least 2 rows, or with NaN/inf;
        ``num_components`` not an integer in range; an unknown ``method``; ``"randomized"``
        without a ``key``.

    Examples:
      >>> import jax.numpy as jnp
      >>> p = fit(jnp.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]]), num_components=1)
      >>> p.components.round(4).tolist(), p.explained_variance.round(4).tolist()
      ([[1.0, 0.0]], [4.0])

    References:
      Halko, Martinsson and Tropp, "Finding structure with randomness", SIAM Review 53 (2011),
      Algorithm 4.4.
    """
    where = "look.pca.fit"
    x = _checks.array(x, "x", where=where, ndim=2)
    n, d = x.shape
    if n < 2:
        raise InputError(f"{where}: x must have at least 2 rows, got shape {tuple(x.shape)}")
    num_components = _checks.index(num_components, "num_components", where=where)
    if not 1 <= num_components <= min(n, d):
        raise InputError(f"{where}: num_components must be in [1, {min(n, d)}], got {num_components}")
    if method not in ("auto", "svd", "randomized"):
        raise InputError(f"{where}: method must be 'auto', 'svd' or 'randomized', got {method!r}")
    if method == "auto":
        large = min(n, d) > 500 and num_components < 0.8 * min(n, d)
        method = "randomized" if (large and key is not None) else "svd"
    if method == "randomized" and key is None:
        raise InputError(f"{where}: key is None; method='randomized' needs a jax.random.key")
    x = jnp.asarray(x, _distances.compute_dtype(x.dtype))
    return _fit(x, key, num_components=num_components, randomized=method == "randomized")


@functools.partial(jax.jit, static_argnames=("num_components", "randomized"))
def _fit(x, key, *, num_components, randomized):
    n = x.shape[0]
    mean = jnp.mean(x, axis=0)
    xc = x - mean[None, :]
    if randomized:
        s, vt = _randomized_svd(key, xc, num_components)
    else:
        _, s, vt = jnp.linalg.svd(xc, full_matrices=False)
        s, vt = s[:num_components], vt[:num_components]
    var = s**2 / (n - 1)
    total = jnp.sum(jnp.var(xc, axis=0, ddof=1))
    return PCA(mean, _flip_signs(vt), var, var / total, s)


def _lift(v, ndim):
    # Explicit broadcasting: the project runs with jax_numpy_rank_promotion="raise".
    return v.reshape((1,) * (ndim - 1) + v.shape)


def transform(pca: PCA, x: ArrayLike) -> jax.Array:
    """Project ``x`` onto the principal axes.

    Args:
      pca: a fitted ``PCA``.
      x: ``(..., d)`` points (one or a batch).

    Returns:
      ``(..., num_components)`` coordinates.

    Examples:
      >>> import jax.numpy as jnp
      >>> p = fit(jnp.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]]), num_components=1)
      >>> transform(p, jnp.array([4.0, 1.0])).round(4).tolist()
      [2.0]
    """
    where = "look.pca.transform"
    x = _checks.array(x, "x", where=where)
    if tuple(x.shape[-1:]) != tuple(pca.mean.shape):
        raise InputError(f"{where}: x must end in {pca.mean.shape[0]} features, got shape {tuple(x.shape)}")
    x = jnp.asarray(x, _distances.compute_dtype(x.dtype, pca.mean.dtype))
    return (x - _lift(pca.mean, x.ndim)) @ pca.components.T


def inverse_transform(pca: PCA, z: ArrayLike) -> jax.Array:
    """Map principal coordinates back to feature space.

    Args:
      pca: a fitted ``PCA``.
      z: ``(..., num_components)`` coordinates.

    Returns:
      ``(..., d)`` points.

    Examples:
      >>> import jax.numpy as jnp
      >>> p = fit(jnp.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]]), num_components=1)
      >>> inverse_transform(p, jnp.array([2.0])).round(4).tolist()
      [4.0, 1.0]
    """
    where = "look.pca.inverse_transform"
    z = _checks.array(z, "z", where=where)
    if tuple(z.shape[-1:]) != tuple(pca.components.shape[:1]):
        raise InputError(
            f"{where}: z must end in {pca.components.shape[0]} components, got shape {tuple(z.shape)}"
        )
    z = jnp.asarray(z, _distances.compute_dtype(z.dtype, pca.components.dtype))
    return z @ pca.components + _lift(pca.mean, z.ndim)
