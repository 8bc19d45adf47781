"""Optimal transport with ott-jax (the only package that imports ``ott``): one namespace over private files.

Images (Wasserstein barycenters, displacement interpolation) in ``_images`` on the grid Sinkhorn of
``_grid_sinkhorn``; point clouds (distances, maps, barycenters) in ``_clouds``.
"""

from latentjax.transport._clouds import ot_distance, point_cloud_barycenter, transport_points
from latentjax.transport._images import (
    Interpolation,
    default_epsilon,
    displacement_interpolate,
    path_weights,
    square_weights,
    wasserstein_interpolate,
)

__all__ = [
    "Interpolation",
    "default_epsilon",
    "displacement_interpolate",
    "ot_distance",
    "path_weights",
    "point_cloud_barycenter",
    "square_weights",
    "transport_points",
    "wasserstein_interpolate",
]
