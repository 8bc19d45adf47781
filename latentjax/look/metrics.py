"""Quality of an embedding: trustworthiness, kNN recall, kNN accuracy (t-SNE's KL: ``tsne.kl_divergence``)."""

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from latentjax.errors import InputError
from latentjax.look import neighbors


def _pair(x, y, k, name):
    x = jnp.asarray(x, jnp.float32)
    y = jnp.asarray(y, jnp.float32)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise InputError(f"metrics.{name}: x and y must be (n, d) and (n, e), got {x.shape} and {y.shape}")
    if not 1 <= k < x.shape[0] / 2:
        raise InputError(f"metrics.{name}: k={k} must be in [1, n/2) for n={x.shape[0]}")
    return x, y


def trustworthiness(x: ArrayLike, y: ArrayLike, *, k: int = 10, block_size: int = 256) -> jax.Array:
    """How far the embedding's k nearest neighbours are in the input space (1 is best).

    ``T = 1 - 2 / (n k (2n - 3k - 1)) sum_i sum_{j in N_k^y(i)} max(0, r(i, j) - k)`` with
    ``r(i, j)`` the rank of ``j`` among ``i``'s neighbours in ``x``; equal to
    ``sklearn.manifold.trustworthiness`` (Euclidean), computed blockwise without an n x n matrix.

    Args:
      x: ``(n, d)`` input points.
      y: ``(n, e)`` their embedding.
      k: neighbourhood size, ``k < n / 2``.
      block_size: query rows per block.

    Returns:
      Scalar float32.

    Examples:
      >>> import jax
      >>> x = jax.random.normal(jax.random.key(0), (50, 4))
      >>> float(trustworthiness(x, x, k=5))
      1.0

    References:
      Venna and Kaski, "Neighborhood preservation in nonlinear projection methods", ICANN 2001.
    """
    x, y = _pair(x, y, k, "trustworthiness")
    emb = neighbors.knn(y, k=k).indices
    return _trust(x, emb, k=int(k), block_size=int(min(block_size, x.shape[0])))


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def _trust(x, emb, *, k, block_size):
    n = x.shape[0]
    sq = jnp.sum(x * x, axis=1)

    def row(args):
        r, e = args
        xr = x[r]
        d2 = jnp.sum(xr * xr) + sq - 2.0 * jnp.matmul(xr, x.T, precision=jax.lax.Precision.HIGHEST)
        d2 = jnp.where(jnp.arange(n) == r, jnp.inf, d2)
        # Rank (1-based) of each embedding neighbour among the input-space distances.
        rank = 1 + jnp.sum(d2[None, :] < d2[e][:, None], axis=1)
        return jnp.sum(jnp.maximum(rank - k, 0))

    penalties = jax.lax.map(row, (jnp.arange(n), emb), batch_size=block_size)
    total = jnp.sum(penalties.astype(jnp.float32))
    return 1.0 - total * (2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0)))


def knn_recall(x: ArrayLike, y: ArrayLike, *, k: int = 10) -> jax.Array:
    """Recall@k of the neighbour graph: how many of each point's k neighbours the embedding keeps.

    The mean over points of the fraction of their k nearest neighbours in ``x`` that are among
    their k nearest in ``y``.

    Args:
      x: ``(n, d)`` input points.
      y: ``(n, e)`` their embedding.
      k: neighbourhood size, ``k < n / 2``.

    Returns:
      Scalar float32 in [0, 1].

    Examples:
      >>> import jax
      >>> x = jax.random.normal(jax.random.key(0), (50, 4))
      >>> float(knn_recall(x, 2 * x, k=5))
      1.0

    References:
      Kobak and Berens, "The art of using t-SNE for single-cell transcriptomics", Nature
      Communications 10 (2019) ("kNN preservation").
    """
    x, y = _pair(x, y, k, "knn_recall")
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
      labels: ``(n,)`` integer labels in ``[0, num_classes)``.
      k: neighbours voting.

    Returns:
      Scalar float32 in [0, 1].

    Examples:
      >>> import jax.numpy as jnp
      >>> float(knn_accuracy(jnp.array([[0.0], [0.1], [5.0], [5.1]]), jnp.array([0, 0, 1, 1]), k=1))
      1.0
    """
    y = jnp.asarray(y, jnp.float32)
    labels = jnp.asarray(labels)
    if y.ndim != 2 or labels.shape != (y.shape[0],):
        raise InputError(
            f"metrics.knn_accuracy: y must be (n, e) and labels (n,), got {y.shape} and {labels.shape}"
        )
    if not 1 <= k < y.shape[0]:
        raise InputError(f"metrics.knn_accuracy: k={k} must be in [1, n) for n={y.shape[0]}")
    labels = labels.astype(jnp.int32)
    num_classes = int(jnp.max(labels)) + 1
    votes = jax.nn.one_hot(labels[neighbors.knn(y, k=k).indices], num_classes).sum(axis=1)
    return jnp.mean((jnp.argmax(votes, axis=1) == labels).astype(jnp.float32))
