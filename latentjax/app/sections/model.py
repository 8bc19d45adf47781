"""Demo-report section: the trained model (reconstructions, prior samples, a latent map, a decoded grid).

Its numbers are the demo's top-level metrics; the captions state them (``_captions``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from latentjax import move, viz
from latentjax.app import report
from latentjax.app.sections import _captions, _classifier, _measures
from latentjax.learn import models
from latentjax.look import metrics as look_metrics
from latentjax.look import pca

# The model section's keys of the demo's metrics, shown in its table.
KEYS = (
    "dataset",
    "model",
    "latent_dim",
    "epochs",
    "test_elbo",
    "test_recon_mse",
    "pca_recon_mse",
    "classifier_accuracy",
    "classifier_accuracy_reconstructions",
    "reconstruction_class_ratio",
    "latent_map_knn_accuracy",
    "latent_map_chance",
    "train_images_per_s",
    "train_seconds",
    "device",
)


def _map(z: jax.Array, grid: jax.Array, side: int) -> np.ndarray:
    """The latents on their 2 principal directions, signed like ``move.grid_2d``'s grid."""
    plane = pca.fit(z, num_components=2)
    # The grid and the fit may pick opposite signs for a principal direction: the map takes the
    # grid's, so that right and up mean the same in both figures.
    centre = grid[side // 2, side // 2]
    right, up = grid[side // 2, side // 2 + 1] - centre, grid[side // 2 - 1, side // 2] - centre
    agree = np.asarray(plane.components @ jnp.stack([right, up]).T).diagonal()
    return np.asarray(pca.transform(plane, z)) * np.where(agree < 0, -1.0, 1.0)[None, :]


def _class_kept(run, metrics: dict) -> str:
    """Adds the pixel classifier's accuracy on unseen test images and their reconstructions to ``metrics``.

    The classifier (``run.classifier``, else fitted here) learned from the second half of the test
    images; it is scored on up to 1,000 of the first half, the originals and their posterior-mean
    reconstructions. Returns the caption's verdict.
    """
    labels = np.asarray(run.test_labels)
    clf = run.classifier
    if clf is None:
        clf = _classifier.fit_on_test_half(jax.random.fold_in(run.key, 7), run.test_images, labels)
    n = min(len(run.test_images) // 2, 1000)
    z = models.encode_images(run.model, run.test_images[:n])
    rec = np.asarray(jax.jit(jax.vmap(lambda v: models.decode(run.model, v)))(jnp.asarray(z)))
    acc = float(np.mean(_classifier.predict(clf, run.test_images[:n]) == labels[:n]))
    acc_rec = float(np.mean(_classifier.predict(clf, rec) == labels[:n]))
    metrics["classifier"] = (
        f"MLP on pixels (1 hidden layer, {clf.w1.shape[1]} units), fitted on "
        f"{min(len(labels) - len(labels) // 2, 2000)} test images, scored on {n} others"
    )
    metrics["classifier_accuracy"] = round(acc, 4)
    metrics["classifier_accuracy_reconstructions"] = round(acc_rec, 4)
    metrics["reconstruction_class_ratio"] = round(acc_rec / max(acc, 1e-12), 4)
    return _captions.kept_class(acc_rec, acc, n)


def section(run, metrics: dict) -> report.Section:
    """Reconstructions, prior samples, the latent map and a decoded grid of the trained model.

    Adds its numbers to ``metrics`` (the pixel classifier's ``classifier_accuracy`` on test images
    and ``classifier_accuracy_reconstructions`` on their reconstructions, the map's
    ``latent_map_knn_accuracy``, ``latent_map_chance`` and, with a known factor,
    ``latent_map_factor_r2``), which its captions state.

    Args:
        run: the demo's ``DemoRun``.
        metrics: the demo's metrics so far (test and PCA reconstruction MSE, epochs, ...).

    Returns:
        The ``report.Section``.
    """
    model, fig_dir, key = run.model, run.figures, run.key
    x = models.to_float(run.test_images[:10])
    rec = np.asarray(jax.vmap(models.reconstruct, in_axes=(None, 0))(model, x))
    recon_png = viz.image_grid(
        np.concatenate([x, rec]),
        fig_dir / "reconstructions.png",
        rows=2,
        row_labels=["input", "recon."],
        title="10 test images and their posterior-mean reconstructions",
    )
    recon = _captions.reconstruction(
        metrics["test_recon_mse"], metrics["pca_recon_mse"], run.config.latent_dim
    )
    kept = _class_kept(run, metrics)
    figs = [
        report.Figure(
            str(recon_png), f"Test images (top) and their posterior-mean reconstructions: {recon}; {kept}."
        )
    ]
    samples = np.asarray(jax.vmap(models.sample, in_axes=(None, 0))(model, jax.random.split(key, 64)))
    figs.append(
        report.Figure(
            str(
                viz.image_grid(
                    samples, fig_dir / "samples.png", rows=8, title="64 prior samples z ~ N(0, I), decoded"
                )
            ),
            "64 samples from the prior N(0, I), each decoded to its mean image.",
        )
    )
    z = models.encode_images(model, run.test_images[:3000])
    side = 11
    grid = move.grid_2d(size=side, span=2.0, latents=z)
    p2 = _map(z, grid, side)
    labels = np.asarray(run.test_labels[:3000])
    metrics["latent_map_knn_accuracy"] = round(float(look_metrics.knn_accuracy(p2, labels, k=10)), 4)
    metrics["latent_map_chance"] = round(_measures.chance(labels), 4)
    scatters = [(labels, "latent_scatter.png", run.label_names, None)]
    name = next((k for k in ("x", "scale", "rotation") if k in (run.factors or {})), None)
    if name is not None:
        values = np.asarray(run.factors[name][1])[:3000]
        scatters.append((values, f"latent_scatter_{name}.png", None, name))
        metrics["latent_map_factor"] = name
        metrics["latent_map_factor_r2"] = round(_measures.linear_r2(p2, values), 4)
    for values, file, names, factor in scatters:
        title = f"{run.dataset}: posterior means, first 2 principal directions"
        if factor is not None:
            title = f"the same map coloured by the factor '{factor}'"
        ax = viz.scatter(
            p2,
            values,
            label_names=names,
            title=title,
            axis_labels=("PC 1", "PC 2"),
            continuous=factor is not None,
            colorbar_label=f"factor '{factor}' (true value)" if factor is not None else None,
        )
        if factor is None:
            verdict = _captions.separation(metrics["latent_map_knn_accuracy"], metrics["latent_map_chance"])
            caption = (
                f"Posterior means of {len(p2)} test images on their two principal directions, coloured by "
                f"class: {verdict}."
            )
        else:
            verdict = _captions.factor_order(metrics["latent_map_factor_r2"], factor)
            caption = f"The same map coloured by the known generative factor '{factor}': {verdict}."
        figs.append(report.Figure(str(viz.save_figure(ax.figure, fig_dir / file)), caption))
    decode_grid = jax.vmap(jax.vmap(models.decode, in_axes=(None, 0)), in_axes=(None, 0))
    decoded = np.asarray(decode_grid(model, grid))
    grid_png = viz.decoded_grid(
        decoded, fig_dir / "decoded_grid.png", extent=(-2, 2), axis_labels=("PC 1 (std)", "PC 2 (std)")
    )
    figs.append(
        report.Figure(
            str(grid_png),
            f"Images decoded on {_captions.article(f'{side}x{side}')} grid spanning +-2 standard "
            "deviations along the two principal directions of the test latents (the axes of the map above).",
        )
    )
    return report.Section(
        "The model",
        f"A {metrics['model']} with a {run.config.latent_dim}-dimensional latent space, trained "
        f"for {metrics['epochs']} epochs on {len(run.train_images)} images of '{run.dataset}'.",
        figs,
        {
            k: metrics[k]
            for k in (*KEYS, "classifier", "latent_map_factor", "latent_map_factor_r2")
            if k in metrics
        },
    )
