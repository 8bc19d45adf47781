"""The demo's disentanglement section: its MIG equals scikit-learn's on the same codes and binned factors;
the factor binning equals equal-width bins computed by hand; data sets without factors get a note."""

import jax
import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from latentjax import data
from latentjax.app import demo
from latentjax.app.sections import disentangle
from latentjax.learn import models


def mig_sklearn(codes, factors, num_bins=20):
    disc = [np.digitize(c, np.histogram(c, num_bins)[1][:-1]) for c in codes.T]
    gaps = []
    for f in factors.T:
        mi = np.sort([mutual_info_score(f, d) for d in disc])[::-1]
        gaps.append((mi[0] - mi[1]) / mutual_info_score(f, f))
    return float(np.mean(gaps))


def equal_width_bins(v, bins):
    v = np.asarray(v, np.float64)
    return np.minimum(np.floor((v - v.min()) / (v.max() - v.min()) * bins), bins - 1).astype(int)


@pytest.fixture(scope="module")
def sprite_run(tmp_path_factory):
    ds = data.load("sprites", limit=2000, seed=0)
    cfg = models.Config(image_shape=(32, 32, 1), latent_dim=4, hidden=16)
    out = tmp_path_factory.mktemp("demo")
    (out / "figures").mkdir()
    return demo.DemoRun(
        models.create(jax.random.key(0), cfg),
        cfg,
        out,
        out / "figures",
        ds.train_images,
        ds.test_images,
        np.asarray(ds.train_labels),
        np.asarray(ds.test_labels),
        tuple(ds.label_names),
        "sprites",
        None,
        jax.random.key(1),
        ds.factors,
    )


def test_binned_is_equal_width_bins(sprite_run):
    test = {k: sprite_run.factors[k][1] for k in disentangle._FACTORS}
    got = disentangle.binned(test, bins=8)
    np.testing.assert_array_equal(got[:, 0], test["shape"])
    for i, k in enumerate(disentangle._FACTORS[1:], start=1):
        np.testing.assert_array_equal(got[:, i], equal_width_bins(test[k], 8))


def test_quick_section_scores_the_demo_vae_as_sklearn_does(sprite_run):
    sec = disentangle.section(sprite_run, quick=True)
    codes = models.encode_images(sprite_run.model, sprite_run.test_images)
    factors = disentangle.binned({k: sprite_run.factors[k][1] for k in disentangle._FACTORS}, bins=8)
    assert sec.table["MIG demo VAE"] == pytest.approx(mig_sklearn(codes, factors), abs=6e-4)
    assert 0.0 <= sec.table["FactorVAE score demo VAE"] <= 1.0
    assert f"MIG {sec.table['MIG demo VAE']:.2f}" in sec.text
    (fig,) = sec.figures
    assert (sprite_run.figures / "disentangle_demo_vae.png").stat().st_size > 1000


def test_section_without_factors_is_a_note(sprite_run):
    sec = disentangle.section(sprite_run._replace(dataset="fashion_mnist", factors=None), quick=True)
    assert sec.figures == () and "fashion_mnist" in sec.text
