"""The disentangling objectives: beta-TCVAE (MWS), FactorVAE and the annealed-capacity beta-VAE.

Private: used through ``objectives.OBJECTIVES``. Each is ``fn(model, keys, x, objective, *, step,
aux) -> (b,)``, like the ELBO, but a value depends on the whole batch (``objectives.BATCH``): the
entries of the returned vector sum to the batch's objective. Example ``i`` draws its latent with
``keys[i]`` exactly as ``models.elbo`` does, so with the weights that reduce them to the ELBO they
draw what the ELBO draws.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from latentjax.learn import _discriminator, models
from latentjax.learn._gaussian import log_normal, reparameterize


def _posteriors(model, keys, x):
    """Each example's posterior, its latent drawn with its key, and log p(x|z): ``(q, z, log_px)``."""

    def one(key, xi):
        q = models.encode(model, xi)
        z = reparameterize(key, q)
        return q, z, models.log_likelihood(model, xi, z)

    return jax.vmap(one)(keys, x)


def mws_log_q(z: jax.Array, mean: jax.Array, log_var: jax.Array, dataset_size: int):
    """Minibatch-weighted sampling estimates of log q(z_i) and sum_d log q(z_i[d]) (Chen et al. 2018).

    ``log q(z_i) ~ logsumexp_j log q(z_i | x_j) - log(N M)`` over the batch's M posteriors, and the
    same per dimension for the marginals (the reference implementation's MWS branch of
    ``VAE.elbo``, with ``_logqz[i, j, d] = log q(z_i[d] | x_j)``).

    Args:
      z: ``(M, d)``, sample ``i`` drawn from posterior ``i``.
      mean: ``(M, d)`` posterior means.
      log_var: ``(M, d)`` posterior log-variances.
      dataset_size: N, the training set's size.

    Returns:
      ``(log_qz, log_prod_qzi)``, each ``(M,)``.

    Examples:
      >>> z = jnp.zeros((3, 2))
      >>> log_qz, log_prod = mws_log_q(z, z, z, dataset_size=3)
      >>> bool(jnp.allclose(log_qz, log_prod))
      False

    References:
      Chen, Li, Grosse, Duvenaud, "Isolating Sources of Disentanglement in VAEs", NeurIPS 2018, eq. S6
      (minibatch-weighted sampling); rtqichen/beta-tcvae ``vae_quant.py``.
    """
    m = z.shape[0]
    per_dim = -0.5 * (
        math.log(2 * math.pi) + log_var[None] + (z[:, None] - mean[None]) ** 2 * jnp.exp(-log_var[None])
    )  # (i, j, d)
    log_nm = math.log(m * dataset_size)
    log_qz = jax.nn.logsumexp(jnp.sum(per_dim, axis=2), axis=1) - log_nm
    log_prod_qzi = jnp.sum(jax.nn.logsumexp(per_dim, axis=1) - log_nm, axis=1)
    return log_qz, log_prod_qzi


def beta_tcvae(model, keys, x, objective, *, step=0, aux=()) -> jax.Array:
    """beta-TCVAE's decomposed ELBO per example, log q(z) by minibatch-weighted sampling.

    ``log p(x|z) - alpha (log q(z|x) - log q(z)) - tc_weight (log q(z) - sum_d log q(z_d))
    - beta (sum_d log q(z_d) - log p(z))`` at the example's one sampled z; with every weight 1 it
    is the one-sample ELBO ``log p(x|z) + log p(z) - log q(z|x)``.

    References:
      Chen et al. 2018, eq. 4 and eq. S6; the weights alpha (index-code MI), beta (total
      correlation, ``tc_weight``) and gamma (dimension-wise KL, ``beta`` here) of their Section 4.
    """
    q, z, log_px = _posteriors(model, keys, x)
    zeros = jnp.zeros_like(z)
    log_qz_x = log_normal(z, q.mean, q.log_var)
    log_pz = log_normal(z, zeros, zeros)
    log_qz, log_prod = mws_log_q(z, q.mean, q.log_var, objective.dataset_size)
    return (
        log_px
        - objective.alpha * (log_qz_x - log_qz)
        - objective.tc_weight * (log_qz - log_prod)
        - objective.beta * (log_prod - log_pz)
    )


def capacity(step, capacity_max: float, capacity_steps: int) -> jax.Array:
    """C(step) = min(C_max, C_max step / capacity_steps): the capacity rising linearly from 0.

    Examples:
      >>> [float(capacity(s, 25.0, 100)) for s in (0, 50, 200)]
      [0.0, 12.5, 25.0]
    """
    step = jnp.asarray(step, jnp.float32)
    return jnp.minimum(capacity_max, capacity_max * step / capacity_steps)


def annealed_vae(model, keys, x, objective, *, step=0, aux=()) -> jax.Array:
    """Burgess et al.'s objective: ``log p(x_i|z_i) - gamma |mean_j KL_j - C(step)|`` per example.

    The batch's mean KL (disentanglement_lib's ``annealed_vae``): the vector sums to
    ``b (mean log p(x|z) - gamma |KL - C|)``.

    References:
      Burgess et al., "Understanding disentangling in beta-VAE", 2018, eq. 8.
    """
    q, _, log_px = _posteriors(model, keys, x)
    kl = jax.vmap(models.kl_divergence)(q)
    c = capacity(step, objective.capacity_max, objective.capacity_steps)
    return log_px - objective.gamma * jnp.abs(jnp.mean(kl) - c)


def factor_vae_terms(model, keys, x, objective, *, step=0, aux=()):
    """FactorVAE's ELBO minus gamma times the discriminator's TC estimate, and the sampled codes.

    Per example ``log p(x|z) - beta KL(q(z|x) || p(z)) - gamma (D_0(z) - D_1(z))``, the two logits of
    the discriminator ``aux`` (held fixed: only the model's gradient is taken), and ``z`` ``(b, d)``
    for the discriminator's own step.

    References:
      Kim & Mnih, "Disentangling by Factorising", ICML 2018, eq. 2 and Algorithm 2.
    """
    q, z, log_px = _posteriors(model, keys, x)
    kl = jax.vmap(models.kl_divergence)(q)
    logit = _discriminator.logits(aux.params, z)
    return log_px - objective.beta * kl - objective.gamma * (logit[:, 0] - logit[:, 1]), z


def factor_vae(model, keys, x, objective, *, step=0, aux=()) -> jax.Array:
    """The values of ``factor_vae_terms``."""
    return factor_vae_terms(model, keys, x, objective, step=step, aux=aux)[0]
