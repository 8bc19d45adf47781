"""DeepSDF auto-decoder: training, reconstruction of unseen shapes, Chamfer distance.

An MLP ``f(z, x) -> sdf`` with a learnable code per shape is trained by clamped L1 with a Gaussian
code prior; unseen shapes are reconstructed (or completed from partial samples) by optimising fresh
codes; shapes are compared by DeepSDF's Chamfer distance.

The network and its per-shape loss (``Decoder``, ``decode``, ``clamped_l1``, ``shape_loss``) live in
``_decoder.py`` and are used from here: ``deepsdf.Decoder``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.typing import ArrayLike
from scipy.spatial import cKDTree

from latentjax.errors import InputError
from latentjax.shapes._decoder import Decoder, clamped_l1, decode, shape_loss

__all__ = [
    "Decoder",
    "FitResult",
    "State",
    "chamfer",
    "clamped_l1",
    "decode",
    "fit",
    "init",
    "make_step",
    "reconstruct",
    "shape_loss",
]


class State(NamedTuple):
    """Auto-decoder training state.

    Attributes:
        step: optimiser steps taken (int32 scalar).
        params: the decoder's ``nnx.State`` (``nnx.split(model)[1]``).
        codes: ``(num_shapes, latent_dim)`` the code table.
        opt_state: the optax state of ``(params, codes)``.
        key: step ``s`` draws its batch with ``fold_in(key, s)``.
    """

    step: jax.Array
    params: nnx.State
    codes: jax.Array
    opt_state: optax.OptState
    key: jax.Array


class FitResult(NamedTuple):
    """What ``fit`` returns.

    Attributes:
        model: the trained ``Decoder``.
        codes: ``(num_shapes, latent_dim)`` the trained code of each shape.
        losses: ``(num_steps,)`` the training loss of every step.
    """

    model: Decoder
    codes: jax.Array
    losses: np.ndarray


def init(
    key: jax.Array,
    model: Decoder,
    *,
    num_shapes: int,
    optimizer: optax.GradientTransformation,
    code_std: float = 0.01,
) -> tuple[nnx.GraphDef, State]:
    """Split the model and start training with a fresh code table, N(0, code_std^2) as DeepSDF.

    Args:
        key: random key (the codes and every step's batch).
        model: a fresh ``Decoder``.
        num_shapes: rows of the code table.
        optimizer: the optax transformation of network and codes.
        code_std: standard deviation of the initial codes.

    Returns:
        ``(graphdef, state)``.

    Examples:
        >>> model = Decoder(8, width=32, depth=4, skip=2, rngs=nnx.Rngs(0))
        >>> graphdef, state = init(jax.random.key(0), model, num_shapes=5, optimizer=optax.adam(1e-3))
        >>> state.codes.shape, int(state.step)
        ((5, 8), 0)
    """
    k_codes, k_steps = jax.random.split(key)
    graphdef, params = nnx.split(model)
    codes = code_std * jax.random.normal(k_codes, (num_shapes, model.latent_dim))
    opt_state = optimizer.init((params, codes))
    return graphdef, State(jnp.zeros((), jnp.int32), params, codes, opt_state, k_steps)


def make_step(
    graphdef: nnx.GraphDef,
    optimizer: optax.GradientTransformation,
    *,
    shapes_per_batch: int,
    points_per_shape: int,
    delta: float = 0.1,
    code_weight: float = 1e-4,
) -> Callable[[State, jax.Array], tuple[State, jax.Array]]:
    """The training step ``step(state, data) -> (state, loss)`` on ``data (num_shapes, n, 4)``.

    Each step draws ``shapes_per_batch`` shapes and ``points_per_shape`` samples of each with
    ``fold_in(state.key, state.step)``; the per-shape loss (``shape_loss``) is vmapped over the batch.

    Args:
        graphdef: the decoder's ``nnx.GraphDef`` (from ``init``).
        optimizer: the optax transformation ``init`` was given.
        shapes_per_batch: shapes per step.
        points_per_shape: samples per shape per step.
        delta: clamp distance of the loss.
        code_weight: weight of the code prior (see ``shape_loss``).

    Returns:
        The step function, pure and not yet jitted.

    Examples:
        >>> model = Decoder(8, width=32, depth=4, skip=2, rngs=nnx.Rngs(0))
        >>> graphdef, state = init(jax.random.key(0), model, num_shapes=3, optimizer=optax.adam(1e-3))
        >>> step = jax.jit(make_step(graphdef, optax.adam(1e-3), shapes_per_batch=2, points_per_shape=8))
        >>> state, loss = step(state, jnp.zeros((3, 16, 4)))
        >>> int(state.step), loss.shape
        (1, ())
    """

    def loss_fn(trainable, idx, batch):
        params, codes = trainable
        model = nnx.merge(graphdef, params)
        per_shape = jax.vmap(lambda z, s: shape_loss(model, z, s, delta=delta, code_weight=code_weight))(
            codes[idx], batch
        )
        return jnp.mean(per_shape)

    def step(state: State, data: jax.Array) -> tuple[State, jax.Array]:
        ks, kp = jax.random.split(jax.random.fold_in(state.key, state.step))
        num_shapes, n = data.shape[:2]
        idx = jax.random.choice(ks, num_shapes, (shapes_per_batch,), replace=shapes_per_batch > num_shapes)
        pts = jax.random.randint(kp, (shapes_per_batch, points_per_shape), 0, n)
        batch = data[idx[:, None], pts]
        trainable = (state.params, state.codes)
        loss, grads = jax.value_and_grad(loss_fn)(trainable, idx, batch)
        updates, opt_state = optimizer.update(grads, state.opt_state, trainable)
        params, codes = optax.apply_updates(trainable, updates)
        return State(state.step + 1, params, codes, opt_state, state.key), loss

    return step


def _check_samples(where: str, samples: ArrayLike) -> jax.Array:
    samples = jnp.asarray(samples, jnp.float32)
    if samples.ndim != 3 or samples.shape[2] != 4:
        raise InputError(f"deepsdf.{where}: SDF samples must be (num_shapes, n, 4), got {samples.shape}")
    return samples


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
    callback: Callable[[int, np.ndarray], None] | None = None,
) -> FitResult:
    """Train an auto-decoder on SDF samples of many shapes (``init``, then ``make_step``'s steps).

    Runs ``steps_per_call`` steps per jitted call as one ``lax.scan`` (the last call is masked, so
    every call has the same compiled length).

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
        steps_per_call: steps per scan.
        callback: optional ``callback(steps_done, losses_of_the_call)`` after each call.

    Returns:
        ``FitResult(model, codes (num_shapes, latent_dim), losses (num_steps,))``.

    Raises:
        InputError: when ``data`` is not ``(num_shapes, n, 4)``.

    Examples:
        >>> model = Decoder(8, width=32, depth=4, skip=2, rngs=nnx.Rngs(0))
        >>> result = fit(jax.random.key(0), model, jnp.zeros((4, 64, 4)), num_steps=2,
        ...              shapes_per_batch=2, points_per_shape=16)
        >>> result.codes.shape, result.losses.shape
        ((4, 8), (2,))

    References:
        Park et al., "DeepSDF", Sec. 4.2 (auto-decoder training, Eq. 9).
    """
    data = _check_samples("fit", data)
    optimizer = optax.adam(learning_rate)
    graphdef, state = init(key, model, num_shapes=data.shape[0], optimizer=optimizer)
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
            s2, loss = step(s, data)
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
    return FitResult(nnx.merge(graphdef, state.params), state.codes, np.concatenate(losses))


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

    Raises:
        InputError: when ``samples`` or ``weights`` have the wrong shape.

    Examples:
        >>> model = Decoder(8, width=32, depth=4, skip=2, rngs=nnx.Rngs(0))
        >>> reconstruct(model, jax.random.key(0), jnp.zeros((2, 32, 4)), num_steps=2).shape
        (2, 8)

    References:
        Park et al., "DeepSDF", Sec. 4.3 (inference, Eq. 10) and Sec. 6.3 (shape completion).
    """
    samples = _check_samples("reconstruct", samples)
    s, n = samples.shape[:2]
    w = jnp.ones((s, n)) if weights is None else jnp.asarray(weights, jnp.float32)
    if w.shape != (s, n):
        raise InputError(f"deepsdf.reconstruct: weights must be {(s, n)}, got {w.shape}")
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


def _nearest(points: ArrayLike, queries: ArrayLike) -> np.ndarray:
    # A k-d tree rather than look.neighbors.knn: Chamfer compares 30,000-point 3-D sets on the host
    # in float64, O(n log n) where the brute-force search would build 9e8 distances.
    return cKDTree(np.asarray(points, np.float64)).query(np.asarray(queries, np.float64))[0]


def chamfer(a: ArrayLike, b: ArrayLike) -> float:
    """DeepSDF's Chamfer distance: mean squared nearest-neighbour distance ``a -> b`` plus ``b -> a``.

    DeepSDF evaluates it on 30,000 points sampled on each surface (``samples.surface_points``).

    Args:
        a: ``(n, 3)`` points.
        b: ``(m, 3)`` points.

    Returns:
        The distance (symmetric; 0 for equal sets).

    Examples:
        >>> round(chamfer(np.zeros((1, 3)), np.ones((1, 3))), 6)
        6.0

    References:
        Park et al., "DeepSDF", Sec. 6 (metrics); ``deep_sdf/metrics/chamfer.py``.
    """
    return float(np.mean(_nearest(b, a) ** 2) + np.mean(_nearest(a, b) ** 2))
