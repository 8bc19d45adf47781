"""Demo-report section: moving through the latent space (paths, a class vector, traversals, a GIF)."""

from __future__ import annotations

import numpy as np

from latentjax import move, viz
from latentjax.app import report
from latentjax.app.sections import _captions, _classifier, _measures
from latentjax.app.sections._labels import class_pair, first_of, label_name
from latentjax.learn import models


def _factor_columns(factors: dict, n: int, label_names=None) -> tuple[np.ndarray, list[str]]:
    """Test-split factors as correlation-friendly columns: categorical shape one-hot, angles as cos/sin."""
    cols, names = [], []
    for name, (_, test) in sorted(factors.items()):
        v = np.asarray(test)[:n]
        if name == "shape" or v.dtype.kind in "iu":
            for c in np.unique(v):
                cols.append((v == c).astype(np.float32))
                names.append(f"{name}={label_name(label_names, c) if name == 'shape' else int(c)}")
        elif name == "rotation":
            cols += [np.cos(v), np.sin(v)]
            names += ["cos rot", "sin rot"]
        else:
            cols.append(v.astype(np.float32))
            names.append(name)
    return np.stack(cols, axis=1), names


def section(run, *, quick: bool) -> report.Section:
    """The latent-space section: paths, a class vector, traversals and a GIF, for the demo's model.

    Lerp/slerp/geodesic/variance-aware geodesic strips with diagnostics, a class-to-class vector
    sweep, a traversal grid (with the factor sensitivity on sprites) and a GIF of a path.

    Args:
        run: a `latentjax.demo.DemoRun`.
        quick: keep it to a few seconds on 2 CPU cores.

    Returns:
        A `report.Section` whose figures are written under ``run.figures``.
    """
    import jax
    import jax.numpy as jnp

    model, fig_dir = run.model, run.figures
    conv = run.config.arch == "conv"
    n = min(len(run.test_images), 500 if quick else 2000)
    images, labels = run.test_images[:n], np.asarray(run.test_labels)[:n]
    z = models.encode_images(model, images, batch_size=250)

    def decode(v):
        return models.decode(model, v)

    decode_many = jax.vmap(decode)
    figures, table = [], {}

    a, b, i0, i1 = class_pair(labels)
    num_points = 10
    steps = (30 if conv else 100) if quick else (100 if conv else 400)
    strengths = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.25], np.float32)
    # The vector is applied to up to 64 source examples (fewer would leave its rate noisy); 4 are shown.
    src = np.flatnonzero(labels == a)[:64]
    std = z.std(axis=0)
    dims = np.argsort(-std)[: min(6 if quick else 10, z.shape[1])]
    values = np.linspace(-2.5, 2.5, 7).astype(np.float32)
    tour_classes = list(np.unique(labels))[:4]
    tour_idx = (
        np.array([first_of(labels, c) for c in tour_classes]) if len(tour_classes) > 1 else np.arange(3)
    )
    num_frames = 16 if quick else 48

    # The decoder's uncertainty off the data (Arvanitidis et al. 2018's RBF precision network) on
    # training latents, for the variance-aware geodesic; 256 centres at bandwidth scale 0.3 made the
    # variance rise between the classes (experiments/geodesic_on_data.py). 30 weight updates: on the
    # demo's sprites the path was the same as after 100, in a third of the time.
    n_fit = min(len(run.train_images), 1000 if quick else 4000)
    report.step(f"the decoder's uncertainty off the data ({n_fit} training latents, 256 centres)")
    z_fit = models.encode_images(model, run.train_images[:n_fit], batch_size=250)
    unc = move.fit_uncertainty(
        decode,
        jax.random.fold_in(run.key, 11),
        z_fit,
        models.to_float(run.train_images[:n_fit]),
        num_centers=min(256, n_fit),
        bandwidth_scale=0.3,
        num_steps=30,
    )

    @jax.jit
    def compute(z, labels, unc):
        # Everything on the device in one compiled call: compiling each small op separately
        # would cost more than the work itself.
        paths = move.compare_paths(
            decode, z[i0], z[i1], num_points=num_points, num_steps=steps, learning_rate=2e-2, unroll=conv
        )
        # The variance-aware geodesic, started on the chain of RBF centres (`move.data_path`).
        va = move.geodesic(
            decode,
            z[i0],
            z[i1],
            num_points=num_points,
            num_steps=steps,
            learning_rate=2e-2,
            unroll=conv,
            uncertainty=unc,
        ).points
        va_path = (va, decode_many(va), move.path_diagnostics(decode, va))
        v = move.class_vector(z, labels, source=a, target=b)
        sweep = jax.vmap(jax.vmap(move.apply, in_axes=(None, None, 0)), in_axes=(0, None, None))(
            z[src], v, jnp.asarray(strengths)
        )
        sweep_img = jax.vmap(decode_many)(sweep)
        trav = jnp.stack([move.traverse(z[0], int(d), jnp.asarray(values) * std[d]) for d in dims])
        trav_img = jax.vmap(decode_many)(trav)
        tour = move.path(z[tour_idx], num_points=num_frames, method="slerp")
        return paths, va_path, sweep_img, trav_img, decode_many(tour)

    report.step("paths, class vector, traversals and tour (one compiled call)")
    paths, va_path, sweep_img, trav_img, frames = jax.device_get(
        compute(jnp.asarray(z), jnp.asarray(labels), unc)
    )
    # lerp, slerp, geodesic and the variance-aware geodesic
    strips = {k: p.decoded for k, p in paths._asdict().items()} | {"variance-aware": va_path[1]}
    diag = {k: p.diagnostics for k, p in paths._asdict().items()} | {"variance-aware": va_path[2]}

    # 1. Four paths between two test images of different classes.
    la, lb = label_name(run.label_names, a), label_name(run.label_names, b)
    # "The data": up to 10,000 training images. A frame stays near it when its nearest training image
    # is no farther than the farther endpoint's plus the data's spacing (_captions.OFF_DATA).
    reference = run.train_images[:10000]
    table["data spacing"] = round(_measures.data_spacing(images[:500], reference), 4)
    for k, d in diag.items():
        table[f"{k} decoded energy"] = round(float(d.decoded_energy), 3)
        table[f"{k} max step"] = round(float(d.max_step), 3)
        dist = _measures.nearest_distance(np.asarray(strips[k]), reference)[0]
        table[f"{k} endpoint distance"] = round(max(float(dist[0]), float(dist[-1])), 4)
        table[f"{k} farthest frame distance"] = round(float(dist.max()), 4)
        excess = _measures.off_data_excess(np.asarray(strips[k]), reference, spacing=table["data spacing"])
        table[f"{k} off-data excess"] = round(excess, 3)
    # The row the figure recommends: the one whose farthest frame is nearest the data (first on ties).
    chosen = min(diag, key=lambda k: table[f"{k} off-data excess"])
    table["chosen path"] = chosen
    # Each row also states its off-data excess; the chosen row says so.
    row = {
        k: f"{k} (off-data excess {table[f'{k} off-data excess']:.2f}{', chosen' if k == chosen else ''})"
        for k in strips
    }
    figures.append(
        report.Figure(
            str(
                viz.path_strips(
                    {row[k]: v for k, v in strips.items()},
                    fig_dir / "latent_paths.png",
                    diagnostics={row[k]: v for k, v in diag.items()},
                    title=f"{la} -> {lb}",
                )
            ),
            f"Paths from {_captions.article(la)} to {_captions.article(lb)}: straight line, spherical, "
            f"geodesic (decoded curve energy minimised with Adam for {steps} steps) and variance-aware "
            "geodesic (the same under the expected metric of a decoder whose variance rises off the "
            f"data, Arvanitidis et al. 2018: a radial-basis precision network on {n_fit} training latents, "
            "started on the shortest chain of its centres). "
            + _captions.paths(table, tuple(strips), chosen=chosen),
        )
    )

    # 2. The class-to-class vector applied to examples of the source class, judged by the demo's
    # pixel classifier, trained on real test images (independent of the model).
    if a != b:
        s0, s1 = int(np.flatnonzero(strengths == 0.0)[0]), int(np.flatnonzero(strengths == 1.0)[0])
        shape = sweep_img.shape
        clf = run.classifier
        if clf is None:
            clf = _classifier.fit_on_test_half(
                jax.random.fold_in(run.key, 7), run.test_images, run.test_labels
            )
        pred = _classifier.predict(clf, sweep_img.reshape((-1,) + shape[2:])).reshape(shape[:2])
        rate = {s: float(np.mean(pred[:, j] == b)) for s, j in (("0", s0), ("1", s1))}
        table["class vector examples"] = int(shape[0])
        table["class vector target rate at strength 0"] = round(rate["0"], 3)
        table["class vector target rate at strength 1"] = round(rate["1"], 3)
        verdict = _captions.class_vector(rate["1"], rate["0"], int(shape[0]), la, lb)
        figures.append(
            report.Figure(
                str(
                    viz.strength_sweep(
                        sweep_img[:4],
                        strengths,
                        fig_dir / "latent_class_vector.png",
                        row_labels=[f"{la} {i + 1}" for i in range(min(4, shape[0]))],
                        title=f"{la} -> {lb} vector",
                        column_name="strength (multiples of the vector)",
                    )
                ),
                f"The {la} -> {lb} vector (mean latent of {lb} minus mean latent of {la}) added with "
                f"increasing strength to test examples of {_captions.article(la)} (4 shown); judged by a "
                "pixel classifier trained on real test images (a small neural network, not the VAE), "
                f"{verdict}.",
            )
        )

    # 3. Traversals along the most used latent dimensions, +-2.5 standard deviations.
    figures.append(
        report.Figure(
            str(
                viz.traversal_grid(
                    trav_img,
                    values,
                    fig_dir / "latent_traversals.png",
                    row_labels=[f"z{d}" for d in dims],
                    title="traversals",
                    column_name="offset (standard deviations of the dimension)",
                )
            ),
            "Each row moves one latent dimension (the most variable ones) around one test example; columns "
            "are offsets in that dimension's standard deviation over the test set.",
        )
    )
    text = (
        "Interpolation (lerp, slerp, the decoder-metric geodesic and the variance-aware one) with the "
        "diagnostics that tell the "
        "paths apart, a class-to-class attribute vector, latent traversals and a path animation."
    )

    # 4. On sprites: which latent dimension moves which known factor.
    if run.factors:
        cols, fnames = _factor_columns(run.factors, n, run.label_names)
        sens = jax.device_get(jax.jit(move.factor_sensitivity)(z, cols))
        corr = np.abs(np.asarray(sens.correlation))
        best = {}
        for j, fname in enumerate(fnames):
            order = np.argsort(-corr[:, j], kind="stable")
            second = float(corr[order[1], j]) if len(order) > 1 else 0.0
            best[fname] = (int(order[0]), float(corr[order[0], j]), second)
            table[f"factor {fname}: best dim"] = int(order[0])
            table[f"factor {fname}: best |corr|"] = round(best[fname][1], 3)
            table[f"factor {fname}: next |corr|"] = round(second, 3)
        figures.append(
            report.Figure(
                str(
                    viz.sensitivity_heatmap(
                        sens.correlation, fnames, fig_dir / "latent_factor_sensitivity.png"
                    )
                ),
                "|correlation| between each latent mean coordinate and each known factor (shape one-hot, "
                "rotation as cos/sin). " + _captions.disentanglement(best),
            )
        )

    # 5. A GIF along a piecewise slerp through examples of several classes.
    figures.append(
        report.Figure(
            str(
                viz.path_gif(
                    frames,
                    fig_dir / "latent_tour.gif",
                    fps=8,
                    waypoint_names=[label_name(run.label_names, labels[i]) for i in tour_idx],
                )
            ),
            "Animated piecewise slerp through one test example of each of "
            + ", ".join(label_name(run.label_names, c) for c in tour_classes)
            + ".",
        )
    )
    return report.Section("Moving through the latent space", text, figures, table)
