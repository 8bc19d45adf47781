"""Sphere tracing against analytic silhouettes, normals, grid values, marching cubes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax.errors import InputError
from latentjax.shapes import render


def sphere(x):
    return jnp.linalg.norm(x) - 1.0


def test_sphere_silhouette_within_a_pixel():
    eye = jnp.array([0.0, 0.0, 4.0])
    size, fov = 64, 40.0
    img, hit = jax.jit(
        lambda: render.render(sphere, eye=eye, width=size, height=size, fov_deg=fov, bound=1.5, num_steps=96)
    )()
    o, d = render.camera_rays(eye=eye, fov_deg=fov, width=size, height=size)
    # Analytic: a ray hits the unit sphere iff its distance to the centre is below 1.
    t = -jnp.sum(o * d, axis=-1)
    rho = np.asarray(jnp.linalg.norm(o + t[..., None] * d, axis=-1))
    analytic = rho < 1.0
    hit = np.asarray(hit)
    assert hit.sum() > 500
    wrong = hit != analytic
    # One pixel subtends about 2 tan(fov / 2) / size rad at distance ~4: mismatches may only
    # occur where the analytic edge is within one pixel.
    pixel = 4.0 * 2 * np.tan(np.deg2rad(fov) / 2) / size
    assert np.all(np.abs(rho[wrong] - 1.0) < pixel)
    assert wrong.sum() <= 0.02 * analytic.sum()
    # Background is the background colour; the shaded sphere is darker.
    assert np.allclose(np.asarray(img)[~hit], 1.0)


def test_sphere_trace_distance_closed_form():
    o, d = jnp.array([0.0, 0.0, 3.0]), jnp.array([0.0, 0.0, -1.0])
    t, hit = render.sphere_trace(sphere, o, d, bound=1.5, eps=1e-5)
    assert bool(hit) and float(t) == pytest.approx(2.0, abs=1e-4)
    t, hit = render.sphere_trace(sphere, o + jnp.array([1.2, 0.0, 0.0]), d, bound=1.5)
    assert not bool(hit)


def test_normal_is_grad_direction():
    x = jnp.array([0.3, -0.4, 1.2])
    np.testing.assert_allclose(render.normal(sphere, x), x / jnp.linalg.norm(x), rtol=1e-6)


@pytest.mark.parametrize("block_size", [1000, 4096, 32768])
def test_grid_values_blockwise_equal_one_vmap(block_size):
    # 17^3 = 4913 points: one block, several blocks with a remainder, and blocks larger than the grid.
    def f(x):
        return jnp.linalg.norm(x - jnp.array([0.1, 0.0, -0.2])) - 0.5

    got = render.grid_values(f, resolution=17, bound=1.2, block_size=block_size)
    ax = jnp.linspace(-1.2, 1.2, 17)
    pts = jnp.stack(jnp.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
    np.testing.assert_allclose(got, jax.vmap(f)(pts).reshape(17, 17, 17), rtol=1e-6, atol=1e-6)
    assert float(got[8, 8, 8]) == pytest.approx(float(f(jnp.zeros(3))), abs=1e-6)


def test_marching_cubes_sphere_and_orientation():
    v, f = render.marching_cubes(lambda x: jnp.linalg.norm(x) - 0.6, resolution=32)
    r = np.linalg.norm(v, axis=1)
    assert np.abs(r - 0.6).max() < 0.02
    tri = v[f]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    # Outward winding: face normals point away from the centre.
    assert np.mean(np.sum(n * tri.mean(1), axis=1) > 0) > 0.99
    area = 0.5 * np.linalg.norm(n, axis=1).sum()
    assert area == pytest.approx(4 * np.pi * 0.36, rel=0.02)


def test_marching_cubes_no_surface():
    with pytest.raises(InputError, match="render.mesh_from_values: no surface"):
        render.marching_cubes(lambda x: jnp.linalg.norm(x) + 1.0, resolution=8)


def test_mesh_from_values_needs_a_volume():
    with pytest.raises(InputError, match="3-D"):
        render.mesh_from_values(np.zeros((4, 4)))
