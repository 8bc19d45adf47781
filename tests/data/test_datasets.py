"""latentjax.data against the published facts of the real files, closed forms and round trips."""

import gzip
import io
import math
import shutil
import sys
import time
import zipfile

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from latentjax import data
from latentjax.data import _datasets
from latentjax.errors import DataError, LatentJaxError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _write_idx(path, a, *, compress=True):
    """An IDX writer independent of the reader: magic, big-endian dims, big-endian data."""
    code = {
        np.dtype("u1"): 0x08,
        np.dtype("i1"): 0x09,
        np.dtype("i2"): 0x0B,
        np.dtype("i4"): 0x0C,
        np.dtype("f4"): 0x0D,
        np.dtype("f8"): 0x0E,
    }[a.dtype]
    raw = bytes([0, 0, code, a.ndim]) + b"".join(d.to_bytes(4, "big") for d in a.shape)
    raw += a.astype(a.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


# IDX files: the real ones --------------------------------------------------------------------


@pytest.mark.data
def test_read_idx_mnist_matches_published_counts(data_dir):
    d = data_dir / "mnist"
    y = data.read_idx(d / "train-labels-idx1-ubyte.gz")
    assert y.dtype == np.uint8 and y.shape == (60000,)
    assert np.bincount(y).tolist() == MNIST_TRAIN_COUNTS
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    y_test = data.read_idx(d / "t10k-labels-idx1-ubyte.gz")
    assert np.bincount(y_test).tolist() == MNIST_TEST_COUNTS
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    x = data.read_idx(d / "t10k-images-idx3-ubyte.gz")
    assert x.dtype == np.uint8 and x.shape == (10000, 28, 28)
    assert x.mean() == pytest.approx(33.79, abs=0.01)  # README's verified mean pixel


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


# IDX files: format, corrupt and truncated copies ---------------------------------------------


@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trips_every_type(tmp_path, dtype, compress):
    a = (np.random.default_rng(0).normal(size=(3, 4, 5)) * 100).astype(dtype)
    out = data.read_idx(_write_idx(tmp_path / "a-idx3", a, compress=compress))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, a)


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(0, 4), min_size=1, max_size=4),
    dtype=st.sampled_from(["u1", "i1", "i2", "i4", "f4", "f8"]),
    seed=st.integers(0, 99),
)
def test_read_idx_round_trips_any_shape(tmp_path_factory, shape, dtype, seed):
    a = np.random.default_rng(seed).uniform(0, 100, shape).astype(dtype)
    path = _write_idx(tmp_path_factory.mktemp("idx") / "a-idx", a)
    out = data.read_idx(path)
    assert out.shape == tuple(shape)
    np.testing.assert_array_equal(out, a)


@pytest.fixture
def small_idx(tmp_path):
    rng = np.random.default_rng(1)
    return _write_idx(
        tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    )


