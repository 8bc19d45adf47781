"""TensorBoard projector files round-trip; the HTML viewer renders in headless Chromium."""

import json
import math
import pathlib
import re
import subprocess

import numpy as np
import pytest
from PIL import Image

from latentjax.errors import InputError, LatentJaxError
from latentjax.look import export

CHROMIUM = pathlib.Path("/usr/bin/chromium")
XSS = "<script>alert(1)</script>"


def _read_pbtxt(path):
    text = pathlib.Path(path).read_text()
    fields = {}
    for key, value in re.findall(r"(\w+):\s*(\"[^\"]*\"|\d+)", text):
        fields.setdefault(key, []).append(json.loads(value))
    return text, fields


@pytest.mark.parametrize("n", [1, 7, 30])
def test_projector_round_trip_tsv(tmp_path, n):
    rng = np.random.default_rng(n)
    v = rng.normal(size=(n, 5)).astype(np.float32)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = [f"c{i % 3}" for i in range(n)]
    cfg = export.projector(v, tmp_path, metadata=labels, images=images, tensor_name="z")
    _, f = _read_pbtxt(cfg)
    assert f["tensor_name"] == ["z"] and f["tensor_path"] == ["tensors.tsv"]
    back = np.loadtxt(tmp_path / "tensors.tsv", delimiter="\t", ndmin=2)
    np.testing.assert_allclose(back, v, rtol=1e-6, atol=1e-7)
    # One column: no header, exactly n lines.
    lines = (tmp_path / "metadata.tsv").read_text().splitlines()
    assert lines == labels
    # Square sprite of ceil(sqrt(n)) cells per side, thumbnails in row-major order.
    side = math.ceil(math.sqrt(n))
    sheet = np.asarray(Image.open(tmp_path / f["image_path"][0]))
    assert sheet.shape[:2] == (side * 28, side * 28)
    assert f["single_image_dim"] == [28, 28]
    r, c = divmod(n - 1, side)
    np.testing.assert_array_equal(sheet[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28, 0], images[n - 1])


def test_projector_binary_and_header_rule(tmp_path):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(12, 3)).astype(np.float32)
    meta = {"label": np.arange(12) % 4, "name": [f"item\t{i}\nx" for i in range(12)]}
    cfg = export.projector(v, tmp_path, metadata=meta, binary=True)
    _, f = _read_pbtxt(cfg)
    assert f["tensor_path"] == ["tensors.bytes"] and f["tensor_shape"] == [12, 3]
    np.testing.assert_array_equal(np.fromfile(tmp_path / "tensors.bytes", "<f4").reshape(12, 3), v)
    rows = [r.split("\t") for r in (tmp_path / "metadata.tsv").read_text().splitlines()]
    # Several columns: a header row, then n rows; tabs/newlines in values became spaces.
    assert rows[0] == ["label", "name"] and len(rows) == 13
    assert rows[5] == ["0", "item 4 x"]
    assert "sprite" not in cfg.read_text()


def test_sprite_shrinks_to_8192():
    sheet, (th, tw) = export.sprite(np.zeros((3, 64, 64, 3), np.uint8), max_size=100)
    assert (th, tw) == (50, 50) and sheet.shape == (100, 100, 3)
    # 70,000 Fashion-MNIST thumbnails: 265 cells per side; 28 px cells (7,420 px) fit.
    side = math.ceil(math.sqrt(70_000))
    assert side * 28 <= export.MAX_SPRITE_SIZE < side * 32


def test_projector_errors(tmp_path):
    with pytest.raises(InputError, match="metadata column"):
        export.projector(np.zeros((3, 2)), tmp_path, metadata=["a"])
    with pytest.raises(InputError, match="vectors"):
        export.projector(np.zeros(3), tmp_path)
    with pytest.raises(InputError, match="images"):
        export.projector(np.zeros((3, 2)), tmp_path, images=np.zeros((2, 8, 8)))
    with pytest.raises(LatentJaxError, match="export.projector: images must lie in"):
        export.projector(np.zeros((3, 2)), tmp_path, images=np.full((3, 8, 8), 2.0))
    with pytest.raises(InputError, match="labels"):
        export.html_viewer(np.zeros((3, 2)), tmp_path / "v.html", labels=[0, 1])


def _viewer(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    labels = rng.integers(0, 3, n)
    y = rng.normal(size=(n, 2)) + 4.0 * np.stack([labels, labels % 2], axis=1)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    return export.html_viewer(
        y,
        tmp_path / "viewer.html",
        labels=labels,
        label_names=["shirt", XSS, "bag & <b>boots</b>"],
        images=images,
        title="</title><script>alert(2)</script>",
    )


def test_html_viewer_is_self_contained_and_escaped(tmp_path):
    page = _viewer(tmp_path).read_text()
    assert not re.search(r"<script[^>]*\bsrc=|<link\b|https?://", page)
    assert XSS not in page and "alert(2)</script>" not in page
    data = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S).group(1)
    decoded = json.loads(data)
    assert decoded["names"][1] == XSS and len(decoded["x"]) == 300
    assert decoded["sprite"]["uri"].startswith("data:image/png;base64,")


def _chromium(tmp_path, *args):
    if not CHROMIUM.exists():
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=800,600",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_html_viewer_renders_in_chromium(tmp_path):
    page = _viewer(tmp_path)
    shot = tmp_path / "shot.png"
    _chromium(tmp_path, f"--screenshot={shot}", page.resolve().as_uri())
    assert shot.exists()
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    # The three label colours of the scatter appear, each on many pixels.
    for hex_colour in ["#1f77b4", "#ff7f0e", "#2ca02c"]:
        rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
        assert counts[np.all(colours == rgb, axis=1)].sum() > 30, hex_colour
    assert len(colours) > 10


def test_html_viewer_label_is_text_in_dom(tmp_path):
    page = _viewer(tmp_path)
    dom = _chromium(tmp_path, "--dump-dom", page.resolve().as_uri()).stdout
    assert 'id="legend"' in dom
    legend = re.search(r'<div id="legend">(.*?)</div><div id="tip">', dom, re.S).group(1)
    # The label became a text node (serialised escaped), never an element.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in legend
    assert "<script>alert(1)" not in dom and "<b>boots</b>" not in dom
    assert "bag &amp; &lt;b&gt;boots&lt;/b&gt;" in legend
