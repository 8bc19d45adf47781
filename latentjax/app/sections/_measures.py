"""Small NumPy measures behind the demo's captions: chance level, R² of a map, a pixel kNN classifier.

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


def knn_classify(x: np.ndarray, images: np.ndarray, labels: np.ndarray, *, k: int = 5) -> np.ndarray:
    """Classes of ``x`` by majority vote of their ``k`` nearest ``images`` in pixel space (ties: smallest).

    Args:
        x: ``(m, ...)`` images to classify.
        images: ``(n, ...)`` labelled images.
        labels: ``(n,)`` their integer classes.
        k: voters.

    Returns:
        ``(m,)`` predicted classes.

    Examples:
        >>> imgs = np.array([[0.0], [0.1], [1.0], [0.9]])
        >>> knn_classify(np.array([[0.05], [0.95]]), imgs, np.array([0, 0, 1, 1]), k=2).tolist()
        [0, 1]
    """
    a, b = _flat(x), _flat(images)
    d2 = np.sum(a * a, 1)[:, None] - 2 * a @ b.T + np.sum(b * b, 1)[None, :]
    near = np.argsort(d2, axis=1, kind="stable")[:, :k]
    votes = np.asarray(labels)[near]
    counts = np.stack([np.sum(votes == c, axis=1) for c in range(int(np.max(labels)) + 1)], axis=1)
    return np.argmax(counts, axis=1)


def off_data_ratio(frames: np.ndarray, reference: np.ndarray) -> float:
    """How far a path's frames stray from the data, in units of its endpoints' distance to it.

    The largest nearest-image distance (`nearest_distance`) over all frames divided by the larger
    of the two endpoints': exactly 1 when no frame is farther from the data than its endpoints.

    Args:
        frames: ``(m, ...)`` decoded frames along a path, endpoints first and last.
        reference: ``(n, ...)`` data images (e.g. the test images).

    Returns:
        The ratio, at least 1.

    Examples:
        >>> ref = np.array([[0.0, 0.0], [1.0, 1.0]])
        >>> round(off_data_ratio(np.array([[0.0, 0.1], [0.5, 0.5], [1.0, 0.9]]), ref), 3)  # 0.5 / 0.0707
        7.071
    """
    d, _ = nearest_distance(frames, reference)
    ends = max(float(d[0]), float(d[-1]), 1e-12)
    return float(d.max() / ends)
