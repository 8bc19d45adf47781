"""Populations: K models trained at once, ``jax.vmap`` over stacked train states (one compiled step
for any grid of seeds and KL weights), each member written as its own run folder.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from latentjax.errors import CheckpointError, LatentJaxError
from latentjax.learn import models, runs, train


class Population(NamedTuple):
    """K models trained at once: stacked train states (leading axis K) and their settings.

    Attributes:
      states: a ``train.TrainState`` whose every leaf has a leading member axis.
      betas: ``(K,)`` float32, each member's KL weight.
      seeds: the members' seeds (``jax.random.key(seed)`` is what ``train.fit`` would be given).
    """

    states: train.TrainState
    betas: jax.Array
    seeds: tuple


def init(
    config: models.Config,
    *,
    seeds: Sequence[int],
    betas: Sequence[float] | float = 1.0,
    learning_rate: float = 1e-3,
):
    """``(graphdef, Population, tx)``: member ``k`` is exactly ``train.init(key(seeds[k]), ...)``.

    ``betas`` is one value per member or a single value for all.
    """
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise LatentJaxError("a population needs at least one member (seeds is empty)")
    betas = (
        np.broadcast_to(np.asarray(betas, np.float32), (len(seeds),))
        if np.ndim(betas) == 0
        else np.asarray(betas, np.float32)
    )
    if betas.shape != (len(seeds),):
        raise LatentJaxError(f"--beta-grid has {betas.shape[0]} values for {len(seeds)} members")
    if not np.all(np.isfinite(betas)) or np.any(betas < 0):
        raise LatentJaxError(f"betas must be finite and >= 0, got {betas.tolist()}")
    members = [train.init(jax.random.key(s), config, learning_rate=learning_rate) for s in seeds]
    graphdef, tx = members[0][0], members[0][2]
    states = jax.tree.map(lambda *xs: jnp.stack(xs), *[m[1] for m in members])
    return graphdef, Population(states, jnp.asarray(betas), seeds), tx


def grid(*, size: int | None = None, seed: int = 0, beta_grid: Sequence[float] | None = None):
    """Seeds and betas for ``--population K --beta-grid b1,b2,...``: every beta of the grid
    crossed with K seeds (``seed, seed+1, ...``), or K seeds at beta 1 without a grid.

    Examples:
      >>> grid(size=2, beta_grid=[0.5, 4.0])
      ((0, 1, 0, 1), (0.5, 0.5, 4.0, 4.0))
    """
    betas_grid = [1.0] if not beta_grid else [float(b) for b in beta_grid]
    size = 1 if size is None else int(size)
    if size < 1:
        raise LatentJaxError(f"--population must be >= 1, got {size}")
    seeds = tuple(seed + i for _ in betas_grid for i in range(size))
    betas = tuple(b for b in betas_grid for _ in range(size))
    return seeds, betas


def make_step(graphdef, tx: optax.GradientTransformation) -> Callable:
    """``step(states, betas, images) -> (states, {"loss": (K,)})``: ``train.make_step`` vmapped
    over members, each with its own batch ``images[k]`` (``(K, batch, h, w, c)``) and beta (traced,
    so one compilation serves any grid). Member ``k`` computes exactly ``train.make_step`` with
    ``beta=betas[k]``.
    """

    def one(state, beta, images):
        return train.make_step(graphdef, tx, beta=beta)(state, images)

    return jax.vmap(one)


def make_run(graphdef, tx: optax.GradientTransformation) -> Callable:
    """``run(states, betas, data, indices) -> (states, losses)``: a ``lax.scan`` of the population
    step over index rows ``(steps, K, batch)`` into the data set on the device; ``losses`` is
    ``(steps, K)``.
    """
    step = make_step(graphdef, tx)

    def run(states, betas, data, indices):
        def body(st, idx):
            st, metrics = step(st, betas, data[idx])
            return st, metrics["loss"]

        return jax.lax.scan(body, states, indices)

    return run


def member_name(k: int, seed: int, beta: float) -> str:
    """The folder of member ``k`` in a population's ``out_dir``.

    Examples:
      >>> member_name(2, 0, 4.0)
      'member02_seed0_beta4'
    """
    return f"member{k:02d}_seed{int(seed)}_beta{float(beta):g}"


def _take(tree: Any, k: int) -> Any:
    return jax.tree.map(lambda x: x[k], tree)


class _Members:
    """A population's files: ``population.json`` (its seeds and betas) and one ``runs.RunDir``
    per member, written and read with the methods ``runs.run_segments`` and ``runs.open_run`` use.
    """

    def __init__(self, out_dir, *, config, settings, seeds, betas, resume, keep):
        self.directory = pathlib.Path(out_dir)
        spec = {"seeds": [int(s) for s in seeds], "betas": [float(b) for b in betas]}
        spec_file = self.directory / "population.json"
        if not resume and self.directory.exists() and any(self.directory.iterdir()):
            raise LatentJaxError(
                f"{self.directory} is not empty; pass --resume to continue the population in it "
                "or choose another --out (nothing was overwritten)"
            )
        if spec_file.exists():
            old = json.loads(spec_file.read_text())
            if old != spec:
                raise LatentJaxError(
                    f"cannot resume {self.directory} with another population "
                    f"(saved vs requested: {old} vs {spec})"
                )
        self.runs = [
            runs.RunDir(
                self.directory / member_name(k, s, b),
                config=config,
                resume=resume,
                keep=keep,
                settings={**settings, "seed": s, "beta": b, "population": len(spec["seeds"])},
            )
            for k, (s, b) in enumerate(zip(spec["seeds"], spec["betas"]))
        ]
        spec_file.write_text(json.dumps(spec))

    def restore(self, states: train.TrainState) -> train.TrainState:
        """Every member at the latest step all of them saved (a run killed between two members'
        saves leaves them one checkpoint apart).
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
        members = [r.restore(_take(states, k), step) for k, r in enumerate(self.runs)]
        return jax.tree.map(lambda *xs: jnp.stack(xs), *members)

    def latest_step(self) -> int | None:
        steps = [r.latest_step() for r in self.runs]
        return None if None in steps else min(steps)

    def log(self, record: dict) -> None:
        common = {k: v for k, v in record.items() if k != "losses"}
        for k, r in enumerate(self.runs):
            r.log({**common, "loss": record["losses"][k]})

    def save(self, states: train.TrainState) -> None:
        for k, r in enumerate(self.runs):
            r.save(_take(states, k))

    def close(self) -> None:
        for r in self.runs:
            r.close()


