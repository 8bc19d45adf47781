"""The quick demo's report in a real browser (headless Chromium via selenium): every figure loads and is
captioned, every local link resolves, and the console stays free of errors.

Shares the quick demo run of tests/app/conftest.py with test_captions.py (no second demo). A control
copy of the report with one figure removed shows that the checks see a broken image.
"""

import pathlib
import shutil
import urllib.parse

import pytest

pytestmark = pytest.mark.slow  # the shared quick demo: about a minute on 2 idle cores

import browser  # noqa: E402 (tests/support)

browser.require()
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# Each <img>: its source, whether it finished loading, its decoded width and height.
IMAGES = """
return Array.from(document.images, (im) => [im.getAttribute('src'), im.complete, im.naturalWidth,
                                             im.naturalHeight]);
"""
# Each <figure>: its image's source and its caption's text.
FIGURES = """
return Array.from(document.querySelectorAll('figure'), (f) => {
  const im = f.querySelector('img'), cap = f.querySelector('figcaption');
  return [im ? im.getAttribute('src') : null, cap ? cap.textContent.trim() : ''];
});
"""
LINKS = "return Array.from(document.querySelectorAll('a[href]'), (a) => a.href);"


@pytest.fixture(scope="module")
def driver():
    d = browser.chrome(console_log=True)
    d.set_page_load_timeout(60)
    yield d
    d.quit()


def _open(driver, page: pathlib.Path) -> list:
    """Loads ``page`` (a file) and returns the console entries it logged at level SEVERE."""
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(page.resolve().as_uri())
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    WebDriverWait(driver, 30).until(lambda d: all(c for _, c, _, _ in d.execute_script(IMAGES)))
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _broken_images(driver) -> list:
    return [src for src, done, w, h in driver.execute_script(IMAGES) if not (done and w > 0 and h > 0)]


def test_report_loads_every_figure_captions_it_and_links_only_existing_files(driver, quick_demo):
    metrics, captions, _, _, out = quick_demo
    errors = _open(driver, out / "report.html")
    assert errors == [], errors
    images = driver.execute_script(IMAGES)
    # Every figure file the sections wrote is shown (the report's own list, read independently from
    # the folder), and each one loaded with a positive decoded size.
    written = {f"figures/{p.name}" for p in (out / "figures").iterdir() if p.suffix in (".png", ".gif")}
    assert {src for src, *_ in images} == written
    assert _broken_images(driver) == []
    figures = driver.execute_script(FIGURES)
    assert len(figures) == len(images)
    for src, caption in figures:
        assert src is not None and len(caption) > 40, (src, caption)
        assert caption == captions[src.rsplit("/", 1)[-1]]  # the text the captions test checks
    links = driver.execute_script(LINKS)
    local = [urllib.parse.urlparse(u) for u in links if u.startswith("file:")]
    assert any(u.path.rstrip("/").endswith("/projector") for u in local), links
    for u in local:
        target = pathlib.Path(urllib.parse.unquote(u.path))
        assert target.exists(), u.geturl()
        if target.is_dir():  # the projector folder: what TensorBoard's projector reads
            assert (target / "projector_config.pbtxt").is_file()
    # The linked viewer page opens without console errors too.
    viewer = [u for u in local if u.path.endswith(".html") and not u.path.endswith("report.html")]
    assert viewer, links
    for u in viewer:
        assert _open(driver, pathlib.Path(urllib.parse.unquote(u.path))) == []


def test_a_missing_figure_is_seen_as_broken(driver, quick_demo, tmp_path):
    """The control: the same checks on a copy of the report without one figure fail on that figure."""
    out = quick_demo[4]
    copy = tmp_path / "report"
    shutil.copytree(out / "figures", copy / "figures")
    shutil.copy(out / "report.html", copy / "report.html")
    (copy / "figures" / "latent_paths.png").unlink()
    errors = _open(driver, copy / "report.html")
    assert _broken_images(driver) == ["figures/latent_paths.png"]
    assert any("latent_paths.png" in e["message"] for e in errors), errors
