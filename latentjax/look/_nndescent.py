"""Approximate k nearest neighbours: a random-projection forest refined by NN-descent, in JAX.

For tens of thousands of points and more the exact search (``neighbors.knn``, O(n^2)) dominates
t-SNE and UMAP; openTSNE (Annoy) and umap-learn (pynndescent) search approximately there. This is
pynndescent's method with shapes fixed for XLA:

- **Forest.** Each tree splits its points at the median of their projections on the line through
  two random points of the node (pynndescent's split, balanced: every leaf holds the same number of
  slots). ``n`` is padded to ``leaf_size * 2^depth`` slots with copies of random points; a copy is
  never a candidate, so a point appears once per tree. Within a leaf, every point's ``k`` nearest
  leaf-mates come from one batched matrix product. The trees' candidates are merged, duplicates
  removed.
- **NN-descent** (Dong, Moses and Li 2011): each point's neighbours of neighbours (the first
  ``sample`` of each of its first ``sample``) and its reverse neighbours are candidates; their
  exact distances are computed blockwise and merged into the list, until fewer than
  ``tolerance * n * k`` entries change or ``max_iterations``.

The forest ranks leaf-mates by the Gram expansion in ``_distances.frame`` (centred and scaled); the
rounds compare exact ``sum((x_i - x_j)^2)``, and the distances returned are recomputed exactly on
the inputs, so the order of the neighbours found is the exact one; only whether a true neighbour
is found at all is approximate (recall about 0.97-0.99 on Fashion-MNIST PCA-50 with the defaults).
A round costs ``O(n * sample^2 * d)``.
"""

import functools
import math

import jax
import jax.numpy as jnp

from latentjax.look import _distances


def _tree_leaves(key, x, *, leaf_size: int, depth: int):
    """One balanced random-projection tree: ``(slots (leaves, leaf_size), point of each slot)``.

    Slots ``< n`` are the points themselves (in a random order); slots ``>= n`` are padding copies.
    """
    n = x.shape[0]
    num_slots = leaf_size << depth
    k_perm, k_pad, k_split = jax.random.split(key, 3)
    point = jnp.concatenate([jnp.arange(n), jax.random.randint(k_pad, (num_slots - n,), 0, n)]).astype(
        jnp.int32
    )
    slots = jax.random.permutation(k_perm, num_slots).astype(jnp.int32)
    for level in range(depth):  # a Python loop: each level has its own node shape
        nodes = slots.reshape(1 << level, num_slots >> level)
        ends = jax.random.randint(jax.random.fold_in(k_split, level), (nodes.shape[0], 2), 0, nodes.shape[1])
        rows = jnp.arange(nodes.shape[0])
        normal = x[point[nodes[rows, ends[:, 0]]]] - x[point[nodes[rows, ends[:, 1]]]]
        proj = jnp.einsum("smd,sd->sm", x[point[nodes]], normal)
        slots = jnp.take_along_axis(nodes, jnp.argsort(proj, axis=1), axis=1).reshape(-1)
    return slots.reshape(-1, leaf_size), point


def _leaf_candidates(x, sqnorm, slots, point, count: int):
    """Each slot's ``count`` nearest leaf-mates (padding copies and itself excluded), squared distances."""
    n = x.shape[0]
    members = point[slots]  # (leaves, leaf_size)
    xl = x[members]
    gram = jnp.einsum("lid,ljd->lij", xl, xl, precision=jax.lax.Precision.HIGHEST)
    s = sqnorm[members]
    d2 = jnp.maximum(s[:, :, None] + s[:, None, :] - 2.0 * gram, 0.0)
    excluded = (members[:, :, None] == members[:, None, :]) | (slots >= n)[:, None, :]
    d2 = jnp.where(excluded, jnp.inf, d2)
    _, j = jax.lax.top_k(-d2, count)  # indices only: XLA:CPU's top_k is slow when its values are used
    idx = jnp.take_along_axis(jnp.broadcast_to(members[:, None, :], d2.shape), j, axis=2)
    return idx.reshape(-1, count), jnp.take_along_axis(d2, j, axis=2).reshape(-1, count)


def _by_blocks(fn, rows: tuple, block_size: int):
    """``fn`` over row blocks of the arrays ``rows`` (``lax.map``; the last block zero-padded, then cut).

    Results with a row axis come back ``(n, ...)``; a scalar per block comes back ``(blocks,)``.
    """
    n = rows[0].shape[0]
    num_blocks = -(-n // block_size)
    pad = num_blocks * block_size - n

    def blocked(a):
        return jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)).reshape(num_blocks, block_size, *a.shape[1:])

    out = jax.lax.map(fn, tuple(blocked(a) for a in rows))
    return jax.tree.map(
        lambda a: a.reshape(num_blocks * block_size, *a.shape[2:])[:n] if a.ndim > 1 else a, out
    )


def _merge(idx, d2, new_idx, new_d2, k: int):
    """The ``k`` best of both lists per row; a new entry already in ``idx`` is dropped.

    Each list holds distinct points (a tree's leaf-mates: padding copies are never candidates).
    """
    dup = jnp.any(new_idx[:, :, None] == idx[:, None, :], axis=2)
    all_idx = jnp.concatenate([idx, new_idx], axis=1)
    all_d2 = jnp.concatenate([d2, jnp.where(dup, jnp.inf, new_d2)], axis=1)
    _, j = jax.lax.top_k(-all_d2, k)
    return jnp.take_along_axis(all_idx, j, 1), jnp.take_along_axis(all_d2, j, 1)