@pytest.mark.parametrize(
    "corruption",
    [
        "empty",
        "bad_type",
        "bad_zero_bytes",
        "zero_ndim",
        "short_header",
        "truncated_data",
        "extra_data",
        "truncated_gzip",
        "garbled_gzip",
    ],
)
def test_read_idx_rejects_corrupt_files_naming_them(small_idx, tmp_path, corruption):
    raw = gzip.decompress(small_idx.read_bytes())
    bad = tmp_path / f"{corruption}-idx3-ubyte.gz"
    edits = {
        "empty": b"",
        "bad_type": raw[:2] + b"\x07" + raw[3:],
        "bad_zero_bytes": b"\x01" + raw[1:],
        "zero_ndim": raw[:3] + b"\x00" + raw[4:],
        "short_header": raw[:10],
        "truncated_data": raw[:-1],
        "extra_data": raw + b"\x00",
    }
    if corruption in edits:
        bad.write_bytes(gzip.compress(edits[corruption]))
    elif corruption == "truncated_gzip":
        gz = small_idx.read_bytes()
        bad.write_bytes(gz[: len(gz) // 2])
    else:
        gz = bytearray(small_idx.read_bytes())
        gz[len(gz) // 2 : len(gz) // 2 + 16] = bytes(16)
        bad.write_bytes(bytes(gz))
    with pytest.raises(DataError, match=bad.name) as e:
        data.read_idx(bad)
    assert "\n" not in str(e.value)


def test_read_idx_truncated_plain_file(small_idx, tmp_path):
    bad = tmp_path / "plain-idx3-ubyte"
    bad.write_bytes(gzip.decompress(small_idx.read_bytes())[:-100])
    with pytest.raises(DataError, match="plain-idx3-ubyte is truncated"):
        data.read_idx(bad)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.gz"):
        data.read_idx(tmp_path / "nope.gz")


def _fake_idx_set(folder, n_train=6, n_test=4, *, compress=True):
    rng = np.random.default_rng(2)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for k, a in arrays.items():
        stem = _datasets._IDX_FILES[k]
        _write_idx(folder / (f"{stem}.gz" if compress else stem), a, compress=compress)
    return arrays


@pytest.mark.parametrize("compress", [True, False])
def test_load_idx_set_from_a_data_dir(tmp_path, compress):
    arrays = _fake_idx_set(tmp_path / "mnist", compress=compress)
    ds = data.load("mnist", data_dir=tmp_path)
    np.testing.assert_array_equal(ds.train_images[..., 0], arrays["train_images"])
    np.testing.assert_array_equal(ds.test_labels, arrays["test_labels"])
    assert ds.train_images.shape == (6, 28, 28, 1)


def test_load_rejects_images_and_labels_of_different_lengths(tmp_path):
    _fake_idx_set(tmp_path / "mnist")
    _write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="4 images but .*3 labels"):
        data.load("mnist", data_dir=tmp_path)


def test_load_names_missing_files_of_an_incomplete_set(tmp_path):
    _fake_idx_set(tmp_path / "fashion_mnist")
    (tmp_path / "fashion_mnist" / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="incomplete: train-images-idx3-ubyte.gz missing"):
        data.load("fashion_mnist", data_dir=tmp_path)


def test_missing_data_set_names_both_options(tmp_path, monkeypatch):
    with pytest.raises(DataError) as e:
        data.load("mnist", data_dir=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "mnist") in msg and "train-images-idx3-ubyte.gz" in msg
    assert "tfds" in msg and "--data-dir" in msg and data.DATA_DIR_ENV in msg
    assert "\n" not in msg
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    with pytest.raises(DataError, match=f"--data-dir or set {data.DATA_DIR_ENV}"):
        data.load("fashion_mnist")


def test_unknown_name_and_bad_limit():
    with pytest.raises(DataError, match="unknown data set 'cifar'.*sprites"):
        data.load("cifar", data_dir=".")
    with pytest.raises(LatentJaxError, match="limit"):
        data.load("sprites", limit=0)


# tfds data source ----------------------------------------------------------------------------


def test_load_from_a_prepared_tfds_data_source(tmp_path):
    """Prepares a tiny array_record data set with a builder of Tensor features (no TensorFlow)."""
    tfds = pytest.importorskip("tensorflow_datasets")

    def example(i):
        return {"image": np.full((28, 28, 1), i, np.uint8), "label": i % 10}

    class Mnist(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version("3.0.1")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {
                        "image": tfds.features.Tensor(shape=(28, 28, 1), dtype=np.uint8),
                        "label": tfds.features.ClassLabel(num_classes=10),
                    }
                ),
            )

        def _split_generators(self, dl_manager):
            return {
                "train": self._generate_examples(range(12)),
                "test": self._generate_examples(range(100, 105)),
            }

        def _generate_examples(self, ids):
            for i in ids:
                yield i, example(i)

    Mnist(data_dir=str(tmp_path), file_format="array_record").download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path / "manual"))
    )
    assert (tmp_path / "mnist" / "3.0.1" / "dataset_info.json").is_file()

    ds = data.load("mnist", data_dir=tmp_path)  # no IDX files there: the tfds path
    assert ds.train_images.shape == (12, 28, 28, 1) and ds.train_images.dtype == np.uint8
    # tfds returns records in its own shuffled order: compare as sets of (pixel, label).
    got = sorted(zip(ds.train_images[:, 0, 0, 0].tolist(), ds.train_labels.tolist(), strict=True))
    assert got == [(i, i % 10) for i in range(12)]
    np.testing.assert_array_equal(ds.test_images[:, 5, 7, 0] % 10, ds.test_labels)
    assert len(data.load("mnist", tfds_data_dir=tmp_path, data_dir=tmp_path / "x", limit=3).train_images) == 3
    assert "tensorflow" not in sys.modules


