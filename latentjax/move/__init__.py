"""Moving through a latent space: paths, edits and generation, one namespace over private files.

Paths (lerp, slerp, geodesics, their diagnostics) in ``_paths``/``_geodesic``, edits (attribute
vectors, apply, chain) in ``_edits``, traversals and factor sensitivity in ``_traverse``, generation
(prior draws, 2-D grids) in ``_generate``.
"""

from latentjax.move._edits import (
    apply,
    attribute_vector,
    chain,
    class_vector,
    gram_schmidt,
    regression_vector,
)
from latentjax.move._generate import grid_2d, sample_prior
from latentjax.move._geodesic import (
    DecodedPath,
    Geodesic,
    GeodesicState,
    PathComparison,
    compare_paths,
    geodesic,
    geodesic_init,
    geodesic_step,
)
from latentjax.move._paths import Decode, Diagnostics, curve_energy, lerp, path, path_diagnostics, slerp
from latentjax.move._traverse import Sensitivity, factor_sensitivity, traverse

__all__ = [
    "Decode",
    "DecodedPath",
    "Diagnostics",
    "Geodesic",
    "GeodesicState",
    "PathComparison",
    "Sensitivity",
    "apply",
    "attribute_vector",
    "chain",
    "class_vector",
    "compare_paths",
    "curve_energy",
    "factor_sensitivity",
    "geodesic",
    "geodesic_init",
    "geodesic_step",
    "gram_schmidt",
    "grid_2d",
    "lerp",
    "path",
    "path_diagnostics",
    "regression_vector",
    "sample_prior",
    "slerp",
    "traverse",
]
