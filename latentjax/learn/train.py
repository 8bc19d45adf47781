"""Training: a pure step over a small ``TrainState``, compiled once, and ``fit`` to run it.

The step is written for one global batch and knows nothing of devices, so ``latentjax.parallel``
shards it over a mesh (or maps it with ``pmap``) without rewriting it. ``fit`` runs epochs three
ways: the data set on the device and a whole segment of steps as one ``lax.scan`` (dense models;
the fast path), a Python loop over the jitted step gathering batches on the device (conv models on
CPU, where convolutions inside a rolled scan are ~30x slower, ``../shared/PERF_NOTES.md``), or
host-fed batches when the data set does not fit on the device.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from latentjax.errors import DataError, LatentJaxError
from latentjax.learn import _onednn as onednn
from latentjax.learn import _xla as xla
from latentjax.learn import models, runs

MODES = ("auto", "scan", "loop", "host")

# The XLA options every training step compiles with (YNNPACK dots on CPU): see latentjax.xla.
compiler_options = xla.compiler_options
jit = xla.jit


class TrainState(NamedTuple):
    """Everything that evolves during training; a checkpoint is exactly this.

    Attributes:
      step: number of optimizer steps taken (int32 scalar).
      params: the model's ``nnx.State`` (``nnx.split(model)[1]``).
      opt_state: the optax state.
      key: the run's key; step ``s`` uses ``fold_in(step_key, s)`` and epoch ``e``'s data order
        ``fold_in(order_key, e)``, with ``step_key, order_key = split(key)``, so a resumed run
        draws exactly what the uninterrupted one drew.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    key: jax.Array


class FitResult(NamedTuple):
    model: models.AutoEncoder
    state: TrainState
    history: list


def optimizer(*, learning_rate: float) -> optax.GradientTransformation:
    """Adam (Kingma & Ba 2015), the optimiser of the VAE literature."""
    return optax.adam(learning_rate)


def init(key: jax.Array, config: models.Config, *, learning_rate: float):
    """A fresh model split into ``graphdef`` and a ``TrainState``.

    Returns:
      ``(graphdef, state, tx)``.
    """
    init_key, run_key = jax.random.split(key)
    graphdef, params = nnx.split(models.create(init_key, config))
    tx = optimizer(learning_rate=learning_rate)
    return graphdef, TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), run_key), tx


def abstract_state(config: models.Config, train_meta: dict) -> TrainState:
    """A state with the structure a checkpoint of ``config`` has (for restoring into)."""
    _, state, _ = init(jax.random.key(0), config, learning_rate=float(train_meta.get("learning_rate", 1e-3)))
    return state


def loss_fn(params, graphdef, key: jax.Array, images: jax.Array, *, beta: float = 1.0):
    """Mean negative ELBO of a batch of uint8 images ``(b, h, w, c)``; one key per example."""
    keys = jax.random.split(key, images.shape[0])
    return _summed_loss(params, graphdef, keys, images, beta=beta) / images.shape[0]


def _summed_loss(params, graphdef, keys: jax.Array, images: jax.Array, *, beta: float):
    model = nnx.merge(graphdef, params)
    x = models.to_float(images)
    per_example = jax.vmap(functools.partial(models.elbo, beta=beta), in_axes=(None, 0, 0))(model, keys, x)
    return -jnp.sum(per_example)


def _accumulated_value_and_grad(params, graphdef, key, images, *, beta: float, microbatches: int):
    """``value_and_grad(loss_fn)`` over ``microbatches`` equal slices of the batch, summed.

    Every example keeps the key ``loss_fn`` gives it, so the result equals the one-pass gradient
    up to the order of the float sums. The slices are unrolled in the compiled step: XLA:CPU then
    works on activations a fraction of the size (they stay in cache) and can run two slices'
    ops side by side; the conv VAE step at batch 256 on 2 cores is ~10 % faster with 2.
    """
    b = images.shape[0]
    if b % microbatches:
        raise LatentJaxError(f"the batch of {b} does not split into {microbatches} equal microbatches")
    keys = jax.random.split(key, b)
    part = b // microbatches
    loss, grads = 0.0, None
    for i in range(microbatches):
        sl = slice(i * part, (i + 1) * part)
        value, g = jax.value_and_grad(_summed_loss)(params, graphdef, keys[sl], images[sl], beta=beta)
        loss = loss + value
        grads = g if grads is None else jax.tree.map(jnp.add, grads, g)
    return loss / b, jax.tree.map(lambda g: g / b, grads)


