"""A decoder whose uncertainty grows off the data: the RBF precision network of "Latent space oddity".

`fit_uncertainty` places ``K`` RBF centres by k-means (Lloyd's iterations in JAX) on the training
latents and fits positive weights so that the decoder's variance ``1 / beta(z)`` matches the
reconstruction residuals there; far from every centre the precision falls to a floor, so the
standard deviation rises to ``max_std``. `variance_aware` turns a decoder into one that also outputs
that standard deviation: its pulled-back metric is the expected metric
``J_mu^T J_mu + J_sigma^T J_sigma`` (`expected_metric`), and `move.geodesic` under it (its
``uncertainty=`` argument) avoids the regions where the decoder has seen no data.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.move._paths import Decode, _flat, _float_dtype


class Uncertainty(NamedTuple):
    """The RBF precision network ``beta(z) = W^T v(z) + floor`` fitted by `fit_uncertainty`.

    ``v_k(z) = exp(-bandwidths_k |z - centers_k|^2)``; the decoder's standard deviation is
    ``beta(z)^(-1/2)`` per output (`uncertainty_std`).

    Attributes:
        centers: ``(K, d)`` RBF centres (k-means of the training latents).
        bandwidths: ``(K,)`` ``lambda_k = 0.5 (a s_k)^-2``, ``s_k`` the mean distance of cluster
            ``k``'s latents to its centre and ``a`` the ``bandwidth_scale``.
        weights: ``(K, p)`` non-negative weights, ``p`` the decoder's output size.
        floor: the precision far from the data, ``max_std^-2``.
        log_likelihoods: ``(num_steps + 1,)`` the Gaussian log-likelihood of the residuals per
            output (constant dropped) before each weight update and after the last; it never decreases.

    Examples:
        >>> u = fit_uncertainty(lambda z: jnp.tanh(z), jax.random.key(0), jnp.linspace(-1, 1, 8)[:, None],
        ...                     jnp.tanh(jnp.linspace(-1, 1, 8))[:, None] + 0.1, num_centers=2, num_steps=5)
        >>> u.centers.shape, u.weights.shape, u.log_likelihoods.shape
        ((2, 1), (2, 1), (6,))
    """

    centers: jax.Array
    bandwidths: jax.Array
    weights: jax.Array
    floor: jax.Array
    log_likelihoods: jax.Array


def _sq_dist(x: jax.Array, c: jax.Array) -> jax.Array:
    """``(n, k)`` squared distances, centred on the centres' mean (exact enough for assignments)."""
    m = jnp.mean(c, axis=0, keepdims=True)
    x, c = x - m, c - m
    d2 = jnp.sum(x * x, 1)[:, None] - 2.0 * x @ c.T + jnp.sum(c * c, 1)[None, :]
    return jnp.maximum(d2, 0.0)


def _lloyd(x: jax.Array, centers: jax.Array, num_steps: int) -> jax.Array:
    """``num_steps`` Lloyd iterations from ``centers``; an empty cluster keeps its centre."""
    k = centers.shape[0]

    def step(c, _):
        onehot = jax.nn.one_hot(jnp.argmin(_sq_dist(x, c), axis=1), k, dtype=x.dtype)
        counts = jnp.sum(onehot, axis=0)
        sums = onehot.T @ x
        return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], c), None

    return jax.lax.scan(step, centers, length=num_steps)[0]


def _bandwidths(x: jax.Array, centers: jax.Array, scale: float) -> jax.Array:
    """``0.5 (scale * s_k)^-2`` with ``s_k`` the mean distance of cluster ``k`` to its centre.

    A cluster with no spread (empty, or one point) takes the mean spread of the others.
    """
    k = centers.shape[0]
    a = jnp.argmin(_sq_dist(x, centers), axis=1)
    diff = x - centers[a]  # exact differences: the expansion loses digits at small distances
    dist = jnp.sqrt(jnp.sum(diff * diff, axis=1))
    onehot = jax.nn.one_hot(a, k, dtype=x.dtype)
    spread = (onehot.T @ dist) / jnp.maximum(jnp.sum(onehot, axis=0), 1.0)
    ok = spread > 0
    mean = jnp.sum(jnp.where(ok, spread, 0.0)) / jnp.maximum(jnp.sum(ok), 1)
    spread = jnp.where(ok, spread, jnp.where(mean > 0, mean, 1.0))
    return 0.5 / (scale * spread) ** 2


