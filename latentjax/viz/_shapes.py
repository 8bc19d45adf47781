"""Shape latent spaces: the map of shape codes, rendered shapes, and the path-through-codes GIF."""

from __future__ import annotations

import os
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: E402

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def _scatter(ax, xy, labels, class_names):
    xy, labels = np.asarray(xy), np.asarray(labels)
    for c in np.unique(labels):
        name = class_names[c] if class_names is not None else str(c)
        ax.scatter(*xy[labels == c].T, s=12, alpha=0.7, color=_COLORS[int(c) % len(_COLORS)], label=name)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="best", fontsize=8, markerscale=1.5)
    return ax


def shape_code_map(
    xy, labels, path: str | os.PathLike, *, class_names=None, path_xy=None, title: str = "shape codes"
) -> pathlib.Path:
    """2-D map of shape codes coloured by class, optionally with a path drawn through it.

    Args:
        xy: ``(n, 2)`` embedded codes (t-SNE or PCA).
        labels: ``(n,)`` int class labels.
        path: output image file.
        class_names: names indexed by label.
        path_xy: optional ``(t, 2)`` path in the same map.
        title: axes title.

    Returns:
        The path written.
    """
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    _scatter(ax, xy, labels, class_names)
    if path_xy is not None:
        ax.plot(*np.asarray(path_xy).T, "k-", lw=1.5)
    ax.set_title(title)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def shape_strip(images, path: str | os.PathLike, *, titles=None, rows: int = 1) -> pathlib.Path:
    """Rendered shapes ``(n, h, w, 3)`` in a grid with optional titles."""
    images = np.asarray(images)
    cols = int(np.ceil(len(images) / rows))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.7 * rows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < len(images):
            ax.imshow(np.clip(images[i], 0, 1))
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def shape_path_gif(
    frames,
    xy,
    labels,
    path_xy,
    path: str | os.PathLike,
    *,
    class_names=None,
    fps: int = 8,
    title: str = "shape codes",
) -> pathlib.Path:
    """GIF: the code map with a point moving along a path, beside the shape rendered there.

    Args:
        frames: ``(t, h, w, 3)`` renderings along the path.
        xy: ``(n, 2)`` embedded training codes.
        labels: ``(n,)`` class labels.
        path_xy: ``(t, 2)`` positions of the path in the map.
        path: output ``.gif`` file.
        class_names: names indexed by label.
        fps: frames per second.
        title: map title.

    Returns:
        The path written.
    """
    frames, path_xy = np.clip(np.asarray(frames), 0, 1), np.asarray(path_xy)
    fig, (ax_map, ax_img) = plt.subplots(1, 2, figsize=(7.5, 3.6))
    _scatter(ax_map, xy, labels, class_names)
    ax_map.plot(*path_xy.T, "k-", lw=1, alpha=0.6)
    (dot,) = ax_map.plot(*path_xy[0], "ko", ms=9, mfc="yellow")
    ax_map.set_title(title)
    ax_img.axis("off")
    im = ax_img.imshow(frames[0])
    fig.tight_layout()

    def update(i):
        dot.set_data([path_xy[i, 0]], [path_xy[i, 1]])
        im.set_data(frames[i])
        return dot, im

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FuncAnimation(fig, update, frames=len(frames), blit=True).save(path, writer=PillowWriter(fps=fps), dpi=80)
    plt.close(fig)
    return path
