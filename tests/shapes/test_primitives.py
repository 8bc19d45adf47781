"""Exact SDF primitives and their union in a ``Shape``: unit gradients, signs, closed forms, vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax.shapes import furniture, primitives


def _points(key, n=4000, scale=2.0):
    return jax.random.uniform(key, (n, 3), minval=-scale, maxval=scale)


def _two_parts():
    """A box (half 0.3) at (0.5, 0, 0) and a cylinder (r 0.3, half height 0.5) at (-0.4, 0.2, 0.1)."""
    p = primitives.MAX_PARTS
    return primitives.Shape(
        kind=jnp.zeros(p, jnp.int32).at[1].set(primitives.CYLINDER),
        center=jnp.zeros((p, 3)).at[0].set(jnp.array([0.5, 0.0, 0.0])).at[1].set(jnp.array([-0.4, 0.2, 0.1])),
        size=jnp.full((p, 3), 0.3).at[1].set(jnp.array([0.3, 0.5, 0.0])),
        radius=jnp.zeros(p),
        mask=jnp.arange(p) < 2,
    )


PRIMITIVES = {
    "box": lambda p: primitives.box(p, jnp.array([0.5, 0.3, 0.8])),
    "rounded_box": lambda p: primitives.rounded_box(p, jnp.array([0.5, 0.3, 0.8]), 0.2),
    "cylinder": lambda p: primitives.cylinder(p, 0.4, 0.7),
    "union_of_parts": lambda p: primitives.sdf(_two_parts(), p),
}


def _in_box(q, h):
    return np.all(np.abs(q) <= h, axis=1)


def _in_cylinder(q, r, h):
    return (np.hypot(q[:, 0], q[:, 2]) <= r) & (np.abs(q[:, 1]) <= h)


def _inside_reference(name, p):
    """Membership by construction (not by the SDF) for the sign check."""
    p = np.asarray(p)
    if name == "box":
        return _in_box(p, [0.5, 0.3, 0.8])
    if name == "rounded_box":
        # Rounded box = points within 0.2 of the inner box (half extents minus 0.2).
        q = np.maximum(np.abs(p) - np.array([0.3, 0.1, 0.6]), 0)
        return np.linalg.norm(q, axis=1) <= 0.2
    if name == "cylinder":
        return _in_cylinder(p, 0.4, 0.7)
    return _in_box(p - [0.5, 0, 0], 0.3) | _in_cylinder(p - [-0.4, 0.2, 0.1], 0.3, 0.5)


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
    assert float(primitives.box(jnp.array([1.5, 0.0, 0.0]), jnp.ones(3))) == pytest.approx(0.5)
    assert float(primitives.box(jnp.array([2.0, 2.0, 1.0]), jnp.ones(3))) == pytest.approx(np.sqrt(2))
    assert float(primitives.box(jnp.array([0.5, 0.0, 0.0]), jnp.ones(3))) == pytest.approx(-0.5)
    assert float(primitives.cylinder(jnp.array([0.0, 2.0, 0.0]), 1.0, 1.0)) == pytest.approx(1.0)
    assert float(primitives.cylinder(jnp.array([2.0, 2.0, 0.0]), 1.0, 1.0)) == pytest.approx(np.sqrt(2))
    # Rounded box corner: distance to the rounding sphere.
    p = jnp.array([2.0, 2.0, 2.0])
    assert float(primitives.rounded_box(p, jnp.ones(3), 0.5)) == pytest.approx(
        np.sqrt(3 * 1.5**2) - 0.5, rel=1e-5
    )


def test_gradient_on_the_surface_is_the_normal():
    # _neg_part keeps the full gradient where the distance is exactly 0 (no 0.5/0.5 tie split).
    g = jax.grad(primitives.box)(jnp.array([1.0, 0.2, 0.3]), jnp.ones(3))
    np.testing.assert_allclose(g, [1.0, 0.0, 0.0])


def test_absent_parts_are_ignored():
    shape = _two_parts()
    d = primitives.part_sdfs(shape, jnp.zeros(3))
    assert np.all(np.isinf(np.asarray(d[2:]))) and np.all(np.isfinite(np.asarray(d[:2])))
    assert float(primitives.sdf(shape, jnp.zeros(3))) == pytest.approx(float(jnp.min(d[:2])))


def test_shape_sdf_vmap_equals_loop(key):
    shapes, _ = furniture.generate(num_per_class=2, seed=0)
    p = _points(jax.random.key(1), 5)
    batched = jax.vmap(jax.vmap(primitives.sdf, in_axes=(None, 0)), in_axes=(0, None))(shapes, p)
    for i in range(6):
        for j in range(5):
            assert float(batched[i, j]) == pytest.approx(
                float(primitives.sdf(primitives.take(shapes, i), p[j])), abs=1e-6
            )


def test_take_int_and_array():
    shapes, _ = furniture.generate(num_per_class=2, seed=0)
    one = primitives.take(shapes, 3)
    assert one.center.shape == (primitives.MAX_PARTS, 3)
    np.testing.assert_array_equal(one.size, shapes.size[3])
    some = primitives.take(shapes, np.array([5, 0]))
    assert some.kind.shape == (2, primitives.MAX_PARTS)
    np.testing.assert_array_equal(some.mask[0], shapes.mask[5])
