"""transport images: Wasserstein barycenters and displacement interpolation against closed forms,
properties and POT.
"""

import warnings

import jax
import numpy as np
import pytest

from latentjax import transport
from latentjax.errors import DataError, InputError
from latentjax.transport import _images


def _blob(size, r, c, s=1.5):
    return _blob_hw((size, size), r, c, s)


def _blob_hw(shape, r, c, s=1.5):
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    return np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * s**2))


def _com(h):
    h = np.asarray(h, np.float64)
    rr, cc = np.mgrid[0 : h.shape[0], 0 : h.shape[1]]
    return np.array([(rr * h).sum(), (cc * h).sum()]) / h.sum()


@pytest.fixture(scope="module")
def blobs():
    return np.stack([_blob(20, 6, 5), _blob(20, 6, 14)])


@pytest.fixture(scope="module")
def path(blobs):
    return transport.wasserstein_interpolate(blobs, transport.path_weights(5))


@pytest.mark.accelerator
def test_mass_sums_to_one(path):
    np.testing.assert_allclose(np.asarray(path.histogram).sum(axis=(1, 2)), 1.0, atol=1e-3)
    assert np.all(np.asarray(path.error) <= 1e-4)


def test_endpoints_match_inputs(path, blobs):
    h = blobs / blobs.sum(axis=(1, 2), keepdims=True)
    assert np.abs(np.asarray(path.histogram[0]) - h[0]).sum() < 1e-2
    assert np.abs(np.asarray(path.histogram[-1]) - h[1]).sum() < 1e-2
    # ``image`` is in the input's intensity scale.
    assert np.abs(np.asarray(path.image[0]) - blobs[0]).sum() / blobs[0].sum() < 1e-2


@pytest.mark.accelerator
def test_translated_blob_moves_linearly(path, blobs):
    """The barycenter of two translated blobs is the blob halfway; its centre of mass moves
    linearly with the weight (what a pixel cross-fade also does, but with one blob, not two)."""
    t = np.linspace(0, 1, 5)
    coms = np.stack([_com(h) for h in path.histogram])
    expected = (1 - t)[:, None] * _com(blobs[0]) + t[:, None] * _com(blobs[1])
    np.testing.assert_allclose(coms, expected, atol=0.05)
    mid = np.asarray(path.histogram[2])
    target = _blob(20, 6, 9.5)
    assert np.abs(mid - target / target.sum()).sum() < 0.05
    # A cross-fade is bimodal: the midpoint pixel is dark there, bright here.
    assert mid[6, 9:11].sum() > 5 * (blobs.mean(axis=0) / blobs.mean(axis=0).sum())[6, 9:11].sum()


def test_identical_images_give_the_image():
    img = _blob(16, 7, 8, s=2.0)
    out = transport.wasserstein_interpolate(np.stack([img, img, img]), [[0.2, 0.3, 0.5]])
    assert np.abs(np.asarray(out.histogram[0]) - img / img.sum()).sum() < 1e-2


def test_plain_barycenter_is_blurred_debiased_is_not(blobs):
    w = [[1.0, 0.0]]
    plain = transport.wasserstein_interpolate(blobs, w, debiased=False).histogram[0]
    debiased = transport.wasserstein_interpolate(blobs, w).histogram[0]
    h0 = blobs[0] / blobs[0].sum()
    assert np.abs(np.asarray(debiased) - h0).sum() < 0.2 * np.abs(np.asarray(plain) - h0).sum()


def test_agrees_with_pot(blobs):
    """Same algorithm, same iterations: POT's debiased convolutional barycenter (stabThr lowered,
    its default shifts the answer at small regularisation)."""
    ot = pytest.importorskip("ot")
    eps = transport.default_epsilon((20, 20))
    w = transport.path_weights(3)
    hists = _images._histograms(blobs).reshape(2, 20, 20)
    out = transport.wasserstein_interpolate(blobs, w, threshold=0.0, max_steps=50)
    for i, wi in enumerate(w):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = ot.bregman.convolutional_barycenter2d_debiased(
                hists, eps, weights=wi, numItermax=50, stopThr=0.0, stabThr=1e-300, warn=False
            )
        assert np.abs(np.asarray(out.histogram[i], np.float64) - ref).sum() < 1e-5


