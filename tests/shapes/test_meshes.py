"""Point clouds in (the real furniture PLY archive), meshes out (OBJ and PLY round trips)."""

import jax.numpy as jnp
import numpy as np
import pytest

from latentjax.errors import DataError
from latentjax.shapes import meshes, render


@pytest.mark.data
def test_real_point_clouds(data_dir):
    every = meshes.read_point_clouds(data_dir)  # chairs' files end lines differently from tables'
    assert len(every) == 43 and sum(k.startswith("Chair") for k in every) == 30
    assert all(xyz.shape == (15000, 3) for xyz, _ in every.values())
    clouds = meshes.read_point_clouds(data_dir, category="Tables")
    assert len(clouds) == 13
    name = sorted(clouds)[0]
    xyz, normals = clouds[name]
    assert xyz.shape == (15000, 3) and np.allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-3)
    assert 0.9 < np.abs(xyz).max() <= 1.01


def test_read_point_clouds_missing(tmp_path):
    with pytest.raises(DataError, match="meshes.read_point_clouds: .*not found"):
        meshes.read_point_clouds(tmp_path)


def test_obj_and_ply_round_trip(tmp_path):
    v, f = render.marching_cubes(lambda x: jnp.linalg.norm(x) - 0.5, resolution=12)
    obj = meshes.write_obj(v, f, tmp_path / "m.obj")
    lines = obj.read_text().splitlines()
    vv = np.array([list(map(float, ln.split()[1:])) for ln in lines if ln.startswith("v ")])
    ff = np.array([list(map(int, ln.split()[1:])) for ln in lines if ln.startswith("f ")])
    np.testing.assert_allclose(vv, v, atol=1e-5)
    np.testing.assert_array_equal(ff - 1, f)
    ply = meshes.write_ply(v, f, tmp_path / "m.ply").read_text().splitlines()
    start = ply.index("end_header") + 1
    assert f"element vertex {len(v)}" in ply and f"element face {len(f)}" in ply
    np.testing.assert_allclose(np.loadtxt(ply[start : start + len(v)]), v, atol=1e-5)
    np.testing.assert_array_equal(np.loadtxt(ply[start + len(v) :], dtype=int)[:, 1:], f)
