"""transport"""

from latentjax.transport._transport import (  # noqa: F401
    Interpolation,
    TransportError,
    default_epsilon,
    displacement_interpolate,
    ot_distance,
    path_weights,
    point_cloud_barycenter,
    square_weights,
    transport_points,
    wasserstein_interpolate,
)
