"""Paths through a latent space: lerp, slerp, piecewise paths, and what a decoder makes of them.

Every function works on one example and is pure (usable under `jit`, `vmap` and `grad`); a
``decode`` argument is any callable mapping one latent ``(d,)`` to one output (e.g. an image).
Arguments are checked by `latentjax._checks`: shapes always, NaN/inf only in eager calls.
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.move._safe import _safe_sqrt

Decode = Callable[[jax.Array], jax.Array]


def _float_dtype(*xs) -> jnp.dtype:
    """The inputs' float dtype (float64 stays float64 under x64); integers give the default float."""
    dt = jnp.result_type(*xs)
    return dt if jnp.issubdtype(dt, jnp.floating) else jnp.result_type(float)


def _scalar(t, name: str, where: str):
    """``t`` checked to be one real number (static shape, always; finite when concrete)."""
    t = _checks.array(t, name, where=where)
    if jnp.ndim(t) != 0:
        raise InputError(
            f"{where}: {name} must be a scalar, got shape {tuple(jnp.shape(t))} (batch with jax.vmap)"
        )
    return t


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


def _check_endpoints(z0, z1, where: str) -> None:
    """Two latents ``(d,)`` of equal shape, finite when concrete."""
    if jnp.ndim(z0) != 1 or jnp.shape(z0) != jnp.shape(z1):
        raise InputError(
            f"{where}: z0 and z1 must be two latents of equal shape (d,), "
            f"got {tuple(jnp.shape(z0))} and {tuple(jnp.shape(z1))}"
        )
    _checks.finite(z0, "z0", where=where)
    _checks.finite(z1, "z1", where=where)


def lerp(z0: ArrayLike, z1: ArrayLike, t: ArrayLike) -> jax.Array:
    """Linear interpolation ``(1 - t) z0 + t z1`` for a scalar ``t``.

    Args:
        z0: latent at ``t = 0`` (any shape, usually ``(d,)``).
        z1: latent at ``t = 1``, the same shape (no broadcasting).
        t: scalar time (any real; ``[0, 1]`` stays between the endpoints). For many times use
            ``jax.vmap(lerp, in_axes=(None, None, 0))``.

    Returns:
        The latent at ``t``, in the endpoints' float dtype.

    Raises:
        InputError: ``z0`` and ``z1`` differ in shape, ``t`` is not a scalar, or (eager calls) an
            argument holds NaN/inf.

    Examples:
        >>> lerp(jnp.zeros(2), jnp.ones(2), 0.25)
        Array([0.25, 0.25], dtype=float32)

    References:
        The straight line; compare `slerp` (White 2016) and `geodesic` (Arvanitidis et al. 2018).
    """
    where = "move.lerp"
    z0, z1 = _checks.array(z0, "z0", where=where), _checks.array(z1, "z1", where=where)
    _checks.same_shape(z0, z1, ("z0", "z1"), where=where)
    t = _scalar(t, "t", where)
    dt = _float_dtype(z0, z1)
    z0, z1, t = jnp.asarray(z0, dt), jnp.asarray(z1, dt), jnp.asarray(t, dt)
    return (1.0 - t) * z0 + t * z1


def _orthogonal_axis(u: jax.Array) -> jax.Array:
    """A unit vector orthogonal to the unit ``u`` ``(d >= 2,)``.

    The coordinate axis least aligned with ``u``, made orthogonal to it (``1 - u_j^2 >= 1 - 1/d``,
    so the division is safe).
    """
    j = jnp.argmin(jnp.abs(u))
    q = jax.nn.one_hot(j, u.shape[0], dtype=u.dtype) - u[j] * u
    return q / jnp.sqrt(jnp.sum(q * q))


