"""Shapes in and out of files: oriented point clouds in (PLY), triangle meshes out (OBJ, PLY)."""

from __future__ import annotations

import os
import pathlib
import zipfile

import numpy as np
from numpy.typing import ArrayLike

from latentjax.errors import DataError

POINT_CLOUDS = "furniture_shapes/chairs_tables_pointclouds_ply.zip"


def read_point_clouds(
    data_dir: str | os.PathLike, *, category: str | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Oriented point clouds of real chairs and tables from ``POINT_CLOUDS`` under ``data_dir``.

    Args:
        data_dir: the data directory (containing ``furniture_shapes/``).
        category: ``"Chairs"``, ``"Tables"`` or ``None`` for both.

    Returns:
        ``{name: (xyz (15000, 3), normals (15000, 3))}``, float32, y up, max |coord| ~ 1, unit
        normals, sorted by file name.

    Raises:
        DataError: when the archive is missing or a file in it is not a 9-column PLY.

    Examples:
        >>> clouds = read_point_clouds(os.environ["LATENTJAX_DATA_DIR"], category="Tables")  # doctest: +SKIP
        >>> len(clouds)  # doctest: +SKIP
        13
    """
    path = pathlib.Path(data_dir) / POINT_CLOUDS
    if not path.is_file():
        raise DataError(f"meshes.read_point_clouds: furniture point clouds not found: {path}")
    out = {}
    with zipfile.ZipFile(path) as z:
        for name in sorted(z.namelist()):
            if not name.endswith(".ply") or (category and not name.startswith(category + "/")):
                continue
            lines = z.read(name).decode("ascii", "replace").splitlines()  # some files end lines with \r\n
            end = next((i for i, line in enumerate(lines) if line.strip() == "end_header"), None)
            if end is None:
                raise DataError(f"meshes.read_point_clouds: {path}:{name}: not a PLY file (no end_header)")
            a = np.loadtxt(lines[end + 1 :], dtype=np.float32, ndmin=2)
            if a.ndim != 2 or a.shape[1] != 9:
                raise DataError(
                    f"meshes.read_point_clouds: {path}:{name}: expected 9 columns "
                    f"(x y z r g b nx ny nz), got {a.shape}"
                )
            n = a[:, 6:9]
            n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
            out[pathlib.PurePosixPath(name).stem.removeprefix("seg-")] = (a[:, :3], n)
    return out


def write_obj(vertices: ArrayLike, faces: ArrayLike, path: str | os.PathLike) -> pathlib.Path:
    """Write a triangle mesh as a Wavefront OBJ (``v`` lines, then 1-based ``f`` lines).

    Args:
        vertices: ``(v, 3)`` positions.
        faces: ``(f, 3)`` 0-based vertex indices.
        path: the file to write.

    Returns:
        The path written.

    Examples:
        >>> import tempfile
        >>> p = write_obj(np.eye(3), [[0, 1, 2]], pathlib.Path(tempfile.mkdtemp()) / "t.obj")
        >>> p.read_text().splitlines()[-1]
        'f 1 2 3'
    """
    path = pathlib.Path(path)
    v, f = np.asarray(vertices), np.asarray(faces) + 1
    with open(path, "w") as fh:
        np.savetxt(fh, v, fmt="v %.6f %.6f %.6f")
        np.savetxt(fh, f, fmt="f %d %d %d")
    return path


def write_ply(vertices: ArrayLike, faces: ArrayLike, path: str | os.PathLike) -> pathlib.Path:
    """Write a triangle mesh as an ASCII PLY.

    Args:
        vertices: ``(v, 3)`` positions.
        faces: ``(f, 3)`` 0-based vertex indices.
        path: the file to write.

    Returns:
        The path written.

    Examples:
        >>> import tempfile
        >>> p = write_ply(np.eye(3), [[0, 1, 2]], pathlib.Path(tempfile.mkdtemp()) / "t.ply")
        >>> p.read_text().splitlines()[-1]
        '3 0 1 2'
    """
    path = pathlib.Path(path)
    v, f = np.asarray(vertices), np.asarray(faces)
    with open(path, "w") as fh:
        fh.write(
            f"ply\nformat ascii 1.0\nelement vertex {len(v)}\nproperty float x\nproperty float y\n"
            f"property float z\nelement face {len(f)}\nproperty list uchar int vertex_indices\nend_header\n"
        )
        np.savetxt(fh, v, fmt="%.6f %.6f %.6f")
        np.savetxt(fh, np.column_stack([np.full(len(f), 3), f]), fmt="%d %d %d %d")
    return path
