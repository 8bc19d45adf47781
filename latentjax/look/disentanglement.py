"""Disentanglement metrics as disentanglement_lib defines them: the six standard scores.

Two levels. Functions on given codes ``(n, d)`` and integer factors ``(n, k)`` (`mig`, `sap`, `dci`,
`modularity_explicitness`; `beta_vae` and `factor_vae` take their batches of codes), and samplers
``*_score(key, data, represent)`` that run disentanglement_lib's protocol on a ground-truth set
(`data.DSprites`, or anything with ``factor_sizes``, ``sample_factors(key, n)`` and
``sample_observations_from_factors(key, factors)``) and a representation function (images ->
codes ``(n, d)``, e.g. posterior means: ``functools.partial(models.encode_images, model)``, which
takes the set's ``uint8`` images as they come), with its defaults: 10,000 training and 5,000
evaluation points, 20-bin histograms, batches of 64 for the beta-VAE and FactorVAE scores, the
FactorVAE pruning threshold 0.05 (its ``unsupervised_study_v1`` configs).

Where disentanglement_lib calls scikit-learn, the models here are JAX ones, with these differences:
beta-VAE and explicitness use the same logistic-regression objective solved to convergence
(sklearn stops at 100 L-BFGS steps); SAP's ``LinearSVC`` is the same primal solved by Newton's
method; DCI's importances come from JAX gradient-boosted trees with sklearn's defaults (100 stages,
depth 3, learning rate 0.1) that search splits on 64 quantile bins per code (`_disentangle_boost`;
sklearn tries every midpoint: on the tests' codes D and C agree within 0.01). Samples are
drawn from a JAX key, so the numbers agree with disentanglement_lib's in distribution, not draw for
draw. FactorVAE's ``num_active_dims`` counts the active codes (disentanglement_lib reports all).
"""

from __future__ import annotations

from collections.abc import Callable

import jax

from latentjax.errors import InputError
from latentjax.look import _disentangle_sample as _sample
from latentjax.look._disentangle_codes import (  # noqa: F401
    DCI,
    MIG,
    SAP,
    ModularityExplicitness,
    dci,
    mig,
    modularity_explicitness,
    sap,
)
from latentjax.look._disentangle_votes import Accuracy, FactorVAEScore, beta_vae, factor_vae  # noqa: F401


def mig_score(
    key: jax.Array,
    data,
    represent: Callable,
    *,
    num_train: int = 10_000,
    num_bins: int = 20,
    chunk_size: int = 4096,
) -> MIG:
    """`mig` on ``num_train`` uniformly drawn images of ``data`` and their codes ``represent(images)``.

    Args:
        key: a ``jax.random.key``; every draw derives from it.
        data: a ground-truth set (`data.DSprites`; protocol `data.GroundTruthData`).
        represent: images ``(n, h, w, c)`` as ``data`` draws them (``uint8`` for `data.DSprites`)
            -> codes ``(n, d)``.
        num_train: points (disentanglement_lib: 10,000).
        num_bins: histogram bins per code (20).
        chunk_size: images per call of ``represent``.

    Returns:
        A `MIG`.

    Examples:
        >>> from latentjax import data
        >>> ds = data.DSprites()
        >>> rep = lambda x: x.reshape(len(x), -1)[:, ::500].astype(float)  # 9 pixels as "codes"
        >>> 0 <= mig_score(jax.random.key(0), ds, rep, num_train=500).score < 0.2
        True
    """
    where = "look.disentanglement.mig_score"
    _sample.check_counts(where, num_train=num_train, chunk_size=chunk_size)
    codes, factors = _sample.factors_and_codes(
        key, data, represent, num_train, chunk_size=chunk_size, where=where
    )
    return mig(codes, factors, num_bins=num_bins)


def _train_test_sample(key, data, represent, num_train, num_test, chunk_size, where):
    _sample.check_counts(where, num_train=num_train, num_test=num_test, chunk_size=chunk_size)
    k_train, k_test = jax.random.split(key)
    train = _sample.factors_and_codes(k_train, data, represent, num_train, chunk_size=chunk_size, where=where)
    test = _sample.factors_and_codes(k_test, data, represent, num_test, chunk_size=chunk_size, where=where)
    return (*train, *test)


def sap_score(
    key: jax.Array,
    data,
    represent: Callable,
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    continuous_factors: bool = False,
    chunk_size: int = 4096,
) -> SAP:
    """`sap` on ``num_train`` training and ``num_test`` test images drawn from ``data`` (see `mig_score`)."""
    where = "look.disentanglement.sap_score"
    args = _train_test_sample(key, data, represent, num_train, num_test, chunk_size, where)
    return sap(*args, continuous_factors=continuous_factors)


def dci_score(
    key: jax.Array,
    data,
    represent: Callable,
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    chunk_size: int = 4096,
) -> DCI:
    """`dci` on ``num_train`` training and ``num_test`` test images drawn from ``data`` (see `mig_score`)."""
    where = "look.disentanglement.dci_score"
    return dci(*_train_test_sample(key, data, represent, num_train, num_test, chunk_size, where))


def modularity_explicitness_score(
    key: jax.Array,
    data,
    represent: Callable,
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    num_bins: int = 20,
    chunk_size: int = 4096,
) -> ModularityExplicitness:
    """`modularity_explicitness` on images drawn from ``data`` (see `mig_score`)."""
    where = "look.disentanglement.modularity_explicitness_score"
    args = _train_test_sample(key, data, represent, num_train, num_test, chunk_size, where)
    return modularity_explicitness(*args, num_bins=num_bins)


