"""``latentjax explore RUN --static out.html``: the explorer as one self-contained HTML file.

The live page (``page.html``, ``explore.css``, ``explore.js``) is inlined with ``static_backend.js``,
which stands in for the server: the map, labels, names and thumbnails (one PNG sprite sheet), the
latents and the 2-D -> latent inverse of `_inverse` (the same k = 8 inverse-distance weighting) are in
the file. An MLP decoder (float32) decodes in the page: its weights are embedded (base64 float32) and
the forward pass runs in JavaScript, equal to ``models.decode`` to 1e-4, so paths (lerp, slerp), class
and factor edits and traversals all work offline. Any other decoder (conv, bfloat16) falls back to the
decodes of a 24 x 24 grid over the map, computed here: a map position shows its nearest grid cell, and
what decodes other latents says it needs the server; so do geodesics and GIF strips. A
Content-Security-Policy forbids every network request, so the file works (and stays private) offline.
"""

from __future__ import annotations

import html
import os
import pathlib
import re
from importlib import resources

from latentjax.app.explore import _api, _session, _static_data
from latentjax.app.explore._inverse import K
from latentjax.errors import InputError

# No network: scripts and styles only inline, images only data: and blob: URLs, no fetch/XHR.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; base-uri 'none'; form-action 'none'"
)

NOTES = {
    "mlp": "Static page: the MLP decoder runs in this page (weights embedded), so every position, path "
    "and edit decodes offline. Geodesics and GIF strips need the server: latentjax explore RUN.",
    "grid": "Static page: this decoder cannot run in the page, so a map position shows the nearest of "
    "{size} x {size} decodes computed over the map; paths, edits and traversals need the server: "
    "latentjax explore RUN.",
}


def _asset(name: str) -> str:
    return resources.files("latentjax.app.explore").joinpath(name).read_text(encoding="utf-8")


def _inline_script(code: str) -> str:
    # "</script" inside the code would end the element early; "<\/script" means the same in JS strings.
    return "<script>\n" + re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE) + "\n</script>"


def payload(session: _session.Session) -> dict:
    """Everything ``static_backend.js`` reads: ``info`` (as ``GET /api/info``), the map, the decoder.

    Args:
      session: the loaded run (`load`).

    Returns:
      A JSON-able dict: ``info``, ``points`` and ``latents`` (base64 float32, exact: the inverse
      uses them), ``k``, ``decoder`` (``mode`` ``"mlp"`` or ``"grid"``), ``thumbs`` (a sprite sheet),
      ``note`` (the mode, in words).
    """
    decoder = _static_data.mlp_decoder(session.model)
    if decoder is None:
        decoder = _static_data.grid_decoder(
            session.decode, session.points, session.latents, session.config.image_shape
        )
    info = _api.info(session)
    # The page inverts positions in JavaScript by inverse-distance weighting, whatever the server uses.
    info["inverse"] = f"inverse-distance weighting of the {K} nearest map points' latents"
    return {
        "info": info,
        "points": _static_data.f32(session.points),
        "latents": _static_data.f32(session.latents),
        "k": K,
        "decoder": decoder,
        "thumbs": _static_data.sprite_sheet(session.images),
        "note": NOTES[decoder["mode"]].format(size=decoder.get("size")),
    }


def render(session: _session.Session) -> str:
    """The self-contained page of ``session`` as one HTML string (see `write_static`)."""
    page = _asset("page.html")
    data = payload(session)
    css = "<style>\n" + _asset("explore.css").replace("</style", "<\\/style") + "\n</style>"
    scripts = "\n".join(
        [
            '<script type="application/json" id="lj-static-data">'
            + _static_data.json_script(data)
            + "</script>",
            _inline_script(_asset("static_backend.js")),
            _inline_script(_asset("explore.js")),
        ]
    )
    page, n_css = re.subn(r'<link[^>]*href="/?explore\.css"[^>]*>', lambda _: css, page)
    page, n_js = re.subn(r'<script[^>]*src="/?explore\.js"[^>]*>\s*</script>', lambda _: scripts, page)
    if n_css != 1 or n_js != 1:
        raise InputError("explore.write_static: page.html must link explore.css and explore.js once each")
    csp = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
    page, n_head = re.subn(r"<head>", lambda _: "<head>\n" + csp, page, count=1, flags=re.IGNORECASE)
    banner = (
        f'<div id="lj-static-note" data-mode="{data["decoder"]["mode"]}" style="padding:4px 8px;'
        f'background:#fff6d5;border-bottom:1px solid #e0c060;font:13px sans-serif">'
        f"{html.escape(data['note'])}</div>"
    )
    page, n_body = re.subn(
        r"<body[^>]*>", lambda m: m.group(0) + "\n" + banner, page, count=1, flags=re.IGNORECASE
    )
    if n_head != 1 or n_body != 1:
        raise InputError("explore.write_static: page.html must have a <head> and a <body>")
    return page


def write_static(session: _session.Session, path: str | os.PathLike) -> pathlib.Path:
    """Writes the explorer of ``session`` as one self-contained HTML file (no network, no server).

    MLP decoders (float32) decode in the page (weights embedded, the forward pass in JavaScript,
    equal to ``models.decode`` to 1e-4); other decoders show the nearest of a 24 x 24 grid of
    precomputed decodes over the map. The page says which mode it is in.

    Args:
      session: the loaded run (`load`).
      path: the ``.html`` file to write (its folder is created).

    Returns:
      The path written.

    Examples:
      >>> write_static(load("runs/vae", method="umap"), "explore.html")  # doctest: +SKIP
      PosixPath('explore.html')
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(session), encoding="utf-8")
    os.replace(tmp, path)
    return path
