"""Is a decoded shape recognisable? Chamfer distances to the training shapes, and between them.

A decoded code is meshed (marching cubes of its SDF on a grid), points are sampled on the mesh and
compared with points on the training shapes' exact SDFs meshed on the same grid (DeepSDF's Chamfer distance:
mean squared nearest-neighbour distance both ways). The yardstick is the spread of the training
set itself: the median distance between two training shapes of one class, and of different classes.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np
from scipy.spatial import cKDTree

from latentjax.errors import InputError
from latentjax.shapes import deepsdf, primitives, render


class Nearest(NamedTuple):
    """Each decoded shape's nearest training shape.

    Attributes:
        index: ``(t,)`` index of the nearest training shape (-1 where nothing was decoded).
        chamfer: ``(t,)`` its Chamfer distance (inf where nothing was decoded).
    """

    index: np.ndarray
    chamfer: np.ndarray


def _chamfer_to_all(points: np.ndarray, trees: list, clouds: np.ndarray) -> np.ndarray:
    """Chamfer distances from one cloud to each training cloud (their k-d trees prebuilt)."""
    own = cKDTree(points)
    return np.array(
        [np.mean(t.query(points)[0] ** 2) + np.mean(own.query(c)[0] ** 2) for t, c in zip(trees, clouds)]
    )


def nearest_shapes(clouds: list, train: np.ndarray) -> Nearest:
    """The nearest training shape of each cloud, by Chamfer distance.

    Args:
        clouds: ``t`` point arrays ``(p, 3)``, or None for a shape with no surface.
        train: ``(n, q, 3)`` points on the training shapes.

    Returns:
        A `Nearest`.

    Examples:
        >>> train = np.stack([np.zeros((4, 3)), np.ones((4, 3))])
        >>> nearest_shapes([np.full((2, 3), 0.9), None], train).index.tolist()
        [1, -1]
    """
    train = np.asarray(train, np.float64)
    trees = [cKDTree(c) for c in train]
    index, dist = [], []
    for pts in clouds:
        if pts is None:
            index.append(-1)
            dist.append(np.inf)
            continue
        d = _chamfer_to_all(np.asarray(pts, np.float64), trees, train)
        index.append(int(np.argmin(d)))
        dist.append(float(d.min()))
    return Nearest(np.asarray(index), np.asarray(dist))


def class_spread(train: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Median Chamfer distance between two training shapes of one class, and of different classes.

    Args:
        train: ``(n, q, 3)`` points on the training shapes.
        labels: ``(n,)`` their classes (at least two shapes of some class, and two classes).

    Returns:
        ``(within, between)`` medians over all pairs.

    Raises:
        InputError: with no pair of one class or no pair of different classes.

    Examples:
        >>> train = np.stack([np.zeros((2, 3)), np.full((2, 3), 0.1), np.ones((2, 3))])
        >>> [round(v, 3) for v in class_spread(train, np.array([0, 0, 1]))]
        [0.06, 5.43]
    """
    labels = np.asarray(labels)
    train = np.asarray(train, np.float64)
    trees = [cKDTree(c) for c in train]
    within, between = [], []
    for i in range(len(train)):
        for j in range(i + 1, len(train)):
            d = np.mean(trees[j].query(train[i])[0] ** 2) + np.mean(trees[i].query(train[j])[0] ** 2)
            (within if labels[i] == labels[j] else between).append(d)
    if not within or not between:
        raise InputError("sections._shape_measures.class_spread: labels need a same-class and a mixed pair")
    return float(np.median(within)), float(np.median(between))


def _rng(key: jax.Array) -> np.random.Generator:
    """A NumPy generator seeded from a JAX key (meshes are sampled on the host)."""
    return np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))


def _mesh_points(values: np.ndarray, rng: np.random.Generator, num_points: int) -> np.ndarray | None:
    """Points uniform by area on the marching-cubes mesh of grid values; None with no surface.

    On the host with NumPy (``samples.surface_points`` on a mesh compiles a sampler per mesh size).
    """
    try:
        verts, faces = render.mesh_from_values(values)
    except InputError:
        return None
    tri = verts[faces].astype(np.float64)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    if not area.sum() > 0:
        return None
    t = tri[rng.choice(len(area), num_points, p=area / area.sum())]
    r = rng.random((num_points, 2))
    r[r.sum(axis=1) > 1] = 1 - r[r.sum(axis=1) > 1]  # fold the square onto the triangle
    return t[:, 0] + r[:, :1] * (t[:, 1] - t[:, 0]) + r[:, 1:] * (t[:, 2] - t[:, 0])


def training_surfaces(key: jax.Array, shapes, *, num_points: int, resolution: int = 40) -> np.ndarray:
    """``(n, num_points, 3)`` points on the meshed exact SDFs of a batch of procedural shapes.

    Meshed on the same grid as `decoded_surfaces`, so both sides of a Chamfer distance share the
    discretisation.
    """
    values = jax.jit(
        jax.vmap(lambda s: render.grid_values(lambda x: primitives.sdf(s, x), resolution=resolution))
    )(shapes)
    rng = _rng(key)
    return np.stack([_mesh_points(v, rng, num_points) for v in np.asarray(values)])


def decoded_surfaces(key: jax.Array, model, codes, *, num_points: int, resolution: int = 40) -> list:
    """Points on the decoded shape of each code (marching cubes), or None where the SDF has no surface."""
    values = jax.jit(
        jax.vmap(lambda z: render.grid_values(lambda x: deepsdf.decode(model, z, x), resolution=resolution))
    )(codes)
    rng = _rng(key)
    return [_mesh_points(v, rng, num_points) for v in np.asarray(values)]
