"""New points into a fitted t-SNE map, as openTSNE's ``TSNEEmbedding.transform``: only they move.

Each new point's affinities to its ``3 * perplexity`` nearest reference points are calibrated to the
perplexity and normalised per point (openTSNE's ``point-wise`` normalisation, no symmetrisation); it
starts at the median of its nearest reference points' positions and descends its own gradient

``grad_i = exaggeration * sum_j p_ij q_ij (y_i - r_j) - sum_j q_ij^2 (y_i - r_j) / sum_j q_ij``

against the fixed reference ``r`` (the new points ignore each other). The repulsion is exact
(blockwise) or read off a grid that holds the reference's potentials, computed once by FFT
(openTSNE's ``prepare_interpolation_grid``, padding 0.25); ``maps`` holds the API.

References:
  Policar, Strazar and Zupan, "Embedding to reference t-SNE space addresses batch effects in
  single-cell classification", Machine Learning 112 (2023); openTSNE's ``tsne.py``.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from latentjax.look import _fitsne, _fitsne_grid, _tsne_native, neighbors
from latentjax.look._tsne_affinities import _calibrate

# openTSNE's transform: the grid reaches 25 % beyond the reference (``prepare_interpolation_grid``).
_PADDING = 0.25
_NODES = 3  # interpolation nodes per box and side (openTSNE's n_interpolation_points)


class Grid(NamedTuple):
    """The reference's potentials on a square grid centred on its bounding box.

    Attributes:
      lo: ``(1, 2)`` the grid's lower corner.
      width: scalar, a box's side.
      fields: ``(3, g, g)`` ``sum_j K(node - r_j)`` and ``sum_j (node - r_j) K^2`` at the nodes.
      center: ``(1, 2)`` centre of the reference's bounding box.
      radius: scalar, new points stay in this disc around ``center`` (openTSNE's clip).
    """

    lo: jax.Array
    width: jax.Array
    fields: jax.Array
    center: jax.Array
    radius: jax.Array


def grid_size(reference: np.ndarray, *, min_num_intervals: int = 50, ints_in_interval: float = 1.0) -> int:
    """Boxes per side of the reference grid: openTSNE's count, rounded up to ``_fitsne.BOX_SIZES``."""
    centred = reference - (reference.max(axis=0) + reference.min(axis=0)) / 2
    extent = 2.0 * (1.0 + _PADDING) * float(np.abs(centred).max())
    return _fitsne.num_boxes(extent, min_num_intervals=min_num_intervals, ints_in_interval=ints_in_interval)


def _ball(reference: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(center (1, D), radius)``: the reference's bounding box centre and 1.25 times its half-extent."""
    center = (jnp.max(reference, axis=0, keepdims=True) + jnp.min(reference, axis=0, keepdims=True)) / 2
    return center, (1.0 + _PADDING) * jnp.max(jnp.abs(reference - center))


def bounds(reference: jax.Array) -> Grid:
    """A ``Grid`` without potentials, for the exact repulsion (any dimension): only its clipping ball."""
    center, radius = _ball(reference)
    return Grid(
        center - radius, jnp.zeros((), reference.dtype), jnp.zeros((3, 1, 1), reference.dtype), center, radius
    )


@functools.partial(jax.jit, static_argnames=("num_boxes",))
def reference_grid(reference: jax.Array, *, num_boxes: int) -> Grid:
    """The ``Grid`` of the fixed reference embedding ``(n, 2)``, by one FFT convolution per kernel."""
    p, nb = _NODES, num_boxes
    g = nb * p
    center, radius = _ball(reference)
    width = 2.0 * radius / nb
    lo = center - radius
    u = (reference - lo) / width
    box = jnp.clip(jnp.floor(u), 0, nb - 1)
    w = _fitsne_grid._lagrange_weights(u - box, p)
    w2 = w[:, 0, :, None] * w[:, 1, None, :]
    box = box.astype(jnp.int32)
    charges = jax.ops.segment_sum(w2, box[:, 0] * nb + box[:, 1], num_segments=nb * nb)
    charges = charges.reshape(nb, nb, p, p).transpose(0, 2, 1, 3).reshape(g, g)
    hats = _fitsne_grid._kernel_hats(width, num_boxes=nb, num_nodes=p)
    fields = _fitsne_grid._inverse_corner(hats * _fitsne_grid._spectrum(charges, f=2 * g)[None], g)
    return Grid(lo, width, fields, center, radius)


def _repulsion_grid(y, grid):
    """``(rep (m, 2), Z_i (m,))`` of new points ``y`` from the grid's potentials (9 nodes each)."""
    p = _NODES
    nb = grid.fields.shape[-1] // p
    u = (y - grid.lo) / grid.width
    box = jnp.clip(jnp.floor(u), 0, nb - 1)
    w = _fitsne_grid._lagrange_weights(u - box, p)
    w2 = w[:, 0, :, None] * w[:, 1, None, :]  # (m, p, p)
    box = box.astype(jnp.int32)
    nodes = jnp.arange(p)
    ix = box[:, 0, None] * p + nodes[None, :]  # (m, p)
    iy = box[:, 1, None] * p + nodes[None, :]
    local = grid.fields[:, ix[:, :, None], iy[:, None, :]]  # (3, m, p, p)
    phi = jnp.einsum("kmab,mab->mk", local, w2)
    return phi[:, 1:], phi[:, 0]


def _repulsion_exact(y, reference, block_size=256):
    """``(rep (m, 2), Z_i (m,))`` of new points ``y`` against every reference point, blockwise."""

    def row(yi):
        diff = yi[None, :] - reference
        q = 1.0 / (1.0 + jnp.sum(diff * diff, axis=-1))
        return jnp.sum((q * q)[:, None] * diff, axis=0), jnp.sum(q)

    return jax.lax.map(row, y, batch_size=min(block_size, y.shape[0]))


class Hyper(NamedTuple):
    """One phase's step sizes (traced scalars: one compilation for any values)."""

    learning_rate: jax.Array
    exaggeration: jax.Array
    momentum: jax.Array
    min_gain: jax.Array
    max_grad_norm: jax.Array
    max_step_norm: jax.Array


def _attraction(y, reference, cols, p, *, native):
    """``sum_j p_ij q_ij (y_i - r_j)`` ``(m, D)`` over each new point's reference neighbours ``cols``.

    ``native``: by t-SNE's C++ attraction kernel (``_tsne_native``) on the new points stacked above
    the reference, one piece per new point; XLA's gather of the neighbours took 1.6 ms of a 2.2 ms
    step at 10,000 new points (15 neighbours each).
    """
    m = y.shape[0]
    if native:
        owner = jnp.arange(m, dtype=jnp.int32)
        both = jnp.concatenate([y, reference])
        return _tsne_native.attraction(both, owner, (cols + m).astype(jnp.int32), p)[:m]
    diff = y[:, None, :] - reference[cols]  # (m, k, D)
    q = 1.0 / (1.0 + jnp.sum(diff * diff, axis=-1))
    return jnp.sum((p * q)[..., None] * diff, axis=1)


def _step(carry, reference, cols, p, grid, hyper, *, method, native):
    y, update, gains = carry
    attraction = _attraction(y, reference, cols, p, native=native)
    rep, z = _repulsion_grid(y, grid) if method == "fft" else _repulsion_exact(y, reference)
    grad = hyper.exaggeration * attraction - rep / (z[:, None] + jnp.finfo(y.dtype).eps)
    norm = jnp.linalg.norm(grad, axis=1, keepdims=True)
    grad = grad * jnp.minimum(1.0, hyper.max_grad_norm / (norm + 1e-6))
    flipped = jnp.sign(update) != jnp.sign(grad)
    gains = jnp.where(flipped, gains + 0.2, gains * 0.8 + hyper.min_gain)
    update = hyper.momentum * update - hyper.learning_rate * gains * grad
    step = jnp.linalg.norm(update, axis=1, keepdims=True)
    update = update * jnp.minimum(1.0, hyper.max_step_norm / jnp.maximum(step, 1e-12))
    y = y + update
    # openTSNE keeps new points in the grid's disc, then sets the gains of the points inside it to 0
    # (its code zeroes ``gains[~mask]``): each step's gain is then 0.2 or min_gain, as here.
    off = y - grid.center
    dist = jnp.linalg.norm(off, axis=1, keepdims=True)
    outside = dist > grid.radius
    y = jnp.where(outside, grid.center + off * (grid.radius / jnp.maximum(dist, 1e-12)), y)
    gains = jnp.where(outside, gains, 0.0)
    return y, update, gains


@functools.partial(jax.jit, static_argnames=("method",))
def descend(carry, reference, cols, p, grid, hyper, *, num_steps, method):
    """``num_steps`` of openTSNE's gradient descent on the new points only.

    ``carry`` is ``(y (m, 2), update, gains)``: start from ``(y0, zeros, ones)``; a second phase
    continues from the first's (openTSNE keeps its optimiser between the phases).
    """
    native = (
        reference.dtype == jnp.float32
        and reference.shape[1] <= _tsne_native.MAX_COMPONENTS
        and _tsne_native.available()
    )
    body = functools.partial(
        _step,
        reference=reference,
        cols=cols,
        p=p,
        grid=grid,
        hyper=hyper,
        method=method,
        native=native,
    )
    return jax.lax.fori_loop(0, num_steps, lambda _, c: body(c), carry)


def affinities(x_ref, x_new, *, perplexity: float):
    """``(indices (m, k), p (m, k))``: each new point's nearest reference points and its affinities.

    ``k = min(n, 3 * perplexity)``; a perplexity above ``k`` becomes ``k / 3`` (openTSNE's
    ``check_perplexity``). Rows of ``p`` sum to one.
    """
    n = x_ref.shape[0]
    k = min(n, int(3 * perplexity))
    if perplexity > k:
        perplexity = k / 3.0
    nb = neighbors.knn(x_ref, k=k, queries=x_new)
    dist = jnp.asarray(nb.distances, x_ref.dtype)
    return nb.indices, _calibrate(dist, max(float(perplexity), 1.0), 100)


def median_init(reference, indices, k: int):
    """The median position of the ``k`` nearest reference points (openTSNE's ``median`` initialisation)."""
    return jnp.median(reference[indices[:, :k]], axis=1)
