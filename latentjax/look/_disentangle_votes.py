"""The two batch-voting disentanglement scores: beta-VAE (a linear classifier) and FactorVAE (majority votes).

Public through ``look.disentanglement``; each takes batches of codes whose factors share one factor.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.look import _disentangle_linear as _linear


class Accuracy(NamedTuple):
    """A score that is a classifier's accuracy, on its training and its evaluation points."""

    train_accuracy: float
    eval_accuracy: float


class FactorVAEScore(NamedTuple):
    """The FactorVAE score (majority-vote accuracy) and how many codes passed the variance threshold."""

    train_accuracy: float
    eval_accuracy: float
    num_active_dims: int


def beta_vae(
    codes_a: ArrayLike,
    codes_b: ArrayLike,
    fixed: ArrayLike,
    codes_a_test: ArrayLike,
    codes_b_test: ArrayLike,
    fixed_test: ArrayLike,
) -> Accuracy:
    """The beta-VAE score (Higgins et al. 2017) from batches of paired codes.

    Point ``i`` pairs two batches of codes whose factors agree on factor ``fixed[i]`` only; its
    feature is the mean over the batch of ``|code_a - code_b|``, and a multinomial logistic
    regression (``C = 1``, sklearn's default, as disentanglement_lib) predicts ``fixed`` from it.

    Args:
        codes_a: ``(num_points, batch_size, d)`` codes of the first batches.
        codes_b: the same shape: codes of the batches paired with them.
        fixed: ``(num_points,)`` the index of the factor each pair shares.
        codes_a_test: as ``codes_a``, for evaluation.
        codes_b_test: as ``codes_b``, for evaluation.
        fixed_test: as ``fixed``, for evaluation.

    Returns:
        An `Accuracy` (the score is ``eval_accuracy``).

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> fa, fb = rng.integers(0, 5, (2, 60, 8, 3)).astype(float)
        >>> k = rng.integers(0, 3, 60)
        >>> fb[np.arange(60), :, k] = fa[np.arange(60), :, k]
        >>> beta_vae(fa, fb, k, fa, fb, k).eval_accuracy
        1.0

    References:
        I. Higgins et al., beta-VAE: learning basic visual concepts with a constrained variational
        framework, ICLR 2017, sec. 3; disentanglement_lib ``beta_vae.py``.
    """
    where = "look.disentanglement.beta_vae"
    feats, labels = [], []
    for suffix, a, b, f in (("", codes_a, codes_b, fixed), ("_test", codes_a_test, codes_b_test, fixed_test)):
        a = _checks.array(a, f"codes_a{suffix}", where=where, ndim=3)
        b = _checks.array(b, f"codes_b{suffix}", where=where, ndim=3)
        _checks.same_shape(a, b, (f"codes_a{suffix}", f"codes_b{suffix}"), where=where)
        feats.append(jnp.asarray(np.abs(np.asarray(a, np.float64) - np.asarray(b)).mean(axis=1), jnp.float32))
        labels.append(_checks.labels(f, f"fixed{suffix}", where=where, length=np.shape(a)[0]))
    num_classes = int(max(labels[0].max(), labels[1].max())) + 1
    w, b = _linear.logistic_regression(
        feats[0], jnp.asarray(labels[0]), jnp.asarray(_linear.class_mask(num_classes))
    )
    acc = [
        float(np.mean(np.argmax(np.asarray(_linear.softmax_predict(w, b, x)), axis=1) == y))
        for x, y in zip(feats, labels)
    ]
    return Accuracy(*acc)


def factor_vae(
    codes: ArrayLike,
    fixed: ArrayLike,
    codes_test: ArrayLike,
    fixed_test: ArrayLike,
    *,
    global_variances: ArrayLike,
    num_factors: int | None = None,
    threshold: float = 0.05,
) -> FactorVAEScore:
    """The FactorVAE score (Kim & Mnih 2018) from batches of codes that share one factor.

    Codes whose global standard deviation is below ``threshold`` are pruned. For each batch, the
    code with the least variance (``ddof=1``) relative to its global variance votes for the
    batch's fixed factor; each code is assigned its majority factor, and the score is the share
    of votes that agree with their code's assignment.

    Args:
        codes: ``(num_points, batch_size, d)``: batch ``i`` shares the value of factor ``fixed[i]``.
        fixed: ``(num_points,)`` factor indices.
        codes_test: as ``codes``, for evaluation (scored with the training assignment).
        fixed_test: as ``fixed``, for evaluation.
        global_variances: ``(d,)`` each code's variance over the data (``ddof=1``).
        num_factors: the number of factors (default: the largest index in ``fixed`` + 1).
        threshold: pruning threshold on the global standard deviation (disentanglement_lib: 0.05).

    Returns:
        A `FactorVAEScore` (0 when no code is active).

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> f = rng.integers(0, 5, (40, 16, 2)).astype(float)
        >>> k = rng.integers(0, 2, 40)
        >>> f[np.arange(40), :, k] = f[np.arange(40), :1, k]
        >>> factor_vae(f, k, f, k, global_variances=np.full(2, 2.0)).eval_accuracy
        1.0

    References:
        H. Kim and A. Mnih, Disentangling by factorising, ICML 2018, sec. 4; disentanglement_lib
        ``factor_vae.py``.
    """
    where = "look.disentanglement.factor_vae"
    gv = np.asarray(_checks.array(global_variances, "global_variances", where=where, ndim=1), np.float64)
    active = np.sqrt(gv) >= threshold
    votes = []
    fixed = _checks.labels(fixed, "fixed", where=where, length=np.shape(codes)[0])
    fixed_test = _checks.labels(fixed_test, "fixed_test", where=where, length=np.shape(codes_test)[0])
    k = int(max(fixed.max(), fixed_test.max())) + 1 if num_factors is None else int(num_factors)
    for suffix, c, f in (("", codes, fixed), ("_test", codes_test, fixed_test)):
        c = np.asarray(_checks.array(c, f"codes{suffix}", where=where, ndim=3), np.float64)
        if c.shape[2] != gv.shape[0]:
            raise InputError(
                f"{where}: codes{suffix} has {c.shape[2]} codes but global_variances {gv.shape[0]}"
            )
        votes.append(
            np.asarray(_votes(jnp.asarray(c), jnp.asarray(f), jnp.asarray(gv), active, num_factors=k))
        )
    if not active.any():
        return FactorVAEScore(0.0, 0.0, 0)
    assign = np.argmax(votes[0], axis=0)
    acc = [float(v[assign, np.arange(v.shape[1])].sum() / v.sum()) for v in votes]
    return FactorVAEScore(acc[0], acc[1], int(active.sum()))


@functools.partial(jax.jit, static_argnames="num_factors")
def _votes(codes: jax.Array, fixed: jax.Array, gv: jax.Array, active, *, num_factors: int) -> jax.Array:
    """Votes ``(num_factors, d)``: the least-varying active code of each batch votes for its factor."""
    ratio = jnp.where(
        active[None, :], codes.var(axis=1, ddof=1) / jnp.where(active, gv, 1.0)[None, :], jnp.inf
    )
    return jnp.zeros((num_factors, codes.shape[2]), jnp.int32).at[fixed, jnp.argmin(ratio, axis=1)].add(1)
