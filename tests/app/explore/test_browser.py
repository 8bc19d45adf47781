"""The explorer in a real browser (headless Chromium via selenium): clicks decode, sliders move, paths."""

import dataclasses
import threading
import time

import browser  # tests/support
import numpy as np
import pytest

from latentjax.app import explore
from latentjax.learn import models

browser.require()
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

# The pixels of the image shown, read back through a canvas at the image's own size.
READ_PIXELS = """
const img = document.getElementById("decoded");
const c = document.createElement("canvas");
c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext("2d"); g.drawImage(img, 0, 0);
return Array.from(g.getImageData(0, 0, c.width, c.height).data);
"""

NEIGHBOR_TITLES = "return Array.from(document.querySelectorAll('#neighbors figure'), (f) => f.title);"


@pytest.fixture(scope="module")
def driver():
    d = browser.chrome()
    yield d
    d.quit()


def _open(driver, url):
    driver.get(url)
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return window.explorer && window.explorer.ready")
    )
    return driver.find_element(By.ID, "map")


def _wait_decodes(driver, before, n=1):
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return window.explorer.decodes") >= before + n
    )
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script("return document.getElementById('decoded').complete")
    )


def _decodes(driver):
    return driver.execute_script("return window.explorer.decodes")


def test_clicks_show_the_decode_of_the_inverse_mapped_latent(driver, server, session):
    canvas = _open(driver, server)
    view = driver.execute_script("return window.explorer.view")
    for dx, dy in ((0, 0), (-150, 90), (170, -120)):
        before = _decodes(driver)
        ActionChains(driver).move_to_element_with_offset(canvas, dx, dy).click().perform()
        _wait_decodes(driver, before)
        xy = driver.execute_script("return window.explorer.state.xy")
        # selenium offsets are from the centre; the page's map: x to the right, y upwards
        px, py = view["width"] / 2 + dx, view["height"] / 2 + dy
        want_xy = (
            view["x0"] + px / view["width"] * (view["x1"] - view["x0"]),
            view["y1"] - py / view["height"] * (view["y1"] - view["y0"]),
        )
        np.testing.assert_allclose(xy, want_xy, atol=2 * (view["x1"] - view["x0"]) / view["width"])
        z = explore.inverse_map(session.points, session.latents, np.array([xy]))[0]
        want = np.asarray(models.decode(session.model, z))
        h, w, c = want.shape
        shown = np.asarray(driver.execute_script(READ_PIXELS), np.float64).reshape(h, w, 4)[..., :c] / 255
        assert np.max(np.abs(shown - want)) <= 1 / 255 + 1e-6
    # the nearest test latents of the selection are listed, nearest first
    z = np.asarray(driver.execute_script("return window.explorer.state.z"))
    want = [f"test image {i}" for i in np.argsort(np.linalg.norm(session.latents - z, axis=1))[:8]]
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(NEIGHBOR_TITLES) == want)


def test_dragging_decodes_along_the_way(driver, server):
    canvas = _open(driver, server)
    before = _decodes(driver)
    chain = ActionChains(driver).move_to_element_with_offset(canvas, -200, 0).click_and_hold()
    for _ in range(20):
        chain = chain.move_by_offset(20, 3).pause(0.02)
    t0 = time.perf_counter()
    chain.release().perform()
    _wait_decodes(driver, before, 2)
    time.sleep(0.3)  # the last pending decode lands
    n, seconds = _decodes(driver) - before, time.perf_counter() - t0
    assert n >= 5, f"{n} decodes during a 20-step drag"
    print(f"drag: {n} decodes in {seconds:.2f} s")


DECODE_RATE = """
const done = arguments[arguments.length - 1], ex = window.explorer;
const img = document.getElementById("decoded"), v = ex.view;
(async () => {
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 2000) {  // what a drag does: a map position in, the image shown
    const r = await ex.backend.decode({xy: [ex.toMap(n % v.width, (3 * n) % v.height)]});
    img.src = r.images[0];
    await img.decode();
    n += 1;
  }
  done(n / ((performance.now() - t0) / 1000));
})();
"""


def test_the_page_decodes_while_dragging_fast_enough(driver, server):
    """The issue asks for 20 decodes/s on 2 quiet cores (README: measured); 10/s leaves room for a busy CI."""
    _open(driver, server)
    rate = driver.execute_async_script(DECODE_RATE)
    print(f"browser decode round trips: {rate:.0f}/s")
    assert rate >= 10


