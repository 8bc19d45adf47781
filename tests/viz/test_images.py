"""Image grids: the tiles hold the images, in order; images are checked by data.validate_images."""

import numpy as np
import pytest
from PIL import Image

from latentjax import viz
from latentjax.errors import DataError
from latentjax.viz import _images


def test_tile_places_each_image_in_row_major_order_with_white_gutters():
    x = np.arange(6, dtype=np.float32)[:, None, None, None] / 10 * np.ones((1, 3, 4, 1), np.float32)
    grid = _images._tile(x, rows=2, pad=1)
    assert grid.shape == (2 * 4 + 1, 3 * 5 + 1, 1)
    for i in range(6):
        r, c = divmod(i, 3)
        np.testing.assert_array_equal(grid[1 + 4 * r : 4 + 4 * r, 1 + 5 * c : 5 + 5 * c, 0], x[i, ..., 0])
    assert grid[0].min() == 1.0 and grid[:, 0].min() == 1.0


def test_as_float_scales_uint8_and_keeps_leading_axes():
    x = np.full((2, 3, 4, 4, 1), 255, np.uint8)
    out = _images._as_float(x)
    assert out.shape == x.shape and out.dtype == np.float32 and out.min() == 1.0
    with pytest.raises(DataError, match=r"images must lie in \[0, 1\]"):
        _images._as_float(np.full((2, 4, 4, 1), 1.5))


def test_image_grid_and_decoded_grid_write_images(tmp_path):
    rng = np.random.default_rng(0)
    path = viz.image_grid(
        rng.integers(0, 256, (8, 10, 10, 3), dtype=np.uint8),
        tmp_path / "g.png",
        rows=2,
        row_labels=["a", "b"],
        title="t",
    )
    assert path == tmp_path / "g.png" and Image.open(path).size[0] > Image.open(path).size[1]
    grid = rng.uniform(size=(3, 5, 8, 8, 1)).astype(np.float32)
    path = viz.decoded_grid(grid, tmp_path / "sub" / "d.png", extent=(-2, 2), axis_labels=("PC 1", "PC 2"))
    w, h = Image.open(path).size
    assert w > h  # 5 columns, 3 rows
    with pytest.raises(DataError, match="viz.image_grid: images"):
        viz.image_grid(np.full((2, 4, 4, 1), np.nan), tmp_path / "nan.png")
