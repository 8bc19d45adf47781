"""Moving through a latent space: paths, edits and generation, one namespace over private files.

Paths (lerp, slerp, geodesics, their diagnostics) in ``_paths``/``_geodesic``, the decoder's
uncertainty off the data (the variance-aware metric) in ``_uncertainty``, whether a path stays on
the data in ``_ondata``, edits (attribute vectors, apply, chain) in ``_edits``, traversals and
factor sensitivity in ``_traverse``, generation (prior draws, 2-D grids) in ``_generate``.
"""

from latentjax.move._datapath import data_path
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
from latentjax.move._ondata import OnData, on_data_diagnostics
from latentjax.move._paths import Decode, Diagnostics, curve_energy, lerp, path, path_diagnostics, slerp
from latentjax.move._traverse import Sensitivity, factor_sensitivity, traverse
from latentjax.move._uncertainty import (
    Uncertainty,
    expected_metric,
    fit_uncertainty,
    uncertainty_std,
    variance_aware,
)

__all__ = [
    "Decode",
    "DecodedPath",
    "Diagnostics",
    "Geodesic",
    "GeodesicState",
    "OnData",
    "PathComparison",
    "Sensitivity",
    "Uncertainty",
    "apply",
    "attribute_vector",
    "chain",
    "class_vector",
    "compare_paths",
    "curve_energy",
    "data_path",
    "expected_metric",
    "factor_sensitivity",
    "fit_uncertainty",
    "geodesic",
    "geodesic_init",
    "geodesic_step",
    "gram_schmidt",
    "grid_2d",
    "lerp",
    "on_data_diagnostics",
    "path",
    "path_diagnostics",
    "regression_vector",
    "sample_prior",
    "slerp",
    "traverse",
    "uncertainty_std",
    "variance_aware",
]