def _great_circle(u0: jax.Array, u1: jax.Array, t: jax.Array) -> jax.Array:
    """``cos(t w) u0 + sin(t w) v`` on the great circle from unit ``u0`` to unit ``u1`` at angle ``w``.

    ``v`` is the unit component of ``u1`` orthogonal to ``u0``. It is computed from ``u0 - u1`` or
    ``u0 + u1``, whichever does not cancel, so its rounding error is that of the inputs (the
    direction is ill-conditioned only as ``w -> pi``, where it depends on ``1 / (pi - w)`` of the
    input's rounding, as any formula must).
    """
    d, s = u0 - u1, u0 + u1
    dd, ss = jnp.sum(d * d), jnp.sum(s * s)
    angle = 2.0 * jnp.arctan2(_safe_sqrt(dd), _safe_sqrt(ss))  # Kahan: accurate at any angle
    # u1 - (u0 . u1) u0 for unit vectors, without forming u0 . u1 near +-1; then re-orthogonalised.
    p = jnp.where(ss < dd, s - 0.5 * ss * u0, 0.5 * dd * u0 - d)
    p = p - jnp.sum(u0 * p) * u0
    pp = jnp.sum(p * p)
    small = angle < jnp.pi / 2
    # Below pi/2: sin(t w) / sin(w) = t sinc(t w) / sinc(w), smooth down to w = 0 (k p -> t (u1 - u0)).
    w_small = jnp.where(small, angle, 0.0)
    k_small = t * jnp.sinc(t * w_small / jnp.pi) / jnp.sinc(w_small / jnp.pi)
    # From pi/2 on: normalise p itself (unit output); at exactly opposite vectors p = 0 and the
    # great circle is the one through the fixed axis of `_orthogonal_axis`.
    has_p = pp > 0
    v = jnp.where(has_p, p / jnp.sqrt(jnp.where(has_p, pp, 1.0)), _orthogonal_axis(u0))
    far = jnp.sin(t * angle) * v
    return jnp.cos(t * angle) * u0 + jnp.where(small, k_small * p, far)


def slerp(z0: ArrayLike, z1: ArrayLike, t: ArrayLike) -> jax.Array:
    """Spherical interpolation: along the great circle in direction, linearly in norm.

    ``slerp(t) = ((1 - t) |z0| + t |z1|) u(t)`` where ``u(t)`` moves at constant angular speed
    along the great circle from ``z0 / |z0|`` to ``z1 / |z1|``. For endpoints of equal norm (unit
    vectors; Gaussian latents, which concentrate near the sphere of radius ``sqrt(d)``) this is
    White's ``sin((1-t) w) / sin(w) z0 + sin(t w) / sin(w) z1``, ``w`` the angle between them. For
    unequal norms White's weights diverge as ``w -> pi`` (norms 1 and 2 at ``w = pi - 0.01`` give a
    point of norm about 100 at ``t = 0.5``); interpolating the norm linearly keeps every point
    between the endpoints' norms, continuous in the inputs.

    It is computed stably at every angle, with finite gradients (also ``jacfwd`` and the Hessian
    in ``t``). Three cases have no unique great circle and are decided by their limits: a zero
    endpoint takes the other's direction (the result is `lerp`); exactly opposite endpoints
    (measure zero; nearby pairs are continuous) use the great circle through the coordinate axis
    least aligned with ``z0``; in one dimension opposite signs give `lerp` (through 0).

    Args:
        z0: ``(d,)`` latent at ``t = 0``.
        z1: ``(d,)`` latent at ``t = 1``, same shape.
        t: scalar time in ``[0, 1]``; for many times ``jax.vmap(slerp, in_axes=(None, None, 0))``.

    Returns:
        ``(d,)`` latent, in the endpoints' float dtype.

    Raises:
        InputError: ``z0`` and ``z1`` are not two vectors of the same shape, ``t`` is not a
            scalar, or (eager calls) an argument holds NaN/inf.

    Examples:
        >>> slerp(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), 0.5)
        Array([0.70710677, 0.70710677], dtype=float32)
        >>> slerp(jnp.array([1.0, 0.0]), jnp.array([-1.0, 0.0]), 0.5)  # opposite: via axis 1
        Array([-4.371139e-08,  1.000000e+00], dtype=float32)

    References:
        Shoemake 1985, "Animating rotation with quaternion curves"; White 2016, "Sampling
        Generative Networks", Sec. 2.2; Kahan 2006, "How futile are mindless assessments of
        roundoff", p. 47 (the angle formula).
    """
    where = "move.slerp"
    z0, z1 = _checks.array(z0, "z0", where=where), _checks.array(z1, "z1", where=where)
    _check_endpoints(z0, z1, where)
    t = _scalar(t, "t", where)
    dt = _float_dtype(z0, z1)
    return _slerp(jnp.asarray(z0, dt), jnp.asarray(z1, dt), jnp.asarray(t, dt))


