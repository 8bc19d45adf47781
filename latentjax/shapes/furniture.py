"""Furniture shapes as signed distance functions: exact primitives, a procedural generator of
chairs, tables and sofas, real shapes from oriented point clouds, and DeepSDF-style sampling.

Frame: y is up; a shape fits in the cube [-1, 1]^3 (procedural shapes in max |coord| = 0.9).
"""

from __future__ import annotations

import pathlib
import zipfile
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from latentjax.errors import DataError

CLASSES = ("chair", "table", "sofa")
MAX_PARTS = 12
BOX, ROUNDED_BOX, CYLINDER = 0, 1, 2
_TINY = 1e-20


class Shape(NamedTuple):
    """A union of up to ``MAX_PARTS`` primitives as fixed-size arrays (a batch of shapes vmaps).

    Attributes:
        kind: ``(p,)`` int32, ``BOX``, ``ROUNDED_BOX`` or ``CYLINDER``.
        center: ``(p, 3)`` part centres.
        size: ``(p, 3)`` half extents; a cylinder (axis y) uses ``size[0]`` as radius and
            ``size[1]`` as half height.
        radius: ``(p,)`` rounding radius of rounded boxes (0 otherwise).
        mask: ``(p,)`` bool, which parts exist.
    """

    kind: jax.Array
    center: jax.Array
    size: jax.Array
    radius: jax.Array
    mask: jax.Array


def _norm(v):
    # sqrt with a floor: the gradient at 0 is 0 instead of NaN (it is multiplied by max(q, 0) = 0).
    return jnp.sqrt(jnp.maximum(jnp.sum(v * v, axis=-1), _TINY))


def _neg_part(m):
    # min(m, 0) whose gradient at m = 0 is 1 (jnp.minimum splits ties 0.5/0.5, which would halve
    # normals exactly on the surface).
    return jnp.where(m > 0, 0.0, m)


def box(p: ArrayLike, half: ArrayLike) -> jax.Array:
    """Exact signed distance from point ``p`` (3,) to an axis-aligned box centred at 0.

    Args:
        p: ``(3,)`` query point.
        half: ``(3,)`` half extents.

    Returns:
        Scalar, negative inside.

    Examples:
        >>> float(box(jnp.array([2.0, 0, 0]), jnp.ones(3)))
        1.0

    References:
        Quilez, "Distance functions" (iquilezles.org), sdBox.
    """
    q = jnp.abs(p) - half
    return _norm(jnp.maximum(q, 0.0)) + _neg_part(jnp.max(q))


def rounded_box(p: ArrayLike, half: ArrayLike, radius: ArrayLike) -> jax.Array:
    """Exact signed distance to a box with outer half extents ``half`` and edges rounded by ``radius``.

    Examples:
        >>> float(rounded_box(jnp.array([0.0, 3.0, 0]), jnp.ones(3), 0.5))
        2.0

    References:
        Quilez, "Distance functions", sdRoundBox.
    """
    return box(p, jnp.asarray(half) - radius) - radius


def cylinder(p: ArrayLike, radius: ArrayLike, half_height: ArrayLike) -> jax.Array:
    """Exact signed distance to a capped cylinder with axis y, centred at 0.

    Examples:
        >>> float(cylinder(jnp.array([3.0, 0, 0]), 1.0, 1.0))
        2.0

    References:
        Quilez, "Distance functions", sdCappedCylinder.
    """
    p = jnp.asarray(p)
    d = jnp.stack([_norm(p[jnp.array([0, 2])]) - radius, jnp.abs(p[1]) - half_height])
    return _neg_part(jnp.max(d)) + _norm(jnp.maximum(d, 0.0))


def translate(sdf_fn, offset: ArrayLike):
    """The SDF ``sdf_fn`` moved by ``offset`` (translation keeps an SDF exact)."""
    return lambda p: sdf_fn(jnp.asarray(p) - offset)


def union(*sdf_values: ArrayLike) -> jax.Array:
    """Union of shapes from their SDF values: exact outside, a bound inside.

    References:
        Quilez, "Distance functions", opUnion.
    """
    return jnp.min(jnp.stack(sdf_values), axis=0)


