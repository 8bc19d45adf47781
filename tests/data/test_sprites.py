"""Sprites against closed forms: areas, centroids, axes; whole shapes; a supersampled reference."""

import math

import numpy as np
import pytest

from latentjax import data
from latentjax.data import _sprites
from latentjax.errors import InputError


def _factors(shape, *, scale=1.0, rotation=0.0, x=0.5, y=0.5):
    shape = np.atleast_1d(shape)

    def full(v):
        return np.broadcast_to(np.asarray(v, np.float32), shape.shape)

    return {"shape": shape, "scale": full(scale), "rotation": full(rotation), "x": full(x), "y": full(y)}


def test_sprites_deterministic_and_in_range():
    x, f = data.sprites(num_images=500, size=32, seed=3)
    x2, f2 = data.sprites(num_images=500, size=32, seed=3)
    np.testing.assert_array_equal(x, x2)
    for k in data.SPRITE_FACTORS:
        np.testing.assert_array_equal(f[k], f2[k])
    x3, _ = data.sprites(num_images=500, size=32, seed=4)
    assert np.mean(x != x3) > 0.05
    assert x.shape == (500, 32, 32, 1) and x.dtype == np.uint8
    assert sorted(f) == sorted(data.SPRITE_FACTORS) and all(len(v) == 500 for v in f.values())
    assert set(np.unique(f["shape"])) == {0, 1, 2, 3}
    assert f["scale"].min() >= 0.75 and f["scale"].max() <= 1.0
    assert f["rotation"].min() >= -np.pi / 8 and f["rotation"].max() <= np.pi / 8
    for k in ("x", "y"):
        assert f[k].min() >= 0.4 and f[k].max() <= 0.6
    # Every sprite is whole: nothing on the border, and every image shows a shape.
    assert x[:, [0, -1], :].max() == 0 and x[:, :, [0, -1]].max() == 0
    assert (x.reshape(500, -1).max(axis=1) == 255).all()


def test_sprites_stay_whole_at_extreme_factors():
    corners = np.array([(x, y) for x in (0.4, 0.6) for y in (0.4, 0.6)], np.float32)
    rot = np.linspace(0, 2 * np.pi, 24, endpoint=False, dtype=np.float32)
    shape, c, r = np.meshgrid(np.arange(4), np.arange(4), rot, indexing="ij")
    imgs = data.render_sprites(
        _factors(shape.ravel(), rotation=r.ravel(), x=corners[c.ravel(), 0], y=corners[c.ravel(), 1]), size=32
    )
    assert imgs[:, [0, -1], :].max() == 0 and imgs[:, :, [0, -1]].max() == 0


@pytest.mark.parametrize(
    "shape, area",
    [
        (0, (2 * _sprites._SQUARE_HALF_SIDE) ** 2),
        (1, math.pi * _sprites._ELLIPSE_AXES[0] * _sprites._ELLIPSE_AXES[1]),
        (2, 3 * math.sqrt(3) / 4),  # equilateral triangle of circumradius 1
    ],
)
def test_sprite_area_matches_closed_form(shape, area):
    size, rot = 64, np.linspace(0, 2 * np.pi, 7, dtype=np.float32)
    imgs = data.render_sprites(_factors(np.full(7, shape), rotation=rot, x=0.47, y=0.52), size=size)
    radius = _sprites._RADIUS * size
    got = imgs.reshape(7, -1).sum(axis=1) / 255 / radius**2
    np.testing.assert_allclose(got, area, rtol=0.01)


def test_sprite_position_and_rotation_factors_mean_what_they_say():
    """Centroid = (x, y) (symmetric shapes); the ellipse's long axis points along `rotation`."""
    size = 64
    rot = np.array([0.3, 1.0, 2.0, 2.8], np.float32)
    f = _factors(
        np.array([1, 1, 0, 0]), rotation=rot, x=[0.4, 0.55, 0.6, 0.35], y=[0.45, 0.62, 0.38, 0.5], scale=0.8
    )
    w = data.render_sprites(f, size=size)[..., 0].astype(np.float64)
    rows, cols = np.mgrid[:size, :size] + 0.5
    m = w.sum(axis=(1, 2))
    cx, cy = (w * cols).sum(axis=(1, 2)) / m, (w * rows).sum(axis=(1, 2)) / m
    np.testing.assert_allclose(cx, f["x"] * size, atol=0.02)
    np.testing.assert_allclose(cy, f["y"] * size, atol=0.02)
    # Second moments of the ellipses: principal axis angle, measured with y pointing up.
    for i in (0, 1):
        du, dv = cols - cx[i], -(rows - cy[i])
        cov = np.array(
            [
                [(w[i] * du * du).sum(), (w[i] * du * dv).sum()],
                [(w[i] * du * dv).sum(), (w[i] * dv * dv).sum()],
            ]
        )
        evals, evecs = np.linalg.eigh(cov)
        angle = math.atan2(evecs[1, -1], evecs[0, -1]) % math.pi
        assert angle == pytest.approx(rot[i] % math.pi, abs=0.02)


