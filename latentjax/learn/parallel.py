"""Data parallelism: the training step over several devices (``jit`` + sharding, or ``pmap``).

The training step of ``latentjax.learn.train`` is written for one global batch; here it is sharded
over a ``("data",)`` mesh (``latentjax.learn.distributed``; the recommended path: XLA inserts the
gradient reductions, and the same code runs on one device, many devices and many processes) or
mapped with ``jax.pmap`` (a thin alternative, kept equal to the sharded path).
``fit_data_parallel`` runs it in ``loop.run``, the loop of every trainer. Populations (K models in
one compiled step) live in ``latentjax.learn.population``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from latentjax import data
from latentjax.errors import InputError
from latentjax.learn import _xla as xla
from latentjax.learn import loop, models, objectives, train, tuning
from latentjax.learn.distributed import (
    AXIS,
    local_rows,
    make_mesh,
    replicate,
    replicate_for_pmap,
    select_devices,
    shard_batch,
    to_host_local,
)
from latentjax.learn.state import init, take

PARALLEL = ("jit", "pmap")


def make_sharded_step(
    graphdef,
    tx: optax.GradientTransformation,
    mesh: jax.sharding.Mesh,
    *,
    beta: float = 1.0,
    objective: str | objectives.Objective = "elbo",
    num_samples: int = 1,
    binarize: str = "none",
    donate: bool = True,
) -> Callable:
    """``train.make_step`` compiled over the mesh: state replicated, batch sharded on ``"data"``.

    No collective is written: XLA inserts the all-reduce of the gradients, and the per-example keys
    are those of the single-device step (drawn for the global batch), so the loss trajectory equals
    the single-device one up to summation order.

    Args:
      graphdef: the model's ``nnx.GraphDef``.
      tx: the optax transformation.
      mesh: the mesh.
      beta: the KL weight.
      objective: a name or an ``objectives.Objective`` (``train.make_step``). A batch objective
        (``objectives.BATCH``: beta-TCVAE, FactorVAE, the annealed VAE) is computed on the whole
        global batch: XLA gathers the codes across devices, so the step equals the one-device step.
      num_samples: latents per example (``train.make_step``).
      binarize: ``"dynamic"`` draws each image afresh (``train.make_step``).
      donate: donate the state's buffers to the step.

    Returns:
      The jitted ``step(state, images) -> (state, {"loss"})``.

    Examples:
      >>> import numpy as np
      >>> mesh = make_mesh(1)
      >>> cfg = models.Config(latent_dim=2, hidden=8)
      >>> graphdef, st, tx = init(jax.random.key(0), cfg, learning_rate=1e-3)
      >>> step = make_sharded_step(graphdef, tx, mesh)
      >>> st, m = step(replicate(st, mesh), np.zeros((4, 28, 28, 1), np.uint8))
      >>> int(st.step)
      1
    """
    rep = NamedSharding(mesh, P())
    batch = NamedSharding(mesh, P(AXIS))
    loss = dict(beta=beta, objective=objective, num_samples=num_samples, binarize=binarize)
    return xla.jit(
        train.make_step(graphdef, tx, **loss),
        in_shardings=(rep, batch),
        out_shardings=(rep, rep),
        donate_argnums=0 if donate else (),
    )


def make_sharded_scan(
    graphdef,
    tx: optax.GradientTransformation,
    mesh: jax.sharding.Mesh,
    *,
    beta: float = 1.0,
    objective: str | objectives.Objective = "elbo",
    num_samples: int = 1,
    binarize: str = "none",
) -> Callable:
    """A whole segment of steps as one sharded ``lax.scan`` (``loop.make_scan``).

    The data set is replicated on every device and the index rows ``(steps, batch)`` are sharded
    along the batch, so each device gathers only its shard.

    Args:
      graphdef: the model's ``nnx.GraphDef``.
      tx: the optax transformation.
      mesh: the mesh.
      beta: the KL weight.
      objective: as for ``make_sharded_step``.
      num_samples: as for ``make_sharded_step``.
      binarize: as for ``make_sharded_step``.

    Returns:
      The jitted ``scan(state, data, indices) -> (state, losses)`` (the state donated).

    Examples:
      >>> import numpy as np
      >>> mesh = make_mesh(2)
      >>> cfg = models.Config(latent_dim=2, hidden=8)
      >>> graphdef, st, tx = init(jax.random.key(0), cfg, learning_rate=1e-3)
      >>> scan = make_sharded_scan(graphdef, tx, mesh)
      >>> rows = shard_batch(np.zeros((3, 4), np.int32), mesh, global_batch=4, axis=1)
      >>> st, losses = scan(replicate(st, mesh), replicate(np.zeros((8, 28, 28, 1), np.uint8), mesh), rows)
      >>> losses.shape
      (3,)
    """
    rep = NamedSharding(mesh, P())
    idx = NamedSharding(mesh, P(None, AXIS))
    loss = dict(beta=beta, objective=objective, num_samples=num_samples, binarize=binarize)
    return xla.jit(
        loop.make_scan(train.make_step(graphdef, tx, **loss)),
        in_shardings=(rep, rep, idx),
        out_shardings=(rep, rep),
        donate_argnums=0,
    )


def make_pmap_step(
    graphdef,
    tx: optax.GradientTransformation,
    *,
    beta: float = 1.0,
    objective: str | objectives.Objective = "elbo",
    num_samples: int = 1,
    binarize: str = "none",
    num_devices: int | None = None,
    devs: Sequence | None = None,
) -> Callable:
    """The step under ``jax.pmap``: ``step(states, images) -> (states, {"loss"})``.

    ``states`` carries a leading device axis (``replicate_for_pmap``) and ``images`` is
    ``(devices, batch // devices, h, w, c)``. The step is ``train.make_step(axis_name="data")``:
    each device draws the keys of the whole global batch and takes its slice, so every example
    sees the key it sees on one device; gradients and loss are ``lax.pmean``-ed. ``jax.pmap`` is in
    maintenance mode since JAX 0.8: prefer ``make_sharded_step``.

    Args:
      graphdef: the model's ``nnx.GraphDef``.
      tx: the optax transformation.
      beta: the KL weight.
      objective: as for ``make_sharded_step``.
      num_samples: as for ``make_sharded_step``.
      binarize: as for ``make_sharded_step``.
      num_devices: the first this many local devices (default: all), unless ``devs`` is given.
      devs: the devices.

    Returns:
      The pmapped step (the states donated).

    Examples:
      >>> import numpy as np
      >>> cfg = models.Config(latent_dim=2, hidden=8)
      >>> graphdef, st, tx = init(jax.random.key(0), cfg, learning_rate=1e-3)
      >>> step = make_pmap_step(graphdef, tx, num_devices=2)
      >>> sts, m = step(replicate_for_pmap(st, 2), np.zeros((2, 2, 28, 28, 1), np.uint8))
      >>> m["loss"].shape
      (2,)
    """
    devs = list(devs) if devs is not None else jax.local_devices()[: num_devices or jax.local_device_count()]
    loss = dict(beta=beta, objective=objective, num_samples=num_samples, binarize=binarize)
    step = train.make_step(graphdef, tx, **loss, axis_name=AXIS)
    return jax.pmap(step, axis_name=AXIS, devices=devs, donate_argnums=0)


def fit_data_parallel(
    key: jax.Array,
    config: models.Config,
    train_images: Any,
    *,
    epochs: int,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    beta: float = 1.0,
    objective: str | objectives.Objective = "elbo",
    num_samples: int = 1,
    binarize: str = "none",
    devices: Sequence | int | str | None = "all",
    parallel: str = "jit",
    mode: str = "auto",
    out_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    keep: int = 3,
    resume: bool | int = False,
    progress: bool = False,
    eval_images: Any = None,
    settings: dict | None = None,
) -> loop.FitResult:
    """``train.fit`` over several devices (and processes): same keys, data order, steps and files.

    Every process passes the same ``key`` and the whole ``train_images`` (each feeds only its rows
    of each global batch). ``batch_size`` is the global batch and must be divisible by the devices.

    The run folder is ``train.fit``'s (``runs.RunDir``; process 0 writes and restores it and sends
    the restored state to the others): its checkpoints hold the plain single-device ``TrainState``
    gathered from the mesh (or device 0's copy under ``pmap``), so ``runs.load_model`` reads them,
    and a run can be resumed on another number of devices, or by ``train.fit``, with the same
    settings (equal up to summation order). Resuming on the same devices is exact: the segments of
    steps are those of the uninterrupted run (``loop.run``) and the restored state is placed as the
    fresh one was.

    Args:
      key: as for ``train.fit``.
      config: the model.
      train_images: uint8 ``(n, h, w, c)``, the whole data set on every process.
      epochs: passes over the data.
      batch_size: the global batch.
      learning_rate: Adam's step size.
      beta: the KL weight.
      objective: as for ``train.fit``; a batch objective (``objectives.BATCH``) is computed on the
        whole global batch (equal to ``train.fit`` up to summation order) and needs ``"jit"``.
      num_samples: as for ``train.fit``.
      binarize: as for ``train.fit``.
      devices: devices, or a ``select_devices`` spec.
      parallel: ``"jit"`` (sharding over a ``("data",)`` mesh; recommended) or ``"pmap"``
        (single process only).
      mode: ``"scan"`` (the data set replicated on every device, a segment of steps as one
        sharded ``lax.scan``; dense models), ``"loop"`` (a Python loop over the sharded step, each
        process feeding its shard of every batch; conv models on CPU) or ``"auto"``. The pmap
        path loops.
      out_dir: as for ``train.fit``.
      checkpoint_every: as for ``train.fit``.
      keep: as for ``train.fit``.
      resume: as for ``train.fit``.
      progress: show a progress bar (on process 0).
      eval_images: as for ``train.fit`` (evaluated on this process's first device).
      settings: as for ``train.fit``.

    Returns:
      ``loop.FitResult`` with the parameters gathered to this process; ``history`` has one
      record per segment (one per epoch by default: ``step``, ``epoch``, ``loss``,
      ``images_per_s``, ``seconds``, ``mode``, ``devices``).

    Raises:
      InputError: an unknown ``parallel`` or ``mode``, ``pmap`` over processes or with a batch
        objective, or a batch that does not divide over the devices.

    Examples:
      >>> import numpy as np
      >>> cfg = models.Config(latent_dim=2, hidden=8)
      >>> images = np.zeros((64, 28, 28, 1), np.uint8)
      >>> res = fit_data_parallel(jax.random.key(0), cfg, images, epochs=1, batch_size=16, devices=1)
      >>> int(res.state.step)
      4

    References:
      JAX "Distributed arrays and automatic parallelization"; the training cookbook
      (jax-ml/jax ``docs/the-training-cookbook.py``).
    """
    where = "parallel.fit_data_parallel"
    if parallel not in PARALLEL:
        raise InputError(f"{where}: parallel={parallel!r}; choose one of {PARALLEL}")
    job = loop.prepare(
        config,
        train_images,
        epochs=epochs,
        batch_size=batch_size,
        checkpoint_every=checkpoint_every,
        eval_images=eval_images,
    )
    devs = list(devices) if isinstance(devices, (list, tuple)) else select_devices(devices)
    mode = "loop" if parallel == "pmap" else tuning.choose_mode(mode, job.config)
    if parallel == "pmap" and jax.process_count() > 1:
        raise InputError(f"{where}: parallel='pmap' runs in one process; use parallel='jit' for multi-host")
    if batch_size % len(devs):
        raise InputError(f"{where}: batch_size={batch_size} is not divisible by the {len(devs)} devices")
    spec = objectives.prepare(
        objective, job.config, beta=beta, num_samples=num_samples, num_images=len(job.images), where=where
    )
    if parallel == "pmap" and spec.name in objectives.BATCH:
        raise InputError(f"{where}: objective={spec.name!r} needs the whole batch; use parallel='jit'")
    graphdef, st, tx = init(key, job.config, learning_rate=learning_rate, objective=spec)
    job = train.binarized(job, st.key, data.check_binarize(binarize, where=where))
    images = job.images
    loss = dict(objective=spec, binarize=binarize)

    if parallel == "pmap":
        nd = len(devs)
        pstep = make_pmap_step(graphdef, tx, **loss, devs=devs)

        def place(s):
            return replicate_for_pmap(s, nd)

        def host(s):
            return jax.tree.map(to_host_local, take(s, 0))

        def one(s, row):
            s, metrics = pstep(s, images[row].reshape((nd, batch_size // nd) + images.shape[1:]))
            return s, metrics["loss"][0]

        segment = loop.stepwise(one)
    else:
        mesh = make_mesh(devs)
        mine = local_rows(mesh, batch_size)

        def place(s):
            return replicate(s, mesh)

        def host(s):
            return jax.tree.map(to_host_local, s)

        if mode == "scan":
            on_devices = replicate(images, mesh)
            scan = make_sharded_scan(graphdef, tx, mesh, **loss)

            def segment(s, rows):
                return scan(s, on_devices, shard_batch(rows[:, mine], mesh, global_batch=batch_size, axis=1))
        else:
            step = make_sharded_step(graphdef, tx, mesh, **loss)

            def one(s, row):
                s, metrics = step(s, shard_batch(images[row[mine]], mesh, global_batch=batch_size))
                return s, metrics["loss"]

            segment = loop.stepwise(one)

    settings = {
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "beta": spec.beta,
        "objective": spec.name,
        "objective_options": objectives.options(spec),
        "num_samples": spec.num_samples,
        "binarize": binarize,
        "adam": {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
        "epochs": epochs,
        "checkpoint_every": job.every,
        "devices": len(devs),
        "parallel": parallel,
        "processes": jax.process_count(),
        **(settings or {}),
    }
    describe = train.epoch_evaluation(
        graphdef, job.eval_images, steps_per_epoch=job.steps_per_epoch, beta=spec.beta, host=host
    )
    return loop.run(
        job,
        graphdef,
        st,
        segment,
        settings=settings,
        out_dir=out_dir,
        resume=resume,
        keep=keep,
        progress=progress,
        tags={"mode": f"{parallel}-{mode}", "devices": len(devs)},
        place=place,
        host=host,
        describe=describe,
    )