def part_sdf(p: ArrayLike, kind, center, size, radius) -> jax.Array:
    """Signed distance from ``p`` to one part of a ``Shape``."""
    q = jnp.asarray(p) - center
    d_box = rounded_box(q, size, radius)
    d_cyl = cylinder(q, size[0], size[1])
    return jnp.where(kind == CYLINDER, d_cyl, d_box)


def part_sdfs(shape: Shape, p: ArrayLike) -> jax.Array:
    """``(MAX_PARTS,)`` signed distances to every part (``+inf`` for absent parts)."""
    d = jax.vmap(part_sdf, in_axes=(None, 0, 0, 0, 0))(p, shape.kind, shape.center, shape.size, shape.radius)
    return jnp.where(shape.mask, d, jnp.inf)


def sdf(shape: Shape, p: ArrayLike) -> jax.Array:
    """Signed distance from one point ``p`` (3,) to ``shape`` (the union of its parts).

    Examples:
        >>> shapes, labels = generate(jax.random.key(0), num_per_class=1)
        >>> one = jax.tree.map(lambda a: a[0], shapes)
        >>> d = jax.vmap(sdf, in_axes=(None, 0))(one, jnp.zeros((5, 3)))
    """
    return jnp.min(part_sdfs(shape, p))


# ---------------------------------------------------------------- procedural generator


