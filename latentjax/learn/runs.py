"""A run's life on disk and in time: its folder (``RunDir``), opening and resuming it across
processes (``open_run``), and the epoch loop every trainer shares (``run_segments``).

``train.fit``, ``parallel.fit_data_parallel`` and ``population.fit`` differ only in how one
segment of steps runs; everything about files, checkpoints, resuming, logging and divergence is
here, once.
"""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from latentjax.errors import LatentJaxError, TrainingDiverged
from latentjax.learn import models

if TYPE_CHECKING:
    from latentjax.train import TrainState


class RunDir:
    """The files of a run: ``config.json``, ``metrics.jsonl`` and ``checkpoint/``.

    One process writes a run (see ``open_run``), so its checkpoint manager saves without waiting
    for the others (``checkpoint.Manager(this_process_only=True)``) and the states it saves must be
    host-local: the single-device ``TrainState``, whichever devices trained it.
    """

    def __init__(self, out_dir, *, config, settings, resume, keep):
        from latentjax.learn import checkpoint  # orbax is imported only when checkpoints are written

        self.path = pathlib.Path(out_dir)
        self.metrics = self.path / "metrics.jsonl"
        cfg_file = self.path / "config.json"
        holds_run = (
            cfg_file.exists() or self.metrics.exists() or (self.path / checkpoint.CHECKPOINT_DIR).exists()
        )
        if holds_run and not resume:
            raise LatentJaxError(
                f"{self.path} already holds a run; pass --resume to continue it or choose another --out "
                "(nothing was overwritten)"
            )
        if cfg_file.exists():
            try:
                old = json.loads(cfg_file.read_text())
                old_model = models.Config.from_json(old["model"])
            except (ValueError, KeyError, TypeError) as e:
                raise LatentJaxError(f"{cfg_file} is not a latentjax run config ({e})") from e
            if old_model != config:
                diff = {
                    k: (getattr(old_model, k), getattr(config, k))
                    for k in config._fields
                    if getattr(old_model, k) != getattr(config, k)
                }
                raise LatentJaxError(
                    f"{self.path} holds a run of another model (saved vs requested: {diff}); "
                    "choose another --out"
                )
            changed = {
                k: (old["train"].get(k), v)
                for k, v in settings.items()
                if k in ("batch_size", "learning_rate", "beta", "seed") and old["train"].get(k) != v
            }
            if changed:
                raise LatentJaxError(
                    f"cannot resume {self.path} with other settings (saved vs requested: {changed})"
                )
        self.path.mkdir(parents=True, exist_ok=True)
        cfg_file.write_text(json.dumps({"model": config.to_json(), "train": settings}, indent=2))
        self.manager = checkpoint.Manager(self.path, keep=keep, this_process_only=True)
        self.meta = {"model": config.to_json(), "train": settings}

    @property
    def directory(self) -> pathlib.Path:
        return self.manager.directory

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def steps(self) -> list[int]:
        return self.manager.all_steps()

    def restore(self, state: TrainState, step: int | None = None) -> TrainState:
        """The state saved at ``step`` (default: the latest), or ``state`` when nothing was saved.

        Later checkpoints and log lines are dropped: the resumed run writes them again.
        """
        if self.manager.latest_step() is None:
            return state
        state, _ = self.manager.restore(state, step)
        for later in self.manager.all_steps():
            if later > int(state.step):
                self.manager.delete(later)
        self._truncate_metrics(int(state.step))
        return state

    def _truncate_metrics(self, step: int) -> None:
        """Drops the log lines of steps after the checkpoint: the resumed run replays them."""
        if not self.metrics.exists():
            return
        lines = [ln for ln in self.metrics.read_text().splitlines() if ln.strip()]
        keep = [ln for ln in lines if json.loads(ln).get("step", 0) <= step]
        self.metrics.write_text("".join(ln + "\n" for ln in keep))

    def log(self, record: dict) -> None:
        with self.metrics.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def save(self, state: TrainState) -> None:
        self.manager.save(int(state.step), state, self.meta)

    def close(self) -> None:
        self.manager.close()


def _is_key(x) -> bool:
    return jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)


def host_key(key: jax.Array) -> jax.Array:
    """A copy of ``key`` that outlives the state it came from (train steps donate their state)."""
    return jax.random.wrap_key_data(np.asarray(jax.random.key_data(key)), impl=jax.random.key_impl(key))


