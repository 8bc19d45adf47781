"""DeepSDF auto-decoder: an MLP ``f(z, x) -> sdf`` with a learnable code per shape, trained by
clamped L1 with a Gaussian code prior; unseen shapes are reconstructed (or completed from partial
samples) by optimising fresh codes; shapes are compared by DeepSDF's Chamfer distance.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.typing import ArrayLike
from scipy.spatial import cKDTree

from latentjax.errors import DataError


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
            raise DataError(
                f"need 0 < skip < depth and width > latent_dim + 3; got skip={skip}, "
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
    """Predicted signed distance at one point ``x`` (3,) of the shape with code ``z``."""
    return model(jnp.asarray(z), jnp.asarray(x))


def clamped_l1(pred: ArrayLike, target: ArrayLike, *, delta: float = 0.1) -> jax.Array:
    """DeepSDF loss ``|clamp(pred, delta) - clamp(target, delta)|`` (elementwise).

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
    """Loss of one shape: mean clamped L1 over its samples ``(n, 4)`` plus ``code_weight ||z||^2``.

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
    """
    samples = jnp.asarray(samples)
    pred = jax.vmap(decode, in_axes=(None, None, 0))(model, z, samples[:, :3])
    err = clamped_l1(pred, samples[:, 3], delta=delta)
    if weights is None:
        data = jnp.mean(err)
    else:
        data = jnp.sum(err * weights) / jnp.maximum(jnp.sum(weights), 1.0)
    return data + code_weight * jnp.sum(jnp.square(z))


def init_codes(key: jax.Array, num_shapes: int, latent_dim: int, *, std: float = 0.01) -> jax.Array:
    """The code table ``(num_shapes, latent_dim)``, N(0, std^2) as DeepSDF's initialisation."""
    return std * jax.random.normal(key, (num_shapes, latent_dim))


class FitState(NamedTuple):
    """Auto-decoder training state: network parameters, the code table, optimiser state, step."""

    params: nnx.State
    codes: jax.Array
    opt_state: optax.OptState
    step: jax.Array


def init(
    key: jax.Array, model: Decoder, num_shapes: int, *, optimizer: optax.GradientTransformation
) -> tuple[nnx.GraphDef, FitState]:
    """Split the model and start training: ``(graphdef, FitState)`` with fresh codes."""
    graphdef, params = nnx.split(model)
    codes = init_codes(key, num_shapes, model.latent_dim)
    return graphdef, FitState(params, codes, optimizer.init((params, codes)), jnp.zeros((), jnp.int32))


def make_step(
    graphdef: nnx.GraphDef,
    optimizer: optax.GradientTransformation,
    *,
    shapes_per_batch: int,
    points_per_shape: int,
    delta: float = 0.1,
    code_weight: float = 1e-4,
):
    """One training step ``step(state, key, data) -> (state, loss)`` on ``data (S, N, 4)``.

    Each step draws ``shapes_per_batch`` shapes and ``points_per_shape`` samples of each, using
    ``fold_in(key, state.step)``; the per-shape loss is vmapped over the batch.
    """

    def loss_fn(trainable, idx, batch):
        params, codes = trainable
        model = nnx.merge(graphdef, params)
        per_shape = jax.vmap(lambda z, s: shape_loss(model, z, s, delta=delta, code_weight=code_weight))(
            codes[idx], batch
        )
        return jnp.mean(per_shape)

    def step(state: FitState, key: jax.Array, data: jax.Array):
        k = jax.random.fold_in(key, state.step)
        ks, kp = jax.random.split(k)
        num_shapes, n = data.shape[:2]
        idx = jax.random.choice(ks, num_shapes, (shapes_per_batch,), replace=shapes_per_batch > num_shapes)
        pts = jax.random.randint(kp, (shapes_per_batch, points_per_shape), 0, n)
        batch = data[idx[:, None], pts]
        trainable = (state.params, state.codes)
        loss, grads = jax.value_and_grad(loss_fn)(trainable, idx, batch)
        updates, opt_state = optimizer.update(grads, state.opt_state, trainable)
        params, codes = optax.apply_updates(trainable, updates)
        return FitState(params, codes, opt_state, state.step + 1), loss

    return step


