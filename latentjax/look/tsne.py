"""t-SNE: ``affinities`` -> ``initialize`` -> ``optimize`` (``init``, then ``step`` on device).

``embed`` runs them all. The device kernels (FIt-SNE's FFT-interpolated repulsion) are in ``_fitsne``.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from latentjax.errors import InputError
from latentjax.look import _fitsne, neighbors, pca


class State(NamedTuple):
    """The state of t-SNE's gradient descent (``init``, ``step``, ``optimize``).

    Attributes:
      embedding: ``(n, 2)`` current positions (zero mean).
      update: ``(n, 2)`` last step, for momentum.
      gains: ``(n, 2)`` per-coordinate delta-bar-delta gains.
      step: scalar int32, steps done.
      graph: ``P`` laid out for the attraction by ``init`` (openTSNE's embedding carries it too).

    Examples:
      >>> s = init(affinities(jax.random.normal(jax.random.key(1), (30, 4)), perplexity=5.0), jnp.eye(30, 2))
      >>> s.gains.shape, s.graph.cols.shape[1]
      ((30, 2), 32)
    """

    embedding: jax.Array
    update: jax.Array
    gains: jax.Array
    step: jax.Array
    graph: _fitsne.Pieces


_gradient = jax.jit(_fitsne.forces, static_argnames=("method", "num_boxes"))
_step = jax.jit(_fitsne.update, static_argnames=("method", "num_boxes"))


def calibrate(distances: ArrayLike, *, perplexity: float, num_steps: int = 100) -> jax.Array:
    """Conditional probabilities ``p_{j|i}`` over each point's neighbours, at a target perplexity.

    Bisection on every ``beta_i`` at once: ``p_{.|i} ∝ exp(-beta_i d_ij^2)`` has entropy ``log(perplexity)``.

    Args:
      distances: ``(n, k)`` Euclidean distances to the k nearest neighbours.
      perplexity: target perplexity, in ``[1, k]``.
      num_steps: bisection steps (each halves the bracket once it is found).

    Returns:
      ``(n, k)`` float32 rows summing to one.

    Examples:
      >>> calibrate(jnp.ones((1, 4)), perplexity=2.0).round(3).tolist()
      [[0.25, 0.25, 0.25, 0.25]]

    References:
      van der Maaten and Hinton, "Visualizing Data using t-SNE", JMLR 9 (2008), Section 2.
    """
    d = jnp.asarray(distances, jnp.float32)
    if d.ndim != 2:
        raise InputError(f"tsne.calibrate: distances must be (n, k), got shape {d.shape}")
    if not 1.0 <= perplexity <= d.shape[1]:
        raise InputError(f"tsne.calibrate: perplexity={perplexity} must be in [1, k={d.shape[1]}]")
    return _fitsne.calibrate(d, float(perplexity), int(num_steps))


def affinities(x: ArrayLike, *, perplexity: float = 30.0, block_size: int = 1024) -> neighbors.Graph:
    """t-SNE's symmetric affinities from the ``3 * perplexity`` exact nearest neighbours.

    ``P = (P_cond + P_cond^T) / 2n`` with ``P_cond`` from ``calibrate`` (the two directions summed).

    Args:
      x: ``(n, d)`` data.
      perplexity: effective number of neighbours.
      block_size: query block of the neighbour search.

    Returns:
      ``neighbors.Graph`` whose weights ``p_ij`` sum to one.

    Examples:
      >>> p = affinities(jax.random.normal(jax.random.key(0), (50, 3)), perplexity=5.0)
      >>> round(float(p.weights.sum()), 4)
      1.0

    References:
      van der Maaten, "Accelerating t-SNE using tree-based algorithms", JMLR 15 (2014), Eq. 5.
    """
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2:
        raise InputError(f"tsne.affinities: x must be (n, d), got shape {x.shape}")
    n = x.shape[0]
    k = min(n - 1, int(3 * perplexity))
    if n < 3 or perplexity <= 0 or perplexity > k:
        raise InputError(
            f"tsne.affinities: perplexity={perplexity} needs more than {3 * perplexity:g} points, got {n}"
        )
    nb = neighbors.knn(x, k=k, block_size=block_size)
    p_cond = np.asarray(calibrate(nb.distances, perplexity=perplexity), np.float64)
    # Sparse P + P^T on the host: its number of edges depends on the data.
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    cols = np.asarray(nb.indices).ravel().astype(np.int64)
    keys = np.concatenate([rows * n + cols, cols * n + rows])
    uniq, inverse = np.unique(keys, return_inverse=True)
    summed = np.bincount(inverse, weights=np.concatenate([p_cond.ravel()] * 2), minlength=uniq.size)
    weights = jnp.asarray(summed / summed.sum(), jnp.float32)
    return neighbors.Graph(jnp.asarray(uniq // n, jnp.int32), jnp.asarray(uniq % n, jnp.int32), weights)


def initialize(key: jax.Array, x: ArrayLike, *, method: str = "pca", num_components: int = 2) -> jax.Array:
    """A starting embedding: PCA scaled to standard deviation 1e-4 (first axis), or such noise.

    Args:
      key: a ``jax.random.key`` (for ``"random"``, and the randomized PCA of wide data).
      x: ``(n, d)`` data.
      method: ``"pca"`` or ``"random"``.
      num_components: embedding dimension.

    Returns:
      ``(n, num_components)`` float32.

    Examples:
      >>> y0 = initialize(jax.random.key(0), jax.random.normal(jax.random.key(1), (100, 5)))
      >>> y0.shape, round(float(y0[:, 0].std()) * 1e4, 3)
      ((100, 2), 1.0)

    References:
      Kobak and Linderman, Nature Biotechnology 39 (2021); openTSNE's ``initialization.pca``.
    """
    if method not in ("pca", "random"):
        raise InputError(f"tsne.initialize: unknown method {method!r} (pca or random)")
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2:
        raise InputError(f"tsne.initialize: x must be (n, d), got shape {x.shape}")
    if method == "random":
        return 1e-4 * jax.random.normal(key, (x.shape[0], num_components), jnp.float32)
    if num_components > min(x.shape):
        raise InputError(f"tsne.initialize: {num_components} PCA components from data of shape {x.shape}")
    y = pca.transform(pca.fit(x, num_components=num_components, key=key), x)
    return y / jnp.std(y[:, 0]) * 1e-4


def _check(where, method, y):
    if method not in ("fft", "exact"):
        raise InputError(f"tsne.{where}: unknown method {method!r} (fft or exact)")
    if method == "fft" and y.shape[1] != 2:
        raise InputError(f"tsne.{where}: method='fft' needs a 2-D embedding, got shape {y.shape}")


def gradient(
    y: ArrayLike,
    affinities: neighbors.Graph,
    *,
    exaggeration: float = 1.0,
    method: str = "exact",
    num_boxes: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """The t-SNE gradient (without the constant factor 4, as openTSNE) and ``Z``.

    ``grad_i = exaggeration * sum_j p_ij q^u_ij (y_i - y_j) - sum_j (q^u_ij)^2 (y_i - y_j) / Z``.

    Args:
      y: ``(n, 2)`` embedding.
      affinities: ``P`` from ``affinities``.
      exaggeration: multiplies the attraction.
      method: ``"exact"`` or ``"fft"``.
      num_boxes: grid boxes per side for ``"fft"`` (default: from the extent, as ``optimize``).

    Returns:
      ``(gradient (n, 2), Z)``.

    Examples:
      >>> y = jax.random.normal(jax.random.key(0), (30, 2))
      >>> p = affinities(jax.random.normal(jax.random.key(1), (30, 4)), perplexity=5.0)
      >>> g_exact, g_fft = gradient(y, p)[0], gradient(y, p, method="fft")[0]
      >>> bool(jnp.linalg.norm(g_fft - g_exact) < 0.01 * jnp.linalg.norm(g_exact))
      True

    References:
      Linderman et al., "Fast interpolation-based t-SNE", Nature Methods 16 (2019), Eqs. 5-9.
    """
    y = jnp.asarray(y, jnp.float32)
    _check("gradient", method, y)
    if method == "fft" and num_boxes is None:
        num_boxes = _fitsne.num_boxes(float(jnp.ptp(y)), min_num_intervals=50, ints_in_interval=1.0)
    graph = _fitsne.pieces(affinities, y.shape[0])
    return _gradient(y, graph, exaggeration, method=method, num_boxes=num_boxes)


def init(affinities: neighbors.Graph, y0: ArrayLike) -> State:
    """The optimiser's state at ``y0`` (centred): zero update, unit gains, ``P`` prepared.

    Args:
      affinities: ``P`` from ``affinities``.
      y0: ``(n, 2)`` initial embedding (``initialize``).

    Returns:
      The ``State`` at step 0.

    Examples:
      >>> s = init(affinities(jax.random.normal(jax.random.key(1), (30, 4)), perplexity=5.0), jnp.eye(30, 2))
      >>> s.embedding.shape, int(s.step)
      ((30, 2), 0)
    """
    y0 = jnp.asarray(y0, jnp.float32)
    if y0.ndim != 2:
        raise InputError(f"tsne.init: y0 must be (n, num_components), got shape {y0.shape}")
    y0 = y0 - jnp.mean(y0, axis=0, keepdims=True)
    graph = _fitsne.pieces(affinities, y0.shape[0])
    return State(y0, jnp.zeros_like(y0), jnp.ones_like(y0), jnp.zeros((), jnp.int32), graph)


def step(
    state: State,
    *,
    learning_rate: float,
    exaggeration: float,
    momentum: float,
    method: str = "fft",
    num_boxes: int = 50,
    min_gain: float = 0.01,
    max_step_norm: float | None = 5.0,
) -> State:
    """One step of gradient descent with momentum and delta-bar-delta gains (openTSNE's).

    Args:
      state: from ``init`` or an earlier ``step``.
      learning_rate: this step's learning rate.
      exaggeration: this step's attraction factor.
      momentum: this step's momentum.
      method: ``"fft"`` or ``"exact"`` repulsion.
      num_boxes: grid boxes per side for ``"fft"``.
      min_gain: floor added to shrinking gains.
      max_step_norm: clip each point's step to this length; None disables.

    Returns:
      The next ``State``.

    Examples:
      >>> s = init(affinities(jax.random.normal(jax.random.key(1), (30, 4)), perplexity=5.0), jnp.eye(30, 2))
      >>> int(step(s, learning_rate=10.0, exaggeration=1.0, momentum=0.5).step)
      1
    """
    _check("step", method, state.embedding)
    max_norm = jnp.inf if max_step_norm is None else max_step_norm
    hyper = (learning_rate, exaggeration, momentum, min_gain, max_norm)
    moving = _step(state[:4], state.graph, *hyper, method=method, num_boxes=num_boxes)
    return State(*moving, state.graph)


def optimize(
    affinities: neighbors.Graph,
    y0: ArrayLike,
    *,
    num_steps: int = 750,
    early_exaggeration_steps: int = 250,
    early_exaggeration: float = 12.0,
    exaggeration: float = 1.0,
    learning_rate: float | str = "auto",
    initial_momentum: float = 0.8,
    final_momentum: float = 0.8,
    min_gain: float = 0.01,
    max_step_norm: float | None = 5.0,
    method: str = "fft",
    chunk_size: int = 50,
    min_num_intervals: int = 50,
    ints_in_interval: float = 1.0,
    state: State | None = None,
) -> State:
    """Run t-SNE's gradient descent: early exaggeration, then the normal phase.

    The loop runs on device in ``fori_loop`` chunks of ``chunk_size`` steps; between chunks the
    FFT grid is re-sized to the embedding's extent (from a short list of sizes: few compilations).

    Args:
      affinities: ``P`` from ``affinities``.
      y0: ``(n, 2)`` initial embedding (``initialize``).
      num_steps: all steps, early ones included (openTSNE's ``n_iter + early_exaggeration_iter``).
      early_exaggeration_steps: the first phase's steps (openTSNE's ``early_exaggeration_iter``).
      early_exaggeration: attraction factor of the first phase.
      exaggeration: attraction factor of the normal phase.
      learning_rate: a float, or ``"auto"``: ``max(n / exaggeration, 50)`` in each phase (openTSNE).
      initial_momentum: momentum of the first phase (openTSNE 1.0: 0.8).
      final_momentum: momentum of the normal phase (openTSNE 1.0: 0.8).
      min_gain: floor added to shrinking gains.
      max_step_norm: clip each point's step to this length (openTSNE: 5); None disables.
      method: ``"fft"`` (FIt-SNE interpolation) or ``"exact"`` (blockwise O(n^2)).
      chunk_size: steps per compiled device loop.
      min_num_intervals: least FFT grid boxes per side (openTSNE's default).
      ints_in_interval: embedding units per box (openTSNE's default).
      state: continue from this ``State`` (graph, gains, momentum) instead of ``init(affinities, y0)``.

    Returns:
      The final ``State``; ``state.embedding`` is the ``(n, 2)`` map.

    Examples:
      >>> x = jax.random.normal(jax.random.key(0), (60, 5))
      >>> p, y0 = affinities(x, perplexity=10.0), initialize(jax.random.key(1), x)
      >>> s = optimize(p, y0, num_steps=20, early_exaggeration_steps=10)
      >>> s.embedding.shape, int(s.step)
      ((60, 2), 20)

    References:
      Linderman et al., Nature Methods 16 (2019); Belkina et al., Nature Communications 10 (2019)
      (learning rate); Policar et al., "openTSNE", JMLR 25 (2024).
    """
    st = init(affinities, y0) if state is None else state
    _check("optimize", method, st.embedding)
    if not 0 <= (early := early_exaggeration_steps) <= num_steps:
        raise InputError(f"tsne.optimize: early_exaggeration_steps={early} not in [0, num_steps={num_steps}]")
    n = st.embedding.shape[0]
    max_norm = jnp.inf if max_step_norm is None else max_step_norm

    def phase(st, num, exag, momentum):
        lr = max(n / exag, 50.0) if learning_rate == "auto" else float(learning_rate)
        hyper = tuple(jnp.float32(v) for v in (lr, exag, momentum, min_gain, max_norm))
        grid = {"min_num_intervals": min_num_intervals, "ints_in_interval": ints_in_interval}
        moving = _fitsne.run(
            st[:4], st.graph, hyper, num_steps=num, method=method, chunk_size=chunk_size, **grid
        )
        return State(*moving, st.graph)

    st = phase(st, early, early_exaggeration, initial_momentum)
    return phase(st, num_steps - early, exaggeration, final_momentum)


def embed(
    key: jax.Array,
    x: ArrayLike,
    *,
    perplexity: float = 30.0,
    num_steps: int = 750,
    early_exaggeration_steps: int | None = None,
    learning_rate: float | str = "auto",
    method: str = "fft",
    initialization: str = "pca",
) -> jax.Array:
    """t-SNE of ``x`` into 2-D: ``affinities`` -> ``initialize`` -> ``optimize``.

    Args:
      key: a ``jax.random.key`` (initialisation).
      x: ``(n, d)`` data.
      perplexity: effective number of neighbours.
      num_steps: all steps (openTSNE's ``n_iter + early_exaggeration_iter``); the other knobs of
        ``optimize`` keep their defaults (call the stages to change them).
      early_exaggeration_steps: the first phase's steps; None means ``min(250, num_steps)``.
      learning_rate: a float, or ``"auto"`` (see ``optimize``).
      method: repulsion, ``"fft"`` or ``"exact"``.
      initialization: ``"pca"`` or ``"random"`` (``initialize``'s ``method``).

    Returns:
      ``(n, 2)`` float32 embedding.

    Examples:
      >>> x = jax.random.normal(jax.random.key(1), (60, 5))
      >>> embed(jax.random.key(0), x, perplexity=10.0, num_steps=30).shape
      (60, 2)

    References:
      van der Maaten and Hinton, JMLR 9 (2008); Linderman et al., Nature Methods 16 (2019).
    """
    p = affinities(x, perplexity=perplexity)
    y0 = initialize(key, x, method=initialization)
    early = min(250, num_steps) if early_exaggeration_steps is None else early_exaggeration_steps
    return optimize(
        p,
        y0,
        num_steps=num_steps,
        early_exaggeration_steps=early,
        learning_rate=learning_rate,
        method=method,
    ).embedding


def kl_divergence(affinities: neighbors.Graph, y: ArrayLike) -> jax.Array:
    """``KL(P || Q)``, exact ``Z``: t-SNE's objective; one ``P`` compares maps of any implementation.

    Args:
      affinities: ``P`` from ``affinities``.
      y: ``(n, e)`` embedding.

    Returns:
      Scalar float32 (nats).

    Examples:
      >>> x = jax.random.normal(jax.random.key(0), (40, 3))
      >>> float(kl_divergence(affinities(x, perplexity=5.0), x[:, :2])) > 0
      True

    References:
      van der Maaten and Hinton, JMLR 9 (2008), Eq. 2.
    """
    y = jnp.asarray(y, jnp.float32)
    if y.ndim != 2 or affinities.num_points > y.shape[0]:
        raise InputError(f"tsne.kl_divergence: y of shape {y.shape} does not match the affinities")
    return _fitsne.kl(y, affinities.rows, affinities.cols, affinities.weights)
