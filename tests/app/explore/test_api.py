"""The explorer's handlers against the library they stand for: models.decode, move, numpy, sklearn."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from sklearn.neighbors import NearestNeighbors

from latentjax import move
from latentjax.app import explore
from latentjax.app.explore import _api, _session
from latentjax.errors import InputError
from latentjax.learn import models


def _pixels(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    a = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    return a[..., None] if a.ndim == 2 else a


def _idw(points, latents, q, k=8):
    """Shepard's inverse-distance weighting, one query at a time (the reference)."""
    d2 = ((points.astype(np.float64) - q) ** 2).sum(axis=1)
    near = np.argsort(d2)[:k]
    w = 1.0 / (d2[near] + 1e-12 * np.ptp(points, axis=0).max() ** 2)
    return (w[:, None] * latents[near]).sum(axis=0) / w.sum()


def test_decode_at_map_positions_is_models_decode_at_the_inverse_latent(session):
    rng = np.random.default_rng(0)
    lo, hi = session.points.min(axis=0), session.points.max(axis=0)
    xy = np.concatenate([rng.uniform(lo, hi, size=(5, 2)), session.points[[7]]])
    out = _api.decode(session, {"xy": xy.tolist()})
    z = np.asarray(out["z"])
    np.testing.assert_allclose(
        z[:5], [_idw(session.points, session.latents, q) for q in xy[:5]], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(z[5], session.latents[7])  # a map point is an exact hit
    for zi, url in zip(z, out["images"]):
        want = np.asarray(models.decode(session.model, zi.astype(np.float32)))
        got = _pixels(url) / 255.0
        assert got.shape == want.shape and np.max(np.abs(got - want)) <= 0.5 / 255 + 1e-6
    again = _api.decode(session, {"z": z.tolist()})
    assert again["images"] == out["images"]


def test_decode_compiles_once_per_padded_size(session):
    before = _session._decode_batch._cache_size()
    for m in (1, 2, 3, 4, 5, 9, 16):
        _api.decode(session, {"z": np.zeros((m, 4)).tolist()})
    assert _session._decode_batch._cache_size() - before <= 3  # sizes 1, 4, 16 at most


def test_paths_between_two_points_are_move_compare_paths(session):
    z0, z1 = session.latents[3], session.latents[11]
    out = _api.paths(session, {"z": [z0.tolist(), z1.tolist()], "num_points": 5, "geodesic_steps": 30})
    ref = move.compare_paths(session.decoder, z0, z1, num_points=5, num_steps=30)
    for name, p in ref._asdict().items():
        np.testing.assert_allclose(out[name]["z"], p.points, rtol=1e-5, atol=1e-5)
        for k, v in p.diagnostics._asdict().items():
            np.testing.assert_allclose(out[name]["diagnostics"][k], float(v), rtol=1e-4, atol=1e-5)
        shown = np.stack([_pixels(u) for u in out[name]["images"]]) / 255.0
        assert np.max(np.abs(shown - np.asarray(p.decoded))) <= 0.5 / 255 + 1e-5


def test_paths_through_three_points_pass_through_each(session):
    w = session.latents[[0, 5, 9]]
    out = _api.paths(session, {"z": w.tolist(), "num_points": 4, "geodesic_steps": 0})
    lerp = np.asarray(out["lerp"]["z"])
    assert lerp.shape == (7, 4)
    np.testing.assert_allclose(lerp[[0, 3, 6]], w, atol=1e-6)
    t = np.array([0, 1 / 3, 2 / 3, 1.0])[:, None]
    np.testing.assert_allclose(lerp[:4], (1 - t) * w[0] + t * w[1], atol=1e-5)
    want = np.stack([move.slerp(w[0], w[1], ti) for ti in t[:, 0]])
    np.testing.assert_allclose(out["slerp"]["z"][:4], want, atol=1e-5)


def test_edits_chain_class_and_factor_vectors(session):
    lat, lab = session.latents.astype(np.float64), session.labels
    cls = lat[lab == 2].mean(axis=0) - lat[lab == 0].mean(axis=0)
    scale = session.factors["scale"].astype(np.float64)
    yc, zc = scale - scale.mean(), lat - lat.mean(axis=0)
    fac = (yc @ zc) / (yc @ yc)  # the mean-shift regression direction, per unit of scale
    edits = [
        {"kind": "class", "source": 0, "target": 2, "strength": 0.5},
        {"kind": "factor", "name": "scale", "strength": -0.2},
    ]
    out = _api.edit(session, {"index": 12, "edits": edits})
    want = lat[12] + 0.5 * cls - 0.2 * fac
    np.testing.assert_allclose(out["base"][0], lat[12], atol=1e-6)
    np.testing.assert_allclose(out["z"][0], want, rtol=1e-4, atol=1e-4)
    img = np.asarray(models.decode(session.model, np.asarray(out["z"][0], np.float32)))
    assert np.max(np.abs(_pixels(out["images"][0]) / 255.0 - img)) <= 0.5 / 255 + 1e-6
    assert _api.edit(session, {"index": 12})["z"][0] == pytest.approx(lat[12].tolist())
    ortho = _api.edit(session, {"index": 12, "edits": edits, "orthogonalize": True})
    want = move.chain(lat[12], np.stack([cls, fac]), np.array([0.5, -0.2]), orthogonalize=True)
    np.testing.assert_allclose(ortho["z"][0], want, rtol=1e-4, atol=1e-4)


def test_neighbors_are_sklearns(session):
    out = _api.neighbors(session, {"index": 20, "k": 6})
    d, i = NearestNeighbors(n_neighbors=6).fit(session.latents).kneighbors(session.latents[[20]])
    assert out["indices"] == i[0].tolist() and out["indices"][0] == 20
    np.testing.assert_allclose(out["distances"], d[0], atol=1e-5)
    assert out["labels"] == session.labels[i[0]].tolist()


def test_strip_downloads(session):
    z = session.latents[:3]
    ctype, body = _api.strip(session, {"z": z.tolist(), "format": "png", "scale": 2})
    frames = _session.to_uint8(np.stack([models.decode(session.model, zi) for zi in z]))[..., 0]
    want = np.concatenate(list(frames.repeat(2, axis=1).repeat(2, axis=2)), axis=1)
    assert ctype == "image/png" and np.array_equal(np.asarray(Image.open(io.BytesIO(body))), want)
    ctype, body = _api.strip(session, {"z": z.tolist(), "format": "gif"})
    gif = Image.open(io.BytesIO(body))
    assert (
        ctype == "image/gif" and gif.n_frames == 3 and gif.size == (4 * frames.shape[2], 4 * frames.shape[1])
    )


def test_info_and_thumbs(session):
    info = _api.info(session)
    json.dumps(info, allow_nan=False)
    np.testing.assert_array_equal(np.asarray(info["points"], np.float32), session.points)
    assert info["labels"] == session.labels.tolist() and info["latent_dim"] == 4
    assert set(info["edits"]) == {"scale", "rotation", "x", "y"}  # "shape" is the class: class vectors
    png = _api.thumb(session, {"i": ["5"]})
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png)))[..., None], session.images[5])


def test_the_map_is_cached_in_the_run_folder(explore_run, session):
    cached = explore_run / "explore" / "pca-400-seed0.npz"
    assert cached.is_file()
    mtime = cached.stat().st_mtime_ns
    again = explore.load(explore_run, method="pca", num_points=400)
    np.testing.assert_array_equal(again.points, session.points)
    assert cached.stat().st_mtime_ns == mtime
    np.savez(cached, points=np.zeros((400, 2), np.float32), latents=np.zeros((400, 4), np.float32))
    fresh = explore.load(explore_run, method="pca", num_points=400)  # other latents: computed again
    np.testing.assert_array_equal(fresh.points, session.points)
    assert not list((explore_run / "explore").glob(".tmp-*"))


def test_load_and_serve_refuse_bad_arguments(explore_run, tmp_path):
    with pytest.raises(InputError, match="unknown method 'isomap'"):
        explore.load(explore_run, method="isomap")
    with pytest.warns(UserWarning, match="no authentication"), pytest.raises(InputError, match="port"):
        explore.serve(explore_run, host="0.0.0.0", port=70000)
