"""The digit and clothing sets on disk: IDX files (``read_idx``), or a prepared tfds data set.

Both readers return ``{"train": (images, labels), "test": (images, labels)}`` with uint8 images
``(n, h, w, 1)`` and int32 labels; ``data.load`` wraps them in a ``Dataset``.
"""

from __future__ import annotations

import gzip
import os
import pathlib
import re
import zlib

import numpy as np

from latentjax.data._images import validate_images
from latentjax.errors import DataError

_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# IDX type byte -> big-endian numpy dtype (LeCun's MNIST page, "THE IDX FILE FORMAT").
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_Splits = dict[str, tuple[np.ndarray, np.ndarray]]


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
    except PermissionError:
        raise  # not corrupt data: the CLI reports the path and the cause
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path} is corrupt or truncated: {e}") from None
    return out.astype(out.dtype.newbyteorder("="), copy=False)


def _read_idx_set(folder: pathlib.Path, *, num_classes: int, limit: int | None) -> _Splits | None:
    """The four IDX files of ``folder`` (the first ``limit`` examples), or None if none is there."""
    found = {k: _find_idx(folder, stem) for k, stem in _IDX_FILES.items()}
    if all(p is None for p in found.values()):
        return None
    missing = [f"{_IDX_FILES[k]}.gz" for k, p in found.items() if p is None]
    if missing:
        raise DataError(f"data set {folder.name!r} is incomplete: {', '.join(missing)} missing in {folder}")
    arrays = {k: read_idx(p)[:limit] for k, p in found.items()}
    out = {}
    for split in ("train", "test"):
        x, y = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        x_file, y_file = found[f"{split}_images"], found[f"{split}_labels"]
        if x.ndim != 3 or y.ndim != 1 or x.dtype != np.uint8:
            raise DataError(
                f"{x_file} holds {x.dtype} {x.shape} and {y_file} {y.dtype} {y.shape}; expected uint8 "
                "images (n, h, w) and labels (n,)"
            )
        if len(x) != len(y):
            raise DataError(f"{x_file} has {len(x)} images but {y_file} has {len(y)} labels")
        if y.size and int(y.max()) >= num_classes:
            raise DataError(f"{y_file} has label {int(y.max())}; expected 0..{num_classes - 1}")
        out[split] = (x[..., None], y.astype(np.int32))
    return out


def _find_idx(folder: pathlib.Path, stem: str) -> pathlib.Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


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


def _read_tfds(version_dir: pathlib.Path, *, limit: int | None) -> _Splits:
    """The train and test splits of a prepared tfds data set with ``image`` and ``label`` features."""
    try:
        # The one lazy import of the library: tensorflow-datasets is an optional extra, heavy to
        # import, and needed only here. Reading array_record through a data source never
        # imports TensorFlow.
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError(
            f"{version_dir} holds a prepared tfds data set; reading it needs tensorflow-datasets: "
            "pip install 'latentjax[tfds]'"
        ) from None
    try:
        sources = tfds.builder_from_directory(str(version_dir)).as_data_source()
    except Exception as e:  # tfds raises many kinds; all mean the same thing to the user.
        first_line = f"{type(e).__name__}: {e}".splitlines()[0]
        raise DataError(f"cannot read the prepared tfds data set in {version_dir}: {first_line}") from None
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
    return out
