"""The parametric maps' training: ``Networks``, ``State``, ``init``, ``make_step``, ``train``.

``parametric`` re-exports everything here and fits the maps with it.
"""

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from latentjax.look import _parametric_losses as losses
from latentjax.look._parametric_net import MLP


class Networks(nnx.Module):
    """The trained networks: an ``encoder`` ``d -> num_components`` and an optional ``decoder`` back.

    Args:
      key: a ``jax.random.key`` for the initial weights.
      d: input width.
      num_components: the map's dimension.
      widths: hidden widths of both (umap-learn: three layers of 100).
      decoder: whether to build the decoder.

    Examples:
      >>> nets = Networks(jax.random.key(0), 5, 2, widths=(8,), decoder=True)
      >>> nets.decoder(nets.encoder(jnp.zeros((3, 5)))).shape
      (3, 5)
    """

    def __init__(self, key, d: int, num_components: int, *, widths=(100, 100, 100), decoder=False):
        k_enc, k_dec = jax.random.split(key)
        self.encoder = MLP(d, num_components, widths=tuple(widths), rngs=nnx.Rngs(k_enc))
        self.decoder = MLP(num_components, d, widths=tuple(widths), rngs=nnx.Rngs(k_dec)) if decoder else None


class State(NamedTuple):
    """Training state (``init``, the step from ``make_step``, ``train``).

    Attributes:
      step: scalar int32, steps done.
      params: the networks' ``nnx.State`` (``nnx.split(networks)[1]``).
      opt_state: the optax state of ``params``.
      key: step ``s`` draws its batch and negatives with ``fold_in(key, s)``.
    """

    step: jax.Array
    params: nnx.State
    opt_state: optax.OptState
    key: jax.Array


class UMAPData(NamedTuple):
    """What a parametric UMAP step samples: standardised inputs ``x`` ``(n, d)`` and the graph's ``edges``."""

    x: jax.Array
    edges: losses.Edges


class TSNEData(NamedTuple):
    """What a parametric t-SNE step samples: ``x`` ``(n, d)`` and ``P`` as padded rows ``(n, K)``."""

    x: jax.Array
    cols: jax.Array
    weights: jax.Array


@functools.lru_cache(maxsize=32)
def optimizer(learning_rate: float = 1e-3) -> optax.GradientTransformation:
    """umap-learn's ParametricUMAP optimiser: each gradient entry clipped to [-4, 4], then Adam.

    The same object for the same rate, so ``make_step`` and ``train`` reuse their compilations.
    """
    return optax.chain(optax.clip(4.0), optax.adam(learning_rate))


def init(
    key: jax.Array, networks: Networks, *, optimizer: optax.GradientTransformation
) -> tuple[nnx.GraphDef, State]:
    """Splits the networks and starts training: step 0, a fresh optimiser state.

    Args:
      key: a ``jax.random.key`` for every step's batch.
      networks: fresh ``Networks``.
      optimizer: the optax transformation (``optimizer()``: umap-learn's).

    Returns:
      ``(graphdef, state)``.

    Examples:
      >>> gd, s = init(jax.random.key(1), Networks(jax.random.key(0), 5, 2), optimizer=optimizer())
      >>> int(s.step)
      0
    """
    graphdef, params = nnx.split(networks)
    return graphdef, State(jnp.zeros((), jnp.int32), params, optimizer.init(params), key)