def beta_vae_score(
    key: jax.Array,
    data,
    represent: Callable,
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    chunk_size: int = 4096,
) -> Accuracy:
    """`beta_vae` on pairs of ``batch_size`` images that share one random factor (see `mig_score`).

    For each of ``num_train`` + ``num_eval`` points: a factor index ``k`` uniformly, two batches of
    uniformly drawn factors, the second batch's factor ``k`` copied from the first, row by row.
    """
    where = "look.disentanglement.beta_vae_score"
    _sample.check_counts(where, batch_size=batch_size, num_train=num_train, num_eval=num_eval)
    parts = []
    for i, num in enumerate((num_train, num_eval)):
        k_batch, k_obs = jax.random.split(jax.random.fold_in(key, i))
        fixed, f = _sample.fixed_factor_batches(k_batch, data, num, batch_size, pairs=True)
        flat = f.reshape(-1, f.shape[-1])
        codes = _sample.represent_factors(k_obs, data, represent, flat, chunk_size=chunk_size, where=where)
        codes = codes.reshape(num, 2, batch_size, -1)
        parts.append((codes[:, 0], codes[:, 1], fixed))
    return beta_vae(*parts[0], *parts[1])


def factor_vae_score(
    key: jax.Array,
    data,
    represent: Callable,
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    num_variance_estimate: int = 10_000,
    threshold: float = 0.05,
    chunk_size: int = 4096,
) -> FactorVAEScore:
    """`factor_vae` on batches of ``batch_size`` images sharing one random factor's value (see `mig_score`).

    Global variances come from ``num_variance_estimate`` uniformly drawn images; each of the
    ``num_train`` + ``num_eval`` points draws a factor index and a batch whose rows all take the
    first row's value of that factor.
    """
    where = "look.disentanglement.factor_vae_score"
    _sample.check_counts(
        where,
        batch_size=batch_size,
        num_train=num_train,
        num_eval=num_eval,
        num_variance_estimate=num_variance_estimate,
    )
    if batch_size < 2:
        raise InputError(f"{where}: batch_size must be >= 2 for a variance, got {batch_size}")
    k_var, k_train, k_eval = jax.random.split(key, 3)
    codes, _ = _sample.factors_and_codes(
        k_var, data, represent, num_variance_estimate, chunk_size=chunk_size, where=where
    )
    parts = []
    for k, num in ((k_train, num_train), (k_eval, num_eval)):
        k_batch, k_obs = jax.random.split(k)
        fixed, f = _sample.fixed_factor_batches(k_batch, data, num, batch_size, pairs=False)
        c = _sample.represent_factors(
            k_obs, data, represent, f.reshape(-1, f.shape[-1]), chunk_size=chunk_size, where=where
        )
        parts.append((c.reshape(num, batch_size, -1), fixed))
    return factor_vae(
        *parts[0],
        *parts[1],
        global_variances=codes.var(axis=0, ddof=1),
        num_factors=len(data.factor_sizes),
        threshold=threshold,
    )


def scores(
    key: jax.Array,
    data,
    represent: Callable,
    *,
    num_train: int = 10_000,
    num_test: int = 5_000,
    batch_size: int = 64,
    chunk_size: int = 4096,
) -> dict[str, float]:
    """All six metrics of a representation, by disentanglement_lib's protocols, as a flat dict.

    MIG, SAP, DCI and modularity/explicitness share one draw of ``num_train`` training and
    ``num_test`` test images (disentanglement_lib draws each metric's own; the distribution is the
    same); the beta-VAE and FactorVAE scores draw their batches (``num_train`` and ``num_test``
    points of ``batch_size`` images; FactorVAE's variances from ``num_train`` images).

    Args:
        key: a ``jax.random.key``.
        data: a ground-truth set (see `mig_score`).
        represent: images -> codes ``(n, d)``.
        num_train: training points of each metric (disentanglement_lib: 10,000).
        num_test: evaluation points (5,000).
        batch_size: images per point of the beta-VAE and FactorVAE scores (64).
        chunk_size: images per call of ``represent``.

    Returns:
        ``{"beta_vae", "factor_vae", "mig", "sap", "dci_disentanglement", "dci_completeness",
        "dci_informativeness", "modularity", "explicitness"}`` -> evaluation-set scores (MIG and
        modularity have no test set: theirs are on the training draw).
    """
    where = "look.disentanglement.scores"
    k_codes, k_beta, k_factor = jax.random.split(key, 3)
    codes, factors, codes_test, factors_test = _train_test_sample(
        k_codes, data, represent, num_train, num_test, chunk_size, where
    )
    d = dci(codes, factors, codes_test, factors_test)
    me = modularity_explicitness(codes, factors, codes_test, factors_test)
    sizes = {"batch_size": batch_size, "num_train": num_train, "num_eval": num_test, "chunk_size": chunk_size}
    return {
        "beta_vae": beta_vae_score(k_beta, data, represent, **sizes).eval_accuracy,
        "factor_vae": factor_vae_score(
            k_factor, data, represent, num_variance_estimate=num_train, **sizes
        ).eval_accuracy,
        "mig": mig(codes, factors).score,
        "sap": sap(codes, factors, codes_test, factors_test).score,
        "dci_disentanglement": d.disentanglement,
        "dci_completeness": d.completeness,
        "dci_informativeness": d.informativeness_test,
        "modularity": me.modularity,
        "explicitness": me.explicitness_test,
    }
