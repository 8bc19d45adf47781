"""``RunDir``: the files of one run, opened so that a failed command changes nothing in its folder.

Opening validates first and writes nothing: a run of another model or with other settings, a
folder holding files latentjax did not write, or a corrupt checkpoint is refused with the folder as
it was. Only once the run has opened (a fresh run, or the checkpoint restored) are ``config.json``
(atomically), the manifest (``_manifest``) and ``metrics.jsonl`` (cut back to the restored step)
written.
"""

from __future__ import annotations

import json
import pathlib
import warnings

from latentjax.errors import CheckpointError, InputError
from latentjax.learn import _manifest, checkpoint, models, state
from latentjax.learn._run_config import (
    CONFIG_FILE,
    METRICS_FILE,
    RunConfig,
    differences,
    read_config,
    saved_steps,
)

RUN_FILES = (CONFIG_FILE, METRICS_FILE, checkpoint.CHECKPOINT_DIR)


def _existing_run(path: pathlib.Path) -> RunConfig | None:
    """The run ``path`` holds (its config, from ``config.json`` or a checkpoint), or None."""
    if not any((path / n).exists() for n in RUN_FILES):
        return None
    try:
        return read_config(path)
    except CheckpointError:
        return None


def _trim_metrics(path: pathlib.Path, step: int) -> None:
    """Keeps the records of ``metrics.jsonl`` up to ``step`` (a partly written last line is dropped)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("step", 0) <= step:
            keep.append(line)
    _manifest.write_atomic(path, "".join(ln + "\n" for ln in keep))


class RunDir:
    """The files of one run: ``config.json``, ``metrics.jsonl`` and ``checkpoint/``.

    One process writes a run (see ``runs.open_run``), so its checkpoint manager saves without
    waiting for the others and the states it saves must be host-local: the single-device
    ``TrainState``, whichever devices trained it. A folder whose run has no checkpoint (it stopped
    before the first one) may be started again, with any settings, with or without ``resume``.

    Args:
      out_dir: the run folder (created).
      config: the model.
      settings: the run's settings, written to ``config.json`` beside ``config``.
      resume: continue the run ``out_dir`` holds from its newest intact checkpoint (True), or from
        the checkpoint of this step (an int); False: ``out_dir`` must hold no checkpoint.
      keep: checkpoints to keep.

    Raises:
      InputError: ``out_dir`` holds a run with checkpoints and ``resume`` is False, is a file, or
        holds ``config.json``, ``metrics.jsonl`` or ``checkpoint`` not written by latentjax.
      CheckpointError: resuming a run of another model, or with other settings
        (``_run_config.RESUME_SETTINGS``).

    Examples:
      >>> import tempfile
      >>> import jax
      >>> cfg = models.Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8)
      >>> run = RunDir(tempfile.mkdtemp(), config=cfg, settings={"seed": 0}, resume=False, keep=1)
      >>> run.save(state.init(jax.random.key(0), cfg, learning_rate=1e-3)[1])
      >>> run.log({"step": 0})
      >>> run.close()
      >>> run.steps(), read_config(run.path).train
      ([0], {'seed': 0})
    """

    def __init__(self, out_dir, *, config: models.Config, settings: dict, resume: bool | int, keep: int):
        self.path = pathlib.Path(out_dir)
        self.metrics = self.path / METRICS_FILE
        self.keep = keep
        self.resume_step = None if isinstance(resume, bool) else int(resume)
        self.manager = None
        self._opened = False
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"out_dir {self.path} is a file, not a folder")
        old = _existing_run(self.path)
        present = [n for n in RUN_FILES if (self.path / n).exists()]
        foreign = _manifest.foreign(self.path, present)
        if foreign and (old is None or _manifest.entries(self.path)):
            # a run of latentjax before manifests (0.1.0) is adopted; anything else is not ours
            raise InputError(
                f"{self.path} holds {', '.join(foreign)}, not written by latentjax; choose another "
                "out_dir (nothing was changed)"
            )
        steps = saved_steps(self.path)
        if steps and not resume:
            raise InputError(
                f"{self.path} already holds a run (checkpoints up to step {steps[-1]}); pass "
                "resume=True to continue it or choose another out_dir (nothing was overwritten)"
            )
        if steps and old is None:
            raise CheckpointError(f"{self.path} holds checkpoints but no readable run config")
        if steps:
            changed = differences(old, config, settings)
            model = differences(old, config, {})
            if changed:
                what = "a run of another model" if model else "a run with other settings"
                raise CheckpointError(
                    f"cannot resume {self.path}: it holds {what} (saved -> requested: "
                    f"{'; '.join(changed)}); use the saved settings or choose another out_dir "
                    "(nothing was changed)"
                )
            settings = {**old.train, **settings}  # what only the saved record names stays recorded
        self.meta = {"model": config.to_json(), "train": settings}
        if not resume:
            self._open(0)

    def _open(self, step: int) -> None:
        """Writes the run's record once it has opened: the manifest, config.json, metrics up to ``step``."""
        if self._opened:
            return
        _manifest.claim(self.path, RUN_FILES, adopt=True)  # __init__ refused foreign files
        _manifest.write_atomic(self.path / CONFIG_FILE, json.dumps(self.meta, indent=2))
        _trim_metrics(self.metrics, step)
        self._manager()
        self._opened = True

    def _manager(self) -> checkpoint.Manager:
        if self.manager is None:
            self.manager = checkpoint.Manager(self.path, keep=self.keep, this_process_only=True)
        return self.manager

    @property
    def directory(self) -> pathlib.Path:
        """The checkpoint folder (``pathlib.Path``)."""
        return checkpoint.checkpoint_dir(self.path)

    def latest_step(self) -> int | None:
        """The step of the newest checkpoint (an int), or None."""
        steps = self.steps()
        return steps[-1] if steps else None

    def steps(self) -> list[int]:
        """The steps of every kept checkpoint (a list of ints, oldest first)."""
        return saved_steps(self.path)

    def restore(self, like: state.TrainState, step: int | None = None) -> state.TrainState:
        """The state saved at ``step``, or ``like`` when nothing was saved; then the run is open.

        Without ``step`` (nor ``resume=N``), the newest intact checkpoint: a corrupt one is
        reported with a warning and the next older one tried. Later checkpoints and log lines are
        dropped: the resumed run writes them again.

        Args:
          like: a ``TrainState`` of the run's structure (or its ``state.abstract_state``).
          step: the checkpoint's step.

        Returns:
          The restored ``TrainState`` (host-local).

        Raises:
          CheckpointError: ``step`` was not saved, or every checkpoint is corrupt (or of another model).
        """
        step = self.resume_step if step is None else step
        steps = self.steps()
        if not steps:
            if step is not None:
                raise CheckpointError(f"{self.path} holds no checkpoint to resume from at step {step}")
            self._open(0)
            return like
        if step is not None and step not in steps:
            raise CheckpointError(f"{self.directory} holds no checkpoint of step {step} (saved: {steps})")
        mngr = self._manager()
        problems = []
        for s in [step] if step is not None else steps[::-1]:
            try:
                st, _ = mngr.restore(like, s)
                break
            except CheckpointError as e:
                if step is not None or not checkpoint.is_corrupt(e):
                    raise
                problems.append(str(e))
        else:
            raise CheckpointError(
                f"every checkpoint in {self.directory} is corrupt ({problems[0]}); start again in "
                "another out_dir"
            )
        for msg in problems:
            warnings.warn(f"{msg}; resuming from step {int(st.step)}", stacklevel=2)
        for later in steps:
            if later > int(st.step):
                mngr.delete(later)
        self._open(int(st.step))
        return st

    def log(self, record: dict) -> None:
        """Appends ``record`` (a JSON-able dict) to ``metrics.jsonl``."""
        self._open(0)
        with self.metrics.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def save(self, st: state.TrainState) -> None:
        """Checkpoints the host-local ``TrainState`` ``st`` at its step, with ``config.json``'s content."""
        self._open(0)
        self._manager().save(int(st.step), st, self.meta)

    def close(self) -> None:
        """Closes the checkpoint manager (saves are synchronous: nothing is pending)."""
        if self.manager is not None:
            self.manager.close()
