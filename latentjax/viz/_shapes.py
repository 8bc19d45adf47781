"""Shape latent spaces: the map of shape codes, rendered shapes, and the path-through-codes GIF."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: E402

from latentjax.viz._embedding import scatter  # noqa: E402
from latentjax.viz._images import save_figure  # noqa: E402

# The codes of a few dozen shapes: bigger points than scatter's default for thousands of images.
_POINT_SIZE = 12.0


def shape_code_map(
    xy,
    labels,
    path: str | os.PathLike,
    *,
    label_names: Sequence[str] | None = None,
    path_xy=None,
    title: str = "shape codes",
) -> pathlib.Path:
    """2-D map of shape codes coloured by label, optionally with a path drawn through it.

    Args:
        xy: ``(n, 2)`` embedded codes (t-SNE or PCA).
        labels: ``(n,)`` int labels.
        path: output image file.
        label_names: legend names indexed by label.
        path_xy: optional ``(t, 2)`` path in the same map.
        title: axes title.

    Returns:
        The path written.

    Examples:
        >>> import tempfile
        >>> xy = np.random.default_rng(0).normal(size=(12, 2))
        >>> shape_code_map(xy, np.arange(12) % 3, pathlib.Path(tempfile.mkdtemp()) / "map.png",
        ...                label_names=("chair", "table", "sofa"), path_xy=xy[:3]).suffix
        '.png'
    """
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    scatter(xy, labels, label_names=label_names, ax=ax, title=title, point_size=_POINT_SIZE)
    if path_xy is not None:
        ax.plot(*np.asarray(path_xy).T, "k-", lw=1.5)
    return save_figure(fig, path, dpi=100)


def shape_strip(
    images, path: str | os.PathLike, *, titles: Sequence[str] | None = None, rows: int = 1
) -> pathlib.Path:
    """Rendered shapes in a grid with optional titles.

    Args:
        images: ``(n, h, w, 3)`` renderings in [0, 1].
        path: output image file.
        titles: optional ``n`` titles.
        rows: grid rows (columns follow).

    Returns:
        The path written.

    Examples:
        >>> import tempfile
        >>> shape_strip(np.ones((4, 8, 8, 3)), pathlib.Path(tempfile.mkdtemp()) / "s.png", rows=2).suffix
        '.png'
    """
    images = np.asarray(images)
    cols = int(np.ceil(len(images) / rows))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.7 * rows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < len(images):
            ax.imshow(np.clip(images[i], 0, 1))
            if titles is not None:
                ax.set_title(titles[i], fontsize=10)
    return save_figure(fig, path, dpi=100)


def shape_path_gif(
    frames,
    xy,
    labels,
    path: str | os.PathLike,
    *,
    path_xy,
    label_names: Sequence[str] | None = None,
    fps: int = 8,
    title: str = "shape codes",
    frame_titles: Sequence[str] | None = None,
) -> pathlib.Path:
    """GIF: the code map with a point moving along a path, beside the shape rendered there.

    Args:
        frames: ``(t, h, w, 3)`` renderings along the path.
        xy: ``(n, 2)`` embedded training codes.
        labels: ``(n,)`` int labels.
        path: output ``.gif`` file.
        path_xy: ``(t, 2)`` positions of the path in the map, one per frame.
        label_names: legend names indexed by label.
        fps: frames per second.
        title: map title.
        frame_titles: optional title of each rendering (e.g. its nearest training shape).

    Returns:
        The path written.

    Examples:
        >>> import tempfile
        >>> xy = np.random.default_rng(0).normal(size=(6, 2))
        >>> shape_path_gif(np.ones((3, 8, 8, 3)), xy, np.arange(6) % 3,
        ...                pathlib.Path(tempfile.mkdtemp()) / "p.gif", path_xy=xy[:3]).suffix
        '.gif'
    """
    frames, path_xy = np.clip(np.asarray(frames), 0, 1), np.asarray(path_xy)
    fig, (ax_map, ax_img) = plt.subplots(1, 2, figsize=(7.5, 3.6))
    scatter(xy, labels, label_names=label_names, ax=ax_map, title=title, point_size=_POINT_SIZE)
    ax_map.plot(*path_xy.T, "k-", lw=1, alpha=0.6)
    (dot,) = ax_map.plot(*path_xy[0], "ko", ms=9, mfc="yellow")
    ax_img.axis("off")
    im = ax_img.imshow(frames[0])
    head = ax_img.set_title(frame_titles[0] if frame_titles is not None else "", fontsize=10)
    fig.tight_layout()

    def update(i):
        dot.set_data([path_xy[i, 0]], [path_xy[i, 1]])
        im.set_data(frames[i])
        if frame_titles is not None:
            head.set_text(frame_titles[i])
        return dot, im, head

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FuncAnimation(fig, update, frames=len(frames), blit=frame_titles is None).save(
        path, writer=PillowWriter(fps=fps), dpi=100
    )
    plt.close(fig)
    return path
