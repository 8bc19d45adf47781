"""Image folders: images in a zip (read in place) or a directory, with a table of their attributes."""

from __future__ import annotations

import csv
import io
import os
import pathlib
import re
import zipfile
import zlib
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from latentjax.errors import DataError


def image_folder(
    zip_or_dir: str | os.PathLike,
    labels_file: str | os.PathLike,
    *,
    columns: Sequence[str] | None = None,
    path_column: str = "path",
    select: Callable[[int], Sequence[int]] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    r"""Reads images (from a zip, without extracting, or a directory) and their attributes.

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
            decode and return; the others are never decoded.

    Returns:
        ``(images, attributes)``: uint8 ``(n, h, w, c)`` (c = 1 for grayscale, 3 for RGB) and
        column name -> ``(n,)`` array (int32 when every value is an integer, float32 for
        other numbers, str otherwise).

    Raises:
        DataError: missing files, unreadable images, images of different sizes, or labels
            that do not match the images.

    Examples:
        >>> import tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> Image.fromarray(np.full((4, 4), 200, np.uint8)).save(folder / "a.png")
        >>> _ = (folder / "labels.csv").write_text("path,smiling\na.png,1\n")
        >>> x, attrs = image_folder(folder, folder / "labels.csv")
        >>> x.shape, attrs["smiling"]
        ((1, 4, 4, 1), array([1], dtype=int32))
    """

    def groups(n: int) -> list[Sequence[int]]:
        return [range(n) if select is None else select(n)]

    ((images, attributes),) = _read_folder(
        zip_or_dir, labels_file, columns=columns, path_column=path_column, groups=groups
    )
    return images, attributes


def _read_folder(
    zip_or_dir: str | os.PathLike,
    labels_file: str | os.PathLike,
    *,
    columns: Sequence[str] | None,
    path_column: str,
    groups: Callable[[int], Sequence[Sequence[int]]],
) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """`image_folder` for several groups of rows at once, e.g. a train/test split.

    ``groups(n)`` gives the positions of each group among the ``n`` listed images; returns
    ``(images, attributes)`` per group. Only the rows of the groups are decoded.
    """
    source, labels_file = pathlib.Path(zip_or_dir), pathlib.Path(labels_file)
    for p in (source, labels_file):
        if not p.exists():
            raise DataError(f"not found: {p}")
    with _ImageSource(source) as images:
        paths, table = _listing(images, labels_file, columns=columns, path_column=path_column)
        chosen = [[int(i) for i in g] for g in groups(len(paths))]
        flat = [i for g in chosen for i in g]
        decoded = np.stack(_decode_all(images, [paths[i] for i in flat]))
    attributes = {c: _column([v[i] for i in flat]) for c, v in table.items()}  # one dtype for all groups
    ends = np.cumsum([len(g) for g in chosen])
    return [
        (decoded[end - len(g) : end], {c: v[end - len(g) : end] for c, v in attributes.items()})
        for g, end in zip(chosen, ends)
    ]


def _listing(
    images: _ImageSource, labels_file: pathlib.Path, *, columns: Sequence[str] | None, path_column: str
) -> tuple[list[str], dict[str, list[str]]]:
    """The listed images' names and each attribute column, as strings, in `image_folder`'s order."""
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
        return paths, {c: [r[header.index(c)] for r in rows[1:]] for c in wanted}
    width = len(header)
    if columns is None or len(columns) != width:
        raise DataError(f"{labels_file} has no header and {width} columns: pass columns= with {width} names")
    numbered = []
    for member in images.names():
        m = re.search(r"(\d+)\.[^./]+$", member)
        if m is None:
            raise DataError(f"{images.path}: image {member} has no number to match a line of {labels_file}")
        numbered.append((int(m.group(1)), member))
    numbered.sort()
    bad = [num for num, _ in numbered if not 1 <= num <= len(rows)]
    if bad:
        raise DataError(
            f"{images.path}: image number {bad[0]} has no line in {labels_file} ({len(rows)} lines)"
        )
    paths = [member for _, member in numbered]
    return paths, {c: [rows[num - 1][i] for num, _ in numbered] for i, c in enumerate(columns)}


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
