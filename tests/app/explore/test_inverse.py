"""The 2-D -> latent inverse: Shepard's weighting (numpy loop reference) and its error on held-out points."""

import jax
import numpy as np
import pytest

from latentjax.app import embed, explore
from latentjax.app.explore import inverse_map
from latentjax.errors import InputError
from latentjax.learn import models
from latentjax.look import maps


def test_inverse_map_is_shepards_weighting():
    rng = np.random.default_rng(0)
    pts, zs = rng.normal(size=(50, 2)), rng.normal(size=(50, 3))
    q = rng.normal(size=(7, 2))
    got = inverse_map(pts, zs, q, k=5)
    for qi, gi in zip(q, got):
        d2 = ((pts - qi) ** 2).sum(axis=1)
        near = np.argsort(d2)[:5]
        w = 1 / (d2[near] + 1e-12 * np.ptp(pts, axis=0).max() ** 2)
        np.testing.assert_allclose(gi, (w[:, None] * zs[near]).sum(axis=0) / w.sum(), rtol=1e-5)
    np.testing.assert_array_equal(
        inverse_map(pts, zs, pts[[3, 9]]), zs[[3, 9]].astype(np.float32)
    )  # exact hits
    assert inverse_map(pts, zs, q, k=500).shape == (7, 3)  # k capped at n
    lo, hi = zs.min(axis=0), zs.max(axis=0)
    far = inverse_map(pts, zs, 1e3 * rng.normal(size=(5, 2)))
    assert np.all((far >= lo - 1e-6) & (far <= hi + 1e-6))  # a convex combination: never outside the data
    with pytest.raises(InputError, match="explore.inverse_map"):
        inverse_map(pts, zs[:3], q)
    with pytest.raises(InputError, match="NaN"):
        inverse_map(pts, zs, np.array([[np.nan, 0.0]]))


@pytest.mark.parametrize(
    "method",
    ["pca", pytest.param("tsne", marks=pytest.mark.slow), pytest.param("umap", marks=pytest.mark.slow)],
)
def test_held_out_error_beats_the_mean_and_one_neighbour(session, method):
    """Map all points, keep the last 80 out of the inverse's table, and invert their map positions."""
    z = session.latents
    y = embed.reduce(jax.random.key(0), z, method=method, quick=True)
    keep, held = slice(0, 320), slice(320, 400)
    z_hat = inverse_map(y[keep], z[keep], y[held])
    one = inverse_map(y[keep], z[keep], y[held], k=1)
    spread = np.sqrt(np.mean(np.sum((z[held] - z[keep].mean(axis=0)) ** 2, axis=1)))

    def latent_error(zz):
        return np.sqrt(np.mean(np.sum((zz - z[held]) ** 2, axis=1))) / spread

    decode = jax.vmap(lambda zi: models.decode(session.model, zi))
    truth = np.asarray(decode(z[held]))

    def image_error(zz):
        return float(np.mean(np.abs(np.asarray(decode(zz)) - truth)))

    mean = np.broadcast_to(z[keep].mean(axis=0), z[held].shape)
    errors = {
        name: (latent_error(zz), image_error(zz))
        for name, zz in (("idw", z_hat), ("1-nn", one), ("mean", mean))
    }
    print(method, {k: tuple(round(float(v), 3) for v in e) for k, e in errors.items()})
    assert errors["idw"][0] < 0.8 * errors["mean"][0] and errors["idw"][1] < 0.8 * errors["mean"][1]
    assert errors["idw"][0] < errors["1-nn"][0] and errors["idw"][1] < errors["1-nn"][1]


@pytest.fixture(scope="module")
def umap_session(explore_run):
    return explore.load(explore_run, method="umap", num_points=400)


def test_umap_maps_go_back_through_maps_inverse_transform(umap_session, explore_run):
    """The default inverse of a UMAP map is umap-learn's method (look.maps), cached with the map."""
    s = umap_session
    assert isinstance(s.fitted, maps.UMAPMap) and "inverse_transform" in s.inverse_name
    np.testing.assert_array_equal(np.asarray(s.fitted.x), s.latents)  # the map of these latents
    # Positions of map points go back near their own latents: well below the spread of the latents and
    # no worse than inverse-distance weighting of their 8 nearest neighbours (the point itself excluded).
    n = 60
    spread = np.sqrt(np.mean(np.sum((s.latents - s.latents.mean(axis=0)) ** 2, axis=1)))
    back = s.inverse(s.points[:n])
    err = np.sqrt(np.mean(np.sum((back - s.latents[:n]) ** 2, axis=1))) / spread
    loo = np.stack(
        [inverse_map(s.points[i + 1 :], s.latents[i + 1 :], s.points[i : i + 1])[0] for i in range(n)]
    )
    err_loo = np.sqrt(np.mean(np.sum((loo - s.latents[:n]) ** 2, axis=1))) / spread
    print("map inverse error", round(float(err), 3), "idw leave-one-out", round(float(err_loo), 3))
    assert err < 0.5 and err < err_loo * 1.25
    assert s.inverse(s.points[:3]).shape == (3, s.latents.shape[1])
    with pytest.raises(InputError, match="NaN"):
        s.inverse(np.array([[np.nan, 0.0]]))
    # Loaded again: the saved map is read back (same arrays), and a corrupt file is fitted again.
    again = explore.load(explore_run, method="umap", num_points=400)
    np.testing.assert_array_equal(again.points, s.points)
    (npz,) = (explore_run / "explore").glob("umap-400-seed0-map.npz")
    npz.write_bytes(b"not a map")
    refit = explore.load(explore_run, method="umap", num_points=400)
    assert refit.points.shape == s.points.shape and npz.stat().st_size > 100


def test_inverse_choices_are_checked(explore_run):
    with pytest.raises(InputError, match="inverse='map' needs a t-SNE or UMAP map"):
        explore.load(explore_run, method="pca", num_points=400, inverse="map")
    with pytest.raises(InputError, match="unknown inverse 'nearest'"):
        explore.load(explore_run, method="pca", num_points=400, inverse="nearest")