def forest(key, x, *, k: int, num_trees: int, leaf_size: int):
    """Candidate neighbours from ``num_trees`` trees: ``(idx (n, k), squared distances (n, k))``."""
    n = x.shape[0]
    depth = max(0, math.ceil(math.log2(n / leaf_size)))
    leaf_size = -(-n // (1 << depth))  # the fewest padding slots for that depth
    count = min(k, leaf_size - 1)
    sqnorm = jnp.sum(x * x, axis=1)

    def tree(t, best):
        slots, point = _tree_leaves(jax.random.fold_in(key, t), x, leaf_size=leaf_size, depth=depth)
        li, ld = _leaf_candidates(x, sqnorm, slots, point, count)
        owner = jnp.where(slots < n, slots, n).reshape(-1)  # padding rows are dropped
        ti = jnp.zeros((n, count), jnp.int32).at[owner].set(li, mode="drop")
        td = jnp.full((n, count), jnp.inf, x.dtype).at[owner].set(ld, mode="drop")
        # In row blocks: the (rows, count, k) comparison is not fused on XLA:CPU (8 GB at 1M x 90).
        return _by_blocks(lambda a: _merge(*a, k), (*best, ti, td), block_size=min(n, 8192))

    start = (
        jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32)[:, None], (n, k)),
        jnp.full((n, k), jnp.inf, x.dtype),
    )
    return jax.lax.fori_loop(0, num_trees, tree, start)


def _reverse(idx, width: int):
    """Up to ``width`` points that list each point among their neighbours, ``(n, width)`` (-1: none)."""
    n, k = idx.shape
    target = idx.reshape(-1)
    source = jnp.repeat(jnp.arange(n, dtype=jnp.int32), k)
    order = jnp.argsort(target, stable=True)
    target, source = target[order], source[order]
    first = jnp.searchsorted(target, target, side="left")
    rank = jnp.arange(n * k) - first
    rows = jnp.where(rank < width, target, n)
    return jnp.full((n, width), -1, jnp.int32).at[rows, jnp.minimum(rank, width - 1)].set(source, mode="drop")


def _descend_once(x, idx, d2, *, sample: int, block_size: int):
    """One NN-descent round: ``(idx, d2, number of entries changed)``."""
    n, k = idx.shape
    near = idx[:, :sample]
    rev = _reverse(near, sample)
    cand = jnp.concatenate([near[near].reshape(n, -1), rev], axis=1)
    valid = jnp.concatenate([jnp.ones((n, sample * sample), bool), rev >= 0], axis=1)
    cand = jnp.where(valid, cand, jnp.arange(n, dtype=jnp.int32)[:, None])  # self: dropped below

    def block(args):
        q, qi, bi, bd, c = args
        c = jnp.sort(c, axis=1)
        repeat = jnp.concatenate([jnp.zeros((c.shape[0], 1), bool), c[:, 1:] == c[:, :-1]], axis=1)
        drop = repeat | (c == qi[:, None]) | jnp.any(c[:, :, None] == bi[:, None, :], axis=2)
        diff = x[c] - q[:, None, :]
        cd = jnp.where(drop, jnp.inf, jnp.sum(diff * diff, axis=-1))
        all_idx, all_d2 = jnp.concatenate([bi, c], axis=1), jnp.concatenate([bd, cd], axis=1)
        _, j = jax.lax.top_k(-all_d2, k)
        return jnp.take_along_axis(all_idx, j, 1), jnp.take_along_axis(all_d2, j, 1), jnp.sum(j >= k)

    rows = (x, jnp.arange(n, dtype=jnp.int32), idx, d2, cand)
    new_idx, new_d2, changed = _by_blocks(block, rows, block_size)
    return new_idx, new_d2, jnp.sum(changed)


@functools.partial(
    jax.jit, static_argnames=("k", "num_trees", "leaf_size", "max_iterations", "sample", "block_size")
)
def search(key, x, *, k, num_trees, leaf_size, max_iterations, tolerance, sample, block_size):
    """``(indices (n, k), distances (n, k), short (n,))``: each point's neighbours found, nearest first.

    ``short`` flags the rows that found fewer than ``k`` distinct points (a leaf crowded with padding
    copies, trees that never overlap): their remaining entries are placeholders (the point itself)
    and must be searched again exactly (``neighbors.approximate_knn`` does).
    """
    x_c = _distances.frame(x)[0]
    idx, d2 = forest(key, x_c, k=k, num_trees=num_trees, leaf_size=leaf_size)
    limit = tolerance * x.shape[0] * k

    def cond(state):
        i, _, _, changed = state
        return (i < max_iterations) & (changed > limit)

    def body(state):
        i, idx, d2, _ = state
        idx, d2, changed = _descend_once(x_c, idx, d2, sample=sample, block_size=block_size)
        return i + 1, idx, d2, changed.astype(jnp.float32)

    _, idx, d2, _ = jax.lax.while_loop(cond, body, (0, idx, d2, jnp.asarray(jnp.inf, jnp.float32)))
    short = ~jnp.all(jnp.isfinite(d2), axis=1)

    # Exact distances in the inputs' frame, in row blocks: XLA:CPU materialised the whole
    # (n, k, d) difference (18 GB of a 20 GB peak at 1,000,000 x 90 x 50); nearest first, ties by
    # the smaller index.
    def exact(args):
        q, i = args
        diff = x[i] - q[:, None, :]
        return jnp.sqrt(jnp.sum(diff * diff, axis=-1))

    dist = _by_blocks(exact, (x, idx), block_size)
    order = jnp.lexsort((idx, dist), axis=1)
    return jnp.take_along_axis(idx, order, 1), jnp.take_along_axis(dist, order, 1), short