def _features(u_centers: jax.Array, u_bandwidths: jax.Array, z: jax.Array) -> jax.Array:
    """``v(z)`` ``(K,)`` for one latent (exact differences: smooth for the Jacobian)."""
    diff = z[None, :] - u_centers
    return jnp.exp(-u_bandwidths * jnp.sum(diff * diff, axis=1))


def _log_likelihood(beta: jax.Array, sq: jax.Array) -> jax.Array:
    return jnp.mean(0.5 * jnp.log(beta) - 0.5 * beta * sq)


def fit_uncertainty(
    decode: Decode,
    key: jax.Array,
    latents: ArrayLike,
    targets: ArrayLike,
    *,
    num_centers: int = 64,
    kmeans_steps: int = 20,
    num_steps: int = 100,
    bandwidth_scale: float = 1.0,
    max_std: float = 1.0,
    min_std: float = 0.01,
    batch_size: int = 512,
) -> Uncertainty:
    """Fits the RBF precision network of Arvanitidis et al. (2018) to a trained decoder's residuals.

    1. ``num_centers`` centres: ``kmeans_steps`` Lloyd iterations in JAX on ``latents``, started
       from distinct latents drawn with ``key``.
    2. Bandwidths ``lambda_k = 0.5 (a s_k)^-2`` from the clusters' mean distances ``s_k`` to their
       centres (``a = bandwidth_scale``; larger ``a``: wider RBFs, a smaller region of high variance).
    3. Weights ``W >= 0`` maximising the Gaussian likelihood of the residuals ``r = targets -
       decode(latents)`` under the variance ``1 / beta(z)``, ``beta(z) = W^T v(z) + max_std^-2``,
       one output at a time, with the decoder's mean fixed (the paper's second training stage). The
       squared residuals get ``min_std^2`` added (an output the decoder fits exactly would otherwise
       ask for an infinite precision). The problem is concave in ``W``; ``num_steps`` minorise-
       maximise updates ``W_k <- W_k sum_n v_k(z_n) / beta(z_n) / sum_n v_k(z_n) r_n^2`` (Jensen's
       bound on the log; each increases the likelihood and keeps ``W`` positive) in one `lax.scan`.

    Far from every centre ``beta -> max_std^-2``: the decoder's standard deviation rises from the
    residuals' size on the data to ``max_std`` off it. In a VAE's 10-16-D latent space the
    defaults' RBFs (64 centres, ``a = 1``) cover the space between the classes, so the variance
    rises along no path between them; ``num_centers=256, bandwidth_scale=0.3`` made it rise there
    (experiments/geodesic_on_data.py: sprites and Fashion-MNIST).

    Args:
        decode: single-latent decoder ``(d,) -> output`` (the trained model's mean; any output shape).
        key: ``jax.random.key`` for the k-means start.
        latents: ``(n, d)`` training latents (e.g. the encoder's means of the training images).
        targets: ``(n, ...)`` what ``decode`` should give for each latent, floats (e.g. the training
            images through ``models.to_float``).
        num_centers: ``K``, at most ``n``.
        kmeans_steps: Lloyd iterations.
        num_steps: weight updates.
        bandwidth_scale: ``a`` above, positive.
        max_std: the standard deviation far from the data, in output units; positive.
        min_std: added in quadrature to the residuals; positive.
        batch_size: latents decoded per block (``lax.map``) for the residuals.

    Returns:
        `Uncertainty`.

    Raises:
        InputError: ``latents`` not ``(n, d)``, ``targets`` not ``n`` float outputs of ``decode``'s
            shape, ``num_centers`` out of ``[1, n]``, a non-positive scale, or NaN/inf (eager calls).

    Examples:
        >>> z = jnp.linspace(-1.0, 1.0, 16)[:, None]
        >>> u = fit_uncertainty(lambda z: 2.0 * z, jax.random.key(0), z, 2.0 * z + 0.1, num_centers=4)
        >>> far, near = uncertainty_std(u, jnp.array([9.0])), uncertainty_std(u, jnp.array([0.0]))
        >>> round(float(far[0]), 3), round(float(near[0]), 2)
        (1.0, 0.1)

    References:
        Arvanitidis, Hansen & Hauberg 2018, "Latent Space Oddity: on the Curvature of Deep
        Generative Models", ICLR, Sec. 3 (Eqs. 9-10, the RBF precision network) and Appendix.
    """
    where = "move.fit_uncertainty"
    latents = _checks.array(latents, "latents", where=where, ndim=2)
    targets = _checks.array(targets, "targets", where=where)
    if not jnp.issubdtype(targets.dtype, jnp.floating):
        raise InputError(
            f"{where}: targets must be floats (uint8 images: models.to_float), got {targets.dtype}"
        )
    n, d = latents.shape
    if targets.shape[0] != n:
        raise InputError(
            f"{where}: targets must have {n} rows like latents, got shape {tuple(targets.shape)}"
        )
    dt = _float_dtype(latents, targets)
    out = jax.eval_shape(decode, jax.ShapeDtypeStruct((d,), dt))
    if tuple(targets.shape[1:]) != tuple(out.shape):
        raise InputError(
            f"{where}: targets must be (n, *decode's output shape) = (n, {', '.join(map(str, out.shape))}), "
            f"got {tuple(targets.shape)}"
        )
    k = _checks.index(num_centers, "num_centers", where=where, minimum=1)
    if k > n:
        raise InputError(f"{where}: num_centers must be at most the {n} latents, got {k}")
    kmeans_steps = _checks.index(kmeans_steps, "kmeans_steps", where=where, minimum=0)
    num_steps = _checks.index(num_steps, "num_steps", where=where, minimum=0)
    batch_size = _checks.index(batch_size, "batch_size", where=where, minimum=1)
    for name, v in (("bandwidth_scale", bandwidth_scale), ("max_std", max_std), ("min_std", min_std)):
        if not np.isfinite(v) or v <= 0:
            raise InputError(f"{where}: {name} must be positive and finite, got {v}")
    _checks.finite(latents, "latents", where=where)
    _checks.finite(targets, "targets", where=where)
    z, y = jnp.asarray(latents, dt), jnp.asarray(targets, dt)
    pred = jax.lax.map(decode, z, batch_size=min(batch_size, n))
    sq = _flat(y - pred) ** 2 + jnp.asarray(min_std, dt) ** 2
    start = z[jax.random.choice(key, n, (k,), replace=False)]
    floor = jnp.asarray(max_std, dt) ** -2
    return _fit(
        z,
        sq,
        start,
        floor,
        kmeans_steps=kmeans_steps,
        num_steps=num_steps,
        bandwidth_scale=float(bandwidth_scale),
    )


