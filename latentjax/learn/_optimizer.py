"""The trainers' Adam: its betas and epsilon, and a learning rate constant or piecewise by epochs.

The state is always ``optax.adam``'s (``ScaleByAdamState``, ``EmptyState``), whatever the
schedule: the learning rate of step ``s`` is read from Adam's own step count, so a checkpoint of a
scheduled run restores into ``state.abstract_state`` like any other (``runs.load_model``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from latentjax.errors import InputError

DEFAULTS = {"b1": 0.9, "b2": 0.999, "eps": 1e-8}


def stages(learning_rate, *, where: str) -> list | float:
    """``learning_rate`` checked: a positive float, or ``[[epochs, rate], ...]`` (JSON-able, as stored).

    Examples:
      >>> stages(((1, 1e-3), (3, 5e-4)), where="train.fit")
      [[1, 0.001], [3, 0.0005]]
    """
    if np.ndim(learning_rate) == 0:
        lr = float(learning_rate)
        if not (math.isfinite(lr) and lr > 0):
            raise InputError(f"{where}: learning_rate must be a positive float, got {learning_rate!r}")
        return lr
    try:
        out = [[int(e), float(r)] for e, r in learning_rate]
    except (TypeError, ValueError):
        raise InputError(
            f"{where}: learning_rate must be a float or (epochs, rate) pairs, got {learning_rate!r}"
        ) from None
    if not out or any(e < 1 or not (math.isfinite(r) and r > 0) for e, r in out):
        raise InputError(
            f"{where}: learning_rate stages need epochs >= 1 and rates > 0, got {learning_rate!r}"
        )
    return out


def adam(
    learning_rate: float | Sequence[tuple[int, float]],
    *,
    steps_per_epoch: int = 1,
    b1: float = DEFAULTS["b1"],
    b2: float = DEFAULTS["b2"],
    eps: float = DEFAULTS["eps"],
) -> optax.GradientTransformation:
    """Adam with a constant learning rate, or ``(epochs, rate)`` stages (the last rate continues).

    Args:
      learning_rate: a float, or stages ``[(epochs_0, rate_0), (epochs_1, rate_1), ...]``.
      steps_per_epoch: steps of one epoch (turns the stages' epochs into steps).
      b1: Adam's first-moment decay.
      b2: Adam's second-moment decay.
      eps: Adam's epsilon.

    Returns:
      The optax transformation; its state is ``optax.adam``'s.

    Examples:
      >>> tx = adam([(1, 1.0), (1, 0.5)], steps_per_epoch=2)
      >>> jax.tree.structure(tx.init(jnp.zeros(2))) == jax.tree.structure(optax.adam(1.0).init(jnp.zeros(2)))
      True
    """
    lr = stages(learning_rate, where="train.fit")
    if isinstance(lr, float):
        return optax.adam(lr, b1=b1, b2=b2, eps=eps)
    rates = jnp.asarray([r for _, r in lr], jnp.float32)
    ends = jnp.asarray(np.cumsum([e for e, _ in lr])[:-1] * int(steps_per_epoch), jnp.int32)
    base = optax.scale_by_adam(b1=b1, b2=b2, eps=eps)

    def init(params):
        return base.init(params), optax.EmptyState()

    def update(grads, state, params=None):
        count = state[0].count  # steps taken before this one
        rate = rates[jnp.sum(count >= ends)]
        updates, adam_state = base.update(grads, state[0], params)
        return jax.tree.map(lambda u: -rate * u, updates), (adam_state, optax.EmptyState())

    return optax.GradientTransformation(init, update)
