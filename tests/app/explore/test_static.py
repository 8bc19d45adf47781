"""The static explorer page (explore --static) in headless Chromium: its JS decoder equals models.decode,
its inverse equals _inverse.inverse_map, its paths and edits equal move's, it loads nothing from the
network, the conv fallback shows the precomputed grid decodes, and labels stay text."""

import base64
import io
import pathlib
import re

import browser as support_browser  # tests/support
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from latentjax import move
from latentjax.app.explore import _session
from latentjax.app.explore._inverse import inverse_map
from latentjax.app.explore._static import write_static
from latentjax.learn import models

EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def browser():
    support_browser.require()
    driver = support_browser.chrome(script_timeout=60)
    yield driver
    driver.quit()


def random_model(cfg, rng):
    """A model with numpy N(0, 1/fan_in) parameters: models.create's initialisers would compile one
    truncated normal per parameter shape (30 s for a small conv model on 2 busy cores)."""
    graphdef, params = nnx.split(nnx.eval_shape(lambda: models.create(jax.random.key(0), cfg)))

    def draw(p):
        fan_in = int(np.prod(p.shape[:-1])) if len(p.shape) > 1 else 10
        return jnp.asarray(rng.normal(size=p.shape) / np.sqrt(fan_in), p.dtype)

    return nnx.merge(graphdef, jax.tree.map(draw, params))


def make_session(tmp, cfg, *, n=200, seed=0):
    """A Session of an (untrained) model, random images and latents (nothing to compile), a linear map."""
    rng = np.random.default_rng(seed)
    model = random_model(cfg, rng)
    images = rng.integers(0, 256, (n, *cfg.image_shape), dtype=np.uint8)
    latents = rng.normal(size=(n, cfg.latent_dim)).astype(np.float32)
    points = (latents @ rng.normal(size=(cfg.latent_dim, 2)) * 3.0 + [5.0, -2.0]).astype(np.float32)
    return _session.Session(
        run_dir=pathlib.Path(tmp),
        model=model,
        config=cfg,
        dataset="random",
        images=images,
        labels=np.arange(n) % 3,
        label_names=("zero", EVIL, "two & <b>"),
        factors={},
        latents=latents,
        points=points,
        method="pca",
        _decode=_session._decode_batch,
    )


def call(driver, body, *args):
    """Runs async JS ``body`` (``A`` holds ``args``, ``B`` the page's backend), raising its errors."""
    script = (
        "const done = arguments[arguments.length - 1]; const A = arguments[0];"
        "const B = window.EXPLORE_BACKEND;"
        "(async () => { " + body + " })().then((v) => done({ok: v}), (e) => done({err: String(e)}));"
    )
    out = driver.execute_async_script(script, list(args))
    if "err" in out:
        raise AssertionError(out["err"])
    return out["ok"]


def open_page(driver, session, path):
    write_static(session, path)
    driver.get(path.as_uri())
    call(driver, "while (!(window.explorer && explorer.ready)) await new Promise((r) => setTimeout(r, 20));")
    return path.read_text()


def png_pixels(url):
    """uint8 (h, w, 3) of a PNG data URL."""
    raw = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))


@pytest.fixture(scope="module")
def mlp_page(browser, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("static")
    cfg = models.Config(image_shape=(8, 8, 1), latent_dim=3, hidden=16)
    session = make_session(tmp, cfg)
    html = open_page(browser, session, tmp / "mlp.html")
    return session, html


@pytest.mark.parametrize("activation", ["swish", "relu", "elu", "gelu"])
def test_js_forward_pass_equals_models_decode(browser, tmp_path, activation):
    cfg = models.Config(image_shape=(8, 8, 3), latent_dim=3, hidden=16, depth=2, activation=activation)
    session = make_session(tmp_path, cfg, n=30, seed=3)
    open_page(browser, session, tmp_path / "page.html")
    zs = np.asarray(jax.random.normal(jax.random.key(4), (16, 3)) * 2.0, np.float32)
    expected = np.asarray(jax.vmap(lambda z: models.decode(session.model, z))(zs))
    got = call(
        browser,
        "const spec = JSON.parse(document.getElementById('lj-static-data').textContent).decoder;"
        "const dec = LJStatic.mlpDecoder(spec); return A[0].map((z) => Array.from(dec.decode(z)));",
        zs.tolist(),
    )
    assert np.abs(np.asarray(got).reshape(expected.shape) - expected).max() < 1e-4
    assert np.abs(expected - 0.5).max() > 0.05  # not a flat output
    # the images the page shows (8-bit PNGs through a canvas): models.decode rounded, within 1/255
    shown = call(browser, "return (await B.decode({z: A[0]})).images;", zs[:4].tolist())
    for url, x in zip(shown, expected):
        rgb = png_pixels(url).astype(int)
        assert np.abs(rgb - _session.to_uint8(x).astype(int)).max() <= 1


def test_js_inverse_equals_inverse_map(browser, mlp_page):
    session, _ = mlp_page
    rng = np.random.default_rng(1)
    lo, hi = session.points.min(0), session.points.max(0)
    xy = np.concatenate(
        [
            rng.uniform(lo, hi, size=(40, 2)),  # inside the map
            session.points[:3].astype(np.float64),  # on map points: their latents exactly
            [hi + 10.0 * (hi - lo)],  # far outside
        ]
    )
    got = np.asarray(call(browser, "return (await B.decode({xy: A[0]})).z;", xy.tolist()))
    expected = inverse_map(session.points, session.latents, xy)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got[40:43].astype(np.float32), session.latents[:3])


