"""The explorer's 2-D -> latent inverse: inverse-distance weighting of the nearest map points' latents.

A t-SNE or UMAP map has no inverse function, so a position on the map is sent to the weighted mean of
the latents of its ``k = 8`` nearest map points, with weights ``1 / (d^2 + eps)`` (Shepard's method
with power 2). It is exact at the map points themselves (a hit returns that point's latent), smooth
between them, and stays inside the convex hull of the neighbours' latents, so a decoded position never
leaves the region the data occupy. Its error on held-out points is measured in
``tests/app/explore/test_inverse.py`` and quoted in README.md.
"""

from __future__ import annotations

import numpy as np

from latentjax import _checks
from latentjax.errors import InputError

K = 8


def inverse_map(points, latents, xy, *, k: int = K) -> np.ndarray:
    """Latents at map positions ``xy``: the inverse-distance-weighted mean of the ``k`` nearest points.

    ``eps = 1e-12 * s^2`` with ``s`` the map's extent keeps the weights finite; a position within
    ``sqrt(eps)`` of a map point returns that point's latent exactly.

    Args:
      points: ``(n, 2)`` the map (e.g. a t-SNE embedding of ``latents``).
      latents: ``(n, d)`` the latent of each map point.
      xy: ``(m, 2)`` positions on the map.
      k: neighbours averaged (capped at ``n``).

    Returns:
      ``(m, d)`` float32 latents.

    Raises:
      InputError: shapes that do not fit, NaN/inf, or ``k < 1``.

    Examples:
      >>> pts = np.array([[0.0, 0.0], [1.0, 0.0]])
      >>> zs = np.array([[0.0], [2.0]])
      >>> inverse_map(pts, zs, np.array([[0.5, 0.0], [1.0, 0.0]]), k=2)[:, 0].tolist()
      [1.0, 2.0]

    References:
      Shepard 1968, "A two-dimensional interpolation function for irregularly-spaced data", Eq. 1.
    """
    where = "explore.inverse_map"
    k = _checks.index(k, "k", where=where, minimum=1)
    points = np.asarray(_checks.array(points, "points", where=where, ndim=2), np.float64)
    latents = np.asarray(_checks.array(latents, "latents", where=where, ndim=2), np.float64)
    xy = np.asarray(_checks.array(xy, "xy", where=where, ndim=2), np.float64)
    if points.shape[1] != 2 or xy.shape[1] != 2 or len(points) != len(latents) or len(points) == 0:
        raise InputError(
            f"{where}: expected points (n, 2), latents (n, d) and xy (m, 2), got {points.shape}, "
            f"{latents.shape} and {xy.shape}"
        )
    k = min(k, len(points))
    extent = float(np.max(np.ptp(points, axis=0))) or 1.0
    eps = 1e-12 * extent * extent
    d2 = np.sum((xy[:, None, :] - points[None, :, :]) ** 2, axis=-1)  # (m, n)
    nearest = (
        np.argpartition(d2, k - 1, axis=1)[:, :k] if k < len(points) else np.tile(np.arange(k), (len(xy), 1))
    )
    dk = np.take_along_axis(d2, nearest, axis=1)
    w = 1.0 / (dk + eps)
    hit = dk <= eps
    w = np.where(hit.any(axis=1, keepdims=True), hit.astype(np.float64), w)  # exact at a map point
    w /= w.sum(axis=1, keepdims=True)
    return np.einsum("mk,mkd->md", w, latents[nearest]).astype(np.float32)
