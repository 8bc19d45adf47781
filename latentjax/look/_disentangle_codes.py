"""The disentanglement metrics on given codes and factors: MIG, SAP, DCI, modularity and explicitness.

Public through ``look.disentanglement`` (which also holds the samplers and the module's notes on
how these differ from disentanglement_lib).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.look import _disentangle_boost as _boost
from latentjax.look import _disentangle_info as _info
from latentjax.look import _disentangle_linear as _linear


class MIG(NamedTuple):
    """Mutual information gap: ``score``, ``mutual_info`` ``(d, k)`` (nats), factor ``entropy`` ``(k,)``."""

    score: float
    mutual_info: np.ndarray
    entropy: np.ndarray


class SAP(NamedTuple):
    """Separated attribute predictability: ``score`` and the ``(d, k)`` ``score_matrix``."""

    score: float
    score_matrix: np.ndarray


class DCI(NamedTuple):
    """DCI scores and the ``(d, k)`` ``importance`` matrix (informativeness: classifier accuracy)."""

    disentanglement: float
    completeness: float
    informativeness_train: float
    informativeness_test: float
    importance: np.ndarray


class ModularityExplicitness(NamedTuple):
    """Modularity (from the ``(d, k)`` ``mutual_info``) and explicitness (mean one-vs-rest ROC-AUC)."""

    modularity: float
    explicitness_train: float
    explicitness_test: float
    mutual_info: np.ndarray


def _codes_factors(codes, factors, where, suffix=""):
    codes = np.asarray(_checks.array(codes, f"codes{suffix}", where=where, ndim=2), np.float64)
    factors = np.asarray(_checks.array(factors, f"factors{suffix}", where=where, ndim=2))
    if not np.issubdtype(factors.dtype, np.integer):
        raise InputError(
            f"{where}: factors{suffix} must be integer (discrete) factor values, got {factors.dtype}"
        )
    if codes.shape[0] != factors.shape[0]:
        raise InputError(
            f"{where}: codes{suffix} has {codes.shape[0]} rows but factors{suffix} has {factors.shape[0]}"
        )
    return codes, factors


def _train_test(codes, factors, codes_test, factors_test, where):
    codes, factors = _codes_factors(codes, factors, where)
    codes_test, factors_test = _codes_factors(codes_test, factors_test, where, "_test")
    if codes.shape[1] != codes_test.shape[1] or factors.shape[1] != factors_test.shape[1]:
        raise InputError(f"{where}: codes_test and factors_test must have the columns of codes and factors")
    both, num_values = _info.relabel(np.concatenate([factors, factors_test]))
    return codes, codes_test, both[: len(factors)], both[len(factors) :], num_values


def mig(codes: ArrayLike, factors: ArrayLike, *, num_bins: int = 20) -> MIG:
    """Mutual information gap (Chen et al. 2018) with disentanglement_lib's histogram estimate.

    Each code is cut into ``num_bins`` equal-width bins between its min and max; ``I(code_j;
    factor_k)`` is the plug-in mutual information; per factor, the gap between the two most
    informative codes divided by the factor's entropy, averaged over factors.

    Args:
        codes: ``(n, d)`` codes, ``d >= 2``.
        factors: ``(n, k)`` integer factor values (any integers; each column's distinct values).
        num_bins: histogram bins per code.

    Returns:
        A `MIG`: ``score`` in [0, 1], ``mutual_info`` ``(d, k)``, ``entropy`` ``(k,)``.

    Examples:
        >>> f = np.stack(np.meshgrid(np.arange(10), np.arange(10)), -1).reshape(-1, 2)
        >>> round(mig(f.astype(float), f).score, 3), round(mig(np.zeros((100, 2)), f).score, 3)
        (1.0, 0.0)

    References:
        R. T. Q. Chen et al., Isolating sources of disentanglement in VAEs, NeurIPS 2018, eq. 7;
        disentanglement_lib ``evaluation/metrics/mig.py``.
    """
    where = "look.disentanglement.mig"
    codes, factors = _codes_factors(codes, factors, where)
    _checks.index(num_bins, "num_bins", where=where, minimum=2)
    if codes.shape[1] < 2:
        raise InputError(f"{where}: codes needs at least 2 columns for a gap, got {codes.shape[1]}")
    labels, num_values = _info.relabel(factors)
    binned = _info.discretize(jnp.asarray(codes, jnp.float32), num_bins=num_bins)
    info = _info.mutual_info(binned, jnp.asarray(labels), num_bins=num_bins, num_values=num_values)
    h = _info.entropy(jnp.asarray(labels), num_values=num_values)
    return MIG(float(_info.mig_from_info(info, h)), np.asarray(info), np.asarray(h))


def modularity_explicitness(
    codes: ArrayLike,
    factors: ArrayLike,
    codes_test: ArrayLike,
    factors_test: ArrayLike,
    *,
    num_bins: int = 20,
) -> ModularityExplicitness:
    """Modularity and explicitness (Ridgeway & Mozer 2018) as disentanglement_lib computes them.

    Modularity: per code ``1 - sum_{j != max} I_j^2 / ((k - 1) max_j I_j^2)`` on the histogram mutual
    information of the training codes, averaged. Explicitness: per factor, a multinomial logistic
    regression (``C = 1``) on the codes standardised by the training mean and deviation, scored by
    the mean one-vs-rest ROC-AUC of its probabilities, averaged over factors.

    Args:
        codes: training codes ``(n, d)``.
        factors: their integer factors ``(n, k)``.
        codes_test: evaluation codes ``(m, d)``.
        factors_test: their factors ``(m, k)``.
        num_bins: histogram bins per code, for the mutual information.

    Returns:
        A `ModularityExplicitness`.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> f = rng.integers(0, 4, (400, 2))
        >>> s = modularity_explicitness(f + 0.0, f, f + 0.0, f)
        >>> round(s.modularity, 2), round(s.explicitness_test, 2)
        (1.0, 1.0)

    References:
        K. Ridgeway and M. C. Mozer, Learning deep disentangled embeddings with the F-statistic
        loss, NeurIPS 2018, sec. 3; disentanglement_lib ``modularity_explicitness.py``.
    """
    where = "look.disentanglement.modularity_explicitness"
    codes, codes_test, y, y_test, num_values = _train_test(codes, factors, codes_test, factors_test, where)
    binned = _info.discretize(jnp.asarray(codes, jnp.float32), num_bins=num_bins)
    info = _info.mutual_info(binned, jnp.asarray(y), num_bins=num_bins, num_values=num_values)
    mean, sd = codes.mean(axis=0), codes.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    x, x_test = (jnp.asarray((c - mean) / sd, jnp.float32) for c in (codes, codes_test))
    train, test = [], []
    for k in range(y.shape[1]):
        classes = np.unique(y[:, k])  # sklearn's classes_: those seen in training
        yk = np.searchsorted(classes, y[:, k])
        mask = _linear.class_mask(len(classes))
        w, b = _linear.logistic_regression(x, jnp.asarray(yk), jnp.asarray(mask))
        for xs, ys, out in ((x, y[:, k], train), (x_test, y_test[:, k], test)):
            # One-vs-rest AUC of each class the split holds (sklearn's MultiLabelBinarizer columns).
            yi = np.where(np.isin(ys, classes), np.searchsorted(classes, ys), -1)
            use = mask & (np.bincount(yi[yi >= 0], minlength=len(mask)) > 0)
            out.append(float(_linear.mean_roc_auc(w, b, xs, jnp.asarray(yi), jnp.asarray(use))))
    return ModularityExplicitness(
        float(_info.modularity_from_info(info)), float(np.mean(train)), float(np.mean(test)), np.asarray(info)
    )


def sap(
    codes: ArrayLike,
    factors: ArrayLike,
    codes_test: ArrayLike,
    factors_test: ArrayLike,
    *,
    continuous_factors: bool = False,
) -> SAP:
    """Separated attribute predictability (Kumar et al. 2018) as disentanglement_lib computes it.

    Per code and factor a score: for discrete factors (the default), the test accuracy of a
    one-feature linear SVM (``LinearSVC(C=0.01, class_weight="balanced")``'s objective); for
    continuous ones, the squared correlation on the training points (0 for a constant code). SAP
    is the mean over factors of the gap between the two best codes.

    Args:
        codes: training codes ``(n, d)``, ``d >= 2``.
        factors: their integer factors ``(n, k)``.
        codes_test: evaluation codes ``(m, d)`` (unused when continuous).
        factors_test: their factors ``(m, k)``.
        continuous_factors: score with squared correlations instead of classifiers.

    Returns:
        A `SAP`: ``score`` and ``score_matrix`` ``(d, k)``.

    Examples:
        >>> f = np.random.default_rng(0).integers(0, 3, (300, 2))
        >>> round(sap(f + 0.0, f, f + 0.0, f).score, 2) > 0.3
        True

    References:
        A. Kumar, P. Sattigeri, A. Balakrishnan, Variational inference of disentangled latent
        concepts from unlabeled observations, ICLR 2018, sec. 3; disentanglement_lib ``sap_score.py``.
    """
    where = "look.disentanglement.sap"
    codes, codes_test, y, y_test, num_values = _train_test(codes, factors, codes_test, factors_test, where)
    if codes.shape[1] < 2:
        raise InputError(f"{where}: codes needs at least 2 columns for a gap, got {codes.shape[1]}")
    d, k = codes.shape[1], y.shape[1]
    matrix = np.zeros((d, k))
    for j in range(k):
        if continuous_factors:
            cov = np.cov(np.concatenate([codes, y[:, j : j + 1]], axis=1).T, ddof=1)
            var = np.diag(cov)[:d]
            matrix[:, j] = np.where(
                var > 1e-12, cov[:d, d] ** 2 / (np.where(var > 1e-12, var, 1) * cov[d, d]), 0
            )
            continue
        classes = np.unique(y[:, j])
        yj = jnp.asarray(np.searchsorted(classes, y[:, j]))
        present = jnp.asarray(_linear.class_mask(len(classes)))
        fit = jax.vmap(_linear.svc_1d, in_axes=(0, None, None))
        w, b = fit(jnp.asarray(codes.T, jnp.float32), yj, present)  # (d, K) each
        pred = jnp.argmax(
            jnp.asarray(codes_test.T, jnp.float32)[:, :, None] * w[:, None, :] + b[:, None, :], axis=2
        )
        matrix[:, j] = np.mean(classes[np.asarray(pred)] == y_test[None, :, j], axis=1)
    top = np.sort(matrix, axis=0)
    return SAP(float(np.mean(top[-1] - top[-2])), matrix)


def dci(
    codes: ArrayLike,
    factors: ArrayLike,
    codes_test: ArrayLike,
    factors_test: ArrayLike,
    *,
    num_stages: int = 100,
    max_depth: int = 3,
    learning_rate: float = 0.1,
    max_bins: int = 64,
) -> DCI:
    """Disentanglement, completeness, informativeness (Eastwood & Williams 2018), from boosted trees.

    Per factor a gradient-boosted classifier on all codes (`_disentangle_boost`: sklearn's
    ``GradientBoostingClassifier()`` defaults, its splits searched on quantile bins) gives one
    column of the ``(d, k)`` importance matrix ``R`` and its accuracy (informativeness, train and
    test). Disentanglement is ``sum_j rho_j (1 - H_k(R_j.))`` with ``rho_j`` code ``j``'s share of
    all importance and ``H_k`` the entropy in base ``k`` of its normalised row; completeness the
    same over factors (columns, base ``d``), as disentanglement_lib (which adds 1e-11).

    Args:
        codes: training codes ``(n, d)``.
        factors: their integer factors ``(n, k)``.
        codes_test: evaluation codes ``(m, d)``.
        factors_test: their factors ``(m, k)``.
        num_stages: boosting stages (sklearn's ``n_estimators``).
        max_depth: depth of each tree.
        learning_rate: shrinkage of each stage.
        max_bins: candidate split points per code, at most ``max_bins - 1``.

    Returns:
        A `DCI`.

    Examples:
        >>> f = np.random.default_rng(0).integers(0, 4, (300, 2))
        >>> s = dci(f + 0.0, f, f + 0.0, f, num_stages=10)
        >>> round(s.disentanglement, 2), round(s.informativeness_test, 2)
        (1.0, 1.0)

    References:
        C. Eastwood and C. K. I. Williams, A framework for the quantitative evaluation of
        disentangled representations, ICLR 2018; disentanglement_lib ``dci.py``.
    """
    where = "look.disentanglement.dci"
    codes, codes_test, y, y_test, _ = _train_test(codes, factors, codes_test, factors_test, where)
    _checks.index(num_stages, "num_stages", where=where, minimum=1)
    _checks.index(max_depth, "max_depth", where=where, minimum=1)
    _checks.index(max_bins, "max_bins", where=where, minimum=2)
    bins, bins_test = _boost.quantile_bins(codes, codes_test, max_bins=max_bins)
    d, k = codes.shape[1], y.shape[1]
    importance, acc_train, acc_test = np.zeros((d, k)), [], []
    for j in range(k):
        # Classes padded to a multiple of 8, so that factors of similar sizes share one compilation.
        size = int(max(y[:, j].max(), y_test[:, j].max())) + 1
        present = np.bincount(y[:, j], minlength=-(-size // 8) * 8) > 0
        imp, pred, pred_test = _boost.boost(
            jnp.asarray(bins),
            jnp.asarray(y[:, j]),
            jnp.asarray(bins_test),
            jnp.asarray(present),
            num_bins=max_bins,
            num_classes=len(present),
            num_stages=num_stages,
            max_depth=max_depth,
            learning_rate=learning_rate,
        )
        importance[:, j] = np.asarray(imp)
        acc_train.append(np.mean(np.asarray(pred) == y[:, j]))
        acc_test.append(np.mean(np.asarray(pred_test) == y_test[:, j]))
    return DCI(
        _dci_score(importance),
        _dci_score(importance.T),
        float(np.mean(acc_train)),
        float(np.mean(acc_test)),
        importance,
    )


def _dci_score(r: np.ndarray) -> float:
    """Importance-weighted mean over rows of ``1 - entropy(row)`` in base ``r.shape[1]`` (+1e-11)."""
    p = r + 1e-11
    p = p / p.sum(axis=1, keepdims=True)
    per_row = 1.0 + (p * np.log(p)).sum(axis=1) / np.log(r.shape[1])
    weight = np.ones_like(r) if r.sum() == 0 else r
    return float(np.sum(per_row * weight.sum(axis=1) / weight.sum()))
