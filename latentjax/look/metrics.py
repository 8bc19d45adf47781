"""Quality of an embedding: trustworthiness, kNN recall, kNN accuracy (t-SNE's KL: ``tsne.kl_divergence``)."""

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.look import _distances, neighbors


def _pair(x, y, k, where):
    """Validated ``x`` ``(n, d)`` and ``y`` ``(n, e)`` and an int ``k`` in ``[1, n / 2)``."""
    x = _checks.array(x, "x", where=where, ndim=2)
    y = _checks.array(y, "y", where=where, ndim=2)
    if x.shape[0] != y.shape[0]:
        raise InputError(
            f"{where}: x has {x.shape[0]} rows but y has {y.shape[0]}; each point needs its embedding"
        )
    k = _checks.index(k, "k", where=where, minimum=1)
    if not k < x.shape[0] / 2:
        raise InputError(f"{where}: k must be in [1, n/2) for n={x.shape[0]}, got {k}")
    return x, y, k


def trustworthiness(x: ArrayLike, y: ArrayLike, *, k: int = 10, block_size: int = 256) -> jax.Array:
    """How far the embedding's k nearest neighbours are in the input space (1 is best).

    ``T = 1 - 2 / (n k (2n - 3k - 1)) sum_i sum_{j in N_k^y(i)} max(0, r(i, j) - k)`` with
    ``r(i, j)`` the rank of ``j`` among ``i``'s neighbours in ``x``, computed blockwise without an
    n x n matrix, with the points centred and scaled first (an offset or a scale of either set
    changes nothing). Equal to ``sklearn.manifold.trustworthiness`` (Euclidean); tied distances
    in ``x`` are ranked by index, as sklearn's ranking with a stable sort (numpy's default sort,
    which sklearn uses, may order ties otherwise, by a few rank units).

    Args:
      x: ``(n, d)`` input points, finite.
      y: ``(n, e)`` their embedding, finite.
      k: neighbourhood size, ``1 <= k < n / 2``.
      block_size: query rows per block.

    Returns:
      A scalar in the inputs' float dtype (float32, or float64 under x64).

    Raises:
      InputError: ``x`` or ``y`` not 2-D real arrays of the same length, with NaN/inf; ``k`` or
        ``block_size`` not an integer in range.

    Examples:
      >>> import jax
      >>> x = jax.random.normal(jax.random.key(0), (50, 4))
      >>> float(trustworthiness(x, x, k=5))
      1.0

    References:
      Venna and Kaski, "Neighborhood preservation in nonlinear projection methods", ICANN 2001.
    """
    where = "look.metrics.trustworthiness"
    x, y, k = _pair(x, y, k, where)
    block_size = _checks.index(block_size, "block_size", where=where, minimum=1)
    emb = neighbors.knn(y, k=k).indices
    x = jnp.asarray(x, _distances.compute_dtype(x.dtype, y.dtype))
    return _trust(x, emb, k=k, block_size=min(block_size, x.shape[0]))


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def _trust(x, emb, *, k, block_size):
    n = x.shape[0]
    (xc,) = _distances.frame(x)
    sq = jnp.sum(xc * xc, axis=1)
    cols = jnp.arange(n)
    eps = _distances.rounding(x.shape[1], x.dtype)

    def penalty(d2, r, e):
        # Rank (1-based) of each embedding neighbour among the input-space distances, ties by
        # index: its position in a stable sort of the row, as sklearn's argsort ranks it.
        d2 = jnp.where(cols == r, jnp.inf, d2)
        de = d2[e][:, None]
        before = (d2[None, :] < de) | ((d2[None, :] == de) & (cols[None, :] < e[:, None]))
        rank = 1 + jnp.sum(before, axis=1)
        return jnp.sum(jnp.maximum(rank - k, 0)), d2, de

    def row(_, r, e, d2_row):
        p, d2, de = penalty(d2_row, r, e)
        # A rank may be off when another distance lies within the expansion's rounding of it.
        # |error of d2[i, j]| <= eps (|x_i|^2 + |x_j|^2), for both sides of each comparison
        close = jnp.abs(d2[None, :] - de) <= eps * (2.0 * sq[r] + sq[None, :] + sq[e][:, None])
        unsure = jnp.sum(close) > k  # each neighbour is close to itself
        return p, unsure

    penalties, unsure = _distances.map_row_blocks(
        row, (xc, cols, emb), block_size=block_size, x_c=xc, x_sqnorm=sq
    )
    # Rows whose ranks the expansion cannot decide (points closer than its rounding, e.g. a tight
    # cluster) are ranked again with exact distances sum((x_i - x_j)^2), one row at a time.
    (flagged,) = jnp.nonzero(unsure, size=n, fill_value=0)

    def body(carry):
        j, penalties = carry
        r = flagged[j]
        diff = x - x[r][None, :]
        p, _, _ = penalty(jnp.sum(diff * diff, axis=1), r, emb[r])
        return j + 1, penalties.at[r].set(p)

    _, penalties = jax.lax.while_loop(
        lambda c: c[0] < jnp.sum(unsure), body, (jnp.zeros((), jnp.int32), penalties)
    )
    total = jnp.sum(penalties.astype(x.dtype))
    return 1.0 - total * (2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)))


