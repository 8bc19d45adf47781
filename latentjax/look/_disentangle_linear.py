"""The linear classifiers of the disentanglement metrics, in JAX, and a ranking ROC-AUC.

``logistic_regression`` minimises sklearn ``LogisticRegression``'s objective (multinomial, L2 on
the weights, intercept free, ``C``) with L-BFGS run to convergence; ``svc_1d`` solves
``LinearSVC(C=0.01, class_weight="balanced")``'s primal (squared hinge, one-vs-rest, intercept
penalised as liblinear's ``intercept_scaling=1`` does) for one feature by Newton's method.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax


def class_mask(num_classes: int) -> np.ndarray:
    """``num_classes`` real classes padded to a multiple of 8 (2 stays 2): a bool mask of the real ones.

    Padding lets factors of similar sizes share one compilation; padded classes are never predicted.
    """
    size = num_classes if num_classes <= 2 else -(-num_classes // 8) * 8
    return np.arange(size) < num_classes


@functools.partial(jax.jit, static_argnames="max_steps")
def logistic_regression(
    x: jax.Array, y: jax.Array, present: jax.Array, *, c: float = 1.0, max_steps: int = 500
) -> tuple[jax.Array, jax.Array]:
    """Multinomial logistic regression: ``(w (d, K), b (K,))`` in ``x``'s units, ``K = len(present)``.

    Minimises ``sum_i CE_i + ||w||^2 / (2 c)`` (sklearn's ``LogisticRegression(C=c)``, lbfgs) over
    the classes marked in ``present`` (`class_mask`; the others get a -1e30 logit). The problem is
    solved on standardised features with the penalty carried over exactly, so the optimum is
    sklearn's while the conditioning is not ``x``'s.
    """
    n, num_classes = x.shape[0], present.shape[0]
    mean, sd = x.mean(axis=0), x.std(axis=0)
    sd = jnp.where(sd > 0, sd, 1.0)
    xs = (x - mean[None, :]) / sd[None, :]
    onehot = jax.nn.one_hot(y, num_classes, dtype=x.dtype)

    def loss(p):
        logits = jnp.where(present[None, :], xs @ p["w"] + p["b"][None, :], -1e30)
        ce = -(onehot * jax.nn.log_softmax(logits)).sum(axis=1).mean()
        return ce + jnp.sum(jnp.square(p["w"] / sd[:, None])) / (2 * c * n)

    params = {"w": jnp.zeros((x.shape[1], num_classes), x.dtype), "b": jnp.zeros((num_classes,), x.dtype)}
    params = _lbfgs(loss, params, max_steps=max_steps)
    w = params["w"] / sd[:, None]
    return w, jnp.where(present, params["b"] - mean @ w, -1e30)


def _lbfgs(loss, params, *, max_steps: int, tol: float = 1e-6):
    """Minimises ``loss`` from ``params`` with optax's L-BFGS (zoom line search) until ``|grad| < tol``."""
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(carry):
        p, state = carry
        value, grad = value_and_grad(p, state=state)
        updates, state = opt.update(grad, state, p, value=value, grad=grad, value_fn=loss)
        return optax.apply_updates(p, updates), state

    def keep_going(carry):
        _, state = carry
        count = optax.tree_utils.tree_get(state, "count")
        grad = optax.tree_utils.tree_get(state, "grad")
        return (count == 0) | ((count < max_steps) & (optax.tree_utils.tree_norm(grad) >= tol))

    p, _ = jax.lax.while_loop(keep_going, step, (params, opt.init(params)))
    return p


def softmax_predict(w: jax.Array, b: jax.Array, x: jax.Array) -> jax.Array:
    """Class probabilities ``(n, num_classes)`` of a fitted `logistic_regression`."""
    return jax.nn.softmax(x @ w + b[None, :])


@functools.partial(jax.jit, static_argnames="num_steps")
def svc_1d(
    x: jax.Array, y: jax.Array, present: jax.Array, *, c: float = 0.01, num_steps: int = 30
) -> tuple[jax.Array, jax.Array]:
    """``LinearSVC(C=c, class_weight="balanced")`` on one feature: ``(w, b)``, each ``(K,)``.

    ``present`` (`class_mask`) marks the real classes among the ``K``; padded ones get ``b = -1e30``.

    One-vs-rest as liblinear: for class ``k`` minimise ``(w^2 + b^2) / 2 + sum_i C_i max(0, 1 -
    t_i (w x_i + b))^2`` with ``t_i = +1`` on class ``k`` and ``-1`` elsewhere, ``C_i = c n / (K
    n_k)`` on class ``k`` (the balanced weight) and ``c`` on the rest (liblinear weights only the
    positive side of each one-vs-rest problem). With two classes liblinear fits one problem (class 1
    positive, both sides weighted); it is returned as ``w = (-w1, w1)`` so `argmax` predicts alike.
    Newton's method on this piecewise quadratic reaches the optimum in a few steps.
    """
    n, num_classes = x.shape[0], present.shape[0]
    counts = jnp.zeros((num_classes,), x.dtype).at[y].add(1.0)
    balanced = n / (present.sum() * jnp.maximum(counts, 1.0))
    feats = jnp.stack([x, jnp.ones_like(x)], axis=1)  # (n, 2): liblinear's bias feature is 1

    def solve(t, ci):
        def newton(_, p):
            margin = t * (feats @ p)
            active = (margin < 1).astype(x.dtype) * ci
            grad = p - 2 * feats.T @ (active * t * (1 - margin))
            hess = jnp.eye(2, dtype=x.dtype) + 2 * (feats * active[:, None]).T @ feats
            return p - jnp.linalg.solve(hess, grad)

        return jax.lax.fori_loop(0, num_steps, newton, jnp.zeros((2,), x.dtype))

    if num_classes == 2:
        t = jnp.where(y == 1, 1.0, -1.0).astype(x.dtype)
        p = solve(t, c * balanced[y])
        return jnp.stack([-p[0], p[0]]), jnp.stack([-p[1], p[1]])
    ks = jnp.arange(num_classes)
    t = jnp.where(y[None, :] == ks[:, None], 1.0, -1.0).astype(x.dtype)  # (K, n)
    ci = jnp.where(t > 0, c * balanced[:, None], c)
    p = jax.vmap(solve)(t, ci)  # (K, 2)
    return p[:, 0], jnp.where(present, p[:, 1], -1e30)


def roc_auc(scores: jax.Array, positive: jax.Array) -> jax.Array:
    """Area under the ROC curve of ``scores`` ``(n,)`` for boolean ``positive`` ``(n,)``, ties halved.

    The Mann-Whitney statistic with average ranks: sklearn's ``roc_auc_score`` for one label.
    """
    order = jnp.sort(scores)
    below = jnp.searchsorted(order, scores, side="left")
    upto = jnp.searchsorted(order, scores, side="right")
    rank = (below + upto + 1) / 2.0  # 1-based average rank
    pos = positive.astype(scores.dtype)
    n_pos = pos.sum()
    n_neg = scores.shape[0] - n_pos
    return ((rank * pos).sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@jax.jit
def mean_roc_auc(w: jax.Array, b: jax.Array, x: jax.Array, y: jax.Array, use: jax.Array) -> jax.Array:
    """Mean over the classes in ``use`` of the one-vs-rest `roc_auc` of the model's probabilities."""
    prob = softmax_predict(w, b, x)
    positive = y[:, None] == jnp.arange(prob.shape[1])[None, :]
    aucs = jax.vmap(roc_auc, in_axes=(1, 1))(prob, positive)
    return jnp.where(use, aucs, 0.0).sum() / use.sum()
