"""The one image validator."""

import jax
import numpy as np
import pytest

from latentjax import data
from latentjax.errors import DataError, InputError


def test_validate_images():
    ok = np.zeros((2, 4, 4, 1), np.float32)
    assert data.validate_images(ok) is ok
    assert data.validate_images(jax.numpy.ones((1, 3, 3, 3))).shape == (1, 3, 3, 3)
    data.validate_images(np.full((1, 2, 2, 1), 255, np.uint8))
    bad = ok.copy()
    bad[1, 2, 3, 0] = np.nan
    with pytest.raises(DataError, match=r"NaN.*\(1, 2, 3, 0\)"):
        data.validate_images(bad)
    with pytest.raises(DataError, match=r"shape \(n, height, width, channels\).*\(4, 4, 1\)"):
        data.validate_images(ok[0])
    with pytest.raises(DataError, match=r"\[0, 1\].*2"):
        data.validate_images(ok + 2)
    with pytest.raises(DataError, match="dtype int64"):
        data.validate_images(np.zeros((1, 2, 2, 1), np.int64))
    with pytest.raises(DataError, match="28 channels.*channels last"):
        data.validate_images(np.zeros((2, 1, 28, 28), np.uint8))
    with pytest.raises(DataError, match="empty"):
        data.validate_images(np.zeros((0, 2, 2, 1), np.uint8))
    with pytest.raises(InputError, match="dtype must be one of"):
        data.validate_images(ok, dtype="int")
    with pytest.raises(DataError, match="uint8 images by 255"):
        data.validate_images(np.zeros((1, 2, 2, 1), np.uint8), dtype="float")
    with pytest.raises(DataError, match="must be uint8"):
        data.validate_images(ok, dtype="uint8")
    with pytest.raises(DataError, match=r"\(3, 3, 1\) but \(4, 4, 1\)"):
        data.validate_images(np.zeros((1, 3, 3, 1), np.uint8), image_shape=(4, 4, 1))
