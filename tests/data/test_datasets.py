"""data.load by name: the real files' published facts, the splits, and the messages when files are missing."""

import numpy as np
import pytest

from latentjax import data
from latentjax.data import _datasets, _folders
from latentjax.errors import DataError, InputError


@pytest.mark.data
def test_load_fashion_mnist_matches_published_facts(data_dir):
    ds = data.load("fashion_mnist", data_dir=data_dir)
    assert ds.train_images.shape == (60000, 28, 28, 1) and ds.train_images.dtype == np.uint8
    assert ds.test_images.shape == (10000, 28, 28, 1)
    assert np.bincount(ds.train_labels).tolist() == [6000] * 10
    assert np.bincount(ds.test_labels).tolist() == [1000] * 10
    assert ds.train_labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert ds.test_labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert ds.train_images.mean() == pytest.approx(72.94, abs=0.01)
    assert ds.test_images.mean() == pytest.approx(73.15, abs=0.01)
    assert ds.label_names[0] == "T-shirt/top" and ds.label_names[9] == "Ankle boot"
    assert ds.name == "fashion_mnist" and ds.factors is None


@pytest.mark.data
def test_load_limit_and_env_var(data_dir, monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(data_dir))
    ds = data.load("mnist", limit=100)
    assert ds.train_images.shape == (100, 28, 28, 1) and ds.test_images.shape == (100, 28, 28, 1)
    assert ds.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.issubdtype(ds.train_labels.dtype, np.integer)
    assert ds.label_names == tuple("0123456789")


def test_missing_data_set_names_both_options(tmp_path, monkeypatch):
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / "cache"))  # not a download in the user's cache
    with pytest.raises(DataError) as e:
        data.load("mnist", data_dir=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "mnist") in msg and "train-images-idx3-ubyte.gz" in msg
    assert "tfds" in msg and "pass data_dir or set" in msg and data.DATA_DIR_ENV in msg
    assert "\n" not in msg
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    with pytest.raises(DataError, match=f"pass data_dir or set {data.DATA_DIR_ENV}"):
        data.load("fashion_mnist")


def test_unknown_name_and_bad_limit():
    with pytest.raises(DataError, match="unknown data set 'cifar'.*sprites"):
        data.load("cifar", data_dir=".")
    with pytest.raises(InputError, match="limit"):
        data.load("sprites", limit=0)


def test_load_sprites_split():
    ds = data.load("sprites", seed=7, limit=300)
    x, f = data.sprites(num_images=20000, size=32, seed=7)
    assert ds.train_images.shape == (300, 32, 32, 1) and ds.test_images.shape == (300, 32, 32, 1)
    np.testing.assert_array_equal(ds.train_images, x[:300])
    np.testing.assert_array_equal(ds.test_images, x[18000:18300])
    np.testing.assert_array_equal(ds.train_labels, f["shape"][:300])
    np.testing.assert_array_equal(ds.factors["rotation"][1], f["rotation"][18000:18300])
    assert ds.label_names == ("square", "ellipse", "triangle", "heart")
    full = data.load("sprites")
    assert len(full.train_images) == 18000 and len(full.test_images) == 2000


def test_missing_face_set_names_the_file(tmp_path):
    with pytest.raises(DataError, match=r"genki4k.*GENKI4K_faces_64x64_rgb.zip.*pass data_dir"):
        data.load("genki4k", data_dir=tmp_path)


@pytest.mark.data
def test_load_smile_faces(data_dir):
    ds = data.load("smile_faces", data_dir=data_dir)
    x = np.concatenate([ds.train_images, ds.test_images])
    y = np.concatenate([ds.train_labels, ds.test_labels])
    assert x.shape == (13165, 64, 64, 1) and x.dtype == np.uint8
    assert len(ds.test_images) == 1316 and int(y.sum()) == 3690
    assert x.mean() == pytest.approx(127.96, abs=0.01)  # README's verified mean pixel
    assert set(ds.factors) == {"smiling"}
    np.testing.assert_array_equal(ds.factors["smiling"][1], ds.test_labels)
    assert ds.label_names == ("not smiling", "smiling")
    # The shuffled split has both classes in the test set, in about the overall proportion.
    assert abs(ds.test_labels.mean() - 3690 / 13165) < 0.05


@pytest.mark.data
def test_face_limit_decodes_only_what_it_returns(data_dir, monkeypatch):
    full = data.load("genki4k", data_dir=data_dir, seed=3)
    decoded = []
    real = _folders._decode_all
    monkeypatch.setattr(_folders, "_decode_all", lambda src, paths: decoded.extend(paths) or real(src, paths))
    small = data.load("genki4k", data_dir=data_dir, seed=3, limit=50)
    assert len(decoded) == 100  # 50 train + 50 test, not all 4000
    np.testing.assert_array_equal(small.train_images, full.train_images[:50])
    np.testing.assert_array_equal(small.test_images, full.test_images[:50])
    np.testing.assert_array_equal(small.factors["yaw"][1], full.factors["yaw"][1][:50])
    np.testing.assert_array_equal(small.train_labels, full.train_labels[:50])


@pytest.mark.data
def test_load_genki4k(data_dir):
    ds = data.load("genki4k", data_dir=data_dir, limit=None, seed=0)
    x = np.concatenate([ds.train_images, ds.test_images])
    assert x.shape == (4000, 64, 64, 3) and len(ds.test_images) == 400
    assert x.mean() == pytest.approx(122.54, abs=0.01)
    assert int(ds.train_labels.sum() + ds.test_labels.sum()) == 2162
    assert set(ds.factors) == {"smile", "yaw", "pitch", "roll"}
    # Attribute rows follow the images: compare with labels.txt through the README's recipe.
    table = np.loadtxt(data_dir / "genki4k" / "labels.txt")
    order = np.random.default_rng(0).permutation(4000)
    np.testing.assert_allclose(ds.factors["yaw"][0], table[order[:3600], 1], rtol=1e-6)
    np.testing.assert_array_equal(ds.factors["smile"][1], table[order[3600:], 0])
    small = data.load("genki4k", data_dir=data_dir, limit=10, seed=0)
    np.testing.assert_array_equal(small.test_images, ds.test_images[:10])


def test_face_split_is_a_pure_function_of_n_seed_and_limit():
    train, test = _datasets._face_split(50, seed=3, limit=None)
    assert len(train) == 45 and len(test) == 5
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(50))
    again = _datasets._face_split(50, seed=3, limit=None)
    np.testing.assert_array_equal(train, again[0])
    small_train, small_test = _datasets._face_split(50, seed=3, limit=4)
    np.testing.assert_array_equal(small_train, train[:4])
    np.testing.assert_array_equal(small_test, test[:4])
