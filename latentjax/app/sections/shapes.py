"""Demo-report section: a DeepSDF auto-decoder on procedural furniture and a walk through its codes.

A path through the codes of a chair, a table and a sofa, rendered by sphere tracing beside the map
of codes; each frame is meshed and named by its nearest training shape (Chamfer distance).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import numpy as np
from flax import nnx

from latentjax import move, viz
from latentjax.app import report
from latentjax.app.sections import _shape_measures
from latentjax.look import pca
from latentjax.shapes import deepsdf, furniture, render, samples

# The full demo's settings (the section is left out of --quick): shapes per class, training steps,
# decoder width, frames on the path (odd: the middle one is the table's code), render size.
FULL = {"per_class": 10, "num_steps": 600, "width": 96, "num_frames": 15, "size": 64}
# Points per surface for the Chamfer distances (DeepSDF uses 30,000; 1,000 resolve these shapes).
_POINTS = 1000


class Walk(NamedTuple):
    """A trained decoder's path through the codes of a chair, a table and a sofa, and its measures.

    Attributes:
        images: ``(t, size, size, 3)`` renderings of the frames.
        labels: ``(n,)`` classes of the training shapes (index into ``furniture.CLASSES``).
        map_xy: ``(n, 2)`` PCA of the training codes.
        path_xy: ``(t, 2)`` the frames in that map.
        nearest: each frame's nearest training shape (`_shape_measures.Nearest`).
        own: ``(3,)`` Chamfer distance of the chair, table and sofa frames to their own shapes.
        within: median Chamfer distance between two training shapes of one class.
        between: median Chamfer distance between training shapes of different classes.
        losses: ``(num_steps,)`` training losses.
    """

    images: np.ndarray
    labels: np.ndarray
    map_xy: np.ndarray
    path_xy: np.ndarray
    nearest: _shape_measures.Nearest
    own: np.ndarray
    within: float
    between: float
    losses: np.ndarray


def train_and_walk(
    key: jax.Array, *, per_class: int, num_steps: int, width: int, num_frames: int, size: int
) -> Walk:
    """Trains the auto-decoder, renders the slerp path chair -> table -> sofa and measures its frames.

    Args:
        key: random key (shapes, samples, training, surface points).
        per_class: procedural shapes per class.
        num_steps: Adam steps (all shapes in every batch).
        width: decoder width (depth 4, 16-d codes).
        num_frames: frames on the path (odd, so that the middle one is the table's code).
        size: render size in pixels.

    Returns:
        A `Walk`.
    """
    # The generator runs on the host (NumPy): its seed is drawn from the key.
    seed = int(jax.random.randint(jax.random.fold_in(key, 0), (), 0, 2**31 - 1))
    shapes, labels = furniture.generate(num_per_class=per_class, seed=seed)
    data = jax.jit(
        jax.vmap(lambda k, s: samples.shape_samples(k, s, num_samples=1024, uniform_fraction=0.2))
    )(jax.random.split(jax.random.fold_in(key, 1), len(labels)), shapes)
    report.step(f"training a DeepSDF decoder on {len(labels)} shapes ({num_steps} steps)")
    model = deepsdf.Decoder(16, width=width, depth=4, skip=2, rngs=nnx.Rngs(0))
    model, codes, losses = deepsdf.fit(
        jax.random.fold_in(key, 2),
        model,
        data,
        num_steps=num_steps,
        shapes_per_batch=len(labels),
        points_per_shape=256,
        learning_rate=3e-3,
        code_sigma=0.1,
        steps_per_call=num_steps,
    )
    cnp = np.asarray(codes)
    plane = pca.fit(cnp, num_components=2)  # few codes, and PCA places the path exactly
    first = [int(np.flatnonzero(labels == k)[0]) for k in range(3)]
    zs = move.path(cnp[first], num_points=num_frames, method="slerp")
    render_fn = jax.jit(
        lambda z: render.render(
            lambda x: deepsdf.decode(model, z, x), width=size, height=size, step_scale=0.9, num_steps=48
        )[0]
    )
    report.step(f"sphere-tracing {num_frames} frames")
    images = np.stack([np.asarray(render_fn(z)) for z in zs])
    report.step("meshing the frames and measuring them against the training shapes (Chamfer)")
    train = _shape_measures.training_surfaces(jax.random.fold_in(key, 3), shapes, num_points=_POINTS)
    clouds = _shape_measures.decoded_surfaces(jax.random.fold_in(key, 4), model, zs, num_points=_POINTS)
    nearest = _shape_measures.nearest_shapes(clouds, train)
    within, between = _shape_measures.class_spread(train, labels)
    ends = (0, num_frames // 2, num_frames - 1)  # the frames at the chair's, table's and sofa's codes
    own = np.array(
        [
            np.inf
            if clouds[f] is None
            else _shape_measures.nearest_shapes([clouds[f]], train[[i]]).chamfer[0]
            for f, i in zip(ends, first)
        ]
    )
    return Walk(
        images,
        labels,
        np.asarray(pca.transform(plane, cnp)),
        np.asarray(pca.transform(plane, zs)),
        nearest,
        own,
        within,
        between,
        np.asarray(losses),
    )


def _report(walk: Walk, gif, strip, seconds: float) -> report.Section:
    """The section's text, captions (computed from the measures) and table."""
    names = furniture.CLASSES
    t = len(walk.images)
    ok = walk.nearest.chamfer < walk.within
    frames_by_class = {
        c: int(np.sum(walk.labels[walk.nearest.index[walk.nearest.index >= 0]] == k))
        for k, c in enumerate(names)
    }
    loss = float(np.mean(walk.losses[-10:]))
    steps = len(walk.losses)
    own_text = ", ".join(f"{c} {d:.4f}" for c, d in zip(names, walk.own))
    verdict = (
        "every frame is recognisable"
        if ok.all()
        else "no frame is recognisable"
        if not ok.any()
        else f"{int(ok.sum())} of {t} frames are recognisable"
    )
    text = (
        f"A DeepSDF auto-decoder (4x{FULL['width']} MLP, 16-d codes) trained for {steps} steps on "
        f"{len(walk.labels)} procedural shapes (chairs, tables, sofas built from boxes and cylinders with "
        "exact SDFs). Codes are a learnable table; the path goes by slerp through the codes of the first "
        "training chair, table and sofa, each frame sphere-traced from the decoded SDF and shaded by its "
        "jax.grad normals. Each frame is also meshed (marching cubes) and compared with every training "
        f"shape by the Chamfer distance ({_POINTS} points a surface)."
    )
    table = {
        "shapes": len(walk.labels),
        "train steps": steps,
        "final loss": loss,
        "Chamfer within class (median)": round(walk.within, 5),
        "Chamfer between classes (median)": round(walk.between, 5),
        "Chamfer of the chair/table/sofa frames to their own shape": " / ".join(f"{d:.5f}" for d in walk.own),
        "frames recognisable (nearest Chamfer < within-class median)": int(ok.sum()),
        "frames": t,
        "nearest class per frame": " ".join(
            names[walk.labels[j]] if j >= 0 else "-" for j in walk.nearest.index
        ),
        "nearest Chamfer per frame": " ".join(f"{d:.4f}" for d in walk.nearest.chamfer),
        "seconds": round(seconds, 1),
    }
    return report.Section(
        "Shape latent space (DeepSDF)",
        text,
        [
            report.Figure(
                str(gif),
                "PCA of the shape codes by class, with a point moving along the path, beside the shape its "
                f"decoded SDF renders, titled by its nearest training shape's class (mean clamped-L1 loss "
                f"{loss:.4f} over the last 10 steps). The chair, table and sofa codes decode to shapes at "
                f"Chamfer {own_text} from their own training shapes; two training shapes of one class lie "
                f"{walk.within:.4f} apart (median), of different classes {walk.between:.4f}.",
            ),
            report.Figure(
                str(strip),
                f"The {t} frames along the path, each titled by the class of its nearest training shape and "
                f"the Chamfer distance to it: {verdict} (nearer a training shape than the median "
                f"{walk.within:.4f} between two shapes of one class); frames per nearest class: "
                + ", ".join(f"{c} {n}" for c, n in frames_by_class.items())
                + f". Frame 1 is the chair's code, frame {t // 2 + 1} the table's, frame {t} the sofa's.",
            ),
        ],
        table,
    )


def section(run, *, quick: bool) -> report.Section:
    """Train a small auto-decoder on procedural chairs, tables and sofas and walk its code space.

    Independent of the run's image model: uses only ``run.figures`` and ``run.key``. Left out of
    ``--quick``: a few seconds of training on a dozen shapes decodes to blobs that are nearer a
    shape of the wrong class than of their own (measured with the Chamfer distance below), which
    would cost a third of the quick demo's time for nothing recognisable.

    Each frame of the path is meshed and compared with the training shapes (Chamfer distance);
    its nearest training shape's class titles it in the strip and the GIF.

    Args:
        run: the demo's ``DemoRun``.
        quick: skip the section (a note in the report says so).

    Returns:
        A ``report.Section`` with the code map GIF and a strip of path renderings.

    Examples:
        >>> import pathlib, tempfile, types
        >>> run = types.SimpleNamespace(figures=pathlib.Path(tempfile.mkdtemp()), key=jax.random.key(0))
        >>> section(run, quick=True).figures
        []
    """
    if quick:
        return report.Section(
            "Shape latent space (DeepSDF)",
            "Left out of --quick: trained for a few seconds (12 shapes, 150 steps, the former quick "
            "settings), the decoder turned the chair's and the table's codes into shapes nearest a training "
            "sofa (Chamfer 0.052 and 0.061, where two training shapes of one class lie 0.030 apart, median), "
            "so the section cost a third of the quick demo's time for shapes that are not recognisable. "
            f"`latentjax demo` without --quick trains it on {3 * FULL['per_class']} shapes and measures each "
            "frame against them.",
            [],
            {"run": "no (--quick)"},
        )
    t0 = time.perf_counter()
    key = jax.random.fold_in(run.key, 6)
    walk = train_and_walk(key, **FULL)
    labels, names = walk.labels, furniture.CLASSES
    fig_dir = run.figures
    # Frame number, nearest training shape's class and the Chamfer distance to it.
    titles = [
        f"{i + 1}. {names[labels[j]]} {d:.3f}" if j >= 0 else f"{i + 1}. no surface"
        for i, (j, d) in enumerate(zip(walk.nearest.index, walk.nearest.chamfer))
    ]
    gif = viz.shape_path_gif(
        walk.images,
        walk.map_xy,
        labels,
        fig_dir / "shapes_path.gif",
        path_xy=walk.path_xy,
        label_names=names,
        title="shape codes (PCA)",
        frame_titles=["frame " + t.replace(". ", ", nearest: ") for t in titles],
    )
    strip = viz.shape_strip(walk.images, fig_dir / "shapes_path.png", titles=titles, rows=3)
    seconds = time.perf_counter() - t0
    return _report(walk, gif, strip, seconds)
