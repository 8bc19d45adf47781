"""move geodesics: closed-form geodesics reached from starts off the straight line, a trained decoder,
the staged API, the path comparison and the decoder's NaN."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from latentjax import move
from latentjax.errors import InputError


def test_geodesic_of_linear_decoder_is_the_straight_line(key):
    """An affine decoder pulls back a flat metric: the geodesic is the evenly spaced straight line,
    of energy |(z1 - z0) A|^2. Reached from a start perturbed off the line, not started on it."""
    a = jax.random.normal(key, (4, 12))

    def decode(z):
        return z @ a + 0.5

    z0, z1 = jnp.array([1.0, -1.0, 0.5, 2.0]), jnp.array([-2.0, 0.0, 1.0, 0.0])
    exact = float(np.sum((np.asarray(z1 - z0, np.float64) @ np.asarray(a, np.float64)) ** 2))
    p = move.geodesic(
        decode, z0, z1, num_points=9, num_steps=600, learning_rate=2e-2, key=jax.random.key(1), init_noise=0.3
    )
    assert float(p.energies[0]) > 2 * exact  # the start is well off the line
    np.testing.assert_allclose(float(p.energies.min()), exact, rtol=1e-5)
    straight = np.linspace(np.asarray(z0), np.asarray(z1), 9)
    np.testing.assert_allclose(p.points, straight, atol=1e-3)


def test_geodesic_polar_decoder_matches_the_chord():
    # decode(theta, r) = (r cos theta, r sin theta): the pulled-back metric is flat, so the
    # decoded geodesic is the chord of length 2 r sin(dtheta / 2), not the arc r dtheta (the
    # straight line in latent space). The start is the line plus noise, with 2.5x its energy.
    def decode(z):
        return jnp.stack([z[1] * jnp.cos(z[0]), z[1] * jnp.sin(z[0])])

    z0, z1 = jnp.array([0.0, 1.0]), jnp.array([2.0, 1.0])
    p = move.geodesic(
        decode,
        z0,
        z1,
        num_points=17,
        num_steps=800,
        learning_rate=1e-2,
        key=jax.random.key(1),
        init_noise=0.1,
    )
    d = move.path_diagnostics(decode, p.points)
    straight = move.path_diagnostics(decode, move.path(jnp.stack([z0, z1]), num_points=17))
    np.testing.assert_allclose(straight.decoded_length, 2.0, rtol=1e-3)  # the arc
    assert float(p.energies[0]) > 2 * float(straight.decoded_energy)
    np.testing.assert_allclose(d.decoded_length, 2 * np.sin(1.0), rtol=1e-4)
    np.testing.assert_allclose(d.decoded_energy, 4 * np.sin(1.0) ** 2, rtol=1e-4)  # constant speed


def _trained_ring_decoder(key):
    """An MLP decoder fitted to images of a bump moving around a ring, latent (cos, sin)."""
    theta = jnp.linspace(0.0, 2 * jnp.pi, 64, endpoint=False)
    zs = jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=1)
    grid = jnp.linspace(-1.0, 1.0, 10)
    yy, xx = jnp.meshgrid(grid, grid, indexing="ij")

    def image(t):
        cx, cy = 0.6 * jnp.cos(t), 0.6 * jnp.sin(t)
        return jnp.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.05).ravel()

    images = jax.vmap(image)(theta)
    k1, k2 = jax.random.split(key)
    params = {
        "w1": jax.random.normal(k1, (2, 64)) * 0.7,
        "b1": jnp.zeros(64),
        "w2": jax.random.normal(k2, (64, 100)) * 0.1,
        "b2": jnp.zeros(100),
    }

    def decode(p, z):
        return jax.nn.sigmoid(jnp.tanh(z @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"])

    def loss(p):
        return jnp.mean((jax.vmap(decode, in_axes=(None, 0))(p, zs) - images) ** 2)

    opt = optax.adam(1e-2)

    @jax.jit
    def train(p):
        def step(carry, _):
            p, s = carry
            g = jax.grad(loss)(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (p, opt.init(p)), length=1500)[0][0]

    params = train(params)
    assert float(loss(params)) < 2e-3  # it learned the ring
    return lambda z: decode(params, z)


def test_geodesic_beats_straight_line_on_trained_decoder(key):
    """From a start off the straight line (noise raises its energy by about half), the geodesic
    still ends well below the line's energy: nothing here holds by construction."""
    decode = _trained_ring_decoder(key)
    z0 = jnp.array([1.0, 0.0])
    z1 = jnp.array([np.cos(2.4), np.sin(2.4)])

    @jax.jit
    def run(a, b, k):
        return move.geodesic(
            decode, a, b, num_points=12, num_steps=400, learning_rate=2e-2, key=k, init_noise=0.1
        )

    p = run(z0, z1, jax.random.key(1))
    line = move.path(jnp.stack([z0, z1]), num_points=12)
    geo_d = move.path_diagnostics(decode, p.points)
    line_d = move.path_diagnostics(decode, line)
    assert float(p.energies[0]) > 1.2 * float(line_d.decoded_energy)  # not started on the line
    assert float(geo_d.decoded_energy) < 0.7 * float(line_d.decoded_energy)
    assert float(geo_d.max_step) < 0.8 * float(line_d.max_step)
    np.testing.assert_allclose(p.points[np.array([0, -1])], jnp.stack([z0, z1]))


