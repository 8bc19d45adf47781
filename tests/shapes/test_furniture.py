"""Exact SDF primitives, the procedural generator, surface sampling and oriented-point SDFs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax.errors import DataError
from latentjax.shapes import furniture


def _points(key, n=4000, scale=2.0):
    return jax.random.uniform(key, (n, 3), minval=-scale, maxval=scale)


PRIMITIVES = {
    "box": lambda p: furniture.box(p, jnp.array([0.5, 0.3, 0.8])),
    "rounded_box": lambda p: furniture.rounded_box(p, jnp.array([0.5, 0.3, 0.8]), 0.2),
    "cylinder": lambda p: furniture.cylinder(p, 0.4, 0.7),
    "translated_union": lambda p: furniture.union(
        furniture.translate(
            lambda q: furniture.box(q, jnp.array([0.3, 0.3, 0.3])), jnp.array([0.5, 0.0, 0.0])
        )(p),
        furniture.translate(lambda q: furniture.cylinder(q, 0.3, 0.5), jnp.array([-0.4, 0.2, 0.1]))(p),
    ),
}


def _inside_reference(name, p):
    """Membership by construction (not by the SDF) for the sign check."""
    p = np.asarray(p)
    in_box = lambda q, h: np.all(np.abs(q) <= h, axis=1)  # noqa: E731
    in_cyl = lambda q, r, h: (np.hypot(q[:, 0], q[:, 2]) <= r) & (np.abs(q[:, 1]) <= h)  # noqa: E731
    if name == "box":
        return in_box(p, [0.5, 0.3, 0.8])
    if name == "rounded_box":
        # Rounded box = points within 0.2 of the inner box (half extents minus 0.2).
        q = np.maximum(np.abs(p) - np.array([0.3, 0.1, 0.6]), 0)
        return np.linalg.norm(q, axis=1) <= 0.2
    if name == "cylinder":
        return in_cyl(p, 0.4, 0.7)
    return in_box(p - [0.5, 0, 0], 0.3) | in_cyl(p - [-0.4, 0.2, 0.1], 0.3, 0.5)


@pytest.mark.parametrize("name", list(PRIMITIVES))
def test_primitive_unit_gradient_and_sign(name, key):
    f = PRIMITIVES[name]
    p = _points(key)
    d = jax.jit(jax.vmap(f))(p)
    g = jax.jit(jax.vmap(jax.grad(f)))(p)
    norms = np.asarray(jnp.linalg.norm(g, axis=1))
    # Almost everywhere: the medial axis has measure zero; random points essentially never hit it.
    assert np.mean(np.abs(norms - 1) < 1e-4) > 0.999
    inside = _inside_reference(name, p)
    assert np.array_equal(np.asarray(d) < 0, inside)


def test_primitive_closed_forms():
    assert float(furniture.box(jnp.array([1.5, 0.0, 0.0]), jnp.ones(3))) == pytest.approx(0.5)
    assert float(furniture.box(jnp.array([2.0, 2.0, 1.0]), jnp.ones(3))) == pytest.approx(np.sqrt(2))
    assert float(furniture.box(jnp.array([0.5, 0.0, 0.0]), jnp.ones(3))) == pytest.approx(-0.5)
    assert float(furniture.cylinder(jnp.array([0.0, 2.0, 0.0]), 1.0, 1.0)) == pytest.approx(1.0)
    assert float(furniture.cylinder(jnp.array([2.0, 2.0, 0.0]), 1.0, 1.0)) == pytest.approx(np.sqrt(2))
    # Rounded box corner: distance to the rounding sphere.
    p = jnp.array([2.0, 2.0, 2.0])
    assert float(furniture.rounded_box(p, jnp.ones(3), 0.5)) == pytest.approx(
        np.sqrt(3 * 1.5**2) - 0.5, rel=1e-5
    )


def test_generate_reproducible_and_balanced():
    a, la = furniture.generate(jax.random.key(3), num_per_class=30)
    b, lb = furniture.generate(jax.random.key(3), num_per_class=30)
    c, _ = furniture.generate(jax.random.key(4), num_per_class=30)
    assert a.center.shape == (90, furniture.MAX_PARTS, 3)
    assert np.array_equal(la, lb) and np.bincount(la).tolist() == [30, 30, 30]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert not np.allclose(np.asarray(a.center), np.asarray(c.center))
    # Every shape fits the normalised frame: max |coord| = 0.9 (within the box [-1, 1]^3).
    grid = jnp.stack(jnp.meshgrid(*[jnp.linspace(-1, 1, 9)] * 3, indexing="ij"), -1).reshape(-1, 3)
    d = jax.jit(jax.vmap(jax.vmap(furniture.sdf, in_axes=(None, 0)), in_axes=(0, None)))(a, grid)
    assert np.all(np.asarray(d).min(axis=1) < 0.1)  # every shape has parts in the box
    border = np.abs(np.asarray(grid)).max(1) == 1
    assert np.all(np.asarray(d)[:, border] > 0.05)  # nothing on the faces of the box


def test_generate_bad_input():
    with pytest.raises(DataError, match="unknown furniture classes"):
        furniture.generate(jax.random.key(0), num_per_class=1, classes=("bed",))


def test_shape_sdf_vmap_equals_loop(key):
    shapes, _ = furniture.generate(key, num_per_class=2)
    p = _points(jax.random.key(1), 5)
    batched = jax.vmap(jax.vmap(furniture.sdf, in_axes=(None, 0)), in_axes=(0, None))(shapes, p)
    for i in range(6):
        for j in range(5):
            assert float(batched[i, j]) == pytest.approx(
                float(furniture.sdf(furniture.take(shapes, i), p[j])), abs=1e-6
            )


def test_surface_points_on_surface_with_normals(key):
    shapes, _ = furniture.generate(key, num_per_class=1)
    surface = jax.jit(lambda k, s: furniture.surface_points(k, s, num_points=2000))
    for i in range(3):
        shape = furniture.take(shapes, i)
        x, n = surface(jax.random.key(i), shape)
        d = jax.vmap(furniture.sdf, in_axes=(None, 0))(shape, x)
        assert float(jnp.max(jnp.abs(d))) < 1e-5
        g = jax.vmap(jax.grad(furniture.sdf, argnums=1), in_axes=(None, 0))(shape, x + 1e-3 * n)
        assert float(jnp.mean(jnp.sum(g * n, axis=1) > 0.99)) > 0.97


def test_surface_points_uniform_by_area():
    # A lone box 1 x 0.5 x 0.25 (half extents): the share of points on each face pair = area share.
    shape = furniture.Shape(
        kind=jnp.zeros(furniture.MAX_PARTS, jnp.int32),
        center=jnp.zeros((furniture.MAX_PARTS, 3)),
        size=jnp.tile(jnp.array([1.0, 0.5, 0.25]), (furniture.MAX_PARTS, 1)),
        radius=jnp.zeros(furniture.MAX_PARTS),
        mask=jnp.arange(furniture.MAX_PARTS) == 0,
    )
    x, _ = jax.jit(lambda k, s: furniture.surface_points(k, s, num_points=20000))(jax.random.key(0), shape)
    on = np.isclose(np.abs(np.asarray(x)), [1.0, 0.5, 0.25], atol=1e-6)
    areas = np.array([0.5 * 0.25, 1.0 * 0.25, 1.0 * 0.5])
    np.testing.assert_allclose(on.mean(0), areas / areas.sum(), atol=0.015)


def test_deepsdf_samples_distribution(key):
    shapes, _ = furniture.generate(key, num_per_class=1)
    shape = furniture.take(shapes, 0)
    s = jax.jit(
        lambda k, s: furniture.shape_samples(
            k, s, num_samples=10000, uniform_fraction=0.1, sigmas=(0.05, 0.01)
        )
    )(jax.random.key(1), shape)
    assert s.shape == (10000, 4)
    d = np.asarray(s[:, 3])
    np.testing.assert_allclose(
        d, np.asarray(jax.vmap(furniture.sdf, in_axes=(None, 0))(shape, s[:, :3])), atol=1e-6
    )
    near = np.abs(d[:9000])
    assert np.median(near) < 0.03 and np.mean(near < 0.1) > 0.95
    uni = np.asarray(s[9000:, :3])
    assert np.all(np.abs(uni) <= 1) and np.abs(uni.mean(0)).max() < 0.1


def test_oriented_points_sdf_matches_exact_near_surface(key):
    shapes, _ = furniture.generate(key, num_per_class=1)
    surface = jax.jit(lambda k, s: furniture.surface_points(k, s, num_points=15000))
    samples = jax.jit(
        lambda k, s: furniture.shape_samples(
            k, s, num_samples=2000, uniform_fraction=0.0, sigmas=(0.02, 0.005)
        )
    )
    for i in range(3):
        shape = furniture.take(shapes, i)
        pts, normals = surface(jax.random.key(10 + i), shape)
        s = samples(jax.random.key(20 + i), shape)
        est = np.asarray(furniture.oriented_sdf(pts, normals, s[:, :3], block=500))
        exact = np.asarray(s[:, 3])
        # The nearest sample overestimates the distance by about the sample spacing (~0.015 here)
        # at most; signs agree except within that distance of the surface.
        assert np.median(np.abs(est - exact)) < 0.01
        assert np.percentile(np.abs(est - exact)[np.abs(exact) < 0.05], 90) < 0.02
        far = np.abs(exact) > 0.02
        # Near edges the nearest sample can lie on the adjacent face (normal across the query): a
        # known weakness of signing by the nearest normal, rare away from the surface.
        assert np.mean(np.sign(est[far]) == np.sign(exact[far])) > 0.97


def test_oriented_sdf_equals_bruteforce(key):
    p = np.asarray(jax.random.normal(key, (300, 3)))
    n = p / np.linalg.norm(p, axis=1, keepdims=True)
    q = np.asarray(jax.random.normal(jax.random.key(1), (257, 3)))
    got = np.asarray(furniture.oriented_sdf(p, n, q, block=64))
    d = np.linalg.norm(q[:, None] - p[None], axis=-1)
    i = d.argmin(1)
    ref = d.min(1) * np.where(np.sum((q - p[i]) * n[i], 1) < 0, -1, 1)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.data
def test_real_point_clouds(data_dir, key):
    every = furniture.read_point_clouds(data_dir)  # chairs' files end lines differently from tables'
    assert len(every) == 43 and sum(k.startswith("Chair") for k in every) == 30
    assert all(xyz.shape == (15000, 3) for xyz, _ in every.values())
    clouds = furniture.read_point_clouds(data_dir, category="Tables")
    assert len(clouds) == 13
    name = sorted(clouds)[0]
    xyz, normals = clouds[name]
    assert xyz.shape == (15000, 3) and np.allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-3)
    assert 0.9 < np.abs(xyz).max() <= 1.01
    s = np.asarray(jax.jit(lambda k: furniture.point_cloud_samples(k, xyz, normals, num_samples=2000))(key))
    assert s.shape == (2000, 4)
    # Points pushed a little along the normals are outside (positive) and inside (negative).
    out = np.asarray(furniture.oriented_sdf(xyz, normals, xyz[:500] + 0.01 * normals[:500]))
    inn = np.asarray(furniture.oriented_sdf(xyz, normals, xyz[:500] - 0.01 * normals[:500]))
    assert np.mean(out > 0) > 0.9 and np.mean(inn < 0) > 0.9


def test_read_point_clouds_missing(tmp_path):
    with pytest.raises(DataError, match="not found"):
        furniture.read_point_clouds(tmp_path)
