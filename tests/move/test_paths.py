"""move paths: interpolation closed forms, geodesics against known answers, the path comparison."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from jax.test_util import check_grads

from latentjax import move
from latentjax.errors import InputError

floats = st.floats(-10.0, 10.0, allow_nan=False, width=32)
vec3 = hnp.arrays(np.float32, (3,), elements=floats)


@settings(max_examples=30, deadline=None)
@given(vec3, vec3)
def test_lerp_slerp_endpoints(z0, z1):
    for f in (move.lerp, move.slerp):
        np.testing.assert_allclose(f(z0, z1, 0.0), z0, atol=1e-5)
        np.testing.assert_allclose(f(z0, z1, 1.0), z1, atol=1e-5 * (1 + np.abs(z1).max()))


def test_slerp_is_rotation_in_the_plane():
    # Closed form: between unit vectors at angle w, slerp(t) is the first one rotated by t*w.
    w = 2.0
    z0, z1 = jnp.array([1.0, 0.0]), jnp.array([np.cos(w), np.sin(w)])
    for t in np.linspace(0, 1, 7):
        np.testing.assert_allclose(move.slerp(z0, z1, t), [np.cos(t * w), np.sin(t * w)], atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, (2, 5), elements=st.floats(-1, 1)))
def test_slerp_unit_vectors_stay_on_sphere_at_constant_speed(x):
    norms = np.linalg.norm(x, axis=1)
    if norms.min() < 1e-2:
        return
    u = (x / norms[:, None]).astype(np.float32)
    angle = np.arccos(np.clip(u[0] @ u[1], -1, 1))
    if not 0.05 < angle < np.pi - 0.05:
        return
    ts = jnp.linspace(0.0, 1.0, 9)
    pts = np.asarray(jax.vmap(move.slerp, in_axes=(None, None, 0))(u[0], u[1], ts), np.float64)
    np.testing.assert_allclose(np.linalg.norm(pts, axis=1), 1.0, atol=2e-6)
    steps = np.arccos(np.clip(np.sum(pts[1:] * pts[:-1], axis=1), -1, 1))
    np.testing.assert_allclose(steps, angle / 8, atol=2e-3)


def test_vmap_equals_loop(key):
    k0, k1, k2 = jax.random.split(key, 3)
    z0 = jax.random.normal(k0, (6, 4))
    z1 = jax.random.normal(k1, (6, 4))
    t = jax.random.uniform(k2, (6,))
    for f in (move.lerp, move.slerp, move.apply):
        batched = jax.vmap(f)(z0, z1, t)
        looped = jnp.stack([f(z0[i], z1[i], t[i]) for i in range(6)])
        np.testing.assert_allclose(batched, looped, rtol=1e-6, atol=1e-6)
    jitted = jax.jit(jax.vmap(move.slerp))(z0, z1, t)
    np.testing.assert_allclose(jitted, jax.vmap(move.slerp)(z0, z1, t), atol=1e-6)


@pytest.mark.parametrize(
    "z1",
    [
        np.array([1.0, 2.0, 3.0], np.float32),  # identical
        np.array([1.0, 2.0, 3.0 + 1e-5], np.float32),  # near-collinear
        np.array([2.0, 4.0, 6.0], np.float32),  # collinear, other norm
        np.array([-1.0, -2.0, -3.0], np.float32),  # opposite
        np.zeros(3, np.float32),  # zero vector
        np.array([0.5, -1.0, 2.0], np.float32),  # generic
    ],
)
@pytest.mark.parametrize("t", [0.0, 0.3, 1.0])
def test_slerp_gradients_finite(z1, t):
    z0 = jnp.array([1.0, 2.0, 3.0])

    def loss(a, b, s):
        return jnp.sum(jnp.sin(move.slerp(a, b, s)))

    grads = jax.grad(loss, argnums=(0, 1, 2))(z0, jnp.asarray(z1), jnp.asarray(t))
    for g in grads:
        assert np.all(np.isfinite(g))


def test_slerp_gradients_match_finite_differences():
    z0, z1 = jnp.array([1.0, 0.2, -0.5]), jnp.array([-0.3, 1.0, 0.4])
    check_grads(lambda a, b: move.slerp(a, b, 0.3), (z0, z1), order=1, modes=["rev"], atol=2e-2, rtol=2e-2)


def test_slerp_continuous_across_the_lerp_switch():
    # Just above and below the switching angle slerp must agree with lerp to float precision.
    z0 = jnp.array([1.0, 0.0])
    for angle in (0.9e-3, 1.1e-3):
        z1 = jnp.array([np.cos(angle), np.sin(angle)])
        np.testing.assert_allclose(move.slerp(z0, z1, 0.5), move.lerp(z0, z1, 0.5), atol=1e-6)


def test_path_passes_through_points_piecewise():
    pts = jnp.array([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]])
    p = move.path(pts, num_points=9)
    np.testing.assert_allclose(p[::4], pts, atol=1e-6)
    np.testing.assert_allclose(p[2], [0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(p[6], [1.0, 1.0], atol=1e-6)
    q = move.path(pts, num_points=9, method="slerp")
    np.testing.assert_allclose(q[::4], pts, atol=1e-6)
    np.testing.assert_allclose(q[6], move.slerp(pts[1], pts[2], 0.5), atol=1e-6)


def test_path_diagnostics_against_numpy(key):
    zs = jax.random.normal(key, (7, 3))
    a = jax.random.normal(jax.random.fold_in(key, 1), (3, 5))

    def decode(z):
        return jnp.tanh(z @ a)

    d = move.path_diagnostics(decode, zs)
    x = np.tanh(np.asarray(zs, np.float64) @ np.asarray(a, np.float64))
    steps = np.linalg.norm(np.diff(x, axis=0), axis=1)
    np.testing.assert_allclose(d.latent_length, np.linalg.norm(np.diff(zs, axis=0), axis=1).sum(), rtol=1e-5)
    np.testing.assert_allclose(d.decoded_length, steps.sum(), rtol=1e-5)
    np.testing.assert_allclose(d.decoded_energy, 6 * np.sum(steps**2), rtol=1e-5)
    np.testing.assert_allclose(d.max_step, steps.max(), rtol=1e-5)
    assert d.decoded_energy >= d.decoded_length**2 * (1 - 1e-6)  # Cauchy-Schwarz


def test_geodesic_of_linear_decoder_is_the_straight_line(key):
    a = jax.random.normal(key, (4, 12))

    def decode(z):
        return z @ a + 0.5

    z0, z1 = jnp.array([1.0, -1.0, 0.5, 2.0]), jnp.array([-2.0, 0.0, 1.0, 0.0])
    p = move.geodesic(decode, z0, z1, num_points=9, num_steps=200, learning_rate=1e-2)
    straight = move.path(jnp.stack([z0, z1]), num_points=9)
    np.testing.assert_allclose(p.points, straight, atol=1e-4)
    # The optimiser finds nothing lower than the straight line (its global minimum).
    assert float(p.energies.min()) >= float(p.energies[0]) * (1 - 1e-4)


def test_geodesic_polar_decoder_matches_the_chord():
    # decode(theta, r) = (r cos theta, r sin theta): the pulled-back metric is flat, so the
    # decoded geodesic is the chord of length 2 r sin(dtheta / 2), not the arc r dtheta.
    def decode(z):
        return jnp.stack([z[1] * jnp.cos(z[0]), z[1] * jnp.sin(z[0])])

    z0, z1 = jnp.array([0.0, 1.0]), jnp.array([2.0, 1.0])
    p = move.geodesic(decode, z0, z1, num_points=17, num_steps=1500, learning_rate=1e-2)
    d = move.path_diagnostics(decode, p.points)
    straight = move.path_diagnostics(decode, move.path(jnp.stack([z0, z1]), num_points=17))
    np.testing.assert_allclose(straight.decoded_length, 2.0, rtol=1e-3)  # the arc
    np.testing.assert_allclose(d.decoded_length, 2 * np.sin(1.0), rtol=5e-3)
    np.testing.assert_allclose(d.decoded_energy, d.decoded_length**2, rtol=1e-2)  # constant speed


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
    decode = _trained_ring_decoder(key)
    z0 = jnp.array([1.0, 0.0])
    z1 = jnp.array([np.cos(2.4), np.sin(2.4)])
    p = jax.jit(lambda a, b: move.geodesic(decode, a, b, num_points=12, num_steps=400, learning_rate=2e-2))(
        z0, z1
    )
    line = move.path(jnp.stack([z0, z1]), num_points=12)
    geo_d = move.path_diagnostics(decode, p.points)
    line_d = move.path_diagnostics(decode, line)
    np.testing.assert_allclose(line_d.decoded_energy, p.energies[0], rtol=1e-5)
    assert float(geo_d.decoded_energy) <= float(line_d.decoded_energy)
    assert float(geo_d.decoded_energy) < 0.9 * float(line_d.decoded_energy)
    assert float(geo_d.max_step) < float(line_d.max_step)
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
    assert float(c.geodesic.diagnostics.decoded_energy) <= float(c.lerp.diagnostics.decoded_energy) * (
        1 + 1e-5
    )


def test_path_diagnostics_gradient_finite_at_repeated_points():
    zs = jnp.array([[0.0, 1.0], [0.0, 1.0], [1.0, 2.0]])  # a zero-length step
    g = jax.grad(lambda z: move.path_diagnostics(jnp.tanh, z).decoded_length)(zs)
    assert np.all(np.isfinite(g))


def test_bad_input_raises_input_error():
    with pytest.raises(InputError, match="move.path: method"):
        move.path(jnp.zeros((2, 3)), num_points=4, method="cubic")
    with pytest.raises(InputError, match="num_points"):
        move.path(jnp.zeros((2, 3)), num_points=1)
    with pytest.raises(InputError, match="move.slerp: .*equal shape"):
        move.slerp(jnp.zeros(3), jnp.zeros(4), 0.5)
    with pytest.raises(InputError, match="move.geodesic: num_points"):
        move.geodesic(lambda z: z, jnp.zeros(2), jnp.ones(2), num_points=2)
    with pytest.raises(InputError, match="needs a key"):
        move.geodesic_init(lambda z: z, jnp.zeros(2), jnp.ones(2), init_noise=0.1)
    with pytest.raises(InputError, match="move.path_diagnostics"):
        move.path_diagnostics(lambda z: z, jnp.zeros((1, 2)))
    with pytest.raises(InputError, match="move.compare_paths: .*equal shape"):
        move.compare_paths(lambda z: z, jnp.zeros(2), jnp.zeros(3))