@functools.partial(jax.jit, static_argnames=("kmeans_steps", "num_steps", "bandwidth_scale"))
def _fit(z, sq, start, floor, *, kmeans_steps, num_steps, bandwidth_scale) -> Uncertainty:
    centers = _lloyd(z, start, kmeans_steps)
    bandwidths = _bandwidths(z, centers, bandwidth_scale)
    v = jax.vmap(_features, in_axes=(None, None, 0))(centers, bandwidths, z)  # (n, K)
    # Start where beta is the mean precision of the residuals on average over the data.
    target = jnp.maximum(1.0 / jnp.mean(sq, axis=0) - floor, 1e-3 * floor)  # (p,)
    w = jnp.broadcast_to(target / jnp.maximum(jnp.mean(jnp.sum(v, axis=1)), 1e-30), (v.shape[1], sq.shape[1]))
    denominator = jnp.maximum(v.T @ sq, 1e-30)  # (K, p), fixed

    def step(w, _):
        beta = v @ w + floor
        ll = _log_likelihood(beta, sq)
        return w * (v.T @ (1.0 / beta)) / denominator, ll

    w, trace = jax.lax.scan(step, w, length=num_steps)
    final = _log_likelihood(v @ w + floor, sq)
    return Uncertainty(centers, bandwidths, w, floor, jnp.concatenate([trace, final[None]]))


