"""Samples of surfaces and of signed distance fields.

Points uniform on a surface (a ``Shape`` or a triangle mesh), DeepSDF's training samples, and SDF
values from oriented point clouds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from latentjax.errors import InputError
from latentjax.look import neighbors
from latentjax.shapes.primitives import _TINY, CYLINDER, MAX_PARTS, Shape, part_sdf, part_sdfs, sdf

# Candidates drawn per returned point on a Shape: the ones inside other parts are rejected.
_OVERSAMPLE = 3


# The samplers of one part take their uniforms as an argument: one random draw for all candidates
# compiles much faster than several threefry calls inside the vmapped body.
def _box_surface(u, half):
    """A point uniform on the surface of a box with half extents ``half``; ``u``: 5 uniforms."""
    face_area = jnp.stack([half[1] * half[2], half[0] * half[2], half[0] * half[1]])
    cdf = jnp.cumsum(face_area) / jnp.sum(face_area)
    axis = jnp.sum(u[0] > cdf[:2])
    sign = jnp.where(u[1] < 0.5, 1.0, -1.0)
    p = (2 * u[2:5] - 1) * half
    return jnp.where(jnp.arange(3) == axis, sign * half, p)


def _cylinder_surface(u, radius, half_height):
    """A point uniform on the surface of a capped cylinder (axis y); ``u``: 5 uniforms."""
    side = 4 * jnp.pi * radius * half_height
    caps = 2 * jnp.pi * radius**2
    on_side = u[0] < side / (side + caps)
    theta = 2 * jnp.pi * u[2]
    r = jnp.where(on_side, radius, radius * jnp.sqrt(u[3]))
    y = jnp.where(on_side, (2 * u[4] - 1) * half_height, jnp.where(u[1] < 0.5, 1.0, -1.0) * half_height)
    return jnp.stack([r * jnp.cos(theta), y, r * jnp.sin(theta)])


def _part_area(kind, size):
    box_area = 8 * (size[0] * size[1] + size[1] * size[2] + size[0] * size[2])
    cyl_area = 4 * jnp.pi * size[0] * size[1] + 2 * jnp.pi * size[0] ** 2
    return jnp.where(kind == CYLINDER, cyl_area, box_area)


def _shape_surface(key, shape, num_points):
    """Traceable: parts by area, a point on the part, kept when it is outside every other part."""
    m = num_points * _OVERSAMPLE
    kp, ks, kc = jax.random.split(key, 3)
    area = jnp.where(shape.mask, jax.vmap(_part_area)(shape.kind, shape.size), 0.0)
    part = jax.random.categorical(kp, jnp.log(area + _TINY), shape=(m,))

    def one(u, i):
        kind, c, s, r = shape.kind[i], shape.center[i], shape.size[i], shape.radius[i]
        local = jnp.where(kind == CYLINDER, _cylinder_surface(u, s[0], s[1]), _box_surface(u, s))
        # Rounded boxes: pull the point on the outer box onto the rounded surface (exact SDF).
        d, g = jax.value_and_grad(part_sdf)(local, kind, jnp.zeros(3), s, r)
        local = local - d * g
        x = local + c
        others = jnp.where(jnp.arange(MAX_PARTS) == i, jnp.inf, part_sdfs(shape, x))
        n = jax.grad(part_sdf)(local, kind, jnp.zeros(3), s, r)
        return x, n, jnp.min(others) > 1e-6

    x, n, ok = jax.vmap(one)(jax.random.uniform(ks, (m, 5)), part)
    pick = jax.random.choice(kc, m, (num_points,), p=ok / jnp.maximum(ok.sum(), 1))
    return x[pick], n[pick]


def _mesh_surface(key, vertices, faces, num_points):
    """On the host: triangles by area, then uniform barycentric coordinates (folded square)."""
    v = np.asarray(vertices, np.float32)[np.asarray(faces)]
    cross = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    area = 0.5 * np.linalg.norm(cross, axis=1)
    if area.sum() <= 0:
        raise InputError("samples.surface_points: the mesh has no area to sample")
    kf, kb = jax.random.split(key)
    f = np.asarray(jax.random.choice(kf, len(area), (num_points,), p=jnp.asarray(area / area.sum())))
    r = np.array(jax.random.uniform(kb, (num_points, 2)))
    flip = r.sum(1) > 1
    r[flip] = 1 - r[flip]
    t = v[f]
    points = t[:, 0] + r[:, :1] * (t[:, 1] - t[:, 0]) + r[:, 1:] * (t[:, 2] - t[:, 0])
    normals = cross[f] / (2 * area[f])[:, None]
    return points, normals


def surface_points(
    key: jax.Array, surface: Shape | tuple[ArrayLike, ArrayLike], *, num_points: int
) -> tuple[jax.Array, jax.Array]:
    """Points uniform (by area) on a surface, with outward unit normals.

    A ``Shape``: every part's surface is sampled by area, rounded boxes are projected onto their
    rounded surface, and only points outside all other parts (the surface of the union) are kept;
    traceable (jit and vmap over shapes). A triangle mesh ``(vertices, faces)`` (e.g. from
    ``render.marching_cubes``): triangles by area, then a uniform point in the triangle; runs on
    the host (NumPy arrays out), normals from the winding.

    Args:
        key: random key.
        surface: one (unbatched) ``Shape``, or a mesh ``(vertices (v, 3), faces (f, 3) int)``.
        num_points: points to return (DeepSDF evaluates Chamfer distances on 30,000).

    Returns:
        ``(points (num_points, 3), normals (num_points, 3))``.

    Raises:
        InputError: when the mesh has no area.

    Examples:
        >>> box = Shape(jnp.zeros(MAX_PARTS, jnp.int32), jnp.zeros((MAX_PARTS, 3)),
        ...             jnp.ones((MAX_PARTS, 3)), jnp.zeros(MAX_PARTS), jnp.arange(MAX_PARTS) == 0)
        >>> sample = jax.jit(surface_points, static_argnames="num_points")
        >>> x, n = sample(jax.random.key(0), box, num_points=100)
        >>> bool(jnp.allclose(jnp.abs(x).max(axis=1), 1.0)), bool(jnp.all(jnp.sum(x * n, axis=1) > 0))
        (True, True)
        >>> triangle = (np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]), np.array([[0, 1, 2]]))
        >>> x, n = surface_points(jax.random.key(0), triangle, num_points=100)
        >>> bool(np.all(x.sum(axis=1) <= 1 + 1e-6)), n[0].tolist()
        (True, [0.0, 0.0, 1.0])
    """
    if isinstance(surface, Shape):
        return _shape_surface(key, surface, num_points)
    vertices, faces = surface
    return _mesh_surface(key, vertices, faces, num_points)


def _positions(key, points, *, num_samples, sigmas, uniform_fraction, bound):
    """DeepSDF's sample positions: Gaussian perturbations of surface points plus uniform ones."""
    points = jnp.asarray(points)
    n_uni = int(round(num_samples * uniform_fraction))
    n_near = num_samples - n_uni
    kp, kn, ku = jax.random.split(key, 3)
    idx = jax.random.randint(kp, (n_near,), 0, points.shape[0])
    sig = jnp.asarray(sigmas, jnp.float32)[jnp.arange(n_near) % len(sigmas)]
    near = points[idx] + sig[:, None] * jax.random.normal(kn, (n_near, 3))
    uni = jax.random.uniform(ku, (n_uni, 3), minval=-bound, maxval=bound)
    return jnp.concatenate([near, uni])