def test_sprite_coverage_equals_supersampled_reference():
    """One signed-distance sample per pixel ~ averaging 8x8 hard samples per pixel."""
    _, f = data.sprites(num_images=64, size=32, seed=5)
    fast = data.render_sprites(f, size=32).astype(np.float64)
    ref = data.render_sprites(f, size=32, supersample=8).astype(np.float64)
    edge = (ref > 0) & (ref < 255)
    assert np.abs(fast - ref).mean() < 0.5  # grey levels, out of 255
    assert np.abs(fast - ref)[edge].mean() < 10.0  # on the anti-aliased edge pixels
    assert edge.mean() > 0.02  # there are grey edge pixels at all
    np.testing.assert_allclose(fast.sum(axis=(1, 2, 3)), ref.sum(axis=(1, 2, 3)), rtol=0.02)


def test_sprite_classes_differ_in_shape():
    imgs = data.render_sprites(_factors(np.arange(4), scale=1.0, rotation=0.4), size=32)
    flat = imgs.reshape(4, -1).astype(np.float64) / 255
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(flat[i] - flat[j]).sum() > 20, (i, j)  # > 20 pixels of difference


def test_default_sprites_are_told_apart_by_their_shape():
    """The nuisance ranges are narrow enough that pixels tell the classes apart: scikit-learn's 5-NN
    classifier on raw pixels (4,000 training sprites) names the shape of at least 97 % of 1,000 others
    (measured: 100 %; 65 % with the earlier ranges: scale 0.6-1, any rotation, centres in 0.3-0.7)."""
    neighbors = pytest.importorskip("sklearn.neighbors")
    x, f = data.sprites(num_images=5000, size=32, seed=1)
    flat = x.reshape(5000, -1) / 255.0
    knn = neighbors.KNeighborsClassifier(5).fit(flat[:4000], f["shape"][:4000])
    assert knn.score(flat[4000:], f["shape"][4000:]) >= 0.97


def test_render_sprites_rejects_bad_factors():
    with pytest.raises(InputError, match="miss rotation"):
        data.render_sprites({k: np.zeros(2) for k in ("shape", "scale", "x", "y")})
    with pytest.raises(InputError, match="shape must be 0..3"):
        data.render_sprites(_factors(np.array([4])))


def test_sprites_20k_factors_uniform_and_ink_equal_to_the_shape_area():
    # The default set's size: factors drawn uniformly (4-sigma bounds for 20k draws), and every
    # sprite's ink equal to its shape's closed-form area at its scale (measured at 32 px: within
    # 3.5 % for every image, 0.5-0.7 % on average).
    n = 20000
    x, f = data.sprites(num_images=n, size=32)
    np.testing.assert_allclose(np.bincount(f["shape"], minlength=4) / n, 0.25, atol=4 * np.sqrt(3 / 16 / n))
    for k, (lo, hi) in {
        "scale": (0.75, 1.0),
        "rotation": (-np.pi / 8, np.pi / 8),
        "x": (0.4, 0.6),
        "y": (0.4, 0.6),
    }.items():
        sd = (hi - lo) / np.sqrt(12 * n)
        assert abs(f[k].mean() - (lo + hi) / 2) < 4 * sd, k
    ink = x.reshape(n, -1).sum(axis=1) / 255 / (_sprites._RADIUS * 32 * f["scale"]) ** 2
    areas = {
        0: (2 * _sprites._SQUARE_HALF_SIDE) ** 2,
        1: math.pi * _sprites._ELLIPSE_AXES[0] * _sprites._ELLIPSE_AXES[1],
        2: 3 * math.sqrt(3) / 4,
    }
    for shape, area in areas.items():
        rel = ink[f["shape"] == shape] / area
        assert abs(rel.mean() - 1) < 0.01 and np.abs(rel - 1).max() < 0.05, shape


def test_sprites_rejects_bad_arguments():
    with pytest.raises(InputError, match="num_images"):
        data.sprites(num_images=-1)
