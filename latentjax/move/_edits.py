"""Edits in a latent space: attribute vectors, and applying and chaining them.

The vectors are computed from ``(n, d)`` latents (e.g. encoder means); `apply` and `chain` edit one
latent ``(d,)`` (sweep with `jax.vmap`).
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from latentjax import _checks
from latentjax.errors import InputError
from latentjax.move._paths import _float_dtype, _scalar
from latentjax.move._safe import _safe_divide


def _masked_mean(z: jax.Array, mask: jax.Array) -> jax.Array:
    w = mask.astype(z.dtype)
    return (w @ z) / jnp.maximum(jnp.sum(w), 1.0)


def _latents(z: ArrayLike, n: int, where: str, other: str) -> jax.Array:
    """``(n, d)`` latents in their float dtype; NaN/inf refused in eager calls."""
    z = _checks.array(z, "z", where=where)
    if len(z.shape) != 2:
        raise InputError(f"{where}: z must be (n, d) latents, got shape {tuple(z.shape)}")
    if z.shape[0] != n:
        raise InputError(f"{where}: z has {z.shape[0]} latents but {other} has {n} entries; they must match")
    return jnp.asarray(z, _float_dtype(z))


def _class_labels(labels: ArrayLike, where: str, num_classes: int | None = None) -> jax.Array:
    """Integer or bool labels ``(n,)``: the dtype always, the values (>= 0, < num_classes) when concrete."""
    if _checks.is_traced(labels):
        dt = labels.dtype
        if labels.ndim != 1 or not (jnp.issubdtype(dt, jnp.integer) or dt == jnp.bool_):
            raise InputError(
                f"{where}: labels must be a vector of integers or bools, got {dt} of shape {labels.shape}"
            )
        return labels
    return jnp.asarray(_checks.labels(np.asarray(labels), where=where, num_classes=num_classes))


def attribute_vector(z: ArrayLike, labels: ArrayLike) -> jax.Array:
    """Mean latent of the positives minus mean latent of the negatives.

    Adding it to a negative's latent moves it, on average, to where positives sit ("add a smile").

    Args:
        z: ``(n, d)`` latents (e.g. encoder means).
        labels: ``(n,)`` booleans (or integers 0/1), True for examples that have the attribute.

    Returns:
        ``(d,)`` vector, in the latents' float dtype.

    Raises:
        InputError: shapes disagree, labels are not bools or integers, or (eager calls) a label
            is not 0/1, the labels are all positive or all negative, or ``z`` holds NaN/inf.

    Examples:
        >>> z = jnp.array([[1.0, 0.0], [3.0, 0.0], [0.0, 0.0]])
        >>> attribute_vector(z, jnp.array([True, True, False]))
        Array([2., 0.], dtype=float32)

    References:
        Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric", Sec. 5
        (visual attribute vectors); White 2016, "Sampling Generative Networks", Sec. 2.4.
    """
    where = "move.attribute_vector"
    labels = _class_labels(labels, where, num_classes=2)
    z = _latents(z, labels.shape[0], where, "labels")
    if not _checks.is_traced(labels):
        pos = int(jnp.sum(labels))
        if pos in (0, labels.shape[0]):
            raise InputError(
                f"{where}: labels need both positives and negatives, got {pos} of {labels.shape[0]} positive"
            )
    labels = labels.astype(bool)
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
        InputError: shapes disagree, ``kind`` is unknown, or (eager calls) NaN/inf in ``z`` or
            ``values``.

    Examples:
        >>> y = jnp.array([0.0, 1.0, 2.0]); z = jnp.stack([2.0 * y, jnp.zeros(3)], axis=1)
        >>> regression_vector(z, y)
        Array([2., 0.], dtype=float32)

    References:
        Least squares (Legendre 1805); attribute directions from regression as in Shen et al.
        2020, "Interpreting the Latent Space of GANs for Semantic Face Editing" (InterFaceGAN, Sec. 2).
    """
    where = "move.regression_vector"
    if kind not in ("mean_shift", "predictor"):
        raise InputError(f"{where}: kind must be 'mean_shift' or 'predictor', got {kind!r}")
    y = _checks.array(values, "values", where=where, ndim=1)
    z = _latents(z, y.shape[0], where, "values")
    y = jnp.asarray(y, z.dtype)
    zc = z - z.mean(axis=0, keepdims=True)
    yc = y - y.mean()
    tiny = jnp.finfo(z.dtype).tiny
    if kind == "mean_shift":
        return (yc @ zc) / jnp.maximum(yc @ yc, tiny)
    w = jnp.linalg.lstsq(zc, yc)[0]
    return w / jnp.maximum(w @ w, tiny)


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
        InputError: shapes disagree, labels are not non-negative integers, or (eager calls) a
            class has no example or ``z`` holds NaN/inf.

    Examples:
        >>> class_vector(jnp.array([[0.0], [2.0], [4.0]]), jnp.array([0, 1, 1]), source=0, target=1)
        Array([3.], dtype=float32)

    References:
        Mikolov et al. 2013 (vector offsets); White 2016, "Sampling Generative Networks", Sec. 2.4.
    """
    where = "move.class_vector"
    source = _checks.index(source, "source", where=where, minimum=0)
    target = _checks.index(target, "target", where=where, minimum=0)
    labels = _class_labels(labels, where)
    z = _latents(z, labels.shape[0], where, "labels")
    if not _checks.is_traced(labels):
        for name, c in (("source", source), ("target", target)):
            if not bool(jnp.any(labels == c)):
                raise InputError(f"{where}: no example of class {c} ({name}) among the labels")
    return _masked_mean(z, labels == target) - _masked_mean(z, labels == source)


def apply(z: ArrayLike, vector: ArrayLike, strength: ArrayLike) -> jax.Array:
    """``z + strength * vector`` for one latent and a scalar strength.

    Sweep with ``jax.vmap(apply, in_axes=(None, None, 0))(z, v, strengths)``; over inputs and
    strengths at once nest two vmaps (a vector ``strength`` is refused, not broadcast).

    Args:
        z: ``(d,)`` latent.
        vector: ``(d,)`` edit direction (e.g. from `attribute_vector`), the same shape.
        strength: scalar multiple of ``vector`` to add.

    Returns:
        ``(d,)`` edited latent, in the float dtype of ``z`` and ``vector``.

    Raises:
        InputError: ``z`` and ``vector`` differ in shape, ``strength`` is not a scalar, or (eager
            calls) an argument holds NaN/inf.

    Examples:
        >>> apply(jnp.zeros(2), jnp.array([1.0, 0.0]), -2.0)
        Array([-2.,  0.], dtype=float32)

    References:
        White 2016, "Sampling Generative Networks", Sec. 2.4.
    """
    where = "move.apply"
    z, vector = _checks.array(z, "z", where=where), _checks.array(vector, "vector", where=where)
    _checks.same_shape(z, vector, ("z", "vector"), where=where)
    strength = _scalar(strength, "strength", where)
    dt = _float_dtype(z, vector)
    return jnp.asarray(z, dt) + jnp.asarray(strength, dt) * jnp.asarray(vector, dt)


def gram_schmidt(vectors: ArrayLike) -> jax.Array:
    """Make each vector orthogonal to the ones before it, keeping its remaining length.

    Unlike QR, the vectors are not normalised: vector ``j`` keeps the part of itself that the
    earlier ones do not explain, so strengths keep their units along that part.

    Args:
        vectors: ``(k, d)`` vectors, in order of priority.

    Returns:
        ``(k, d)`` mutually orthogonal vectors (a zero vector stays zero), in their float dtype.

    Raises:
        InputError: ``vectors`` is not ``(k, d)`` or (eager calls) holds NaN/inf.

    Examples:
        >>> gram_schmidt(jnp.array([[1.0, 0.0], [1.0, 1.0]]))
        Array([[1., 0.],
               [0., 1.]], dtype=float32)

    References:
        Golub & Van Loan, "Matrix Computations", Sec. 5.2.7 (modified Gram-Schmidt).
    """
    vs = _checks.array(vectors, "vectors", where="move.gram_schmidt", ndim=2)
    vs = jnp.asarray(vs, _float_dtype(vs))
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
        ``(d,)`` edited latent, in the float dtype of ``z`` and ``vectors``.

    Raises:
        InputError: the shapes of ``vectors`` and ``strengths`` do not fit ``z``, or (eager calls)
            an argument holds NaN/inf.

    Examples:
        >>> vs = jnp.array([[1.0, 0.0], [1.0, 1.0]])
        >>> chain(jnp.zeros(2), vs, jnp.array([1.0, 1.0]), orthogonalize=True)
        Array([1., 1.], dtype=float32)

    References:
        Shen et al. 2020, "InterFaceGAN", Sec. 2.3 (conditional manipulation by projection).
    """
    where = "move.chain"
    z = _checks.array(z, "z", where=where, ndim=1)
    vectors = _checks.array(vectors, "vectors", where=where)
    strengths = _checks.array(strengths, "strengths", where=where)
    vs, ss = tuple(vectors.shape), tuple(strengths.shape)
    if len(vs) != 2 or vs[1] != z.shape[0] or ss != (vs[0],):
        raise InputError(f"{where}: expected vectors (k, {z.shape[0]}) and strengths (k,), got {vs} and {ss}")
    dt = _float_dtype(z, vectors)
    z, vectors, strengths = jnp.asarray(z, dt), jnp.asarray(vectors, dt), jnp.asarray(strengths, dt)
    if orthogonalize:
        vectors = gram_schmidt(vectors)
    return z + strengths @ vectors