def fit(
    key: jax.Array,
    model: Decoder,
    data: ArrayLike,
    *,
    num_steps: int,
    shapes_per_batch: int = 16,
    points_per_shape: int = 1024,
    learning_rate: float = 1e-3,
    delta: float = 0.1,
    code_sigma: float = 0.01,
    steps_per_call: int = 100,
    callback=None,
) -> tuple[Decoder, jax.Array, np.ndarray]:
    """Train an auto-decoder on SDF samples of many shapes.

    Runs ``steps_per_call`` jitted steps per call as one ``lax.scan``.

    Args:
        key: random key (codes and batches).
        model: a fresh ``Decoder``.
        data: ``(num_shapes, n, 4)`` SDF samples per shape.
        num_steps: optimisation steps.
        shapes_per_batch: shapes per step.
        points_per_shape: samples per shape per step.
        learning_rate: Adam step size (network and codes).
        delta: clamp distance of the loss.
        code_sigma: prior std of the codes; the weight is ``1 / (code_sigma^2 n)`` (DeepSDF Eq. 9).
        steps_per_call: steps per scan (the loss history is returned per step).
        callback: optional ``callback(step, losses_of_the_call)`` after each call.

    Returns:
        ``(model, codes (num_shapes, latent_dim), losses (num_steps,))``.

    Examples:
        >>> model = Decoder(8, width=32, depth=4, skip=2, rngs=nnx.Rngs(0))
        >>> data = jnp.zeros((4, 64, 4))
        >>> model, codes, losses = fit(jax.random.key(0), model, data, num_steps=2,
        ...                            shapes_per_batch=2, points_per_shape=16)
        >>> codes.shape
        (4, 8)

    References:
        Park et al., "DeepSDF", Sec. 4.2 (auto-decoder training, Eq. 9).
    """
    data = jnp.asarray(data, jnp.float32)
    if data.ndim != 3 or data.shape[2] != 4:
        raise DataError(f"SDF samples must be (num_shapes, n, 4), got {data.shape}")
    optimizer = optax.adam(learning_rate)
    kc, kt = jax.random.split(key)
    graphdef, state = init(kc, model, data.shape[0], optimizer=optimizer)
    step = make_step(
        graphdef,
        optimizer,
        shapes_per_batch=shapes_per_batch,
        points_per_shape=points_per_shape,
        delta=delta,
        code_weight=1.0 / (code_sigma**2 * data.shape[1]),
    )

    @jax.jit
    def run(state, data, length_mask):
        def body(s, m):
            s2, loss = step(s, kt, data)
            # The last call may be shorter: masked steps keep the state (one compiled length).
            return jax.tree.map(lambda a, b: jnp.where(m, a, b), s2, s), loss

        return jax.lax.scan(body, state, length_mask)

    losses = []
    done = 0
    while done < num_steps:
        todo = min(steps_per_call, num_steps - done)
        mask = jnp.arange(steps_per_call) < todo
        state, loss = run(state, data, mask)
        losses.append(np.asarray(loss)[:todo])
        done += todo
        if callback is not None:
            callback(done, losses[-1])
    model = nnx.merge(graphdef, state.params)
    return model, state.codes, np.concatenate(losses)


def reconstruct(
    model: Decoder,
    key: jax.Array,
    samples: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    num_steps: int = 800,
    learning_rate: float = 5e-3,
    points_per_step: int = 2048,
    delta: float = 0.1,
    code_sigma: float = 0.01,
    init_std: float = 0.01,
) -> jax.Array:
    """Codes of unseen shapes by optimising fresh codes against their SDF samples (network fixed).

    Vectorised over shapes (vmap of a scanned Adam loop). Partial observations (shape completion):
    pass only the observed samples, or zero ``weights`` on unobserved ones.

    Args:
        model: a trained ``Decoder``.
        key: random key (initial codes and sample subsets).
        samples: ``(num_shapes, n, 4)`` SDF samples of each shape.
        weights: optional ``(num_shapes, n)`` sample weights.
        num_steps: Adam steps (DeepSDF: 800).
        learning_rate: Adam step size (DeepSDF: 5e-3).
        points_per_step: samples drawn per step and shape.
        delta: clamp distance.
        code_sigma: prior std; weight ``1 / (code_sigma^2 n)`` as in training.
        init_std: std of the initial codes.

    Returns:
        ``(num_shapes, latent_dim)`` codes.

    References:
        Park et al., "DeepSDF", Sec. 4.3 (inference, Eq. 10) and Sec. 6.3 (shape completion).
    """
    samples = jnp.asarray(samples, jnp.float32)
    if samples.ndim != 3 or samples.shape[2] != 4:
        raise DataError(f"SDF samples must be (num_shapes, n, 4), got {samples.shape}")
    s, n = samples.shape[:2]
    w = jnp.ones((s, n)) if weights is None else jnp.asarray(weights, jnp.float32)
    if w.shape != (s, n):
        raise DataError(f"weights must be {(s, n)}, got {w.shape}")
    opt = optax.adam(learning_rate)
    code_weight = 1.0 / (code_sigma**2 * n)
    k = min(points_per_step, n)

    def one(key, smp, wts):
        k0, kl = jax.random.split(key)
        z = init_std * jax.random.normal(k0, (model.latent_dim,))

        def body(carry, t):
            z, opt_state = carry
            # With replacement: a permutation of all n samples per step would cost more than the step.
            idx = jax.random.randint(jax.random.fold_in(kl, t), (k,), 0, n)
            g = jax.grad(
                lambda z: shape_loss(
                    model, z, smp[idx], delta=delta, code_weight=code_weight, weights=wts[idx]
                )
            )(z)
            upd, opt_state = opt.update(g, opt_state, z)
            return (optax.apply_updates(z, upd), opt_state), None

        (z, _), _ = jax.lax.scan(body, (z, opt.init(z)), jnp.arange(num_steps))
        return z

    return jax.jit(jax.vmap(one))(jax.random.split(key, s), samples, w)


def nearest(points: ArrayLike, queries: ArrayLike) -> np.ndarray:
    """Distance from each query ``(m, 3)`` to its nearest point in ``points`` (exact, k-d tree)."""
    return cKDTree(np.asarray(points, np.float64)).query(np.asarray(queries, np.float64))[0]


def chamfer(a: ArrayLike, b: ArrayLike) -> float:
    """DeepSDF's Chamfer distance: mean squared nearest-neighbour distance ``a -> b`` plus ``b -> a``.

    DeepSDF evaluates it on 30,000 points sampled on each surface.

    Examples:
        >>> round(chamfer(np.zeros((1, 3)), np.ones((1, 3))), 6)
        6.0

    References:
        Park et al., "DeepSDF", Sec. 6 (metrics); ``deep_sdf/metrics/chamfer.py``.
    """
    return float(np.mean(nearest(b, a) ** 2) + np.mean(nearest(a, b) ** 2))
