"""Image grids and decoded latent grids; ``save_figure`` and the image checks every figure shares."""

from __future__ import annotations

import os
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from numpy.typing import ArrayLike  # noqa: E402

from latentjax import data  # noqa: E402


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 110) -> pathlib.Path:
    """Saves and closes a matplotlib figure, creating the folder.

    Args:
        fig: a matplotlib ``Figure``.
        path: the image file to write (its suffix picks the format).
        dpi: resolution.

    Returns:
        ``path`` as a ``pathlib.Path``.

    Examples:
        >>> import tempfile
        >>> fig, ax = plt.subplots()
        >>> save_figure(fig, pathlib.Path(tempfile.mkdtemp()) / "sub" / "f.png").name
        'f.png'
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def _as_float(images: ArrayLike, *, what: str = "images") -> np.ndarray:
    """Images ``(..., h, w, c)`` checked by ``data.validate_images``, as float32 in [0, 1]."""
    x = np.asarray(images)
    flat = x.reshape((-1,) + x.shape[-3:]) if x.ndim > 4 else x
    flat = data.validate_images(flat, what=what)
    out = flat.astype(np.float32) / 255.0 if flat.dtype == np.uint8 else flat.astype(np.float32)
    return out.reshape(x.shape)


def _tile(x: np.ndarray, *, rows: int | None = None, pad: int = 1) -> np.ndarray:
    """Tiles float images ``(n, h, w, c)`` into one ``(H, W, c)`` array with white gutters."""
    n, h, w, c = x.shape
    rows = rows or int(np.ceil(np.sqrt(n)))
    cols = int(np.ceil(n / rows))
    out = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, c), np.float32)
    for i in range(n):
        r, q = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        out[top : top + h, left : left + w] = x[i]
    return out


def _show(ax, img):
    if img.shape[-1] == 1:
        ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(img, interpolation="nearest")
    ax.set_axis_off()


def image_grid(
    images: ArrayLike,
    path: str | os.PathLike,
    *,
    rows: int | None = None,
    title: str | None = None,
    row_labels: list[str] | None = None,
    scale: float = 0.35,
) -> pathlib.Path:
    """Writes a grid of images to ``path``.

    Args:
        images: ``(n, h, w, c)``, uint8 or floats in [0, 1] (checked by ``data.validate_images``).
        path: the image file to write.
        rows: number of rows (default: about square).
        title: figure title.
        row_labels: a label left of each row (e.g. ``["input", "reconstruction"]``).
        scale: figure inches per 10 pixels.

    Returns:
        The path written.

    Examples:
        >>> import tempfile
        >>> x = np.zeros((6, 8, 8, 1), np.uint8)
        >>> image_grid(x, pathlib.Path(tempfile.mkdtemp()) / "g.png", rows=2).suffix
        '.png'
    """
    grid = _tile(_as_float(images, what="viz.image_grid: images"), rows=rows)
    h, w = grid.shape[:2]
    fig, ax = plt.subplots(figsize=(max(2.0, w * scale / 10), max(1.5, h * scale / 10)))
    _show(ax, grid)
    if row_labels:
        rows = rows or len(row_labels)
        cell = (h - 1) / rows
        for i, lab in enumerate(row_labels):
            ax.text(-2, (i + 0.5) * cell, lab, ha="right", va="center", fontsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def decoded_grid(
    images: ArrayLike,
    path: str | os.PathLike,
    *,
    extent: tuple[float, float] | None = None,
    axis_labels: tuple[str, str] = ("z1", "z2"),
    title: str | None = None,
) -> pathlib.Path:
    """Writes images decoded on a regular 2-D latent grid (``move.grid_2d``) as one picture.

    Args:
        images: ``(rows, cols, h, w, c)``, uint8 or floats in [0, 1]; row 0 is the top of the
            figure, i.e. the largest value of the second coordinate.
        path: the image file to write.
        extent: the coordinate range of both axes: tick values under each column and left of each
            row (none without it).
        axis_labels: names of the horizontal and vertical coordinates (with ``extent``).
        title: figure title.

    Returns:
        The path written.

    Examples:
        >>> import tempfile
        >>> x = np.random.default_rng(0).uniform(size=(3, 3, 8, 8, 1))
        >>> decoded_grid(x, pathlib.Path(tempfile.mkdtemp()) / "d.png", extent=(-2, 2)).suffix
        '.png'
    """
    x = _as_float(images, what="viz.decoded_grid: images")
    rows, cols, h, w = x.shape[:4]
    pad = max(1, h // 14)
    grid = _tile(x.reshape((rows * cols,) + x.shape[2:]), rows=rows, pad=pad)
    fig, ax = plt.subplots(figsize=(6.4, 6.4 * rows / cols))
    _show(ax, grid)
    ax.set_axis_on()
    for spine in ax.spines.values():
        spine.set_visible(False)
    centres_x = pad + np.arange(cols) * (w + pad) + (w - 1) / 2
    centres_y = pad + np.arange(rows) * (h + pad) + (h - 1) / 2
    if extent is not None:
        ax.set_xticks(centres_x, [f"{v:.2g}" for v in np.linspace(extent[0], extent[1], cols)], fontsize=8)
        ax.set_yticks(centres_y, [f"{v:.2g}" for v in np.linspace(extent[1], extent[0], rows)], fontsize=8)
        ax.set_xlabel(axis_labels[0], fontsize=9)
        ax.set_ylabel(axis_labels[1], fontsize=9)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.tick_params(length=2)
    if title:
        ax.set_title(title, fontsize=10)
    return save_figure(fig, path)
