"""The shapes section's measures: Chamfer distances against brute-force SciPy, and a tiny trained walk
whose frames are named by their nearest training shape."""

import jax
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from latentjax.app.sections import _shape_measures, shapes
from latentjax.errors import InputError
from latentjax.shapes import furniture


def _chamfer(a, b):  # DeepSDF's definition, by brute force
    d = cdist(a, b, "sqeuclidean")
    return d.min(axis=1).mean() + d.min(axis=0).mean()


def test_nearest_and_spread_match_brute_force():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(5, 60, 3)) + np.arange(5)[:, None, None]
    labels = np.array([0, 0, 1, 1, 2])
    clouds = [train[3] + 0.05 * rng.normal(size=(60, 3)), None, rng.normal(size=(40, 3)) + 0.2]
    got = _shape_measures.nearest_shapes(clouds, train)
    for k in (0, 2):
        ref = [_chamfer(clouds[k], t) for t in train]
        assert got.index[k] == np.argmin(ref) and got.chamfer[k] == pytest.approx(min(ref))
    assert got.index[1] == -1 and got.chamfer[1] == np.inf
    pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    within = [_chamfer(train[i], train[j]) for i, j in pairs if labels[i] == labels[j]]
    between = [_chamfer(train[i], train[j]) for i, j in pairs if labels[i] != labels[j]]
    assert _shape_measures.class_spread(train, labels) == pytest.approx(
        (np.median(within), np.median(between))
    )
    with pytest.raises(InputError, match="class_spread"):
        _shape_measures.class_spread(train[:3], np.array([0, 1, 2]))


def test_mesh_points_lie_on_a_sphere_uniformly():
    ax = np.linspace(-1, 1, 40)
    x, y, z = np.meshgrid(ax, ax, ax, indexing="ij")
    values = np.sqrt(x**2 + y**2 + z**2) - 0.6
    pts = _shape_measures._mesh_points(values, np.random.default_rng(0), 4000)
    assert np.abs(np.linalg.norm(pts, axis=1) - 0.6).max() < 0.01  # the exact radius, to the grid's error
    assert np.abs(pts.mean(axis=0)).max() < 0.03  # uniform by area: centred (std of the mean ~0.005)
    assert _shape_measures._mesh_points(values + 5.0, np.random.default_rng(0), 10) is None  # no surface


def test_tiny_walk_names_every_frame():
    walk = shapes.train_and_walk(jax.random.key(0), per_class=2, num_steps=40, width=24, num_frames=3, size=8)
    assert walk.images.shape == (3, 8, 8, 3) and walk.path_xy.shape == (3, 2) and walk.map_xy.shape == (6, 2)
    assert walk.own.shape == (3,) and 0 < walk.within and 0 < walk.between
    found = walk.nearest.index >= 0
    # Where a frame has a surface, its nearest shape is at most as far as its own training shape.
    assert np.all(
        walk.nearest.chamfer[found] <= np.where(np.isfinite(walk.own), walk.own, np.inf)[found] + 1e-12
    )
    # The captions quote the measures and their verdict (recognisable: below the within-class median).
    sec = shapes._report(walk, "shapes_path.gif", "shapes_path.png", 1.0)
    ok = int(np.sum(walk.nearest.chamfer < walk.within))
    verdict = "every frame" if ok == 3 else "no frame" if ok == 0 else f"{ok} of 3 frames"
    assert verdict in sec.figures[1].caption and f"{walk.within:.4f}" in sec.figures[1].caption
    assert sec.table["frames recognisable (nearest Chamfer < within-class median)"] == ok
    names = sec.table["nearest class per frame"].split()
    assert names == [furniture.CLASSES[walk.labels[j]] if j >= 0 else "-" for j in walk.nearest.index]
