"""The static explorer page (explore --static) in headless Chromium: its JS decoder equals models.decode,
its inverse equals _inverse.inverse_map, it loads nothing from the network, the conv fallback, escaping."""

import pathlib
import shutil

import jax
import numpy as np
import pytest

from latentjax.app.explore import _static_data
from latentjax.learn import models

JS = pathlib.Path(_static_data.__file__).with_name("static_backend.js")


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which("chromium") or pathlib.Path("/usr/bin/chromium").exists()):
        pytest.skip("chromium not installed (Debian: apt-get install chromium chromium-driver)")
    if not pathlib.Path("/usr/bin/chromedriver").exists():
        pytest.skip("chromedriver not installed (Debian: apt-get install chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(
        options=opts, service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
    )
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def call(driver, body, *args):
    """Runs async JS ``body`` (``args`` in ``A``; ``done(value)`` returns), raising its errors."""
    script = (
        "const done = arguments[arguments.length - 1]; const A = arguments[0];"
        "(async () => { " + body + " })().then((v) => done({ok: v}), (e) => done({err: String(e)}));"
    )
    out = driver.execute_async_script(script, list(args))
    if "err" in out:
        raise AssertionError(out["err"])
    return out["ok"]


def harness(tmp_path, payload):
    page = tmp_path / "harness.html"
    page.write_text(
        '<!doctype html><meta charset="utf-8"><script type="application/json" id="lj-static-data">'
        + _static_data.json_script(payload)
        + "</script><script>"
        + JS.read_text()
        + "</script>"
    )
    return page.as_uri()


@pytest.mark.parametrize("activation", ["swish", "relu", "elu", "gelu"])
def test_js_mlp_decoder_equals_models_decode(browser, tmp_path, activation):
    cfg = models.Config(image_shape=(6, 5, 2), latent_dim=5, hidden=24, depth=2, activation=activation)
    model = models.create(jax.random.key(3), cfg)
    zs = np.asarray(jax.random.normal(jax.random.key(4), (16, 5)) * 2.0, np.float32)
    expected = np.asarray(jax.vmap(lambda z: models.decode(model, z))(zs))
    browser.get(harness(tmp_path, {"decoder": _static_data.mlp_decoder(model)}))
    got = call(
        browser,
        "const spec = JSON.parse(document.getElementById('lj-static-data').textContent).decoder;"
        "const dec = LJStatic.mlpDecoder(spec); return A[0].map((z) => Array.from(dec.decode(z)));",
        zs.tolist(),
    )
    got = np.asarray(got).reshape(expected.shape)
    assert np.abs(got - expected).max() < 1e-4
    assert np.abs(expected - 0.5).max() > 0.05  # not a flat output
