"""A start for the variance-aware geodesic on the data: the shortest chain of RBF centres between two latents.

Under the variance-aware metric the region away from the data is a plateau of maximal variance
where the metric's sigma part has no gradient, so a path started on the straight line through a
hole stays there (a local minimum that pays for leaving and re-entering the data once). Starting on
a path through the data avoids that: the centres' k-nearest-neighbour graph, its shortest path by
Floyd-Warshall (all on device, ``K^3`` for ``K`` centres), resampled at equal arc length.
"""

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.move._paths import _check_endpoints, _float_dtype
from latentjax.move._uncertainty import Uncertainty


def data_path(
    uncertainty: Uncertainty, z0: ArrayLike, z1: ArrayLike, *, num_points: int, num_neighbors: int = 6
) -> jax.Array:
    """A path from ``z0`` to ``z1`` through the data: the shortest chain of the uncertainty's centres.

    The centres (k-means of the training latents, `fit_uncertainty`) are joined to their
    ``num_neighbors`` nearest centres (either way) with edges weighted by their squared distance
    (short hops are preferred to long jumps over a gap); ``z0`` and ``z1`` join their nearest
    centres. The shortest chain (Floyd-Warshall) is resampled at ``num_points`` points of equal
    arc length. When the graph does not connect the two centres the path is the straight line.

    Args:
        uncertainty: from `fit_uncertainty`.
        z0: ``(d,)`` first endpoint.
        z1: ``(d,)`` last endpoint.
        num_points: points on the path, endpoints included (>= 2).
        num_neighbors: neighbours of each centre in the graph (>= 1).

    Returns:
        ``(num_points, d)`` latents, ``z0`` first and ``z1`` last.

    Raises:
        InputError: endpoints of different shapes, or bad counts.

    Examples:
        >>> c = jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # three centres on a half circle
        >>> u = Uncertainty(c, jnp.ones(3), jnp.ones((3, 1)), jnp.array(1.0), jnp.zeros(1))
        >>> data_path(u, jnp.array([1.0, 0.0]), jnp.array([-1.0, 0.0]), num_points=3, num_neighbors=1)
        Array([[ 1.,  0.],
               [ 0.,  1.],
               [-1.,  0.]], dtype=float32)

    References:
        Chen, Klushyn et al. 2018, "Metrics for Deep Generative Models", AISTATS (graph-based
        initialisation of geodesics); Floyd 1962, "Algorithm 97: Shortest path".
    """
    where = "move.data_path"
    _check_endpoints(z0, z1, where)
    num_points = _checks.index(num_points, "num_points", where=where, minimum=2)
    num_neighbors = _checks.index(num_neighbors, "num_neighbors", where=where, minimum=1)
    k = uncertainty.centers.shape[0]
    if uncertainty.centers.shape[1] != jnp.shape(z0)[0]:
        raise InputError(
            f"{where}: z0 must have the centres' dimension {uncertainty.centers.shape[1]}, "
            f"got shape {tuple(jnp.shape(z0))}"
        )
    dt = _float_dtype(z0, z1, uncertainty.centers)
    return _data_path(
        jnp.asarray(uncertainty.centers, dt),
        jnp.asarray(z0, dt),
        jnp.asarray(z1, dt),
        num_points=num_points,
        num_neighbors=min(num_neighbors, max(k - 1, 1)),
    )


@functools.partial(jax.jit, static_argnames=("num_points", "num_neighbors"))
def _data_path(centers, z0, z1, *, num_points: int, num_neighbors: int) -> jax.Array:
    k = centers.shape[0]
    diff = centers[:, None, :] - centers[None, :, :]
    d2 = jnp.sum(diff * diff, axis=-1)  # (K, K)
    kth = jnp.sort(d2, axis=1)[:, min(num_neighbors, k - 1)]  # column 0 is the centre itself
    adjacent = (d2 <= kth[:, None]) | (d2 <= kth[None, :])
    w = jnp.where(adjacent, d2, jnp.inf)
    nxt = jnp.where(adjacent, jnp.arange(k)[None, :], -1)

    def relax(m, carry):
        w, nxt = carry
        through = w[:, m][:, None] + w[m, :][None, :]
        better = through < w
        return jnp.where(better, through, w), jnp.where(better, nxt[:, m][:, None], nxt)

    w, nxt = jax.lax.fori_loop(0, k, relax, (w, nxt))
    a = jnp.argmin(jnp.sum((centers - z0[None, :]) ** 2, axis=1))
    b = jnp.argmin(jnp.sum((centers - z1[None, :]) ** 2, axis=1))
    connected = jnp.isfinite(w[a, b]) | (a == b)

    def walk(cur, _):
        step = jnp.where(cur == b, b, nxt[cur, b])
        return step, step

    _, chain = jax.lax.scan(walk, a, length=k - 1)
    nodes = jnp.concatenate([z0[None], centers[a][None], centers[chain], z1[None]])  # (K + 2, d)
    seg = nodes[1:] - nodes[:-1]
    length = jnp.sqrt(jnp.sum(seg * seg, axis=1))
    cum = jnp.concatenate([jnp.zeros((1,), length.dtype), jnp.cumsum(length)])
    s = jnp.linspace(0.0, 1.0, num_points, dtype=z0.dtype) * cum[-1]
    i = jnp.clip(jnp.searchsorted(cum, s, side="right") - 1, 0, seg.shape[0] - 1)
    frac = jnp.where(length[i] > 0, (s - cum[i]) / jnp.where(length[i] > 0, length[i], 1.0), 0.0)
    pts = nodes[i] + frac[:, None] * seg[i]
    pts = pts.at[0].set(z0).at[-1].set(z1)
    line = z0[None, :] + jnp.linspace(0.0, 1.0, num_points, dtype=z0.dtype)[:, None] * (z1 - z0)[None, :]
    return jnp.where(connected & (cum[-1] > 0), pts, line)