# validate_images -----------------------------------------------------------------------------


def test_validate_images():
    ok = np.zeros((2, 4, 4, 1), np.float32)
    assert data.validate_images(ok) is ok
    assert data.validate_images(jax.numpy.ones((1, 3, 3, 3))).shape == (1, 3, 3, 3)
    data.validate_images(np.full((1, 2, 2, 1), 255, np.uint8))
    bad = ok.copy()
    bad[1, 2, 3, 0] = np.nan
    with pytest.raises(DataError, match=r"NaN.*\(1, 2, 3, 0\)"):
        data.validate_images(bad)
    with pytest.raises(DataError, match=r"shape \(n, height, width, channels\).*\(4, 4, 1\)"):
        data.validate_images(ok[0])
    with pytest.raises(DataError, match=r"\[0, 1\].*2"):
        data.validate_images(ok + 2)
    with pytest.raises(DataError, match="dtype int64"):
        data.validate_images(np.zeros((1, 2, 2, 1), np.int64))
    with pytest.raises(DataError, match="28 channels.*channels last"):
        data.validate_images(np.zeros((2, 1, 28, 28), np.uint8))
    with pytest.raises(DataError, match="empty"):
        data.validate_images(np.zeros((0, 2, 2, 1), np.uint8))


# Sprites -------------------------------------------------------------------------------------


def _factors(shape, *, scale=1.0, rotation=0.0, x=0.5, y=0.5):
    shape = np.atleast_1d(shape)
    full = lambda v: np.broadcast_to(np.asarray(v, np.float32), shape.shape)  # noqa: E731
    return {"shape": shape, "scale": full(scale), "rotation": full(rotation), "x": full(x), "y": full(y)}


def test_sprites_deterministic_and_in_range():
    x, f = data.sprites(num=500, size=32, seed=3)
    x2, f2 = data.sprites(num=500, size=32, seed=3)
    np.testing.assert_array_equal(x, x2)
    for k in data.SPRITE_FACTORS:
        np.testing.assert_array_equal(f[k], f2[k])
    x3, _ = data.sprites(num=500, size=32, seed=4)
    assert np.mean(x != x3) > 0.05
    assert x.shape == (500, 32, 32, 1) and x.dtype == np.uint8
    assert sorted(f) == sorted(data.SPRITE_FACTORS) and all(len(v) == 500 for v in f.values())
    assert set(np.unique(f["shape"])) == {0, 1, 2, 3}
    assert f["scale"].min() >= 0.6 and f["scale"].max() <= 1.0
    assert f["rotation"].min() >= 0 and f["rotation"].max() < 2 * np.pi
    for k in ("x", "y"):
        assert f[k].min() >= 0.3 and f[k].max() <= 0.7
    # Every sprite is whole: nothing on the border, and every image shows a shape.
    assert x[:, [0, -1], :].max() == 0 and x[:, :, [0, -1]].max() == 0
    assert (x.reshape(500, -1).max(axis=1) == 255).all()


