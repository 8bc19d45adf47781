"""Data sets by name: ``load`` returns a ``Dataset`` of numpy arrays, offline unless asked to download.

The readers live next door: IDX and prepared tfds files (``_idx``), generated sprites (``_sprites``),
image folders (``_folders``, the face sets); ``_download`` fetches MNIST and Fashion-MNIST into a cache.
"""

from __future__ import annotations

import os
import pathlib
from typing import NamedTuple

import numpy as np

from latentjax.data import _download, _dsprites, _folders, _idx, _sprites
from latentjax.errors import DataError, InputError

DATA_DIR_ENV = "LATENTJAX_DATA_DIR"
NAMES = ("fashion_mnist", "mnist", "sprites", "dsprites", "smile_faces", "genki4k")

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_TEST_FRACTION = 0.1  # of the generated sprites and of the face sets, which come unsplit
_NUM_SPRITES = 20000
_SMILE_NAMES = ("not smiling", "smiling")
# Where to get the face sets, which are never downloaded (README.md, "Real data").
_FACE_SOURCES = {
    "smile_faces": "github.com/hromi/SMILEsmileD",
    "genki4k": "github.com/truongnmt/smile-detection",
}


class Dataset(NamedTuple):
    """A data set split into train and test, as numpy arrays.

    Attributes:
        train_images: ``uint8`` ``(n, h, w, c)``.
        train_labels: integer class labels ``(n,)`` (sprites: the shape class).
        test_images: ``uint8`` ``(m, h, w, c)``.
        test_labels: integer class labels ``(m,)``.
        label_names: the name of each label value.
        name: the data set's name, as given to `load`.
        factors: for sprites and faces, factor/attribute name -> ``(train, test)`` values;
            ``None`` for the digit and clothing sets.

    Examples:
        >>> ds = load("sprites", limit=10)
        >>> ds.name, len(ds.test_labels), ds.factors["scale"][0].shape
        ('sprites', 10, (10,))
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    label_names: tuple[str, ...]
    name: str
    factors: dict[str, tuple[np.ndarray, np.ndarray]] | None


def load(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    limit: int | None = None,
    tfds_data_dir: str | os.PathLike | None = None,
    download: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> Dataset:
    """Loads a data set by name: offline, or fetching MNIST / Fashion-MNIST once with ``download=True``.

    MNIST and Fashion-MNIST are looked for in ``<data_dir>/<name>/`` (IDX files, else a prepared
    tfds data set), then in the cache ``<cache_dir>/<name>/``; with ``download=True`` the official
    files the cache lacks are fetched into it first (`data.download`), so later loads need no network.

    Args:
        name: one of ``"fashion_mnist"``, ``"mnist"`` (IDX files or a prepared tfds data set,
            which needs the ``tfds`` extra), ``"sprites"`` (generated, needs no files),
            ``"dsprites"`` (the dSprites grid, generated: `DSprites`; in the order of ``seed``, the
            last 10 % is the test set; the whole set is 3 GB, so pass ``limit`` for less),
            ``"smile_faces"`` (SMILEsmileD), ``"genki4k"`` (GENKI-4K).
        data_dir: a directory laid out like ``shared/data`` (``<data_dir>/mnist/*.gz``, ...);
            defaults to ``$LATENTJAX_DATA_DIR``. Not needed for ``"sprites"``.
        seed: seeds the sprite factors and the face sets' train/test split.
        limit: keep at most ``limit`` train and ``limit`` test examples (the first ones).
        tfds_data_dir: where to look for a prepared tfds data set (``<dir>/<name>/<version>/``)
            when the IDX files are absent; defaults to ``data_dir``.
        download: fetch MNIST or Fashion-MNIST into the cache when neither the data directory
            nor the cache holds it (base URL: ``$LATENTJAX_DATA_URL``, else the official mirrors).
            The face sets are never downloaded; ``"sprites"`` needs nothing.
        cache_dir: the download cache; defaults to ``$LATENTJAX_CACHE_DIR``, else
            ``~/.cache/latentjax/data``.

    Returns:
        A `Dataset`.

    Raises:
        DataError: unknown name, missing or corrupt files, a prepared tfds data set without
            tensorflow-datasets installed, or a failed download (naming the URL and the problem).
        InputError: a ``limit`` below 1.

    Examples:
        >>> ds = load("sprites", limit=100)
        >>> ds.train_images.shape, ds.train_images.dtype, ds.label_names[0]
        ((100, 32, 32, 1), dtype('uint8'), 'square')
        >>> load("mnist", data_dir="/data").label_names[:3]  # doctest: +SKIP
        ('0', '1', '2')
    """
    if limit is not None and limit < 1:
        raise InputError(f"data.load: limit must be a positive number of examples, got {limit}")
    if name == "sprites":
        return _load_sprites(seed=seed, limit=limit)
    if name == "dsprites":
        return _load_dsprites(seed=seed, limit=limit)
    if name not in NAMES:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(NAMES)}")
    if name in ("fashion_mnist", "mnist"):
        tfds_root = None if tfds_data_dir is None else pathlib.Path(tfds_data_dir).expanduser()
        d = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or tfds_root
        root = None if not d else pathlib.Path(d).expanduser()
        return _load_digits(
            name, root, tfds_root or root, cache_dir=cache_dir, download=download, limit=limit
        )
    root = _data_root(data_dir)
    if name == "smile_faces":
        folder = root / "smile_faces_lfw"
        files = (folder / "SMILEsmileD_64x64_gray.zip", folder / "labels.csv")
        return _load_faces(name, *files, columns=None, label="smiling", seed=seed, limit=limit)
    folder = root / "genki4k"
    files = (folder / "GENKI4K_faces_64x64_rgb.zip", folder / "labels.txt")
    columns = ("smile", "yaw", "pitch", "roll")
    return _load_faces(name, *files, columns=columns, label="smile", seed=seed, limit=limit)


def _load_digits(
    name: str,
    root: pathlib.Path | None,
    tfds_root: pathlib.Path | None,
    *,
    cache_dir: str | os.PathLike | None,
    download: bool,
    limit: int | None,
) -> Dataset:
    """MNIST or Fashion-MNIST: ``<root>/<name>/`` IDX files, a prepared tfds set, else the cache."""
    names = FASHION_MNIST_CLASSES if name == "fashion_mnist" else tuple(str(i) for i in range(10))
    splits = None if root is None else _idx._read_idx_set(root / name, num_classes=len(names), limit=limit)
    prepared = None if splits is not None or tfds_root is None else _idx._prepared_tfds(tfds_root, name)
    if prepared is not None:
        splits = _idx._read_tfds(prepared, limit=limit)
    if splits is None:
        cache = _download.cache_dir_for(cache_dir)
        if download:
            _download.download(name, cache_dir=cache)
        if _download.missing(name, cache):
            where = (
                f"the IDX files {_idx._IDX_FILES['train_images']}.gz etc. in {root / name}, or a prepared "
                f"tfds data set in {tfds_root / name}/<version>/"
                if root is not None
                else "a data directory"
            )
            raise DataError(
                f"data set {name!r} not found: expected {where} (pass data_dir or set {DATA_DIR_ENV}), "
                f"or a download in {cache / name}: fetch it with data.load({name!r}, download=True) or "
                "the command line's --download"
            )
        splits = _idx._read_idx_set(cache / name, num_classes=len(names), limit=limit)
    return Dataset(*splits["train"], *splits["test"], names, name, None)


def _load_sprites(*, seed: int, limit: int | None) -> Dataset:
    """The 20,000 sprites of ``seed``: the last 10 % are the test set; only what is kept is drawn."""
    factors = _sprites._sprite_factors(_NUM_SPRITES, seed)
    n_test = int(round(_NUM_SPRITES * _TEST_FRACTION))
    train = np.arange(_NUM_SPRITES - n_test)[:limit]
    test = np.arange(_NUM_SPRITES - n_test, _NUM_SPRITES)[:limit]
    split = {k: (v[train], v[test]) for k, v in factors.items()}
    x_train = _sprites.render_sprites({k: v[0] for k, v in split.items()})
    x_test = _sprites.render_sprites({k: v[1] for k, v in split.items()})
    labels = split["shape"]
    return Dataset(x_train, labels[0], x_test, labels[1], _sprites.SPRITE_SHAPES, "sprites", split)


def _load_dsprites(*, seed: int, limit: int | None) -> Dataset:
    """All 737,280 dSprites-grid images in the order of ``seed``: the last 10 % are the test set."""
    ds = _dsprites.DSprites()
    order = np.random.default_rng(seed).permutation(len(ds))
    n_test = int(round(len(ds) * _TEST_FRACTION))
    parts = [ds.index_to_factors(o[:limit]) for o in (order[: len(ds) - n_test], order[len(ds) - n_test :])]
    values = [ds.values(f) for f in parts]
    split = {k: (values[0][k], values[1][k]) for k in _dsprites.DSPRITES_FACTORS}
    x_train, x_test = (ds.render(f) for f in parts)
    labels = split["shape"]
    return Dataset(x_train, labels[0], x_test, labels[1], _dsprites.DSPRITES_SHAPES, "dsprites", split)


def _load_faces(
    name: str,
    images: pathlib.Path,
    labels_file: pathlib.Path,
    *,
    columns: tuple[str, ...] | None,
    label: str,
    seed: int,
    limit: int | None,
) -> Dataset:
    """A face set: images and attributes, split by `_face_split`; ``label`` is its 0/1 smile column."""
    for path in (images, labels_file):
        if not path.is_file():
            raise DataError(
                f"data set {name!r} not found: expected {path}; pass data_dir or set {DATA_DIR_ENV}; it is "
                f"never downloaded: build it from {_FACE_SOURCES[name]} as README.md's 'Real data' says"
            )

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        return _face_split(n, seed=seed, limit=limit)

    (x_train, train), (x_test, test) = _folders._read_folder(
        images, labels_file, columns=columns, path_column="path", groups=split
    )
    factors = {a: (train[a], test[a]) for a in train}
    y_train, y_test = factors[label] = tuple(v.astype(np.int32) for v in factors[label])
    return Dataset(x_train, y_train, x_test, y_test, _SMILE_NAMES, name, factors)


def _face_split(n: int, *, seed: int, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the train and the test images among ``n`` listed faces.

    The files list smiling faces first, so the split is a seeded shuffle whose last 10 % is the
    test set; ``limit`` keeps the first ``limit`` of each, chosen before decoding so that a limited
    load decodes only ``2 * limit`` images.
    """
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * _TEST_FRACTION))
    return order[: n - n_test][:limit], order[n - n_test :][:limit]


def _data_root(data_dir: str | os.PathLike | None) -> pathlib.Path:
    d = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV)
    if not d:
        raise DataError(
            f"no data directory: pass data_dir or set {DATA_DIR_ENV} (a folder "
            "holding e.g. mnist/*.gz IDX files or prepared tfds data sets)"
        )
    return pathlib.Path(d).expanduser()
