"""Histogram mutual information between codes and factors, as disentanglement_lib computes it.

``discretize`` is its ``_histogram_discretize`` (``np.digitize`` on ``np.histogram``'s edges, 20
bins), ``mutual_info`` its ``discrete_mutual_info`` (sklearn's ``mutual_info_score``, in nats),
both as one-hot contractions in JAX.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


@functools.partial(jax.jit, static_argnames="num_bins")
def discretize(codes: jax.Array, *, num_bins: int = 20) -> jax.Array:
    """Each column's bin ``0..num_bins-1`` on equal-width bins from its min to its max: ``(n, d)`` int32.

    Exactly ``np.digitize(c, np.histogram(c, num_bins)[1][:-1]) - 1`` per column ``c``: the edges
    are ``lo + i * (hi - lo) / num_bins`` (a constant column gets ``lo - 0.5 .. hi + 0.5``) and the
    maximum falls in the last bin.
    """
    lo, hi = codes.min(axis=0), codes.max(axis=0)
    flat = hi == lo
    lo, hi = jnp.where(flat, lo - 0.5, lo), jnp.where(flat, hi + 0.5, hi)
    step = (hi - lo) / num_bins
    edges = jnp.arange(num_bins, dtype=codes.dtype)[:, None] * step[None, :] + lo[None, :]  # (b, d)
    return (codes[:, None, :] >= edges[None, :, :]).sum(axis=1).astype(jnp.int32) - 1


def relabel(factors: np.ndarray) -> tuple[np.ndarray, int]:
    """Each column's values -> ``0..v-1`` (their rank among the column's distinct values), and max ``v``."""
    cols = [np.unique(factors[:, k], return_inverse=True) for k in range(factors.shape[1])]
    out = np.stack([inv.reshape(-1) for _, inv in cols], axis=1).astype(np.int32)
    return out, max(len(u) for u, _ in cols)


@functools.partial(jax.jit, static_argnames=("num_bins", "num_values"))
def mutual_info(binned: jax.Array, labels: jax.Array, *, num_bins: int, num_values: int) -> jax.Array:
    """Mutual information (nats) of each code column and each label column: ``(d, k)``.

    ``binned`` ``(n, d)`` in ``0..num_bins-1``, ``labels`` ``(n, k)`` in ``0..num_values-1``; as
    ``sklearn.metrics.mutual_info_score`` on each pair (plug-in estimate from the contingency table).
    """
    n = binned.shape[0]
    a = jax.nn.one_hot(binned, num_bins, dtype=jnp.float32)  # (n, d, b)
    b = jax.nn.one_hot(labels, num_values, dtype=jnp.float32)  # (n, k, v)
    joint = jnp.einsum("ndb,nkv->dkbv", a, b) / n
    pa = a.mean(axis=0)[:, None, :, None]  # (d, 1, b, 1)
    pb = b.mean(axis=0)[None, :, None, :]  # (1, k, 1, v)
    safe = jnp.where(joint > 0, joint, 1.0)
    terms = jnp.where(joint > 0, joint * (jnp.log(safe) - jnp.log(jnp.where(joint > 0, pa * pb, 1.0))), 0.0)
    return jnp.maximum(terms.sum(axis=(2, 3)), 0.0)


@functools.partial(jax.jit, static_argnames="num_values")
def entropy(labels: jax.Array, *, num_values: int) -> jax.Array:
    """Entropy (nats) of each label column ``(k,)`` (disentanglement_lib's ``discrete_entropy``)."""
    p = jax.nn.one_hot(labels, num_values, dtype=jnp.float32).mean(axis=0)  # (k, v)
    return -jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0).sum(axis=1)


def mig_from_info(info: jax.Array, h: jax.Array) -> jax.Array:
    """Mean over factors of (largest - second largest mutual information) / the factor's entropy."""
    top = jnp.sort(info, axis=0)
    return jnp.mean((top[-1] - top[-2]) / h)


def modularity_from_info(info: jax.Array) -> jax.Array:
    """Ridgeway & Mozer's modularity from the ``(d, k)`` mutual information, as disentanglement_lib.

    Per code ``1 - sum_{j != max} m_j^2 / ((k - 1) max m^2)``, 0 for a code with no information,
    averaged over codes.
    """
    sq = jnp.square(info)
    top = sq.max(axis=1)
    delta = (sq.sum(axis=1) - top) / jnp.where(top > 0, top * (sq.shape[1] - 1.0), 1.0)
    return jnp.mean(jnp.where(top > 0, 1.0 - delta, 0.0))
