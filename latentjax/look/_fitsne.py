"""t-SNE's device kernels, computed as FIt-SNE does; ``tsne`` holds the API and calls them.

The attraction over the sparse affinities in a sliced-ELL layout; the
repulsion, exact (blockwise O(n^2)) or, for a 2-D embedding, FIt-SNE's (in ``_fitsne_grid``); the
grid's size; the gradient-descent update and its device loop.

References:
  Linderman, Rachh, Hoskins, Steinerberger and Kluger, "Fast interpolation-based t-SNE for improved
  visualization of single-cell RNA-seq data", Nature Methods 16 (2019), Eqs. 5-9.
"""

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.look import _fitsne_grid, _tsne_native, neighbors
from latentjax.look._dimred_args import float_dtype

# Between chunks the grid is sized for the extent expected at the chunk's end: the last
# chunk's growth, at most this factor.
MAX_GROWTH = 1.2
# Boxes per side: each needs its own XLA compilation, so sizes come from this short list
# (FFT lengths 6 * boxes with prime factors 2, 3, 5; ~1.2x apart).
BOX_SIZES = (50, 60, 72, 90, 108, 128, 160, 192, 240, 288, 360, 432, 512, 640, 768, 1024)


class Pieces(NamedTuple):
    """``P`` in sliced-ELL layout: rows cut into pieces of ``width`` edges (zero-padded).

    The attractive force is then a dense gather plus a small sorted segment sum.

    Attributes:
      owner: ``(v,)`` int32 row of each piece, sorted.
      cols: ``(v, width)`` int32 columns.
      weights: ``(v, width)`` float32 ``p_ij`` (0 in the padding).
    """

    owner: jax.Array
    cols: jax.Array
    weights: jax.Array


def check_graph(p: neighbors.Graph, n: int, *, where: str) -> neighbors.Graph:
    """``p`` checked as affinities on ``n`` points; returns it (concrete arrays as numpy).

    Static facts always: a ``neighbors.Graph`` whose rows, cols and weights are vectors of one
    length. Value facts when concrete: indices in ``[0, n)``, finite weights.

    Raises:
      InputError: any of these fails.

    Examples:
      >>> g = neighbors.Graph(np.array([0, 2]), np.array([2, 0]), np.array([0.5, 0.5]))
      >>> check_graph(g, 2, where="look.tsne.gradient")
      Traceback (most recent call last):
      ...
      latentjax.errors.InputError: look.tsne.gradient: affinities index 2 out of range for 2 points
    """
    if not isinstance(p, neighbors.Graph):
        raise InputError(f"{where}: affinities must be a neighbors.Graph (tsne.affinities), got {type(p)}")
    shapes = [tuple(np.shape(a)) for a in p]
    if len(shapes[0]) != 1 or len(set(shapes)) != 1:
        raise InputError(
            f"{where}: affinities rows, cols and weights must be vectors of one length, got {shapes}"
        )
    if any(_checks.is_traced(a) for a in p):
        return p
    rows, cols = np.asarray(p.rows), np.asarray(p.cols)  # int32 stays int32 (1M points: 130M edges)
    if not (np.issubdtype(rows.dtype, np.integer) and np.issubdtype(cols.dtype, np.integer)):
        rows, cols = rows.astype(np.int64), cols.astype(np.int64)
    if rows.size:
        lo, hi = min(int(rows.min()), int(cols.min())), max(int(rows.max()), int(cols.max()))
        if lo < 0 or hi >= n:
            raise InputError(f"{where}: affinities index {hi if hi >= n else lo} out of range for {n} points")
    _checks.finite(p.weights, "affinities.weights", where=where)
    return neighbors.Graph(rows, cols, np.asarray(p.weights))


