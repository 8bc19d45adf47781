"""Edits in a latent space: attribute vectors, applying and chaining them, traversals, sensitivity.

The vectors are computed from ``(n, d)`` latents (e.g. encoder means); `apply`, `chain` and `traverse`
edit one latent ``(d,)`` (sweep with `jax.vmap`).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from latentjax.errors import InputError
from latentjax.move._safe import _safe_divide, _safe_sqrt


class Sensitivity(NamedTuple):
    """Which latent dimension moves which known factor, from `factor_sensitivity`.

    Attributes:
        correlation: ``(latent_dim, num_factors)`` absolute Pearson correlation between each
            latent-mean coordinate and each factor (0 where either is constant).
        best_dim: ``(num_factors,)`` the latent dimension most correlated with each factor.

    Examples:
        >>> z = jnp.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]])
        >>> s = factor_sensitivity(z, jnp.array([0.0, 1.0, 2.0]))
        >>> s.correlation.shape, s.best_dim
        ((2, 1), Array([0], dtype=int32))
    """

    correlation: jax.Array
    best_dim: jax.Array


def _masked_mean(z: jax.Array, mask: jax.Array) -> jax.Array:
    w = mask.astype(z.dtype)
    return (w @ z) / jnp.maximum(jnp.sum(w), 1.0)


def _check_latents(z: jax.Array, n: int, where: str) -> None:
    if z.ndim != 2:
        raise InputError(f"{where}: z must be (n, d) latents, got shape {z.shape}")
    if z.shape[0] != n:
        raise InputError(f"{where}: {z.shape[0]} latents but {n} labels/values")


def _concrete(x: jax.Array):
    # Input checks only run on concrete values; under jit the caller owns the labels.
    return None if isinstance(x, jax.core.Tracer) else jax.device_get(x)


def attribute_vector(z: ArrayLike, labels: ArrayLike) -> jax.Array:
    """Mean latent of the positives minus mean latent of the negatives.

    Adding it to a negative's latent moves it, on average, to where positives sit ("add a smile").

    Args:
        z: ``(n, d)`` latents (e.g. encoder means).
        labels: ``(n,)`` booleans (or 0/1), True for examples that have the attribute.

    Returns:
        ``(d,)`` vector.

    Raises:
        InputError: shapes disagree, or (outside jit) the labels are all positive or all negative.

    Examples:
        >>> z = jnp.array([[1.0, 0.0], [3.0, 0.0], [0.0, 0.0]])
        >>> attribute_vector(z, jnp.array([True, True, False]))
        Array([2., 0.], dtype=float32)

    References:
        Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric", Sec. 5
        (visual attribute vectors); White 2016, "Sampling Generative Networks", Sec. 2.4.
    """
    z = jnp.asarray(z, jnp.float32)
    labels = jnp.asarray(labels).astype(bool)
    _check_latents(z, labels.shape[0], "move.attribute_vector")
    concrete = _concrete(labels)
    if concrete is not None and (concrete.all() or not concrete.any()):
        raise InputError(
            "move.attribute_vector: labels need both positives and negatives, got "
            f"{int(concrete.sum())} of {concrete.size} positive"
        )
    return _masked_mean(z, labels) - _masked_mean(z, ~labels)


def regression_vector(z: ArrayLike, values: ArrayLike, *, kind: str = "mean_shift") -> jax.Array:
    """Direction of a continuous attribute, scaled so a unit step means one unit of the attribute.

    Two least-squares fits, both scaled in the attribute's own units:

    - ``kind="mean_shift"`` (default): regress every latent coordinate on the attribute,
      ``v = cov(z, y) / var(y)``: the average latent displacement between data whose attribute
      differs by one unit. For 0/1 values it equals `attribute_vector` exactly. It follows the data,
      so decoded edits stay typical.
    - ``kind="predictor"``: fit ``y ~ w . z + b`` and return ``w / |w|^2``: the shortest latent step
      that raises the linear prediction of ``y`` by one unit.

    Args:
        z: ``(n, d)`` latents.
        values: ``(n,)`` measured attribute (e.g. stroke thickness in pixels).
        kind: ``"mean_shift"`` or ``"predictor"``.

    Returns:
        ``(d,)`` vector; ``apply(z, v, 2.0)`` asks for two more units of the attribute.

    Raises:
        InputError: shapes disagree or ``kind`` is unknown.

    Examples:
        >>> y = jnp.array([0.0, 1.0, 2.0]); z = jnp.stack([2.0 * y, jnp.zeros(3)], axis=1)
        >>> regression_vector(z, y)
        Array([2., 0.], dtype=float32)

    References:
        Least squares (Legendre 1805); attribute directions from regression as in Shen et al.
        2020, "Interpreting the Latent Space of GANs for Semantic Face Editing" (InterFaceGAN, Sec. 2).
    """
    z = jnp.asarray(z, jnp.float32)
    y = jnp.asarray(values, jnp.float32)
    if y.ndim != 1:
        raise InputError(f"move.regression_vector: values must be (n,), got shape {y.shape}")
    _check_latents(z, y.shape[0], "move.regression_vector")
    zc = z - z.mean(axis=0, keepdims=True)
    yc = y - y.mean()
    if kind == "mean_shift":
        return (yc @ zc) / jnp.maximum(yc @ yc, jnp.finfo(jnp.float32).tiny)
    if kind == "predictor":
        w = jnp.linalg.lstsq(zc, yc)[0]
        return w / jnp.maximum(w @ w, jnp.finfo(jnp.float32).tiny)
    raise InputError(f"move.regression_vector: kind must be 'mean_shift' or 'predictor', got {kind!r}")


def class_vector(z: ArrayLike, labels: ArrayLike, *, source: int, target: int) -> jax.Array:
    """Mean latent of class ``target`` minus mean latent of class ``source`` (e.g. sandal -> ankle boot).

    Args:
        z: ``(n, d)`` latents.
        labels: ``(n,)`` integer classes.
        source: the class to move from.
        target: the class to move to.

    Returns:
        ``(d,)`` vector.

    Raises:
        InputError: shapes disagree, or (outside jit) a class has no example.

    Examples:
        >>> class_vector(jnp.array([[0.0], [2.0], [4.0]]), jnp.array([0, 1, 1]), source=0, target=1)
        Array([3.], dtype=float32)

    References:
        Mikolov et al. 2013 (vector offsets); White 2016, "Sampling Generative Networks", Sec. 2.4.
    """
    z = jnp.asarray(z, jnp.float32)
    labels = jnp.asarray(labels)
    _check_latents(z, labels.shape[0], "move.class_vector")
    concrete = _concrete(labels)
    if concrete is not None:
        for c in (source, target):
            if not (concrete == c).any():
                raise InputError(f"move.class_vector: no example of class {c} among the labels")
    return _masked_mean(z, labels == target) - _masked_mean(z, labels == source)


def apply(z: ArrayLike, vector: ArrayLike, strength: ArrayLike) -> jax.Array:
    """``z + strength * vector`` for one latent and a scalar strength.

    Sweep with ``jax.vmap(apply, in_axes=(None, None, 0))(z, v, strengths)``; over inputs and
    strengths at once nest two vmaps.

    Args:
        z: ``(d,)`` latent.
        vector: ``(d,)`` edit direction (e.g. from `attribute_vector`).
        strength: scalar multiple of ``vector`` to add.

    Returns:
        ``(d,)`` edited latent.

    Examples:
        >>> apply(jnp.zeros(2), jnp.array([1.0, 0.0]), -2.0)
        Array([-2.,  0.], dtype=float32)

    References:
        White 2016, "Sampling Generative Networks", Sec. 2.4.
    """
    return jnp.asarray(z) + jnp.asarray(strength) * jnp.asarray(vector)


def gram_schmidt(vectors: ArrayLike) -> jax.Array:
    """Make each vector orthogonal to the ones before it, keeping its remaining length.

    Unlike QR, the vectors are not normalised: vector ``j`` keeps the part of itself that the
    earlier ones do not explain, so strengths keep their units along that part.

    Args:
        vectors: ``(k, d)`` vectors, in order of priority.

    Returns:
        ``(k, d)`` mutually orthogonal vectors (a zero vector stays zero).

    Examples:
        >>> gram_schmidt(jnp.array([[1.0, 0.0], [1.0, 1.0]]))
        Array([[1., 0.],
               [0., 1.]], dtype=float32)

    References:
        Golub & Van Loan, "Matrix Computations", Sec. 5.2.7 (modified Gram-Schmidt).
    """
    vs = jnp.asarray(vectors, jnp.float32)
    out = []
    for j in range(vs.shape[0]):
        v = vs[j]
        for u in out:
            v = v - _safe_divide(jnp.sum(u * v), jnp.sum(u * u)) * u
        out.append(v)
    return jnp.stack(out)


def chain(
    z: ArrayLike, vectors: ArrayLike, strengths: ArrayLike, *, orthogonalize: bool = False
) -> jax.Array:
    """Apply several attribute vectors in order: ``z + sum_j strengths[j] * vectors[j]``.

    With ``orthogonalize=True`` the vectors first go through `gram_schmidt`, so edit ``j`` has no
    component along the earlier edits and does not undo (or double) them: e.g. a "turn the head"
    vector correlated with "smile" no longer changes the smile coordinate.

    Args:
        z: ``(d,)`` latent.
        vectors: ``(k, d)`` edit directions, in order.
        strengths: ``(k,)`` one strength per vector.
        orthogonalize: orthogonalise the vectors in order first.

    Returns:
        ``(d,)`` edited latent.

    Raises:
        InputError: the shapes of ``vectors`` and ``strengths`` do not fit ``z``.

    Examples:
        >>> vs = jnp.array([[1.0, 0.0], [1.0, 1.0]])
        >>> chain(jnp.zeros(2), vs, jnp.array([1.0, 1.0]), orthogonalize=True)
        Array([1., 1.], dtype=float32)

    References:
        Shen et al. 2020, "InterFaceGAN", Sec. 2.3 (conditional manipulation by projection).
    """
    z = jnp.asarray(z, jnp.float32)
    vectors = jnp.asarray(vectors, jnp.float32)
    strengths = jnp.asarray(strengths, jnp.float32)
    if vectors.ndim != 2 or vectors.shape[1] != z.shape[-1] or strengths.shape != (vectors.shape[0],):
        raise InputError(
            f"move.chain: expected vectors (k, {z.shape[-1]}) and strengths (k,), "
            f"got {vectors.shape} and {strengths.shape}"
        )
    if orthogonalize:
        vectors = gram_schmidt(vectors)
    return z + strengths @ vectors


def traverse(z: ArrayLike, dim_or_direction: int | ArrayLike, values: ArrayLike) -> jax.Array:
    """Latents ``z + values[i] * direction`` around one point (one latent dimension or a direction).

    Args:
        z: ``(d,)`` latent to start from.
        dim_or_direction: an int (move along that coordinate) or a ``(d,)`` direction (e.g. a
            principal direction or an attribute vector), used as given (not normalised).
        values: ``(m,)`` offsets.

    Returns:
        ``(m, d)`` latents to decode.

    Raises:
        InputError: the dimension is out of range or the direction's shape is not ``z``'s.

    Examples:
        >>> traverse(jnp.zeros(2), 1, jnp.array([-1.0, 1.0]))
        Array([[ 0., -1.],
               [ 0.,  1.]], dtype=float32)

    References:
        Higgins et al. 2017, "beta-VAE", Fig. 1 (latent traversals).
    """
    z = jnp.asarray(z, jnp.float32)
    values = jnp.asarray(values, jnp.float32)
    if isinstance(dim_or_direction, int):
        if not -z.shape[0] <= dim_or_direction < z.shape[0]:
            raise InputError(
                f"move.traverse: dimension {dim_or_direction} out of range for a latent of size {z.shape[0]}"
            )
        direction = jax.nn.one_hot(dim_or_direction % z.shape[0], z.shape[0], dtype=jnp.float32)
    else:
        direction = jnp.asarray(dim_or_direction, jnp.float32)
        if direction.shape != z.shape:
            raise InputError(
                f"move.traverse: direction shape {direction.shape} differs from latent shape {z.shape}"
            )
    return jax.vmap(apply, in_axes=(None, None, 0))(z, direction, values)


def factor_sensitivity(z: ArrayLike, factors: ArrayLike) -> Sensitivity:
    """Absolute correlation between every latent coordinate and every known generative factor.

    On a data set with known factors (sprites: shape, scale, rotation, x, y) this tells which
    latent dimension moves which factor; a disentangled model has one large entry per column.
    Pass periodic factors (rotation) as cos/sin columns, since correlation is linear.

    Args:
        z: ``(n, d)`` latents (encoder means).
        factors: ``(n, f)`` factor values (categorical ones as codes or one-hot columns), or ``(n,)``
            for one factor.

    Returns:
        `Sensitivity` with ``correlation (d, f)`` and ``best_dim (f,)``.

    Raises:
        InputError: ``z`` and ``factors`` have different numbers of rows.

    Examples:
        >>> z = jnp.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]])
        >>> factor_sensitivity(z, jnp.array([[0.0], [2.0], [4.0]])).best_dim
        Array([0], dtype=int32)

    References:
        Higgins et al. 2017, "beta-VAE" (dSprites factors); Ridgeway & Mozer 2018, "Learning Deep
        Disentangled Embeddings with the F-Statistic Loss" (modularity from latent-factor statistics).
    """
    z = jnp.asarray(z, jnp.float32)
    f = jnp.asarray(factors, jnp.float32)
    if f.ndim == 1:
        f = f[:, None]
    _check_latents(z, f.shape[0], "move.factor_sensitivity")
    zc = z - z.mean(axis=0, keepdims=True)
    fc = f - f.mean(axis=0, keepdims=True)
    zs = _safe_sqrt(jnp.sum(zc * zc, axis=0))
    fs = _safe_sqrt(jnp.sum(fc * fc, axis=0))
    corr = _safe_divide(jnp.abs(zc.T @ fc), zs[:, None] * fs[None, :])
    return Sensitivity(correlation=corr, best_dim=jnp.argmax(corr, axis=0).astype(jnp.int32))