def uncertainty_std(uncertainty: Uncertainty, z: ArrayLike) -> jax.Array:
    """The decoder's standard deviation ``beta(z)^(-1/2)`` at one latent, ``(p,)`` (flattened outputs).

    Args:
        uncertainty: from `fit_uncertainty`.
        z: ``(d,)`` latent.

    Returns:
        ``(p,)`` standard deviations, between about the residuals' size on the data and ``max_std``.

    Examples:
        >>> one = jnp.ones(1)
        >>> u = Uncertainty(jnp.zeros((1, 1)), one, jnp.full((1, 1), 99.0), jnp.array(1.0), one)
        >>> uncertainty_std(u, jnp.zeros(1))  # 1 / sqrt(99 + 1)
        Array([0.1], dtype=float32)
    """
    z = _checks.array(z, "z", where="move.uncertainty_std", ndim=1)
    v = _features(uncertainty.centers, uncertainty.bandwidths, jnp.asarray(z, _float_dtype(z)))
    return jax.lax.rsqrt(v @ uncertainty.weights + uncertainty.floor)


def variance_aware(decode: Decode, uncertainty: Uncertainty) -> Decode:
    """The decoder that also outputs its standard deviation: ``z -> concat(mu(z), sigma(z))`` (flat).

    Its pulled-back metric is the expected metric ``J_mu^T J_mu + J_sigma^T J_sigma`` of the
    stochastic decoder ``mu(z) + sigma(z) * eps`` (`expected_metric`), so `move.curve_energy` and
    `move.geodesic` of it are the energy and the geodesic under that metric (``(n - 1) sum_i
    |mu_{i+1} - mu_i|^2 + |sigma_{i+1} - sigma_i|^2`` on a discretised curve).

    Args:
        decode: single-latent decoder ``(d,) -> output``.
        uncertainty: from `fit_uncertainty` for that decoder.

    Returns:
        A single-latent decoder ``(d,) -> (2 p,)``.

    Examples:
        >>> one = jnp.ones(1)
        >>> u = Uncertainty(jnp.zeros((1, 1)), one, jnp.full((1, 1), 99.0), jnp.array(1.0), one)
        >>> variance_aware(lambda z: 2.0 * z, u)(jnp.zeros(1))
        Array([0. , 0.1], dtype=float32)

    References:
        Arvanitidis, Hansen & Hauberg 2018, "Latent Space Oddity", Eq. 8 (the expected metric).
    """

    def decode_with_std(z):
        return jnp.concatenate([jnp.ravel(decode(z)), uncertainty_std(uncertainty, z)])

    return decode_with_std


def expected_metric(decode: Decode, uncertainty: Uncertainty, z: ArrayLike) -> jax.Array:
    """The expected metric ``M(z) = J_mu(z)^T J_mu(z) + J_sigma(z)^T J_sigma(z)`` at one latent.

    Args:
        decode: single-latent decoder ``(d,) -> output`` (the mean ``mu``).
        uncertainty: from `fit_uncertainty`.
        z: ``(d,)`` latent.

    Returns:
        ``(d, d)`` symmetric positive semi-definite matrix (forward-mode Jacobians).

    Examples:
        >>> u = Uncertainty(jnp.zeros((1, 1)), jnp.ones(1), jnp.zeros((1, 1)), jnp.array(1.0), jnp.zeros(1))
        >>> expected_metric(lambda z: 3.0 * z, u, jnp.zeros(1))  # sigma is constant: 3^2
        Array([[9.]], dtype=float32)

    References:
        Arvanitidis, Hansen & Hauberg 2018, "Latent Space Oddity", Eq. 8.
    """
    z = _checks.array(z, "z", where="move.expected_metric", ndim=1)
    z = jnp.asarray(z, _float_dtype(z))
    j = jax.jacfwd(variance_aware(decode, uncertainty))(z)
    return j.T @ j
