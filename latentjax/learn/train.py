"""Training one model: the loss, a pure step over a small ``state.TrainState``, and ``fit``.

The step is written for one global batch and knows nothing of devices, so
``latentjax.learn.parallel`` shards it over a mesh (or maps it with ``pmap``) and
``latentjax.learn.population`` vmaps it over models. ``fit`` builds the step, runs it in segments
(``loop.device_segment``, in the mode ``tuning.choose_mode`` picks) and leaves the run folder,
resuming, the data order, checkpoints and divergence to ``loop.run``, which every trainer shares.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import jax
import numpy as np  # noqa: F401  (the doctests' np)
import optax
from jax.typing import ArrayLike

from latentjax import data
from latentjax.errors import InputError
from latentjax.learn import _gradients, _optimizer, loop, models, objectives, tuning
from latentjax.learn import _onednn as onednn
from latentjax.learn._evaluation import epoch_evaluation, evaluate  # noqa: F401  (train.evaluate, ...)
from latentjax.learn.objectives import Objective, summed_loss
from latentjax.learn.state import TrainState, init, step_key

# Folded into the run key for the one draw of ``binarize="fixed"``.
_FIXED_BINARIZATION = 0x666978


def loss_fn(
    params,
    key: jax.Array,
    images: jax.Array,
    *,
    graphdef,
    beta: float = 1.0,
    objective: str | Objective = "elbo",
    num_samples: int = 1,
    binarize: str = "none",
    step=0,
    aux=(),
) -> jax.Array:
    """The mean negative objective of a batch; example ``i`` draws with ``jax.random.split(key, b)[i]``.

    Args:
      params: the model's ``nnx.State``.
      key: the step's key.
      images: uint8 ``(b, h, w, c)``.
      graphdef: the model's ``nnx.GraphDef``.
      beta: the KL weight.
      objective: a name of ``objectives.OBJECTIVES`` or an ``objectives.Objective`` (with its
        hyperparameters; ``objectives.resolve``).
      num_samples: latents per example (IWAE's ``k``; the ELBO averages ``k`` one-sample ELBOs).
      binarize: ``"dynamic"`` draws each image afresh (``objectives.summed_loss``); ``"none"`` and
        ``"fixed"`` read it as it is.
      step: the step (traced in the trainers; the annealed capacity reads it).
      aux: ``TrainState.aux`` (FactorVAE's discriminator).

    Returns:
      A scalar (differentiable in ``params``).

    Examples:
      >>> from latentjax.learn import state
      >>> cfg = models.Config(latent_dim=2, hidden=8)
      >>> graphdef, st, _ = state.init(jax.random.key(0), cfg, learning_rate=1e-3)
      >>> loss_fn(st.params, jax.random.key(1), np.zeros((4, 28, 28, 1), np.uint8), graphdef=graphdef).shape
      ()
    """
    spec = objectives.resolve(objective, beta=beta, num_samples=num_samples, where="train.loss_fn")
    spec = objectives.check(spec, where="train.loss_fn")
    keys = jax.random.split(key, images.shape[0])
    return (
        summed_loss(params, graphdef, keys, images, spec, binarize=binarize, step=step, aux=aux)
        / images.shape[0]
    )


def make_step(
    graphdef,
    tx: optax.GradientTransformation,
    *,
    beta: float = 1.0,
    objective: str | Objective = "elbo",
    num_samples: int = 1,
    binarize: str = "none",
    microbatches: int = 1,
    conv_kernels: str = "xla",
    axis_name: str | None = None,
) -> Callable:
    """The training step ``step(state, images) -> (state, {"loss": loss})``, pure and not yet jitted.

    A batch objective (``objectives.BATCH``) is computed on the whole batch; an ``objectives.AUX``
    one also steps its second network (``TrainState.aux``) on the same batch, after the model's
    gradient is taken with it (FactorVAE; the metrics add ``"disc_loss"``).

    Args:
      graphdef: the model's ``nnx.GraphDef``.
      tx: the optax transformation.
      beta: the KL weight.
      objective: a name of ``objectives.OBJECTIVES`` or an ``objectives.Objective``.
      num_samples: latents per example (``loss_fn``).
      binarize: ``"dynamic"``: each image drawn afresh at every step (``loss_fn``).
      microbatches: compute the batch's gradient in this many equal slices, summed (the same
        gradient up to float rounding; see ``tuning.default_microbatches``).
      conv_kernels: ``"xla"``, or ``"onednn"`` for the conv layers' kernels through oneDNN
        (single-device CPU steps only; see ``tuning.default_conv_kernels``).
      axis_name: under ``jax.pmap`` over this axis, ``images`` is one device's shard of the global
        batch: each example keeps its key of the global batch and loss and gradients are
        ``lax.pmean``-ed (``parallel.make_pmap_step``). Sharded ``jit`` needs nothing: XLA
        inserts the reductions.

    Returns:
      The step; ``images`` are uint8 ``(b, h, w, c)``.

    Raises:
      InputError: an unknown ``conv_kernels`` (or oneDNN unavailable), ``microbatches`` < 1,
        ``axis_name`` with microbatches or oneDNN, a batch objective with ``axis_name`` or
        microbatches, or a bad objective (``objectives.check``) or ``binarize``.

    Examples:
      >>> from latentjax.learn import state
      >>> cfg = models.Config(latent_dim=2, hidden=8)
      >>> graphdef, st, tx = state.init(jax.random.key(0), cfg, learning_rate=1e-3)
      >>> st, metrics = jax.jit(make_step(graphdef, tx))(st, np.zeros((4, 28, 28, 1), np.uint8))
      >>> int(st.step)
      1
    """
    where = "train.make_step"
    spec = objectives.check(
        objectives.resolve(objective, beta=beta, num_samples=num_samples, where=where), where=where
    )
    binarize = data.check_binarize(binarize, where="train.make_step")
    if conv_kernels not in ("xla", "onednn"):
        raise InputError(f"train.make_step: conv_kernels must be 'xla' or 'onednn', got {conv_kernels!r}")
    if conv_kernels == "onednn" and not onednn.available():
        raise InputError(
            f"train.make_step: conv_kernels='onednn' but the oneDNN kernels are unavailable: "
            f"{onednn.unavailable_reason()}"
        )
    if int(microbatches) < 1:
        raise InputError(f"train.make_step: microbatches must be >= 1, got {microbatches}")
    microbatches = int(microbatches)
    if axis_name is not None and (microbatches > 1 or conv_kernels != "xla"):
        raise InputError("train.make_step: axis_name (pmap) takes microbatches=1 and conv_kernels='xla'")
    if spec.name in objectives.BATCH and (axis_name is not None or microbatches > 1):
        raise InputError(
            f"train.make_step: objective={spec.name!r} needs the whole batch: it takes microbatches=1 "
            "and no axis_name (pmap); shard it with jit (parallel.make_sharded_step)"
        )

    def step(st: TrainState, images: jax.Array):
        key = step_key(st)
        aux, metrics = st.aux, {}
        ctx = dict(graphdef=graphdef, spec=spec, binarize=binarize, step=st.step)
        with onednn.enabled(conv_kernels == "onednn"):  # read while this is traced
            if spec.name in objectives.AUX:
                loss, grads, aux, metrics = _gradients.aux_value_and_grad(
                    st.params, key, images, aux=st.aux, **ctx
                )
            elif axis_name is not None:
                loss, grads = jax.value_and_grad(_gradients.shard_loss)(
                    st.params, key, images, axis_name=axis_name, **ctx
                )
                loss, grads = jax.lax.pmean((loss, grads), axis_name)
            elif microbatches == 1:
                loss, grads = jax.value_and_grad(loss_fn)(
                    st.params,
                    key,
                    images,
                    graphdef=graphdef,
                    beta=spec.beta,
                    objective=spec,
                    num_samples=spec.num_samples,
                    binarize=binarize,
                    step=st.step,
                )
            else:
                loss, grads = _gradients.accumulated_value_and_grad(
                    st.params, key, images, microbatches=microbatches, **ctx
                )
        updates, opt_state = tx.update(grads, st.opt_state, st.params)
        params = optax.apply_updates(st.params, updates)
        return TrainState(st.step + 1, params, opt_state, st.key, aux), {"loss": loss, **metrics}

    return step


def binarized(job: loop.Job, key: jax.Array, binarize: str) -> loop.Job:
    """The job's images as a run with ``binarize`` reads them (every trainer calls it).

    ``"fixed"``: the training images drawn once (``data.binarize``) with
    ``fold_in(key, ...)``, a stream of the run key, so the same run draws the same set. With
    ``"fixed"`` or ``"dynamic"`` the evaluation images are the one fixed binarisation of test
    images, ``data.binarize(jax.random.key(data.BINARIZED_TEST_SEED), eval_images)``.

    Args:
      job: the validated job (``loop.prepare``).
      key: the run key (``TrainState.key``).
      binarize: ``"none"``, ``"fixed"`` or ``"dynamic"``.

    Returns:
      The job with its images replaced.

    Examples:
      >>> job = loop.prepare(models.Config(), np.full((4, 28, 28, 1), 9, np.uint8), epochs=1, batch_size=2)
      >>> np.unique(binarized(job, jax.random.key(0), "fixed").images).tolist()
      [0, 255]
    """
    if binarize == "none":
        return job
    images = job.images
    if binarize == "fixed":
        images = data.binarize(jax.random.fold_in(key, _FIXED_BINARIZATION), images)
    ev = job.eval_images
    if ev is not None:
        ev = data.binarize(jax.random.key(data.BINARIZED_TEST_SEED), ev)
    return job._replace(images=images, eval_images=ev)


def fit(
    key: jax.Array,
    config: models.Config,
    train_images: ArrayLike,
    *,
    epochs: int,
    batch_size: int = 128,
    learning_rate: float | list = 1e-3,
    beta: float = 1.0,
    objective: str | Objective = "elbo",
    num_samples: int = 1,
    binarize: str = "none",
    adam_b1: float = 0.9,
    adam_b2: float = 0.999,
    adam_eps: float = 1e-8,
    out_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    keep: int = 3,
    resume: bool | int = False,
    progress: bool = False,
    eval_images: ArrayLike | None = None,
    mode: str = "auto",
    device_bytes_limit: int = 2**31,
    microbatches: int | None = None,
    conv_kernels: str | None = None,
    settings: dict | None = None,
) -> loop.FitResult:
    """Trains a model on uint8 images and returns it with its final state and history.

    Args:
      key: the run's key (initialisation, per-step randomness and data order derive from it).
      config: the model.
      train_images: uint8 ``(n, h, w, c)``.
      epochs: passes over the data (the last incomplete batch of each is dropped).
      batch_size: images per step.
      learning_rate: Adam's step size, or stages ``[(epochs, rate), ...]`` run in turn (the last
        rate continues), e.g. Burda et al.'s ``[(3**i, 1e-3 * 10 ** (-i / 7)) for i in range(8)]``.
      beta: the KL weight.
      objective: a name of ``objectives.OBJECTIVES`` (``"elbo"``, ``"iwae"``, ``"beta_tcvae"``,
        ``"annealed_vae"``, ``"factor_vae"``) or an ``objectives.Objective`` with hyperparameters
        (``objectives.resolve``; beta-TCVAE's ``dataset_size`` is the number of training images).
        Its name and ``objectives.options`` are stored and must be those saved on resume.
      num_samples: latents per example: IWAE's ``k``; the ELBO averages ``k`` one-sample ELBOs.
      binarize: ``"none"``; ``"fixed"`` (the training images binarised once, ``binarized``); or
        ``"dynamic"`` (each image drawn afresh at every visit from the step's key, so resume stays
        exact). Either binarises ``eval_images`` once with ``data.BINARIZED_TEST_SEED``.
      adam_b1: Adam's first-moment decay.
      adam_b2: Adam's second-moment decay.
      adam_eps: Adam's epsilon.
      out_dir: where ``config.json``, ``metrics.jsonl`` and ``checkpoint/`` go (None: nothing
        is written).
      checkpoint_every: steps between checkpoints (default: one epoch); one is always saved at
        the end.
      keep: checkpoints kept.
      resume: continue the run in ``out_dir`` from its newest intact checkpoint (a corrupt
        latest one is skipped with a warning), or from the checkpoint of this step when an int
        (``--resume-step N``); the result equals the uninterrupted run bit for bit on CPU. The
        checkpoint may come from ``parallel.fit_data_parallel`` with the same settings (equal up
        to summation order). The objective, binarisation, learning rate and Adam's settings must
        be those saved (``epochs`` may grow).
      progress: show a progress bar.
      eval_images: optional uint8 images whose ELBO and MSE are logged after each epoch.
      mode: ``"scan"``, ``"loop"``, ``"host"`` or ``"auto"`` (``tuning.choose_mode``).
      device_bytes_limit: ``"auto"`` feeds batches from the host above this data set size.
      microbatches: slices the batch's gradient is computed in (``make_step``); None picks
        ``tuning.default_microbatches``. It changes float rounding only, not the trajectory's meaning.
      conv_kernels: ``"xla"`` or ``"onednn"`` (``make_step``); None picks ``tuning.default_conv_kernels``.
        Float rounding only, like ``microbatches``.
      settings: extra JSON-able values stored in ``config.json`` (e.g. the CLI's ``seed``).

    Returns:
      ``loop.FitResult(model, state, history)``; ``history`` holds the records of ``metrics.jsonl``.

    Raises:
      InputError: a bad objective, ``binarize`` or ``learning_rate``.
      TrainingDiverged: the loss became NaN or infinite (the last good checkpoint is kept).

    Examples:
      >>> cfg = models.Config(image_shape=(8, 8, 1), latent_dim=2, hidden=8)
      >>> res = fit(jax.random.key(0), cfg, np.zeros((32, 8, 8, 1), np.uint8), epochs=2, batch_size=16)
      >>> int(res.state.step), len(res.history)
      (4, 2)

    References:
      Burda, Grosse, Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016 (IWAE, the
      schedule and dynamic binarisation).
    """
    job = loop.prepare(
        config,
        train_images,
        epochs=epochs,
        batch_size=batch_size,
        checkpoint_every=checkpoint_every,
        eval_images=eval_images,
    )
    config = job.config
    spec = objectives.prepare(
        objective, config, beta=beta, num_samples=num_samples, num_images=len(job.images), where="train.fit"
    )
    binarize = data.check_binarize(binarize, where="train.fit")
    lr = _optimizer.stages(learning_rate, where="train.fit")
    adam = {"b1": float(adam_b1), "b2": float(adam_b2), "eps": float(adam_eps)}
    lr0 = lr if isinstance(lr, float) else lr[0][1]
    graphdef, st, _ = init(key, config, learning_rate=lr0, objective=spec)
    tx = _optimizer.adam(lr, steps_per_epoch=job.steps_per_epoch, **adam)  # optax.adam's state
    job = binarized(job, st.key, binarize)
    if microbatches is None:  # a batch objective is never split
        microbatches = 1 if spec.name in objectives.BATCH else tuning.default_microbatches(config, batch_size)
    conv_kernels = conv_kernels or tuning.default_conv_kernels(config)
    mode = tuning.choose_mode(mode, config, nbytes=job.images.nbytes, device_bytes_limit=device_bytes_limit)
    step = make_step(
        graphdef, tx, objective=spec, binarize=binarize, microbatches=microbatches, conv_kernels=conv_kernels
    )
    settings = {
        "batch_size": batch_size,
        "learning_rate": lr,
        "beta": spec.beta,
        "objective": spec.name,
        "objective_options": objectives.options(spec),
        "num_samples": spec.num_samples,
        "binarize": binarize,
        "adam": adam,
        "epochs": epochs,
        "checkpoint_every": job.every,
        "microbatches": microbatches,
        "conv_kernels": conv_kernels,
        **(settings or {}),
    }
    return loop.run(
        job,
        graphdef,
        st,
        loop.device_segment(step, job.images, mode),
        settings=settings,
        out_dir=out_dir,
        resume=resume,
        keep=keep,
        progress=progress,
        tags={"mode": mode},
        describe=epoch_evaluation(
            graphdef, job.eval_images, steps_per_epoch=job.steps_per_epoch, beta=spec.beta
        ),
    )


def throughput(history: list) -> float:
    """Images per second over a run, leaving out the first segment (it includes compilation).

    Args:
      history: ``FitResult.history``.

    Returns:
      Images per second (0.0 for an empty history).

    Examples:
      >>> throughput([{"seconds": 9.0, "images_per_s": 1.0}, {"seconds": 2.0, "images_per_s": 50.0}])
      50.0
    """
    rows = history[1:] or history
    secs = sum(r["seconds"] for r in rows)
    imgs = sum(r["images_per_s"] * r["seconds"] for r in rows)
    return imgs / secs if secs else 0.0
