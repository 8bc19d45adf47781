"""Figures with matplotlib: one private file per topic, re-exported here.

Every function takes arrays and a path (or an Axes) and returns the path written (or the Axes);
matplotlib runs with the Agg backend, so nothing needs a display.
"""

from latentjax.viz._images import decoded_grid, image_grid, latent_scatter, save_figure  # noqa: F401
