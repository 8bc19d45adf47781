"""Figures for moving through a latent space: path strips, strength sweeps, traversals, GIFs."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import animation  # noqa: E402

from latentjax.errors import InputError  # noqa: E402
from latentjax.viz._images import _as_float, save_figure  # noqa: E402


def _labelled_grid(
    x: np.ndarray,
    path,
    *,
    row_labels=None,
    col_labels=None,
    title=None,
    row_titles=None,
    size: float = 0.8,
    col_name=None,
) -> pathlib.Path:
    # One tiled imshow plus text, not one Axes per cell: a 10x7 grid of Axes takes seconds to build.
    rows, cols, h, w, c = x.shape
    gap = max(1, h // 14)
    band = round(h * 0.45) if row_titles else 0
    cell_h = h + gap + band
    canvas = np.ones((rows * cell_h, cols * (w + gap) - gap, c), np.float32)
    for i in range(rows):
        for j in range(cols):
            top = i * cell_h + band
            canvas[top : top + h, j * (w + gap) : j * (w + gap) + w] = x[i, j]
    height = rows * size * cell_h / h
    fig, ax = plt.subplots(figsize=(cols * size * (w + gap) / w + (1.2 if row_labels else 0.3), height + 0.6))
    ax.imshow(
        canvas[..., 0] if c == 1 else canvas,
        cmap="gray" if c == 1 else None,
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    for i in range(rows):
        if row_labels is not None:
            ax.text(-gap, i * cell_h + band + h / 2, row_labels[i], ha="right", va="center", fontsize=8)
        if row_titles is not None:
            ax.text(0, i * cell_h + band * 0.9, row_titles[i], ha="left", va="bottom", fontsize=7)
    if col_labels is not None:
        for j in range(cols):
            ax.text(j * (w + gap) + w / 2, rows * cell_h, col_labels[j], ha="center", va="top", fontsize=7)
    if col_name:  # the columns' axis, under their labels
        lines = 1 + max((str(c).count("\n") for c in col_labels), default=-1) if col_labels is not None else 0
        ax.annotate(
            col_name,
            xy=(canvas.shape[1] / 2, rows * cell_h),
            xytext=(0, -9 * lines - 3),
            textcoords="offset points",
            annotation_clip=False,  # its anchor lies on the image's lower edge
            ha="center",
            va="top",
            fontsize=8,
        )
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def path_strips(
    strips: dict, path: str | os.PathLike, *, diagnostics: dict | None = None, title: str | None = None
) -> pathlib.Path:
    """One row of decoded frames per path (e.g. lerp, slerp, geodesic), titled with its diagnostics.

    The smoother path is then visible and measurable side by side.

    Args:
        strips: name -> ``(n, h, w, c)`` decoded frames (same ``n`` for every row), uint8 or float
            in [0, 1]; e.g. ``{k: p.decoded for k, p in move.compare_paths(...)._asdict().items()}``.
        path: the PNG to write.
        diagnostics: optional name -> `move.Diagnostics` (or any NamedTuple of scalars).
        title: figure title.

    Returns:
        The path written.

    Raises:
        DataError: frames that `data.validate_images` rejects.

    Examples:
        >>> import tempfile
        >>> strips = {"lerp": np.zeros((4, 8, 8, 1)), "slerp": np.ones((4, 8, 8, 1))}
        >>> path_strips(strips, pathlib.Path(tempfile.mkdtemp()) / "paths.png").name
        'paths.png'
    """
    names = list(strips)
    x = np.stack([_as_float(strips[k], what=f"viz.path_strips: strips[{k!r}]") for k in names])
    titles = None
    if diagnostics:
        titles = []
        for k in names:
            d = diagnostics.get(k)
            if d is None:
                titles.append(k)
                continue
            titles.append(
                f"{k}: latent length {float(d.latent_length):.2f}, decoded length "
                f"{float(d.decoded_length):.2f}, energy {float(d.decoded_energy):.2f}, "
                f"max step {float(d.max_step):.2f}"
            )
    return _labelled_grid(x, path, row_labels=None if titles else names, row_titles=titles, title=title)


def strength_sweep(
    images,
    strengths,
    path: str | os.PathLike,
    *,
    row_labels=None,
    title: str | None = None,
    values=None,
    value_name: str = "",
    column_name: str = "strength",
) -> pathlib.Path:
    """Decoded edits: one input per row, one strength per column.

    Args:
        images: ``(rows, len(strengths), h, w, c)`` decoded edits, uint8 or float in [0, 1].
        strengths: ``(len(strengths),)`` the strength of each column (printed under it).
        path: the PNG to write.
        row_labels: optional label of each row.
        title: figure title.
        values: optional ``(rows, len(strengths))`` measurements printed under each column as the
            column mean, e.g. the measured thickness of the decoded images.
        value_name: printed before each mean (e.g. ``"thickness "``).
        column_name: the columns' axis label, under the strengths.

    Returns:
        The path written.

    Raises:
        DataError: images that `data.validate_images` rejects.

    Examples:
        >>> import tempfile
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "sweep.png"
        >>> strength_sweep(np.zeros((2, 3, 8, 8, 1)), [-1.0, 0.0, 1.0], out).name
        'sweep.png'
    """
    x = _as_float(images, what="viz.strength_sweep: images")
    strengths = np.asarray(strengths, np.float64)
    cols = [f"{s:+.3g}" for s in strengths]
    if values is not None:
        v = np.asarray(values, np.float64).reshape(x.shape[0], x.shape[1]).mean(0)
        cols = [f"{c}\n{value_name}{m:.2f}" for c, m in zip(cols, v)]
    return _labelled_grid(x, path, row_labels=row_labels, col_labels=cols, title=title, col_name=column_name)


def traversal_grid(
    images,
    values,
    path: str | os.PathLike,
    *,
    row_labels=None,
    title: str | None = None,
    column_name: str | None = None,
) -> pathlib.Path:
    """Latent traversals: one latent dimension (or direction) per row, one offset per column.

    Args:
        images: ``(dims, len(values), h, w, c)`` decoded traversals (`move.traverse`), uint8 or
            float in [0, 1].
        values: ``(len(values),)`` the offset of each column (printed under it).
        path: the PNG to write.
        row_labels: optional label of each row (e.g. ``"z3"``).
        title: figure title.
        column_name: optional label of the columns' axis (e.g. ``"offset (standard deviations)"``).

    Returns:
        The path written.

    Raises:
        DataError: images that `data.validate_images` rejects.

    Examples:
        >>> import tempfile
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "trav.png"
        >>> traversal_grid(np.zeros((2, 3, 8, 8, 1)), [-1.0, 0.0, 1.0], out, row_labels=["z0", "z1"]).name
        'trav.png'
    """
    x = _as_float(images, what="viz.traversal_grid: images")
    return _labelled_grid(
        x,
        path,
        row_labels=row_labels,
        col_labels=[f"{v:+.3g}" for v in np.asarray(values)],
        title=title,
        col_name=column_name,
    )


def sensitivity_heatmap(
    correlation, factor_names, path: str | os.PathLike, *, title: str | None = None
) -> pathlib.Path:
    """Heat map of ``|corr|`` between latent dimensions (rows) and known factors (columns).

    Args:
        correlation: ``(latent_dim, num_factors)`` values in [0, 1] (`move.factor_sensitivity`).
        factor_names: the name of each factor (column).
        path: the PNG to write.
        title: figure title.

    Returns:
        The path written.

    Examples:
        >>> import tempfile
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "sens.png"
        >>> sensitivity_heatmap(np.eye(3, 2), ["x", "y"], out).name
        'sens.png'
    """
    c = np.asarray(correlation, np.float64)
    fig, ax = plt.subplots(figsize=(1.4 + 0.8 * c.shape[1], 1.0 + 0.36 * c.shape[0]))
    im = ax.imshow(c, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(c.shape[1]), list(factor_names), fontsize=9, rotation=30, ha="right")
    ax.set_yticks(range(c.shape[0]), [f"z{i}" for i in range(c.shape[0])], fontsize=9)
    ax.set_xlabel("factor", fontsize=9)
    ax.set_ylabel("latent dimension", fontsize=9)
    for i in range(c.shape[0]):
        for j in range(c.shape[1]):
            ax.text(
                j,
                i,
                f"{c[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="black" if c[i, j] > 0.5 else "white",
            )
    fig.colorbar(im, ax=ax, fraction=0.05).set_label("|correlation|", fontsize=9)
    ax.set_title(title or "|correlation| latent dim vs factor", fontsize=9)
    return save_figure(fig, path)


def path_gif(
    frames,
    path: str | os.PathLike,
    *,
    fps: int = 12,
    boomerang: bool = True,
    scale: float = 2.0,
    title: str | None = None,
    waypoint_names: Sequence[str] | None = None,
) -> pathlib.Path:
    """An animated GIF of decoded frames along a path (there and back by default).

    Written with matplotlib's animation module and its Pillow writer.

    Args:
        frames: ``(n, h, w, c)`` decoded frames, uint8 or float in [0, 1].
        path: the GIF to write.
        fps: frames per second.
        boomerang: play the frames forwards then backwards (a seamless loop).
        scale: size of the longer side, in inches.
        title: optional title above the frames.
        waypoint_names: names of the ``k`` points the path goes through (e.g. their classes), for
            frames from ``move.path(points, num_points=n)`` (uniform over segments): each frame is
            titled by its segment, ``"A -> B 40%"``, or by the point's name where it passes one.

    Returns:
        The path written.

    Raises:
        DataError: frames that `data.validate_images` rejects.

    Examples:
        >>> import tempfile
        >>> path_gif(np.zeros((3, 8, 8, 1)), pathlib.Path(tempfile.mkdtemp()) / "tour.gif").name
        'tour.gif'
        >>> waypoint_titles(["shirt", "boot", "bag"], 5)
        ['shirt', 'shirt -> boot 50%', 'boot', 'boot -> bag 50%', 'bag']
    """
    x = _as_float(frames, what="viz.path_gif: frames")
    names = None if waypoint_names is None else waypoint_titles(waypoint_names, len(x))
    if names is not None:
        names = names + names[-2:0:-1] if boomerang and len(x) > 2 else names
    seq = np.concatenate([x, x[-2:0:-1]]) if boomerang and len(x) > 2 else x
    h, w = x.shape[1:3]
    head = (title is not None) + (names is not None)
    # Frame titles at a readable size: the GIF is shown about 2-3 inches wide.
    fig = plt.figure(figsize=(scale * w / max(h, w) + 0.1, scale * h / max(h, w) + 0.1 + 0.3 * head))
    ax = fig.add_axes((0, 0, 1, 1 - 0.3 * head / fig.get_figheight()))
    ax.set_axis_off()
    gray = x.shape[-1] == 1
    img = ax.imshow(
        seq[0][..., 0] if gray else seq[0],
        cmap="gray" if gray else None,
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    if title:
        fig.suptitle(title, fontsize=9)
    label = None
    if names is not None:
        top = 1 - (0.3 if title else 0.0) / fig.get_figheight()
        label = fig.text(0.5, top - 0.02, names[0], ha="center", va="top", fontsize=9)

    def update(i):
        img.set_data(seq[i][..., 0] if gray else seq[i])
        if label is None:
            return (img,)
        label.set_text(names[i])
        return img, label

    anim = animation.FuncAnimation(fig, update, frames=len(seq), blit=label is None)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    anim.save(str(path), writer=animation.PillowWriter(fps=fps))
    plt.close(fig)
    return path


def waypoint_titles(names: Sequence[str], num_frames: int) -> list[str]:
    """Titles of the frames of ``move.path`` through points named ``names`` (uniform over segments).

    Args:
        names: the ``k >= 2`` points' names, in path order.
        num_frames: frames on the path (``num_points`` of ``move.path``).

    Returns:
        ``num_frames`` titles: a point's name where the path passes it, else ``"A -> B 40%"``
        (the share of the way from A to B).

    Raises:
        InputError: fewer than two names or frames.

    Examples:
        >>> waypoint_titles(["a", "b"], 4)
        ['a', 'a -> b 33%', 'a -> b 67%', 'b']
    """
    names = [str(n) for n in names]
    if len(names) < 2 or num_frames < 2:
        raise InputError(
            f"viz.waypoint_titles: names and num_frames must be >= 2, got {len(names)} and {num_frames}"
        )
    out = []
    for s in np.linspace(0.0, len(names) - 1.0, num_frames):
        k = min(int(np.floor(s + 1e-6)), len(names) - 2)
        frac = s - k
        if abs(frac) < 1e-6 or abs(frac - 1) < 1e-6:
            out.append(names[int(round(s))])
        else:
            out.append(f"{names[k]} -> {names[k + 1]} {frac:.0%}")
    return out
