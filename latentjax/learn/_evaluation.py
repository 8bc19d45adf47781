"""What the trainers log after each epoch: the mean ELBO and reconstruction MSE of held-out images.

Re-exported by ``latentjax.learn.train`` (``train.evaluate``, ``train.epoch_evaluation``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.typing import ArrayLike

from latentjax.learn import _xla as xla
from latentjax.learn import models
from latentjax.learn.state import eval_key


@functools.partial(xla.lazy_jit, static_argnames="beta")
def _evaluate_chunk(model, key, images, *, beta):
    x = models.to_float(images)
    keys = jax.random.split(key, images.shape[0])
    elbo = jax.vmap(functools.partial(models.elbo, beta=beta), in_axes=(None, 0, 0))(model, keys, x)
    rec = jax.vmap(models.reconstruct, in_axes=(None, 0))(model, x)
    return elbo, jnp.mean((rec - x) ** 2, axis=(1, 2, 3))


def evaluate(
    model: models.AutoEncoder, key: jax.Array, images: ArrayLike, *, beta: float = 1.0, batch_size: int = 500
) -> dict:
    """Mean ELBO and reconstruction MSE (pixels in [0, 1]) of uint8 images.

    In chunks of ``batch_size`` (the last one padded), so it compiles once per model.

    Args:
      model: the model.
      key: draws the ELBO's latents (chunk ``i`` uses ``fold_in(key, i)``).
      images: uint8 ``(n, h, w, c)``.
      beta: the KL weight.
      batch_size: images per chunk.

    Returns:
      ``{"elbo": float, "recon_mse": float}``.

    Examples:
      >>> cfg = models.Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8)
      >>> model = models.create(jax.random.key(0), cfg)
      >>> sorted(evaluate(model, jax.random.key(1), np.zeros((10, 8, 8, 1), np.uint8)))
      ['elbo', 'recon_mse']
    """
    images = np.asarray(images)
    n = len(images)
    bs = min(batch_size, n)
    pad = (-n) % bs
    if pad:
        images = np.concatenate([images, np.zeros((pad,) + images.shape[1:], images.dtype)])
    elbos, mses = [], []
    for i in range(0, len(images), bs):
        e, m = _evaluate_chunk(model, jax.random.fold_in(key, i), images[i : i + bs], beta=float(beta))
        elbos.append(e)
        mses.append(m)
    return {
        "elbo": float(jnp.mean(jnp.concatenate(elbos)[:n])),
        "recon_mse": float(jnp.mean(jnp.concatenate(mses)[:n])),
    }


def epoch_evaluation(
    graphdef,
    eval_images: np.ndarray | None,
    *,
    steps_per_epoch: int,
    beta: float,
    host: Callable | None = None,
) -> Callable | None:
    """The per-epoch evaluation a trainer logs (``loop.run``'s ``describe``).

    At the end of each epoch: ``eval_elbo`` and ``eval_recon_mse`` of ``eval_images``
    (``evaluate``, with ``state.eval_key``).

    Args:
      graphdef: the model's ``nnx.GraphDef``.
      eval_images: validated uint8 images, or None for no evaluation.
      steps_per_epoch: steps of one epoch.
      beta: the KL weight.
      host: the single-device ``TrainState`` of a state laid out over devices (None: as it is).

    Returns:
      ``describe(state, losses, step) -> dict``, or None without ``eval_images``.

    Examples:
      >>> epoch_evaluation(None, None, steps_per_epoch=3, beta=1.0) is None
      True
    """
    if eval_images is None:
        return None

    def describe(st, losses, done):
        if done % steps_per_epoch:
            return {}
        st = host(st) if host else st
        ev = evaluate(nnx.merge(graphdef, st.params), eval_key(st), eval_images, beta=beta)
        return {"eval_elbo": ev["elbo"], "eval_recon_mse": ev["recon_mse"]}

    return describe
