"""Bad inputs at every public entry point that takes data raise a latentjax error naming the
argument: NaN/inf anywhere (hypothesis places them), a wrong rank, shapes that do not match (no
silent broadcasting). Labels and integer arguments: test_bad_labels.py."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from latentjax import data, move, transport
from latentjax.errors import LatentJaxError
from latentjax.learn import models
from latentjax.look import metrics, morpho, neighbors, pca, tsne, umap

PROPS = settings.get_profile("latentjax-properties")
N, D, E, L = 24, 3, 2, 2
SHAPE = (8, 8, 1)  # the model of test_learn.py: one compilation of its layers
LABELS = np.arange(N) % 2


@functools.cache
def _model():
    return models.create(jax.random.key(0), models.Config(image_shape=SHAPE, latent_dim=L, hidden=8))


@functools.cache
def _fitted():
    return pca.fit(np.random.default_rng(0).normal(size=(N, D)).astype(np.float32), num_components=E)


@functools.cache
def _graph():
    return tsne.affinities(np.random.default_rng(0).normal(size=(N, D)).astype(np.float32), perplexity=3.0)


def _image(*shape):
    a = np.zeros(shape, np.float32)
    a[1, 1] = 1.0
    return a


# name -> (call taking the arrays, {argument: a valid value}); the arrays are float32 numpy.
CASES = {
    "neighbors.knn": (lambda a: neighbors.knn(a["x"], k=3), {"x": (N, D)}),
    "neighbors.knn(queries)": (
        lambda a: neighbors.knn(a["x"], k=3, queries=a["queries"]),
        {"x": (N, D), "queries": (5, D)},
    ),
    "metrics.trustworthiness": (
        lambda a: metrics.trustworthiness(a["x"], a["y"], k=3),
        {"x": (N, D), "y": (N, E)},
    ),
    "metrics.knn_recall": (lambda a: metrics.knn_recall(a["x"], a["y"], k=3), {"x": (N, D), "y": (N, E)}),
    "metrics.knn_accuracy": (lambda a: metrics.knn_accuracy(a["y"], LABELS, k=3), {"y": (N, E)}),
    "pca.fit": (lambda a: pca.fit(a["x"], num_components=E), {"x": (N, D)}),
    "pca.transform": (lambda a: pca.transform(_fitted(), a["x"]), {"x": (5, D)}),
    "pca.inverse_transform": (lambda a: pca.inverse_transform(_fitted(), a["z"]), {"z": (5, E)}),
    "tsne.affinities": (lambda a: tsne.affinities(a["x"], perplexity=3.0), {"x": (N, D)}),
    "tsne.initialize": (lambda a: tsne.initialize(jax.random.key(0), a["x"]), {"x": (N, D)}),
    "tsne.gradient": (lambda a: tsne.gradient(a["y"], _graph()), {"y": (N, E)}),
    "tsne.kl_divergence": (lambda a: tsne.kl_divergence(_graph(), a["y"]), {"y": (N, E)}),
    "umap.fuzzy_graph": (lambda a: umap.fuzzy_graph(a["x"], n_neighbors=4), {"x": (N, D)}),
    "tsne.embed": (
        lambda a: tsne.embed(jax.random.key(0), a["x"], perplexity=3.0, num_steps=2),
        {"x": (N, D)},
    ),
    "umap.embed": (
        lambda a: umap.embed(jax.random.key(0), a["x"], n_neighbors=4, num_steps=2),
        {"x": (N, D)},
    ),
    "move.lerp": (lambda a: move.lerp(a["z0"], a["z1"], 0.5), {"z0": (D,), "z1": (D,)}),
    "move.slerp": (lambda a: move.slerp(a["z0"], a["z1"], 0.5), {"z0": (D,), "z1": (D,)}),
    "move.apply": (lambda a: move.apply(a["z"], a["vector"], 2.0), {"z": (D,), "vector": (D,)}),
    "move.chain": (lambda a: move.chain(a["z"], a["vectors"], np.ones(2)), {"z": (D,), "vectors": (2, D)}),
    "move.traverse": (lambda a: move.traverse(a["z"], 0, a["values"]), {"z": (D,), "values": (3,)}),
    "move.traverse(direction)": (
        lambda a: move.traverse(np.zeros(D), a["dim_or_direction"], np.ones(2)),
        {"dim_or_direction": (D,)},
    ),
    "move.path": (lambda a: move.path(a["points"], num_points=4), {"points": (3, D)}),
    "move.attribute_vector": (lambda a: move.attribute_vector(a["z"], LABELS), {"z": (N, D)}),
    "move.regression_vector": (
        lambda a: move.regression_vector(a["z"], a["values"]),
        {"z": (N, D), "values": (N,)},
    ),
    "move.class_vector": (lambda a: move.class_vector(a["z"], LABELS, source=0, target=1), {"z": (N, D)}),
    "move.factor_sensitivity": (
        lambda a: move.factor_sensitivity(a["z"], a["factors"]),
        {"z": (N, D), "factors": (N, 2)},
    ),
    "move.gram_schmidt": (lambda a: move.gram_schmidt(a["vectors"]), {"vectors": (2, D)}),
    "move.geodesic": (
        lambda a: move.geodesic(jnp.tanh, a["z0"], a["z1"], num_points=4, num_steps=2),
        {"z0": (D,), "z1": (D,)},
    ),
    "move.curve_energy": (lambda a: move.curve_energy(jnp.tanh, a["zs"]), {"zs": (4, D)}),
    "transport.ot_distance": (lambda a: transport.ot_distance(a["x"], a["y"]), {"x": (N, D), "y": (N, D)}),
    "transport.transport_points": (
        lambda a: transport.transport_points(a["x_source"], a["x_target"]),
        {"x_source": (N, D), "x_target": (N, D)},
    ),
    "transport.point_cloud_barycenter": (
        lambda a: transport.point_cloud_barycenter(jax.random.key(0), a["clouds"], num_points=8),
        {"clouds": (2, 8, D)},
    ),
    "models.decode": (lambda a: models.decode(_model(), a["z"]), {"z": (L,)}),
    "models.log_likelihood": (lambda a: models.log_likelihood(_model(), _image(*SHAPE), a["z"]), {"z": (L,)}),
}
IMAGE_CASES = {
    "models.encode": (lambda a: models.encode(_model(), a["x"]), {"x": SHAPE}),
    "models.elbo": (lambda a: models.elbo(_model(), jax.random.key(0), a["x"]), {"x": SHAPE}),
    "models.reconstruct": (lambda a: models.reconstruct(_model(), a["x"]), {"x": SHAPE}),
    "models.encode_images": (lambda a: models.encode_images(_model(), a["images"]), {"images": (2, *SHAPE)}),
    "morpho.measure": (lambda a: morpho.measure(a["images"]), {"images": (2, *SHAPE)}),
    "data.validate_images": (lambda a: data.validate_images(a["images"]), {"images": (2, *SHAPE)}),
    "transport.wasserstein_interpolate": (
        lambda a: transport.wasserstein_interpolate(a["images"], [0.5, 0.5]),
        {"images": (2, 6, 6)},
    ),
    "transport.displacement_interpolate": (
        lambda a: transport.displacement_interpolate(a["image0"], _image(6, 6), [0.5]),
        {"image0": (6, 6)},
    ),
}


def _valid(shapes, images):
    rng = np.random.default_rng(0)
    if images:
        return {k: rng.uniform(0.1, 1.0, size=s).astype(np.float32) for k, s in shapes.items()}
    return {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}


def _named(name):
    """The message names the argument (as a word: ``x`` not inside ``max``)."""
    return rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])"


@pytest.mark.parametrize("case", [*CASES, *IMAGE_CASES])
@settings(PROPS, max_examples=3)
@given(choice=st.data())
def test_nan_or_inf_anywhere_raises(case, choice):
    call, shapes = CASES.get(case) or IMAGE_CASES[case]
    arrays = _valid(shapes, case in IMAGE_CASES)
    name = choice.draw(st.sampled_from(sorted(shapes)), label="argument")
    shape = shapes[name]
    mask = choice.draw(hnp.arrays(np.bool_, shape, elements=st.booleans()), label="where")
    first = choice.draw(st.tuples(*(st.integers(0, s - 1) for s in shape)), label="at least at")
    mask[first] = True
    arrays[name][mask] = choice.draw(st.sampled_from([np.nan, np.inf, -np.inf]), label="value")
    with pytest.raises(LatentJaxError, match=_named(name)):
        call(arrays)


def _reshaped(case, shapes, images, name, new_shape):
    arrays = _valid(shapes, images)
    arrays[name] = _valid({name: new_shape}, images)[name]
    return arrays


# (case, argument, a shape of another rank that is not a batch the function accepts)
WRONG_RANK = [
    ("neighbors.knn", "x", (N,)),
    ("neighbors.knn", "x", (N, D, 1)),
    ("neighbors.knn(queries)", "queries", (D,)),
    ("metrics.trustworthiness", "x", (N, D, 1)),
    ("metrics.knn_recall", "y", (N,)),
    ("metrics.knn_accuracy", "y", (N,)),
    ("pca.fit", "x", (N,)),
    ("pca.inverse_transform", "z", ()),
    ("tsne.affinities", "x", (N, D, 1)),
    ("tsne.gradient", "y", (N, E, 1)),
    ("umap.fuzzy_graph", "x", (N,)),
    ("move.slerp", "z0", (D, 1)),
    ("move.chain", "vectors", (D,)),
    ("move.traverse", "values", (3, 1)),
    ("move.path", "points", (D,)),
    ("move.attribute_vector", "z", (N,)),
    ("move.regression_vector", "values", (N, 1)),
    ("move.geodesic", "z0", (D, 1)),
    ("transport.ot_distance", "x", (N,)),
    ("transport.transport_points", "x_target", (1, N, D)),
    ("transport.point_cloud_barycenter", "clouds", (8, D)),
    ("models.decode", "z", (2, L)),
    ("models.encode", "x", (2, *SHAPE)),
    ("data.validate_images", "images", SHAPE),
]


@pytest.mark.parametrize(
    ("case", "name", "new_shape"), WRONG_RANK, ids=[f"{c}-{n}-{s}" for c, n, s in WRONG_RANK]
)
def test_a_wrong_rank_raises(case, name, new_shape):
    call, shapes = CASES.get(case) or IMAGE_CASES[case]
    arrays = _reshaped(case, shapes, case in IMAGE_CASES, name, new_shape)
    with pytest.raises(LatentJaxError, match=_named(name)):
        call(arrays)


# (case, argument, a shape of the right rank that does not match, the argument it must match)
MISMATCHED = [
    ("move.lerp", "z1", (D + 1,), "z0"),
    ("move.lerp", "z1", (1,), "z0"),
    ("move.slerp", "z1", (1,), "z0"),
    ("move.apply", "vector", (D + 1,), "z"),
    ("move.apply", "vector", (1,), "z"),
    ("move.chain", "vectors", (2, D + 1), "z"),
    ("move.traverse(direction)", "dim_or_direction", (D + 1,), "z"),
    ("move.regression_vector", "values", (N - 1,), "z"),
    ("move.factor_sensitivity", "factors", (N - 1, 2), "z"),
    ("move.geodesic", "z1", (D + 1,), "z0"),
    ("neighbors.knn(queries)", "queries", (5, D + 1), "x"),
    ("metrics.trustworthiness", "y", (N - 1, E), "x"),
    ("metrics.knn_recall", "y", (N + 1, E), "x"),
    ("pca.transform", "x", (5, D + 1), "pca"),
    ("pca.inverse_transform", "z", (5, E + 1), "pca"),
    ("tsne.gradient", "y", (N - 1, E), "affinities"),
    ("transport.ot_distance", "y", (N, D + 1), "x"),
    ("models.decode", "z", (L + 1,), "model"),
    ("models.encode", "x", (8, 7, 1), "model"),
]


@pytest.mark.parametrize(
    ("case", "name", "new_shape", "other"), MISMATCHED, ids=[f"{c}-{n}-{s}" for c, n, s, _ in MISMATCHED]
)
def test_mismatched_shapes_raise_rather_than_broadcast(case, name, new_shape, other):
    call, shapes = CASES.get(case) or IMAGE_CASES[case]
    arrays = _reshaped(case, shapes, case in IMAGE_CASES, name, new_shape)
    with pytest.raises(LatentJaxError, match=f"{_named(name)}|{_named(other)}"):
        call(arrays)


def test_a_decoder_that_returns_nan_stops_geodesic():
    def decode(z):
        return jnp.where(z[0] > 0.3, jnp.nan, jnp.tanh(z))

    with pytest.raises(LatentJaxError, match="decode"):
        move.geodesic(decode, np.zeros(D), np.ones(D), num_points=5, num_steps=3)