def step_key(state: TrainState) -> jax.Array:
    return jax.random.fold_in(jax.random.split(state.key)[0], state.step)


def make_step(
    graphdef,
    tx: optax.GradientTransformation,
    *,
    beta: float = 1.0,
    grad_reduce: Callable | None = None,
    microbatches: int = 1,
    conv_kernels: str = "xla",
) -> Callable:
    """The training step ``step(state, images) -> (state, metrics)``, pure and not yet jitted.

    Args:
      graphdef: the model's ``nnx.GraphDef``.
      tx: the optax transformation.
      beta: the KL weight.
      grad_reduce: applied to ``(loss, grads)`` before the update; the ``pmap`` path passes a
        ``lax.pmean`` here. Sharded ``jit`` needs nothing: XLA inserts the reductions.
      microbatches: compute the batch's gradient in this many equal slices, summed (the same
        gradient up to float rounding; see ``default_microbatches``).
      conv_kernels: ``"xla"``, or ``"onednn"`` for the conv layers' kernels through oneDNN
        (``latentjax.onednn``; single-device CPU steps only; see ``default_conv_kernels``).
    """
    if conv_kernels not in ("xla", "onednn"):
        raise LatentJaxError(f"conv_kernels must be 'xla' or 'onednn', got {conv_kernels!r}")
    if conv_kernels == "onednn" and not onednn.available():
        raise LatentJaxError(
            f"conv_kernels='onednn' but the oneDNN kernels are unavailable: {onednn.unavailable_reason()}"
        )
    if int(microbatches) < 1:
        raise LatentJaxError(f"microbatches must be >= 1, got {microbatches}")
    microbatches = int(microbatches)

    def step(state: TrainState, images: jax.Array):
        with onednn.enabled(conv_kernels == "onednn"):  # read while this is traced
            if microbatches == 1:
                loss, grads = jax.value_and_grad(loss_fn)(
                    state.params, graphdef, step_key(state), images, beta=beta
                )
            else:
                loss, grads = _accumulated_value_and_grad(
                    state.params, graphdef, step_key(state), images, beta=beta, microbatches=microbatches
                )
        if grad_reduce is not None:
            loss, grads = grad_reduce(loss, grads)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(state.step + 1, params, opt_state, state.key), {"loss": loss}

    return step


def default_microbatches(config: models.Config, batch_size: int, backend: str | None = None) -> int:
    """2 for conv models on CPU at batch >= 256 (even), else 1: what ``fit`` uses by default.

    Measured on the 2-core dev VM (``benchmarks/train_throughput.py``, conv VAE at batch 256):
    1,471 -> 1,563 images/s with 2 slices, 1,567 with 4; the MLP VAE gains nothing (b1024) or
    loses (b128: 48.7k -> 39.3k with 2), and small conv batches have too little work to split.
    """
    backend = backend or jax.default_backend()
    if config.arch == "conv" and backend == "cpu" and batch_size >= 256 and batch_size % 2 == 0:
        return 2
    return 1


def default_conv_kernels(config: models.Config, backend: str | None = None) -> str:
    """``"onednn"`` for float32 conv models on CPU when ``latentjax.onednn`` is available, else
    ``"xla"``: what ``fit`` uses by default.

    Measured on the 2-core dev VM (conv VAE, batch 256, 2 microbatches): 152 -> 122 ms per step
    (``benchmarks/README.md``). The first use in a process builds the kernels (a few seconds,
    then cached on disk).
    """
    backend = backend or jax.default_backend()
    if (
        config.arch == "conv"
        and backend == "cpu"
        and config.compute_dtype == "float32"
        and onednn.available()
    ):
        return "onednn"
    return "xla"


def make_run(step: Callable, *, unroll: int = 2) -> Callable:
    """``run(state, data, indices) -> (state, losses)``: ``lax.scan`` of ``step`` over the
    index rows ``(num_steps, batch)`` gathered from ``data`` (uint8, on the device).

    ``unroll`` steps per loop iteration (any number of steps works): XLA then overlaps the end of
    one step (the last parameters' Adam update) with the start of the next (the batch gather,
    the noise, the first layer). The results are the same bit for bit; the MLP VAE at batch 128
    on the 2-core dev VM runs 5-7 % faster with 2 than with 1 (3 and 4 gain no more).
    """

    def run(state, data, indices):
        def body(st, idx):
            st, metrics = step(st, data[idx])
            return st, metrics["loss"]

        return jax.lax.scan(body, state, indices, unroll=unroll)

    return run


