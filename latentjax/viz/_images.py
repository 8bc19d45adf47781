"""Image grids, decoded latent grids and latent scatter plots."""

from __future__ import annotations

import os
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 110) -> pathlib.Path:
    """Saves and closes a matplotlib figure, creating the folder."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def _as_float(images) -> np.ndarray:
    x = np.asarray(images)
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else np.clip(x.astype(np.float32), 0.0, 1.0)


def tile(images, *, rows: int | None = None, pad: int = 1) -> np.ndarray:
    """Tiles ``(n, h, w, c)`` images into one ``(H, W, c)`` array (white gutters)."""
    x = _as_float(images)
    n, h, w, c = x.shape
    rows = rows or int(np.ceil(np.sqrt(n)))
    cols = int(np.ceil(n / rows))
    out = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, c), np.float32)
    for i in range(n):
        r, q = divmod(i, cols)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + q * (w + pad) : pad + q * (w + pad) + w] = x[
            i
        ]
    return out


def _show(ax, img):
    if img.shape[-1] == 1:
        ax.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(img, interpolation="nearest")
    ax.set_axis_off()


def image_grid(
    images,
    path: str | os.PathLike,
    *,
    rows: int | None = None,
    title: str | None = None,
    row_labels: list[str] | None = None,
    scale: float = 0.35,
) -> pathlib.Path:
    """Writes a grid of images (uint8 or floats in [0, 1]) to ``path``.

    With ``rows`` and ``row_labels``, each row is labelled on the left (e.g. "input",
    "reconstruction").
    """
    x = _as_float(images)
    grid = tile(x, rows=rows)
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
    images,
    path: str | os.PathLike,
    *,
    extent: tuple[float, float] | None = None,
    axis_labels: tuple[str, str] = ("z1", "z2"),
    title: str | None = None,
) -> pathlib.Path:
    """Shows images decoded on a regular 2-D latent grid ``(rows, cols, h, w, c)``.

    Row 0 is the top of the figure, i.e. the largest value of the second coordinate.
    """
    x = _as_float(images)
    rows, cols = x.shape[:2]
    grid = tile(x.reshape((rows * cols,) + x.shape[2:]), rows=rows, pad=0)
    fig, ax = plt.subplots(figsize=(6, 6 * rows / cols))
    _show(ax, grid)
    ax.set_axis_off()
    if extent is not None:
        ax.set_title(
            f"{title + ': ' if title else ''}{axis_labels[0]} → right, {axis_labels[1]} ↑ up, "
            f"each in [{extent[0]:.2g}, {extent[1]:.2g}]",
            fontsize=9,
        )
    elif title:
        ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def latent_scatter(
    points,
    labels,
    path: str | os.PathLike,
    *,
    label_names=None,
    title: str | None = None,
    axis_labels: tuple[str, str] = ("PC 1", "PC 2"),
    continuous: bool | None = None,
) -> pathlib.Path:
    """A 2-D scatter of latents coloured by a class label (legend) or a continuous factor (colour bar)."""
    p = np.asarray(points)
    lab = np.asarray(labels)
    if continuous is None:
        continuous = np.issubdtype(lab.dtype, np.floating) and len(np.unique(lab)) > 20
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    if continuous:
        sc = ax.scatter(p[:, 0], p[:, 1], c=lab, s=4, cmap="viridis", alpha=0.8, linewidths=0)
        fig.colorbar(sc, ax=ax, fraction=0.046)
    else:
        classes = np.unique(lab)
        cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        for i, c in enumerate(classes):
            m = lab == c
            name = label_names[int(c)] if label_names is not None and int(c) < len(label_names) else str(c)
            ax.scatter(p[m, 0], p[m, 1], s=4, color=cmap(i % cmap.N), label=name, alpha=0.8, linewidths=0)
        ax.legend(markerscale=3, fontsize=8, loc="best", framealpha=0.8)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    if title:
        ax.set_title(title, fontsize=10)
    return save_figure(fig, path)
