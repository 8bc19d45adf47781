"""Optimal transport between point clouds (e.g. latent codes): distances, maps and barycenters.

Also the point-cloud transport plan that `displacement_interpolate` moves pixels along. Supported
ott-jax: 0.6.x (``sinkhorn_divergence`` returns ``(divergence, output)`` since 0.6).

ott's squared Euclidean cost expands ``|x|^2 + |y|^2 - 2 x.y``, which in float32 loses the
distances of clouds far from the origin (at an offset of 1e4 nothing of a unit spread is left).
Every entry point therefore centres all its clouds by one common mean first (in float64 on the
host when the clouds are concrete), which changes no distance, plan or barycenter.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from ott.geometry import pointcloud
from ott.problems.linear import barycenter_problem
from ott.solvers import linear
from ott.solvers.linear import continuous_barycenter, sinkhorn
from ott.tools import sinkhorn_divergence

from latentjax import _checks
from latentjax.errors import InputError


def _ott_broadcasting():
    """Allows NumPy rank promotion inside ott calls only: ott's Sinkhorn error checks rely on it.

    Tests, and careful users, set ``jax_numpy_rank_promotion="raise"`` globally.
    """
    return jax.numpy_rank_promotion("allow")


def _barycentric_weights(weights: ArrayLike, k: int, where: str) -> np.ndarray:
    """``(m, k)`` float64 weight vectors, each normalised to sum to 1, from ``(m, k)`` or ``(k,)``."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[None]
    if w.ndim != 2 or w.shape[1] != k:
        raise InputError(
            f"{where}: weights must have shape (m, {k}) (one weight per input), got {np.shape(weights)}"
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0) or np.any(w.sum(axis=1) <= 0):
        raise InputError(f"{where}: weights must be finite, non-negative and not all zero in a row")
    return w / w.sum(axis=1, keepdims=True)


def _plan(x, y, a, b, *, epsilon, threshold, max_steps):
    """The entropic plan ``(n, m)`` between weighted clouds, its L1 marginal error and iterations."""
    geom = pointcloud.PointCloud(x, y, epsilon=epsilon)
    with _ott_broadcasting():
        out = linear.solve(geom, a, b, threshold=threshold, max_iterations=max_steps)
    p = out.matrix
    err = jnp.sum(jnp.abs(jnp.sum(p, axis=1) - a)) + jnp.sum(jnp.abs(jnp.sum(p, axis=0) - b))
    return p, err, out.n_iters


_plan_jit = jax.jit(_plan, static_argnames=("epsilon", "max_steps"))


def _as_cloud(x: ArrayLike, where: str, name: str, ndim: int = 2):
    """A point cloud ``(n, d)`` (or ``ndim`` dimensions), checked; finite when concrete."""
    x = _checks.array(x, name, where=where)
    if len(x.shape) != ndim or x.shape[-2] < 1:
        want = "a (n, d) point cloud" if ndim == 2 else "(k, n, d) point clouds"
        raise InputError(f"{where}: {name} must be {want}, got shape {tuple(x.shape)}")
    return x


def _centred(*clouds) -> tuple[list[jax.Array], jax.Array]:
    """The clouds minus their common mean, and that mean ``(d,)``, in the clouds' float dtype.

    Concrete clouds are centred in float64 on the host, so a float64 cloud at an offset of 1e4
    keeps its full spread even when JAX computes in float32; traced ones in their own dtype.
    """
    dt = jnp.result_type(*clouds)
    dt = dt if jnp.issubdtype(dt, jnp.floating) else jnp.result_type(float)
    if any(_checks.is_traced(c) for c in clouds):
        flat = jnp.concatenate([jnp.reshape(c, (-1, c.shape[-1])) for c in clouds]).astype(dt)
        mean = jnp.mean(flat, axis=0)
        return [jnp.asarray(c, dt) - mean.reshape((1,) * (c.ndim - 1) + (-1,)) for c in clouds], mean
    arrays = [np.asarray(c, np.float64) for c in clouds]
    mean = np.concatenate([a.reshape(-1, a.shape[-1]) for a in arrays]).mean(axis=0)
    return [jnp.asarray(a - mean, dt) for a in arrays], jnp.asarray(mean, dt)


def _as_cloud_pair(x: ArrayLike, y: ArrayLike, where: str, names: tuple[str, str]):
    x, y = _as_cloud(x, where, names[0]), _as_cloud(y, where, names[1])
    if x.shape[1] != y.shape[1]:
        raise InputError(
            f"{where}: {names[0]} and {names[1]} have different dimensions: {x.shape[1]} and {y.shape[1]}"
        )
    return x, y


def ot_distance(x: ArrayLike, y: ArrayLike, *, epsilon: float = 1e-2) -> jax.Array:
    """The Sinkhorn divergence between two uniform point clouds (squared Euclidean cost).

    ``S_eps(x, y) = OT_eps(x, y) - (OT_eps(x, x) + OT_eps(y, y)) / 2``: zero for identical
    clouds, positive otherwise, and ``W_2^2`` as ``epsilon -> 0``. Translating both clouds
    changes nothing; scaling both by ``s`` (and ``epsilon`` by ``s^2``) scales it by ``s^2``.

    Args:
        x: ``(n, d)`` points.
        y: ``(m, d)`` points, same ``d``.
        epsilon: entropic regularisation (absolute, in squared coordinate units).

    Returns:
        A scalar.

    Raises:
        InputError: a cloud is not ``(n, d)``, has non-finite points, or the dimensions differ.

    Examples:
        >>> x = np.random.default_rng(0).normal(size=(64, 2))
        >>> round(float(ot_distance(x, x + [3.0, 0.0], epsilon=1e-2)), 1)
        9.0

    References:
        Feydy et al., "Interpolating between Optimal Transport and MMD using Sinkhorn
        Divergences", AISTATS 2019.
    """
    x, y = _as_cloud_pair(x, y, "transport.ot_distance", ("x", "y"))
    (x, y), _ = _centred(x, y)
    return _divergence(x, y, epsilon=float(epsilon))


