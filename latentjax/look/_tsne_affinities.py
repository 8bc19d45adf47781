"""t-SNE's input side: ``calibrate`` (the perplexity bisection) and ``affinities`` (the symmetric ``P``).

Both are invariant to translating and scaling the data: the neighbours come from ``neighbors.knn``
(computed in a centred, scaled frame), and the bisection runs on each point's squared distances
divided by their mean, so it starts at the right scale and never meets a fixed threshold.
``tsne`` re-exports both.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.look import _knn_method, neighbors
from latentjax.look._dimred_args import float_dtype, positive


@functools.partial(jax.jit, static_argnums=(1, 2))
def _calibrate(d: jax.Array, perplexity: float, num_steps: int) -> jax.Array:
    """``p_{j|i}`` ``(n, k)`` at the target perplexity, by bisection on each point's precision."""
    # Shifting by the nearest distance leaves p unchanged and keeps exp() in range; dividing by the
    # row's mean makes the search scale-free (beta starts at 1 for data of any scale).
    d2 = d * d
    d2 = d2 - d2[:, :1]
    mean = jnp.mean(d2, axis=1, keepdims=True)
    d2 = d2 / jnp.where(mean > 0, mean, 1.0)
    target = math.log(perplexity)

    def probs(beta):
        logits = -d2 * beta[:, None]
        p = jax.nn.softmax(logits, axis=1)
        entropy = -jnp.sum(p * jax.nn.log_softmax(logits, axis=1), axis=1)
        return p, entropy

    def body(_, carry):
        beta, lo, hi = carry
        _, h = probs(beta)
        # Entropy falls as beta rises: too high -> raise beta.
        up = h > target
        lo = jnp.where(up, beta, lo)
        hi = jnp.where(up, hi, beta)
        beta = jnp.where(
            up & jnp.isinf(hi), lo * 2.0, jnp.where(~up & (lo == 0.0), hi / 2.0, (lo + hi) / 2.0)
        )
        # Tied distances cannot reach the target: stop doubling before beta overflows.
        return jnp.minimum(beta, 1e30), lo, hi

    ones = jnp.ones(d2.shape[:1], d2.dtype)
    beta, _, _ = jax.lax.fori_loop(0, num_steps, body, (ones, 0.0 * ones, jnp.inf * ones))
    return probs(beta)[0]


def calibrate(distances: ArrayLike, *, perplexity: float, num_steps: int = 100) -> jax.Array:
    """Conditional probabilities ``p_{j|i}`` over each point's neighbours, at a target perplexity.

    Bisection on every ``beta_i`` at once: ``p_{.|i} ∝ exp(-beta_i d_ij^2)`` has entropy
    ``log(perplexity)``. Scaling all distances by a constant leaves the result unchanged.

    Args:
      distances: ``(n, k)`` Euclidean distances to the k nearest neighbours (finite, >= 0).
      perplexity: target perplexity, in ``[1, k]``.
      num_steps: bisection steps (each halves the bracket once it is found).

    Returns:
      ``(n, k)`` rows summing to one, in the distances' float dtype (at least float32; float64
      stays float64 under x64).

    Raises:
      InputError: ``distances`` not 2-D, with NaN/inf or negative values; ``perplexity`` out of
        range; ``num_steps`` not a positive integer.

    Examples:
      >>> calibrate(jnp.ones((1, 4)), perplexity=2.0).round(3).tolist()
      [[0.25, 0.25, 0.25, 0.25]]

    References:
      van der Maaten and Hinton, "Visualizing Data using t-SNE", JMLR 9 (2008), Section 2.
    """
    where = "look.tsne.calibrate"
    distances = _checks.array(distances, "distances", where=where, ndim=2)
    num_steps = _checks.index(num_steps, "num_steps", where=where, minimum=1)
    k = distances.shape[1]
    perplexity = positive(perplexity, "perplexity", where=where, minimum=1.0, inclusive=True)
    if perplexity > k:
        raise InputError(f"{where}: perplexity must be in [1, k = {k}], got {perplexity:g}")
    if not _checks.is_traced(distances) and np.any(np.asarray(distances) < 0):
        raise InputError(f"{where}: distances must be >= 0")
    d = jnp.asarray(distances, float_dtype(distances.dtype))
    return _calibrate(d, perplexity, num_steps)


@functools.partial(jax.jit, static_argnames=("block_size",))
def _exact_distances(x, indices, *, block_size):
    """``|x_i - x_{indices[i, j]}|`` ``(n, k)`` in ``x``'s dtype, as direct differences, blockwise."""

    def row(args):
        xi, idx = args
        return jnp.sqrt(jnp.sum((xi[None, :] - x[idx]) ** 2, axis=-1))

    return jax.lax.map(row, (x, indices), batch_size=block_size)


