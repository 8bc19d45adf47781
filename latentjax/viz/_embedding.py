"""2-D embeddings: a labelled scatter with image thumbnails, and side-by-side method panels."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.offsetbox import AnnotationBbox, OffsetImage  # noqa: E402

from latentjax.errors import LatentJaxError  # noqa: E402
from latentjax.viz._images import save_figure  # noqa: E402


class EmbeddingPlotError(LatentJaxError, ValueError):
    """Bad input to an embedding plot (shapes, lengths)."""


def spread_points(y, num: int) -> np.ndarray:
    """Indices of ``num`` well-separated points: greedy farthest-point sampling.

    Starts from the point nearest the centroid, then repeatedly takes the point farthest from
    all chosen ones (axes scaled to unit range first), so thumbnails do not pile up.

    Examples:
      >>> spread_points(np.array([[0.0, 0], [0.1, 0], [1, 1], [0, 1]]), 2).tolist()
      [1, 2]
    """
    y = np.asarray(y, np.float64)
    num = min(num, y.shape[0])
    if num <= 0:
        return np.zeros(0, np.int64)
    span = np.ptp(y, axis=0)
    z = (y - y.min(axis=0)) / np.where(span > 0, span, 1.0)
    chosen = [int(np.argmin(np.sum((z - z.mean(axis=0)) ** 2, axis=1)))]
    d = np.sum((z - z[chosen[0]]) ** 2, axis=1)
    for _ in range(num - 1):
        i = int(np.argmax(d))
        chosen.append(i)
        d = np.minimum(d, np.sum((z - z[i]) ** 2, axis=1))
    return np.asarray(chosen, np.int64)


def _thumb(image) -> np.ndarray:
    x = np.asarray(image)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else np.clip(x.astype(np.float32), 0.0, 1.0)
    return x[..., 0] if x.ndim == 3 and x.shape[-1] == 1 else x


def scatter(
    y,
    labels,
    *,
    label_names: Sequence[str] | None = None,
    images=None,
    num_thumbnails: int = 24,
    ax=None,
    title: str | None = None,
    point_size: float | None = None,
):
    """Scatter of a 2-D embedding coloured by label, with a legend and image thumbnails.

    Args:
      y: ``(n, 2)`` embedding.
      labels: ``(n,)`` integer labels.
      label_names: legend names of the labels (default: the label values).
      images: optional ``(n, h, w[, c])`` images; thumbnails of ``num_thumbnails`` well-spread
        points (:func:`spread_points`) are drawn over the scatter.
      num_thumbnails: how many thumbnails.
      ax: the Axes to draw on (default: a new figure).
      title: the Axes title.
      point_size: marker size (default: shrinks with n).

    Returns:
      The Axes.

    Examples:
      >>> ax = scatter(np.random.default_rng(0).normal(size=(50, 2)), np.arange(50) % 3)
      >>> len(ax.get_legend().get_texts())
      3
    """
    y = np.asarray(y, np.float64)
    labels = np.asarray(labels)
    if y.ndim != 2 or y.shape[1] != 2:
        raise EmbeddingPlotError(f"scatter: y must be (n, 2), got shape {y.shape}")
    if labels.shape != (y.shape[0],):
        raise EmbeddingPlotError(f"scatter: labels must have shape ({y.shape[0]},), got {labels.shape}")
    if images is not None and len(images) != y.shape[0]:
        raise EmbeddingPlotError(f"scatter: {len(images)} images for {y.shape[0]} points")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    size = point_size or float(np.clip(2000.0 / max(y.shape[0], 1), 1.0, 20.0))
    for i, c in enumerate(classes):
        m = labels == c
        name = str(label_names[int(c)]) if label_names is not None else str(c)
        ax.scatter(y[m, 0], y[m, 1], s=size, color=cmap(i % cmap.N), label=name, linewidths=0, alpha=0.8)
    if images is not None and num_thumbnails > 0:
        zoom = 0.7 * 28.0 / max(np.asarray(images[0]).shape[:2])
        for i in spread_points(y, num_thumbnails):
            box = OffsetImage(
                _thumb(images[i]), zoom=zoom, cmap="gray_r" if np.ndim(_thumb(images[i])) == 2 else None
            )
            colour = cmap(int(np.searchsorted(classes, labels[i])) % cmap.N)
            ax.add_artist(
                AnnotationBbox(
                    box,
                    (y[i, 0], y[i, 1]),
                    frameon=True,
                    pad=0.1,
                    bboxprops={"edgecolor": colour, "linewidth": 1.2},
                )
            )
    ax.legend(loc="best", fontsize=7, markerscale=max(1.0, 12.0 / size), framealpha=0.85)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def embedding_panels(
    embeddings: Mapping[str, np.ndarray],
    labels,
    path: str | os.PathLike,
    *,
    label_names: Sequence[str] | None = None,
    images=None,
    num_thumbnails: int = 16,
    titles: Mapping[str, str] | None = None,
) -> pathlib.Path:
    """Side-by-side scatters of several embeddings of the same points (e.g. PCA | t-SNE | UMAP).

    Args:
      embeddings: method name -> ``(n, 2)`` embedding, in panel order.
      labels: ``(n,)`` integer labels shared by all panels.
      path: image file to write.
      label_names: legend names of the labels.
      images: optional thumbnails (see :func:`scatter`).
      num_thumbnails: thumbnails per panel.
      titles: optional panel titles (default: the method names).

    Returns:
      The path written.

    Examples:
      >>> import tempfile, os
      >>> y = np.random.default_rng(0).normal(size=(40, 2))
      >>> embedding_panels({"a": y, "b": -y}, np.arange(40) % 2,
      ...                  os.path.join(tempfile.mkdtemp(), "p.png")).suffix
      '.png'
    """
    if not embeddings:
        raise EmbeddingPlotError("embedding_panels: no embeddings given")
    k = len(embeddings)
    fig, axes = plt.subplots(1, k, figsize=(5.2 * k, 5.2), squeeze=False)
    for ax, (name, y) in zip(axes[0], embeddings.items()):
        scatter(
            y,
            labels,
            label_names=label_names,
            images=images,
            num_thumbnails=num_thumbnails,
            ax=ax,
            title=(titles or {}).get(name, name),
        )
    fig.tight_layout()
    return save_figure(fig, path)
