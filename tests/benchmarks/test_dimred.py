"""benchmarks/dimred.py --quick: its rows in the shared format, quality above a PCA baseline and at
openTSNE's level, ratios equal to ours / peer's (timings are not checked)."""

import json

import numpy as np
import pytest


@pytest.mark.slow
def test_benchmark_quick_writes_rows(tmp_path, data_dir, load_script):
    bench = load_script("dimred", "benchmarks")
    out = tmp_path / "dimred.json"
    bench.main(["--quick", "--skip-sklearn", "--skip-umap", "--data-dir", str(data_dir), "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["benchmark"] == "dimred" and result["versions"]["jax"]
    rows = {(r["case"], r["impl"]): r for r in result["rows"]}
    ours = rows[("tsne_n300", "latentjax")]
    for field in ("seconds", "cold_seconds", "trustworthiness", "knn_recall", "kl"):
        assert np.isfinite(ours[field])
    # Quality: the benchmark's t-SNE beats PCA to 2-D of the same PCA-50 input, by sklearn's
    # trustworthiness (measured: 0.971 against 0.926).
    from sklearn.manifold import trustworthiness

    from latentjax.look import pca

    images = bench.load_fashion(str(data_dir), 300)
    x = np.asarray(pca.transform(pca.fit(images, num_components=50), images), np.float64)
    y = np.asarray(pca.transform(pca.fit(x, num_components=2), x), np.float64)
    assert ours["trustworthiness"] > trustworthiness(x, y, n_neighbors=10) + 0.02
    if ("tsne_n300", "opentsne") in rows:
        peer = rows[("tsne_n300", "opentsne")]
        for field in ("seconds", "cold_seconds", "kl"):
            assert ours[f"{field}_vs_opentsne"] == pytest.approx(ours[field] / peer[field], rel=1e-12)
        for field in ("trustworthiness", "knn_recall"):
            assert ours[f"{field}_minus_opentsne"] == pytest.approx(ours[field] - peer[field], abs=1e-12)
        # parity with openTSNE on the same P (measured: KL 0.454 vs 0.464, trustworthiness +0.003)
        assert abs(ours["trustworthiness"] - peer["trustworthiness"]) < 0.03
        assert ours["kl"] < 1.1 * peer["kl"]


@pytest.mark.slow
def test_benchmark_transform_rows(tmp_path, data_dir, load_script):
    """Transform rows at a tiny size: every implementation's fields, the ratios to its peer, and the
    kNN accuracy recomputed with scikit-learn from a refit of our map (the rows' own numbers)."""
    bench = load_script("dimred", "benchmarks")
    out = tmp_path / "dimred.json"
    argv = ["--quick", "--transform", "--no-fit-rows", "--data-dir", str(data_dir), "--json", str(out)]
    bench.main(argv)
    result = json.loads(out.read_text())
    rows = {(r["case"], r["impl"]): r for r in result["rows"]}
    assert {c for c, _ in rows} == {"tsne_transform_n300_m100", "umap_transform_n300_m100"}
    for (case, impl), r in rows.items():
        for field in ("seconds", "cold_seconds", "fit_seconds", "knn_accuracy", "trustworthiness"):
            assert np.isfinite(r[field]), (case, impl, field)
        # 10 Fashion-MNIST classes: far above chance (0.1) even at 300 + 100 points.
        assert r["knn_accuracy"] > 0.4 and r["trustworthiness"] > 0.8, r
    for case, peer in (("tsne_transform_n300_m100", "opentsne"), ("umap_transform_n300_m100", "umap_learn")):
        if (case, peer) in rows:
            ours, theirs = rows[(case, "latentjax")], rows[(case, peer)]
            assert ours[f"seconds_vs_{peer}"] == pytest.approx(ours["seconds"] / theirs["seconds"], rel=1e-12)
            diff = ours["knn_accuracy"] - theirs["knn_accuracy"]
            assert ours[f"knn_accuracy_minus_{peer}"] == pytest.approx(diff, abs=1e-12)
    # The t-SNE row's quality, recomputed independently: sklearn's kNN classifier and trustworthiness.
    import jax
    from sklearn.manifold import trustworthiness
    from sklearn.neighbors import KNeighborsClassifier

    from latentjax.look import maps, pca

    train, test = bench.load_fashion(str(data_dir), 300), bench.load_fashion(str(data_dir), 100, "test")
    p = pca.fit(train, num_components=50)
    x_ref, x_new = (np.asarray(pca.transform(p, a), np.float32) for a in (train, test))
    m = maps.fit_tsne(jax.random.key(0), x_ref, num_steps=100, early_exaggeration_steps=50)
    y = np.asarray(maps.transform(m, jax.random.key(1), x_new, num_steps=50))
    acc = KNeighborsClassifier(10).fit(np.asarray(m.embedding), bench.load_labels(str(data_dir), 300))
    ours = rows[("tsne_transform_n300_m100", "latentjax")]
    assert ours["knn_accuracy"] == pytest.approx(acc.score(y, bench.load_labels(str(data_dir), 100, "test")))
    assert ours["trustworthiness"] == pytest.approx(trustworthiness(x_new, y, n_neighbors=10), abs=1e-4)


def test_quality_beyond_quality_n_is_on_one_fixed_subsample(load_script, monkeypatch):
    """Large runs score every implementation on the same random subsample (sklearn's trustworthiness)."""
    from sklearn.manifold import trustworthiness

    bench = load_script("dimred", "benchmarks")
    monkeypatch.setattr(bench, "QUALITY_N", 150)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 8)).astype(np.float32)
    y = x[:, :2] + 0.1 * rng.normal(size=(400, 2)).astype(np.float32)
    row = bench.quality(x, y)
    sub = np.sort(np.random.default_rng(0).choice(400, 150, replace=False))
    assert row["quality_points"] == 150
    assert row["trustworthiness"] == pytest.approx(trustworthiness(x[sub], y[sub], n_neighbors=10), abs=1e-5)
    assert bench.quality(x, y[::-1].copy())["trustworthiness"] < row["trustworthiness"] - 0.1


def test_jittered_copies_stay_next_to_their_originals(load_script):
    """The 1,000,000-point set: each jittered copy's nearest original (sklearn) is the one it copies."""
    from sklearn.neighbors import NearestNeighbors

    bench = load_script("dimred", "benchmarks")
    x = np.random.default_rng(0).normal(size=(300, 6)).astype(np.float32)
    y = bench.jittered(x, 1000)
    assert y.shape == (1000, 6) and np.array_equal(y[:300], x)
    idx = NearestNeighbors(n_neighbors=1).fit(x).kneighbors(y[300:], return_distance=False)[:, 0]
    assert np.array_equal(idx, np.arange(300, 1000) % 300)
    assert np.all(np.abs(y[300:] - x[np.arange(300, 1000) % 300]).max(axis=1) > 0)


@pytest.mark.data
def test_load_fashion_continues_into_the_test_images_at_the_same_scale(data_dir, load_script):
    # The 70,000-point set once divided its last 10,000 images by 255 twice (they sat at ~0).
    import gzip

    bench = load_script("dimred", "benchmarks")
    both = bench.load_fashion(str(data_dir), 60010)
    raw = gzip.open(data_dir / "fashion_mnist" / "t10k-images-idx3-ubyte.gz").read()
    test = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784)[:10]
    np.testing.assert_array_equal(both[60000:] * 255.0, test.astype(np.float32))
    assert both.dtype == np.float32 and both.shape == (60010, 784) and both.max() == 1.0
    labels = bench.load_labels(str(data_dir), 60010)
    assert labels[60000:].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]  # the test set's first labels