def test_sprites_stay_whole_at_extreme_factors():
    corners = np.array([(x, y) for x in (0.3, 0.7) for y in (0.3, 0.7)], np.float32)
    rot = np.linspace(0, 2 * np.pi, 24, endpoint=False, dtype=np.float32)
    shape, c, r = np.meshgrid(np.arange(4), np.arange(4), rot, indexing="ij")
    imgs = data.render_sprites(
        _factors(shape.ravel(), rotation=r.ravel(), x=corners[c.ravel(), 0], y=corners[c.ravel(), 1]), size=32
    )
    assert imgs[:, [0, -1], :].max() == 0 and imgs[:, :, [0, -1]].max() == 0


@pytest.mark.parametrize(
    "shape, area",
    [
        (0, (2 * _datasets._SQUARE_HALF_SIDE) ** 2),
        (1, math.pi * _datasets._ELLIPSE_AXES[0] * _datasets._ELLIPSE_AXES[1]),
        (2, 3 * math.sqrt(3) / 4),  # equilateral triangle of circumradius 1
    ],
)
def test_sprite_area_matches_closed_form(shape, area):
    size, rot = 64, np.linspace(0, 2 * np.pi, 7, dtype=np.float32)
    imgs = data.render_sprites(_factors(np.full(7, shape), rotation=rot, x=0.47, y=0.52), size=size)
    radius = _datasets._RADIUS * size
    got = imgs.reshape(7, -1).sum(axis=1) / 255 / radius**2
    np.testing.assert_allclose(got, area, rtol=0.01)


def test_sprite_position_and_rotation_factors_mean_what_they_say():
    """Centroid = (x, y) (symmetric shapes); the ellipse's long axis points along `rotation`."""
    size = 64
    rot = np.array([0.3, 1.0, 2.0, 2.8], np.float32)
    f = _factors(
        np.array([1, 1, 0, 0]), rotation=rot, x=[0.4, 0.55, 0.6, 0.35], y=[0.45, 0.62, 0.38, 0.5], scale=0.8
    )
    w = data.render_sprites(f, size=size)[..., 0].astype(np.float64)
    rows, cols = np.mgrid[:size, :size] + 0.5
    m = w.sum(axis=(1, 2))
    cx, cy = (w * cols).sum(axis=(1, 2)) / m, (w * rows).sum(axis=(1, 2)) / m
    np.testing.assert_allclose(cx, f["x"] * size, atol=0.02)
    np.testing.assert_allclose(cy, f["y"] * size, atol=0.02)
    # Second moments of the ellipses: principal axis angle, measured with y pointing up.
    for i in (0, 1):
        du, dv = cols - cx[i], -(rows - cy[i])
        cov = np.array(
            [
                [(w[i] * du * du).sum(), (w[i] * du * dv).sum()],
                [(w[i] * du * dv).sum(), (w[i] * dv * dv).sum()],
            ]
        )
        evals, evecs = np.linalg.eigh(cov)
        angle = math.atan2(evecs[1, -1], evecs[0, -1]) % math.pi
        assert angle == pytest.approx(rot[i] % math.pi, abs=0.02)


def test_sprite_coverage_equals_supersampled_reference():
    """One signed-distance sample per pixel ~ averaging 8x8 hard samples per pixel."""
    _, f = data.sprites(num=64, size=32, seed=5)
    fast = data.render_sprites(f, size=32).astype(np.float64)
    ref = data.render_sprites(f, size=32, supersample=8).astype(np.float64)
    edge = (ref > 0) & (ref < 255)
    assert np.abs(fast - ref).mean() < 0.5  # grey levels, out of 255
    assert np.abs(fast - ref)[edge].mean() < 10.0  # on the anti-aliased edge pixels
    assert edge.mean() > 0.02  # there are grey edge pixels at all
    np.testing.assert_allclose(fast.sum(axis=(1, 2, 3)), ref.sum(axis=(1, 2, 3)), rtol=0.02)


def test_sprite_classes_differ_in_shape():
    imgs = data.render_sprites(_factors(np.arange(4), scale=1.0, rotation=0.4), size=32)
    flat = imgs.reshape(4, -1).astype(np.float64) / 255
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(flat[i] - flat[j]).sum() > 20, (i, j)  # > 20 pixels of difference


