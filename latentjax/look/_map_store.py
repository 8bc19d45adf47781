"""The fitted maps (``TSNEMap``, ``UMAPMap``) and their files: arrays in ``.npz``, metadata in ``.json``.

A map is saved as ``<path>.npz`` (its arrays, read back with ``allow_pickle=False``) and
``<path>.json`` beside it (format name and version, method, hyperparameters, array shapes and the
``.npz``'s SHA-256). Only what ``maps.transform`` and ``maps.inverse_transform`` need is stored.
``maps`` re-exports everything here.
"""

import hashlib
import json
import os
import pathlib
import zipfile
from typing import NamedTuple

import jax
import numpy as np

from latentjax.errors import CheckpointError
from latentjax.look import _parametric_net

FORMAT = "latentjax.look.maps"
VERSION = 1


class TSNEMap(NamedTuple):
    """A fitted t-SNE map: what ``maps.transform`` and ``maps.inverse_transform`` need.

    Attributes:
      x: ``(n, d)`` the reference inputs; the exact neighbour search (``neighbors.knn``) is
        recomputed from them, so no index is stored.
      embedding: ``(n, 2)`` their positions in the map.

    Examples:
      >>> TSNEMap(np.zeros((3, 4)), np.zeros((3, 2))).embedding.shape
      (3, 2)
    """

    x: jax.Array
    embedding: jax.Array


class UMAPMap(NamedTuple):
    """A fitted UMAP map: what ``maps.transform`` and ``maps.inverse_transform`` need.

    Attributes:
      x: ``(n, d)`` the reference inputs (the neighbour search is recomputed from them).
      embedding: ``(n, num_components)`` their positions.
      sigma: ``(n,)`` the fit's membership bandwidths (``umap.calibrate``).
      rho: ``(n,)`` the fit's distances to the nearest neighbour.
      a: the map's kernel parameter (``umap.find_ab``).
      b: the map's kernel parameter.
      n_neighbors: the fit's neighbourhood size (counting the point itself).
      num_steps: the fit's ``num_steps`` as given (None: umap-learn's default rule).

    Examples:
      >>> m = UMAPMap(np.zeros((3, 4)), np.zeros((3, 2)), np.ones(3), np.zeros(3), 1.58, 0.9, 2, None)
      >>> m.n_neighbors
      2
    """

    x: jax.Array
    embedding: jax.Array
    sigma: jax.Array
    rho: jax.Array
    a: float
    b: float
    n_neighbors: int
    num_steps: int | None


_ARRAYS = {"tsne": ("x", "embedding"), "umap": ("x", "embedding", "sigma", "rho")}
_PARAMS = {"tsne": (), "umap": ("a", "b", "n_neighbors", "num_steps")}
_TYPES = {"tsne": TSNEMap, "umap": UMAPMap, "parametric": _parametric_net.ParametricMap}
# A parametric map (look.parametric) stores its networks' layers: its arrays are named by them.
_PARAMS["parametric"] = ("method", "a", "b", "encoder_widths", "decoder_widths")


def _paths(path) -> tuple[pathlib.Path, pathlib.Path]:
    p = pathlib.Path(path)
    base = p.with_suffix("") if p.suffix in (".npz", ".json") else p
    return base.with_name(base.name + ".npz"), base.with_name(base.name + ".json")


