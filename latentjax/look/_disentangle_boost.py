"""Gradient-boosted trees in JAX: DCI's importance matrix without scikit-learn.

disentanglement_lib fits ``sklearn.ensemble.GradientBoostingClassifier()`` per factor (100
stages, learning rate 0.1, depth-3 trees, multinomial deviance) and takes its impurity-based
``feature_importances_``. This is the same boosting: each stage grows, for every class, a depth-3
regression tree on the residuals level by level (each node takes the split of one code that most
reduces the squared error, sklearn's ``friedman_mse`` choice), sets the leaves by sklearn's Newton
step, and credits each split's code with its squared-error reduction. The difference: splits are
searched between ``max_bins`` quantile bins per code (exact for codes with that few distinct
values; sklearn tries every midpoint), so the trees, and the numbers, differ a little.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def quantile_bins(train: np.ndarray, test: np.ndarray, *, max_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin each column at (up to ``max_bins - 1``) cuts between distinct training values: ``(n, d)`` int32.

    A cut lies midway between consecutive distinct training values (as sklearn's thresholds); with
    more distinct values than ``max_bins``, between the values at equally spaced quantiles.
    """
    d = train.shape[1]
    cuts = []
    for j in range(d):
        u = np.unique(train[:, j])
        if len(u) > max_bins:
            u = np.unique(np.quantile(train[:, j], np.linspace(0, 1, max_bins), method="nearest"))
        cuts.append((u[1:] + u[:-1]) / 2)

    def apply(x):
        return np.stack([np.searchsorted(cuts[j], x[:, j], side="left") for j in range(d)], 1).astype(
            np.int32
        )

    return apply(train), apply(test)


@functools.partial(jax.jit, static_argnames=("num_bins", "num_classes", "num_stages", "max_depth"))
def boost(
    bins: jax.Array,
    y: jax.Array,
    bins_test: jax.Array,
    present: jax.Array,
    *,
    num_bins: int,
    num_classes: int,
    num_stages: int = 100,
    max_depth: int = 3,
    learning_rate: float = 0.1,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Boosted trees on binned codes: ``(importance (d,), train predictions (n,), test predictions (m,))``.

    ``num_classes`` may exceed the classes present (a padded size, so that one compilation serves
    several factors); ``present`` ``(num_classes,)`` marks the real ones, which alone get trees and
    predictions. ``importance`` sums each code's squared-error reduction (per sample) over all
    splits, normalised to sum 1 (sklearn's ``feature_importances_``).
    """
    n, d = bins.shape
    k, nb = num_classes, num_bins
    real_k = present.sum()
    onehot = jax.nn.one_hot(y, k, dtype=jnp.float32)
    init = jnp.where(present, jnp.log(jnp.maximum(onehot.mean(axis=0), 1e-30)), -1e30)  # sklearn's "prior"
    cls = jnp.arange(k)

    def tree(r, h):
        """One depth-``max_depth`` tree per class: splits, leaf values, leaf of each sample, importance."""
        node = jnp.zeros((n, k), jnp.int32)
        feats, cuts, imp = [], [], jnp.zeros((d,), jnp.float32)
        for level in range(max_depth):
            m = 2**level
            seg = ((node[:, :, None] * d + jnp.arange(d)[None, None, :]) * nb + bins[:, None, :]).transpose(
                1, 0, 2
            )

            # Per class, node, code and bin: sums of residuals and counts, in one scatter-add.
            v = jnp.stack([r, jnp.ones_like(r)], axis=2)  # (n, k, 2)
            rep = jnp.broadcast_to(v.transpose(1, 0, 2)[:, :, None, :], (k, n, d, 2)).reshape(k, n * d, 2)
            hist = jax.vmap(lambda a, sg, m=m: jax.ops.segment_sum(a, sg, num_segments=m * d * nb))(
                rep, seg.reshape(k, -1)
            ).reshape(k, m, d, nb, 2)
            s_all, c_all = hist[..., 0], hist[..., 1]
            s_left, n_left = jnp.cumsum(s_all, axis=3)[..., :-1], jnp.cumsum(c_all, axis=3)[..., :-1]
            tot, n_tot = (
                s_all[:, :, :1, :].sum(axis=3, keepdims=True),
                c_all[:, :, :1, :].sum(axis=3, keepdims=True),
            )
            n_right = n_tot - n_left
            ok = (n_left > 0) & (n_right > 0)
            gain = s_left**2 / jnp.maximum(n_left, 1) + (tot - s_left) ** 2 / jnp.maximum(n_right, 1)
            gain = jnp.where(ok, gain - tot**2 / jnp.maximum(n_tot, 1), -jnp.inf).reshape(k, m, -1)
            best = jnp.argmax(gain, axis=2)  # (k, m)
            g = jnp.take_along_axis(gain, best[..., None], axis=2)[..., 0]
            valid = jnp.isfinite(g) & present[:, None]
            f, c = best // (nb - 1), jnp.where(valid, best % (nb - 1), nb)  # an invalid node sends all left
            imp = imp.at[f.reshape(-1)].add(jnp.where(valid, g, 0.0).reshape(-1) / n)
            node = 2 * node + _route(bins, f, c, node).astype(jnp.int32)
            feats.append(f)
            cuts.append(c)
        leaves = 2**max_depth
        sums = jax.vmap(lambda a, s: jax.ops.segment_sum(a, s, num_segments=leaves))(
            r.T, node.T
        )  # (k, leaves)
        hs = jax.vmap(lambda a, s: jax.ops.segment_sum(a, s, num_segments=leaves))(h.T, node.T)
        value = jnp.where(
            jnp.abs(hs) < 1e-150, 0.0, (real_k - 1) / real_k * sums / jnp.where(hs == 0, 1.0, hs)
        )
        value = jnp.where(present[:, None], value, 0.0)
        return feats, cuts, value, node, imp

    def stage(raw, _):
        p = jax.nn.softmax(raw)
        feats, cuts, value, node, imp = tree(onehot - p, p * (1 - p))
        raw = raw + learning_rate * value[cls[None, :], node]
        return raw, (feats, cuts, value, imp)

    raw0 = jnp.broadcast_to(init[None, :], (n, k))
    raw, (feats, cuts, values, imps) = jax.lax.scan(stage, raw0, None, length=num_stages)
    importance = imps.sum(axis=0)
    importance = importance / jnp.where(importance.sum() > 0, importance.sum(), 1.0)

    def predict(raw_t, s):
        f_s, c_s, value = s
        node = jnp.zeros((bins_test.shape[0], k), jnp.int32)
        for level in range(max_depth):
            node = 2 * node + _route(bins_test, f_s[level], c_s[level], node).astype(jnp.int32)
        return raw_t + learning_rate * value[cls[None, :], node], None

    raw_t0 = jnp.broadcast_to(init[None, :], (bins_test.shape[0], k))
    raw_t, _ = jax.lax.scan(predict, raw_t0, (feats, cuts, values))
    return importance, jnp.argmax(raw, axis=1), jnp.argmax(raw_t, axis=1)


def _route(bins: jax.Array, f: jax.Array, c: jax.Array, node: jax.Array) -> jax.Array:
    """Whether each sample goes right at its node: ``bins[i, f[k, node]] > c[k, node]``, ``(n, k)``."""
    k = f.shape[0]
    fi = f[jnp.arange(k)[None, :], node]  # (n, k)
    ci = c[jnp.arange(k)[None, :], node]
    return jnp.take_along_axis(bins, fi, axis=1) > ci
