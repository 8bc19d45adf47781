"""``latentjax embed``: the reductions, the projector metadata and the outputs of a trained run."""

import json

import jax
import numpy as np
import pytest

from latentjax import data
from latentjax.app import embed
from latentjax.errors import InputError, LatentJaxError
from latentjax.learn import models, train


@pytest.mark.parametrize("method", embed.METHODS)
def test_reduce_gives_a_finite_2d_map(method):
    z = np.random.default_rng(0).normal(size=(120, 5)).astype(np.float32)
    y = embed.reduce(jax.random.key(0), z, method=method, quick=True)
    assert y.shape == (120, 2) and np.all(np.isfinite(y))


def test_reduce_and_run_refuse_an_unknown_method(tmp_path):
    with pytest.raises(InputError, match="embed.reduce: unknown method 'isomap'"):
        embed.reduce(jax.random.key(0), np.eye(5), method="isomap")
    with pytest.raises(InputError, match="embed.run: unknown method"):
        embed.run(tmp_path, tmp_path / "out", method="isomap")


def test_projector_metadata_names_the_labels():
    assert embed.projector_metadata([2, 0], None) == {"label": [2, 0]}
    meta = embed.projector_metadata(np.array([2, 0]), ["a", "b", "c"])
    assert meta["name"] == ["c", "a"] and list(meta["label"]) == [2, 0]


def test_run_embeds_a_trained_run(tmp_path):
    ds = data.load("sprites", limit=1024)
    cfg = models.Config(image_shape=tuple(ds.train_images.shape[1:]), latent_dim=3, hidden=32)
    run_dir = tmp_path / "run"
    train.fit(
        jax.random.key(0),
        cfg,
        ds.train_images,
        epochs=1,
        batch_size=64,
        out_dir=run_dir,
        settings={"dataset": "sprites"},
    )
    out = tmp_path / "emb"
    res = embed.run(run_dir, out, method="pca", num_points=100)
    assert res["method"] == "pca" and res["dataset"] == "sprites" and res["latent_dim"] == 3
    assert res["n"] == 100 and 0.5 < res["trustworthiness"] <= 1.0
    for f in ("scatter.png", "viewer.html", "projector/projector_config.pbtxt", "embedding.npz"):
        assert (out / f).exists(), f
    saved = np.load(out / "embedding.npz")
    assert saved["embedding"].shape == (100, 2) and saved["latents"].shape == (100, 3)
    assert json.dumps(res)
    with pytest.raises(LatentJaxError):
        embed.run(tmp_path / "nothing", tmp_path / "e2", method="pca")
