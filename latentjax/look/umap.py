"""UMAP: ``fuzzy_graph`` -> ``initialize`` -> ``optimize`` (``init``, then ``step`` on device).

``embed`` runs them all. The graph (``calibrate``, ``fuzzy_graph``, ``supervise``: labels mixed in
as umap-learn's ``fit(x, y)``) is in ``_umap_graph``; the device kernels (calibration, the
negative-sampling layout step and its sampling ``Schedule``) are in ``_umap_kernels``; the layout
in chunks with a progress bar in ``_umap_progress``.

dtypes: every function keeps its input's float dtype (float64 stays float64 when JAX's x64 is
enabled; integers and float16 become float32).
"""

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.look import _umap_kernels, _umap_progress, neighbors, pca
from latentjax.look._dimred_args import float_dtype, positive
from latentjax.look._umap_graph import APPROXIMATE_ABOVE as APPROXIMATE_ABOVE
from latentjax.look._umap_graph import Calibration as Calibration
from latentjax.look._umap_graph import _from_knn, graph_knn
from latentjax.look._umap_graph import calibrate as calibrate
from latentjax.look._umap_graph import fuzzy_graph as fuzzy_graph
from latentjax.look._umap_graph import fuzzy_graph_from_knn as fuzzy_graph_from_knn
from latentjax.look._umap_graph import supervise as supervise


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
    where = "look.umap.find_ab"
    spread = positive(spread, "spread", where=where)
    min_dist = positive(min_dist, "min_dist", where=where, inclusive=True)
    if min_dist > spread:
        raise InputError(f"{where}: min_dist must be <= spread = {spread:g}, got {min_dist:g}")
    xv = np.linspace(0, spread * 3, 300)
    yv = np.where(xv < min_dist, 1.0, np.exp(-(xv - min_dist) / spread))
    (a, b), _ = scipy.optimize.curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b)), xv, yv)
    return float(a), float(b)


