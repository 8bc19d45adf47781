"""Looking at signed distance functions: sphere tracing (vmapped over pixels, shaded by normals
from ``jax.grad``), marching cubes (scikit-image) to OBJ/PLY meshes, and surface sampling.

An ``sdf_fn`` here is a single-point function ``(3,) -> ()``, e.g.
``lambda x: deepsdf.decode(model, z, x)`` or ``lambda x: furniture.sdf(shape, x)``.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from latentjax.errors import DataError


def camera_rays(
    *,
    eye: ArrayLike,
    target: ArrayLike = (0.0, 0.0, 0.0),
    up: ArrayLike = (0.0, 1.0, 0.0),
    fov_deg: float = 40.0,
    width: int = 64,
    height: int = 64,
) -> tuple[jax.Array, jax.Array]:
    """Pinhole camera rays through pixel centres.

    Returns:
        ``(origins, directions)``, each ``(height, width, 3)``; directions are unit vectors.
    """
    eye, target, up = (jnp.asarray(a, jnp.float32) for a in (eye, target, up))
    fwd = target - eye
    fwd = fwd / jnp.linalg.norm(fwd)
    right = jnp.cross(fwd, up)
    right = right / jnp.linalg.norm(right)
    true_up = jnp.cross(right, fwd)
    half = jnp.tan(jnp.deg2rad(fov_deg) / 2)
    aspect = width / height
    u = ((jnp.arange(width) + 0.5) / width * 2 - 1) * half * aspect
    v = (1 - (jnp.arange(height) + 0.5) / height * 2) * half
    d = (
        fwd[None, None, :]
        + u[None, :, None] * right[None, None, :]
        + v[:, None, None] * true_up[None, None, :]
    )
    d = d / jnp.linalg.norm(d, axis=-1, keepdims=True)
    return jnp.broadcast_to(eye[None, None, :], d.shape), d


def _box_interval(o, d, bound):
    # Slab test against [-bound, bound]^3: the learned SDF is only trained inside the box.
    inv = 1.0 / jnp.where(jnp.abs(d) < 1e-9, 1e-9, d)
    t0, t1 = (-bound - o) * inv, (bound - o) * inv
    return jnp.max(jnp.minimum(t0, t1)), jnp.min(jnp.maximum(t0, t1))


def sphere_trace(
    sdf_fn,
    origin: ArrayLike,
    direction: ArrayLike,
    *,
    num_steps: int = 64,
    eps: float = 1e-3,
    bound: float = 1.0,
    step_scale: float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """March one ray by the SDF value until it hits the surface or leaves the box.

    Args:
        sdf_fn: single-point SDF.
        origin, direction: ``(3,)`` ray (unit direction).
        num_steps: marching steps.
        eps: hit threshold.
        bound: half side of the box ``[-bound, bound]^3`` where the SDF is defined.
        step_scale: factor < 1 for SDFs that overestimate distances (learned ones).

    Returns:
        ``(t, hit)``: distance along the ray and whether it hit.

    References:
        Hart, "Sphere tracing: a geometric method for the antialiased ray tracing of implicit
        surfaces", The Visual Computer 12 (1996).
    """
    o, d = jnp.asarray(origin), jnp.asarray(direction)
    t_in, t_out = _box_interval(o, d, bound)
    t_in = jnp.maximum(t_in, 0.0)

    def body(_, carry):
        t, hit = carry
        dist = sdf_fn(o + t * d)
        hit = hit | (dist < eps)
        t = jnp.where(hit | (t > t_out), t, t + step_scale * dist)
        return t, hit

    t, hit = jax.lax.fori_loop(0, num_steps, body, (t_in, jnp.asarray(False)))
    return t, hit & (t_in < t_out) & (t <= t_out)


def normal(sdf_fn, x: ArrayLike) -> jax.Array:
    """Unit surface normal at ``x``: the normalised ``jax.grad`` of the SDF."""
    g = jax.grad(sdf_fn)(jnp.asarray(x))
    return g / jnp.maximum(jnp.linalg.norm(g), 1e-12)


def render(
    sdf_fn,
    *,
    eye: ArrayLike = (1.6, 1.2, 2.4),
    width: int = 64,
    height: int = 64,
    fov_deg: float = 40.0,
    light: ArrayLike = (0.5, 1.0, 0.8),
    color: ArrayLike = (0.55, 0.65, 0.85),
    background: float = 1.0,
    num_steps: int = 64,
    eps: float = 1e-3,
    bound: float = 1.0,
    step_scale: float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """Sphere-traced, Lambert-shaded image of an SDF (vmapped over pixels).

    Returns:
        ``(image (height, width, 3) in [0, 1], hit mask (height, width))``.

    Examples:
        >>> img, hit = render(lambda x: jnp.linalg.norm(x) - 0.5, width=8, height=8)
        >>> img.shape, bool(hit[4, 4])
        ((8, 8, 3), True)
    """
    origins, dirs = camera_rays(eye=eye, fov_deg=fov_deg, width=width, height=height)
    light = jnp.asarray(light, jnp.float32)
    light = light / jnp.linalg.norm(light)
    color = jnp.asarray(color, jnp.float32)

    def pixel(o, d):
        t, hit = sphere_trace(sdf_fn, o, d, num_steps=num_steps, eps=eps, bound=bound, step_scale=step_scale)
        n = normal(sdf_fn, o + t * d)
        shade = 0.25 + 0.75 * jnp.clip(jnp.dot(n, light), 0.0, 1.0)
        return jnp.where(hit, shade * color, background), hit

    img, hit = jax.vmap(jax.vmap(pixel))(origins, dirs)
    return img, hit


def grid_values(sdf_fn, *, resolution: int = 64, bound: float = 1.0, block: int = 32768) -> jax.Array:
    """SDF values on a ``resolution^3`` grid over ``[-bound, bound]^3`` (indexing ij = xyz).

    Traceable: jit it once over the shape's parameters (e.g. a code) to mesh many shapes.
    """
    ax = jnp.linspace(-bound, bound, resolution)
    pts = jnp.stack(jnp.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
    pad = (-pts.shape[0]) % block
    pts = jnp.pad(pts, ((0, pad), (0, 0))).reshape(-1, block, 3)
    vals = jax.lax.map(jax.vmap(sdf_fn), pts).reshape(-1)[: resolution**3]
    return vals.reshape(resolution, resolution, resolution)


def mesh_from_values(values: ArrayLike, *, bound: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Triangle mesh of the zero level set of grid values (scikit-image marching cubes).

    Returns:
        ``(vertices (v, 3) float32, faces (f, 3) int32)``, faces wound with outward normals.

    Raises:
        DataError: when the values have no zero crossing.

    References:
        Lewiner et al., "Efficient implementation of marching cubes' cases with topological
        guarantees", J. Graphics Tools 8 (2003).
    """
    from skimage import measure

    vol = np.array(values, np.float32)
    if vol.ndim != 3:
        raise DataError(f"grid values must be 3-D, got shape {vol.shape}")
    if not (vol.min() < 0 < vol.max()):
        raise DataError(f"no surface: SDF values on the grid lie in [{vol.min():.3g}, {vol.max():.3g}]")
    step = 2 * bound / (vol.shape[0] - 1)
    # "descent": values fall towards the object (inside negative), so faces wind outwards.
    verts, faces, _, _ = measure.marching_cubes(vol, 0.0, spacing=(step,) * 3, gradient_direction="descent")
    return (verts - bound).astype(np.float32), faces.astype(np.int32)


