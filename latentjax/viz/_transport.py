"""Figures for optimal transport: the contrast of interpolation methods and the barycenter square."""

import os
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from latentjax.errors import InputError
from latentjax.viz._images import save_figure


def _gray(x, what: str) -> np.ndarray:
    """``(m, h, w)`` floats from ``(m, h, w[, 1])``, each image scaled to max 1.

    OT outputs are distributions (or masses) whose peak height depends on the spread, not images in
    [0, 1], so only shapes are comparable; hence no `data.validate_images` here, only the shape.
    """
    x = np.asarray(x, np.float32)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or min(x.shape) == 0:
        raise InputError(f"{what} must be (m, h, w) or (m, h, w, 1) frames, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{what} contain NaN/inf values")
    peak = x.reshape(x.shape[0], -1).max(axis=1)
    return x / np.where(peak > 0, peak, 1.0)[:, None, None]


def transport_contrast(
    rows: dict,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    col_labels=None,
    axis_labels: tuple[str, str] | None = None,
) -> pathlib.Path:
    """One row per interpolation method (name -> ``(m, h, w[, 1])`` frames), one column per step.

    Args:
        rows: ordered mapping from a row label to its frames; all rows have the same frame shape.
            Each frame is shown scaled to its maximum (OT frames are distributions).
        path: where to write the PNG.
        title: optional figure title.
        col_labels: optional labels under the columns (e.g. ``t`` values).
        axis_labels: optional names of the horizontal and vertical directions.

    Returns:
        The path written.

    Raises:
        InputError: frames that are not ``(m, h, w[, 1])`` or not finite.

    Examples:
        >>> import tempfile
        >>> p = transport_contrast({"pixel": np.zeros((3, 8, 8))}, pathlib.Path(tempfile.mkdtemp()) / "c.png")
        >>> p.exists()
        True
    """
    names = list(rows)
    frames = [_gray(rows[k], f"viz.transport_contrast: rows[{k!r}]") for k in names]
    cols = max(f.shape[0] for f in frames)
    h, w = frames[0].shape[1:]
    gap = max(1, h // 14)
    canvas = np.ones((len(names) * (h + gap) - gap, cols * (w + gap) - gap), np.float32)
    for i, f in enumerate(frames):
        for j in range(f.shape[0]):
            canvas[i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = f[j]
    fig, ax = plt.subplots(figsize=(0.8 * cols + 1.6, 0.8 * len(names) + 0.6))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([] if col_labels is None else [j * (w + gap) + w / 2 for j in range(cols)])
    if col_labels is not None:
        ax.set_xticklabels([str(c) for c in col_labels], fontsize=9)
    ax.set_yticks([i * (h + gap) + h / 2 for i in range(len(names))])
    ax.set_yticklabels(names, fontsize=9)
    ax.tick_params(length=2)
    if axis_labels is not None:
        ax.set_xlabel(axis_labels[0], fontsize=10)
        ax.set_ylabel(axis_labels[1], fontsize=10)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def barycenter_square(
    images, size: int, path: str | os.PathLike, *, title: str | None = None
) -> pathlib.Path:
    """The ``size x size`` grid of 4-image barycenters (row-major, corners are the inputs).

    Rows and columns are labelled by their bilinear weights (``transport.square_weights``): row
    ``r`` gives the bottom corners weight ``r``, column ``c`` gives the right corners weight ``c``.

    Args:
        images: ``(size * size, h, w[, 1])`` barycenters, e.g. the ``image`` of
            ``transport.wasserstein_interpolate(corners, transport.square_weights(size))``.
        size: side of the square.
        path: where to write the PNG.
        title: optional figure title.

    Returns:
        The path written.

    Raises:
        InputError: not ``size * size`` finite frames ``(h, w[, 1])``.

    Examples:
        >>> import tempfile
        >>> barycenter_square(np.zeros((4, 8, 8)), 2, pathlib.Path(tempfile.mkdtemp()) / "sq.png").name
        'sq.png'
    """
    x = _gray(images, "viz.barycenter_square: images")
    if x.shape[0] != size * size:
        raise InputError(f"viz.barycenter_square: {x.shape[0]} images for a {size}x{size} square")
    s = np.linspace(0.0, 1.0, size)
    return transport_contrast(
        {f"{r:.2f}": x[i * size : (i + 1) * size] for i, r in enumerate(s)},
        path,
        title=title,
        col_labels=[f"{c:.2f}" for c in s],
        axis_labels=("weight of the right corners", "weight of the bottom corners"),
    )
