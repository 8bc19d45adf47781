"""Small NumPy measures behind the demo's captions: chance level, R² of a map, distances to the data.

The numbers go into each section's table (and ``metrics.json``); ``_captions`` turns them into words.
"""

from __future__ import annotations

import numpy as np


def chance(labels: np.ndarray) -> float:
    """The accuracy of always guessing the most frequent class.

    Examples:
        >>> chance(np.array([0, 0, 1, 2]))
        0.5
    """
    counts = np.unique(np.asarray(labels), return_counts=True)[1]
    return float(counts.max() / counts.sum())


def linear_r2(y: np.ndarray, values: np.ndarray) -> float:
    """R² of ``values`` fitted by least squares as an affine function of the columns of ``y``.

    Args:
        y: ``(n, d)`` coordinates (e.g. a 2-D map).
        values: ``(n,)`` a continuous factor.

    Returns:
        ``1 - residual / total`` sum of squares (0 for a constant factor).

    Examples:
        >>> y = np.random.default_rng(0).normal(size=(100, 2))
        >>> round(linear_r2(y, 2 * y[:, 0] - y[:, 1] + 3), 6)
        1.0
    """
    y = np.asarray(y, np.float64)
    v = np.asarray(values, np.float64)
    a = np.concatenate([y, np.ones((len(y), 1))], axis=1)
    coef = np.linalg.lstsq(a, v, rcond=None)[0]
    total = float(np.sum((v - v.mean()) ** 2))
    return 0.0 if total == 0 else float(1.0 - np.sum((v - a @ coef) ** 2) / total)


def _flat(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    x = x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
    return x.reshape(len(x), -1)


def nearest_distance(x: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Root-mean-square pixel distance from each image of ``x`` to its nearest image in ``reference``.

    Args:
        x: ``(m, ...)`` images, floats in [0, 1] or uint8.
        reference: ``(n, ...)`` images of the same shape.

    Returns:
        ``(distances (m,), index of the nearest (m,))``.

    Examples:
        >>> d, i = nearest_distance(np.array([[0.0, 1.0]]), np.array([[0.0, 0.0], [0.0, 0.9]]))
        >>> round(float(d[0]), 4), int(i[0])
        (0.0707, 1)
    """
    a, b = _flat(x), _flat(reference)
    d2 = np.sum(a * a, 1)[:, None] - 2 * a @ b.T + np.sum(b * b, 1)[None, :]
    idx = np.argmin(d2, axis=1)
    d = np.sqrt(np.maximum(d2[np.arange(len(a)), idx], 0.0) / a.shape[1])
    return d, idx


def off_data_excess(frames: np.ndarray, reference: np.ndarray, *, spacing: float) -> float:
    """How much farther from the data a path's farthest frame is than its endpoints, in units of ``spacing``.

    ``(max over frames - max over the two endpoints)`` of the nearest-image distance
    (`nearest_distance`), divided by ``spacing`` (the demo passes `data_spacing`): 0 when no frame
    is farther from the data than its endpoints, at most 1 when none is farther by more than the
    data's own spacing.

    Args:
        frames: ``(m, ...)`` decoded frames along a path, endpoints first and last.
        reference: ``(n, ...)`` data images (the demo: its training images).
        spacing: the distance unit, positive.

    Returns:
        The excess, at least 0.

    Examples:
        >>> ref = np.array([[0.0, 0.0], [1.0, 1.0]])
        >>> round(off_data_excess(np.array([[0.0, 0.1], [0.5, 0.5], [1.0, 0.9]]), ref, spacing=0.5), 4)
        0.8586
    """
    d, _ = nearest_distance(frames, reference)
    return float((d.max() - max(float(d[0]), float(d[-1]))) / spacing)


def data_spacing(images: np.ndarray, reference: np.ndarray) -> float:
    """The median distance from real images (unseen, e.g. test images) to their nearest ``reference`` image.

    How far the data's own samples lie from each other: a decoded image within it of the data is
    as close to the data as an unseen real image typically is.

    Args:
        images: ``(m, ...)`` real images not in ``reference``.
        reference: ``(n, ...)`` data images (e.g. the training images).

    Returns:
        The median RMS pixel distance.

    Examples:
        >>> data_spacing(np.array([[0.1, 0.0], [0.9, 1.0], [0.0, 0.4]]), np.array([[0.0, 0.0], [1.0, 1.0]]))
        0.0707...
    """
    return float(np.median(nearest_distance(images, reference)[0]))
