"""Checkpoints with orbax: train states and models saved with the config that rebuilds them.

The only module that imports orbax. A run directory holds ``checkpoint/<step>/`` (orbax's
layout: the train state and a JSON ``meta`` item with the model config and run settings).
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import jax
import numpy as np
from flax import nnx

from latentjax.errors import CheckpointError
from latentjax.learn import models

CHECKPOINT_DIR = "checkpoint"


def _ocp():
    import orbax.checkpoint as ocp  # imported here: orbax is slow to import

    return ocp


def checkpoint_dir(run_dir: str | os.PathLike) -> pathlib.Path:
    """``run_dir/checkpoint``, or ``run_dir`` itself when it is named ``checkpoint``."""
    p = pathlib.Path(run_dir).absolute()
    return p if p.name == CHECKPOINT_DIR else p / CHECKPOINT_DIR


def _to_saveable(tree: Any) -> Any:
    """Typed PRNG keys become their raw uint32 data (orbax stores plain arrays)."""
    return jax.tree.map(
        lambda a: (
            jax.random.key_data(a)
            if jax.dtypes.issubdtype(getattr(a, "dtype", None), jax.dtypes.prng_key)
            else a
        ),
        tree,
    )


def _from_saveable(tree: Any, like: Any) -> Any:
    def back(a, ref):
        if jax.dtypes.issubdtype(getattr(ref, "dtype", None), jax.dtypes.prng_key):
            return jax.random.wrap_key_data(a, impl=jax.random.key_impl(ref))
        return a

    return jax.tree.map(back, tree, like)


class Manager:
    """Saves and restores train states every N steps, keeping the last K.

    Saving is synchronous: the trainer donates its state buffers to the next step, so a save
    must own its copy before returning.
    """

    def __init__(self, run_dir: str | os.PathLike, *, keep: int = 3, this_process_only: bool = False):
        """Args:
        this_process_only: in a multi-process run, only this process saves (orbax otherwise waits
          at barriers for every process); its state must be host-local, e.g. replicated params.
        """
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
        self._mngr = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self._mngr.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._mngr.all_steps())

    def delete(self, step: int) -> None:
        """Removes the checkpoint of ``step`` (a resumed run replaces the ones after its start)."""
        self._mngr.delete(int(step))

    def save(self, step: int, state: Any, meta: dict) -> None:
        ocp = _ocp()
        state = jax.device_get(_to_saveable(state))
        self._mngr.save(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            force=True,
        )

    def meta(self, step: int | None = None) -> dict:
        ocp = _ocp()
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        return self._mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def restore(self, like: Any, step: int | None = None) -> tuple[Any, dict]:
        """Restores the state saved at ``step`` (default: latest) into the structure of ``like``."""
        ocp = _ocp()
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        target = jax.tree.map(
            lambda a: np.zeros(np.shape(a), np.asarray(a).dtype), jax.device_get(_to_saveable(like))
        )
        try:
            out = self._mngr.restore(
                step,
                args=ocp.args.Composite(state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()),
            )
        except Exception as e:  # orbax raises many types for shape/structure mismatches
            raise CheckpointError(
                f"checkpoint {self.directory}/{step} does not match this model ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:200]})"
            ) from e
        restored = out["state"]
        for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(target)):
            if np.shape(a) != np.shape(b):
                raise CheckpointError(
                    f"checkpoint {self.directory}/{step} does not match this model "
                    f"(an array of shape {np.shape(a)} where {np.shape(b)} was expected)"
                )
        return _from_saveable(restored, like), out["meta"]

    def close(self) -> None:
        self._mngr.close()


def read_config(run_dir: str | os.PathLike) -> models.Config:
    """The model config of a run (from ``run_dir/config.json``, else the latest checkpoint)."""
    run_dir = pathlib.Path(run_dir)
    cfg_file = run_dir / "config.json"
    if not cfg_file.exists() and run_dir.name == CHECKPOINT_DIR:
        cfg_file = run_dir.parent / "config.json"
    if cfg_file.exists():
        try:
            return models.Config.from_json(json.loads(cfg_file.read_text())["model"])
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{cfg_file} is not a latentjax run config ({e})") from e
    d = checkpoint_dir(run_dir)
    if not d.exists():
        raise CheckpointError(f"no latentjax run at {run_dir} (no config.json and no checkpoint/)")
    return models.Config.from_json(Manager(run_dir).meta()["model"])


def load_model(
    run_dir: str | os.PathLike, *, step: int | None = None
) -> tuple[models.AutoEncoder, models.Config]:
    """The trained model of a ``latentjax train``/``demo`` run and its config.

    Examples:
      >>> model, cfg = load_model("latentjax-demo")  # doctest: +SKIP
      >>> models.decode(model, jnp.zeros(cfg.latent_dim))  # doctest: +SKIP
    """
    cfg = read_config(run_dir)
    mngr = Manager(run_dir)
    if mngr.latest_step() is None:
        raise CheckpointError(f"no checkpoint in {mngr.directory}")
    graphdef = nnx.graphdef(models.create(jax.random.key(0), cfg))
    meta = mngr.meta(step)
    if models.Config.from_json(meta["model"]) != cfg:
        raise CheckpointError(
            f"checkpoint in {mngr.directory} was written by another model than config.json describes"
        )
    from latentjax.learn import train  # the state layout lives with the trainer

    state, _ = mngr.restore(train.abstract_state(cfg, meta.get("train", {})), step)
    mngr.close()
    return nnx.merge(graphdef, state.params), cfg
