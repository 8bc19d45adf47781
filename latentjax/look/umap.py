"""UMAP: ``fuzzy_graph`` -> ``initialize`` -> ``optimize`` (``init``, then ``step`` on device).

``embed`` runs them all. The device kernels (calibration, the negative-sampling layout step and
its sampling ``Schedule``) are in ``_umap_kernels``.
"""

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.sparse
from jax.typing import ArrayLike

from latentjax.errors import InputError
from latentjax.look import _umap_kernels, neighbors, pca


def find_ab(*, spread: float = 1.0, min_dist: float = 0.1) -> tuple[float, float]:
    """The ``a, b`` of the low-dimensional kernel ``1 / (1 + a d^(2b))``.

    Least squares on ``[0, 3 spread]`` to ``1`` below ``min_dist``, ``exp(-(d - min_dist) / spread)`` beyond.

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
      McInnes, Healy and Melville, "UMAP", arXiv:1802.03426, appendix C; umap-learn's ``find_ab_params``.
    """
    if not spread > 0 or not 0 <= min_dist <= spread:
        raise InputError(
            f"umap.find_ab: need spread > 0 and 0 <= min_dist <= spread, got {spread}, {min_dist}"
        )
    xv = np.linspace(0, spread * 3, 300)
    yv = np.where(xv < min_dist, 1.0, np.exp(-(xv - min_dist) / spread))
    (a, b), _ = scipy.optimize.curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b)), xv, yv)
    return float(a), float(b)


class Calibration(NamedTuple):
    """Each point's directed memberships and the bandwidths that give them.

    Attributes:
      memberships: ``(n, k)`` float32 ``exp(-(d_ij - rho_i) / sigma_i)`` (1 within ``rho_i``).
      sigma: ``(n,)`` float32 per-point bandwidth.
      rho: ``(n,)`` float32 distance to the nearest (non-identical) neighbour.

    Examples:
      >>> Calibration(jnp.ones((2, 3)), jnp.ones(2), jnp.zeros(2)).memberships.shape
      (2, 3)
    """

    memberships: jax.Array
    sigma: jax.Array
    rho: jax.Array


def calibrate(distances: ArrayLike, *, n_neighbors: int) -> Calibration:
    """Per-point ``rho``, ``sigma`` and memberships, by a binary search over all points at once.

    ``sum_j exp(-(d_ij - rho_i) / sigma_i) = log2(n_neighbors)``, as umap-learn's ``smooth_knn_dist``.

    Args:
      distances: ``(n, n_neighbors - 1)`` ascending neighbour distances, the point itself excluded.
      n_neighbors: umap-learn's ``n_neighbors``, which counts the point itself.

    Returns:
      The ``Calibration``.

    Examples:
      >>> c = calibrate(jnp.array([[1.0, 2.0, 3.0]]), n_neighbors=4)
      >>> c.rho.tolist(), round(float(c.memberships.sum()), 4)
      ([1.0], 2.0)

    References:
      McInnes, Healy and Melville, "UMAP", arXiv:1802.03426, definitions 7-9 and section 3.1.
    """
    distances = jnp.asarray(distances, jnp.float32)
    if distances.ndim != 2 or distances.shape[1] != n_neighbors - 1:
        raise InputError(f"umap.calibrate: distances must be (n, n_neighbors - 1), got {distances.shape}")
    return Calibration(*_umap_kernels.memberships(distances, n_neighbors=n_neighbors))


