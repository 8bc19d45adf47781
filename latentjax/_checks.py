"""The one argument validator for arrays, ints and labels (images: ``data.validate_images``).

Every public entry point that takes data calls these before it computes anything. The policy
(DEVELOPERS.md, "Validation"): static facts (rank, shape, dtype kind, Python ints) are checked
always, also under ``jit``; value facts (NaN/inf, label ranges) are checked when the argument is
concrete and skipped when it is traced, because a traced value cannot be inspected. Inside ``jit``
wrap the call with ``jax.experimental.checkify.checkify(f, errors=checkify.float_checks)`` to find
NaNs. Messages are one line: ``"<where>: <argument> <problem>"``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import jax
import numpy as np

from latentjax.errors import InputError


def is_traced(x) -> bool:
    """Whether ``x`` is a JAX tracer (inside ``jit``/``vmap``/``grad``), so its values are unknown.

    Examples:
        >>> seen = []
        >>> _ = jax.jit(lambda v: seen.append(is_traced(v)) or v)(np.zeros(2))
        >>> is_traced(np.zeros(2)), seen
        (False, [True])
    """
    return isinstance(x, jax.core.Tracer)


def finite(x, name: str, *, where: str):
    """Raises ``InputError`` when a concrete ``x`` holds NaN or inf; returns ``x`` unchanged.

    Examples:
        >>> finite(np.array([0.0, np.nan]), "z", where="move.lerp")
        Traceback (most recent call last):
        ...
        latentjax.errors.InputError: move.lerp: z contains 1 NaN/inf value (first at index (1,))
    """
    if is_traced(x) or x is None:
        return x
    a = np.asarray(x)
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating)):
        return x
    bad = ~np.isfinite(a)
    if bad.any():
        n = int(np.count_nonzero(bad))
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"{where}: {name} contains {n} NaN/inf value{'s' if n > 1 else ''} (first at index {first})"
        )
    return x


def array(
    x,
    name: str,
    *,
    where: str,
    ndim: int | Sequence[int] | None = None,
    kind: str | None = "real",
    check_finite: bool = True,
):
    """Checks rank, dtype kind and (when concrete) finiteness; returns ``x`` unchanged.

    Args:
        x: a numpy or JAX array (or anything ``np.asarray`` takes when concrete).
        name: the Python argument's name, for the message.
        where: the public function, e.g. ``"look.neighbors.knn"``.
        ndim: the rank(s) allowed, or None for any.
        kind: ``"real"`` (bool, ints or floats), ``"float"`` (floats only) or None (any).
        check_finite: also reject NaN/inf in a concrete ``x``.

    Raises:
        InputError: a wrong rank, a non-numeric dtype, or NaN/inf.

    Examples:
        >>> array(np.zeros((3, 2)), "x", where="look.pca.fit", ndim=2).shape
        (3, 2)
        >>> array(np.zeros(3), "x", where="look.pca.fit", ndim=2)
        Traceback (most recent call last):
        ...
        latentjax.errors.InputError: look.pca.fit: x must have 2 dimensions, got shape (3,)
    """
    if x is None:
        raise InputError(f"{where}: {name} is None; an array is expected")
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is None or dtype is None:
        try:
            a = np.asarray(x)
        except ValueError as e:  # ragged nested lists
            raise InputError(
                f"{where}: {name} is not a rectangular array ({str(e).splitlines()[0]})"
            ) from None
        shape, dtype = a.shape, a.dtype
        x = a
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if len(shape) not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise InputError(f"{where}: {name} must have {want} dimensions, got shape {tuple(shape)}")
    dt = np.dtype(dtype)
    if kind == "float" and not np.issubdtype(dt, np.floating):
        raise InputError(f"{where}: {name} must be a float array, got dtype {dt}")
    real = (np.issubdtype(dt, np.number) and not np.issubdtype(dt, np.complexfloating)) or dt == np.bool_
    if kind == "real" and not real:
        raise InputError(f"{where}: {name} must be a real numeric array, got dtype {dt}")
    if check_finite:
        finite(x, name, where=where)
    return x


def same_shape(a, b, names: tuple[str, str], *, where: str) -> None:
    """Raises ``InputError`` unless ``a`` and ``b`` have the same shape (no broadcasting).

    Examples:
        >>> same_shape(np.zeros(3), np.zeros(1), ("z0", "z1"), where="move.lerp")
        Traceback (most recent call last):
        ...
        latentjax.errors.InputError: move.lerp: z0 has shape (3,) but z1 has shape (1,); they must match
    """
    sa, sb = tuple(np.shape(a)), tuple(np.shape(b))
    if sa != sb:
        raise InputError(f"{where}: {names[0]} has shape {sa} but {names[1]} has shape {sb}; they must match")


def index(v, name: str, *, where: str, minimum: int | None = None) -> int:
    """A Python int from ``v`` (Python, numpy or concrete 0-d JAX integer); ``bool`` and floats refused.

    Raises:
        InputError: ``v`` is not an integer, is traced (it must be static under ``jit``), or is
            below ``minimum``.

    Examples:
        >>> index(np.int64(3), "dim", where="move.traverse")
        3
        >>> index(2.0, "dim", where="move.traverse")
        Traceback (most recent call last):
        ...
        latentjax.errors.InputError: move.traverse: dim must be an integer, got 2.0 (float)
    """
    if is_traced(v):
        raise InputError(
            f"{where}: {name} must be a concrete integer, got a traced value "
            "(mark it static under jit, or vmap over the values it selects)"
        )
    if isinstance(v, (bool, np.bool_)):
        raise InputError(f"{where}: {name} must be an integer, got {v!r} (bool)")
    if hasattr(v, "shape") and getattr(v, "ndim", 0) == 0 and hasattr(v, "dtype"):
        if np.issubdtype(np.dtype(v.dtype), np.integer):
            v = int(np.asarray(v))
    try:
        i = operator.index(v)
    except TypeError:
        raise InputError(f"{where}: {name} must be an integer, got {v!r} ({type(v).__name__})") from None
    if minimum is not None and i < minimum:
        raise InputError(f"{where}: {name} must be >= {minimum}, got {i}")
    return i


def labels(
    y, name: str = "labels", *, where: str, length: int | None = None, num_classes: int | None = None
) -> np.ndarray:
    """Labels as an int64 numpy vector: 1-D, non-negative integers (integral floats refused too).

    Args:
        y: the labels.
        name: the argument's name.
        where: the public function.
        length: the number of examples they must match, or None.
        num_classes: labels must be below this, or None.

    Raises:
        InputError: traced labels, another rank or length, a non-integer dtype, or a negative or
            too large label.

    Examples:
        >>> labels([0, 2, 1], where="look.metrics.knn_accuracy")
        array([0, 2, 1])
        >>> labels([0, -1], where="look.metrics.knn_accuracy")
        Traceback (most recent call last):
        ...
        latentjax.errors.InputError: look.metrics.knn_accuracy: labels must be non-negative ... at index 1
    """
    if is_traced(y):
        raise InputError(f"{where}: {name} must be concrete (numpy) labels, got a traced value")
    a = np.asarray(y)
    if a.ndim != 1:
        raise InputError(f"{where}: {name} must be a vector, got shape {a.shape}")
    if length is not None and a.shape[0] != length:
        raise InputError(f"{where}: {name} has {a.shape[0]} entries but the data has {length} examples")
    if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
        raise InputError(f"{where}: {name} must be non-negative integers, got dtype {a.dtype}")
    a = a.astype(np.int64)
    if a.size and a.min() < 0:
        i = int(np.argmin(a))
        raise InputError(f"{where}: {name} must be non-negative integers, got {a[i]} at index {i}")
    if num_classes is not None and a.size and a.max() >= num_classes:
        i = int(np.argmax(a))
        raise InputError(f"{where}: {name} must be below {num_classes}, got {a[i]} at index {i}")
    return a