@functools.lru_cache(maxsize=32)
def make_step(
    graphdef: nnx.GraphDef,
    optimizer: optax.GradientTransformation,
    *,
    method: str,
    batch_size: int,
    a: float = 1.0,
    b: float = 1.0,
    negative_sample_rate: int = 5,
    repulsion_strength: float = 1.0,
    dof: float = 1.0,
    reconstruction_weight: float = 1.0,
) -> Callable[[State, UMAPData | TSNEData], tuple[State, dict]]:
    """The training step ``step(state, data) -> (state, metrics)``, pure and not yet jitted.

    UMAP: ``batch_size`` edges drawn by weight; each head meets ``negative_sample_rate`` tails of
    the batch shuffled (umap-learn's negatives); ``losses.umap_cross_entropy``. t-SNE:
    ``batch_size`` distinct random points; ``losses.tsne_batch_kl`` of their restricted ``P``.
    With a decoder, ``reconstruction_weight`` times the mean squared error of decoding the
    batch's (UMAP: the heads') positions, the gradient stopped before the encoder (umap-learn's
    default, ``autoencoder_loss=False``).

    Args:
      graphdef: from ``init``.
      optimizer: the transformation ``init`` was given.
      method: ``"umap"`` (data: ``UMAPData``) or ``"tsne"`` (``TSNEData``).
      batch_size: edges (UMAP) or points (t-SNE) per step.
      a: UMAP's kernel parameter.
      b: UMAP's kernel parameter.
      negative_sample_rate: UMAP's negatives per edge.
      repulsion_strength: UMAP's weight of the negatives.
      dof: t-SNE's Student-t degrees of freedom.
      reconstruction_weight: the decoder loss's weight.

    Returns:
      The step (the same function for the same arguments: a ``jit`` of it compiles once per
      shape); ``metrics`` holds ``loss`` (the map's), ``reconstruction`` (0 without decoder).

    Examples:
      >>> from latentjax.look import tsne
      >>> x = jax.random.normal(jax.random.key(2), (40, 5))
      >>> p = losses.padded_rows(tsne.affinities(x, perplexity=5.0), 40)
      >>> gd, s = init(jax.random.key(1), Networks(jax.random.key(0), 5, 2), optimizer=optimizer())
      >>> step = jax.jit(make_step(gd, optimizer(), method="tsne", batch_size=16))
      >>> s, m = step(s, TSNEData(x, *p))
      >>> int(s.step), m["loss"].shape
      (1, ())
    """

    def loss_fn(params, key, data):
        nets = nnx.merge(graphdef, params)
        if method == "umap":
            k_edges, k_neg = jax.random.split(key)
            heads, tails = losses.sample_edges(k_edges, data.edges, batch_size)
            x_to = data.x[heads]
            y = nets.encoder(jnp.concatenate([x_to, data.x[tails]]))
            y_to, y_from = y[:batch_size], y[batch_size:]
            neg = jax.random.permutation(k_neg, jnp.repeat(y_from, negative_sample_rate, axis=0))
            hyper = {"a": a, "b": b, "repulsion_strength": repulsion_strength}
            main = losses.umap_cross_entropy(y_to, y_from, neg, **hyper)
        else:
            idx = jax.random.choice(key, data.x.shape[0], (batch_size,), replace=False)
            x_to = data.x[idx]
            y_to = nets.encoder(x_to)
            main = losses.tsne_batch_kl(y_to, losses.batch_affinities(idx, data.cols, data.weights), dof=dof)
        recon = jnp.zeros((), main.dtype)
        if nets.decoder is not None:
            recon = jnp.mean((nets.decoder(jax.lax.stop_gradient(y_to)) - x_to) ** 2)
        return main + reconstruction_weight * recon, (main, recon)

    def step(state: State, data) -> tuple[State, dict]:
        key = jax.random.fold_in(state.key, state.step)
        grads, (main, recon) = jax.grad(loss_fn, has_aux=True)(state.params, key, data)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return State(state.step + 1, params, opt_state, state.key), {"loss": main, "reconstruction": recon}

    return step


@functools.partial(jax.jit, static_argnames=("step", "chunk_size"))
def _chunk(state, data, stop, *, step, chunk_size):
    """``chunk_size`` steps in one ``lax.scan``; those from ``stop`` on leave the state as it is."""

    def body(st, _):
        new, m = step(st, data)
        live = st.step < stop
        st = jax.tree.map(lambda n, o: jnp.where(live, n, o), new, st)
        return st, jax.tree.map(lambda v: jnp.where(live, v, jnp.nan), m)

    return jax.lax.scan(body, state, None, length=chunk_size)


def train(state: State, data, step: Callable, *, num_steps: int, chunk_size: int = 100) -> tuple[State, dict]:
    """Runs ``num_steps`` of ``step`` as ``lax.scan`` chunks of one compiled length (the last masked).

    Args:
      state: from ``init``.
      data: the step's data (``UMAPData`` or ``TSNEData``).
      step: from ``make_step``.
      num_steps: steps to run.
      chunk_size: steps per compiled scan.

    Returns:
      ``(state, metrics)``: the final state and each chunk's mean ``loss`` and ``reconstruction``
      (numpy arrays, one entry per chunk).
    """
    stop = state.step + num_steps
    history = []
    for _ in range(-(-num_steps // chunk_size)):
        state, m = _chunk(state, data, stop, step=step, chunk_size=chunk_size)
        history.append(jax.tree.map(jnp.nanmean, m))
    return state, {
        k: jnp.stack([h[k] for h in history]) if history else jnp.zeros(0) for k in ("loss", "reconstruction")
    }