def test_a_slider_changes_the_image(driver, server):
    canvas = _open(driver, server)
    before = _decodes(driver)
    ActionChains(driver).move_to_element_with_offset(canvas, 30, 30).click().perform()
    _wait_decodes(driver, before)
    src = driver.find_element(By.ID, "decoded").get_attribute("src")
    z0 = driver.execute_script("return window.explorer.state.z")
    dim = driver.find_elements(By.CSS_SELECTOR, "#dims input[type=range]")[0]
    before = _decodes(driver)
    dim.send_keys(*[Keys.ARROW_RIGHT] * 40)
    _wait_decodes(driver, before)
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "decoded").get_attribute("src") != src)
    z1 = driver.execute_script("return window.explorer.state.z")
    assert z1[0] > z0[0] and z1[1:] == z0[1:]
    # the class-vector slider moves the selection along mean(target) - mean(source)
    src = driver.find_element(By.ID, "decoded").get_attribute("src")
    before = _decodes(driver)
    driver.find_element(By.ID, "class-strength").send_keys(*[Keys.ARROW_RIGHT] * 10)
    _wait_decodes(driver, before)
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "decoded").get_attribute("src") != src)


def test_two_points_give_lerp_slerp_and_geodesic_strips(driver, server):
    canvas = _open(driver, server)
    for dx, dy in ((-120, -60), (130, 80)):
        n = len(driver.execute_script("return window.explorer.state.waypoints"))
        ActionChains(driver).move_to_element_with_offset(canvas, dx, dy).key_down(Keys.SHIFT).click().key_up(
            Keys.SHIFT
        ).perform()
        WebDriverWait(driver, 10).until(
            lambda d, n=n: len(d.execute_script("return window.explorer.state.waypoints")) == n + 1
        )
    points = driver.find_element(By.ID, "path-points")
    points.clear()
    points.send_keys("5")
    driver.find_element(By.ID, "paths-go").click()
    WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#strips .strip")) == 3)
    for strip in driver.find_elements(By.CSS_SELECTOR, "#strips .strip"):
        assert len(strip.find_elements(By.CSS_SELECTOR, ".frames img")) == 5
        assert "decoded length" in strip.text
    assert driver.execute_script("return window.explorer.lastError") is None


def test_labels_are_shown_as_text(driver, session):
    evil = ("<script>alert(1)</script>", '<img src=x onerror="window.__xss=1">', "a & b", "ok")
    srv = explore.make_server(dataclasses.replace(session, label_names=evil), port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        _open(driver, f"http://127.0.0.1:{srv.server_address[1]}")
        legend = driver.find_element(By.ID, "legend").text
        for name in evil:
            assert name in legend
        assert driver.execute_script("return window.__xss") is None
        assert not driver.find_elements(By.CSS_SELECTOR, "#legend script, #legend img, #filter img")
        options = [o.text for o in driver.find_elements(By.CSS_SELECTOR, "#class-source option")]
        assert options == list(evil)
        # hovering a point shows its thumbnail and its class name, as text
        i = int(np.flatnonzero(session.labels == 0)[0])
        px, py = driver.execute_script(f"return window.explorer.toPixel(...window.explorer.info.points[{i}])")
        view = driver.execute_script("return window.explorer.view")
        canvas = driver.find_element(By.ID, "map")
        ActionChains(driver).move_to_element_with_offset(
            canvas, px - view["width"] / 2, py - view["height"] / 2
        ).perform()
        WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "hover").is_displayed())
        assert "/api/thumb?i=" in driver.find_element(By.ID, "hover-img").get_attribute("src")
        assert driver.find_element(By.ID, "hover-label").text in evil
    finally:
        srv.shutdown()
        srv.server_close()


def test_colour_by_a_factor_and_filter_classes(driver, server, session):
    _open(driver, server)
    shown = "return document.getElementById('map').toDataURL()"
    before = driver.execute_script(shown)
    Select(driver.find_element(By.ID, "colour-by")).select_by_value("scale")
    assert driver.find_element(By.ID, "legend").text.startswith("scale: ")
    by_scale = driver.execute_script(shown)
    assert by_scale != before
    driver.find_element(By.CSS_SELECTOR, "#filter-box summary").click()
    driver.find_element(By.CSS_SELECTOR, "#filter input[data-cls='0']").click()
    assert driver.execute_script("return Array.from(window.explorer.state.hidden)") == [0]
    assert driver.execute_script(shown) != by_scale
