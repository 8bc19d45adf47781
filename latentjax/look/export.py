"""Embeddings to files: the TensorBoard projector format and a self-contained HTML viewer.

Both take plain arrays (vectors or a 2-D embedding, labels, optional images) and write files;
nothing here needs TensorFlow or a network connection to view.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image

from latentjax import data
from latentjax.errors import InputError

# TensorBoard's projector refuses sprites larger than 8192 x 8192 pixels.
MAX_SPRITE_SIZE = 8192


def _images_uint8(images, n: int | None, where: str) -> np.ndarray:
    """``(n, h, w, 3)`` uint8 from ``(n, h, w[, 1|3|4])`` uint8 or float images in [0, 1]."""
    x = np.asarray(images)
    x = data.validate_images(x[..., None] if x.ndim == 3 else x, what=f"export.{where}: images")
    if (n is not None and x.shape[0] != n) or x.shape[-1] == 2:
        raise InputError(f"export.{where}: images must be ({n or 'n'}, h, w[, 1|3|4]), got shape {x.shape}")
    if x.dtype != np.uint8:
        x = np.round(np.clip(x.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return x[..., :3]


def sprite(images, *, max_size: int = MAX_SPRITE_SIZE) -> tuple[np.ndarray, tuple[int, int]]:
    """Tiles images row-major into a square sprite of ``ceil(sqrt(n))`` cells per side.

    Empty cells are black. Thumbnails are shrunk (never enlarged) so the sprite fits in
    ``max_size`` pixels per side.

    Args:
      images: ``(n, h, w[, c])`` uint8 or float in [0, 1].
      max_size: largest sprite side in pixels.

    Returns:
      ``(sprite (S, S', 3) uint8, (thumb_h, thumb_w))``.

    Examples:
      >>> s, thumb = sprite(np.zeros((5, 28, 28), np.uint8))
      >>> s.shape, thumb
      ((84, 84, 3), (28, 28))
    """
    x = _images_uint8(images, None, "sprite")
    n, h, w, _ = x.shape
    side = math.ceil(math.sqrt(n))
    scale = min(1.0, max_size / (side * h), max_size / (side * w))
    th, tw = max(1, int(h * scale)), max(1, int(w * scale))
    if (th, tw) != (h, w):
        x = np.stack([np.asarray(Image.fromarray(im).resize((tw, th), Image.BILINEAR)) for im in x])
    out = np.zeros((side * th, side * tw, 3), np.uint8)
    for i in range(n):
        r, c = divmod(i, side)
        out[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = x[i]
    return out, (th, tw)


def _clean(value) -> str:
    # TensorBoard splits metadata on tabs and lines, with no escape syntax: replace them.
    return str(value).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _columns(metadata, n: int) -> dict[str, list]:
    if isinstance(metadata, Mapping):
        cols = {str(k): list(np.asarray(v).tolist()) for k, v in metadata.items()}
    else:
        cols = {"label": list(np.asarray(metadata).tolist())}
    for name, col in cols.items():
        if len(col) != n:
            raise InputError(
                f"export.projector: metadata column {name!r} has {len(col)} values for {n} vectors"
            )
    return cols


def projector(
    vectors,
    out_dir: str | os.PathLike,
    *,
    metadata: Mapping[str, Sequence] | Sequence | None = None,
    images=None,
    tensor_name: str = "latents",
    binary: bool = False,
) -> pathlib.Path:
    """Writes an embedding in the TensorBoard projector format.

    Files: ``tensors.tsv`` (or ``tensors.bytes``, little-endian float32, with ``tensor_shape``
    in the config), ``metadata.tsv`` (one column: no header; several: a header row, as
    TensorBoard requires), ``sprite.png`` and ``projector_config.pbtxt``. Point TensorBoard's
    ``--logdir`` at ``out_dir``, or load the files in https://projector.tensorflow.org.

    Args:
      vectors: ``(n, d)`` vectors.
      out_dir: folder to write (created).
      metadata: one sequence (a single unnamed column) or a dict of named columns, each of
        length ``n``; tabs and newlines in values become spaces.
      images: optional ``(n, h, w[, c])`` thumbnails for the sprite.
      tensor_name: the name shown by the projector.
      binary: write raw float32 instead of TSV (smaller, faster to load).

    Returns:
      The path of ``projector_config.pbtxt``.

    Examples:
      >>> import tempfile
      >>> p = projector(np.eye(3), tempfile.mkdtemp(), metadata=["a", "b", "c"])
      >>> p.name
      'projector_config.pbtxt'

    References:
      TensorBoard's ``projector_config.proto`` and "Visualizing Data using the Embedding
      Projector in TensorBoard" (tensorflow.org/tensorboard/tensorboard_projector_plugin).
    """
    out = pathlib.Path(out_dir)
    v = np.asarray(vectors, np.float32)
    if v.ndim != 2 or v.shape[0] < 1:
        raise InputError(f"export.projector: vectors must be (n, d), got shape {v.shape}")
    n, d = v.shape
    out.mkdir(parents=True, exist_ok=True)
    lines = ["embeddings {", f"  tensor_name: {json.dumps(tensor_name)}"]
    if binary:
        v.astype("<f4").tofile(out / "tensors.bytes")
        lines += ['  tensor_path: "tensors.bytes"', f"  tensor_shape: {n}", f"  tensor_shape: {d}"]
    else:
        np.savetxt(out / "tensors.tsv", v, delimiter="\t", fmt="%.7g")
        lines.append('  tensor_path: "tensors.tsv"')
    if metadata is not None:
        cols = _columns(metadata, n)
        rows = [[_clean(c[i]) for c in cols.values()] for i in range(n)]
        if len(cols) > 1:
            rows.insert(0, [_clean(k) for k in cols])
        (out / "metadata.tsv").write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
        lines.append('  metadata_path: "metadata.tsv"')
    if images is not None:
        sheet, (th, tw) = sprite(_images_uint8(images, n, "projector"))
        Image.fromarray(sheet).save(out / "sprite.png")
        # single_image_dim is [width, height].
        lines += [
            "  sprite {",
            '    image_path: "sprite.png"',
            f"    single_image_dim: {tw}",
            f"    single_image_dim: {th}",
            "  }",
        ]
    lines.append("}")
    path = out / "projector_config.pbtxt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


_PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
]

_VIEWER = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
html,body{margin:0;height:100%;font-family:system-ui,Helvetica,Arial,sans-serif;background:#fff;color:#222}
#bar{position:absolute;top:0;left:0;right:0;padding:6px 10px;background:rgba(255,255,255,.9);
border-bottom:1px solid #ddd;font-size:14px;z-index:2}
#legend{position:absolute;top:36px;right:8px;background:rgba(255,255,255,.92);border:1px solid #ddd;
padding:6px 8px;font-size:12px;max-height:80%;overflow:auto;z-index:2}
#legend div{white-space:nowrap}
#legend span{display:inline-block;width:10px;height:10px;margin-right:5px;border-radius:5px}
#tip{position:absolute;display:none;pointer-events:none;background:#fff;border:1px solid #999;padding:4px;
font-size:12px;z-index:3;box-shadow:0 1px 4px rgba(0,0,0,.3)}
#tip canvas{display:block;image-rendering:pixelated}
canvas#plot{display:block;width:100%;height:100%;cursor:grab}
</style></head><body>
<div id="bar"><b id="title"></b> <span id="info" style="color:#777"></span></div>
<div id="legend"></div><div id="tip"><canvas id="thumb"></canvas><div id="tiplabel"></div></div>
<canvas id="plot"></canvas>
<script type="application/json" id="data">__DATA__</script>
<script>
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("data").textContent);
  var n = D.x.length, plot = document.getElementById("plot"), ctx = plot.getContext("2d");
  document.getElementById("title").textContent = D.title;
  document.getElementById("info").textContent = n + " points - drag to pan, wheel to zoom, hover for details";
  var legend = document.getElementById("legend");
  D.names.forEach(function (name, i) {
    var row = document.createElement("div"), dot = document.createElement("span");
    dot.style.background = D.colors[i]; row.appendChild(dot);
    row.appendChild(document.createTextNode(name)); legend.appendChild(row);
  });
  var xmin = Infinity, xmax = -Infinity, ymin = Infinity, ymax = -Infinity;
  for (var j = 0; j < n; j++) {
    xmin = Math.min(xmin, D.x[j]); xmax = Math.max(xmax, D.x[j]);
    ymin = Math.min(ymin, D.y[j]); ymax = Math.max(ymax, D.y[j]);
  }
  var view = {s: 1, tx: 0, ty: 0}, W = 0, H = 0, dpr = window.devicePixelRatio || 1;
  function fit() {
    W = plot.clientWidth; H = plot.clientHeight;
    plot.width = W * dpr; plot.height = H * dpr; ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    var pad = 40, sx = (W - 2 * pad) / ((xmax - xmin) || 1), sy = (H - 2 * pad - 30) / ((ymax - ymin) || 1);
    view.s = Math.min(sx, sy);
    view.tx = W / 2 - view.s * (xmin + xmax) / 2; view.ty = (H + 30) / 2 + view.s * (ymin + ymax) / 2;
  }
  function px(i) { return view.tx + view.s * D.x[i]; }
  function py(i) { return view.ty - view.s * D.y[i]; }
  function draw() {
    ctx.clearRect(0, 0, W, H);
    var r = Math.max(1.5, Math.min(4, 600 / Math.sqrt(n)));
    for (var i = 0; i < n; i++) {
      ctx.fillStyle = D.colors[D.c[i]];
      ctx.beginPath(); ctx.arc(px(i), py(i), r, 0, 6.2832); ctx.fill();
    }
  }
  var sprite = null;
  if (D.sprite) { sprite = new Image(); sprite.src = D.sprite.uri; }
  var tip = document.getElementById("tip"), thumb = document.getElementById("thumb");
  var tipLabel = document.getElementById("tiplabel");
  function nearest(mx, my) {
    var best = -1, bd = 100;
    for (var i = 0; i < n; i++) {
      var dx = px(i) - mx, dy = py(i) - my, d = dx * dx + dy * dy;
      if (d < bd) { bd = d; best = i; }
    }
    return best;
  }
  function hover(mx, my) {
    var i = nearest(mx, my);
    if (i < 0) { tip.style.display = "none"; return; }
    tipLabel.textContent = D.names[D.c[i]] + " (#" + i + ")";
    if (sprite && sprite.complete) {
      var S = D.sprite, k = 3, c = i % S.cols, r = Math.floor(i / S.cols);
      thumb.width = S.w * k; thumb.height = S.h * k;
      var t = thumb.getContext("2d"); t.imageSmoothingEnabled = false;
      t.drawImage(sprite, c * S.w, r * S.h, S.w, S.h, 0, 0, S.w * k, S.h * k);
      thumb.style.display = "block";
    } else { thumb.style.display = "none"; }
    tip.style.display = "block";
    tip.style.left = Math.min(mx + 14, W - 120) + "px"; tip.style.top = Math.min(my + 14, H - 140) + "px";
  }
  var drag = null;
  plot.addEventListener("mousedown", function (e) {
    drag = {x: e.clientX, y: e.clientY}; plot.style.cursor = "grabbing";
  });
  window.addEventListener("mouseup", function () { drag = null; plot.style.cursor = "grab"; });
  window.addEventListener("mousemove", function (e) {
    if (drag) {
      view.tx += e.clientX - drag.x; view.ty += e.clientY - drag.y;
      drag = {x: e.clientX, y: e.clientY}; tip.style.display = "none"; draw();
    } else { hover(e.clientX, e.clientY); }
  });
  plot.addEventListener("wheel", function (e) {
    e.preventDefault();
    var f = Math.exp(-e.deltaY * 0.0015), mx = e.clientX, my = e.clientY;
    view.tx = mx - (mx - view.tx) * f; view.ty = my - (my - view.ty) * f; view.s *= f; draw();
  }, {passive: false});
  window.addEventListener("resize", function () { fit(); draw(); });
  fit(); draw();
})();
</script></body></html>
"""


def _json_for_script(obj) -> str:
    # Inside <script> only "</" (and "<!--") can end the block: escape every "<" (and, for good
    # measure, ">" and "&") as JSON unicode escapes; JSON.parse restores them.
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return (
        s.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _png_data_uri(image: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def html_viewer(
    y,
    path: str | os.PathLike,
    *,
    labels,
    label_names: Sequence[str] | None = None,
    images=None,
    title: str = "latentjax embedding",
) -> pathlib.Path:
    r"""Writes ONE self-contained HTML file: a canvas scatter of a 2-D embedding.

    Drag pans, the wheel zooms about the cursor, hovering shows the nearest point's image and
    label. No external scripts, styles or fonts: the data sits in a
    ``<script type="application/json">`` block (``<`` escaped as ``\u003c``), is read with
    ``JSON.parse`` and every string reaches the page through ``textContent``, so labels such
    as ``<script>...`` show as text. Images travel as one base64 PNG sprite.

    Args:
      y: ``(n, 2)`` embedding.
      path: the ``.html`` file to write (parent folders are created).
      labels: ``(n,)`` labels (ints index ``label_names``; anything else is named by its text).
      label_names: names of the integer labels.
      images: optional ``(n, h, w[, c])`` images shown on hover.
      title: page title.

    Returns:
      The path written.

    Examples:
      >>> import tempfile, os
      >>> p = html_viewer(np.zeros((3, 2)), os.path.join(tempfile.mkdtemp(), "v.html"),
      ...                 labels=[0, 1, 1], label_names=["a", "b"])
      >>> "<script src" in p.read_text()
      False
    """
    y = np.asarray(y, np.float64)
    if y.ndim != 2 or y.shape[1] != 2:
        raise InputError(f"export.html_viewer: y must be (n, 2), got shape {y.shape}")
    n = y.shape[0]
    lab = np.asarray(labels)
    if lab.shape != (n,):
        raise InputError(f"export.html_viewer: labels must have shape ({n},), got {lab.shape}")
    if not np.all(np.isfinite(y)):
        raise InputError("export.html_viewer: y contains NaN or infinite values")
    if np.issubdtype(lab.dtype, np.integer) and label_names is not None:
        names = [str(s) for s in label_names]
        if n and (lab.min() < 0 or lab.max() >= len(names)):
            raise InputError(f"export.html_viewer: labels must lie in [0, {len(names)}) to index label_names")
        codes = lab.astype(np.int64)
    else:
        names, codes = np.unique(lab.astype(str), return_inverse=True)
        names = [str(s) for s in names]
    data = {
        "title": str(title),
        "x": np.round(y[:, 0], 5).tolist(),
        "y": np.round(y[:, 1], 5).tolist(),
        "c": np.asarray(codes).astype(int).tolist(),
        "names": names,
        "colors": [_PALETTE[i % len(_PALETTE)] for i in range(len(names))],
        "sprite": None,
    }
    if images is not None:
        sheet, (th, tw) = sprite(_images_uint8(images, n, "html_viewer"))
        data["sprite"] = {"uri": _png_data_uri(sheet), "cols": math.ceil(math.sqrt(n)), "w": tw, "h": th}
    # Split on the markers (not str.replace) so no title or label can inject into the other slot.
    head, rest = _VIEWER.split("__TITLE__")
    middle, tail = rest.split("__DATA__")
    page = head + html.escape(str(title)) + middle + _json_for_script(data) + tail
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