def deepsdf_samples(
    key: jax.Array,
    points: ArrayLike,
    sdf_fn: Callable[[jax.Array], jax.Array],
    *,
    num_samples: int,
    sigmas: Sequence[float] = (0.0707, 0.0224),
    uniform_fraction: float = 0.06,
    bound: float = 1.0,
) -> jax.Array:
    """DeepSDF-style SDF samples: Gaussian perturbations of surface points plus uniform ones.

    Args:
        key: random key.
        points: ``(n, 3)`` surface points.
        sdf_fn: single-point SDF ``(3,) -> ()`` giving the (unclamped) target values.
        num_samples: samples to return.
        sigmas: standard deviations of the near-surface perturbations, split evenly. The default is
            DeepSDF's preprocessing (variances 0.005 and 0.0005 on unit-sphere shapes).
        uniform_fraction: share of samples uniform in the cube ``[-bound, bound]^3``
            (DeepSDF: 3 in 50).
        bound: half side of the sampling cube.

    Returns:
        ``(num_samples, 4)``: xyz and the signed distance (clamp it in the loss, not here); the
        near-surface samples come first, the uniform ones last.

    Examples:
        >>> sphere = jax.random.normal(jax.random.key(0), (100, 3))
        >>> sphere = sphere / jnp.linalg.norm(sphere, axis=1, keepdims=True)
        >>> def unit_sphere(x):
        ...     return jnp.linalg.norm(x) - 1.0
        >>> s = jax.jit(lambda k: deepsdf_samples(k, sphere, unit_sphere, num_samples=50))(jax.random.key(1))
        >>> s.shape, bool(jnp.abs(s[:47, 3]).max() < 0.5)
        ((50, 4), True)

    References:
        Park et al., "DeepSDF", CVPR 2019, Sec. 5 and its ``PreprocessMesh.cpp``.
    """
    x = _positions(
        key, points, num_samples=num_samples, sigmas=sigmas, uniform_fraction=uniform_fraction, bound=bound
    )
    return jnp.concatenate([x, jax.vmap(sdf_fn)(x)[:, None]], axis=1)


