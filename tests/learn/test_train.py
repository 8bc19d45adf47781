"""Training one model: compile-once step, equal modes, microbatches, evaluation, XLA options."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from trainhelp import leaves_equal

from latentjax import data
from latentjax.app import demo
from latentjax.errors import DataError, LatentJaxError
from latentjax.learn import _xla, loop, models, state, train

CFG = models.Config(arch="mlp", image_shape=(16, 16, 1), latent_dim=3, hidden=32)


@pytest.fixture(scope="module")
def sprites16():
    images, factors = data.sprites(num_images=1024, size=16, seed=0)
    return images


@pytest.mark.accelerator
def test_step_compiles_once(sprites16, key):
    graphdef, st, tx = state.init(key, CFG, learning_rate=1e-3)
    traces = []

    def counted(st, images):
        traces.append(1)
        return train.make_step(graphdef, tx)(st, images)

    step = jax.jit(counted, donate_argnums=0)
    for i in range(12):
        st, m = step(st, sprites16[i * 64 : (i + 1) * 64])
    assert len(traces) == 1
    assert step._cache_size() == 1
    assert int(st.step) == 12 and np.isfinite(float(m["loss"]))


@pytest.mark.accelerator
def test_fit_learns_and_paths_agree(sprites16, key):
    runs = {
        mode: train.fit(key, CFG, sprites16, epochs=3, batch_size=64, progress=False, mode=mode)
        for mode in ("scan", "loop", "host")
    }
    hist = runs["scan"].history
    assert hist[-1]["loss"] < hist[0]["loss"]
    # The scan, on-device loop and host-fed paths run the same steps on the same batches.
    for mode in ("loop", "host"):
        assert leaves_equal(runs[mode].state.params, runs["scan"].state.params), mode


def test_fit_visits_the_batches_of_a_permutation_of_the_order_key(sprites16, key):
    # The documented order, derived here by hand with jax.random alone: state.init splits the key
    # into (init, run) keys, the run key's split()[1] orders the data, and epoch e's batches are
    # consecutive slices of jax.random.permutation(fold_in(order_key, e), n), the last partial one
    # dropped. A hand loop of make_step over those batches must reproduce fit.
    images, batch_size, epochs = sprites16[:200], 64, 2  # 3 full batches an epoch, 8 images dropped
    res = train.fit(key, CFG, images, epochs=epochs, batch_size=batch_size, progress=False, mode="scan")
    order_key = jax.random.split(jax.random.split(key)[1])[1]

    def by_hand(epoch_key):
        graphdef, st, tx = state.init(key, CFG, learning_rate=1e-3)
        step = jax.jit(train.make_step(graphdef, tx))
        for e in range(epochs):
            perm = np.asarray(jax.random.permutation(epoch_key(e), len(images)))
            for b in range(len(images) // batch_size):
                st, _ = step(st, images[perm[b * batch_size : (b + 1) * batch_size]])
        return st

    st = by_hand(lambda e: jax.random.fold_in(order_key, e))
    assert int(st.step) == int(res.state.step) == 6
    for a, b in zip(jax.tree.leaves(st.params), jax.tree.leaves(res.state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # the order matters: permuting with fold_in(key, e) (the raw key) gives another model
    other = by_hand(lambda e: jax.random.fold_in(key, e))
    assert (
        max(
            float(np.abs(a - b).max())
            for a, b in zip(jax.tree.leaves(other.params), jax.tree.leaves(st.params))
        )
        > 1e-4
    )


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_compiler_options_match_xla_defaults(arch, sprites16, key):
    # latentjax compiles its steps with YNNPACK dots on CPU (_xla.compiler_options); the losses of
    # 20 Adam steps must equal those of XLA's default compilation to float32 rounding.
    cfg = CFG._replace(arch=arch, channels=4) if arch == "conv" else CFG
    graphdef, st, tx = state.init(key, cfg, learning_rate=1e-3)
    scan = loop.make_scan(train.make_step(graphdef, tx))
    idx = jnp.arange(20 * 32).reshape(20, 32) % len(sprites16)
    losses = {}
    for name, opts in (("latentjax", _xla.compiler_options()), ("xla_default", None)):
        _, losses[name] = jax.jit(scan, compiler_options=opts)(st, jnp.asarray(sprites16), idx)
    assert _xla.compiler_options("cpu") is not None and _xla.compiler_options("gpu") is None
    np.testing.assert_allclose(losses["latentjax"], losses["xla_default"], rtol=2e-5)
    assert losses["latentjax"][-1] < losses["latentjax"][0]


def test_compiler_options_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("LATENTJAX_XLA_YNN", "0")
    assert _xla.compiler_options("cpu") is None
    monkeypatch.setenv("LATENTJAX_XLA_YNN", "1")
    assert _xla.compiler_options("cpu") == {
        "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
    }


def test_evaluate_matches_a_loop(sprites16, key):
    model = models.create(key, CFG)
    ev = train.evaluate(model, key, sprites16[:130], batch_size=50)
    x = models.to_float(sprites16[:130])
    rec = jax.vmap(models.reconstruct, in_axes=(None, 0))(model, x)
    np.testing.assert_allclose(ev["recon_mse"], float(jnp.mean((rec - x) ** 2)), rtol=1e-5)


def test_evaluation_key_derives_from_the_run_key(sprites16, key):
    # No hidden constant key: the logged evaluation is train.evaluate with state.eval_key(run).
    res = train.fit(key, CFG, sprites16[:128], epochs=1, batch_size=64, eval_images=sprites16[:40])
    ev = train.evaluate(res.model, state.eval_key(res.state), sprites16[:40])
    assert res.history[-1]["eval_elbo"] == ev["elbo"]
    other = train.fit(
        jax.random.key(7), CFG, sprites16[:128], epochs=1, batch_size=64, eval_images=sprites16[:40]
    )
    assert other.history[-1]["eval_elbo"] != res.history[-1]["eval_elbo"]


def test_bad_images_raise(key):
    def fit(images):
        return train.fit(key, CFG, images, epochs=1, batch_size=1)

    with pytest.raises(DataError, match="NaN"):
        fit(np.full((2, 16, 16, 1), np.nan, np.float32))
    with pytest.raises(DataError, match="shape"):
        fit(np.zeros((2, 8, 8, 1), np.uint8))
    with pytest.raises(DataError, match=r"\(n, height, width, channels\)"):
        fit(np.zeros((16, 16), np.uint8))
    with pytest.raises(DataError, match="train_images must be uint8"):
        fit(np.zeros((2, 16, 16, 1), np.float32))
    with pytest.raises(DataError, match="eval_images"):
        train.fit(
            key,
            CFG,
            np.zeros((2, 16, 16, 1), np.uint8),
            epochs=1,
            batch_size=1,
            eval_images=np.zeros((2, 8, 8, 1)),
        )


@pytest.mark.slow
def test_vae_beats_pca_on_fashion_mnist(data_dir, key):
    ds = data.load("fashion_mnist", data_dir=data_dir, limit=10000)
    cfg = models.Config(arch="mlp", image_shape=(28, 28, 1), latent_dim=16, hidden=400, likelihood="gaussian")
    model = train.fit(key, cfg, ds.train_images, epochs=5, batch_size=128, progress=False).model
    test = ds.test_images[:2000]
    vae = train.evaluate(model, key, test)["recon_mse"]
    pca = demo.pca_recon_mse(ds.train_images, test, num_components=16)
    assert vae < pca, (vae, pca)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_microbatches_equal_one_pass(arch, sprites16, key):
    # make_step(microbatches=k) sums the gradients of k slices, each example keeping its key:
    # the same 10-step trajectory as the one-pass step, to float32 rounding.
    cfg = CFG._replace(arch=arch, channels=4) if arch == "conv" else CFG
    graphdef, st, tx = state.init(key, cfg, learning_rate=1e-3)
    idx = jnp.arange(10 * 32).reshape(10, 32) % len(sprites16)
    data_ = jnp.asarray(sprites16)
    out = {}
    for k in (1, 2, 4):
        out[k] = _xla.jit(loop.make_scan(train.make_step(graphdef, tx, microbatches=k)))(st, data_, idx)
    for k in (2, 4):
        np.testing.assert_allclose(out[k][1], out[1][1], rtol=1e-5)
        for a, b in zip(jax.tree.leaves(out[k][0].params), jax.tree.leaves(out[1][0].params)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(LatentJaxError, match="does not split into 3"):
        train.make_step(graphdef, tx, microbatches=3)(st, sprites16[:32])
    with pytest.raises(LatentJaxError, match="microbatches must be >= 1"):
        train.make_step(graphdef, tx, microbatches=0)
    with pytest.raises(LatentJaxError, match="axis_name"):
        train.make_step(graphdef, tx, microbatches=2, axis_name="data")


def test_loss_fn_takes_the_key_after_the_params(sprites16, key):
    graphdef, st, _ = state.init(key, CFG, learning_rate=1e-3)
    images = sprites16[:8]
    loss = train.loss_fn(st.params, jax.random.key(1), images, graphdef=graphdef)
    model = models.create(jax.random.split(key)[0], CFG)
    keys = jax.random.split(jax.random.key(1), 8)
    elbos = jax.vmap(models.elbo, in_axes=(None, 0, 0))(model, keys, models.to_float(images))
    np.testing.assert_allclose(loss, -jnp.mean(elbos), rtol=1e-6)
