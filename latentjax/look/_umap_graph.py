"""UMAP's fuzzy simplicial set: ``calibrate`` (umap-learn's ``smooth_knn_dist``) and the fuzzy union.

The graph is invariant to translating the data (the neighbours come from ``neighbors.knn``) and,
up to the calibration's tolerance (1e-5 on each point's membership sum), to scaling it. ``umap``
re-exports everything here.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.look import _umap_kernels, neighbors
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


def fuzzy_graph(x: ArrayLike, *, n_neighbors: int = 15) -> neighbors.Graph:
    """The fuzzy simplicial set of ``x``: exact Euclidean neighbours, then ``fuzzy_graph_from_knn``.

    Args:
      x: ``(n, d)`` data, finite.
      n_neighbors: neighbourhood size, counting the point itself (umap-learn's convention), in
        ``[2, n]``.

    Returns:
      The symmetric ``neighbors.Graph``, weights in ``x``'s float dtype.

    Raises:
      InputError: ``x`` not a 2-D real array or with NaN/inf; ``n_neighbors`` out of range.

    Examples:
      >>> g = fuzzy_graph(np.random.default_rng(0).normal(size=(100, 5)), n_neighbors=10)
      >>> g.num_points, bool(g.rows.shape == g.cols.shape == g.weights.shape)
      (100, True)

    References:
      McInnes, Healy and Melville, "UMAP", arXiv:1802.03426, section 3.1.
    """
    return _fuzzy_graph(x, n_neighbors, where="look.umap.fuzzy_graph")


def _fuzzy_graph(x, n_neighbors, *, where):
    x = _checks.array(x, "x", where=where, ndim=2)
    n_neighbors = _n_neighbors(n_neighbors, where, x.shape[0])
    dtype = float_dtype(x.dtype)
    x = jnp.asarray(x, dtype)
    nb = neighbors.knn(x, k=n_neighbors - 1)
    dist = nb.distances
    idx, dist = nb.indices, nb.distances
    if dist.dtype != dtype:  # recomputed exactly in x's dtype (and re-sorted)
        dist = jnp.sqrt(jnp.sum((x[:, None, :] - x[idx]) ** 2, axis=-1))
        order = jnp.argsort(dist, axis=1, stable=True)
        idx, dist = jnp.take_along_axis(idx, order, 1), jnp.take_along_axis(dist, order, 1)
    return _from_knn(idx, dist, n_neighbors, where=where)
