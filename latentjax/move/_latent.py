"""Moving through a latent space: sample and grid, lerp/slerp/geodesic paths, attribute vectors.

Every function works on one example and is pure (usable under `jit`, `vmap` and `grad`); a
``decode`` argument is any callable mapping one latent ``(d,)`` to one output (e.g. an image).
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike
from jaxtyping import Array, Bool, Float, Int

from latentjax.errors import LatentJaxError

Decode = Callable[[Array], Array]

# Below this angle (radians) slerp switches to lerp: there the two differ by about
# angle**2 / 8 relative to |z|, under float32 resolution, and sin(angle) in the denominator
# would amplify rounding.
_SLERP_MIN_ANGLE = 1e-3


class LatentError(LatentJaxError, ValueError):
    """Bad arguments to a latent-space function (shape, count, method)."""


class Path(NamedTuple):
    """A discretised path through the latent space.

    Attributes:
        points: ``(num_points, d)`` latents, endpoints included.
        energies: ``(steps + 1,)`` curve energy of the decoded path before each optimisation step
            and after the last (``energies[0]`` is the straight line's).
    """

    points: Array
    energies: Array


class Diagnostics(NamedTuple):
    """Why one path is better than another (all scalars).

    Attributes:
        latent_length: sum of Euclidean step lengths in latent space.
        decoded_length: sum of Euclidean distances between consecutive decoded outputs.
        decoded_energy: ``(num_points - 1) * sum of squared decoded steps``; equals
            ``decoded_length**2`` exactly when the decoded path has constant speed and is larger
            otherwise (Cauchy-Schwarz).
        max_step: largest distance between two consecutive decoded outputs (a visible jump).
    """

    latent_length: Array
    decoded_length: Array
    decoded_energy: Array
    max_step: Array


class Sensitivity(NamedTuple):
    """Which latent dimension moves which known factor.

    Attributes:
        correlation: ``(latent_dim, num_factors)`` absolute Pearson correlation between each
            latent-mean coordinate and each factor (0 where either is constant).
        best_dim: ``(num_factors,)`` the latent dimension most correlated with each factor.
    """

    correlation: Array
    best_dim: Array


def _check_same_shape(z0: Array, z1: Array, what: str) -> None:
    if z0.ndim != 1 or z0.shape != z1.shape:
        raise LatentError(f"{what}: expected two latents of equal shape (d,), got {z0.shape} and {z1.shape}")


def _safe_norm(x: Array) -> Array:
    # The norm's gradient is NaN at 0; where the vector is zero return 1 so the caller's
    # jnp.where branch is finite (double-where trick).
    sq = jnp.sum(x * x)
    return jnp.sqrt(jnp.where(sq > 0, sq, 1.0))


# Generation -----------------------------------------------------------------------------------


def sample_prior(key: Array, *, latent_dim: int, temperature: float = 1.0) -> Float[Array, " d"]:
    """Draw one latent from the standard normal prior, scaled by ``temperature``.

    Temperatures below 1 trade diversity for typical-looking samples (Kingma & Dhariwal 2018).

    Args:
        key: a ``jax.random.key``.
        latent_dim: size of the latent.
        temperature: standard deviation of the draw.

    Returns:
        ``(latent_dim,)`` latent; decode it with ``models.decode(model, z)``.

    Examples:
        >>> z = sample_prior(jax.random.key(0), latent_dim=4, temperature=0.7)
        >>> z.shape
        (4,)

    References:
        Kingma & Welling 2014, "Auto-Encoding Variational Bayes"; Kingma & Dhariwal 2018,
        "Glow" (Sec. 5, reduced-temperature sampling).
    """
    return temperature * jax.random.normal(key, (latent_dim,))


def grid_2d(
    *,
    num: int = 8,
    span: float = 2.0,
    latents: ArrayLike | None = None,
    latent_dim: int | None = None,
) -> Float[Array, "num num d"]:
    """A ``num x num`` grid of latents to decode into one figure.

    With ``latent_dim=2`` (and no ``latents``) the grid covers ``[-span, span]^2`` of the prior
    (in prior standard deviations). With ``latents`` of shape ``(n, d)`` it is centred on their
    mean and spans ``+-span`` standard deviations along their two principal directions, so it also
    works for a higher-dimensional latent space.

    Args:
        num: points per side.
        span: half-width of the grid, in standard deviations.
        latents: optional ``(n, d)`` encoded latents defining the principal plane.
        latent_dim: 2 when no ``latents`` are given.

    Returns:
        ``(num, num, d)`` latents; row ``i`` moves along the second direction (top = positive), column
        ``j`` along the first.

    Examples:
        >>> grid_2d(num=3, latent_dim=2)[0, 0]
        Array([-2.,  2.], dtype=float32)

    References:
        Kingma & Welling 2014, Fig. 4 (learned 2-D manifolds); Pearson 1901 (principal axes).
    """
    steps = jnp.linspace(-span, span, num)
    if latents is None:
        if latent_dim != 2:
            raise LatentError(
                f"grid_2d: without latents the latent space must be 2-D, got latent_dim={latent_dim}"
            )
        center = jnp.zeros(2)
        axes = jnp.eye(2)
    else:
        latents = jnp.asarray(latents, dtype=jnp.float32)
        if latents.ndim != 2 or latents.shape[0] < 3 or latents.shape[1] < 2:
            raise LatentError(f"grid_2d: latents must be (n>=3, d>=2), got shape {latents.shape}")
        center = latents.mean(axis=0)
        _, s, vt = jnp.linalg.svd(latents - center[None, :], full_matrices=False)
        std = s[:2] / jnp.sqrt(latents.shape[0] - 1.0)
        axes = vt[:2] * std[:, None]
    xs = steps[None, :, None] * axes[0][None, None, :]
    ys = steps[::-1][:, None, None] * axes[1][None, None, :]
    return center[None, None, :] + xs + ys


# Interpolation --------------------------------------------------------------------------------


def lerp(z0: Float[ArrayLike, " d"], z1: Float[ArrayLike, " d"], t: ArrayLike) -> Float[Array, " d"]:
    """Linear interpolation ``(1 - t) z0 + t z1`` for a scalar ``t``.

    Examples:
        >>> lerp(jnp.zeros(2), jnp.ones(2), 0.25)
        Array([0.25, 0.25], dtype=float32)

    References:
        The straight line; compare `slerp` (White 2016) and `geodesic` (Arvanitidis et al. 2018).
    """
    z0, z1, t = jnp.asarray(z0), jnp.asarray(z1), jnp.asarray(t)
    return (1.0 - t) * z0 + t * z1


def slerp(z0: Float[ArrayLike, " d"], z1: Float[ArrayLike, " d"], t: ArrayLike) -> Float[Array, " d"]:
    """Spherical interpolation (White 2016) for a scalar ``t``.

    ``sin((1-t) w) / sin(w) z0 + sin(t w) / sin(w) z1`` with ``w`` the angle between ``z0`` and
    ``z1``. Unit vectors stay on the unit sphere and move at constant angular speed; vectors of
    other norms follow the same weights (the usual choice for Gaussian latents, which concentrate
    near a sphere of radius ``sqrt(d)``). The angle uses Kahan's ``2 atan2(|u0-u1|, |u0+u1|)`` (exact
    at small angles); below 1e-3 rad, for a zero vector and for exactly opposite vectors (no unique
    great circle) it falls back to `lerp`, with finite gradients everywhere.

    Examples:
        >>> slerp(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), 0.5)
        Array([0.70710677, 0.70710677], dtype=float32)

    References:
        Shoemake 1985, "Animating rotation with quaternion curves"; White 2016, "Sampling
        Generative Networks", Sec. 2.2; Kahan 2006, "How futile are mindless assessments of
        roundoff", p. 47 (the angle formula).
    """
    z0, z1, t = jnp.asarray(z0, jnp.float32), jnp.asarray(z1, jnp.float32), jnp.asarray(t)
    _check_same_shape(z0, z1, "slerp")
    n0, n1 = _safe_norm(z0), _safe_norm(z1)
    u0, u1 = z0 / n0, z1 / n1
    diff, summ = u0 - u1, u0 + u1
    dd, ss = jnp.sum(diff * diff), jnp.sum(summ * summ)
    degenerate = (jnp.sum(z0 * z0) == 0) | (jnp.sum(z1 * z1) == 0)
    # Double where: the angle (and its gradient) is only evaluated on well-separated inputs.
    angle_raw = 2.0 * jnp.arctan2(jnp.sqrt(jnp.where(dd > 0, dd, 1.0)), jnp.sqrt(jnp.where(ss > 0, ss, 1.0)))
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


def path(points: Float[ArrayLike, "k d"], num: int, *, method: str = "lerp") -> Float[Array, "num d"]:
    """A piecewise path through ``k >= 2`` latents, ``num`` points in all, endpoints included.

    The path parameter is uniform over segments (each segment gets the same share of points,
    whatever its length), so every given point is hit exactly when ``num - 1`` is a multiple of
    ``k - 1``.

    Args:
        points: ``(k, d)`` latents to pass through, in order.
        num: number of points returned.
        method: ``"lerp"`` or ``"slerp"`` within each segment.

    Returns:
        ``(num, d)`` latents.

    Examples:
        >>> path(jnp.array([[0.0], [1.0], [3.0]]), 5)[:, 0]
        Array([0. , 0.5, 1. , 2. , 3. ], dtype=float32)

    References:
        White 2016, "Sampling Generative Networks" (piecewise slerp "J-diagrams").
    """
    points = jnp.asarray(points, jnp.float32)
    if method not in _INTERPOLATORS:
        raise LatentError(f"path: method must be 'lerp' or 'slerp', got {method!r}")
    if points.ndim != 2 or points.shape[0] < 2:
        raise LatentError(f"path: points must be (k>=2, d), got shape {points.shape}")
    if num < 2:
        raise LatentError(f"path: num must be >= 2, got {num}")
    return _path(points, num=num, method=method)


@functools.partial(jax.jit, static_argnames=("num", "method"))
def _path(points: Array, *, num: int, method: str) -> Array:
    # Jitted so that eager callers pay one compilation, not one per primitive.
    k = points.shape[0]
    s = jnp.linspace(0.0, k - 1.0, num)
    seg = jnp.clip(jnp.floor(s).astype(jnp.int32), 0, k - 2)
    t = s - seg
    return jax.vmap(_INTERPOLATORS[method])(points[seg], points[seg + 1], t)


def _frames(decode: Decode, zs: Array) -> Array:
    out = jax.vmap(decode)(zs)
    return out.reshape(out.shape[0], -1)


def curve_energy(decode: Decode, zs: Float[ArrayLike, "n d"]) -> Float[Array, ""]:
    """Discrete curve energy of the decoded path: ``(n - 1) * sum_i |f(z_{i+1}) - f(z_i)|^2``.

    The factor ``n - 1`` makes it converge to ``int_0^1 |d f(z(t))/dt|^2 dt`` as the path is
    refined, so energies of paths with different ``n`` are comparable.

    Examples:
        >>> float(curve_energy(lambda z: 2.0 * z, jnp.array([[0.0], [0.5], [1.0]])))
        4.0

    References:
        Arvanitidis, Hansen & Hauberg 2018, "Latent Space Oddity", Eq. 6; Shao, Kumar & Fletcher
        2018, "The Riemannian Geometry of Deep Generative Models", Eq. 3.
    """
    zs = jnp.asarray(zs, jnp.float32)
    frames = _frames(decode, zs)
    steps = frames[1:] - frames[:-1]
    return (zs.shape[0] - 1.0) * jnp.sum(steps * steps)


def geodesic(
    decode: Decode,
    z0: Float[ArrayLike, " d"],
    z1: Float[ArrayLike, " d"],
    *,
    num_points: int = 16,
    steps: int = 300,
    learning_rate: float = 1e-2,
    key: Array | None = None,
    init_noise: float = 0.0,
    unroll: int | bool = 1,
) -> Path:
    """A shortest path under the metric the decoder pulls back, by minimising the curve energy.

    The ``num_points - 2`` interior points start on the straight line (plus ``init_noise`` times
    Gaussian noise drawn from ``key``, to leave a symmetric start) and follow Adam on
    `curve_energy` with the endpoints fixed; the loop is one `lax.scan` on device. Minimising the
    energy (not the length) also spaces the points evenly in decoded space. The returned points are
    the lowest-energy iterate, so the result never has more energy than the straight line.

    Args:
        decode: single-latent decoder ``(d,) -> output``; differentiable.
        z0, z1: endpoints ``(d,)``.
        num_points: points on the path, endpoints included (>= 3).
        steps: optimisation steps.
        learning_rate: Adam step size, in latent units.
        key: needed only when ``init_noise > 0``.
        init_noise: standard deviation of the initial perturbation of interior points.
        unroll: passed to `lax.scan`; ``True`` for convolutional decoders on CPU, where
            convolutions inside a rolled scan run about 30x slower (jax-ml/jax#12868).

    Returns:
        `Path` with ``points (num_points, d)`` and the energy trace ``(steps + 1,)``.

    Examples:
        >>> p = geodesic(lambda z: jnp.tanh(z), jnp.zeros(2), jnp.ones(2), num_points=5, steps=10)
        >>> p.points.shape, p.energies.shape
        ((5, 2), (11,))

    References:
        Arvanitidis, Hansen & Hauberg 2018, "Latent Space Oddity: on the Curvature of Deep
        Generative Models", Sec. 4 (discrete geodesics by energy minimisation); Shao, Kumar &
        Fletcher 2018, "The Riemannian Geometry of Deep Generative Models", Alg. 1.
    """
    z0, z1 = jnp.asarray(z0, jnp.float32), jnp.asarray(z1, jnp.float32)
    _check_same_shape(z0, z1, "geodesic")
    if num_points < 3:
        raise LatentError(
            f"geodesic: num_points must be >= 3 (two endpoints and an interior), got {num_points}"
        )
    if init_noise > 0 and key is None:
        raise LatentError("geodesic: init_noise > 0 needs a key")
    ts = jnp.linspace(0.0, 1.0, num_points)[1:-1]
    interior = jax.vmap(lerp, in_axes=(None, None, 0))(z0, z1, ts)
    if init_noise > 0:
        interior = interior + init_noise * jax.random.normal(key, interior.shape)

    def energy(inner):
        return curve_energy(decode, jnp.concatenate([z0[None], inner, z1[None]]))

    optimizer = optax.adam(learning_rate)

    def body(carry, _):
        inner, opt_state, best, best_e = carry
        e, g = jax.value_and_grad(energy)(inner)
        better = e < best_e
        best = jnp.where(better, inner, best)
        best_e = jnp.where(better, e, best_e)
        updates, opt_state = optimizer.update(g, opt_state, inner)
        return (optax.apply_updates(inner, updates), opt_state, best, best_e), e

    e_init = energy(interior)
    carry = (interior, optimizer.init(interior), interior, e_init)
    (inner, _, best, best_e), trace = jax.lax.scan(body, carry, length=steps, unroll=unroll)
    e_last = energy(inner)
    best = jnp.where(e_last < best_e, inner, best)
    points = jnp.concatenate([z0[None], best, z1[None]])
    return Path(points=points, energies=jnp.concatenate([trace, e_last[None]]))


def path_diagnostics(decode: Decode, zs: Float[ArrayLike, "n d"]) -> Diagnostics:
    """Latent length, decoded length, decoded energy and largest decoded step of a path.

    Examples:
        >>> d = path_diagnostics(lambda z: 3.0 * z, jnp.array([[0.0], [1.0]]))
        >>> float(d.latent_length), float(d.decoded_length), float(d.max_step)
        (1.0, 3.0, 3.0)

    References:
        Arvanitidis et al. 2018, "Latent Space Oddity", Eqs. 5-6 (length and energy of a curve).
    """
    zs = jnp.asarray(zs, jnp.float32)
    if zs.ndim != 2 or zs.shape[0] < 2:
        raise LatentError(f"path_diagnostics: expected a path (n>=2, d), got shape {zs.shape}")
    dz = zs[1:] - zs[:-1]
    frames = _frames(decode, zs)
    df = frames[1:] - frames[:-1]
    sq = jnp.sum(df * df, axis=1)
    # sqrt with a safe gradient at zero-length steps (repeated frames).
    step = jnp.where(sq > 0, jnp.sqrt(jnp.where(sq > 0, sq, 1.0)), 0.0)
    dzsq = jnp.sum(dz * dz, axis=1)
    zstep = jnp.where(dzsq > 0, jnp.sqrt(jnp.where(dzsq > 0, dzsq, 1.0)), 0.0)
    return Diagnostics(
        latent_length=jnp.sum(zstep),
        decoded_length=jnp.sum(step),
        decoded_energy=(zs.shape[0] - 1.0) * jnp.sum(sq),
        max_step=jnp.max(step),
    )


# Attribute vectors ----------------------------------------------------------------------------


def _masked_mean(z: Array, mask: Array) -> Array:
    w = mask.astype(z.dtype)
    return (w @ z) / jnp.maximum(jnp.sum(w), 1.0)


def _check_latents(z: Array, n: int, what: str) -> None:
    if z.ndim != 2:
        raise LatentError(f"{what}: latents must be (n, d), got shape {z.shape}")
    if z.shape[0] != n:
        raise LatentError(f"{what}: {z.shape[0]} latents but {n} labels/values")


def _concrete(x: Array):
    # Input checks only run on concrete values; under jit the caller owns the labels.
    return None if isinstance(x, jax.core.Tracer) else jax.device_get(x)


def attribute_vector(z: Float[ArrayLike, "n d"], labels: Bool[ArrayLike, " n"]) -> Float[Array, " d"]:
    """Mean latent of the positives minus mean latent of the negatives.

    Adding it to a negative's latent moves it, on average, to where positives sit ("add a smile").

    Args:
        z: ``(n, d)`` latents (e.g. encoder means).
        labels: ``(n,)`` booleans (or 0/1), True for examples that have the attribute.

    Returns:
        ``(d,)`` vector.

    Examples:
        >>> attribute_vector(jnp.array([[1.0, 0.0], [3.0, 0.0], [0.0, 0.0]]), jnp.array([True, True, False]))
        Array([2., 0.], dtype=float32)

    References:
        Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric", Sec. 5
        (visual attribute vectors); White 2016, "Sampling Generative Networks", Sec. 2.4.
    """
    z = jnp.asarray(z, jnp.float32)
    labels = jnp.asarray(labels).astype(bool)
    _check_latents(z, labels.shape[0], "attribute_vector")
    concrete = _concrete(labels)
    if concrete is not None and (concrete.all() or not concrete.any()):
        raise LatentError(
            f"attribute_vector: labels need both positives and negatives, got {int(concrete.sum())} of {concrete.size} positive"
        )
    return _masked_mean(z, labels) - _masked_mean(z, ~labels)


def regression_vector(
    z: Float[ArrayLike, "n d"], values: Float[ArrayLike, " n"], *, kind: str = "mean_shift"
) -> Float[Array, " d"]:
    """Direction of a continuous attribute, scaled so a unit step means one unit of the attribute.

    Two least-squares fits, both scaled in the attribute's own units:

    - ``kind="mean_shift"`` (default): regress every latent coordinate on the attribute,
      ``v = cov(z, y) / var(y)``: the average latent displacement between data whose attribute
      differs by one unit. For 0/1 values it equals `attribute_vector` exactly. It follows the data,
      so decoded edits stay typical.
    - ``kind="predictor"``: fit ``y ~ w . z + b`` and return ``w / |w|^2``: the shortest latent step
      that raises the linear prediction of ``y`` by one unit.

    Args:
        z: ``(n, d)`` latents.
        values: ``(n,)`` measured attribute (e.g. stroke thickness in pixels).
        kind: ``"mean_shift"`` or ``"predictor"``.

    Returns:
        ``(d,)`` vector; ``apply(z, v, 2.0)`` asks for two more units of the attribute.

    Examples:
        >>> y = jnp.array([0.0, 1.0, 2.0]); z = jnp.stack([2.0 * y, jnp.zeros(3)], axis=1)
        >>> regression_vector(z, y)
        Array([2., 0.], dtype=float32)

    References:
        Least squares (Legendre 1805); attribute directions from regression as in Shen et al.
        2020, "Interpreting the Latent Space of GANs for Semantic Face Editing" (InterFaceGAN, Sec. 2).
    """
    z = jnp.asarray(z, jnp.float32)
    y = jnp.asarray(values, jnp.float32)
    if y.ndim != 1:
        raise LatentError(f"regression_vector: values must be (n,), got shape {y.shape}")
    _check_latents(z, y.shape[0], "regression_vector")
    zc = z - z.mean(axis=0, keepdims=True)
    yc = y - y.mean()
    if kind == "mean_shift":
        return (yc @ zc) / jnp.maximum(yc @ yc, jnp.finfo(jnp.float32).tiny)
    if kind == "predictor":
        w = jnp.linalg.lstsq(zc, yc)[0]
        return w / jnp.maximum(w @ w, jnp.finfo(jnp.float32).tiny)
    raise LatentError(f"regression_vector: kind must be 'mean_shift' or 'predictor', got {kind!r}")


def class_vector(
    z: Float[ArrayLike, "n d"], labels: Int[ArrayLike, " n"], source: int, target: int
) -> Float[Array, " d"]:
    """Mean latent of class ``target`` minus mean latent of class ``source`` (e.g. sandal -> ankle boot).

    Examples:
        >>> class_vector(jnp.array([[0.0], [2.0], [4.0]]), jnp.array([0, 1, 1]), 0, 1)
        Array([3.], dtype=float32)

    References:
        Mikolov et al. 2013 (vector offsets); White 2016, "Sampling Generative Networks", Sec. 2.4.
    """
    z = jnp.asarray(z, jnp.float32)
    labels = jnp.asarray(labels)
    _check_latents(z, labels.shape[0], "class_vector")
    concrete = _concrete(labels)
    if concrete is not None:
        for c in (source, target):
            if not (concrete == c).any():
                raise LatentError(f"class_vector: no example of class {c} among the labels")
    return _masked_mean(z, labels == target) - _masked_mean(z, labels == source)


def apply(
    z: Float[ArrayLike, " d"], vector: Float[ArrayLike, " d"], strength: ArrayLike
) -> Float[Array, " d"]:
    """``z + strength * vector`` for one latent and a scalar strength.

    Sweep with ``jax.vmap(apply, in_axes=(None, None, 0))(z, v, strengths)``; over inputs and
    strengths at once nest two vmaps.

    Examples:
        >>> apply(jnp.zeros(2), jnp.array([1.0, 0.0]), -2.0)
        Array([-2.,  0.], dtype=float32)

    References:
        White 2016, "Sampling Generative Networks", Sec. 2.4.
    """
    return jnp.asarray(z) + jnp.asarray(strength) * jnp.asarray(vector)


def gram_schmidt(vectors: Float[ArrayLike, "k d"]) -> Float[Array, "k d"]:
    """Make each vector orthogonal to the ones before it, keeping its remaining length.

    Unlike QR, the vectors are not normalised: vector ``j`` keeps the part of itself that the
    earlier ones do not explain, so strengths keep their units along that part.

    Examples:
        >>> gram_schmidt(jnp.array([[1.0, 0.0], [1.0, 1.0]]))
        Array([[1., 0.],
               [0., 1.]], dtype=float32)

    References:
        Golub & Van Loan, "Matrix Computations", Sec. 5.2.7 (modified Gram-Schmidt).
    """
    vs = jnp.asarray(vectors, jnp.float32)
    out = []
    for j in range(vs.shape[0]):
        v = vs[j]
        for u in out:
            uu = jnp.sum(u * u)
            v = v - jnp.where(uu > 0, jnp.sum(u * v) / jnp.where(uu > 0, uu, 1.0), 0.0) * u
        out.append(v)
    return jnp.stack(out)


def chain(
    z: Float[ArrayLike, " d"],
    vectors: Float[ArrayLike, "k d"],
    strengths: Float[ArrayLike, " k"],
    *,
    orthogonalize: bool = False,
) -> Float[Array, " d"]:
    """Apply several attribute vectors in order: ``z + sum_j strengths[j] * vectors[j]``.

    With ``orthogonalize=True`` the vectors first go through `gram_schmidt`, so edit ``j`` has no
    component along the earlier edits and does not undo (or double) them: e.g. a "turn the head"
    vector correlated with "smile" no longer changes the smile coordinate.

    Examples:
        >>> chain(jnp.zeros(2), jnp.array([[1.0, 0.0], [1.0, 1.0]]), jnp.array([1.0, 1.0]), orthogonalize=True)
        Array([1., 1.], dtype=float32)

    References:
        Shen et al. 2020, "InterFaceGAN", Sec. 2.3 (conditional manipulation by projection).
    """
    z = jnp.asarray(z, jnp.float32)
    vectors = jnp.asarray(vectors, jnp.float32)
    strengths = jnp.asarray(strengths, jnp.float32)
    if vectors.ndim != 2 or vectors.shape[1] != z.shape[-1] or strengths.shape != (vectors.shape[0],):
        raise LatentError(
            f"chain: expected vectors (k, {z.shape[-1]}) and strengths (k,), got {vectors.shape} and {strengths.shape}"
        )
    if orthogonalize:
        vectors = gram_schmidt(vectors)
    return z + strengths @ vectors


# Traversals -----------------------------------------------------------------------------------


def traverse(
    z: Float[ArrayLike, " d"], dim_or_direction: int | ArrayLike, values: Float[ArrayLike, " m"]
) -> Float[Array, "m d"]:
    """Latents ``z + values[i] * direction`` around one point (one latent dimension or a direction).

    Args:
        z: ``(d,)`` latent to start from.
        dim_or_direction: an int (move along that coordinate) or a ``(d,)`` direction (e.g. a
            principal direction or an attribute vector), used as given (not normalised).
        values: ``(m,)`` offsets.

    Returns:
        ``(m, d)`` latents to decode.

    Examples:
        >>> traverse(jnp.zeros(2), 1, jnp.array([-1.0, 1.0]))
        Array([[ 0., -1.],
               [ 0.,  1.]], dtype=float32)

    References:
        Higgins et al. 2017, "beta-VAE", Fig. 1 (latent traversals).
    """
    z = jnp.asarray(z, jnp.float32)
    values = jnp.asarray(values, jnp.float32)
    if isinstance(dim_or_direction, int):
        if not -z.shape[0] <= dim_or_direction < z.shape[0]:
            raise LatentError(
                f"traverse: dimension {dim_or_direction} out of range for a latent of size {z.shape[0]}"
            )
        direction = jax.nn.one_hot(dim_or_direction % z.shape[0], z.shape[0], dtype=jnp.float32)
    else:
        direction = jnp.asarray(dim_or_direction, jnp.float32)
        if direction.shape != z.shape:
            raise LatentError(
                f"traverse: direction shape {direction.shape} differs from latent shape {z.shape}"
            )
    return jax.vmap(apply, in_axes=(None, None, 0))(z, direction, values)


def factor_sensitivity(z: Float[ArrayLike, "n d"], factors: Float[ArrayLike, "n f"]) -> Sensitivity:
    """Absolute correlation between every latent coordinate and every known generative factor.

    On a data set with known factors (sprites: shape, scale, rotation, x, y) this tells which
    latent dimension moves which factor; a disentangled model has one large entry per column.
    Pass periodic factors (rotation) as cos/sin columns, since correlation is linear.

    Args:
        z: ``(n, d)`` latents (encoder means).
        factors: ``(n, f)`` factor values (categorical ones as codes or one-hot columns).

    Returns:
        `Sensitivity` with ``correlation (d, f)`` and ``best_dim (f,)``.

    Examples:
        >>> s = factor_sensitivity(jnp.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]]), jnp.array([[0.0], [2.0], [4.0]]))
        >>> s.best_dim
        Array([0], dtype=int32)

    References:
        Higgins et al. 2017, "beta-VAE" (dSprites factors); Ridgeway & Mozer 2018, "Learning Deep
        Disentangled Embeddings with the F-Statistic Loss" (modularity from latent-factor statistics).
    """
    z = jnp.asarray(z, jnp.float32)
    f = jnp.asarray(factors, jnp.float32)
    if f.ndim == 1:
        f = f[:, None]
    _check_latents(z, f.shape[0], "factor_sensitivity")
    zc = z - z.mean(axis=0, keepdims=True)
    fc = f - f.mean(axis=0, keepdims=True)
    zs = jnp.sqrt(jnp.sum(zc * zc, axis=0))
    fs = jnp.sqrt(jnp.sum(fc * fc, axis=0))
    denom = zs[:, None] * fs[None, :]
    corr = jnp.where(denom > 0, jnp.abs(zc.T @ fc) / jnp.where(denom > 0, denom, 1.0), 0.0)
    return Sensitivity(correlation=corr, best_dim=jnp.argmax(corr, axis=0).astype(jnp.int32))
