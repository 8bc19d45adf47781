"""move generation: prior draws and 2-D latent grids."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from latentjax import move
from latentjax.errors import InputError


def test_sample_prior_temperature(key):
    zs = jax.vmap(lambda k: move.sample_prior(k, latent_dim=3, temperature=0.5))(jax.random.split(key, 4000))
    np.testing.assert_allclose(np.std(zs, axis=0), 0.5, rtol=0.06)


def test_grid_2d_prior_and_principal_plane(key):
    g = move.grid_2d(size=5, span=2.0, latent_dim=2)
    np.testing.assert_allclose(g[2, 2], [0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(g[0, 4], [2.0, 2.0])
    np.testing.assert_allclose(g[4, 0], [-2.0, -2.0])
    # Over 5-D latents stretched along two known axes, the grid spans those axes.
    z = jax.random.normal(key, (2000, 5)) * jnp.array([[3.0, 0.1, 0.1, 1.5, 0.1]]) + 1.0
    g = move.grid_2d(size=3, span=1.0, latents=z)
    np.testing.assert_allclose(g[1, 1], z.mean(0), atol=1e-5)
    step_x = np.asarray(g[1, 2] - g[1, 1])
    step_y = np.asarray(g[0, 1] - g[1, 1])
    assert abs(step_x[0]) == pytest.approx(3.0, rel=0.06) and np.abs(step_x[1:]).max() < 0.2
    assert abs(step_y[3]) == pytest.approx(1.5, rel=0.06) and np.abs(step_y[[0, 1, 2, 4]]).max() < 0.2


def test_bad_input_raises_input_error():
    with pytest.raises(InputError, match="move.grid_2d: .*2-D"):
        move.grid_2d(latent_dim=3)
    with pytest.raises(InputError, match="move.grid_2d: latents"):
        move.grid_2d(latents=jnp.zeros((2, 4)))
