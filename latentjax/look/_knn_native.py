"""The exact kNN's candidate search as a C++ kernel on XLA:CPU (``_knn_candidates.cc``).

Why: XLA:CPU computes each block's ``(block, n)`` distance matrix with one matrix product, writes
it to memory, reads it again for the elementwise expansion and again for the selection. At 70,000
points (Fashion-MNIST, PCA-50) the product alone took 6.5 s of a 13 s search for k = 90 (76
GFLOP/s: the inner dimension is only 50) and the selection (``neighbors._best``) most of the rest.
The kernel computes register tiles of distances (8 or 2 queries x 32 points, with or without AVX-512),
and keeps each query's best candidates as it goes (a buffer compacted by ``nth_element``), so the
matrix never leaves the cache.

Where: :func:`available` is the chooser (CPU only; built on first use and cached, see
``latentjax/_native.py``; ``LATENTJAX_KNN_KERNEL=0`` turns it off); ``neighbors.knn`` uses
:func:`candidates` for float32 where it is available and XLA's blocks elsewhere (GPU, TPU,
float64, no compiler). It is compiled without ``-ffast-math`` (its +inf padding must compare).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from latentjax import _native

TILE = 32  # points per panel tile (``_knn_candidates.cc``)

_KERNELS = _native.Kernels(
    Path(__file__).with_name("_knn_candidates.cc"),
    "knn_candidates",
    ["LatentjaxKnnCandidates"],
    what="the kNN candidate kernel",
    env="LATENTJAX_KNN_KERNEL",
    flags=["-O3", *_native.simd_flags(avx512=True)],
)

# The chooser (``test_platform_choices``): why not / whether on a backend (default: JAX's).
unavailable_reason = _KERNELS.unavailable_reason
available = _KERNELS.available


def rounding(d: int) -> float:
    """A bound on the kernel's relative error of ``d2`` (times ``|q|^2 + |x|^2``) for ``d`` features.

    The kernel sums the ``d`` products of a dot product in order (``_distances.rounding`` assumes
    XLA's blockwise sums): ``gamma_d`` for the norms and the cross term, a few ulps for the rest.

    Examples:
      >>> rounding(50) == float(np.finfo(np.float32).eps) * 108
      True
    """
    return float(np.finfo(np.float32).eps) * (8 + 2 * d)


def candidates(q, x, x_sqnorm, skip, count: int, *, direct: bool = False, num_rows=None):
    """The ``count`` smallest squared distances of each query (float32; call where `available`).

    Args:
      q: ``(m, d)`` float32 queries; in ``x``'s frame (``_distances.frame``) unless ``direct``.
      x: ``(n, d)`` float32 points.
      x_sqnorm: ``(n,)`` their squared norms; zeros when ``direct``.
      skip: ``(m,)`` int32: a point each query must not choose (its own index), or -1.
      count: candidates per query, at most the points a query may choose.
      direct: ``sum((q - x)^2)`` instead of the expansion: no cancellation, for the queries whose
        candidates the expansion's rounding left unsure (on the inputs, as ``neighbors._rerank``).
      num_rows: int32 scalar: search only the first ``num_rows`` queries (default all); the
        other rows of the outputs are undefined.

    Returns:
      ``(indices (m, count) int32, d2 (m, count) float32)``, in increasing ``(d2, index)`` order,
      ``d2 = max(|q|^2 + |x|^2 - 2 q.x, 0)`` (or the direct sum).
    """
    n, d = x.shape
    tiles = -(-n // TILE)
    pad = tiles * TILE - n
    panels = jnp.pad(x, ((0, pad), (0, 0))).reshape(tiles, TILE, d).transpose(0, 2, 1)
    xs = jnp.pad(x_sqnorm, (0, pad), constant_values=jnp.inf)
    m = q.shape[0]
    rows = jnp.full((1,), m, jnp.int32) if num_rows is None else jnp.reshape(num_rows, (1,)).astype(jnp.int32)
    out = (jax.ShapeDtypeStruct((m, count), jnp.int32), jax.ShapeDtypeStruct((m, count), jnp.float32))
    return jax.ffi.ffi_call("LatentjaxKnnCandidates", out, vmap_method="sequential")(
        q, panels, xs, skip.astype(jnp.int32), rows, direct=np.int64(direct)
    )


def search(x, q, x_c, q_c, x_sqnorm, rerank, *, count: int, block_size: int, exclude_self: bool):
    """``neighbors.knn``'s search by the kernel: ``(indices (m, k), distances (m, k))``.

    The ``count`` candidates of each query by the expansion; ``rerank(q_c, q, q_index, cand,
    approx)`` (``neighbors._rerank``) orders them by their exact distances in blocks of
    ``block_size`` queries and flags those the expansion's rounding leaves unsure; the flagged
    rows are searched again by the kernel's direct sums, on the inputs (gathered to the front, so
    a tight cluster of duplicates costs one direct pass per flagged row, not an XLA loop).
    ``exclude_self``: the queries are the points, and each skips itself.
    """
    m = q.shape[0]
    q_index = jnp.arange(m, dtype=jnp.int32)
    skip = q_index if exclude_self else jnp.full_like(q_index, -1)
    cand, approx = candidates(q_c, x_c, x_sqnorm, skip, count)
    idx, dist, unsure = jax.lax.map(
        lambda a: rerank(*a), (q_c, q, q_index, cand, approx), batch_size=block_size
    )
    (flagged,) = jnp.nonzero(unsure, size=m, fill_value=0)
    num = jnp.sum(unsure).astype(jnp.int32)
    skip = flagged if exclude_self else jnp.full_like(flagged, -1)
    zeros = jnp.zeros(x.shape[0], x.dtype)
    best, d2 = candidates(q[flagged], x, zeros, skip, idx.shape[1], direct=True, num_rows=num)
    rows = jnp.where(q_index < num, flagged, m)  # beyond the flagged: dropped
    idx = idx.astype(jnp.int32).at[rows].set(best, mode="drop")
    return idx, dist.at[rows].set(jnp.sqrt(d2), mode="drop")