@jax.jit
def _slerp(z0: jax.Array, z1: jax.Array, t: jax.Array) -> jax.Array:
    # Jitted so that eager callers pay one compilation, not one per primitive.
    if z0.shape[0] == 1:
        return (1.0 - t) * z0 + t * z1  # the only path between opposite signs on a line
    s0, s1 = jnp.sum(z0 * z0), jnp.sum(z1 * z1)
    n0, n1 = _safe_sqrt(s0), _safe_sqrt(s1)
    u0 = z0 / jnp.where(s0 > 0, n0, 1.0)
    u1 = z1 / jnp.where(s1 > 0, n1, 1.0)
    u0, u1 = jnp.where(s0 > 0, u0, u1), jnp.where(s1 > 0, u1, u0)  # a zero vector: the other's way
    return ((1.0 - t) * n0 + t * n1) * _great_circle(u0, u1, t)


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
        ``(num_points, d)`` latents, in the points' float dtype.

    Raises:
        InputError: an unknown ``method``, fewer than two ``points``, ``num_points`` not an int
            ``>= 2``, or (eager calls) NaN/inf points.

    Examples:
        >>> path(jnp.array([[0.0], [1.0], [3.0]]), num_points=5)[:, 0]
        Array([0. , 0.5, 1. , 2. , 3. ], dtype=float32)

    References:
        White 2016, "Sampling Generative Networks" (piecewise slerp "J-diagrams").
    """
    where = "move.path"
    if method not in _INTERPOLATORS:
        raise InputError(f"{where}: method must be 'lerp' or 'slerp', got {method!r}")
    points = _checks.array(points, "points", where=where, ndim=2)
    if points.shape[0] < 2:
        raise InputError(f"{where}: points must be (k>=2, d), got shape {tuple(points.shape)}")
    num_points = _checks.index(num_points, "num_points", where=where, minimum=2)
    points = jnp.asarray(points, _float_dtype(points))
    return _path(points, num_points=num_points, method=method)


@functools.partial(jax.jit, static_argnames=("num_points", "method"))
def _path(points: jax.Array, *, num_points: int, method: str) -> jax.Array:
    # Jitted so that eager callers pay one compilation, not one per primitive.
    k = points.shape[0]
    s = jnp.linspace(0.0, k - 1.0, num_points, dtype=points.dtype)
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

    Raises:
        InputError: ``zs`` is not ``(n, d)`` or (eager calls) holds NaN/inf.

    Examples:
        >>> float(curve_energy(lambda z: 2.0 * z, jnp.array([[0.0], [0.5], [1.0]])))
        4.0

    References:
        Arvanitidis, Hansen & Hauberg 2018, "Latent Space Oddity", Eq. 6; Shao, Kumar & Fletcher
        2018, "The Riemannian Geometry of Deep Generative Models", Eq. 3.
    """
    zs = _checks.array(zs, "zs", where="move.curve_energy", ndim=2)
    zs = jnp.asarray(zs, _float_dtype(zs))
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
        zs: ``(n, d)`` latents along the path (``n >= 2``), in order, or a ``move.geodesic``
            result (its ``points``).

    Returns:
        `Diagnostics` (scalars).

    Raises:
        InputError: ``zs`` is not a path ``(n >= 2, d)`` or (eager calls) holds NaN/inf.

    Examples:
        >>> d = path_diagnostics(lambda z: 3.0 * z, jnp.array([[0.0], [1.0]]))
        >>> float(d.latent_length), float(d.decoded_length), float(d.max_step)
        (1.0, 3.0, 3.0)

    References:
        Arvanitidis et al. 2018, "Latent Space Oddity", Eqs. 5-6 (length and energy of a curve).
    """
    where = "move.path_diagnostics"
    zs = getattr(zs, "points", zs)  # a `Geodesic` (or `DecodedPath`) stands for its points
    zs = _checks.array(zs, "zs", where=where)
    if len(zs.shape) != 2 or zs.shape[0] < 2:
        raise InputError(f"{where}: zs must be a path (n>=2, d), got shape {tuple(zs.shape)}")
    zs = jnp.asarray(zs, _float_dtype(zs))
    return _diagnostics(zs, jax.vmap(decode)(zs))
