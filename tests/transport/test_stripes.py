"""The stripes in the demo's OT rows are the algorithm's, not a defect: POT's debiased convolutional
barycenter at the same epsilon and cost ripples as much inside a triangle -> ellipse midpoint, the
plain barycenter less (it blurs instead), and the flat inputs not at all."""

import warnings

import numpy as np
import pytest

from latentjax import transport
from latentjax.app.sections._transport_measures import ripple, row_ripple


@pytest.fixture(scope="module")
def pair():
    n = 24
    r, c = np.mgrid[:n, :n].astype(float)
    tri = ((c >= 5) & (c <= 11) & (np.abs(r - 12) <= (c - 5) * 0.6)).astype(float)
    ell = ((((r - 9) / 3.0) ** 2 + ((c - 15) / 6.0) ** 2) <= 1).astype(float)
    return np.stack([tri, ell])


def test_debiased_midpoint_stripes_match_pot(pair):
    ot = pytest.importorskip("ot")
    eps = transport.default_epsilon(pair.shape[1:])
    w = np.array([[0.5, 0.5]])
    ours = np.asarray(transport.wasserstein_interpolate(pair, w).histogram[0], np.float64)
    plain = np.asarray(transport.wasserstein_interpolate(pair, w, debiased=False).histogram[0])
    hists = pair / pair.sum(axis=(1, 2), keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ot.bregman.convolutional_barycenter2d_debiased(
            hists, eps, weights=w[0], numItermax=2000, stopThr=1e-9, stabThr=1e-300, warn=False
        )
    assert np.abs(ours - ref / ref.sum()).sum() < 0.05  # the same barycenter
    for axis in (0, 1):
        assert ripple(pair[0], axis=axis) == ripple(pair[1], axis=axis) == 0.0  # flat inputs
        mine, pots = ripple(ours, axis=axis), ripple(ref, axis=axis)
        assert mine > 0.12 and pots > 0.12 and mine == pytest.approx(pots, rel=0.35), (axis, mine, pots)
    # Along the stripes' direction (vertical stripes: across columns) the plain barycenter is smooth.
    assert ripple(plain, axis=1) < 0.6 * ripple(ours, axis=1)


def test_ripple_against_numpy_by_hand():
    rng = np.random.default_rng(0)
    im = np.zeros((12, 12))
    im[2:10, 2:10] = 1.0 + 0.1 * rng.random((8, 8))
    # Inside: 4..7 after erosion of the > 0.25 mask (rows and columns 3..8), by hand:
    norm = im / im.max()
    inside = norm[3:9, 3:9]
    d2 = np.abs(norm[3:9, 2:8] - 2 * norm[3:9, 3:9] + norm[3:9, 4:10])
    assert ripple(im, axis=1) == pytest.approx(d2.mean() / inside.mean())
    assert row_ripple(np.stack([im, im, im])) == pytest.approx(max(ripple(im, axis=0), ripple(im, axis=1)))