def _graph(graph, where) -> int:
    """``n`` of a concrete, valid fuzzy ``graph`` (``neighbors.Graph``, weights finite and > 0)."""
    if not isinstance(graph, neighbors.Graph):
        raise InputError(f"{where}: graph must be a neighbors.Graph (umap.fuzzy_graph), got {type(graph)}")
    rows, cols = np.asarray(graph.rows), np.asarray(graph.cols)
    w = _checks.array(np.asarray(graph.weights), "graph.weights", where=where, ndim=1)
    if not rows.shape == cols.shape == w.shape or not rows.size:
        raise InputError(f"{where}: graph rows, cols and weights must be non-empty vectors of one length")
    if min(rows.min(), cols.min()) < 0 or np.any(w <= 0):
        raise InputError(f"{where}: graph needs indices >= 0 and weights > 0")
    return int(max(rows.max(), cols.max())) + 1


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
      x: ``(n, d)`` the data, for the PCA initialisation.

    Returns:
      ``(n, num_components)`` positions, in ``x``'s float dtype (without ``x``: the graph's).

    Raises:
      InputError: an unknown ``method``; ``"pca"`` without ``x``; ``x`` not 2-D with ``n`` rows or
        with NaN/inf; ``graph`` not a valid ``neighbors.Graph``.

    Examples:
      >>> g = fuzzy_graph(np.random.default_rng(0).normal(size=(60, 4)), n_neighbors=8)
      >>> y = initialize(jax.random.key(0), g)
      >>> y.shape, float(y.min()) >= 0, float(y.max()) <= 10
      ((60, 2), True, True)

    References:
      umap-learn's ``spectral_layout`` and ``simplicial_set_embedding``.
    """
    where = "look.umap.initialize"
    n = _graph(graph, where)
    if method not in ("spectral", "pca", "random"):
        raise InputError(f"{where}: method must be 'spectral', 'pca' or 'random', got {method!r}")
    if method == "pca" and x is None:
        raise InputError(f"{where}: method='pca' needs the data x")
    num_components = _checks.index(num_components, "num_components", where=where, minimum=1)
    dtype = float_dtype(graph.weights.dtype)
    if x is not None:
        x = _checks.array(x, "x", where=where, ndim=2)
        if x.shape[0] != n:
            raise InputError(f"{where}: x has {x.shape[0]} rows but the graph has {n} points")
        dtype = float_dtype(x.dtype)
    k_noise, k_random = jax.random.split(key)
    y = None
    if method == "spectral":
        y = neighbors.laplacian_eigenmaps(graph, num_components=num_components)
        if y is None:
            method = "pca" if x is not None else "random"
            warnings.warn(
                f"{where}: spectral initialisation impossible (disconnected graph); using {method}",
                stacklevel=2,
            )
    if method == "pca":
        xa = jnp.asarray(x, dtype)
        y = np.asarray(pca.transform(pca.fit(xa, num_components=num_components), xa), np.float64)
    if method == "random":
        return jax.random.uniform(k_random, (n, num_components), dtype, 0.0, 10.0)
    # umap-learn: scale to max |coordinate| 10, add tiny jitter, then rescale each axis to [0, 10].
    y = 10.0 * y / np.abs(y).max()
    y = y + 1e-4 * np.asarray(jax.random.normal(k_noise, y.shape), np.float64)
    y = 10.0 * (y - y.min(axis=0)) / (y.max(axis=0) - y.min(axis=0))
    return jnp.asarray(y, dtype)


class State(NamedTuple):
    """The layout during optimisation (``init``, ``step``, ``optimize``).

    Attributes:
      embedding: ``(n, num_components)`` positions (``y0``'s float dtype).
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
      y0: ``(n, num_components)`` initial positions (``initialize``), finite.
      num_steps: steps the layout will run (the schedule keeps edges that fire at least once).
      negative_sample_rate: negative samples per firing edge.

    Returns:
      The ``State``.

    Raises:
      InputError: ``y0`` not ``(n, num_components)`` or with NaN/inf; ``graph`` not a valid
        ``neighbors.Graph``; ``num_steps < 1`` or ``negative_sample_rate < 0``.

    Examples:
      >>> g = fuzzy_graph(np.random.default_rng(0).normal(size=(60, 4)), n_neighbors=8)
      >>> s = init(jax.random.key(1), g, initialize(jax.random.key(0), g), num_steps=50)
      >>> s.embedding.shape, int(s.step)
      ((60, 2), 0)
    """
    return _init(key, graph, y0, num_steps, negative_sample_rate, where="look.umap.init")


def _init(key, graph, y0, num_steps, negative_sample_rate, *, where):
    n = _graph(graph, where)
    y0 = _checks.array(y0, "y0", where=where, ndim=2)
    if y0.shape[0] != n:
        raise InputError(f"{where}: y0 must be ({n}, num_components), got shape {tuple(y0.shape)}")
    y0 = jnp.asarray(y0, float_dtype(y0.dtype))
    num_steps = _checks.index(num_steps, "num_steps", where=where, minimum=1)
    negative_sample_rate = _checks.index(negative_sample_rate, "negative_sample_rate", where=where, minimum=0)
    sched = _umap_kernels.schedule(graph, num_steps=num_steps, negative_sample_rate=negative_sample_rate)
    return State(y0, jnp.zeros((), jnp.int32), key, sched)


def step(
    state: State, *, a: float, b: float, num_steps: int, gamma: float = 1.0, learning_rate: float = 1.0
) -> State:
    """One epoch of UMAP's stochastic layout: each vertex an SGD walk against the epoch's start.

    Each vertex moves along each of its edges that fire, then away from that edge's share of its
    negative samples (umap-learn's order), each step from where the last left it, against the
    others' positions at the epoch's start (so the vertices are independent: parallel and
    deterministic). The same expected gradient as umap-learn's (details in
    ``_umap_kernels.layout_step``); the learning rate decays to 0.

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
    hyper = tuple(jnp.asarray(v, state.embedding.dtype) for v in (a, b, gamma, learning_rate))
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
    progress=False,
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
      progress: False (off), True (a tqdm bar over the epochs on stderr) or ``progress(step,
        info)``, ``info`` a dict with ``num_steps`` and ``embedding``; called every 10 epochs
        from the host, between device loops of the same steps (the result is the same).

    Returns:
      The final ``State``; ``state.embedding`` is the ``(n, num_components)`` layout.

    Raises:
      InputError: as ``init``.

    Examples:
      >>> g = fuzzy_graph(np.random.default_rng(0).normal(size=(60, 4)), n_neighbors=8)
      >>> y0 = initialize(jax.random.key(0), g)
      >>> optimize(jax.random.key(1), g, y0, num_steps=50, a=1.58, b=0.9).embedding.shape
      (60, 2)

    References:
      McInnes et al., "UMAP", arXiv:1802.03426, algorithm 5; umap-learn's ``optimize_layout_euclidean``.
    """
    where = "look.umap.optimize"
    report = _umap_progress.callback(progress, where=where)
    state = _init(key, graph, y0, num_steps, negative_sample_rate, where=where)
    hyper = tuple(jnp.asarray(v, state.embedding.dtype) for v in (a, b, gamma, learning_rate))
    args = (state.embedding.T, state.step, state.key, state.schedule, *hyper)
    if report is None:
        yt, count = _umap_kernels.run(*args, num_steps=int(num_steps))
    else:
        yt, count = _umap_progress.run(*args, num_steps=int(num_steps), report=report)
    return state._replace(embedding=yt.T, step=count)


def default_num_steps(n: int) -> int:
    """Layout epochs when none are given: 500 up to 10,000 points (umap-learn's), 300 beyond.

    umap-learn runs 200 beyond 10,000 points. Its SGD moves every point edge by edge against the
    others' latest positions; here each point moves against the others' positions at the epoch's
    start (deterministic and parallel), which gains a little less per epoch. At all 70,000
    Fashion-MNIST PCA-50 points, trustworthiness over three seeds (umap-learn, 200 epochs:
    0.9812-0.9834): 200 epochs 0.9780-0.9816, 250: 0.9801-0.9816, 300: 0.9812-0.9828
    (``benchmarks/README.md``); 100 epochs cost about 0.7 s there.

    Examples:
      >>> default_num_steps(10_000), default_num_steps(10_001)
      (500, 300)
    """
    return 500 if n <= 10_000 else 300


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
    labels: ArrayLike | None = None,
    target_weight: float = 0.5,
    progress=False,
    knn_method: str = "auto",
) -> jax.Array:
    """UMAP of ``x`` with umap-learn's defaults: graph, initialisation, layout.

    Args:
      key: a ``jax.random.key`` (initial jitter and negative samples).
      x: ``(n, d)`` data, finite.
      n_neighbors: neighbourhood size, counting the point itself, in ``[2, n]``.
      min_dist: how tightly points may pack (``find_ab``).
      spread: scale of the embedded points (``find_ab``).
      num_steps: layout steps (umap-learn's ``n_epochs``); None: ``default_num_steps(n)``.
      num_components: embedding dimension.
      negative_sample_rate: negative samples per firing edge.
      initialization: ``"spectral"``, ``"pca"`` or ``"random"`` (``initialize``'s ``method``).
      labels: ``(n,)`` integer classes (-1: unknown) for supervised UMAP (``supervise``, as
        umap-learn's ``fit(x, y)``), or None.
      target_weight: the labels' weight in ``[0, 1]`` (umap-learn's default 0.5).
      progress: a bar over the epochs, or a callable (see ``optimize``); off by default.
      knn_method: the neighbour search, as ``fuzzy_graph``'s; ``"auto"`` (the default) is exact
        up to ``APPROXIMATE_ABOVE`` points and approximate beyond (its key from ``key``).

    Returns:
      ``(n, num_components)`` embedding in ``x``'s float dtype. Translating ``x`` leaves it
      unchanged; scaling ``x`` too, up to the graph's calibration tolerance.

    Raises:
      InputError: ``x`` not a 2-D real array or with NaN/inf; ``n_neighbors`` out of range; the
        other arguments as in ``find_ab``, ``initialize`` and ``optimize``.

    Examples:
      >>> embed(jax.random.key(0), np.random.default_rng(0).normal(size=(80, 5)), num_steps=20).shape
      (80, 2)

    References:
      McInnes, Healy and Melville, "UMAP", arXiv:1802.03426, 2018.
    """
    where = "look.umap.embed"
    x = _checks.array(x, "x", where=where, ndim=2)
    n = x.shape[0]
    num_steps = default_num_steps(n) if num_steps is None else num_steps
    a, b = find_ab(spread=spread, min_dist=min_dist)
    idx, dist = graph_knn(x, n_neighbors, knn_method=knn_method, key=jax.random.fold_in(key, 2), where=where)
    graph = _from_knn(idx, dist, n_neighbors, where=where)
    if labels is not None:
        graph = supervise(graph, _labels(labels, n, where), target_weight=target_weight)
    k_init, k_opt = jax.random.split(key)
    y0 = initialize(k_init, graph, num_components=num_components, method=initialization, x=x)
    return optimize(
        k_opt,
        graph,
        y0,
        num_steps=num_steps,
        a=a,
        b=b,
        negative_sample_rate=negative_sample_rate,
        progress=progress,
    ).embedding


def _labels(labels, n, where):
    """Supervision labels: ``(n,)`` integers, -1 for unknown."""
    y = np.asarray(labels)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or (n and y.min() < -1):
        raise InputError(
            f"{where}: labels must be ({n},) integers >= -1 (-1: unknown), got {y.dtype} {y.shape}"
        )
    return y