def test_log_and_kernel_modes_agree(blobs):
    w = [[0.3, 0.7]]
    k = transport.wasserstein_interpolate(blobs, w, mode="kernel", max_steps=100)
    lg = transport.wasserstein_interpolate(blobs, w, mode="log", max_steps=100)
    np.testing.assert_allclose(np.asarray(k.histogram), np.asarray(lg.histogram), atol=1e-6)


def test_batch_equals_loop(blobs, path):
    w = transport.path_weights(5)
    for i in (1, 3):
        one = transport.wasserstein_interpolate(blobs, w[i])
        np.testing.assert_allclose(np.asarray(one.histogram[0]), np.asarray(path.histogram[i]), atol=1e-6)


def test_square_weights_corners():
    w = transport.square_weights(3)
    assert w.shape == (9, 4)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    np.testing.assert_allclose(w[[0, 2, 6, 8]], np.eye(4))


def test_bad_input_raises(blobs):
    empty = blobs.copy()
    empty[1] = 0.0
    with pytest.raises(InputError, match="transport.wasserstein_interpolate: images\\[1\\] has zero mass"):
        transport.wasserstein_interpolate(empty, [0.5, 0.5])
    with pytest.raises(InputError, match="transport.wasserstein_interpolate: weights"):
        transport.wasserstein_interpolate(blobs, [0.2, 0.3, 0.5])
    with pytest.raises(InputError, match="grayscale"):
        transport.wasserstein_interpolate(np.ones((2, 8, 8, 3)), [0.5, 0.5])
    with pytest.raises(DataError, match="transport.wasserstein_interpolate: images must lie in \\[0, 1\\]"):
        transport.wasserstein_interpolate(-blobs, [0.5, 0.5])
    with pytest.raises(InputError, match="mode"):
        transport.wasserstein_interpolate(blobs, [0.5, 0.5], mode="fast")
    with pytest.raises(InputError, match="\\(k, h, w\\)"):
        transport.wasserstein_interpolate(blobs[0], [0.5, 0.5])
    with pytest.raises(
        InputError, match="transport.displacement_interpolate: image0/image1\\[1\\] has zero mass"
    ):
        transport.displacement_interpolate(blobs[0], np.zeros((20, 20)), [0.5])
    with pytest.raises(InputError, match="differ in shape"):
        transport.displacement_interpolate(blobs[0], np.ones((20, 21)), [0.5])
    with pytest.raises(
        InputError,
        match="transport.wasserstein_interpolate: images\\[1\\] has shape \\(20, 21\\) but images\\[0\\]",
    ):
        transport.wasserstein_interpolate([blobs[0], np.ones((20, 21))], [0.5, 0.5])
    with pytest.raises(InputError, match="times in \\[0, 1\\]"):
        transport.displacement_interpolate(blobs[0], blobs[1], [1.5])


def test_displacement_interpolation(blobs):
    t = [0.0, 0.5, 1.0]
    out = transport.displacement_interpolate(blobs[0], blobs[1], t)
    h = blobs / blobs.sum(axis=(1, 2), keepdims=True)
    hist = np.asarray(out.histogram, np.float64)
    np.testing.assert_allclose(hist.sum(axis=(1, 2)), 1.0, atol=1e-4)
    assert np.abs(hist[0] - h[0]).sum() < 1e-3
    assert np.abs(hist[2] - h[1]).sum() < 1e-3
    np.testing.assert_allclose(_com(hist[1]), (_com(h[0]) + _com(h[1])) / 2, atol=0.02)
    # A pure translation: the midpoint is the blob translated halfway (up to the splatting of
    # a half-pixel shift, which smooths a little).
    target = _blob(20, 6, 9.5)
    assert np.abs(hist[1] - target / target.sum()).sum() < 0.1


def test_float64_is_scoped(blobs):
    transport.wasserstein_interpolate(blobs, [0.5, 0.5], max_steps=20)
    assert not jax.config.jax_enable_x64
    assert jax.numpy.zeros(1).dtype == np.float32


