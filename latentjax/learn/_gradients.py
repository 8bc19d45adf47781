"""How ``train.make_step`` computes a gradient other than in one pass.

In microbatches, on a ``pmap`` shard, or with an objective's second network (``objectives.AUX``).

Private: used by ``train.make_step``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from latentjax.errors import InputError
from latentjax.learn import objectives


def accumulated_value_and_grad(params, key, images, *, graphdef, spec, binarize, step, microbatches: int):
    """``value_and_grad`` of the mean loss over ``microbatches`` equal slices of the batch, summed.

    Every example keeps the key ``train.loss_fn`` gives it, so the result equals the one-pass
    gradient up to the order of the float sums (per-example objectives only: ``make_step`` refuses
    batch objectives here). The slices are unrolled in the compiled step: XLA:CPU then works on
    activations a fraction of the size (they stay in cache) and can run two slices' ops side by
    side; the conv VAE step at batch 256 on 2 cores is ~10 % faster with 2.
    """
    b = images.shape[0]
    if b % microbatches:
        raise InputError(
            f"train.make_step: the batch of {b} does not split into {microbatches} equal microbatches"
        )
    keys = jax.random.split(key, b)
    part = b // microbatches
    loss, grads = 0.0, None
    for i in range(microbatches):
        sl = slice(i * part, (i + 1) * part)
        value, g = jax.value_and_grad(objectives.summed_loss)(
            params, graphdef, keys[sl], images[sl], spec, binarize=binarize, step=step
        )
        loss = loss + value
        grads = g if grads is None else jax.tree.map(jnp.add, grads, g)
    return loss / b, jax.tree.map(lambda g: g / b, grads)


def shard_loss(params, key, images, *, graphdef, spec, binarize, step, axis_name: str):
    """The mean loss of this device's shard of a global batch, each example keeping its global key."""
    local = images.shape[0]
    keys = jax.random.split(key, local * jax.lax.axis_size(axis_name))
    mine = jax.lax.dynamic_slice_in_dim(keys, jax.lax.axis_index(axis_name) * local, local)
    return objectives.summed_loss(params, graphdef, mine, images, spec, binarize=binarize, step=step) / local


def aux_value_and_grad(params, key, images, *, graphdef, spec, binarize, step, aux):
    """The model's mean loss and gradient for an ``objectives.AUX`` objective, then its second network's step.

    The second network (FactorVAE's discriminator) trains on the same batch's codes.

    Both updates start from the step's state (the discriminator of the model's loss is the one
    before its own step), as disentanglement_lib's FactorVAE does in one graph.

    Returns:
      ``(loss, grads, aux, metrics)``.
    """
    b = images.shape[0]
    keys = jax.random.split(key, b)
    (loss, codes), grads = jax.value_and_grad(objectives.summed_loss_and_codes, has_aux=True)(
        params, graphdef, keys, images, spec, binarize=binarize, step=step, aux=aux
    )
    aux, metrics = objectives.update_aux(spec, aux, key, codes)
    return loss / b, jax.tree.map(lambda g: g / b, grads), aux, metrics
