"""Figures with matplotlib: one private file per topic, re-exported here.

A function that writes a figure takes what it draws first and its destination ``path`` as the last
positional argument, and returns the path written; `scatter` draws on an Axes and returns it.
Images are checked by ``data.validate_images`` (uint8, or floats in [0, 1]). Classes are
``labels`` with ``label_names``. matplotlib runs with the Agg backend, so nothing needs a display.
"""

from latentjax.viz._embedding import embedding_panels, scatter, spread_points  # noqa: F401
from latentjax.viz._images import decoded_grid, image_grid, save_figure  # noqa: F401
from latentjax.viz._paths import (  # noqa: F401
    path_gif,
    path_strips,
    sensitivity_heatmap,
    strength_sweep,
    traversal_grid,
    waypoint_titles,
)
from latentjax.viz._shapes import shape_code_map, shape_path_gif, shape_strip  # noqa: F401
from latentjax.viz._transport import barycenter_square, transport_contrast  # noqa: F401
