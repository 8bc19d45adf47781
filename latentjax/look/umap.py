"""UMAP: fuzzy kNN graph, spectral initialisation and a vectorised negative-sampling layout.

The layout runs on device: every epoch gathers the edges whose sampling schedule fires into a
fixed-size buffer, so one compiled ``fori_loop`` covers the whole optimisation.
"""

import functools
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg
from jax.typing import ArrayLike

from latentjax.errors import LatentJaxError
from latentjax.look import neighbors

# umap-learn's constants (umap/umap_.py): calibration tolerance and the sigma floor.
_SMOOTH_K_TOLERANCE = 1e-5
_MIN_K_DIST_SCALE = 1e-3
# umap-learn clips every gradient coordinate to [-4, 4] (umap/layouts.py `clip`).
_CLIP = 4.0


class UMAPError(LatentJaxError, ValueError):
    """Bad input to UMAP (shape, number of neighbours, epochs, initialisation)."""


class Graph(NamedTuple):
    """The fuzzy simplicial set (1-skeleton) of the data as a symmetric edge list.

    Attributes:
      head: ``(E,)`` int32 source vertex of each directed edge, sorted ascending.
      tail: ``(E,)`` int32 target vertex; every edge ``(i, j)`` also appears as ``(j, i)``.
      weight: ``(E,)`` float32 membership strength of the fuzzy union, in ``(0, 1]``.
      sigma: ``(n,)`` float32 per-point bandwidth from the calibration.
      rho: ``(n,)`` float32 distance to the nearest (non-identical) neighbour.
    """

    head: jax.Array
    tail: jax.Array
    weight: jax.Array
    sigma: jax.Array
    rho: jax.Array

    @property
    def num_points(self) -> int:
        return self.sigma.shape[0]


def find_ab(*, spread: float = 1.0, min_dist: float = 0.1) -> tuple[float, float]:
    """The ``a, b`` of the low-dimensional kernel ``1 / (1 + a d^(2b))``.

    Least-squares fit of the curve to the offset exponential ``1`` for ``d < min_dist`` and
    ``exp(-(d - min_dist) / spread)`` beyond, on 300 points of ``[0, 3 spread]``.

    Args:
      spread: scale of the embedded points.
      min_dist: how tightly points may pack (``0 <= min_dist <= spread``).

    Returns:
      ``(a, b)`` as Python floats.

    Examples:
      >>> a, b = find_ab(spread=1.0, min_dist=0.1)
      >>> round(a, 2), round(b, 2)
      (1.58, 0.9)

    References:
      McInnes, Healy and Melville, "UMAP", arXiv:1802.03426, section 3.2 and appendix C;
      umap-learn's ``find_ab_params``.
    """
    if not spread > 0 or not 0 <= min_dist <= spread:
        raise UMAPError(f"find_ab: need spread > 0 and 0 <= min_dist <= spread, got {spread}, {min_dist}")
    xv = np.linspace(0, spread * 3, 300)
    yv = np.where(xv < min_dist, 1.0, np.exp(-(xv - min_dist) / spread))
    (a, b), _ = scipy.optimize.curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b)), xv, yv)
    return float(a), float(b)


def _smooth_knn_dist(distances, mean_all, *, target, n_neighbors, n_iter=64):
    """``(sigma, rho)`` for one point from its ``(k,)`` sorted neighbour distances (self excluded)."""
    positive = distances > 0
    # local_connectivity = 1: rho is the first non-zero distance (0 if all neighbours coincide).
    rho = jnp.where(jnp.any(positive), distances[jnp.argmax(positive)], 0.0)

    def psum(mid):
        d = distances - rho
        return jnp.sum(jnp.where(d > 0, jnp.exp(-d / mid), 1.0))

    def body(_, state):
        lo, hi, mid, done = state
        s = psum(mid)
        done = done | (jnp.abs(s - target) < _SMOOTH_K_TOLERANCE)
        too_big = s > target
        new_hi = jnp.where(too_big, mid, hi)
        new_lo = jnp.where(too_big, lo, mid)
        new_mid = jnp.where(too_big | (hi < jnp.finfo(jnp.float32).max), (new_lo + new_hi) / 2.0, mid * 2.0)
        keep = lambda old, new: jnp.where(done, old, new)  # noqa: E731
        return keep(lo, new_lo), keep(hi, new_hi), keep(mid, new_mid), done

    init = (jnp.float32(0.0), jnp.finfo(jnp.float32).max, jnp.float32(1.0), jnp.bool_(False))
    _, _, sigma, _ = jax.lax.fori_loop(0, n_iter, body, init)
    # umap-learn's means include the point itself (distance 0) among the n_neighbors.
    mean_own = jnp.sum(distances) / n_neighbors
    sigma = jnp.where(
        rho > 0,
        jnp.maximum(sigma, _MIN_K_DIST_SCALE * mean_own),
        jnp.maximum(sigma, _MIN_K_DIST_SCALE * mean_all),
    )
    return sigma, rho


