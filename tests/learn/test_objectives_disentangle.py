"""beta-TCVAE, FactorVAE and the annealed-capacity VAE against numpy, in every trainer, resumed exactly;
and the 64x64 conv network of the disentanglement literature against flax's layers."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import stats
from scipy.special import logsumexp

from latentjax.errors import CheckpointError, InputError
from latentjax.learn import (
    _conv,
    _discriminator,
    checkpoint,
    models,
    objectives,
    parallel,
    population,
    runs,
    state,
    train,
)
from latentjax.learn._disentangle_objectives import mws_log_q

CFG = models.Config(image_shape=(8, 8, 1), latent_dim=3, hidden=16)
FACTOR = objectives.Objective("factor_vae", disc_hidden=8, disc_depth=2)


@pytest.fixture(scope="module")
def images():
    return ((np.random.default_rng(0).random((64, 8, 8, 1)) > 0.5) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def batch():
    """A tiny model, a batch, its keys and, in numpy, what every example draws."""
    model = models.create(jax.random.key(0), CFG)
    x = (np.random.default_rng(1).random((6, 8, 8, 1)) > 0.5).astype(np.float32)
    keys = jax.random.split(jax.random.key(2), 6)
    q = [models.encode(model, xi) for xi in x]
    mean = np.stack([np.asarray(qi.mean, np.float64) for qi in q])
    log_var = np.stack([np.asarray(qi.log_var, np.float64) for qi in q])
    eps = np.stack([np.asarray(jax.random.normal(k, (3,)), np.float64) for k in keys])
    z = mean + np.exp(0.5 * log_var) * eps
    log_px = np.array(
        [float(models.log_likelihood(model, xi, zi.astype(np.float32))) for xi, zi in zip(x, z)]
    )
    return model, x, keys, mean, log_var, z, log_px


def _np_mws(z, mean, log_var, n):
    """log q(z_i) and sum_d log q(z_i[d]) by MWS, in a double loop over samples and posteriors."""
    m, d = z.shape
    log_qz, log_prod = np.zeros(m), np.zeros(m)
    sd = np.exp(0.5 * log_var)
    for i in range(m):
        joint = [stats.norm.logpdf(z[i], mean[j], sd[j]).sum() for j in range(m)]
        log_qz[i] = logsumexp(joint) - math.log(n * m)
        for k in range(d):
            marg = [stats.norm.logpdf(z[i, k], mean[j, k], sd[j, k]) for j in range(m)]
            log_prod[i] += logsumexp(marg) - math.log(n * m)
    return log_qz, log_prod


def test_mws_matches_a_numpy_double_loop():
    rng = np.random.default_rng(3)
    z, mean, log_var = rng.normal(size=(5, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 4)) * 0.5
    got = mws_log_q(*(jnp.asarray(a, jnp.float32) for a in (z, mean, log_var)), dataset_size=1000)
    want = _np_mws(z, mean, log_var, 1000)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5)


def test_beta_tcvae_is_its_decomposition_computed_in_numpy(batch):
    model, x, keys, mean, log_var, z, log_px = batch
    spec = objectives.Objective("beta_tcvae", beta=1.5, tc_weight=6.0, alpha=0.5, dataset_size=300)
    got = objectives.OBJECTIVES["beta_tcvae"](model, keys, jnp.asarray(x), spec)
    sd = np.exp(0.5 * log_var)
    log_q_x = stats.norm.logpdf(z, mean, sd).sum(1)
    log_p = stats.norm.logpdf(z).sum(1)
    log_qz, log_prod = _np_mws(z, mean, log_var, 300)
    want = log_px - 0.5 * (log_q_x - log_qz) - 6.0 * (log_qz - log_prod) - 1.5 * (log_prod - log_p)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-3)
    # Every weight 1: the one-sample ELBO with the sampled KL (log p(x|z) + log p(z) - log q(z|x)).
    ones = spec._replace(beta=1.0, tc_weight=1.0, alpha=1.0)
    got1 = objectives.OBJECTIVES["beta_tcvae"](model, keys, jnp.asarray(x), ones)
    np.testing.assert_allclose(got1, log_px + log_p - log_q_x, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("step", [0, 30, 500])
def test_annealed_loss_is_the_formula(batch, step):
    model, x, keys, mean, log_var, _, log_px = batch
    spec = objectives.check(
        objectives.Objective("annealed_vae", gamma=100.0, capacity_max=5.0, capacity_steps=100), where="t"
    )
    got = objectives.OBJECTIVES["annealed_vae"](model, keys, jnp.asarray(x), spec, step=jnp.int32(step))
    kl = 0.5 * np.sum(np.exp(log_var) + mean**2 - 1.0 - log_var, axis=1)
    c = min(5.0, 5.0 * step / 100)
    loss = -np.mean(log_px) + 100.0 * abs(np.mean(kl) - c)  # Burgess et al. eq. 8 on the batch
    np.testing.assert_allclose(-float(jnp.mean(got)), loss, rtol=1e-5)


def _np_logits(params, z):
    h = z
    for layer in params[:-1]:
        a = h @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64)
        h = np.where(a > 0, a, 0.2 * a)
    return h @ np.asarray(params[-1]["w"], np.float64) + np.asarray(params[-1]["b"], np.float64)


def test_factor_vae_tc_estimate_and_discriminator_loss_match_numpy(batch):
    model, x, keys, mean, log_var, z, log_px = batch
    disc = _discriminator.init(jax.random.key(5), 3, hidden=8, depth=3)
    spec = objectives.check(FACTOR._replace(gamma=10.0, beta=2.0), where="t")
    got = objectives.OBJECTIVES["factor_vae"](model, keys, jnp.asarray(x), spec, aux=disc)
    logits = _np_logits(disc.params, z)
    kl = 0.5 * np.sum(np.exp(log_var) + mean**2 - 1.0 - log_var, axis=1)
    np.testing.assert_allclose(
        got, log_px - 2.0 * kl - 10.0 * (logits[:, 0] - logits[:, 1]), rtol=1e-5, atol=1e-3
    )
    # The discriminator: each column permuted on its own; cross-entropy of real (class 0) vs permuted (1).
    zj = jnp.asarray(z, jnp.float32)
    perm = np.asarray(_discriminator.permute_dims(jax.random.key(6), zj), np.float64)
    for k in range(3):
        np.testing.assert_allclose(np.sort(perm[:, k]), np.sort(z[:, k]), rtol=1e-6)
    assert not np.allclose(perm, z)
    lp = _np_logits(disc.params, perm)
    log_sm = lambda a: a - logsumexp(a, axis=1, keepdims=True)  # noqa: E731
    want = -0.5 * (np.mean(log_sm(logits)[:, 0]) + np.mean(log_sm(lp)[:, 1]))
    _, value = _discriminator.update(disc, jax.random.key(6), zj)
    np.testing.assert_allclose(float(value), want, rtol=1e-5)


def _leaves(tree):
    return [np.asarray(v) for v in jax.tree.leaves(checkpoint.keys_to_data(tree))]


def test_factor_vae_resumes_bit_for_bit_and_loads(tmp_path, images):
    kw = dict(epochs=2, batch_size=16, objective=FACTOR, progress=False, keep=1)
    images = images[:32]
    straight = train.fit(jax.random.key(0), CFG, images, **kw)
    run = tmp_path / "run"
    train.fit(jax.random.key(0), CFG, images, **{**kw, "epochs": 1}, out_dir=run)
    resumed = train.fit(jax.random.key(0), CFG, images, **kw, out_dir=run, resume=True)
    assert int(resumed.state.step) == 4
    for a, b in zip(_leaves(straight.state), _leaves(resumed.state)):
        np.testing.assert_array_equal(a, b)  # the model, its Adam, and the discriminator with its Adam
    assert len(jax.tree.leaves(resumed.state.aux)) == 2 * 3 + 2 * 2 * 3 + 1  # params, mu, nu, count
    saved = json.loads((run / "config.json").read_text())["train"]
    assert saved["objective"] == "factor_vae" and saved["objective_options"]["gamma"] == 35.0
    model, _ = runs.load_model(run)
    for a, b in zip(_leaves(nnx.state(model)), _leaves(straight.state.params)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(CheckpointError, match="objective_options"):
        train.fit(
            jax.random.key(0),
            CFG,
            images,
            **{**kw, "objective": FACTOR._replace(gamma=10.0)},
            out_dir=run,
            resume=True,
        )


def test_population_member_equals_its_one_device_run(images):
    kw = dict(epochs=1, batch_size=16, objective=FACTOR)
    single = train.fit(jax.random.key(1), CFG, images, **kw, beta=2.0)
    pop = population.fit([jax.random.key(0), jax.random.key(1)], CFG, images, betas=[1.0, 2.0], **kw)
    for a, b in zip(_leaves(single.state), _leaves(state.take(pop.state, 1))):  # the discriminator too
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_data_parallel_beta_tcvae_equals_one_device(images):
    """MWS over the whole global batch, its posteriors on 2 devices: the one-device step."""
    kw = dict(epochs=1, batch_size=16, objective="beta_tcvae")
    single = train.fit(jax.random.key(0), CFG, images, **kw)
    dp = parallel.fit_data_parallel(jax.random.key(0), CFG, images, **kw, devices=2)
    np.testing.assert_allclose(dp.history[0]["loss"], single.history[0]["loss"], rtol=1e-5)
    for a, b in zip(_leaves(dp.state.params), _leaves(single.state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_batch_objectives_refuse_splitting(images):
    with pytest.raises(InputError, match="whole batch"):
        train.fit(
            jax.random.key(0), CFG, images, epochs=1, batch_size=16, objective="beta_tcvae", microbatches=2
        )
    with pytest.raises(InputError, match="whole batch"):
        parallel.fit_data_parallel(
            jax.random.key(0), CFG, images, epochs=1, batch_size=16, objective="annealed_vae", parallel="pmap"
        )
    with pytest.raises(InputError, match="beta must be 1"):
        objectives.check(objectives.Objective("annealed_vae", beta=4.0), where="t")
    with pytest.raises(InputError, match="dataset_size"):
        objectives.check(objectives.Objective("beta_tcvae"), where="t")


def test_burgess_layers_equal_flax_conv_and_conv_transpose():
    x = jax.random.normal(jax.random.key(0), (8, 8, 3))
    down = nnx.Conv(3, 5, kernel_size=(4, 4), strides=(2, 2), padding="SAME", rngs=nnx.Rngs(1))
    np.testing.assert_allclose(_conv.conv_strided(down, x), down(x), rtol=1e-5, atol=1e-5)
    up = nnx.ConvTranspose(3, 5, kernel_size=(4, 4), strides=(2, 2), padding="SAME", rngs=nnx.Rngs(2))
    up.bias[...] = jax.random.normal(jax.random.key(3), (5,))
    got = _conv.conv_transpose_4x4(up, x)
    want = jax.lax.conv_transpose(
        x[None], up.kernel[...], (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    np.testing.assert_allclose(got, want[0] + up.bias[...][None, None], rtol=1e-5, atol=1e-5)
    model = nnx.eval_shape(lambda: models.create(jax.random.key(0), models.burgess_config()))
    shapes = [p.shape for p in jax.tree.leaves(nnx.state(model.encoder)) if len(p.shape) == 4]
    assert shapes == [(4, 4, 1, 32), (4, 4, 32, 32), (4, 4, 32, 64), (4, 4, 64, 64)]
    assert model.decoder.dense2.kernel.shape == (256, 4 * 4 * 64)
    image = jax.eval_shape(
        lambda: models.decode(models.create(jax.random.key(0), models.burgess_config()), jnp.zeros(10))
    )
    assert image.shape == (64, 64, 1)
    with pytest.raises(InputError, match="divisible by 16"):
        models.Config(arch="conv", conv_net="burgess", image_shape=(28, 28, 1)).validate()


@pytest.mark.slow
def test_beta_tcvae_lowers_the_total_correlation_on_dsprites():
    """On 256 dSprites images, beta-TCVAE's posterior means are less correlated than the VAE's.

    Measured by the total correlation of a Gaussian fitted to the means, -log det(corr) / 2.
    """
    from latentjax.data import _dsprites

    _, imgs = _dsprites.DSprites().sample(jax.random.key(0), 256)
    cfg = models.Config(image_shape=(64, 64, 1), latent_dim=5, hidden=64)

    def tc(objective):
        res = train.fit(jax.random.key(0), cfg, imgs, epochs=40, batch_size=64, objective=objective)
        z = models.encode_images(res.model, imgs)
        return -0.5 * np.linalg.slogdet(np.corrcoef(z.T))[1]

    vae, tcvae = tc("elbo"), tc(objectives.Objective("beta_tcvae", tc_weight=10.0))
    assert tcvae < 0.85 * vae, (vae, tcvae)
