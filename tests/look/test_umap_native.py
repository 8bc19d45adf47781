"""UMAP's layout kernel (``_umap_native``) against the XLA epochs of ``_umap_kernels.layout_step``.

The layout is chaotic (a 1e-6 change of the start grows to whole units within a few epochs, in
XLA alone; the early epochs, with the learning rate near 1, amplify it most), so the two paths
are compared over one to three epochs, where they agree to float rounding; longer runs are
compared by the quality of the maps (``test_umap.py`` runs through the kernel on CPU).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax.look import _umap_kernels, _umap_native, umap

pytestmark = pytest.mark.skipif(
    not _umap_native.available("cpu"), reason=f"kernel unavailable: {_umap_native.unavailable_reason('cpu')}"
)
HYPER = (1.58, 0.9, 1.0, 1.0)  # a, b, gamma, learning rate


def _setup(dim, n=300):
    x = np.random.default_rng(0).normal(size=(n, 6)).astype(np.float32)
    sched = _umap_kernels.schedule(umap.fuzzy_graph(x, n_neighbors=10), num_steps=40)
    yt = jnp.asarray(np.random.default_rng(1).normal(size=(dim, n)) * 3, jnp.float32)
    return sched, yt


def _xla(yt, epoch, key, sched, count, num_steps):
    def body(_, carry):
        return _umap_kernels.layout_step(*carry, key, sched, *HYPER, num_steps)

    return jax.lax.fori_loop(0, count, body, (yt, jnp.asarray(epoch, jnp.int32)))


@pytest.mark.parametrize(("dim", "epoch", "count"), [(2, 0, 2), (2, 7, 1), (3, 20, 3), (1, 39, 1), (5, 3, 1)])
def test_kernel_epochs_equal_the_xla_epochs(dim, epoch, count):
    # dim 2 and 3 take the kernel's compiled-dimension lanes, 1 and 5 its general path.
    sched, yt = _setup(dim)
    key = jax.random.key(3)
    start = jnp.asarray(epoch, jnp.int32)
    got, end = _umap_kernels.native_epochs(yt, start, key, sched, *HYPER, count=count, num_steps=40)
    want, want_end = _xla(yt, epoch, key, sched, count, 40)
    assert int(end) == int(want_end) == epoch + count
    moved = float(jnp.max(jnp.abs(want - yt)))
    assert moved > 0.1  # the epochs did something
    np.testing.assert_allclose(got, want, atol=2e-5 * max(moved, 1.0), rtol=0)


def test_kernel_is_deterministic_and_run_uses_it():
    sched, yt = _setup(2)
    key = jax.random.key(0)
    a = _umap_kernels.run(yt, jnp.asarray(0, jnp.int32), key, sched, *HYPER, num_steps=40)
    b = _umap_kernels.native_epochs(yt, jnp.asarray(0, jnp.int32), key, sched, *HYPER, count=40, num_steps=40)
    np.testing.assert_array_equal(a[0], b[0])
    # chunks of epochs continue exactly where the last one stopped
    c = _umap_kernels.native_epochs(yt, jnp.asarray(0, jnp.int32), key, sched, *HYPER, count=25, num_steps=40)
    c = _umap_kernels.native_epochs(*c, key, sched, *HYPER, count=15, num_steps=40)
    np.testing.assert_array_equal(c[0], a[0])
    assert int(c[1]) == 40


@pytest.mark.parametrize("unroll", [2, 3, 8])
def test_unrolled_xla_epochs_equal_the_plain_ones_bit_for_bit(unroll, monkeypatch):
    # layout_step runs UNROLL vertex steps per trip of its loop: a vertex past its last step must
    # not move, so any UNROLL gives the plain loop's bits (3 leaves a partial last trip).
    sched, yt = _setup(2)
    key = jax.random.key(6)
    monkeypatch.setattr(_umap_kernels, "UNROLL", 1)  # the plain loop: one step a trip
    jax.clear_caches()
    want, _ = _xla(yt, 0, key, sched, 4, 40)
    monkeypatch.setattr(_umap_kernels, "UNROLL", unroll)
    jax.clear_caches()
    got, end = _xla(yt, 0, key, sched, 4, 40)
    jax.clear_caches()
    assert int(end) == 4 and float(jnp.max(jnp.abs(want - yt))) > 0.1
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_the_kernel_is_a_cpu_choice():
    assert not _umap_native.available("gpu")
    assert "CPU kernel" in _umap_native.unavailable_reason("tpu")


def test_loading_the_kernels_keeps_subnormal_floats():
    # Linking with -ffast-math would add crtfastmath.o, which sets flush-to-zero for the whole
    # process when the library loads (hypothesis then refused to run in the full suite).
    from latentjax.learn import _onednn
    from latentjax.look import _knn_native, _tsne_native

    _onednn.available("cpu"), _tsne_native.available("cpu"), _knn_native.available("cpu")
    assert _umap_native.available("cpu")
    tiny = np.nextafter(np.float32(0), np.float32(1))
    assert tiny * np.float32(2) > 0 and np.float64(5e-324) * 2 > 0


def test_coincident_points_get_no_force_and_stay_finite():
    # Duplicated data points sit on each other: the pair's kernel is skipped, as in XLA's epochs.
    x = np.repeat(np.random.default_rng(2).normal(size=(60, 4)).astype(np.float32), 2, axis=0)
    sched = _umap_kernels.schedule(umap.fuzzy_graph(x, n_neighbors=6), num_steps=20)
    yt = jnp.asarray(np.repeat(np.random.default_rng(3).normal(size=(2, 60)), 2, axis=1), jnp.float32)
    key = jax.random.key(1)
    got, _ = _umap_kernels.native_epochs(
        yt, jnp.asarray(1, jnp.int32), key, sched, *HYPER, count=1, num_steps=20
    )
    want, _ = _xla(yt, 1, key, sched, 1, 20)
    assert np.all(np.isfinite(np.asarray(got)))
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize(("dim", "steps", "nsr"), [(2, 30, 5), (3, 12, 2), (2, 9, 0)])
def test_transform_kernel_equals_the_xla_steps(dim, steps, nsr, monkeypatch):
    # maps.transform's layout (new points against a fixed reference) by the kernel and by XLA's
    # _umap_transform._step: the new points do not interact, so no chaos: equal to rounding.
    from latentjax.look import _umap_transform

    rng = np.random.default_rng(4)
    x_ref = rng.normal(size=(400, 6)).astype(np.float32)
    x_new = rng.normal(size=(70, 6)).astype(np.float32)
    reference = jnp.asarray(rng.normal(size=(400, dim)) * 3, jnp.float32)
    graph, vals = _umap_transform.edges(x_ref, x_new, n_neighbors=10, num_steps=steps)
    y0 = _umap_transform.graph_init(reference, graph.cols, vals)
    args = (y0, jax.random.key(5), reference, graph, *HYPER[:3], 0.25)
    got = _umap_transform.layout(*args, num_steps=steps, negative_sample_rate=nsr)
    monkeypatch.setattr(_umap_native, "available", lambda backend=None: False)
    jax.clear_caches()
    want = _umap_transform.layout(*args, num_steps=steps, negative_sample_rate=nsr)
    jax.clear_caches()
    assert float(jnp.max(jnp.abs(want - y0))) > 0.1  # the points did move
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=2e-4, rtol=0)


def test_kernel_refuses_edges_out_of_range_or_unsorted():
    # The kernel indexes positions by the edges' ends: bad ones are an error, not a stray read.
    sched, yt = _setup(2, n=50)
    seeds = jnp.zeros(2, jnp.uint32)
    hyper = jnp.asarray(HYPER, jnp.float32)
    bad_tail = sched._replace(tail=sched.tail.at[3].set(50))
    unsorted = sched._replace(head=sched.head[::-1])
    for s in (bad_tail, unsorted):
        with pytest.raises(Exception, match="sorted by head"):
            jax.block_until_ready(_umap_native.run(yt, 1, seeds, s, hyper, decay_steps=40))
