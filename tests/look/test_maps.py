"""look.maps: fitted maps, transform and inverse_transform against openTSNE and umap-learn, save/load."""

import gzip
import json

import jax
import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from latentjax.errors import CheckpointError, InputError
from latentjax.look import maps, metrics, pca, tsne, umap

# Sized for CI (2 cores): the peers' fits are short, since both transforms are compared on one map.
N_REF, N_NEW = 1000, 200


@pytest.fixture(scope="module")
def fashion(data_dir):
    """First 1,200 Fashion-MNIST training images, PCA-50 fitted on the 1,000 reference ones."""
    root = data_dir / "fashion_mnist"
    raw = gzip.open(root / "train-images-idx3-ubyte.gz").read()
    labels = np.frombuffer(gzip.open(root / "train-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
    n = N_REF + N_NEW
    x = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784)[:n].astype(np.float32) / 255
    z = np.array(pca.transform(pca.fit(x[:N_REF], num_components=50), x), np.float32)
    return z[:N_REF], z[N_REF:], labels[:N_REF], labels[N_REF:n]


def _knn_accuracy(y_ref, labels_ref, y_new, labels_new):
    return KNeighborsClassifier(10).fit(y_ref, labels_ref).score(y_new, labels_new)


def _scores(x_new, y_ref, labels_ref, y_new, labels_new):
    trust = float(metrics.trustworthiness(x_new, np.asarray(y_new), k=10))
    return _knn_accuracy(y_ref, labels_ref, np.asarray(y_new), labels_new), trust


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(4, 6))
    x = (centres[rng.integers(0, 4, 260)] + rng.normal(size=(260, 6))).astype(np.float32)
    return x[:200], x[200:]


@pytest.fixture(scope="module")
def small_maps(small):
    x, _ = small
    t = maps.fit_tsne(jax.random.key(0), x, perplexity=10.0, num_steps=100, early_exaggeration_steps=50)
    u = maps.fit_umap(jax.random.key(0), x, n_neighbors=10, num_steps=60)
    return t, u


def test_fit_gives_the_embed_functions_maps(small, small_maps):
    x, _ = small
    t, u = small_maps
    y_t = tsne.embed(jax.random.key(0), x, perplexity=10.0, num_steps=100, early_exaggeration_steps=50)
    np.testing.assert_array_equal(np.asarray(t.embedding), np.asarray(y_t))
    np.testing.assert_array_equal(
        np.asarray(u.embedding), np.asarray(umap.embed(jax.random.key(0), x, n_neighbors=10, num_steps=60))
    )
    # sigma and rho are umap.calibrate's on the 9 nearest neighbours (an independent brute force).
    d = np.sort(np.linalg.norm(x[:, None] - x[None], axis=-1), axis=1)[:, 1:10]
    cal = umap.calibrate(d, n_neighbors=10)
    np.testing.assert_allclose(np.asarray(u.sigma), np.asarray(cal.sigma), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(u.rho), d[:, 0], rtol=1e-5)


@pytest.mark.parametrize("which", [0, 1])
def test_transform_is_deterministic_and_keeps_the_map(small, small_maps, which):
    x, x_new = small
    m = small_maps[which]
    before = np.asarray(m.embedding).copy()
    a = np.asarray(maps.transform(m, jax.random.key(3), x_new, num_steps=30))
    b = np.asarray(maps.transform(m, jax.random.key(3), x_new, num_steps=30))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.asarray(m.embedding), before)
    assert a.shape == (len(x_new), 2) and np.all(np.isfinite(a))
    # New points land among their nearest reference points' positions (median of 10 within 1 extent / 4).
    nearest = np.argsort(np.linalg.norm(x_new[:, None] - x[None], axis=-1), axis=1)[:, :10]
    centre = np.median(before[nearest], axis=1)
    assert np.median(np.linalg.norm(a - centre, axis=1)) < np.ptp(before) / 4


def test_tsne_transform_grid_repulsion_matches_the_exact_sum(small, small_maps):
    _, x_new = small
    t = small_maps[0]
    fft = np.asarray(maps.transform(t, jax.random.key(0), x_new, method="fft"))
    exact = np.asarray(maps.transform(t, jax.random.key(0), x_new, method="exact"))
    assert np.max(np.linalg.norm(fft - exact, axis=1)) < 0.01 * np.ptp(np.asarray(t.embedding))


