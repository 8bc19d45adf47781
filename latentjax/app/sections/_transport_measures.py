"""Stripes in transported images, measured: the ripple inside a shape.

The OT rows of the transport figure show vertical stripes (sprites) and a checkerboard (Fashion-MNIST
displacement frames). `ripple` puts a number on them, so the caption can say how strong they are
next to the inputs'.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from latentjax import _checks


def ripple(image, *, axis: int) -> float:
    """Mean ``|second difference|`` along ``axis`` inside the shape, over its mean intensity.

    Inside: pixels above a quarter of the maximum whose 3x3 neighbourhood is too (edges excluded).
    A flat shape scores 0; stripes across ``axis`` (vertical stripes for ``axis=1``) score high.

    Args:
        image: ``(h, w)`` non-negative intensities.
        axis: 0 (down the rows) or 1 (along the columns).

    Returns:
        The ripple, or nan when the shape has no inside.

    Examples:
        >>> flat = np.zeros((8, 8)); flat[2:6, 2:6] = 1.0
        >>> comb = flat.copy(); comb[2:6, 3] = 0.5
        >>> ripple(flat, axis=1), ripple(comb, axis=1), ripple(comb, axis=0)
        (0.0, 1.0, 0.0)
    """
    im = _checks.array(image, "image", where="sections._transport_measures.ripple", ndim=2)
    im = np.asarray(im, np.float64)
    im = im / max(im.max(), 1e-300)
    inside = ndimage.binary_erosion(im > 0.25, np.ones((3, 3)))
    d2 = np.abs(np.diff(im, 2, axis=axis))
    d2 = np.pad(d2, [(1, 1) if a == axis else (0, 0) for a in (0, 1)])
    return float(d2[inside].mean() / im[inside].mean()) if inside.any() else float("nan")


def row_ripple(frames) -> float:
    """The largest of `ripple` along both axes, averaged over the interior frames of a path.

    Args:
        frames: ``(t, h, w)`` frames, endpoints included (``t >= 3``).

    Returns:
        The mean over frames ``1 .. t-2`` of ``max(ripple(axis=0), ripple(axis=1))``.

    Examples:
        >>> flat = np.zeros((3, 8, 8)); flat[:, 2:6, 2:6] = 1.0
        >>> row_ripple(flat)
        0.0
    """
    frames = np.asarray(frames)
    return float(np.nanmean([max(ripple(f, axis=0), ripple(f, axis=1)) for f in frames[1:-1]]))
