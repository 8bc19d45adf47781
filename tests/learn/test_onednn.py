"""The oneDNN conv kernels (learn/_onednn.py) against lax.conv_general_dilated and the XLA step."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latentjax.errors import InputError
from latentjax.learn import _onednn as onednn
from latentjax.learn import _xla, loop, models, population, state, train

needs_onednn = pytest.mark.skipif(
    not onednn.available(), reason=f"oneDNN kernels: {onednn.unavailable_reason()}"
)
DN = ("NHWC", "HWIO", "NHWC")


def test_available_where_required():
    # CI installs the [onednn] extra and sets LATENTJAX_REQUIRE_ONEDNN=1, so that the tests below
    # cannot all be skipped there without a failure.
    if os.environ.get("LATENTJAX_REQUIRE_ONEDNN") == "1":
        assert onednn.available(), onednn.unavailable_reason()


def _lax(x, w, s):
    return jax.lax.conv_general_dilated(x, w, (s, s), "SAME", dimension_numbers=DN)


def _check_batch(n, h, w, ci, co, s, seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(k1, (n, h, w, ci))
    wt = jax.random.normal(k2, (3, 3, ci, co))
    y, vjp = jax.vjp(lambda a, b: _lax(a, b, s), x, wt)
    g = jax.random.normal(k3, y.shape)
    y2, vjp2 = jax.vjp(lambda a, b: onednn.conv_batch(a, b, s), x, wt)
    for got, want in zip((y2, *jax.jit(vjp2)(g)), (y, *vjp(g))):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * float(jnp.abs(want).max()))


@needs_onednn
@pytest.mark.parametrize(
    "shape",
    [
        (256, 28, 28, 1, 32, 2),
        (256, 14, 14, 32, 64, 2),
        (256, 7, 7, 64, 128, 1),
        (64, 14, 14, 32, 128, 1),
        (37, 9, 9, 4, 5, 1),
        (3, 5, 7, 2, 3, 2),
    ],
)
def test_conv_batch_equals_lax(shape):
    # forward, input gradient and weight gradient (the batch cut into chunks across threads)
    _check_batch(*shape)


@needs_onednn
@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 40),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    ci=st.integers(1, 6),
    co=st.integers(1, 6),
    s=st.sampled_from([1, 2]),
)
def test_conv_batch_equals_lax_any_shape(n, h, w, ci, co, s):
    # odd sizes (SAME padding is asymmetric for stride 2), one-pixel images, single channels
    _check_batch(n, h, w, ci, co, s)


@needs_onednn
def test_per_example_conv_under_vmap_and_grad(key):
    # conv() is one example's conv: vmapped it is one oneDNN call; per-example weights (vmapped
    # too, as in population training) take the plain path; both give lax's values and gradients.
    x = jax.random.normal(key, (6, 8, 8, 3))
    w = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
    ws = jax.random.normal(jax.random.key(2), (6, 3, 3, 3, 4))
    loss = lambda f: lambda w_: jnp.sum(jnp.sin(jax.vmap(lambda a: f(a, w_))(x)))  # noqa: E731
    ref = lambda a, b: _lax(a[None], b, 2)[0]  # noqa: E731
    fast = lambda a, b: onednn.conv(a, b, 2)  # noqa: E731
    np.testing.assert_allclose(jax.grad(loss(fast))(w), jax.grad(loss(ref))(w), rtol=1e-5, atol=1e-5)
    per = lambda f: jax.vmap(lambda a, b: f(a, b))(x, ws)  # noqa: E731
    np.testing.assert_allclose(per(fast), per(ref), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="expected"):
        onednn.conv(x, w)  # a batch, not one image


@needs_onednn
@pytest.mark.parametrize("microbatches", [1, 2])
def test_onednn_step_equals_xla_step(microbatches, key):
    # 10 Adam steps of a conv VAE: the oneDNN kernels give XLA's trajectory to float rounding.
    cfg = models.Config(arch="conv", image_shape=(28, 28, 1), latent_dim=4, hidden=32, channels=8)
    graphdef, st0, tx = state.init(key, cfg, learning_rate=1e-3)
    data_ = jnp.asarray(np.random.default_rng(0).integers(0, 256, (200, 28, 28, 1), dtype=np.uint8))
    idx = jnp.arange(10 * 32).reshape(10, 32) % 200
    out = {}
    for kernels in ("xla", "onednn"):
        step = train.make_step(graphdef, tx, microbatches=microbatches, conv_kernels=kernels)
        out[kernels] = _xla.jit(loop.make_scan(step))(st0, data_, idx)
    np.testing.assert_allclose(out["onednn"][1], out["xla"][1], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(out["onednn"][0].params), jax.tree.leaves(out["xla"][0].params)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


@needs_onednn
def test_population_step_under_onednn_context_equals_plain(key):
    # Population members' weights are vmapped: the plain conv is used inside the context.
    cfg = models.Config(arch="conv", image_shape=(12, 12, 1), latent_dim=3, hidden=16, channels=4)
    graphdef, pop, tx = population.init([jax.random.key(s) for s in range(2)], cfg, learning_rate=1e-3)
    images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (2, 8, 12, 12, 1), dtype=np.uint8))
    step = jax.vmap(train.make_step(graphdef, tx))

    def traced(on):
        with onednn.enabled(on):
            return jax.jit(step)(pop.states, images)[1]["loss"]

    np.testing.assert_allclose(traced(True), traced(False), rtol=1e-6)


def test_defaults_and_errors(monkeypatch, tmp_path):
    # the default itself: tests/learn/test_tuning.py
    with pytest.raises(InputError, match="conv_kernels must be"):
        train.make_step(None, None, conv_kernels="cudnn")
    # Without the wheels, the reason names what is missing and how to get it; an unwritable cache
    # is a reason too, not a crash.
    if onednn.available():
        blocker = tmp_path / "file"
        blocker.write_text("")
        monkeypatch.setenv("LATENTJAX_CACHE_DIR", str(blocker))
        assert "cannot write the kernel cache" in onednn._build()
    monkeypatch.setattr(onednn, "_roots", lambda: [])
    assert "pip install 'latentjax[onednn]'" in onednn._find_onednn()
