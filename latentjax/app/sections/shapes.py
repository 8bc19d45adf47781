"""Demo-report section: a DeepSDF auto-decoder on procedural furniture and a walk through its codes.

A chair -> table -> sofa path through the code space, rendered by sphere tracing beside the map of
codes.
"""

from __future__ import annotations

import time

import jax
import numpy as np
from flax import nnx

from latentjax import move, viz
from latentjax.app import report
from latentjax.look import pca
from latentjax.shapes import deepsdf, furniture, render, samples


def section(run, *, quick: bool) -> report.Section:
    """Train a small auto-decoder on procedural chairs, tables and sofas and walk its code space.

    Independent of the run's image model: uses only ``run.figures`` and ``run.key``.

    Args:
        run: the demo's ``DemoRun``.
        quick: ~12 shapes and a few seconds of training (else 60 shapes, about a minute).

    Returns:
        A ``report.Section`` with the code map, the path GIF and a strip of path renderings.

    Examples:
        >>> import pathlib, tempfile, types
        >>> run = types.SimpleNamespace(figures=pathlib.Path(tempfile.mkdtemp()), key=jax.random.key(0))
        >>> section(run, quick=True).table["shapes"]  # doctest: +SKIP
        12
    """
    t0 = time.perf_counter()
    key = jax.random.fold_in(run.key, 6)
    per_class, steps, size, frames, width = (4, 150, 32, 7, 32) if quick else (20, 1500, 64, 16, 96)
    # The generator runs on the host (NumPy): its seed is drawn from the run's key.
    seed = int(jax.random.randint(jax.random.fold_in(key, 0), (), 0, 2**31 - 1))
    shapes, labels = furniture.generate(num_per_class=per_class, seed=seed)
    data = jax.jit(
        jax.vmap(lambda k, s: samples.shape_samples(k, s, num_samples=1024, uniform_fraction=0.2))
    )(jax.random.split(jax.random.fold_in(key, 1), len(labels)), shapes)
    report.step(f"training a DeepSDF decoder on {len(labels)} shapes ({steps} steps)")
    model = deepsdf.Decoder(16, width=width, depth=4, skip=2, rngs=nnx.Rngs(0))
    model, codes, losses = deepsdf.fit(
        jax.random.fold_in(key, 2),
        model,
        data,
        num_steps=steps,
        shapes_per_batch=len(labels),
        points_per_shape=256,
        learning_rate=3e-3,
        code_sigma=0.1,
        steps_per_call=steps,
    )
    cnp = np.asarray(codes)
    plane = pca.fit(cnp, num_components=2)  # few codes, and PCA places the path exactly
    xy = np.asarray(pca.transform(plane, cnp))
    ends = np.stack([cnp[labels == k][0] for k in range(3)])
    zs = move.path(ends, num_points=frames, method="slerp")
    render_fn = jax.jit(
        lambda z: render.render(
            lambda x: deepsdf.decode(model, z, x), width=size, height=size, step_scale=0.9, num_steps=48
        )[0]
    )
    report.step(f"sphere-tracing {frames} frames")
    imgs = np.stack([np.asarray(render_fn(z)) for z in zs])
    pxy = np.asarray(pca.transform(plane, zs))
    fig_dir = run.figures
    gif = viz.shape_path_gif(
        imgs,
        xy,
        labels,
        fig_dir / "shapes_path.gif",
        path_xy=pxy,
        label_names=furniture.CLASSES,
        title="shape codes (PCA)",
    )
    strip = viz.shape_strip(imgs, fig_dir / "shapes_path.png")
    seconds = time.perf_counter() - t0
    text = (
        f"A DeepSDF auto-decoder (4x{width} MLP, 16-d codes) trained for {steps} steps on {len(labels)} "
        "procedural shapes (chairs, tables, sofas built from boxes and cylinders with exact SDFs). "
        "Codes are a learnable table; the path goes chair -> table -> sofa by slerp, each frame "
        "sphere-traced from the decoded SDF and shaded by its jax.grad normals."
    )
    return report.Section(
        "Shape latent space (DeepSDF)",
        text,
        [
            report.Figure(
                str(gif),
                "PCA of the shape codes by class, with a point moving along the slerp path through the "
                "codes of the first training chair, table and sofa, beside the shape its decoded SDF "
                f"renders (mean clamped-L1 training loss {float(np.mean(losses[-10:])):.4f} over the "
                "last 10 steps; whether a frame looks like its shape is not measured here).",
            ),
            report.Figure(
                str(strip),
                f"The {frames} frames along that path: frame 1 is the chair's code, frame {frames} the "
                "sofa's" + (f", frame {(frames + 1) // 2} the table's." if frames % 2 else "."),
            ),
        ],
        {
            "shapes": len(labels),
            "train steps": steps,
            "final loss": float(np.mean(losses[-10:])),
            "seconds": round(seconds, 1),
        },
    )
