"""Parametric t-SNE and UMAP: an MLP trained on the maps' losses, so new points map in one forward pass.

``fit_umap`` trains on umap-learn's ParametricUMAP loss (edge minibatches of the fuzzy graph with
negative sampling) and ``fit_tsne`` on van der Maaten's parametric t-SNE loss (``P`` from the kNN
graph restricted to a batch of points, against the batch's Student-t ``Q``); either can train a
decoder jointly (umap-learn's ``parametric_reconstruction=True``). The stages: ``init`` ->
``make_step`` (one jitted step) -> ``train`` (``lax.scan`` chunks). Losses and sampling live in
``_parametric_losses``, the networks and the fitted ``ParametricMap`` in ``_parametric_net``;
``maps`` fits, transforms, inverts, saves and loads these maps with the non-parametric ones.
"""

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.look import _parametric_losses as losses
from latentjax.look import tsne, umap
from latentjax.look._dimred_args import positive
from latentjax.look._parametric_net import MLP as MLP
from latentjax.look._parametric_net import ParametricMap as ParametricMap
from latentjax.look._parametric_train import Networks as Networks
from latentjax.look._parametric_train import State as State
from latentjax.look._parametric_train import TSNEData as TSNEData
from latentjax.look._parametric_train import UMAPData as UMAPData
from latentjax.look._parametric_train import init as init
from latentjax.look._parametric_train import make_step as make_step
from latentjax.look._parametric_train import optimizer as optimizer
from latentjax.look._parametric_train import train as train


def _standardise(x):
    shift = jnp.mean(x, axis=0)
    scale = jnp.std(x)
    scale = jnp.where(scale > 0, scale, 1.0).astype(jnp.float32)
    return (x - shift[None, :]) / scale, shift, scale


def _common(x, num_components, batch_size, widths, where):
    x = _checks.array(x, "x", where=where, ndim=2)
    n = x.shape[0]
    if n < 2:
        raise InputError(f"{where}: x must have at least 2 rows, got {n}")
    num_components = _checks.index(num_components, "num_components", where=where, minimum=1)
    batch_size = _checks.index(batch_size, "batch_size", where=where, minimum=2)
    widths = tuple(widths)
    if not widths or any(not isinstance(w, int) or w < 1 for w in widths):
        raise InputError(f"{where}: widths must be positive integers, got {widths!r}")
    return jnp.asarray(x, jnp.float32), num_components, batch_size, widths


def _fit(
    key,
    method,
    xs,
    shift,
    scale,
    data,
    *,
    num_components,
    widths,
    decoder,
    learning_rate,
    num_steps,
    a,
    b,
    **hyper,
):
    k_net, k_steps = jax.random.split(key)
    nets = Networks(k_net, xs.shape[1], num_components, widths=widths, decoder=bool(decoder))
    opt = optimizer(learning_rate)
    graphdef, state = init(k_steps, nets, optimizer=opt)
    step = make_step(graphdef, opt, method=method, a=a, b=b, **hyper)
    state, _ = train(state, data, step, num_steps=num_steps)
    nets = nnx.merge(graphdef, state.params)
    return ParametricMap(method, nets.encoder, nets.decoder, shift, scale, float(a), float(b))