def pieces(p: neighbors.Graph, n: int, width: int = 32, *, where: str = "look.tsne", dtype=None) -> Pieces:
    """``P`` on ``n`` points cut into ``Pieces`` of ``width`` edges: on the host, or on device if traced.

    A concrete graph is laid out on the host with exactly as many pieces as needed. A traced graph
    (``P`` passed as an argument of a user's ``jit``) is laid out on device with the static bound
    ``n + ceil(e / width)`` pieces, the extra ones empty (weight 0) on the last row.

    Args:
      p: the affinities.
      n: number of points.
      width: edges per piece.
      where: the public function, for error messages.
      dtype: the weights' dtype; None keeps ``p.weights``' float dtype (at least float32).

    Returns:
      The ``Pieces``.

    Raises:
      InputError: ``check_graph`` fails.

    Examples:
      >>> import jax.numpy as jnp
      >>> p = neighbors.Graph(jnp.array([0, 1]), jnp.array([1, 0]), jnp.array([0.5, 0.5]))
      >>> pieces(p, 2, width=4).cols.tolist()
      [[1, 0, 0, 0], [0, 1, 1, 1]]
      >>> jax.jit(lambda g: pieces(g, 2, width=4))(p).cols.tolist()
      [[1, 0, 0, 0], [0, 1, 1, 1], [1, 1, 1, 1]]
    """
    p = check_graph(p, n, where=where)
    dtype = float_dtype(p.weights.dtype) if dtype is None else dtype
    if any(_checks.is_traced(a) for a in p):
        return _pieces_traced(p.rows, p.cols, jnp.asarray(p.weights, dtype), n, width)
    rows, cols, vals = p.rows, p.cols, np.asarray(p.weights, dtype)
    same_row = rows[1:] == rows[:-1]
    if not np.all((rows[1:] > rows[:-1]) | (same_row & (cols[1:] >= cols[:-1]))):  # affinities' are sorted
        order = np.lexsort((cols, rows))
        rows, cols, vals = rows[order], cols[order], vals[order]
    del same_row
    deg = np.bincount(rows, minlength=n)
    num = np.maximum(1, -(-deg // width))
    piece_start = np.concatenate([[0], np.cumsum(num)[:-1]])
    row_start = np.concatenate([[0], np.cumsum(deg)[:-1]])
    pos = np.arange(rows.size) - row_start[rows]
    piece = piece_start[rows] + pos // width
    owner = np.repeat(np.arange(n, dtype=np.int32), num)
    g_cols = np.repeat(owner[:, None], width, axis=1)
    g_vals = np.zeros((owner.size, width), dtype)
    g_cols[piece, pos % width] = cols
    g_vals[piece, pos % width] = vals
    return Pieces(jnp.asarray(owner, jnp.int32), jnp.asarray(g_cols, jnp.int32), jnp.asarray(g_vals))


def _pieces_traced(rows, cols, vals, n, width):
    """``pieces`` on device, as the host layout, padded to ``n + ceil(e / width)`` pieces."""
    e = rows.shape[0]
    rows, cols = rows.astype(jnp.int32), cols.astype(jnp.int32)
    order = jnp.lexsort((cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    deg = jnp.bincount(rows, length=n)
    num = jnp.maximum(1, -(-deg // width))
    piece_start = jnp.cumsum(num) - num
    row_start = jnp.cumsum(deg) - deg
    pos = jnp.arange(e, dtype=jnp.int32) - row_start[rows]
    piece = piece_start[rows] + pos // width
    # Padding repeats the last row: the owners stay sorted and the empty pieces add 0.
    owner = jnp.repeat(jnp.arange(n, dtype=jnp.int32), num, total_repeat_length=n + -(-e // width))
    g_cols = jnp.broadcast_to(owner[:, None], (owner.shape[0], width)).at[piece, pos % width].set(cols)
    g_vals = jnp.zeros((owner.shape[0], width), vals.dtype).at[piece, pos % width].set(vals)
    return Pieces(owner, g_cols, g_vals)


def forces(
    y: jax.Array, graph: Pieces, exaggeration, *, method: str, num_boxes: int | tuple[int, ...] | None
) -> tuple[jax.Array, jax.Array]:
    """``(gradient (n, e), Z)`` of t-SNE (without the factor 4): the one place the repulsion is chosen.

    Args:
      y: ``(n, e)`` embedding (``e = 2`` for ``"fft"``).
      graph: ``P`` as ``Pieces``.
      exaggeration: multiplies the attraction.
      method: ``"fft"`` or ``"exact"``.
      num_boxes: grid boxes per side for ``"fft"``; a tuple of them: the first no smaller than the
        extent (``grid_choice``), picked on device, or the exact sum if none is.

    Returns:
      ``exaggeration * attraction - repulsion / Z`` and ``Z``.
    """
    if method == "fft" and isinstance(num_boxes, tuple):
        branches = [functools.partial(_fitsne_grid.repulsion, num_boxes=b) for b in num_boxes] + [
            repulsion_exact
        ]
        rep, z = jax.lax.switch(grid_choice(y, num_boxes), branches, y)
    elif method == "fft":
        rep, z = _fitsne_grid.repulsion(y, num_boxes=num_boxes)
    else:
        rep, z = repulsion_exact(y)
    return exaggeration * _attraction(y, graph) - rep / z, z


# The box counts ``tsne.gradient`` picks from when not given one: few, because under ``jit`` each
# is a compiled branch (FFT lengths 6 * boxes with prime factors 2, 3, 5).
GRADIENT_BOXES = (50, 100, 200, 400, 800)


def gradient_grids(n: int) -> tuple[int, ...]:
    """The ``GRADIENT_BOXES`` worth using on ``n`` points: grids cheaper than the exact O(n^2) sum.

    A grid of ``b`` boxes costs about as much as ``(6 b)^2`` point pairs (measured on CPU at
    n = 5,000: 128 boxes 20x faster than exact), so ``12 b <= n`` keeps it below half the exact cost.

    Examples:
      >>> gradient_grids(500), gradient_grids(3000)
      ((), (50, 100, 200))
    """
    return tuple(b for b in GRADIENT_BOXES if 12 * b <= n)


def grid_choice(y: jax.Array, grids: tuple[int, ...]) -> jax.Array:
    """Index of the first of ``grids`` with boxes no wider than 1 on ``y`` (openTSNE's rule), or the count.

    Computed on device, so that the eager and the jitted ``tsne.gradient`` pick the same grid.
    """
    want = jnp.maximum(50.0, jnp.ceil(jnp.max(y) - jnp.min(y)))
    return jnp.searchsorted(jnp.asarray(grids, y.dtype), want, side="left")


def _attraction(y, graph):
    """``sum_j p_ij q_ij^u (y_i - y_j)`` with ``q^u = 1 / (1 + d^2)``: (n, e).

    On CPU in float32 a C++ kernel (``_tsne_native``, 6-8x faster at 70,000 points); elsewhere XLA.
    """
    native = (
        y.dtype == jnp.float32
        and graph.weights.dtype == jnp.float32
        and y.shape[1] <= _tsne_native.MAX_COMPONENTS
        and _tsne_native.available()
    )
    if native:
        return _tsne_native.attraction(y, graph.owner, graph.cols, graph.weights)
    # Coordinates as separate vectors: XLA:CPU gathers scalars much faster than 2-vectors.
    diff = [y[:, c][graph.owner][:, None] - y[:, c][graph.cols] for c in range(y.shape[1])]
    w = graph.weights / (1.0 + sum(d * d for d in diff))
    f = jnp.stack([jnp.sum(w * d, axis=1) for d in diff], axis=1)
    return jax.ops.segment_sum(f, graph.owner, num_segments=y.shape[0], indices_are_sorted=True)


def repulsion_exact(y: jax.Array, block_size: int = 512) -> tuple[jax.Array, jax.Array]:
    """Exact ``(sum_j (q^u_ij)^2 (y_i - y_j) (n, e), Z = sum_{i != j} q^u_ij)``, blockwise over rows.

    Args:
      y: ``(n, e)`` embedding.
      block_size: rows per block (memory ``O(block_size * n)``).

    Returns:
      The repulsive forces and ``Z``.

    Examples:
      >>> rep, z = repulsion_exact(jnp.array([[0.0, 0.0], [1.0, 0.0]]))
      >>> rep.tolist(), float(z)
      ([[-0.25, 0.0], [0.25, 0.0]], 1.0)
    """

    def row(yi):
        diff = yi[None, :] - y
        q = 1.0 / (1.0 + jnp.sum(diff * diff, axis=-1))
        return jnp.sum((q * q)[:, None] * diff, axis=0), jnp.sum(q) - 1.0

    rep, z = jax.lax.map(row, y, batch_size=min(block_size, y.shape[0]))
    return rep, jnp.sum(z)


def update(
    moving, graph, learning_rate, exaggeration, momentum, min_gain, max_step_norm, *, method, num_boxes
):
    """One step of gradient descent with momentum and delta-bar-delta gains (openTSNE's).

    ``moving`` is ``(embedding, update, gains, step)`` of ``tsne.State``; returns the next one.
    """
    y, update, gains, count = moving
    grad, _ = forces(y, graph, exaggeration, method=method, num_boxes=num_boxes)
    flipped = jnp.sign(update) != jnp.sign(grad)
    gains = jnp.where(flipped, gains + 0.2, gains * 0.8 + min_gain)
    update = momentum * update - learning_rate * gains * grad
    norm = jnp.linalg.norm(update, axis=1, keepdims=True)
    update = update * jnp.minimum(1.0, max_step_norm / jnp.maximum(norm, 1e-12))
    y = y + update
    y = y - jnp.mean(y, axis=0, keepdims=True)
    return y, update, gains, count + 1


@functools.partial(jax.jit, static_argnames=("method", "num_boxes", "length"), donate_argnums=(0,))
def _descend(moving, graph, *hyper, method, num_boxes, length):
    """``length`` steps of ``update`` in one device loop; the graph stays out of the loop's carry."""

    def body(_, m):
        return update(m, graph, *hyper, method=method, num_boxes=num_boxes)

    return jax.lax.fori_loop(0, length, body, moving)


def run(
    moving, graph, hyper, *, num_steps, method, chunk_size, min_num_intervals, ints_in_interval, callback=None
):
    """``num_steps`` of ``update`` on device, in ``fori_loop`` chunks of ``chunk_size`` steps.

    Before each chunk the FFT grid is sized (``num_boxes``) for the extent expected at the chunk's
    end: the embedding grows as in the last chunk, by at most ``MAX_GROWTH``. ``callback(moving)``,
    if given, runs on the host after each chunk (progress); the device loop is the same without it.
    """
    done, prev_extent = 0, None
    while done < num_steps:
        length = min(chunk_size, num_steps - done)
        boxes = 0
        if method == "fft":
            lo_hi = np.asarray(jnp.stack([jnp.min(moving[0]), jnp.max(moving[0])]))
            extent = float(lo_hi[1] - lo_hi[0])
            growth = 1.0 if not prev_extent else min(max(extent / prev_extent, 1.0), MAX_GROWTH)
            boxes = num_boxes(
                extent * growth, min_num_intervals=min_num_intervals, ints_in_interval=ints_in_interval
            )
            prev_extent = extent
        moving = _descend(moving, graph, *hyper, method=method, num_boxes=boxes, length=length)
        done += length
        if callback is not None:
            callback(moving)
    return moving


@jax.jit
def kl(y: jax.Array, rows: jax.Array, cols: jax.Array, weights: jax.Array) -> jax.Array:
    """``KL(P || Q)`` of ``y`` ``(n, e)`` under ``P`` as an edge list, with the exact ``Z``."""
    _, z = repulsion_exact(y)
    d = y[rows] - y[cols]
    log_q = -jnp.log1p(jnp.sum(d * d, axis=1)) - jnp.log(z)
    safe = jnp.where(weights > 0, weights, 1.0)
    return jnp.sum(jnp.where(weights > 0, weights * (jnp.log(safe) - log_q), 0.0))


def num_boxes(extent: float, *, min_num_intervals: int, ints_in_interval: float) -> int:
    """Boxes per side for an embedding of this extent (openTSNE's rule, bucketed).

    One box per ``ints_in_interval`` units, at least ``min_num_intervals``, rounded up to
    ``BOX_SIZES``.

    Examples:
      >>> num_boxes(61.0, min_num_intervals=50, ints_in_interval=1.0)
      72
    """
    want = max(min_num_intervals, math.ceil(extent / ints_in_interval))
    for b in BOX_SIZES:
        if b >= want:
            return b
    return int(2 ** math.ceil(math.log2(want)))