def open_run(opener: Callable[[], Any] | None, state: Any, *, resume: bool) -> tuple[Any, Any]:
    """Opens a run's files on process 0 and, when resuming, restores ``state`` from them.

    Only process 0 writes a run (metrics and checkpoints). In a multi-process run the others
    receive its state (``multihost_utils.broadcast_one_to_all``), so the run's files need not be on
    a shared file system, and they stop with it when it cannot open the run rather than waiting
    for it at the first collective.

    Args:
      opener: makes the run (a ``RunDir``, or an object with its methods), or None to write nothing.
      state: the fresh host-local state, returned as it is unless a checkpoint is restored.
      resume: restore the run's latest checkpoint (``run.restore``).

    Returns:
      ``(run, state)``; ``run`` is None where nothing is written (``opener`` None, or process > 0).
    """
    if opener is None:
        return None, state
    run, error = None, None
    if jax.process_index() == 0:
        try:
            run = opener()
            if resume:
                state = run.restore(state)
        except Exception as e:  # noqa: BLE001  (any failure must reach the other processes too)
            error = e
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        raw = jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, state)
        failed, raw = multihost_utils.broadcast_one_to_all((np.int32(error is not None), raw))
        if failed and error is None:
            raise LatentJaxError("process 0 could not open the run folder (its error names the problem)")
        state = jax.tree.map(
            lambda r, x: jax.random.wrap_key_data(r, impl=jax.random.key_impl(x)) if _is_key(x) else r,
            raw,
            state,
        )
    if error is not None:
        raise error
    return run, state


def _diverged(losses: np.ndarray, finite: np.ndarray, first: int, epoch: int, run: Any) -> str:
    bad = int(np.argmin(finite))
    saved = run.latest_step() if run is not None else None
    where = (
        f"the last good checkpoint (step {saved}) in {run.directory} is kept"
        if saved is not None
        else "no checkpoint was written"
    )
    if losses.ndim == 1:
        what = f"the loss became {losses[bad]}"
    else:
        members = np.where(~np.isfinite(losses[bad]))[0].tolist()
        what = f"the loss of population members {members} became NaN or infinite"
    return f"{what} at step {first + bad} (epoch {epoch}); {where}; try a smaller --lr"


def run_segments(
    state: Any,
    segment: Callable,
    order: Callable[[int], np.ndarray],
    *,
    start: int,
    total: int,
    steps_per_epoch: int,
    every: int,
    images_per_step: int,
    run: Any = None,
    host: Callable = lambda st: st,
    describe: Callable | None = None,
    tags: dict | None = None,
    progress: bool = False,
) -> tuple[Any, list]:
    """The epoch loop of every trainer (``fit``, ``parallel.fit_data_parallel``, ``population.fit``).

    Takes steps ``start`` to ``total`` in segments that end at each epoch's end and at each
    multiple of ``every``, logs a record per segment to ``run`` and saves ``host(state)`` there
    every ``every`` steps and at the end. Segments depend only on the step numbers, so a run
    resumed from any of its checkpoints runs the same segments (and compiled programs) as the
    uninterrupted one: this is what makes resuming exact.

    Args:
      state: the state at step ``start``, in the layout ``segment`` takes (one device, replicated
        over a mesh, stacked for ``pmap`` or for a population).
      segment: ``segment(state, rows) -> (state, losses)``: one step per row of ``rows`` (a slice
        of ``order(epoch)``), one loss per step (``(steps,)``, or ``(steps, members)``).
      order: ``order(epoch)``, the index rows of an epoch (``epoch_order``).
      images_per_step: images one step trains on (for ``images_per_s``).
      run: a ``RunDir`` (or an object with its ``log``, ``save``, ``latest_step``, ``directory`` and
        ``close``; closed at the end) or None to write nothing.
      host: ``state`` as ``run.save`` stores it: the single-device ``TrainState``.
      describe: ``describe(state, losses, step) -> dict``, more fields of a record (evaluation,
        per-member losses).
      tags: fields every record has (``mode``, ``devices``).

    Returns:
      ``(state, history)``: a record per segment (``step``, ``epoch``, ``loss``, ``images_per_s``,
      ``seconds``, tags and described fields), as written to ``metrics.jsonl``.

    Raises:
      TrainingDiverged: a loss became NaN or infinite; the last good checkpoint is kept.
    """
    from tqdm.auto import tqdm

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
        new_state, losses = segment(state, idx)
        losses = np.asarray(jax.device_get(losses))
        seconds = time.perf_counter() - t0
        finite = np.all(np.isfinite(losses.reshape(len(losses), -1)), axis=1)
        if not finite.all():
            bar.close()
            raise TrainingDiverged(_diverged(losses, finite, cur, epoch, run))
        state, cur = new_state, end
        record = {
            "step": cur,
            "epoch": round(cur / steps_per_epoch, 4),
            "loss": float(np.mean(losses)),
            "images_per_s": len(idx) * images_per_step / seconds,
            "seconds": seconds,
            **(tags or {}),
        }
        if describe is not None:
            record.update(describe(state, losses, cur))
        history.append(record)
        bar.update(len(idx))
        bar.set_postfix(loss=f"{record['loss']:.2f}", img_s=f"{record['images_per_s']:.0f}")
        if run is not None:
            run.log(record)
            if cur % every == 0 or cur == total:
                run.save(host(state))
    bar.close()
    if run is not None:
        run.close()
    return state, history
