"""The training objectives by name: the ELBO (with beta) and the importance-weighted bound (IWAE).

Every trainer (``train``, ``parallel``, ``population``) minimises ``summed_loss``, the negative of
``OBJECTIVES[objective.name]`` summed over a batch. An objective is one function
``fn(model, keys, x, objective) -> (b,)``: the per-example values (higher is better) of float images
``x`` ``(b, h, w, c)``, example ``i`` drawing with ``keys[i]``; ``Objective`` carries its name and
hyperparameters. A new objective is one such function, an entry in ``OBJECTIVES`` and, where it
needs them, new ``Objective`` fields with defaults.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from latentjax import _checks, data
from latentjax.errors import InputError
from latentjax.learn import models

# Folded into an example's key for its dynamic binarisation (the objective draws with the key itself).
_BINARIZE_STREAM = 0x62696E


class Objective(NamedTuple):
    """A training objective and its hyperparameters (``check`` validates one).

    Attributes:
      name: a key of ``OBJECTIVES``: ``"elbo"`` or ``"iwae"``.
      beta: the ELBO's KL weight (Higgins et al. 2017); IWAE takes 1 only.
      num_samples: ``k``, latents drawn per example: the ELBO averages ``k`` one-sample ELBOs (the
        "VAE" rows of Burda et al.'s Table 1), IWAE is the bound ``L_k``.

    Examples:
      >>> Objective("iwae", num_samples=5).beta
      1.0
    """

    name: str = "elbo"
    beta: float = 1.0
    num_samples: int = 1


def elbo(model: models.AutoEncoder, keys: jax.Array, x: jax.Array, objective: Objective) -> jax.Array:
    """``models.elbo`` of each example; with ``num_samples`` k > 1, the mean of k one-sample ELBOs.

    Args:
      model: the model.
      keys: ``(b,)``; with k > 1 example ``i``'s samples draw with ``jax.random.split(keys[i], k)``.
      x: float ``(b, h, w, c)`` in [0, 1].
      objective: ``beta`` and ``num_samples``.

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


def iwae(model: models.AutoEncoder, keys: jax.Array, x: jax.Array, objective: Objective) -> jax.Array:
    """``models.iwae_bound`` of each example with ``k = num_samples`` (Burda et al. 2016, eq. 8).

    Args:
      model: a VAE.
      keys: ``(b,)``, example ``i``'s k latents drawn with ``keys[i]``.
      x: float ``(b, h, w, c)`` in [0, 1].
      objective: ``num_samples``.

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


OBJECTIVES = {"elbo": elbo, "iwae": iwae}


def check(objective: Objective, config: models.Config | None = None, *, where: str) -> Objective:
    """Validates an objective (and that ``config``'s model can train with it).

    ``beta`` is checked only when concrete (a population's betas are traced in its step and
    checked by ``population.init``).

    Args:
      objective: the objective.
      config: the model, or None.
      where: the calling function, for messages.

    Returns:
      The objective with ``num_samples`` a Python int.

    Raises:
      InputError: an unknown name, ``num_samples`` < 1, IWAE with a beta other than 1 or with an
        autoencoder, or a negative beta.

    Examples:
      >>> check(Objective("iwae", num_samples=0), where="train.fit")
      Traceback (most recent call last):
      ...
      latentjax.errors.InputError: train.fit: num_samples must be >= 1, got 0
    """
    if objective.name not in OBJECTIVES:
        raise InputError(f"{where}: objective must be one of {tuple(OBJECTIVES)}, got {objective.name!r}")
    k = _checks.index(objective.num_samples, "num_samples", where=where, minimum=1)
    beta = objective.beta
    if not _checks.is_traced(beta):
        beta = float(beta)
        if not beta >= 0.0:
            raise InputError(f"{where}: beta must be >= 0, got {beta}")
        if objective.name == "iwae" and beta != 1.0:
            raise InputError(
                f"{where}: beta must be 1 with objective='iwae' (the bound has no KL weight), got {beta}"
            )
    if config is not None and objective.name == "iwae" and config.kind != "vae":
        raise InputError(f"{where}: objective='iwae' needs a VAE (config.kind='vae'), got {config.kind!r}")
    return objective._replace(num_samples=k, beta=beta)


def summed_loss(
    params, graphdef, keys: jax.Array, images: jax.Array, objective: Objective, *, binarize: str = "none"
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
    model = nnx.merge(graphdef, params)
    x = models.to_float(images)
    if binarize == "dynamic":
        x = data.binarize_batch(jax.vmap(lambda k: jax.random.fold_in(k, _BINARIZE_STREAM))(keys), x)
    return -jnp.sum(OBJECTIVES[objective.name](model, keys, x, objective))