def marching_cubes(sdf_fn, *, resolution: int = 64, bound: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Triangle mesh ``(vertices, faces)`` of the zero level set of ``sdf_fn`` in ``[-bound, bound]^3``.

    Examples:
        >>> v, f = marching_cubes(lambda x: jnp.linalg.norm(x) - 0.5, resolution=16)
        >>> bool(abs(np.linalg.norm(v, axis=1).mean() - 0.5) < 0.01)
        True
    """
    return mesh_from_values(grid_values(sdf_fn, resolution=resolution, bound=bound), bound=bound)


def sample_surface(
    key: jax.Array, vertices: ArrayLike, faces: ArrayLike, *, num_points: int = 30000
) -> np.ndarray:
    """Points uniform by area on a triangle mesh (DeepSDF samples 30,000 for Chamfer)."""
    v = np.asarray(vertices, np.float32)[np.asarray(faces)]
    area = 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
    if area.sum() <= 0:
        raise DataError("mesh has no area to sample")
    kf, kb = jax.random.split(key)
    f = np.asarray(jax.random.choice(kf, len(area), (num_points,), p=jnp.asarray(area / area.sum())))
    r = np.array(jax.random.uniform(kb, (num_points, 2)))
    flip = r.sum(1) > 1
    r[flip] = 1 - r[flip]
    t = v[f]
    return t[:, 0] + r[:, :1] * (t[:, 1] - t[:, 0]) + r[:, 1:] * (t[:, 2] - t[:, 0])


def write_obj(path, vertices: ArrayLike, faces: ArrayLike) -> pathlib.Path:
    """Write a Wavefront OBJ (``v`` and 1-based ``f`` lines)."""
    path = pathlib.Path(path)
    v, f = np.asarray(vertices), np.asarray(faces) + 1
    with open(path, "w") as fh:
        np.savetxt(fh, v, fmt="v %.6f %.6f %.6f")
        np.savetxt(fh, f, fmt="f %d %d %d")
    return path


def write_ply(path, vertices: ArrayLike, faces: ArrayLike) -> pathlib.Path:
    """Write an ASCII PLY triangle mesh."""
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