def test_auto_falls_back_to_log_when_kernel_overflows():
    """At a tiny epsilon float64 kernel mode overflows (NaN); ``auto`` reruns in the log domain."""
    far = np.stack([_blob(16, 3, 3, s=1.0), _blob(16, 12, 12, s=1.0)])
    kw = {"epsilon": 5e-4, "max_steps": 200}
    kernel = transport.wasserstein_interpolate(far, [0.5, 0.5], mode="kernel", **kw)
    auto = transport.wasserstein_interpolate(far, [0.5, 0.5], **kw)
    log = transport.wasserstein_interpolate(far, [0.5, 0.5], mode="log", **kw)
    assert not np.all(np.isfinite(np.asarray(kernel.histogram)))
    np.testing.assert_allclose(np.asarray(auto.histogram), np.asarray(log.histogram))
    assert abs(float(np.asarray(auto.histogram).sum()) - 1.0) < 1e-2


@pytest.fixture(scope="module")
def swap():
    """On 20x60: two blobs that either move 10 px vertically or swap 20 px horizontally.

    In pixels the vertical moves are cheaper (2 x 10^2 against 2 x 20^2); on ott's unit-square grid
    (rows 1/19 apart, columns 1/59) the horizontal swap is (0.23 against 0.55). The midpoint of the
    pixel answer has blobs at (9, 20) and (9, 40), that of the unit-square one at (4, 30), (14, 30).
    """
    shape = (20, 60)

    def two(r0, c0, r1, c1):  # cut below 1e-3: small supports keep the displacement plan small
        x = _blob_hw(shape, r0, c0) + _blob_hw(shape, r1, c1)
        return np.where(x > 1e-3, x, 0.0)

    pixel, square = two(9, 20, 9, 40), two(4, 30, 14, 30)
    return two(4, 20, 14, 40), two(14, 20, 4, 40), pixel / pixel.sum(), square / square.sum()


def test_non_square_barycenter_is_isotropic_in_pixels(swap):
    a, b, pixel, square = swap
    mid = np.asarray(
        transport.wasserstein_interpolate(np.stack([a, b]), [[0.5, 0.5]]).histogram[0], np.float64
    )
    assert np.abs(mid - pixel).sum() < 0.05
    assert np.abs(mid - square).sum() > 1.9  # (disjoint: 2)


def test_non_square_displacement_is_isotropic_in_pixels(swap):
    a, b, pixel, _ = swap
    mid = np.asarray(transport.displacement_interpolate(a, b, [0.5]).histogram[0], np.float64)
    assert np.abs(mid - pixel).sum() < 0.1  # the splatting of half-pixel positions smooths a little


def test_non_square_blur_is_the_same_along_rows_and_columns():
    """The plain (biased) barycenter of one image blurs it by the Gibbs kernel: a Gaussian of
    variance ``eps / 2`` in units of the longer side, i.e. ``eps / 2 (max(h, w) - 1)^2`` px^2 along
    both axes (on ott's unit-square grid the rows would get (60 / 20)^2 = 9x the columns')."""
    shape = (21, 61)
    delta = np.zeros(shape)
    delta[10, 30] = 1.0
    out = transport.wasserstein_interpolate(delta[None], [[1.0]], debiased=False).histogram[0]
    h = np.asarray(out, np.float64)
    rr, cc = np.mgrid[0:21, 0:61]
    var_rows, var_cols = ((rr - 10) ** 2 * h).sum() / h.sum(), ((cc - 30) ** 2 * h).sum() / h.sum()
    expected = transport.default_epsilon(shape) / 2 * 60**2
    np.testing.assert_allclose([var_rows, var_cols], expected, rtol=1e-3)


def test_transposed_images_give_the_transposed_barycenter(swap):
    a, b, _, _ = swap
    w = [[0.3, 0.7]]
    out = transport.wasserstein_interpolate(np.stack([a, b]), w, max_steps=300).histogram[0]
    out_t = transport.wasserstein_interpolate(np.stack([a.T, b.T]), w, max_steps=300).histogram[0]
    np.testing.assert_allclose(np.asarray(out_t), np.asarray(out).T, atol=1e-6)
