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


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    ds = data.load("sprites", limit=1024)
    cfg = models.Config(image_shape=tuple(ds.train_images.shape[1:]), latent_dim=3, hidden=32)
    run_dir = tmp_path_factory.mktemp("embed") / "run"
    train.fit(
        jax.random.key(0),
        cfg,
        ds.train_images,
        epochs=1,
        batch_size=64,
        out_dir=run_dir,
        settings={"dataset": "sprites"},
    )
    return run_dir


def test_run_embeds_a_trained_run(tmp_path, trained_run):
    run_dir = trained_run
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


def test_embed_writes_the_map_and_transform_places_new_data_into_it(tmp_path, trained_run, capsys):
    """The CLI's map round-trips; ``--transform`` places the training split into it as
    ``maps.transform`` does, and its kNN accuracy is scikit-learn's classifier on the saved maps."""
    from sklearn.neighbors import KNeighborsClassifier

    from latentjax.app import cli
    from latentjax.learn import runs
    from latentjax.look import maps

    fit_dir, new_dir = tmp_path / "fit", tmp_path / "new"
    args = ["embed", "--checkpoint", str(trained_run), "--method", "umap", "--n", "120"]
    assert cli.main([*args, "--out", str(fit_dir)]) == 0
    assert "look.umap" in capsys.readouterr().err  # the progress bar, on in the CLI
    fitted = maps.load(fit_dir / "map.npz")
    assert json.loads((fit_dir / "map.json").read_text())["method"] == "umap"
    ref = np.load(fit_dir / "embedding.npz")
    np.testing.assert_array_equal(np.asarray(fitted.embedding), ref["embedding"])
    np.testing.assert_array_equal(np.asarray(fitted.x), ref["latents"])

    flags = ["--transform", str(fit_dir), "--split", "train", "--n", "80", "--seed", "3", "--no-progress"]
    assert cli.main([*args[:3], "--out", str(new_dir), *flags]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["method"] == "umap" and res["split"] == "train" and res["n"] == 80
    assert not (new_dir / "map.npz").exists()
    new = np.load(new_dir / "embedding.npz")
    model, _ = runs.load_model(trained_run)
    z = models.encode_images(model, data.load("sprites", limit=80).train_images[:80])
    np.testing.assert_allclose(new["latents"], z, rtol=1e-6)
    want = np.asarray(maps.transform(fitted, jax.random.key(3), z))
    np.testing.assert_allclose(new["embedding"], want, rtol=1e-5, atol=1e-5)
    knn = KNeighborsClassifier(10).fit(ref["embedding"], ref["labels"])
    assert res["knn_accuracy"] == pytest.approx(knn.score(new["embedding"], new["labels"]), abs=1e-4)

    with pytest.raises(InputError, match="out_dir must differ"):
        embed.run(trained_run, fit_dir, method="umap", transform=fit_dir)
    maps.save(
        maps.TSNEMap(np.zeros((5, 4), np.float32), np.zeros((5, 2), np.float32)), tmp_path / "w" / "map"
    )
    with pytest.raises(InputError, match="fitted on 4-d latents, this model's are 3-d"):
        embed.run(trained_run, tmp_path / "x", method="tsne", num_points=20, transform=tmp_path / "w")
