"""Paths through a latent space: lerp, slerp, piecewise paths, and what a decoder makes of them.

Every function works on one example and is pure (usable under `jit`, `vmap` and `grad`); a
``decode`` argument is any callable mapping one latent ``(d,)`` to one output (e.g. an image).
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from latentjax.errors import InputError
from latentjax.move._safe import _safe_norm, _safe_sqrt

Decode = Callable[[jax.Array], jax.Array]

# Below this angle (radians) slerp switches to lerp: there the two differ by about
# angle**2 / 8 relative to |z|, under float32 resolution, and sin(angle) in the denominator
# would amplify rounding.
_SLERP_MIN_ANGLE = 1e-3


class Diagnostics(NamedTuple):
    """Why one path is better than another (all scalars), from `path_diagnostics`.

    Attributes:
        latent_length: sum of Euclidean step lengths in latent space.
        decoded_length: sum of Euclidean distances between consecutive decoded outputs.
        decoded_energy: ``(num_points - 1) * sum of squared decoded steps``; equals
            ``decoded_length**2`` exactly when the decoded path has constant speed and is larger
            otherwise (Cauchy-Schwarz).
        max_step: largest distance between two consecutive decoded outputs (a visible jump).

    Examples:
        >>> d = path_diagnostics(lambda z: z, jnp.array([[0.0], [1.0], [3.0]]))
        >>> float(d.decoded_energy), float(d.decoded_length) ** 2
        (10.0, 9.0)
    """

    latent_length: jax.Array
    decoded_length: jax.Array
    decoded_energy: jax.Array
    max_step: jax.Array


def _check_endpoints(z0: jax.Array, z1: jax.Array, where: str) -> None:
    if z0.ndim != 1 or z0.shape != z1.shape:
        raise InputError(
            f"{where}: z0 and z1 must be two latents of equal shape (d,), got {z0.shape} and {z1.shape}"
        )


def lerp(z0: ArrayLike, z1: ArrayLike, t: ArrayLike) -> jax.Array:
    """Linear interpolation ``(1 - t) z0 + t z1`` for a scalar ``t``.

    Args:
        z0: ``(d,)`` latent at ``t = 0``.
        z1: ``(d,)`` latent at ``t = 1``.
        t: scalar time (any real; ``[0, 1]`` stays between the endpoints).

    Returns:
        ``(d,)`` latent.

    Examples:
        >>> lerp(jnp.zeros(2), jnp.ones(2), 0.25)
        Array([0.25, 0.25], dtype=float32)

    References:
        The straight line; compare `slerp` (White 2016) and `geodesic` (Arvanitidis et al. 2018).
    """
    z0, z1, t = jnp.asarray(z0), jnp.asarray(z1), jnp.asarray(t)
    return (1.0 - t) * z0 + t * z1


def slerp(z0: ArrayLike, z1: ArrayLike, t: ArrayLike) -> jax.Array:
    """Spherical interpolation (White 2016) for a scalar ``t``.

    ``sin((1-t) w) / sin(w) z0 + sin(t w) / sin(w) z1`` with ``w`` the angle between ``z0`` and
    ``z1``. Unit vectors stay on the unit sphere and move at constant angular speed; vectors of
    other norms follow the same weights (the usual choice for Gaussian latents, which concentrate
    near a sphere of radius ``sqrt(d)``). The angle uses Kahan's ``2 atan2(|u0-u1|, |u0+u1|)`` (exact
    at small angles); below 1e-3 rad, for a zero vector and for exactly opposite vectors (no unique
    great circle) it falls back to `lerp`, with finite gradients everywhere.

    Args:
        z0: ``(d,)`` latent at ``t = 0``.
        z1: ``(d,)`` latent at ``t = 1``, same shape.
        t: scalar time in ``[0, 1]``.

    Returns:
        ``(d,)`` float32 latent.

    Raises:
        InputError: ``z0`` and ``z1`` are not two vectors of the same shape.

    Examples:
        >>> slerp(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), 0.5)
        Array([0.70710677, 0.70710677], dtype=float32)

    References:
        Shoemake 1985, "Animating rotation with quaternion curves"; White 2016, "Sampling
        Generative Networks", Sec. 2.2; Kahan 2006, "How futile are mindless assessments of
        roundoff", p. 47 (the angle formula).
    """
    z0, z1, t = jnp.asarray(z0, jnp.float32), jnp.asarray(z1, jnp.float32), jnp.asarray(t)
    _check_endpoints(z0, z1, "move.slerp")
    n0, n1 = _safe_norm(z0), _safe_norm(z1)
    u0, u1 = z0 / n0, z1 / n1
    diff, summ = u0 - u1, u0 + u1
    dd, ss = jnp.sum(diff * diff), jnp.sum(summ * summ)
    degenerate = (jnp.sum(z0 * z0) == 0) | (jnp.sum(z1 * z1) == 0)
    # The angle (and its gradient) is only evaluated on well-separated inputs.
    angle_raw = 2.0 * jnp.arctan2(_safe_sqrt(dd, at_zero=1.0), _safe_sqrt(ss, at_zero=1.0))
    use_lerp = (
        degenerate
        | (dd <= 0)
        | (ss <= 0)
        | (angle_raw < _SLERP_MIN_ANGLE)
        | (angle_raw > jnp.pi - _SLERP_MIN_ANGLE)
    )
    angle = jnp.where(use_lerp, jnp.pi / 2, angle_raw)
    s = jnp.sin(angle)
    w0 = jnp.sin((1.0 - t) * angle) / s
    w1 = jnp.sin(t * angle) / s
    return jnp.where(use_lerp, lerp(z0, z1, t), w0 * z0 + w1 * z1)


_INTERPOLATORS = {"lerp": lerp, "slerp": slerp}


def path(points: ArrayLike, *, num_points: int, method: str = "lerp") -> jax.Array:
    """A piecewise path through ``k >= 2`` latents, ``num_points`` in all, endpoints included.

    The path parameter is uniform over segments (each segment gets the same share of points,
    whatever its length), so every given point is hit exactly when ``num_points - 1`` is a
    multiple of ``k - 1``.

    Args:
        points: ``(k, d)`` latents to pass through, in order.
        num_points: number of points returned (>= 2).
        method: ``"lerp"`` or ``"slerp"`` within each segment.

    Returns:
        ``(num_points, d)`` float32 latents.

    Raises:
        InputError: an unknown ``method``, fewer than two ``points`` or ``num_points < 2``.

    Examples:
        >>> path(jnp.array([[0.0], [1.0], [3.0]]), num_points=5)[:, 0]
        Array([0. , 0.5, 1. , 2. , 3. ], dtype=float32)

    References:
        White 2016, "Sampling Generative Networks" (piecewise slerp "J-diagrams").
    """
    points = jnp.asarray(points, jnp.float32)
    if method not in _INTERPOLATORS:
        raise InputError(f"move.path: method must be 'lerp' or 'slerp', got {method!r}")
    if points.ndim != 2 or points.shape[0] < 2:
        raise InputError(f"move.path: points must be (k>=2, d), got shape {points.shape}")
    if num_points < 2:
        raise InputError(f"move.path: num_points must be >= 2, got {num_points}")
    return _path(points, num_points=num_points, method=method)


@functools.partial(jax.jit, static_argnames=("num_points", "method"))
def _path(points: jax.Array, *, num_points: int, method: str) -> jax.Array:
    # Jitted so that eager callers pay one compilation, not one per primitive.
    k = points.shape[0]
    s = jnp.linspace(0.0, k - 1.0, num_points)
    seg = jnp.clip(jnp.floor(s).astype(jnp.int32), 0, k - 2)
    t = s - seg
    return jax.vmap(_INTERPOLATORS[method])(points[seg], points[seg + 1], t)


def _flat(decoded: jax.Array) -> jax.Array:
    return decoded.reshape(decoded.shape[0], -1)


def curve_energy(decode: Decode, zs: ArrayLike) -> jax.Array:
    """Discrete curve energy of the decoded path: ``(n - 1) * sum_i |f(z_{i+1}) - f(z_i)|^2``.

    The factor ``n - 1`` makes it converge to ``int_0^1 |d f(z(t))/dt|^2 dt`` as the path is
    refined, so energies of paths with different ``n`` are comparable.

    Args:
        decode: single-latent decoder ``(d,) -> output`` (any output shape).
        zs: ``(n, d)`` latents along the path, in order.

    Returns:
        The scalar energy.

    Examples:
        >>> float(curve_energy(lambda z: 2.0 * z, jnp.array([[0.0], [0.5], [1.0]])))
        4.0

    References:
        Arvanitidis, Hansen & Hauberg 2018, "Latent Space Oddity", Eq. 6; Shao, Kumar & Fletcher
        2018, "The Riemannian Geometry of Deep Generative Models", Eq. 3.
    """
    zs = jnp.asarray(zs, jnp.float32)
    frames = _flat(jax.vmap(decode)(zs))
    steps = frames[1:] - frames[:-1]
    return (zs.shape[0] - 1.0) * jnp.sum(steps * steps)


def _diagnostics(zs: jax.Array, decoded: jax.Array) -> Diagnostics:
    """`Diagnostics` of latents ``zs`` ``(n, d)`` and their decoded outputs ``(n, ...)``."""
    dz = zs[1:] - zs[:-1]
    frames = _flat(decoded)
    df = frames[1:] - frames[:-1]
    sq = jnp.sum(df * df, axis=1)
    step = _safe_sqrt(sq)  # repeated frames have zero-length steps
    zstep = _safe_sqrt(jnp.sum(dz * dz, axis=1))
    return Diagnostics(
        latent_length=jnp.sum(zstep),
        decoded_length=jnp.sum(step),
        decoded_energy=(zs.shape[0] - 1.0) * jnp.sum(sq),
        max_step=jnp.max(step),
    )


def path_diagnostics(decode: Decode, zs: ArrayLike) -> Diagnostics:
    """Latent length, decoded length, decoded energy and largest decoded step of a path.

    Args:
        decode: single-latent decoder ``(d,) -> output``.
        zs: ``(n, d)`` latents along the path (``n >= 2``), in order.

    Returns:
        `Diagnostics` (scalars).

    Raises:
        InputError: ``zs`` is not a path ``(n >= 2, d)``.

    Examples:
        >>> d = path_diagnostics(lambda z: 3.0 * z, jnp.array([[0.0], [1.0]]))
        >>> float(d.latent_length), float(d.decoded_length), float(d.max_step)
        (1.0, 3.0, 3.0)

    References:
        Arvanitidis et al. 2018, "Latent Space Oddity", Eqs. 5-6 (length and energy of a curve).
    """
    zs = jnp.asarray(zs, jnp.float32)
    if zs.ndim != 2 or zs.shape[0] < 2:
        raise InputError(f"move.path_diagnostics: zs must be a path (n>=2, d), got shape {zs.shape}")
    return _diagnostics(zs, jax.vmap(decode)(zs))
