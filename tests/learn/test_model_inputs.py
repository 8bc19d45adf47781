"""The input checks of the models' functions (images, latents, ``num_samples``) and their dtype
policy: float32 results for float64 inputs under x64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax.errors import DataError, InputError
from latentjax.learn import models

SMALL = {
    "mlp": models.Config(arch="mlp", image_shape=(8, 8, 1), latent_dim=3, hidden=16),
    "ae": models.Config(kind="ae", arch="mlp", image_shape=(8, 8, 1), latent_dim=3, hidden=16),
    "conv_rgb_gauss": models.Config(
        arch="conv", image_shape=(16, 16, 3), latent_dim=4, hidden=16, channels=4, likelihood="gaussian"
    ),
}


IMAGE_FNS = {
    "encode": lambda m, x: models.encode(m, x),
    "reconstruct": lambda m, x: models.reconstruct(m, x),
    "elbo": lambda m, x: models.elbo(m, jax.random.key(0), x),
    "iwae_bound": lambda m, x: models.iwae_bound(m, jax.random.key(0), x, num_samples=2),
    "log_likelihood": lambda m, x: models.log_likelihood(m, x, jnp.zeros(3)),
}


@pytest.mark.parametrize("fn", list(IMAGE_FNS))
def test_bad_images_raise_naming_x(fn, key):
    model = models.create(key, SMALL["mlp"])
    f = IMAGE_FNS[fn]
    good = np.full((8, 8, 1), 0.5, np.float32)
    u8 = np.full((8, 8, 1), 200, np.uint8)  # read as 200.0 this gave latents near -56 and an ELBO of -inf
    with pytest.raises(
        InputError, match=f"learn.models.{fn}: x must be a float image in \\[0, 1\\], got dtype uint8"
    ):
        f(model, u8)
    with pytest.raises(InputError, match="x must be a float image"):  # static: also under jit
        jax.jit(f)(model, jnp.asarray(u8))
    over = good.copy()
    over[1, 2, 0] = 200.0
    with pytest.raises(InputError, match=r"x must lie in \[0, 1\], got values in \[0.5, 200\]"):
        f(model, over)
    bad = good.copy()
    bad[2, 3, 0] = np.nan
    with pytest.raises(InputError, match=r"x contains 1 NaN/inf value \(first at index \(2, 3, 0\)\)"):
        f(model, bad)
    # value checks are skipped for traced values (the policy): under jit it computes
    assert np.all(np.isfinite(jax.tree.leaves(jax.jit(f)(model, good + 1.0))))
    np.testing.assert_allclose(
        jax.tree.leaves(jax.jit(f)(model, good)), jax.tree.leaves(f(model, good)), rtol=1e-5
    )


@pytest.mark.parametrize("fn", ["decode", "decode_logits", "log_likelihood"])
def test_bad_latents_raise_naming_z(fn, key):
    model = models.create(key, SMALL["mlp"])
    f = (
        (lambda m, z: models.log_likelihood(m, jnp.zeros((8, 8, 1)), z))
        if fn == "log_likelihood"
        else getattr(models, fn)
    )
    with pytest.raises(InputError, match=f"learn.models.{fn}: z contains 1 NaN/inf value"):
        f(model, np.array([0.0, np.nan, 1.0]))
    with pytest.raises(InputError, match="z must be one latent of shape"):
        jax.jit(f)(model, jnp.zeros(4))
    with pytest.raises(InputError, match="z must be a real array"):
        f(model, np.array(["a", "b", "c"]))
    # integer latents are fine (read as floats)
    np.testing.assert_allclose(f(model, np.array([1, 0, -1])), f(model, np.array([1.0, 0.0, -1.0])))


def test_iwae_num_samples_must_be_a_static_positive_int(key):
    model = models.create(key, SMALL["mlp"])
    x = jnp.full((8, 8, 1), 0.5)
    k = jax.random.key(1)
    with pytest.raises(
        InputError, match="iwae_bound: num_samples must be a concrete integer, got a traced value"
    ):
        jax.jit(lambda n: models.iwae_bound(model, k, x, num_samples=n))(4)
    with pytest.raises(InputError, match="num_samples must be >= 1, got 0"):
        models.iwae_bound(model, k, x, num_samples=0)
    with pytest.raises(InputError, match="num_samples must be an integer"):
        models.iwae_bound(model, k, x, num_samples=2.0)
    np.testing.assert_allclose(
        models.iwae_bound(model, k, x, num_samples=np.int64(3)), models.iwae_bound(model, k, x, num_samples=3)
    )
    with pytest.raises(InputError, match="model must be a VAE"):
        models.iwae_bound(models.create(key, SMALL["ae"]), k, x, num_samples=2)


def test_encode_images_rejects_bad_batches(key):
    model = models.create(key, SMALL["mlp"])
    with pytest.raises(DataError, match=r"encode_images: images have shape \(9, 9, 1\)"):
        models.encode_images(model, np.zeros((2, 9, 9, 1), np.uint8))
    with pytest.raises(DataError, match=r"encode_images: images must be uint8 or float"):
        models.encode_images(model, np.zeros((2, 8, 8, 1), np.int64))
    with pytest.raises(DataError, match=r"encode_images: images must lie in \[0, 1\]"):
        models.encode_images(model, np.full((2, 8, 8, 1), 3.0))
    with pytest.raises(DataError, match="encode_images: images are empty"):
        models.encode_images(model, np.zeros((0, 8, 8, 1), np.uint8))
    with pytest.raises(InputError, match="batch_size must be >= 1"):
        models.encode_images(model, np.zeros((2, 8, 8, 1), np.uint8), batch_size=0)


@pytest.mark.parametrize("name", ["mlp", "conv_rgb_gauss"])
def test_float64_inputs_under_x64_give_float32(name, key):
    # The documented policy: models compute in float32 (their parameters' dtype), also under x64.
    cfg = SMALL[name]
    model = models.create(key, cfg)
    x32 = np.asarray(jax.random.uniform(jax.random.key(1), cfg.image_shape))
    z32 = np.asarray(jax.random.normal(jax.random.key(2), (cfg.latent_dim,)))
    k = jax.random.key(3)
    fns = {
        "encode": lambda x, z: models.encode(model, x),
        "decode": lambda x, z: models.decode(model, z),
        "reconstruct": lambda x, z: models.reconstruct(model, x),
        "log_likelihood": lambda x, z: models.log_likelihood(model, x, z),
        "elbo": lambda x, z: models.elbo(model, k, x),
        "iwae_bound": lambda x, z: models.iwae_bound(model, k, x, num_samples=3),
        "sample": lambda x, z: models.sample(model, k),
    }
    ref = {n: f(x32, z32) for n, f in fns.items()}
    with jax.enable_x64(True):
        x64, z64 = jnp.asarray(x32, jnp.float64), jnp.asarray(z32, jnp.float64)
        got = {n: f(x64, z64) for n, f in fns.items()}
        got["jit_elbo"] = jax.jit(fns["elbo"])(x64, z64)
        enc = models.encode_images(model, np.asarray(x64)[None])
    got_leaves = jax.tree.leaves(got)
    assert all(a.dtype == jnp.float32 for a in got_leaves), {
        n: jax.tree.map(lambda a: a.dtype, v) for n, v in got.items()
    }
    assert enc.dtype == np.float32
    for n in fns:
        np.testing.assert_allclose(
            jax.tree.leaves(got[n]), jax.tree.leaves(ref[n]), rtol=1e-5, atol=1e-6, err_msg=n
        )