def test_render_sprites_rejects_bad_factors():
    with pytest.raises(DataError, match="miss rotation"):
        data.render_sprites({k: np.zeros(2) for k in ("shape", "scale", "x", "y")})
    with pytest.raises(DataError, match="shape must be 0..3"):
        data.render_sprites(_factors(np.array([4])))


def test_load_sprites_split():
    ds = data.load("sprites", seed=7, limit=300)
    x, f = data.sprites(num=20000, size=32, seed=7)
    assert ds.train_images.shape == (300, 32, 32, 1) and ds.test_images.shape == (300, 32, 32, 1)
    np.testing.assert_array_equal(ds.train_images, x[:300])
    np.testing.assert_array_equal(ds.test_images, x[18000:18300])
    np.testing.assert_array_equal(ds.train_labels, f["shape"][:300])
    np.testing.assert_array_equal(ds.factors["rotation"][1], f["rotation"][18000:18300])
    assert ds.label_names == ("square", "ellipse", "triangle", "heart")
    full = data.load("sprites")
    assert len(full.train_images) == 18000 and len(full.test_images) == 2000


@pytest.mark.slow
def test_sprites_20k_in_under_two_cpu_seconds():
    data.sprites(num=100)
    start = time.process_time()
    data.sprites(num=20000, size=32)
    assert time.process_time() - start < 2.0


# Batching ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, batch_size", [(10, 3), (12, 4), (7, 7), (5, 1)])
def test_batches_cover_each_index_once_in_permutation_order(n, batch_size):
    key = jax.random.key(3)
    x = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 1), np.uint8)
    y = np.arange(n) * 10
    order = data.permutation(key, n)
    np.testing.assert_array_equal(order, np.asarray(jax.random.permutation(key, n)))
    assert sorted(order.tolist()) == list(range(n))
    for drop_last in (True, False):
        got = list(data.batches(key, x, y, batch_size=batch_size, drop_last=drop_last))
        full = n - n % batch_size
        sizes = [len(b[0]) for b in got]
        expect = [batch_size] * (n // batch_size) + (
            [] if drop_last or n % batch_size == 0 else [n % batch_size]
        )
        assert sizes == expect
        seen = np.concatenate([b[0][:, 0, 0, 0] for b in got])
        np.testing.assert_array_equal(seen, order[: full if drop_last else n])
        assert len(set(seen.tolist())) == len(seen)
        for bx, by in got:
            assert bx.dtype == np.uint8 and isinstance(bx, np.ndarray)
            np.testing.assert_array_equal(by, bx[:, 0, 0, 0].astype(np.int64) * 10)


def test_batches_new_order_per_epoch_and_images_only():
    key, x = jax.random.key(0), np.arange(64, dtype=np.uint8)
    e0 = np.concatenate(list(data.batches(jax.random.fold_in(key, 0), x, batch_size=8)))
    e1 = np.concatenate(list(data.batches(jax.random.fold_in(key, 1), x, batch_size=8)))
    assert sorted(e0.tolist()) == sorted(e1.tolist()) == list(range(64))
    assert not np.array_equal(e0, e1)


def test_batches_rejects_bad_arguments_at_the_call():
    x, key = np.zeros((5, 2, 2, 1), np.uint8), jax.random.key(0)
    with pytest.raises(DataError, match="larger than the 5 examples"):
        data.batches(key, x, batch_size=8)
    assert len(list(data.batches(key, x, batch_size=8, drop_last=False))) == 1
    with pytest.raises(DataError, match="positive"):
        data.batches(key, x, batch_size=0)
    with pytest.raises(DataError, match="5 images but 4 labels"):
        data.batches(key, x, np.zeros(4), batch_size=2)


# Image folders and face sets -----------------------------------------------------------------


