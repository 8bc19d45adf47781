"""The DeepSDF decoder ``f(z, x) -> sdf`` and its per-shape objective (clamped L1 + code prior).

Re-exported by ``latentjax.shapes.deepsdf``, which trains it and reconstructs shapes with it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from latentjax.errors import InputError


class _WNLinear(nnx.Module):
    """Linear layer with weight normalisation ``W = g v / ||v||`` (per output unit)."""

    def __init__(self, din: int, dout: int, *, rngs: nnx.Rngs):
        lin = nnx.Linear(din, dout, rngs=rngs)
        self.v = nnx.Param(lin.kernel[...])
        self.g = nnx.Param(jnp.linalg.norm(lin.kernel[...], axis=0))
        self.b = nnx.Param(lin.bias[...])

    def __call__(self, x):
        v = self.v[...]
        return x @ (v * (self.g[...] / jnp.linalg.norm(v, axis=0))[None, :]) + self.b[...]


class Decoder(nnx.Module):
    """DeepSDF decoder: ``depth`` ReLU layers of ``width``, ``[z, x]`` re-injected at layer ``skip``.

    Args:
        latent_dim: code size.
        width: hidden units (DeepSDF: 512).
        depth: hidden layers (DeepSDF: 8).
        skip: index of the layer whose input is concatenated with ``[z, x]`` (DeepSDF: 4); the layer
            before it outputs ``width - latent_dim - 3`` units so that the width stays constant.
        weight_norm: weight-normalised layers as in DeepSDF.
        rngs: ``nnx.Rngs`` for the initial weights.

    Raises:
        InputError: unless ``0 < skip < depth`` and ``width > latent_dim + 3``.

    Examples:
        >>> model = Decoder(8, width=32, depth=4, skip=2, rngs=nnx.Rngs(0))
        >>> decode(model, jnp.zeros(8), jnp.zeros(3)).shape
        ()

    References:
        Park et al., "DeepSDF: Learning Continuous Signed Distance Functions for Shape
        Representation", CVPR 2019, Sec. 4 and supplementary (architecture).
    """

    def __init__(
        self,
        latent_dim: int,
        *,
        width: int = 512,
        depth: int = 8,
        skip: int = 4,
        weight_norm: bool = False,
        rngs: nnx.Rngs,
    ):
        din = latent_dim + 3
        if not 0 < skip < depth or width <= din:
            raise InputError(
                f"deepsdf.Decoder: need 0 < skip < depth and width > latent_dim + 3; got skip={skip}, "
                f"depth={depth}, width={width}, latent_dim={latent_dim}"
            )
        layer = _WNLinear if weight_norm else nnx.Linear
        sizes = [(din if i == 0 else width, width - din if i + 1 == skip else width) for i in range(depth)]
        self.hidden = nnx.List([layer(a, b, rngs=rngs) for a, b in sizes])
        self.out = layer(width, 1, rngs=rngs)
        self.skip = skip
        self.latent_dim = latent_dim

    def __call__(self, z, x):
        inp = jnp.concatenate([z, x])
        h = inp
        for i, lin in enumerate(self.hidden):
            if i == self.skip:
                h = jnp.concatenate([h, inp])
            h = jax.nn.relu(lin(h))
        # tanh output as DeepSDF: predictions live in (-1, 1), the loss clamps to +-delta anyway.
        return jnp.tanh(self.out(h)[0])


def decode(model: Decoder, z: ArrayLike, x: ArrayLike) -> jax.Array:
    """Predicted signed distance at one point of the shape with code ``z``.

    Args:
        model: the decoder.
        z: ``(latent_dim,)`` code.
        x: ``(3,)`` point.

    Returns:
        Scalar in (-1, 1).

    Examples:
        >>> model = Decoder(8, width=32, depth=4, skip=2, rngs=nnx.Rngs(0))
        >>> bool(-1 < decode(model, jnp.zeros(8), jnp.ones(3)) < 1)
        True
    """
    return model(jnp.asarray(z), jnp.asarray(x))


def clamped_l1(pred: ArrayLike, target: ArrayLike, *, delta: float = 0.1) -> jax.Array:
    """DeepSDF loss ``|clamp(pred, delta) - clamp(target, delta)|`` (elementwise).

    Args:
        pred: predicted signed distances.
        target: true signed distances (same shape).
        delta: clamp distance.

    Returns:
        The elementwise loss.

    Examples:
        >>> clamped_l1(jnp.array([0.05, 0.3]), jnp.array([0.0, 0.2])).round(4).tolist()
        [0.05, 0.0]

    References:
        Park et al., "DeepSDF", Eq. 4.
    """
    return jnp.abs(jnp.clip(pred, -delta, delta) - jnp.clip(target, -delta, delta))


def shape_loss(
    model: Decoder,
    z: ArrayLike,
    samples: ArrayLike,
    *,
    delta: float = 0.1,
    code_weight: float = 1e-4,
    weights: ArrayLike | None = None,
) -> jax.Array:
    """Loss of one shape: mean clamped L1 over its samples plus ``code_weight ||z||^2``.

    ``code_weight = 1 / (sigma^2 N)`` reproduces DeepSDF's objective (Eq. 9: the sum over a shape's
    N samples plus ``||z||^2 / sigma^2``) divided by N.

    Args:
        model: the decoder.
        z: ``(latent_dim,)`` code.
        samples: ``(n, 4)`` xyz and signed distance.
        delta: clamp distance.
        code_weight: weight of the Gaussian code prior.
        weights: optional ``(n,)`` sample weights (0 drops a sample: partial observations).

    Returns:
        Scalar loss.

    Examples:
        >>> model = Decoder(8, width=32, depth=4, skip=2, rngs=nnx.Rngs(0))
        >>> shape_loss(model, jnp.zeros(8), jnp.zeros((16, 4))).shape
        ()
    """
    samples = jnp.asarray(samples)
    pred = jax.vmap(decode, in_axes=(None, None, 0))(model, z, samples[:, :3])
    err = clamped_l1(pred, samples[:, 3], delta=delta)
    if weights is None:
        data = jnp.mean(err)
    else:
        data = jnp.sum(err * weights) / jnp.maximum(jnp.sum(weights), 1.0)
    return data + code_weight * jnp.sum(jnp.square(z))