@functools.partial(jax.jit, static_argnames=("n_neighbors",))
def _memberships(distances, *, n_neighbors):
    mean_all = jnp.sum(distances) / (distances.shape[0] * n_neighbors)
    target = jnp.log2(jnp.float32(n_neighbors))
    sigma, rho = jax.vmap(
        functools.partial(_smooth_knn_dist, target=target, n_neighbors=n_neighbors),
        in_axes=(0, None),
    )(distances, mean_all)
    d = distances - rho[:, None]
    vals = jnp.where((d <= 0) | (sigma[:, None] == 0), 1.0, jnp.exp(-d / sigma[:, None]))
    return vals, sigma, rho


def fuzzy_graph_from_knn(indices: ArrayLike, distances: ArrayLike, *, n_neighbors: int) -> Graph:
    """The fuzzy simplicial set from precomputed neighbours (self excluded, nearest first).

    Args:
      indices: ``(n, n_neighbors - 1)`` int neighbour indices, the point itself excluded.
      distances: ``(n, n_neighbors - 1)`` float distances, ascending per row.
      n_neighbors: umap-learn's ``n_neighbors``, which counts the point itself.

    Returns:
      The symmetric :class:`Graph` (fuzzy union ``P + P^T - P * P^T``).

    Examples:
      >>> import numpy as np
      >>> nb = neighbors.knn(np.random.default_rng(0).normal(size=(50, 3)), k=4)
      >>> g = fuzzy_graph_from_knn(nb.indices, nb.distances, n_neighbors=5)
      >>> bool((g.weight <= 1).all() & (g.weight > 0).all())
      True

    References:
      McInnes, Healy and Melville, "UMAP", arXiv:1802.03426, definitions 7-9 and section 3.1.
    """
    indices = np.asarray(indices)
    distances = jnp.asarray(distances, jnp.float32)
    if indices.ndim != 2 or indices.shape != distances.shape or indices.shape[1] != n_neighbors - 1:
        raise UMAPError(
            f"fuzzy_graph: indices {indices.shape} and distances {distances.shape} must both be "
            f"(n, n_neighbors - 1 = {n_neighbors - 1})"
        )
    n, k = indices.shape
    vals, sigma, rho = _memberships(distances, n_neighbors=n_neighbors)
    rows = np.repeat(np.arange(n, dtype=np.int32), k)
    p = scipy.sparse.coo_matrix(
        (np.asarray(vals, np.float32).ravel(), (rows, indices.ravel().astype(np.int32))), shape=(n, n)
    ).tocsr()
    p.sum_duplicates()
    union = (p + p.T - p.multiply(p.T)).tocsr()
    union.eliminate_zeros()
    union.sort_indices()
    coo = union.tocoo()
    return Graph(
        jnp.asarray(coo.row, jnp.int32),
        jnp.asarray(coo.col, jnp.int32),
        jnp.asarray(coo.data, jnp.float32),
        sigma,
        rho,
    )


