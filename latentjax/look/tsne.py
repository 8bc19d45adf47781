"""t-SNE: perplexity-calibrated sparse affinities, PCA initialisation, and a gradient descent
whose repulsion is FFT-accelerated interpolation (FIt-SNE) or exact, run on device in chunks.
"""

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from latentjax.errors import LatentJaxError
from latentjax.look import neighbors, pca


class TSNEError(LatentJaxError, ValueError):
    """Bad input to t-SNE (shape, perplexity, method, schedule)."""


class Affinities(NamedTuple):
    """The symmetric joint probabilities ``P`` of t-SNE as a sparse edge list.

    Every unordered pair appears twice, as ``(i, j)`` and ``(j, i)``, sorted by row then
    column; ``values`` sum to one.

    Attributes:
      rows: ``(e,)`` int32 row indices.
      cols: ``(e,)`` int32 column indices.
      values: ``(e,)`` float32 ``p_ij``.
    """

    rows: jax.Array
    cols: jax.Array
    values: jax.Array


class TSNEState(NamedTuple):
    """The state of t-SNE's gradient descent.

    Attributes:
      embedding: ``(n, 2)`` current positions (zero mean).
      update: ``(n, 2)`` last step, for momentum.
      gains: ``(n, 2)`` per-coordinate delta-bar-delta gains.
      iteration: scalar int32, iterations done.
    """

    embedding: jax.Array
    update: jax.Array
    gains: jax.Array
    iteration: jax.Array


class _Graph(NamedTuple):
    """``P`` in sliced-ELL layout: rows cut into pieces of ``width`` edges (padded with zero
    weights) so the attractive force is a dense gather plus a small sorted segment sum.
    """

    owner: jax.Array  # (v,) row of each piece, sorted
    cols: jax.Array  # (v, width)
    values: jax.Array  # (v, width)


# ----------------------------------------------------------------------------- affinities


def calibrate(distances: ArrayLike, *, perplexity: float, num_steps: int = 100) -> jax.Array:
    """Conditional probabilities ``p_{j|i}`` over each point's neighbours, at a target perplexity.

    A vectorised bisection on each point's precision ``beta_i`` (all points at once) until the
    entropy of ``p_{.|i} ∝ exp(-beta_i d_ij^2)`` equals ``log(perplexity)``.

    Args:
      distances: ``(n, k)`` Euclidean distances to the k nearest neighbours.
      perplexity: target perplexity, in ``[1, k]``.
      num_steps: bisection steps (each halves the bracket once it is found).

    Returns:
      ``(n, k)`` float32 rows summing to one.

    Examples:
      >>> import jax.numpy as jnp
      >>> calibrate(jnp.ones((1, 4)), perplexity=2.0).round(3).tolist()
      [[0.25, 0.25, 0.25, 0.25]]

    References:
      van der Maaten and Hinton, "Visualizing Data using t-SNE", JMLR 9 (2008), Section 2.
    """
    d = jnp.asarray(distances, jnp.float32)
    if d.ndim != 2:
        raise TSNEError(f"tsne.calibrate: distances must be (n, k), got shape {d.shape}")
    if not 1.0 <= perplexity <= d.shape[1]:
        raise TSNEError(f"tsne.calibrate: perplexity={perplexity} must be in [1, k={d.shape[1]}]")
    return _calibrate(d, float(perplexity), int(num_steps))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _calibrate(d, perplexity, num_steps):
    # Shifting by the nearest distance leaves p unchanged and keeps exp() in range.
    d2 = d * d
    d2 = d2 - d2[:, :1]
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

    # Start at 1 / (median squared distance): then few doublings are needed.
    scale = jnp.maximum(jnp.mean(d2, axis=1), 1e-12)
    beta0 = 1.0 / scale
    init = (beta0, jnp.zeros_like(beta0), jnp.full_like(beta0, jnp.inf))
    beta, _, _ = jax.lax.fori_loop(0, num_steps, body, init)
    return probs(beta)[0]