def fit_umap(
    key: jax.Array,
    x: ArrayLike,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    spread: float = 1.0,
    num_components: int = 2,
    negative_sample_rate: int = 5,
    num_epochs: int | None = None,
    num_steps: int | None = None,
    batch_size: int | None = None,
    learning_rate: float = 1e-3,
    widths: tuple[int, ...] = (100, 100, 100),
    decoder: bool = False,
    reconstruction_weight: float = 1.0,
) -> ParametricMap:
    """Parametric UMAP (umap-learn's ``ParametricUMAP``): an MLP trained on UMAP's cross-entropy.

    The fuzzy graph is ``umap.fuzzy_graph``'s; edges lighter than ``max / num_epochs`` are dropped
    and the rest drawn with probability proportional to their weight (umap-learn repeats each
    ``floor(num_epochs w)`` times and shuffles). Adam with each gradient entry clipped to 4.

    Args:
      key: a ``jax.random.key`` (the initial weights and every step's edges and negatives).
      x: ``(n, d)`` data, finite; standardised (mean and one overall scale) for the networks.
      n_neighbors: as ``umap.embed``.
      min_dist: as ``umap.embed``.
      spread: as ``umap.embed``.
      num_components: the map's dimension.
      negative_sample_rate: negatives per edge.
      num_epochs: umap-learn's ``n_epochs`` (None: 500 up to 10,000 points, else 200).
      num_steps: optimiser steps; None: one pass over umap-learn's expanded edge list,
        ``sum(floor(num_epochs w)) // batch_size``.
      batch_size: edges per step (None: ``min(n, 1000)``, umap-learn's).
      learning_rate: Adam's (umap-learn: 1e-3).
      widths: hidden widths of encoder and decoder (umap-learn: three of 100).
      decoder: train a decoder jointly (umap-learn's ``parametric_reconstruction=True``), with a
        mean-squared-error loss on the standardised inputs.
      reconstruction_weight: the decoder loss's weight (umap-learn's default 1).

    Returns:
      The ``ParametricMap``; ``transform(map, x)`` is its layout of ``x``.

    Raises:
      InputError: ``x`` not 2-D or with NaN/inf; counts or sizes out of range.

    Examples:
      >>> x = jax.random.normal(jax.random.key(1), (80, 5))
      >>> m = fit_umap(jax.random.key(0), x, n_neighbors=8, num_steps=20, widths=(16,), decoder=True)
      >>> transform(m, x).shape
      (80, 2)

    References:
      Sainburg, McInnes and Gentner, "Parametric UMAP embeddings for representation and
      semisupervised learning", Neural Computation 33 (2021); umap-learn's ``parametric_umap.py``.
    """
    where = "look.parametric.fit_umap"
    x_in = _checks.array(x, "x", where=where, ndim=2)
    n = x_in.shape[0]
    batch_size = min(n, 1000) if batch_size is None else batch_size
    x, num_components, batch_size, widths = _common(x_in, num_components, batch_size, widths, where)
    negative_sample_rate = _checks.index(negative_sample_rate, "negative_sample_rate", where=where, minimum=1)
    num_epochs = (500 if n <= 10_000 else 200) if num_epochs is None else num_epochs
    num_epochs = _checks.index(num_epochs, "num_epochs", where=where, minimum=1)
    learning_rate = positive(learning_rate, "learning_rate", where=where)
    reconstruction_weight = positive(
        reconstruction_weight, "reconstruction_weight", where=where, inclusive=True
    )
    a, b = umap.find_ab(spread=spread, min_dist=min_dist)
    graph = umap.fuzzy_graph(x, n_neighbors=n_neighbors)
    edges, expanded = losses.umap_edges(graph, num_epochs=num_epochs)
    num_steps = max(1, int(expanded) // batch_size) if num_steps is None else num_steps
    num_steps = _checks.index(num_steps, "num_steps", where=where, minimum=0)
    xs, shift, scale = _standardise(x)
    hyper = {"negative_sample_rate": negative_sample_rate, "reconstruction_weight": reconstruction_weight}
    return _fit(
        key,
        "umap",
        xs,
        shift,
        scale,
        UMAPData(xs, edges),
        num_components=num_components,
        widths=widths,
        decoder=decoder,
        learning_rate=learning_rate,
        num_steps=num_steps,
        a=a,
        b=b,
        batch_size=batch_size,
        **hyper,
    )


def fit_tsne(
    key: jax.Array,
    x: ArrayLike,
    *,
    perplexity: float = 30.0,
    num_components: int = 2,
    dof: float = 1.0,
    num_steps: int | None = None,
    batch_size: int | None = None,
    learning_rate: float = 1e-3,
    widths: tuple[int, ...] = (256, 256, 256),
    decoder: bool = False,
    reconstruction_weight: float = 1.0,
) -> ParametricMap:
    """Parametric t-SNE: an MLP trained on the KL divergence of minibatches (van der Maaten 2009).

    ``P`` is ``tsne.affinities(x, perplexity)`` (the ``3 * perplexity`` nearest neighbours); each
    step takes ``batch_size`` distinct random points, restricts ``P`` to them and renormalises it
    to one, and lowers ``KL(P_batch || Q_batch)`` with ``Q`` the Student-t kernel of the batch's
    positions. Adam with each gradient entry clipped to 4.

    Args:
      key: a ``jax.random.key`` (the initial weights and every step's batch).
      x: ``(n, d)`` data, finite; standardised (mean and one overall scale) for the networks.
      perplexity: as ``tsne.affinities``.
      num_components: the map's dimension.
      dof: the Student-t degrees of freedom (1: t-SNE's Cauchy kernel).
      num_steps: optimiser steps; None: 400 passes over the data, ``400 n // batch_size``.
      batch_size: points per step (None: ``min(n, 2000)``); each step is ``O(batch_size^2)``. The
        batch sees a ``batch_size / n`` share of each point's neighbours. Fashion-MNIST PCA-50,
        10,000 points, widths of 100, trustworthiness (k = 10): 2,000 points x 2,000 steps 0.977;
        1,000 x 2,000 0.973; 4,000 x 1,000 0.975; non-parametric t-SNE (``tsne.embed``) 0.995.
      learning_rate: Adam's.
      widths: hidden widths of encoder and decoder. The map's capacity, not the batch, limits it:
        at the defaults above (10,000 points, 2,000 x 2,000 steps, 2 CPU cores) trustworthiness
        0.977 with widths of 100 (92 s), 0.984 with 256 (110 s), 0.987 with 512 (143 s).
      decoder: train a decoder jointly, on the mean squared error of the standardised inputs.
      reconstruction_weight: the decoder loss's weight.

    Returns:
      The ``ParametricMap``.

    Raises:
      InputError: ``x`` not 2-D or with NaN/inf; ``perplexity`` not in ``[1, n - 1]``; counts or
        sizes out of range.

    Examples:
      >>> x = jax.random.normal(jax.random.key(1), (80, 5))
      >>> m = fit_tsne(jax.random.key(0), x, perplexity=10.0, num_steps=20, batch_size=40, widths=(16,))
      >>> transform(m, x).shape
      (80, 2)

    References:
      van der Maaten, "Learning a Parametric Embedding by Preserving Local Structure", AISTATS
      2009, Eqs. 2-4.
    """
    where = "look.parametric.fit_tsne"
    x_in = _checks.array(x, "x", where=where, ndim=2)
    n = x_in.shape[0]
    batch_size = min(n, 2000) if batch_size is None else batch_size
    x, num_components, batch_size, widths = _common(x_in, num_components, batch_size, widths, where)
    if batch_size > n:
        raise InputError(f"{where}: batch_size must be in [2, n = {n}], got {batch_size}")
    dof = positive(dof, "dof", where=where)
    learning_rate = positive(learning_rate, "learning_rate", where=where)
    reconstruction_weight = positive(
        reconstruction_weight, "reconstruction_weight", where=where, inclusive=True
    )
    num_steps = max(1, 400 * n // batch_size) if num_steps is None else num_steps
    num_steps = _checks.index(num_steps, "num_steps", where=where, minimum=0)
    p = tsne.affinities(x, perplexity=perplexity)
    xs, shift, scale = _standardise(x)
    return _fit(
        key,
        "tsne",
        xs,
        shift,
        scale,
        TSNEData(xs, *losses.padded_rows(p, n)),
        num_components=num_components,
        widths=widths,
        decoder=decoder,
        learning_rate=learning_rate,
        num_steps=num_steps,
        a=1.0,
        b=1.0,
        batch_size=batch_size,
        dof=dof,
        reconstruction_weight=reconstruction_weight,
    )


@jax.jit
def _forward(net, shift, scale, x):
    return net((x - shift[None, :]) / scale)


@jax.jit
def _backward(net, shift, scale, y):
    return net(y) * scale + shift[None, :]


def _map(fitted, where):
    if not isinstance(fitted, ParametricMap):
        raise InputError(
            f"{where}: fitted must be a ParametricMap (parametric.fit_umap/fit_tsne), got {type(fitted)}"
        )
    return fitted


def transform(fitted: ParametricMap, x: ArrayLike) -> jax.Array:
    """Points' places in a parametric map: one forward pass of its encoder.

    Args:
      fitted: a ``ParametricMap``.
      x: ``(m, d)`` points, finite, as wide as the training inputs.

    Returns:
      ``(m, num_components)`` float32 positions.

    Raises:
      InputError: ``fitted`` not a ``ParametricMap``; ``x`` not ``(m, d)`` or with NaN/inf.

    Examples:
      >>> x = jax.random.normal(jax.random.key(1), (80, 5))
      >>> m = fit_umap(jax.random.key(0), x, n_neighbors=8, num_steps=20, widths=(16,), decoder=True)
      >>> transform(m, jnp.zeros((3, 5))).shape
      (3, 2)
    """
    where = "look.parametric.transform"
    fitted = _map(fitted, where)
    x = _checks.array(x, "x", where=where, ndim=2)
    d = fitted.shift.shape[0]
    if x.shape[1] != d:
        raise InputError(f"{where}: x must be (m, {d}), got shape {tuple(x.shape)}")
    return _forward(fitted.encoder, fitted.shift, fitted.scale, jnp.asarray(x, jnp.float32))


def inverse_transform(fitted: ParametricMap, y: ArrayLike) -> jax.Array:
    """Points of a parametric map back in the input space: one forward pass of its decoder.

    Args:
      fitted: a ``ParametricMap`` trained with ``decoder=True``.
      y: ``(m, num_components)`` points of the map, finite.

    Returns:
      ``(m, d)`` float32 inputs.

    Raises:
      InputError: ``fitted`` not a ``ParametricMap`` or without a decoder; ``y`` of another width
        or with NaN/inf.

    Examples:
      >>> x = jax.random.normal(jax.random.key(1), (80, 5))
      >>> m = fit_umap(jax.random.key(0), x, n_neighbors=8, num_steps=20, widths=(16,), decoder=True)
      >>> inverse_transform(m, transform(m, x[:3])).shape
      (3, 5)
    """
    where = "look.parametric.inverse_transform"
    fitted = _map(fitted, where)
    if fitted.decoder is None:
        raise InputError(f"{where}: fitted has no decoder; fit it with decoder=True")
    y = _checks.array(y, "y", where=where, ndim=2)
    e = fitted.decoder.layers[0].kernel.shape[0]
    if y.shape[1] != e:
        raise InputError(f"{where}: y must be (m, {e}), got shape {tuple(y.shape)}")
    return _backward(fitted.decoder, fitted.shift, fitted.scale, jnp.asarray(y, jnp.float32))