def _png(a):
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def test_image_folder_csv_with_header_zip_and_dir(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    names = [f"faces/{'ab'[i % 2]}/img{i}.png" for i in range(5)]
    with zipfile.ZipFile(tmp_path / "f.zip", "w") as z:
        # The zip lists the images in another order than the labels file.
        for n, a in zip(names[::-1], imgs[::-1], strict=True):
            z.writestr(n, _png(a))
    rows = ["path,smiling,age,who"] + [f"{n},{i % 2},{20.5 + i},p{i}" for i, n in enumerate(names)]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    x, attrs = data.image_folder(tmp_path / "f.zip", tmp_path / "labels.csv")
    np.testing.assert_array_equal(x, imgs)
    assert attrs["smiling"].dtype == np.int32 and attrs["smiling"].tolist() == [0, 1, 0, 1, 0]
    np.testing.assert_allclose(attrs["age"], 20.5 + np.arange(5))
    assert attrs["age"].dtype == np.float32 and set(attrs) == {"smiling", "age", "who"}
    assert attrs["who"].tolist() == ["p0", "p1", "p2", "p3", "p4"]
    # The same images as a directory.
    shutil.unpack_archive(tmp_path / "f.zip", tmp_path / "dir")
    x2, _ = data.image_folder(tmp_path / "dir", tmp_path / "labels.csv", columns=["age"])
    np.testing.assert_array_equal(x2, imgs)
    with pytest.raises(DataError, match="no column height"):
        data.image_folder(tmp_path / "dir", tmp_path / "labels.csv", columns=["height"])


def test_image_folder_numbered_headerless_table_and_errors(tmp_path):
    imgs = np.random.default_rng(1).integers(0, 256, (3, 4, 4), dtype=np.uint8)
    folder = tmp_path / "imgs"
    for i, a in enumerate(imgs):
        (folder / str(i % 2)).mkdir(parents=True, exist_ok=True)
        (folder / str(i % 2) / f"file{i + 1:04d}.png").write_bytes(_png(a))
    (tmp_path / "labels.txt").write_text("1 0.5 -0.25\n0 0.125 1\n1 -2 3.5\n")
    x, attrs = data.image_folder(folder, tmp_path / "labels.txt", columns=("smile", "yaw", "roll"))
    np.testing.assert_array_equal(x[..., 0], imgs)  # sorted by file number, grayscale kept
    assert x.shape == (3, 4, 4, 1) and attrs["smile"].tolist() == [1, 0, 1]
    np.testing.assert_array_equal(attrs["yaw"], [0.5, 0.125, -2])
    with pytest.raises(DataError, match="no header and 3 columns"):
        data.image_folder(folder, tmp_path / "labels.txt")
    (tmp_path / "short.txt").write_text("1 0.5 -0.25\n0 0.125 1\n")
    with pytest.raises(DataError, match="image number 3 has no line in .*short.txt"):
        data.image_folder(folder, tmp_path / "short.txt", columns=("a", "b", "c"))
    (folder / "1" / "file0004.png").write_bytes(_png(np.zeros((5, 5), np.uint8)))
    (tmp_path / "four.txt").write_text("1 0 0\n" * 4)
    with pytest.raises(DataError, match="file0004.png .* has shape"):
        data.image_folder(folder, tmp_path / "four.txt", columns=("a", "b", "c"))
    (folder / "1" / "file0004.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot decode image 1/file0004.png"):
        data.image_folder(folder, tmp_path / "four.txt", columns=("a", "b", "c"))
    with pytest.raises(DataError, match="not found"):
        data.image_folder(tmp_path / "missing.zip", tmp_path / "four.txt")


def test_missing_face_set_names_the_file(tmp_path):
    with pytest.raises(DataError, match=r"genki4k.*GENKI4K_faces_64x64_rgb.zip.*--data-dir"):
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
    real = _datasets._decode_all
    monkeypatch.setattr(
        _datasets, "_decode_all", lambda src, paths: decoded.extend(paths) or real(src, paths)
    )
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