def _parts(rng, label):
    """Part list ``[(kind, center, size, radius)]`` of one random chair, table or sofa (metres)."""
    u = rng.uniform
    parts = []
    if label == 0:  # chair
        w, d = u(0.40, 0.55), u(0.38, 0.52)
        seat_h, seat_t = u(0.40, 0.50), u(0.03, 0.08)
        back_h = u(0.30, 0.55)
        rounded = u() < 0.5
        parts.append(
            (
                ROUNDED_BOX if rounded else BOX,
                (0, seat_h - seat_t / 2, 0),
                (w / 2, seat_t / 2, d / 2),
                min(0.02, seat_t / 2.5) if rounded else 0.0,
            )
        )
        bt = u(0.025, 0.07)
        tilt_z = -d / 2 + bt / 2
        parts.append((BOX, (0, seat_h + back_h / 2, tilt_z), (w / 2, back_h / 2, bt / 2), 0.0))
        leg_h = seat_h - seat_t
        if u() < 0.2:  # swivel chair: pedestal and base disc
            parts.append((CYLINDER, (0, leg_h / 2 + 0.02, 0), (u(0.03, 0.05), leg_h / 2 - 0.02, 0), 0.0))
            parts.append((CYLINDER, (0, 0.02, 0), (u(0.2, 0.28), 0.02, 0), 0.0))
        else:
            r = u(0.015, 0.035)
            cyl = u() < 0.5
            for sx in (-1, 1):
                for sz in (-1, 1):
                    c = (sx * (w / 2 - r), leg_h / 2, sz * (d / 2 - r))
                    parts.append(
                        (CYLINDER, c, (r, leg_h / 2, 0), 0.0) if cyl else (BOX, c, (r, leg_h / 2, r), 0.0)
                    )
        if u() < 0.4:  # arms: a rest and a support on each side
            ah, at = u(0.18, 0.26), u(0.025, 0.05)
            for sx in (-1, 1):
                x = sx * (w / 2 - at / 2)
                parts.append((BOX, (x, seat_h + ah, 0), (at / 2, 0.02, d / 2), 0.0))
                parts.append((BOX, (x, seat_h + ah / 2, d / 2 - at), (at / 2, ah / 2, at / 2), 0.0))
    elif label == 1:  # table
        w, d = u(0.7, 1.6), u(0.6, 1.0)
        h, top_t = u(0.55, 0.8), u(0.03, 0.08)
        round_top = u() < 0.3
        if round_top:
            rad = u(0.4, 0.7)
            parts.append((CYLINDER, (0, h - top_t / 2, 0), (rad, top_t / 2, 0), 0.0))
            w = d = rad * 1.4
        else:
            rounded = u() < 0.5
            parts.append(
                (
                    ROUNDED_BOX if rounded else BOX,
                    (0, h - top_t / 2, 0),
                    (w / 2, top_t / 2, d / 2),
                    top_t / 2.5 if rounded else 0.0,
                )
            )
        leg_h = h - top_t
        if round_top or u() < 0.2:  # pedestal table
            parts.append((CYLINDER, (0, leg_h / 2, 0), (u(0.04, 0.09), leg_h / 2, 0), 0.0))
            parts.append((CYLINDER, (0, 0.02, 0), (u(0.2, 0.35), 0.02, 0), 0.0))
        else:
            r = u(0.025, 0.05)
            inset = u(0.0, 0.08)
            cyl = u() < 0.5
            for sx in (-1, 1):
                for sz in (-1, 1):
                    c = (sx * (w / 2 - r - inset), leg_h / 2, sz * (d / 2 - r - inset))
                    parts.append(
                        (CYLINDER, c, (r, leg_h / 2, 0), 0.0) if cyl else (BOX, c, (r, leg_h / 2, r), 0.0)
                    )
            if u() < 0.4:  # lower shelf
                parts.append(
                    (BOX, (0, leg_h * u(0.2, 0.35), 0), (w / 2 - r - inset, 0.015, d / 2 - r - inset), 0.0)
                )
    else:  # sofa
        w, d = u(1.4, 2.2), u(0.75, 1.0)
        leg = u(0.0, 0.12)
        base_h = u(0.2, 0.3)
        rr = u(0.02, 0.06)
        parts.append((ROUNDED_BOX, (0, leg + base_h / 2, 0), (w / 2, base_h / 2, d / 2), rr))
        back_h, back_t = u(0.35, 0.55), u(0.15, 0.25)
        parts.append(
            (
                ROUNDED_BOX,
                (0, leg + base_h + back_h / 2 - 0.05, -d / 2 + back_t / 2),
                (w / 2, back_h / 2 + 0.05, back_t / 2),
                rr,
            )
        )
        arm_w, arm_h = u(0.12, 0.25), u(0.15, 0.3)
        for sx in (-1, 1):
            parts.append(
                (
                    ROUNDED_BOX,
                    (sx * (w / 2 - arm_w / 2), leg + base_h + arm_h / 2 - 0.05, 0),
                    (arm_w / 2, arm_h / 2 + 0.05, d / 2),
                    rr,
                )
            )
        cush = int(rng.integers(0, 4))  # seat cushions
        inner = w - 2 * arm_w
        for i in range(cush):
            cx = -inner / 2 + inner * (i + 0.5) / cush
            parts.append(
                (
                    ROUNDED_BOX,
                    (cx, leg + base_h + 0.04, back_t / 2),
                    (inner / cush / 2 - 0.01, 0.05, (d - back_t) / 2),
                    0.04,
                )
            )
        if leg > 0.02:
            r = u(0.02, 0.035)
            for sx in (-1, 1):
                for sz in (-1, 1):
                    parts.append(
                        (CYLINDER, (sx * (w / 2 - 0.08), leg / 2, sz * (d / 2 - 0.08)), (r, leg / 2, 0), 0.0)
                    )
    return parts[:MAX_PARTS]


def _to_shape(parts, extent=0.9):
    """Fixed-size arrays of one shape, centred and scaled so that max |coord| = ``extent``."""
    p = len(parts)
    kind = np.zeros(MAX_PARTS, np.int32)
    center = np.zeros((MAX_PARTS, 3), np.float32)
    size = np.full((MAX_PARTS, 3), 1e-3, np.float32)
    radius = np.zeros(MAX_PARTS, np.float32)
    mask = np.zeros(MAX_PARTS, bool)
    for i, (k, c, s, r) in enumerate(parts):
        kind[i], center[i], size[i], radius[i], mask[i] = k, c, s, r, True
    # Bounding box of the parts: a cylinder extends by its radius in x and z.
    ext = np.where((kind == CYLINDER)[:, None], size[:, [0, 1, 0]], size)[:p]
    lo, hi = (center[:p] - ext).min(0), (center[:p] + ext).max(0)
    mid = (lo + hi) / 2
    scale = extent / np.max(hi - mid)
    # Scaling a union of exact SDFs by its parameters keeps every part exact.
    center[:p] = (center[:p] - mid) * scale
    size[:p] *= scale
    radius[:p] *= scale
    return kind, center, size, radius, mask


