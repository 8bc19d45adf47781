"""What the static explorer page embeds: the decoder (MLP weights or a grid of decodes), the map, sprites.

Private to ``explore/_static.py``. Float arrays travel as base64 little-endian float32 (``f32``), images
as PNG data URLs; ``static_backend.js`` reads them back. Everything is JSON, embedded by ``json_script``
so that no string in it (a class name ``</script>``) can end the script element.
"""

from __future__ import annotations

import base64
import io
import json
import math

import jax.numpy as jnp
import numpy as np
from PIL import Image

from latentjax.app.explore._inverse import K, inverse_map
from latentjax.app.explore._session import to_uint8
from latentjax.learn import models

# The grid fallback decodes GRID x GRID positions over the map (24 x 24 = 576 images: about 0.5 MB
# of PNG for 28 x 28 images; the live server's decode is exact anywhere).
GRID = 24


def f32(x) -> str:
    """Base64 of ``x`` as little-endian float32 (the layout JS's ``Float32Array`` reads).

    Examples:
      >>> f32([1.0, -2.0])
      'AACAPwAAAMA='
    """
    return base64.b64encode(np.ascontiguousarray(x, dtype="<f4").tobytes()).decode("ascii")


def png_data_url(image: np.ndarray) -> str:
    """A PNG data URL of one uint8 image ``(h, w)`` or ``(h, w, 3|4)``."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def json_script(obj) -> str:
    r"""JSON safe inside ``<script type="application/json">``: ``<``, ``>`` and ``&`` as unicode escapes.

    Those characters only occur inside JSON strings, where the escapes mean the same characters, so
    ``JSON.parse`` reads the original text back and the HTML parser never sees ``</script>``.

    Examples:
      >>> json_script({"name": "</script>"})
      '{"name":"\\u003c/script\\u003e"}'
    """
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def sprite_sheet(images: np.ndarray) -> dict:
    """Images ``(n, h, w, c)`` uint8 tiled row-major, ``ceil(sqrt(n))`` per row, as one PNG data URL.

    Grey images stay one channel (a third of the RGB size). Returns ``{url, cols, h, w}``.
    """
    images = np.asarray(images, np.uint8)
    n, h, w, c = images.shape
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    sheet = np.zeros((rows * h, cols * w, c), np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        sheet[r * h : (r + 1) * h, q * w : (q + 1) * w] = images[i]
    sheet = sheet[..., 0] if c == 1 else sheet[..., :3] if c not in (3, 4) else sheet
    return {"url": png_data_url(sheet), "cols": cols, "h": h, "w": w}


def mlp_decoder(model: models.AutoEncoder) -> dict | None:
    """The MLP decoder's layers ``{mode: "mlp", activation, image_shape, layers: [{in, out, w, b}]}``.

    None for decoders the page cannot run exactly: conv, or a compute dtype other than float32 (a
    bfloat16 decoder's outputs differ from a float32 forward pass by more than 1e-4).
    """
    cfg = model.config
    if cfg.arch != "mlp" or jnp.dtype(cfg.compute_dtype) != jnp.float32:
        return None
    dec = model.decoder
    layers = []
    for lin in [*dec.hidden, dec.out]:
        w = np.asarray(lin.kernel[...], np.float32)
        b = np.asarray(lin.bias[...], np.float32)
        layers.append({"in": int(w.shape[0]), "out": int(w.shape[1]), "w": f32(w), "b": f32(b)})
    return {
        "mode": "mlp",
        "activation": cfg.activation,
        "image_shape": list(cfg.image_shape),
        "layers": layers,
    }


def grid_decoder(decode, points, latents, image_shape, *, size: int = GRID) -> dict:
    """Decodes of a ``size x size`` grid over the map's bounding box (cell centres), as a sprite sheet.

    Each cell's latent is ``inverse_map`` at its centre, the same inverse the live explorer uses;
    the page shows the nearest cell of a map position. ``decode`` maps ``(m, d)`` latents to ``(m, h, w,
    c)`` images in [0, 1] (``Session.decode``). Returns ``{mode: "grid", size, lo, hi,
    image_shape, sprite}`` (``lo``/``hi`` the box's corners).
    """
    points = np.asarray(points, np.float64)
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    centres = (np.arange(size) + 0.5) / size
    gx, gy = np.meshgrid(lo[0] + centres * span[0], lo[1] + centres * span[1])  # row r: y, col c: x
    xy = np.stack([gx.ravel(), gy.ravel()], axis=1)
    zs = inverse_map(points, latents, xy, k=K)
    images = to_uint8(decode(zs))
    return {
        "mode": "grid",
        "size": size,
        "lo": lo.tolist(),
        "hi": (lo + span).tolist(),
        "image_shape": list(image_shape),
        "sprite": sprite_sheet(images),
    }
