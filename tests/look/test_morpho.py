"""morpho: thickness, length, area and slant of synthetic strokes with known values; real MNIST."""

import gzip

import numpy as np
import pytest
from scipy import ndimage
from skimage import morphology, transform

from latentjax.errors import InputError, LatentJaxError
from latentjax.look import morpho


def capsule(width, angle_deg, *, half_length=8.0, size=28, shear=0.0, supersample=8):
    """An anti-aliased stroke: all points within width/2 of a segment (rounded caps), optionally
    sheared so that x = x_line - shear * (y - centre)."""
    f = (np.arange(size * supersample) + 0.5) / supersample
    yy, xx = np.meshgrid(f, f, indexing="ij")
    xx = xx + shear * (yy - size / 2)
    a = np.radians(angle_deg)
    d = np.array([np.sin(a), np.cos(a)])
    py, px = yy - size / 2, xx - size / 2
    t = np.clip(py * d[0] + px * d[1], -half_length, half_length)
    inside = np.hypot(py - t * d[0], px - t * d[1]) <= width / 2
    return inside.astype(float).reshape(size, supersample, size, supersample).mean(axis=(1, 3))


@pytest.mark.parametrize("angle", [0, 20, 45, 70, 90, 135])
def test_thickness_of_strokes_with_known_width(angle):
    widths = np.array([2.0, 2.5, 3.0, 4.0, 5.0])
    images = np.stack([capsule(w, angle) for w in widths])
    m = morpho.measure(images)
    np.testing.assert_allclose(m.thickness, widths, rtol=0.08, atol=0.1)
    assert np.all(np.diff(m.thickness) > 0)  # the response is monotone in the true width
    # Area of a capsule: 2L w + pi w^2 / 4; its skeleton is the segment, 2L long.
    np.testing.assert_allclose(m.area, 16.0 * widths + np.pi * widths**2 / 4, rtol=0.06)
    np.testing.assert_allclose(m.length, 16.0, rtol=0.15)


@pytest.mark.parametrize("s", [-0.4, -0.2, 0.0, 0.15, 0.3])
def test_shear_and_slant_of_sheared_strokes(s):
    img = capsule(3.0, 90, half_length=9.0, shear=s)
    np.testing.assert_allclose(morpho.shear(img), [-s], atol=0.01)
    np.testing.assert_allclose(morpho.slant(img), [np.arctan(s)], atol=0.01)
    np.testing.assert_allclose(morpho.measure(img).slant, [np.arctan(s)], atol=0.01)


def test_slant_sign_and_closed_form_on_a_diagonal():
    img = np.zeros((9, 9))
    img[np.arange(9), np.arange(9)[::-1]] = 1.0  # "/" leans right: +45 degrees
    np.testing.assert_allclose(np.degrees(morpho.slant(img)), [45.0], atol=1e-9)
    np.testing.assert_allclose(np.degrees(morpho.slant(img[:, ::-1])), [-45.0], atol=1e-9)


def test_input_formats_agree_and_blank_images():
    img = capsule(3.0, 30)
    u8 = np.round(img * 255).astype(np.uint8)
    a = morpho.measure(img[None])
    b = morpho.measure(u8[None, :, :, None])
    np.testing.assert_allclose(a.thickness, b.thickness, atol=0.05)
    blank = morpho.measure(np.zeros((2, 28, 28)))
    np.testing.assert_array_equal(blank.thickness, 0.0)
    np.testing.assert_array_equal(blank.slant, 0.0)


def test_bad_input_raises():
    with pytest.raises(LatentJaxError, match="gray images"):
        morpho.measure(np.zeros((2, 28, 28, 3)))
    with pytest.raises(LatentJaxError, match=r"\[0, 1\]"):
        morpho.measure(np.full((1, 5, 5), 2.0))
    with pytest.raises(InputError, match="morpho.measure: threshold"):
        morpho.measure(np.zeros((1, 5, 5)), threshold=1.5)
    with pytest.raises(InputError, match="morpho.measure: threshold"):
        morpho.measure(np.zeros((1, 5, 5)), threshold="0.5")
    with pytest.raises(InputError, match="morpho.measure: scale"):
        morpho.measure(np.zeros((1, 5, 5)), scale=2.5)
    with pytest.raises(InputError, match="morpho.measure: scale"):
        morpho.measure(np.zeros((1, 5, 5)), scale=0)
    nan = np.zeros((2, 5, 5))
    nan[1, 2, 3] = np.nan
    for f in (morpho.measure, morpho.shear, morpho.slant, morpho.thickness):
        with pytest.raises(LatentJaxError, match="NaN"):
            f(nan)


def test_numpy_integer_scale_equals_python_int():
    img = capsule(3.0, 30)
    a, b = morpho.measure(img, scale=np.int64(2)), morpho.measure(img, scale=2)
    np.testing.assert_array_equal(a.thickness, b.thickness)


def _reference_thickness(img, scale=4):
    """Morpho-MNIST's own recipe (medial axis instead of thinning), for comparison."""
    up = transform.pyramid_expand(img, upscale=scale, order=3)
    b = up >= up.min() + 0.5 * (up.max() - up.min())
    skel, dist = morphology.medial_axis(b, return_distance=True)
    return 2.0 * dist[skel].mean() / scale


def test_agrees_with_morpho_mnist_recipe_on_real_digits(data_dir):
    path = data_dir / "mnist" / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path) as f:
        x = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 28, 28)[:40] / 255.0
    ours = morpho.thickness(x)
    ref = np.array([_reference_thickness(im) for im in x])
    assert np.corrcoef(ours, ref)[0, 1] > 0.95
    assert abs(np.mean(ours - ref)) < 0.25
    # Thicker after a morphological dilation.
    u8 = (x * 255).astype(np.uint8)
    thick = np.stack([ndimage.grey_dilation(im, size=(2, 2)) for im in u8])
    assert np.mean(morpho.thickness(thick) > ours) > 0.9
