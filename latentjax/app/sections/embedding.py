"""Demo-report section: the test latents seen through PCA, t-SNE and UMAP, with exports."""

from __future__ import annotations

import time

import jax
import numpy as np

from latentjax import viz
from latentjax.app import embed, report
from latentjax.app.sections import _captions, _measures
from latentjax.learn import models
from latentjax.look import export, metrics


def section(run, *, quick: bool) -> report.Section:
    """PCA | t-SNE | UMAP panels of the test latents, the HTML viewer, the projector folder.

    Args:
      run: a ``demo.DemoRun``.
      quick: 1,000 points and short t-SNE/UMAP schedules (a few seconds on 2 cores) instead of
        5,000 points with the libraries' defaults.

    Returns:
      The ``report.Section``; its table holds trustworthiness@10 and seconds per method.

    Examples:
      >>> section(run, quick=True).table["UMAP trustworthiness@10"]  # doctest: +SKIP
      0.97...
    """
    n = min(len(run.test_images), 1000 if quick else 5000)
    images, labels = run.test_images[:n], np.asarray(run.test_labels[:n])
    z = models.encode_images(run.model, images)
    key = jax.random.fold_in(run.key, 4)
    ys, table = {}, {"points": n, "latent dim": int(z.shape[1])}
    table["latent kNN accuracy"] = round(float(metrics.knn_accuracy(z, labels, k=10)), 4)
    table["chance"] = round(_measures.chance(labels), 4)
    for i, (name, method) in enumerate([("PCA", "pca"), ("t-SNE", "tsne"), ("UMAP", "umap")]):
        report.step(name)
        t0 = time.perf_counter()
        ys[name] = embed.reduce(jax.random.fold_in(key, i), z, method=method, quick=quick)
        seconds = time.perf_counter() - t0
        table[f"{name} trustworthiness@10"] = round(float(metrics.trustworthiness(z, ys[name], k=10)), 4)
        table[f"{name} kNN accuracy"] = round(float(metrics.knn_accuracy(ys[name], labels, k=10)), 4)
        table[f"{name} seconds"] = round(seconds, 2)
    names = [str(s) for s in run.label_names] if run.label_names is not None else None
    panels = viz.embedding_panels(
        ys,
        labels,
        run.figures / "embedding_panels.png",
        label_names=names,
        images=images,
        num_thumbnails=12,
        axis_labels={"PCA": ("PC 1", "PC 2")},
    )
    viewer = export.html_viewer(
        ys["UMAP"],
        run.out / "embedding_viewer.html",
        labels=labels,
        label_names=names,
        images=images,
        title=f"{run.dataset} latents: UMAP",
    )
    meta = embed.projector_metadata(labels, names)
    projector = run.out / "projector"
    export.projector(z, projector, metadata=meta, images=images, tensor_name=f"{run.dataset} latents")
    verdicts = "; ".join(
        f"in {name}, {_captions.separation(table[f'{name} kNN accuracy'], table['chance'])}, "
        f"trustworthiness {table[f'{name} trustworthiness@10']:.3f}"
        for name in ys
    )
    latent_verdict = _captions.separation(table["latent kNN accuracy"], table["chance"])
    text = (
        f"The posterior means of {n} test images ({z.shape[1]}-d) reduced to 2-D by PCA, t-SNE and UMAP "
        "(all in JAX). Trustworthiness@10 measures how many 2-D neighbours were neighbours in latent "
        "space. The interactive viewer pans, zooms and shows each point's image on hover; the TensorBoard "
        "projector files are in projector/ (tensorboard --logdir projector)."
    )
    return report.Section(
        title="Looking at the latent space",
        text=text,
        figures=[
            report.Figure(
                str(panels),
                f"PCA | t-SNE | UMAP of the test latents, coloured by class, with thumbnails: {verdicts}. "
                f"In the {z.shape[1]}-d latent space itself, {latent_verdict}.",
            ),
            report.Figure(str(viewer), "Interactive UMAP viewer (one self-contained HTML file)"),
            report.Figure(
                str(projector), "TensorBoard projector files (projector/: tensorboard --logdir projector)"
            ),
        ],
        table=table,
    )