def fuzzy_graph(x: ArrayLike, *, n_neighbors: int = 15) -> Graph:
    """The fuzzy simplicial set of ``x`` under Euclidean distance.

    Exact neighbours (:func:`latentjax.neighbors.knn`), per-point ``rho``/``sigma`` calibrated by
    a vectorised binary search so that ``sum_j exp(-(d_ij - rho_i) / sigma_i) = log2(n_neighbors)``,
    then the fuzzy union of the directed memberships.

    Args:
      x: ``(n, d)`` data.
      n_neighbors: neighbourhood size, counting the point itself (umap-learn's convention).

    Returns:
      The symmetric :class:`Graph`.

    Examples:
      >>> import numpy as np
      >>> g = fuzzy_graph(np.random.default_rng(0).normal(size=(100, 5)), n_neighbors=10)
      >>> g.num_points, bool(g.head.shape == g.tail.shape == g.weight.shape)
      (100, True)

    References:
      McInnes, Healy and Melville, "UMAP", arXiv:1802.03426, section 3.1.
    """
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2:
        raise UMAPError(f"fuzzy_graph: x must be (n, d), got shape {x.shape}")
    if not 2 <= n_neighbors <= x.shape[0]:
        raise UMAPError(f"fuzzy_graph: n_neighbors={n_neighbors} must be in [2, n={x.shape[0]}]")
    nb = neighbors.knn(x, k=n_neighbors - 1)
    return fuzzy_graph_from_knn(nb.indices, nb.distances, n_neighbors=n_neighbors)


def _spectral(graph: Graph, dim: int) -> np.ndarray | None:
    """Eigenvectors 2..dim+1 of the normalised Laplacian, or None if the graph is disconnected."""
    n = graph.num_points
    w = scipy.sparse.csr_matrix(
        (np.asarray(graph.weight, np.float64), (np.asarray(graph.head), np.asarray(graph.tail))),
        shape=(n, n),
    )
    num_components, _ = scipy.sparse.csgraph.connected_components(w, directed=False)
    if num_components > 1 or n <= dim + 1:
        return None
    inv_sqrt_deg = 1.0 / np.sqrt(np.asarray(w.sum(axis=1)).ravel())
    d = scipy.sparse.diags(inv_sqrt_deg)
    # The smallest eigenvectors of I - D^-1/2 W D^-1/2 are the largest of (I + D^-1/2 W D^-1/2) / 2,
    # whose spectrum lies in [0, 1]: ARPACK finds largest eigenvalues much faster than "SM".
    m = (scipy.sparse.identity(n) + d @ w @ d) * 0.5
    k = dim + 1
    try:
        vals, vecs = scipy.sparse.linalg.eigsh(
            m,
            k,
            which="LA",
            ncv=max(2 * k + 1, int(np.sqrt(n))),
            tol=1e-4,
            v0=np.ones(n),
            maxiter=5 * n,
        )
    except scipy.sparse.linalg.ArpackError:
        return None
    order = np.argsort(-vals)[1:k]
    return vecs[:, order]


def initialize(
    graph: Graph, *, key: jax.Array, dim: int = 2, method: str = "spectral", x: ArrayLike | None = None
) -> jax.Array:
    """Initial layout, scaled like umap-learn's to the box ``[0, 10]^dim``.

    Args:
      graph: the fuzzy graph.
      key: randomness for the jitter (and the random method).
      dim: embedding dimension.
      method: ``"spectral"`` (normalised Laplacian eigenvectors; falls back to ``"pca"`` when the
        graph is disconnected and ``x`` is given, else ``"random"``), ``"pca"`` (needs ``x``) or
        ``"random"``.
      x: the data, for the PCA initialisation.

    Returns:
      ``(n, dim)`` float32 positions.

    Examples:
      >>> import jax, numpy as np
      >>> g = fuzzy_graph(np.random.default_rng(0).normal(size=(60, 4)), n_neighbors=8)
      >>> y = initialize(g, key=jax.random.key(0))
      >>> y.shape, float(y.min()) >= 0, float(y.max()) <= 10
      ((60, 2), True, True)

    References:
      Belkin and Niyogi, "Laplacian eigenmaps", Neural Computation 15(6), 2003; umap-learn's
      ``spectral_layout`` and ``simplicial_set_embedding``.
    """
    n = graph.num_points
    if method not in ("spectral", "pca", "random"):
        raise UMAPError(f"initialize: method must be 'spectral', 'pca' or 'random', got {method!r}")
    if method == "pca" and x is None:
        raise UMAPError("initialize: method='pca' needs the data x")
    k_noise, k_random = jax.random.split(key)
    y = None
    if method == "spectral":
        y = _spectral(graph, dim)
        if y is None:
            method = "pca" if x is not None else "random"
            warnings.warn(f"umap: spectral initialisation impossible (disconnected graph); using {method}")
    if method == "pca":
        from latentjax.look import pca  # noqa: PLC0415 (only this path needs it)

        xa = jnp.asarray(x, jnp.float32)
        y = np.asarray(pca.transform(pca.fit(xa, num_components=dim), xa), np.float64)
    if method == "random":
        return jax.random.uniform(k_random, (n, dim), jnp.float32, 0.0, 10.0)
    # umap-learn: scale to max |coordinate| 10, add tiny jitter, then rescale each axis to [0, 10].
    y = 10.0 * y / np.abs(y).max()
    y = y + 1e-4 * np.asarray(jax.random.normal(k_noise, y.shape), np.float64)
    y = 10.0 * (y - y.min(axis=0)) / (y.max(axis=0) - y.min(axis=0))
    return jnp.asarray(y, jnp.float32)


