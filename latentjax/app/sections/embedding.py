"""Demo-report section: the test latents seen through PCA, t-SNE and UMAP, with exports."""

from __future__ import annotations

import time

import jax
import numpy as np

from latentjax import viz
from latentjax.app import embed, report
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
    for i, (name, method) in enumerate([("PCA", "pca"), ("t-SNE", "tsne"), ("UMAP", "umap")]):
        t0 = time.perf_counter()
        ys[name] = embed.reduce(jax.random.fold_in(key, i), z, method=method, quick=quick)
        seconds = time.perf_counter() - t0
        table[f"{name} trustworthiness@10"] = round(float(metrics.trustworthiness(z, ys[name], k=10)), 4)
        table[f"{name} seconds"] = round(seconds, 2)
    names = [str(s) for s in run.label_names] if run.label_names is not None else None
    panels = viz.embedding_panels(
        ys, labels, run.figures / "embedding_panels.png", label_names=names, images=images, num_thumbnails=12
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
    export.projector(
        z, run.out / "projector", metadata=meta, images=images, tensor_name=f"{run.dataset} latents"
    )
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
                str(panels), "PCA | t-SNE | UMAP of the test latents, coloured by class, with thumbnails"
            ),
            report.Figure(str(viewer), "Interactive UMAP viewer (one self-contained HTML file)"),
        ],
        table=table,
    )
