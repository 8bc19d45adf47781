"""Every model's loss compiles once in a user's jit loop (and in ``train.make_step``).

A weakly typed parameter (the Gaussian likelihood's ``log_scale`` was one) becomes strongly typed
after the first optimizer update, so the jitted step is traced and compiled again: 3 times in 4
steps. Each case counts traces with a Python side effect inside the step and checks the jit cache.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from latentjax.learn import models, state, train

IMAGE_SHAPE = (8, 8, 1)


def _config(arch: str, likelihood: str, kind: str = "vae") -> models.Config:
    return models.Config(
        kind=kind,
        arch=arch,
        image_shape=IMAGE_SHAPE,
        latent_dim=2,
        hidden=8,
        channels=2,
        likelihood=likelihood,
    )


def _objective(name: str, model, key, x):
    if name == "elbo":
        return models.elbo(model, key, x)
    return models.iwae_bound(model, key, x, num_samples=3)


CASES = [
    (arch, likelihood, kind, objective)
    for arch in models.ARCHS
    for likelihood in models.LIKELIHOODS
    for kind, objective in (("vae", "elbo"), ("vae", "iwae"), ("ae", "elbo"))
    if kind == "vae" or arch == "mlp"  # the autoencoder once per likelihood keeps the file short
]


@pytest.mark.parametrize(("arch", "likelihood", "kind", "objective"), CASES)
def test_user_optax_loop_compiles_once(arch, likelihood, kind, objective):
    model = models.create(jax.random.key(0), _config(arch, likelihood, kind))
    graphdef, params = nnx.split(model)
    tx = optax.adam(1e-2)
    opt_state = tx.init(params)
    traces = []

    @jax.jit
    def step(params, opt_state, key, x):
        traces.append(1)

        def loss(p):
            m = nnx.merge(graphdef, p)
            keys = jax.random.split(key, x.shape[0])
            return -jnp.mean(jax.vmap(lambda k, xi: _objective(objective, m, k, xi))(keys, x))

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    x = jax.random.uniform(jax.random.key(1), (4,) + IMAGE_SHAPE)
    losses = []
    for i in range(4):
        params, opt_state, value = step(params, opt_state, jax.random.key(i), x)
        losses.append(float(value))
    assert len(traces) == 1 and step._cache_size() == 1, (len(traces), step._cache_size())
    assert np.all(np.isfinite(losses))
    if likelihood == "gaussian":  # the scale is learned and stays a strongly typed float32 scalar
        log_scale = params["log_scale"][...]
        assert log_scale.dtype == jnp.float32 and not log_scale.weak_type
        assert float(log_scale) != -2.0


@pytest.mark.parametrize("arch", models.ARCHS)
@pytest.mark.parametrize("likelihood", models.LIKELIHOODS)
def test_every_parameter_is_strongly_typed_float32(arch, likelihood):
    params = nnx.state(models.create(jax.random.key(0), _config(arch, likelihood)), nnx.Param)
    leaves = jax.tree.leaves(params)
    assert leaves and all(a.dtype == jnp.float32 and not a.weak_type for a in leaves)


@pytest.mark.parametrize("arch", models.ARCHS)
def test_make_step_compiles_once_for_a_gaussian_model(arch):
    graphdef, st, tx = state.init(jax.random.key(0), _config(arch, "gaussian"), learning_rate=1e-2)
    pure = train.make_step(graphdef, tx)
    traces = []

    @jax.jit
    def step(st, images):
        traces.append(1)
        return pure(st, images)

    images = np.random.default_rng(0).integers(0, 256, (4,) + IMAGE_SHAPE, dtype=np.uint8)
    for _ in range(4):
        st, metrics = step(st, images)
    assert len(traces) == 1 and step._cache_size() == 1, (len(traces), step._cache_size())
    assert int(st.step) == 4 and np.isfinite(float(metrics["loss"]))