class Schedule(NamedTuple):
    """Static sampling data for the layout (host-built once by :func:`schedule`).

    Attributes:
      head, tail: ``(E,)`` int32 edges kept (weight >= max weight / n_epochs, like umap-learn),
        sorted by head.
      rate: ``(E,)`` float32 weight / max weight: how often the edge fires per epoch (umap-learn's
        ``1 / epochs_per_sample``).
      negative_weight: ``(n, m)`` float32 weight of each of a vertex's ``m`` negative samples
        per epoch, so that vertex ``j`` is pushed on average as hard as by umap-learn's
        ``negative_sample_rate`` samples per firing of one of its edges.
    """

    head: jax.Array
    tail: jax.Array
    rate: jax.Array
    negative_weight: jax.Array


def schedule(graph: Graph, *, n_epochs: int, negative_sample_rate: int = 5) -> Schedule:
    """The edges kept for the layout, their firing rates and the negative-sample weights.

    Examples:
      >>> import numpy as np
      >>> g = fuzzy_graph(np.random.default_rng(0).normal(size=(50, 3)), n_neighbors=5)
      >>> s = schedule(g, n_epochs=100)
      >>> float(s.rate.max()), s.negative_weight.shape[0]
      (1.0, 50)
    """
    w = np.asarray(graph.weight, np.float64)
    keep = w >= w.max() / float(n_epochs)
    head = np.asarray(graph.head)[keep]
    rate = (w[keep] / w.max()).astype(np.float32)
    # Expected negatives per epoch for each vertex: rate times the edges it heads. Every vertex
    # gets the same number of samples (a dense (n, m) block: no scatter), weighted to match.
    expected = negative_sample_rate * np.bincount(head, weights=rate, minlength=graph.num_points)
    m = max(1, int(np.ceil(np.sum(expected) / graph.num_points)))
    return Schedule(
        jnp.asarray(head, jnp.int32),
        jnp.asarray(np.asarray(graph.tail)[keep], jnp.int32),
        jnp.asarray(rate),
        jnp.asarray(np.repeat((expected / m)[:, None], m, axis=1), jnp.float32),
    )


class LayoutState(NamedTuple):
    """The layout during optimisation: positions stored ``(dim, n)`` and the epoch counter."""

    yt: jax.Array
    epoch: jax.Array


def _fires(rate, epoch):
    # Edge e fires at epoch n when its count floor(n * rate) of samples due so far grows
    # (umap-learn: epoch_of_next_sample += epochs_per_sample, fire when <= n; none at n = 0).
    nf = epoch.astype(jnp.float32)
    return (jnp.floor(nf * rate) > jnp.floor((nf - 1.0) * rate)) & (epoch >= 1)