def save(fitted: TSNEMap | UMAPMap, path: str | os.PathLike) -> pathlib.Path:
    """Writes a fitted map to ``<path>.npz`` (arrays) and ``<path>.json`` (metadata); no pickle.

    Args:
      fitted: a ``TSNEMap``, ``UMAPMap`` or ``ParametricMap`` (its networks' layers as arrays).
      path: the files' path, with or without the ``.npz`` suffix.

    Returns:
      The ``.npz`` path.

    Raises:
      CheckpointError: ``fitted`` is not a fitted map.

    Examples:
      >>> import tempfile
      >>> m = TSNEMap(np.zeros((3, 4), np.float32), np.zeros((3, 2), np.float32))
      >>> p = save(m, pathlib.Path(tempfile.mkdtemp()) / "map")
      >>> p.name, load(p).x.shape
      ('map.npz', (3, 4))
    """
    method = next((k for k, t in _TYPES.items() if isinstance(fitted, t)), None)
    if method is None:
        raise CheckpointError(f"look.maps.save: fitted must be a TSNEMap or UMAPMap, got {type(fitted)}")
    npz, meta = _paths(path)
    npz.parent.mkdir(parents=True, exist_ok=True)
    if method == "parametric":
        arrays, parametric_params = _parametric_net.to_arrays(fitted)
    else:
        arrays = {name: np.asarray(getattr(fitted, name)) for name in _ARRAYS[method]}
    tmp = npz.with_name(npz.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, npz)
    params = {}
    if method == "umap":
        steps = fitted.num_steps
        params = {"a": float(fitted.a), "b": float(fitted.b), "n_neighbors": int(fitted.n_neighbors)}
        params["num_steps"] = None if steps is None else int(steps)
    if method == "parametric":
        params = parametric_params
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "method": method,
        "params": params,
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
        "sha256": hashlib.sha256(npz.read_bytes()).hexdigest(),
    }
    meta.write_text(json.dumps(doc, indent=2))
    return npz


def load(path: str | os.PathLike) -> TSNEMap | UMAPMap:
    """Reads a map written by ``save`` (``allow_pickle=False``), checking its format and checksum.

    Args:
      path: the ``.npz`` (or ``.json``) path, or the path without suffix.

    Returns:
      The ``TSNEMap`` or ``UMAPMap``, its arrays as numpy arrays.

    Raises:
      CheckpointError: a file is missing, not a latentjax map, of a newer format version, or
        its arrays do not match the metadata (corrupt or replaced).

    Examples:
      >>> load("/nonexistent/map.npz")
      Traceback (most recent call last):
      ...
      latentjax.errors.CheckpointError: look.maps.load: /nonexistent/map.json is missing
    """
    where = "look.maps.load"
    npz, meta = _paths(path)
    for p in (meta, npz):
        if not p.is_file():
            raise CheckpointError(f"{where}: {p} is missing")
    try:
        doc = json.loads(meta.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{where}: {meta} is not JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{where}: {meta} is not a latentjax map (format {FORMAT!r})")
    if not isinstance(doc.get("version"), int) or doc["version"] > VERSION:
        raise CheckpointError(
            f"{where}: {meta} has format version {doc.get('version')!r}; this release reads <= {VERSION}"
        )
    method = doc.get("method")
    if method not in _TYPES:
        raise CheckpointError(f"{where}: {meta} names an unknown method {method!r}")
    if hashlib.sha256(npz.read_bytes()).hexdigest() != doc.get("sha256"):
        raise CheckpointError(
            f"{where}: {npz} does not match the checksum in {meta.name} (corrupt or replaced)"
        )
    try:
        with np.load(npz, allow_pickle=False) as f:
            names = list(doc.get("arrays", {})) if method == "parametric" else _ARRAYS[method]
            arrays = {name: f[name] for name in names}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{where}: {npz} cannot be read as the map's arrays ({e})") from None
    for name, a in arrays.items():
        want = doc.get("arrays", {}).get(name, {})
        if list(a.shape) != want.get("shape") or str(a.dtype) != want.get("dtype"):
            raise CheckpointError(
                f"{where}: array {name!r} in {npz} is {a.dtype} {a.shape}, metadata says {want}"
            )
    params = doc.get("params", {})
    missing = [k for k in _PARAMS[method] if k not in params]
    if missing:
        raise CheckpointError(f"{where}: {meta} lacks the parameters {missing}")
    if method == "parametric":
        try:
            return _parametric_net.from_arrays(arrays, params)
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{where}: {npz} does not hold the map's networks ({e})") from None
    return _TYPES[method](**arrays, **{k: params[k] for k in _PARAMS[method]})
