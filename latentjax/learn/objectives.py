"""The training objectives by name: the ELBO, IWAE and the disentangling objectives.

Every trainer (``train``, ``parallel``, ``population``) minimises ``summed_loss``, the negative of
``OBJECTIVES[objective.name]`` summed over a batch. An objective is one function
``fn(model, keys, x, objective, *, step=0, aux=()) -> (b,)``: values (higher is better) of float
images ``x`` ``(b, h, w, c)`` whose sum is the batch's objective, example ``i`` drawing with
``keys[i]``; ``step`` is the trainer's step (traced: the annealed capacity reads it, the step
compiles once) and ``aux`` what the objective trains beside the model (``TrainState.aux``).
``Objective`` carries the name and hyperparameters.

Per-example objectives (``elbo``, ``iwae``): value ``i`` depends on example ``i`` only, so a batch
may be split (microbatches, ``pmap`` shards). Batch objectives (``BATCH``: ``beta_tcvae``,
``annealed_vae``, ``factor_vae``) need the whole batch's posteriors: the trainers compute them on the
whole global batch (one device, or ``jit`` sharded over a mesh, where XLA gathers what crosses
devices, so data-parallel training computes exactly the single-device objective) and refuse
``microbatches`` > 1 and ``pmap``. Objectives in ``AUX`` (``factor_vae``) train a second network:
``init_aux`` makes its state, ``update_aux`` takes its step after the model's, on the same batch.

A new objective is one such function, an entry in ``OBJECTIVES`` (and ``BATCH``/``AUX``) and, where
it needs them, new ``Objective`` fields with defaults.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from latentjax import _checks, data
from latentjax.errors import InputError
from latentjax.learn import _discriminator, models
from latentjax.learn import _disentangle_objectives as _dis

# Folded into an example's key for its dynamic binarisation (the objective draws with the key itself).
_BINARIZE_STREAM = 0x62696E


class Objective(NamedTuple):
    """A training objective and its hyperparameters (``check`` validates one).

    Attributes:
      name: a key of ``OBJECTIVES``: ``"elbo"``, ``"iwae"``, ``"beta_tcvae"``, ``"annealed_vae"``
        or ``"factor_vae"``.
      beta: the KL weight: the ELBO's (Higgins et al. 2017) and FactorVAE's; beta-TCVAE's
        dimension-wise KL weight (the paper's gamma, 1); IWAE and the annealed VAE take 1 only.
      num_samples: ``k``, latents drawn per example: the ELBO averages ``k`` one-sample ELBOs (the
        "VAE" rows of Burda et al.'s Table 1), IWAE is the bound ``L_k``; the others take 1.
      gamma: the annealed VAE's capacity weight (default 1000, Burgess et al.) or FactorVAE's TC
        weight (default 35; the paper's range 10-100); None takes the default.
      capacity_max: the annealed VAE's final capacity C_max in nats (25, Burgess et al.'s dSprites).
      capacity_steps: steps over which C rises linearly from 0 to C_max (100,000).
      tc_weight: beta-TCVAE's total-correlation weight (the paper's beta, 6).
      alpha: beta-TCVAE's index-code mutual-information weight (1).
      dataset_size: N of minibatch-weighted sampling (beta-TCVAE); the trainers set it to the
        number of training images when 0.
      disc_hidden: FactorVAE discriminator's width (1000, as the paper).
      disc_depth: its hidden layers (6).

    Examples:
      >>> Objective("iwae", num_samples=5).beta
      1.0
    """

    name: str = "elbo"
    beta: float = 1.0
    num_samples: int = 1
    gamma: float | None = None
    capacity_max: float = 25.0
    capacity_steps: int = 100_000
    tc_weight: float = 6.0
    alpha: float = 1.0
    dataset_size: int = 0
    disc_hidden: int = 1000
    disc_depth: int = 6


def elbo(
    model: models.AutoEncoder, keys: jax.Array, x: jax.Array, objective: Objective, *, step=0, aux=()
) -> jax.Array:
    """``models.elbo`` of each example; with ``num_samples`` k > 1, the mean of k one-sample ELBOs.

    Args:
      model: the model.
      keys: ``(b,)``; with k > 1 example ``i``'s samples draw with ``jax.random.split(keys[i], k)``.
      x: float ``(b, h, w, c)`` in [0, 1].
      objective: ``beta`` and ``num_samples``.
      step: unused.
      aux: unused.

    Returns:
      ``(b,)``.

    Examples:
      >>> cfg = models.Config(image_shape=(4, 4, 1), latent_dim=2, hidden=8)
      >>> model = models.create(jax.random.key(0), cfg)
      >>> keys = jax.random.split(jax.random.key(1), 3)
      >>> elbo(model, keys, jnp.zeros((3, 4, 4, 1)), Objective(num_samples=2)).shape
      (3,)
    """
    beta, k = objective.beta, objective.num_samples

    def one(key, xi):
        if k == 1:  # the key itself: a run of the one-sample ELBO draws what it always drew
            return models.elbo(model, key, xi, beta=beta)
        # The encoder does not depend on the vmapped key, so it runs once per example.
        per_sample = jax.vmap(lambda kj: models.elbo(model, kj, xi, beta=beta))(jax.random.split(key, k))
        return jnp.mean(per_sample)

    return jax.vmap(one)(keys, x)


def iwae(
    model: models.AutoEncoder, keys: jax.Array, x: jax.Array, objective: Objective, *, step=0, aux=()
) -> jax.Array:
    """``models.iwae_bound`` of each example with ``k = num_samples`` (Burda et al. 2016, eq. 8).

    Args:
      model: a VAE.
      keys: ``(b,)``, example ``i``'s k latents drawn with ``keys[i]``.
      x: float ``(b, h, w, c)`` in [0, 1].
      objective: ``num_samples``.
      step: unused.
      aux: unused.

    Returns:
      ``(b,)``.

    Examples:
      >>> cfg = models.Config(image_shape=(4, 4, 1), latent_dim=2, hidden=8)
      >>> model = models.create(jax.random.key(0), cfg)
      >>> keys = jax.random.split(jax.random.key(1), 3)
      >>> iwae(model, keys, jnp.zeros((3, 4, 4, 1)), Objective("iwae", num_samples=5)).shape
      (3,)

    References:
      Burda, Grosse, Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016, eq. 8.
    """
    bound = jax.vmap(lambda key, xi: models.iwae_bound(model, key, xi, num_samples=objective.num_samples))
    return bound(keys, x)


OBJECTIVES = {
    "elbo": elbo,
    "iwae": iwae,
    "beta_tcvae": _dis.beta_tcvae,
    "annealed_vae": _dis.annealed_vae,
    "factor_vae": _dis.factor_vae,
}
# Objectives whose values depend on the whole batch (never split into microbatches or pmap shards).
BATCH = frozenset({"beta_tcvae", "annealed_vae", "factor_vae"})
# Objectives that train a second network: ``terms(model, keys, x, objective, step=, aux=) -> (values,
# codes)`` and the discriminator's step on the codes.
AUX = {"factor_vae": _dis.factor_vae_terms}
# gamma's default by objective.
GAMMA = {"annealed_vae": 1000.0, "factor_vae": 35.0}
# Folded into the run key for the discriminator's initialisation, into the step key for its permutation.
_AUX_INIT_STREAM = 0x617578
_AUX_STEP_STREAM = 0x706572
# The fields beyond name, beta and num_samples, stored as the run's ``objective_options``.
_OPTIONS = {
    "beta_tcvae": ("tc_weight", "alpha", "dataset_size"),
    "annealed_vae": ("gamma", "capacity_max", "capacity_steps"),
    "factor_vae": ("gamma", "disc_hidden", "disc_depth"),
}


def check(objective: Objective, config: models.Config | None = None, *, where: str) -> Objective:
    """Validates an objective (and that ``config``'s model can train with it).

    ``beta`` is checked only when concrete (a population's betas are traced in its step and
    checked by ``population.init``).

    Args:
      objective: the objective.
      config: the model, or None.
      where: the calling function, for messages.

    Returns:
      The objective with ``num_samples`` a Python int and ``gamma`` its default where None.

    Raises:
      InputError: an unknown name, ``num_samples`` < 1 (or > 1 where only 1 is taken), a beta
        other than 1 where only 1 is taken (IWAE, annealed), an autoencoder with a VAE's
        objective, or a negative weight.

    Examples:
      >>> check(Objective("iwae", num_samples=0), where="train.fit")
      Traceback (most recent call last):
      ...
      latentjax.errors.InputError: train.fit: num_samples must be >= 1, got 0
    """
    name = objective.name
    if name not in OBJECTIVES:
        raise InputError(f"{where}: objective must be one of {tuple(OBJECTIVES)}, got {name!r}")
    k = _checks.index(objective.num_samples, "num_samples", where=where, minimum=1)
    if name in BATCH and k != 1:
        raise InputError(f"{where}: num_samples must be 1 with objective={name!r}, got {k}")
    beta = objective.beta
    if not _checks.is_traced(beta):
        beta = float(beta)
        if not beta >= 0.0:
            raise InputError(f"{where}: beta must be >= 0, got {beta}")
        if name in ("iwae", "annealed_vae") and beta != 1.0:
            raise InputError(
                f"{where}: beta must be 1 with objective={name!r} (it has no KL weight), got {beta}"
            )
    if config is not None and name != "elbo" and config.kind != "vae":
        raise InputError(f"{where}: objective={name!r} needs a VAE (config.kind='vae'), got {config.kind!r}")
    gamma = GAMMA.get(name, 0.0) if objective.gamma is None else objective.gamma
    for field, value in (
        ("gamma", gamma),
        ("capacity_max", objective.capacity_max),
        ("tc_weight", objective.tc_weight),
        ("alpha", objective.alpha),
    ):
        if not float(value) >= 0.0:
            raise InputError(f"{where}: {field} must be >= 0, got {value}")
    ints = {
        f: _checks.index(getattr(objective, f), f, where=where, minimum=m)
        for f, m in (("capacity_steps", 1), ("dataset_size", 0), ("disc_hidden", 1), ("disc_depth", 1))
    }
    if name == "beta_tcvae" and ints["dataset_size"] < 1:
        raise InputError(f"{where}: objective='beta_tcvae' needs dataset_size >= 1 (N of MWS), got 0")
    floats = {f: float(getattr(objective, f)) for f in ("capacity_max", "tc_weight", "alpha")}
    return objective._replace(num_samples=k, beta=beta, gamma=float(gamma), **floats, **ints)


def resolve(objective: str | Objective, *, beta=1.0, num_samples: int = 1, where: str) -> Objective:
    """The trainers' ``objective`` (a name or an ``Objective``) with their ``beta`` and ``num_samples``.

    An ``Objective`` keeps its other fields; its ``beta`` or ``num_samples`` left at the default
    takes the keyword's, and the two given differently at once raise.

    Examples:
      >>> resolve("beta_tcvae", beta=2.0, where="train.fit").beta
      2.0
      >>> resolve(Objective("factor_vae", gamma=10.0), where="train.fit").gamma
      10.0
    """
    if isinstance(objective, str):
        return Objective(objective, beta, num_samples)
    if not isinstance(objective, Objective):
        raise InputError(f"{where}: objective must be a name or an objectives.Objective, got {objective!r}")
    out = objective
    for field, value, default in (("beta", beta, 1.0), ("num_samples", num_samples, 1)):
        mine = getattr(objective, field)
        if _checks.is_traced(value) or (value != default and mine == default):
            out = out._replace(**{field: value})
        elif value != default and mine != value:
            raise InputError(f"{where}: {field}={value} and objective.{field}={mine} disagree; give one")
    return out


def for_data(objective: Objective, num_images: int) -> Objective:
    """``objective`` with ``dataset_size`` the training set's size where it is 0 (what the trainers do).

    Examples:
      >>> for_data(Objective("beta_tcvae"), 500).dataset_size
      500
    """
    return objective if objective.dataset_size else objective._replace(dataset_size=int(num_images))


def prepare(objective, config: models.Config, *, beta=1.0, num_samples=1, num_images: int, where: str):
    """A trainer's objective: ``resolve``-d, ``for_data`` on ``num_images``, ``check``-ed against ``config``.

    Examples:
      >>> prepare("beta_tcvae", models.Config(), num_images=64, where="train.fit").dataset_size
      64
    """
    spec = for_data(resolve(objective, beta=beta, num_samples=num_samples, where=where), num_images)
    return check(spec, config, where=where)


def options(objective: Objective) -> dict:
    """The hyperparameters a run stores beside its objective's name (``objective_options``).

    Examples:
      >>> options(check(Objective("annealed_vae"), where="f"))
      {'gamma': 1000.0, 'capacity_max': 25.0, 'capacity_steps': 100000}
    """
    return {f: getattr(objective, f) for f in _OPTIONS.get(objective.name, ())}


def from_settings(settings: dict) -> Objective:
    """The objective of a run's stored settings (``config.json``'s ``train``).

    Examples:
      >>> from_settings({"objective": "factor_vae", "objective_options": {"gamma": 10.0}}).gamma
      10.0
    """
    return Objective(
        settings.get("objective", "elbo"),
        num_samples=settings.get("num_samples", 1),
        **settings.get("objective_options", {}),
    )


def init_aux(key: jax.Array, config: models.Config, objective: Objective):
    """What ``objective`` trains beside the model (``TrainState.aux``), from the run key ``key``.

    FactorVAE: its discriminator and Adam state, initialised with ``fold_in(key, ...)``; ``()``
    for the others.

    Examples:
      >>> init_aux(jax.random.key(0), models.Config(), Objective())
      ()
    """
    if objective.name not in AUX:
        return ()
    k = jax.random.fold_in(key, _AUX_INIT_STREAM)
    return _discriminator.init(k, config.latent_dim, hidden=objective.disc_hidden, depth=objective.disc_depth)


def update_aux(objective: Objective, aux, key: jax.Array, codes: jax.Array):
    """The step of what ``objective`` trains beside the model, on this step's ``codes`` ``(b, d)``.

    FactorVAE: one Adam step of the discriminator on the codes and their dimension-wise
    permutation drawn with ``fold_in(key, ...)`` (``key``: the step's key).

    Returns:
      ``(aux, metrics)``: the new state and ``{"disc_loss": ...}``.
    """
    aux, value = _discriminator.update(aux, jax.random.fold_in(key, _AUX_STEP_STREAM), codes)
    return aux, {"disc_loss": value}


def _values(params, graphdef, keys, images, objective, binarize, step, aux):
    model = nnx.merge(graphdef, params)
    x = models.to_float(images)
    if binarize == "dynamic":
        x = data.binarize_batch(jax.vmap(lambda k: jax.random.fold_in(k, _BINARIZE_STREAM))(keys), x)
    if objective.name in AUX:
        return AUX[objective.name](model, keys, x, objective, step=step, aux=aux)
    return OBJECTIVES[objective.name](model, keys, x, objective, step=step, aux=aux), None


def summed_loss(
    params,
    graphdef,
    keys: jax.Array,
    images: jax.Array,
    objective: Objective,
    *,
    binarize: str = "none",
    step=0,
    aux=(),
) -> jax.Array:
    """The negative objective of uint8 images ``(b, h, w, c)`` summed over them; key ``keys[i]`` each.

    With ``binarize="dynamic"`` example ``i`` is first drawn afresh (``data.binarize_batch``) with
    ``fold_in(keys[i], ...)``: a new binary image at every step that visits it, determined by the
    step's key, so a resumed run draws what the uninterrupted one drew. ``"none"`` and ``"fixed"``
    (the images already binarised) read the pixels as they are.

    Args:
      params: the model's ``nnx.State``.
      graphdef: the model's ``nnx.GraphDef``.
      keys: ``(b,)``.
      images: uint8 ``(b, h, w, c)``.
      objective: what to maximise.
      binarize: ``"none"``, ``"fixed"`` or ``"dynamic"``.
      step: the trainer's step (the annealed capacity).
      aux: ``TrainState.aux`` (FactorVAE's discriminator).

    Returns:
      A scalar (differentiable in ``params``).

    Examples:
      >>> from latentjax.learn import state
      >>> cfg = models.Config(image_shape=(4, 4, 1), latent_dim=2, hidden=8)
      >>> graphdef, st, _ = state.init(jax.random.key(0), cfg, learning_rate=1e-3)
      >>> keys = jax.random.split(jax.random.key(1), 2)
      >>> images = jnp.zeros((2, 4, 4, 1), jnp.uint8)
      >>> summed_loss(st.params, graphdef, keys, images, Objective("iwae", num_samples=3)).shape
      ()
    """
    values, _ = _values(params, graphdef, keys, images, objective, binarize, step, aux)
    return -jnp.sum(values)


def summed_loss_and_codes(params, graphdef, keys, images, objective, *, binarize="none", step=0, aux=()):
    """``summed_loss`` and the sampled codes ``(b, d)`` an ``AUX`` objective's second network trains on.

    Returns:
      ``(loss, codes)``, for ``jax.value_and_grad(..., has_aux=True)``.
    """
    values, codes = _values(params, graphdef, keys, images, objective, binarize, step, aux)
    return -jnp.sum(values), codes