def _uniform_ints(seed, size, n):
    """``size`` cheap pseudo-random ints in ``[0, n)``: a murmur3 finaliser of (seed, slot).

    Threefry costs about 15x more per number on CPU and dominated the epoch; negative samples
    need no cryptographic quality.
    """
    x = jnp.arange(size, dtype=jnp.uint32) * jnp.uint32(0x9E3779B1) + seed
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    x = x ^ (x >> 16)
    return (x % jnp.uint32(n)).astype(jnp.int32)


def _d2_pow_b(d2, b):
    # d2^b through one log/exp (jnp.power is 7x slower on XLA:CPU).
    return jnp.exp(b * jnp.log(jnp.maximum(d2, 1e-30)))


def step(
    state: LayoutState,
    sched: Schedule,
    key: jax.Array,
    *,
    a: float,
    b: float,
    n_epochs: int,
    gamma: float = 1.0,
    learning_rate: float = 1.0,
) -> LayoutState:
    """One epoch of UMAP's stochastic layout, all updates from the same positions.

    Attraction: every edge whose schedule fires this epoch pulls its head towards its tail.
    The graph is symmetric and ``(j, i)`` fires with ``(i, j)``, so twice the attraction on heads
    equals umap-learn's ``move_other`` update. Repulsion: each vertex draws ``m`` (static, from
    ``sched.negative_weight``) uniform points, weighted so that on average it is pushed as by umap-learn's
    ``negative_sample_rate`` samples per firing edge (the same expected gradient).
    Every gradient coordinate is clipped to 4; the learning rate decays linearly to 0.
    Positions are stored ``(dim, n)`` so each coordinate is one contiguous vector.
    """
    yt, epoch = state
    dim, n = yt.shape
    alpha = learning_rate * (1.0 - epoch.astype(jnp.float32) / n_epochs)

    fired = _fires(sched.rate, epoch)
    # Per-coordinate 1-D gathers and arithmetic: about 1.5x faster on XLA:CPU than (dim, ...)
    # blocks, where fusions recompute the kernel for every coordinate.
    diff = [yt[c][sched.head] - yt[c][sched.tail] for c in range(dim)]
    d2 = sum(dc * dc for dc in diff)
    d2b = _d2_pow_b(d2, b)
    att = jnp.where(fired & (d2 > 0), -2.0 * a * b * d2b / (d2 * (1.0 + a * d2b)), 0.0)
    att_grad = jnp.stack([jnp.clip(att * dc, -_CLIP, _CLIP) for dc in diff], axis=1)
    # One segment sum over (E, dim) costs as much as one over (E,).
    att_update = jax.ops.segment_sum(att_grad, sched.head, num_segments=n, indices_are_sorted=True)

    seed = jax.random.bits(jax.random.fold_in(key, epoch), (), jnp.uint32)
    m = sched.negative_weight.shape[1]
    other = _uniform_ints(seed, n * m, n).reshape(n, m)
    ndiff = [yt[c][:, None] - yt[c][other] for c in range(dim)]
    nd2 = sum(dc * dc for dc in ndiff)
    rep = jnp.where(nd2 > 0, 2.0 * gamma * b / ((1e-3 + nd2) * (1.0 + a * _d2_pow_b(nd2, b))), 0.0)
    # A vertex's samples share one weight: apply it after the sum.
    rep_scale = jnp.where(epoch >= 1, alpha, 0.0) * sched.negative_weight[:, 0]
    update = jnp.stack(
        [
            (2.0 * alpha) * att_update[:, c]
            + rep_scale * jnp.sum(jnp.clip(rep * ndiff[c], -_CLIP, _CLIP), axis=1)
            for c in range(dim)
        ]
    )
    return LayoutState(yt + update, epoch + 1)


@functools.partial(jax.jit, static_argnames=("n_epochs",))
def _optimize(y0, sched, key, a, b, gamma, learning_rate, *, n_epochs):
    body = lambda _, s: step(  # noqa: E731
        s, sched, key, a=a, b=b, n_epochs=n_epochs, gamma=gamma, learning_rate=learning_rate
    )
    return jax.lax.fori_loop(0, n_epochs, body, LayoutState(y0.T, jnp.int32(0))).yt.T