def shape_samples(
    key: jax.Array,
    shape: Shape,
    *,
    num_samples: int,
    sigmas: Sequence[float] = (0.0707, 0.0224),
    uniform_fraction: float = 0.06,
    bound: float = 1.0,
) -> jax.Array:
    """DeepSDF samples of one procedural shape, with exact SDF values.

    The surface points are ``surface_points(shape, num_points=max(num_samples // 4, 64))``.

    Args:
        key: random key.
        shape: one (unbatched) ``Shape``.
        num_samples: samples to return.
        sigmas: see ``deepsdf_samples``.
        uniform_fraction: see ``deepsdf_samples``.
        bound: see ``deepsdf_samples``.

    Returns:
        ``(num_samples, 4)``: xyz and the exact signed distance.

    Examples:
        >>> from latentjax.shapes import furniture
        >>> shapes, _ = furniture.generate(num_per_class=2, seed=0)
        >>> sample = jax.jit(jax.vmap(lambda k, shape: shape_samples(k, shape, num_samples=256)))
        >>> sample(jax.random.split(jax.random.key(1), 6), shapes).shape
        (6, 256, 4)
    """
    ks, kd = jax.random.split(key)
    pts, _ = surface_points(ks, shape, num_points=max(num_samples // 4, 64))

    def exact(p):
        return sdf(shape, p)

    return deepsdf_samples(
        kd, pts, exact, num_samples=num_samples, sigmas=sigmas, uniform_fraction=uniform_fraction, bound=bound
    )


def oriented_sdf(
    points: ArrayLike, normals: ArrayLike, queries: ArrayLike, *, block_size: int = 2048
) -> jax.Array:
    """Signed distances from oriented points: distance to the nearest point, signed by its normal.

    Exact nearest neighbours (``look.neighbors.knn``), ``block_size`` queries at a time (memory
    ``block_size x n``).

    Args:
        points: ``(n, 3)`` surface points.
        normals: ``(n, 3)`` outward normals.
        queries: ``(m, 3)``.
        block_size: queries per block.

    Returns:
        ``(m,)`` signed distances, negative inside.

    Examples:
        >>> poles = jnp.array([[0.0, 0, 1], [0, 0, -1]])
        >>> oriented_sdf(poles, poles, jnp.array([[0.0, 0, 0.5], [0, 0, 3]])).tolist()
        [-0.5, 2.0]

    References:
        Park et al., "DeepSDF", Sec. 5 (sign from the nearest surface sample's normal).
    """
    points, normals, queries = (jnp.asarray(a, jnp.float32) for a in (points, normals, queries))
    nearest = neighbors.knn(points, k=1, queries=queries, block_size=block_size)
    i, dist = nearest.indices[:, 0], nearest.distances[:, 0]
    sign = jnp.where(jnp.sum((queries - points[i]) * normals[i], axis=1) < 0, -1.0, 1.0)
    return sign * dist


def point_cloud_samples(
    key: jax.Array,
    points: ArrayLike,
    normals: ArrayLike,
    *,
    num_samples: int,
    sigmas: Sequence[float] = (0.0707, 0.0224),
    uniform_fraction: float = 0.06,
    bound: float = 1.0,
) -> jax.Array:
    """DeepSDF samples of a real shape from its oriented point cloud (SDF values by ``oriented_sdf``).

    Args:
        key: random key.
        points: ``(n, 3)`` surface points (e.g. from ``meshes.read_point_clouds``).
        normals: ``(n, 3)`` outward unit normals.
        num_samples: samples to return.
        sigmas: see ``deepsdf_samples``.
        uniform_fraction: see ``deepsdf_samples``.
        bound: see ``deepsdf_samples``.

    Returns:
        ``(num_samples, 4)``: xyz and the signed distance.

    Examples:
        >>> poles = jnp.array([[0.0, 0, 1], [0, 0, -1]])
        >>> point_cloud_samples(jax.random.key(0), poles, poles, num_samples=8).shape
        (8, 4)
    """
    x = _positions(
        key, points, num_samples=num_samples, sigmas=sigmas, uniform_fraction=uniform_fraction, bound=bound
    )
    return jnp.concatenate([x, oriented_sdf(points, normals, x)[:, None]], axis=1)
