"""Training one model: the loss, a pure step over a small ``state.TrainState``, and ``fit``.

The step is written for one global batch and knows nothing of devices, so
``latentjax.learn.parallel`` shards it over a mesh (or maps it with ``pmap``) and
``latentjax.learn.population`` vmaps it over models. ``fit`` builds the step, runs it in segments
(``loop.device_segment``, in the mode ``tuning.choose_mode`` picks) and leaves the run folder,
resuming, the data order, checkpoints and divergence to ``loop.run``, which every trainer shares.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.typing import ArrayLike

from latentjax.errors import InputError
from latentjax.learn import _onednn as onednn
from latentjax.learn import _xla as xla
from latentjax.learn import loop, models, tuning
from latentjax.learn.state import TrainState, eval_key, init, step_key


def _summed_loss(params, graphdef, keys: jax.Array, images: jax.Array, *, beta: float) -> jax.Array:
    """The negative ELBO of uint8 images ``(b, h, w, c)`` summed over them; key ``keys[i]`` each."""
    model = nnx.merge(graphdef, params)
    x = models.to_float(images)
    per_example = jax.vmap(functools.partial(models.elbo, beta=beta), in_axes=(None, 0, 0))(model, keys, x)
    return -jnp.sum(per_example)


def loss_fn(params, key: jax.Array, images: jax.Array, *, graphdef, beta: float = 1.0) -> jax.Array:
    """The mean negative ELBO of a batch; example ``i`` draws with ``jax.random.split(key, b)[i]``.

    Args:
      params: the model's ``nnx.State``.
      key: the step's key.
      images: uint8 ``(b, h, w, c)``.
      graphdef: the model's ``nnx.GraphDef``.
      beta: the KL weight.

    Returns:
      A scalar (differentiable in ``params``).

    Examples:
      >>> from latentjax.learn import state
      >>> cfg = models.Config(latent_dim=2, hidden=8)
      >>> graphdef, st, _ = state.init(jax.random.key(0), cfg, learning_rate=1e-3)
      >>> loss_fn(st.params, jax.random.key(1), np.zeros((4, 28, 28, 1), np.uint8), graphdef=graphdef).shape
      ()
    """
    keys = jax.random.split(key, images.shape[0])
    return _summed_loss(params, graphdef, keys, images, beta=beta) / images.shape[0]


def _accumulated_value_and_grad(params, key, images, *, graphdef, beta: float, microbatches: int):
    """``value_and_grad(loss_fn)`` over ``microbatches`` equal slices of the batch, summed.

    Every example keeps the key ``loss_fn`` gives it, so the result equals the one-pass gradient
    up to the order of the float sums. The slices are unrolled in the compiled step: XLA:CPU then
    works on activations a fraction of the size (they stay in cache) and can run two slices'
    ops side by side; the conv VAE step at batch 256 on 2 cores is ~10 % faster with 2.
    """
    b = images.shape[0]
    if b % microbatches:
        raise InputError(
            f"train.make_step: the batch of {b} does not split into {microbatches} equal microbatches"
        )
    keys = jax.random.split(key, b)
    part = b // microbatches
    loss, grads = 0.0, None
    for i in range(microbatches):
        sl = slice(i * part, (i + 1) * part)
        value, g = jax.value_and_grad(_summed_loss)(params, graphdef, keys[sl], images[sl], beta=beta)
        loss = loss + value
        grads = g if grads is None else jax.tree.map(jnp.add, grads, g)
    return loss / b, jax.tree.map(lambda g: g / b, grads)


def _shard_loss(params, key, images, *, graphdef, beta: float, axis_name: str):
    """``loss_fn`` of this device's shard of a global batch, each example keeping its global key."""
    local = images.shape[0]
    keys = jax.random.split(key, local * jax.lax.axis_size(axis_name))
    mine = jax.lax.dynamic_slice_in_dim(keys, jax.lax.axis_index(axis_name) * local, local)
    return _summed_loss(params, graphdef, mine, images, beta=beta) / local


