"""A run folder and a run's life in time: its format, opening and resuming it, the epoch loop.

A run folder (``RunDir``; read by ``read_config`` and ``load_model``) holds ``config.json``
(``{"model": Config, "train": settings}``), ``metrics.jsonl`` (a record per segment of steps) and
``checkpoint/<step>/`` (the single-device ``TrainState``, the same JSON as ``meta``) and
``.latentjax-manifest.json`` (what latentjax wrote there, ``_manifest``). ``open_run`` opens and
resumes it across processes; ``run_segments`` is every trainer's epoch loop.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils
from tqdm.auto import tqdm

from latentjax.errors import CheckpointError, TrainingDiverged
from latentjax.learn import checkpoint, models, state
from latentjax.learn._run_config import CONFIG_FILE, METRICS_FILE, RunConfig, read_config
from latentjax.learn._run_dir import RUN_FILES, RunDir

__all__ = [
    "CONFIG_FILE",
    "METRICS_FILE",
    "RUN_FILES",
    "RunConfig",
    "RunDir",
    "load_model",
    "open_run",
    "read_config",
    "run_segments",
]


def load_model(
    run_dir: str | os.PathLike, *, step: int | None = None
) -> tuple[models.AutoEncoder, models.Config]:
    """The trained model of a run folder and its config.

    The checkpoint is restored into ``state.abstract_state(config)``: no parameter is initialised.

    Args:
      run_dir: a run folder or its ``checkpoint`` folder.
      step: the checkpoint's step (default: the latest).

    Returns:
      ``(model, config)``.

    Raises:
      CheckpointError: no run or no checkpoint there, or a checkpoint of another model.

    Examples:
      >>> model, cfg = load_model("latentjax-demo")  # doctest: +SKIP
      >>> models.decode(model, jnp.zeros(cfg.latent_dim)).shape  # doctest: +SKIP
      (28, 28, 1)
    """
    run_config = read_config(run_dir)
    cfg = run_config.model
    mngr = checkpoint.Manager(run_dir)
    try:
        if mngr.latest_step() is None:
            raise CheckpointError(f"no checkpoint in {mngr.directory}")
        if models.Config.from_json(mngr.meta(step)["model"]) != cfg:
            raise CheckpointError(
                f"checkpoint in {mngr.directory} was written by another model than {CONFIG_FILE} describes"
            )
        graphdef, like = state.abstract_state(cfg, run_config.train)
        st, _ = mngr.restore(like, step)
    finally:
        mngr.close()
    return nnx.merge(graphdef, st.params), cfg


def open_run(opener: Callable[[], Any] | None, st: Any, *, resume: bool) -> tuple[Any, Any]:
    """Opens a run's files on process 0 and, when resuming, restores ``st`` from them.

    Only process 0 writes a run (metrics and checkpoints). In a multi-process run the others
    receive its state (``multihost_utils.broadcast_one_to_all``), so the run's files need not be on
    a shared file system, and they stop with it when it cannot open the run rather than waiting
    for it at the first collective.

    Args:
      opener: makes the run (a ``RunDir``, or an object with its methods), or None to write nothing.
      st: the fresh host-local state, returned as it is unless a checkpoint is restored.
      resume: restore the run's latest checkpoint (``run.restore``).

    Returns:
      ``(run, state)``; ``run`` is None where nothing is written (``opener`` None, or process > 0).

    Raises:
      CheckpointError: on a process > 0, when process 0 could not open the run (process 0 raises
        the error itself).

    Examples:
      >>> open_run(None, {"step": 0}, resume=False)
      (None, {'step': 0})
    """
    if opener is None:
        return None, st
    run, error = None, None
    if jax.process_index() == 0:
        try:
            run = opener()
            if resume:
                st = run.restore(st)
        except Exception as e:  # noqa: BLE001  (any failure must reach the other processes too)
            error = e
    if jax.process_count() > 1:
        failed, raw = multihost_utils.broadcast_one_to_all(
            (np.int32(error is not None), checkpoint.keys_to_data(st))
        )
        if failed and error is None:
            raise CheckpointError("process 0 could not open the run folder (its error names the problem)")
        st = checkpoint.data_to_keys(raw, st)
    if error is not None:
        raise error
    return run, st


def _diverged(losses: np.ndarray, finite: np.ndarray, first: int, epoch: int, run: Any) -> str:
    bad = int(np.argmin(finite))
    saved = run.latest_step() if run is not None else None
    if run is None:
        where = "nothing was written; run again with a smaller learning_rate"
    elif saved is None:
        where = (
            "no checkpoint was written (metrics.jsonl up to the last good step is kept); run again "
            "into the same out_dir with a smaller learning_rate"
        )
    else:
        where = (
            f"the last good checkpoint (step {saved}) in {run.directory} is kept; to train with a "
            "smaller learning_rate, choose another out_dir"
        )
    if losses.ndim == 1:
        what = f"the loss became {losses[bad]}"
    else:
        members = np.where(~np.isfinite(losses[bad]))[0].tolist()
        what = f"the loss of population members {members} became NaN or infinite"
    return f"{what} at step {first + bad} (epoch {epoch}); {where}"


def run_segments(
    st: Any,
    segment: Callable,
    order: Callable[[int], np.ndarray],
    *,
    start: int,
    total: int,
    steps_per_epoch: int,
    every: int,
    images_per_step: int,
    run: Any = None,
    host: Callable | None = None,
    describe: Callable | None = None,
    tags: dict | None = None,
    progress: bool = False,
) -> tuple[Any, list]:
    """The epoch loop of every trainer (``train.fit``, ``parallel.fit_data_parallel``, ``population.fit``).

    Takes steps ``start`` to ``total`` in segments that end at each epoch's end and at each
    multiple of ``every``, logs a record per segment to ``run`` and saves ``host(state)`` there
    every ``every`` steps and at the end. Segments depend only on the step numbers, so a run
    resumed from any of its checkpoints runs the same segments (and compiled programs) as the
    uninterrupted one: this is what makes resuming exact.

    Args:
      st: the state at step ``start``, in the layout ``segment`` takes (one device, replicated
        over a mesh, stacked for ``pmap`` or for a population).
      segment: ``segment(state, rows) -> (state, losses)``: one step per row of ``rows`` (a slice
        of ``order(epoch)``), one loss per step (``(steps,)``, or ``(steps, members)``).
      order: ``order(epoch)``, the index rows of an epoch (``data.epoch_order``).
      start: the first step.
      total: the step to stop at.
      steps_per_epoch: steps of one epoch.
      every: steps between checkpoints.
      images_per_step: images one step trains on (for ``images_per_s``).
      run: a ``RunDir`` (or an object with its ``log``, ``save``, ``latest_step``, ``directory`` and
        ``close``; closed at the end) or None to write nothing.
      host: ``state`` as ``run.save`` stores it, the single-device ``TrainState`` (None: ``state``).
      describe: ``describe(state, losses, step) -> dict``, more fields of a record (evaluation,
        per-member losses).
      tags: fields every record has (``mode``, ``devices``).
      progress: show a progress bar.

    Returns:
      ``(state, history)``: a record per segment (``step``, ``epoch``, ``loss``, ``images_per_s``,
      ``seconds``, tags and described fields), as written to ``metrics.jsonl``.

    Raises:
      TrainingDiverged: a loss became NaN or infinite; the last good checkpoint is kept.

    Examples:
      >>> def segment(st, rows):
      ...     return st + len(rows), np.ones(len(rows))
      >>> kw = dict(start=0, total=6, steps_per_epoch=3, every=3, images_per_step=2)
      >>> st, hist = run_segments(0, segment, lambda epoch: np.zeros((3, 2), np.int32), **kw)
      >>> st, [r["step"] for r in hist]
      (6, [3, 6])
    """
    history: list[dict] = []
    bar = tqdm(total=total, initial=start, disable=not progress, unit="step", dynamic_ncols=True)
    cur, order_epoch, rows = start, -1, None
    while cur < total:
        epoch = cur // steps_per_epoch
        end = min((epoch + 1) * steps_per_epoch, total, (cur // every + 1) * every)
        if epoch != order_epoch:
            order_epoch, rows = epoch, order(epoch)
        pos = cur - epoch * steps_per_epoch
        idx = rows[pos : pos + end - cur]
        t0 = time.perf_counter()
        new_state, losses = segment(st, idx)
        losses = np.asarray(jax.device_get(losses))
        seconds = time.perf_counter() - t0
        finite = np.all(np.isfinite(losses.reshape(len(losses), -1)), axis=1)
        if not finite.all():
            bar.close()
            raise TrainingDiverged(_diverged(losses, finite, cur, epoch, run))
        st, cur = new_state, end
        record = {
            "step": cur,
            "epoch": round(cur / steps_per_epoch, 4),
            "loss": float(np.mean(losses)),
            "images_per_s": len(idx) * images_per_step / seconds,
            "seconds": seconds,
            **(tags or {}),
        }
        if describe is not None:
            record.update(describe(st, losses, cur))
        history.append(record)
        bar.update(len(idx))
        bar.set_postfix(loss=f"{record['loss']:.2f}", img_s=f"{record['images_per_s']:.0f}")
        if run is not None:
            run.log(record)
            if cur % every == 0 or cur == total:
                run.save(host(st) if host else st)
    bar.close()
    if run is not None:
        run.close()
    return st, history
