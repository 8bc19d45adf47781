"""Fitted t-SNE and UMAP maps: fit, ``transform``, ``inverse_transform``, ``save`` and ``load``.

``transform`` places new points into a fitted map with only them moving against the fixed
reference (openTSNE's method for t-SNE, umap-learn's for UMAP); ``inverse_transform`` maps 2-D
points back to the input space (umap-learn's method, for both). The kernels are in
``_tsne_transform``, ``_umap_transform`` and ``_inverse``; the map types and files in ``_map_store``.
"""

import inspect

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.look import _inverse, _tsne_transform, _umap_transform, neighbors, parametric, tsne, umap
from latentjax.look._dimred_args import float_dtype, positive
from latentjax.look._map_store import TSNEMap as TSNEMap
from latentjax.look._map_store import UMAPMap as UMAPMap
from latentjax.look._map_store import load as load
from latentjax.look._map_store import save as save
from latentjax.look._parametric_net import ParametricMap as ParametricMap

# Parametric maps (an MLP encoder, optional decoder): transform/inverse_transform/save/load take them too.
fit_parametric_umap = parametric.fit_umap
fit_parametric_tsne = parametric.fit_tsne


def fit_tsne(
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
) -> TSNEMap:
    """``tsne.embed`` of ``x``, kept with its inputs as a map that new points can be placed into.

    Args:
      key: a ``jax.random.key``.
      x: ``(n, d)`` data, finite.
      perplexity: as ``tsne.embed``.
      num_steps: as ``tsne.embed``.
      early_exaggeration_steps: as ``tsne.embed``.
      learning_rate: as ``tsne.embed``.
      method: as ``tsne.embed``.
      initialization: as ``tsne.embed``.
      num_components: as ``tsne.embed`` (3: ``method="exact"``).
      progress: as ``tsne.embed`` (the KL divergence every 50 steps); off by default.

    Returns:
      ``TSNEMap(x, embedding)``; ``embedding`` equals ``tsne.embed``'s for the same arguments.

    Raises:
      InputError: as ``tsne.embed``.

    Examples:
      >>> x = jax.random.normal(jax.random.key(1), (60, 5))
      >>> fit_tsne(jax.random.key(0), x, perplexity=10.0, num_steps=30).embedding.shape
      (60, 2)
    """
    x = _checks.array(x, "x", where="look.maps.fit_tsne", ndim=2)
    x = jnp.asarray(x, float_dtype(x.dtype))
    hyper = {"perplexity": perplexity, "num_steps": num_steps, "learning_rate": learning_rate}
    hyper |= {"early_exaggeration_steps": early_exaggeration_steps, "method": method, "progress": progress}
    hyper |= {"num_components": num_components}
    return TSNEMap(x, tsne.embed(key, x, initialization=initialization, **hyper))


def fit_umap(
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
) -> UMAPMap:
    """``umap.embed`` of ``x``, kept with its inputs and calibration as a map.

    Args:
      key: a ``jax.random.key``.
      x: ``(n, d)`` data, finite.
      n_neighbors: as ``umap.embed``.
      min_dist: as ``umap.embed``.
      spread: as ``umap.embed``.
      num_steps: as ``umap.embed`` (None: ``umap.default_num_steps``); kept for ``transform``'s rule.
      num_components: as ``umap.embed``.
      negative_sample_rate: as ``umap.embed``.
      initialization: as ``umap.embed``.
      labels: as ``umap.embed`` (supervised UMAP; ``transform`` then places unlabelled points).
      target_weight: as ``umap.embed``.
      progress: as ``umap.embed`` (a bar over the epochs); off by default.
      knn_method: as ``umap.embed`` (``"auto"``: approximate beyond ``umap.APPROXIMATE_ABOVE`` points).

    Returns:
      ``UMAPMap``; its ``embedding`` equals ``umap.embed``'s for the same arguments.

    Raises:
      InputError: as ``umap.embed``.

    Examples:
      >>> import numpy as np
      >>> m = fit_umap(jax.random.key(0), np.random.default_rng(0).normal(size=(80, 5)), num_steps=20)
      >>> m.embedding.shape, m.sigma.shape
      ((80, 2), (80,))
    """
    where = "look.maps.fit_umap"
    x = _checks.array(x, "x", where=where, ndim=2)
    n = x.shape[0]
    if not isinstance(n_neighbors, int) or not 2 <= n_neighbors <= n:
        raise InputError(f"{where}: n_neighbors must be an integer in [2, n = {n}], got {n_neighbors!r}")
    steps = umap.default_num_steps(n) if num_steps is None else num_steps
    a, b = umap.find_ab(spread=spread, min_dist=min_dist)
    dtype = float_dtype(x.dtype)
    xa = jnp.asarray(x, dtype)
    idx, dist = umap.graph_knn(
        xa, n_neighbors, knn_method=knn_method, key=jax.random.fold_in(key, 2), where=where
    )
    graph = umap.fuzzy_graph_from_knn(idx, dist, n_neighbors=n_neighbors)
    if labels is not None:
        graph = umap.supervise(graph, umap._labels(labels, n, where), target_weight=target_weight)
    cal = umap.calibrate(dist, n_neighbors=n_neighbors)
    k_init, k_opt = jax.random.split(key)
    y0 = umap.initialize(k_init, graph, num_components=num_components, method=initialization, x=x)
    hyper = {"a": a, "b": b, "negative_sample_rate": negative_sample_rate, "progress": progress}
    y = umap.optimize(k_opt, graph, y0, num_steps=steps, **hyper)
    return UMAPMap(xa, y.embedding, cal.sigma, cal.rho, a, b, n_neighbors, num_steps)