def make_step(
    graphdef,
    tx: optax.GradientTransformation,
    *,
    beta: float = 1.0,
    microbatches: int = 1,
    conv_kernels: str = "xla",
    axis_name: str | None = None,
) -> Callable:
    """The training step ``step(state, images) -> (state, {"loss": loss})``, pure and not yet jitted.

    Args:
      graphdef: the model's ``nnx.GraphDef``.
      tx: the optax transformation.
      beta: the KL weight.
      microbatches: compute the batch's gradient in this many equal slices, summed (the same
        gradient up to float rounding; see ``tuning.default_microbatches``).
      conv_kernels: ``"xla"``, or ``"onednn"`` for the conv layers' kernels through oneDNN
        (single-device CPU steps only; see ``tuning.default_conv_kernels``).
      axis_name: under ``jax.pmap`` over this axis, ``images`` is one device's shard of the global
        batch: each example keeps its key of the global batch and loss and gradients are
        ``lax.pmean``-ed (``parallel.make_pmap_step``). Sharded ``jit`` needs nothing: XLA
        inserts the reductions.

    Returns:
      The step; ``images`` are uint8 ``(b, h, w, c)``.

    Raises:
      InputError: an unknown ``conv_kernels`` (or oneDNN unavailable), ``microbatches`` < 1, or
        ``axis_name`` with microbatches or oneDNN.

    Examples:
      >>> from latentjax.learn import state
      >>> cfg = models.Config(latent_dim=2, hidden=8)
      >>> graphdef, st, tx = state.init(jax.random.key(0), cfg, learning_rate=1e-3)
      >>> st, metrics = jax.jit(make_step(graphdef, tx))(st, np.zeros((4, 28, 28, 1), np.uint8))
      >>> int(st.step)
      1
    """
    if conv_kernels not in ("xla", "onednn"):
        raise InputError(f"train.make_step: conv_kernels must be 'xla' or 'onednn', got {conv_kernels!r}")
    if conv_kernels == "onednn" and not onednn.available():
        raise InputError(
            f"train.make_step: conv_kernels='onednn' but the oneDNN kernels are unavailable: "
            f"{onednn.unavailable_reason()}"
        )
    if int(microbatches) < 1:
        raise InputError(f"train.make_step: microbatches must be >= 1, got {microbatches}")
    microbatches = int(microbatches)
    if axis_name is not None and (microbatches > 1 or conv_kernels != "xla"):
        raise InputError("train.make_step: axis_name (pmap) takes microbatches=1 and conv_kernels='xla'")

    def step(st: TrainState, images: jax.Array):
        key = step_key(st)
        with onednn.enabled(conv_kernels == "onednn"):  # read while this is traced
            if axis_name is not None:
                loss, grads = jax.value_and_grad(_shard_loss)(
                    st.params, key, images, graphdef=graphdef, beta=beta, axis_name=axis_name
                )
                loss, grads = jax.lax.pmean((loss, grads), axis_name)
            elif microbatches == 1:
                loss, grads = jax.value_and_grad(loss_fn)(
                    st.params, key, images, graphdef=graphdef, beta=beta
                )
            else:
                loss, grads = _accumulated_value_and_grad(
                    st.params, key, images, graphdef=graphdef, beta=beta, microbatches=microbatches
                )
        updates, opt_state = tx.update(grads, st.opt_state, st.params)
        params = optax.apply_updates(st.params, updates)
        return TrainState(st.step + 1, params, opt_state, st.key), {"loss": loss}

    return step


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


