"""``latentjax embed``: a trained model's test latents reduced to 2-D, plotted and exported.

Writes the embedding (``embedding.npz``), a labelled scatter, the self-contained HTML viewer
and a TensorBoard projector folder of the latents.
"""

from __future__ import annotations

import os
import pathlib
import time

import jax
import numpy as np

from latentjax import data, viz
from latentjax.errors import InputError
from latentjax.learn import models, runs
from latentjax.look import export, metrics, pca, tsne, umap

METHODS = ("pca", "tsne", "umap")


def reduce(key: jax.Array, z, *, method: str, quick: bool = False) -> np.ndarray:
    """``(n, d)`` latents to ``(n, 2)`` with ``"pca"``, ``"tsne"`` or ``"umap"`` (library defaults).

    Args:
      key: a ``jax.random.key`` (t-SNE's and UMAP's initialisation and sampling).
      z: ``(n, d)`` latents.
      method: ``"pca"``, ``"tsne"`` or ``"umap"``.
      quick: trade quality for time (fewer t-SNE steps and UMAP steps), for demos.

    Returns:
      ``(n, 2)`` float32 numpy array.

    Examples:
      >>> reduce(jax.random.key(0), np.eye(4, 3), method="pca").shape
      (4, 2)
    """
    z = np.asarray(z, np.float32)
    if method == "pca":
        return np.asarray(pca.transform(pca.fit(z, num_components=2), z))
    if method == "tsne":
        perplexity = float(min(30.0, max(2.0, (len(z) - 1) / 3.0)))
        steps = {"num_steps": 400, "early_exaggeration_steps": 125} if quick else {}
        return np.asarray(tsne.embed(key, z, perplexity=perplexity, **steps))
    if method == "umap":
        num_steps = 200 if quick else None
        return np.asarray(umap.embed(key, z, n_neighbors=min(15, len(z) - 1), num_steps=num_steps))
    raise InputError(f"embed.reduce: unknown method {method!r}; choose one of {', '.join(METHODS)}")


def projector_metadata(labels, label_names) -> dict:
    """The projector's metadata columns: ``label``, and ``name`` when the labels have names.

    Args:
      labels: ``(n,)`` integer labels.
      label_names: the name of each label, or None.

    Returns:
      ``{"label": labels}`` or ``{"label": labels, "name": [...]}``.

    Examples:
      >>> projector_metadata(np.array([1, 0]), ["cat", "dog"])["name"]
      ['dog', 'cat']
    """
    if label_names is None:
        return {"label": labels}
    return {"label": labels, "name": [str(label_names[int(i)]) for i in labels]}


def write_outputs(y, z, out_dir: str | os.PathLike, *, labels, label_names, images, title: str) -> dict:
    """The scatter PNG, the HTML viewer and the projector folder for one embedding.

    Args:
      y: ``(n, 2)`` embedding.
      z: ``(n, d)`` latents (the projector's vectors).
      out_dir: folder for ``scatter.png``, ``viewer.html`` and ``projector/`` (created).
      labels: ``(n,)`` integer labels.
      label_names: the name of each label, or None.
      images: ``(n, h, w, c)`` images (thumbnails), or None.
      title: the plots' and the projector tensor's title.

    Returns:
      ``{"scatter": path, "viewer": path, "projector": folder}`` as strings.

    Examples:
      >>> import tempfile
      >>> y, z = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.eye(3)
      >>> files = write_outputs(y, z, tempfile.mkdtemp(), labels=np.array([0, 1, 1]), label_names=["a", "b"],
      ...                       images=None, title="z")
      >>> sorted(files)
      ['projector', 'scatter', 'viewer']
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [str(s) for s in label_names] if label_names is not None else None
    ax = viz.scatter(y, labels, label_names=names, images=images, title=title)
    scatter = viz.save_figure(ax.figure, out / "scatter.png")
    viewer = export.html_viewer(
        y, out / "viewer.html", labels=labels, label_names=names, images=images, title=title
    )
    meta = projector_metadata(labels, names)
    config = export.projector(z, out / "projector", metadata=meta, images=images, tensor_name=title)
    return {"scatter": str(scatter), "viewer": str(viewer), "projector": str(config.parent)}


def run(
    checkpoint_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    method: str,
    data_dir: str | os.PathLike | None = None,
    num_points: int = 5000,
    seed: int = 0,
    dataset: str | None = None,
) -> dict:
    """Embeds the first ``num_points`` test images' latents of a trained run and writes the outputs.

    Args:
      checkpoint_dir: a ``latentjax train`` / ``latentjax demo`` run folder.
      out_dir: folder for ``embedding.npz``, ``scatter.png``, ``viewer.html``, ``projector/``.
      method: ``"pca"``, ``"tsne"`` or ``"umap"``.
      data_dir: the data directory (default ``$LATENTJAX_DATA_DIR``).
      num_points: number of test images.
      seed: seeds the embedding.
      dataset: data set name (default: the one recorded in the run's ``config.json``).

    Returns:
      A JSON-able summary: method, n, latent_dim, seconds, trustworthiness@10 and the files.

    Examples:
      >>> run("runs/vae", "emb", method="umap")  # doctest: +SKIP
      {'method': 'umap', 'n': 5000, ...}
    """
    if method not in METHODS:
        raise InputError(f"embed.run: unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if num_points < 3:
        raise InputError(f"embed.run: num_points={num_points}: need at least 3 images to embed")
    model, cfg = runs.load_model(checkpoint_dir)
    name = dataset or runs.read_config(checkpoint_dir).train.get("dataset")
    if not name:
        raise InputError(f"embed.run: the run in {checkpoint_dir} does not name its data set; pass dataset")
    ds = data.load(name, data_dir=data_dir, limit=num_points)
    images, labels = ds.test_images[:num_points], np.asarray(ds.test_labels[:num_points])
    if tuple(images.shape[1:]) != tuple(cfg.image_shape):
        raise InputError(
            f"embed.run: data set {name!r} has images {images.shape[1:]}, the model takes {cfg.image_shape}"
        )
    z = models.encode_images(model, images)
    t0 = time.perf_counter()
    y = reduce(jax.random.key(seed), z, method=method)
    seconds = time.perf_counter() - t0
    trust = float(metrics.trustworthiness(z, y, k=10))
    out = pathlib.Path(out_dir)
    title = f"{name} latents ({cfg.latent_dim}-d), {method}"
    files = write_outputs(y, z, out, labels=labels, label_names=ds.label_names, images=images, title=title)
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
