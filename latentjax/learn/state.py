"""The trainers' state: ``TrainState``, how a run starts (``init``), and the keys it derives.

A run's randomness comes from one key: ``init`` splits it into the model's initialisation and the
run key ``TrainState.key``; step ``s`` draws from ``step_key`` (``fold_in(split(key)[0], s)``),
epoch ``e`` is ordered by ``data.epoch_order(order_key(state), e, ...)`` and evaluation uses
``eval_key``. All three depend on the run key only, so a resumed run draws exactly what the
uninterrupted one drew. Stacked states (a population, or ``pmap``'s device copies) are built and
taken apart with ``stack`` and ``take``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from latentjax.learn import models, objectives


class TrainState(NamedTuple):
    """Everything that evolves during training; a checkpoint is exactly this.

    Attributes:
      step: number of optimizer steps taken (int32 scalar).
      params: the model's ``nnx.State`` (``nnx.split(model)[1]``).
      opt_state: the optax state.
      key: the run key (see the module docstring: ``step_key``, ``order_key``, ``eval_key``).
      aux: what an objective trains besides the model (FactorVAE's discriminator and its Adam
        state, ``objectives.init_aux``); ``()`` for every other objective, so a checkpoint holds
        the same arrays as before the field existed (release 0.1.0's load and resume bit for bit).

    Examples:
      >>> _, st, _ = init(jax.random.key(0), models.Config(latent_dim=2, hidden=8), learning_rate=1e-3)
      >>> int(st.step)
      0
    """

    step: jax.Array
    params: Any
    opt_state: Any
    key: jax.Array
    aux: Any = ()


def optimizer(*, learning_rate: float) -> optax.GradientTransformation:
    """Adam (Kingma & Ba 2015), the optimiser of the VAE literature.

    Args:
      learning_rate: Adam's step size.

    Returns:
      The optax transformation.

    Examples:
      >>> tx = optimizer(learning_rate=1e-3)
      >>> type(tx).__name__
      'GradientTransformationExtraArgs'
    """
    return optax.adam(learning_rate)


def init(
    key: jax.Array,
    config: models.Config,
    *,
    learning_rate: float,
    objective: objectives.Objective | None = None,
):
    """A fresh model, split into its ``graphdef`` and a ``TrainState``, and its optimiser.

    Args:
      key: split into the initialisation key and the run key (``TrainState.key``).
      config: the model.
      learning_rate: Adam's step size.
      objective: the objective trained; ``TrainState.aux`` is ``objectives.init_aux`` of it (drawn
        from the run key; FactorVAE's discriminator), ``()`` without one.

    Returns:
      ``(graphdef, state, tx)``: the model's ``nnx.GraphDef``, the ``TrainState`` at step 0 and
      the optax transformation.

    Examples:
      >>> cfg = models.Config(latent_dim=2, hidden=8)
      >>> graphdef, st, tx = init(jax.random.key(0), cfg, learning_rate=1e-3)
      >>> models.decode(nnx.merge(graphdef, st.params), jnp.zeros(2)).shape
      (28, 28, 1)
    """
    init_key, run_key = jax.random.split(key)
    graphdef, params = nnx.split(models.create(init_key, config))
    tx = optimizer(learning_rate=learning_rate)
    aux = () if objective is None else objectives.init_aux(run_key, config, objective)
    return graphdef, TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), run_key, aux), tx


def abstract_state(config: models.Config, settings: dict | None = None) -> tuple[Any, TrainState]:
    """The ``graphdef`` and the shapes and dtypes of ``init``'s state, without computing it.

    ``jax.eval_shape`` traces ``init``; no parameter is initialised. Adam's state does not depend
    on the learning rate, so one abstract state serves every run of ``config`` (restoring a
    checkpoint into it, ``checkpoint.Manager.restore``).

    Args:
      config: the model.
      settings: the run's stored settings (``runs.read_config(...).train``): their objective's
        ``aux`` is part of the state (``objectives.from_settings``); None: no ``aux``.

    Returns:
      ``(graphdef, state)``: the model's ``nnx.GraphDef`` and a ``TrainState`` of
      ``jax.ShapeDtypeStruct`` leaves.

    Examples:
      >>> _, st = abstract_state(models.Config(latent_dim=2, hidden=8))
      >>> st.params["decoder"]["out"]["kernel"].shape
      (8, 784)
    """
    key = jax.eval_shape(jax.random.key, 0)  # a key's shape and dtype, not a key
    objective = None if settings is None else objectives.from_settings(settings)
    return jax.eval_shape(lambda k: init(k, config, learning_rate=1e-3, objective=objective)[:2], key)


def step_key(state: TrainState) -> jax.Array:
    """The key of step ``state.step``: ``fold_in(split(state.key)[0], state.step)``.

    Args:
      state: the state before the step.

    Returns:
      A key (traceable: the training step calls it).

    Examples:
      >>> _, st, _ = init(jax.random.key(0), models.Config(latent_dim=2, hidden=8), learning_rate=1e-3)
      >>> k0, k1 = step_key(st), step_key(st._replace(step=1))
      >>> bool(jnp.any(jax.random.key_data(k0) != jax.random.key_data(k1)))
      True
    """
    return jax.random.fold_in(jax.random.split(state.key)[0], state.step)


def order_key(state: TrainState) -> jax.Array:
    """The key of the run's data order, ``split(state.key)[1]``.

    Epoch ``e``'s batches are ``data.epoch_order(order_key(state), e, n, batch_size=...)``.

    Args:
      state: any state of the run (the run key never changes).

    Returns:
      A new key array (it outlives ``state``, whose buffers the training step donates).

    Examples:
      >>> from latentjax import data
      >>> _, st, _ = init(jax.random.key(0), models.Config(latent_dim=2, hidden=8), learning_rate=1e-3)
      >>> data.epoch_order(order_key(st), 0, 10, batch_size=4).shape
      (2, 4)
    """
    return jax.random.split(state.key)[1]


def eval_key(state: TrainState) -> jax.Array:
    """The key of the run's evaluations, ``split(state.key, 3)[2]``.

    A stream of the run key apart from ``step_key``'s and ``order_key``'s, the same at every epoch
    (so the epochs' evaluations compare).

    Args:
      state: any state of the run.

    Returns:
      A key.

    Examples:
      >>> _, st, _ = init(jax.random.key(0), models.Config(latent_dim=2, hidden=8), learning_rate=1e-3)
      >>> eval_key(st).shape
      ()
    """
    return jax.random.split(state.key, 3)[2]


def stack(trees: Sequence[Any]) -> Any:
    """Pytrees of one structure stacked along a new leading axis (a population's states).

    Args:
      trees: the pytrees (``TrainState``, models, params, ...).

    Returns:
      One pytree whose leaves have a leading axis of ``len(trees)``.

    Examples:
      >>> stack([jnp.zeros(2), jnp.ones(2)]).shape
      (2, 2)
    """
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def take(tree: Any, k: int) -> Any:
    """Entry ``k`` of a stacked pytree (``stack``'s inverse; a population member, a device copy).

    Args:
      tree: a pytree whose leaves have a leading axis.
      k: the index.

    Returns:
      The pytree of every leaf's entry ``k``.

    Examples:
      >>> take(stack([jnp.zeros(2), jnp.ones(2)]), 1).tolist()
      [1.0, 1.0]
    """
    return jax.tree.map(lambda x: x[k], tree)
