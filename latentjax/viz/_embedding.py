"""2-D embeddings: the one labelled scatter (by class or by a factor, with thumbnails), and panels."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.offsetbox import AnnotationBbox, OffsetImage  # noqa: E402
from numpy.typing import ArrayLike  # noqa: E402

from latentjax import data  # noqa: E402
from latentjax.errors import InputError  # noqa: E402
from latentjax.viz._images import _as_float, save_figure  # noqa: E402


def spread_points(y: ArrayLike, *, num_points: int) -> np.ndarray:
    """Indices of ``num_points`` well-separated points: greedy farthest-point sampling.

    Starts from the point nearest the centroid, then repeatedly takes the point farthest from
    all chosen ones (axes scaled to unit range first), so thumbnails do not pile up.

    Args:
        y: ``(n, d)`` points.
        num_points: how many to choose (at most ``n``).

    Returns:
        int64 ``(min(num_points, n),)`` indices into ``y``.

    Examples:
        >>> spread_points(np.array([[0.0, 0], [0.1, 0], [1, 1], [0, 1]]), num_points=2).tolist()
        [1, 2]
    """
    y = np.asarray(y, np.float64)
    num_points = min(num_points, y.shape[0])
    if num_points <= 0:
        return np.zeros(0, np.int64)
    span = np.ptp(y, axis=0)
    z = (y - y.min(axis=0)) / np.where(span > 0, span, 1.0)
    chosen = [int(np.argmin(np.sum((z - z.mean(axis=0)) ** 2, axis=1)))]
    d = np.sum((z - z[chosen[0]]) ** 2, axis=1)
    for _ in range(num_points - 1):
        i = int(np.argmax(d))
        chosen.append(i)
        d = np.minimum(d, np.sum((z - z[i]) ** 2, axis=1))
    return np.asarray(chosen, np.int64)


def scatter(
    y: ArrayLike,
    labels: ArrayLike,
    *,
    label_names: Sequence[str] | None = None,
    images: ArrayLike | None = None,
    num_thumbnails: int = 24,
    ax=None,
    title: str | None = None,
    point_size: float | None = None,
    axis_labels: tuple[str, str] | None = None,
    continuous: bool | None = None,
    colorbar_label: str | None = None,
):
    """Scatter of a 2-D embedding coloured by class (legend) or by a continuous factor (colour bar).

    Args:
        y: ``(n, 2)`` embedding.
        labels: ``(n,)`` integer class labels, or float values of a continuous factor.
        label_names: legend names of the labels (default: the label values).
        images: optional ``(n, h, w[, c])`` images (uint8 or floats in [0, 1]); thumbnails of
            ``num_thumbnails`` well-spread points (`spread_points`) are drawn over the scatter.
        num_thumbnails: how many thumbnails.
        ax: the Axes to draw on (default: a new figure).
        title: the Axes title.
        point_size: marker size (default: shrinks with n).
        axis_labels: names of the two axes (e.g. ``("PC 1", "PC 2")``); with them the axes keep
            their ticks, without them the plot shows neither.
        continuous: colour by value with a colour bar instead of by class; default: when
            ``labels`` are floats with more than 20 distinct values.
        colorbar_label: the colour bar's label (continuous colouring).

    The legend sits outside the axes, right of the data, its markers drawn at a readable size.

    Returns:
        The Axes; write it with ``viz.save_figure(ax.figure, path)``.

    Raises:
        InputError: ``y`` is not ``(n, 2)``, or ``labels``/``images`` do not have ``n`` rows.

    Examples:
        >>> ax = scatter(np.random.default_rng(0).normal(size=(50, 2)), np.arange(50) % 3)
        >>> len(ax.get_legend().get_texts())
        3
        >>> plt.close(ax.figure)
    """
    y = np.asarray(y, np.float64)
    labels = np.asarray(labels)
    if y.ndim != 2 or y.shape[1] != 2:
        raise InputError(f"viz.scatter: y must be (n, 2), got shape {y.shape}")
    if labels.shape != (y.shape[0],):
        raise InputError(f"viz.scatter: labels must have shape ({y.shape[0]},), got {labels.shape}")
    if images is not None:
        images = np.asarray(images)
        if len(images) != y.shape[0]:
            raise InputError(f"viz.scatter: {len(images)} images for {y.shape[0]} points")
        images = data.validate_images(
            images[..., None] if images.ndim == 3 else images, what="viz.scatter: images"
        )
    if continuous is None:
        continuous = np.issubdtype(labels.dtype, np.floating) and len(np.unique(labels)) > 20
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    size = point_size or float(np.clip(6000.0 / max(y.shape[0], 1), 6.0, 30.0))
    if continuous:
        points = ax.scatter(y[:, 0], y[:, 1], c=labels, s=size, cmap="viridis", alpha=0.8, linewidths=0)
        bar = ax.figure.colorbar(points, ax=ax, fraction=0.046)
        if colorbar_label:
            bar.set_label(colorbar_label, fontsize=9)
        bar.ax.tick_params(labelsize=8)
        colours = points.to_rgba(labels)
    else:
        classes = np.unique(labels)
        cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        for i, c in enumerate(classes):
            m = labels == c
            name = (
                str(label_names[int(c)]) if label_names is not None and int(c) < len(label_names) else str(c)
            )
            ax.scatter(y[m, 0], y[m, 1], s=size, color=cmap(i % cmap.N), label=name, linewidths=0, alpha=0.8)
        colours = [cmap(int(np.searchsorted(classes, c)) % cmap.N) for c in labels]
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            borderaxespad=0.0,
            fontsize=9,
            markerscale=max(1.0, 40.0 / size) ** 0.5,
            frameon=False,
        )
    if images is not None and num_thumbnails > 0:
        zoom = 1.0 * 28.0 / max(images.shape[1:3])
        for i in spread_points(y, num_points=num_thumbnails):
            thumb = _as_float(images[i : i + 1])[0]
            thumb = thumb[..., 0] if thumb.shape[-1] == 1 else thumb
            box = OffsetImage(thumb, zoom=zoom, cmap="gray_r" if thumb.ndim == 2 else None)
            edge = {"edgecolor": colours[i], "linewidth": 1.2}
            ax.add_artist(AnnotationBbox(box, (y[i, 0], y[i, 1]), frameon=True, pad=0.1, bboxprops=edge))
    if axis_labels is None:
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.set_xlabel(axis_labels[0], fontsize=9)
        ax.set_ylabel(axis_labels[1], fontsize=9)
        ax.tick_params(labelsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def embedding_panels(
    embeddings: Mapping[str, ArrayLike],
    labels: ArrayLike,
    path: str | os.PathLike,
    *,
    label_names: Sequence[str] | None = None,
    images: ArrayLike | None = None,
    num_thumbnails: int = 16,
    titles: Mapping[str, str] | None = None,
    axis_labels: Mapping[str, tuple[str, str]] | None = None,
) -> pathlib.Path:
    """Side-by-side scatters of several embeddings of the same points (e.g. PCA | t-SNE | UMAP).

    Each panel keeps its tick values and names its axes (default ``"<method> 1"``, ``"<method> 2"``).

    Args:
        embeddings: method name -> ``(n, 2)`` embedding, in panel order.
        labels: ``(n,)`` integer labels shared by all panels.
        path: image file to write.
        label_names: legend names of the labels.
        images: optional thumbnails (see `scatter`).
        num_thumbnails: thumbnails per panel.
        titles: optional panel titles (default: the method names).
        axis_labels: optional method name -> names of its two axes (e.g. ``{"PCA": ("PC 1", "PC 2")}``).

    Returns:
        The path written.

    Raises:
        InputError: no embeddings, or one that `scatter` refuses.

    Examples:
        >>> import tempfile
        >>> y = np.random.default_rng(0).normal(size=(40, 2))
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "p.png"
        >>> embedding_panels({"a": y, "b": -y}, np.arange(40) % 2, out).suffix
        '.png'
    """
    if not embeddings:
        raise InputError("viz.embedding_panels: no embeddings given")
    k = len(embeddings)
    fig, axes = plt.subplots(1, k, figsize=(5.2 * k, 5.2), squeeze=False)
    for i, (ax, (name, y)) in enumerate(zip(axes[0], embeddings.items())):
        scatter(
            y,
            labels,
            label_names=label_names,
            images=images,
            num_thumbnails=num_thumbnails,
            ax=ax,
            title=(titles or {}).get(name, name),
            axis_labels=(axis_labels or {}).get(name, (f"{name} 1", f"{name} 2")),
        )
        if i < k - 1 and ax.get_legend() is not None:
            ax.get_legend().remove()  # one legend, right of the last panel
    fig.tight_layout()
    return save_figure(fig, path)