def epoch_order(key: jax.Array, epoch: int, num_examples: int, batch_size: int) -> np.ndarray:
    """The batches of one epoch as rows of indices ``(num_examples // batch_size, batch_size)``.

    The last incomplete batch is dropped, so every step sees a full batch.
    """
    order_key = jax.random.split(key)[1]
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(order_key, epoch), num_examples))
    steps = num_examples // batch_size
    return perm[: steps * batch_size].reshape(steps, batch_size).astype(np.int32)


def validate_images(images: Any, config: models.Config, *, what: str = "training images") -> np.ndarray:
    """uint8 ``(n, h, w, c)`` matching the model, or a DataError naming the problem."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise DataError(f"{what} must be (n, h, w, c), got shape {images.shape}")
    if images.dtype != np.uint8:
        if np.issubdtype(images.dtype, np.floating) and not np.all(np.isfinite(images)):
            raise DataError(f"{what} contain NaN or infinite values")
        raise DataError(f"{what} must be uint8 in [0, 255], got {images.dtype}")
    if tuple(images.shape[1:]) != tuple(config.image_shape):
        raise DataError(
            f"{what} have shape {images.shape[1:]} but the model expects {tuple(config.image_shape)}"
        )
    if len(images) == 0:
        raise DataError(f"{what} are empty")
    return images


@functools.partial(xla.lazy_jit, static_argnames="beta")
def _evaluate_chunk(model, key, images, *, beta):
    x = models.to_float(images)
    keys = jax.random.split(key, images.shape[0])
    elbo = jax.vmap(functools.partial(models.elbo, beta=beta), in_axes=(None, 0, 0))(model, keys, x)
    rec = jax.vmap(models.reconstruct, in_axes=(None, 0))(model, x)
    return elbo, jnp.mean((rec - x) ** 2, axis=(1, 2, 3))


def evaluate(
    model: models.AutoEncoder, key: jax.Array, images: Any, *, beta: float = 1.0, batch_size: int = 500
) -> dict:
    """Mean ELBO and reconstruction MSE (pixels in [0, 1]) of uint8 images, in fixed-size chunks
    (the last one padded) so it compiles once.
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


def check_fit_args(config: models.Config, train_images: Any, *, batch_size: int, epochs: int):
    """Validates what every trainer needs; returns ``(config, uint8 images, steps_per_epoch)``."""
    config = config.validate()
    train_images = validate_images(train_images, config)
    steps_per_epoch = len(train_images) // batch_size
    if steps_per_epoch == 0:
        raise DataError(f"batch size {batch_size} is larger than the {len(train_images)} training images")
    if epochs < 1:
        raise LatentJaxError(f"epochs must be >= 1, got {epochs}")
    return config, train_images, steps_per_epoch


def _choose_mode(mode: str, config: models.Config, nbytes: int, limit: int) -> str:
    if mode not in MODES:
        raise LatentJaxError(f"mode must be one of {MODES}, got {mode!r}")
    if mode != "auto":
        return mode
    if nbytes > limit:
        return "host"
    if config.arch == "conv" and jax.default_backend() == "cpu":
        return "loop"
    return "scan"


def epoch_evaluation(
    graphdef, eval_images: Any, *, steps_per_epoch: int, beta: float, host: Callable = lambda st: st
) -> Callable:
    """``describe`` for ``run_segments``: ``eval_elbo`` and ``eval_recon_mse`` of ``eval_images``
    (validated uint8, or None for nothing) at the end of each epoch; ``host(state)`` is the
    single-device ``TrainState`` (for states laid out over devices).
    """
    eval_key = jax.random.key(1234)

    def describe(st, losses, done):
        if eval_images is None or done % steps_per_epoch:
            return {}
        ev = evaluate(nnx.merge(graphdef, host(st).params), eval_key, eval_images, beta=beta)
        return {"eval_elbo": ev["elbo"], "eval_recon_mse": ev["recon_mse"]}

    return describe


