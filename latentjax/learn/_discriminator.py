"""FactorVAE's discriminator (Kim & Mnih 2018): an MLP telling codes from dimension-wise permuted codes.

Private: ``objectives`` trains it beside the model (``TrainState.aux`` holds a ``State``). As in the
paper and disentanglement_lib's ``fc_discriminator``: ``depth`` hidden layers of ``hidden`` units
with leaky ReLU (slope 0.2), two logits (0: a code of the data's aggregate posterior q(z), 1: a code
of the product of its marginals), Adam with learning rate 1e-4, b1 0.5, b2 0.9.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

LEARNING_RATE = 1e-4
ADAM = {"b1": 0.5, "b2": 0.9}
SLOPE = 0.2


class State(NamedTuple):
    """The discriminator's parameters and its Adam state (``TrainState.aux`` of a FactorVAE run).

    Attributes:
      params: a list of ``{"w": (in, out), "b": (out,)}`` layers, float32.
      opt_state: ``optax.adam``'s state.
    """

    params: Any
    opt_state: Any


def optimizer() -> optax.GradientTransformation:
    """Adam of the paper's discriminator: learning rate 1e-4, b1 0.5, b2 0.9."""
    return optax.adam(LEARNING_RATE, **ADAM)


def init(key: jax.Array, latent_dim: int, *, hidden: int, depth: int) -> State:
    """A fresh discriminator: LeCun-normal weights (``nnx.Linear``'s), zero biases, and Adam's state.

    Examples:
      >>> st = init(jax.random.key(0), 3, hidden=4, depth=2)
      >>> [layer["w"].shape for layer in st.params]
      [(3, 4), (4, 4), (4, 2)]
    """
    dims = [latent_dim] + [hidden] * depth + [2]
    keys = jax.random.split(key, len(dims) - 1)
    init_w = jax.nn.initializers.lecun_normal()
    params = [
        {"w": init_w(k, (a, b), jnp.float32), "b": jnp.zeros((b,), jnp.float32)}
        for k, a, b in zip(keys, dims[:-1], dims[1:])
    ]
    return State(params, optimizer().init(params))


def logits(params, z: jax.Array) -> jax.Array:
    """The two logits ``(..., 2)`` of codes ``z`` ``(..., latent_dim)``.

    Examples:
      >>> st = init(jax.random.key(0), 3, hidden=4, depth=2)
      >>> logits(st.params, jnp.zeros((5, 3))).shape
      (5, 2)
    """

    def dense(layer, h):  # the bias over the leading axes, explicitly (no rank promotion)
        return h @ layer["w"] + layer["b"].reshape((1,) * (h.ndim - 1) + layer["b"].shape)

    h = z
    for layer in params[:-1]:
        h = jax.nn.leaky_relu(dense(layer, h), SLOPE)
    return dense(params[-1], h)


def permute_dims(key: jax.Array, z: jax.Array) -> jax.Array:
    """Each column of ``z`` ``(b, d)`` permuted across the batch on its own (Kim & Mnih, Algorithm 1).

    Column ``j`` is ``z[jax.random.permutation(split(key, d)[j], b), j]``: a sample of the product
    of the batch's marginals.

    Examples:
      >>> z = jnp.arange(8.0).reshape(4, 2)
      >>> sorted(permute_dims(jax.random.key(0), z)[:, 1].tolist())
      [1.0, 3.0, 5.0, 7.0]
    """
    b, d = z.shape
    perms = jax.vmap(lambda k: jax.random.permutation(k, b))(jax.random.split(key, d))  # (d, b)
    return jnp.take_along_axis(z, perms.T, axis=0)


def loss(params, z: jax.Array, z_perm: jax.Array) -> jax.Array:
    """The discriminator's cross-entropy: ``-(mean log D_0(z) + mean log D_1(z_perm)) / 2``.

    Examples:
      >>> st = init(jax.random.key(0), 3, hidden=4, depth=2)
      >>> float(loss(jax.tree.map(jnp.zeros_like, st.params), jnp.ones((4, 3)), jnp.ones((4, 3))))
      0.693...
    """
    real = jax.nn.log_softmax(logits(params, z))[:, 0]
    fake = jax.nn.log_softmax(logits(params, z_perm))[:, 1]
    return -0.5 * (jnp.mean(real) + jnp.mean(fake))


def update(state: State, key: jax.Array, z: jax.Array) -> tuple[State, jax.Array]:
    """One Adam step of the discriminator on codes ``z`` ``(b, d)`` and their permutation with ``key``.

    Returns:
      ``(state, loss)``, the loss before the step.
    """
    z = jax.lax.stop_gradient(z)
    value, grads = jax.value_and_grad(loss)(state.params, z, permute_dims(key, z))
    updates, opt_state = optimizer().update(grads, state.opt_state, state.params)
    return State(optax.apply_updates(state.params, updates), opt_state), value
