"""What the explorer serves: a run's model, its test images, their latents and their 2-D map.

`load` encodes the first ``num_points`` test images, reduces their latents to 2-D once and caches the map
in the run folder (``RUN/explore/<method>-<n>-seed<s>.npz``, written atomically; reused while the latents
it was computed from are unchanged). With the ``"map"`` inverse (the default for UMAP) the fitted map
itself is cached (``look.maps.save``) and a map position goes back to the latent space by
``look.maps.inverse_transform``, umap-learn's method; otherwise by `_inverse.inverse_map`.
`Session.decode` is one jitted ``vmap`` of ``models.decode`` whose batches
are padded to a few fixed sizes, so it compiles once per size, not once per request.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pathlib
import tempfile
import warnings
from typing import Any

import jax
import numpy as np
from PIL import Image

from latentjax import data, move
from latentjax.app import embed
from latentjax.app.explore import _inverse
from latentjax.errors import CheckpointError, InputError
from latentjax.learn import models, runs
from latentjax.look import maps

BATCH_SIZES = (1, 4, 16, 64, 256)  # decode batches are padded up to one of these
MAX_BATCH = BATCH_SIZES[-1]
CACHE_DIR = "explore"
# How a map position goes back to a latent. "auto": umap-learn's inverse_transform for UMAP maps,
# inverse-distance weighting for PCA and t-SNE. Measured by benchmarks/explore_inverse.py on 200 held-out
# Fashion-MNIST test latents of a 16-d MLP VAE (map of 1,800; latent RMS error / spread, image MAE): UMAP
# 0.542 / 0.068 with inverse_transform vs 0.564 / 0.069 with IDW, 2.1 ms for one position; t-SNE 0.500 /
# 0.059 vs 0.458 / 0.052 (IDW better; the t-SNE inverse calibrates the reference on every call).
INVERSES = ("auto", "idw", "map")


@dataclasses.dataclass(frozen=True)
class Session:
    """A loaded run, ready to serve.

    Attributes:
      run_dir: the run folder.
      model: the trained model.
      config: its ``models.Config``.
      dataset: the data set's name.
      images: ``(n, h, w, c)`` uint8 test images.
      labels: ``(n,)`` integer labels.
      label_names: the name of each label value.
      factors: known factor / attribute name -> ``(n,)`` values (empty when the data set has none).
      latents: ``(n, d)`` float32 posterior means of ``images``.
      points: ``(n, 2)`` float32 map of ``latents``.
      method: the map's method (``"pca"``, ``"tsne"``, ``"umap"``).
      fitted: the fitted ``look.maps`` map when positions are inverted by ``maps.inverse_transform``,
        else None (inverse-distance weighting, `_inverse.inverse_map`).
      seed: seeds the map and the inverse's negative samples.
    """

    run_dir: pathlib.Path
    model: Any
    config: models.Config
    dataset: str
    images: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    factors: dict[str, np.ndarray]
    latents: np.ndarray
    points: np.ndarray
    method: str
    fitted: Any = dataclasses.field(default=None, repr=False, compare=False)
    seed: int = 0
    _decode: Any = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def inverse_name(self) -> str:
        """How map positions become latents, in words (the page and the README quote it)."""
        if self.fitted is None:
            return f"inverse-distance weighting of the {_inverse.K} nearest map points' latents"
        return "look.maps.inverse_transform (umap-learn's inverse_transform)"

    def inverse(self, xy) -> np.ndarray:
        """``(m, 2)`` map positions -> ``(m, d)`` latents (``maps.inverse_transform`` or `inverse_map`).

        ``maps.inverse_transform`` runs in batches padded to `BATCH_SIZES` (one compilation per
        size), each position's negative samples seeded by the session's seed.
        """
        if self.fitted is None:
            return _inverse.inverse_map(self.points, self.latents, xy)
        xy = np.asarray(xy, np.float32)
        if xy.ndim != 2 or xy.shape[1] != 2 or not np.all(np.isfinite(xy)):
            # the same checks and message as the inverse-distance path
            return _inverse.inverse_map(self.points, self.latents, xy)
        out = []
        for i in range(0, len(xy), MAX_BATCH):
            part = xy[i : i + MAX_BATCH]
            size = next(b for b in BATCH_SIZES if b >= len(part))
            padded = np.zeros((size, 2), np.float32)
            padded[: len(part)] = part
            padded[len(part) :] = part[-1]
            z = maps.inverse_transform(self.fitted, jax.random.key(self.seed), padded)
            out.append(np.asarray(z, np.float32)[: len(part)])
        return np.concatenate(out) if out else np.zeros((0, self.latents.shape[1]), np.float32)

    def decode(self, z) -> np.ndarray:
        """``(m, d)`` latents -> ``(m, h, w, c)`` float32 images in [0, 1], in padded jitted batches."""
        z = np.asarray(z, np.float32)
        out = []
        for i in range(0, len(z), MAX_BATCH):
            part = z[i : i + MAX_BATCH]
            size = next(b for b in BATCH_SIZES if b >= len(part))
            padded = np.zeros((size, z.shape[1]), np.float32)
            padded[: len(part)] = part
            out.append(np.asarray(self._decode(self.model, padded))[: len(part)])
        return np.concatenate(out) if out else np.zeros((0, *self.config.image_shape), np.float32)

    def decoder(self, z: jax.Array) -> jax.Array:
        """The single-latent decoder ``(d,) -> (h, w, c)`` that ``move`` functions take."""
        return models.decode(self.model, z)


@jax.jit
def _decode_batch(model, z):
    return jax.vmap(lambda zi: models.decode(model, zi))(z)


def to_uint8(images) -> np.ndarray:
    """Float images in [0, 1] -> uint8 (rounded), the 8-bit values the page shows.

    Examples:
      >>> to_uint8(np.array([0.0, 0.5, 1.0])).tolist()
      [0, 128, 255]
    """
    return np.clip(np.round(np.asarray(images, np.float64) * 255.0), 0, 255).astype(np.uint8)


def png(image) -> bytes:
    """One ``(h, w, c)`` image (uint8, or float in [0, 1]) as PNG bytes: 8-bit grey or RGB."""
    a = np.asarray(image)
    a = a if a.dtype == np.uint8 else to_uint8(a)
    a = a[..., 0] if a.shape[-1] == 1 else a
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _save_atomic(path: pathlib.Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def _map(run_dir: pathlib.Path, z: np.ndarray, method: str, seed: int) -> np.ndarray:
    """The cached map of ``z``, or a new one (cached when the run folder is writable)."""
    path = run_dir / CACHE_DIR / f"{method}-{len(z)}-seed{seed}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                if f["latents"].shape == z.shape and np.array_equal(f["latents"], z):
                    return np.asarray(f["points"], np.float32)
        except (OSError, ValueError, KeyError):
            pass  # unreadable: computed again and rewritten
    points = embed.reduce(jax.random.key(seed), z, method=method).astype(np.float32)
    try:
        _save_atomic(path, points=points, latents=z)
    except OSError as e:
        warnings.warn(f"could not cache the map in {path.parent}: {e}", stacklevel=2)
    return points


def _fitted_map(run_dir: pathlib.Path, z: np.ndarray, method: str, seed: int):
    """The cached fitted ``look.maps`` map of ``z`` (``maps.load``), or a new one (``maps.save``)."""
    path = run_dir / CACHE_DIR / f"{method}-{len(z)}-seed{seed}-map"
    try:
        fitted = maps.load(path)
        kind = maps.UMAPMap if method == "umap" else maps.TSNEMap
        if isinstance(fitted, kind) and np.array_equal(np.asarray(fitted.x), z):
            return fitted
    except CheckpointError:
        pass  # missing, corrupt or of another version: fitted again and rewritten
    fit = maps.fit_umap if method == "umap" else maps.fit_tsne
    fitted = fit(jax.random.key(seed), z)
    try:
        maps.save(fitted, path)
    except OSError as e:
        warnings.warn(f"could not cache the map in {path.parent}: {e}", stacklevel=2)
    return fitted


def load(
    run_dir: str | os.PathLike,
    *,
    method: str = "tsne",
    data_dir: str | os.PathLike | None = None,
    num_points: int = 2000,
    seed: int = 0,
    inverse: str = "auto",
) -> Session:
    """Loads a run for the explorer: model, test images, latents and their (cached) 2-D map.

    Args:
      run_dir: a ``latentjax train`` / ``latentjax demo`` run folder.
      method: ``"pca"``, ``"tsne"`` or ``"umap"``.
      data_dir: the data directory (default ``$LATENTJAX_DATA_DIR``).
      num_points: test images on the map.
      seed: seeds the map (and the ``"map"`` inverse's negative samples).
      inverse: how map positions become latents: ``"map"`` (``look.maps.inverse_transform``, umap-learn's
        method; t-SNE and UMAP maps), ``"idw"`` (inverse-distance weighting), ``"auto"`` (``"map"`` for
        UMAP, ``"idw"`` otherwise: the better of the two on held-out points, see `INVERSES`).

    Returns:
      A `Session`.

    Raises:
      InputError: an unknown method or inverse, too few points, a ``"map"`` inverse of a PCA map, or a
        data set whose images do not fit the model.
      CheckpointError: no run there.

    Examples:
      >>> session = load("runs/vae", method="pca")  # doctest: +SKIP
    """
    where = "explore.load"
    if method not in embed.METHODS:
        raise InputError(f"{where}: unknown method {method!r}; choose one of {', '.join(embed.METHODS)}")
    if num_points < 10:
        raise InputError(f"{where}: num_points={num_points}: need at least 10 images on the map")
    if inverse not in INVERSES:
        raise InputError(f"{where}: unknown inverse {inverse!r}; choose one of {', '.join(INVERSES)}")
    if inverse == "map" and method == "pca":
        raise InputError(f"{where}: inverse='map' needs a t-SNE or UMAP map, not pca")
    use_map = inverse == "map" or (inverse == "auto" and method == "umap")
    run_dir = pathlib.Path(run_dir)
    model, cfg = runs.load_model(run_dir)
    name = runs.read_config(run_dir).train.get("dataset")
    if not name:
        raise InputError(f"{where}: the run in {run_dir} does not name its data set in config.json")
    ds = data.load(name, data_dir=data_dir, limit=num_points)
    images, labels = ds.test_images[:num_points], np.asarray(ds.test_labels[:num_points]).astype(np.int64)
    if tuple(images.shape[1:]) != tuple(cfg.image_shape):
        raise InputError(
            f"{where}: data set {name!r} has images {images.shape[1:]}, the model {cfg.image_shape}"
        )
    z = models.encode_images(model, images)
    factors = {k: np.asarray(v[1][:num_points]) for k, v in (ds.factors or {}).items()}
    fitted = _fitted_map(run_dir, z, method, seed) if use_map else None
    return Session(
        run_dir=run_dir,
        model=model,
        config=cfg,
        dataset=name,
        images=images,
        labels=labels,
        label_names=tuple(str(s) for s in ds.label_names),
        factors=factors,
        latents=z,
        points=np.asarray(fitted.embedding, np.float32) if use_map else _map(run_dir, z, method, seed),
        method=method,
        fitted=fitted,
        seed=seed,
        _decode=_decode_batch,
    )


def edit_vectors(session: Session) -> dict[str, dict]:
    """The page's edit directions: per known factor or labelled attribute, its vector and typical scale.

    A 0/1 attribute gets `move.attribute_vector` (strength 1 moves the mean negative to the mean
    positive); a continuous factor `move.regression_vector` (per unit of the factor; its slider spans
    three standard deviations); categorical factors equal to the labels are left to the class vectors.

    Returns:
      name -> ``{"vector": (d,) list, "scale": float, "kind": "attribute" | "factor"}``.
    """
    out = {}
    for name, v in session.factors.items():
        v = np.asarray(v)
        values = np.unique(v)
        if np.issubdtype(v.dtype, np.integer) and set(values.tolist()) <= {0, 1}:
            if len(values) < 2:
                continue
            vec, scale, kind = move.attribute_vector(session.latents, v.astype(bool)), 1.0, "attribute"
        elif np.issubdtype(v.dtype, np.floating) and np.std(v) > 0:
            vec, scale, kind = (
                move.regression_vector(session.latents, v.astype(np.float32)),
                3 * np.std(v),
                "factor",
            )
        else:
            continue
        out[name] = {"vector": np.asarray(vec, np.float32).tolist(), "scale": float(scale), "kind": kind}
    return out


def class_means(session: Session) -> list[list[float] | None]:
    """The mean latent of each class (None: no test example); class vectors are their differences."""
    out = []
    for c in range(len(session.label_names)):
        m = session.labels == c
        out.append(session.latents[m].mean(axis=0).tolist() if m.any() else None)
    return out
