"""The loop every trainer runs, and the ways a segment of its steps runs.

``train.fit``, ``parallel.fit_data_parallel`` and ``population.fit`` validate their inputs with
``prepare``, build a ``segment(state, rows) -> (state, losses)`` from their step (``make_scan``,
``stepwise``, ``device_segment``) and hand it to ``run``, which owns the rest: the run folder,
exact resume, the data order, checkpoints, logging, divergence. Each returns ``FitResult``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.typing import ArrayLike

from latentjax import data
from latentjax.errors import DataError, InputError
from latentjax.learn import _xla as xla
from latentjax.learn import models, runs
from latentjax.learn.state import TrainState, order_key


class FitResult(NamedTuple):
    """What every trainer returns (``train.fit``, ``parallel.fit_data_parallel``, ``population.fit``).

    Attributes:
      model: the trained ``models.AutoEncoder`` (for a population: every leaf stacked along a
        leading member axis; ``state.take(model, k)`` is member ``k``).
      state: the final host-local ``TrainState`` (stacked for a population).
      history: one record per segment of steps, as written to ``metrics.jsonl``.

    Examples:
      >>> from latentjax.learn import train
      >>> cfg = models.Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8)
      >>> res = train.fit(jax.random.key(0), cfg, np.zeros((32, 8, 8, 1), np.uint8), epochs=1, batch_size=16)
      >>> sorted(res.history[0])
      ['epoch', 'images_per_s', 'loss', 'mode', 'seconds', 'step']
    """

    model: models.AutoEncoder
    state: TrainState
    history: list


class Job(NamedTuple):
    """A training job's validated inputs, what every trainer checks before its first step.

    Attributes:
      config: the model (validated).
      images: uint8 ``(n, h, w, c)``.
      eval_images: uint8 images evaluated after each epoch, or None.
      epochs: passes over ``images``.
      batch_size: images per step (the global batch).
      steps_per_epoch: ``n // batch_size`` (the last incomplete batch of each epoch is dropped).
      every: steps between checkpoints.

    Examples:
      >>> prepare(models.Config(), np.zeros((10, 28, 28, 1), np.uint8), epochs=1, batch_size=4).every
      2
    """

    config: models.Config
    images: np.ndarray
    eval_images: np.ndarray | None
    epochs: int
    batch_size: int
    steps_per_epoch: int
    every: int


def prepare(
    config: models.Config,
    train_images: ArrayLike,
    *,
    epochs: int,
    batch_size: int,
    checkpoint_every: int | None = None,
    eval_images: ArrayLike | None = None,
) -> Job:
    """Validates a training job.

    Args:
      config: the model.
      train_images: uint8 ``(n, h, w, c)`` of the model's image shape.
      epochs: passes over the data (>= 1).
      batch_size: images per step.
      checkpoint_every: steps between checkpoints (default: one epoch).
      eval_images: optional uint8 images of the model's shape.

    Returns:
      The ``Job``.

    Raises:
      InputError: an invalid ``config`` or ``epochs``.
      DataError: images of another dtype or shape, or fewer than one batch.

    Examples:
      >>> job = prepare(models.Config(), np.zeros((100, 28, 28, 1), np.uint8), epochs=1, batch_size=32)
      >>> job.steps_per_epoch, job.every
      (3, 3)
    """
    config = config.validate()
    shape = config.image_shape
    train_images = data.validate_images(train_images, what="train_images", dtype="uint8", image_shape=shape)
    if eval_images is not None:
        eval_images = data.validate_images(eval_images, what="eval_images", dtype="uint8", image_shape=shape)
    steps_per_epoch = len(train_images) // batch_size
    if steps_per_epoch == 0:
        raise DataError(f"batch_size={batch_size} is larger than the {len(train_images)} train_images")
    if epochs < 1:
        raise InputError(f"loop.prepare: epochs must be >= 1, got {epochs}")
    every = checkpoint_every or steps_per_epoch
    return Job(config, train_images, eval_images, int(epochs), int(batch_size), steps_per_epoch, every)


def make_scan(step: Callable, *, unroll: int = 2) -> Callable:
    """A segment as one ``lax.scan``: ``scan(state, data, indices) -> (state, losses)``.

    ``step`` runs once per index row of ``indices`` (``(num_steps, ...)``) on the images it
    gathers from ``data`` (uint8, on the device). ``unroll`` steps per loop iteration (any number
    of steps works): XLA then overlaps the end of one step (the last parameters' Adam update)
    with the start of the next (the batch gather, the noise, the first layer). The results are
    the same bit for bit; the MLP VAE at batch 128 on the 2-core dev VM runs 5-7 % faster with 2
    than with 1 (3 and 4 gain no more).

    Args:
      step: ``step(state, images) -> (state, {"loss": ...})`` (``train.make_step``,
        ``population.make_step``).
      unroll: steps per loop iteration.

    Returns:
      The scan, not yet jitted; ``losses`` stacks the steps' losses.

    Examples:
      >>> def step(total, images):
      ...     return total + images.sum(), {"loss": images.mean()}
      >>> make_scan(step)(0, jnp.arange(4), jnp.array([[0, 1], [2, 3]]))
      (Array(6, dtype=int32), Array([0.5, 2.5], dtype=float32))
    """

    def scan(st, images, indices):
        def body(carry, idx):
            carry, metrics = step(carry, images[idx])
            return carry, metrics["loss"]

        return jax.lax.scan(body, st, indices, unroll=unroll)

    return scan


def stepwise(one: Callable) -> Callable:
    """A segment as a Python loop over a jitted step: ``segment(state, rows) -> (state, losses)``.

    Args:
      one: ``one(state, row) -> (state, loss)``, one step on the batch of index row ``row``.

    Returns:
      The segment; ``losses`` stacks the rows' losses.

    Examples:
      >>> def one(total, row):
      ...     return total + 1, jnp.float32(row.sum())
      >>> stepwise(one)(0, np.ones((3, 2)))
      (3, Array([2., 2., 2.], dtype=float32))
    """

    def segment(st, rows):
        losses = []
        for row in rows:
            st, loss = one(st, row)
            losses.append(loss)
        return st, jnp.stack(losses)

    return segment


def device_segment(step: Callable, images: np.ndarray, mode: str, *, unroll: int = 2) -> Callable:
    """The segment of a one-device ``step`` in ``mode`` (``tuning.choose_mode``).

    ``"scan"`` (``make_scan``) and ``"loop"`` put ``images`` on the device and gather each batch
    there; ``"host"`` sends each batch from the host. Rows index ``images`` (``(batch,)`` per step,
    or ``(members, batch)`` for a population's step).

    Args:
      step: ``step(state, images) -> (state, {"loss": ...})``, not jitted (it is compiled here
        with ``_xla.jit``, its state donated).
      images: uint8 ``(n, h, w, c)``.
      mode: ``"scan"``, ``"loop"`` or ``"host"``.
      unroll: ``make_scan``'s.

    Returns:
      ``segment(state, rows) -> (state, losses)``.

    Examples:
      >>> def step(total, images):
      ...     return total + images.sum(), {"loss": images.mean()}
      >>> segment = device_segment(step, np.arange(4), "loop")
      >>> segment(jnp.int32(0), np.array([[0, 1], [2, 3]]))
      (Array(6, dtype=int32), Array([0.5, 2.5], dtype=float32))
    """
    if mode == "scan":
        on_device = jax.device_put(images)
        scan = xla.jit(make_scan(step, unroll=unroll), donate_argnums=0)

        def segment(st, rows):
            return scan(st, on_device, jnp.asarray(rows))

        return segment
    if mode == "loop":
        on_device = jax.device_put(images)
        gather_step = xla.jit(lambda st, d, idx: step(st, d[idx]), donate_argnums=0)

        def one(st, row):
            st, metrics = gather_step(st, on_device, row)
            return st, metrics["loss"]
    else:
        host_step = xla.jit(step, donate_argnums=0)

        def one(st, row):
            st, metrics = host_step(st, images[row])
            return st, metrics["loss"]

    return stepwise(one)


def run(
    job: Job,
    graphdef,
    st: Any,
    segment: Callable,
    *,
    settings: dict,
    out_dir: str | os.PathLike | None,
    resume: bool | int,
    keep: int,
    progress: bool,
    tags: dict,
    images_per_step: int | None = None,
    folder: Callable = runs.RunDir,
    orders: Callable | None = None,
    place: Callable | None = None,
    host: Callable | None = None,
    describe: Callable | None = None,
) -> FitResult:
    """Opens (or resumes) the run folder, runs the epochs in segments and returns the result.

    Args:
      job: the validated inputs (``prepare``).
      graphdef: the model's ``nnx.GraphDef``.
      st: the fresh host-local ``TrainState`` (stacked for a population).
      segment: ``segment(placed_state, rows) -> (placed_state, losses)`` (``runs.run_segments``).
      settings: the run's settings for ``config.json``.
      out_dir: the run folder, or None to write nothing.
      resume: continue the run in ``out_dir`` from its newest intact checkpoint, or from this step (int).
      keep: checkpoints to keep.
      progress: show a progress bar (on process 0).
      tags: fields of every record (``mode``, ...).
      images_per_step: images one step trains on (default: ``job.batch_size``).
      folder: ``folder(out_dir, config=, settings=, resume=, keep=)`` makes the run's files
        (``runs.RunDir``; a population's makes one per member).
      orders: ``orders(state) -> order``, where ``order(epoch)`` gives the epoch's index rows, from
        the restored state (default: ``data.epoch_order`` with ``state.order_key``).
      place: the restored host-local state in the layout ``segment`` takes (on a mesh, ...).
      host: ``place``'s inverse: what checkpoints and the result hold.
      describe: ``describe(state, losses, step) -> dict``, more fields per record.

    Returns:
      ``FitResult``; the history's records are those of ``metrics.jsonl``.

    Raises:
      TrainingDiverged: a loss became NaN or infinite (the last good checkpoint is kept).

    Examples:
      >>> from latentjax.learn import state, train
      >>> cfg = models.Config(latent_dim=2, hidden=8)
      >>> job = prepare(cfg, np.zeros((8, 28, 28, 1), np.uint8), epochs=1, batch_size=4)
      >>> graphdef, st, tx = state.init(jax.random.key(0), cfg, learning_rate=1e-3)
      >>> segment = device_segment(train.make_step(graphdef, tx), job.images, "host")
      >>> kw = dict(settings={}, out_dir=None, resume=False, keep=1, progress=False, tags={})
      >>> res = run(job, graphdef, st, segment, **kw)
      >>> int(res.state.step), len(res.history)
      (2, 1)
    """

    def opener():
        return folder(out_dir, config=job.config, settings=settings, resume=resume, keep=keep)

    run_files, st = runs.open_run(opener if out_dir else None, st, resume=resume)
    if orders is None:
        key = order_key(st)

        def order(epoch):
            return data.epoch_order(key, epoch, len(job.images), batch_size=job.batch_size)
    else:
        order = orders(st)
    start = int(np.asarray(st.step).flat[0])
    final, history = runs.run_segments(
        place(st) if place else st,
        segment,
        order,
        start=start,
        total=job.epochs * job.steps_per_epoch,
        steps_per_epoch=job.steps_per_epoch,
        every=job.every,
        images_per_step=images_per_step or job.batch_size,
        run=run_files,
        host=host,
        describe=describe,
        tags=tags,
        progress=progress and jax.process_index() == 0,
    )
    final = host(final) if host else final
    return FitResult(nnx.merge(graphdef, final.params), final, history)
