"""Image folders: zips and directories, header and numbered tables, and their errors."""

import io
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from latentjax import data
from latentjax.errors import DataError


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