def test_bad_arguments_raise_input_errors(small, small_maps):
    _, x_new = small
    t, u = small_maps
    with pytest.raises(InputError, match="look.maps.transform: x_new must be"):
        maps.transform(t, jax.random.key(0), x_new[:, :3])
    with pytest.raises(InputError, match="unknown options \\['perplexity'\\]"):
        maps.transform(u, jax.random.key(0), x_new, perplexity=5.0)
    with pytest.raises(InputError, match="fitted must be"):
        maps.transform(np.zeros((3, 2)), jax.random.key(0), x_new)
    with pytest.raises(InputError, match="look.maps.inverse_transform: y must be"):
        maps.inverse_transform(u, jax.random.key(0), np.zeros((2, 3)))
    with pytest.raises(InputError, match="NaN"):
        maps.inverse_transform(t, jax.random.key(0), np.full((2, 2), np.nan))


@pytest.mark.parametrize("which", [0, 1])
def test_save_load_round_trip_is_bit_exact(tmp_path, small, small_maps, which):
    _, x_new = small
    m = small_maps[which]
    path = maps.save(m, tmp_path / "map")
    assert path.name == "map.npz" and (tmp_path / "map.json").is_file()
    back = maps.load(tmp_path / "map.npz")
    assert type(back) is type(m)
    for before, after in zip(m, back):
        np.testing.assert_array_equal(np.asarray(before), np.asarray(after))
    y0 = maps.transform(m, jax.random.key(1), x_new, num_steps=20)
    y1 = maps.transform(back, jax.random.key(1), x_new, num_steps=20)
    np.testing.assert_array_equal(np.asarray(y0), np.asarray(y1))
    if which == 0:  # the t-SNE inverse is the UMAP one with its own sigma, rho: compiled in the slow test
        return
    z0 = maps.inverse_transform(m, jax.random.key(2), y0[:5], num_steps=10)
    z1 = maps.inverse_transform(back, jax.random.key(2), y0[:5], num_steps=10)
    np.testing.assert_array_equal(np.asarray(z0), np.asarray(z1))