def test_geodesic_init_and_step_are_the_entry_point(key):
    a = jax.random.normal(key, (3, 6))

    def decode(z):
        return jnp.tanh(z @ a)

    z0, z1 = jnp.array([1.0, -1.0, 0.5]), jnp.array([-2.0, 0.5, 1.0])
    g = move.geodesic(decode, z0, z1, num_points=6, num_steps=20, learning_rate=5e-2)
    state = move.geodesic_init(decode, z0, z1, num_points=6)
    step = jax.jit(lambda s: move.geodesic_step(decode, s, learning_rate=5e-2))
    energies = []
    for _ in range(20):
        state = step(state)
        energies.append(state.energy)
    np.testing.assert_allclose(g.energies[:-1], jnp.stack(energies), rtol=1e-5)
    last = move.curve_energy(decode, jnp.concatenate([z0[None], state.interior, z1[None]]))
    np.testing.assert_allclose(g.energies[-1], last, rtol=1e-5)
    best = state.interior if last < state.best_energy else state.best
    np.testing.assert_allclose(g.points[1:-1], best, atol=1e-5)


def test_geodesic_init_noise_is_drawn_from_the_key(key):
    decode = jnp.tanh
    s = move.geodesic_init(decode, jnp.zeros(2), jnp.ones(2), num_points=5, key=key, init_noise=0.1)
    line = move.path(jnp.stack([jnp.zeros(2), jnp.ones(2)]), num_points=5)[1:-1]
    np.testing.assert_allclose(s.interior, line + 0.1 * jax.random.normal(key, (3, 2)), atol=1e-6)
    np.testing.assert_allclose(
        s.energy,
        move.curve_energy(decode, jnp.concatenate([jnp.zeros((1, 2)), s.interior, jnp.ones((1, 2))])),
    )


def test_compare_paths_is_the_three_paths_decoded(key):
    a = jax.random.normal(key, (3, 2, 2, 1))

    def decode(z):
        return jax.nn.sigmoid(jnp.einsum("d,dhwc->hwc", z, a))

    z0, z1 = jnp.array([1.0, 0.0, -1.0]), jnp.array([0.0, 2.0, 0.5])
    c = jax.jit(
        lambda u, v: move.compare_paths(decode, u, v, num_points=5, num_steps=30, learning_rate=2e-2)
    )(z0, z1)
    ends = jnp.stack([z0, z1])
    expected = {
        "lerp": move.path(ends, num_points=5),
        "slerp": move.path(ends, num_points=5, method="slerp"),
        "geodesic": move.geodesic(decode, z0, z1, num_points=5, num_steps=30, learning_rate=2e-2).points,
    }
    assert list(c._asdict()) == list(expected)
    for name, zs in expected.items():
        got = getattr(c, name)
        np.testing.assert_allclose(got.points, zs, atol=1e-5)
        assert got.decoded.shape == (5, 2, 2, 1)
        np.testing.assert_allclose(got.decoded, jax.vmap(decode)(zs), atol=1e-5)
        want = move.path_diagnostics(decode, zs)
        for field in move.Diagnostics._fields:
            np.testing.assert_allclose(getattr(got.diagnostics, field), getattr(want, field), rtol=1e-5)


def test_decoder_nan_is_an_input_error():
    """A decoder that is NaN on the straight line used to give back that line with NaN energies."""

    def decode(z):
        return jnp.log(z)  # NaN for negative coordinates

    with pytest.raises(InputError, match="move.geodesic: decode returned NaN"):
        move.geodesic(decode, jnp.array([1.0, 1.0]), jnp.array([-1.0, 2.0]), num_points=5, num_steps=3)
    with pytest.raises(InputError, match="move.geodesic: decode returned NaN"):
        move.compare_paths(decode, jnp.array([1.0, 1.0]), jnp.array([-1.0, 2.0]), num_points=5, num_steps=3)
    # Under jit the values cannot be inspected (the policy): the energies say NaN.
    g = jax.jit(lambda a, b: move.geodesic(decode, a, b, num_points=5, num_steps=3))(
        jnp.array([1.0, 1.0]), jnp.array([-1.0, 2.0])
    )
    assert np.isnan(float(g.energies[0]))


def test_bad_input_raises_input_error():
    with pytest.raises(InputError, match="move.geodesic: num_points"):
        move.geodesic(lambda z: z, jnp.zeros(2), jnp.ones(2), num_points=2)
    with pytest.raises(InputError, match="needs a key"):
        move.geodesic_init(lambda z: z, jnp.zeros(2), jnp.ones(2), init_noise=0.1)
    with pytest.raises(InputError, match="move.compare_paths: .*equal shape"):
        move.compare_paths(lambda z: z, jnp.zeros(2), jnp.zeros(3))
    with pytest.raises(InputError, match="move.geodesic: z1 contains 1 NaN"):
        move.geodesic(lambda z: z, jnp.zeros(2), jnp.array([1.0, jnp.nan]))
