"""Checkpoints with orbax: any pytree saved every N steps with a JSON ``meta`` item, the last K kept.

The only module that imports orbax, and it knows nothing of models or training: a run folder's
format (``config.json``, which state is saved) belongs to ``latentjax.learn.runs``. A folder holds
``checkpoint/<step>/`` in orbax's layout. Typed PRNG keys travel as their raw ``uint32`` data
(``keys_to_data`` / ``data_to_keys``, also used wherever a state crosses processes or devices).

Each checkpoint's meta also holds ``"_integrity"``: the shapes and dtypes of its arrays and a
sha256 of their bytes (``digest``), checked on restore, so a truncated or bit-rotten checkpoint is
reported as corrupt (``is_corrupt``) instead of restored; ``meta()`` hides it. Checkpoints
of latentjax 0.1.0 have none and restore unchecked.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import os
import pathlib
import sys
import threading
from typing import Any

import jax
import numpy as np

from latentjax.errors import CheckpointError

CHECKPOINT_DIR = "checkpoint"
_INTEGRITY = "_integrity"


def corrupt(message: str) -> CheckpointError:
    """The ``CheckpointError`` of a checkpoint whose files are missing, truncated or changed since saved.

    Its ``corrupt`` attribute is True (``is_corrupt``), unlike that of a checkpoint of another model.

    Examples:
      >>> is_corrupt(corrupt("checkpoint 8 is corrupt")), is_corrupt(CheckpointError("another model"))
      (True, False)
    """
    e = CheckpointError(message)
    e.corrupt = True
    return e


def is_corrupt(e: BaseException) -> bool:
    """Whether ``e`` says a checkpoint is corrupt (``corrupt``), rather than of another model."""
    return bool(getattr(e, "corrupt", False))


def digest(tree: Any) -> str:
    """The sha256 (hex) of a pytree's arrays: each leaf's dtype, shape and bytes, in leaf order.

    Args:
      tree: a pytree of arrays (typed keys as ``keys_to_data`` gives them).

    Returns:
      64 hex digits.

    Examples:
      >>> digest({"w": np.zeros(2)}) == digest({"w": np.zeros(2)}) != digest({"w": np.ones(2)})
      True
    """
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _spec(tree: Any) -> list:
    return [[list(np.shape(a)), np.dtype(a.dtype).str] for a in jax.tree.leaves(tree)]


def _closed_loop(exc: BaseException | None) -> bool:
    return isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed"


def _drop_closed_loop_noise() -> None:
    """Drops the tracebacks tensorstore's late callbacks print after a failed restore.

    They reach orbax's closed asyncio loop from other threads; only these are dropped, once installed.
    """
    if getattr(sys.unraisablehook, "_latentjax", False):
        return
    unraisable, excepthook = sys.unraisablehook, threading.excepthook

    def on_unraisable(args):
        if not _closed_loop(args.exc_value):
            unraisable(args)

    def on_thread(args):
        if not _closed_loop(args.exc_value):
            excepthook(args)

    on_unraisable._latentjax = on_thread._latentjax = True
    sys.unraisablehook, threading.excepthook = on_unraisable, on_thread


@contextlib.contextmanager
def _quiet():
    """Silences orbax's and asyncio's logging of a failed restore: the error says it in one line."""
    loggers = [logging.getLogger(n) for n in ("absl", "asyncio", "orbax", "jax")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    _drop_closed_loop_noise()
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _ocp():
    import orbax.checkpoint as ocp  # imported on first use: orbax takes ~0.35 s to import

    return ocp


def checkpoint_dir(run_dir: str | os.PathLike) -> pathlib.Path:
    """Where a run folder's checkpoints are.

    Args:
      run_dir: a run folder, or its ``checkpoint`` folder itself.

    Returns:
      The absolute ``run_dir/checkpoint`` (or ``run_dir`` when it is named ``checkpoint``).

    Examples:
      >>> checkpoint_dir("/runs/vae").as_posix()
      '/runs/vae/checkpoint'
    """
    p = pathlib.Path(run_dir).absolute()
    return p if p.name == CHECKPOINT_DIR else p / CHECKPOINT_DIR


def _stored(tree: Any) -> Any:
    """``tree`` as it is written: a NamedTuple without its fields that hold no array.

    So a field added with an empty default (``TrainState.aux=()``) leaves a checkpoint as it was
    (release 0.1.0's restore, and new ones restore into older structures); the leaves keep their
    order, so ``jax.tree.unflatten`` with the full structure puts them back.
    """
    if not (isinstance(tree, tuple) and hasattr(tree, "_fields")):
        return tree
    kept = [f for f in tree._fields if jax.tree.leaves(getattr(tree, f))]
    if len(kept) == len(tree._fields):
        return tree
    return collections.namedtuple(type(tree).__name__, kept)(*(getattr(tree, f) for f in kept))


def _is_key(x: Any) -> bool:
    return jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)


def keys_to_data(tree: Any) -> Any:
    """``tree`` with every typed PRNG key replaced by its raw ``uint32`` data.

    Args:
      tree: a pytree (a ``TrainState``).

    Returns:
      The same structure holding only plain arrays (what orbax and collectives move).

    Examples:
      >>> keys_to_data({"key": jax.random.key(0)})["key"].dtype
      dtype('uint32')
    """
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def data_to_keys(data: Any, like: Any) -> Any:
    """``keys_to_data``'s inverse: raw key data back to the typed keys of ``like``.

    Args:
      data: ``keys_to_data(like)``, or arrays of its shapes (restored, broadcast, placed).
      like: the pytree with typed keys (its arrays or their ``jax.ShapeDtypeStruct``).

    Returns:
      ``data`` with the leaves that are keys in ``like`` wrapped as keys of ``like``'s type.

    Examples:
      >>> tree = {"key": jax.random.key(0)}
      >>> data_to_keys(keys_to_data(tree), tree)["key"].dtype
      key<fry>
    """
    return jax.tree.map(
        lambda d, x: jax.random.wrap_key_data(d, dtype=x.dtype) if _is_key(x) else d, data, like
    )


class Manager:
    """Saves and restores a pytree every N steps, keeping the last K.

    Saving is synchronous: the trainers donate their state buffers to the next step, so a save
    must own its copy before returning.

    Args:
      run_dir: the run folder (checkpoints go to ``checkpoint_dir(run_dir)``).
      keep: checkpoints to keep.
      this_process_only: in a multi-process run, only this process saves (orbax otherwise waits
        at barriers for every process); what it saves must be host-local, e.g. replicated params.

    Examples:
      >>> import tempfile
      >>> mngr = Manager(tempfile.mkdtemp(), keep=2)
      >>> for step in (1, 2, 3):
      ...     mngr.save(step, {"w": np.full(2, step), "key": jax.random.key(step)}, {"note": "hi"})
      >>> mngr.all_steps(), mngr.latest_step(), mngr.meta()
      ([2, 3], 3, {'note': 'hi'})
      >>> tree, meta = mngr.restore(jax.eval_shape(lambda: {"w": np.zeros(2, int), "key": jax.random.key(0)}))
      >>> tree["w"].tolist(), tree["key"].dtype
      ([3, 3], key<fry>)
      >>> mngr.delete(3)
      >>> mngr.close()
    """

    def __init__(self, run_dir: str | os.PathLike, *, keep: int = 3, this_process_only: bool = False):
        ocp = _ocp()
        self.directory = checkpoint_dir(run_dir)
        extra = {}
        if this_process_only and jax.process_count() > 1:
            me = jax.process_index()
            extra["multiprocessing_options"] = ocp.options.MultiprocessingOptions(
                primary_host=me, active_processes={me}
            )
            self.directory.mkdir(parents=True, exist_ok=True)  # orbax cannot create it in this mode
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, enable_async_checkpointing=False, create=not extra, **extra
        )
        with _quiet():  # a damaged _CHECKPOINT_METADATA is logged; restore reports what matters
            self._mngr = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        """The step of the newest checkpoint (an int), or None."""
        return self._mngr.latest_step()

    def all_steps(self) -> list[int]:
        """The steps of every kept checkpoint (a list of ints, oldest first)."""
        return list(self._mngr.all_steps())

    def delete(self, step: int) -> None:
        """Removes the checkpoint of ``step`` (an int; a resumed run replaces the ones after its start)."""
        self._mngr.delete(int(step))

    def save(self, step: int, tree: Any, meta: dict) -> None:
        """Saves the pytree ``tree`` (copied to the host) and the JSON-able ``meta`` as checkpoint ``step``.

        Args:
          step: the checkpoint's step.
          tree: any pytree of arrays (typed keys included).
          meta: a JSON-able dict saved beside it.
        """
        ocp = _ocp()
        tree = _stored(jax.device_get(keys_to_data(tree)))
        meta = {**meta, _INTEGRITY: {"arrays": _spec(tree), "sha256": digest(tree)}}
        self._mngr.save(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)),
            force=True,
        )

    def _step(self, step: int | None) -> int:
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        return step

    def _raw_meta(self, step: int) -> dict:
        ocp = _ocp()
        try:
            with _quiet():
                meta = self._mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as e:  # orbax raises many types for a missing or damaged file
            raise corrupt(
                f"checkpoint {self.directory}/{step} is corrupt: its meta cannot be read ({_first_line(e)})"
            ) from None
        if not isinstance(meta, dict):
            raise corrupt(f"checkpoint {self.directory}/{step} is corrupt: its meta is not a dict")
        return meta

    def meta(self, step: int | None = None) -> dict:
        """The ``meta`` dict saved at ``step`` (default: the latest); ``CheckpointError`` if none."""
        meta = self._raw_meta(self._step(step))
        meta.pop(_INTEGRITY, None)
        return meta

    def restore(self, like: Any, step: int | None = None) -> tuple[Any, dict]:
        """The pytree saved at ``step`` (default: the latest) in the structure of ``like``, and its meta.

        Args:
          like: the pytree's structure; it may be abstract (``jax.eval_shape``'s
            ``ShapeDtypeStruct`` leaves): only structure, shapes and dtypes are read.
          step: the checkpoint's step.

        Returns:
          ``(tree, meta)``.

        Raises:
          CheckpointError: the checkpoint is missing or holds other shapes (another model); or,
            ``is_corrupt``, its files are damaged or its arrays differ from those saved (sha256).
        """
        ocp = _ocp()
        step = self._step(step)
        where = f"checkpoint {self.directory}/{step}"
        target = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), jax.eval_shape(keys_to_data, like))
        meta = self._raw_meta(step)
        integrity = meta.pop(_INTEGRITY, None)
        shapes = [shape for shape, _ in integrity.get("arrays", [])] if integrity is not None else None
        if integrity is not None and shapes != [shape for shape, _ in _spec(target)]:
            raise CheckpointError(f"{where} does not match this model (its arrays have other shapes)")
        try:
            with _quiet():
                restored = self._mngr.restore(
                    step, args=ocp.args.Composite(state=ocp.args.StandardRestore(_stored(target)))
                )["state"]
            restored = jax.tree.unflatten(jax.tree.structure(target), jax.tree.leaves(restored))
        except Exception as e:  # orbax raises many types for damaged files and for other shapes
            if integrity is not None:
                raise corrupt(f"{where} is corrupt ({_first_line(e)})") from None
            raise CheckpointError(
                f"{where} does not match this model or is corrupt ({_first_line(e)})"
            ) from None
        for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(target)):
            if np.shape(a) != np.shape(b):
                raise CheckpointError(
                    f"{where} does not match this model "
                    f"(an array of shape {np.shape(a)} where {np.shape(b)} was expected)"
                )
        same_dtypes = integrity is not None and integrity.get("arrays") == _spec(target)
        if same_dtypes and digest(restored) != integrity.get("sha256"):  # (orbax casts other dtypes)
            raise corrupt(f"{where} is corrupt: its arrays differ from those saved (sha256)")
        return data_to_keys(restored, like), meta

    def close(self) -> None:
        """Waits for nothing (saves are synchronous) and releases orbax's resources."""
        self._mngr.close()


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__