def test_click_on_the_map_shows_the_decode_at_the_inverse(browser, mlp_page):
    session, _ = mlp_page
    r = call(
        browser,
        "const c = document.getElementById('map'); const before = explorer.decodes;"
        "c.dispatchEvent(new MouseEvent('mousedown', {clientX: c.getBoundingClientRect().left + 200,"
        " clientY: c.getBoundingClientRect().top + 300, bubbles: true}));"
        "c.dispatchEvent(new MouseEvent('mouseup', {bubbles: true}));"
        "while (explorer.decodes === before) await new Promise((r) => setTimeout(r, 20));"
        "return {xy: explorer.state.xy, src: document.getElementById('decoded').src};",
    )
    z = inverse_map(session.points, session.latents, np.asarray([r["xy"]]))[0]
    expected = _session.to_uint8(models.decode(session.model, z))[..., 0].astype(int)
    assert np.abs(png_pixels(r["src"])[..., 0].astype(int) - expected).max() <= 1


def test_paths_and_edits_equal_move(browser, mlp_page):
    session, _ = mlp_page
    z0, z1 = session.latents[0], session.latents[1]
    r = call(browser, "return await B.paths({z: A[0], num_points: 5});", [z0.tolist(), z1.tolist()])
    decode = lambda z: models.decode(session.model, z)  # noqa: E731
    for method in ("lerp", "slerp"):
        zs = np.asarray(move.path(np.stack([z0, z1]), num_points=5, method=method))
        np.testing.assert_allclose(r[method]["z"], zs, rtol=1e-5, atol=1e-5)
        d = move.path_diagnostics(decode, zs)._asdict()
        for k, v in d.items():
            assert r[method]["diagnostics"][k] == pytest.approx(float(v), rel=1e-3, abs=1e-5), (method, k)
    assert "server" in r["geodesic"]["unavailable"] and r["geodesic"]["images"] == []
    # the page's strips: lerp and slerp drawn, the geodesic's heading says it needs the server
    shown = call(
        browser,
        "explorer.state.waypoints = A[0].map((z) => ({xy: null, z}));"
        "const go = document.getElementById('paths-go'); go.disabled = false; go.click();"
        "while (!document.querySelector('[data-method=geodesic]'))"
        " await new Promise((r) => setTimeout(r, 20));"
        "return ['lerp', 'slerp', 'geodesic'].map((m) => [document.querySelector(`[data-method=${m}] h3`)"
        ".textContent, document.querySelectorAll(`[data-method=${m}] img`).length]);",
        [z0.tolist(), z1.tolist()],
    )
    assert shown[0] == ["lerp", 9] and shown[1] == ["slerp", 9]
    assert "geodesics need the server" in shown[2][0] and shown[2][1] == 0
    nb = call(browser, "return await B.neighbors({index: 7, k: 5});")
    d = np.linalg.norm(session.latents.astype(np.float64) - session.latents[7], axis=1)
    assert nb["indices"] == np.argsort(d, kind="stable")[:5].tolist()
    np.testing.assert_allclose(nb["distances"], np.sort(d)[:5], atol=1e-6)
    edits = [{"kind": "class", "source": 0, "target": 2, "strength": 0.7}]
    e = call(browser, "return await B.edit({index: 5, edits: A[0]});", edits)
    v = move.class_vector(session.latents, session.labels, source=0, target=2)
    np.testing.assert_allclose(e["z"][0], np.asarray(move.apply(session.latents[5], v, 0.7)), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(e["base"][0], np.float32), session.latents[5])


def test_the_page_is_self_contained(browser, mlp_page):
    _, html = mlp_page
    assert not re.findall(r"https?://", html)
    assert not re.findall(r"""(?:src|href)\s*=\s*["'](?!data:|blob:|#)""", html)
    assert "Content-Security-Policy" in html
    entries = browser.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
    assert all(e.startswith(("data:", "blob:")) for e in entries), entries
    note = browser.find_element("id", "lj-static-note")
    assert note.get_attribute("data-mode") == "mlp" and "Geodesics" in note.text


def test_labels_are_text(browser, mlp_page):
    from selenium.common.exceptions import NoAlertPresentException

    legend = browser.find_element("id", "legend").text
    assert EVIL in legend and "two & <b>" in legend
    assert browser.execute_script("return document.querySelectorAll('script').length") == 3
    assert browser.execute_script("return document.querySelectorAll('#legend b').length") == 0
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018


def test_conv_decoder_falls_back_to_grid_decodes(browser, tmp_path):
    cfg = models.Config(arch="conv", image_shape=(8, 8, 1), latent_dim=3, hidden=16, channels=4)
    session = make_session(tmp_path, cfg, n=60, seed=5)
    open_page(browser, session, tmp_path / "conv.html")
    note = browser.find_element("id", "lj-static-note")
    assert note.get_attribute("data-mode") == "grid" and "24 x 24" in note.text
    g = call(browser, "return JSON.parse(document.getElementById('lj-static-data').textContent).decoder;")
    lo, hi, size = np.asarray(g["lo"]), np.asarray(g["hi"]), g["size"]
    cells = [(0, 0), (5, 17), (23, 23)]  # (column, row)
    centres = np.asarray([lo + (np.asarray(c) + 0.5) / size * (hi - lo) for c in cells])
    # off-centre positions inside the same cells show the same decode
    xy = centres + 0.3 / size * (hi - lo)
    r = call(browser, "return await B.decode({xy: A[0]});", xy.tolist())
    expected = _session.to_uint8(session.decode(inverse_map(session.points, session.latents, centres)))
    for url, x in zip(r["images"], expected):
        np.testing.assert_array_equal(png_pixels(url)[..., 0], x[..., 0])
    np.testing.assert_allclose(r["z"], inverse_map(session.points, session.latents, xy), atol=1e-6)
    with pytest.raises(AssertionError, match="needs the server"):
        call(browser, "return await B.decode({z: A[0]});", [session.latents[0].tolist()])