def fuzzy_graph_from_knn(indices: ArrayLike, distances: ArrayLike, *, n_neighbors: int) -> neighbors.Graph:
    """The fuzzy simplicial set from precomputed neighbours (self excluded, nearest first).

    Args:
      indices: ``(n, n_neighbors - 1)`` int neighbour indices, the point itself excluded.
      distances: ``(n, n_neighbors - 1)`` float distances, ascending per row.
      n_neighbors: umap-learn's ``n_neighbors``, which counts the point itself.

    Returns:
      The symmetric ``neighbors.Graph`` of ``calibrate``'s memberships combined by fuzzy union
      ``P + P^T - P * P^T``; weights in ``(0, 1]``.

    Examples:
      >>> nb = neighbors.knn(np.random.default_rng(0).normal(size=(50, 3)), k=4)
      >>> g = fuzzy_graph_from_knn(nb.indices, nb.distances, n_neighbors=5)
      >>> bool((g.weights <= 1).all() & (g.weights > 0).all())
      True

    References:
      McInnes, Healy and Melville, "UMAP", arXiv:1802.03426, definitions 7-9 and section 3.1.
    """
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.shape != np.shape(distances) or indices.shape[1] != n_neighbors - 1:
        raise InputError(
            f"umap.fuzzy_graph_from_knn: indices {indices.shape} and distances {np.shape(distances)} must "
            f"both be (n, n_neighbors - 1 = {n_neighbors - 1})"
        )
    n, k = indices.shape
    vals = calibrate(distances, n_neighbors=n_neighbors).memberships
    rows = np.repeat(np.arange(n, dtype=np.int32), k)
    p = scipy.sparse.coo_matrix(
        (np.asarray(vals, np.float32).ravel(), (rows, indices.ravel().astype(np.int32))), shape=(n, n)
    ).tocsr()
    p.sum_duplicates()
    union = (p + p.T - p.multiply(p.T)).tocsr()
    union.eliminate_zeros()
    union.sort_indices()
    coo = union.tocoo()
    return neighbors.Graph(
        jnp.asarray(coo.row, jnp.int32), jnp.asarray(coo.col, jnp.int32), jnp.asarray(coo.data, jnp.float32)
    )


def fuzzy_graph(x: ArrayLike, *, n_neighbors: int = 15) -> neighbors.Graph:
    """The fuzzy simplicial set of ``x``: exact Euclidean neighbours, then ``fuzzy_graph_from_knn``.

    Args:
      x: ``(n, d)`` data.
      n_neighbors: neighbourhood size, counting the point itself (umap-learn's convention).

    Returns:
      The symmetric ``neighbors.Graph``.

    Examples:
      >>> g = fuzzy_graph(np.random.default_rng(0).normal(size=(100, 5)), n_neighbors=10)
      >>> g.num_points, bool(g.rows.shape == g.cols.shape == g.weights.shape)
      (100, True)

    References:
      McInnes, Healy and Melville, "UMAP", arXiv:1802.03426, section 3.1.
    """
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2:
        raise InputError(f"umap.fuzzy_graph: x must be (n, d), got shape {x.shape}")
    if not 2 <= n_neighbors <= x.shape[0]:
        raise InputError(f"umap.fuzzy_graph: n_neighbors={n_neighbors} must be in [2, n={x.shape[0]}]")
    nb = neighbors.knn(x, k=n_neighbors - 1)
    return fuzzy_graph_from_knn(nb.indices, nb.distances, n_neighbors=n_neighbors)


def initialize(
    key: jax.Array,
    graph: neighbors.Graph,
    *,
    num_components: int = 2,
    method: str = "spectral",
    x: ArrayLike | None = None,
) -> jax.Array:
    """Initial layout, scaled like umap-learn's to the box ``[0, 10]^num_components``.

    Args:
      key: a ``jax.random.key`` for the jitter (and the random method).
      graph: the fuzzy graph.
      num_components: embedding dimension.
      method: ``"spectral"`` (``neighbors.laplacian_eigenmaps``; if the graph is disconnected,
        ``"pca"`` when ``x`` is given, else ``"random"``), ``"pca"`` (needs ``x``) or ``"random"``.
      x: the data, for the PCA initialisation.

    Returns:
      ``(n, num_components)`` float32 positions.

    Examples:
      >>> g = fuzzy_graph(np.random.default_rng(0).normal(size=(60, 4)), n_neighbors=8)
      >>> y = initialize(jax.random.key(0), g)
      >>> y.shape, float(y.min()) >= 0, float(y.max()) <= 10
      ((60, 2), True, True)

    References:
      umap-learn's ``spectral_layout`` and ``simplicial_set_embedding``.
    """
    n = graph.num_points
    if method not in ("spectral", "pca", "random"):
        raise InputError(f"umap.initialize: method must be 'spectral', 'pca' or 'random', got {method!r}")
    if method == "pca" and x is None:
        raise InputError("umap.initialize: method='pca' needs the data x")
    k_noise, k_random = jax.random.split(key)
    y = None
    if method == "spectral":
        y = neighbors.laplacian_eigenmaps(graph, num_components=num_components)
        if y is None:
            method = "pca" if x is not None else "random"
            warnings.warn(
                f"umap: spectral initialisation impossible (disconnected graph); using {method}", stacklevel=2
            )
    if method == "pca":
        xa = jnp.asarray(x, jnp.float32)
        y = np.asarray(pca.transform(pca.fit(xa, num_components=num_components), xa), np.float64)
    if method == "random":
        return jax.random.uniform(k_random, (n, num_components), jnp.float32, 0.0, 10.0)
    # umap-learn: scale to max |coordinate| 10, add tiny jitter, then rescale each axis to [0, 10].
    y = 10.0 * y / np.abs(y).max()
    y = y + 1e-4 * np.asarray(jax.random.normal(k_noise, y.shape), np.float64)
    y = 10.0 * (y - y.min(axis=0)) / (y.max(axis=0) - y.min(axis=0))
    return jnp.asarray(y, jnp.float32)


