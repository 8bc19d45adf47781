"""The HTML report: figures by relative path, links for HTML files, missing figures listed, text escaped."""

import numpy as np

from latentjax import viz
from latentjax.app import report


def test_write_html_links_figures_relative_to_the_page(tmp_path):
    png = viz.image_grid(np.zeros((4, 6, 6, 1), np.uint8), tmp_path / "figures" / "grid.png")
    (tmp_path / "figures" / "viewer.html").write_text("<html></html>")
    sections = [
        report.Section(
            "Model <1>",
            "a & b",
            [
                report.Figure(str(png), "absolute path"),
                report.Figure("figures/grid.png", "relative path"),
                report.Figure("figures/viewer.html", "the viewer"),
                report.Figure("figures/nothing.png", "gone"),
            ],
            {"MSE": 0.0123456, "name": "vae", "dims": (2, 3)},
        ),
        report.Section("Empty"),
    ]
    page = report.write_html(sections, tmp_path / "report.html", title="demo <x>", subtitle="jax 0.10")
    assert page == tmp_path / "report.html"
    html = page.read_text()
    assert "<title>demo &lt;x&gt;</title>" in html and "<p class='meta'>jax 0.10</p>" in html
    assert "<h2>Model &lt;1&gt;</h2>" in html and "<p>a &amp; b</p>" in html
    assert html.count("<img src='figures/grid.png'") == 2  # absolute and relative paths alike
    assert "<a href='figures/viewer.html'>the viewer</a>" in html
    assert "missing figure: figures/nothing.png" in html
    assert "<td class='num'>0.01235</td>" in html and "<td class=''>2, 3</td>" in html
    assert "<h2>Empty</h2>" in html
