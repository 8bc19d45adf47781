"""Properties of latentjax.learn.models' single-example functions: vmap equals a Python loop,
float32 outputs by design (also for float64 inputs under x64), and images that are not floats in
[0, 1] refused with a latentjax error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from latentjax.errors import LatentJaxError
from latentjax.learn import models

PROPS = settings.get_profile("latentjax-properties")
SHAPE, LATENT, B = (8, 8, 1), 2, 4
images = hnp.arrays(np.float32, (B, *SHAPE), elements=st.floats(0, 1, width=32, allow_subnormal=False))
latents = hnp.arrays(np.float32, (B, LATENT), elements=st.floats(-5, 5, width=32, allow_subnormal=False))


def _create(likelihood):
    cfg = models.Config(image_shape=SHAPE, latent_dim=LATENT, hidden=8, likelihood=likelihood)
    return models.create(jax.random.key(0), cfg)


@pytest.fixture(scope="module")
def model():
    return _create("bernoulli")


@pytest.fixture(scope="module", params=["bernoulli", "gaussian"])
def any_model(request):
    return _create(request.param)


@settings(PROPS, max_examples=5)
@given(x=images)
def test_encode_vmap_equals_a_loop(model, x):
    vmapped = jax.vmap(models.encode, in_axes=(None, 0))(model, x)
    for i, xi in enumerate(x):
        q = models.encode(model, xi)
        np.testing.assert_allclose(vmapped.mean[i], q.mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(vmapped.log_var[i], q.log_var, rtol=1e-5, atol=1e-6)
    # The uint8 entry point: the same means for the same images (up to the 1/255 rounding).
    as_uint8 = np.round(x * 255).astype(np.uint8)
    means = jax.vmap(lambda xi: models.encode(model, xi).mean)(as_uint8.astype(np.float32) / 255)
    np.testing.assert_allclose(models.encode_images(model, as_uint8), means, rtol=1e-5, atol=1e-5)


@settings(PROPS, max_examples=5)
@given(z=latents)
def test_decode_vmap_equals_a_loop(model, z):
    vmapped = jax.vmap(models.decode, in_axes=(None, 0))(model, z)
    loop = np.stack([np.asarray(models.decode(model, zi)) for zi in z])
    np.testing.assert_allclose(vmapped, loop, rtol=1e-5, atol=1e-6)


@settings(PROPS, max_examples=3)
@given(x=images, seed=st.integers(0, 2**31 - 1))
def test_elbo_vmap_equals_a_loop(any_model, x, seed):
    keys = jax.random.split(jax.random.key(seed), B)
    vmapped = jax.vmap(models.elbo, in_axes=(None, 0, 0))(any_model, keys, x)
    loop = np.stack([np.asarray(models.elbo(any_model, k, xi)) for k, xi in zip(keys, x)])
    np.testing.assert_allclose(vmapped, loop, rtol=1e-5, atol=1e-4)


def test_models_compute_in_float32_also_for_float64_inputs(any_model):
    model = any_model
    x, z = np.full(SHAPE, 0.5), np.zeros(LATENT)
    outs = [models.encode(model, x.astype(np.float32)).mean, models.decode(model, z.astype(np.float32))]
    with jax.enable_x64(True):
        # float32 by design (DEVELOPERS.md, "dtypes"): the parameters' dtype.
        outs += [models.encode(model, jnp.asarray(x)).mean, models.decode(model, jnp.asarray(z))]
        outs += [models.elbo(model, jax.random.key(0), jnp.asarray(x)), models.reconstruct(model, x)]
    assert [o.dtype for o in outs] == [jnp.float32] * len(outs)


@settings(PROPS, max_examples=4)
@given(x=hnp.arrays(st.sampled_from([np.uint8, np.int32, np.int64]), SHAPE, elements=st.integers(0, 255)))
def test_integer_images_are_refused(model, x):
    for call in (
        lambda: models.encode(model, x),
        lambda: models.reconstruct(model, x),
        lambda: models.elbo(model, jax.random.key(0), x),
        lambda: models.log_likelihood(model, x, np.zeros(LATENT, np.float32)),
    ):
        with pytest.raises(LatentJaxError, match=r"\bx\b"):
            call()


@settings(PROPS, max_examples=4)
@given(
    x=hnp.arrays(np.float32, SHAPE, elements=st.floats(0, 1, width=32, allow_subnormal=False)),
    where=st.tuples(st.integers(0, SHAPE[0] - 1), st.integers(0, SHAPE[1] - 1)),
    value=st.sampled_from([255.0, 1.5, -0.1, np.nan, np.inf]),
)
def test_float_images_outside_the_unit_range_are_refused(model, x, where, value):
    x = x.copy()
    x[where[0], where[1], 0] = value
    with pytest.raises(LatentJaxError, match=r"\bx\b"):
        models.encode(model, x)
    with pytest.raises(LatentJaxError, match=r"\bx\b"):
        models.elbo(model, jax.random.key(0), x)