# ``knn_method="auto"`` searches approximately above this many points. With the C++ candidate
# kernel (``_knn_native``) the exact search of 90 neighbours took 3.8 / 12.7 / 46.1 s at 70,000 /
# 140,000 / 280,000 points (Fashion-MNIST PCA-50 and jittered copies, 2 cores), the approximate one
# 14.0 / 33.3 / 68.0 s (recall 0.94): n^2 against about n log n, crossing near 400,000.
APPROXIMATE_ABOVE = 400_000


def affinities(
    x: ArrayLike,
    *,
    perplexity: float = 30.0,
    block_size: int = 1024,
    knn_method: str = "exact",
    key: jax.Array | None = None,
) -> neighbors.Graph:
    """t-SNE's symmetric affinities from the ``3 * perplexity`` nearest neighbours.

    ``P = (P_cond + P_cond^T) / 2n`` with ``P_cond`` from ``calibrate`` (the two directions summed).
    ``P`` does not change when ``x`` is translated or scaled (beyond the rounding of ``x`` itself).

    Args:
      x: ``(n, d)`` data, finite.
      perplexity: effective number of neighbours, in ``[1, n - 1]``; ``min(n - 1, 3 * perplexity)``
        neighbours are used.
      block_size: query block of the exact neighbour search.
      knn_method: ``"exact"`` (``neighbors.knn``), ``"approximate"`` (``neighbors.approximate_knn``,
        as openTSNE's Annoy) or ``"auto"`` (approximate above ``APPROXIMATE_ABOVE`` points).
      key: the approximate search's ``jax.random.key``.

    Returns:
      ``neighbors.Graph`` whose weights ``p_ij`` sum to one, in ``x``'s float dtype (at least
      float32; float64 stays float64 under x64).

    Raises:
      InputError: ``x`` not a 2-D real array or with NaN/inf; ``perplexity`` not in ``[1, n - 1]``;
        an unknown ``knn_method``; an approximate search without ``key``.

    Examples:
      >>> p = affinities(jax.random.normal(jax.random.key(0), (50, 3)), perplexity=5.0)
      >>> round(float(p.weights.sum()), 4)
      1.0

    References:
      van der Maaten, "Accelerating t-SNE using tree-based algorithms", JMLR 15 (2014), Eq. 5.
    """
    return _affinities(
        x,
        perplexity=perplexity,
        block_size=block_size,
        knn_method=knn_method,
        key=key,
        where="look.tsne.affinities",
    )


def _affinities(x, *, perplexity, where, block_size=1024, knn_method="exact", key=None):
    x = _checks.array(x, "x", where=where, ndim=2)
    n = x.shape[0]
    perplexity = positive(perplexity, "perplexity", where=where, minimum=1.0, inclusive=True)
    if n < 2 or perplexity > n - 1:
        raise InputError(
            f"{where}: perplexity must be in [1, n - 1 = {n - 1}] for {n} points, got {perplexity:g}"
        )
    block_size = _checks.index(block_size, "block_size", where=where, minimum=1)
    dtype = float_dtype(x.dtype)
    x = jnp.asarray(x, dtype)
    k = min(n - 1, int(3 * perplexity))
    nb = _knn_method.search(
        x,
        k,
        method=knn_method,
        key=key,
        approximate_above=APPROXIMATE_ABOVE,
        where=where,
        block_size=block_size,
    )
    dist = nb.distances
    if dist.dtype != dtype:
        dist = _exact_distances(x, nb.indices, block_size=min(block_size, n))
    p_cond = np.asarray(_calibrate(jnp.asarray(dist, dtype), perplexity, 100), np.float64)
    # Sparse P + P^T on the host (its number of edges depends on the data): scipy's CSR sum, with
    # sorted rows and columns (np.unique of the 2nk edge keys took 3.5 s at 70,000 points).
    indices = np.asarray(nb.indices).ravel()
    cond = scipy.sparse.csr_matrix((p_cond.ravel(), indices, np.arange(0, n * k + 1, k)), shape=(n, n))
    both = (cond + cond.T).tocsr()
    both.sort_indices()
    rows = np.repeat(np.arange(n, dtype=np.int32), np.diff(both.indptr))
    weights = jnp.asarray(both.data / both.data.sum(), dtype)
    return neighbors.Graph(jnp.asarray(rows), jnp.asarray(both.indices, jnp.int32), weights)