def affinities(x: ArrayLike, *, perplexity: float = 30.0, block_size: int = 1024) -> Affinities:
    """t-SNE's symmetric affinities from the ``3 * perplexity`` exact nearest neighbours.

    ``P = (P_cond + P_cond^T) / 2n`` with ``P_cond`` from ``calibrate``, as an edge list.

    Args:
      x: ``(n, d)`` data.
      perplexity: effective number of neighbours.
      block_size: query block of the neighbour search.

    Returns:
      ``Affinities`` summing to one.

    Examples:
      >>> import jax
      >>> p = affinities(jax.random.normal(jax.random.key(0), (50, 3)), perplexity=5.0)
      >>> round(float(p.values.sum()), 4)
      1.0

    References:
      van der Maaten, "Accelerating t-SNE using tree-based algorithms", JMLR 15 (2014), Eq. 5.
    """
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2:
        raise TSNEError(f"tsne.affinities: x must be (n, d), got shape {x.shape}")
    n = x.shape[0]
    k = min(n - 1, int(3 * perplexity))
    if n < 3 or perplexity <= 0 or perplexity > k:
        raise TSNEError(
            f"tsne.affinities: perplexity={perplexity} needs more than {3 * perplexity:g} points, got {n}"
        )
    nb = neighbors.knn(x, k=k, block_size=block_size)
    p_cond = calibrate(nb.distances, perplexity=perplexity)
    return _symmetrize(np.asarray(nb.indices), np.asarray(p_cond, np.float64))