def fit(
    config: models.Config,
    train_images: Any,
    *,
    seeds: Sequence[int],
    betas: Sequence[float] | float = 1.0,
    epochs: int,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    mode: str = "auto",
    out_dir: str | None = None,
    checkpoint_every: int | None = None,
    keep: int = 3,
    resume: bool = False,
    progress: bool = False,
    settings: dict | None = None,
):
    """Trains K models at once; member ``k`` equals ``train.fit(jax.random.key(seeds[k]), config,
    train_images, beta=betas[k], ...)`` (same initialisation, data order and per-step keys).

    Each member is written as its own ``train.fit`` run folder, ``out_dir/member_name(k, seed,
    beta)`` (``config.json`` with that member's seed and beta, its ``metrics.jsonl`` and
    checkpoints of its single ``TrainState``), next to ``out_dir/population.json``. So
    ``checkpoint.load_model`` and ``latentjax embed`` read a member like any run, and a member can
    be continued alone by ``train.fit(..., resume=True)``. Every member is saved at the same steps;
    ``resume`` restores all of them at the latest step every member holds and re-stacks them, so
    the resumed population runs the same steps on the same state as the uninterrupted one and
    equals it bit for bit on CPU.

    Args:
      seeds, betas: one per member (see ``grid``); betas may be one value for all.
      mode: ``"scan"`` (a segment of steps as one ``lax.scan``; dense models), ``"loop"`` (a
        Python loop over the jitted population step; conv models on CPU) or ``"auto"``.
      out_dir, checkpoint_every, keep, resume, settings: as for ``train.fit``; ``resume`` needs
        the same seeds and betas.

    Returns:
      ``(graphdef, Population, history)``: ``history`` has a record per segment (one per epoch by
      default) with the members' mean ``losses`` (K values) and ``images_per_s`` counting every
      member's images (models x images per second). ``member(graphdef, population, k)`` gives
      member ``k`` as a model.

    Examples:
      >>> cfg = models.Config(latent_dim=2, hidden=8)
      >>> images = np.zeros((32, 28, 28, 1), np.uint8)
      >>> g, pop, hist = fit(cfg, images, seeds=[0, 1], betas=[1.0, 4.0], epochs=1, batch_size=16)
      >>> pop.states.step.tolist()
      [2, 2]
    """
    config, train_images, steps_per_epoch = train.check_fit_args(
        config, train_images, batch_size=batch_size, epochs=epochs
    )
    n = len(train_images)
    graphdef, pop, tx = init(config, seeds=seeds, betas=betas, learning_rate=learning_rate)
    k = len(pop.seeds)
    every = checkpoint_every or steps_per_epoch
    if mode == "auto":
        mode = "loop" if config.arch == "conv" and jax.default_backend() == "cpu" else "scan"
    data = jax.device_put(train_images)
    if mode == "scan":
        run_scan = train.jit(make_run(graphdef, tx), donate_argnums=0)
        segment = lambda st, rows: run_scan(st, pop.betas, data, jnp.asarray(rows))  # noqa: E731
    elif mode == "loop":
        pstep = make_step(graphdef, tx)
        gather = train.jit(lambda st, b, d, idx: pstep(st, b, d[idx]), donate_argnums=0)

        def segment(st, rows):
            losses = []
            for idx in rows:
                st, m = gather(st, pop.betas, data, idx)
                losses.append(m["loss"])
            return st, jnp.stack(losses)
    else:
        raise LatentJaxError(f"mode must be 'scan', 'loop' or 'auto', got {mode!r}")

    member_settings = {
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "epochs": epochs,
        "checkpoint_every": every,
        **(settings or {}),
    }
    opener = (
        (
            lambda: _Members(
                out_dir,
                config=config,
                settings=member_settings,
                seeds=pop.seeds,
                betas=pop.betas.tolist(),
                resume=resume,
                keep=keep,
            )
        )
        if out_dir
        else None
    )
    run, states = runs.open_run(opener, pop.states, resume=resume)
    keys = [runs.host_key(states.key[i]) for i in range(k)]
    states, history = runs.run_segments(
        states,
        segment,
        lambda epoch: np.stack([train.epoch_order(kk, epoch, n, batch_size) for kk in keys], axis=1),
        start=int(np.asarray(states.step)[0]),
        total=epochs * steps_per_epoch,
        steps_per_epoch=steps_per_epoch,
        every=every,
        images_per_step=k * batch_size,
        run=run,
        describe=lambda st, losses, done: {"losses": losses.mean(axis=0).tolist()},
        tags={"mode": mode},
        progress=progress and jax.process_index() == 0,
    )
    return graphdef, pop._replace(states=states), history


def member(graphdef, population: Population, k: int) -> models.AutoEncoder:
    """Member ``k`` of a population as a model."""
    return nnx.merge(graphdef, _take(population.states.params, k))


def member_state(population: Population, k: int) -> train.TrainState:
    """Member ``k``'s ``train.TrainState`` (e.g. to checkpoint it as a single run)."""
    return _take(population.states, k)
