"""``latentjax embed``: a trained model's test latents reduced to 2-D, plotted and exported.

Writes the embedding (``embedding.npz``), a labelled scatter, the self-contained HTML viewer
and a TensorBoard projector folder of the latents.
"""

from __future__ import annotations

import json
import os
import pathlib
import time

import jax
import numpy as np

from latentjax import data, viz
from latentjax.errors import LatentJaxError
from latentjax.learn import checkpoint, models
from latentjax.look import export

METHODS = ("pca", "tsne", "umap")


class EmbedError(LatentJaxError, ValueError):
    """Bad arguments to ``latentjax embed`` (method, run folder without a data set name)."""


def reduce(key: jax.Array, z, *, method: str, quick: bool = False) -> np.ndarray:
    """``(n, d)`` latents to ``(n, 2)`` with ``"pca"``, ``"tsne"`` or ``"umap"`` (library defaults).

    ``quick`` trades quality for time (fewer t-SNE iterations and UMAP epochs), for demos.

    Examples:
      >>> reduce(jax.random.key(0), np.eye(4, 3), method="pca").shape
      (4, 2)
    """
    z = np.asarray(z, np.float32)
    if method == "pca":
        from latentjax.look import pca

        return np.asarray(pca.transform(pca.fit(z, num_components=2), z))
    if method == "tsne":
        from latentjax.look import tsne

        perplexity = float(min(30.0, max(2.0, (len(z) - 1) / 3.0)))
        kw = {"n_iter": 400, "early_exaggeration_iter": 125} if quick else {}
        return np.asarray(tsne.embed(key, z, perplexity=perplexity, **kw))
    if method == "umap":
        from latentjax.look import umap

        return np.asarray(
            umap.embed(key, z, n_neighbors=min(15, len(z) - 1), n_epochs=200 if quick else None)
        )
    raise EmbedError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def write_outputs(out_dir: str | os.PathLike, y, z, labels, *, label_names, images, title: str) -> dict:
    """The scatter PNG, the HTML viewer and the projector folder for one embedding."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [str(s) for s in label_names] if label_names is not None else None
    ax = viz.scatter(y, labels, label_names=names, images=images, title=title)
    scatter = viz.save_figure(ax.figure, out / "scatter.png")
    viewer = export.html_viewer(
        out / "viewer.html", y, labels=labels, label_names=names, images=images, title=title
    )
    meta = {"label": labels} if names is None else {"label": labels, "name": [names[int(i)] for i in labels]}
    config = export.projector(out / "projector", z, metadata=meta, images=images, tensor_name=title)
    return {"scatter": str(scatter), "viewer": str(viewer), "projector": str(config.parent)}


def _dataset_of(run_dir: pathlib.Path) -> str:
    cfg = run_dir / "config.json"
    if not cfg.exists() and (run_dir.parent / "config.json").exists():
        cfg = run_dir.parent / "config.json"
    try:
        name = json.loads(cfg.read_text()).get("train", {}).get("dataset")
    except (OSError, ValueError) as e:
        raise EmbedError(f"cannot read the data set name from {cfg} ({e}); pass --dataset") from e
    if not name:
        raise EmbedError(f"{cfg} does not name the training data set; pass --dataset")
    return name


def run(
    checkpoint_dir: str | os.PathLike,
    *,
    method: str,
    out_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    n: int = 5000,
    seed: int = 0,
    dataset: str | None = None,
) -> dict:
    """Embeds the first ``n`` test images' latents of a trained run and writes the outputs.

    Args:
      checkpoint_dir: a ``latentjax train`` / ``latentjax demo`` run folder.
      method: ``"pca"``, ``"tsne"`` or ``"umap"``.
      out_dir: folder for ``embedding.npz``, ``scatter.png``, ``viewer.html``, ``projector/``.
      data_dir: the data directory (default ``$LATENTJAX_DATA_DIR``).
      n: number of test images.
      seed: seeds the embedding.
      dataset: data set name (default: the one recorded in the run's ``config.json``).

    Returns:
      A JSON-able summary: method, n, latent_dim, seconds, trustworthiness@10 and the files.

    Examples:
      >>> run("runs/vae", method="umap", out_dir="emb")  # doctest: +SKIP
      {'method': 'umap', 'n': 5000, ...}
    """
    if method not in METHODS:
        raise EmbedError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if n < 3:
        raise EmbedError(f"n={n}: need at least 3 images to embed")
    run_dir = pathlib.Path(checkpoint_dir)
    model, cfg = checkpoint.load_model(run_dir)
    name = dataset or _dataset_of(run_dir)
    ds = data.load(name, data_dir=data_dir, limit=n)
    images, labels = ds.test_images[:n], np.asarray(ds.test_labels[:n])
    if tuple(images.shape[1:]) != tuple(cfg.image_shape):
        raise EmbedError(
            f"data set {name!r} has images {images.shape[1:]}, the model takes {cfg.image_shape}"
        )
    z = models.encode_images(model, images)
    t0 = time.perf_counter()
    y = reduce(jax.random.key(seed), z, method=method)
    seconds = time.perf_counter() - t0
    from latentjax.look import metrics

    trust = float(metrics.trustworthiness(z, y, k=10))
    out = pathlib.Path(out_dir)
    files = write_outputs(
        out,
        y,
        z,
        labels,
        label_names=ds.label_names,
        images=images,
        title=f"{name} latents ({cfg.latent_dim}-d), {method}",
    )
    np.savez(out / "embedding.npz", embedding=y, latents=z, labels=labels)
    files["embedding"] = str(out / "embedding.npz")
    return {
        "method": method,
        "dataset": name,
        "n": int(len(z)),
        "latent_dim": int(z.shape[1]),
        "seconds": round(seconds, 3),
        "trustworthiness": round(trust, 4),
        "files": files,
    }