def optimize(
    graph: Graph,
    y0: ArrayLike,
    *,
    key: jax.Array,
    n_epochs: int,
    a: float,
    b: float,
    negative_sample_rate: int = 5,
    gamma: float = 1.0,
    learning_rate: float = 1.0,
) -> jax.Array:
    """Optimise the layout: ``n_epochs`` of :func:`step` in one ``fori_loop`` on device.

    Args:
      graph: the fuzzy graph.
      y0: ``(n, dim)`` initial positions (e.g. :func:`initialize`).
      key: randomness for the negative samples (``fold_in(key, epoch)`` per epoch).
      n_epochs: number of epochs.
      a, b: kernel parameters (:func:`find_ab`).
      negative_sample_rate: negative samples per sampled edge.
      gamma: weight of the repulsion.
      learning_rate: initial learning rate.

    Returns:
      ``(n, dim)`` float32 positions.

    Examples:
      >>> import jax, numpy as np
      >>> g = fuzzy_graph(np.random.default_rng(0).normal(size=(60, 4)), n_neighbors=8)
      >>> y = optimize(g, initialize(g, key=jax.random.key(0)), key=jax.random.key(1),
      ...              n_epochs=50, a=1.58, b=0.9)
      >>> y.shape
      (60, 2)

    References:
      McInnes, Healy and Melville, "UMAP", arXiv:1802.03426, section 3.2 and algorithm 5;
      umap-learn's ``optimize_layout_euclidean``.
    """
    y0 = jnp.asarray(y0, jnp.float32)
    if y0.ndim != 2 or y0.shape[0] != graph.num_points:
        raise UMAPError(f"optimize: y0 must be ({graph.num_points}, dim), got shape {y0.shape}")
    if n_epochs < 1 or negative_sample_rate < 0:
        raise UMAPError(
            f"optimize: need n_epochs >= 1 and negative_sample_rate >= 0, got {n_epochs}, {negative_sample_rate}"
        )
    sched = schedule(graph, n_epochs=n_epochs, negative_sample_rate=negative_sample_rate)
    return _optimize(
        y0,
        sched,
        key,
        jnp.float32(a),
        jnp.float32(b),
        jnp.float32(gamma),
        jnp.float32(learning_rate),
        n_epochs=int(n_epochs),
    )


def embed(
    key: jax.Array,
    x: ArrayLike,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    spread: float = 1.0,
    n_epochs: int | None = None,
    dim: int = 2,
    negative_sample_rate: int = 5,
    init: str = "spectral",
) -> jax.Array:
    """UMAP of ``x`` with umap-learn's defaults: graph, initialisation, layout.

    Args:
      key: randomness (initial jitter and negative samples).
      x: ``(n, d)`` data.
      n_neighbors: neighbourhood size, counting the point itself.
      min_dist, spread: shape of the embedded kernel (:func:`find_ab`).
      n_epochs: epochs; None means 500 for n <= 10,000 and 200 beyond (umap-learn's rule).
      dim: embedding dimension.
      negative_sample_rate: negative samples per sampled edge.
      init: ``"spectral"``, ``"pca"`` or ``"random"``.

    Returns:
      ``(n, dim)`` float32 embedding.

    Examples:
      >>> import jax, numpy as np
      >>> y = embed(jax.random.key(0), np.random.default_rng(0).normal(size=(80, 5)), n_epochs=20)
      >>> y.shape
      (80, 2)

    References:
      McInnes, Healy and Melville, "UMAP: Uniform Manifold Approximation and Projection for
      Dimension Reduction", arXiv:1802.03426, 2018.
    """
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2:
        raise UMAPError(f"embed: x must be (n, d), got shape {x.shape}")
    n = x.shape[0]
    if n_epochs is None:
        n_epochs = 500 if n <= 10_000 else 200
    a, b = find_ab(spread=spread, min_dist=min_dist)
    graph = fuzzy_graph(x, n_neighbors=min(n_neighbors, n))
    k_init, k_opt = jax.random.split(key)
    y0 = initialize(graph, key=k_init, dim=dim, method=init, x=x)
    return optimize(
        graph, y0, key=k_opt, n_epochs=n_epochs, a=a, b=b, negative_sample_rate=negative_sample_rate
    )
