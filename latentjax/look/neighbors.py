"""Exact k-nearest neighbours, blockwise over queries (never an n x n matrix in memory).

Shared by t-SNE, UMAP and the embedding metrics.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from latentjax.errors import LatentJaxError


class NeighborsError(LatentJaxError, ValueError):
    """Bad input to a neighbour search (shape, k, block size)."""


class Neighbors(NamedTuple):
    """The k nearest neighbours of each query, nearest first.

    Attributes:
      indices: ``(n, k)`` int32 row indices into the data; the query itself is excluded
        when the queries are the data.
      distances: ``(n, k)`` float32 Euclidean distances (not squared).
    """

    indices: jax.Array
    distances: jax.Array


def _block_knn(q, q_index, x, x_sqnorm, *, k: int, exclude_self: bool):
    """The k nearest rows of ``x`` for one block of queries ``q`` ``(b, d)``."""
    # |q - x|^2 = |q|^2 + |x|^2 - 2 q.x: one matmul per block; HIGHEST keeps float32 on
    # accelerators (TF32 would reorder near neighbours).
    cross = jnp.matmul(q, x.T, precision=jax.lax.Precision.HIGHEST)
    d2 = jnp.sum(q * q, axis=1, keepdims=True) + x_sqnorm[None, :] - 2.0 * cross
    if exclude_self:
        self_mask = jnp.arange(x.shape[0])[None, :] == q_index[:, None]
        d2 = jnp.where(self_mask, jnp.inf, d2)
    neg, idx = jax.lax.top_k(-d2, k)
    # Recompute the selected distances directly (no cancellation) and re-sort by them.
    diff = q[:, None, :] - x[idx]
    dist = jnp.sqrt(jnp.sum(diff * diff, axis=-1))
    dist = jnp.where(jnp.isinf(neg), jnp.inf, dist)
    order = jnp.argsort(dist, axis=1, stable=True)
    return jnp.take_along_axis(idx, order, axis=1), jnp.take_along_axis(dist, order, axis=1)


def knn(x: ArrayLike, *, k: int, queries: ArrayLike | None = None, block_size: int = 1024) -> Neighbors:
    """Exact k nearest neighbours in Euclidean distance.

    Queries are processed in blocks of ``block_size`` rows with ``lax.map``; each block costs
    one ``(block_size, n)`` distance matrix and a ``top_k``, so memory is ``O(block_size * n)``.

    Args:
      x: ``(n, d)`` data points.
      k: number of neighbours (``1 <= k < n`` when ``queries`` is None, else ``k <= n``).
      queries: ``(m, d)`` query points; None means ``x`` itself, with each point excluded from
        its own neighbours.
      block_size: queries per block.

    Returns:
      ``Neighbors(indices (m, k) int32, distances (m, k) float32)``, nearest first.

    Examples:
      >>> import jax.numpy as jnp
      >>> nb = knn(jnp.array([[0.0], [1.0], [3.0]]), k=1)
      >>> nb.indices.ravel().tolist(), nb.distances.ravel().tolist()
      ([1, 0, 1], [1.0, 1.0, 2.0])

    References:
      Brute-force search; the blockwise layout follows FAISS's ``IndexFlatL2`` (Johnson,
      Douze and Jegou, "Billion-scale similarity search with GPUs", 2017).
    """
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2:
        raise NeighborsError(f"knn: x must be (n, d), got shape {x.shape}")
    exclude_self = queries is None
    q = x if exclude_self else jnp.asarray(queries, jnp.float32)
    if q.ndim != 2 or q.shape[1] != x.shape[1]:
        raise NeighborsError(f"knn: queries must be (m, {x.shape[1]}), got shape {q.shape}")
    n, m = x.shape[0], q.shape[0]
    max_k = n - 1 if exclude_self else n
    if not 1 <= k <= max_k:
        raise NeighborsError(f"knn: k={k} must be in [1, {max_k}] for {n} points")
    if block_size < 1:
        raise NeighborsError(f"knn: block_size={block_size} must be positive")
    return _knn(x, q, k=int(k), block_size=int(min(block_size, m)), exclude_self=exclude_self)


@functools.partial(jax.jit, static_argnames=("k", "block_size", "exclude_self"))
def _knn(x, q, *, k, block_size, exclude_self):
    m = q.shape[0]
    num_blocks = -(-m // block_size)
    pad = num_blocks * block_size - m
    q_pad = jnp.pad(q, ((0, pad), (0, 0)))
    q_index = jnp.arange(num_blocks * block_size, dtype=jnp.int32)
    x_sqnorm = jnp.sum(x * x, axis=1)

    def one_block(args):
        qb, ib = args
        return _block_knn(qb, ib, x, x_sqnorm, k=k, exclude_self=exclude_self)

    idx, dist = jax.lax.map(
        one_block,
        (q_pad.reshape(num_blocks, block_size, -1), q_index.reshape(num_blocks, block_size)),
    )
    idx = idx.reshape(-1, k)[:m].astype(jnp.int32)
    dist = dist.reshape(-1, k)[:m].astype(jnp.float32)
    return Neighbors(idx, dist)
