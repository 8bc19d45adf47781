"""Objectives: IWAE against a numpy logsumexp, k = 1 against the ELBO, every trainer takes them.

References: the bound recomputed in numpy/scipy from the network's encoder and decoder outputs; the
ELBO's closed-form KL; a Python loop of one-sample ELBOs; ``optax.adam`` at each stage's rate;
``train.fit`` for the data-parallel and population trainers.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.test_util import check_grads
from scipy.special import logsumexp
from trainhelp import leaves_equal, max_diff, random_images

from latentjax import data
from latentjax.errors import CheckpointError, InputError
from latentjax.learn import _optimizer, models, objectives, parallel, population, runs, state, train

CFG = models.Config(image_shape=(4, 4, 1), latent_dim=2, hidden=8, activation="tanh")
BIG = models.Config(image_shape=(8, 8, 1), latent_dim=3, hidden=16, depth=2, activation="tanh")


@pytest.fixture(scope="module")
def tiny():
    model = models.create(jax.random.key(3), CFG)
    x = np.random.default_rng(0).uniform(size=(3, 4, 4, 1)).astype(np.float32)
    return model, x


def _numpy_log_weights(model, key, x, k):
    """log p(x, z_j) - log q(z_j|x) for z_j = mean + std * eps_j, computed in numpy (float64)."""
    q = models.encode(model, x)
    mean, log_var = np.asarray(q.mean, np.float64), np.asarray(q.log_var, np.float64)
    eps = np.asarray(jax.random.normal(key, (k, CFG.latent_dim)), np.float64)
    z = mean + np.exp(0.5 * log_var) * eps
    logits = np.stack([np.asarray(models.decode_logits(model, jnp.float32(zj)), np.float64) for zj in z])
    xf = np.asarray(x, np.float64)[None]
    log_px = np.sum(xf * logits - np.logaddexp(0, logits), axis=(1, 2, 3))
    log_pz = np.sum(-0.5 * (np.log(2 * np.pi) + z**2), axis=1)
    log_qz = np.sum(-0.5 * (np.log(2 * np.pi) + log_var + eps**2), axis=1)
    kl = 0.5 * np.sum(np.exp(log_var) + mean**2 - 1 - log_var)
    return log_px + log_pz - log_qz, log_px, kl


def test_iwae_loss_equals_a_numpy_logsumexp(tiny):
    model, x = tiny
    graphdef, params = nnx.split(model)
    images = np.round(x * 255).astype(np.uint8)
    xf = images.astype(np.float32) / 255
    key = jax.random.key(7)
    keys = jax.random.split(key, 3)
    ref = [logsumexp(_numpy_log_weights(model, keys[i], xf[i], 5)[0]) - np.log(5) for i in range(3)]
    loss = train.loss_fn(params, key, images, graphdef=graphdef, objective="iwae", num_samples=5)
    np.testing.assert_allclose(float(loss), -np.mean(ref), rtol=2e-6)
    # L_k grows with k towards log p(x) (Burda et al., theorem 1), on average over keys
    keys = jax.random.split(jax.random.key(0), 500)
    xs = jnp.broadcast_to(xf[0], (500,) + xf[0].shape)
    l1, l50 = (
        float(jnp.mean(objectives.iwae(model, keys, xs, objectives.Objective("iwae", num_samples=k))))
        for k in (1, 50)
    )
    assert l50 > l1


def test_iwae_with_one_sample_is_the_elbo(tiny):
    model, x = tiny
    key = jax.random.key(11)
    iw = float(models.iwae_bound(model, key, x[0], num_samples=1))
    el = float(models.elbo(model, key, x[0]))
    log_w, log_px, kl = _numpy_log_weights(model, key, x[0], 1)
    # the same latent: the likelihood terms agree; only the KL's estimator differs (sampled vs exact)
    np.testing.assert_allclose(iw, log_w[0], rtol=1e-5)
    np.testing.assert_allclose(el, log_px[0] - kl, rtol=1e-5)
    # and in expectation they are equal: mean over 4,000 keys within 4 standard errors
    keys = jax.random.split(jax.random.key(0), 4000)
    xs = jnp.broadcast_to(x[0], (4000,) + x[0].shape)
    iws = objectives.iwae(model, keys, xs, objectives.Objective("iwae", num_samples=1))
    els = objectives.elbo(model, keys, xs, objectives.Objective())
    diff = np.asarray(iws - els, np.float64)
    assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(len(diff))


def test_elbo_with_k_samples_is_the_mean_of_one_sample_elbos(tiny):
    model, x = tiny
    keys = jax.random.split(jax.random.key(2), 3)
    got = objectives.elbo(model, keys, x, objectives.Objective(beta=2.0, num_samples=4))
    ref = [
        np.mean([float(models.elbo(model, kj, x[i], beta=2.0)) for kj in jax.random.split(keys[i], 4)])
        for i in range(3)
    ]
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-5)


def test_iwae_gradients(tiny):
    model, x = tiny
    graphdef, params = nnx.split(model)
    images = np.round(x * 255).astype(np.uint8)

    @jax.jit
    def f(p):
        return train.loss_fn(p, jax.random.key(1), images, graphdef=graphdef, objective="iwae", num_samples=3)

    check_grads(f, (params,), order=1, modes=("rev",), atol=5e-2, rtol=5e-2)


def test_bad_objectives_raise(tiny):
    graphdef, st, tx = state.init(jax.random.key(0), CFG, learning_rate=1e-3)
    with pytest.raises(InputError, match="objective must be one of"):
        train.make_step(graphdef, tx, objective="tcvae")
    with pytest.raises(InputError, match="num_samples must be >= 1"):
        train.make_step(graphdef, tx, objective="iwae", num_samples=0)
    with pytest.raises(InputError, match="beta must be 1 with objective='iwae'"):
        train.make_step(graphdef, tx, objective="iwae", beta=4.0)
    with pytest.raises(InputError, match="binarize must be one of"):
        train.make_step(graphdef, tx, binarize="yes")
    images = random_images(8, (4, 4, 1))
    with pytest.raises(InputError, match="needs a VAE"):
        train.fit(
            jax.random.key(0), CFG._replace(kind="ae"), images, epochs=1, batch_size=4, objective="iwae"
        )


def test_adam_stages_follow_the_rate_of_each_stage():
    params = {"w": jnp.arange(3.0)}
    stages = [(1, 1e-2), (2, 1e-3), (1, 5e-4)]
    tx = _optimizer.adam(stages, steps_per_epoch=2, b1=0.9, b2=0.999, eps=1e-4)
    rates = [1e-2] * 2 + [1e-3] * 4 + [5e-4] * 2 + [5e-4] * 2  # the last rate continues
    st = tx.init(params)
    for step, rate in enumerate(rates):
        g = {"w": jnp.sin(params["w"] + step)}
        ref, _ = optax.adam(rate, b1=0.9, b2=0.999, eps=1e-4).update(g, st, params)
        upd, st = tx.update(g, st, params)
        np.testing.assert_allclose(upd["w"], ref["w"], rtol=1e-6)
        params = optax.apply_updates(params, upd)


def test_dynamic_iwae_resume_is_bitwise_exact_and_checks_the_objective(tmp_path):
    images = random_images(64, (8, 8, 1))
    kw = dict(
        batch_size=16,
        objective="iwae",
        num_samples=3,
        binarize="dynamic",
        learning_rate=[(1, 1e-3), (1, 5e-4)],
        adam_eps=1e-4,
        mode="scan",
        eval_images=images[:8],
    )
    ref = train.fit(jax.random.key(0), BIG, images, epochs=4, **kw)
    train.fit(jax.random.key(0), BIG, images, epochs=2, out_dir=tmp_path, **kw)
    with pytest.raises(CheckpointError, match="objective 'iwae' -> 'elbo'"):
        train.fit(
            jax.random.key(0),
            BIG,
            images,
            epochs=4,
            out_dir=tmp_path,
            resume=True,
            **{**kw, "objective": "elbo"},
        )
    with pytest.raises(CheckpointError, match="binarize 'dynamic' -> 'fixed'"):
        train.fit(
            jax.random.key(0),
            BIG,
            images,
            epochs=4,
            out_dir=tmp_path,
            resume=True,
            **{**kw, "binarize": "fixed"},
        )
    res = train.fit(jax.random.key(0), BIG, images, epochs=4, out_dir=tmp_path, resume=True, **kw)
    assert leaves_equal(res.state, ref.state)
    assert [h["loss"] for h in res.history] == [h["loss"] for h in ref.history[2:]]
    saved = runs.read_config(tmp_path).train
    assert (saved["objective"], saved["num_samples"], saved["binarize"]) == ("iwae", 3, "dynamic")
    assert saved["adam"]["eps"] == 1e-4 and saved["learning_rate"] == [[1, 1e-3], [1, 5e-4]]


def test_parallel_and_population_train_the_same_iwae():
    images = random_images(64, (8, 8, 1))
    kw = dict(epochs=1, batch_size=16, objective="iwae", num_samples=2, binarize="dynamic")
    ref = train.fit(jax.random.key(0), BIG, images, mode="scan", **kw)
    par = parallel.fit_data_parallel(jax.random.key(0), BIG, images, devices=2, **kw)
    assert max_diff(par.state.params, ref.state.params) < 1e-5
    pop = population.fit([jax.random.key(0), jax.random.key(0)], BIG, images, **kw)
    assert max_diff(state.take(pop.state, 1).params, ref.state.params) < 1e-5
    with pytest.raises(InputError, match="beta must be 1 with objective='iwae'"):
        population.fit([jax.random.key(0)], BIG, images, betas=4.0, **kw)


def test_fixed_binarization_is_one_draw_of_the_run():
    images = random_images(64, (8, 8, 1))
    job = train.loop.prepare(BIG, images, epochs=1, batch_size=16, eval_images=images[:8])
    a = train.binarized(job, jax.random.key(1), "fixed")
    b = train.binarized(job, jax.random.key(1), "fixed")
    assert np.array_equal(a.images, b.images) and set(np.unique(a.images)) == {0, 255}
    test = data.binarize(jax.random.key(data.BINARIZED_TEST_SEED), images[:8])
    assert np.array_equal(a.eval_images, test)
    assert np.array_equal(train.binarized(job, jax.random.key(1), "dynamic").eval_images, test)
