"""DeepSDF auto-decoder: architecture, loss, init/step, overfitting 4 shapes, completion, Chamfer."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.test_util import check_grads
from scipy.spatial.distance import cdist

from latentjax.errors import InputError
from latentjax.shapes import deepsdf, furniture, primitives, samples


def _small(latent_dim=8, **kw):
    return deepsdf.Decoder(
        latent_dim,
        width=kw.pop("width", 32),
        depth=kw.pop("depth", 4),
        skip=kw.pop("skip", 2),
        rngs=nnx.Rngs(0),
        **kw,
    )


def test_decoder_layers_and_skip():
    model = deepsdf.Decoder(16, width=64, depth=8, skip=4, rngs=nnx.Rngs(0))
    shapes = [(lin.in_features, lin.out_features) for lin in model.hidden]
    # DeepSDF: layer 3 outputs width - (latent + 3) so that [h, z, x] feeds layer 4 at full width.
    assert shapes[0] == (19, 64) and shapes[3] == (64, 64 - 19) and shapes[4] == (64, 64)
    assert len(shapes) == 8
    out = deepsdf.decode(model, jnp.ones(16), jnp.zeros(3))
    assert out.shape == () and -1 < float(out) < 1


def test_decoder_bad_config():
    with pytest.raises(InputError, match="deepsdf.Decoder: .*skip"):
        deepsdf.Decoder(8, width=8, depth=4, skip=2, rngs=nnx.Rngs(0))


def test_weight_norm_decoder_matches_plain_at_init():
    # W = g v / ||v|| with g = ||v|| at initialisation: same function as the plain layers.
    plain = _small()
    wn = _small(weight_norm=True)
    z, x = jnp.linspace(-1, 1, 8), jnp.array([0.1, -0.2, 0.3])
    assert float(deepsdf.decode(plain, z, x)) == pytest.approx(float(deepsdf.decode(wn, z, x)), abs=1e-5)


def test_decode_vmap_equals_loop(key):
    model = _small()
    z = jax.random.normal(key, (5, 8))
    x = jax.random.normal(jax.random.key(1), (5, 3))
    batched = jax.vmap(deepsdf.decode, in_axes=(None, 0, 0))(model, z, x)
    loop = jnp.stack([deepsdf.decode(model, z[i], x[i]) for i in range(5)])
    np.testing.assert_allclose(batched, loop, rtol=1e-5, atol=1e-6)


def test_clamped_l1_closed_form():
    pred = jnp.array([0.05, 0.3, -0.5, 0.0])
    target = jnp.array([0.0, 0.2, 0.05, -0.02])
    np.testing.assert_allclose(
        deepsdf.clamped_l1(pred, target, delta=0.1), [0.05, 0.0, 0.15, 0.02], atol=1e-7
    )


def test_shape_loss_gradients_and_weights(key):
    model = _small()
    samples = jnp.concatenate([jax.random.uniform(key, (32, 3), minval=-1), 0.05 * jnp.ones((32, 1))], 1)
    z = 0.1 * jax.random.normal(jax.random.key(2), (8,))
    check_grads(
        lambda z: deepsdf.shape_loss(model, z, samples, delta=10.0, code_weight=0.5),
        (z,),
        order=1,
        modes=["rev"],
        atol=1e-2,
        rtol=1e-2,
    )
    # Prior term: exactly code_weight * ||z||^2.
    diff = deepsdf.shape_loss(model, z, samples, code_weight=0.3) - deepsdf.shape_loss(
        model, z, samples, code_weight=0.0
    )
    assert float(diff) == pytest.approx(0.3 * float(jnp.sum(z**2)), rel=1e-5)
    # Zero weights drop samples: the weighted loss equals the loss of the kept samples.
    w = (jnp.arange(32) < 10).astype(jnp.float32)
    assert float(deepsdf.shape_loss(model, z, samples, weights=w, code_weight=0.0)) == pytest.approx(
        float(deepsdf.shape_loss(model, z, samples[:10], code_weight=0.0)), rel=1e-5
    )


@pytest.fixture(scope="module")
def four_shapes():
    """4 procedural shapes (2 chairs, table, sofa), their samples, and a decoder fitted to them."""
    shapes, labels = furniture.generate(num_per_class=2, seed=7)
    pick = np.array([0, 1, 2, 4])
    shapes, labels = primitives.take(shapes, pick), labels[pick]
    data = jax.jit(
        jax.vmap(lambda k, s: samples.shape_samples(k, s, num_samples=2048, uniform_fraction=0.2))
    )(jax.random.split(jax.random.key(8), 4), shapes)
    model = deepsdf.Decoder(16, width=64, depth=4, skip=2, rngs=nnx.Rngs(0))
    model, codes, losses = deepsdf.fit(
        jax.random.key(9),
        model,
        data,
        num_steps=600,
        shapes_per_batch=4,
        points_per_shape=256,
        learning_rate=2e-3,
        code_sigma=0.1,
        steps_per_call=200,
    )
    return dict(shapes=shapes, labels=labels, data=data, model=model, codes=codes, losses=losses)


def test_overfits_four_shapes(four_shapes):
    losses = four_shapes["losses"]
    assert losses.shape == (600,)
    assert np.mean(losses[:5]) > 0.03
    assert np.mean(losses[-50:]) < 0.012  # clamped L1 + prior, delta 0.1
    # The fitted SDF has the right sign away from the surface.
    model, codes, data = four_shapes["model"], four_shapes["codes"], four_shapes["data"]
    pred = jax.vmap(lambda z, s: jax.vmap(deepsdf.decode, in_axes=(None, None, 0))(model, z, s[:, :3]))(
        codes, data
    )
    far = np.abs(np.asarray(data[..., 3])) > 0.03
    assert np.mean(np.sign(np.asarray(pred))[far] == np.sign(np.asarray(data[..., 3]))[far]) > 0.95


def test_completion_predicts_the_unobserved_half(four_shapes):
    model, codes = four_shapes["model"], four_shapes["codes"]
    # Fresh samples of the same shapes; only the half x > 0 is observed (shape completion). The
    # completed SDF is scored where nothing was observed (x <= 0), against the exact SDF.
    fresh = jax.jit(
        jax.vmap(lambda k, s: samples.shape_samples(k, s, num_samples=1024, uniform_fraction=0.2))
    )(jax.random.split(jax.random.key(11), 4), four_shapes["shapes"])
    observed = (fresh[:, :, 0] > 0).astype(jnp.float32)
    hidden = np.asarray(1.0 - observed)
    z = deepsdf.reconstruct(
        model, jax.random.key(12), fresh, weights=observed, num_steps=200, points_per_step=512, code_sigma=0.1
    )

    def hidden_error(code, i):  # clamped L1 on the unobserved samples of shape i
        pred = jax.vmap(deepsdf.decode, in_axes=(None, None, 0))(model, code, fresh[i, :, :3])
        err = np.asarray(deepsdf.clamped_l1(pred, fresh[i, :, 3]))
        return float(np.sum(err * hidden[i]) / np.sum(hidden[i])), np.asarray(pred)

    # Measured: 0.008-0.012 against 0.029-0.070 for the best other training code and 0.027-0.066
    # for the mean code; signs right on 0.977-0.996 of the unobserved samples away from the surface.
    mean_code = jnp.mean(codes, axis=0)
    for i in range(4):
        err, pred = hidden_error(z[i], i)
        others = min(hidden_error(codes[j], i)[0] for j in range(4) if j != i)
        assert err < 0.5 * others and err < 0.5 * hidden_error(mean_code, i)[0], (i, err, others)
        sdf = np.asarray(fresh[i, :, 3])
        far = (np.abs(sdf) > 0.03) & (hidden[i] > 0)
        assert np.mean(np.sign(pred[far]) == np.sign(sdf[far])) > 0.95, i
    # and the code lands near its shape's training code, far from the others (measured: ratio <= 0.38)
    d = cdist(np.asarray(z), np.asarray(codes))
    own = np.diag(d)
    nearest_other = np.where(np.eye(4, dtype=bool), np.inf, d).min(1)
    assert np.all(own < 0.5 * nearest_other), d


def test_fit_and_reconstruct_reject_bad_samples():
    with pytest.raises(InputError, match=r"deepsdf.fit: .*\(num_shapes, n, 4\)"):
        deepsdf.fit(jax.random.key(0), _small(), jnp.zeros((4, 10, 3)), num_steps=1)
    with pytest.raises(InputError, match="deepsdf.reconstruct: weights"):
        deepsdf.reconstruct(_small(), jax.random.key(0), jnp.zeros((2, 10, 4)), weights=jnp.ones((2, 9)))


def test_fit_is_init_then_steps():
    # The key lives in the state: step s draws its batch with fold_in(state.key, s).
    data = jax.random.uniform(jax.random.key(0), (3, 64, 4), minval=-0.1, maxval=0.1)
    result = deepsdf.fit(
        jax.random.key(1), _small(), data, num_steps=4, shapes_per_batch=2, points_per_shape=8, code_sigma=0.1
    )
    assert isinstance(result, deepsdf.FitResult)
    optimizer = optax.adam(1e-3)
    graphdef, state = deepsdf.init(jax.random.key(1), _small(), num_shapes=3, optimizer=optimizer)
    assert isinstance(state, deepsdf.State) and int(state.step) == 0
    step = jax.jit(
        deepsdf.make_step(
            graphdef, optimizer, shapes_per_batch=2, points_per_shape=8, code_weight=1.0 / (0.1**2 * 64)
        )
    )
    losses = []
    for _ in range(4):
        state, loss = step(state, data)
        losses.append(float(loss))
    assert int(state.step) == 4 and step._cache_size() == 1
    np.testing.assert_allclose(result.losses, losses, rtol=1e-5)
    np.testing.assert_allclose(result.codes, state.codes, rtol=1e-5, atol=1e-7)


def test_fit_partial_last_call_and_reproducible():
    data = jax.random.uniform(jax.random.key(0), (3, 64, 4), minval=-0.1, maxval=0.1)
    a = deepsdf.fit(
        jax.random.key(1),
        _small(),
        data,
        num_steps=5,
        shapes_per_batch=2,
        points_per_shape=8,
        steps_per_call=3,
    )
    b = deepsdf.fit(
        jax.random.key(1),
        _small(),
        data,
        num_steps=5,
        shapes_per_batch=2,
        points_per_shape=8,
        steps_per_call=5,
    )
    assert a[2].shape == (5,)
    np.testing.assert_allclose(a[2], b[2], rtol=1e-5)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5, atol=1e-7)


def test_chamfer_matches_bruteforce(key):
    a = np.asarray(jax.random.normal(key, (300, 3)))
    b = np.asarray(jax.random.normal(jax.random.key(1), (200, 3))) + 0.3
    d = cdist(a, b)
    ref = np.mean(d.min(1) ** 2) + np.mean(d.min(0) ** 2)
    assert deepsdf.chamfer(a, b) == pytest.approx(ref, rel=1e-10)
    assert deepsdf.chamfer(a, a) == 0.0
    assert deepsdf.chamfer(a, b) == pytest.approx(deepsdf.chamfer(b, a))