def _fitted(fitted, where):
    if not isinstance(fitted, (TSNEMap, UMAPMap)):
        raise InputError(f"{where}: fitted must be a maps.TSNEMap or maps.UMAPMap, got {type(fitted)}")
    return jnp.asarray(fitted.x), jnp.asarray(fitted.embedding)


def _options(fn, options, where):
    allowed = [p for p in inspect.signature(fn).parameters if p not in ("fitted", "key", "x_new")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InputError(f"{where}: unknown options {unknown} for this map; it takes {allowed}")


def transform(fitted: TSNEMap | UMAPMap, key: jax.Array, x_new: ArrayLike, **options) -> jax.Array:
    """Places new points into a fitted map; only they move, against the fixed reference.

    t-SNE (openTSNE's ``transform`` and its defaults), options: ``perplexity=5.0``; ``k=25``
    (neighbours for the initial position; at most the ``3 * perplexity`` searched);
    ``initialization="median"`` (of those neighbours' positions) or ``"random"`` (from ``key``);
    ``learning_rate=0.1``; ``num_steps=250`` (all steps); ``early_exaggeration_steps=0``;
    ``early_exaggeration=4.0``; ``exaggeration=1.5``; ``initial_momentum=0.8``;
    ``final_momentum=0.8``; ``max_grad_norm=0.25``; ``max_step_norm=None``; ``method=None``:
    ``"fft"`` (repulsion from a grid of the reference's potentials) for 2-D maps, ``"exact"``
    (every reference point; 3-D maps) otherwise.

    UMAP (umap-learn's ``transform``), options: ``num_steps=None`` (the fit's ``num_steps // 3``,
    or 100, or 30 beyond 10,000 new points); ``learning_rate=0.25`` (a quarter of the fit's);
    ``negative_sample_rate=5``; ``gamma=1.0``. ``key`` seeds the negative samples.

    Args:
      fitted: a ``TSNEMap`` (``fit_tsne``) or ``UMAPMap`` (``fit_umap``), or one from ``load``.
        A ``ParametricMap`` (``fit_parametric_umap``/``_tsne``): its encoder's forward pass, no options.
      key: a ``jax.random.key``; the same key gives the same positions.
      x_new: ``(m, d)`` new points, finite, as wide as the reference inputs.
      **options: the method's hyperparameters above.

    Returns:
      ``(m, num_components)`` positions in the map's frame, in the reference inputs' float dtype.

    Raises:
      InputError: ``fitted`` not a map; ``x_new`` not 2-D, of another width or with NaN/inf; an
        option the method does not take, or out of range.

    Examples:
      >>> x = jax.random.normal(jax.random.key(1), (80, 5))
      >>> m = fit_tsne(jax.random.key(0), x, perplexity=10.0, num_steps=60)
      >>> transform(m, jax.random.key(2), x[:7] + 0.01, num_steps=20).shape
      (7, 2)

    References:
      Policar, Strazar and Zupan, Machine Learning 112 (2023) (openTSNE's transform); McInnes,
      Healy and Melville, arXiv:1802.03426 (umap-learn's).
    """
    where = "look.maps.transform"
    if isinstance(fitted, ParametricMap):  # its encoder's forward pass (parametric.transform); no options
        _options(lambda fitted, key, x_new: None, options, where)
        return parametric.transform(fitted, x_new)
    x_ref, _ = _fitted(fitted, where)
    x_new = _checks.array(x_new, "x_new", where=where, ndim=2)
    if x_new.shape[1] != x_ref.shape[1] or x_new.shape[0] < 1:
        raise InputError(f"{where}: x_new must be (m >= 1, {x_ref.shape[1]}), got shape {tuple(x_new.shape)}")
    fn = _transform_tsne if isinstance(fitted, TSNEMap) else _transform_umap
    _options(fn, options, where)
    return fn(fitted, key, jnp.asarray(x_new, x_ref.dtype), **options)


def _transform_tsne(
    fitted,
    key,
    x_new,
    *,
    perplexity=5.0,
    k=25,
    initialization="median",
    learning_rate=0.1,
    num_steps=250,
    early_exaggeration_steps=0,
    early_exaggeration=4.0,
    exaggeration=1.5,
    initial_momentum=0.8,
    final_momentum=0.8,
    max_grad_norm=0.25,
    max_step_norm=None,
    min_gain=0.01,
    method=None,
):
    where = "look.maps.transform"
    x_ref, y_ref = _fitted(fitted, where)
    method = ("fft" if y_ref.shape[1] == 2 else "exact") if method is None else method
    if method not in ("fft", "exact") or (method == "fft" and y_ref.shape[1] != 2):
        raise InputError(f"{where}: method must be 'fft' (2-D maps) or 'exact', got {method!r}")
    if initialization not in ("median", "random"):
        raise InputError(f"{where}: initialization must be 'median' or 'random', got {initialization!r}")
    perplexity = positive(perplexity, "perplexity", where=where)
    k = _checks.index(k, "k", where=where, minimum=1)
    num_steps = _checks.index(num_steps, "num_steps", where=where, minimum=0)
    early = _checks.index(early_exaggeration_steps, "early_exaggeration_steps", where=where, minimum=0)
    if early > num_steps:
        raise InputError(f"{where}: early_exaggeration_steps={early} not in [0, num_steps={num_steps}]")
    dtype = y_ref.dtype
    cols, p = _tsne_transform.affinities(x_ref, x_new, perplexity=perplexity)
    if initialization == "median":
        y0 = _tsne_transform.median_init(y_ref, cols, k)
    else:
        y0 = 1e-4 * jax.random.normal(key, (x_new.shape[0], y_ref.shape[1]), dtype)
    grid = (
        _tsne_transform.reference_grid(y_ref, num_boxes=_tsne_transform.grid_size(jax.device_get(y_ref)))
        if method == "fft"
        else _tsne_transform.bounds(y_ref)
    )
    carry = (jnp.asarray(y0, dtype), jnp.zeros_like(y0, dtype), jnp.ones_like(y0, dtype))
    inf = float("inf")
    for steps, exag, momentum in (
        (early, early_exaggeration, initial_momentum),
        (num_steps - early, exaggeration, final_momentum),
    ):
        values = (learning_rate, exag, momentum, min_gain, max_grad_norm, max_step_norm)
        hyper = _tsne_transform.Hyper(*(jnp.asarray(inf if v is None else v, dtype) for v in values))
        carry = _tsne_transform.descend(
            carry, y_ref, cols, p.astype(dtype), grid, hyper, num_steps=steps, method=method
        )
    return carry[0]


def _transform_umap(
    fitted, key, x_new, *, num_steps=None, learning_rate=0.25, negative_sample_rate=5, gamma=1.0
):
    where = "look.maps.transform"
    x_ref, y_ref = _fitted(fitted, where)
    steps = (
        _umap_transform.num_steps_rule(x_new.shape[0], fitted.num_steps) if num_steps is None else num_steps
    )
    steps = _checks.index(steps, "num_steps", where=where, minimum=1)
    negative_sample_rate = _checks.index(negative_sample_rate, "negative_sample_rate", where=where, minimum=0)
    k = min(int(fitted.n_neighbors), x_ref.shape[0])
    graph, vals = _umap_transform.edges(x_ref, x_new, n_neighbors=k, num_steps=steps)
    dtype = y_ref.dtype
    y0 = _umap_transform.graph_init(y_ref, graph.cols, vals).astype(dtype)
    hyper = tuple(jnp.asarray(v, dtype) for v in (fitted.a, fitted.b, gamma, learning_rate))
    return _umap_transform.layout(
        y0, key, y_ref, graph, *hyper, num_steps=steps, negative_sample_rate=negative_sample_rate
    )


def inverse_transform(
    fitted: TSNEMap | UMAPMap,
    key: jax.Array,
    y: ArrayLike,
    *,
    num_steps: int | None = None,
    learning_rate: float = 0.25,
    negative_sample_rate: int = 5,
    gamma: float = 1.0,
) -> jax.Array:
    """Points of the map back in the input space (umap-learn's ``inverse_transform``; t-SNE alike).

    Each point starts at the kernel-weighted mean of the inputs of its ``min(d, n)`` nearest
    reference points in the map, then takes umap-learn's SGD steps in the input space (pulled
    towards those inputs, pushed from negative samples by the reference's fuzzy memberships). A
    UMAP map uses its kernel ``1 / (1 + a r^(2b))`` and the fit's ``sigma``, ``rho``; a t-SNE map
    the Cauchy kernel (``a = b = 1``) and ``sigma``, ``rho`` calibrated here as UMAP's on the
    reference's 15 nearest neighbours.

    Args:
      fitted: a ``TSNEMap`` or ``UMAPMap``; or a ``ParametricMap`` with a decoder (its forward pass;
        the other arguments unused).
      key: a ``jax.random.key`` for the negative samples.
      y: ``(m, num_components)`` points in the map, finite.
      num_steps: SGD steps; None: a UMAP fit's ``num_steps // 3``, else 100 (30 beyond 10,000
        points), umap-learn's rule.
      learning_rate: initial step size (umap-learn: a quarter of the fit's 1.0), decaying to 0.
      negative_sample_rate: negative samples per firing edge.
      gamma: weight of the negative samples.

    Returns:
      ``(m, d)`` inputs, in the reference inputs' float dtype.

    Raises:
      InputError: ``fitted`` not a map; ``y`` not 2-D, of another width or with NaN/inf; counts
        out of range.

    Examples:
      >>> x = jax.random.normal(jax.random.key(1), (80, 5))
      >>> m = fit_tsne(jax.random.key(0), x, perplexity=10.0, num_steps=60)
      >>> inverse_transform(m, jax.random.key(2), m.embedding[:3], num_steps=10).shape
      (3, 5)

    References:
      McInnes, Healy and Melville, arXiv:1802.03426; umap-learn's ``UMAP.inverse_transform``.
    """
    where = "look.maps.inverse_transform"
    if isinstance(fitted, ParametricMap):  # its decoder's forward pass (parametric.inverse_transform)
        return parametric.inverse_transform(fitted, y)
    x_ref, y_ref = _fitted(fitted, where)
    y = _checks.array(y, "y", where=where, ndim=2)
    if y.shape[1] != y_ref.shape[1] or y.shape[0] < 1:
        raise InputError(f"{where}: y must be (m >= 1, {y_ref.shape[1]}), got shape {tuple(y.shape)}")
    learning_rate = positive(learning_rate, "learning_rate", where=where)
    gamma = positive(gamma, "gamma", where=where, inclusive=True)
    negative_sample_rate = _checks.index(negative_sample_rate, "negative_sample_rate", where=where, minimum=0)
    fit_steps = fitted.num_steps if isinstance(fitted, UMAPMap) else None
    steps = _umap_transform.num_steps_rule(y.shape[0], fit_steps) if num_steps is None else num_steps
    steps = _checks.index(steps, "num_steps", where=where, minimum=1)
    if isinstance(fitted, UMAPMap):
        a, b, sigma, rho = fitted.a, fitted.b, jnp.asarray(fitted.sigma), jnp.asarray(fitted.rho)
    else:
        a, b = 1.0, 1.0
        nn = min(15, x_ref.shape[0])
        d = neighbors.knn(x_ref, k=nn - 1).distances
        cal = umap.calibrate(jnp.asarray(d, x_ref.dtype), n_neighbors=nn)
        sigma, rho = cal.sigma, cal.rho
    k = min(x_ref.shape[1], x_ref.shape[0])
    graph = _inverse.edges(y_ref, jnp.asarray(y, y_ref.dtype), k=k, a=a, b=b)
    dtype = x_ref.dtype
    x0 = _inverse.weighted_init(x_ref, graph).astype(dtype)
    return _inverse.optimize(
        x0,
        key,
        x_ref,
        graph,
        sigma.astype(dtype),
        rho.astype(dtype),
        jnp.asarray(gamma, dtype),
        jnp.asarray(learning_rate, dtype),
        num_steps=steps,
        negative_sample_rate=negative_sample_rate,
    )