def knn_recall(x: ArrayLike, y: ArrayLike, *, k: int = 10) -> jax.Array:
    """Recall@k of the neighbour graph: how many of each point's k neighbours the embedding keeps.

    The mean over points of the fraction of their k nearest neighbours in ``x`` that are among
    their k nearest in ``y``.

    Args:
      x: ``(n, d)`` input points.
      y: ``(n, e)`` their embedding.
      k: neighbourhood size, ``1 <= k < n / 2``.

    Returns:
      Scalar float32 in [0, 1].

    Raises:
      InputError: as `trustworthiness`.

    Examples:
      >>> import jax
      >>> x = jax.random.normal(jax.random.key(0), (50, 4))
      >>> float(knn_recall(x, 2 * x, k=5))
      1.0

    References:
      Kobak and Berens, "The art of using t-SNE for single-cell transcriptomics", Nature
      Communications 10 (2019) ("kNN preservation").
    """
    x, y, k = _pair(x, y, k, "look.metrics.knn_recall")
    a = neighbors.knn(x, k=k).indices
    b = neighbors.knn(y, k=k).indices
    hits = jnp.sum(a[:, :, None] == b[:, None, :], axis=(1, 2))
    return jnp.mean(hits.astype(jnp.float32)) / k


def knn_accuracy(y: ArrayLike, labels: ArrayLike, *, k: int = 10) -> jax.Array:
    """Leave-one-out k-nearest-neighbour classification accuracy in the embedding.

    Each point is classified by the majority label of its k nearest other points (ties go to
    the smallest label, as scikit-learn's ``KNeighborsClassifier``).

    Args:
      y: ``(n, e)`` embedding.
      labels: ``(n,)`` non-negative integer labels.
      k: neighbours voting, ``1 <= k < n``.

    Returns:
      Scalar float32 in [0, 1].

    Raises:
      InputError: ``y`` not a 2-D real array or with NaN/inf; ``labels`` not ``(n,)``
        non-negative integers; ``k`` not an integer in range.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(knn_accuracy(jnp.array([[0.0], [0.1], [5.0], [5.1]]), jnp.array([0, 0, 1, 1]), k=1))
      1.0
    """
    where = "look.metrics.knn_accuracy"
    y = _checks.array(y, "y", where=where, ndim=2)
    n = y.shape[0]
    labels = _checks.labels(labels, "labels", where=where, length=n)
    k = _checks.index(k, "k", where=where, minimum=1)
    if not k < n:
        raise InputError(f"{where}: k must be in [1, n) for n={n}, got {k}")
    num_classes = int(labels.max()) + 1
    votes = jax.nn.one_hot(jnp.asarray(labels)[neighbors.knn(y, k=k).indices], num_classes).sum(axis=1)
    return jnp.mean((jnp.argmax(votes, axis=1) == jnp.asarray(labels)).astype(jnp.float32))
