"""The parametric maps' minibatch losses and the graphs' device layouts they sample from.

UMAP: umap-learn's ParametricUMAP cross-entropy on a batch of edges with negative samples drawn by
shuffling the batch's tails. t-SNE: the KL divergence between ``P`` restricted to a batch of points
(renormalised) and the Student-t ``Q`` of the batch (van der Maaten 2009).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from latentjax.look import neighbors


def umap_cross_entropy(y_to, y_from, y_neg_from, *, a, b, eps=1e-4, repulsion_strength=1.0):
    """umap-learn's parametric UMAP loss: the mean cross-entropy of edges (target 1) and negatives (0).

    ``q = 1 / (1 + a d^(2b))``; an edge costs ``-log(clip(q, eps, 1))``, a negative
    ``-repulsion_strength log(clip(1 - q, eps, 1))``; the mean is over all ``B (1 + r)`` pairs.

    Args:
      y_to: ``(B, e)`` the edges' heads in the map.
      y_from: ``(B, e)`` their tails.
      y_neg_from: ``(B r, e)`` the negatives' tails; their heads are ``y_to`` each repeated ``r`` times.
      a: kernel parameter.
      b: kernel parameter.
      eps: the probabilities' clip (umap-learn: 1e-4).
      repulsion_strength: the negatives' weight.

    Returns:
      The scalar loss.
    """
    r = y_neg_from.shape[0] // y_to.shape[0]
    y_neg_to = jnp.repeat(y_to, r, axis=0)

    def q(u, v):
        # (|u - v|^2 + tiny)^b: d^(2b) without the norm's infinite gradient at d = 0.
        sq = jnp.sum((u - v) ** 2, axis=-1)
        return 1.0 / (1.0 + a * (sq + 1e-12) ** b)

    attract = -jnp.log(jnp.clip(q(y_to, y_from), eps, 1.0))
    repel = -repulsion_strength * jnp.log(jnp.clip(1.0 - q(y_neg_to, y_neg_from), eps, 1.0))
    return (jnp.sum(attract) + jnp.sum(repel)) / (attract.shape[0] + repel.shape[0])


def tsne_batch_kl(y, p, *, dof=1.0):
    """``KL(P || Q)`` on a batch: ``P`` ``(B, B)`` (summing to one), ``Q`` Student-t of ``y`` ``(B, e)``.

    ``q_ij = (1 + |y_i - y_j|^2 / dof)^(-(dof + 1) / 2) / sum_{k != l} (...)``, ``q_ii = 0``; terms
    with ``p_ij = 0`` contribute 0.

    Returns:
      The scalar KL divergence.
    """
    sq = jnp.sum((y[:, None, :] - y[None, :, :]) ** 2, axis=-1)
    log_kernel = -(dof + 1.0) / 2.0 * jnp.log1p(sq / dof)
    off = ~jnp.eye(y.shape[0], dtype=bool)
    log_z = jax.nn.logsumexp(jnp.where(off, log_kernel, -jnp.inf))
    pos = p > 0
    safe_p = jnp.where(pos, p, 1.0)
    return jnp.sum(jnp.where(pos & off, p * (jnp.log(safe_p) - log_kernel + log_z), 0.0))


class Edges(NamedTuple):
    """A graph's edges for sampling proportionally to weight: ``searchsorted(cdf, u)`` picks one.

    Attributes:
      heads: ``(e,)`` int32 sources.
      tails: ``(e,)`` int32 targets.
      cdf: ``(e,)`` float32 cumulative weights, the last 1.
    """

    heads: jax.Array
    tails: jax.Array
    cdf: jax.Array


def umap_edges(graph: neighbors.Graph, *, num_epochs: int) -> tuple[Edges, float]:
    """The fuzzy graph's edges umap-learn keeps (``w >= max / num_epochs``) and ``sum(floor(num_epochs w))``.

    The second value is the length of umap-learn's expanded edge list, one pass of which is its
    training (``num_steps = that / batch_size``).
    """
    w = np.asarray(graph.weights, np.float64)
    keep = w >= w.max() / float(num_epochs)
    w = w[keep]
    cdf = np.cumsum(w) / w.sum()
    cdf[-1] = 1.0
    heads = jnp.asarray(np.asarray(graph.rows)[keep], jnp.int32)
    tails = jnp.asarray(np.asarray(graph.cols)[keep], jnp.int32)
    return Edges(heads, tails, jnp.asarray(cdf, jnp.float32)), float(np.floor(num_epochs * w).sum())


def sample_edges(key, edges: Edges, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """``batch_size`` edges drawn with replacement, each with probability proportional to its weight."""
    u = jax.random.uniform(key, (batch_size,), jnp.float32)
    i = jnp.minimum(jnp.searchsorted(edges.cdf, u, side="right"), edges.cdf.shape[0] - 1)
    return edges.heads[i], edges.tails[i]


def padded_rows(graph: neighbors.Graph, n: int) -> tuple[jax.Array, jax.Array]:
    """``P`` as ``(n, K)`` neighbour columns (``n`` pads) and weights (0 pads), ``K`` the largest degree."""
    rows = np.asarray(graph.rows, np.int64)
    cols = np.asarray(graph.cols, np.int64)
    w = np.asarray(graph.weights, np.float32)
    counts = np.bincount(rows, minlength=n)
    k = int(counts.max(initial=1))
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(rows.size) - start[rows]
    out_cols = np.full((n, k), n, np.int32)
    out_w = np.zeros((n, k), np.float32)
    out_cols[rows, slot] = cols
    out_w[rows, slot] = w
    return jnp.asarray(out_cols), jnp.asarray(out_w)


def batch_affinities(idx, cols, weights):
    """``P`` restricted to the points ``idx`` ``(B,)`` and renormalised: ``(B, B)`` summing to one.

    ``cols``, ``weights``: ``padded_rows`` of the symmetric ``P`` on ``n`` points.
    """
    n, size = cols.shape[0], idx.shape[0]
    pos = jnp.full((n + 1,), size, jnp.int32).at[idx].set(jnp.arange(size, dtype=jnp.int32))
    where = pos[cols[idx]]  # (B, K) the neighbours' places in the batch; `size` when absent
    rows = jnp.broadcast_to(jnp.arange(size)[:, None], where.shape)
    p = jnp.zeros((size, size), weights.dtype).at[rows, where].add(weights[idx], mode="drop")
    total = jnp.sum(p)
    return p / jnp.where(total > 0, total, 1.0)