def generate(key: jax.Array, *, num_per_class: int, classes=CLASSES) -> tuple[Shape, np.ndarray]:
    """A reproducible set of procedural chairs, tables and sofas.

    Args:
        key: a ``jax.random.key``; the same key gives the same shapes.
        num_per_class: shapes per class.
        classes: subset of ``CLASSES`` to generate.

    Returns:
        ``(shapes, labels)``: a batched ``Shape`` (leading axis = shape) and int labels
        (index into ``CLASSES``), ordered class by class.

    Examples:
        >>> shapes, labels = generate(jax.random.key(0), num_per_class=4)
        >>> shapes.center.shape, labels.tolist()[:5]
        ((12, 12, 3), [0, 0, 0, 0, 1])
    """
    unknown = set(classes) - set(CLASSES)
    if unknown:
        raise DataError(f"unknown furniture classes {sorted(unknown)}; choose from {CLASSES}")
    if num_per_class < 1:
        raise DataError(f"num_per_class must be >= 1, got {num_per_class}")
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    rows, labels = [], []
    for name in classes:
        label = CLASSES.index(name)
        for _ in range(num_per_class):
            rows.append(_to_shape(_parts(rng, label)))
            labels.append(label)
    arrays = [jnp.asarray(np.stack(a)) for a in zip(*rows)]
    return Shape(*arrays), np.asarray(labels)


def take(shapes: Shape, index) -> Shape:
    """Shapes ``index`` (an int or an index array) of a batched ``Shape``."""
    return jax.tree.map(lambda a: a[index], shapes)


# ---------------------------------------------------------------- sampling


# Surface samplers take their uniforms as an argument: one random draw for all candidates compiles
# much faster than several threefry calls inside the vmapped body.
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


def surface_points(
    key: jax.Array, shape: Shape, *, num_points: int, oversample: int = 3
) -> tuple[jax.Array, jax.Array]:
    """Points uniform (by area) on the surface of one shape, with outward unit normals.

    Samples every part's surface by area, projects rounded boxes onto their rounded surface, and
    keeps only points outside all other parts (the surface of the union).

    Args:
        key: random key.
        shape: one (unbatched) ``Shape``.
        num_points: points to return.
        oversample: candidates per returned point (rejected ones are inside other parts).

    Returns:
        ``(points (n, 3), normals (n, 3))``.
    """
    m = num_points * oversample
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


