"""Exact signed distance functions: boxes, rounded boxes, capped cylinders, and their unions.

A ``Shape`` is a union of up to ``MAX_PARTS`` of them held in fixed-size arrays (so a batch of shapes
vmaps).

Frame: y is up. An SDF here takes one point ``(3,)`` and is negative inside.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

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

    Examples:
        >>> unit_box = Shape(
        ...     kind=jnp.zeros(MAX_PARTS, jnp.int32),
        ...     center=jnp.zeros((MAX_PARTS, 3)),
        ...     size=jnp.ones((MAX_PARTS, 3)),
        ...     radius=jnp.zeros(MAX_PARTS),
        ...     mask=jnp.arange(MAX_PARTS) == 0,
        ... )
        >>> float(sdf(unit_box, jnp.array([3.0, 0.0, 0.0])))
        2.0
    """

    kind: jax.Array
    center: jax.Array
    size: jax.Array
    radius: jax.Array
    mask: jax.Array


def _safe_norm(v):
    # sqrt with a floor: the gradient at 0 is 0 instead of NaN (it is multiplied by max(q, 0) = 0).
    return jnp.sqrt(jnp.maximum(jnp.sum(v * v, axis=-1), _TINY))


def _neg_part(m):
    # min(m, 0) whose gradient at m = 0 is 1 (jnp.minimum splits ties 0.5/0.5, which would halve
    # normals exactly on the surface).
    return jnp.where(m > 0, 0.0, m)


def box(p: ArrayLike, half: ArrayLike) -> jax.Array:
    """Exact signed distance from point ``p`` to an axis-aligned box centred at 0.

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
    return _safe_norm(jnp.maximum(q, 0.0)) + _neg_part(jnp.max(q))


def rounded_box(p: ArrayLike, half: ArrayLike, radius: ArrayLike) -> jax.Array:
    """Exact signed distance to a box with outer half extents ``half`` and edges rounded by ``radius``.

    Args:
        p: ``(3,)`` query point.
        half: ``(3,)`` outer half extents (rounding included).
        radius: scalar rounding radius, at most ``min(half)``.

    Returns:
        Scalar, negative inside.

    Examples:
        >>> float(rounded_box(jnp.array([0.0, 3.0, 0]), jnp.ones(3), 0.5))
        2.0

    References:
        Quilez, "Distance functions", sdRoundBox.
    """
    return box(p, jnp.asarray(half) - radius) - radius


def cylinder(p: ArrayLike, radius: ArrayLike, half_height: ArrayLike) -> jax.Array:
    """Exact signed distance to a capped cylinder with axis y, centred at 0.

    Args:
        p: ``(3,)`` query point.
        radius: scalar radius.
        half_height: scalar half height.

    Returns:
        Scalar, negative inside.

    Examples:
        >>> float(cylinder(jnp.array([3.0, 0, 0]), 1.0, 1.0))
        2.0

    References:
        Quilez, "Distance functions", sdCappedCylinder.
    """
    p = jnp.asarray(p)
    d = jnp.stack([_safe_norm(p[jnp.array([0, 2])]) - radius, jnp.abs(p[1]) - half_height])
    return _neg_part(jnp.max(d)) + _safe_norm(jnp.maximum(d, 0.0))


def part_sdf(
    p: ArrayLike, kind: ArrayLike, center: ArrayLike, size: ArrayLike, radius: ArrayLike
) -> jax.Array:
    """Signed distance from ``p`` to one part of a ``Shape`` (the part's fields, unbatched).

    Args:
        p: ``(3,)`` query point.
        kind: ``BOX``, ``ROUNDED_BOX`` or ``CYLINDER``.
        center: ``(3,)`` part centre.
        size: ``(3,)`` half extents (a cylinder: radius, half height, unused).
        radius: rounding radius (0 for plain boxes and cylinders).

    Returns:
        Scalar, negative inside.

    Examples:
        >>> float(part_sdf(jnp.array([0.0, 3.0, 0.0]), CYLINDER, jnp.zeros(3), jnp.ones(3), 0.0))
        2.0
    """
    q = jnp.asarray(p) - center
    d_box = rounded_box(q, size, radius)
    d_cyl = cylinder(q, size[0], size[1])
    return jnp.where(kind == CYLINDER, d_cyl, d_box)


def part_sdfs(shape: Shape, p: ArrayLike) -> jax.Array:
    """Signed distances from ``p`` to every part of one ``shape``.

    Args:
        shape: one (unbatched) ``Shape``.
        p: ``(3,)`` query point.

    Returns:
        ``(MAX_PARTS,)`` distances, ``+inf`` for absent parts.

    Examples:
        >>> shape = Shape(jnp.zeros(MAX_PARTS, jnp.int32), jnp.zeros((MAX_PARTS, 3)),
        ...               jnp.ones((MAX_PARTS, 3)), jnp.zeros(MAX_PARTS), jnp.arange(MAX_PARTS) < 2)
        >>> part_sdfs(shape, jnp.zeros(3))[:3].tolist()
        [-1.0, -1.0, inf]
    """
    d = jax.vmap(part_sdf, in_axes=(None, 0, 0, 0, 0))(p, shape.kind, shape.center, shape.size, shape.radius)
    return jnp.where(shape.mask, d, jnp.inf)


def sdf(shape: Shape, p: ArrayLike) -> jax.Array:
    """Signed distance from one point ``p`` to ``shape``, the union (minimum) of its parts.

    Exact outside the shape; inside, where parts overlap, a bound on the distance (Quilez, opUnion).

    Args:
        shape: one (unbatched) ``Shape``.
        p: ``(3,)`` query point.

    Returns:
        Scalar, negative inside.

    Examples:
        >>> shape = Shape(jnp.array([BOX, CYLINDER] * (MAX_PARTS // 2)),
        ...               jnp.zeros((MAX_PARTS, 3)).at[1, 0].set(3.0),
        ...               jnp.ones((MAX_PARTS, 3)), jnp.zeros(MAX_PARTS), jnp.arange(MAX_PARTS) < 2)
        >>> [float(sdf(shape, jnp.array([x, 0.0, 0.0]))) for x in (1.5, 5.0)]
        [0.5, 1.0]
    """
    return jnp.min(part_sdfs(shape, p))


def take(shapes: Shape, index: ArrayLike) -> Shape:
    """Shapes ``index`` of a batched ``Shape``.

    Args:
        shapes: a ``Shape`` whose arrays have a leading batch axis.
        index: an int (one unbatched ``Shape``) or an index array (a smaller batch).

    Returns:
        The selected ``Shape``.

    Examples:
        >>> batch = jax.tree.map(lambda a: jnp.stack([a, a, a]), Shape(
        ...     jnp.zeros(MAX_PARTS, jnp.int32), jnp.zeros((MAX_PARTS, 3)), jnp.ones((MAX_PARTS, 3)),
        ...     jnp.zeros(MAX_PARTS), jnp.ones(MAX_PARTS, bool)))
        >>> take(batch, 0).center.shape, take(batch, jnp.array([0, 2])).center.shape
        ((12, 3), (2, 12, 3))
    """
    return jax.tree.map(lambda a: a[index], shapes)
