"""Looking at signed distance functions: sphere tracing and marching cubes.

Sphere tracing is vmapped over pixels and shaded by normals from ``jax.grad``; marching cubes
(scikit-image) turns grid values into triangle meshes.

An ``sdf_fn`` here is a single-point function ``(3,) -> ()``, e.g.
``lambda x: deepsdf.decode(model, z, x)`` or ``lambda x: primitives.sdf(shape, x)``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from skimage import measure

from latentjax.errors import InputError

_SdfFn = Callable[[jax.Array], jax.Array]


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

    Args:
        eye: ``(3,)`` camera position.
        target: ``(3,)`` point the camera looks at.
        up: ``(3,)`` up direction of the image.
        fov_deg: vertical field of view in degrees.
        width: pixels per row.
        height: pixel rows.

    Returns:
        ``(origins, directions)``, each ``(height, width, 3)``; directions are unit vectors.

    Examples:
        >>> o, d = camera_rays(eye=(0.0, 0.0, 3.0), width=3, height=3)
        >>> o.shape, d[1, 1].tolist()
        ((3, 3, 3), [0.0, 0.0, -1.0])
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
    sdf_fn: _SdfFn,
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
        origin: ``(3,)`` start of the ray.
        direction: ``(3,)`` unit direction.
        num_steps: marching steps.
        eps: hit threshold.
        bound: half side of the box ``[-bound, bound]^3`` where the SDF is defined.
        step_scale: factor < 1 for SDFs that overestimate distances (learned ones).

    Returns:
        ``(t, hit)``: distance along the ray and whether it hit.

    Examples:
        >>> t, hit = sphere_trace(lambda x: jnp.linalg.norm(x) - 1.0, jnp.array([0.0, 0, 3]),
        ...                       jnp.array([0.0, 0, -1]), bound=1.5)
        >>> round(float(t), 2), bool(hit)
        (2.0, True)

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


def normal(sdf_fn: _SdfFn, x: ArrayLike) -> jax.Array:
    """Unit surface normal at ``x``: the normalised ``jax.grad`` of the SDF.

    Args:
        sdf_fn: single-point SDF.
        x: ``(3,)`` point (on or near the surface).

    Returns:
        ``(3,)`` unit vector (zero where the gradient vanishes).

    Examples:
        >>> normal(lambda x: jnp.linalg.norm(x) - 1.0, jnp.array([0.0, 2.0, 0.0])).tolist()
        [0.0, 1.0, 0.0]
    """
    g = jax.grad(sdf_fn)(jnp.asarray(x))
    return g / jnp.maximum(jnp.linalg.norm(g), 1e-12)


def render(
    sdf_fn: _SdfFn,
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

    Args:
        sdf_fn: single-point SDF.
        eye: ``(3,)`` camera position (looking at the origin, y up).
        width: image width in pixels.
        height: image height in pixels.
        fov_deg: vertical field of view in degrees.
        light: ``(3,)`` direction towards the light.
        color: ``(3,)`` RGB albedo in [0, 1].
        background: grey level where rays miss.
        num_steps: marching steps per ray (see ``sphere_trace``).
        eps: hit threshold.
        bound: half side of the box where the SDF is defined.
        step_scale: factor < 1 for SDFs that overestimate distances (learned ones).

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


def grid_values(
    sdf_fn: _SdfFn, *, resolution: int = 64, bound: float = 1.0, block_size: int = 32768
) -> jax.Array:
    """SDF values on a ``resolution^3`` grid over ``[-bound, bound]^3`` (indexing ij = xyz).

    Traceable: jit it once over the shape's parameters (e.g. a code) to mesh many shapes.

    Args:
        sdf_fn: single-point SDF.
        resolution: grid points per axis.
        bound: half side of the box.
        block_size: points evaluated at once (one vmap of ``sdf_fn``).

    Returns:
        ``(resolution, resolution, resolution)`` values.

    Examples:
        >>> v = grid_values(lambda x: jnp.linalg.norm(x) - 0.5, resolution=3)
        >>> v.shape, float(v[1, 1, 1])
        ((3, 3, 3), -0.5)
    """
    ax = jnp.linspace(-bound, bound, resolution)
    pts = jnp.stack(jnp.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
    vals = jax.lax.map(sdf_fn, pts, batch_size=min(block_size, pts.shape[0]))
    return vals.reshape(resolution, resolution, resolution)


def mesh_from_values(values: ArrayLike, *, bound: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Triangle mesh of the zero level set of grid values (scikit-image marching cubes).

    Args:
        values: ``(r, r, r)`` SDF values on the grid of ``grid_values(..., bound=bound)``.
        bound: half side of the box the grid spans.

    Returns:
        ``(vertices (v, 3) float32, faces (f, 3) int32)``, faces wound with outward normals.

    Raises:
        InputError: when the values are not 3-D or have no zero crossing.

    Examples:
        >>> v, f = mesh_from_values(grid_values(lambda x: jnp.linalg.norm(x) - 0.5, resolution=8))
        >>> v.shape[1], f.shape[1]
        (3, 3)

    References:
        Lewiner et al., "Efficient implementation of marching cubes' cases with topological
        guarantees", J. Graphics Tools 8 (2003).
    """
    vol = np.array(values, np.float32)
    if vol.ndim != 3:
        raise InputError(f"render.mesh_from_values: values must be 3-D, got shape {vol.shape}")
    if not (vol.min() < 0 < vol.max()):
        raise InputError(
            f"render.mesh_from_values: no surface: the values lie in [{vol.min():.3g}, {vol.max():.3g}]"
        )
    step = 2 * bound / (vol.shape[0] - 1)
    # "descent": values fall towards the object (inside negative), so faces wind outwards.
    verts, faces, _, _ = measure.marching_cubes(vol, 0.0, spacing=(step,) * 3, gradient_direction="descent")
    return (verts - bound).astype(np.float32), faces.astype(np.int32)


def marching_cubes(
    sdf_fn: _SdfFn, *, resolution: int = 64, bound: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Triangle mesh of the zero level set of ``sdf_fn`` in ``[-bound, bound]^3``.

    ``mesh_from_values(grid_values(sdf_fn, ...))``; to mesh many shapes, jit ``grid_values`` once.

    Args:
        sdf_fn: single-point SDF.
        resolution: grid points per axis.
        bound: half side of the box.

    Returns:
        ``(vertices (v, 3) float32, faces (f, 3) int32)``, faces wound with outward normals.

    Raises:
        InputError: when the SDF has no zero crossing on the grid.

    Examples:
        >>> v, f = marching_cubes(lambda x: jnp.linalg.norm(x) - 0.5, resolution=16)
        >>> bool(abs(np.linalg.norm(v, axis=1).mean() - 0.5) < 0.01)
        True
    """
    return mesh_from_values(grid_values(sdf_fn, resolution=resolution, bound=bound), bound=bound)
