"""What defines a run: ``config.json`` (``RunConfig``, ``read_config``) and the settings a resume must keep.

A run folder holds ``config.json`` (``{"model": Config, "train": settings}``); a checkpoint's meta
holds the same JSON, so ``read_config`` also reads a run whose ``config.json`` is lost.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import NamedTuple

from latentjax.errors import CheckpointError
from latentjax.learn import checkpoint, models

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
# What defines a run besides its model: a resume must keep each that both the saved and the new
# settings name. ``epochs`` (a run may be extended), ``keep`` and how it runs (devices, mode,
# kernels) may change. Values compare as stored in JSON (a tuple equals its list).
RESUME_SETTINGS = (
    "dataset",
    "limit",
    "batch_size",
    "learning_rate",
    "beta",
    "seed",
    "population",
    "objective",
    "objective_options",
    "num_samples",
    "binarize",
    "adam",
)
# What a run saved before these settings existed trained with.
SETTING_DEFAULTS = {
    "objective": "elbo",
    "objective_options": {},
    "num_samples": 1,
    "binarize": "none",
    "adam": {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
}


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
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{cfg_file} is not a latentjax run config ({e})") from e
    if not saved_steps(run_dir):
        raise CheckpointError(f"no latentjax run at {run_dir} (no {CONFIG_FILE} and no checkpoint/)")
    mngr = checkpoint.Manager(run_dir)
    try:
        meta = mngr.meta()
        return RunConfig(models.Config.from_json(meta["model"]), dict(meta.get("train", {})))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"the latest checkpoint in {mngr.directory} holds no run config ({e})") from e
    finally:
        mngr.close()


def saved_steps(run_dir: str | os.PathLike) -> list[int]:
    """The checkpoint steps in a run folder, read from the folder names (nothing is created).

    Examples:
      >>> saved_steps("/nonexistent")
      []
    """
    ckpt = checkpoint.checkpoint_dir(run_dir)
    if not ckpt.is_dir():
        return []
    return sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit() and p.is_dir())


def differences(old: RunConfig, config: models.Config, settings: dict) -> list[str]:
    """What resuming the run ``old`` with ``config`` and ``settings`` would change (``name saved -> new``).

    Examples:
      >>> old = RunConfig(models.Config(), {"dataset": "mnist", "beta": 1.0, "epochs": 2})
      >>> differences(old, models.Config(latent_dim=3), {"dataset": "fashion_mnist", "epochs": 4})
      ['latent_dim 16 -> 3', "dataset 'mnist' -> 'fashion_mnist'"]
      >>> differences(old, models.Config(), {"objective": "iwae"})  # saved before objectives: the ELBO
      ["objective 'elbo' -> 'iwae'"]
    """
    saved = old.model._asdict()
    out = [f"{k} {saved[k]!r} -> {v!r}" for k, v in config._asdict().items() if saved[k] != v]
    saved_train = {**SETTING_DEFAULTS, **old.train}
    for k in RESUME_SETTINGS:
        if k in saved_train and k in settings and _as_json(saved_train[k]) != _as_json(settings[k]):
            out.append(f"{k} {saved_train[k]!r} -> {settings[k]!r}")
    return out


def _as_json(value):
    """``value`` as ``config.json`` stores and reads it back (tuples become lists)."""
    return json.loads(json.dumps(value))
