"""Embedding scatter and panels: legend, thumbnails at well-spread points, files written."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.offsetbox import AnnotationBbox  # noqa: E402
from PIL import Image  # noqa: E402
from scipy.spatial.distance import pdist  # noqa: E402

from latentjax import viz  # noqa: E402
from latentjax.errors import DataError, InputError  # noqa: E402


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    y = rng.normal(size=(n, 2)) + 5.0 * np.stack([labels % 2, labels // 2], axis=1)
    images = rng.integers(0, 256, size=(n, 28, 28, 1), dtype=np.uint8)
    return y, labels, images


def test_scatter_legend_colours_and_thumbnails():
    y, labels, images = _data()
    names = ["T-shirt", "Trouser", "Pullover", "Dress"]
    ax = viz.scatter(y, labels, label_names=names, images=images, num_thumbnails=9, title="t")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == names
    # One scatter per class, each with exactly its points.
    counts = [len(c.get_offsets()) for c in ax.collections]
    assert counts == [int(np.sum(labels == k)) for k in range(4)]
    boxes = [a for a in ax.artists if isinstance(a, AnnotationBbox)]
    assert len(boxes) == 9
    # Each thumbnail sits on a data point and shows that point's image.
    for box in boxes:
        i = int(np.argmin(np.sum((y - np.asarray(box.xy)) ** 2, axis=1)))
        np.testing.assert_allclose(box.offsetbox.get_data(), images[i, ..., 0] / 255.0, atol=1e-6)
    assert ax.get_title() == "t"
    plt.close(ax.figure)


def test_spread_points_are_well_separated():
    y, _, _ = _data(n=500, seed=1)
    idx = spread = viz.spread_points(y, num_points=12)
    assert len(set(idx.tolist())) == 12
    # Farthest-point sampling is a 2-approximation of the best minimum separation; it beats
    # random subsets of the same size by a wide margin.
    z = (y - y.min(0)) / np.ptp(y, axis=0)
    rng = np.random.default_rng(0)
    random_best = max(pdist(z[rng.choice(500, 12, replace=False)]).min() for _ in range(50))
    assert pdist(z[spread]).min() > random_best


def test_embedding_panels_writes_one_panel_per_method(tmp_path):
    y, labels, images = _data()
    path = viz.embedding_panels(
        {"PCA": y, "t-SNE": y[:, ::-1], "UMAP": -y},
        labels,
        tmp_path / "p.png",
        label_names=list("abcd"),
        images=images,
        num_thumbnails=4,
    )
    w, h = Image.open(path).size
    assert 2.3 < w / h < 3.7
    one = viz.embedding_panels({"PCA": y}, labels, tmp_path / "one.png")
    w1, h1 = Image.open(one).size
    assert 0.7 < w1 / h1 < 1.4


def test_bad_input():
    with pytest.raises(InputError, match="y must be"):
        viz.scatter(np.zeros((5, 3)), np.zeros(5, int))
    with pytest.raises(InputError, match="labels"):
        viz.scatter(np.zeros((5, 2)), np.zeros(4, int))
    with pytest.raises(InputError, match="no embeddings"):
        viz.embedding_panels({}, np.zeros(4, int), "x.png")
    with pytest.raises(InputError, match="3 images for 5 points"):
        viz.scatter(np.zeros((5, 2)), np.zeros(5, int), images=np.zeros((3, 4, 4, 1), np.uint8))
    with pytest.raises(DataError, match=r"viz.scatter: images must lie in \[0, 1\]"):
        viz.scatter(np.zeros((5, 2)), np.zeros(5, int), images=np.full((5, 4, 4, 1), 2.0))


def test_scatter_of_a_continuous_factor_has_a_colour_bar_and_axis_labels():
    y, _, images = _data(n=100)
    factor = np.linspace(0.0, 1.0, 100)
    ax = viz.scatter(y, factor, images=images, num_thumbnails=3, axis_labels=("PC 1", "PC 2"))
    assert ax.get_legend() is None and len(ax.figure.axes) == 2  # the scatter and its colour bar
    assert len(ax.collections) == 1 and len(ax.collections[0].get_offsets()) == 100
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("PC 1", "PC 2")
    assert len([a for a in ax.artists if isinstance(a, AnnotationBbox)]) == 3
    plt.close(ax.figure)
    # Forced to classes: one legend entry per value; labels without a name keep their value.
    ax = viz.scatter(y[:6], np.arange(6) % 3, label_names=["a", "b"], continuous=False)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "2"]
    plt.close(ax.figure)


def test_scatter_draws_on_a_given_axes_and_grayscale_thumbnails_without_channel():
    y, labels, images = _data(n=30)
    fig, ax = plt.subplots()
    assert viz.scatter(y, labels, images=images[..., 0], num_thumbnails=2, ax=ax) is ax
    boxes = [a for a in ax.artists if isinstance(a, AnnotationBbox)]
    assert len(boxes) == 2 and boxes[0].offsetbox.get_data().shape == (28, 28)
    plt.close(fig)
