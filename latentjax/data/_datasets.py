"""Offline data sets by name (IDX files, prepared tfds sources, face zips, generated sprites).

Everything returns numpy: ``uint8`` images ``(n, h, w, c)`` and integer labels; nothing downloads.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
import pathlib
import re
import zipfile
import zlib
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from latentjax.data._images import validate_images
from latentjax.errors import DataError

DATA_DIR_ENV = "LATENTJAX_DATA_DIR"
NAMES = ("fashion_mnist", "mnist", "sprites", "smile_faces", "genki4k")

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
SPRITE_SHAPES = ("square", "ellipse", "triangle", "heart")
SPRITE_FACTORS = ("shape", "scale", "rotation", "x", "y")

# Sprite factor ranges: at scale 1 a shape fits in a circle of radius 0.26 image sizes, so with
# centres in [0.3, 0.7] every sprite, anti-aliased edge included, stays whole inside the image,
# and the factors are independent of each other (as in dSprites).
_SCALE_RANGE = (0.6, 1.0)  # below 0.6 a 32-pixel square, heart and ellipse look alike
_POSITION_RANGE = (0.3, 0.7)
_RADIUS = 0.26
# Shape sizes within that unit circle, chosen so that all four shapes have nearly the same
# area (1.3-1.5 for a unit circumradius): the shape, not its size, tells the classes apart.
_SQUARE_HALF_SIDE = 0.6
_ELLIPSE_AXES = (0.95, 0.5)
_HEART_SIZE = 0.9

_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# IDX type byte -> big-endian numpy dtype (LeCun's MNIST page, "THE IDX FILE FORMAT").
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_TEST_FRACTION = 0.1


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
) -> Dataset:
    """Loads a data set by name, offline.

    Args:
        name: one of ``"fashion_mnist"``, ``"mnist"`` (IDX files or a prepared tfds data set),
            ``"sprites"`` (generated, needs no files), ``"smile_faces"`` (SMILEsmileD),
            ``"genki4k"`` (GENKI-4K).
        data_dir: a directory laid out like ``shared/data`` (``<data_dir>/mnist/*.gz``, ...);
            defaults to ``$LATENTJAX_DATA_DIR``. Not needed for ``"sprites"``.
        seed: seeds the sprite factors and the face sets' train/test split.
        limit: keep at most ``limit`` train and ``limit`` test examples (the first ones).
        tfds_data_dir: where to look for a prepared tfds data set (``<dir>/<name>/<version>/``)
            when the IDX files are absent; defaults to ``data_dir``.

    Returns:
        A `Dataset`.

    Raises:
        DataError: unknown name, missing or corrupt files.

    Examples:
        >>> ds = load("sprites", limit=100)
        >>> ds.train_images.shape, ds.train_images.dtype, ds.label_names[0]
        ((100, 32, 32, 1), dtype('uint8'), 'square')
    """
    if limit is not None and limit < 1:
        raise DataError(f"limit must be a positive number of examples, got {limit}")
    if name == "sprites":
        return _load_sprites(seed=seed, limit=limit)
    if name not in NAMES:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(NAMES)}")
    if name in ("fashion_mnist", "mnist"):
        tfds_root = None if tfds_data_dir is None else pathlib.Path(tfds_data_dir).expanduser()
        root = _data_root(data_dir, default=tfds_root)
        return _load_idx_set(name, root, limit=limit, tfds_root=tfds_root or root)
    root = _data_root(data_dir)
    if name == "smile_faces":
        return _load_smile_faces(root, seed=seed, limit=limit)
    return _load_genki4k(root, seed=seed, limit=limit)


# IDX files ------------------------------------------------------------------------------------


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file (gzip-compressed or plain), checking its header against its size.

    Args:
        path: an IDX file such as ``train-images-idx3-ubyte.gz``.

    Returns:
        The array in native byte order, shape as in the header (e.g. uint8 ``(60000, 28, 28)``).

    Raises:
        DataError: naming the file when it is missing, not IDX (bad magic number), truncated,
            or longer than its header says.

    Examples:
        >>> import tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x-idx1-ubyte"
        >>> _ = p.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
        >>> read_idx(p)
        array([7, 8, 9], dtype=uint8)

    References:
        Y. LeCun et al., the MNIST database page, "THE IDX FILE FORMAT".
    """
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == b"\x1f\x8b"
        opener = gzip.open if compressed else open
        with opener(path, "rb") as f:
            magic = f.read(4)
            # Magic number: two zero bytes, the element type, the number of dimensions.
            if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in _IDX_TYPES or magic[3] == 0:
                raise DataError(f"{path} is not an IDX file: bad magic number {magic.hex() or '(empty)'}")
            ndim = magic[3]
            dims = f.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise DataError(f"{path} is truncated: its header ends after {4 + len(dims)} bytes")
            shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
            out = np.empty(shape, _IDX_TYPES[magic[2]])
            got = f.readinto(memoryview(out).cast("B")) if out.size else 0
            if got < out.nbytes:
                raise DataError(
                    f"{path} is truncated: header says shape {shape} "
                    f"({out.nbytes} data bytes) but it holds {got}"
                )
            extra = len(f.read(1 << 16))
            if extra:
                raise DataError(f"{path} is corrupt: more data than its header's shape {shape}")
    except FileNotFoundError:
        raise DataError(f"IDX file not found: {path}") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path} is corrupt or truncated: {e}") from None
    return out.astype(out.dtype.newbyteorder("="), copy=False)


def _load_idx_set(name: str, root: pathlib.Path, *, limit: int | None, tfds_root: pathlib.Path) -> Dataset:
    folder = root / name
    found = {k: _find_idx(folder, stem) for k, stem in _IDX_FILES.items()}
    names = FASHION_MNIST_CLASSES if name == "fashion_mnist" else tuple(str(i) for i in range(10))
    if all(p is None for p in found.values()):
        prepared = _prepared_tfds(tfds_root, name)
        if prepared is None:
            raise DataError(
                f"data set {name!r} not found: expected the IDX files "
                f"{_IDX_FILES['train_images']}.gz etc. in {folder}, or a prepared tfds data "
                f"set in {tfds_root / name}/<version>/; set --data-dir or {DATA_DIR_ENV}"
            )
        return _load_tfds(name, prepared, names, limit=limit)
    missing = [f"{_IDX_FILES[k]}.gz" for k, p in found.items() if p is None]
    if missing:
        raise DataError(f"data set {name!r} is incomplete: {', '.join(missing)} missing in {folder}")
    arrays = {}
    for k, p in found.items():
        a = read_idx(p)
        if limit is not None:
            a = a[:limit]
        arrays[k] = a
    for split in ("train", "test"):
        x, y = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if x.ndim != 3 or y.ndim != 1 or x.dtype != np.uint8:
            raise DataError(
                f"{found[f'{split}_images']} holds {x.dtype} {x.shape} and "
                f"{found[f'{split}_labels']} {y.dtype} {y.shape}; expected uint8 "
                "images (n, h, w) and labels (n,)"
            )
        if len(x) != len(y):
            raise DataError(
                f"{found[f'{split}_images']} has {len(x)} images but "
                f"{found[f'{split}_labels']} has {len(y)} labels"
            )
        if y.size and int(y.max()) >= len(names):
            raise DataError(
                f"{found[f'{split}_labels']} has label {int(y.max())}; expected 0..{len(names) - 1}"
            )
    return Dataset(
        arrays["train_images"][..., None],
        arrays["train_labels"].astype(np.int32),
        arrays["test_images"][..., None],
        arrays["test_labels"].astype(np.int32),
        names,
        name,
        None,
    )


def _find_idx(folder: pathlib.Path, stem: str) -> pathlib.Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


# tfds data sources ----------------------------------------------------------------------------


def _prepared_tfds(root: pathlib.Path, name: str) -> pathlib.Path | None:
    """The newest ``<root>/<name>/<version>/`` holding a prepared data set, if any."""
    folder = root / name
    if not folder.is_dir():
        return None
    versions = [
        d
        for d in folder.iterdir()
        if re.fullmatch(r"\d+\.\d+\.\d+", d.name) and (d / "dataset_info.json").is_file()
    ]
    if not versions:
        return None
    return max(versions, key=lambda d: tuple(int(v) for v in d.name.split(".")))


def _load_tfds(
    name: str, version_dir: pathlib.Path, label_names: tuple[str, ...], *, limit: int | None
) -> Dataset:
    # Imported here: tfds is heavy and only needed for this path. Reading array_record through
    # a data source never imports TensorFlow.
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder_from_directory(str(version_dir))
        sources = builder.as_data_source()
    except Exception as e:  # tfds raises many kinds; all mean the same thing to the user.
        raise DataError(
            f"cannot read the prepared tfds data set in {version_dir}: {type(e).__name__}: {e}".splitlines()[
                0
            ]
        ) from None
    out = {}
    for split in ("train", "test"):
        if split not in sources:
            raise DataError(f"the prepared tfds data set in {version_dir} has no {split!r} split")
        source = sources[split]
        n = len(source) if limit is None else min(limit, len(source))
        if n == 0:
            raise DataError(f"the prepared tfds data set in {version_dir} has an empty {split!r} split")
        records = source.__getitems__(list(range(n)))
        if not {"image", "label"} <= set(records[0]):
            raise DataError(
                f"the prepared tfds data set in {version_dir} has features "
                f"{sorted(records[0])}; expected 'image' and 'label'"
            )
        images = np.stack([np.asarray(r["image"], np.uint8) for r in records])
        if images.ndim == 3:
            images = images[..., None]
        out[split] = (
            validate_images(images, what=f"images of {version_dir}"),
            np.array([int(r["label"]) for r in records], np.int32),
        )
    return Dataset(*out["train"], *out["test"], label_names, name, None)


# Sprites --------------------------------------------------------------------------------------


def sprites(*, num: int = 20000, size: int = 32, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Generates anti-aliased grayscale sprites of simple shapes with known factors.

    Each image shows one white shape on black, drawn from independent uniform factors:
    ``shape`` (0..3: square, ellipse, triangle, heart), ``scale`` in [0.6, 1] (at 1, the shape
    fits in a circle of radius 0.26 image sizes), ``rotation`` in [0, 2 pi) (radians,
    counter-clockwise on screen), and the centre ``x`` (column), ``y`` (row) in [0.3, 0.7] of
    the image size, so every shape stays whole. A rotation is visible only modulo the
    shape's symmetry (square 90 degrees, triangle 120, ellipse 180; the heart has none).
    Anti-aliasing uses each shape's signed distance: a pixel's grey level is the fraction of
    the pixel the shape covers, estimated from the distance at its centre; this matches 8x8
    supersampling to 0.2/255 on average (5/255 on edge pixels) at 1/64 of its cost.

    Args:
        num: number of images.
        size: image height and width in pixels.
        seed: the factors are drawn from ``numpy.random.default_rng(seed)``.

    Returns:
        ``(images, factors)``: uint8 ``(num, size, size, 1)`` and a dict with ``"shape"``
        (int32) and ``"scale"``, ``"rotation"``, ``"x"``, ``"y"`` (float32), each ``(num,)``.

    Examples:
        >>> x, f = sprites(num=8, size=32, seed=0)
        >>> x.shape, x.dtype, sorted(f)
        ((8, 32, 32, 1), dtype('uint8'), ['rotation', 'scale', 'shape', 'x', 'y'])

    References:
        L. Matthey et al., dSprites: disentanglement testing sprites dataset (2017), the
        model for the factors; I. Quilez, "2D distance functions" (iquilezles.org), the
        signed distances of the box, ellipse (approximate), triangle and heart.
    """
    if num < 0 or size < 4:
        raise DataError(f"sprites needs num >= 0 and size >= 4, got num={num}, size={size}")
    factors = _sprite_factors(num, seed)
    return render_sprites(factors, size=size), factors


def _sprite_factors(num: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "shape": rng.integers(0, len(SPRITE_SHAPES), num).astype(np.int32),
        "scale": rng.uniform(*_SCALE_RANGE, num).astype(np.float32),
        "rotation": rng.uniform(0.0, 2 * np.pi, num).astype(np.float32),
        "x": rng.uniform(*_POSITION_RANGE, num).astype(np.float32),
        "y": rng.uniform(*_POSITION_RANGE, num).astype(np.float32),
    }


def render_sprites(factors: dict[str, np.ndarray], *, size: int = 32, supersample: int = 1) -> np.ndarray:
    """Draws sprites from given factor values (see `sprites` for their meaning and ranges).

    Args:
        factors: ``"shape"``, ``"scale"``, ``"rotation"``, ``"x"``, ``"y"``, each ``(n,)``;
            values outside the ranges of `sprites` are drawn as given (shapes may be cut off).
        size: image height and width in pixels.
        supersample: average the coverage over ``supersample**2`` sub-pixel samples (1 is
            enough for the signed-distance coverage; larger values give a reference).

    Returns:
        uint8 ``(n, size, size, 1)``.

    Examples:
        >>> f = {"shape": np.array([0]), "scale": np.array([1.0]), "rotation": np.array([0.0]),
        ...      "x": np.array([0.5]), "y": np.array([0.5])}
        >>> int(render_sprites(f, size=32)[0, 16, 16, 0])
        255
    """
    missing = [k for k in SPRITE_FACTORS if k not in factors]
    if missing:
        raise DataError(f"sprite factors miss {', '.join(missing)}")
    f = {k: np.asarray(factors[k]).reshape(-1) for k in SPRITE_FACTORS}
    n = len(f["shape"])
    if any(len(v) != n for v in f.values()):
        raise DataError(f"sprite factors have different lengths: { {k: len(v) for k, v in f.items()} }")
    if n and (f["shape"].min() < 0 or f["shape"].max() >= len(SPRITE_SHAPES)):
        raise DataError(
            f"sprite shape must be 0..{len(SPRITE_SHAPES) - 1}, got {f['shape'].min()}..{f['shape'].max()}"
        )
    out = np.empty((n, size, size), np.uint8)
    # Sub-pixel sample offsets, in pixels, relative to the pixel's top-left corner.
    sub = (np.arange(supersample, dtype=np.float32) + 0.5) / supersample
    coords = (np.arange(size, dtype=np.float32)[:, None] + sub[None, :]).reshape(-1)
    chunk = max(1, (1 << 21) // (size * size * supersample * supersample))
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        cover = _coverage({k: v[sl] for k, v in f.items()}, coords, size)
        cover = cover.reshape(-1, size, supersample, size, supersample).mean(axis=(2, 4))
        out[sl] = np.round(cover * 255.0).astype(np.uint8)
    return out[..., None]


def _coverage(f: dict[str, np.ndarray], coords: np.ndarray, size: int) -> np.ndarray:
    """Fraction of each sample's pixel covered by the shape, ``(n, len(coords), len(coords))``."""
    pixel = np.float32(len(coords) / size)  # samples per pixel along an axis
    radius = (_RADIUS * size * f["scale"]).astype(np.float32)[:, None, None]
    du = coords[None, None, :] - (f["x"] * size)[:, None, None].astype(np.float32)
    dv = coords[None, :, None] - (f["y"] * size)[:, None, None].astype(np.float32)
    c = np.cos(f["rotation"]).astype(np.float32)[:, None, None]
    s = np.sin(f["rotation"]).astype(np.float32)[:, None, None]
    # Into the shape's frame (`b` points up on screen, so `rotation` turns the shape
    # counter-clockwise as seen), scaled to a unit circumradius.
    a = (c * du - s * dv) / radius
    b = (-s * du - c * dv) / radius
    dist = np.empty(a.shape, np.float32)
    for k, sdf in enumerate((_sdf_square, _sdf_ellipse, _sdf_triangle, _sdf_heart)):
        idx = np.flatnonzero(f["shape"] == k)
        if idx.size:
            dist[idx] = sdf(a[idx], b[idx])
    # Distance in (sub-)pixels -> coverage of a box filter one (sub-)pixel wide.
    return np.clip(0.5 - dist * radius * pixel, 0.0, 1.0)


def _sdf_square(a, b):
    h = np.float32(_SQUARE_HALF_SIDE)
    qa, qb = np.abs(a) - h, np.abs(b) - h
    return np.hypot(np.maximum(qa, 0), np.maximum(qb, 0)) + np.minimum(np.maximum(qa, qb), 0)


def _sdf_ellipse(a, b):
    # The gradient-normalised implicit function: exact on the boundary, which is all that
    # anti-aliasing needs.
    ra, rb = _ELLIPSE_AXES
    k0 = np.hypot(a / ra, b / rb)
    k1 = np.hypot(a / ra**2, b / rb**2)
    return k0 * (k0 - 1) / np.maximum(k1, 1e-6)


def _sdf_triangle(a, b):
    # Equilateral, circumradius 1, a vertex pointing up (iq's sdEquilateralTriangle, r = half side).
    r, k = math.sqrt(3) / 2, math.sqrt(3)
    x = np.abs(a) - r
    y = b + r / k
    fold = x + k * y > 0
    x, y = np.where(fold, (x - k * y) / 2, x), np.where(fold, (-k * x - y) / 2, y)
    x = x - np.clip(x, -2 * r, 0)
    return (-np.hypot(x, y) * np.sign(y)).astype(np.float32)


def _sdf_heart(a, b):
    # iq's sdHeart spans x in [-0.6, 0.6], y in [0, 1.1]; re-centred on (0, 0.5), its
    # circumradius is 1 / sqrt(2), scaled here to `_HEART_SIZE`.
    scale = np.float32(math.sqrt(2) / 2 / _HEART_SIZE)
    x = np.abs(a) * scale
    y = b * scale + np.float32(0.5)
    lobe = np.hypot(x - 0.25, y - 0.75) - math.sqrt(2) / 4
    t = np.maximum(x + y, 0) / 2
    body = np.sqrt(np.minimum(x**2 + (y - 1) ** 2, (x - t) ** 2 + (y - t) ** 2)) * np.sign(x - y)
    return (np.where(x + y > 1, lobe, body) / scale).astype(np.float32)


def _load_sprites(*, seed: int, limit: int | None, num: int = 20000, size: int = 32) -> Dataset:
    factors = _sprite_factors(num, seed)
    n_test = int(round(num * _TEST_FRACTION))
    train = np.arange(num - n_test)[:limit]
    test = np.arange(num - n_test, num)[:limit]
    split = {k: (v[train], v[test]) for k, v in factors.items()}
    x_train = render_sprites({k: v[0] for k, v in split.items()}, size=size)
    x_test = render_sprites({k: v[1] for k, v in split.items()}, size=size)
    return Dataset(x_train, split["shape"][0], x_test, split["shape"][1], SPRITE_SHAPES, "sprites", split)


# Image folders and the face sets --------------------------------------------------------------


def image_folder(
    zip_or_dir: str | os.PathLike,
    labels_file: str | os.PathLike,
    *,
    columns: Sequence[str] | None = None,
    path_column: str = "path",
    select: Callable[[int], Sequence[int]] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Reads images (from a zip, without extracting, or a directory) and their attributes.

    Two kinds of labels file are understood:

    - a table with a header row (comma- or whitespace-separated) whose ``path_column`` names
      each image (a zip member or a path relative to the directory); images come back in
      the order of its rows;
    - a headerless numeric table whose line N describes the image whose file name ends in
      the number N (``file0001.jpg`` -> line 1, as in GENKI-4K); ``columns`` names its
      columns; images come back sorted by that number.

    Args:
        zip_or_dir: a ``.zip`` file or a directory of JPEG/PNG images.
        labels_file: the labels table.
        columns: the attribute columns to return (default: all but ``path_column``); for a
            headerless table, the names of all its columns, in order.
        path_column: the header of the column naming the images.
        select: given the number of listed images, the positions (in the order above) of those to
            decode and return; the others are never decoded (``load(..., limit=...)`` uses it).

    Returns:
        ``(images, attributes)``: uint8 ``(n, h, w, c)`` (c = 1 for grayscale, 3 for RGB) and
        column name -> ``(n,)`` array (int32 when every value is an integer, float32 for
        other numbers, str otherwise).

    Raises:
        DataError: missing files, unreadable images, images of different sizes, or labels
            that do not match the images.

    Examples:
        >>> x, attrs = image_folder("faces.zip", "labels.csv")  # doctest: +SKIP
    """
    source, labels_file = pathlib.Path(zip_or_dir), pathlib.Path(labels_file)
    for p in (source, labels_file):
        if not p.exists():
            raise DataError(f"not found: {p}")
    with _ImageSource(source) as images:
        rows = _read_table(labels_file)
        header = rows[0]
        if not all(_is_number(v) for v in header):
            if path_column not in header:
                raise DataError(f"{labels_file} has no {path_column!r} column (columns: {', '.join(header)})")
            paths = [r[header.index(path_column)] for r in rows[1:]]
            wanted = [c for c in header if c != path_column] if columns is None else list(columns)
            unknown = [c for c in wanted if c not in header]
            if unknown:
                raise DataError(f"{labels_file} has no column {', '.join(unknown)}")
            table = {c: [r[header.index(c)] for r in rows[1:]] for c in wanted}
        else:
            width = len(header)
            if columns is None or len(columns) != width:
                raise DataError(
                    f"{labels_file} has no header and {width} columns: pass columns= with {width} names"
                )
            numbered = []
            for member in images.names():
                m = re.search(r"(\d+)\.[^./]+$", member)
                if m is None:
                    raise DataError(
                        f"{source}: image {member} has no number to match a line of {labels_file}"
                    )
                numbered.append((int(m.group(1)), member))
            numbered.sort()
            bad = [num for num, _ in numbered if not 1 <= num <= len(rows)]
            if bad:
                raise DataError(
                    f"{source}: image number {bad[0]} has no line in {labels_file} ({len(rows)} lines)"
                )
            paths = [member for _, member in numbered]
            table = {c: [rows[num - 1][i] for num, _ in numbered] for i, c in enumerate(columns)}
        if select is not None:
            chosen = [int(i) for i in select(len(paths))]
            paths = [paths[i] for i in chosen]
            table = {c: [v[i] for i in chosen] for c, v in table.items()}
        decoded = np.stack(_decode_all(images, paths))
    attributes = {c: _column(v) for c, v in table.items()}
    return decoded, attributes


class _ImageSource:
    """Reads image bytes by member name from a zip (kept open) or a directory."""

    def __init__(self, path: pathlib.Path):
        self.path = path
        self.zip = None
        if path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as e:
                raise DataError(f"{path} is not a readable zip file: {e}") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.zip is not None:
            self.zip.close()

    def names(self) -> list[str]:
        pattern = re.compile(r"\.(jpe?g|png|bmp|gif|tiff?)$", re.IGNORECASE)
        if self.zip is not None:
            return [n for n in self.zip.namelist() if pattern.search(n)]
        return [
            p.relative_to(self.path).as_posix()
            for p in sorted(self.path.rglob("*"))
            if pattern.search(p.name)
        ]

    def read(self, name: str) -> bytes:
        try:
            if self.zip is not None:
                return self.zip.read(name)
            return (self.path / name).read_bytes()
        except (KeyError, FileNotFoundError):
            raise DataError(f"image {name} not found in {self.path}") from None
        except (zipfile.BadZipFile, zlib.error, OSError) as e:
            raise DataError(f"cannot read {name} from {self.path}: {e}") from None


def _decode_all(images: _ImageSource, paths: Sequence[str]) -> list[np.ndarray]:
    from PIL import Image, UnidentifiedImageError  # Pillow is only needed for image folders.

    out, mode, shape = [], None, None
    for p in paths:
        try:
            with Image.open(io.BytesIO(images.read(p))) as im:
                # The first image fixes the mode: grayscale sets stay one channel.
                mode = mode or ("L" if im.mode in ("L", "1", "I;16", "I") else "RGB")
                a = np.asarray(im.convert(mode) if im.mode != mode else im)
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise DataError(f"cannot decode image {p} in {images.path}: {e}") from None
        a = a[..., None] if a.ndim == 2 else a
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise DataError(f"image {p} in {images.path} has shape {a.shape}; the first had {shape}")
        out.append(a)
    if not out:
        raise DataError(f"no images listed for {images.path}")
    return out


def _read_table(path: pathlib.Path) -> list[list[str]]:
    text = path.read_text()
    first = text.lstrip().split("\n", 1)[0]
    if "," in first:
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
    else:
        rows = [line.split() for line in text.splitlines() if line.strip()]
    if not rows:
        raise DataError(f"{path} is empty")
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise DataError(f"{path} line {i + 1} has {len(r)} fields; the first line has {width}")
    return rows


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _column(values: list[str]) -> np.ndarray:
    try:
        a = np.array([float(v) for v in values], np.float64)
    except ValueError:
        return np.array(values, np.str_)
    if np.all(a == np.round(a)) and np.all(np.abs(a) < 2**31):
        return a.astype(np.int32)
    return a.astype(np.float32)


def _load_smile_faces(root: pathlib.Path, *, seed: int, limit: int | None) -> Dataset:
    folder = root / "smile_faces_lfw"
    split = _FaceSplit(seed, limit)
    x, attrs = image_folder(
        _need(folder / "SMILEsmileD_64x64_gray.zip", "smile_faces"),
        _need(folder / "labels.csv", "smile_faces"),
        select=split,
    )
    return split.dataset("smile_faces", x, attrs, "smiling")


def _load_genki4k(root: pathlib.Path, *, seed: int, limit: int | None) -> Dataset:
    folder = root / "genki4k"
    split = _FaceSplit(seed, limit)
    x, attrs = image_folder(
        _need(folder / "GENKI4K_faces_64x64_rgb.zip", "genki4k"),
        _need(folder / "labels.txt", "genki4k"),
        columns=("smile", "yaw", "pitch", "roll"),
        select=split,
    )
    attrs["smile"] = attrs["smile"].astype(np.int32)
    return split.dataset("genki4k", x, attrs, "smile")


class _FaceSplit:
    """The train/test split of a face set, chosen before decoding so ``limit`` decodes only
    ``2 * limit`` images. The files list smiling faces first, so the split is a seeded shuffle:
    the last 10 % of it is the test set.
    """

    def __init__(self, seed: int, limit: int | None):
        self.seed, self.limit = seed, limit

    def __call__(self, n: int) -> np.ndarray:
        order = np.random.default_rng(self.seed).permutation(n)
        n_test = int(round(n * _TEST_FRACTION))
        self.num_train = len(order[: n - n_test][: self.limit])
        return np.concatenate([order[: n - n_test][: self.limit], order[n - n_test :][: self.limit]])

    def dataset(self, name, x, attrs, label) -> Dataset:
        k = self.num_train
        factors = {a: (v[:k], v[k:]) for a, v in attrs.items()}
        return Dataset(
            x[:k],
            factors[label][0].astype(np.int32),
            x[k:],
            factors[label][1].astype(np.int32),
            ("not smiling", "smiling"),
            name,
            factors,
        )


def _need(path: pathlib.Path, name: str) -> pathlib.Path:
    if not path.is_file():
        raise DataError(f"data set {name!r} not found: expected {path}; set --data-dir or {DATA_DIR_ENV}")
    return path


def _data_root(data_dir: str | os.PathLike | None, default: pathlib.Path | None = None) -> pathlib.Path:
    d = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or default
    if not d:
        raise DataError(
            f"no data directory: pass --data-dir or set {DATA_DIR_ENV} (a folder "
            "holding e.g. mnist/*.gz IDX files or prepared tfds data sets)"
        )
    return pathlib.Path(d).expanduser()