def fit(
    key: jax.Array,
    config: models.Config,
    train_images: ArrayLike,
    *,
    epochs: int,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    beta: float = 1.0,
    out_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    keep: int = 3,
    resume: bool | int = False,
    progress: bool = False,
    eval_images: ArrayLike | None = None,
    mode: str = "auto",
    device_bytes_limit: int = 2**31,
    microbatches: int | None = None,
    conv_kernels: str | None = None,
    settings: dict | None = None,
) -> loop.FitResult:
    """Trains a model on uint8 images and returns it with its final state and history.

    Args:
      key: the run's key (initialisation, per-step randomness and data order derive from it).
      config: the model.
      train_images: uint8 ``(n, h, w, c)``.
      epochs: passes over the data (the last incomplete batch of each is dropped).
      batch_size: images per step.
      learning_rate: Adam's step size.
      beta: the KL weight.
      out_dir: where ``config.json``, ``metrics.jsonl`` and ``checkpoint/`` go (None: nothing
        is written).
      checkpoint_every: steps between checkpoints (default: one epoch); one is always saved at
        the end.
      keep: checkpoints kept.
      resume: continue the run in ``out_dir`` from its newest intact checkpoint (a corrupt
        latest one is skipped with a warning), or from the checkpoint of this step when an int
        (``--resume-step N``); the result equals the uninterrupted run bit for bit on CPU. The
        checkpoint may come from ``parallel.fit_data_parallel`` with the same settings (equal up
        to summation order).
      progress: show a progress bar.
      eval_images: optional uint8 images whose ELBO and MSE are logged after each epoch.
      mode: ``"scan"``, ``"loop"``, ``"host"`` or ``"auto"`` (``tuning.choose_mode``).
      device_bytes_limit: ``"auto"`` feeds batches from the host above this data set size.
      microbatches: slices the batch's gradient is computed in (``make_step``); None picks
        ``tuning.default_microbatches``. It changes float rounding only, not the trajectory's meaning.
      conv_kernels: ``"xla"`` or ``"onednn"`` (``make_step``); None picks ``tuning.default_conv_kernels``.
        Float rounding only, like ``microbatches``.
      settings: extra JSON-able values stored in ``config.json`` (e.g. the CLI's ``seed``).

    Returns:
      ``loop.FitResult(model, state, history)``; ``history`` holds the records of ``metrics.jsonl``.

    Raises:
      TrainingDiverged: the loss became NaN or infinite (the last good checkpoint is kept).

    Examples:
      >>> cfg = models.Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8)
      >>> res = fit(jax.random.key(0), cfg, np.zeros((32, 8, 8, 1), np.uint8), epochs=2, batch_size=16)
      >>> int(res.state.step), len(res.history)
      (4, 2)
    """
    job = loop.prepare(
        config,
        train_images,
        epochs=epochs,
        batch_size=batch_size,
        checkpoint_every=checkpoint_every,
        eval_images=eval_images,
    )
    config = job.config
    graphdef, st, tx = init(key, config, learning_rate=learning_rate)
    if microbatches is None:
        microbatches = tuning.default_microbatches(config, batch_size)
    conv_kernels = conv_kernels or tuning.default_conv_kernels(config)
    mode = tuning.choose_mode(mode, config, nbytes=job.images.nbytes, device_bytes_limit=device_bytes_limit)
    step = make_step(graphdef, tx, beta=beta, microbatches=microbatches, conv_kernels=conv_kernels)
    settings = {
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "beta": beta,
        "epochs": epochs,
        "checkpoint_every": job.every,
        "microbatches": microbatches,
        "conv_kernels": conv_kernels,
        **(settings or {}),
    }
    return loop.run(
        job,
        graphdef,
        st,
        loop.device_segment(step, job.images, mode),
        settings=settings,
        out_dir=out_dir,
        resume=resume,
        keep=keep,
        progress=progress,
        tags={"mode": mode},
        describe=epoch_evaluation(graphdef, job.eval_images, steps_per_epoch=job.steps_per_epoch, beta=beta),
    )


def throughput(history: list) -> float:
    """Images per second over a run, leaving out the first segment (it includes compilation).

    Args:
      history: ``FitResult.history``.

    Returns:
      Images per second (0.0 for an empty history).

    Examples:
      >>> throughput([{"seconds": 9.0, "images_per_s": 1.0}, {"seconds": 2.0, "images_per_s": 50.0}])
      50.0
    """
    rows = history[1:] or history
    secs = sum(r["seconds"] for r in rows)
    imgs = sum(r["images_per_s"] * r["seconds"] for r in rows)
    return imgs / secs if secs else 0.0