class State(NamedTuple):
    """The layout during optimisation (``init``, ``step``, ``optimize``).

    Attributes:
      embedding: ``(n, num_components)`` float32 positions.
      step: scalar int32, steps done.
      key: the ``jax.random.key`` of the negative samples (``fold_in(key, step)`` per step).
      schedule: the graph's edges, firing rates and negative-sample weights, built by ``init``.

    Examples:
      >>> g = fuzzy_graph(np.random.default_rng(0).normal(size=(40, 3)), n_neighbors=5)
      >>> s = init(jax.random.key(0), g, jnp.zeros((40, 2)), num_steps=10)
      >>> s.embedding.shape, int(s.step), s.schedule.negative_weight.shape[0]
      ((40, 2), 0, 40)
    """

    embedding: jax.Array
    step: jax.Array
    key: jax.Array
    schedule: _umap_kernels.Schedule


def init(
    key: jax.Array, graph: neighbors.Graph, y0: ArrayLike, *, num_steps: int, negative_sample_rate: int = 5
) -> State:
    """The layout's state at ``y0``: step 0 and the graph's sampling schedule.

    Args:
      key: a ``jax.random.key`` for the negative samples.
      graph: the fuzzy graph.
      y0: ``(n, num_components)`` initial positions (``initialize``).
      num_steps: steps the layout will run (the schedule keeps edges that fire at least once).
      negative_sample_rate: negative samples per firing edge.

    Returns:
      The ``State``.

    Examples:
      >>> g = fuzzy_graph(np.random.default_rng(0).normal(size=(60, 4)), n_neighbors=8)
      >>> s = init(jax.random.key(1), g, initialize(jax.random.key(0), g), num_steps=50)
      >>> s.embedding.shape, int(s.step)
      ((60, 2), 0)
    """
    n = graph.num_points
    y0 = jnp.asarray(y0, jnp.float32)
    if y0.ndim != 2 or y0.shape[0] != n:
        raise InputError(f"umap.init: y0 must be ({n}, num_components), got shape {y0.shape}")
    if num_steps < 1 or negative_sample_rate < 0:
        raise InputError(
            f"umap.init: need num_steps >= 1, negative_sample_rate >= 0: {num_steps}, {negative_sample_rate}"
        )
    sched = _umap_kernels.schedule(graph, num_steps=num_steps, negative_sample_rate=negative_sample_rate)
    return State(y0, jnp.zeros((), jnp.int32), key, sched)


def step(
    state: State, *, a: float, b: float, num_steps: int, gamma: float = 1.0, learning_rate: float = 1.0
) -> State:
    """One step of UMAP's stochastic layout, all updates from the same positions.

    The edges whose schedule fires attract, negative samples repel (the same expected gradient
    as umap-learn's; details in ``_umap_kernels.layout_step``); the learning rate decays to 0.

    Args:
      state: from ``init`` or an earlier ``step``.
      a: kernel parameter (``find_ab``).
      b: kernel parameter (``find_ab``).
      num_steps: the layout's length, over which the learning rate decays.
      gamma: weight of the repulsion.
      learning_rate: initial learning rate.

    Returns:
      The next ``State``.

    Examples:
      >>> g = fuzzy_graph(np.random.default_rng(0).normal(size=(60, 4)), n_neighbors=8)
      >>> s = init(jax.random.key(1), g, initialize(jax.random.key(0), g), num_steps=50)
      >>> int(step(s, a=1.58, b=0.9, num_steps=50).step)
      1
    """
    hyper = (jnp.float32(a), jnp.float32(b), jnp.float32(gamma), jnp.float32(learning_rate))
    yt, count = _umap_kernels.step(
        state.embedding.T, state.step, state.key, state.schedule, *hyper, num_steps=int(num_steps)
    )
    return state._replace(embedding=yt.T, step=count)


