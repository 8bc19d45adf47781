"""t-SNE: ``affinities`` -> ``initialize`` -> ``optimize`` (``init``, then ``step`` on device).

``embed`` runs them all. ``calibrate`` and ``affinities`` live in ``_tsne_affinities``; the device
kernels in ``_fitsne`` (FIt-SNE's FFT-interpolated repulsion in ``_fitsne_grid``); ``kl_divergence``
and the progress report in ``_tsne_kl``. Maps of any dimension use the exact repulsion; the FFT
grid is 2-D (as openTSNE's).

dtypes: every function keeps its input's float dtype (float64 stays float64 when JAX's x64 is
enabled; integers and float16 become float32).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.look import _fitsne, _tsne_kl, neighbors, pca
from latentjax.look._dimred_args import float_dtype, positive
from latentjax.look._tsne_affinities import APPROXIMATE_ABOVE as APPROXIMATE_ABOVE
from latentjax.look._tsne_affinities import _affinities
from latentjax.look._tsne_affinities import affinities as affinities
from latentjax.look._tsne_affinities import calibrate as calibrate
from latentjax.look._tsne_kl import kl_divergence as kl_divergence


class State(NamedTuple):
    """The state of t-SNE's gradient descent (``init``, ``step``, ``optimize``).

    Attributes:
      embedding: ``(n, e)`` current positions (zero mean).
      update: ``(n, e)`` last step, for momentum.
      gains: ``(n, e)`` per-coordinate delta-bar-delta gains.
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


def initialize(key: jax.Array, x: ArrayLike, *, method: str = "pca", num_components: int = 2) -> jax.Array:
    """A starting embedding: PCA scaled to standard deviation 1e-4 (first axis), or such noise.

    Args:
      key: a ``jax.random.key`` (for ``"random"``, and the randomized PCA of wide data).
      x: ``(n, d)`` data, finite.
      method: ``"pca"`` or ``"random"``.
      num_components: embedding dimension.

    Returns:
      ``(n, num_components)`` in ``x``'s float dtype.

    Raises:
      InputError: ``x`` not a 2-D real array or with NaN/inf; an unknown ``method``; more PCA
        components than ``min(x.shape)``.

    Examples:
      >>> y0 = initialize(jax.random.key(0), jax.random.normal(jax.random.key(1), (100, 5)))
      >>> y0.shape, round(float(y0[:, 0].std()) * 1e4, 3)
      ((100, 2), 1.0)

    References:
      Kobak and Linderman, Nature Biotechnology 39 (2021); openTSNE's ``initialization.pca``.
    """
    where = "look.tsne.initialize"
    if method not in ("pca", "random"):
        raise InputError(f"{where}: method must be 'pca' or 'random', got {method!r}")
    x = _checks.array(x, "x", where=where, ndim=2)
    num_components = _checks.index(num_components, "num_components", where=where, minimum=1)
    dtype = float_dtype(x.dtype)
    if method == "random":
        return 1e-4 * jax.random.normal(key, (x.shape[0], num_components), dtype)
    if num_components > min(x.shape):
        raise InputError(
            f"{where}: num_components={num_components} PCA components from x of shape {tuple(x.shape)}"
        )
    x = jnp.asarray(x, dtype)
    y = jnp.asarray(pca.transform(pca.fit(x, num_components=num_components, key=key), x), dtype)
    return y / jnp.std(y[:, 0]) * 1e-4


def _method(where, method, y):
    if method not in ("fft", "exact"):
        raise InputError(f"{where}: method must be 'fft' or 'exact', got {method!r}")
    if method == "fft" and y.shape[1] != 2:
        raise InputError(f"{where}: method='fft' needs a 2-D embedding, got shape {tuple(y.shape)}")