def test_load_refuses_corrupt_and_foreign_files(tmp_path, small_maps):
    path = maps.save(small_maps[1], tmp_path / "m")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="does not match the checksum"):
        maps.load(path)
    (tmp_path / "f.json").write_text(json.dumps({"format": "something else"}))
    (tmp_path / "f.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="is not a latentjax map"):
        maps.load(tmp_path / "f.npz")
    (tmp_path / "g.json").write_text("{not json")
    (tmp_path / "g.npz").write_bytes(b"")
    with pytest.raises(CheckpointError, match="is not JSON"):
        maps.load(tmp_path / "g")
    meta = json.loads((tmp_path / "m.json").read_text())
    (tmp_path / "m.json").write_text(json.dumps(meta | {"version": 99}))
    with pytest.raises(CheckpointError, match="format version 99"):
        maps.load(tmp_path / "m.npz")
    with pytest.raises(CheckpointError, match="missing"):
        maps.load(tmp_path / "absent.npz")


@pytest.mark.slow
def test_tsne_transform_matches_opentsne(fashion):
    """On openTSNE's own map, our transform places Fashion-MNIST points as well as its transform."""
    opentsne = pytest.importorskip("openTSNE")
    x_ref, x_new, l_ref, l_new = fashion
    # A short fit: both transforms are compared on this one map.
    fit = opentsne.TSNE(n_iter=50, early_exaggeration_iter=50, random_state=0, n_jobs=1)
    emb = fit.fit(x_ref.astype(np.float64))
    theirs = np.asarray(emb.transform(x_new.astype(np.float64)))
    ref = np.asarray(emb)
    ours = maps.transform(maps.TSNEMap(x_ref, ref.astype(np.float32)), jax.random.key(0), x_new)
    acc_o, trust_o = _scores(x_new, ref, l_ref, ours, l_new)
    acc_t, trust_t = _scores(x_new, ref, l_ref, theirs, l_new)
    # 200 new points: one point is 0.005 of accuracy; measured 2026-12 (2,000 + 500): +-0.002.
    assert acc_o >= acc_t - 0.02 and trust_o >= trust_t - 0.005, (acc_o, acc_t, trust_o, trust_t)
    # The same method: the positions agree to a few hundredths of the map's extent.
    assert np.median(np.linalg.norm(np.asarray(ours) - theirs, axis=1)) < 0.02 * np.ptp(ref)


@pytest.mark.slow
def test_3d_tsne_transform_matches_opentsne(fashion):
    """3-D maps: the exact repulsion places points into openTSNE's 3-D map (Barnes-Hut) as its transform."""
    opentsne = pytest.importorskip("openTSNE")
    x_ref, x_new, l_ref, l_new = fashion
    fit = opentsne.TSNE(
        n_components=3, negative_gradient_method="bh", n_iter=50, early_exaggeration_iter=50, random_state=0
    )
    emb = fit.fit(x_ref.astype(np.float64))
    theirs = np.asarray(emb.transform(x_new.astype(np.float64)))
    ref = np.asarray(emb)
    ours = np.asarray(maps.transform(maps.TSNEMap(x_ref, ref.astype(np.float32)), jax.random.key(0), x_new))
    assert ours.shape == (N_NEW, 3)
    acc_o, trust_o = _scores(x_new, ref, l_ref, ours, l_new)
    acc_t, trust_t = _scores(x_new, ref, l_ref, theirs, l_new)
    assert acc_o >= acc_t - 0.02 and trust_o >= trust_t - 0.005, (acc_o, acc_t, trust_o, trust_t)
    assert np.median(np.linalg.norm(ours - theirs, axis=1)) < 0.03 * np.ptp(ref)


@pytest.fixture(scope="module")
def umap_learn(fashion):
    umap_learn = pytest.importorskip("umap")
    x_ref, x_new, _, _ = fashion
    u = umap_learn.UMAP(random_state=0, n_epochs=200).fit(x_ref)  # both transforms: 200 // 3 epochs
    m = maps.UMAPMap(x_ref, u.embedding_, u._sigmas, u._rhos, float(u._a), float(u._b), 15, 200)
    return u, m, u.transform(x_new)


@pytest.mark.slow
def test_umap_transform_matches_umap_learn(fashion, umap_learn):
    x_ref, x_new, l_ref, l_new = fashion
    u, m, theirs = umap_learn
    ours = maps.transform(m, jax.random.key(0), x_new)
    acc_o, trust_o = _scores(x_new, u.embedding_, l_ref, ours, l_new)
    acc_t, trust_t = _scores(x_new, u.embedding_, l_ref, theirs, l_new)
    assert acc_o >= acc_t - 0.02 and trust_o >= trust_t - 0.005, (acc_o, acc_t, trust_o, trust_t)
    assert np.median(np.linalg.norm(np.asarray(ours) - theirs, axis=1)) < 0.02 * np.ptp(u.embedding_)


@pytest.mark.slow
def test_inverse_transform_error_beside_umap_learn(fashion, umap_learn):
    """Held-out points mapped by umap-learn's transform, then back: our error <= umap-learn's + 10 %."""
    x_ref, x_new, _, _ = fashion
    u, m, y = umap_learn
    theirs = u.inverse_transform(y[:100])
    ours = np.asarray(maps.inverse_transform(m, jax.random.key(0), y[:100]))
    mse_o, mse_t = np.mean((ours - x_new[:100]) ** 2), np.mean((theirs - x_new[:100]) ** 2)
    assert mse_o <= 1.1 * mse_t, (mse_o, mse_t)
    # The t-SNE variant (Cauchy kernel, bandwidths calibrated on the inputs) on the same map and points
    # beats predicting the reference mean by half.
    back = np.asarray(maps.inverse_transform(maps.TSNEMap(x_ref, u.embedding_), jax.random.key(0), y[:100]))
    baseline = np.mean((x_new[:100] - x_ref.mean(axis=0)) ** 2)
    assert np.mean((back - x_new[:100]) ** 2) < 0.5 * baseline
