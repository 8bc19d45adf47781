"""Models: single-example functions against loops, numpy/scipy references, closed forms and the
IWAE ordering (input checks: ``test_model_inputs.py``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from jax.test_util import check_grads

from latentjax.errors import InputError
from latentjax.learn import _conv, models, state, train

SMALL = {
    "mlp": models.Config(arch="mlp", image_shape=(8, 8, 1), latent_dim=3, hidden=16),
    "conv": models.Config(arch="conv", image_shape=(8, 8, 1), latent_dim=3, hidden=16, channels=4),
    "conv_rgb_gauss": models.Config(
        arch="conv", image_shape=(16, 16, 3), latent_dim=4, hidden=16, channels=4, likelihood="gaussian"
    ),
    "ae": models.Config(kind="ae", arch="mlp", image_shape=(8, 8, 1), latent_dim=3, hidden=16),
}


def _images(key, cfg, n=5):
    return jax.random.uniform(key, (n,) + cfg.image_shape)


@pytest.mark.parametrize("name", list(SMALL))
def test_vmap_equals_loop(name, key):
    cfg = SMALL[name]
    model = models.create(key, cfg)
    x = _images(jax.random.key(1), cfg)
    z = jax.random.normal(jax.random.key(2), (5, cfg.latent_dim))
    keys = jax.random.split(jax.random.key(3), 5)
    fns = {
        "encode": (lambda m, xi: models.encode(m, xi).mean, x),
        "decode": (models.decode, z),
        "reconstruct": (models.reconstruct, x),
    }
    for fname, (f, batch) in fns.items():
        batched = jax.vmap(f, in_axes=(None, 0))(model, batch)
        looped = jnp.stack([f(model, b) for b in batch])
        np.testing.assert_allclose(batched, looped, rtol=1e-5, atol=1e-5, err_msg=fname)
    b = jax.vmap(models.elbo, in_axes=(None, 0, 0))(model, keys, x)
    loop = jnp.stack([models.elbo(model, k, xi) for k, xi in zip(keys, x)])
    np.testing.assert_allclose(b, loop, rtol=1e-5)
    s = jax.vmap(models.sample, in_axes=(None, 0))(model, keys)
    np.testing.assert_allclose(s, jnp.stack([models.sample(model, k) for k in keys]), rtol=1e-5, atol=1e-6)
    if cfg.kind == "vae":
        iw = jax.vmap(lambda k, xi: models.iwae_bound(model, k, xi, num_samples=4))(keys, x)
        loop = jnp.stack([models.iwae_bound(model, k, xi, num_samples=4) for k, xi in zip(keys, x)])
        np.testing.assert_allclose(iw, loop, rtol=1e-5)


def _np_mlp(layers, out, act, v):
    """An nnx MLP (``Linear`` layers, ``act`` between) in float64 numpy from its parameters."""
    h = np.asarray(v, np.float64)
    for layer in layers:
        h = act(h @ np.asarray(layer.kernel[...], np.float64) + np.asarray(layer.bias[...], np.float64))
    return h @ np.asarray(out.kernel[...], np.float64) + np.asarray(out.bias[...], np.float64)


def _np_swish(h):
    return h / (1.0 + np.exp(-h))


def _np_sigmoid(h):
    return 1.0 / (1.0 + np.exp(-h))


def _np_encode(model, x):
    out = _np_mlp(model.encoder.hidden, model.encoder.out, _np_swish, np.reshape(x, -1))
    return np.split(out, 2)


def _np_logits(model, z):
    return _np_mlp(model.decoder.hidden, model.decoder.out, _np_swish, z).reshape(model.config.image_shape)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_mlp_functions_equal_a_numpy_reimplementation(likelihood, key):
    # encode/decode from the parameters in float64 numpy; log p(x|z) against a numpy Bernoulli
    # cross-entropy or scipy.stats.norm; the ELBO as that log-likelihood at the reparameterised z
    # minus beta times the diagonal-Gaussian KL in numpy.
    cfg = SMALL["mlp"]._replace(likelihood=likelihood, depth=2)
    model = models.create(key, cfg)
    if likelihood == "gaussian":  # a non-default scale, so that a wrong use of it shows
        model.log_scale[...] = jnp.asarray(-1.3, jnp.float32)
    x = np.asarray(_images(jax.random.key(1), cfg, 1)[0])
    z = np.asarray(jax.random.normal(jax.random.key(2), (cfg.latent_dim,)))
    mean, log_var = _np_encode(model, x)
    q = models.encode(model, x)
    np.testing.assert_allclose(q.mean, mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(q.log_var, log_var, rtol=1e-4, atol=1e-5)
    logits = _np_logits(model, z)
    np.testing.assert_allclose(models.decode_logits(model, z), logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(models.decode(model, z), _np_sigmoid(logits), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        models.sample(model, key, temperature=0.0), _np_sigmoid(_np_logits(model, 0 * z)), atol=1e-6
    )
    np.testing.assert_allclose(models.reconstruct(model, x), _np_sigmoid(_np_logits(model, mean)), atol=1e-5)

    def np_log_lik(zz):
        p = _np_sigmoid(_np_logits(model, zz))
        if likelihood == "bernoulli":
            return np.sum(x * np.log(p) + (1 - x) * np.log1p(-p))
        return np.sum(scipy.stats.norm.logpdf(x, loc=p, scale=np.exp(-1.3)))

    np.testing.assert_allclose(models.log_likelihood(model, x, z), np_log_lik(z), rtol=1e-5)
    kl = 0.5 * np.sum(np.exp(log_var) + mean**2 - 1.0 - log_var)
    np.testing.assert_allclose(models.kl_divergence(q), kl, rtol=1e-4)
    k = jax.random.key(3)
    z_k = mean + np.exp(0.5 * log_var) * np.asarray(jax.random.normal(k, (cfg.latent_dim,)), np.float64)
    np.testing.assert_allclose(models.elbo(model, k, x, beta=0.5), np_log_lik(z_k) - 0.5 * kl, rtol=1e-4)
    ae = models.create(key, cfg._replace(kind="ae"))
    code = _np_mlp(ae.encoder.hidden, ae.encoder.out, _np_swish, x.reshape(-1))
    np.testing.assert_allclose(models.encode(ae, x).mean, code, rtol=1e-4, atol=1e-5)
    assert models.encode(ae, x).log_var is None


@pytest.mark.parametrize("name", ["mlp", "conv_rgb_gauss"])
@pytest.mark.parametrize("as_uint8", [True, False])
def test_encode_images_equals_per_image_encode(name, as_uint8, key):
    cfg = SMALL[name]
    model = models.create(key, cfg)
    u8 = np.random.default_rng(0).integers(0, 256, (7,) + cfg.image_shape, dtype=np.uint8)
    images = u8 if as_uint8 else u8 / 255.0  # float64 in [0, 1]
    got = models.encode_images(model, images, batch_size=3)  # chunks 3, 3 and a padded 1
    loop = np.stack([np.asarray(models.encode(model, u8[i].astype(np.float32) / 255).mean) for i in range(7)])
    assert got.dtype == np.float32 and got.shape == (7, cfg.latent_dim)
    np.testing.assert_allclose(got, loop, rtol=1e-5, atol=1e-5)


def test_check_grads_elbo(key):
    cfg = SMALL["mlp"]
    model = models.create(key, cfg)
    # inside (0, 1), so that the finite differences stay valid images
    x = 0.1 + 0.8 * _images(jax.random.key(1), cfg, 1)[0]
    k = jax.random.key(2)
    # With respect to the image and to the latent mean path: elbo is a smooth function of both.
    check_grads(
        lambda xi: models.elbo(model, k, xi), (x,), order=1, modes=["rev"], eps=1e-2, rtol=2e-2, atol=2e-2
    )

    leaves, treedef = jax.tree.flatten(model)
    w_index = max(range(len(leaves)), key=lambda i: leaves[i].size)

    def by_weight(w):
        ls = list(leaves)
        ls[w_index] = w
        return models.elbo(jax.tree.unflatten(treedef, ls), k, x)

    check_grads(by_weight, (leaves[w_index],), order=1, modes=["rev"], eps=1e-2, rtol=2e-2, atol=2e-2)


def test_gaussian_kl_closed_form():
    rng = np.random.default_rng(0)
    for d in (1, 3, 10):
        mean = rng.normal(size=d)
        log_var = rng.normal(size=d)
        ours = float(models.kl_divergence(models.Gaussian(jnp.asarray(mean), jnp.asarray(log_var))))
        # KL(N(m, S) || N(0, I)) = 0.5 (tr S + m'm - d - log det S), with a full covariance matrix.
        cov = np.diag(np.exp(log_var))
        ref = 0.5 * (np.trace(cov) + mean @ mean - d - np.linalg.slogdet(cov)[1])
        np.testing.assert_allclose(ours, ref, rtol=1e-5)
    # and by Monte Carlo: E_q[log q - log p]
    mean, log_var = jnp.array([0.3, -1.0]), jnp.array([-0.5, 0.4])
    z = mean[None] + jnp.exp(0.5 * log_var)[None] * jax.random.normal(jax.random.key(0), (200000, 2))
    logq = jnp.sum(
        -0.5 * (jnp.log(2 * jnp.pi) + log_var[None] + (z - mean[None]) ** 2 / jnp.exp(log_var)[None]), -1
    )
    logp = jnp.sum(-0.5 * (jnp.log(2 * jnp.pi) + z**2), -1)
    np.testing.assert_allclose(
        float(jnp.mean(logq - logp)), float(models.kl_divergence(models.Gaussian(mean, log_var))), rtol=2e-2
    )


def test_iwae_one_sample_matches_elbo_in_distribution(key):
    cfg = SMALL["mlp"]
    model = models.create(key, cfg)
    x = _images(jax.random.key(1), cfg, 1)[0]
    keys = jax.random.split(jax.random.key(7), 20000)
    iw1 = jax.vmap(lambda k: models.iwae_bound(model, k, x, num_samples=1))(keys)
    el = jax.vmap(lambda k: models.elbo(model, k, x))(jax.random.split(jax.random.key(8), 20000))
    se = float(jnp.sqrt(jnp.var(iw1) / len(keys) + jnp.var(el) / len(keys)))
    assert abs(float(jnp.mean(iw1) - jnp.mean(el))) < 4 * se


def test_iwae_increases_with_samples_on_trained_model(key):
    from latentjax import data

    images, _ = data.sprites(num_images=2048, size=16, seed=0)
    cfg = models.Config(arch="mlp", image_shape=(16, 16, 1), latent_dim=4, hidden=64)
    model = train.fit(key, cfg, images[:1536], epochs=6, batch_size=64, progress=False).model
    x = models.to_float(images[1536:1736])

    def mean_bound(k, num):
        keys = jax.random.split(jax.random.fold_in(jax.random.key(11), num), (64, len(x)))
        f = jax.vmap(
            jax.vmap(lambda kk, xi: models.iwae_bound(model, kk, xi, num_samples=num)), in_axes=(0, None)
        )
        return float(jnp.mean(f(keys, x)))

    l1, l8, l64 = mean_bound(key, 1), mean_bound(key, 8), mean_bound(key, 64)
    assert l1 <= l8 + 0.05 and l8 <= l64 + 0.05, (l1, l8, l64)
    assert l64 > l1  # strictly better on average once the posterior is not exact


def test_bad_shapes_raise(key):
    model = models.create(key, SMALL["mlp"])
    with pytest.raises(InputError, match=r"encode: x must be one image of shape \(8, 8, 1\)"):
        models.encode(model, jnp.zeros((3, 8, 8, 1)))
    with pytest.raises(InputError, match=r"decode: z must be one latent of shape \(3,\)"):
        models.decode(model, jnp.zeros(5))
    with pytest.raises(InputError, match="log_likelihood: z must be one latent"):
        models.log_likelihood(model, jnp.zeros((8, 8, 1)), jnp.zeros((1, 3)))
    with pytest.raises(InputError, match="arch"):
        models.Config(arch="transformer").validate()
    with pytest.raises(InputError, match="divisible"):
        models.Config(arch="conv", image_shape=(30, 30, 1)).validate()


def test_config_json_round_trip():
    cfg = SMALL["conv_rgb_gauss"]
    assert models.Config.from_json(cfg.to_json()) == cfg
    with pytest.raises(InputError, match="unknown"):
        models.Config.from_json({"kind": "vae", "colour": 1})


def test_bfloat16_compute_keeps_float32_params(key):
    cfg = SMALL["conv"]._replace(compute_dtype="bfloat16")
    model = models.create(key, cfg)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(model))
    x = _images(jax.random.key(1), cfg, 1)[0]
    g = jax.grad(lambda m: models.elbo(m, key, x))(model)
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree.leaves(g))
    ref = models.elbo(models.create(key, SMALL["conv"]), key, x)
    np.testing.assert_allclose(models.elbo(model, key, x), ref, rtol=3e-2)


def _reference_conv_decoder(dec, z):
    """The conv decoder as its layers read: nnx.Conv calls, depth-to-space, then the output conv."""
    act = models.ACTIVATIONS[dec.act]
    h = act(dec.dense2(act(dec.dense1(z)))).reshape(dec.start)
    for conv in dec.ups:
        h = act(_conv.depth_to_space(conv(h)))
    return dec.out(h)


def _reference_conv_encoder(enc, x):
    act = models.ACTIVATIONS[enc.act]
    h = x
    for conv in enc.convs:
        h = act(conv(h))
    return enc.out(act(enc.dense(h.reshape(-1))))


@pytest.mark.parametrize("shape,channels", [((28, 28, 1), 8), ((16, 16, 3), 4), ((32, 24, 3), 4)])
def test_fast_conv_layers_equal_nnx_conv(shape, channels, key):
    # The conv encoder/decoder compute their nnx.Conv layers in faster forms (dot-broadcast bias,
    # the last conv taken on the sub-pixel layout): values, gradients of a vmapped loss and
    # forward-mode Jacobians must equal the plain layers'.
    cfg = models.Config(arch="conv", image_shape=shape, latent_dim=5, hidden=16, channels=channels)
    model = models.create(key, cfg)
    z = jax.random.normal(jax.random.key(1), (3, 5))
    x = jax.random.uniform(jax.random.key(2), (3,) + shape)
    from flax import nnx

    @jax.jit
    def outputs(m):
        dec, enc = m.decoder, m.encoder
        return (
            jax.vmap(dec)(z),
            jax.vmap(lambda v: _reference_conv_decoder(dec, v))(z),
            jax.vmap(enc)(x),
            jax.vmap(lambda v: _reference_conv_encoder(enc, v))(x),
            jax.jacfwd(dec)(z[0]),
            jax.jacrev(lambda v: _reference_conv_decoder(dec, v))(z[0]),
        )

    def loss(m, fast):
        d = (lambda v: m.decoder(v)) if fast else (lambda v: _reference_conv_decoder(m.decoder, v))
        e = (lambda v: m.encoder(v)) if fast else (lambda v: _reference_conv_encoder(m.encoder, v))
        return jnp.sum(jnp.sin(jax.vmap(d)(z))) + jnp.sum(jnp.cos(jax.vmap(e)(x)))

    grads = jax.jit(
        lambda m: [nnx.state(nnx.grad(lambda mm, f=f: loss(mm, f))(m), nnx.Param) for f in (True, False)]
    )
    dec_fast, dec_ref, enc_fast, enc_ref, jac_fwd, jac_rev = outputs(model)
    np.testing.assert_allclose(dec_fast, dec_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(enc_fast, enc_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jac_fwd, jac_rev, rtol=1e-5, atol=1e-6)
    g_fast, g_ref = grads(model)
    for a, b in zip(jax.tree.leaves(g_fast), jax.tree.leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(jnp.max(jnp.abs(b))))


def test_bf16_compute_keeps_fp32_params_and_tracks_fp32_loss():
    assert models.compute_dtype("auto", backend="cpu") == "float32"
    assert models.compute_dtype("auto", backend="gpu") == "bfloat16"
    with pytest.raises(InputError, match="precision"):
        models.compute_dtype("fp16")
    cfg0 = models.Config(latent_dim=4, hidden=32, activation="relu")
    images = np.random.default_rng(0).integers(0, 256, (32, 28, 28, 1), dtype=np.uint8)
    losses = {}
    for dt in ("float32", "bfloat16"):
        cfg = cfg0._replace(compute_dtype=dt)
        graphdef, st, tx = state.init(jax.random.key(0), cfg, learning_rate=1e-3)
        step = train.make_step(graphdef, tx)
        jaxpr = str(jax.make_jaxpr(step)(st, images))
        new, m = jax.jit(step)(st, images)
        losses[dt] = float(m["loss"])
        assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(new.params))
        assert all(
            x.dtype == jnp.float32
            for x in jax.tree.leaves(new.opt_state)
            if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)
        )
        # the matmuls (forward and backward) run in the compute dtype
        assert ("bf16[" in jaxpr and "dot_general" in jaxpr) == (dt == "bfloat16")
    np.testing.assert_allclose(losses["bfloat16"], losses["float32"], rtol=2e-2)
