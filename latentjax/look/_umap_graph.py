"""UMAP's fuzzy simplicial set: ``calibrate`` (umap-learn's ``smooth_knn_dist``) and the fuzzy union.

The graph is invariant to translating the data (the neighbours come from ``neighbors.knn``, or
``neighbors.approximate_knn`` when asked) and, up to the calibration's tolerance (1e-5 on each
point's membership sum), to scaling it. ``umap`` re-exports everything here.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.look import _knn_method, _umap_kernels, neighbors
from latentjax.look._dimred_args import float_dtype


class Calibration(NamedTuple):
    """Each point's directed memberships and the bandwidths that give them.

    Attributes:
      memberships: ``(n, k)`` ``exp(-(d_ij - rho_i) / sigma_i)`` (1 within ``rho_i``).
      sigma: ``(n,)`` per-point bandwidth.
      rho: ``(n,)`` distance to the nearest (non-identical) neighbour.

    Examples:
      >>> Calibration(jnp.ones((2, 3)), jnp.ones(2), jnp.zeros(2)).memberships.shape
      (2, 3)
    """

    memberships: jax.Array
    sigma: jax.Array
    rho: jax.Array


def _n_neighbors(n_neighbors, where, n=None):
    k = _checks.index(n_neighbors, "n_neighbors", where=where, minimum=2)
    if n is not None and k > n:
        raise InputError(f"{where}: n_neighbors must be in [2, n = {n}] for {n} points, got {k}")
    return k


def _distances(distances, where, n_neighbors):
    """Distances checked: ``(n, n_neighbors - 1)``, finite, >= 0 and ascending per row when concrete."""
    d = _checks.array(distances, "distances", where=where, ndim=2)
    if d.shape[1] != n_neighbors - 1:
        raise InputError(
            f"{where}: distances must be (n, n_neighbors - 1 = {n_neighbors - 1}), got shape {tuple(d.shape)}"
        )
    if not _checks.is_traced(d):
        a = np.asarray(d)
        if np.any(a < 0) or np.any(np.diff(a, axis=1) < 0):
            raise InputError(f"{where}: distances must be >= 0 and ascending along each row")
    return jnp.asarray(d, float_dtype(d.dtype))


def calibrate(distances: ArrayLike, *, n_neighbors: int) -> Calibration:
    """Per-point ``rho``, ``sigma`` and memberships, by a binary search over all points at once.

    ``sum_j exp(-(d_ij - rho_i) / sigma_i) = log2(n_neighbors)``, as umap-learn's ``smooth_knn_dist``.

    Args:
      distances: ``(n, n_neighbors - 1)`` ascending neighbour distances, the point itself excluded.
      n_neighbors: umap-learn's ``n_neighbors``, which counts the point itself.

    Returns:
      The ``Calibration``, in the distances' float dtype (at least float32; float64 stays float64
      under x64).

    Raises:
      InputError: ``distances`` of another shape, with NaN/inf, negative or not ascending;
        ``n_neighbors`` not an integer >= 2.

    Examples:
      >>> c = calibrate(jnp.array([[1.0, 2.0, 3.0]]), n_neighbors=4)
      >>> c.rho.tolist(), round(float(c.memberships.sum()), 4)
      ([1.0], 2.0)

    References:
      McInnes, Healy and Melville, "UMAP", arXiv:1802.03426, definitions 7-9 and section 3.1.
    """
    where = "look.umap.calibrate"
    n_neighbors = _n_neighbors(n_neighbors, where)
    d = _distances(distances, where, n_neighbors)
    return Calibration(*_umap_kernels.memberships(d, n_neighbors=n_neighbors))


def fuzzy_graph_from_knn(indices: ArrayLike, distances: ArrayLike, *, n_neighbors: int) -> neighbors.Graph:
    """The fuzzy simplicial set from precomputed neighbours (self excluded, nearest first).

    Args:
      indices: ``(n, n_neighbors - 1)`` int neighbour indices in ``[0, n)``, the point itself excluded.
      distances: ``(n, n_neighbors - 1)`` float distances, ascending per row.
      n_neighbors: umap-learn's ``n_neighbors``, which counts the point itself.

    Returns:
      The symmetric ``neighbors.Graph`` of ``calibrate``'s memberships combined by fuzzy union
      ``P + P^T - P * P^T``; weights in ``(0, 1]``, in the distances' float dtype.

    Raises:
      InputError: ``indices`` not integers in ``[0, n)`` of the distances' shape; the distances
        as in ``calibrate``.

    Examples:
      >>> nb = neighbors.knn(np.random.default_rng(0).normal(size=(50, 3)), k=4)
      >>> g = fuzzy_graph_from_knn(nb.indices, nb.distances, n_neighbors=5)
      >>> bool((g.weights <= 1).all() & (g.weights > 0).all())
      True

    References:
      McInnes, Healy and Melville, "UMAP", arXiv:1802.03426, definitions 7-9 and section 3.1.
    """
    return _from_knn(indices, distances, n_neighbors, where="look.umap.fuzzy_graph_from_knn")


def _from_knn(indices, distances, n_neighbors, *, where):
    n_neighbors = _n_neighbors(n_neighbors, where)
    indices = np.asarray(_checks.array(indices, "indices", where=where, ndim=2, kind=None))
    d = _distances(distances, where, n_neighbors)
    _checks.same_shape(indices, d, ("indices", "distances"), where=where)
    n, k = indices.shape
    if not np.issubdtype(indices.dtype, np.integer):
        raise InputError(f"{where}: indices must be integers, got dtype {indices.dtype}")
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise InputError(f"{where}: indices must be in [0, n = {n}), got {indices.min()}..{indices.max()}")
    vals = np.asarray(_umap_kernels.memberships(d, n_neighbors=n_neighbors)[0])
    rows = np.repeat(np.arange(n, dtype=np.int32), k)
    p = scipy.sparse.coo_matrix(
        (vals.ravel(), (rows, indices.ravel().astype(np.int32))), shape=(n, n)
    ).tocsr()
    p.sum_duplicates()
    union = (p + p.T - p.multiply(p.T)).tocsr()
    union.eliminate_zeros()
    union.sort_indices()
    coo = union.tocoo()
    return neighbors.Graph(
        jnp.asarray(coo.row, jnp.int32), jnp.asarray(coo.col, jnp.int32), jnp.asarray(coo.data, d.dtype)
    )


# ``knn_method="auto"`` searches approximately above this many points (umap-learn: 4,096, where
# its brute force stops). With the C++ candidate kernel (``_knn_native``) the exact search of 14
# neighbours took 2.5 / 9.7 / 37.4 s at 70,000 / 140,000 / 280,000 points (Fashion-MNIST PCA-50 and
# jittered copies, 2 cores), the approximate one 3.6 / 12.9 / 23.9 s: they cross near 180,000.
APPROXIMATE_ABOVE = 180_000
# The approximate search's settings for UMAP's few neighbours: 6 trees and 2 rounds found 0.964
# of the 14 true neighbours at 70,000 points in 3.8 s (the defaults, 8 and 3: 0.974 in 5.4 s);
# the map's trustworthiness did not change between the exact and the approximate graph.
APPROXIMATE_SETTINGS = {"num_trees": 6, "max_iterations": 2}


def fuzzy_graph(
    x: ArrayLike, *, n_neighbors: int = 15, knn_method: str = "exact", key: jax.Array | None = None
) -> neighbors.Graph:
    """The fuzzy simplicial set of ``x``: Euclidean neighbours, then ``fuzzy_graph_from_knn``.

    Args:
      x: ``(n, d)`` data, finite.
      n_neighbors: neighbourhood size, counting the point itself (umap-learn's convention), in
        ``[2, n]``.
      knn_method: ``"exact"`` (``neighbors.knn``), ``"approximate"`` (``neighbors.approximate_knn``,
        as umap-learn's NN-descent) or ``"auto"`` (approximate above ``APPROXIMATE_ABOVE`` points).
      key: a ``jax.random.key`` for the approximate search (needed only then).

    Returns:
      The symmetric ``neighbors.Graph``, weights in ``x``'s float dtype.

    Raises:
      InputError: ``x`` not a 2-D real array or with NaN/inf; ``n_neighbors`` out of range; an
        unknown ``knn_method``, or an approximate search without ``key``.

    Examples:
      >>> g = fuzzy_graph(np.random.default_rng(0).normal(size=(100, 5)), n_neighbors=10)
      >>> g.num_points, bool(g.rows.shape == g.cols.shape == g.weights.shape)
      (100, True)

    References:
      McInnes, Healy and Melville, "UMAP", arXiv:1802.03426, section 3.1.
    """
    where = "look.umap.fuzzy_graph"
    x = _checks.array(x, "x", where=where, ndim=2)
    idx, dist = graph_knn(x, n_neighbors, knn_method=knn_method, key=key, where=where)
    return _from_knn(idx, dist, _n_neighbors(n_neighbors, where, x.shape[0]), where=where)


def graph_knn(x, n_neighbors, *, knn_method: str, key, where: str):
    """``(indices, distances)`` of the ``n_neighbors - 1`` nearest neighbours, in ``x``'s float dtype.

    The search as ``knn_method`` says (see ``fuzzy_graph``); distances computed in another dtype
    are recomputed exactly in ``x``'s and the rows re-sorted.
    """
    n_neighbors = _n_neighbors(n_neighbors, where, x.shape[0])
    dtype = float_dtype(x.dtype)
    x = jnp.asarray(x, dtype)
    nb = _knn_method.search(
        x,
        n_neighbors - 1,
        method=knn_method,
        key=key,
        approximate_above=APPROXIMATE_ABOVE,
        where=where,
        **APPROXIMATE_SETTINGS,
    )
    idx, dist = nb.indices, nb.distances
    if dist.dtype != dtype:  # recomputed exactly in x's dtype (and re-sorted)
        dist = jnp.sqrt(jnp.sum((x[:, None, :] - x[idx]) ** 2, axis=-1))
        order = jnp.argsort(dist, axis=1, stable=True)
        idx, dist = jnp.take_along_axis(idx, order, 1), jnp.take_along_axis(dist, order, 1)
    return idx, dist


def supervise(graph: neighbors.Graph, labels: ArrayLike, *, target_weight: float = 0.5) -> neighbors.Graph:
    """The fuzzy graph intersected with the labels' categorical one (umap-learn's ``fit(x, y)``).

    An edge between different labels is scaled by ``exp(-far_dist)``, ``far_dist = 2.5 / (1 -
    target_weight)`` (``1e12`` at ``target_weight = 1``); one with an unknown label (-1) at either
    end by ``exp(-1)``. Then each row is divided by its largest weight and the fuzzy union is
    taken again (umap-learn's ``reset_local_connectivity``).

    Args:
      graph: the fuzzy graph (``fuzzy_graph``) on ``n`` points.
      labels: ``(n,)`` integer classes, ``-1`` for unknown.
      target_weight: in ``[0, 1]``: 0 keeps the data's structure mostly, 1 separates the classes
        fully (umap-learn's default 0.5).

    Returns:
      The supervised symmetric ``neighbors.Graph``, weights in ``(0, 1]``.

    Raises:
      InputError: ``labels`` not integers >= -1 with one entry per point; ``target_weight``
        outside ``[0, 1]``; ``graph`` not a ``neighbors.Graph``.

    Examples:
      >>> x = np.concatenate([np.zeros((5, 2)), np.ones((5, 2))]) + np.arange(10)[:, None] * 0.01
      >>> g = supervise(fuzzy_graph(x, n_neighbors=4), np.repeat([0, 1], 5))
      >>> bool((g.weights <= 1).all() & (g.weights > 0).all())
      True

    References:
      McInnes, Healy and Melville, "UMAP", arXiv:1802.03426, section 6; umap-learn's
      ``discrete_metric_simplicial_set_intersection`` and ``reset_local_connectivity``.
    """
    where = "look.umap.supervise"
    if not isinstance(graph, neighbors.Graph):
        raise InputError(f"{where}: graph must be a neighbors.Graph (umap.fuzzy_graph), got {type(graph)}")
    rows, cols = np.asarray(graph.rows, np.int64), np.asarray(graph.cols, np.int64)
    n = int(max(rows.max(), cols.max())) + 1 if rows.size else 0
    y = np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < -1):
        raise InputError(f"{where}: labels must be a vector of integers >= -1 (-1: unknown)")
    if y.shape[0] < n:
        raise InputError(f"{where}: labels has {y.shape[0]} entries but the graph has {n} points")
    n = y.shape[0]
    if not (isinstance(target_weight, (int, float)) and 0.0 <= target_weight <= 1.0):
        raise InputError(f"{where}: target_weight must be a number in [0, 1], got {target_weight!r}")
    far = 2.5 / (1.0 - target_weight) if target_weight < 1.0 else 1e12
    w = np.asarray(graph.weights)
    scale = np.where(
        (y[rows] == -1) | (y[cols] == -1), np.exp(-1.0), np.where(y[rows] != y[cols], np.exp(-far), 1.0)
    )
    p = scipy.sparse.coo_matrix((w * scale.astype(w.dtype), (rows, cols)), shape=(n, n)).tocsr()
    p.eliminate_zeros()
    top = np.asarray(p.max(axis=1).todense()).ravel()
    p = scipy.sparse.diags(1.0 / np.where(top > 0, top, 1.0)).astype(w.dtype) @ p
    union = (p + p.T - p.multiply(p.T)).tocsr()
    union.eliminate_zeros()
    union.sort_indices()
    coo = union.tocoo()
    return neighbors.Graph(
        jnp.asarray(coo.row, jnp.int32), jnp.asarray(coo.col, jnp.int32), jnp.asarray(coo.data, w.dtype)
    )