def _embedding(y, name, where):
    """``y`` validated (2-D, finite when concrete) as a JAX array of its float dtype."""
    y = _checks.array(y, name, where=where, ndim=2)
    return jnp.asarray(y, float_dtype(y.dtype))


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

    Jittable, also with ``affinities`` as an argument of the ``jit`` (then laid out on device).

    Args:
      y: ``(n, e)`` embedding (``e = 2`` for ``"fft"``).
      affinities: ``P`` from ``affinities``, on ``n`` points.
      exaggeration: multiplies the attraction (may be traced).
      method: ``"exact"`` or ``"fft"``.
      num_boxes: grid boxes per side for ``"fft"``. None: the first of 50, 100, 200, 400, 800
        boxes no wider than 1 (openTSNE's rule), among those cheaper than the exact sum
        (``12 * boxes <= n``); when none is, the exact sum. The choice is made on device, so the
        jitted and eager gradients agree.

    Returns:
      ``(gradient (n, e), Z)`` in ``y``'s float dtype.

    Raises:
      InputError: ``y`` not 2-D or (when concrete) with NaN/inf; ``affinities`` not a
        ``neighbors.Graph``, or (when concrete) with NaN/inf weights or indices out of ``[0, n)``;
        an unknown ``method``; ``"fft"`` for an embedding that is not 2-D.

    Examples:
      >>> y = jax.random.normal(jax.random.key(0), (600, 2))
      >>> p = affinities(jax.random.normal(jax.random.key(1), (600, 4)), perplexity=5.0)
      >>> g_exact, g_fft = gradient(y, p)[0], gradient(y, p, method="fft")[0]
      >>> bool(jnp.linalg.norm(g_fft - g_exact) < 0.01 * jnp.linalg.norm(g_exact))
      True
      >>> bool(jnp.allclose(jax.jit(gradient)(y, p)[0], g_exact, rtol=1e-5, atol=1e-7))
      True

    References:
      Linderman et al., "Fast interpolation-based t-SNE", Nature Methods 16 (2019), Eqs. 5-9.
    """
    where = "look.tsne.gradient"
    y = _embedding(y, "y", where)
    _method(where, method, y)
    if jnp.ndim(exaggeration) != 0:
        raise InputError(f"{where}: exaggeration must be a scalar, got shape {jnp.shape(exaggeration)}")
    _checks.finite(exaggeration, "exaggeration", where=where)
    graph = _fitsne.pieces(affinities, y.shape[0], where=where, dtype=y.dtype)
    if method == "fft" and num_boxes is None:
        num_boxes = _fitsne.gradient_grids(y.shape[0])
        if not _checks.is_traced(y):
            i = int(_fitsne.grid_choice(y, num_boxes))
            method, num_boxes = ("fft", num_boxes[i]) if i < len(num_boxes) else ("exact", None)
    elif method == "fft":
        num_boxes = _checks.index(num_boxes, "num_boxes", where=where, minimum=1)
    return _gradient(y, graph, exaggeration, method=method, num_boxes=num_boxes)


def init(affinities: neighbors.Graph, y0: ArrayLike) -> State:
    """The optimiser's state at ``y0`` (centred): zero update, unit gains, ``P`` prepared.

    Args:
      affinities: ``P`` from ``affinities``.
      y0: ``(n, e)`` initial embedding (``initialize``), finite.

    Returns:
      The ``State`` at step 0, in ``y0``'s float dtype.

    Raises:
      InputError: ``y0`` not 2-D or with NaN/inf; ``affinities`` not a ``neighbors.Graph`` on
        ``n`` points.

    Examples:
      >>> s = init(affinities(jax.random.normal(jax.random.key(1), (30, 4)), perplexity=5.0), jnp.eye(30, 2))
      >>> s.embedding.shape, int(s.step)
      ((30, 2), 0)
    """
    where = "look.tsne.init"
    y0 = _embedding(y0, "y0", where)
    y0 = y0 - jnp.mean(y0, axis=0, keepdims=True)
    graph = _fitsne.pieces(affinities, y0.shape[0], where=where, dtype=y0.dtype)
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
    _method("look.tsne.step", method, state.embedding)
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
    progress=False,
) -> State:
    """Run t-SNE's gradient descent: early exaggeration, then the normal phase.

    The loop runs on device in ``fori_loop`` chunks of ``chunk_size`` steps; between chunks the
    FFT grid is re-sized to the embedding's extent (from a short list of sizes: few compilations).

    Args:
      affinities: ``P`` from ``affinities``.
      y0: ``(n, e)`` initial embedding (``initialize``).
      num_steps: all steps, early ones included (openTSNE's ``n_iter + early_exaggeration_iter``).
      early_exaggeration_steps: the first phase's steps (openTSNE's ``early_exaggeration_iter``).
      early_exaggeration: attraction factor of the first phase.
      exaggeration: attraction factor of the normal phase.
      learning_rate: a float, or ``"auto"``: ``max(n / exaggeration, 50)`` in each phase, openTSNE's
        ``n / exaggeration`` (Belkina et al.) with a floor for small ``n``.
      initial_momentum: momentum of the first phase (openTSNE 1.0: 0.8).
      final_momentum: momentum of the normal phase (openTSNE 1.0: 0.8).
      min_gain: floor added to shrinking gains.
      max_step_norm: clip each point's step to this length (openTSNE: 5); None disables.
      method: ``"fft"`` (FIt-SNE interpolation) or ``"exact"`` (blockwise O(n^2)).
      chunk_size: steps per compiled device loop.
      min_num_intervals: least FFT grid boxes per side (openTSNE's default).
      ints_in_interval: embedding units per box (openTSNE's default).
      state: continue from this ``State`` (graph, gains, momentum) instead of ``init(affinities, y0)``.
      progress: after each chunk, the KL divergence (``Z`` from the optimiser's repulsion): False
        (off), True (a line on stderr) or ``progress(step, info)``, ``info`` a dict with ``kl``,
        ``num_steps``, ``seconds`` and ``embedding``. The device loop is the same either way.

    Returns:
      The final ``State``; ``state.embedding`` is the ``(n, e)`` map, in ``y0``'s float dtype.

    Raises:
      InputError: as ``init``; an unknown ``method``; step counts that are not integers with
        ``0 <= early_exaggeration_steps <= num_steps``; a ``learning_rate`` that is neither
        ``"auto"`` nor a positive number.

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
    where = "look.tsne.optimize"
    st = init(affinities, y0) if state is None else state
    _method(where, method, st.embedding)
    num_steps = _checks.index(num_steps, "num_steps", where=where, minimum=0)
    early = _checks.index(early_exaggeration_steps, "early_exaggeration_steps", where=where, minimum=0)
    if early > num_steps:
        raise InputError(f"{where}: early_exaggeration_steps={early} not in [0, num_steps={num_steps}]")
    if learning_rate != "auto":
        learning_rate = positive(learning_rate, "learning_rate", where=where)
    n, dtype = st.embedding.shape[0], st.embedding.dtype
    max_norm = jnp.inf if max_step_norm is None else max_step_norm
    report = _tsne_kl.reporter(
        progress, st.graph, num_steps=int(st.step) + num_steps, method=method, where=where
    )

    def phase(st, num, exag, momentum):
        lr = max(n / exag, 50.0) if learning_rate == "auto" else learning_rate
        hyper = tuple(jnp.asarray(v, dtype) for v in (lr, exag, momentum, min_gain, max_norm))
        grid = {"min_num_intervals": min_num_intervals, "ints_in_interval": ints_in_interval}
        moving = _fitsne.run(
            st[:4],
            st.graph,
            hyper,
            num_steps=num,
            method=method,
            chunk_size=chunk_size,
            callback=report,
            **grid,
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
    num_components: int = 2,
    progress=False,
    knn_method: str = "auto",
) -> jax.Array:
    """t-SNE of ``x``: ``affinities`` -> ``initialize`` -> ``optimize``.

    Translating or scaling ``x`` leaves the result unchanged (beyond the rounding of ``x`` itself).

    Args:
      key: a ``jax.random.key`` (initialisation).
      x: ``(n, d)`` data, finite.
      perplexity: effective number of neighbours, in ``[1, n - 1]``.
      num_steps: all steps (openTSNE's ``n_iter + early_exaggeration_iter``); the other knobs of
        ``optimize`` keep their defaults (call the stages to change them).
      early_exaggeration_steps: the first phase's steps; None means ``min(250, num_steps)``.
      learning_rate: a float, or ``"auto"`` (see ``optimize``).
      method: repulsion, ``"fft"`` (2-D maps) or ``"exact"`` (any ``num_components``).
      initialization: ``"pca"`` or ``"random"`` (``initialize``'s ``method``).
      num_components: the map's dimension (3: ``method="exact"``, O(n^2) per step).
      progress: the KL divergence every 50 steps (see ``optimize``); off by default.
      knn_method: the neighbour search (``affinities``'); ``"auto"``: exact up to
        ``APPROXIMATE_ABOVE`` points, approximate beyond (its key from ``key``).

    Returns:
      ``(n, num_components)`` embedding in ``x``'s float dtype.

    Raises:
      InputError: ``x`` not a 2-D real array or with NaN/inf; ``perplexity`` out of range; the
        other arguments as in ``optimize``.

    Examples:
      >>> x = jax.random.normal(jax.random.key(1), (60, 5))
      >>> embed(jax.random.key(0), x, perplexity=10.0, num_steps=30).shape
      (60, 2)

    References:
      van der Maaten and Hinton, JMLR 9 (2008); Linderman et al., Nature Methods 16 (2019).
    """
    where = "look.tsne.embed"
    num_components = _checks.index(num_components, "num_components", where=where, minimum=1)
    _method(where, method, jnp.zeros((0, num_components)))
    num_steps = _checks.index(num_steps, "num_steps", where=where, minimum=0)
    knn_key = jax.random.fold_in(key, 2)
    p = _affinities(x, perplexity=perplexity, where=where, knn_method=knn_method, key=knn_key)
    y0 = initialize(key, x, method=initialization, num_components=num_components)
    early = min(250, num_steps) if early_exaggeration_steps is None else early_exaggeration_steps
    return optimize(
        p,
        y0,
        num_steps=num_steps,
        early_exaggeration_steps=early,
        learning_rate=learning_rate,
        method=method,
        progress=progress,
    ).embedding
