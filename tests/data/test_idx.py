"""IDX files against the published facts of the real ones, round trips, corrupt copies; prepared tfds."""

import gzip
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latentjax import data
from latentjax.data import _idx
from latentjax.errors import DataError

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
        stem = _idx._IDX_FILES[k]
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


def test_a_prepared_tfds_data_set_without_tfds_names_the_extra(tmp_path, monkeypatch):
    version = tmp_path / "mnist" / "3.0.1"
    version.mkdir(parents=True)
    (version / "dataset_info.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # `import` raises ImportError
    with pytest.raises(DataError, match=r"tensorflow-datasets.*latentjax\[tfds\]") as e:
        data.load("mnist", data_dir=tmp_path)
    assert str(version) in str(e.value) and "\n" not in str(e.value)