def fit(
    key: jax.Array,
    config: models.Config,
    train_images: Any,
    *,
    epochs: int,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    beta: float = 1.0,
    out_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    keep: int = 3,
    resume: bool = False,
    progress: bool = True,
    eval_images: Any = None,
    mode: str = "auto",
    device_bytes_limit: int = 2**31,
    microbatches: int | None = None,
    conv_kernels: str | None = None,
    settings: dict | None = None,
) -> FitResult:
    """Trains a model on uint8 images and returns it with its final state and history.

    Args:
      key: the run's key (initialisation, per-step randomness and data order derive from it).
      config: the model.
      train_images: uint8 ``(n, h, w, c)``.
      epochs: passes over the data (the last incomplete batch of each is dropped).
      out_dir: where ``config.json``, ``metrics.jsonl`` and ``checkpoint/`` go (None: nothing
        is written).
      checkpoint_every: steps between checkpoints (default: one epoch); one is always saved at
        the end. ``keep`` checkpoints are kept.
      resume: continue the run in ``out_dir`` from its latest checkpoint; the result equals the
        uninterrupted run bit for bit on CPU. The checkpoint may come from
        ``parallel.fit_data_parallel`` with the same settings (equal up to summation order).
      eval_images: optional uint8 images whose ELBO and MSE are logged after each epoch.
      mode: ``"scan"``, ``"loop"``, ``"host"`` or ``"auto"`` (see the module docstring).
      microbatches: slices the batch's gradient is computed in (``make_step``); None picks
        ``default_microbatches``. It changes float rounding only, not the trajectory's meaning.
      conv_kernels: ``"xla"`` or ``"onednn"`` (``make_step``); None picks ``default_conv_kernels``.
        Float rounding only, like ``microbatches``.
      settings: extra JSON-able values stored in ``config.json`` (e.g. the CLI's ``seed``).

    Returns:
      ``FitResult(model, state, history)``; ``history`` holds the records of ``metrics.jsonl``.

    Raises:
      TrainingDiverged: the loss became NaN or infinite (the last good checkpoint is kept).
    """
    config, train_images, steps_per_epoch = check_fit_args(
        config, train_images, batch_size=batch_size, epochs=epochs
    )
    n = len(train_images)
    if eval_images is not None:
        eval_images = validate_images(eval_images, config, what="evaluation images")
    every = checkpoint_every or steps_per_epoch

    graphdef, state, tx = init(key, config, learning_rate=learning_rate)
    if microbatches is None:
        microbatches = default_microbatches(config, batch_size)
    conv_kernels = conv_kernels or default_conv_kernels(config)
    run_settings = {
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "beta": beta,
        "epochs": epochs,
        "checkpoint_every": every,
        "microbatches": microbatches,
        "conv_kernels": conv_kernels,
        **(settings or {}),
    }
    opener = (
        (lambda: runs.RunDir(out_dir, config=config, settings=run_settings, resume=resume, keep=keep))
        if out_dir
        else None
    )
    run, state = runs.open_run(opener, state, resume=resume)

    mode = _choose_mode(mode, config, train_images.nbytes, device_bytes_limit)
    step = make_step(graphdef, tx, beta=beta, microbatches=microbatches, conv_kernels=conv_kernels)
    if mode == "scan":
        data = jax.device_put(train_images)
        run_scan = jit(make_run(step), donate_argnums=0)
        segment = lambda st, idx: run_scan(st, data, jnp.asarray(idx))  # noqa: E731
    else:
        if mode == "loop":
            data = jax.device_put(train_images)
            gather_step = jit(lambda st, d, idx: step(st, d[idx]), donate_argnums=0)
            one = lambda st, idx: gather_step(st, data, idx)  # noqa: E731
        else:
            host_step = jit(step, donate_argnums=0)
            one = lambda st, idx: host_step(st, train_images[idx])  # noqa: E731

        def segment(st, idx):
            losses = []
            for row in idx:
                st, m = one(st, row)
                losses.append(m["loss"])
            return st, jnp.stack(losses)

    describe = epoch_evaluation(graphdef, eval_images, steps_per_epoch=steps_per_epoch, beta=beta)
    order_key = runs.host_key(state.key)
    state, history = runs.run_segments(
        state,
        segment,
        lambda epoch: epoch_order(order_key, epoch, n, batch_size),
        start=int(state.step),
        total=epochs * steps_per_epoch,
        steps_per_epoch=steps_per_epoch,
        every=every,
        images_per_step=batch_size,
        run=run,
        describe=describe,
        tags={"mode": mode},
        progress=progress,
    )
    return FitResult(nnx.merge(graphdef, state.params), state, history)


def throughput(history: list) -> float:
    """Images per second over a run, leaving out the first segment (it includes compilation)."""
    rows = history[1:] or history
    secs = sum(r["seconds"] for r in rows)
    imgs = sum(r["images_per_s"] * r["seconds"] for r in rows)
    return imgs / secs if secs else 0.0