def _symmetrize(indices, p_cond):
    # Sparse P + P^T on the host: its number of edges depends on the data.
    n, k = indices.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    cols = indices.ravel().astype(np.int64)
    keys = np.concatenate([rows * n + cols, cols * n + rows])
    vals = np.concatenate([p_cond.ravel(), p_cond.ravel()])
    uniq, inverse = np.unique(keys, return_inverse=True)
    summed = np.bincount(inverse, weights=vals, minlength=uniq.size)
    summed /= summed.sum()
    return Affinities(
        jnp.asarray(uniq // n, jnp.int32), jnp.asarray(uniq % n, jnp.int32), jnp.asarray(summed, jnp.float32)
    )


def _graph(aff: Affinities, n: int, width: int = 32) -> _Graph:
    rows = np.asarray(aff.rows, np.int64)
    cols = np.asarray(aff.cols, np.int64)
    vals = np.asarray(aff.values, np.float32)
    if rows.size and (rows.max() >= n or cols.max() >= n):
        raise TSNEError(f"tsne: affinities index {max(rows.max(), cols.max())} out of range for {n} points")
    order = np.lexsort((cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    deg = np.bincount(rows, minlength=n)
    pieces = np.maximum(1, -(-deg // width))
    piece_start = np.concatenate([[0], np.cumsum(pieces)[:-1]])
    row_start = np.concatenate([[0], np.cumsum(deg)[:-1]])
    pos = np.arange(rows.size) - row_start[rows]
    piece = piece_start[rows] + pos // width
    owner = np.repeat(np.arange(n), pieces)
    g_cols = np.repeat(owner[:, None], width, axis=1)
    g_vals = np.zeros((owner.size, width), np.float32)
    g_cols[piece, pos % width] = cols
    g_vals[piece, pos % width] = vals
    return _Graph(jnp.asarray(owner, jnp.int32), jnp.asarray(g_cols, jnp.int32), jnp.asarray(g_vals))


# ----------------------------------------------------------------------------- initialisation


def initialize(x_or_affinities, *, key: jax.Array, method: str = "pca", num_components: int = 2) -> jax.Array:
    """A starting embedding: PCA scaled so the first axis has standard deviation 1e-4, or
    Gaussian noise of that scale.

    Args:
      x_or_affinities: ``(n, d)`` data (for ``"pca"`` or ``"random"``) or ``Affinities`` (for
        ``"random"``, the number of points is read from it).
      key: a ``jax.random.key`` (for ``"random"``, and the randomized PCA of wide data).
      method: ``"pca"`` or ``"random"``.
      num_components: embedding dimension.

    Returns:
      ``(n, num_components)`` float32.

    Examples:
      >>> import jax
      >>> y0 = initialize(jax.random.normal(jax.random.key(1), (100, 5)), key=jax.random.key(0))
      >>> y0.shape, round(float(y0[:, 0].std()) * 1e4, 3)
      ((100, 2), 1.0)

    References:
      Kobak and Linderman, "Initialization is critical for preserving global data structure in
      both t-SNE and UMAP", Nature Biotechnology 39 (2021); openTSNE's ``initialization.pca``.
    """
    if method not in ("pca", "random"):
        raise TSNEError(f"tsne.initialize: unknown method {method!r} (pca or random)")
    if isinstance(x_or_affinities, Affinities):
        if method == "pca":
            raise TSNEError("tsne.initialize: method='pca' needs the data x, not Affinities")
        n = int(np.asarray(x_or_affinities.rows).max()) + 1
        return 1e-4 * jax.random.normal(key, (n, num_components), jnp.float32)
    x = jnp.asarray(x_or_affinities, jnp.float32)
    if x.ndim != 2:
        raise TSNEError(f"tsne.initialize: x must be (n, d), got shape {x.shape}")
    if method == "random":
        return 1e-4 * jax.random.normal(key, (x.shape[0], num_components), jnp.float32)
    if num_components > min(x.shape):
        raise TSNEError(f"tsne.initialize: {num_components} PCA components from data of shape {x.shape}")
    p = pca.fit(x, num_components=num_components, key=key)
    y = pca.transform(p, x)
    return y / jnp.std(y[:, 0]) * 1e-4


# ----------------------------------------------------------------------------- gradient


def _attraction(y, graph):
    """``sum_j p_ij q_ij^u (y_i - y_j)`` with ``q^u = 1 / (1 + d^2)``: (n, 2)."""
    y0, y1 = y[:, 0], y[:, 1]
    # Coordinates as separate vectors: XLA:CPU gathers scalars much faster than 2-vectors.
    dx = y0[graph.owner][:, None] - y0[graph.cols]
    dy = y1[graph.owner][:, None] - y1[graph.cols]
    w = graph.values / (1.0 + dx * dx + dy * dy)
    f = jnp.stack([jnp.sum(w * dx, axis=1), jnp.sum(w * dy, axis=1)], axis=1)
    return jax.ops.segment_sum(f, graph.owner, num_segments=y.shape[0], indices_are_sorted=True)


def _repulsion_exact(y, block_size=512):
    """Exact ``(sum_j (q^u_ij)^2 (y_i - y_j), Z = sum_{i != j} q^u_ij)``, tiled over rows."""
    n, dim = y.shape
    nblocks = -(-n // block_size)
    pad = nblocks * block_size - n
    yp = jnp.pad(y, ((0, pad), (0, 0)))
    valid = (jnp.arange(nblocks * block_size) < n).reshape(nblocks, block_size)

    def block(args):
        yb, vb = args
        diff = yb[:, None, :] - y[None, :, :]
        q = 1.0 / (1.0 + jnp.sum(diff * diff, axis=-1))
        rep = jnp.sum((q * q)[:, :, None] * diff, axis=1)
        z = jnp.sum(jnp.where(vb, jnp.sum(q, axis=1) - 1.0, 0.0))
        return rep, z

    rep, z = jax.lax.map(block, (yp.reshape(nblocks, block_size, dim), valid))
    return rep.reshape(-1, dim)[:n], jnp.sum(z)


def _lagrange_weights(t, p):
    """Weights of the ``p`` equispaced nodes ``(l + 1/2) / p`` at ``t`` in [0, 1]: (..., p)."""
    nodes = (np.arange(p) + 0.5) / p
    cols = []
    for l in range(p):
        w = jnp.ones_like(t)
        for m in range(p):
            if m != l:
                w = w * (t - nodes[m]) / (nodes[l] - nodes[m])
        cols.append(w)
    return jnp.stack(cols, axis=-1)


def _kernels(offsets_x, offsets_y):
    """``(K, G_x, G_y)`` at offsets: the Cauchy kernel and ``-grad K / 2 = d K^2``."""
    cauchy = 1.0 / (1.0 + offsets_x * offsets_x + offsets_y * offsets_y)
    c2 = cauchy * cauchy
    return jnp.stack([cauchy, offsets_x * c2, offsets_y * c2])


def _kernel_hats(width, *, num_boxes, num_nodes):
    """The spectra ``(K^, G_x^, G_y^)`` on the zero-padded ``2g x 2g`` grid of node spacing
    ``width / p`` (half spectra, as ``rfft2``), from one real transform.

    ``K`` is even in both axes, so its spectrum is real; ``G_x`` (``G_y``) is odd in x (y) and
    even in the other axis, so its spectrum is imaginary and odd in k_x (k_y). The spectrum of
    ``K + G_x + G_y`` therefore splits back into the three by real part and parity.
    """
    g = num_boxes * num_nodes
    f = 2 * g
    # Circulant order: index m is offset m (m < g) or m - 2g; |offset| <= g - 1 is all a
    # linear convolution of a g-point grid needs, so offset -g (index g) is free: zero there
    # keeps G_x, G_y exactly odd.
    index = jnp.arange(f)
    offs = jnp.where(index < g, index, index - f).astype(jnp.float32) * (width / num_nodes)
    kern = _kernels(offs[:, None], offs[None, :])
    odd_x = jnp.where(index[:, None] == g, 0.0, kern[1])
    odd_y = jnp.where(index[None, :] == g, 0.0, kern[2])
    spec = _spectrum(kern[0] + odd_x + odd_y)  # (g + 1, f)
    k_hat = jnp.real(spec).astype(spec.dtype)
    odd = spec - k_hat
    gx_hat = 0.5 * (odd - jnp.roll(odd[:, ::-1], 1, axis=1))  # the part odd in k_x
    return jnp.stack([k_hat, gx_hat, odd - gx_hat])


# XLA:CPU transforms along a leading axis run ~5x slower than along the last one (measured at
# 960 x 960), so the 2-D transforms below are 1-D ones along the last axis with explicit
# transposes. Spectra are laid out (k_y in [0, f/2], k_x in [0, f)).
def _spectrum(a, *, f=None):
    """``rfft2`` of real ``a`` (x, y), zero-padded to ``f x f``, as (k_y, k_x)."""
    f = a.shape[0] if f is None else f
    return jnp.fft.fft(jnp.fft.rfft(a, n=f, axis=-1).T, n=f, axis=-1)


def _inverse_corner(spec, g):
    """The ``g x g`` corner (x, y) of the inverse of spectra ``(..., f/2 + 1, f)``."""
    f = spec.shape[-1]
    a = jnp.fft.ifft(spec, axis=-1)[..., :g]  # (..., k_y, x)
    return jnp.fft.irfft(jnp.swapaxes(a, -1, -2), n=f, axis=-1)[..., :g]


def _repulsion_grid(y, lo, width, hats, *, num_boxes, num_nodes):
    """FIt-SNE's repulsion for a 2-D embedding on a grid of ``num_boxes`` boxes of side
    ``width`` from the corner ``lo`` ``(2,)`` (``hats`` from ``_kernel_hats(width)``).

    Unit charges are spread onto the grid (``num_nodes`` Lagrange nodes per box and side),
    convolved by FFT, and interpolated back. The kernel ``G = d K^2`` gives the repulsion
    directly and ``Z`` is ``charges . (K * charges)`` by Parseval: one forward, two inverse
    (skipping the unused half) and one kernel transform per iteration, where FIt-SNE's charges
    ``(1, y, |y|^2)`` need 4 + 4 + 1 and cancel large terms in ``Z``.
    """
    p, nb = num_nodes, num_boxes
    g = nb * p
    f = 2 * g
    u = (y - lo[None, :]) / width
    box = jnp.clip(jnp.floor(u), 0, nb - 1)
    w = _lagrange_weights(u - box, p)  # (n, 2, p)
    w2 = w[:, 0, :, None] * w[:, 1, None, :]  # (n, p, p)
    box = box.astype(jnp.int32)
    flat_box = box[:, 0] * nb + box[:, 1]
    charges = jax.ops.segment_sum(w2, flat_box, num_segments=nb * nb)  # (nb*nb, p, p)
    charges = charges.reshape(nb, nb, p, p).transpose(0, 2, 1, 3).reshape(g, g)

    c_hat = _spectrum(charges, f=f)  # (g + 1, f)
    row_weight = jnp.concatenate([jnp.ones(1), jnp.full(g - 1, 2.0), jnp.ones(1)])
    grid_z = jnp.sum(jnp.real(hats[0]) * (jnp.abs(c_hat) ** 2) * row_weight[:, None]) / (f * f)
    fields = _inverse_corner(hats[1:] * c_hat[None], g)  # (2, g, g)

    fields = fields.reshape(2, nb, p, nb, p).transpose(1, 3, 0, 2, 4).reshape(nb * nb, 2, p, p)
    rep = jnp.einsum("nkab,nab->nk", fields[flat_box], w2)

    # Each point also sees its own charge through the grid (spread, convolved, interpolated
    # back): subtract that interpolated self-interaction exactly (not just K(0) = 1, G(0) = 0).
    # It involves the kernels at offsets within one box only.
    local = (np.arange(p)[:, None] - np.arange(p)[None, :]).astype(np.float32) * (width / p)
    near = _kernels(local[:, None, :, None], local[None, :, None, :])  # (3, p, p, p, p)
    self_field = jnp.einsum("nab,kabcd,ncd->nk", w2, near, w2)
    return rep - self_field[:, 1:], grid_z - jnp.sum(self_field[:, 0])


def _grid_width(y, num_boxes):
    return jnp.maximum((jnp.max(y) - jnp.min(y)) / num_boxes, 1e-6)


def _repulsion_fft(y, *, num_boxes, num_nodes=3):
    """FIt-SNE's ``(rep (n, 2), Z)`` as ``_repulsion_exact``, the grid fitted to ``y``."""
    width = _grid_width(y, num_boxes)
    hats = _kernel_hats(width, num_boxes=num_boxes, num_nodes=num_nodes)
    # The grid is refitted to the embedding every iteration (as FIt-SNE). Keeping a grid, and
    # its kernel spectra, for a few iterations (1 % wider) measured KL +3 % at n = 10k even with
    # sub-node shifts of its origin: a still grid's interpolation error acts as a fixed force.
    return _repulsion_grid(
        y, jnp.full((2,), jnp.min(y)), width, hats, num_boxes=num_boxes, num_nodes=num_nodes
    )


def gradient(
    y: ArrayLike,
    graph_or_affinities,
    *,
    exaggeration: float = 1.0,
    method: str = "exact",
    num_boxes: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """The t-SNE gradient (without the constant factor 4, as openTSNE) and ``Z``.

    ``grad_i = exaggeration * sum_j p_ij q^u_ij (y_i - y_j) - sum_j (q^u_ij)^2 (y_i - y_j) / Z``.

    Args:
      y: ``(n, 2)`` embedding.
      graph_or_affinities: ``Affinities``.
      exaggeration: multiplies the attraction.
      method: ``"exact"`` or ``"fft"``.
      num_boxes: grid boxes per side for ``"fft"`` (default: from the extent, as ``optimize``).

    Returns:
      ``(gradient (n, 2), Z)``.

    Examples:
      >>> import jax
      >>> y = jax.random.normal(jax.random.key(0), (30, 2))
      >>> p = affinities(jax.random.normal(jax.random.key(1), (30, 4)), perplexity=5.0)
      >>> g_exact, _ = gradient(y, p)
      >>> g_fft, _ = gradient(y, p, method="fft")
      >>> bool(jnp.linalg.norm(g_fft - g_exact) < 0.01 * jnp.linalg.norm(g_exact))
      True

    References:
      Linderman et al., "Fast interpolation-based t-SNE for improved visualization of single-cell
      RNA-seq data", Nature Methods 16 (2019), Eqs. 5-9.
    """
    y = jnp.asarray(y, jnp.float32)
    graph = graph_or_affinities
    if isinstance(graph, Affinities):
        graph = _graph(graph, y.shape[0])
    if method == "fft" and num_boxes is None:
        num_boxes = _bucket(float(jnp.max(y) - jnp.min(y)), min_num_intervals=50, ints_in_interval=1.0)
    return _gradient(y, graph, exaggeration, method=method, num_boxes=num_boxes)


@functools.partial(jax.jit, static_argnames=("method", "num_boxes"))
def _gradient(y, graph, exaggeration, *, method, num_boxes):
    if method == "fft":
        rep, z = _repulsion_fft(y, num_boxes=num_boxes)
    elif method == "exact":
        rep, z = _repulsion_exact(y)
    else:
        raise TSNEError(f"tsne: unknown method {method!r} (fft or exact)")
    return exaggeration * _attraction(y, graph) - rep / z, z


# Between chunks the grid is sized for the extent expected at the chunk's end: the last
# chunk's growth, at most this factor.
_MAX_GROWTH = 1.2
# Boxes per side: each needs its own XLA compilation, so sizes come from this short list
# (FFT lengths 6 * boxes with prime factors 2, 3, 5; ~1.2x apart).
_BOX_SIZES = (50, 60, 72, 90, 108, 128, 160, 192, 240, 288, 360, 432, 512, 640, 768, 1024)


def _bucket(extent, *, min_num_intervals, ints_in_interval):
    want = max(min_num_intervals, math.ceil(extent / ints_in_interval))
    for b in _BOX_SIZES:
        if b >= want:
            return b
    return int(2 ** math.ceil(math.log2(want)))


# ----------------------------------------------------------------------------- optimisation


def init_state(y0: ArrayLike) -> TSNEState:
    """The optimiser state at ``y0``: zero update, unit gains."""
    y0 = jnp.asarray(y0, jnp.float32)
    y0 = y0 - jnp.mean(y0, axis=0, keepdims=True)
    return TSNEState(y0, jnp.zeros_like(y0), jnp.ones_like(y0), jnp.zeros((), jnp.int32))


def step(
    state: TSNEState,
    graph_or_affinities,
    *,
    learning_rate,
    exaggeration,
    momentum,
    method: str = "fft",
    num_boxes: int = 50,
    min_gain: float = 0.01,
    max_step_norm: float | None = 5.0,
) -> TSNEState:
    """One iteration of gradient descent with momentum and delta-bar-delta gains (openTSNE's).

    Examples:
      >>> import jax
      >>> p = affinities(jax.random.normal(jax.random.key(1), (30, 4)), perplexity=5.0)
      >>> s = init_state(jax.random.normal(jax.random.key(0), (30, 2)))
      >>> int(step(s, p, learning_rate=10.0, exaggeration=1.0, momentum=0.5).iteration)
      1
    """
    graph = graph_or_affinities
    if isinstance(graph, Affinities):
        graph = _graph(graph, state.embedding.shape[0])
    return _step(
        state,
        graph,
        learning_rate,
        exaggeration,
        momentum,
        min_gain,
        jnp.inf if max_step_norm is None else max_step_norm,
        method=method,
        num_boxes=num_boxes,
    )


def _update(state, grad, learning_rate, momentum, min_gain, max_step_norm):
    y, update, gains, it = state
    flipped = jnp.sign(update) != jnp.sign(grad)
    gains = jnp.where(flipped, gains + 0.2, gains * 0.8 + min_gain)
    update = momentum * update - learning_rate * gains * grad
    norm = jnp.linalg.norm(update, axis=1, keepdims=True)
    update = update * jnp.minimum(1.0, max_step_norm / jnp.maximum(norm, 1e-12))
    y = y + update
    y = y - jnp.mean(y, axis=0, keepdims=True)
    return TSNEState(y, update, gains, it + 1)


def _step_body(
    state, graph, learning_rate, exaggeration, momentum, min_gain, max_step_norm, *, method, num_boxes
):
    if method == "fft":
        rep, z = _repulsion_fft(state.embedding, num_boxes=num_boxes)
    else:
        rep, z = _repulsion_exact(state.embedding)
    grad = exaggeration * _attraction(state.embedding, graph) - rep / z
    return _update(state, grad, learning_rate, momentum, min_gain, max_step_norm)


_step = jax.jit(_step_body, static_argnames=("method", "num_boxes"))


@functools.partial(jax.jit, static_argnames=("method", "num_boxes", "length"), donate_argnums=(0,))
def _chunk(
    state, graph, learning_rate, exaggeration, momentum, min_gain, max_step_norm, *, method, num_boxes, length
):
    def body(_, s):
        return _step_body(
            s,
            graph,
            learning_rate,
            exaggeration,
            momentum,
            min_gain,
            max_step_norm,
            method=method,
            num_boxes=num_boxes,
        )

    return jax.lax.fori_loop(0, length, body, state)


def optimize(
    affinities: Affinities,
    y0: ArrayLike,
    *,
    n_iter: int = 750,
    early_exaggeration_iter: int = 250,
    early_exaggeration: float = 12.0,
    exaggeration: float = 1.0,
    learning_rate="auto",
    initial_momentum: float = 0.8,
    final_momentum: float = 0.8,
    min_gain: float = 0.01,
    max_step_norm: float | None = 5.0,
    method: str = "fft",
    chunk_size: int = 50,
    min_num_intervals: int = 50,
    ints_in_interval: float = 1.0,
    state: TSNEState | None = None,
) -> TSNEState:
    """Run t-SNE's gradient descent: early exaggeration, then the normal phase.

    The loop runs on device in chunks of ``chunk_size`` iterations (one ``fori_loop`` each);
    between chunks the FFT grid size is re-chosen from the embedding's extent (one box per
    ``ints_in_interval`` units, at least ``min_num_intervals``, rounded up to a short list of
    sizes so XLA compiles only a few variants).

    Args:
      affinities: ``P`` from ``affinities``.
      y0: ``(n, 2)`` initial embedding (``initialize``).
      n_iter: total iterations, including the ``early_exaggeration_iter`` first ones.
      early_exaggeration_iter: iterations with ``early_exaggeration`` and ``initial_momentum``.
      early_exaggeration: attraction factor of the first phase.
      exaggeration: attraction factor of the normal phase.
      learning_rate: a float, or ``"auto"``: ``max(n / exaggeration, 50)`` in each phase
        (Belkina et al. 2019, as openTSNE).
      initial_momentum, final_momentum: momentum of the two phases (openTSNE 1.0: 0.8 and 0.8).
      min_gain: floor added to shrinking gains.
      max_step_norm: clip each point's step to this length (openTSNE: 5); None disables.
      method: ``"fft"`` (FIt-SNE interpolation) or ``"exact"`` (tiled O(n^2)).
      chunk_size: iterations per compiled device loop.
      min_num_intervals, ints_in_interval: FFT grid size rule (openTSNE's defaults).
      state: resume from this state instead of ``y0`` (its gains and momentum are kept).

    Returns:
      The final ``TSNEState``; ``state.embedding`` is the ``(n, 2)`` map.

    Examples:
      >>> import jax
      >>> x = jax.random.normal(jax.random.key(0), (60, 5))
      >>> p = affinities(x, perplexity=10.0)
      >>> s = optimize(p, initialize(x, key=jax.random.key(1)), n_iter=20, early_exaggeration_iter=10)
      >>> s.embedding.shape, int(s.iteration)
      ((60, 2), 20)

    References:
      Linderman et al., Nature Methods 16 (2019); Belkina et al., "Automated optimized parameters
      for t-SNE", Nature Communications 10 (2019); Policar et al., "openTSNE", JMLR 25 (2024).
    """
    if method not in ("fft", "exact"):
        raise TSNEError(f"tsne.optimize: unknown method {method!r} (fft or exact)")
    st = init_state(y0) if state is None else state
    n, dim = st.embedding.shape
    if method == "fft" and dim != 2:
        raise TSNEError(f"tsne.optimize: method='fft' needs a 2-D embedding, got shape {st.embedding.shape}")
    if not 0 <= early_exaggeration_iter <= n_iter:
        raise TSNEError(
            f"tsne.optimize: early_exaggeration_iter={early_exaggeration_iter} not in [0, n_iter={n_iter}]"
        )
    graph = _graph(affinities, n)
    max_norm = jnp.float32(jnp.inf if max_step_norm is None else max_step_norm)

    def phase(st, iters, exag, momentum):
        lr = max(n / exag, 50.0) if learning_rate == "auto" else float(learning_rate)
        done, prev_extent = 0, None
        while done < iters:
            length = min(chunk_size, iters - done)
            num_boxes = 0
            if method == "fft":
                lo_hi = np.asarray(jnp.stack([jnp.min(st.embedding), jnp.max(st.embedding)]))
                extent = float(lo_hi[1] - lo_hi[0])
                # Aim at the extent expected by the chunk's end (growth as in the last chunk).
                growth = 1.0 if not prev_extent else min(max(extent / prev_extent, 1.0), _MAX_GROWTH)
                num_boxes = _bucket(
                    extent * growth, min_num_intervals=min_num_intervals, ints_in_interval=ints_in_interval
                )
                prev_extent = extent
            st = _chunk(
                st,
                graph,
                jnp.float32(lr),
                jnp.float32(exag),
                jnp.float32(momentum),
                jnp.float32(min_gain),
                max_norm,
                method=method,
                num_boxes=num_boxes,
                length=length,
            )
            done += length
        return st

    st = phase(st, early_exaggeration_iter, early_exaggeration, initial_momentum)
    return phase(st, n_iter - early_exaggeration_iter, exaggeration, final_momentum)


def embed(
    key: jax.Array,
    x: ArrayLike,
    *,
    perplexity: float = 30.0,
    n_iter: int = 750,
    method: str = "fft",
    init: str = "pca",
    **optimize_kwargs,
) -> jax.Array:
    """t-SNE of ``x`` into 2-D: ``affinities`` -> ``initialize`` -> ``optimize``.

    Args:
      key: a ``jax.random.key`` (initialisation).
      x: ``(n, d)`` data.
      perplexity: effective number of neighbours.
      n_iter: total iterations (250 of them early exaggeration).
      method: repulsion, ``"fft"`` or ``"exact"``.
      init: ``"pca"`` or ``"random"``.
      **optimize_kwargs: passed to ``optimize``.

    Returns:
      ``(n, 2)`` float32 embedding.

    Examples:
      >>> import jax
      >>> y = embed(jax.random.key(0), jax.random.normal(jax.random.key(1), (60, 5)), perplexity=10.0, n_iter=30)
      >>> y.shape
      (60, 2)

    References:
      van der Maaten and Hinton, JMLR 9 (2008); Linderman et al., Nature Methods 16 (2019).
    """
    p = affinities(x, perplexity=perplexity)
    y0 = initialize(x, key=key, method=init)
    eei = optimize_kwargs.pop("early_exaggeration_iter", min(250, n_iter))
    return optimize(
        p, y0, n_iter=n_iter, early_exaggeration_iter=eei, method=method, **optimize_kwargs
    ).embedding


def kl_divergence(affinities: Affinities, y: ArrayLike) -> jax.Array:
    """``KL(P || Q)`` with the exact ``Z`` (tiled O(n^2)): t-SNE's objective.

    Examples:
      >>> import jax
      >>> x = jax.random.normal(jax.random.key(0), (40, 3))
      >>> float(kl_divergence(affinities(x, perplexity=5.0), x[:, :2])) > 0
      True
    """
    y = jnp.asarray(y, jnp.float32)
    return _kl(y, affinities.rows, affinities.cols, affinities.values)


@jax.jit
def _kl(y, rows, cols, values):
    _, z = _repulsion_exact(y)
    d = y[rows] - y[cols]
    log_q = -jnp.log1p(jnp.sum(d * d, axis=1)) - jnp.log(z)
    safe = jnp.where(values > 0, values, 1.0)
    return jnp.sum(jnp.where(values > 0, values * (jnp.log(safe) - log_q), 0.0))