@functools.partial(jax.jit, static_argnames=("epsilon",))
def _divergence(x, y, *, epsilon):
    with _ott_broadcasting():
        divergence, _ = sinkhorn_divergence.sinkhorn_divergence(pointcloud.PointCloud, x, y, epsilon=epsilon)
    return divergence


def transport_points(
    x_source: ArrayLike, x_target: ArrayLike, *, relative_epsilon: float = 1e-2
) -> jax.Array:
    """Move each source point along the OT plan onto the target cloud (barycentric projection).

    ``T(x_i) = sum_j P_ij y_j / sum_j P_ij`` for the entropic plan ``P`` between the uniform
    clouds: the OT counterpart of adding a mean-difference vector, but it matches the whole
    target distribution (spread and shape), not only its mean.

    Args:
        x_source: ``(n, d)`` source points (e.g. latent codes of one class).
        x_target: ``(m, d)`` target points (e.g. latent codes of another class).
        relative_epsilon: entropic regularisation as a fraction of the mean squared distance
            between the clouds (ott's ``relative_epsilon="mean"``), so it is scale free.

    Returns:
        ``(n, d)`` transported points.

    Raises:
        InputError: a cloud is not ``(n, d)``, has non-finite points, or the dimensions differ.

    Examples:
        >>> x = np.random.default_rng(0).normal(size=(32, 2))
        >>> bool(np.allclose(transport_points(x, x + 5.0, relative_epsilon=1e-3), x + 5.0, atol=0.1))
        True

    References:
        Peyre & Cuturi, "Computational Optimal Transport", 2019, Remark 4.11 (barycentric map).
    """
    x, y = _as_cloud_pair(x_source, x_target, "transport.transport_points", ("x_source", "x_target"))
    (x, y), mean = _centred(x, y)
    return _barycentric_map(x, y, relative_epsilon=float(relative_epsilon)) + mean[None, :]


@functools.partial(jax.jit, static_argnames=("relative_epsilon",))
def _barycentric_map(x, y, *, relative_epsilon):
    geom = pointcloud.PointCloud(x, y, epsilon=relative_epsilon, relative_epsilon="mean")
    with _ott_broadcasting():
        out = linear.solve(geom, threshold=1e-4, max_iterations=5000)
    p = out.matrix
    return (p @ y) / jnp.sum(p, axis=1, keepdims=True)


def point_cloud_barycenter(
    key: jax.Array,
    clouds: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    num_points: int = 512,
    epsilon: float = 1e-2,
    max_steps: int = 20,
) -> jax.Array:
    """Free-support Wasserstein barycenter of ``k`` point clouds (ott's FreeWassersteinBarycenter).

    Args:
        key: a ``jax.random.key``; initialises the barycenter's points by sampling the inputs.
        clouds: ``(k, n, d)`` point clouds with uniform weights (subsample to a common ``n``).
        weights: ``(k,)`` barycentric weights; default uniform.
        num_points: support size of the barycenter.
        epsilon: entropic regularisation of the inner Sinkhorn solves (absolute).
        max_steps: at most this many outer (point update) iterations (ott stops earlier at its
            tolerance, 1e-3).

    Returns:
        ``(num_points, d)`` barycenter points (uniform weights). Translating the clouds translates
        it; scaling them by ``s`` (and ``epsilon`` by ``s^2``) scales it.

    Raises:
        InputError: ``clouds`` is not ``(k, n, d)`` or (eager calls) holds NaN/inf, bad ``weights``,
            or more points than the inputs.

    Examples:
        >>> c = np.random.default_rng(0).normal(size=(2, 128, 3))
        >>> c[1] += 4.0
        >>> z = point_cloud_barycenter(jax.random.key(0), c, num_points=64)
        >>> bool(abs(float(z.mean()) - 2.0) < 0.3)
        True

    References:
        Cuturi & Doucet, "Fast Computation of Wasserstein Barycenters", ICML 2014.
    """
    where = "transport.point_cloud_barycenter"
    y = _as_cloud(clouds, where, "clouds", ndim=3)
    (y,), mean = _centred(y)
    k, n, _ = y.shape
    w = (
        jnp.full((k,), 1.0 / k, y.dtype)
        if weights is None
        else jnp.asarray(_barycentric_weights(weights, k, where)[0], y.dtype)
    )
    num_points = _checks.index(num_points, "num_points", where=where, minimum=1)
    max_steps = _checks.index(max_steps, "max_steps", where=where, minimum=1)
    if num_points > k * n:
        raise InputError(f"{where}: num_points={num_points} exceeds the {k * n} input points")
    return (
        _free_barycenter(key, y, w, epsilon=float(epsilon), num_points=num_points, max_steps=max_steps)
        + mean[None, :]
    )


@functools.partial(jax.jit, static_argnames=("epsilon", "num_points", "max_steps"))
def _free_barycenter(key, y, w, *, epsilon, num_points, max_steps):
    k, n, _ = y.shape
    b = jnp.full((k, n), 1.0 / n, y.dtype)
    problem = barycenter_problem.FreeBarycenterProblem(y, b, weights=w, epsilon=epsilon)
    solver = continuous_barycenter.FreeWassersteinBarycenter(
        linear_solver=sinkhorn.Sinkhorn(threshold=1e-3, max_iterations=2000), max_iterations=max_steps
    )
    with _ott_broadcasting():
        return solver(problem, bar_size=num_points, rng=key).x
