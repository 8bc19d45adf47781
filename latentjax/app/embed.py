"""``latentjax embed``: a trained model's test latents reduced to 2-D, plotted and exported.

Writes the embedding (``embedding.npz``), a labelled scatter, the self-contained HTML viewer
and a TensorBoard projector folder of the latents; for t-SNE and UMAP also the fitted map
(``map.npz`` + ``map.json``, ``look.maps.save``), into which ``transform=`` (``--transform``)
places another split's or data set's latents later (``look.maps.transform``).
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
from latentjax.look import export, maps, metrics, neighbors, pca, tsne, umap

METHODS = ("pca", "tsne", "umap")


def _hyper(method: str, n: int, quick: bool) -> dict:
    """``reduce``'s and ``fit_map``'s t-SNE / UMAP hyperparameters for ``n`` points (one place, one map)."""
    if method == "tsne":
        hyper = {"perplexity": float(min(30.0, max(2.0, (n - 1) / 3.0)))}
        if quick:
            hyper |= {"num_steps": 400, "early_exaggeration_steps": 125}
            if n <= 2000:
                # Exact repulsion: one compilation, where the FFT grid recompiles as the map grows.
                hyper["method"] = "exact"
        return hyper
    return {"n_neighbors": min(15, n - 1), "num_steps": 200 if quick else None}


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
        return np.asarray(tsne.embed(key, z, **_hyper("tsne", len(z), quick)))
    if method == "umap":
        return np.asarray(umap.embed(key, z, **_hyper("umap", len(z), quick)))
    raise InputError(f"embed.reduce: unknown method {method!r}; choose one of {', '.join(METHODS)}")


def fit_map(key: jax.Array, z, *, method: str, quick: bool = False, progress=False):
    """A t-SNE or UMAP map of ``(n, d)`` latents (``look.maps``), with ``reduce``'s hyperparameters.

    Args:
      key: a ``jax.random.key``.
      z: ``(n, d)`` latents.
      method: ``"tsne"`` or ``"umap"``.
      quick: as ``reduce``.
      progress: the fit's progress (t-SNE's KL every 50 steps, UMAP's bar); off by default.

    Returns:
      The ``maps.TSNEMap`` or ``maps.UMAPMap``; its ``embedding`` equals ``reduce``'s.

    Examples:
      >>> z = np.random.default_rng(0).normal(size=(40, 3))
      >>> m = fit_map(jax.random.key(0), z, method="umap", quick=True)
      >>> type(m).__name__, m.embedding.shape
      ('UMAPMap', (40, 2))
    """
    z = np.asarray(z, np.float32)
    if method in ("tsne", "umap"):
        fit = maps.fit_tsne if method == "tsne" else maps.fit_umap
        return fit(key, z, progress=progress, **_hyper(method, len(z), quick))
    raise InputError(f"embed.fit_map: method must be 'tsne' or 'umap', got {method!r}")


def _vote(y_ref, labels_ref, y_new, labels_new, k=10) -> float:
    """Accuracy of the majority label of each new point's ``k`` nearest reference points (ties: smallest)."""
    k = min(k, len(y_ref))
    idx = np.asarray(neighbors.knn(np.asarray(y_ref), k=k, queries=np.asarray(y_new)).indices)
    votes = labels_ref[idx]
    counts = np.apply_along_axis(np.bincount, 1, votes, minlength=int(labels_ref.max()) + 1)
    return float(np.mean(np.argmax(counts, axis=1) == labels_new))


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
    split: str = "test",
    transform: str | os.PathLike | None = None,
    progress: bool = False,
) -> dict:
    """Embeds the first ``num_points`` test images' latents of a trained run and writes the outputs.

    With ``transform``, the latents are placed into the map saved in that folder by an earlier
    ``run`` (``look.maps.transform``: only the new points move) instead of a new map being fitted.

    Args:
      checkpoint_dir: a ``latentjax train`` / ``latentjax demo`` run folder.
      out_dir: folder for ``embedding.npz``, ``scatter.png``, ``viewer.html``, ``projector/``, and
        for t-SNE and UMAP (without ``transform``) the map, ``map.npz`` + ``map.json``.
      method: ``"pca"``, ``"tsne"`` or ``"umap"`` (with ``transform``: the saved map's, unused).
      data_dir: the data directory (default ``$LATENTJAX_DATA_DIR``).
      num_points: number of images (the first ones of ``split``).
      seed: seeds the embedding (and the transform).
      dataset: data set name (default: the one recorded in the run's ``config.json``).
      split: ``"test"`` or ``"train"`` images.
      transform: an earlier ``run``'s ``out_dir`` (or its ``map.npz``) to place these latents into.
      progress: the fit's progress on stderr (t-SNE's KL every 50 steps, UMAP's bar).

    Returns:
      A JSON-able summary: method, n, latent_dim, seconds, trustworthiness@10 and the files; with
      ``transform`` also the map's path and, when that folder's ``embedding.npz`` has the
      reference labels, ``knn_accuracy``: the new points' labels predicted by their 10 nearest
      reference points in the map.

    Examples:
      >>> run("runs/vae", "emb", method="umap")  # doctest: +SKIP
      {'method': 'umap', 'n': 5000, ...}
    """
    if method not in METHODS:
        raise InputError(f"embed.run: unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if split not in ("test", "train"):
        raise InputError(f"embed.run: split must be 'test' or 'train', got {split!r}")
    fitted = None
    if transform is not None:
        where = pathlib.Path(transform)
        folder = where if where.is_dir() else where.parent
        if folder.resolve() == pathlib.Path(out_dir).resolve():
            raise InputError(
                f"embed.run: out_dir must differ from the map's folder {folder} (its outputs stay)"
            )
        fitted = maps.load(where / "map.npz" if where.is_dir() else where)
        method = "tsne" if isinstance(fitted, maps.TSNEMap) else "umap"
    if num_points < 3:
        raise InputError(f"embed.run: num_points={num_points}: need at least 3 images to embed")
    model, cfg = runs.load_model(checkpoint_dir)
    name = dataset or runs.read_config(checkpoint_dir).train.get("dataset")
    if not name:
        raise InputError(f"embed.run: the run in {checkpoint_dir} does not name its data set; pass dataset")
    ds = data.load(name, data_dir=data_dir, limit=num_points)
    images = (ds.test_images if split == "test" else ds.train_images)[:num_points]
    labels = np.asarray((ds.test_labels if split == "test" else ds.train_labels)[:num_points])
    if tuple(images.shape[1:]) != tuple(cfg.image_shape):
        raise InputError(
            f"embed.run: data set {name!r} has images {images.shape[1:]}, the model takes {cfg.image_shape}"
        )
    z = models.encode_images(model, images)
    key, out = jax.random.key(seed), pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    extra = {}
    if fitted is not None:
        if z.shape[1] != fitted.x.shape[1]:
            raise InputError(
                f"embed.run: the map in {transform} was fitted on {fitted.x.shape[1]}-d latents, "
                f"this model's are {z.shape[1]}-d"
            )
        y = np.asarray(maps.transform(fitted, key, z.astype(fitted.x.dtype)), np.float32)
        extra = {"transform": str(transform)}
        ref = folder / "embedding.npz"
        if ref.is_file():
            with np.load(ref, allow_pickle=False) as f:
                ref_labels = f["labels"] if "labels" in f else None
            if ref_labels is not None and len(ref_labels) == len(fitted.embedding):
                extra["knn_accuracy"] = round(_vote(fitted.embedding, ref_labels, y, labels), 4)
    elif method == "pca":
        y = reduce(key, z, method=method)
    else:
        fitted = fit_map(key, z, method=method, progress=progress)
        y = np.asarray(fitted.embedding, np.float32)
    seconds = time.perf_counter() - t0
    trust = float(metrics.trustworthiness(z, y, k=10))
    title = f"{name} {split} latents ({cfg.latent_dim}-d), {method}" + (" (transform)" if transform else "")
    files = write_outputs(y, z, out, labels=labels, label_names=ds.label_names, images=images, title=title)
    np.savez(out / "embedding.npz", embedding=y, latents=z, labels=labels)
    files["embedding"] = str(out / "embedding.npz")
    if fitted is not None and transform is None:
        files["map"] = str(maps.save(fitted, out / "map"))
    return {
        "method": method,
        "dataset": name,
        "split": split,
        "n": int(len(z)),
        "latent_dim": int(z.shape[1]),
        "seconds": round(seconds, 3),
        "trustworthiness": round(trust, 4),
        **extra,
        "files": files,
    }
