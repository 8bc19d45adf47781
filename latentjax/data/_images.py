"""The one image validator: every entry point that takes images checks them here."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from latentjax.errors import DataError, InputError

_DTYPES = (None, "uint8", "float")


def validate_images(
    x: ArrayLike,
    *,
    what: str = "images",
    dtype: str | None = None,
    image_shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Checks a batch of images: ``(n, h, w, c)`` with c <= 4, uint8 or floats in [0, 1].

    Args:
        x: the images (numpy or JAX array).
        what: how to name them in the error message (an argument or a file name).
        dtype: ``None`` (uint8 or float), ``"uint8"`` (only uint8, e.g. a trainer's input) or
            ``"float"`` (only floats in [0, 1], e.g. a model's input, where uint8 0..255 would be
            read as values 255 times too large).
        image_shape: the ``(h, w, c)`` every image must have (e.g. a model's), or None.

    Returns:
        ``x`` as a numpy array (not copied when it already is one).

    Raises:
        InputError: an unknown ``dtype``.
        DataError: wrong rank, empty, channels first, a dtype other than asked, NaN/inf or values
            outside [0, 1], or another image shape than ``image_shape``.

    Examples:
        >>> validate_images(np.zeros((2, 28, 28, 1), np.uint8)).shape
        (2, 28, 28, 1)
        >>> validate_images(np.zeros((2, 28, 28, 1), np.uint8), dtype="float")
        Traceback (most recent call last):
        ...
        latentjax.errors.DataError: images must be float in [0, 1], got dtype uint8 (divide ...)
    """
    if dtype not in _DTYPES:
        raise InputError(f"data.validate_images: dtype must be one of {_DTYPES}, got {dtype!r}")
    x = np.asarray(x)
    if x.ndim != 4:
        raise DataError(f"{what} must have shape (n, height, width, channels), got shape {x.shape}")
    if min(x.shape) == 0:
        raise DataError(f"{what} are empty: shape {x.shape}")
    if x.shape[-1] > 4:
        raise DataError(
            f"{what} have {x.shape[-1]} channels (shape {x.shape}); expected "
            "channels last, (n, height, width, 1 to 4)"
        )
    if image_shape is not None and tuple(x.shape[1:]) != tuple(image_shape):
        raise DataError(f"{what} have shape {tuple(x.shape[1:])} but {tuple(image_shape)} is expected")
    if x.dtype == np.uint8:
        if dtype == "float":
            raise DataError(f"{what} must be float in [0, 1], got dtype uint8 (divide uint8 images by 255)")
        return x
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{what} must be uint8 or float in [0, 1], got dtype {x.dtype}")
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise DataError(
            f"{what} contain {np.count_nonzero(~finite)} NaN/inf values "
            f"(first at index {tuple(int(i) for i in bad)})"
        )
    if dtype == "uint8":
        raise DataError(f"{what} must be uint8 in [0, 255], got {x.dtype}")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise DataError(f"{what} must lie in [0, 1], got values in [{lo:g}, {hi:g}]")
    return x
