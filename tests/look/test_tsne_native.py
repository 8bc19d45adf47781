"""t-SNE's attraction kernel (``_tsne_native``) against a numpy sum over the edge list.

The same reference checks XLA's path (``LATENTJAX_TSNE_KERNEL=0`` / another backend), so the two
paths agree with each other through an independent third.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax.look import _fitsne, _tsne_native, neighbors

needs_kernel = pytest.mark.skipif(
    not _tsne_native.available("cpu"), reason=f"kernel unavailable: {_tsne_native.unavailable_reason('cpu')}"
)


def _graph(rng, n, e_count):
    rows = rng.integers(0, n, e_count)
    cols = rng.integers(0, n, e_count)
    keep = rows != cols
    rows, cols = rows[keep], cols[keep]
    weights = rng.random(rows.size).astype(np.float32)
    return neighbors.Graph(rows, cols, weights)


def _reference(y, g):
    y = np.asarray(y, np.float64)
    d = y[g.rows] - y[g.cols]
    q = np.asarray(g.weights, np.float64) / (1.0 + np.sum(d * d, axis=1))
    out = np.zeros_like(y)
    np.add.at(out, g.rows, q[:, None] * d)
    return out


@needs_kernel
@pytest.mark.parametrize(
    ("n", "e_count", "dim", "width"), [(50, 400, 2, 32), (300, 9000, 2, 8), (40, 200, 3, 4), (30, 90, 1, 32)]
)
def test_kernel_equals_the_edge_sum(n, e_count, dim, width):
    rng = np.random.default_rng(n)
    g = _graph(rng, n, e_count)
    y = jnp.asarray(rng.normal(size=(n, dim)) * 5, jnp.float32)
    pieces = _fitsne.pieces(g, n, width=width)
    got = jax.jit(_tsne_native.attraction)(y, *pieces)
    np.testing.assert_allclose(got, _reference(y, g), rtol=1e-5, atol=1e-5)
    # the traced layout (padding pieces on the last row) gives the same forces
    traced = jax.jit(lambda g: _fitsne.pieces(g, n, width=width))(neighbors.Graph(*map(jnp.asarray, g)))
    np.testing.assert_allclose(jax.jit(_tsne_native.attraction)(y, *traced), got, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kernel", [True, False])
def test_both_paths_of_the_attraction_equal_the_edge_sum(monkeypatch, kernel):
    if kernel and not _tsne_native.available("cpu"):
        pytest.skip("kernel unavailable")
    monkeypatch.setattr(_tsne_native, "available", lambda backend=None: kernel)
    rng = np.random.default_rng(3)
    n = 200
    g = _graph(rng, n, 3000)
    y = jnp.asarray(rng.normal(size=(n, 2)) * 3, jnp.float32)
    got = _fitsne._attraction(y, _fitsne.pieces(g, n))
    np.testing.assert_allclose(got, _reference(y, g), rtol=1e-5, atol=1e-5)


@needs_kernel
def test_kernel_under_vmap_and_for_rows_without_edges():
    rng = np.random.default_rng(0)
    n = 20
    g = neighbors.Graph(np.array([0, 1, 5]), np.array([1, 0, 0]), np.array([0.5, 0.25, 1.0], np.float32))
    pieces = _fitsne.pieces(g, n, width=4)
    ys = jnp.asarray(rng.normal(size=(3, n, 2)), jnp.float32)
    got = jax.vmap(lambda y: _tsne_native.attraction(y, *pieces))(ys)
    for y, out in zip(ys, got):
        np.testing.assert_allclose(out, _reference(y, g), rtol=1e-6, atol=1e-6)
    assert not np.any(np.asarray(got)[:, 6:])  # rows without edges get no force


def test_the_kernel_is_a_cpu_choice():
    assert not _tsne_native.available("gpu")
    assert "CPU kernel" in _tsne_native.unavailable_reason("tpu")