def deepsdf_samples(
    key: jax.Array,
    points: ArrayLike,
    sdf_fn,
    *,
    num_samples: int,
    sigmas=(0.0707, 0.0224),
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
        ``(num_samples, 4)``: xyz and the signed distance (clamp it in the loss, not here).

    References:
        Park et al., "DeepSDF", CVPR 2019, Sec. 5 and its ``PreprocessMesh.cpp``.
    """
    points = jnp.asarray(points)
    n_uni = int(round(num_samples * uniform_fraction))
    n_near = num_samples - n_uni
    kp, kn, ku = jax.random.split(key, 3)
    idx = jax.random.randint(kp, (n_near,), 0, points.shape[0])
    sig = jnp.asarray(sigmas, jnp.float32)[jnp.arange(n_near) % len(sigmas)]
    near = points[idx] + sig[:, None] * jax.random.normal(kn, (n_near, 3))
    uni = jax.random.uniform(ku, (n_uni, 3), minval=-bound, maxval=bound)
    x = jnp.concatenate([near, uni])
    return jnp.concatenate([x, jax.vmap(sdf_fn)(x)[:, None]], axis=1)


def shape_samples(key: jax.Array, shape: Shape, *, num_samples: int, **kwargs) -> jax.Array:
    """DeepSDF samples ``(num_samples, 4)`` of one procedural shape, with exact SDF values.

    Examples:
        >>> shapes, _ = generate(jax.random.key(0), num_per_class=2)
        >>> s = jax.vmap(lambda k, sh: shape_samples(k, sh, num_samples=256))(
        ...     jax.random.split(jax.random.key(1), 6), shapes)
        >>> s.shape
        (6, 256, 4)
    """
    ks, kd = jax.random.split(key)
    pts, _ = surface_points(ks, shape, num_points=max(num_samples // 4, 64))
    return deepsdf_samples(kd, pts, lambda p: sdf(shape, p), num_samples=num_samples, **kwargs)


# ---------------------------------------------------------------- oriented point clouds


def oriented_sdf(
    points: ArrayLike, normals: ArrayLike, queries: ArrayLike, *, block: int = 2048
) -> jax.Array:
    """Signed distances from oriented points: distance to the nearest point, signed by its normal.

    Exact nearest neighbours in blocks of queries (memory ``block x n``).

    Args:
        points: ``(n, 3)`` surface points.
        normals: ``(n, 3)`` outward normals.
        queries: ``(m, 3)``.
        block: queries per block.

    Returns:
        ``(m,)`` signed distances, negative inside.

    References:
        Park et al., "DeepSDF", Sec. 5 (sign from the nearest surface sample's normal).
    """
    points, normals, queries = (jnp.asarray(a, jnp.float32) for a in (points, normals, queries))
    m = queries.shape[0]
    pad = (-m) % block
    q = jnp.pad(queries, ((0, pad), (0, 0))).reshape(-1, block, 3)
    sq = jnp.sum(points**2, axis=1)

    def one_block(qb):
        d2 = jnp.sum(qb**2, axis=1)[:, None] - 2 * qb @ points.T + sq[None, :]
        i = jnp.argmin(d2, axis=1)
        diff = qb - points[i]
        dist = jnp.linalg.norm(diff, axis=1)
        sign = jnp.where(jnp.sum(diff * normals[i], axis=1) < 0, -1.0, 1.0)
        return sign * dist

    return jax.lax.map(one_block, q).reshape(-1)[:m]


def read_point_clouds(data_dir, *, category: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Oriented point clouds from ``furniture_shapes/chairs_tables_pointclouds_ply.zip``.

    Args:
        data_dir: the data directory (containing ``furniture_shapes/``).
        category: ``"Chairs"``, ``"Tables"`` or ``None`` for both.

    Returns:
        ``{name: (xyz (15000, 3), normals (15000, 3))}``, float32, y up, max |coord| ~ 1.
    """
    path = pathlib.Path(data_dir) / "furniture_shapes" / "chairs_tables_pointclouds_ply.zip"
    if not path.is_file():
        raise DataError(f"furniture point clouds not found: {path}")
    out = {}
    with zipfile.ZipFile(path) as z:
        for name in sorted(z.namelist()):
            if not name.endswith(".ply") or (category and not name.startswith(category + "/")):
                continue
            lines = z.read(name).decode("ascii", "replace").splitlines()  # some files end lines with \r\n
            end = next((i for i, line in enumerate(lines) if line.strip() == "end_header"), None)
            if end is None:
                raise DataError(f"{path}:{name}: not a PLY file (no end_header)")
            a = np.loadtxt(lines[end + 1 :], dtype=np.float32, ndmin=2)
            if a.ndim != 2 or a.shape[1] != 9:
                raise DataError(f"{path}:{name}: expected 9 columns (x y z r g b nx ny nz), got {a.shape}")
            n = a[:, 6:9]
            n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
            out[pathlib.PurePosixPath(name).stem.removeprefix("seg-")] = (a[:, :3], n)
    return out


def point_cloud_samples(
    key: jax.Array, points: ArrayLike, normals: ArrayLike, *, num_samples: int, **kwargs
) -> jax.Array:
    """DeepSDF samples ``(num_samples, 4)`` of a real shape from its oriented point cloud."""
    points, normals = jnp.asarray(points), jnp.asarray(normals)
    s = deepsdf_samples(key, points, lambda p: p[0], num_samples=num_samples, **kwargs)
    return s.at[:, 3].set(oriented_sdf(points, normals, s[:, :3]))