def optimize(
    key: jax.Array,
    graph: neighbors.Graph,
    y0: ArrayLike,
    *,
    num_steps: int,
    a: float,
    b: float,
    negative_sample_rate: int = 5,
    gamma: float = 1.0,
    learning_rate: float = 1.0,
) -> State:
    """Optimise the layout: ``num_steps`` of ``step`` in one ``fori_loop`` on device.

    Args:
      key: a ``jax.random.key`` for the negative samples (``fold_in(key, step)`` per step).
      graph: the fuzzy graph.
      y0: ``(n, num_components)`` initial positions (``initialize``).
      num_steps: number of steps (umap-learn's ``n_epochs``).
      a: kernel parameter (``find_ab``).
      b: kernel parameter (``find_ab``).
      negative_sample_rate: negative samples per firing edge.
      gamma: weight of the repulsion.
      learning_rate: initial learning rate.

    Returns:
      The final ``State``; ``state.embedding`` is the ``(n, num_components)`` layout.

    Examples:
      >>> g = fuzzy_graph(np.random.default_rng(0).normal(size=(60, 4)), n_neighbors=8)
      >>> y0 = initialize(jax.random.key(0), g)
      >>> optimize(jax.random.key(1), g, y0, num_steps=50, a=1.58, b=0.9).embedding.shape
      (60, 2)

    References:
      McInnes et al., "UMAP", arXiv:1802.03426, algorithm 5; umap-learn's ``optimize_layout_euclidean``.
    """
    state = init(key, graph, y0, num_steps=num_steps, negative_sample_rate=negative_sample_rate)
    hyper = (jnp.float32(a), jnp.float32(b), jnp.float32(gamma), jnp.float32(learning_rate))
    yt, count = _umap_kernels.run(
        state.embedding.T, state.step, state.key, state.schedule, *hyper, num_steps=int(num_steps)
    )
    return state._replace(embedding=yt.T, step=count)


def embed(
    key: jax.Array,
    x: ArrayLike,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    spread: float = 1.0,
    num_steps: int | None = None,
    num_components: int = 2,
    negative_sample_rate: int = 5,
    initialization: str = "spectral",
) -> jax.Array:
    """UMAP of ``x`` with umap-learn's defaults: graph, initialisation, layout.

    Args:
      key: a ``jax.random.key`` (initial jitter and negative samples).
      x: ``(n, d)`` data.
      n_neighbors: neighbourhood size, counting the point itself.
      min_dist: how tightly points may pack (``find_ab``).
      spread: scale of the embedded points (``find_ab``).
      num_steps: layout steps (umap-learn's ``n_epochs``); None means 500 for n <= 10,000 and
        200 beyond (umap-learn's rule).
      num_components: embedding dimension.
      negative_sample_rate: negative samples per firing edge.
      initialization: ``"spectral"``, ``"pca"`` or ``"random"`` (``initialize``'s ``method``).

    Returns:
      ``(n, num_components)`` float32 embedding.

    Examples:
      >>> embed(jax.random.key(0), np.random.default_rng(0).normal(size=(80, 5)), num_steps=20).shape
      (80, 2)

    References:
      McInnes, Healy and Melville, "UMAP", arXiv:1802.03426, 2018.
    """
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2:
        raise InputError(f"umap.embed: x must be (n, d), got shape {x.shape}")
    n = x.shape[0]
    num_steps = (500 if n <= 10_000 else 200) if num_steps is None else num_steps
    a, b = find_ab(spread=spread, min_dist=min_dist)
    graph = fuzzy_graph(x, n_neighbors=min(n_neighbors, n))
    k_init, k_opt = jax.random.split(key)
    y0 = initialize(k_init, graph, num_components=num_components, method=initialization, x=x)
    return optimize(
        k_opt, graph, y0, num_steps=num_steps, a=a, b=b, negative_sample_rate=negative_sample_rate
    ).embedding
