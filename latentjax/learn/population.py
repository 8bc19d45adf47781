"""Populations: K models trained at once, each member written as its own run folder.

``jax.vmap`` over stacked train states: one compiled step for any grid of keys and KL weights.
``fit`` runs it in ``loop.run``, the loop of every trainer; member ``k`` equals ``train.fit`` with
``keys[k]`` and ``betas[k]`` (same initialisation, data order and per-step keys).
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from latentjax import data
from latentjax.errors import CheckpointError, InputError
from latentjax.learn import loop, models, objectives, runs, state, train, tuning
from latentjax.learn._run_config import saved_steps


class State(NamedTuple):
    """The state of a population's training: stacked train states and each member's KL weight.

    Attributes:
      states: a ``state.TrainState`` whose every leaf has a leading member axis (``state.stack``).
      betas: ``(K,)`` float32, each member's KL weight (traced: one compilation serves any grid).

    Examples:
      >>> _, pop, _ = init([jax.random.key(0)] * 3, models.Config(latent_dim=2, hidden=8), betas=4.0)
      >>> pop.betas.tolist()
      [4.0, 4.0, 4.0]
    """

    states: state.TrainState
    betas: jax.Array


def init(
    keys: Sequence[jax.Array] | jax.Array,
    config: models.Config,
    *,
    betas: Sequence[float] | float = 1.0,
    learning_rate: float = 1e-3,
    objective: objectives.Objective | None = None,
):
    """K fresh members; member ``k`` is exactly ``state.init(keys[k], config, ...)``.

    Args:
      keys: one key per member (a list, or a ``(K,)`` key array).
      config: the model (every member's).
      betas: one KL weight per member, or one for all.
      learning_rate: Adam's step size.
      objective: every member's (its ``TrainState.aux``, ``state.init``).

    Returns:
      ``(graphdef, State, tx)``.

    Raises:
      InputError: no keys, or ``betas`` of another length or negative.

    Examples:
      >>> keys = [jax.random.key(0), jax.random.key(1)]
      >>> _, pop, _ = init(keys, models.Config(latent_dim=2, hidden=8), betas=[1.0, 4.0])
      >>> pop.betas.tolist(), pop.states.step.shape
      ([1.0, 4.0], (2,))
    """
    keys = list(keys)
    if not keys:
        raise InputError("population.init: keys is empty; a population needs at least one member")
    k = len(keys)
    betas = (
        np.broadcast_to(np.asarray(betas, np.float32), (k,))
        if np.ndim(betas) == 0
        else np.asarray(betas, np.float32)
    )
    if betas.shape != (k,):
        raise InputError(f"population.init: betas has {betas.shape[0]} values for {k} keys")
    if not np.all(np.isfinite(betas)) or np.any(betas < 0):
        raise InputError(f"population.init: betas must be finite and >= 0, got {betas.tolist()}")
    members = [state.init(key, config, learning_rate=learning_rate, objective=objective) for key in keys]
    graphdef, tx = members[0][0], members[0][2]
    return graphdef, State(state.stack([m[1] for m in members]), jnp.asarray(betas)), tx


def grid(*, size: int | None = None, seed: int = 0, beta_grid: Sequence[float] | None = None):
    """Seeds and betas of a grid: every beta of ``beta_grid`` crossed with ``size`` seeds.

    The CLI's ``--population K --beta-grid b1,b2,...``: seeds ``seed, seed+1, ...``, or K seeds
    at beta 1 without a grid. Member ``k``'s key is ``jax.random.key(seeds[k])``.

    Args:
      size: seeds per beta (default 1).
      seed: the first seed.
      beta_grid: the KL weights (default: 1 only).

    Returns:
      ``(seeds, betas)``, two tuples of one entry per member.

    Raises:
      InputError: ``size`` < 1.

    Examples:
      >>> grid(size=2, beta_grid=[0.5, 4.0])
      ((0, 1, 0, 1), (0.5, 0.5, 4.0, 4.0))
    """
    betas_grid = [1.0] if not beta_grid else [float(b) for b in beta_grid]
    size = 1 if size is None else int(size)
    if size < 1:
        raise InputError(f"population.grid: size={size} must be >= 1")
    seeds = tuple(seed + i for _ in betas_grid for i in range(size))
    betas = tuple(b for b in betas_grid for _ in range(size))
    return seeds, betas


def make_step(
    graphdef,
    tx: optax.GradientTransformation,
    *,
    objective: str | objectives.Objective = "elbo",
    num_samples: int = 1,
    binarize: str = "none",
) -> Callable:
    """The population's step ``step(pop, images) -> (pop, {"loss": (K,)})``.

    ``train.make_step`` vmapped over members, each with its own batch ``images[k]``
    (``(K, batch, h, w, c)``) and its ``pop.betas[k]``: member ``k`` computes exactly
    ``train.make_step(..., beta=betas[k])``.

    Args:
      graphdef: the model's ``nnx.GraphDef``.
      tx: the optax transformation.
      objective: every member's (``train.make_step``).
      num_samples: every member's (``train.make_step``).
      binarize: every member's (``train.make_step``).

    Returns:
      The step, pure and not yet jitted (``loop.make_scan`` scans it).

    Examples:
      >>> graphdef, pop, tx = init([jax.random.key(0)] * 2, models.Config(latent_dim=2, hidden=8))
      >>> pop, m = jax.jit(make_step(graphdef, tx))(pop, np.zeros((2, 4, 28, 28, 1), np.uint8))
      >>> m["loss"].shape
      (2,)
    """

    def one(st, beta, images):
        loss = dict(objective=objective, num_samples=num_samples, binarize=binarize)
        return train.make_step(graphdef, tx, beta=beta, **loss)(st, images)

    def step(pop: State, images: jax.Array):
        states, metrics = jax.vmap(one)(pop.states, pop.betas, images)
        return State(states, pop.betas), metrics

    return step


def member_name(k: int, seed: int | None, beta: float) -> str:
    """The folder of member ``k`` in a population's ``out_dir``.

    Args:
      k: the member's index.
      seed: the seed its key was made from, or None.
      beta: its KL weight.

    Returns:
      ``member<k>_seed<seed>_beta<beta>`` (without ``_seed<seed>`` when ``seed`` is None).

    Examples:
      >>> member_name(2, 0, 4.0)
      'member02_seed0_beta4'
    """
    seed_part = "" if seed is None else f"_seed{int(seed)}"
    return f"member{k:02d}{seed_part}_beta{float(beta):g}"


class _Members:
    """A population's files: ``population.json`` (seeds, betas) and a ``runs.RunDir`` per member."""

    def __init__(self, out_dir, *, config, settings, seeds, betas, resume, keep):
        self.directory = pathlib.Path(out_dir)
        spec = {
            "seeds": None if seeds is None else [int(s) for s in seeds],
            "betas": [float(b) for b in betas],
        }
        spec_file = self.directory / "population.json"
        entries = list(self.directory.iterdir()) if self.directory.is_dir() else []
        # A population that stopped before any checkpoint may be restarted with new settings.
        saved = any(p.is_dir() and saved_steps(p) for p in entries)
        ours = all(p.name == "population.json" or p.name.startswith("member") for p in entries)
        if not resume and entries and (saved or not ours):
            raise InputError(
                f"{self.directory} is not empty; pass resume=True to continue the population in it "
                "or choose another out_dir (nothing was overwritten)"
            )
        if spec_file.exists() and saved:
            old = json.loads(spec_file.read_text())
            if old != spec:
                raise CheckpointError(
                    f"cannot resume {self.directory} with another population "
                    f"(saved vs requested: {old} vs {spec})"
                )
        member_seeds = spec["seeds"] or [None] * len(spec["betas"])
        self.runs = [
            runs.RunDir(
                self.directory / member_name(k, s, b),
                config=config,
                resume=resume,
                keep=keep,
                settings={
                    **settings,
                    **({} if s is None else {"seed": s}),
                    "beta": b,
                    "population": len(member_seeds),
                },
            )
            for k, (s, b) in enumerate(zip(member_seeds, spec["betas"]))
        ]
        spec_file.write_text(json.dumps(spec))

    def restore(self, states: state.TrainState) -> state.TrainState:
        """Every member at the latest step all of them saved.

        A run killed between two members' saves leaves them one checkpoint apart.
        """
        saved = [set(r.steps()) for r in self.runs]
        if not any(saved):
            return states
        common = set.intersection(*saved)
        if not common:
            raise CheckpointError(
                f"the members in {self.directory} have no checkpoint step in common; "
                "cannot resume the population"
            )
        step = max(common)
        return state.stack([r.restore(state.take(states, k), step) for k, r in enumerate(self.runs)])

    def latest_step(self) -> int | None:
        steps = [r.latest_step() for r in self.runs]
        return None if None in steps else min(steps)

    def log(self, record: dict) -> None:
        common = {k: v for k, v in record.items() if k != "losses"}
        for k, r in enumerate(self.runs):
            r.log({**common, "loss": record["losses"][k]})

    def save(self, states: state.TrainState) -> None:
        for k, r in enumerate(self.runs):
            r.save(state.take(states, k))

    def close(self) -> None:
        for r in self.runs:
            r.close()


def fit(
    keys: Sequence[jax.Array] | jax.Array,
    config: models.Config,
    train_images: Any,
    *,
    betas: Sequence[float] | float = 1.0,
    seeds: Sequence[int] | None = None,
    epochs: int,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    objective: str | objectives.Objective = "elbo",
    num_samples: int = 1,
    binarize: str = "none",
    mode: str = "auto",
    out_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    keep: int = 3,
    resume: bool = False,
    progress: bool = False,
    settings: dict | None = None,
) -> loop.FitResult:
    """Trains K models at once; member ``k`` equals ``train.fit(keys[k], ..., beta=betas[k])``.

    Same initialisation, data order and per-step keys as that run. Each member is written as its own
    ``train.fit`` run folder, ``out_dir/member_name(k, seed, beta)`` (``config.json`` with that member's beta
    (and seed), its ``metrics.jsonl`` and checkpoints of its single ``state.TrainState``), next to
    ``out_dir/population.json``. So ``runs.load_model`` and ``latentjax embed`` read a member like any run,
    and a member can be continued alone by ``train.fit(..., resume=True)``. Every member is saved at the same
    steps; ``resume`` restores all of them at the latest step every member holds and re-stacks them, so the
    resumed population runs the same steps on the same state as the uninterrupted one and equals it bit for
    bit on CPU.

    Args:
      keys: one key per member (see ``grid`` for a grid of seeds).
      config: the model (every member's).
      train_images: uint8 ``(n, h, w, c)``.
      betas: one KL weight per member, or one for all.
      seeds: the seeds ``keys`` were made from, recorded in the folders' names, their
        ``config.json`` and ``population.json`` (None: not recorded); ``resume`` needs the same.
      epochs: passes over the data.
      batch_size: images per step and member.
      learning_rate: Adam's step size.
      objective: as for ``train.fit`` (``"iwae"`` and ``"annealed_vae"`` need every beta 1); an
        ``objectives.Objective`` leaves ``beta`` at 1 (the members' are ``betas``).
      num_samples: as for ``train.fit``.
      binarize: ``"none"`` or ``"dynamic"`` (as for ``train.fit``).
      mode: ``"scan"`` (a segment of steps as one ``lax.scan``; dense models), ``"loop"`` (a
        Python loop over the jitted population step; conv models on CPU) or ``"auto"``.
      out_dir: the population's folder, or None to write nothing.
      checkpoint_every: as for ``train.fit``.
      keep: as for ``train.fit``.
      resume: as for ``train.fit``; needs the same seeds and betas.
      progress: show a progress bar.
      settings: as for ``train.fit``.

    Returns:
      ``loop.FitResult``: the model and ``state.TrainState`` stacked along a leading member axis
      (``state.take(result.model, k)`` is member ``k``); ``history`` has a record per segment
      (one per epoch by default) with the members' mean ``losses`` (K values) and
      ``images_per_s`` counting every member's images (models x images per second).

    Raises:
      TrainingDiverged: a member's loss became NaN or infinite (the message names it).

    Examples:
      >>> cfg = models.Config(latent_dim=2, hidden=8)
      >>> images = np.zeros((32, 28, 28, 1), np.uint8)
      >>> keys = [jax.random.key(0), jax.random.key(1)]
      >>> res = fit(keys, cfg, images, betas=[1.0, 4.0], epochs=1, batch_size=16)
      >>> res.state.step.tolist()
      [2, 2]
    """
    job = loop.prepare(
        config, train_images, epochs=epochs, batch_size=batch_size, checkpoint_every=checkpoint_every
    )
    where = "population.fit"
    spec = objectives.prepare(
        objective, job.config, num_samples=num_samples, num_images=len(job.images), where=where
    )
    if spec.beta != 1.0:
        raise InputError(f"{where}: give the members' KL weights as betas=, not objective.beta={spec.beta}")
    graphdef, pop, tx = init(keys, job.config, betas=betas, learning_rate=learning_rate, objective=spec)
    k = len(pop.betas)
    for b in pop.betas.tolist():
        objectives.check(spec._replace(beta=b), job.config, where=where)
    if binarize not in ("none", "dynamic"):
        raise InputError(f"population.fit: binarize must be 'none' or 'dynamic', got {binarize!r}")
    loss = dict(objective=spec.name, num_samples=spec.num_samples, binarize=binarize)
    if seeds is not None and len(seeds) != k:
        raise InputError(f"population.fit: seeds has {len(seeds)} values for {k} keys")
    mode = tuning.choose_mode(mode, job.config)
    step = make_step(graphdef, tx, objective=spec, binarize=binarize)
    segment = loop.device_segment(step, job.images, mode, unroll=1)

    def orders(states):
        order_keys = [state.order_key(state.take(states, m)) for m in range(k)]

        def order(epoch):
            n = len(job.images)
            return np.stack(
                [data.epoch_order(ok, epoch, n, batch_size=batch_size) for ok in order_keys], axis=1
            )

        return order

    def folder(out_dir, **kw):
        return _Members(out_dir, seeds=seeds, betas=pop.betas.tolist(), **kw)

    def describe(st, losses, done):
        return {"losses": losses.mean(axis=0).tolist()}

    settings = {
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        **loss,
        "objective_options": objectives.options(spec),
        "adam": {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
        "epochs": epochs,
        "checkpoint_every": job.every,
        **(settings or {}),
    }
    return loop.run(
        job,
        graphdef,
        pop.states,
        segment,
        settings=settings,
        out_dir=out_dir,
        resume=resume,
        keep=keep,
        progress=progress,
        tags={"mode": mode},
        images_per_step=k * batch_size,
        folder=folder,
        orders=orders,
        place=lambda states: State(states, pop.betas),
        host=lambda p: p.states,
        describe=describe,
    )
