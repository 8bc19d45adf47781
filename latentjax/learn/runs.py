"""A run folder and a run's life in time: its format, opening and resuming it, the epoch loop.

A run folder (``RunDir``; read by ``read_config`` and ``load_model``) holds ``config.json``
(``{"model": Config, "train": settings}``), ``metrics.jsonl`` (a record per segment of steps) and
``checkpoint/<step>/`` (the single-device ``TrainState``, the same JSON as ``meta``). ``open_run``
opens and resumes it across processes; ``run_segments`` is every trainer's epoch loop.
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils
from tqdm.auto import tqdm

from latentjax.errors import CheckpointError, InputError, TrainingDiverged
from latentjax.learn import checkpoint, models, state

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
_RESUME_SETTINGS = ("batch_size", "learning_rate", "beta", "seed")  # a resumed run must keep these


class RunConfig(NamedTuple):
    """What a run folder's ``config.json`` holds (``read_config``).

    Attributes:
      model: the model's ``models.Config``.
      train: the run's settings (``batch_size``, ``learning_rate``, ... and what the caller
        added, e.g. the CLI's ``seed`` and ``dataset``).

    Examples:
      >>> RunConfig(models.Config(), {"seed": 0}).train["seed"]
      0
    """

    model: models.Config
    train: dict


def read_config(run_dir: str | os.PathLike) -> RunConfig:
    """The model config and settings of a run (its ``config.json``, else its latest checkpoint).

    Args:
      run_dir: a run folder (of ``train.fit``, ``latentjax train`` or ``latentjax demo``) or its
        ``checkpoint`` folder.

    Returns:
      ``RunConfig(model, train)``.

    Raises:
      CheckpointError: no run there, or a ``config.json`` that is not a run's.

    Examples:
      >>> read_config("latentjax-demo").train["dataset"]  # doctest: +SKIP
      'sprites'
    """
    run_dir = pathlib.Path(run_dir)
    cfg_file = run_dir / CONFIG_FILE
    if not cfg_file.exists() and run_dir.name == checkpoint.CHECKPOINT_DIR:
        cfg_file = run_dir.parent / CONFIG_FILE
    if cfg_file.exists():
        try:
            raw = json.loads(cfg_file.read_text())
            return RunConfig(models.Config.from_json(raw["model"]), dict(raw.get("train", {})))
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{cfg_file} is not a latentjax run config ({e})") from e
    if not checkpoint.checkpoint_dir(run_dir).exists():
        raise CheckpointError(f"no latentjax run at {run_dir} (no {CONFIG_FILE} and no checkpoint/)")
    mngr = checkpoint.Manager(run_dir)
    meta = mngr.meta()
    mngr.close()
    return RunConfig(models.Config.from_json(meta["model"]), dict(meta.get("train", {})))


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
    cfg = read_config(run_dir).model
    mngr = checkpoint.Manager(run_dir)
    try:
        if mngr.latest_step() is None:
            raise CheckpointError(f"no checkpoint in {mngr.directory}")
        if models.Config.from_json(mngr.meta(step)["model"]) != cfg:
            raise CheckpointError(
                f"checkpoint in {mngr.directory} was written by another model than {CONFIG_FILE} describes"
            )
        graphdef, like = state.abstract_state(cfg)
        st, _ = mngr.restore(like, step)
    finally:
        mngr.close()
    return nnx.merge(graphdef, st.params), cfg


class RunDir:
    """The files of one run: ``config.json``, ``metrics.jsonl`` and ``checkpoint/``.

    One process writes a run (see ``open_run``), so its checkpoint manager saves without waiting
    for the others and the states it saves must be host-local: the single-device ``TrainState``,
    whichever devices trained it.

    Args:
      out_dir: the run folder (created).
      config: the model.
      settings: the run's settings, written to ``config.json`` beside ``config``.
      resume: continue the run ``out_dir`` holds (else ``out_dir`` must hold none).
      keep: checkpoints to keep.

    Raises:
      InputError: ``out_dir`` holds a run and ``resume`` is False (nothing is overwritten).
      CheckpointError: resuming a run of another model, or with other ``batch_size``,
        ``learning_rate``, ``beta`` or ``seed``.

    Examples:
      >>> import tempfile
      >>> from latentjax.learn import state
      >>> cfg = models.Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8)
      >>> run = RunDir(tempfile.mkdtemp(), config=cfg, settings={"seed": 0}, resume=False, keep=1)
      >>> run.save(state.init(jax.random.key(0), cfg, learning_rate=1e-3)[1])
      >>> run.log({"step": 0})
      >>> run.close()
      >>> run.steps(), read_config(run.path).train, load_model(run.path)[1] == cfg
      ([0], {'seed': 0}, True)
    """

    def __init__(self, out_dir, *, config: models.Config, settings: dict, resume: bool, keep: int):
        self.path = pathlib.Path(out_dir)
        self.metrics = self.path / METRICS_FILE
        cfg_file = self.path / CONFIG_FILE
        if not resume and (
            cfg_file.exists() or self.metrics.exists() or checkpoint.checkpoint_dir(self.path).exists()
        ):
            raise InputError(
                f"{self.path} already holds a run; pass resume=True to continue it or choose another "
                "out_dir (nothing was overwritten)"
            )
        if cfg_file.exists():
            old = read_config(self.path)
            if old.model != config:
                saved = old.model._asdict()
                diff = {k: (saved[k], v) for k, v in config._asdict().items() if saved[k] != v}
                raise CheckpointError(
                    f"{self.path} holds a run of another model (saved vs requested: {diff}); "
                    "choose another out_dir"
                )
            changed = {
                k: (old.train.get(k), v)
                for k, v in settings.items()
                if k in _RESUME_SETTINGS and old.train.get(k) != v
            }
            if changed:
                raise CheckpointError(
                    f"cannot resume {self.path} with other settings (saved vs requested: {changed})"
                )
        self.meta = {"model": config.to_json(), "train": settings}
        self.path.mkdir(parents=True, exist_ok=True)
        cfg_file.write_text(json.dumps(self.meta, indent=2))
        self.manager = checkpoint.Manager(self.path, keep=keep, this_process_only=True)

    @property
    def directory(self) -> pathlib.Path:
        """The checkpoint folder (``pathlib.Path``)."""
        return self.manager.directory

    def latest_step(self) -> int | None:
        """The step of the newest checkpoint (an int), or None."""
        return self.manager.latest_step()

    def steps(self) -> list[int]:
        """The steps of every kept checkpoint (a list of ints, oldest first)."""
        return self.manager.all_steps()

    def restore(self, like: state.TrainState, step: int | None = None) -> state.TrainState:
        """The state saved at ``step`` (default: the latest), or ``like`` when nothing was saved.

        Later checkpoints and log lines are dropped: the resumed run writes them again.

        Args:
          like: a ``TrainState`` of the run's structure (or its ``state.abstract_state``).
          step: the checkpoint's step.

        Returns:
          The restored ``TrainState`` (host-local).
        """
        if self.manager.latest_step() is None:
            return like
        st, _ = self.manager.restore(like, step)
        for later in self.manager.all_steps():
            if later > int(st.step):
                self.manager.delete(later)
        self._truncate_metrics(int(st.step))
        return st

    def _truncate_metrics(self, step: int) -> None:
        if not self.metrics.exists():
            return
        lines = [ln for ln in self.metrics.read_text().splitlines() if ln.strip()]
        keep = [ln for ln in lines if json.loads(ln).get("step", 0) <= step]
        self.metrics.write_text("".join(ln + "\n" for ln in keep))

    def log(self, record: dict) -> None:
        """Appends ``record`` (a JSON-able dict) to ``metrics.jsonl``."""
        with self.metrics.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def save(self, st: state.TrainState) -> None:
        """Checkpoints the host-local ``TrainState`` ``st`` at its step, with ``config.json``'s content."""
        self.manager.save(int(st.step), st, self.meta)

    def close(self) -> None:
        """Closes the checkpoint manager (saves are synchronous: nothing is pending)."""
        self.manager.close()


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
    where = "no checkpoint was written"
    if saved is not None:
        where = f"the last good checkpoint (step {saved}) in {run.directory} is kept"
    if losses.ndim == 1:
        what = f"the loss became {losses[bad]}"
    else:
        members = np.where(~np.isfinite(losses[bad]))[0].tolist()
        what = f"the loss of population members {members} became NaN or infinite"
    return f"{what} at step {first + bad} (epoch {epoch}); {where}; try a smaller learning_rate"


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
